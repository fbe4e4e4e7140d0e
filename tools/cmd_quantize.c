/* towerrt quantize: an f32 item store -> bf16 or int8, and with a
 * calibration file of real requests, how much the scores move. */
#include <stdlib.h>
#include <string.h>

#include "text_input.h"
#include "tools/cli.h"
#include "tools/rank_agreement.h"

/* Scores one by-id request with both sessions and adds it to the report. */
static towerrt_status compare_request(towerrt_session *ref, towerrt_session *q, const trt_request *rq, rank_report *rr) {
  size_t k = rq->items.n_keys;
  float *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
  towerrt_features user = {rq->user.ids, rq->user.n_ids, rq->user.dense, rq->user.n_dense};
  towerrt_status st = (!a || !b) ? TOWERRT_ERR_NO_MEMORY : towerrt_score(ref, &user, rq->items.keys, k, a);
  if (!st) st = towerrt_score(q, &user, rq->items.keys, k, b);
  if (!st && rank_report_add(rr, a, b, k)) st = TOWERRT_ERR_NO_MEMORY;
  free(a), free(b);
  return st;
}

/* Both sides of a comparison: the f32 reference and its quantized twin. */
typedef struct compare_pair {
  const char *ref_model, *q_model, *ref_items, *q_items;
} compare_pair;

/* Scores every by-id request of the calibration file with both sides. */
static int compare_all(const cli_args *a, const towerrt_options *o, const compare_pair *cp) {
  towerrt_model *m = NULL, *qm = NULL;
  towerrt_items *f32 = NULL, *q = NULL;
  towerrt_session *s_ref = NULL, *s_q = NULL;
  towerrt_status st = towerrt_model_load(cp->ref_model, o, &m);
  if (!st) st = towerrt_model_load(cp->q_model, o, &qm);
  if (!st) st = towerrt_items_load(cp->ref_items, o, &f32);
  if (!st) st = towerrt_items_load(cp->q_items, o, &q);
  if (!st) st = towerrt_session_create(m, f32, o, &s_ref);
  if (!st) st = towerrt_session_create(qm, q, o, &s_q);
  FILE *f = st ? NULL : open_in(a->requests);
  trt_text_reader r;
  trt_request rq = {0};
  rank_report rr = {0};
  int done = 0, text_failed = 0;
  if (f) text_failed = (st = trt_text_open(&r, f, a->requests, "towerrt-requests", m)) != TOWERRT_OK;
  while (f && !st && !done) {
    text_failed = (st = trt_text_next_request(&r, &rq, &done)) != TOWERRT_OK;
    if (!st && !done && rq.by_id) st = compare_request(s_ref, s_q, &rq, &rr);
  }
  const char *msg = text_failed ? trt_text_error() : s_q && *towerrt_session_error(s_q) ? towerrt_session_error(s_q) : NULL;
  int rc = st ? fail(st, msg) : 0;
  if (!st) rank_report_print(&rr, stdout);
  if (f) {
    trt_text_close(&r);
    if (f != stdin) fclose(f);
  }
  trt_request_free(&rq);
  towerrt_session_free(s_ref);
  towerrt_session_free(s_q);
  towerrt_items_free(f32);
  towerrt_items_free(q);
  towerrt_model_free(m);
  towerrt_model_free(qm);
  return rc;
}

/* The users of every request in the calibration file, as one block of rows. */
static towerrt_status read_users(const char *path, const towerrt_model *m, trt_rows *users, const char **msg) {
  FILE *f = open_in(path);
  if (!f) return TOWERRT_ERR_IO;
  *msg = trt_text_error(); /* every failure below is the reader's */
  trt_text_reader r;
  trt_request rq = {0};
  int done = 0;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-requests", m);
  int opened = !st;
  while (!st && !done) {
    st = trt_text_next_request(&r, &rq, &done);
    if (st || done) break;
    st = trt_rows_append(users, &rq.user);
  }
  if (opened) trt_text_close(&r);
  if (f != stdin) fclose(f);
  trt_request_free(&rq);
  return st;
}

static int quantize_model(const cli_args *a, const towerrt_options *o, towerrt_precision prec) {
  towerrt_model *m = NULL;
  trt_rows users = {0};
  towerrt_status st = towerrt_model_load(a->model, o, &m);
  if (a->static_inputs && (!a->requests || prec != TOWERRT_PRECISION_INT8)) {
    fprintf(stderr, "towerrt quantize: --static-input-scales needs --precision int8 and --calibration REQUESTS\n");
    towerrt_model_free(m);
    return EXIT_USAGE;
  }
  const char *msg = NULL; /* NULL: the runtime's last error */
  if (!st && a->static_inputs) st = read_users(a->requests, m, &users, &msg);
  if (!st) msg = NULL;
  towerrt_features f = {users.ids, users.n_ids, users.dense, users.n_dense};
  if (!st) st = towerrt_model_quantize(m, prec, users.n_rows ? &f : NULL, users.n_rows, a->out);
  int rc = st ? fail(st, msg) : 0;
  if (!st)
    fprintf(stderr, "towerrt: wrote %s with its user tower in %s (%s) to %s\n", a->model, a->precision,
            prec == TOWERRT_PRECISION_BF16 ? "bf16 weights"
            : users.n_rows ? "s8 weights, inputs calibrated on the requests' users"
                           : "s8 weights, inputs quantized per request",
            a->out);
  if (!st && users.n_rows) fprintf(stderr, "towerrt: calibrated on %zu users from %s\n", users.n_rows, a->requests);
  trt_rows_free(&users);
  towerrt_model_free(m);
  if (!st && a->requests && a->items) {
    compare_pair cp = {a->model, a->out, a->items, a->items};
    rc = compare_all(a, o, &cp);
  }
  return rc;
}

