/* Delta stores, overlays and compaction against full rebuilds.
 *
 * Per golden fixture: a synthetic catalog of N items (the fixture's item
 * rows reused under random 64-bit ids), a base of its first two thirds and
 * two deltas that change, add, remove and re-add items (each delta built
 * from its changed rows alone). An independent oracle applies the deltas to
 * a list and gives the final catalog in compaction order (the base's
 * surviving ids in base order, then new ids by first appearance in the
 * deltas). For f32, bf16 and int8:
 *  - compacting base + deltas == the full build of the final catalog
 *    (f32), == its quantized copy (bf16, int8), byte for byte;
 *  - a session on the overlay scores every final id bitwise as a session
 *    on the full build does (plain and top-n, several candidate orders),
 *    and removed ids are unknown (strict: TOWERRT_ERR_UNKNOWN_ITEM; skip:
 *    NaN); the same after towerrt_session_set_items(base -> overlay);
 *  - errors: a delta of another base, an id both changed and removed, a
 *    raw delta in a session, a delta in a merge, damaged tombstones.
 * usage: test_items_delta WORK_DIR FIXTURE_DIR... */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "towerrt.h"

#define N_ITEMS 600

static const char *g_work;
static uint64_t g_rng;

static char *wpath(const char *name) {
  static char buf[8][2048];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, 2048, "%.1000s/%.1000s", g_work, name);
  return p;
}

typedef struct fixture {
  towerrt_model *m;
  trt_rows rows; /* the fixture's catalog: feature rows */
  size_t slots, dense;
} fixture;

/* One catalog entry: an id and the fixture row its features come from. */
typedef struct entry {
  uint64_t id;
  size_t src;
} entry;

/* Builds a store of entries e[0..n) (features of their source rows). */
static towerrt_status build_entries(const fixture *f, const entry *e, size_t n, const char *path) {
  int64_t *ids = malloc((n * f->slots + 1) * sizeof *ids);
  float *dense = malloc((n * f->dense + 1) * sizeof *dense);
  uint64_t *keys = malloc((n + 1) * sizeof *keys);
  for (size_t i = 0; i < n; i++) {
    memcpy(ids + i * f->slots, f->rows.ids + e[i].src * f->slots, f->slots * sizeof *ids);
    if (f->dense) memcpy(dense + i * f->dense, f->rows.dense + e[i].src * f->dense, f->dense * sizeof *dense);
    keys[i] = e[i].id;
  }
  towerrt_features feats = {ids, n * f->slots, f->dense ? dense : NULL, n * f->dense};
  towerrt_status st = towerrt_items_build(f->m, &feats, keys, n, path);
  free(ids);
  free(dense);
  free(keys);
  return st;
}


/* ---- the scenario and its oracle ------------------------------------------ */
typedef struct delta_spec {
  entry changes[N_ITEMS];
  size_t n_changes;
  uint64_t removed[N_ITEMS];
  size_t n_removed;
} delta_spec;

typedef struct scenario {
  entry all[N_ITEMS]; /* every id ever used, with its original source row */
  entry base[N_ITEMS];
  size_t n_base;
  delta_spec d[2];
  entry final[N_ITEMS]; /* the oracle's catalog, in compaction order */
  size_t n_final;
  uint64_t gone[N_ITEMS]; /* ids removed in the end */
  size_t n_gone;
} scenario;

static size_t find_entry(const entry *e, size_t n, uint64_t id) {
  for (size_t i = 0; i < n; i++)
    if (e[i].id == id) return i;
  return SIZE_MAX;
}

static int in_list(const uint64_t *v, size_t n, uint64_t id) {
  for (size_t i = 0; i < n; i++)
    if (v[i] == id) return 1;
  return 0;
}

