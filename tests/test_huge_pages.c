/* Item stores with and without huge pages (options.huge_pages, the
 * environment variable TOWERRT_HUGE_PAGES) and loaded mapped or copied give
 * bit-identical scores with every kernel set (ctest runs this once per
 * TOWERRT_ISA) at each precision; the copy and the mapping start on a
 * 2 MiB boundary when huge pages are asked for; towerrt_items_describe says
 * whether they were asked for. What the kernel grants is printed, never
 * asserted (it depends on the machine's THP settings and free memory).
 * The store is built big enough (> 2 MiB at every precision) for the huge
 * page paths to run, from a golden fixture's catalog with varied dense
 * values so that no two rows are alike.
 * usage: test_huge_pages FIXTURE_DIR */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/huge_pages.h"
#include "runtime/item_store.h"
#include "test_util.h"
#include "towerrt.h"

#define N_ITEMS 65536u
#define K 4099u

/* N_ITEMS rows cycling through the catalog's ids, dense values drawn anew. */
static towerrt_status build_big_store(const towerrt_model *m, const char *dir, const char *path, uint64_t *rng) {
  trt_rows cat = {0};
  towerrt_status st = test_read_catalog(m, dir, &cat);
  size_t slots = towerrt_model_id_slots(m, TOWERRT_ITEM), width = towerrt_model_dense_width(m, TOWERRT_ITEM);
  int64_t *ids = malloc(N_ITEMS * (slots ? slots : 1) * sizeof *ids);
  float *dense = malloc(N_ITEMS * (width ? width : 1) * sizeof *dense);
  uint64_t *keys = malloc(N_ITEMS * sizeof *keys);
  if (!st && (!ids || !dense || !keys || !cat.n_rows)) st = TOWERRT_ERR_NO_MEMORY;
  for (size_t i = 0; !st && i < N_ITEMS; i++) {
    memcpy(ids + i * slots, cat.ids + (i % cat.n_rows) * slots, slots * sizeof *ids);
    for (size_t j = 0; j < width; j++) dense[i * width + j] = test_rand_float(rng, 0.0f, 1.0f);
    keys[i] = 1000 + 7 * (uint64_t)i;
  }
  towerrt_features f = {ids, N_ITEMS * slots, width ? dense : NULL, N_ITEMS * width};
  if (!st) st = towerrt_items_build(m, &f, keys, N_ITEMS, path);
  free(ids), free(dense), free(keys);
  trt_rows_free(&cat);
  return st;
}

/* Loads path as told, checks what describe and the layout say, scores the
 * request into out. */
static towerrt_status load_and_score(const towerrt_model *m, const char *path, uint32_t mode, uint32_t huge, const towerrt_features *user,
                                     const uint64_t *cands, float *out) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.load_mode = mode;
  o.huge_pages = huge;
  towerrt_items *it = NULL;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_items_load(path, &o, &it);
  if (!st) {
    char text[1024];
    towerrt_items_describe(it, text, sizeof text);
    int asked = strstr(text, "huge pages asked (madvise)") != NULL;
    CHECK(asked == (int)huge, "load_mode %u huge_pages %u: describe says\n%s", mode, huge, text);
    CHECK(it->file.data == NULL || !huge || ((uintptr_t)it->file.data & (TRT_HUGE_PAGE - 1)) == 0,
          "huge pages asked, but the %s does not start on a 2 MiB boundary", mode ? "copy" : "mapping");
    if (huge) printf("  %s", text);
    st = towerrt_session_create(m, it, &o, &s);
  }
  if (!st) st = towerrt_score(s, user, cands, K, out);
  towerrt_session_free(s);
  towerrt_items_free(it);
  return st;
}

/* Every (load mode, huge pages) pair against (map, off), bit for bit. */
static void check_store(const towerrt_model *m, const char *path, const towerrt_features *user, const uint64_t *cands) {
  static float ref[K], got[K];
  towerrt_status st = load_and_score(m, path, TOWERRT_LOAD_MAP, 0, user, cands, ref);
  CHECK(st == TOWERRT_OK, "%s: %s", path, towerrt_last_error());
  for (uint32_t mode = 0; mode < 2; mode++)
    for (uint32_t huge = 0; huge < 2; huge++) {
      memset(got, 0, sizeof got);
      st = load_and_score(m, path, mode, huge, user, cands, got);
      CHECK(st == TOWERRT_OK, "%s (load_mode %u, huge_pages %u): %s", path, mode, huge, towerrt_last_error());
      CHECK(memcmp(ref, got, sizeof ref) == 0, "%s: load_mode %u huge_pages %u changed the scores", path, mode, huge);
    }
}

