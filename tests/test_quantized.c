/* int8 and bf16 item stores end to end: towerrt_items_quantize, loading
 * (with its checks), and scoring by id against an oracle that computes the
 * same quantized arithmetic in double precision from the store's bytes; plus
 * the distance to the f32 scores, and corrupt quantized stores.
 * Quantized models (towerrt_model_quantize: the user tower in bf16 or s8):
 * scores against the scalar kernels (the oracle) and the f32 model, the
 * f32 item store still accepted, and corrupt quantized files refused.
 * usage: test_quantized FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/item_store.h"
#include "runtime/quantize_heads.h"
#include "tools/text_input.h"
#include "runtime/tower_exec.h"
#include "test_util.h"
#include "towerrt.h"

static char *tmp_path(void) {
  char *p = malloc(64);
  strcpy(p, "/tmp/towerrt_quant_XXXXXX");
  int fd = mkstemp(p);
  if (fd >= 0) close(fd);
  return p;
}

static float bf16_value(uint16_t v) {
  uint32_t u = (uint32_t)v << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* The logit the quantized arithmetic must give, in double. */
static double oracle_logit(const towerrt_model *m, const towerrt_items *it, const float *user, size_t n_user, uint32_t row) {
  size_t H = it->heads, p = it->head_dim;
  const unsigned char *base = (const unsigned char *)it->heads_data + (size_t)row * it->row_stride;
  uint8_t *uq = malloc(n_user * p);
  int32_t *zp = malloc(n_user * sizeof *zp);
  float *us = malloc(n_user * sizeof *us);
  trt_quantize_user_u8(user, n_user, p, m->kernels.u8_max, uq, zp, us);
  double score = 0;
  for (size_t u = 0; u < n_user; u++) {
    double best = -INFINITY;
    for (size_t h = 0; h < H; h++) {
      double d = 0;
      for (size_t i = 0; i < p; i++) {
        if (it->dtype == TOWERRT_PRECISION_INT8)
          d += ((double)uq[u * p + i] - zp[u]) * (double)((const int8_t *)base)[h * p + i];
        else
          d += (double)bf16_value(trt_f32_to_bf16(user[u * p + i])) * bf16_value(((const uint16_t *)base)[h * p + i]);
      }
      if (it->dtype == TOWERRT_PRECISION_INT8) d *= (double)us[u] * it->scales[row];
      best = fmax(best, d);
    }
    score += best;
  }
  free(uq), free(zp), free(us);
  return score + m->out_bias;
}

static void check_store(const char *dir, const towerrt_model *m, const char *f32_path, towerrt_precision prec, uint64_t *seed) {
  towerrt_items *f32 = NULL, *q = NULL;
  char *qpath = tmp_path();
  CHECK(towerrt_items_load(f32_path, NULL, &f32) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_items_quantize(f32, prec, qpath) == TOWERRT_OK, "quantize: %s", towerrt_last_error());
  CHECK(towerrt_items_load(qpath, NULL, &q) == TOWERRT_OK, "load quantized: %s", towerrt_last_error());
  CHECK(towerrt_items_quantize(q, prec, "/tmp/towerrt_never.twi") == TOWERRT_ERR_UNSUPPORTED, "re-quantizing a quantized store");
  if (!f32 || !q) goto done;
  CHECK(towerrt_items_precision(q) == prec, "precision %d", (int)towerrt_items_precision(q));
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = 1;
  towerrt_session *sq = NULL, *sf = NULL;
  CHECK(towerrt_session_create(m, q, &o, &sq) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_session_create(m, f32, &o, &sf) == TOWERRT_OK, "%s", towerrt_last_error());
  /* Random users from the request file's first user, random candidates. */
  char path[512];
  snprintf(path, sizeof path, "%s/requests_ids.txt", dir);
  FILE *f = fopen(path, "r");
  trt_text_reader r;
  trt_request rq = {0};
  int done = 0;
  double worst_oracle = 0, worst_f32 = 0;
  if (f && sq && sf && trt_text_open(&r, f, path, "towerrt-requests", m) == TOWERRT_OK) {
    while (trt_text_next_request(&r, &rq, &done) == TOWERRT_OK && !done) {
      size_t k = rq.items.n_keys;
      float *got = malloc(k * sizeof *got), *ref = malloc(k * sizeof *ref);
      towerrt_features user = {rq.user.ids, rq.user.n_ids, rq.user.dense, rq.user.n_dense};
      CHECK(towerrt_score(sq, &user, rq.items.keys, k, got) == TOWERRT_OK, "%s", towerrt_session_error(sq));
      CHECK(towerrt_score(sf, &user, rq.items.keys, k, ref) == TOWERRT_OK, "%s", towerrt_session_error(sf));
      /* the f32 user heads, through the same internal path the session runs */
      size_t n_user = (size_t)__builtin_popcount(towerrt_model_fe_layer_mask(m)) * m->heads_user;
      void *arena = aligned_alloc(64, trt_workspace_bytes(m));
      trt_workspace ws;
      trt_workspace_init(m, arena, &ws);
      trt_user_forward(m, &m->user, &ws, user.ids, user.dense, towerrt_model_fe_layer_mask(m), ws.user_heads);
      for (size_t c = 0; c < k; c++) {
        double want = oracle_logit(m, q, ws.user_heads, n_user, trt_items_find(q, rq.items.keys[c]));
        double err = fabs(got[c] - want) / (fabs(want) + 1e-3);
        worst_oracle = fmax(worst_oracle, err);
        CHECK(err < 1e-4, "%s cand %zu: towerrt %.9g, quantized oracle %.9g", prec == TOWERRT_PRECISION_INT8 ? "int8" : "bf16", c,
              (double)got[c], want);
        worst_f32 = fmax(worst_f32, fabs(got[c] - ref[c]) / (fabs(ref[c]) + 1.0));
      }
      free(arena), free(got), free(ref);
    }
    trt_text_close(&r);
  }
  /* Documented tolerance against f32 logits (docs/quantization.md). */
  double tol = prec == TOWERRT_PRECISION_INT8 ? 5e-2 : 1e-2;
  CHECK(worst_f32 < tol, "%s vs f32: relative logit error %.3g above %.3g", prec == TOWERRT_PRECISION_INT8 ? "int8" : "bf16", worst_f32, tol);
  printf("  %-4s oracle max rel err %.2g, vs f32 max rel logit err %.3g\n", prec == TOWERRT_PRECISION_INT8 ? "int8" : "bf16",
         worst_oracle, worst_f32);
  (void)seed;
  trt_request_free(&rq);
  if (f) fclose(f);
  towerrt_session_free(sq);
  towerrt_session_free(sf);
done:
  towerrt_items_free(q);
  towerrt_items_free(f32);
  remove(qpath);
  free(qpath);
}

