/* Every SIMD kernel table this machine can run, against the scalar oracle
 * (kernels/scalar), on random and ragged shapes: head counts, dims and k
 * that are not multiples of any tile, k = 1, a rows[] index into a store
 * and a contiguous block, and item rows that end at an unmapped page so an
 * over-read faults. Tolerances (docs/kernels.md):
 *   fp32, bf16: |simd - oracle| <= 1e-5 * M, M = sum_u max_h sum_d |u_d i_hd|
 *               (the sum of |terms| of the chosen dot products: reassociation
 *               and FMA change only rounding, bounded by n * eps * M);
 *   dense:      |simd - oracle| <= 1e-5 * (sum_i |w_i x_i| + |b|);
 *   u8s8:       int32 parts bit-exact (checked with power-of-two scales,
 *               where every fp32 step is exact, so scores must be equal),
 *               else <= 1e-5 * sum_u |term_u| for the fp32 sum order;
 *   dense bf16: as dense (products exact, sums reassociated);
 *   dense u8s8: equal with power-of-two scales, else one rounding;
 *   quantize_u8: the same bytes, zero points and scales (qmax 255 and 127);
 *   u8s8 with 7-bit user bytes (the AVX2 vpmaddubsw path, u8_max = 127),
 *   random and adversarial extremes (127 x -128 in every pair: 16-bit pair
 *   sums at their bounds): bit-exact against the oracle;
 *   embed_pool: the same bits; lightse: <= 1e-5 * |e| (the mean reassociated).
 * TOWERRT_ISA=name tests only that table (exit 77 = skipped if this CPU
 * cannot run it); TOWERRT_TEST_EXPECT_ISAS="a,b,scalar" checks detection;
 * TOWERRT_TEST_SEED (base seed), TOWERRT_TEST_ROUNDS (seeds, default 4)
 * and TOWERRT_TEST_SCALE (shapes per seed x N) widen the search. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for the guard pages */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "runtime/cpu_features.h"
#include "test_util.h"

#define SKIP 77
#define REL_TOL 1e-5

/* ---- memory with an unmapped page right after the last byte ------------- */

typedef struct guarded {
  void *map;
  size_t map_len;
  void *p; /* bytes usable, ending at the guard page */
} guarded;

static guarded guarded_alloc(size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (bytes + page - 1) / page * page;
  guarded g = {NULL, data + page, NULL};
  g.map = mmap(NULL, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g.map == MAP_FAILED) {
    fprintf(stderr, "mmap failed\n");
    exit(2);
  }
  mprotect((char *)g.map + data, page, PROT_NONE);
  g.p = (char *)g.map + data - bytes;
  return g;
}

static void guarded_free(guarded *g) { munmap(g->map, g->map_len); }

/* ---- shapes -------------------------------------------------------------- */

typedef struct shape {
  size_t n_user, n_item, dim, k, n_rows, stride; /* stride in elements */
  int use_rows;
} shape;

/* Fixed shapes first (the reference, tile edges, multi-pass, scalar
 * fallbacks), then random ones. */
static const size_t k_fixed[][4] = {
    {96, 32, 64, 5},  {1, 1, 1, 1},    {16, 8, 16, 3},  {48, 8, 64, 2},  {49, 7, 65, 3},  {17, 9, 13, 4},
    {24, 4, 8, 2},    {25, 5, 9, 1},   {3, 33, 3, 2},   {95, 31, 63, 2}, {8, 6, 2, 3},    {40, 3, 7, 6},
    {600, 3, 64, 2},  {130, 2, 130, 2}, {5, 2, 513, 2}, {3, 3, 1030, 1}, {2, 2, 1100, 1}, {33, 12, 1, 2},
    {4, 5, 1024, 1},  {3, 9, 1023, 1}, /* the largest dims before the scalar fallbacks: full stack buffers */
};
#define N_FIXED (sizeof k_fixed / sizeof k_fixed[0])

static shape make_shape(uint64_t *s, size_t iter) {
  shape sh;
  if (iter < N_FIXED) {
    sh.n_user = k_fixed[iter][0], sh.n_item = k_fixed[iter][1], sh.dim = k_fixed[iter][2], sh.k = k_fixed[iter][3];
  } else {
    sh.n_user = test_rand_range(s, 1, 70), sh.n_item = test_rand_range(s, 1, 40);
    sh.dim = test_rand_range(s, 1, 100), sh.k = test_rand_range(s, 1, 12);
  }
  sh.use_rows = (int)(iter % 2);
  sh.n_rows = sh.use_rows ? test_rand_range(s, 1, 2 * sh.k + 3) : sh.k;
  size_t row = sh.n_item * sh.dim;
  /* half the strides padded to 64 bytes like the item store, half odd */
  sh.stride = iter % 4 < 2 ? (row + 15) / 16 * 16 : row + test_rand_range(s, 0, 3);
  return sh;
}

static uint32_t *make_rows(uint64_t *s, const shape *sh) {
  uint32_t *rows = malloc(sh->k * sizeof *rows);
  for (size_t c = 0; c < sh->k; c++) rows[c] = (uint32_t)test_rand_range(s, 0, sh->n_rows - 1);
  /* the last row of the store ends at the guard page: make sure it is used */
  rows[sh->k - 1] = (uint32_t)(sh->n_rows - 1);
  return rows;
}

