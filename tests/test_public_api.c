/* What the CLI and the benchmarks take from include/towerrt.h alone
 * (docs/architecture.md: the public header is the only door): the kernel
 * sets of this CPU, a model's MaxSim shape and FE layers, a store's ids,
 * the session observer's steps on the real request path, and synthetic
 * models. Each is checked against an oracle: the fixture's catalog, the
 * unobserved scores, the configuration written.
 *
 * usage: test_public_api FIXTURE_DIR SCRATCH_DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void check_isas(const towerrt_model *m) {
  const char *names[32];
  size_t n = towerrt_isas(names, 32);
  CHECK(n >= 1 && n <= 32, "towerrt_isas: %zu sets", n);
  if (n < 1 || n > 32) return;
  CHECK(!strcmp(names[n - 1], "scalar"), "the last set is %s, not scalar", names[n - 1]);
  int found = 0;
  for (size_t i = 0; i < n; i++) found |= !strcmp(names[i], towerrt_model_isa(m));
  CHECK(found, "the model's set %s is not listed", towerrt_model_isa(m));
  CHECK(towerrt_isas(NULL, 0) == n, "the count without names");
}

/* towerrt_items_ids: exactly the catalog's ids, each once. */
static void check_ids(const towerrt_items *it, const trt_rows *cat) {
  size_t n = towerrt_items_count(it);
  uint64_t *ids = calloc(n + 1, sizeof *ids), *want = malloc((cat->n_keys + 1) * sizeof *want);
  CHECK(towerrt_items_ids(it, ids, n) == n, "towerrt_items_ids returns the count %zu", n);
  CHECK(towerrt_items_ids(it, NULL, 0) == n && towerrt_items_ids(NULL, ids, n) == 0, "count only; NULL store");
  memcpy(want, cat->keys, cat->n_keys * sizeof *want);
  qsort(ids, n, sizeof *ids, cmp_u64);
  qsort(want, cat->n_keys, sizeof *want, cmp_u64);
  CHECK(n == cat->n_keys && !memcmp(ids, want, n * sizeof *ids), "the store's ids are the catalog's (%zu vs %zu)", n, cat->n_keys);
  uint64_t first = 0;
  CHECK(towerrt_items_ids(it, &first, 1) == n && (n == 0 || bsearch(&first, want, n, sizeof *want, cmp_u64)), "a copy of one id");
  free(ids);
  free(want);
}

/* The observer: every step once per request, or once per block. */
typedef struct seen {
  char names[64][16];
  size_t n;
  int backwards;
} seen;

static void observe(void *ctx, const char *step, uint64_t begin_ns, uint64_t end_ns, uint32_t slot) {
  seen *s = ctx;
  if (end_ns < begin_ns) s->backwards = 1;
  (void)slot;
  if (s->n < 64) snprintf(s->names[s->n++], sizeof s->names[0], "%s", step);
}

static size_t count(const seen *s, const char *name) {
  size_t c = 0;
  for (size_t i = 0; i < s->n; i++) c += !strcmp(s->names[i], name);
  return c;
}

static void check_observer(const towerrt_model *m, const towerrt_items *it, const trt_rows *cat) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = 1024;
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(m, it, &o, &s) == TOWERRT_OK, "session: %s", towerrt_last_error());
  if (!s) return;
  size_t k = 600; /* three blocks of 256 ids */
  uint64_t *cands = malloc(k * sizeof *cands);
  float *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
  for (size_t i = 0; i < k; i++) cands[i] = cat->keys[(i * 7) % cat->n_keys];
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), dw = towerrt_model_dense_width(m, TOWERRT_USER);
  int64_t *uids = calloc(slots + 1, sizeof *uids);
  float *dense = calloc(dw + 1, sizeof *dense);
  towerrt_features user = {uids, slots, dw ? dense : NULL, dw};
  seen sn = {0};
  towerrt_session_set_trace(s, observe, &sn);
  CHECK(towerrt_score(s, &user, cands, k, a) == TOWERRT_OK, "observed: %s", towerrt_session_error(s));
  towerrt_session_set_trace(s, NULL, NULL);
  size_t before = sn.n;
  CHECK(towerrt_score(s, &user, cands, k, b) == TOWERRT_OK, "unobserved: %s", towerrt_session_error(s));
  CHECK(sn.n == before, "the observer was called after it was turned off");
  CHECK(!memcmp(a, b, k * sizeof *a), "observed scores differ from unobserved ones");
  static const char *const once[] = {"check", "user_tower", "heads_check", "user_heads", "request"};
  for (size_t i = 0; i < 5; i++) CHECK(count(&sn, once[i]) == 1, "step %s seen %zu times", once[i], count(&sn, once[i]));
  static const char *const per_block[] = {"resolve", "maxsim", "output", "score_block"};
  for (size_t i = 0; i < 4; i++) CHECK(count(&sn, per_block[i]) == 3, "step %s seen %zu times, want 3", per_block[i], count(&sn, per_block[i]));
  CHECK(sn.n == 17 && !strcmp(sn.names[0], "check") && !strcmp(sn.names[sn.n - 1], "request"), "%zu steps, %s .. %s", sn.n, sn.names[0],
        sn.names[sn.n ? sn.n - 1 : 0]);
  CHECK(!sn.backwards, "a step ended before it began");
  towerrt_session_free(s);
  free(cands), free(a), free(b), free(uids), free(dense);
}

