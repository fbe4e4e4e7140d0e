/* towerrt_user_heads_bench MODEL.twr STORE.twi [USERS]: the user tower of
 * many users, per request (towerrt_score with one candidate per user) and
 * in one call (towerrt_user_heads, batched through oneDNN), on random users
 * of the model's id vocabularies; one thread; three rounds after a warm-up
 * call (which creates the session's oneDNN primitives). Prints us per user
 * and the ratio (docs/item-stores.md, offline scoring). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "towerrt.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* n random users: each id slot in its field's vocabulary (the user id
 * fields in model order, as a request holds them), dense in [0, 1). */
static void random_users(const towerrt_model *m, size_t n, int64_t *ids, float *dense) {
  size_t slot = 0, width = towerrt_model_dense_width(m, TOWERRT_USER);
  for (size_t r = 0; r < n; r++)
    for (size_t i = 0, nf = towerrt_model_field_count(m); i < nf; i++) {
      towerrt_field_info f;
      if (towerrt_model_field(m, i, &f) || f.side != TOWERRT_USER || f.kind == 2) continue;
      for (uint32_t j = 0; j < f.width; j++) ids[slot++] = (int64_t)((uint64_t)rand() % f.vocab);
    }
  for (size_t i = 0; i < n * width; i++) dense[i] = (float)rand() / (float)RAND_MAX;
}

/* Any id of the store (the first of its id map). */
static uint64_t some_item(const towerrt_items *it) {
  uint64_t id = 0;
  towerrt_items_ids(it, &id, 1);
  return id;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: towerrt_user_heads_bench MODEL.twr STORE.twi [USERS (1024)]\n");
    return 2;
  }
  size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  towerrt_session *s = NULL;
  towerrt_options o;
  towerrt_options_init(&o);
  o.verify_checksums = 0;
  if (!n || towerrt_model_load(argv[1], &o, &m) || towerrt_items_load(argv[2], &o, &it) || towerrt_session_create(m, it, &o, &s)) {
    fprintf(stderr, "towerrt_user_heads_bench: %s\n", towerrt_last_error());
    return 1;
  }
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), width = towerrt_model_dense_width(m, TOWERRT_USER), per = towerrt_session_user_heads_size(s);
  int64_t *ids = malloc(n * slots * sizeof *ids);
  float *dense = malloc((n * width + 1) * sizeof *dense), *heads = malloc(n * per * sizeof *heads), score;
  srand(1);
  random_users(m, n, ids, dense);
  towerrt_features all = {ids, n * slots, dense, n * width};
  uint64_t key = some_item(it);
  int rc = towerrt_user_heads(s, &all, n, heads) != TOWERRT_OK; /* warm-up: the primitives */
  for (int round = 0; round < 3 && !rc; round++) {
    double t0 = now();
    for (size_t i = 0; i < n && !rc; i++) {
      towerrt_features u = {ids + i * slots, slots, width ? dense + i * width : NULL, width};
      rc = towerrt_score(s, &u, &key, 1, &score) != TOWERRT_OK;
    }
    double t1 = now();
    rc = rc || towerrt_user_heads(s, &all, n, heads) != TOWERRT_OK;
    double t2 = now();
    if (!rc)
      printf("round %d: towerrt_score (k = 1), one user at a time: %.1f us/user; towerrt_user_heads, %zu users in one call: "
             "%.1f us/user; %.2fx\n", round + 1, (t1 - t0) / (double)n * 1e6, n, (t2 - t1) / (double)n * 1e6, (t1 - t0) / (t2 - t1));
  }
  if (rc) fprintf(stderr, "towerrt_user_heads_bench: %s\n", towerrt_session_error(s));
  free(ids), free(dense), free(heads);
  towerrt_session_free(s);
  towerrt_items_free(it);
  towerrt_model_free(m);
  return rc;
}