/* Bytes of a store whose last row holds exactly n_item x dim elements. */
static size_t store_elems(const shape *sh) { return (sh->n_rows - 1) * sh->stride + sh->n_item * sh->dim; }

static size_t row_of(const shape *sh, const uint32_t *rows, size_t c) { return sh->use_rows ? rows[c] : c; }

/* ---- packed once per request --------------------------------------------- */

/* The set's packed MaxSim (pack the user heads once, then score) must give
 * the bits its per-call entry point gave: `legacy`, k scores. */
static void check_packed(const towerrt_kernels *kn, const trt_maxsim_kernel *mk, const char *what, const trt_maxsim_user *u,
                         const trt_maxsim_items *it, const uint32_t *rows, size_t k, const float *legacy) {
  size_t bytes = mk->pack_bytes(u->n_user, u->dim);
  CHECK(bytes % 64 == 0, "%s %s: pack_bytes %zu is not a multiple of 64", kn->name, what, bytes);
  void *packed = aligned_alloc(64, bytes ? bytes : 64);
  float *got = malloc(k * sizeof *got);
  mk->pack(u, packed);
  mk->score(packed, u->n_user, it, rows, k, got);
  for (size_t c = 0; c < k; c++)
    CHECK(memcmp(&got[c], &legacy[c], sizeof *got) == 0, "%s packed %s %zux%zux%zu cand %zu: got %.9g, per call %.9g", kn->name, what,
          u->n_user, it->n_item, u->dim, c, (double)got[c], (double)legacy[c]);
  free(packed), free(got);
}

/* ---- fp32 MaxSim ---------------------------------------------------------- */

/* M = sum_u max_h sum_d |u_d i_hd|, the bound's scale. */
static double maxsim_mag(const float *user, const float *item, const shape *sh) {
  double mag = 0;
  for (size_t u = 0; u < sh->n_user; u++) {
    double best = 0;
    for (size_t h = 0; h < sh->n_item; h++) {
      double a = 0;
      for (size_t d = 0; d < sh->dim; d++) a += fabs((double)user[u * sh->dim + d] * item[h * sh->dim + d]);
      best = fmax(best, a);
    }
    mag += best;
  }
  return mag;
}

static void test_maxsim_f32(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    shape sh = make_shape(s, iter);
    guarded g = guarded_alloc(store_elems(&sh) * sizeof(float));
    float *items = g.p, *user = malloc(sh.n_user * sh.dim * sizeof *user);
    for (size_t i = 0; i < store_elems(&sh); i++) items[i] = test_rand_float(s, -1, 1);
    for (size_t i = 0; i < sh.n_user * sh.dim; i++) user[i] = test_rand_float(s, -1, 1);
    uint32_t *rows = make_rows(s, &sh);
    float *got = malloc(sh.k * sizeof *got), *want = malloc(sh.k * sizeof *want);
    const uint32_t *r = sh.use_rows ? rows : NULL;
    k->maxsim_f32(user, sh.n_user, items, sh.stride, r, sh.k, sh.n_item, sh.dim, got);
    trt_maxsim_user pu = {user, NULL, NULL, sh.n_user, sh.dim};
    trt_maxsim_items pit = {items, sh.stride * sizeof *items, NULL, 0, NULL, sh.n_item, sh.dim};
    check_packed(k, &k->packed_maxsim_f32, "maxsim_f32", &pu, &pit, r, sh.k, got);
    trt_maxsim_f32_scalar(user, sh.n_user, items, sh.stride, r, sh.k, sh.n_item, sh.dim, want);
    for (size_t c = 0; c < sh.k; c++) {
      double mag = maxsim_mag(user, items + row_of(&sh, rows, c) * sh.stride, &sh);
      CHECK(fabs((double)got[c] - want[c]) <= REL_TOL * mag, "%s maxsim_f32 %zux%zux%zu k=%zu rows=%d cand %zu: got %.9g want %.9g (M %.3g)",
            k->name, sh.n_user, sh.n_item, sh.dim, sh.k, sh.use_rows, c, (double)got[c], (double)want[c], mag);
    }
    free(user), free(rows), free(got), free(want);
    guarded_free(&g);
  }
}

/* ---- bf16 MaxSim ---------------------------------------------------------- */

static uint16_t to_bf16(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  b += 0x7FFFu + ((b >> 16) & 1u); /* round to nearest even (finite inputs) */
  return (uint16_t)(b >> 16);
}