static void make_scenario(scenario *sc, size_t n_src) {
  memset(sc, 0, sizeof *sc);
  for (size_t i = 0; i < N_ITEMS; i++) {
    sc->all[i].id = test_rand_u64(&g_rng) >> (i % 3 ? 0 : 40); /* some small ids too */
    sc->all[i].src = i % n_src;
    if (find_entry(sc->all, i, sc->all[i].id) != SIZE_MAX) i--; /* unique ids */
  }
  size_t nb = N_ITEMS * 2 / 3, na = (N_ITEMS - nb) / 2;
  sc->n_base = nb;
  memcpy(sc->base, sc->all, nb * sizeof *sc->base);
  delta_spec *d1 = &sc->d[0], *d2 = &sc->d[1];
  /* delta 1: every 7th base item changes (another source row), items
   * nb..nb+na are new, every 11th base item (not a 7th) is removed, and an
   * id nobody has is removed too */
  for (size_t i = 0; i < nb; i += 7) d1->changes[d1->n_changes++] = (entry){sc->all[i].id, (sc->all[i].src + 1) % n_src};
  for (size_t i = nb; i < nb + na; i++) d1->changes[d1->n_changes++] = sc->all[i];
  for (size_t i = 11; i < nb; i += 11)
    if (i % 7) d1->removed[d1->n_removed++] = sc->all[i].id;
  d1->removed[d1->n_removed++] = 42; /* collides with no catalog id (checked below) */
  /* delta 2: changes some of delta 1's new items and a base item changed
   * in delta 1 again, re-adds a removed base item (22), adds the rest,
   * removes another of delta 1's new items and a base item (3) */
  d2->changes[d2->n_changes++] = (entry){sc->all[nb + 1].id, (sc->all[nb + 1].src + 2) % n_src};
  d2->changes[d2->n_changes++] = (entry){sc->all[14].id, (sc->all[14].src + 3) % n_src};
  d2->changes[d2->n_changes++] = (entry){sc->all[22].id, (sc->all[22].src + 1) % n_src};
  for (size_t i = nb + na; i < N_ITEMS; i++) d2->changes[d2->n_changes++] = sc->all[i];
  d2->removed[d2->n_removed++] = sc->all[nb + 2].id;
  d2->removed[d2->n_removed++] = sc->all[3].id;
  /* the oracle: the catalog as a list (id -> source row or gone) */
  entry cur[N_ITEMS];
  size_t n_cur = nb;
  memcpy(cur, sc->base, nb * sizeof *cur);
  int live[N_ITEMS];
  for (size_t i = 0; i < N_ITEMS; i++) live[i] = i < nb;
  for (int k = 0; k < 2; k++) {
    for (size_t j = 0; j < sc->d[k].n_removed; j++) {
      size_t i = find_entry(cur, n_cur, sc->d[k].removed[j]);
      if (i != SIZE_MAX) live[i] = 0;
    }
    for (size_t j = 0; j < sc->d[k].n_changes; j++) {
      size_t i = find_entry(cur, n_cur, sc->d[k].changes[j].id);
      if (i == SIZE_MAX) i = n_cur++; /* new ids go after, by first appearance */
      cur[i] = sc->d[k].changes[j];
      live[i] = 1;
    }
  }
  for (size_t i = 0; i < n_cur; i++) {
    if (live[i]) sc->final[sc->n_final++] = cur[i];
    else sc->gone[sc->n_gone++] = cur[i].id;
  }
  CHECK(find_entry(sc->all, N_ITEMS, 42) == SIZE_MAX, "id 42 is a catalog id (change the seed)");
}

/* ---- scoring --------------------------------------------------------------- */
static towerrt_session *session_on(const towerrt_model *m, const towerrt_items *it, int skip) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = 2 * N_ITEMS;
  o.max_topn = 16;
  o.skip_unknown_items = (uint32_t)skip;
  towerrt_session *s = NULL;
  CHECK(!towerrt_session_create(m, it, &o, &s), "session: %s", towerrt_last_error());
  return s;
}

/* Every final id (in the given order, then reversed with the removed ids
 * mixed in) scored on the overlay == on the full build, bitwise. */
