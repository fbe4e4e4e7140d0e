/* Offline scoring, many users at once: towerrt_user_heads (the user tower
 * of every request's user in one batched call: oneDNN matmul where built
 * in) and towerrt_score_heads must give towerrt_score's scores: within fp32
 * reassociation for the batched f32 tower, bitwise for a quantized tower
 * (which runs user by user), on every golden fixture; and the errors.
 * usage: test_user_heads FIXTURE_DIR... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "towerrt.h"

#define MAX_K 1000

/* Every request scored both ways; rel: the allowed relative logit error. */
static void compare(const char *what, towerrt_session *s, const trt_request *q, size_t n, double rel) {
  trt_rows rows;
  towerrt_features users = test_users_of(q, n, &rows);
  size_t per = towerrt_session_user_heads_size(s);
  float *heads = malloc(n * per * sizeof *heads);
  CHECK(towerrt_user_heads(s, &users, n, heads) == TOWERRT_OK, "%s: %s", what, towerrt_session_error(s));
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = q[i].items.n_keys;
    float *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    towerrt_features u = {q[i].user.ids, q[i].user.n_ids, q[i].user.dense, q[i].user.n_dense};
    CHECK(towerrt_score(s, &u, q[i].items.keys, k, a) == TOWERRT_OK, "%s", towerrt_session_error(s));
    CHECK(towerrt_score_heads(s, heads + i * per, q[i].items.keys, k, b) == TOWERRT_OK, "%s", towerrt_session_error(s));
    for (size_t c = 0; c < k; c++) {
      double e = fabs((double)a[c] - b[c]) / (fabs((double)a[c]) + 1.0);
      worst = fmax(worst, e);
      CHECK(rel > 0 ? e <= rel : a[c] == b[c], "%s request %zu cand %zu: towerrt_score %.9g, towerrt_score_heads %.9g", what, i, c,
            (double)a[c], (double)b[c]);
    }
    free(a), free(b);
  }
  printf("  %-22s %zu users in one call: max rel logit diff %.2g\n", what, n, worst);
  free(heads);
  trt_rows_free(&rows);
}

