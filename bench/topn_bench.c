/* towerrt_topn_bench [PRESET (reference)] [N (100)] [REPS (7)] [K_LAST (100000)]: the cost of
 * ranked top-n, fused (towerrt_score_topn) against scoring then ranking the
 * k scores afterwards, at k = 1,000 / 10,000 / 100,000 candidates drawn
 * from the synthetic catalog (tb_synth_prepare, cached under $TMPDIR), one
 * thread, on the f32 store and its int8 copy. Per k and store, the median
 * over REPS of:
 *   score          towerrt_score alone (the floor)
 *   score+sort     towerrt_score, then qsort of the k (score, id, position)
 *                  triples: the stable sort top-n is defined by
 *   score+select   towerrt_score, then a bounded heap over the k scores
 *                  (the best a caller can do with a second pass: the
 *                  caller's own heap below, the order of towerrt_score_topn)
 *   topn           towerrt_score_topn (selection inside the scoring pass)
 * (and the minimum: the least disturbed round on a shared machine).
 * The tiny preset makes scoring cheap, so the selection's own cost shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <math.h>

#include "bench/synthetic_model.h"
#include "towerrt.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A candidate as top-n ranks it (docs/serving.md): higher score first,
 * ties to the lower id, then to the lower position. */
typedef struct rank {
  float score;
  uint32_t pos;
  uint64_t id;
} rank;

static int before(const rank *a, const rank *b) {
  if (a->score != b->score) return a->score > b->score;
  if (a->id != b->id) return a->id < b->id;
  return a->pos < b->pos;
}

static int cmp_rank(const void *pa, const void *pb) {
  const rank *a = pa, *b = pb;
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* A bounded heap of the n best seen so far, the worst at e[0]. */
typedef struct heap {
  rank *e;
  size_t size, cap;
} heap;

static void swap_ranks(rank *a, rank *b) {
  rank t = *a;
  *a = *b;
  *b = t;
}

/* Adds x (when full, x must rank before e[0], which it replaces). */
static void heap_push(heap *h, rank x) {
  size_t i;
  if (h->size < h->cap) {
    for (i = h->size++, h->e[i] = x; i > 0 && before(&h->e[(i - 1) / 2], &h->e[i]); i = (i - 1) / 2)
      swap_ranks(&h->e[(i - 1) / 2], &h->e[i]);
    return;
  }
  h->e[0] = x;
  for (i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < h->size && before(&h->e[w], &h->e[l])) w = l;
    if (r < h->size && before(&h->e[w], &h->e[r])) w = r;
    if (w == i) break;
    swap_ranks(&h->e[i], &h->e[w]);
    i = w;
  }
}

/* The n best, best first; missing entries as towerrt_score_topn writes them. */
static void heap_emit(heap *h, size_t n, uint64_t *ids, float *scores) {
  qsort(h->e, h->size, sizeof *h->e, cmp_rank);
  for (size_t i = 0; i < n; i++) {
    ids[i] = i < h->size ? h->e[i].id : TOWERRT_NO_ID;
    scores[i] = i < h->size ? h->e[i].score : NAN;
  }
}

typedef struct bench_req {
  towerrt_session *s;
  towerrt_features user;
  const uint64_t *ids;
  size_t k, n;
  float *scores, *top;
  uint64_t *top_ids;
  rank *ranks;
} bench_req;

static int run_score(bench_req *r) { return towerrt_score(r->s, &r->user, r->ids, r->k, r->scores) != TOWERRT_OK; }

static int run_sort(bench_req *r) {
  if (run_score(r)) return 1;
  for (size_t i = 0; i < r->k; i++) r->ranks[i] = (rank){r->scores[i], (uint32_t)i, r->ids[i]};
  qsort(r->ranks, r->k, sizeof *r->ranks, cmp_rank);
  for (size_t i = 0; i < r->n; i++) r->top_ids[i] = r->ranks[i].id, r->top[i] = r->ranks[i].score;
  return 0;
}

static int run_select(bench_req *r) {
  if (run_score(r)) return 1;
  heap h = {r->ranks, 0, r->n};
  for (size_t i = 0; i < r->k; i++) {
    rank x = {r->scores[i], (uint32_t)i, r->ids[i]};
    if (h.size == h.cap && !before(&x, &h.e[0])) continue;
    heap_push(&h, x);
  }
  heap_emit(&h, r->n, r->top_ids, r->top);
  return 0;
}

static int run_topn(bench_req *r) { return towerrt_score_topn(r->s, &r->user, r->ids, r->k, r->n, r->top_ids, r->top) != TOWERRT_OK; }

/* The caller's heap (score+select) picks what towerrt_score_topn picks. */
static int select_agrees(bench_req *r) {
  uint64_t *mine = malloc(r->n * sizeof *mine);
  int ok = mine && !run_select(r);
  if (ok) memcpy(mine, r->top_ids, r->n * sizeof *mine);
  ok = ok && !run_topn(r) && !memcmp(mine, r->top_ids, r->n * sizeof *mine);
  if (!ok) fprintf(stderr, "towerrt_topn_bench: score+select and towerrt_score_topn disagree (or failed)\n");
  free(mine);
  return ok;
}