static float from_bf16(uint16_t v) {
  uint32_t b = (uint32_t)v << 16;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static void test_maxsim_bf16(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    shape sh = make_shape(s, iter);
    guarded g = guarded_alloc(store_elems(&sh) * sizeof(uint16_t));
    uint16_t *items = g.p, *user = malloc(sh.n_user * sh.dim * sizeof *user);
    for (size_t i = 0; i < store_elems(&sh); i++) items[i] = to_bf16(test_rand_float(s, -1, 1));
    for (size_t i = 0; i < sh.n_user * sh.dim; i++) user[i] = to_bf16(test_rand_float(s, -1, 1));
    uint32_t *rows = make_rows(s, &sh);
    float *got = malloc(sh.k * sizeof *got), *want = malloc(sh.k * sizeof *want);
    const uint32_t *r = sh.use_rows ? rows : NULL;
    k->maxsim_bf16(user, sh.n_user, items, sh.stride, r, sh.k, sh.n_item, sh.dim, got);
    trt_maxsim_user pu = {user, NULL, NULL, sh.n_user, sh.dim};
    trt_maxsim_items pit = {items, sh.stride * sizeof *items, NULL, 0, NULL, sh.n_item, sh.dim};
    check_packed(k, &k->packed_maxsim_bf16, "maxsim_bf16", &pu, &pit, r, sh.k, got);
    trt_maxsim_bf16_scalar(user, sh.n_user, items, sh.stride, r, sh.k, sh.n_item, sh.dim, want);
    float *uf = malloc(sh.n_user * sh.dim * sizeof *uf), *itf = malloc(sh.n_item * sh.dim * sizeof *itf);
    for (size_t i = 0; i < sh.n_user * sh.dim; i++) uf[i] = from_bf16(user[i]);
    for (size_t c = 0; c < sh.k; c++) {
      const uint16_t *item = items + row_of(&sh, rows, c) * sh.stride;
      for (size_t i = 0; i < sh.n_item * sh.dim; i++) itf[i] = from_bf16(item[i]);
      double mag = maxsim_mag(uf, itf, &sh);
      CHECK(fabs((double)got[c] - want[c]) <= REL_TOL * mag, "%s maxsim_bf16 %zux%zux%zu k=%zu rows=%d cand %zu: got %.9g want %.9g",
            k->name, sh.n_user, sh.n_item, sh.dim, sh.k, sh.use_rows, c, (double)got[c], (double)want[c]);
    }
    free(user), free(rows), free(got), free(want), free(uf), free(itf);
    guarded_free(&g);
  }
}

/* ---- u8 x s8 MaxSim ------------------------------------------------------- */

/* Value ranges and scale kinds of one int8 case. */
typedef struct q_case {
  int item_lo, item_hi; /* s8 item range */
  int user_hi;          /* u8 user range 0..user_hi (0 means 255) */
  int pow2_scales;      /* scales 2^-e: every fp32 step exact when magnitudes allow */
  int one_user_scale;   /* all user heads share one scale (keeps the sum exact) */
} q_case;

typedef struct q_data {
  guarded g;
  int8_t *items;
  uint8_t *user;
  int32_t *zp, *colsum;
  float *uscale, *iscale;
} q_data;

static float rand_pow2(uint64_t *s) { return ldexpf(1.0f, -(int)test_rand_range(s, 0, 4)); }

static q_data make_q(uint64_t *s, const shape *sh, const q_case *qc) {
  q_data q;
  q.g = guarded_alloc(store_elems(sh));
  q.items = q.g.p;
  for (size_t i = 0; i < store_elems(sh); i++) q.items[i] = (int8_t)((int)test_rand_range(s, 0, (size_t)(qc->item_hi - qc->item_lo)) + qc->item_lo);
  q.user = malloc(sh->n_user * sh->dim + 1);
  size_t user_hi = qc->user_hi ? (size_t)qc->user_hi : 255;
  for (size_t i = 0; i < sh->n_user * sh->dim; i++) q.user[i] = (uint8_t)test_rand_range(s, 0, user_hi);
  q.zp = malloc(sh->n_user * sizeof *q.zp), q.uscale = malloc(sh->n_user * sizeof *q.uscale);
  float shared = rand_pow2(s);
  for (size_t u = 0; u < sh->n_user; u++) {
    q.zp[u] = (int32_t)test_rand_range(s, 0, user_hi);
    q.uscale[u] = qc->one_user_scale ? shared : qc->pow2_scales ? rand_pow2(s) : test_rand_float(s, 1e-3f, 0.1f);
  }
  q.colsum = malloc(sh->n_rows * sh->n_item * sizeof *q.colsum), q.iscale = malloc(sh->n_rows * sizeof *q.iscale);
  for (size_t r = 0; r < sh->n_rows; r++) {
    q.iscale[r] = qc->pow2_scales ? rand_pow2(s) : test_rand_float(s, 1e-3f, 0.1f);
    for (size_t h = 0; h < sh->n_item; h++) {
      int32_t sum = 0;
      for (size_t d = 0; d < sh->dim; d++) sum += q.items[r * sh->stride + h * sh->dim + d];
      q.colsum[r * sh->n_item + h] = sum;
    }
  }
  return q;
}

static void free_q(q_data *q) {
  guarded_free(&q->g);
  free(q->user), free(q->zp), free(q->colsum), free(q->uscale), free(q->iscale);
}

/* sum_u |(float)max_h D[u][h] * s_u * s_item|, from exact integers. */
static double q_mag(const trt_maxsim_u8s8_params *p, size_t row) {
  double mag = 0;
  for (size_t u = 0; u < p->n_user; u++) {
    int64_t best = INT64_MIN;
    for (size_t h = 0; h < p->n_item; h++) {
      int64_t d = 0;
      for (size_t i = 0; i < p->dim; i++) d += (int64_t)p->user[u * p->dim + i] * p->items[row * p->item_stride + h * p->dim + i];
      d -= (int64_t)p->user_zp[u] * p->colsum[row * p->colsum_stride + h];
      if (d > best) best = d;
    }
    mag += fabs((double)best * p->user_scale[u] * p->item_scale[row]);
  }
  return mag;
}

