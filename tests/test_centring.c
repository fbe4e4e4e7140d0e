/* Centred item stores (docs/quantization.md "Centred stores"): the store
 * keeps a centre m (MEAN: the catalog-mean head, ITEM_CENTRE; ROW_MEAN:
 * each item's mean head, ROW_CENTRES) and every head minus it; the session
 * adds T = sum_u <u, m> to the MaxSim sums, since
 * max_h <u, m + r_h> = <u, m> + max_h <u, r_h>. Every check runs for both.
 *
 *  1. exactness of the term: a centred f32 store scores what the plain f32
 *     store scores, within a bound derived from the float arithmetic of both
 *     paths (below), and T is large enough next to that bound that a
 *     missing or wrong term fails;
 *  2. centred bf16 / int8 stores against an oracle that computes, in double,
 *     the kernels' quantized arithmetic on the centred bytes plus T (run
 *     under every kernel set: ctest centring_<isa>);
 *  3. bad centring sections refused with a clear error (wrong length, NaN,
 *     Inf, a flipped byte under the CRC, both sections, the header version
 *     not 2 exactly when centred), a family that cannot use a
 *     centred store refused, merges / deltas / compaction refused.
 * usage: test_centring GOLDEN_DIR... [--family DSSM_DIR] */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/container.h"
#include "runtime/container_write.h"
#include "runtime/item_store.h"
#include "runtime/quantize_heads.h"
#include "runtime/tower_exec.h"
#include "test_util.h"
#include "towerrt.h"

static const double k_u = 0x1p-24; /* unit roundoff of f32 */

static double gamma_n(double n) { return n * k_u / (1.0 - n * k_u); }