static int usage(int help) {
  puts("usage: towerrt quantize --items F32.twi --precision int8|bf16 --out OUT.twi\n"
       "                        [--no-centre | --centre none|mean|row-mean]\n"
       "                        [--model M.twr --calibration REQUESTS.txt]\n"
       "       towerrt quantize --model M.twr --precision int8|bf16 --out OUT.twr\n"
       "                        [--calibration REQUESTS.txt [--items S.twi]]\n"
       "                        [--static-input-scales]\n"
       "  The first form rewrites an f32 item store at a lower precision; with a\n"
       "  model and a file of real requests (candidates by id), it scores them with\n"
       "  both stores and reports the rank correlation and the largest change.\n"
       "  int8: each item's heads are centred first (minus the item's mean head,\n"
       "  kept in f32 and added back exactly at scoring), but for shards and\n"
       "  one-head (two-tower) stores; --no-centre rounds them as they are;\n"
       "  --centre mean subtracts one catalog-mean head instead (docs/accuracy.md).\n"
       "  The second (no --items, or --out ending in .twr) rewrites a model's user\n"
       "  tower in bf16 or int8 (per-channel weight scales). int8 layer inputs are\n"
       "  quantized per request from their own range, or, with\n"
       "  --static-input-scales, with fixed scales calibrated on the users of the\n"
       "  requests. With --calibration and --items, both models score the\n"
       "  requests on that store and the change is reported.\n"
       "  docs/quantization.md describes both schemes.");
  return help ? 0 : EXIT_USAGE;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && !strcmp(s + n - t, tail);
}

/* The library's default (docs/quantization.md "Centred stores") unless --no-centre. */
static towerrt_centring default_centring(const cli_args *a, const towerrt_items *items, towerrt_precision prec, const char **why_not) {
  if (a->centre) return !strcmp(a->centre, "mean") ? TOWERRT_CENTRING_MEAN
                        : !strcmp(a->centre, "row-mean") ? TOWERRT_CENTRING_ROW_MEAN : TOWERRT_CENTRING_NONE;
  return a->no_centre ? TOWERRT_CENTRING_NONE : towerrt_items_default_centring(items, prec, why_not);
}

static int centre_ok(const char *c) { return !c || !strcmp(c, "none") || !strcmp(c, "mean") || !strcmp(c, "row-mean"); }

int cmd_quantize(const cli_args *a) {
  int model_mode = a->model && a->out && (!a->items || ends_with(a->out, ".twr"));
  if (a->help) return usage(1);
  if (!model_mode && (!a->items || (a->requests && !a->model))) {
    fprintf(stderr, "towerrt quantize: %s (towerrt quantize --help)\n",
            !a->items ? "missing --items (a store) or --model (a model)" : "--calibration with --items needs --model");
    return EXIT_USAGE;
  }
  towerrt_precision prec;
  if (towerrt_precision_parse(a->precision, &prec) || prec == TOWERRT_PRECISION_F32) {
    fprintf(stderr, "towerrt quantize: --precision wants int8 or bf16 (got '%s') (towerrt quantize --help)\n", a->precision);
    return EXIT_USAGE;
  }
  towerrt_options o;
  options_from(a, &o);
  if (!centre_ok(a->centre) || (a->centre && a->no_centre)) {
    fprintf(stderr, "towerrt quantize: --centre wants none, mean or row-mean (got '%s'), and not with --no-centre (towerrt quantize --help)\n",
            a->centre ? a->centre : "");
    return EXIT_USAGE;
  }
  if (model_mode && (a->no_centre || a->centre)) {
    fprintf(stderr, "towerrt quantize: --no-centre / --centre apply to item stores (--items), not to a model\n");
    return EXIT_USAGE;
  }
  if (model_mode) return quantize_model(a, &o, prec);
  towerrt_items *items = NULL;
  towerrt_status st = towerrt_items_load(a->items, &o, &items);
  const char *why_not = NULL;
  towerrt_centring centring = st ? TOWERRT_CENTRING_NONE : default_centring(a, items, prec, &why_not);
  if (!st) st = towerrt_items_quantize_centred(items, prec, centring, a->out);
  int rc = st ? fail(st, NULL) : 0;
  if (!st)
    fprintf(stderr, "towerrt: wrote %zu %s items to %s, %s%s\n", towerrt_items_count(items), a->precision, a->out,
            centring == TOWERRT_CENTRING_ROW_MEAN ? "each item centred on its mean head"
            : centring ? "centred on the catalog-mean head" : "not centred", why_not ? why_not : "");
  towerrt_items_free(items);
  if (!st && a->requests) {
    compare_pair cp = {a->model, a->model, a->items, a->out};
    rc = compare_all(a, &o, &cp);
  }
  return rc;
}
