#define _GNU_SOURCE /* memmem */
/* Resource limits on values read from files and requests: a value may make
 * the runtime refuse the input, never allocate or loop without bound.
 *  - ID_MAP probe distance: an item store whose ids all collide into one
 *    run of slots made every lookup (and the load-time validation, once per
 *    id) walk the whole run: quadratic load, linear lookups. Ids more than
 *    TRT_ID_MAP_MAX_PROBE slots past their home slot are now refused at
 *    load (FORMAT) and at build (LIMIT), and lookups stop there.
 *  - container and META counts, sections past the end, ITEM_HEADS / ID_MAP
 *    sizes that do not match items.count, candidates per request.
 * usage: test_limits FIXTURE_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/container.h"
#include "runtime/item_store.h"
#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

static char g_tmp[64];

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- inverse of splitmix64: ids with a chosen home slot ------------------- */
static uint64_t inv_mul(uint64_t a) {
  uint64_t x = a; /* Newton: correct to 3, 6, 12, 24, 48, 96 bits */
  for (int i = 0; i < 5; i++) x *= 2 - a * x;
  return x;
}
static uint64_t unshift(uint64_t y, int s) {
  uint64_t x = y;
  for (int k = s; k < 64; k += s) x ^= y >> k;
  return x;
}
static uint64_t unmix(uint64_t z) {
  z = unshift(z, 31);
  z *= inv_mul(UINT64_C(0x94D049BB133111EB));
  z = unshift(z, 27);
  z *= inv_mul(UINT64_C(0xBF58476D1CE4E5B9));
  z = unshift(z, 30);
  return z - UINT64_C(0x9E3779B97F4A7C15);
}
/* The j-th id (j >= 1) whose home slot is 0 in any table of <= 2^32 slots. */
static uint64_t colliding_id(uint64_t j) { return unmix(j << 32); }