static char *tmp_path(void) {
  char *p = malloc(64);
  strcpy(p, "/tmp/towerrt_centre_XXXXXX");
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

/* The f32 user heads of a request, as the session computes them. */
static float *user_heads(const towerrt_model *m, const trt_request *rq, void **arena) {
  *arena = aligned_alloc(64, trt_workspace_bytes(m));
  trt_workspace ws;
  trt_workspace_init(m, *arena, &ws);
  trt_user_forward(m, &m->user, &ws, rq->user.ids, rq->user.dense, towerrt_model_fe_layer_mask(m), ws.user_heads);
  return ws.user_heads;
}

static size_t n_user_heads(const towerrt_model *m) {
  return (size_t)__builtin_popcount(towerrt_model_fe_layer_mask(m)) * m->heads_user;
}

static double centre_term(const float *user, size_t n_user, const float *centre, size_t p) {
  double t = 0;
  for (size_t i = 0; i < n_user * p; i++) t += (double)user[i] * centre[i % p];
  return t;
}

/* The centre of a store's row: the catalog mean, or the row's own. */
static const float *centre_of(const towerrt_items *it, uint32_t row) {
  return it->centre ? it->centre : it->row_centres + (size_t)row * it->head_dim;
}

static const char *mode_name(towerrt_centring mode) { return mode == TOWERRT_CENTRING_MEAN ? "mean" : "row-mean"; }

static const float *f32_row(const towerrt_items *it, uint32_t row) {
  return (const float *)(const void *)((const unsigned char *)it->heads_data + (size_t)row * it->row_stride);
}

/* 1. The bound. Both paths compute S = sum_u max_h <u, x_h> (x = the f32
 * heads, r = fl(x - m) the centred ones):
 *   plain:   fl(sum_u fl(max_h fl<u, x_h>)) + bias
 *   centred: fl(fl(sum_u max_h fl<u, r_h>) + fl(T)) + bias
 * A p-term dot product in any order (FMA or not) is within
 * gamma_p sum_i |u_i| |y_i| of the exact one; r_hi is within u |x_hi - m_i|
 * <= u (|x_hi| + |m_i|) of x_hi - m_i; max is 1-Lipschitz, so a max of
 * perturbed values moves by at most the largest perturbation; summing n
 * values adds gamma_n sum |values|; T (double, rounded once) adds u |T|, and
 * the two last additions (+ T, + bias) u |result| each. Hence, per
 * candidate, with a_u = max_h sum_i |u_i| (|x_hi| + |r_hi| + |m_i|):
 *   |centred - plain| <= gamma_{p+1} sum_u a_u x 2 + gamma_n (sum_u |M_u^c|
 *                        + sum_u |M_u|) + u |T| + 2 u (|S_c| + |S|) + slack
 * (M_u: the two paths' maxima; the slack of 1e-30 covers double rounding
 * of the bound itself). */
static double exactness_bound(const float *user, size_t n_user, const float *x, const float *r, const float *m, size_t H, size_t p,
                              double T, double S) {
  double a = 0, sum_mc = 0, sum_m = 0;
  for (size_t u = 0; u < n_user; u++) {
    double a_u = 0, mc = -INFINITY, mx = -INFINITY;
    for (size_t h = 0; h < H; h++) {
      double w = 0, dc = 0, dx = 0;
      for (size_t i = 0; i < p; i++) {
        double uv = fabs((double)user[u * p + i]);
        w += uv * (fabs((double)x[h * p + i]) + fabs((double)r[h * p + i]) + fabs((double)m[i]));
        dc += (double)user[u * p + i] * r[h * p + i];
        dx += (double)user[u * p + i] * x[h * p + i];
      }
      a_u = fmax(a_u, w);
      mc = fmax(mc, dc);
      mx = fmax(mx, dx);
    }
    a += a_u;
    sum_mc += fabs(mc);
    sum_m += fabs(mx);
  }
  double bound = 2 * gamma_n((double)p + 1) * a + gamma_n((double)n_user) * (sum_mc + sum_m) + k_u * fabs(T) + 4 * k_u * fabs(S);
  return bound * (1 + 1e-6) + 1e-30;
}

static void check_exactness(const char *dir, const towerrt_model *m, towerrt_items *f32, towerrt_centring mode, const char *cpath) {
  towerrt_items *c = NULL;
  CHECK(towerrt_items_quantize_centred(f32, TOWERRT_PRECISION_F32, mode, cpath) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_items_load(cpath, NULL, &c) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!c) return;
  size_t dim = 0;
  int has_m = towerrt_items_centre(c, &dim) != NULL;
  CHECK(towerrt_items_centring(c) == mode && has_m == (mode == TOWERRT_CENTRING_MEAN) && dim == m->head_dim, "centring not reported");
  CHECK(towerrt_items_centring(f32) == TOWERRT_CENTRING_NONE && !towerrt_items_centre(f32, NULL), "a plain store reported centred");
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = 1;
  towerrt_session *sf = NULL, *sc = NULL;
  CHECK(towerrt_session_create(m, f32, &o, &sf) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_session_create(m, c, &o, &sc) == TOWERRT_OK, "%s", towerrt_last_error());
  trt_request *reqs = NULL;
  size_t n_reqs = test_read_requests(m, dir, "requests_ids.txt", &reqs);
  double worst = 0, max_term_ratio = 0;
  size_t H = m->heads_item, p = m->head_dim, n_user = n_user_heads(m);
  for (size_t q = 0; q < n_reqs && sf && sc; q++) {
    size_t k = reqs[q].items.n_keys;
    float *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    towerrt_features user = {reqs[q].user.ids, reqs[q].user.n_ids, reqs[q].user.dense, reqs[q].user.n_dense};
    CHECK(towerrt_score(sf, &user, reqs[q].items.keys, k, a) == TOWERRT_OK, "%s", towerrt_session_error(sf));
    CHECK(towerrt_score(sc, &user, reqs[q].items.keys, k, b) == TOWERRT_OK, "%s", towerrt_session_error(sc));
    void *arena;
    const float *u = user_heads(m, &reqs[q], &arena);
    for (size_t j = 0; j < k; j++) {
      uint32_t row = trt_items_find(f32, reqs[q].items.keys[j]), crow = trt_items_find(c, reqs[q].items.keys[j]);
      double T = centre_term(u, n_user, centre_of(c, crow), p);
      double B = exactness_bound(u, n_user, f32_row(f32, row), f32_row(c, crow), centre_of(c, crow), H, p, T, a[j]);
      double d = fabs((double)a[j] - b[j]);
      CHECK(d <= B, "request %zu cand %zu: centred %.9g, plain %.9g: |diff| %.3g > bound %.3g", q, j, (double)b[j], (double)a[j], d, B);
      worst = fmax(worst, d / B);
      max_term_ratio = fmax(max_term_ratio, fabs(T) / B);
    }
    free(arena), free(a), free(b);
  }
  /* not vacuous: leaving T out (or adding it twice) would break the bound */
  CHECK(max_term_ratio > 100, "the centre term (%.3g bounds) is too small to test here", max_term_ratio);
  printf("  %-8s centred f32 vs f32: worst |diff| / bound %.3g; |T| up to %.3g bounds\n", mode_name(mode), worst, max_term_ratio);
  test_free_requests(reqs, n_reqs);
  towerrt_session_free(sf);
  towerrt_session_free(sc);
  towerrt_items_free(c);
}

/* 2. The quantized arithmetic on the centred bytes, in double, plus T.
 * *scale: the sum of the magnitudes of the score's parts (each user head's
 * maximum, T, the bias): the kernels' float rounding is relative to those,
 * and the centred score may be a small difference of large parts. */
static double oracle_logit(const towerrt_model *m, const towerrt_items *it, const float *user, size_t n_user, uint32_t row,
                           double *scale) {
  size_t H = it->heads, p = it->head_dim;
  const unsigned char *base = (const unsigned char *)it->heads_data + (size_t)row * it->row_stride;
  uint8_t *uq = malloc(n_user * p);
  int32_t *zp = malloc(n_user * sizeof *zp);
  float *us = malloc(n_user * sizeof *us);
  trt_quantize_user_u8(user, n_user, p, m->kernels.u8_max, uq, zp, us);
  double score = 0, T = centre_term(user, n_user, centre_of(it, row), p);
  *scale = fabs(T) + fabs((double)m->out_bias);
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
    *scale += fabs(best);
  }
  free(uq), free(zp), free(us);
  return score + T + m->out_bias;
}

