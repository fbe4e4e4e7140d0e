/* The scoring path performs no heap allocation once a session exists:
 * every malloc / calloc / realloc / aligned_alloc / posix_memalign /
 * memalign / valloc / free is counted, and the count must stay 0 across
 * many towerrt_score and towerrt_score_features calls on every golden
 * fixture, successful ones and every kind of error (unknown item id, k = 0,
 * k above max_k, ids out of range, NaN dense values, wrong counts, NULL
 * pointers, scoring by id without a store), including sessions whose
 * requests are split over a worker pool and sessions on an int8 store
 * (loaded as a TOWERRT_LOAD_COPY copy with huge pages asked for),
 * and a session on an overlay (a base and a delta store, skip-unknown);
 * with --fit, FIT models (their own request path, by features and by id).
 *
 * Plain builds interpose the allocator symbols in this executable (calls
 * from inside libc, e.g. by vsnprintf while formatting a message, are
 * counted too) and forward to glibc's __libc_* entry points. Sanitizer
 * builds own malloc, so there (TRT_NOALLOC_WRAP) the test links with
 * -Wl,--wrap and counts the calls made by the runtime's and this file's
 * code. A positive control (session creation must be seen allocating)
 * proves the counter is live.
 * usage: test_no_alloc FIXTURE_DIR... */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

static volatile int g_counting;
static atomic_long g_calls;
/* Frees on threads other than main, counted always: pool workers free
 * their start-up argument when they first run, which may be late. */
static pthread_t g_main;
static atomic_long g_worker_frees;
#define COUNT()              \
  do {                       \
    if (g_counting) g_calls++; \
  } while (0)
#define COUNT_FREE()                                                 \
  do {                                                               \
    COUNT();                                                         \
    if (!pthread_equal(pthread_self(), g_main)) g_worker_frees++;    \
  } while (0)

