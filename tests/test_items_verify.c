/* Item-store load levels (options.items_verify, docs/errors.md):
 *  - a structure-only (trusted) load scores bitwise as a full load, by id
 *    and top-n, for f32, bf16 and int8 stores;
 *  - corrupt rows (a head byte with its CRC stale, a head set to NaN with
 *    the CRC fixed, an int8 column sum off by one, an id-map slot pointing
 *    past the rows) fail a full load with the named error, load in trusted
 *    mode, and never make a lookup read outside the rows (an out-of-range
 *    row reads as an unknown id);
 *  - what trusted mode still refuses: a truncated file, a bad header, a
 *    bad level value.
 * usage: test_items_verify FIXTURE_DIR */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/container.h"
#include "test_util.h"
#include "towerrt.h"

static towerrt_status load(const char *path, uint32_t level, towerrt_items **out) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.items_verify = level;
  *out = NULL;
  return towerrt_items_load(path, &o, out);
}

/* Offset of section `kind` in a store file (via the container reader). */
static uint64_t section_offset(const unsigned char *file, size_t size, uint32_t kind) {
  trt_container c;
  if (trt_container_open(file, size, "TWRITEMS", 0, &c) != TOWERRT_OK || !c.sections[kind].data) return 0;
  return c.sections[kind].offset;
}

/* Writes `file` with one edit to `path`; fix: recompute the CRCs. */
static void write_edited(const char *path, const unsigned char *file, size_t size, uint64_t at, const void *bytes, size_t n, int fix) {
  unsigned char *copy = malloc(size);
  memcpy(copy, file, size);
  memcpy(copy + at, bytes, n);
  if (fix) test_fix_crcs(copy, size);
  CHECK(test_write_file(path, copy, size), "write %s", path);
  free(copy);
}

static void same_scores(const towerrt_model *m, const towerrt_items *full, const towerrt_items *trusted, const trt_request *q,
                        const char *tag) {
  towerrt_session *a = NULL, *b = NULL;
  CHECK(towerrt_session_create(m, full, NULL, &a) == TOWERRT_OK && towerrt_session_create(m, trusted, NULL, &b) == TOWERRT_OK, "%s",
        towerrt_last_error());
  towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  size_t k = q->items.n_keys;
  float *sa = malloc(k * sizeof *sa), *sb = malloc(k * sizeof *sb), ta[3], tb[3];
  uint64_t ia[3], ib[3];
  CHECK(a && b && towerrt_score(a, &u, q->items.keys, k, sa) == TOWERRT_OK && towerrt_score(b, &u, q->items.keys, k, sb) == TOWERRT_OK,
        "%s: %s", tag, towerrt_last_error());
  CHECK(memcmp(sa, sb, k * sizeof *sa) == 0, "%s: trusted load scores differently", tag);
  size_t n = k < 3 ? k : 3;
  CHECK(a && b && towerrt_score_topn(a, &u, q->items.keys, k, n, ia, ta) == TOWERRT_OK &&
            towerrt_score_topn(b, &u, q->items.keys, k, n, ib, tb) == TOWERRT_OK && memcmp(ia, ib, n * sizeof *ia) == 0 &&
            memcmp(ta, tb, n * sizeof *ta) == 0,
        "%s: trusted top-n differs", tag);
  free(sa), free(sb);
  towerrt_session_free(a), towerrt_session_free(b);
}

/* A corrupt copy: full load fails with `want`, trusted load works. */
static void check_corrupt(const char *path, towerrt_status want, const char *what) {
  towerrt_items *it = NULL;
  towerrt_status st = load(path, TOWERRT_ITEMS_VERIFY_ALL, &it);
  CHECK(st == want, "%s: full load gave %s, want %s (%s)", what, towerrt_status_name(st), towerrt_status_name(want), towerrt_last_error());
  towerrt_items_free(it);
  st = load(path, TOWERRT_ITEMS_VERIFY_STRUCTURE, &it);
  CHECK(st == TOWERRT_OK, "%s: trusted load: %s", what, towerrt_last_error());
  towerrt_items_free(it);
}

/* Random damage to the data sections of a store, loaded trusted and then
 * scored with every catalog id and a few others: the status may be OK or
 * NONFINITE (a damaged head), never a crash or a read outside the file
 * (ASan builds check the latter). Header-side damage is the full loader's
 * and the fuzzers' business; here the CRCs stay valid. */