static void check_quantized(const char *dir, const towerrt_model *m, towerrt_items *f32, towerrt_precision prec, towerrt_centring mode,
                            const char *qpath) {
  const char *name = prec == TOWERRT_PRECISION_INT8 ? "int8" : "bf16";
  towerrt_items *q = NULL;
  CHECK(towerrt_items_quantize_centred(f32, prec, mode, qpath) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_items_load(qpath, NULL, &q) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!q) return;
  CHECK(towerrt_items_centring(q) == mode && towerrt_items_precision(q) == prec, "%s: not a centred %s store", name, name);
  CHECK(towerrt_items_quantize_centred(q, prec, TOWERRT_CENTRING_MEAN, "/tmp/towerrt_never.twi") == TOWERRT_ERR_UNSUPPORTED,
        "re-quantizing a centred store");
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = 1;
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, q, &o, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  trt_request *reqs = NULL;
  size_t n_reqs = test_read_requests(m, dir, "requests_ids.txt", &reqs), n_user = n_user_heads(m);
  double worst = 0;
  for (size_t r = 0; r < n_reqs && s; r++) {
    size_t k = reqs[r].items.n_keys;
    float *got = malloc(k * sizeof *got);
    towerrt_features user = {reqs[r].user.ids, reqs[r].user.n_ids, reqs[r].user.dense, reqs[r].user.n_dense};
    CHECK(towerrt_score(s, &user, reqs[r].items.keys, k, got) == TOWERRT_OK, "%s", towerrt_session_error(s));
    void *arena;
    const float *u = user_heads(m, &reqs[r], &arena);
    for (size_t c = 0; c < k; c++) {
      double scale;
      double want = oracle_logit(m, q, u, n_user, trt_items_find(q, reqs[r].items.keys[c]), &scale);
      double err = fabs(got[c] - want) / (scale + 1e-30);
      worst = fmax(worst, err);
      CHECK(err < 1e-6, "centred %s request %zu cand %zu: towerrt %.9g, oracle %.9g (parts of size %.3g)", name, r, c, (double)got[c],
            want, scale);
    }
    free(arena), free(got);
  }
  printf("  %-8s centred %-4s vs oracle (%s kernels): max err / size of the parts %.2g\n", mode_name(mode), name, towerrt_model_isa(m), worst);
  test_free_requests(reqs, n_reqs);
  towerrt_session_free(s);
  towerrt_items_free(q);
}