/* A corrupt int8 store: a column sum that does not match, a negative scale. */
static void check_corrupt_s8(const char *f32_path) {
  towerrt_items *f32 = NULL;
  char *qpath = tmp_path();
  if (towerrt_items_load(f32_path, NULL, &f32) || towerrt_items_quantize(f32, TOWERRT_PRECISION_INT8, qpath)) {
    CHECK(0, "setup: %s", towerrt_last_error());
    return;
  }
  size_t n;
  unsigned char *bytes = test_read_file(qpath, &n);
  uint32_t ns = trt_rd32(bytes + 32);
  for (int variant = 0; variant < 2; variant++) {
    unsigned char *b = malloc(n);
    memcpy(b, bytes, n);
    for (uint32_t i = 0; i < ns; i++) {
      unsigned char *e = b + 64 + 32 * i;
      uint32_t kind = trt_rd32(e);
      uint64_t off = trt_rd64(e + 8);
      if (variant == 0 && kind == TRT_SEC_ITEM_COLSUMS) b[off] ^= 1;
      if (variant == 1 && kind == TRT_SEC_ITEM_SCALES) b[off + 3] |= 0x80; /* sign bit of row 0's scale */
    }
    test_fix_crcs(b, n);
    test_write_file(qpath, b, n);
    towerrt_items *q = NULL;
    towerrt_status st = towerrt_items_load(qpath, NULL, &q);
    towerrt_status want = variant == 0 ? TOWERRT_ERR_FORMAT : TOWERRT_ERR_NONFINITE;
    CHECK(st == want, "corrupt s8 variant %d: %s (%s)", variant, towerrt_status_name(st), towerrt_last_error());
    CHECK(strstr(towerrt_last_error(), variant == 0 ? "column sum" : "scale"), "message: %s", towerrt_last_error());
    towerrt_items_free(q);
    free(b);
  }
  free(bytes);
  towerrt_items_free(f32);
  remove(qpath);
  free(qpath);
}

/* ---- quantized models --------------------------------------------------- */

/* Scores every request of DIR with the f32 model and with the quantized one
 * (the machine's kernels and the scalar oracle), all on the f32 store. */
