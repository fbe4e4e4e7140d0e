/* towerrt build-items: item features file -> item store (.twi). */
#include <stdlib.h>

#include "runtime/text_input.h"
#include "tools/cli.h"

int cmd_build_items(const cli_args *a) {
  if (a->help || !a->model || !a->features || !a->out) {
    puts("usage: towerrt build-items --model M.twr --features ITEMS.txt --out STORE.twi\n"
         "  Runs the item tower over every item of the features file (docs/format.md)\n"
         "  and writes an item store keyed by the items' ids.");
    return a->help ? 0 : EXIT_USAGE;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_model *m;
  towerrt_status st = towerrt_model_load(a->model, &o, &m);
  if (st) return fail(st, NULL);
  FILE *f = open_in(a->features);
  if (!f) {
    towerrt_model_free(m);
    return EXIT_FAILED;
  }
  trt_text_reader r;
  trt_rows rows = {0};
  int done = 0;
  st = trt_text_open(&r, f, a->features, "towerrt-items", m);
  while (!st && !done) st = trt_text_read_items(&r, &rows, (size_t)1 << 20, &done);
  if (!st) {
    towerrt_features feats = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
    st = towerrt_items_build(m, &feats, rows.keys, rows.n_keys, a->out);
  }
  int rc = st ? fail(st, NULL) : 0;
  if (!st) fprintf(stderr, "towerrt: wrote %zu items to %s\n", rows.n_keys, a->out);
  trt_text_close(&r);
  trt_rows_free(&rows);
  if (f != stdin) fclose(f);
  towerrt_model_free(m);
  return rc;
}