/* 3. A copy of store `src` whose section `kind` holds the n bytes `data`
 * (kind absent from src: added at the end). */
static int rewrite_section(const char *src, const char *dst, uint32_t kind, const void *data, size_t n) {
  size_t size;
  unsigned char *bytes = test_read_file(src, &size);
  trt_container c;
  if (!bytes || trt_container_open(bytes, size, "TWRITEMS", 1, &c)) {
    free(bytes);
    return 0;
  }
  trt_writer w;
  uint32_t n_sections = trt_rd32(bytes + 32), add = c.sections[kind].data == NULL;
  towerrt_status st = trt_writer_open(&w, dst, "TWRITEMS", n_sections + add);
  for (uint32_t i = 0; i < n_sections + add && !st; i++) {
    uint32_t k = i < n_sections ? trt_rd32(bytes + 64 + 32 * i) : kind;
    st = trt_writer_begin(&w, k);
    if (!st) st = k == kind ? trt_writer_put(&w, data, n) : trt_writer_put(&w, c.sections[k].data, (size_t)c.sections[k].size);
    if (!st) st = trt_writer_end(&w);
  }
  if (!st) st = trt_writer_finish(&w);
  free(bytes);
  return st == TOWERRT_OK;
}

static void expect_refused(const char *path, towerrt_status want, const char *words, const char *what) {
  towerrt_items *it = NULL;
  towerrt_status st = towerrt_items_load(path, NULL, &it);
  CHECK(st == want, "%s: %s, expected %s (%s)", what, towerrt_status_name(st), towerrt_status_name(want), towerrt_last_error());
  CHECK(strstr(towerrt_last_error(), words) != NULL, "%s: message '%s' lacks '%s'", what, towerrt_last_error(), words);
  towerrt_items_free(it);
}

/* kind: the store's centring section; n: its floats. */
static void check_corrupt(const char *cpath, uint32_t kind, size_t n, const char *name) {
  char *bad = tmp_path(), what[96];
  float *v = calloc(n + 1, sizeof *v);
  CHECK(rewrite_section(cpath, bad, kind, v, (n - 1) * 4), "rewrite");
  snprintf(what, sizeof what, "a short %s", name);
  expect_refused(bad, TOWERRT_ERR_FORMAT, "holds", what);
  CHECK(rewrite_section(cpath, bad, kind, v, (n + 1) * 4), "rewrite");
  snprintf(what, sizeof what, "a long %s", name);
  expect_refused(bad, TOWERRT_ERR_FORMAT, "holds", what);
  v[n - 1] = NAN;
  CHECK(rewrite_section(cpath, bad, kind, v, n * 4), "rewrite");
  snprintf(what, sizeof what, "a NaN in %s", name);
  expect_refused(bad, TOWERRT_ERR_NONFINITE, name, what);
  v[n - 1] = INFINITY;
  CHECK(rewrite_section(cpath, bad, kind, v, n * 4), "rewrite");
  snprintf(what, sizeof what, "an Inf in %s", name);
  expect_refused(bad, TOWERRT_ERR_NONFINITE, "is Inf", what);
  /* both ways of centring at once */
  uint32_t other = kind == TRT_SEC_ITEM_CENTRE ? TRT_SEC_ROW_CENTRES : TRT_SEC_ITEM_CENTRE;
  size_t dim = 0, count = 0;
  towerrt_items *it = NULL;
  if (towerrt_items_load(cpath, NULL, &it) == TOWERRT_OK) dim = it->head_dim, count = (size_t)it->count;
  towerrt_items_free(it);
  float *w = calloc(count * dim + 1, sizeof *w);
  CHECK(rewrite_section(cpath, bad, other, w, (other == TRT_SEC_ITEM_CENTRE ? 1 : count) * dim * 4), "rewrite");
  expect_refused(bad, TOWERRT_ERR_FORMAT, "centred one way", "both centring sections");
  free(w);
  /* a flipped bit under the section's CRC */
  size_t size;
  unsigned char *bytes = test_read_file(cpath, &size);
  trt_container c;
  if (bytes && trt_container_open(bytes, size, "TWRITEMS", 1, &c) == TOWERRT_OK) {
    bytes[c.sections[kind].offset] ^= 0x10;
    test_write_file(bad, bytes, size);
    it = NULL;
    towerrt_status st = towerrt_items_load(bad, NULL, &it);
    CHECK(st != TOWERRT_OK && strstr(towerrt_last_error(), name), "a flipped %s byte: %s (%s)", name, towerrt_status_name(st),
          towerrt_last_error());
    towerrt_items_free(it);
  }
  free(bytes);
  free(v);
  remove(bad);
  free(bad);
}