static void compare_model(const trt_request *reqs, size_t n_reqs, const towerrt_model *m, const char *qpath, const char *store,
                          const char *what, double tol_f32) {
  towerrt_options o, os;
  towerrt_options_init(&o);
  o.output_logits = 1;
  os = o;
  os.isa = "scalar";
  towerrt_model *q = NULL, *qs = NULL;
  towerrt_items *items = NULL;
  towerrt_session *sf = NULL, *sq = NULL, *ss = NULL;
  CHECK(towerrt_model_load(qpath, &o, &q) == TOWERRT_OK, "%s: load: %s", what, towerrt_last_error());
  CHECK(towerrt_model_load(qpath, &os, &qs) == TOWERRT_OK, "%s: load (scalar): %s", what, towerrt_last_error());
  CHECK(towerrt_items_load(store, NULL, &items) == TOWERRT_OK, "%s", towerrt_last_error());
  /* the item tower is untouched, so the f32 model's store fits the quantized model */
  CHECK(towerrt_session_create(m, items, &o, &sf) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(q && towerrt_session_create(q, items, &o, &sq) == TOWERRT_OK, "%s: f32 store refused: %s", what, towerrt_last_error());
  CHECK(qs && towerrt_session_create(qs, items, &os, &ss) == TOWERRT_OK, "%s", towerrt_last_error());
  double worst_oracle = 0, worst_f32 = 0;
  for (size_t i = 0; i < n_reqs && sf && sq && ss; i++) {
    const trt_request *rq = &reqs[i];
    size_t k = rq->items.n_keys;
    float *ref = malloc(k * sizeof *ref), *got = malloc(k * sizeof *got), *orc = malloc(k * sizeof *orc);
    towerrt_features user = {rq->user.ids, rq->user.n_ids, rq->user.dense, rq->user.n_dense};
    CHECK(towerrt_score(sf, &user, rq->items.keys, k, ref) == TOWERRT_OK, "%s", towerrt_session_error(sf));
    CHECK(towerrt_score(sq, &user, rq->items.keys, k, got) == TOWERRT_OK, "%s", towerrt_session_error(sq));
    CHECK(towerrt_score(ss, &user, rq->items.keys, k, orc) == TOWERRT_OK, "%s", towerrt_session_error(ss));
    for (size_t c = 0; c < k; c++) {
      double e_oracle = fabs(got[c] - orc[c]) / (fabs(orc[c]) + 1.0); /* logits near 0: f32 noise */
      double e_f32 = fabs(got[c] - ref[c]) / (fabs(ref[c]) + 1.0);
      worst_oracle = fmax(worst_oracle, e_oracle);
      worst_f32 = fmax(worst_f32, e_f32);
      CHECK(e_oracle < 1e-5, "%s cand %zu: %.9g, scalar kernels %.9g", what, c, (double)got[c], (double)orc[c]);
    }
    free(ref), free(got), free(orc);
  }
  CHECK(worst_f32 < tol_f32, "%s vs the f32 model: relative logit error %.3g above %.3g", what, worst_f32, tol_f32);
  printf("  %-18s vs scalar kernels max rel err %.2g, vs f32 max rel logit err %.3g\n", what, worst_oracle, worst_f32);
  towerrt_session_free(sf), towerrt_session_free(sq), towerrt_session_free(ss);
  towerrt_items_free(items);
  towerrt_model_free(q), towerrt_model_free(qs);
}

/* The TENSORS record named NAME (exactly, or ending with the suffix if
 * NAME starts with '*'), or NULL. */
static unsigned char *tensor_record(unsigned char *file, const char *name, unsigned char **data) {
  uint32_t ns = trt_rd32(file + 32);
  unsigned char *tensors = NULL, *dsec = NULL;
  for (uint32_t i = 0; i < ns; i++) {
    unsigned char *e = file + 64 + 32 * i;
    if (trt_rd32(e) == TRT_SEC_TENSORS) tensors = file + trt_rd64(e + 8);
    if (trt_rd32(e) == TRT_SEC_DATA) dsec = file + trt_rd64(e + 8);
  }
  if (!tensors || !dsec) return NULL;
  for (uint32_t i = 0; i < trt_rd32(tensors); i++) {
    unsigned char *rec = tensors + 8 + 128 * (size_t)i;
    const char *n = (const char *)rec;
    size_t ln = strlen(n), lw = strlen(name + 1);
    if (name[0] == '*' ? (ln >= lw && !strcmp(n + ln - lw, name + 1)) : !strcmp(n, name)) {
      *data = dsec + trt_rd64(rec + 104);
      return rec;
    }
  }
  return NULL;
}

/* Corrupt quantized models: each must be refused with the status and a
 * message naming what is wrong. */
static void check_corrupt_models(const char *q8, const char *q8_static) {
  static const struct {
    int static_file;
    const char *tensor, *msg;
    towerrt_status want;
  } cases[] = {
      {0, "*.scale", "scales must be > 0", TOWERRT_ERR_FORMAT},       /* a zero per-channel scale */
      {1, "*.input_quant", "zero point", TOWERRT_ERR_FORMAT},         /* zero point 300 */
      {0, "*.s8", "scale tensor", TOWERRT_ERR_FORMAT},                /* scale index dropped */
      {0, "*.s8", "META quantization", TOWERRT_ERR_FORMAT},           /* one layer relabelled u8 -> see below */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t n;
    unsigned char *b = test_read_file(cases[c].static_file ? q8_static : q8, &n), *data = NULL;
    unsigned char *rec = b ? tensor_record(b, cases[c].tensor, &data) : NULL;
    CHECK(rec != NULL, "case %zu: no tensor %s", c, cases[c].tensor);
    if (!rec) {
      free(b);
      continue;
    }
    float v;
    switch (c) {
      case 0: v = 0.0f; memcpy(data, &v, 4); break;
      case 1: v = 300.0f; memcpy(data + 4, &v, 4); break;
      case 2: memset(rec + 120, 0xFF, 4); break;
      default: rec[80] = TRT_DTYPE_BF16; memset(rec + 120, 0xFF, 4); /* bf16 needs 2 bytes per value: shape error or META */
    }
    test_fix_crcs(b, n);
    char *path = tmp_path();
    test_write_file(path, b, n);
    towerrt_model *m = NULL;
    towerrt_status st = towerrt_model_load(path, NULL, &m);
    if (c < 3) {
      CHECK(st == cases[c].want, "corrupt model %zu: %s (%s)", c, towerrt_status_name(st), towerrt_last_error());
      CHECK(strstr(towerrt_last_error(), cases[c].msg) != NULL, "corrupt model %zu message: %s", c, towerrt_last_error());
    } else {
      CHECK(st != TOWERRT_OK && m == NULL, "relabelled s8 tensor loaded");
    }
    towerrt_model_free(m);
    remove(path);
    free(path);
    free(b);
  }
}

static void check_quantized_models(const char *dir, const towerrt_model *m, const char *store, int corrupt) {
  trt_request *reqs = NULL;
  size_t n_users = test_read_requests(m, dir, "requests_ids.txt", &reqs);
  CHECK(n_users > 0, "%s: no requests", dir);
  trt_rows users;
  towerrt_features cal = test_users_of(reqs, n_users, &users);
  char *qb = tmp_path(), *q8 = tmp_path(), *q8s = tmp_path(), *again = tmp_path();
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_BF16, NULL, 0, qb) == TOWERRT_OK, "bf16: %s", towerrt_last_error());
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, NULL, 0, q8) == TOWERRT_OK, "int8: %s", towerrt_last_error());
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, &cal, n_users, q8s) == TOWERRT_OK, "int8 static: %s", towerrt_last_error());
  compare_model(reqs, n_users, m, qb, store, "bf16 model", 2e-2);
  compare_model(reqs, n_users, m, q8, store, "int8 model", 1e-1);
  compare_model(reqs, n_users, m, q8s, store, "int8 static model", 1e-1);
  /* API misuse */
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_F32, NULL, 0, again) == TOWERRT_ERR_INVALID_ARGUMENT, "f32 'quantization'");
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, NULL, 0, NULL) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL path");
  towerrt_features short_users = cal;
  short_users.n_ids = cal.n_ids ? cal.n_ids - 1 : 0;
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, &short_users, n_users, again) == TOWERRT_ERR_SHAPE, "short calibration: %s",
        towerrt_last_error());
  towerrt_model *qm = NULL;
  if (towerrt_model_load(q8, NULL, &qm) == TOWERRT_OK) {
    CHECK(towerrt_model_quantize(qm, TOWERRT_PRECISION_BF16, NULL, 0, again) == TOWERRT_ERR_INVALID_ARGUMENT, "re-quantizing: %s",
          towerrt_last_error());
    towerrt_model_free(qm);
  }
  if (corrupt) check_corrupt_models(q8, q8s);
  remove(qb), remove(q8), remove(q8s), remove(again);
  free(qb), free(q8), free(q8s), free(again);
  trt_rows_free(&users);
  test_free_requests(reqs, n_users);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  uint64_t seed = test_seed("test_quantized");
  for (int i = 1; i < argc; i++) {
    printf("fixture %s\n", argv[i]);
    char mp[512];
    snprintf(mp, sizeof mp, "%s/model.twr", argv[i]);
    towerrt_model *m = NULL;
    char *store = tmp_path();
    CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
    if (m && test_build_store(m, argv[i], store) == TOWERRT_OK) {
      check_store(argv[i], m, store, TOWERRT_PRECISION_INT8, &seed);
      check_store(argv[i], m, store, TOWERRT_PRECISION_BF16, &seed);
      if (i == 1) check_corrupt_s8(store);
      check_quantized_models(argv[i], m, store, i == 1);
    }
    towerrt_model_free(m);
    remove(store);
    free(store);
  }
  return test_finish("test_quantized");
}