/* Median seconds of each of the four ways over reps rounds; each round
 * runs all four one after the other, so a slow phase of a shared machine
 * hits them alike. One warm-up round first. */
static int medians(bench_req *r, int reps, double med[4], double best[4]) {
  int (*fns[4])(bench_req *) = {run_score, run_sort, run_select, run_topn};
  double t[4][64];
  for (int f = 0; f < 4; f++)
    if (fns[f](r)) return -1;
  if (!select_agrees(r)) return -1;
  for (int i = 0; i < reps && i < 64; i++)
    for (int f = 0; f < 4; f++) {
      double t0 = now();
      if (fns[f](r)) return -1;
      t[f][i] = now() - t0;
    }
  for (int f = 0; f < 4; f++) {
    qsort(t[f], (size_t)reps, sizeof(double), cmp_double);
    med[f] = t[f][reps / 2];
    best[f] = t[f][0];
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *preset = argc > 1 ? argv[1] : "reference";
  size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
  int reps = argc > 3 ? atoi(argv[3]) : 7;
  size_t k_last = argc > 4 ? strtoul(argv[4], NULL, 10) : 100000;
  tb_synth_config c;
  if (!tb_synth_preset(&c, preset) || n == 0 || reps < 1 || reps > 64) {
    fprintf(stderr, "usage: towerrt_topn_bench [reference|tiny] [N >= 1] [REPS 1..64] [K_LAST]\n");
    return 2;
  }
  c.catalog = 100000;
  char dir[4096], mp[4200], ip[4200], qp[4300], desc[512];
  tb_synth_default_dir(&c, dir, sizeof dir);
  /* the int8 copy is this run's own file: the cache folder may be shared */
  const char *tmp = getenv("TMPDIR");
  snprintf(qp, sizeof qp, "%s/towerrt-topn-bench-int8-%ld.twi", tmp && *tmp ? tmp : "/tmp", (long)getpid());
  towerrt_model *m = NULL;
  towerrt_items *items[2] = {NULL, NULL};
  towerrt_options o;
  towerrt_options_init(&o);
  o.verify_checksums = 0;
  o.max_topn = (uint32_t)n;
  if (tb_synth_prepare(&c, dir, 1, mp, ip, sizeof mp, stderr) || towerrt_model_load(mp, &o, &m) || towerrt_items_load(ip, &o, &items[0]) ||
      towerrt_items_quantize(items[0], TOWERRT_PRECISION_INT8, qp) || towerrt_items_load(qp, &o, &items[1])) {
    fprintf(stderr, "towerrt_topn_bench: %s\n", towerrt_last_error());
    return 1;
  }
  tb_synth_describe(&c, desc, sizeof desc);
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), width = towerrt_model_dense_width(m, TOWERRT_USER), kmax = 100000;
  int64_t *uids = calloc(slots + 1, sizeof *uids);
  float *dense = calloc(width + 1, sizeof *dense);
  uint64_t *ids = malloc(kmax * sizeof *ids);
  for (size_t i = 0; i < kmax; i++) ids[i] = tb_synth_item_id((i * 7919) % c.catalog); /* every row once, shuffled */
  for (size_t i = 0; i < width; i++) dense[i] = 0.5f;
  bench_req r = {.user = {uids, slots, dense, width}, .ids = ids, .n = n, .scores = malloc(kmax * sizeof(float)),
                 .top = malloc(kmax * sizeof(float)), .top_ids = malloc(kmax * sizeof(uint64_t)), .ranks = malloc(kmax * sizeof(rank))};
  printf("# towerrt_topn_bench %s: %s, kernels %s, n = %zu, 1 thread, median of %d\n", preset, desc, towerrt_model_isa(m), n, reps);
  printf("%-5s %7s %12s %12s %12s %12s %10s %10s\n", "store", "k", "score_ms", "sort_ms", "select_ms", "topn_ms", "topn/score", "sort/topn");
  const char *names[2] = {"f32", "int8"};
  for (int p = 0; p < 2; p++) {
    if (towerrt_session_create(m, items[p], &o, &r.s)) {
      fprintf(stderr, "towerrt_topn_bench: %s\n", towerrt_last_error());
      return 1;
    }
    for (size_t k = 1000; k <= kmax && k <= k_last; k *= 10) {
      r.k = k;
      int rr = k == kmax && !strcmp(preset, "reference") ? (reps < 5 ? reps : 5) : reps;
      double med[4], best[4];
      if (medians(&r, rr, med, best)) {
        fprintf(stderr, "towerrt_topn_bench: %s\n", towerrt_session_error(r.s));
        return 1;
      }
      double ts = med[0], tq = med[1], tl = med[2], tt = med[3];
      printf("%-5s %7zu %12.4f %12.4f %12.4f %12.4f %10.3f %10.3f   min %.4f %.4f %.4f %.4f\n", names[p], k, ts * 1e3, tq * 1e3, tl * 1e3,
             tt * 1e3, tt / ts, tq / tt, best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3);
      fflush(stdout);
    }
    towerrt_session_free(r.s);
  }
  towerrt_items_free(items[0]);
  towerrt_items_free(items[1]);
  towerrt_model_free(m);
  remove(qp);
  return 0;
}