static int same_bytes(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb);
  int same = pa && pb && na == nb && !memcmp(pa, pb, na);
  free(pa);
  free(pb);
  return same;
}

static void check_synthetic(const char *scratch) {
  towerrt_synthetic_config c;
  towerrt_synthetic_config_init(&c);
  CHECK(c.n_layers == 3 && c.widths[0] == 300 && c.user_heads == 32 && c.head_dim == 64 && c.fe_mask == 7, "the reference config");
  c.user_single = 2, c.item_multi_len = 3, c.emb_dim = 8, c.widths[0] = 16, c.widths[1] = 16, c.widths[2] = 8;
  c.user_heads = 4, c.item_heads = 2, c.head_dim = 8, c.fe_mask = 5, c.seed = 42;
  char a[1024], b[1024];
  snprintf(a, sizeof a, "%s/synthetic_a.twr", scratch);
  snprintf(b, sizeof b, "%s/synthetic_b.twr", scratch);
  CHECK(towerrt_synthetic_model_write(&c, a) == TOWERRT_OK, "write: %s", towerrt_last_error());
  CHECK(towerrt_synthetic_model_write(&c, b) == TOWERRT_OK, "write again: %s", towerrt_last_error());
  CHECK(test_same_files(a, b), "the same configuration wrote different files");
  towerrt_model *m = NULL;
  CHECK(towerrt_model_load(a, NULL, &m) == TOWERRT_OK, "load: %s", towerrt_last_error());
  if (m) {
    uint32_t uh = 0, ih = 0, dim = 0;
    towerrt_model_heads(m, &uh, &ih, &dim);
    CHECK(uh == 4 && ih == 2 && dim == 8, "heads %u x %u of %u", uh, ih, dim);
    CHECK(towerrt_model_fe_layer_mask(m) == 5 && towerrt_model_fe_layers_available(m) == 7, "FE layers: trained %x, available %x",
          towerrt_model_fe_layer_mask(m), towerrt_model_fe_layers_available(m));
    CHECK(towerrt_model_id_slots(m, TOWERRT_USER) == 2 && towerrt_model_id_slots(m, TOWERRT_ITEM) == 1 + 3, "id slots");
    CHECK(towerrt_model_dense_width(m, TOWERRT_USER) == 1 && towerrt_model_dense_width(m, TOWERRT_ITEM) == 1, "dense widths");
    towerrt_model_free(m);
  }
  c.seed = 43;
  CHECK(towerrt_synthetic_model_write(&c, b) == TOWERRT_OK && !same_bytes(a, b), "another seed, another model");
  c.user_single = 0;
  CHECK(towerrt_synthetic_model_write(&c, b) == TOWERRT_ERR_INVALID_ARGUMENT && strstr(towerrt_last_error(), "user_single"),
        "no user field: %s", towerrt_last_error());
  CHECK(towerrt_synthetic_model_write(NULL, b) == TOWERRT_ERR_INVALID_ARGUMENT, "NULL config");
  remove(a);
  remove(b);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  if (mkdir(argv[2], 0777) != 0 && errno != EEXIST) return 2;
  char path[1024], store[1024];
  snprintf(path, sizeof path, "%s/model.twr", argv[1]);
  snprintf(store, sizeof store, "%s/items.twi", argv[2]);
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  trt_rows cat = {0};
  if (towerrt_model_load(path, NULL, &m) || test_read_catalog(m, argv[1], &cat) || test_build_store(m, argv[1], store) ||
      towerrt_items_load(store, NULL, &it)) {
    fprintf(stderr, "test_public_api: setup: %s / %s\n", towerrt_last_error(), trt_text_error());
    return 1;
  }
  uint32_t uh = 0, ih = 0, dim = 0;
  towerrt_model_heads(m, &uh, &ih, &dim);
  CHECK(uh && ih && dim, "model heads %u %u %u", uh, ih, dim);
  CHECK((towerrt_model_fe_layer_mask(m) & ~towerrt_model_fe_layers_available(m)) == 0, "trained FE layers are available");
  check_isas(m);
  check_ids(it, &cat);
  check_observer(m, it, &cat);
  check_synthetic(argv[2]);
  trt_rows_free(&cat);
  towerrt_items_free(it);
  towerrt_model_free(m);
  remove(store);
  return test_finish("test_public_api");
}