/* TOWERRT_HUGE_PAGES overrides the option both ways. */
static void check_environment(const towerrt_model *m, const char *path, const towerrt_features *user, const uint64_t *cands) {
  static float ref[K], got[K];
  CHECK(load_and_score(m, path, TOWERRT_LOAD_COPY, 1, user, cands, ref) == TOWERRT_OK, "%s", towerrt_last_error());
  setenv("TOWERRT_HUGE_PAGES", "off", 1);
  CHECK(trt_huge_pages_wanted(1) == 0, "TOWERRT_HUGE_PAGES=off must turn huge pages off");
  towerrt_options o;
  towerrt_options_init(&o);
  o.load_mode = TOWERRT_LOAD_COPY;
  towerrt_items *it = NULL;
  CHECK(towerrt_items_load(path, &o, &it) == TOWERRT_OK, "%s", towerrt_last_error());
  char text[1024] = "";
  towerrt_items_describe(it, text, sizeof text);
  CHECK(strstr(text, "huge pages off") != NULL, "TOWERRT_HUGE_PAGES=off, yet:\n%s", text);
  towerrt_items_free(it);
  setenv("TOWERRT_HUGE_PAGES", "on", 1);
  CHECK(trt_huge_pages_wanted(0) == 1, "TOWERRT_HUGE_PAGES=on must turn huge pages on");
  unsetenv("TOWERRT_HUGE_PAGES");
  CHECK(trt_huge_pages_wanted(0) == 0 && trt_huge_pages_wanted(1) == 1, "without the variable the option decides");
  CHECK(load_and_score(m, path, TOWERRT_LOAD_MAP, 0, user, cands, got) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(memcmp(ref, got, sizeof ref) == 0, "copy + huge pages vs map without: scores differ");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_huge_pages FIXTURE_DIR\n");
    return 2;
  }
  if (test_forced_isa_unavailable()) return TEST_SKIPPED;
  unsetenv("TOWERRT_HUGE_PAGES");
  uint64_t rng = test_seed("huge_pages");
  char model_path[1024], f32[64] = "/tmp/towerrt_huge_XXXXXX", q[2][64] = {"/tmp/towerrt_huge_bf16_XXXXXX", "/tmp/towerrt_huge_s8_XXXXXX"};
  snprintf(model_path, sizeof model_path, "%s/model.twr", argv[1]);
  towerrt_model *m = NULL;
  towerrt_items *base = NULL;
  trt_request req = {0};
  int fds[3] = {mkstemp(f32), mkstemp(q[0]), mkstemp(q[1])};
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) close(fds[i]);
  towerrt_status st = towerrt_model_load(model_path, NULL, &m);
  if (!st) st = build_big_store(m, argv[1], f32, &rng);
  if (!st) st = towerrt_items_load(f32, NULL, &base);
  if (!st) st = towerrt_items_quantize(base, TOWERRT_PRECISION_BF16, q[0]);
  if (!st) st = towerrt_items_quantize(base, TOWERRT_PRECISION_INT8, q[1]);
  CHECK(st == TOWERRT_OK, "setting up: %s", towerrt_last_error());
  CHECK(!st && test_first_request(m, argv[1], "requests_ids.txt", &req), "no request in %s", argv[1]);
  static uint64_t cands[K];
  for (size_t i = 0; i < K; i++) cands[i] = 1000 + 7 * test_rand_range(&rng, 0, N_ITEMS - 1);
  towerrt_features user = {req.user.ids, req.user.n_ids, req.user.dense, req.user.n_dense};
  printf("kernel set %s, transparent huge pages: %s\n", m ? towerrt_model_isa(m) : "?", trt_thp_mode());
  if (!st && req.user.n_rows) {
    const char *paths[3] = {f32, q[0], q[1]};
    for (int i = 0; i < 3; i++) check_store(m, paths[i], &user, cands);
    check_environment(m, q[1], &user, cands);
  }
  trt_request_free(&req);
  towerrt_items_free(base);
  towerrt_model_free(m);
  unlink(f32), unlink(q[0]), unlink(q[1]);
  return test_finish("huge_pages");
}
