/* The bad-input contract, one case at a time: each broken file or request
 * gives its own status and a message naming what was wrong; never a crash,
 * never a score. usage: test_errors FIXTURE_DIR OTHER_FIXTURE_DIR */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/container.h"
#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

static char g_tmp[64];
static unsigned char *g_model;
static size_t g_model_size;

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

/* Loads `bytes` as a model; checks the status and that the message has `word`. */
static void expect_model(const unsigned char *bytes, size_t n, towerrt_status want, const char *word, const char *what) {
  test_write_file(g_tmp, bytes, n);
  towerrt_model *m = NULL;
  towerrt_status st = towerrt_model_load(g_tmp, NULL, &m);
  CHECK(st == want, "%s: got %s (%s), want %s", what, towerrt_status_name(st), towerrt_last_error(), towerrt_status_name(want));
  CHECK(m == NULL || st == TOWERRT_OK, "%s: model handle set on failure", what);
  CHECK(st == TOWERRT_OK || strlen(towerrt_last_error()) > 10, "%s: empty message", what);
  if (word) CHECK(strstr(towerrt_last_error(), word) != NULL, "%s: message '%s' does not name '%s'", what, towerrt_last_error(), word);
  towerrt_model_free(m);
}

static unsigned char *copy_model(void) {
  unsigned char *p = malloc(g_model_size);
  memcpy(p, g_model, g_model_size);
  return p;
}

static unsigned char *section(unsigned char *f, uint32_t kind, uint64_t *size) {
  uint32_t n = trt_rd32(f + 32);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = f + 64 + 32 * i;
    if (trt_rd32(e) == kind) {
      *size = trt_rd64(e + 16);
      return f + trt_rd64(e + 8);
    }
  }
  return NULL;
}

/* Record of the tensor named `name` in the TENSORS section. */
static unsigned char *tensor_record(unsigned char *f, const char *name) {
  uint64_t size;
  unsigned char *t = section(f, TRT_SEC_TENSORS, &size);
  uint32_t n = trt_rd32(t);
  for (uint32_t i = 0; i < n; i++)
    if (strcmp((const char *)t + 8 + 128 * i, name) == 0) return t + 8 + 128 * i;
  return NULL;
}

static void test_container_errors(void) {
  expect_model(g_model, 40, TOWERRT_ERR_TRUNCATED, NULL, "40-byte file");
  unsigned char *f = copy_model();
  memcpy(f, "NOTMODEL", 8);
  expect_model(f, g_model_size, TOWERRT_ERR_BAD_MAGIC, "magic", "bad magic");
  memcpy(f, g_model, 8);
  put32(f + 8, 2);
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_VERSION, "version 2", "version 2");
  put32(f + 8, 1);
  put32(f + 36, 4); /* header flags must be 0 */
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_FORMAT, "flags", "header flags");
  free(f);
  /* Truncated at every section boundary and inside each section. */
  uint32_t n = trt_rd32(g_model + 32);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t off = trt_rd64(g_model + 64 + 32 * i + 8), sz = trt_rd64(g_model + 64 + 32 * i + 16);
    uint64_t cuts[3] = {off, off + sz / 2, off + sz};
    for (int c = 0; c < 3; c++)
      if (cuts[c] >= 64 && cuts[c] < g_model_size) expect_model(g_model, (size_t)cuts[c], TOWERRT_ERR_TRUNCATED, "truncated", "truncated");
  }
  /* A flipped byte anywhere: header, table or any section. */
  uint64_t spots[] = {20, 64 + 5, 0, 0, 0, 0, 0};
  for (uint32_t i = 0; i < n && i < 5; i++) spots[2 + i] = trt_rd64(g_model + 64 + 32 * i + 8) + 3;
  for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
    if (!spots[i] || spots[i] >= g_model_size) continue;
    f = copy_model();
    f[spots[i]] ^= 0x40;
    expect_model(f, g_model_size, TOWERRT_ERR_CHECKSUM, "checksum", "flipped byte");
    free(f);
  }
}