#ifdef TRT_NOALLOC_WRAP
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__real_aligned_alloc(size_t al, size_t n);
int __real_posix_memalign(void **out, size_t al, size_t n);
void *__real_memalign(size_t al, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_aligned_alloc(size_t al, size_t n);
int __wrap_posix_memalign(void **out, size_t al, size_t n);
void *__wrap_memalign(size_t al, size_t n);
void *__wrap_malloc(size_t n) { COUNT(); return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { COUNT(); return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { COUNT(); return __real_realloc(p, n); }
void __wrap_free(void *p) { COUNT_FREE(); __real_free(p); }
void *__wrap_aligned_alloc(size_t al, size_t n) { COUNT(); return __real_aligned_alloc(al, n); }
int __wrap_posix_memalign(void **out, size_t al, size_t n) { COUNT(); return __real_posix_memalign(out, al, n); }
void *__wrap_memalign(size_t al, size_t n) { COUNT(); return __real_memalign(al, n); }
static const char *const k_mode = "wrapped calls (sanitizer build)";
#else
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t al, size_t n);
extern void *__libc_valloc(size_t n);
void *memalign(size_t al, size_t n);
void *valloc(size_t n);
void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void free(void *p) { COUNT_FREE(); __libc_free(p); }
void *aligned_alloc(size_t al, size_t n) { COUNT(); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { COUNT(); return __libc_memalign(al, n); }
void *valloc(size_t n) { COUNT(); return __libc_valloc(n); }
int posix_memalign(void **out, size_t al, size_t n) {
  COUNT();
  if (al < sizeof(void *) || (al & (al - 1))) return EINVAL;
  void *p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
static const char *const k_mode = "interposed allocator (every call in the process)";
#endif

#define MAX_REQ 64

typedef struct prepared {
  trt_request req[MAX_REQ];
  size_t n;
} prepared;

static void read_requests(const char *dir, const char *file, const towerrt_model *m, prepared *p) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s", path);
  if (!f) return;
  trt_text_reader r;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-requests", m);
  for (int done = 0; !st && p->n < MAX_REQ;) {
    trt_request q = {0};
    st = trt_text_next_request(&r, &q, &done);
    if (st || done) {
      trt_request_free(&q);
      break;
    }
    p->req[p->n++] = q;
  }
  CHECK(st == TOWERRT_OK, "%s: %s", path, trt_text_error());
  trt_text_close(&r);
  fclose(f);
}

typedef struct expect {
  towerrt_status got, want;
  const char *what;
} expect;

static void run_fixture(const char *dir, towerrt_pool *pool) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  CHECK(towerrt_model_load(path, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!m) return;
  /* catalog + store */
  snprintf(path, sizeof path, "%s/items.txt", dir);
  FILE *f = fopen(path, "r");
  trt_text_reader r;
  trt_rows cat = {0};
  int done = 0;
  towerrt_status st = f ? trt_text_open(&r, f, path, "towerrt-items", m) : TOWERRT_ERR_IO;
  while (!st && !done) st = trt_text_read_items(&r, &cat, 1u << 20, &done);
  if (f) {
    trt_text_close(&r);
    fclose(f);
  }
  char store[] = "/tmp/towerrt_noalloc_XXXXXX";
  int fd = mkstemp(store);
  if (fd >= 0) close(fd);
  towerrt_features catf = {cat.ids, cat.n_ids, cat.dense, cat.n_dense};
  if (!st) st = towerrt_items_build(m, &catf, cat.keys, cat.n_keys, store);
  if (!st) st = towerrt_items_load(store, NULL, &items);
  remove(store);
  CHECK(st == TOWERRT_OK && cat.n_keys > 0, "%s: store: %s", dir, towerrt_last_error());
  prepared by_id = {0}, by_feat = {0};
  read_requests(dir, "requests_ids.txt", m, &by_id);
  read_requests(dir, "requests_features.txt", m, &by_feat);
  if (st || !by_id.n || !by_feat.n) goto out;

  /* Positive control: creating a session allocates (its arena). */
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = 1000;
  towerrt_session *s = NULL, *bare = NULL, *logits = NULL, *pooled = NULL, *int8 = NULL, *q8 = NULL, *qb = NULL;
  towerrt_model *m8 = NULL, *mb = NULL;
  towerrt_items *items8 = NULL;
  g_calls = 0;
  g_counting = 1;
  towerrt_status cst = towerrt_session_create(m, items, &o, &s);
  g_counting = 0;
  CHECK(cst == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(g_calls > 0, "the allocation counter saw nothing while a session was created: the hooks are not live");
  o.output_logits = 1;
  CHECK(towerrt_session_create(m, NULL, &o, &bare) == TOWERRT_OK, "%s", towerrt_last_error());
  o.fe_layer_mask = towerrt_model_fe_layer_mask(m) & (0u - towerrt_model_fe_layer_mask(m)); /* lowest trained layer */
  CHECK(towerrt_session_create(m, items, &o, &logits) == TOWERRT_OK, "%s", towerrt_last_error());
  towerrt_options_init(&o);
  o.max_k = 1000;
  o.pool = pool;
  o.threads = 3;
  CHECK(!pool || towerrt_session_create(m, items, &o, &pooled) == TOWERRT_OK, "%s", towerrt_last_error());
  char store8[] = "/tmp/towerrt_noalloc8_XXXXXX";
  fd = mkstemp(store8);
  if (fd >= 0) close(fd);
  /* the int8 store as a copy with huge pages asked for (options.huge_pages,
   * the default): how the store is held must not change the scoring path */
  towerrt_options lo;
  towerrt_options_init(&lo);
  lo.load_mode = TOWERRT_LOAD_COPY;
  lo.huge_pages = 1;
  CHECK(towerrt_items_quantize(items, TOWERRT_PRECISION_INT8, store8) == TOWERRT_OK && towerrt_items_load(store8, &lo, &items8) == TOWERRT_OK,
        "int8 store: %s", towerrt_last_error());
  remove(store8);
  o.pool = NULL;
  o.threads = 1;
  CHECK(!items8 || towerrt_session_create(m, items8, &o, &int8) == TOWERRT_OK, "%s", towerrt_last_error());
  /* Centred int8 stores (each item on its mean head, the catalog on one):
   * the terms are added per candidate / per request without allocating. */
  towerrt_session *centred[2] = {NULL, NULL};
  towerrt_items *citems[2] = {NULL, NULL};
  for (int c = 0; c < 2; c++) {
    memcpy(store8 + strlen(store8) - 6, "XXXXXX", 6);
    fd = mkstemp(store8);
    if (fd >= 0) close(fd);
    towerrt_centring mode = c ? TOWERRT_CENTRING_MEAN : TOWERRT_CENTRING_ROW_MEAN;
    CHECK(towerrt_items_quantize_centred(items, TOWERRT_PRECISION_INT8, mode, store8) == TOWERRT_OK &&
          towerrt_items_load(store8, NULL, &citems[c]) == TOWERRT_OK && towerrt_session_create(m, citems[c], &o, &centred[c]) == TOWERRT_OK,
          "centred int8 store: %s", towerrt_last_error());
    remove(store8);
  }
  /* Quantized models (user tower in s8 / bf16) on the int8 / f32 stores. */
  char qmodel[] = "/tmp/towerrt_noallocq_XXXXXX";
  fd = mkstemp(qmodel);
  if (fd >= 0) close(fd);
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, NULL, 0, qmodel) == TOWERRT_OK && towerrt_model_load(qmodel, NULL, &m8) == TOWERRT_OK &&
        towerrt_model_quantize(m, TOWERRT_PRECISION_BF16, NULL, 0, qmodel) == TOWERRT_OK && towerrt_model_load(qmodel, NULL, &mb) == TOWERRT_OK,
        "quantized models: %s", towerrt_last_error());
  remove(qmodel);
  CHECK(!m8 || !items8 || towerrt_session_create(m8, items8, &o, &q8) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(!mb || towerrt_session_create(mb, items, &o, &qb) == TOWERRT_OK, "%s", towerrt_last_error());
  /* An overlay: the first half of the catalog changed (same rows, from the
   * delta), its last item removed; scored skip-unknown. */
  towerrt_session *ovs = NULL;
  towerrt_items *changes = NULL, *delta = NULL, *ov = NULL;
  char dstore[] = "/tmp/towerrt_noallocd_XXXXXX";
  fd = mkstemp(dstore);
  if (fd >= 0) close(fd);
  size_t half = (cat.n_keys + 1) / 2, is0 = towerrt_model_id_slots(m, TOWERRT_ITEM), iw0 = towerrt_model_dense_width(m, TOWERRT_ITEM);
  towerrt_features halff = {cat.ids, half * is0, iw0 ? cat.dense : NULL, half * iw0};
  uint64_t removed = cat.keys[cat.n_keys - 1];
  CHECK(towerrt_items_build(m, &halff, cat.keys, half, dstore) == TOWERRT_OK && towerrt_items_load(dstore, NULL, &changes) == TOWERRT_OK &&
        towerrt_items_make_delta(items, cat.n_keys > 1 ? changes : NULL, &removed, 1, dstore) == TOWERRT_OK &&
        towerrt_items_load(dstore, NULL, &delta) == TOWERRT_OK &&
        towerrt_items_overlay(items, (const towerrt_items *const *)&delta, 1, &ov) == TOWERRT_OK,
        "overlay: %s", towerrt_last_error());
  remove(dstore);
  o.skip_unknown_items = 1;
  CHECK(!ov || towerrt_session_create(m, ov, &o, &ovs) == TOWERRT_OK, "%s", towerrt_last_error());
  o.skip_unknown_items = 0;
  if (!s || !bare || !logits || !pooled || !int8 || !q8 || !qb || !ovs || !centred[0] || !centred[1]) goto sessions;

  /* Everything the calls need, allocated up front. */
  size_t kmax = 1001, is = towerrt_model_id_slots(m, TOWERRT_ITEM), iw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  float *scores = malloc(kmax * sizeof *scores);
  uint64_t *keys = malloc(kmax * sizeof *keys), *unknown = malloc(kmax * sizeof *unknown);
  int64_t *iids = malloc(kmax * is * sizeof *iids);
  float *idense = malloc((kmax * iw + 1) * sizeof *idense);
  for (size_t c = 0; c < kmax; c++) {
    size_t row = (c * 7u) % cat.n_keys;
    keys[c] = unknown[c] = cat.keys[row];
    memcpy(iids + c * is, cat.ids + row * is, is * sizeof *iids);
    memcpy(idense + c * iw, cat.dense + row * iw, iw * sizeof *idense);
  }
  unknown[kmax / 2] = UINT64_C(0xDEADBEEFCAFE);
  const trt_request *u0 = &by_id.req[0];
  size_t un = u0->user.n_ids, ud = u0->user.n_dense;
  int64_t *bad_ids = malloc((un + 1) * sizeof *bad_ids);
  float *bad_dense = malloc((ud + 1) * sizeof *bad_dense);
  memcpy(bad_ids, u0->user.ids, un * sizeof *bad_ids);
  memcpy(bad_dense, u0->user.dense, ud * sizeof *bad_dense);
  bad_ids[0] = -1;
  if (ud) bad_dense[ud - 1] = NAN;
  towerrt_features user0 = {u0->user.ids, un, u0->user.dense, ud};
  towerrt_features user_bad_id = {bad_ids, un, u0->user.dense, ud};
  towerrt_features user_nan = {u0->user.ids, un, bad_dense, ud};
  towerrt_features user_short = {u0->user.ids, un - 1, u0->user.dense, ud};
  towerrt_features many = {iids, 0, iw ? idense : NULL, 0};
  towerrt_features wrong = {iids, 5 * is + 1, iw ? idense : NULL, 5 * iw};

  /* Offline scoring: heads of the first user computed (that allocates),
   * then scored with towerrt_score_heads (that must not). */
  uint64_t top_ids[1024];
  float *heads0 = malloc(towerrt_session_user_heads_size(s) * sizeof *heads0);
  CHECK(towerrt_user_heads(s, &user0, 1, heads0) == TOWERRT_OK, "%s", towerrt_session_error(s));
  expect ex[64];
  size_t n_ex = 0, calls = 0, failures = 0;
  g_calls = 0;
  g_counting = 1; /* ---- nothing below may allocate ---- */
  for (int rep = 0; rep < 20; rep++) failures += towerrt_score_heads(s, heads0, keys, 1000, scores) != TOWERRT_OK;
  for (int rep = 0; rep < 20; rep++) {
    for (size_t i = 0; i < by_id.n; i++) {
      const trt_request *q = &by_id.req[i];
      towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
      failures += towerrt_score(s, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      failures += towerrt_score(logits, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      failures += towerrt_score(pooled, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      failures += towerrt_score(int8, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      failures += towerrt_score(q8, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      failures += towerrt_score(qb, &u, q->items.keys, q->items.n_keys, scores) != TOWERRT_OK;
      calls += 4;
    }
    for (size_t i = 0; i < by_feat.n; i++) {
      const trt_request *q = &by_feat.req[i];
      towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
      towerrt_features it = {q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense};
      failures += towerrt_score_features(s, &u, &it, q->items.n_rows, scores) != TOWERRT_OK;
      failures += towerrt_score_features(bare, &u, &it, q->items.n_rows, scores) != TOWERRT_OK;
      calls += 2;
    }
    /* many candidates: several id blocks / item-tower blocks */
    failures += towerrt_score(s, &user0, keys, 1000, scores) != TOWERRT_OK;
    many.n_ids = 100 * is;
    many.n_dense = 100 * iw;
    failures += towerrt_score_features(s, &user0, &many, 100, scores) != TOWERRT_OK;
    failures += towerrt_score(pooled, &user0, keys, 1000, scores) != TOWERRT_OK;
    failures += towerrt_score_features(pooled, &user0, &many, 100, scores) != TOWERRT_OK;
    failures += towerrt_score(int8, &user0, keys, 1000, scores) != TOWERRT_OK;
    failures += towerrt_score(centred[0], &user0, keys, 1000, scores) != TOWERRT_OK;
    failures += towerrt_score(centred[1], &user0, keys, 1000, scores) != TOWERRT_OK;
    failures += towerrt_score_topn(centred[0], &user0, keys, 1000, 10, top_ids, scores) != TOWERRT_OK;
    calls += 3;
    failures += towerrt_score(ovs, &user0, keys, 1000, scores) != TOWERRT_OK;
    failures += towerrt_score_topn(ovs, &user0, keys, 1000, 10, top_ids, scores) != TOWERRT_OK;
    calls += 7;
    /* top-n: the heaps live in the session arena */
    failures += towerrt_score_topn(s, &user0, keys, 1000, 100, top_ids, scores) != TOWERRT_OK;
    failures += towerrt_score_topn(pooled, &user0, keys, 1000, 100, top_ids, scores) != TOWERRT_OK;
    failures += towerrt_score_topn(int8, &user0, keys, 1000, 10, top_ids, scores) != TOWERRT_OK;
    failures += towerrt_score_heads_topn(s, heads0, keys, 1000, 100, top_ids, scores) != TOWERRT_OK;
    failures += towerrt_score_features_topn(pooled, &user0, &many, 100, 7, top_ids, scores) != TOWERRT_OK;
    calls += 5;
    /* errors */
    if (rep == 0) n_ex = 0;
#define EXPECT(call, status, label)                                      \
  do {                                                                   \
    towerrt_status got_ = (call);                                        \
    if (rep == 0 && n_ex < 64) ex[n_ex++] = (expect){got_, status, label}; \
    calls++;                                                             \
  } while (0)
    EXPECT(towerrt_score(s, &user0, unknown, 1000, scores), TOWERRT_ERR_UNKNOWN_ITEM, "unknown item id");
    EXPECT(towerrt_score(pooled, &user0, unknown, 1000, scores), TOWERRT_ERR_UNKNOWN_ITEM, "unknown item id (pool)");
    EXPECT(towerrt_score(int8, &user0, unknown, 1000, scores), TOWERRT_ERR_UNKNOWN_ITEM, "unknown item id (int8)");
    EXPECT(towerrt_score(s, &user0, keys, 1001, scores), TOWERRT_ERR_LIMIT, "k above max_k");
    EXPECT(towerrt_score(s, &user0, keys, 0, scores), TOWERRT_ERR_EMPTY_REQUEST, "k = 0");
    EXPECT(towerrt_score(s, &user_bad_id, keys, 10, scores), TOWERRT_ERR_ID_OUT_OF_RANGE, "user id -1");
    EXPECT(towerrt_score(s, &user_short, keys, 10, scores), TOWERRT_ERR_SHAPE, "too few user ids");
    EXPECT(towerrt_score(s, NULL, keys, 10, scores), TOWERRT_ERR_INVALID_ARGUMENT, "NULL user");
    EXPECT(towerrt_score(s, &user0, keys, 10, NULL), TOWERRT_ERR_INVALID_ARGUMENT, "NULL scores");
    EXPECT(towerrt_score(NULL, &user0, keys, 10, scores), TOWERRT_ERR_INVALID_ARGUMENT, "NULL session");
    EXPECT(towerrt_score(bare, &user0, keys, 10, scores), TOWERRT_ERR_NO_ITEMS, "by id without a store");
    EXPECT(towerrt_score_features(s, &user0, &wrong, 5, scores), TOWERRT_ERR_SHAPE, "wrong item id count");
    EXPECT(towerrt_score_features(s, &user0, &many, 1001, scores), TOWERRT_ERR_LIMIT, "k above max_k (features)");
    if (ud) EXPECT(towerrt_score(s, &user_nan, keys, 10, scores), TOWERRT_ERR_NONFINITE, "NaN dense");
    EXPECT(towerrt_score_topn(s, &user0, unknown, 1000, 10, top_ids, scores), TOWERRT_ERR_UNKNOWN_ITEM, "top-n: unknown item id");
    EXPECT(towerrt_score_topn(s, &user0, keys, 1000, 1001, top_ids, scores), TOWERRT_ERR_LIMIT, "top-n: n above max_topn");
#undef EXPECT
  }
  g_counting = 0; /* ---- end of the checked window ---- */
  long allocs = g_calls;
  CHECK(allocs == 0, "%s: %ld allocator calls during %zu scoring calls after the session was created", dir, allocs, calls);
  CHECK(failures == 0, "%s: %zu valid scoring calls failed (%s)", dir, failures, towerrt_session_error(s));
  for (size_t i = 0; i < n_ex; i++)
    CHECK(ex[i].got == ex[i].want, "%s: %s gave %s, expected %s", dir, ex[i].what, towerrt_status_name(ex[i].got),
          towerrt_status_name(ex[i].want));
  printf("%s: %zu scoring calls, %ld allocator calls\n", dir, calls, allocs);
  free(scores), free(heads0), free(keys), free(unknown), free(iids), free(idense), free(bad_ids), free(bad_dense);
sessions:
  towerrt_session_free(s);
  towerrt_session_free(bare);
  towerrt_session_free(logits);
  towerrt_session_free(pooled);
  towerrt_session_free(int8);
  for (int c = 0; c < 2; c++) {
    towerrt_session_free(centred[c]);
    towerrt_items_free(citems[c]);
  }
  towerrt_session_free(q8);
  towerrt_session_free(qb);
  towerrt_model_free(m8);
  towerrt_model_free(mb);
  towerrt_items_free(items8);
  towerrt_session_free(ovs);
  towerrt_items_free(ov);
  towerrt_items_free(delta);
  towerrt_items_free(changes);
out:
  for (size_t i = 0; i < by_id.n; i++) trt_request_free(&by_id.req[i]);
  for (size_t i = 0; i < by_feat.n; i++) trt_request_free(&by_feat.req[i]);
  trt_rows_free(&cat);
  towerrt_items_free(items);
  towerrt_model_free(m);
}

/* n random feature rows of one side (ids within each field's vocabulary). */
static towerrt_features random_rows(const towerrt_model *m, towerrt_side side, size_t n, uint64_t *rng) {
  size_t slots = towerrt_model_id_slots(m, side), dw = towerrt_model_dense_width(m, side);
  int64_t *ids = calloc(n * slots + 1, sizeof *ids);
  float *dense = calloc(n * dw + 1, sizeof *dense);
  for (size_t r = 0; r < n; r++)
    for (size_t i = 0, s = 0, d = 0; i < towerrt_model_field_count(m); i++) {
      towerrt_field_info f;
      towerrt_model_field(m, i, &f);
      for (uint32_t j = 0; f.side == side && j < f.width; j++) {
        if (f.kind == 2) dense[r * dw + d++] = test_rand_float(rng, -1.0f, 1.0f);
        else ids[r * slots + s++] = (int64_t)(test_rand_u64(rng) % f.vocab);
      }
    }
  return (towerrt_features){ids, n * slots, dw ? dense : NULL, n * dw};
}

/* A FIT model (tests/fixtures/golden_fit): its own request path (family.h
 * score_features / score_rows) allocates nothing either: by features, by
 * id (strict and skipping unknown ids), top-n, and LIMIT / UNKNOWN_ITEM. */
static void run_fit(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  towerrt_model *m = NULL;
  if (towerrt_model_load(path, NULL, &m) != TOWERRT_OK) {
    CHECK(0, "%s: %s", path, towerrt_last_error());
    return;
  }
  enum { K = 150 };
  uint64_t rng = test_seed("test_no_alloc fit"), keys[K + 1], top_ids[8];
  towerrt_features user = random_rows(m, TOWERRT_USER, 1, &rng), items = random_rows(m, TOWERRT_ITEM, K + 1, &rng);
  for (size_t i = 0; i < K + 1; i++) keys[i] = 500 + i;
  /* the first K rows (the store, the valid requests); all K + 1 for LIMIT */
  towerrt_features first = {items.ids, items.n_ids / (K + 1) * K, items.dense, items.n_dense / (K + 1) * K};
  if (!first.dense) first.n_dense = 0;
  snprintf(path, sizeof path, "/tmp/towerrt_noalloc_fit_%ld.twi", (long)getpid());
  towerrt_items *store = NULL;
  towerrt_status st = towerrt_items_build(m, &first, keys, K, path);
  if (!st) st = towerrt_items_load(path, NULL, &store);
  CHECK(st == TOWERRT_OK, "%s: store: %s", dir, towerrt_last_error());
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = K;
  towerrt_session *s = NULL, *skip = NULL;
  CHECK(towerrt_session_create(m, store, &o, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  o.skip_unknown_items = 1;
  CHECK(towerrt_session_create(m, store, &o, &skip) == TOWERRT_OK, "%s", towerrt_last_error());
  float scores[K + 1], top[8];
  size_t failures = 0, wrong = 0;
  if (s && skip) {
    g_calls = 0;
    g_counting = 1; /* ---- nothing below may allocate ---- */
    for (int rep = 0; rep < 10; rep++) {
      failures += towerrt_score_features(s, &user, &first, K, scores) != TOWERRT_OK;
      failures += towerrt_score(s, &user, keys, K, scores) != TOWERRT_OK;
      failures += towerrt_score_features_topn(s, &user, &first, K, 8, top_ids, top) != TOWERRT_OK;
      failures += towerrt_score_topn(s, &user, keys, K, 8, top_ids, top) != TOWERRT_OK;
      failures += towerrt_score(skip, &user, keys + 1, K, scores) != TOWERRT_OK; /* the last id is unknown: skipped */
      wrong += towerrt_score(s, &user, keys + 1, K, scores) != TOWERRT_ERR_UNKNOWN_ITEM;
      wrong += towerrt_score_features(s, &user, &items, K + 1, scores) != TOWERRT_ERR_LIMIT;
    }
    g_counting = 0; /* ---- end of the checked window ---- */
  }
  long allocs = g_calls;
  CHECK(allocs == 0, "%s (FIT): %ld allocator calls while scoring", dir, allocs);
  CHECK(failures == 0 && wrong == 0, "%s (FIT): %zu valid calls failed, %zu errors not reported (%s)", dir, failures, wrong,
        s ? towerrt_session_error(s) : "");
  printf("%s (FIT): 70 scoring calls, %ld allocator calls\n", dir, allocs);
  towerrt_session_free(s);
  towerrt_session_free(skip);
  towerrt_items_free(store);
  remove(path);
  free((void *)user.ids), free((void *)user.dense), free((void *)items.ids), free((void *)items.dense);
  towerrt_model_free(m);
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--fit") == 0) { /* usage: test_no_alloc --fit FIT_FIXTURE_DIR... */
    printf("test_no_alloc: counting with an %s\n", k_mode);
    for (int i = 2; i < argc; i++) run_fit(argv[i]);
    return test_finish("test_no_alloc");
  }
  if (argc < 2) {
    fprintf(stderr, "usage: test_no_alloc FIXTURE_DIR... | --fit FIT_FIXTURE_DIR...\n");
    return 2;
  }
  printf("test_no_alloc: counting with an %s\n", k_mode);
  g_main = pthread_self();
  /* One pool of 2 workers per node for every fixture; wait (at most 2 s)
   * until its workers have run their start-up code. */
  towerrt_options po;
  towerrt_options_init(&po);
  po.threads_per_node = 2;
  po.pin_threads = 0;
  towerrt_pool *pool = NULL;
  CHECK(towerrt_pool_create(&po, &pool) == TOWERRT_OK, "pool: %s", towerrt_last_error());
  long workers = pool ? 2L * (long)towerrt_pool_node_count(pool) : 0;
  for (int i = 0; i < 200 && g_worker_frees < workers; i++) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  for (int i = 1; i < argc; i++) run_fixture(argv[i], pool);
  towerrt_pool_free(pool);
  return test_finish("test_no_alloc");
}