static void compare_scores(const fixture *f, const scenario *sc, const towerrt_items *overlay, const towerrt_items *full,
                           const towerrt_features *user, const char *what) {
  size_t k = sc->n_final;
  uint64_t ids[2 * N_ITEMS];
  float a[2 * N_ITEMS], b[2 * N_ITEMS];
  for (size_t i = 0; i < k; i++) ids[i] = sc->final[i].id;
  towerrt_session *so = session_on(f->m, overlay, 0), *sf = session_on(f->m, full, 0);
  if (!so || !sf) goto out;
  CHECK(!towerrt_score(so, user, ids, k, a), "%s overlay: %s", what, towerrt_session_error(so));
  CHECK(!towerrt_score(sf, user, ids, k, b), "%s full: %s", what, towerrt_session_error(sf));
  CHECK(!memcmp(a, b, k * sizeof *a), "%s: overlay scores != full rebuild scores", what);
  /* top-n */
  uint64_t ta[16], tb[16];
  float sa[16], sb[16];
  CHECK(!towerrt_score_topn(so, user, ids, k, 16, ta, sa) && !towerrt_score_topn(sf, user, ids, k, 16, tb, sb), "%s topn: %s", what,
        towerrt_last_error());
  CHECK(!memcmp(ta, tb, sizeof ta) && !memcmp(sa, sb, sizeof sa), "%s: overlay top-16 != full rebuild top-16", what);
  /* strict: a removed id fails the request */
  if (sc->n_gone) {
    uint64_t two[2] = {ids[0], sc->gone[0]};
    CHECK(towerrt_score(so, user, two, 2, a) == TOWERRT_ERR_UNKNOWN_ITEM, "%s: removed id %llu scored", what,
          (unsigned long long)sc->gone[0]);
  }
  towerrt_session_free(so);
  so = NULL;
  /* skip-unknown, reversed order with every removed id interleaved */
  size_t n = 0;
  for (size_t i = 0; i < k; i++) {
    ids[n++] = sc->final[k - 1 - i].id;
    if (i < sc->n_gone) ids[n++] = sc->gone[i];
  }
  towerrt_session *sk = session_on(f->m, overlay, 1);
  if (sk) {
    CHECK(!towerrt_score(sk, user, ids, n, a), "%s skip: %s", what, towerrt_session_error(sk));
    for (size_t i = 0; i < n; i++) {
      int gone = in_list(sc->gone, sc->n_gone, ids[i]);
      if (gone) {
        CHECK(isnan(a[i]), "%s: removed id %llu has score %g", what, (unsigned long long)ids[i], (double)a[i]);
        continue;
      }
      /* b[] is in final order; the id's final index */
      size_t fi = find_entry(sc->final, k, ids[i]);
      CHECK(fi != SIZE_MAX && !memcmp(&a[i], &b[fi], sizeof *a), "%s: skip-unknown score of %llu differs", what,
            (unsigned long long)ids[i]);
    }
    towerrt_session_free(sk);
  }
out:
  towerrt_session_free(so);
  towerrt_session_free(sf);
}

static void swap_check(const fixture *f, const scenario *sc, const towerrt_items *base, const towerrt_items *overlay,
                       const towerrt_items *full, const towerrt_features *user, const char *what) {
  uint64_t ids[N_ITEMS];
  float a[N_ITEMS], b[N_ITEMS];
  for (size_t i = 0; i < sc->n_final; i++) ids[i] = sc->final[i].id;
  towerrt_session *s = session_on(f->m, base, 1), *sf = session_on(f->m, full, 0);
  if (s && sf) {
    CHECK(!towerrt_score(s, user, ids, sc->n_final, a), "%s", towerrt_session_error(s)); /* base: some unknown */
    CHECK(!towerrt_session_set_items(s, overlay), "%s set_items: %s", what, towerrt_last_error());
    CHECK(!towerrt_score(s, user, ids, sc->n_final, a) && !towerrt_score(sf, user, ids, sc->n_final, b), "%s", towerrt_last_error());
    CHECK(!memcmp(a, b, sc->n_final * sizeof *a), "%s: after set_items(overlay) scores != full rebuild", what);
  }
  towerrt_session_free(s);
  towerrt_session_free(sf);
}

/* ---- one precision --------------------------------------------------------- */
static towerrt_items *load(const char *path) {
  towerrt_items *s = NULL;
  CHECK(!towerrt_items_load(path, NULL, &s), "load %s: %s", path, towerrt_last_error());
  return s;
}

/* f32 store at `in` -> precision p at `out` (f32: a copy of the path). */
static const char *at_precision(const char *in, towerrt_precision p, const char *out) {
  if (p == TOWERRT_PRECISION_F32) return in;
  towerrt_items *s = load(in);
  CHECK(s && !towerrt_items_quantize(s, p, out), "quantize %s: %s", in, towerrt_last_error());
  towerrt_items_free(s);
  return out;
}