static void test_structure_errors(void) {
  unsigned char *f = copy_model();
  uint64_t size;
  unsigned char *tens = section(f, TRT_SEC_TENSORS, &size);
  put32(tens, 0x7FFFFFFF);
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_FORMAT, "TENSORS count", "absurd tensor count");
  free(f);

  f = copy_model();
  unsigned char *w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  CHECK(w != NULL, "fixture lacks user_fe_dnn.linears.0.weight");
  if (!w) return;
  put32(w + 88, trt_rd32(w + 88) + 1); /* dims[0] + 1: nbytes no longer matches */
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_SHAPE, "user_fe_dnn.linears.0.weight", "wrong shape");
  free(f);

  f = copy_model();
  w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  uint32_t d0 = trt_rd32(w + 88), d1 = trt_rd32(w + 92);
  put32(w + 88, d1); /* transposed: same nbytes, wrong for the graph */
  put32(w + 92, d0);
  test_fix_crcs(f, g_model_size);
  if (d0 != d1) expect_model(f, g_model_size, TOWERRT_ERR_SHAPE, "user_fe_dnn.linears.0.weight", "transposed weight");
  free(f);

  f = copy_model();
  w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  put64(w + 104, trt_rd64(w + 104) + (UINT64_C(1) << 40));
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_FORMAT, "past the DATA", "tensor offset past the end");
  free(f);

  f = copy_model();
  w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  unsigned char *b = tensor_record(f, "user_fe_dnn.linears.0.bias");
  put64(b + 104, trt_rd64(w + 104)); /* bias shares the weight's bytes */
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_FORMAT, "overlap", "overlapping tensors");
  free(f);

  f = copy_model();
  w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  put32(w + 80, 42);
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_UNSUPPORTED, "dtype", "unknown dtype");
  free(f);

  f = copy_model();
  w = tensor_record(f, "user_fe_dnn.linears.0.weight");
  unsigned char *data = section(f, TRT_SEC_DATA, &size);
  float nan = NAN;
  memcpy(data + trt_rd64(w + 104) + 4 * 3, &nan, 4);
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_NONFINITE, "user_fe_dnn.linears.0.weight", "NaN weight");
  free(f);

  f = copy_model();
  unsigned char *e = f + 64; /* first section entry: offset past the end */
  put64(e + 8, (g_model_size + 64) & ~(uint64_t)63);
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_FORMAT, "past the end", "section past the end");
  free(f);

  f = copy_model();
  unsigned char *g = section(f, TRT_SEC_GRAPH, &size);
  put32(g + 8, 99); /* first node: unknown op */
  test_fix_crcs(f, g_model_size);
  expect_model(f, g_model_size, TOWERRT_ERR_UNSUPPORTED, "op 99", "unknown graph op");
  free(f);
}

typedef struct fixture {
  towerrt_model *m;
  towerrt_items *items;
  towerrt_session *s;
  trt_request q; /* first request by id */
  trt_request qf; /* first request by features */
} fixture;

static towerrt_status build_store(const towerrt_model *m, const char *dir, const char *out) {
  trt_rows rows = {0};
  towerrt_status st = test_read_catalog(m, dir, &rows);
  towerrt_features feats = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
  if (!st) st = towerrt_items_build(m, &feats, rows.keys, rows.n_keys, out);
  if (!st && rows.n_keys >= 2) { /* duplicate ids are refused */
    uint64_t saved = rows.keys[1];
    rows.keys[1] = rows.keys[0];
    char dup_path[64], dup_tmp[64];
    snprintf(dup_path, sizeof dup_path, "/tmp/towerrt_dup_%d.twi", (int)getpid());
    snprintf(dup_tmp, sizeof dup_tmp, "towerrt_dup_%d.twi.tmp", (int)getpid());
    towerrt_status dup = towerrt_items_build(m, &feats, rows.keys, rows.n_keys, dup_path);
    CHECK(dup == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "twice"), "duplicate item ids: %s", towerrt_last_error());
    /* neither the store nor its temporary (PATH.tmp.<unique>) is left */
    int left = access(dup_path, F_OK) == 0;
    DIR *d = opendir("/tmp");
    for (struct dirent *e; d && (e = readdir(d));) left |= strncmp(e->d_name, dup_tmp, strlen(dup_tmp)) == 0;
    if (d) closedir(d);
    CHECK(!left, "failed build left a file");
    rows.keys[1] = saved;
  }
  trt_rows_free(&rows);
  return st;
}