static void run_q(const towerrt_kernels *k, uint64_t *s, shape sh, const q_case *qc, int exact) {
  q_data q = make_q(s, &sh, qc);
  trt_maxsim_u8s8_params p = {q.user, q.zp, q.uscale, sh.n_user, q.items, sh.stride, q.colsum, sh.n_item, q.iscale, sh.n_item, sh.dim};
  uint32_t *rows = make_rows(s, &sh);
  const uint32_t *r = sh.use_rows ? rows : NULL;
  float *got = malloc(sh.k * sizeof *got), *want = malloc(sh.k * sizeof *want);
  k->maxsim_u8s8(&p, r, sh.k, got);
  trt_maxsim_u8s8_scalar(&p, r, sh.k, want);
  trt_maxsim_user pu = {p.user, p.user_zp, p.user_scale, p.n_user, p.dim};
  trt_maxsim_items pit = {p.items, p.item_stride, p.colsum, p.colsum_stride, p.item_scale, p.n_item, p.dim};
  check_packed(k, &k->packed_maxsim_u8s8, "maxsim_u8s8", &pu, &pit, r, sh.k, got);
  for (size_t c = 0; c < sh.k; c++) {
    double mag = exact ? 0 : q_mag(&p, row_of(&sh, rows, c));
    CHECK(fabs((double)got[c] - want[c]) <= REL_TOL * mag, "%s maxsim_u8s8%s %zux%zux%zu k=%zu rows=%d item %d..%d cand %zu: got %.9g want %.9g",
          k->name, exact ? " (exact)" : "", sh.n_user, sh.n_item, sh.dim, sh.k, sh.use_rows, qc->item_lo, qc->item_hi, c,
          (double)got[c], (double)want[c]);
  }
  free(rows), free(got), free(want);
  free_q(&q);
}

/* Extremes that put the 16-bit pair sums of vpmaddubsw at their bounds:
 * user bytes from {0, 1, 126, 127} (all 127 when `all_max`), items from
 * {-128, -127, 126, 127} (all -128 or all 127 by `item_mode`), zero points
 * 0 or 127. Few heads, dim <= 256 and one power-of-two scale keep every
 * fp32 step exact: the scores must equal the oracle's bit for bit. */
static void run_q_extremes(const towerrt_kernels *k, uint64_t *s, size_t iter) {
  static const uint8_t uv[4] = {0, 1, 126, 127};
  static const int8_t iv[4] = {-128, -127, 126, 127};
  shape sh = make_shape(s, iter);
  if (sh.n_user > 4) sh.n_user = 4;
  if (sh.dim > 256) sh.dim = 256;
  sh.stride = sh.n_item * sh.dim + (iter % 3);
  const q_case qc = {-128, 127, 127, 1, 1};
  q_data q = make_q(s, &sh, &qc);
  int all_max = iter % 2 == 0, item_mode = (int)(iter % 3);
  for (size_t i = 0; i < sh.n_user * sh.dim; i++) q.user[i] = all_max ? 127 : uv[test_rand_range(s, 0, 3)];
  for (size_t u = 0; u < sh.n_user; u++) q.zp[u] = iter % 4 < 2 ? 0 : 127;
  for (size_t r = 0; r < sh.n_rows; r++)
    for (size_t h = 0; h < sh.n_item; h++) {
      int32_t sum = 0;
      for (size_t d = 0; d < sh.dim; d++) {
        int8_t v = item_mode == 0 ? -128 : item_mode == 1 ? 127 : iv[test_rand_range(s, 0, 3)];
        q.items[r * sh.stride + h * sh.dim + d] = v;
        sum += v;
      }
      q.colsum[r * sh.n_item + h] = sum;
    }
  trt_maxsim_u8s8_params p = {q.user, q.zp, q.uscale, sh.n_user, q.items, sh.stride, q.colsum, sh.n_item, q.iscale, sh.n_item, sh.dim};
  uint32_t *rows = make_rows(s, &sh);
  const uint32_t *r = sh.use_rows ? rows : NULL;
  float *got = malloc(sh.k * sizeof *got), *want = malloc(sh.k * sizeof *want);
  k->maxsim_u8s8(&p, r, sh.k, got);
  trt_maxsim_u8s8_scalar(&p, r, sh.k, want);
  for (size_t c = 0; c < sh.k; c++)
    CHECK(got[c] == want[c], "%s maxsim_u8s8 (7-bit extremes, item mode %d) %zux%zux%zu k=%zu cand %zu: got %.9g want %.9g", k->name,
          item_mode, sh.n_user, sh.n_item, sh.dim, sh.k, c, (double)got[c], (double)want[c]);
  free(rows), free(got), free(want);
  free_q(&q);
}

static void test_maxsim_u8s8(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  const q_case full = {-128, 127, 0, 0, 0}, sym = {-127, 127, 0, 0, 0}, u7 = {-128, 127, 127, 0, 0};
  for (size_t iter = 0; iter < iters; iter++) {
    shape sh = make_shape(s, iter);
    run_q(k, s, sh, iter % 3 ? &full : &sym, 0);
    run_q(k, s, sh, &u7, 0); /* the bytes of a u8_max = 127 table */
    run_q_extremes(k, s, iter);
    /* One user head, full ranges, power-of-two scales: the score is one
     * exact product of the int32 max, so it must be bit-identical. */
    const q_case one = {-128, 127, (int)(iter % 2) * 127, 1, 0}; /* 0..255 and 0..127 user bytes */
    shape sh1 = sh;
    sh1.n_user = 1;
    if (sh1.dim > 256) sh1.dim = 256; /* |D| < 2^24: exact in fp32 */
    sh1.stride = sh1.n_item * sh1.dim + (iter % 3);
    run_q(k, s, sh1, &one, 1);
    /* Many heads, small item values, one shared power-of-two user scale:
     * every partial sum is an exact fp32, so the whole score is exact. */
    const q_case small = {-8, 7, 0, 1, 1};
    shape shm = sh;
    if (shm.n_user > 32) shm.n_user = 32;
    if (shm.dim > 64) shm.dim = 64; /* 32 * 64 * 255 * 8 < 2^24 */
    shm.stride = shm.n_item * shm.dim + (iter % 5);
    run_q(k, s, shm, &small, 1);
  }
}

