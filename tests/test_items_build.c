/* Item-store builds: streaming, oneDNN, shards and merges
 * (runtime/item_store_build.h, docs/item-stores.md).
 *
 *  - streaming == whole array, byte for byte, for any chunking; and the same
 *    bytes for any number of threads;
 *  - oneDNN heads == internal-kernel heads within fp32 reassociation
 *    tolerance (and the scores of the golden requests);
 *  - shards 0..n-1 merged (inputs in any order) == the single build, byte
 *    for byte, for both engines; an empty shard merges;
 *  - bf16 / int8 quantized shards merged == the quantized single build,
 *    byte for byte (any order, empty shards, plain halves);
 *  - a duplicate id (in one build, across stores) is rejected naming it;
 *  - stores of another model, shards of different splits, a missing or a
 *    repeated shard, a mix of shards and plain stores are rejected;
 *  - a truncated or corrupt input is rejected with its status and path;
 *  - oneDNN primitives are created once per shape (not per batch);
 *  - CRC combine, the shard rule, the int8 path.
 *
 * usage: test_items_build WORK_DIR MODEL_DIR... (each with model.twr and
 * items.txt: the golden fixtures, and a reference-size model made by
 * bench/peers/item_tower_build_model.py) */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/crc32.h"
#include "runtime/item_store.h"
#include "runtime/item_store_build.h"
#include "runtime/model.h"
#include "runtime/onednn_matmul.h"
#include "tools/text_input.h"
#include "runtime/tower_exec.h"
#include "test_util.h"
#include "towerrt.h"

static const char *g_work;
static uint64_t g_rng;

typedef struct catalog {
  const char *dir;
  towerrt_model *m;
  trt_rows rows;
  size_t slots, dense;
} catalog;

/* WORK_DIR/name, in one of 8 rotating buffers. */
static char *wpath(const char *name) {
  static char buf[8][2048];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, 2048, "%.1000s/%.1000s", g_work, name);
  return p;
}

static int load_catalog(const char *dir, catalog *c) {
  memset(c, 0, sizeof *c);
  c->dir = dir;
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  if (towerrt_model_load(path, NULL, &c->m)) {
    CHECK(0, "%s: %s", path, towerrt_last_error());
    return 0;
  }
  snprintf(path, sizeof path, "%s/items.txt", dir);
  FILE *f = fopen(path, "r");
  trt_text_reader r;
  int done = 0;
  towerrt_status st = f ? trt_text_open(&r, f, path, "towerrt-items", c->m) : TOWERRT_ERR_IO;
  while (!st && !done) st = trt_text_read_items(&r, &c->rows, 1u << 20, &done);
  if (f) {
    trt_text_close(&r);
    fclose(f);
  }
  CHECK(!st, "%s: %s", path, trt_text_error());
  c->slots = towerrt_model_id_slots(c->m, TOWERRT_ITEM);
  c->dense = towerrt_model_dense_width(c->m, TOWERRT_ITEM);
  return !st;
}

static void free_catalog(catalog *c) {
  trt_rows_free(&c->rows);
  towerrt_model_free(c->m);
}

static towerrt_features feats(const catalog *c, size_t first, size_t n) {
  towerrt_features f = {c->rows.ids + first * c->slots, n * c->slots, c->dense ? c->rows.dense + first * c->dense : NULL,
                        n * c->dense};
  return f;
}

/* Builds rows [first, first + n) of c; max_chunk 0: one append, else
 * random chunks of 0..max_chunk rows. */
static towerrt_status build(const catalog *c, const trt_build_options *o, const char *path, size_t first, size_t n,
                            size_t max_chunk, const uint64_t *keys) {
  trt_items_builder *b;
  towerrt_status st = trt_items_builder_open(c->m, path, o, &b);
  if (st) return st;
  if (!keys) keys = c->rows.keys;
  for (size_t done = 0; done < n && !st;) {
    size_t k = max_chunk ? test_rand_range(&g_rng, 0, max_chunk) : n;
    if (k > n - done) k = n - done;
    towerrt_features f = feats(c, first + done, k);
    st = trt_items_builder_append(b, &f, keys + first + done, k);
    done += k;
  }
  if (st) {
    trt_items_builder_abort(b);
    return st;
  }
  return trt_items_builder_finish(b);
}


static int exists(const char *p) { return access(p, F_OK) == 0; }

/* 1 if a temporary of the output p (p.tmp or p.tmp.<unique>, atomic_file.h)
 * is left in its directory. */
static int temporary_left(const char *p) {
  char dir[512], prefix[512];
  snprintf(dir, sizeof dir, "%s", p);
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : p;
  snprintf(prefix, sizeof prefix, "%s.tmp", base);
  if (slash) *slash = '\0';
  DIR *d = opendir(slash ? dir : ".");
  int found = 0;
  for (struct dirent *e; d && (e = readdir(d));) found |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  if (d) closedir(d);
  return found;
}

static void options(trt_build_options *o, int engine, unsigned threads) {
  trt_build_options_init(o);
  o->engine = engine;
  o->threads = threads;
}

static const char *engine_name(int e) { return e == TRT_ENGINE_ONEDNN ? "onednn" : "internal"; }