/* A copy of `src` with header version `version` (CRCs fixed): expects `want`. */
static void expect_version(const char *src, uint32_t version, towerrt_status want, const char *words, const char *what) {
  size_t size;
  unsigned char *bytes = test_read_file(src, &size);
  char *bad = tmp_path();
  if (bytes) {
    bytes[8] = (unsigned char)version, bytes[9] = bytes[10] = bytes[11] = 0;
    test_fix_crcs(bytes, size);
    test_write_file(bad, bytes, size);
    expect_refused(bad, want, words, what);
  }
  free(bytes);
  remove(bad);
  free(bad);
}

/* Centred stores are version 2, every other file version 1: a reader that
 * predates centring refuses them (TOWERRT_ERR_VERSION) rather than score
 * heads without their centre; this reader holds the rule both ways. */
static void check_versions(const char *plain, const char *centred, const char *model) {
  size_t size;
  unsigned char *bytes = test_read_file(centred, &size);
  CHECK(bytes && trt_rd32(bytes + 8) == 2, "a centred store is not version 2");
  free(bytes);
  bytes = test_read_file(plain, &size);
  CHECK(bytes && trt_rd32(bytes + 8) == 1, "a plain store is not version 1");
  free(bytes);
  expect_version(centred, 1, TOWERRT_ERR_FORMAT, "centred item stores are version 2", "a centred store marked version 1");
  expect_version(plain, 2, TOWERRT_ERR_FORMAT, "without a centring section", "a plain store marked version 2");
  expect_version(centred, 3, TOWERRT_ERR_VERSION, "format version 3", "version 3");
  bytes = test_read_file(model, &size);
  char *bad = tmp_path();
  if (bytes) {
    bytes[8] = 2;
    test_fix_crcs(bytes, size);
    test_write_file(bad, bytes, size);
    towerrt_model *m = NULL;
    towerrt_status st = towerrt_model_load(bad, NULL, &m);
    CHECK(st == TOWERRT_ERR_VERSION, "a version 2 model: %s (%s)", towerrt_status_name(st), towerrt_last_error());
    towerrt_model_free(m);
  }
  free(bytes);
  remove(bad);
  free(bad);
}

/* Stores written from other stores' rows cannot keep one centre: refused. */
static void check_no_mixing(const towerrt_model *m, const char *cpath) {
  towerrt_items *c = NULL;
  char *out = tmp_path();
  CHECK(towerrt_items_load(cpath, NULL, &c) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!c) return;
  uint64_t gone = 1;
  towerrt_status st = towerrt_items_make_delta(c, NULL, &gone, 1, out);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "centred"), "delta of a centred base: %s (%s)",
        towerrt_status_name(st), towerrt_last_error());
  st = towerrt_items_compact(c, out);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "centred"), "compacting a centred store: %s (%s)",
        towerrt_status_name(st), towerrt_last_error());
  const char *inputs[1] = {cpath};
  st = towerrt_items_merge(m, inputs, 1, out);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "centred"), "merging a centred store: %s (%s)",
        towerrt_status_name(st), towerrt_last_error());
  towerrt_items_free(c);
  remove(out);
  free(out);
}