/* ---- dense ---------------------------------------------------------------- */

static void test_dense(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  static const size_t fixed[][3] = {{1, 300, 300}, {4, 128, 128}, {32, 301, 300}, {1, 1, 1}, {5, 17, 7}, {8, 16, 4}};
  for (size_t iter = 0; iter < iters; iter++) {
    size_t n, in, out;
    if (iter < sizeof fixed / sizeof fixed[0]) {
      n = fixed[iter][0], in = fixed[iter][1], out = fixed[iter][2];
    } else {
      n = test_rand_range(s, 1, 11), in = test_rand_range(s, 1, 90), out = test_rand_range(s, 1, 40);
    }
    int relu = (int)(iter % 2), with_bias = iter % 3 != 0;
    guarded gx = guarded_alloc(n * in * sizeof(float)), gw = guarded_alloc(out * in * sizeof(float));
    float *x = gx.p, *w = gw.p, *b = malloc(out * sizeof *b);
    for (size_t i = 0; i < n * in; i++) x[i] = test_rand_float(s, -2, 2);
    for (size_t i = 0; i < out * in; i++) w[i] = test_rand_float(s, -1, 1);
    for (size_t i = 0; i < out; i++) b[i] = test_rand_float(s, -1, 1);
    float *got = malloc(n * out * sizeof *got), *want = malloc(n * out * sizeof *want);
    k->dense_f32(x, n, in, w, with_bias ? b : NULL, out, relu, got);
    trt_dense_f32_scalar(x, n, in, w, with_bias ? b : NULL, out, relu, want);
    for (size_t r = 0; r < n; r++)
      for (size_t o = 0; o < out; o++) {
        double mag = with_bias ? fabs(b[o]) : 0;
        for (size_t i = 0; i < in; i++) mag += fabs((double)w[o * in + i] * x[r * in + i]);
        CHECK(fabs((double)got[r * out + o] - want[r * out + o]) <= REL_TOL * mag, "%s dense %zux%zu->%zu relu=%d bias=%d [%zu][%zu]: got %.9g want %.9g",
              k->name, n, in, out, relu, with_bias, r, o, (double)got[r * out + o], (double)want[r * out + o]);
      }
    free(b), free(got), free(want);
    guarded_free(&gx), guarded_free(&gw);
  }
}

/* ---- quantized dense (the user tower of a quantized model) ---------------- */

/* n x in -> out, n = 1 (the request path) most often, n = 32 once. */
static void dense_shape(uint64_t *s, size_t iter, size_t max_in, size_t *n, size_t *in, size_t *out) {
  static const size_t fixed[][3] = {{1, 300, 2048}, {1, 129, 300}, {32, 301, 70}, {1, 1, 1}, {5, 17, 7}, {1, 64, 5}};
  if (iter < sizeof fixed / sizeof fixed[0]) {
    *n = fixed[iter][0], *in = fixed[iter][1], *out = fixed[iter][2];
  } else {
    *n = iter % 3 ? 1 : test_rand_range(s, 1, 11), *in = test_rand_range(s, 1, max_in), *out = test_rand_range(s, 1, 70);
  }
}

static void test_dense_bf16(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    size_t n, in, out;
    dense_shape(s, iter, 300, &n, &in, &out);
    int relu = (int)(iter % 2), with_bias = iter % 3 != 1;
    guarded gx = guarded_alloc(n * in * 2), gw = guarded_alloc(out * in * 2), gb = guarded_alloc(out * sizeof(float));
    uint16_t *x = gx.p, *w = gw.p;
    float *b = gb.p, *got = malloc(n * out * sizeof *got), *want = malloc(n * out * sizeof *want);
    for (size_t i = 0; i < n * in; i++) x[i] = to_bf16(test_rand_float(s, -2, 2));
    for (size_t i = 0; i < out * in; i++) w[i] = to_bf16(test_rand_float(s, -1, 1));
    for (size_t i = 0; i < out; i++) b[i] = test_rand_float(s, -1, 1);
    k->dense_bf16(x, n, in, w, with_bias ? b : NULL, out, relu, got);
    trt_dense_bf16_scalar(x, n, in, w, with_bias ? b : NULL, out, relu, want);
    for (size_t r = 0; r < n; r++)
      for (size_t o = 0; o < out; o++) {
        double mag = with_bias ? fabs(b[o]) : 0;
        for (size_t i = 0; i < in; i++) mag += fabs((double)from_bf16(w[o * in + i]) * from_bf16(x[r * in + i]));
        CHECK(fabs((double)got[r * out + o] - want[r * out + o]) <= REL_TOL * mag + 1e-30,
              "%s dense_bf16 %zux%zu->%zu relu=%d bias=%d [%zu][%zu]: got %.9g want %.9g", k->name, n, in, out, relu, with_bias, r, o,
              (double)got[r * out + o], (double)want[r * out + o]);
      }
    free(got), free(want);
    guarded_free(&gx), guarded_free(&gw), guarded_free(&gb);
  }
}

