/* towerrt quantize: an f32 item store -> bf16 or int8, and with a
 * calibration file of real requests, how much the scores move. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/text_input.h"
#include "tools/cli.h"

/* Average ranks (ties share their mean rank). */
static void ranks(const float *x, size_t n, size_t *order, double *r) {
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = 1; i < n; i++) /* insertion sort: calibration requests are small */
    for (size_t j = i; j > 0 && x[order[j - 1]] > x[order[j]]; j--) {
      size_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[order[j + 1]] == x[order[i]]) j++;
    for (size_t t = i; t <= j; t++) r[order[t]] = (double)(i + j) / 2.0 + 1.0;
    i = j + 1;
  }
}

/* Spearman's rho = Pearson correlation of the ranks; 1 if either side is constant. */
static double spearman(const float *a, const float *b, size_t n, size_t *order, double *ra, double *rb) {
  ranks(a, n, order, ra);
  ranks(b, n, order, rb);
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; i++) ma += ra[i], mb += rb[i];
  ma /= (double)n;
  mb /= (double)n;
  for (size_t i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 1.0;
}

typedef struct calib_stats {
  size_t requests, scores;
  double min_rho, sum_rho, max_abs;
} calib_stats;

static towerrt_status compare_request(towerrt_session *ref, towerrt_session *q, const trt_request *rq, calib_stats *cs) {
  size_t k = rq->items.n_keys;
  float *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
  size_t *order = malloc(k * sizeof *order);
  double *ra = malloc(k * sizeof *ra), *rb = malloc(k * sizeof *rb);
  towerrt_features user = {rq->user.ids, rq->user.n_ids, rq->user.dense, rq->user.n_dense};
  towerrt_status st = (!a || !b || !order || !ra || !rb) ? TOWERRT_ERR_NO_MEMORY : towerrt_score(ref, &user, rq->items.keys, k, a);
  if (!st) st = towerrt_score(q, &user, rq->items.keys, k, b);
  if (!st) {
    double rho = spearman(a, b, k, order, ra, rb);
    cs->min_rho = cs->requests ? fmin(cs->min_rho, rho) : rho;
    cs->sum_rho += rho;
    for (size_t i = 0; i < k; i++) cs->max_abs = fmax(cs->max_abs, fabs((double)a[i] - b[i]));
    cs->requests++;
    cs->scores += k;
  }
  free(a), free(b), free(order), free(ra), free(rb);
  return st;
}

/* Scores every by-id request of the calibration file with both stores. */
static int calibrate(const cli_args *a, const towerrt_options *o, const towerrt_items *f32, const char *out_path) {
  towerrt_model *m = NULL;
  towerrt_items *q = NULL;
  towerrt_session *s_ref = NULL, *s_q = NULL;
  towerrt_status st = towerrt_model_load(a->model, o, &m);
  if (!st) st = towerrt_items_load(out_path, o, &q);
  if (!st) st = towerrt_session_create(m, f32, o, &s_ref);
  if (!st) st = towerrt_session_create(m, q, o, &s_q);
  FILE *f = st ? NULL : open_in(a->requests);
  trt_text_reader r;
  trt_request rq = {0};
  calib_stats cs = {0};
  int done = 0;
  if (f) st = trt_text_open(&r, f, a->requests, "towerrt-requests", m);
  while (f && !st && !done) {
    st = trt_text_next_request(&r, &rq, &done);
    if (!st && !done && rq.by_id) st = compare_request(s_ref, s_q, &rq, &cs);
  }
  int rc = st ? fail(st, *towerrt_session_error(s_q) ? towerrt_session_error(s_q) : NULL) : 0;
  if (!st)
    printf("calibration: %zu requests, %zu scores: Spearman rho mean %.6f, min %.6f; max |score difference| %.3g\n", cs.requests,
           cs.scores, cs.requests ? cs.sum_rho / (double)cs.requests : 1.0, cs.requests ? cs.min_rho : 1.0, cs.max_abs);
  if (f) {
    trt_text_close(&r);
    if (f != stdin) fclose(f);
  }
  trt_request_free(&rq);
  towerrt_session_free(s_ref);
  towerrt_session_free(s_q);
  towerrt_items_free(q);
  towerrt_model_free(m);
  return rc;
}

int cmd_quantize(const cli_args *a) {
  if (a->help || !a->items || !a->out || !a->precision || (a->requests && !a->model)) {
    puts("usage: towerrt quantize --items F32.twi --precision int8|bf16 --out OUT.twi\n"
         "                        [--model M.twr --calibration REQUESTS.txt]\n"
         "  Rewrites an f32 item store at a lower precision (docs/quantization.md).\n"
         "  With a model and a file of real requests (candidates by id), scores them\n"
         "  with both stores and reports the rank correlation and the largest change.");
    return a->help ? 0 : EXIT_USAGE;
  }
  towerrt_precision prec;
  if (!strcmp(a->precision, "int8")) prec = TOWERRT_PRECISION_INT8;
  else if (!strcmp(a->precision, "bf16")) prec = TOWERRT_PRECISION_BF16;
  else {
    fprintf(stderr, "towerrt: --precision wants int8 or bf16 (got '%s')\n", a->precision);
    return EXIT_USAGE;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_items *items = NULL;
  towerrt_status st = towerrt_items_load(a->items, &o, &items);
  if (!st) st = towerrt_items_quantize(items, prec, a->out);
  int rc = st ? fail(st, NULL) : 0;
  if (!st) fprintf(stderr, "towerrt: wrote %zu %s items to %s\n", towerrt_items_count(items), a->precision, a->out);
  if (!st && a->requests) rc = calibrate(a, &o, items, a->out);
  towerrt_items_free(items);
  return rc;
}
