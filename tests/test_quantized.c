/* int8 and bf16 item stores end to end: towerrt_items_quantize, loading
 * (with its checks), and scoring by id against an oracle that computes the
 * same quantized arithmetic in double precision from the store's bytes; plus
 * the distance to the f32 scores, and corrupt quantized stores.
 * usage: test_quantized FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/item_store.h"
#include "runtime/quantize_heads.h"
#include "runtime/text_input.h"
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
  trt_quantize_user_u8(user, n_user, p, uq, zp, us);
  double score = 0;
  for (size_t u = 0; u < n_user; u++) {
    double best = -INFINITY;
    for (size_t h = 0; h < H; h++) {
      double d = 0;
      for (size_t i = 0; i < p; i++) {
        if (it->dtype == TRT_ITEMS_S8)
          d += ((double)uq[u * p + i] - zp[u]) * (double)((const int8_t *)base)[h * p + i];
        else
          d += (double)bf16_value(trt_f32_to_bf16(user[u * p + i])) * bf16_value(((const uint16_t *)base)[h * p + i]);
      }
      if (it->dtype == TRT_ITEMS_S8) d *= (double)us[u] * it->scales[row];
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
    }
    towerrt_model_free(m);
    remove(store);
    free(store);
  }
  return test_finish("test_quantized");
}