static void run_precision(const fixture *f, const scenario *sc, towerrt_precision p, const towerrt_features *user) {
  static const char *const pname[3] = {"f32", "bf16", "int8"};
  char what[64];
  snprintf(what, sizeof what, "%s", pname[p]);
  /* own copies: wpath's buffers rotate */
  char base_path[2048], full_path[2048];
  snprintf(base_path, sizeof base_path, "%s", at_precision(wpath("base-f32.twi"), p, wpath("base-q.twi")));
  snprintf(full_path, sizeof full_path, "%s", at_precision(wpath("full-f32.twi"), p, wpath("full-q.twi")));
  towerrt_items *base = load(base_path), *full = load(full_path), *deltas[2] = {NULL, NULL}, *ov = NULL;
  if (!base || !full) goto out;
  for (int k = 0; k < 2; k++) {
    char in[32], q[32], d[32];
    snprintf(in, sizeof in, "changes%d-f32.twi", k);
    snprintf(q, sizeof q, "changes%d-q.twi", k);
    snprintf(d, sizeof d, "delta%d.twi", k);
    towerrt_items *changes = load(at_precision(wpath(in), p, wpath(q)));
    CHECK(!towerrt_items_make_delta(base, changes, sc->d[k].removed, sc->d[k].n_removed, wpath(d)), "%s delta %d: %s", what, k,
          towerrt_last_error());
    towerrt_items_free(changes);
    deltas[k] = load(wpath(d));
  }
  if (!deltas[0] || !deltas[1]) goto out;
  CHECK(!towerrt_items_overlay(base, (const towerrt_items *const *)deltas, 2, &ov), "%s overlay: %s", what, towerrt_last_error());
  if (!ov) goto out;
  CHECK(towerrt_items_count(ov) == sc->n_final, "%s: overlay counts %zu items, the catalog has %zu", what, towerrt_items_count(ov),
        sc->n_final);
  CHECK(towerrt_items_precision(ov) == p, "%s: overlay precision", what);
  /* compaction == the full rebuild (quantized as the deltas were) */
  CHECK(!towerrt_items_compact(ov, wpath("compact.twi")), "%s compact: %s", what, towerrt_last_error());
  CHECK(test_same_files(wpath("compact.twi"), full_path), "%s: compacted base + deltas != full rebuild of the final catalog", what);
  compare_scores(f, sc, ov, full, user, what);
  swap_check(f, sc, base, ov, full, user, what);
  /* the caller's references go first: the overlay keeps its own */
  towerrt_items_free(deltas[0]);
  towerrt_items_free(deltas[1]);
  deltas[0] = deltas[1] = NULL;
  compare_scores(f, sc, ov, full, user, what);
out:
  towerrt_items_free(ov);
  towerrt_items_free(deltas[0]);
  towerrt_items_free(deltas[1]);
  towerrt_items_free(base);
  towerrt_items_free(full);
}