static void expect_score(fixture *fx, towerrt_status got, towerrt_status want, const char *word, const char *what, const float *scores,
                         size_t k) {
  CHECK(got == want, "%s: got %s (%s), want %s", what, towerrt_status_name(got), towerrt_session_error(fx->s), towerrt_status_name(want));
  if (word) CHECK(strstr(towerrt_session_error(fx->s), word), "%s: message '%s' lacks '%s'", what, towerrt_session_error(fx->s), word);
  for (size_t i = 0; scores && i < k; i++) CHECK(isnan(scores[i]), "%s: score %zu is %g, not NaN, after an error", what, i, (double)scores[i]);
}

static void test_request_errors(fixture *fx) {
  trt_request *q = &fx->q;
  size_t k = q->items.n_keys;
  float *scores = malloc((k + 1) * sizeof *scores);
  int64_t *ids = malloc(q->user.n_ids * sizeof *ids);
  memcpy(ids, q->user.ids, q->user.n_ids * sizeof *ids);
  towerrt_features user = {ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  uint64_t *keys = malloc(k * sizeof *keys);
  memcpy(keys, q->items.keys, k * sizeof *keys);
  CHECK(towerrt_score(fx->s, &user, keys, k, scores) == TOWERRT_OK, "baseline request: %s", towerrt_session_error(fx->s));

  keys[k / 2] = UINT64_C(0xDEADBEEFCAFE);
  expect_score(fx, towerrt_score(fx->s, &user, keys, k, scores), TOWERRT_ERR_UNKNOWN_ITEM, "244837814094590", "unknown item id", scores, k);
  keys[k / 2] = q->items.keys[k / 2];

  ids[0] = 1000000000;
  expect_score(fx, towerrt_score(fx->s, &user, keys, k, scores), TOWERRT_ERR_ID_OUT_OF_RANGE, "1000000000", "id beyond vocabulary", scores, k);
  ids[0] = -1;
  expect_score(fx, towerrt_score(fx->s, &user, keys, k, scores), TOWERRT_ERR_ID_OUT_OF_RANGE, "-1", "negative id", scores, k);
  ids[0] = q->user.ids[0];

  expect_score(fx, towerrt_score(fx->s, &user, keys, 0, scores), TOWERRT_ERR_EMPTY_REQUEST, "k = 0", "k = 0", NULL, 0);
  towerrt_features short_user = user;
  short_user.n_ids--;
  expect_score(fx, towerrt_score(fx->s, &short_user, keys, k, scores), TOWERRT_ERR_SHAPE, "id slots", "wrong id count", scores, k);
  expect_score(fx, towerrt_score(fx->s, NULL, keys, k, scores), TOWERRT_ERR_INVALID_ARGUMENT, "NULL", "null user", NULL, 0);
  expect_score(fx, towerrt_score(fx->s, &user, NULL, k, scores), TOWERRT_ERR_INVALID_ARGUMENT, "NULL", "null ids", NULL, 0);
  expect_score(fx, towerrt_score(fx->s, &user, keys, k, NULL), TOWERRT_ERR_INVALID_ARGUMENT, "NULL", "null scores", NULL, 0);
  CHECK(towerrt_score(NULL, &user, keys, k, scores) == TOWERRT_ERR_INVALID_ARGUMENT, "null session");
  if (q->user.n_dense) {
    float *dense = malloc(q->user.n_dense * sizeof *dense);
    memcpy(dense, q->user.dense, q->user.n_dense * sizeof *dense);
    dense[0] = NAN;
    user.dense = dense;
    expect_score(fx, towerrt_score(fx->s, &user, keys, k, scores), TOWERRT_ERR_NONFINITE, "NaN", "NaN dense value", scores, k);
    user.dense = q->user.dense;
    free(dense);
  }
  /* k above the planned maximum. */
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = (uint32_t)(k > 1 ? k - 1 : 1);
  towerrt_session *small;
  CHECK(towerrt_session_create(fx->m, fx->items, &o, &small) == TOWERRT_OK, "%s", towerrt_last_error());
  if (k > 1) {
    CHECK(towerrt_score(small, &user, keys, k, scores) == TOWERRT_ERR_LIMIT, "k above max_k");
    CHECK(strstr(towerrt_session_error(small), "max_k") != NULL, "k above max_k: '%s'", towerrt_session_error(small));
  }
  towerrt_session_free(small);
  /* A session without an item store cannot score by id. */
  towerrt_session *bare;
  CHECK(towerrt_session_create(fx->m, NULL, NULL, &bare) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_score(bare, &user, keys, k, scores) == TOWERRT_ERR_NO_ITEMS, "no item store");
  towerrt_session_free(bare);
  /* Asking for FE layers the model lacks. */
  o.max_k = 100;
  o.fe_layer_mask = 1u << 15;
  CHECK(towerrt_session_create(fx->m, fx->items, &o, &bare) == TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask beyond the model");
  o.struct_size = 3;
  CHECK(towerrt_session_create(fx->m, fx->items, &o, &bare) == TOWERRT_ERR_INVALID_ARGUMENT, "bad struct_size");
  free(scores), free(ids), free(keys);
}

static void test_items_errors(fixture *fx, const char *store, const char *other_dir) {
  size_t n;
  unsigned char *f = test_read_file(store, &n);
  char path[] = "/tmp/towerrt_items_err_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  towerrt_items *it = NULL;
  test_write_file(path, f, n - 7);
  CHECK(towerrt_items_load(path, NULL, &it) == TOWERRT_ERR_TRUNCATED, "truncated store: %s", towerrt_last_error());
  f[n - 20] ^= 1;
  test_write_file(path, f, n);
  CHECK(towerrt_items_load(path, NULL, &it) == TOWERRT_ERR_CHECKSUM, "flipped store byte: %s", towerrt_last_error());
  f[n - 20] ^= 1;
  /* A store from another model is refused. */
  towerrt_model *other = NULL;
  char mp[512];
  snprintf(mp, sizeof mp, "%s/model.twr", other_dir);
  CHECK(towerrt_model_load(mp, NULL, &other) == TOWERRT_OK, "%s", towerrt_last_error());
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(other, fx->items, NULL, &s);
  CHECK(st == TOWERRT_ERR_MISMATCH, "store of another model: %s (%s)", towerrt_status_name(st), towerrt_last_error());
  towerrt_session_free(s);
  towerrt_model_free(other);
  free(f);
  remove(path);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_errors FIXTURE_DIR OTHER_FIXTURE_DIR\n");
    return 2;
  }
  char mp[512];
  snprintf(mp, sizeof mp, "%s/model.twr", argv[1]);
  g_model = test_read_file(mp, &g_model_size);
  CHECK(g_model != NULL, "cannot read %s", mp);
  if (!g_model) return test_finish("test_errors");
  strcpy(g_tmp, "/tmp/towerrt_err_XXXXXX");
  int fd = mkstemp(g_tmp);
  if (fd >= 0) close(fd);
  towerrt_model *m = NULL;
  CHECK(towerrt_model_load("/nonexistent/model.twr", NULL, &m) == TOWERRT_ERR_IO, "missing file");
  CHECK(strstr(towerrt_last_error(), "/nonexistent/model.twr") != NULL, "missing file message names the path");
  CHECK(towerrt_model_load(NULL, NULL, &m) == TOWERRT_ERR_INVALID_ARGUMENT, "null path");
  test_container_errors();
  test_structure_errors();

  fixture fx = {0};
  char store[] = "/tmp/towerrt_store_XXXXXX";
  fd = mkstemp(store);
  if (fd >= 0) close(fd);
  CHECK(towerrt_model_load(mp, NULL, &fx.m) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(build_store(fx.m, argv[1], store) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_items_load(store, NULL, &fx.items) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_session_create(fx.m, fx.items, NULL, &fx.s) == TOWERRT_OK, "%s", towerrt_last_error());
  if (fx.s) {
    CHECK(test_first_request(fx.m, argv[1], "requests_ids.txt", &fx.q), "read the first request of %s", argv[1]);
    test_request_errors(&fx);
    test_items_errors(&fx, store, argv[2]);
  }
  trt_request_free(&fx.q);
  towerrt_session_free(fx.s);
  towerrt_items_free(fx.items);
  towerrt_model_free(fx.m);
  remove(store);
  remove(g_tmp);
  free(g_model);
  return test_finish("test_errors");
}