/* The two-tower family's cosine is no sum of maxima: it refuses centred stores. */
static void check_family_refuses(const char *dir) {
  char mp[512];
  snprintf(mp, sizeof mp, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  towerrt_items *f32 = NULL, *c = NULL;
  char *fpath = tmp_path(), *cpath = tmp_path();
  CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (m && test_build_store(m, dir, fpath) == TOWERRT_OK && towerrt_items_load(fpath, NULL, &f32) == TOWERRT_OK) {
    const char *why = NULL;
    CHECK(towerrt_items_default_centring(f32, TOWERRT_PRECISION_INT8, &why) == TOWERRT_CENTRING_NONE && why,
          "a one-head store is centred by default");
    for (int mode = TOWERRT_CENTRING_MEAN; mode <= TOWERRT_CENTRING_ROW_MEAN; mode++) {
      CHECK(towerrt_items_quantize_centred(f32, TOWERRT_PRECISION_INT8, (towerrt_centring)mode, cpath) == TOWERRT_OK, "%s",
            towerrt_last_error());
      CHECK(towerrt_items_load(cpath, NULL, &c) == TOWERRT_OK, "%s", towerrt_last_error());
      towerrt_session *s = NULL;
      towerrt_status st = towerrt_session_create(m, c, NULL, &s);
      CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "--no-centre"), "%s with a centred store: %s (%s)", dir,
            towerrt_status_name(st), towerrt_last_error());
      towerrt_session_free(s);
      towerrt_items_free(c);
      c = NULL;
    }
  } else {
    CHECK(0, "family setup: %s", towerrt_last_error());
  }
  towerrt_items_free(c);
  towerrt_items_free(f32);
  towerrt_model_free(m);
  remove(fpath), remove(cpath);
  free(fpath), free(cpath);
}

static void check_fixture(const char *dir, int first) {
  char mp[512];
  snprintf(mp, sizeof mp, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  towerrt_items *f32 = NULL;
  char *store = tmp_path(), *cpath = tmp_path(), *qpath = tmp_path();
  CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (m && test_build_store(m, dir, store) == TOWERRT_OK && towerrt_items_load(store, NULL, &f32) == TOWERRT_OK) {
    CHECK(towerrt_items_default_centring(f32, TOWERRT_PRECISION_INT8, NULL) == TOWERRT_CENTRING_ROW_MEAN, "int8 default");
    CHECK(towerrt_items_default_centring(f32, TOWERRT_PRECISION_BF16, NULL) == TOWERRT_CENTRING_NONE, "bf16 default");
    for (int mode = TOWERRT_CENTRING_MEAN; mode <= TOWERRT_CENTRING_ROW_MEAN; mode++) {
      towerrt_centring c = (towerrt_centring)mode;
      check_exactness(dir, m, f32, c, cpath);
      if (first) {
        int row = c == TOWERRT_CENTRING_ROW_MEAN;
        check_corrupt(cpath, row ? TRT_SEC_ROW_CENTRES : TRT_SEC_ITEM_CENTRE, (row ? (size_t)f32->count : 1) * m->head_dim,
                      row ? "ROW_CENTRES" : "ITEM_CENTRE");
      }
      if (first) check_versions(store, cpath, mp);
      check_quantized(dir, m, f32, TOWERRT_PRECISION_INT8, c, qpath);
      check_quantized(dir, m, f32, TOWERRT_PRECISION_BF16, c, qpath);
      if (first) check_no_mixing(m, qpath);
    }
  } else {
    CHECK(0, "setup %s: %s", dir, towerrt_last_error());
  }
  towerrt_items_free(f32);
  towerrt_model_free(m);
  remove(store), remove(cpath), remove(qpath);
  free(store), free(cpath), free(qpath);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--family") && i + 1 < argc) {
      printf("family fixture %s\n", argv[++i]);
      check_family_refuses(argv[i]);
      continue;
    }
    printf("fixture %s\n", argv[i]);
    check_fixture(argv[i], i == 1);
  }
  return test_finish("test_centring");
}