/* ---- errors ------------------------------------------------------------------- */
static void test_errors(const fixture *f, const scenario *sc) {
  towerrt_items *base = load(wpath("base-f32.twi")), *full = load(wpath("full-f32.twi")), *ch = load(wpath("changes0-f32.twi"));
  towerrt_items *d = NULL, *ov = NULL;
  if (!base || !full || !ch) goto out;
  /* an id both changed and removed */
  uint64_t both = sc->d[0].changes[0].id;
  CHECK(towerrt_items_make_delta(base, ch, &both, 1, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT && access(wpath("bad.twi"), F_OK),
        "changed and removed: %s", towerrt_last_error());
  CHECK(towerrt_items_make_delta(base, NULL, NULL, 0, wpath("bad.twi")) == TOWERRT_ERR_EMPTY_REQUEST, "an empty delta: %s",
        towerrt_last_error());
  /* tombstones only (an empty delta store), on the wrong base */
  uint64_t rm = sc->base[5].id;
  CHECK(!towerrt_items_make_delta(base, NULL, &rm, 1, wpath("tomb.twi")), "%s", towerrt_last_error());
  d = load(wpath("tomb.twi"));
  if (!d) goto out;
  CHECK(towerrt_items_count(d) == 0, "tombstones-only delta holds %zu rows", towerrt_items_count(d));
  const towerrt_items *one[1] = {d};
  CHECK(towerrt_items_overlay(full, one, 1, &ov) == TOWERRT_ERR_MISMATCH && strstr(towerrt_last_error(), "another base"),
        "a delta on the wrong base: %s", towerrt_last_error());
  CHECK(!towerrt_items_overlay(base, one, 1, &ov) && towerrt_items_count(ov) == sc->n_base - 1, "%s", towerrt_last_error());
  const towerrt_items *nested[1] = {ov};
  towerrt_items *ov2 = NULL;
  CHECK(towerrt_items_overlay(ov, one, 1, &ov2) == TOWERRT_ERR_INVALID_ARGUMENT, "overlay of an overlay: %s", towerrt_last_error());
  CHECK(towerrt_items_overlay(base, nested, 1, &ov2) == TOWERRT_ERR_INVALID_ARGUMENT, "an overlay as a delta: %s", towerrt_last_error());
  CHECK(towerrt_items_make_delta(ov, ch, NULL, 0, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT, "delta of an overlay: %s",
        towerrt_last_error());
  CHECK(towerrt_items_quantize(ov, TOWERRT_PRECISION_INT8, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT, "quantize an overlay: %s",
        towerrt_last_error());
  /* a raw delta is not a catalog */
  towerrt_options o;
  towerrt_options_init(&o);
  towerrt_session *s = NULL;
  CHECK(towerrt_session_create(f->m, d, &o, &s) == TOWERRT_ERR_INVALID_ARGUMENT, "session on a delta: %s", towerrt_last_error());
  towerrt_session_free(s);
  const char *in[2] = {wpath("base-f32.twi"), wpath("tomb.twi")};
  CHECK(towerrt_items_merge(f->m, in, 2, wpath("bad.twi")) == TOWERRT_ERR_INVALID_ARGUMENT, "merge of a delta: %s", towerrt_last_error());
  /* removing everything leaves nothing to compact */
  CHECK(access(wpath("bad.twi"), F_OK) != 0, "a failed call left bad.twi");
  /* damaged tombstones: two ids swapped (CRCs fixed) -> FORMAT */
  uint64_t two[2] = {sc->base[1].id, sc->base[2].id};
  CHECK(!towerrt_items_make_delta(base, NULL, two, 2, wpath("tomb2.twi")), "%s", towerrt_last_error());
  size_t size = 0;
  unsigned char *bytes = test_read_file(wpath("tomb2.twi"), &size);
  if (bytes && size >= 16) {
    unsigned char tmp[8];
    memcpy(tmp, bytes + size - 16, 8); /* TOMBSTONES is the last section */
    memcpy(bytes + size - 16, bytes + size - 8, 8);
    memcpy(bytes + size - 8, tmp, 8);
    test_fix_crcs(bytes, size);
    test_write_file(wpath("tomb2-bad.twi"), bytes, size);
    towerrt_items *bad = NULL;
    towerrt_status st = towerrt_items_load(wpath("tomb2-bad.twi"), NULL, &bad);
    CHECK(st == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "TOMBSTONES"), "unsorted tombstones: %s (%s)", towerrt_status_name(st),
          towerrt_last_error());
    towerrt_items_free(bad);
  }
  free(bytes);
out:
  towerrt_items_free(ov);
  towerrt_items_free(d);
  towerrt_items_free(ch);
  towerrt_items_free(base);
  towerrt_items_free(full);
}

static void run_fixture(const char *dir) {
  fixture f = {0};
  char path[1024];
  snprintf(path, sizeof path, "%s/model.twr", dir);
  if (towerrt_model_load(path, NULL, &f.m)) {
    CHECK(0, "%s: %s", path, towerrt_last_error());
    return;
  }
  CHECK(!test_read_catalog(f.m, dir, &f.rows), "%s: %s", dir, trt_text_error());
  f.slots = towerrt_model_id_slots(f.m, TOWERRT_ITEM);
  f.dense = towerrt_model_dense_width(f.m, TOWERRT_ITEM);
  trt_request q;
  memset(&q, 0, sizeof q);
  scenario *sc = calloc(1, sizeof *sc);
  if (!f.rows.n_keys || !test_first_request(f.m, dir, "requests_ids.txt", &q)) {
    CHECK(0, "%s: no catalog or request", dir);
    goto out;
  }
  make_scenario(sc, f.rows.n_keys);
  towerrt_features user = {q.user.ids, q.user.n_ids, q.user.dense, q.user.n_dense};
  CHECK(!build_entries(&f, sc->base, sc->n_base, wpath("base-f32.twi")), "%s", towerrt_last_error());
  CHECK(!build_entries(&f, sc->final, sc->n_final, wpath("full-f32.twi")), "%s", towerrt_last_error());
  for (int k = 0; k < 2; k++) {
    char name[32];
    snprintf(name, sizeof name, "changes%d-f32.twi", k);
    CHECK(!build_entries(&f, sc->d[k].changes, sc->d[k].n_changes, wpath(name)), "%s", towerrt_last_error());
  }
  printf("%s: base %zu, deltas %zu+%zu changed / %zu+%zu removed, final %zu (%zu gone)\n", dir, sc->n_base, sc->d[0].n_changes,
         sc->d[1].n_changes, sc->d[0].n_removed, sc->d[1].n_removed, sc->n_final, sc->n_gone);
  for (int p = 0; p < 3; p++) run_precision(&f, sc, (towerrt_precision)p, &user);
  test_errors(&f, sc);
out:
  trt_rows_free(&q.user);
  trt_rows_free(&q.items);
  free(sc);
  trt_rows_free(&f.rows);
  towerrt_model_free(f.m);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_items_delta WORK_DIR FIXTURE_DIR...\n");
    return 2;
  }
  g_work = argv[1];
  if (mkdir(g_work, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s\n", g_work);
    return 1;
  }
  g_rng = test_seed("test_items_delta");
  for (int i = 2; i < argc; i++) run_fixture(argv[i]);
  return test_finish("test_items_delta");
}