/* ---- a .twi written by hand ---------------------------------------------- */
typedef struct buf {
  unsigned char *p;
  size_t n;
} buf;
static void add(buf *b, const void *src, size_t n) {
  b->p = realloc(b->p, b->n + n);
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void meta_int(buf *b, const char *key, int64_t v) {
  unsigned char t[11];
  uint16_t kl = (uint16_t)strlen(key);
  t[0] = (unsigned char)kl, t[1] = (unsigned char)(kl >> 8);
  add(b, t, 2);
  add(b, key, kl);
  t[0] = TRT_META_INT;
  put64(t + 1, (uint64_t)v);
  add(b, t, 9);
}
static void meta_str(buf *b, const char *key, const char *v) {
  unsigned char t[5];
  uint16_t kl = (uint16_t)strlen(key);
  t[0] = (unsigned char)kl, t[1] = (unsigned char)(kl >> 8);
  add(b, t, 2);
  add(b, key, kl);
  t[0] = TRT_META_STRING;
  put32(t + 1, (uint32_t)strlen(v));
  add(b, t, 5);
  add(b, v, strlen(v));
}

/* A store of n rows (1 head x 1 dim, zeros) whose ids are `ids`, placed by
 * linear probing in a table of n_slots; returns the file bytes. */
static unsigned char *make_store(const uint64_t *ids, size_t n, uint64_t n_slots, size_t *size) {
  buf meta = {0};
  unsigned char c4[4];
  put32(c4, 6);
  add(&meta, c4, 4);
  meta_int(&meta, "items.count", (int64_t)n);
  meta_int(&meta, "items.heads", 1);
  meta_int(&meta, "items.head_dim", 1);
  meta_str(&meta, "items.dtype", "f32");
  meta_int(&meta, "items.row_stride", 64);
  meta_int(&meta, "model.fingerprint", 0);
  uint64_t off_meta = 192, off_heads = (off_meta + meta.n + 63) & ~UINT64_C(63), heads = (uint64_t)n * 64;
  uint64_t off_map = off_heads + heads, map = 16 + n_slots * 16;
  *size = (size_t)(off_map + map);
  unsigned char *f = calloc(1, *size);
  memcpy(f, "TWRITEMS", 8);
  put32(f + 8, 1);
  put32(f + 12, 64);
  put64(f + 16, *size);
  put64(f + 24, 64);
  put32(f + 32, 3);
  const uint64_t sec[3][3] = {{TRT_SEC_META, off_meta, meta.n}, {TRT_SEC_ITEM_HEADS, off_heads, heads}, {TRT_SEC_ID_MAP, off_map, map}};
  for (int i = 0; i < 3; i++) {
    put32(f + 64 + 32 * i, (uint32_t)sec[i][0]);
    put64(f + 64 + 32 * i + 8, sec[i][1]);
    put64(f + 64 + 32 * i + 16, sec[i][2]);
  }
  memcpy(f + off_meta, meta.p, meta.n);
  unsigned char *slots = f + off_map + 16;
  put64(f + off_map, n_slots);
  for (uint64_t i = 0; i < n_slots; i++) put32(slots + i * 16 + 8, TRT_EMPTY_ROW);
  /* Linear probing; next[] skips runs of filled slots (union-find), so
   * building a pathological table is not itself quadratic. */
  uint64_t *next = malloc(n_slots * sizeof *next);
  for (uint64_t i = 0; i < n_slots; i++) next[i] = i;
  for (size_t r = 0; r < n; r++) {
    uint64_t i = trt_splitmix64(ids[r]) & (n_slots - 1), root = i;
    while (next[root] != root) root = next[root];
    for (uint64_t j = i; j != root;) { /* path compression */
      uint64_t up = next[j];
      next[j] = root;
      j = up;
    }
    put64(slots + root * 16, ids[r]);
    put32(slots + root * 16 + 8, (uint32_t)r);
    next[root] = (root + 1) & (n_slots - 1);
  }
  free(next);
  test_fix_crcs(f, *size);
  free(meta.p);
  return f;
}

static towerrt_status load_bytes(const unsigned char *f, size_t n, towerrt_items **out) {
  test_write_file(g_tmp, f, n);
  return towerrt_items_load(g_tmp, NULL, out);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_probe_limit(void) {
  for (uint64_t j = 1; j < 4; j++)
    CHECK((trt_splitmix64(colliding_id(j)) & 0xFFFFFFFFu) == 0, "unmix is not the inverse of splitmix64");
  /* Boundary: ids 0..TRT_ID_MAP_MAX_PROBE slots from home load; one more does not. */
  size_t n = TRT_ID_MAP_MAX_PROBE + 2, size;
  uint64_t *ids = malloc(n * sizeof *ids);
  for (size_t i = 0; i < n; i++) ids[i] = colliding_id(i + 1);
  unsigned char *f = make_store(ids, n - 1, 1024, &size);
  towerrt_items *it = NULL;
  towerrt_status st = load_bytes(f, size, &it);
  CHECK(st == TOWERRT_OK, "a run of %u colliding ids (max probe distance): %s", TRT_ID_MAP_MAX_PROBE + 1, towerrt_last_error());
  towerrt_items_free(it);
  free(f);
  f = make_store(ids, n, 1024, &size);
  st = load_bytes(f, size, &it);
  CHECK(st == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "limit"), "one id past the probe limit: %s (%s)",
        towerrt_status_name(st), towerrt_last_error());
  free(f);
  free(ids);
  /* A big pathological store: refused at once, not validated in O(n^2). */
  n = 1u << 16;
  ids = malloc(n * sizeof *ids);
  for (size_t i = 0; i < n; i++) ids[i] = colliding_id(i + 1);
  f = make_store(ids, n, (uint64_t)n * 2, &size);
  double t0 = now();
  st = load_bytes(f, size, &it);
  double dt = now() - t0;
  CHECK(st == TOWERRT_ERR_FORMAT, "65536 colliding ids: %s (%s)", towerrt_status_name(st), towerrt_last_error());
  CHECK(dt < 1.0, "65536 colliding ids took %.2f s to refuse", dt);
  printf("65536 colliding ids refused in %.3f s: %s\n", dt, towerrt_last_error());
  towerrt_items_free(it);
  free(f);
  free(ids);
}

/* The builder refuses ids that would break the probe limit. */
static void test_build_limit(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  CHECK(towerrt_model_load(path, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!m) return;
  size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), iw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  size_t n = 300; /* table of 1024 slots: every id homes at slot 0 */
  int64_t *ids = calloc(n * is, sizeof *ids);
  float *dense = calloc(n * iw + 1, sizeof *dense);
  uint64_t *keys = malloc(n * sizeof *keys);
  for (size_t i = 0; i < n; i++) keys[i] = colliding_id(i + 1);
  towerrt_features f = {ids, n * is, iw ? dense : NULL, n * iw};
  char out[1100];
  snprintf(out, sizeof out, "%s.twi", g_tmp);
  towerrt_status st = towerrt_items_build(m, &f, keys, n, out);
  CHECK(st == TOWERRT_ERR_LIMIT && strstr(towerrt_last_error(), "limit"), "build with colliding ids: %s (%s)", towerrt_status_name(st),
        towerrt_last_error());
  printf("300 colliding ids refused by the builder: %s\n", towerrt_last_error());
  CHECK(access(out, F_OK) != 0, "a refused build left %s", out);
  n = TRT_ID_MAP_MAX_PROBE + 1;
  f.n_ids = n * is;
  f.n_dense = n * iw;
  st = towerrt_items_build(m, &f, keys, n, out);
  CHECK(st == TOWERRT_OK, "build with %zu colliding ids (the limit): %s", n, towerrt_last_error());
  towerrt_items *it = NULL;
  CHECK(towerrt_items_load(out, NULL, &it) == TOWERRT_OK, "%s", towerrt_last_error());
  /* Every id is found; absent ids that home into the run stop at the limit. */
  towerrt_session *s = NULL;
  towerrt_options o;
  towerrt_options_init(&o);
  CHECK(it && towerrt_session_create(m, it, &o, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  if (s) {
    size_t us = towerrt_model_id_slots(m, TOWERRT_USER), uw = towerrt_model_dense_width(m, TOWERRT_USER);
    int64_t *uids = calloc(us, sizeof *uids);
    float *ud = calloc(uw + 1, sizeof *ud), *scores = malloc(n * sizeof *scores);
    towerrt_features user = {uids, us, uw ? ud : NULL, uw};
    CHECK(towerrt_score(s, &user, keys, n, scores) == TOWERRT_OK, "%s", towerrt_session_error(s));
    uint64_t absent = colliding_id(5000);
    CHECK(towerrt_score(s, &user, &absent, 1, scores) == TOWERRT_ERR_UNKNOWN_ITEM, "%s", towerrt_session_error(s));
    free(uids), free(ud), free(scores);
  }
  towerrt_session_free(s);
  towerrt_items_free(it);
  remove(out);
  free(ids), free(dense), free(keys);
  towerrt_model_free(m);
}

/* Counts and sizes in a store that do not fit the file. */
static void test_store_counts(void) {
  uint64_t ids[4] = {1, 2, 3, 4};
  size_t size;
  unsigned char *f = make_store(ids, 4, 16, &size);
  towerrt_items *it = NULL;
  CHECK(load_bytes(f, size, &it) == TOWERRT_OK, "hand-made store: %s", towerrt_last_error());
  towerrt_items_free(it);
  it = NULL;
  /* n_slots absurd */
  uint64_t off_map = trt_rd64(f + 64 + 64 + 8);
  unsigned char *g = malloc(size);
  memcpy(g, f, size);
  put64(g + off_map, UINT64_C(1) << 62);
  test_fix_crcs(g, size);
  CHECK(load_bytes(g, size, &it) == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "ID_MAP"), "n_slots 2^62: %s",
        towerrt_last_error());
  /* items.count absurd: the META value is the first int after its key */
  memcpy(g, f, size);
  unsigned char *key = memmem(g, size, "items.count", 11);
  CHECK(key != NULL, "no items.count key");
  if (key) {
    put64(key + 12, UINT64_C(4000000000));
    test_fix_crcs(g, size);
    CHECK(load_bytes(g, size, &it) == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "ITEM_HEADS"), "items.count 4e9: %s",
          towerrt_last_error());
  }
  /* META count above its limit */
  memcpy(g, f, size);
  put32(g + trt_rd64(g + 64 + 8), 5000);
  test_fix_crcs(g, size);
  CHECK(load_bytes(g, size, &it) == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "4096"), "META count 5000: %s",
        towerrt_last_error());
  /* 17 sections */
  memcpy(g, f, size);
  put32(g + 32, 17);
  test_fix_crcs(g, size);
  CHECK(load_bytes(g, size, &it) == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "section count"), "17 sections: %s",
        towerrt_last_error());
  /* a section of 2^63 bytes */
  memcpy(g, f, size);
  put64(g + 64 + 32 + 16, UINT64_C(1) << 63);
  test_fix_crcs(g, size);
  CHECK(load_bytes(g, size, &it) == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "past the end"), "2^63-byte section: %s",
        towerrt_last_error());
  CHECK(it == NULL, "handle set on failure");
  free(g);
  free(f);
}