static void check_errors(towerrt_session *s, const trt_request *q) {
  size_t per = towerrt_session_user_heads_size(s);
  float *heads = malloc(2 * per * sizeof *heads), score, *many = malloc((MAX_K + 1) * sizeof *many);
  towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  CHECK(towerrt_user_heads(NULL, &u, 1, heads) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL session");
  CHECK(towerrt_user_heads(s, NULL, 1, heads) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL users");
  CHECK(towerrt_user_heads(s, &u, 0, heads) == TOWERRT_ERR_EMPTY_REQUEST, "no users");
  /* Issue 13 changed this contract: arguments that fail their checks leave
   * the heads untouched (n_users is unbounded, so a buffer of n_users x per
   * floats cannot be assumed when the counts disagree); a tower that
   * overflows after the checks still marks every head NaN. */
  for (size_t i = 0; i < 2 * per; i++) heads[i] = 7.0f;
  CHECK(towerrt_user_heads(s, &u, 2, heads) == TOWERRT_ERR_SHAPE, "2 users, 1 user's features: %s", towerrt_session_error(s));
  CHECK(heads[0] == 7.0f && heads[2 * per - 1] == 7.0f, "heads of a call with bad arguments must be untouched");
  if (u.n_dense) {
    float *bad = malloc(u.n_dense * sizeof *bad);
    memcpy(bad, u.dense, u.n_dense * sizeof *bad);
    bad[0] = NAN;
    towerrt_features nan_user = {u.ids, u.n_ids, bad, u.n_dense};
    CHECK(towerrt_user_heads(s, &nan_user, 1, heads) == TOWERRT_ERR_NONFINITE, "NaN dense: %s", towerrt_session_error(s));
    free(bad);
  }
  CHECK(towerrt_user_heads(s, &u, 1, heads) == TOWERRT_OK, "%s", towerrt_session_error(s));
  uint64_t unknown = UINT64_C(0xDEADBEEFCAFE);
  CHECK(towerrt_score_heads(s, heads, &unknown, 1, &score) == TOWERRT_ERR_UNKNOWN_ITEM && isnan(score), "unknown id");
  CHECK(towerrt_score_heads(s, NULL, q->items.keys, 1, &score) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL heads");
  CHECK(towerrt_score_heads(s, heads, q->items.keys, 0, &score) == TOWERRT_ERR_EMPTY_REQUEST, "k = 0");
  /* LIMIT writes nothing (issue 13: a caller whose buffer holds max_k floats
   * overflowed when k NaNs were written) */
  for (size_t i = 0; i <= MAX_K; i++) many[i] = 7.0f;
  CHECK(towerrt_score_heads(s, heads, q->items.keys, MAX_K + 1, many) == TOWERRT_ERR_LIMIT && many[0] == 7.0f && many[MAX_K] == 7.0f,
        "k above max_k: LIMIT, nothing written");
  /* n_users whose product with the heads size wraps: LIMIT, nothing written
   * (issue 13: SIZE_MAX / 2 users wrote n_users x per NaNs, wrapped) */
  float small[45];
  for (size_t i = 0; i < 45; i++) small[i] = 7.0f;
  towerrt_features lie = {u.ids, (SIZE_MAX / 2) * u.n_ids, u.dense,
                          (SIZE_MAX / 2) * u.n_dense};
  CHECK(towerrt_user_heads(s, &lie, SIZE_MAX / 2, small) == TOWERRT_ERR_LIMIT && small[0] == 7.0f && small[44] == 7.0f,
        "SIZE_MAX / 2 users: LIMIT, nothing written");
  /* counts that disagree with the features: SHAPE, nothing written (the
   * buffer was sized for the features given, not for n_users) */
  CHECK(towerrt_user_heads(s, &u, 1000, small) == TOWERRT_ERR_SHAPE && small[0] == 7.0f && small[44] == 7.0f,
        "1000 users, features of 1: SHAPE, nothing written");
  heads[per / 2] = INFINITY;
  CHECK(towerrt_score_heads(s, heads, q->items.keys, 1, &score) == TOWERRT_ERR_NONFINITE && isnan(score), "Inf head: %s",
        towerrt_session_error(s));
  free(heads), free(many);
}

static void run_fixture(const char *dir) {
  char path[1024], store[] = "/tmp/towerrt_userheads_XXXXXX", qpath[] = "/tmp/towerrt_userheads_q_XXXXXX";
  snprintf(path, sizeof path, "%s/model.twr", dir);
  int fd = mkstemp(store), fq = mkstemp(qpath);
  if (fd >= 0) close(fd);
  if (fq >= 0) close(fq);
  towerrt_model *m = NULL, *q8 = NULL;
  towerrt_items *items = NULL;
  towerrt_session *s = NULL, *s0 = NULL, *s8 = NULL;
  trt_request *q = NULL;
  size_t n = 0;
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = 1;
  o.max_k = MAX_K;
  CHECK(towerrt_model_load(path, &o, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!m || test_build_store(m, dir, store) || towerrt_items_load(store, NULL, &items)) {
    CHECK(0, "%s: setup: %s", dir, towerrt_last_error());
    goto out;
  }
  n = test_read_requests(m, dir, "requests_ids.txt", &q);
  CHECK(n > 0, "%s: no requests", dir);
  CHECK(towerrt_session_create(m, items, &o, &s) == TOWERRT_OK, "%s", towerrt_last_error());
  o.fe_layer_mask = towerrt_model_fe_layer_mask(m) & (0u - towerrt_model_fe_layer_mask(m)); /* lowest trained layer only */
  CHECK(towerrt_session_create(m, items, &o, &s0) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(towerrt_model_quantize(m, TOWERRT_PRECISION_INT8, NULL, 0, qpath) == TOWERRT_OK && towerrt_model_load(qpath, NULL, &q8) == TOWERRT_OK,
        "%s", towerrt_last_error());
  towerrt_options_init(&o);
  o.output_logits = 1;
  CHECK(q8 && towerrt_session_create(q8, items, &o, &s8) == TOWERRT_OK, "%s", towerrt_last_error());
  if (!s || !s0 || !s8 || !n) goto out;
  /* 150 users: several batches of the batched path, the last one partial */
  trt_request *many = malloc(150 * sizeof *many);
  for (size_t i = 0; i < 150; i++) many[i] = q[i % n]; /* shallow: the originals own the rows */
  compare("f32, 150 users", s, many, 150, 1e-5);
  free(many);
  compare("f32, trained FE layers", s, q, n, 1e-5);
  compare("f32, lowest FE layer", s0, q, n, 1e-5);
  compare("int8 user tower", s8, q, n, 0); /* user by user: bitwise */
  check_errors(s, &q[0]);
out:
  test_free_requests(q, n);
  towerrt_session_free(s), towerrt_session_free(s0), towerrt_session_free(s8);
  towerrt_items_free(items);
  towerrt_model_free(m), towerrt_model_free(q8);
  remove(store), remove(qpath);
}

int main(int argc, char **argv) {
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  for (int i = 1; i < argc; i++) {
    printf("fixture %s\n", argv[i]);
    run_fixture(argv[i]);
  }
  return test_finish("test_user_heads");
}
