/* towerrt merge-items: shard stores (or any stores of one model) -> one
 * item store, streamed (docs/item-stores.md). */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct merge_progress {
  double t0, last;
} merge_progress;

static void show(void *ctx, uint64_t done, uint64_t total) {
  merge_progress *p = ctx;
  double t = now_s();
  if (done < total && t - p->last < 0.25) return;
  p->last = t;
  fprintf(stderr, "\rtowerrt: merged %llu / %llu rows (%3.0f%%), %.0f rows/s   %s", (unsigned long long)done, (unsigned long long)total,
          total ? 100.0 * (double)done / (double)total : 100.0, t > p->t0 ? (double)done / (t - p->t0) : 0.0, done == total ? "\n" : "");
  fflush(stderr);
}

int cmd_merge_items(const cli_args *a) {
  if (a->help) {
    puts("usage: towerrt merge-items --model M.twr --out STORE.twi SHARD.twi...\n"
         "  Merges item stores of the model M into one, streaming rows. The n shards\n"
         "  of `towerrt build-items --shard i/n` (any order, all n needed) are put back\n"
         "  into the order of their input: the result is byte for byte the single\n"
         "  build. Other stores are concatenated in the order given. A duplicate id,\n"
         "  a store of another model, a missing or repeated shard, or a truncated or\n"
         "  corrupt input is an error naming the file.");
    return 0;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_model *m;
  towerrt_status st = towerrt_model_load(a->model, &o, &m);
  if (st) return fail(st, NULL);
  merge_progress p = {now_s(), 0.0};
  st = towerrt_items_merge_progress(m, a->inputs, (size_t)a->n_inputs, a->out, isatty(fileno(stderr)) ? show : NULL, &p);
  int rc = st ? fail(st, NULL) : 0;
  if (!st) fprintf(stderr, "towerrt: merged %d stores into %s in %.2f s\n", a->n_inputs, a->out, now_s() - p.t0);
  towerrt_model_free(m);
  return rc;
}