/* The int32 part is exact, so with power-of-two scales (every float step
 * exact) the results must be equal; with random scales, one rounding. */
static void test_dense_u8s8(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    size_t n, in, out;
    dense_shape(s, iter, 320, &n, &in, &out);
    size_t in_pad = (in + 63) & ~(size_t)63;
    int relu = (int)(iter % 2), with_bias = iter % 3 != 1, exact = iter % 4 == 3;
    /* x bytes: 0..255 (the exact path), 0..127 (a u8_max = 127 table's
     * vpmaddubsw path), or 127 (255) everywhere against extreme weights */
    int x_mode = (int)(iter % 3), extreme = iter == 4 || iter % 9 == 8;
    guarded gx = guarded_alloc(n * in_pad), gw = guarded_alloc(out * in_pad);
    uint8_t *x = gx.p;
    int8_t *w = gw.p;
    int32_t *sum = malloc(out * sizeof *sum), *zp = malloc(n * sizeof *zp);
    float *ws = malloc(out * sizeof *ws), *xs = malloc(n * sizeof *xs), *b = malloc(out * sizeof *b);
    float *got = malloc(n * out * sizeof *got), *want = malloc(n * out * sizeof *want);
    for (size_t i = 0; i < n * in_pad; i++) /* the pad too: any byte of the range */
      x[i] = extreme ? (iter == 4 ? 127 : 255) : (uint8_t)test_rand_range(s, 0, x_mode == 1 ? 127 : 255);
    for (size_t o = 0; o < out; o++) {
      int32_t acc = 0;
      for (size_t i = 0; i < in_pad; i++) {
        int8_t v = i < in ? (int8_t)((int)test_rand_range(s, 0, 254) - 127) : 0; /* -127..127, as quantized */
        if (extreme && i < in) v = (o & 1) ? 127 : -128; /* extremes: the largest |sums|, pair sums at the int16 bounds */
        w[o * in_pad + i] = v;
        acc += v;
      }
      sum[o] = acc;
      ws[o] = exact ? ldexpf(1.0f, -(int)test_rand_range(s, 8, 16)) : test_rand_float(s, 1e-4f, 1e-2f);
      b[o] = exact ? (float)((int)test_rand_range(s, 0, 64) - 32) : test_rand_float(s, -1, 1);
    }
    for (size_t r = 0; r < n; r++) {
      zp[r] = extreme ? 0 : (int32_t)test_rand_range(s, 0, x_mode == 1 ? 127 : 255);
      xs[r] = exact ? ldexpf(1.0f, -(int)test_rand_range(s, 4, 10)) : test_rand_float(s, 1e-3f, 1e-1f);
    }
    trt_dense_u8s8_params p = {w, sum, ws, with_bias ? b : NULL, in_pad, out, relu};
    k->dense_u8s8(&p, x, n, zp, xs, got);
    trt_dense_u8s8_scalar(&p, x, n, zp, xs, want);
    for (size_t r = 0; r < n; r++)
      for (size_t o = 0; o < out; o++) {
        double tol = exact ? 0.0 : 1e-6 * (fabs((double)want[r * out + o]) + fabs(b[o]) + 1e-3);
        CHECK(fabs((double)got[r * out + o] - want[r * out + o]) <= tol, "%s dense_u8s8 %zux%zu(%zu)->%zu relu=%d exact=%d [%zu][%zu]: got %.9g want %.9g",
              k->name, n, in, in_pad, out, relu, exact, r, o, (double)got[r * out + o], (double)want[r * out + o]);
      }
    free(sum), free(zp), free(ws), free(xs), free(b), free(got), free(want);
    guarded_free(&gx), guarded_free(&gw);
  }
}

/* Per-head u8 quantization: the same bytes, zero points and scales as the
 * oracle (every step is an exact IEEE operation). */
static void test_quantize_u8(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    size_t heads = iter == 0 ? 96 : test_rand_range(s, 1, 9), dim = iter == 0 ? 64 : test_rand_range(s, 1, 301);
    guarded gx = guarded_alloc(heads * dim * sizeof(float));
    float *x = gx.p, *sg = malloc(heads * sizeof *sg), *sw = malloc(heads * sizeof *sw);
    uint8_t *qg = malloc(heads * dim), *qw = malloc(heads * dim);
    int32_t *zg = malloc(heads * sizeof *zg), *zw = malloc(heads * sizeof *zw);
    for (size_t i = 0; i < heads * dim; i++) {
      float lo = iter % 3 == 1 ? 0.0f : -3.0f, hi = iter % 3 == 2 ? 0.0f : 3.0f; /* one-signed heads too */
      x[i] = test_rand_float(s, lo, hi);
      if (iter % 7 == 6 && i % 5 == 0) x[i] = 0.5f * (float)(int)test_rand_range(s, 0, 9); /* ties on the grid */
    }
    if (iter % 11 == 10) memset(x, 0, dim * sizeof *x); /* an all-zero head */
    int qmax = iter % 2 ? 127 : 255;
    k->quantize_u8(x, heads, dim, qmax, qg, zg, sg);
    trt_quantize_u8_scalar(x, heads, dim, qmax, qw, zw, sw);
    CHECK(memcmp(qg, qw, heads * dim) == 0, "%s quantize_u8 %zu x %zu qmax %d: bytes differ", k->name, heads, dim, qmax);
    for (size_t i = 0; i < heads * dim; i++) CHECK(qg[i] <= qmax, "%s quantize_u8 qmax %d: byte %d", k->name, qmax, qg[i]);
    for (size_t u = 0; u < heads; u++) CHECK(zg[u] >= 0 && zg[u] <= qmax, "%s quantize_u8 qmax %d: zero point %d", k->name, qmax, zg[u]);
    CHECK(memcmp(zg, zw, heads * sizeof *zg) == 0 && memcmp(sg, sw, heads * sizeof *sg) == 0,
          "%s quantize_u8 %zu x %zu: zero points or scales differ", k->name, heads, dim);
    free(sg), free(sw), free(qg), free(qw), free(zg), free(zw);
    guarded_free(&gx);
  }
}