/* ---- streaming == whole array; threads -------------------------------------- */
static void test_streaming(const catalog *c, int engine) {
  size_t n = c->rows.n_keys;
  trt_build_options o;
  options(&o, engine, 1);
  o.expected = n;
  CHECK(!build(c, &o, wpath("whole.twi"), 0, n, 0, NULL), "%s whole: %s", c->dir, towerrt_last_error());
  options(&o, engine, 3); /* expected count unknown: the id map grows */
  for (size_t chunk = 1; chunk <= 64; chunk *= 8) {
    CHECK(!build(c, &o, wpath("stream.twi"), 0, n, chunk, NULL), "%s stream: %s", c->dir, towerrt_last_error());
    CHECK(test_same_files(wpath("whole.twi"), wpath("stream.twi")), "%s, %s: streaming in chunks of <= %zu rows on 3 threads != whole array",
          c->dir, engine_name(engine), chunk);
  }
  if (engine == TRT_ENGINE_ONEDNN) {
    /* the public whole-array API == the builder with the engine auto picks */
    towerrt_features f = feats(c, 0, n);
    CHECK(!towerrt_items_build(c->m, &f, c->rows.keys, n, wpath("public.twi")), "%s", towerrt_last_error());
    options(&o, TRT_ENGINE_AUTO, 0);
    CHECK(!build(c, &o, wpath("auto.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
    CHECK(test_same_files(wpath("auto.twi"), wpath("public.twi")), "%s: towerrt_items_build != the streaming builder", c->dir);
  }
  CHECK(!temporary_left(wpath("stream.twi")), "a .tmp was left behind");
}

/* ---- oneDNN vs internal kernels ------------------------------------------- */
static double max_abs_row(const float *r, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(r[i]));
  return m;
}

/* Heads of every id: |a - b| <= tol * (1 + max |row|). Returns the worst
 * relative difference. */
static double compare_heads(const catalog *c, const char *pa, const char *pb, double tol, const char *what) {
  towerrt_items *a = NULL, *b = NULL;
  CHECK(!towerrt_items_load(pa, NULL, &a), "%s", towerrt_last_error());
  CHECK(!towerrt_items_load(pb, NULL, &b), "%s", towerrt_last_error());
  double worst = 0;
  if (a && b) {
    size_t per = (size_t)a->heads * a->head_dim;
    for (size_t i = 0; i < c->rows.n_keys; i++) {
      uint32_t ra = trt_items_find(a, c->rows.keys[i]), rb = trt_items_find(b, c->rows.keys[i]);
      CHECK(ra != TRT_EMPTY_ROW && rb != TRT_EMPTY_ROW, "id %llu missing", (unsigned long long)c->rows.keys[i]);
      if (ra == TRT_EMPTY_ROW || rb == TRT_EMPTY_ROW) continue;
      const float *x = (const float *)((const char *)a->heads_data + ra * a->row_stride);
      const float *y = (const float *)((const char *)b->heads_data + rb * b->row_stride);
      double scale = 1.0 + max_abs_row(x, per);
      for (size_t k = 0; k < per; k++) worst = fmax(worst, fabs((double)x[k] - y[k]) / scale);
    }
    CHECK(worst <= tol, "%s, %s: heads differ by %.3g (relative to 1 + max |row|), tolerance %.3g", c->dir, what, worst, tol);
  }
  towerrt_items_free(a);
  towerrt_items_free(b);
  return worst;
}

/* ---- reduced-precision builds: a tolerance derived from their arithmetic ----
 *
 * For every row, the f32 item tower is run in double alongside a bound on
 * how far a bf16 or int8 engine (onednn_matmul.h, batch_matmul_internal.h)
 * can be from it, layer by layer. With x the exact input of a layer, e its
 * incoming error bound (e = 0 for the tower input, which every engine
 * computes in f32 the same way), the engine multiplies q ~ x + e with w~:
 *   |q_i - x_i| <= d_i = e_i + r_i      r_i: the input's rounding
 *   |w~_i - w_i| <= c_i                  c_i: the weight's rounding
 *   |y~ - y| <= sum_i |w~_i| d_i + c_i |x_i|  + g sum_i |w~_i| (|x_i| + d_i)
 * and ReLU does not widen it (1-Lipschitz).
 *   bf16 (8 significant bits, nearest even): r_i = 2^-9 (|x_i| + e_i),
 *     c_i = 2^-9 |w_i|; g = (in + 2) 2^-24 for the fp32 sums.
 *   int8: the call's inputs share one step s = M / 127 (s8 inputs; u8's
 *     255 levels give half that), M = max over the rows of a call of |x~|
 *     <= max over every row of |x_i| + e_i (a call holds catalog rows and
 *     zeros), so r_i = s / 2; each output channel's weights share sw =
 *     max_i |w_i| / 63 (127 levels, or 63 where oneDNN lacks VNNI; 63
 *     bounds both): c_i = sw / 2; the int32 sums are exact, then 3 fp32
 *     roundings: g = 4 * 2^-24.
 * The bound holds for any summation order, so it checks oneDNN and the
 * internal kernels alike; a saturated int16 pair sum (vpmaddubsw with 8-bit
 * inputs) breaks it. The f32 store compared with is itself within fp32
 * reassociation of the double tower: 1e-5 (1 + max |row|) is added for it,
 * the tolerance of the f32 engines' own comparison above. */
typedef struct heads_bound {
  size_t rows, per_row;
  double *bound; /* rows x per_row */
} heads_bound;

/* Rows of width n: x (values) and e (their error bounds) of every row. */
static void bound_layer(const trt_dense_layer *d, int precision, size_t rows, const double *x, const double *e, double *y,
                        double *ey) {
  const double u = ldexp(1.0, -9), eps = ldexp(1.0, -24);
  double M = 0; /* int8: the largest input any call can see */
  for (size_t r = 0; r < rows * d->in; r++) M = fmax(M, fabs(x[r]) + e[r]);
  double s = M / 127.0;
  for (size_t r = 0; r < rows; r++) {
    const double *xr = x + r * d->in, *er = e + r * d->in;
    for (uint32_t o = 0; o < d->out; o++) {
      const float *w = d->w + (size_t)o * d->in;
      double sw = 0;
      if (precision == TOWERRT_PRECISION_INT8)
        for (uint32_t i = 0; i < d->in; i++) sw = fmax(sw, fabs(w[i]) / 63.0);
      double acc = d->b ? d->b[o] : 0, err = 0, mag = 0;
      for (uint32_t i = 0; i < d->in; i++) {
        double aw = fabs(w[i]), ax = fabs(xr[i]);
        double ri = precision == TOWERRT_PRECISION_BF16 ? u * (ax + er[i]) : s / 2;
        double ci = precision == TOWERRT_PRECISION_BF16 ? u * aw : sw / 2;
        double di = er[i] + ri, wq = aw + ci;
        acc += (double)w[i] * xr[i];
        err += wq * di + ci * ax;
        mag += wq * (ax + di);
      }
      double g = precision == TOWERRT_PRECISION_BF16 ? (d->in + 2) * eps : 4 * eps;
      y[r * d->out + o] = d->relu && acc < 0 ? 0 : acc;
      ey[r * d->out + o] = err + g * mag;
    }
  }
}

/* The bound for the first n rows of c. */
static int heads_error_bound(const catalog *c, size_t n, int precision, heads_bound *hb) {
  const towerrt_model *m = c->m;
  const trt_tower *t = &m->item;
  size_t w = t->input_width > t->max_width ? t->input_width : t->max_width;
  if (t->fe[0].out > w) w = t->fe[0].out;
  double *x = calloc(n * w, sizeof *x), *e = calloc(n * w, sizeof *e), *y = calloc(n * w, sizeof *y),
         *ey = calloc(n * w, sizeof *ey);
  float *emb = calloc(t->input_width + 64, sizeof *emb), *scratch = calloc(2 * (size_t)t->n_id_fields + 64, sizeof *scratch),
        *x0 = calloc(t->input_width, sizeof *x0);
  int ok = x && e && y && ey && emb && scratch && x0;
  for (size_t r = 0; ok && r < n; r++) {
    trt_tower_input(m, t, c->rows.ids + r * c->slots, c->dense ? c->rows.dense + r * c->dense : NULL, emb, scratch, x0);
    for (uint32_t i = 0; i < t->input_width; i++) x[r * t->input_width + i] = x0[i];
  }
  for (uint32_t L = 0; ok && L <= t->n_layers; L++) {
    const trt_dense_layer *d = L < t->n_layers ? &t->layers[L] : &t->fe[0];
    bound_layer(d, precision, n, x, e, y, ey);
    double *tmp = x;
    x = y;
    y = tmp;
    tmp = e;
    e = ey;
    ey = tmp;
  }
  hb->rows = n;
  hb->per_row = (size_t)m->heads_item * m->head_dim;
  hb->bound = ok ? e : NULL;
  if (!ok) free(e);
  free(x);
  free(y);
  free(ey);
  free(emb);
  free(scratch);
  free(x0);
  CHECK(ok, "out of memory");
  return ok;
}

/* The heads of store pb (a bf16 or int8 build of the first n rows)
 * against the f32 store pa, element by element within the derived bound.
 * Returns the largest difference as a fraction of its bound. */
static double compare_heads_bounded(const catalog *c, size_t n, const char *pa, const char *pb, int precision, const char *what) {
  heads_bound hb = {0};
  if (!heads_error_bound(c, n, precision, &hb)) return 0;
  towerrt_items *a = NULL, *b = NULL;
  CHECK(!towerrt_items_load(pa, NULL, &a), "%s", towerrt_last_error());
  CHECK(!towerrt_items_load(pb, NULL, &b), "%s", towerrt_last_error());
  double worst = 0, worst_diff = 0, worst_bound = 0;
  size_t compared = 0;
  for (size_t i = 0; a && b && i < hb.rows; i++) {
    uint32_t ra = trt_items_find(a, c->rows.keys[i]), rb = trt_items_find(b, c->rows.keys[i]);
    CHECK(ra != TRT_EMPTY_ROW && rb != TRT_EMPTY_ROW, "id %llu missing", (unsigned long long)c->rows.keys[i]);
    if (ra == TRT_EMPTY_ROW || rb == TRT_EMPTY_ROW) continue;
    const float *x = (const float *)((const char *)a->heads_data + ra * a->row_stride);
    const float *y = (const float *)((const char *)b->heads_data + rb * b->row_stride);
    double slack = 1e-5 * (1.0 + max_abs_row(x, hb.per_row));
    for (size_t k = 0; k < hb.per_row; k++, compared++) {
      double diff = fabs((double)x[k] - y[k]), bound = hb.bound[i * hb.per_row + k] + slack;
      if (diff / bound > worst) {
        worst = diff / bound;
        worst_diff = diff;
        worst_bound = bound;
      }
    }
  }
  CHECK(compared > 0, "%s, %s: no heads compared", c->dir, what);
  CHECK(worst <= 1.0, "%s, %s: a head differs by %.3g, above its derived bound %.3g", c->dir, what, worst_diff, worst_bound);
  printf("  %s: %s heads: %zu values, worst difference %.3g = %.3g of its bound\n", c->dir, what, compared, worst_diff, worst);
  towerrt_items_free(a);
  towerrt_items_free(b);
  free(hb.bound);
  return worst;
}

/* The golden requests by id score the same on both stores (1e-5 relative). */
static void compare_scores(const catalog *c, const char *pa, const char *pb) {
  char path[1024];
  snprintf(path, sizeof path, "%s/requests_ids.txt", c->dir);
  FILE *f = fopen(path, "r");
  if (!f) return; /* not a golden fixture */
  towerrt_items *a = NULL, *b = NULL;
  towerrt_session *sa = NULL, *sb = NULL;
  towerrt_options o;
  towerrt_options_init(&o);
  CHECK(!towerrt_items_load(pa, NULL, &a) && !towerrt_items_load(pb, NULL, &b), "%s", towerrt_last_error());
  CHECK(a && b && !towerrt_session_create(c->m, a, &o, &sa) && !towerrt_session_create(c->m, b, &o, &sb), "%s", towerrt_last_error());
  trt_text_reader r;
  trt_request q = {0};
  int done = 0;
  size_t n = 0;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-requests", c->m);
  while (sa && sb && !st && !(st = trt_text_next_request(&r, &q, &done)) && !done) {
    size_t k = q.items.n_keys;
    float *x = malloc(k * sizeof *x), *y = malloc(k * sizeof *y);
    towerrt_features u = {q.user.ids, q.user.n_ids, q.user.dense, q.user.n_dense};
    CHECK(!towerrt_score(sa, &u, q.items.keys, k, x) && !towerrt_score(sb, &u, q.items.keys, k, y), "%s", towerrt_last_error());
    for (size_t i = 0; i < k; i++, n++)
      CHECK(test_close(x[i], y[i], 1e-5, 1e-6), "%s: request line %zu, candidate %zu: %.9g (internal) vs %.9g (onednn)", c->dir, q.line, i,
            (double)x[i], (double)y[i]);
    free(x);
    free(y);
  }
  CHECK(!st, "%s", towerrt_last_error());
  CHECK(n > 0, "%s: no scores compared", path);
  trt_text_close(&r);
  trt_request_free(&q);
  fclose(f);
  towerrt_session_free(sa);
  towerrt_session_free(sb);
  towerrt_items_free(a);
  towerrt_items_free(b);
}

static void test_parity(const catalog *c) {
  trt_build_options o;
  options(&o, TRT_ENGINE_INTERNAL, 2);
  CHECK(!build(c, &o, wpath("internal.twi"), 0, c->rows.n_keys, 0, NULL), "%s", towerrt_last_error());
  options(&o, TRT_ENGINE_ONEDNN, 2);
  CHECK(!build(c, &o, wpath("onednn.twi"), 0, c->rows.n_keys, 0, NULL), "%s", towerrt_last_error());
  double d = compare_heads(c, wpath("internal.twi"), wpath("onednn.twi"), 1e-5, "onednn vs internal");
  printf("  %s: onednn vs internal heads: max diff %.3g x (1 + max |row|)\n", c->dir, d);
  compare_scores(c, wpath("internal.twi"), wpath("onednn.twi"));
  /* bf16 and int8, each on the engine auto picks on this CPU (oneDNN, or
   * the internal kernels where oneDNN has no such matmul) and on the
   * internal kernels, within the bound derived from their arithmetic. At
   * most 256 rows (one call of either engine, so the int8 step is that of
   * these rows): the bound costs a double-precision tower per row. */
  size_t n_sub = c->rows.n_keys < 256 ? c->rows.n_keys : 256;
  for (int p = 0; p < 2; p++) {
    int precision = p ? TOWERRT_PRECISION_INT8 : TOWERRT_PRECISION_BF16;
    const char *pname = p ? "int8" : "bf16";
    for (int engine = TRT_ENGINE_AUTO; engine <= TRT_ENGINE_INTERNAL; engine++) {
      char what[64], file[32];
      options(&o, engine, 2);
      o.precision = precision;
      snprintf(file, sizeof file, "%s-%d.twi", pname, engine);
      trt_items_builder *b = NULL;
      towerrt_status st = trt_items_builder_open(c->m, wpath(file), &o, &b);
      CHECK(!st, "%s %s: %s", c->dir, pname, towerrt_last_error());
      if (st) continue; /* nothing built: nothing to compare */
      snprintf(what, sizeof what, "%s on %.40s", pname, trt_items_builder_engine(b));
      towerrt_features f = feats(c, 0, n_sub);
      st = trt_items_builder_append(b, &f, c->rows.keys, n_sub);
      if (st) trt_items_builder_abort(b);
      else st = trt_items_builder_finish(b);
      CHECK(!st, "%s %s: %s", c->dir, what, towerrt_last_error());
      if (!st) compare_heads_bounded(c, n_sub, wpath("onednn.twi"), wpath(file), precision, what);
    }
  }
}

/* ---- shards and merges ---------------------------------------------------- */
static towerrt_status merge(const catalog *c, const char *const *in, size_t n, const char *out) {
  return trt_items_merge(c->m, in, n, out, NULL, NULL);
}

static void test_shards(const catalog *c, int engine, int precision) {
  size_t n = c->rows.n_keys;
  trt_build_options o;
  options(&o, engine, 2);
  o.precision = precision;
  CHECK(!build(c, &o, wpath("single.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  static const unsigned counts[] = {1, 2, 3, 7};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    unsigned shards = counts[k];
    char names[8][64];
    const char *in[8];
    for (unsigned i = 0; i < shards; i++) {
      options(&o, engine, 1 + i % 3);
      o.precision = precision;
      o.shard_index = i;
      o.shard_count = shards;
      snprintf(names[i], sizeof names[i], "shard%u-of-%u.twi", i, shards);
      CHECK(!build(c, &o, wpath(names[i]), 0, n, 1 + i * 5, NULL), "%s shard %u/%u: %s", c->dir, i, shards, towerrt_last_error());
    }
    /* any order of the inputs */
    for (unsigned i = 0; i < shards; i++) in[i] = strdup(wpath(names[(i * 5 + 3) % shards]));
    towerrt_status st = merge(c, in, shards, wpath("merged.twi"));
    CHECK(!st, "%s: merging %u shards: %s", c->dir, shards, towerrt_last_error());
    CHECK(test_same_files(wpath("single.twi"), wpath("merged.twi")), "%s, %s (precision %d): %u shards merged != the single build", c->dir,
          engine_name(engine), precision, shards);
    if (shards == 3) {
      /* a missing, a repeated shard */
      CHECK(merge(c, in, 2, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "missing"),
            "missing shard: %s", towerrt_last_error());
      const char *rep[3] = {in[0], in[1], in[1]};
      CHECK(merge(c, rep, 3, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "twice"),
            "repeated shard: %s", towerrt_last_error());
      /* a shard of another split */
      const char *mix[3] = {in[0], in[1], wpath("shard0-of-2.twi")};
      CHECK(merge(c, mix, 3, wpath("bad.twi")) == TOWERRT_ERR_MISMATCH, "shards of 2 and 3: %s", towerrt_last_error());
      /* shards and a plain store */
      const char *plain[4] = {in[0], in[1], in[2], wpath("single.twi")};
      CHECK(merge(c, plain, 4, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "mix"),
            "shards + plain: %s", towerrt_last_error());
      CHECK(!exists(wpath("bad.twi")) && !temporary_left(wpath("bad.twi")), "a failed merge left a file");
    }
    for (unsigned i = 0; i < shards; i++) free((void *)in[i]);
  }
}

/* A tiny catalog and many shards: some are empty, and still merge. */
static void test_empty_shards(const catalog *c) {
  size_t n = c->rows.n_keys < 3 ? c->rows.n_keys : 3;
  trt_build_options o;
  options(&o, TRT_ENGINE_AUTO, 1);
  CHECK(!build(c, &o, wpath("tiny.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  const unsigned shards = 16;
  char names[16][64];
  unsigned empty = 0;
  for (unsigned i = 0; i < shards; i++) {
    options(&o, TRT_ENGINE_AUTO, 1);
    o.shard_index = i;
    o.shard_count = shards;
    snprintf(names[i], sizeof names[i], "tiny%u.twi", i);
    CHECK(!build(c, &o, wpath(names[i]), 0, n, 0, NULL), "empty shard %u: %s", i, towerrt_last_error());
    size_t k = 0;
    for (size_t r = 0; r < n; r++) k += trt_item_shard(c->rows.keys[r], shards) == i;
    empty += k == 0;
    /* an empty shard loads (0 items, every id unknown) so that it can be
     * quantized like the others; a plain store of 0 items cannot exist */
    towerrt_items *s = NULL;
    towerrt_status st = towerrt_items_load(wpath(names[i]), NULL, &s);
    CHECK(st == TOWERRT_OK && towerrt_items_count(s) == k, "shard %u of %zu items loads with %s: %s", i, k, towerrt_status_name(st),
          towerrt_last_error());
    CHECK(!s || k || trt_items_find(s, c->rows.keys[0]) == TRT_EMPTY_ROW, "an empty shard finds an id");
    towerrt_items_free(s);
  }
  CHECK(empty > 0, "expected empty shards");
  const char *full[16];
  for (unsigned i = 0; i < shards; i++) full[i] = strdup(wpath(names[shards - 1 - i]));
  CHECK(!merge(c, full, shards, wpath("tiny-merged.twi")), "%s", towerrt_last_error());
  CHECK(test_same_files(wpath("tiny.twi"), wpath("tiny-merged.twi")), "merge with empty shards != single build");
  for (unsigned i = 0; i < shards; i++) free((void *)full[i]);
}

/* Quantizes the store at `in` into `out`. */
static towerrt_status quantize_file(const char *in, towerrt_precision p, const char *out) {
  towerrt_items *s = NULL;
  towerrt_status st = towerrt_items_load(in, NULL, &s);
  if (!st) st = towerrt_items_quantize(s, p, out);
  towerrt_items_free(s);
  return st;
}

/* Quantized shards merge without an f32 store: merging the bf16 / int8
 * quantized shards (any order, empty ones included) gives byte for byte the
 * quantized single build. */
static void test_quantized_merges(const catalog *c) {
  static const towerrt_precision precs[] = {TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
  static const unsigned counts[] = {1, 2, 3, 7, 64};
  size_t n = c->rows.n_keys;
  trt_build_options o;
  options(&o, TRT_ENGINE_INTERNAL, 2);
  CHECK(!build(c, &o, wpath("qsingle.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  for (size_t p = 0; p < 2; p++) {
    const char *pn = precs[p] == TOWERRT_PRECISION_INT8 ? "int8" : "bf16";
    CHECK(!quantize_file(wpath("qsingle.twi"), precs[p], wpath("qsingle-q.twi")), "%s", towerrt_last_error());
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
      unsigned shards = counts[k];
      char names[64][48];
      const char *in[64];
      unsigned empty = 0;
      for (unsigned i = 0; i < shards; i++) {
        options(&o, TRT_ENGINE_INTERNAL, 1);
        o.shard_index = i;
        o.shard_count = shards;
        CHECK(!build(c, &o, wpath("qshard-f32.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
        snprintf(names[i], sizeof names[i], "qshard%u-of-%u.twi", i, shards);
        CHECK(!quantize_file(wpath("qshard-f32.twi"), precs[p], wpath(names[i])), "%s shard %u/%u: %s", pn, i, shards, towerrt_last_error());
        size_t rows = 0;
        for (size_t r = 0; r < n; r++) rows += trt_item_shard(c->rows.keys[r], shards) == i;
        empty += rows == 0;
      }
      for (unsigned i = 0; i < shards; i++) in[i] = strdup(wpath(names[(i * 5 + 3) % shards]));
      towerrt_status st = towerrt_items_merge(c->m, in, shards, wpath("qmerged.twi"));
      CHECK(!st, "%s: merging %u %s shards: %s", c->dir, shards, pn, towerrt_last_error());
      CHECK(test_same_files(wpath("qsingle-q.twi"), wpath("qmerged.twi")), "%s: %u %s shards merged (%u empty) != the quantized single build",
            c->dir, shards, pn, empty);
      if (shards == 2) {
        /* an f32 shard among quantized ones */
        options(&o, TRT_ENGINE_INTERNAL, 1);
        o.shard_count = 2;
        CHECK(!build(c, &o, wpath("qshard-f32.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
        const char *mixed[2] = {wpath("qshard-f32.twi"), wpath(names[1])};
        st = towerrt_items_merge(c->m, mixed, 2, wpath("qbad.twi"));
        CHECK(st == TOWERRT_ERR_MISMATCH && strstr(towerrt_last_error(), "dtype"), "f32 + %s shards: %s (%s)", pn, towerrt_status_name(st),
              towerrt_last_error());
        CHECK(!exists(wpath("qbad.twi")) && !exists(wpath("qbad.twi.tmp")), "a failed merge left a file");
      }
      for (unsigned i = 0; i < shards; i++) free((void *)in[i]);
    }
    /* plain quantized stores concatenate: two halves == the quantized whole */
    options(&o, TRT_ENGINE_INTERNAL, 1);
    CHECK(!build(c, &o, wpath("qa.twi"), 0, n / 2, 0, NULL), "%s", towerrt_last_error());
    CHECK(!build(c, &o, wpath("qb.twi"), n / 2, n - n / 2, 0, NULL), "%s", towerrt_last_error());
    CHECK(!quantize_file(wpath("qa.twi"), precs[p], wpath("qa-q.twi")) && !quantize_file(wpath("qb.twi"), precs[p], wpath("qb-q.twi")),
          "%s", towerrt_last_error());
    const char *halves[2] = {strdup(wpath("qa-q.twi")), strdup(wpath("qb-q.twi"))};
    CHECK(!towerrt_items_merge(c->m, halves, 2, wpath("qmerged.twi")), "%s", towerrt_last_error());
    CHECK(test_same_files(wpath("qsingle-q.twi"), wpath("qmerged.twi")), "%s: two %s halves merged != the quantized whole", c->dir, pn);
    free((void *)halves[0]);
    free((void *)halves[1]);
  }
}

/* The public streaming builder (towerrt.h): 3 shards appended in random
 * chunks, merged == towerrt_items_build of the whole catalog; the field
 * list adds up to the model's slots and widths. */
static void test_public_builder(const catalog *c) {
  size_t n = c->rows.n_keys;
  towerrt_features all = feats(c, 0, n);
  CHECK(!towerrt_items_build(c->m, &all, c->rows.keys, n, wpath("pub-single.twi")), "%s", towerrt_last_error());
  const char *in[3];
  for (uint32_t i = 0; i < 3; i++) {
    towerrt_build_options o;
    towerrt_build_options_init(&o);
    o.threads = 1 + i;
    o.shard_index = i;
    o.shard_count = 3;
    char name[32];
    snprintf(name, sizeof name, "pub%u.twi", i);
    in[i] = strdup(wpath(name));
    towerrt_items_builder *b = NULL;
    towerrt_status st = towerrt_items_builder_open(c->m, in[i], &o, &b);
    size_t want = 0;
    for (size_t r = 0; r < n; r++) want += towerrt_item_shard(c->rows.keys[r], 3) == i;
    for (size_t done = 0; done < n && !st;) {
      size_t k = test_rand_range(&g_rng, 1, 9);
      if (k > n - done) k = n - done;
      towerrt_features f = feats(c, done, k);
      st = towerrt_items_builder_append(b, &f, c->rows.keys + done, k);
      done += k;
    }
    CHECK(!st && towerrt_items_builder_rows(b) == want, "public builder shard %u: %s (%zu rows, %zu expected)", i, towerrt_last_error(),
          towerrt_items_builder_rows(b), want);
    if (st) towerrt_items_builder_abort(b);
    else CHECK(!towerrt_items_builder_finish(b), "%s", towerrt_last_error());
  }
  const char *order[3] = {in[2], in[0], in[1]};
  CHECK(!towerrt_items_merge(c->m, order, 3, wpath("pub-merged.twi")), "%s", towerrt_last_error());
  CHECK(test_same_files(wpath("pub-single.twi"), wpath("pub-merged.twi")), "%s: public builder shards merged != towerrt_items_build", c->dir);
  /* the same shards fed only their own rows, with their input ordinals */
  for (uint32_t i = 0; i < 3; i++) {
    towerrt_build_options o;
    towerrt_build_options_init(&o);
    o.shard_index = i;
    o.shard_count = 3;
    o.input_rows = n;
    towerrt_items_builder *b = NULL;
    towerrt_status st = towerrt_items_builder_open(c->m, in[i], &o, &b);
    for (size_t r = 0; r < n && !st; r++) {
      if (towerrt_item_shard(c->rows.keys[r], 3) != i) continue;
      towerrt_features f = feats(c, r, 1);
      uint64_t ord = r;
      st = towerrt_items_builder_append_ordered(b, &f, c->rows.keys + r, &ord, 1);
    }
    CHECK(!st, "ordered shard %u: %s", i, towerrt_last_error());
    if (st) towerrt_items_builder_abort(b);
    else CHECK(!towerrt_items_builder_finish(b), "%s", towerrt_last_error());
  }
  CHECK(!towerrt_items_merge(c->m, order, 3, wpath("pub-merged.twi")), "%s", towerrt_last_error());
  CHECK(test_same_files(wpath("pub-single.twi"), wpath("pub-merged.twi")), "%s: ordered shards merged != towerrt_items_build", c->dir);
  /* a row of another shard, an ordinal going back, plain append: refused */
  {
    towerrt_build_options o;
    towerrt_build_options_init(&o);
    o.shard_count = 2;
    o.input_rows = n;
    unlink(wpath("x.twi")); /* a file left by an earlier run of the scratch directory */
    towerrt_items_builder *b = NULL;
    CHECK(!towerrt_items_builder_open(c->m, wpath("x.twi"), &o, &b), "%s", towerrt_last_error());
    size_t r = 0;
    while (r < n && towerrt_item_shard(c->rows.keys[r], 2) == 0) r++;
    towerrt_features f = feats(c, r < n ? r : 0, 1);
    uint64_t ord = 0;
    CHECK(r == n || towerrt_items_builder_append_ordered(b, &f, c->rows.keys + r, &ord, 1) == TOWERRT_ERR_INVALID_ARGUMENT,
          "a row of another shard accepted");
    towerrt_items_builder_abort(b);
    CHECK(!towerrt_items_builder_open(c->m, wpath("x.twi"), &o, &b), "%s", towerrt_last_error());
    CHECK(towerrt_items_builder_append(b, &f, c->rows.keys, 1) == TOWERRT_ERR_INVALID_ARGUMENT, "plain append with input_rows");
    towerrt_items_builder_abort(b);
    CHECK(access(wpath("x.twi"), F_OK) != 0 && access(wpath("x.twi.tmp"), F_OK) != 0, "an aborted build left a file");
  }
  for (int i = 0; i < 3; i++) free((void *)in[i]);
  towerrt_build_options bad;
  towerrt_build_options_init(&bad);
  bad.struct_size = 4;
  towerrt_items_builder *b = NULL;
  CHECK(towerrt_items_builder_open(c->m, wpath("x.twi"), &bad, &b) == TOWERRT_ERR_INVALID_ARGUMENT && !b, "struct_size unchecked");
  size_t slots[2] = {0, 0}, dense[2] = {0, 0};
  for (size_t i = 0; i < towerrt_model_field_count(c->m); i++) {
    towerrt_field_info fi;
    CHECK(!towerrt_model_field(c->m, i, &fi) && fi.name && fi.name[0], "field %zu", i);
    if (fi.kind == 2) dense[fi.side] += fi.width;
    else slots[fi.side] += fi.width;
  }
  for (int side = 0; side < 2; side++)
    CHECK(slots[side] == towerrt_model_id_slots(c->m, (towerrt_side)side) && dense[side] == towerrt_model_dense_width(c->m, (towerrt_side)side),
          "side %d: fields add up to %zu slots / %zu dense", side, slots[side], dense[side]);
}

static void test_duplicates(const catalog *c) {
  size_t n = c->rows.n_keys;
  if (n < 4) return;
  uint64_t *keys = malloc(n * sizeof *keys);
  memcpy(keys, c->rows.keys, n * sizeof *keys);
  keys[n - 1] = keys[1];
  trt_build_options o;
  options(&o, TRT_ENGINE_AUTO, 2);
  char want[64];
  snprintf(want, sizeof want, "%llu", (unsigned long long)keys[1]);
  towerrt_status st = build(c, &o, wpath("dup.twi"), 0, n, 3, keys);
  CHECK(st == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "twice") && strstr(towerrt_last_error(), want),
        "duplicate id in one build: %s (%s)", towerrt_status_name(st), towerrt_last_error());
  CHECK(!exists(wpath("dup.twi")) && !temporary_left(wpath("dup.twi")), "a failed build left a file");
  /* across stores: rows [0, n/2] and [n/2, n) share row n/2 */
  size_t h = n / 2;
  CHECK(!build(c, &o, wpath("partA.twi"), 0, h + 1, 0, NULL) && !build(c, &o, wpath("partB.twi"), h, n - h, 0, NULL), "%s",
        towerrt_last_error());
  const char *in[2] = {strdup(wpath("partA.twi")), strdup(wpath("partB.twi"))};
  snprintf(want, sizeof want, "%llu", (unsigned long long)c->rows.keys[h]);
  st = merge(c, in, 2, wpath("dupmerge.twi"));
  CHECK(st == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), want) && strstr(towerrt_last_error(), "partA.twi") &&
            strstr(towerrt_last_error(), "partB.twi"),
        "duplicate id across stores: %s (%s)", towerrt_status_name(st), towerrt_last_error());
  CHECK(!exists(wpath("dupmerge.twi")) && !temporary_left(wpath("dupmerge.twi")), "a failed merge left a file");
  /* plain stores are concatenated in the order given */
  CHECK(!build(c, &o, wpath("partB.twi"), h + 1, n - h - 1, 0, NULL), "%s", towerrt_last_error());
  CHECK(!merge(c, in, 2, wpath("parts.twi")), "%s", towerrt_last_error());
  CHECK(!build(c, &o, wpath("all.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  CHECK(test_same_files(wpath("all.twi"), wpath("parts.twi")), "two parts merged in order != the single build");
  free((void *)in[0]);
  free((void *)in[1]);
  free(keys);
}

/* Damaged inputs: the status of towerrt_items_load, and the path. */
static void test_damaged(const catalog *c, const catalog *other) {
  size_t n = c->rows.n_keys;
  trt_build_options o;
  options(&o, TRT_ENGINE_AUTO, 1);
  o.shard_count = 2;
  o.shard_index = 0;
  CHECK(!build(c, &o, wpath("s0.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  o.shard_index = 1;
  CHECK(!build(c, &o, wpath("s1.twi"), 0, n, 0, NULL), "%s", towerrt_last_error());
  size_t size = 0;
  unsigned char *bytes = test_read_file(wpath("s1.twi"), &size);
  CHECK(bytes && size > 1000, "cannot read s1.twi");
  if (!bytes) return;
  const char *in[2] = {strdup(wpath("s0.twi")), strdup(wpath("s1-damaged.twi"))};
  /* truncated */
  test_write_file(in[1], bytes, size - 100);
  towerrt_status st = merge(c, in, 2, wpath("m.twi"));
  CHECK(st == TOWERRT_ERR_TRUNCATED && strstr(towerrt_last_error(), "s1-damaged.twi"), "truncated shard: %s (%s)",
        towerrt_status_name(st), towerrt_last_error());
  /* a flipped byte in the heads */
  bytes[size / 2] ^= 0x40;
  test_write_file(in[1], bytes, size);
  st = merge(c, in, 2, wpath("m.twi"));
  CHECK(st == TOWERRT_ERR_CHECKSUM && strstr(towerrt_last_error(), "s1-damaged.twi"), "corrupt shard: %s (%s)", towerrt_status_name(st),
        towerrt_last_error());
  bytes[size / 2] ^= 0x40;
  /* not a store */
  memcpy(bytes, "NOTASTOR", 8);
  test_write_file(in[1], bytes, size);
  st = merge(c, in, 2, wpath("m.twi"));
  CHECK(st == TOWERRT_ERR_BAD_MAGIC, "not a store: %s (%s)", towerrt_status_name(st), towerrt_last_error());
  /* missing file */
  unlink(in[1]);
  CHECK(merge(c, in, 2, wpath("m.twi")) == TOWERRT_ERR_IO, "missing input: %s", towerrt_last_error());
  CHECK(!exists(wpath("m.twi")) && !temporary_left(wpath("m.twi")), "a failed merge left a file");
  /* another model's stores */
  if (other && other->m->item_fingerprint != c->m->item_fingerprint) {
    CHECK(!build(other, &o, wpath("other.twi"), 0, other->rows.n_keys, 0, NULL), "%s", towerrt_last_error());
    const char *mixed[2] = {in[0], wpath("other.twi")};
    st = merge(c, mixed, 2, wpath("m.twi"));
    CHECK(st == TOWERRT_ERR_MISMATCH && strstr(towerrt_last_error(), "other.twi"), "another model's shard: %s (%s)",
          towerrt_status_name(st), towerrt_last_error());
  }
  free(bytes);
  free((void *)in[0]);
  free((void *)in[1]);
}

/* ---- units ---------------------------------------------------------------- */
static void test_crc_combine(void) {
  unsigned char buf[4096];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)test_rand_u64(&g_rng);
  for (int t = 0; t < 200; t++) {
    size_t a = test_rand_range(&g_rng, 0, 2048), b = test_rand_range(&g_rng, 0, 2048);
    uint32_t whole = trt_crc32(0, buf, a + b);
    uint32_t comb = trt_crc32_combine(trt_crc32(0, buf, a), trt_crc32(0, buf + a, b), b);
    CHECK(whole == comb, "crc combine of %zu + %zu bytes: 0x%08x != 0x%08x", a, b, comb, whole);
  }
}

static void test_shard_rule(void) {
  /* the rule stated in the docs, and every shard used */
  size_t hits[7] = {0};
  for (uint64_t i = 0; i < 7000; i++) {
    uint64_t id = i * 1000003u;
    uint32_t s = trt_item_shard(id, 7);
    CHECK(s == (uint32_t)((trt_splitmix64(id) >> 32) % 7), "shard rule");
    hits[s < 7 ? s : 0]++;
  }
  for (int s = 0; s < 7; s++) CHECK(hits[s] > 800 && hits[s] < 1200, "shard %d holds %zu of 7000 ids", s, hits[s]);
}

/* Primitives are made once per (layer, batch) shape and reused. */
static void test_primitive_cache(const catalog *c) {
  if (!trt_mm_available()) return;
  trt_mm *mm = NULL;
  CHECK(!trt_mm_create(1, TOWERRT_PRECISION_F32, &mm), "%s", towerrt_last_error());
  if (!mm) return;
  const trt_dense_layer *d = &c->m->item.layers[0];
  size_t B = 64;
  float *x = calloc(B * d->in, sizeof *x), *y = calloc(B * d->out, sizeof *y), *ref = calloc(B * d->out, sizeof *ref);
  for (size_t i = 0; i < B * d->in; i++) x[i] = test_rand_float(&g_rng, -1, 1);
  for (int k = 0; k < 10; k++) CHECK(!trt_mm_dense(mm, d, 0, x, d->in, B, y, d->out), "%s", towerrt_last_error());
  trt_mm_stats s;
  trt_mm_get_stats(mm, &s);
  CHECK(s.primitives == 1 && s.weight_reorders == 1 && s.calls == 10, "10 calls of one shape: %zu primitives, %zu reorders, %zu calls",
        s.primitives, s.weight_reorders, s.calls);
  CHECK(!trt_mm_dense(mm, d, 0, x, d->in, 7, y, d->out), "%s", towerrt_last_error());
  trt_mm_get_stats(mm, &s);
  CHECK(s.primitives == 2, "a second batch size makes one more primitive (%zu)", s.primitives);
  /* against the scalar oracle */
  CHECK(!trt_mm_dense(mm, d, 0, x, d->in, B, y, d->out), "%s", towerrt_last_error());
  trt_dense_f32_scalar(x, B, d->in, d->w, d->b, d->out, d->relu, ref);
  for (size_t i = 0; i < B * d->out; i++) CHECK(test_close(y[i], ref[i], 1e-5, 1e-5), "y[%zu] %g vs %g", i, (double)y[i], (double)ref[i]);
  free(x);
  free(y);
  free(ref);
  trt_mm_free(mm);
}

/* libdnnl is not instrumented: under ThreadSanitizer its primitive cache,
 * shared by the build threads under its own locks, reads as races. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_items_build WORK_DIR MODEL_DIR...\n");
    return 2;
  }
  g_work = argv[1];
  /* mkdir -p: in a cross build no earlier test makes the parent */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", g_work);
  for (char *p = dir + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(dir, 0777);
      *p = '/';
    }
  if (mkdir(g_work, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s: %s\n", g_work, strerror(errno));
    return 1;
  }
  g_rng = test_seed("test_items_build");
  printf("oneDNN: %s\n", trt_mm_describe());
  test_crc_combine();
  test_shard_rule();
  catalog *cats = calloc((size_t)argc, sizeof *cats);
  int n_cat = 0;
  for (int i = 2; i < argc; i++)
    if (load_catalog(argv[i], &cats[n_cat])) n_cat++;
  for (int i = 0; i < n_cat; i++) {
    const catalog *c = &cats[i];
    printf("%s: %zu items\n", c->dir, c->rows.n_keys);
    test_streaming(c, TRT_ENGINE_INTERNAL);
    test_shards(c, TRT_ENGINE_INTERNAL, TOWERRT_PRECISION_F32);
    test_shards(c, TRT_ENGINE_INTERNAL, TOWERRT_PRECISION_BF16);
    if (trt_mm_available() && !UNDER_TSAN) {
      test_streaming(c, TRT_ENGINE_ONEDNN);
      test_shards(c, TRT_ENGINE_ONEDNN, TOWERRT_PRECISION_F32);
      test_shards(c, TRT_ENGINE_AUTO, TOWERRT_PRECISION_BF16); /* oneDNN where it makes bf16, else internal */
      test_parity(c);
      test_primitive_cache(c);
    }
    test_empty_shards(c);
    test_quantized_merges(c);
    test_public_builder(c);
    test_duplicates(c);
    test_damaged(c, &cats[(i + 1) % n_cat]);
  }
  for (int i = 0; i < n_cat; i++) free_catalog(&cats[i]);
  free(cats);
  return test_finish("test_items_build");
}