static void check_trusted_damage(const towerrt_model *m, const unsigned char *file, size_t size, const trt_request *q, const char *tmp,
                                 const char *tag) {
  static const uint32_t kinds[] = {TRT_SEC_ITEM_HEADS, TRT_SEC_ID_MAP, TRT_SEC_ITEM_SCALES, TRT_SEC_ITEM_COLSUMS};
  trt_container c;
  if (trt_container_open(file, size, "TWRITEMS", 0, &c) != TOWERRT_OK) return;
  uint64_t rng = test_seed("test_items_verify damage");
  unsigned char *copy = malloc(size);
  uint64_t keys[64];
  float scores[64];
  size_t nk = 0, loaded = 0;
  const trt_section *map = &c.sections[TRT_SEC_ID_MAP];
  for (uint64_t i = 0; map->data && i < (map->size - 16) / 16 && nk < 60; i++) { /* the catalog's ids, before damage */
    uint32_t row;
    memcpy(&row, file + map->offset + 16 + i * 16 + 8, 4);
    if (row != 0xFFFFFFFFu) memcpy(&keys[nk++], file + map->offset + 16 + i * 16, 8);
  }
  for (int trial = 0; trial < 200; trial++) {
    const trt_section *sec = &c.sections[kinds[test_rand_range(&rng, 0, 3)]];
    if (!sec->data || sec->size <= 16) continue;
    memcpy(copy, file, size);
    for (size_t e = test_rand_range(&rng, 1, 8); e > 0; e--) { /* the id map's 16-byte header stays: its sizes are checked */
      uint64_t at = sec->offset + (sec == map ? 16 : 0) + test_rand_range(&rng, 0, sec->size - (sec == map ? 17 : 1));
      copy[at] = test_rand_range(&rng, 0, 3) == 0 ? 0xFF : (unsigned char)test_rand_u64(&rng);
    }
    CHECK(test_write_file(tmp, copy, size), "write %s", tmp);
    towerrt_items *it = NULL;
    if (load(tmp, TOWERRT_ITEMS_VERIFY_STRUCTURE, &it) != TOWERRT_OK) continue;
    loaded++;
    towerrt_options o;
    towerrt_options_init(&o);
    o.skip_unknown_items = 1;
    towerrt_session *s = NULL;
    towerrt_features u = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
    uint64_t top_ids[4];
    float top[4];
    if (towerrt_session_create(m, it, &o, &s) == TOWERRT_OK) {
      keys[nk] = test_rand_u64(&rng);
      towerrt_status st = towerrt_score(s, &u, keys, nk + 1, scores);
      CHECK(st == TOWERRT_OK || st == TOWERRT_ERR_NONFINITE, "%s damage trial %d: %s", tag, trial, towerrt_session_error(s));
      st = towerrt_score_topn(s, &u, keys, nk + 1, 4, top_ids, top);
      CHECK(st == TOWERRT_OK || st == TOWERRT_ERR_NONFINITE, "%s damage trial %d (top-n): %s", tag, trial, towerrt_session_error(s));
    }
    towerrt_session_free(s);
    towerrt_items_free(it);
  }
  printf("%s: %zu damaged stores loaded trusted and scored\n", tag, loaded);
  free(copy);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_items_verify FIXTURE_DIR\n");
    return 2;
  }
  char mp[1024], base[] = "/tmp/towerrt_verify_XXXXXX", bad[] = "/tmp/towerrt_verify_bad_XXXXXX", q8[] = "/tmp/towerrt_verify_q8_XXXXXX";
  int fds[3] = {mkstemp(base), mkstemp(bad), mkstemp(q8)};
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) close(fds[i]);
  snprintf(mp, sizeof mp, "%s/model.twr", argv[1]);
  towerrt_model *m = NULL;
  trt_request q = {0};
  CHECK(towerrt_model_load(mp, NULL, &m) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(m && test_build_store(m, argv[1], base) == TOWERRT_OK, "%s", towerrt_last_error());
  CHECK(m && test_first_request(m, argv[1], "requests_ids.txt", &q), "no request");
  if (g_test_failures) return test_finish("test_items_verify");

  /* equal scores, every precision */
  towerrt_items *full = NULL, *trusted = NULL;
  CHECK(load(base, TOWERRT_ITEMS_VERIFY_ALL, &full) == TOWERRT_OK, "%s", towerrt_last_error());
  const towerrt_precision precs[] = {TOWERRT_PRECISION_F32, TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
  const char *names[] = {"f32", "bf16", "int8"};
  for (int p = 0; p < 3 && full; p++) {
    const char *path = p ? q8 : base;
    if (p) CHECK(towerrt_items_quantize(full, precs[p], q8) == TOWERRT_OK, "%s", towerrt_last_error());
    towerrt_items *f = NULL;
    CHECK(load(path, TOWERRT_ITEMS_VERIFY_ALL, &f) == TOWERRT_OK && load(path, TOWERRT_ITEMS_VERIFY_STRUCTURE, &trusted) == TOWERRT_OK, "%s",
          towerrt_last_error());
    if (f && trusted) same_scores(m, f, trusted, &q, names[p]);
    towerrt_items_free(f), towerrt_items_free(trusted);
  }
  towerrt_items_free(full);

  size_t size = 0, size8 = 0;
  unsigned char *file = test_read_file(base, &size), *file8 = test_read_file(q8, &size8);
  uint64_t heads = section_offset(file, size, TRT_SEC_ITEM_HEADS), map = section_offset(file, size, TRT_SEC_ID_MAP);
  CHECK(heads && map, "sections not found");
  unsigned char flip = file[heads + 5] ^ 0x10;
  write_edited(bad, file, size, heads + 5, &flip, 1, 0);
  check_corrupt(bad, TOWERRT_ERR_CHECKSUM, "a head byte changed, CRC stale");
  float nan = NAN;
  write_edited(bad, file, size, heads + 8, &nan, 4, 1);
  check_corrupt(bad, TOWERRT_ERR_NONFINITE, "a head set to NaN, CRC fixed");
  uint64_t cs = section_offset(file8, size8, TRT_SEC_ITEM_COLSUMS);
  int32_t sum;
  memcpy(&sum, file8 + cs, 4);
  sum += 1;
  write_edited(bad, file8, size8, cs, &sum, 4, 1);
  check_corrupt(bad, TOWERRT_ERR_FORMAT, "an int8 column sum off by one");

  /* an id-map slot pointing past the rows: its id must read as unknown */
  uint64_t n_slots;
  memcpy(&n_slots, file + map, 8);
  uint64_t slot = 0, id = 0;
  for (uint64_t i = 0; i < n_slots; i++) {
    uint32_t row;
    memcpy(&row, file + map + 16 + i * 16 + 8, 4);
    if (row != 0xFFFFFFFFu) {
      slot = i;
      memcpy(&id, file + map + 16 + i * 16, 8);
      break;
    }
  }
  uint32_t past = 0x7FFFFFF0u;
  write_edited(bad, file, size, map + 16 + slot * 16 + 8, &past, 4, 1);
  check_corrupt(bad, TOWERRT_ERR_FORMAT, "an id-map row past the rows");
  towerrt_items *it = NULL;
  towerrt_session *s = NULL;
  float score = 0;
  towerrt_features u = {q.user.ids, q.user.n_ids, q.user.dense, q.user.n_dense};
  if (load(bad, TOWERRT_ITEMS_VERIFY_STRUCTURE, &it) == TOWERRT_OK && towerrt_session_create(m, it, NULL, &s) == TOWERRT_OK)
    CHECK(towerrt_score(s, &u, &id, 1, &score) == TOWERRT_ERR_UNKNOWN_ITEM, "an out-of-range row must read as an unknown id");
  towerrt_session_free(s);
  towerrt_items_free(it);

  check_trusted_damage(m, file, size, &q, bad, "f32 store");
  check_trusted_damage(m, file8, size8, &q, bad, "int8 store");

  /* what trusted mode still refuses */
  CHECK(test_write_file(bad, file, size - 100), "write");
  towerrt_status st = load(bad, TOWERRT_ITEMS_VERIFY_STRUCTURE, &it);
  CHECK(st == TOWERRT_ERR_TRUNCATED || st == TOWERRT_ERR_FORMAT, "truncated file, trusted: %s", towerrt_status_name(st));
  towerrt_items_free(it);
  unsigned char magic = file[0] ^ 0xFF;
  write_edited(bad, file, size, 0, &magic, 1, 0);
  st = load(bad, TOWERRT_ITEMS_VERIFY_STRUCTURE, &it);
  CHECK(st != TOWERRT_OK, "bad magic, trusted: must fail");
  towerrt_items_free(it);
  CHECK(load(base, 7, &it) == TOWERRT_ERR_INVALID_ARGUMENT, "items_verify 7");

  free(file), free(file8);
  trt_request_free(&q);
  towerrt_model_free(m);
  remove(base), remove(bad), remove(q8);
  return test_finish("test_items_verify");
}