/* ---- per-request ops: pooling, Light-SE -------------------------------------- */

/* Each lane pools the rows in the oracle's order: the same bits. The table
 * ends at a guard page, so a read past a row of the last id faults. */
static void test_embed_pool(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    size_t dim = iter == 0 ? 32 : test_rand_range(s, 1, 70), vocab = test_rand_range(s, 1, 40), n_ids = test_rand_range(s, 1, 9);
    int mode = (int)(iter % 3);
    guarded gt = guarded_alloc(vocab * dim * sizeof(float));
    float *table = gt.p, *got = malloc(dim * sizeof *got), *want = malloc(dim * sizeof *want);
    int64_t *ids = malloc(n_ids * sizeof *ids);
    for (size_t i = 0; i < vocab * dim; i++) table[i] = test_rand_float(s, -1, 1);
    for (size_t j = 0; j < n_ids; j++) ids[j] = iter % 5 == 4 ? 0 : (int64_t)test_rand_range(s, 0, vocab - 1); /* all padding, or mixed */
    if (iter % 7 == 6) ids[n_ids - 1] = (int64_t)vocab - 1; /* the row at the guard page */
    k->embed_pool_f32(table, dim, ids, n_ids, mode, got);
    trt_embed_pool_f32_scalar(table, dim, ids, n_ids, mode, want);
    CHECK(memcmp(got, want, dim * sizeof *got) == 0, "%s embed_pool mode %d dim %zu ids %zu: differs from the oracle", k->name, mode,
          dim, n_ids);
    free(got), free(want), free(ids);
    guarded_free(&gt);
  }
}

static void test_lightse(const towerrt_kernels *k, uint64_t *s, size_t iters) {
  for (size_t iter = 0; iter < iters; iter++) {
    size_t nf = iter == 0 ? 4 : test_rand_range(s, 1, 9), dim = iter == 0 ? 32 : test_rand_range(s, 1, 70);
    guarded ge = guarded_alloc(nf * dim * sizeof(float));
    float *e = ge.p, *w = malloc(nf * nf * sizeof *w), *b = malloc(nf * sizeof *b);
    float *got = malloc(nf * dim * sizeof *got), *want = malloc(nf * dim * sizeof *want), scratch[2 * 16];
    for (size_t i = 0; i < nf * dim; i++) e[i] = test_rand_float(s, -2, 2);
    for (size_t i = 0; i < nf * nf; i++) w[i] = test_rand_float(s, -1, 1);
    for (size_t i = 0; i < nf; i++) b[i] = test_rand_float(s, -1, 1);
    const float *bias = iter % 2 ? b : NULL;
    k->lightse_f32(e, nf, dim, w, bias, scratch, got);
    trt_lightse_f32_scalar(e, nf, dim, w, bias, scratch, want);
    /* The mean is reassociated; the softmax is Lipschitz in it: 1e-5 of |e| (<= 2) bounds it. */
    for (size_t i = 0; i < nf * dim; i++)
      CHECK(fabs((double)got[i] - want[i]) <= 1e-5 * (fabs((double)e[i]) + 1e-6), "%s lightse %zu x %zu [%zu]: got %.9g want %.9g",
            k->name, nf, dim, i, (double)got[i], (double)want[i]);
    free(w), free(b), free(got), free(want);
    guarded_free(&ge);
  }
}

/* ---- selection ------------------------------------------------------------ */