/* The request reader stops at max_candidates instead of growing forever. */
static void test_request_limit(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  CHECK(towerrt_model_load(path, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!m) return;
  size_t us = towerrt_model_id_slots(m, TOWERRT_USER), uw = towerrt_model_dense_width(m, TOWERRT_USER);
  char *text = malloc(1 << 20);
  size_t n = (size_t)snprintf(text, 64, "towerrt-requests 1\nuser");
  for (size_t i = 0; i < us; i++) n += (size_t)sprintf(text + n, " 0");
  if (uw) n += (size_t)sprintf(text + n, " ;");
  for (size_t i = 0; i < uw; i++) n += (size_t)sprintf(text + n, " 0.5");
  n += (size_t)sprintf(text + n, "\nitems");
  for (int i = 0; i < 20000; i++) n += (size_t)sprintf(text + n, " %d", i);
  n += (size_t)sprintf(text + n, "\nend\n");
  FILE *f = fmemopen(text, n, "r");
  trt_text_reader r;
  trt_request q = {0};
  int done = 0;
  CHECK(trt_text_open(&r, f, "many.txt", "towerrt-requests", m) == TOWERRT_OK, "%s", trt_text_error());
  r.max_candidates = 1000;
  towerrt_status st = trt_text_next_request(&r, &q, &done);
  CHECK(st == TOWERRT_ERR_LIMIT && strstr(trt_text_error(), "many.txt:3"), "20000 candidates, limit 1000: %s (%s)",
        towerrt_status_name(st), trt_text_error());
  CHECK(q.items.cap_keys <= 2048, "the reader grew to %zu keys past its limit", q.items.cap_keys);
  trt_request_free(&q);
  trt_text_close(&r);
  fclose(f);
  free(text);
  towerrt_model_free(m);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_limits FIXTURE_DIR\n");
    return 2;
  }
  strcpy(g_tmp, "/tmp/towerrt_limits_XXXXXX");
  int fd = mkstemp(g_tmp);
  if (fd >= 0) close(fd);
  test_probe_limit();
  test_build_limit(argv[1]);
  test_store_counts();
  test_request_limit(argv[1]);
  remove(g_tmp);
  return test_finish("test_limits");
}