static void test_selection(void) {
  const char *names[16];
  size_t n = trt_cpu_isas(names, 16);
  char joined[256] = "";
  for (size_t i = 0; i < n && i < 16; i++) {
    strncat(joined, i ? "," : "", sizeof joined - strlen(joined) - 1);
    strncat(joined, names[i], sizeof joined - strlen(joined) - 1);
  }
  printf("ISAs this machine runs: %s\n", joined);
  CHECK(n >= 1 && n <= 16 && strcmp(names[n - 1], "scalar") == 0, "ISA list must end with scalar: %s", joined);
  const char *expect = getenv("TOWERRT_TEST_EXPECT_ISAS");
  if (expect && *expect) CHECK(strcmp(expect, joined) == 0, "detected ISAs %s, expected %s", joined, expect);

  towerrt_kernels k;
  CHECK(trt_select_kernels(NULL, &k) == TOWERRT_OK && strcmp(k.name, names[0]) == 0, "auto must pick %s", names[0]);
  CHECK(trt_select_kernels("auto", &k) == TOWERRT_OK && strcmp(k.name, names[0]) == 0, "auto must pick %s", names[0]);
  CHECK(trt_select_kernels("scalar", &k) == TOWERRT_OK && k.maxsim_u8s8 == trt_maxsim_u8s8_scalar &&
            k.maxsim_bf16 == trt_maxsim_bf16_scalar && k.maxsim_f32 == trt_maxsim_f32_scalar,
        "scalar table must point to the oracles");
  towerrt_status st = trt_select_kernels("no-such-isa", &k);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "no-such-isa") && strstr(towerrt_last_error(), "scalar"),
        "unknown ISA: status %d, message '%s'", (int)st, towerrt_last_error());
  /* Every table's activation range is one the int8 kernels are proven for. */
  for (size_t i = 0; i < n && i < 16; i++) {
    CHECK(trt_kernels_for_isa(names[i], &k) == TOWERRT_OK && (k.u8_max == 255 || k.u8_max == 127), "%s: u8_max %d", names[i], k.u8_max);
    if (!strcmp(names[i], "avx2") || !strcmp(names[i], "avx512")) CHECK(k.u8_max == 127, "%s: vpmaddubsw needs u8_max 127", names[i]);
  }
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
  /* avx-vnni is listed exactly where the CPU has AVX-VNNI (and the build has the kernels). */
  int listed = 0;
  for (size_t i = 0; i < n && i < 16; i++) listed |= !strcmp(names[i], "avx-vnni");
  __builtin_cpu_init();
  int has = __builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("avx2");
  printf("AVX-VNNI: cpu %s, avx-vnni table %s\n", has ? "yes" : "no", listed ? "listed" : "not listed");
  CHECK(!listed || has, "avx-vnni listed on a CPU without AVX-VNNI");
  if (has && !listed) printf("note: this CPU has AVX-VNNI but the build lacks the avx-vnni kernels (compiler without -mavxvnni)\n");
#endif
  /* An ISA of the other architecture is never runnable here. */
#if defined(__aarch64__)
  const char *foreign = "avx2";
#else
  const char *foreign = "neon";
#endif
  st = trt_kernels_for_isa(foreign, &k);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "available: "), "foreign ISA: status %d, message '%s'", (int)st,
        towerrt_last_error());
  /* The environment variable wins over the option. */
  setenv("TOWERRT_ISA", "scalar", 1);
  CHECK(trt_select_kernels(names[0], &k) == TOWERRT_OK && strcmp(k.name, "scalar") == 0, "TOWERRT_ISA=scalar must win");
  setenv("TOWERRT_ISA", foreign, 1);
  st = trt_select_kernels("scalar", &k);
  CHECK(st == TOWERRT_ERR_UNSUPPORTED && strstr(towerrt_last_error(), "TOWERRT_ISA"), "forced foreign ISA: '%s'", towerrt_last_error());
  unsetenv("TOWERRT_ISA");
}

/* ---- driver ---------------------------------------------------------------- */

static void test_isa(const char *name, uint64_t *s, size_t scale) {
  towerrt_kernels k;
  if (trt_kernels_for_isa(name, &k) != TOWERRT_OK) {
    CHECK(0, "%s: %s", name, towerrt_last_error());
    return;
  }
  printf("testing %s\n", name);
  test_maxsim_f32(&k, s, 120 * scale);
  test_maxsim_bf16(&k, s, 60 * scale);
  test_maxsim_u8s8(&k, s, 60 * scale);
  test_dense(&k, s, 100 * scale);
  test_dense_bf16(&k, s, 60 * scale);
  test_dense_u8s8(&k, s, 60 * scale);
  test_quantize_u8(&k, s, 60 * scale);
  test_embed_pool(&k, s, 60 * scale);
  test_lightse(&k, s, 60 * scale);
}

/* Every table on `rounds` consecutive seeds from the base seed. */
static void test_isas(const char *const *names, size_t n, uint64_t base, size_t rounds, size_t scale) {
  for (size_t round = 0; round < rounds; round++) {
    uint64_t s = base + round;
    printf("seed %llu\n", (unsigned long long)s);
    for (size_t i = 0; i < n; i++) test_isa(names[i], &s, scale);
  }
}

int main(void) {
  uint64_t base = test_seed("test_kernels_simd");
  const char *scale_env = getenv("TOWERRT_TEST_SCALE"), *rounds_env = getenv("TOWERRT_TEST_ROUNDS");
  size_t scale = scale_env ? (size_t)strtoul(scale_env, NULL, 10) : 1;
  size_t rounds = rounds_env ? (size_t)strtoul(rounds_env, NULL, 10) : 4;
  char forced[64] = "";
  const char *env = getenv("TOWERRT_ISA");
  if (env) snprintf(forced, sizeof forced, "%s", env);
  unsetenv("TOWERRT_ISA"); /* test_selection sets it itself */
  test_selection();

  const char *names[16];
  size_t n = trt_cpu_isas(names, 16);
  if (*forced) {
    towerrt_kernels k;
    if (trt_kernels_for_isa(forced, &k) != TOWERRT_OK) {
      printf("skipped: %s\n", towerrt_last_error());
      return SKIP;
    }
    names[0] = forced, n = 1;
  }
  test_isas(names, n < 16 ? n : 16, base, rounds, scale);
  return test_finish("test_kernels_simd");
}
