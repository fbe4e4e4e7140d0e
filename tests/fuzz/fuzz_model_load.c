/* Fuzz target: bytes as a .twr model file.
 *
 * Input: one mode byte, then the file.
 *   mode bit 0: recompute the CRCs (header, table, sections) before loading,
 *               so mutations get past the checksums to the parsers;
 *   mode bit 1: load with verify_checksums = 0;
 *   mode bit 2: set the header's file_size to the real size;
 *   mode bit 3: force fe_layer_mask = the mode byte's high nibble;
 *   mode bit 4: output_logits.
 * A model that loads is described, then scores a small valid request by
 * features (ids chosen inside each field's vocabulary), is refused for
 * requests by id without a store, and is paired with every fixture's item
 * store (allow_foreign_items) to score by id where heads and dims agree. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runtime/item_store.h"
#include "runtime/model.h"

#define MAX_INPUT (1u << 20)

/* One valid row of a side: ids inside the vocabularies, small dense values. */
static void make_rows(const towerrt_model *m, uint32_t side, size_t rows, unsigned seed, int64_t *ids, float *dense) {
  const trt_tower *t = side ? &m->item : &m->user;
  size_t slots = t->id_slots, width = t->dense_width;
  for (size_t r = 0; r < rows; r++) {
    size_t s = 0;
    for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
      const trt_field *f = &m->fields[t->first_field + fi];
      for (uint32_t j = 0; j < f->slots; j++, s++)
        ids[r * slots + s] = (int64_t)((r * 7u + j * 3u + seed + fi) % f->vocab);
    }
    for (size_t d = 0; d < width; d++) dense[r * width + d] = (float)((int)((r + d + seed) % 17) - 8) / 8.0f;
  }
}

static void exercise(towerrt_model *m, uint8_t mode) {
  /* describe: full length, exact fit, truncation */
  size_t len = towerrt_model_describe(m, NULL, 0);
  char *text = malloc(len + 1);
  if (!text) fz_die("out of memory");
  if (towerrt_model_describe(m, text, len + 1) != len || strlen(text) != len) fz_die("towerrt_model_describe: length disagrees");
  free(text);
  char small[9];
  memset(small, 'x', sizeof small);
  towerrt_model_describe(m, small, 8);
  if (small[7] != '\0' || small[8] != 'x') fz_die("towerrt_model_describe wrote past cap or left no NUL");
  (void)towerrt_model_isa(m);
  uint32_t trained = towerrt_model_fe_layer_mask(m);
  if (!trained) fz_die("a loaded model has no trained FE layers");

  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = 64;
  o.output_logits = (mode >> 4) & 1u;
  if (mode & 8) o.fe_layer_mask = (uint32_t)(mode >> 4);
  int probs = m->output_sigmoid && !o.output_logits;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(m, NULL, &o, &s);
  fz_check_open(st, s, "towerrt_session_create (no store)");
  if (!s) return;

  size_t us = towerrt_model_id_slots(m, TOWERRT_USER), ud = towerrt_model_dense_width(m, TOWERRT_USER);
  size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), id = towerrt_model_dense_width(m, TOWERRT_ITEM);
  size_t k = 1 + mode % 40u; /* up to two item-tower blocks */
  int64_t *uids = calloc(us + 1, sizeof *uids), *iids = calloc(k * is + 1, sizeof *iids);
  float *udense = calloc(ud + 1, sizeof *udense), *idense = calloc(k * id + 1, sizeof *idense);
  float *scores = malloc(k * sizeof *scores);
  uint64_t *keys = malloc(k * sizeof *keys);
  if (!uids || !iids || !udense || !idense || !scores || !keys) fz_die("out of memory");
  make_rows(m, TOWERRT_USER, 1, mode, uids, udense);
  make_rows(m, TOWERRT_ITEM, k, mode, iids, idense);
  towerrt_features user = {uids, us, ud ? udense : NULL, ud};
  towerrt_features items = {iids, k * is, id ? idense : NULL, k * id};
  st = towerrt_score_features(s, &user, &items, k, scores);
  fz_check_score(st, s, scores, k, probs, "towerrt_score_features (fuzzed model)");
  if (st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE)
    fz_die("a valid request on a loaded model failed: %s: %s", towerrt_status_name(st), towerrt_session_error(s));
  for (size_t c = 0; c < k; c++) keys[c] = c;
  st = towerrt_score(s, &user, keys, k, scores);
  if (st != TOWERRT_ERR_NO_ITEMS) fz_die("scoring by id without a store gave %s", towerrt_status_name(st));
  fz_check_score(st, s, scores, k, probs, "towerrt_score (no store)");
  towerrt_session_free(s);

  /* Every fixture store: MISMATCH unless heads and dims agree. */
  const fz_fixture *fxs;
  size_t n_fx = fz_fixtures(&fxs);
  o.allow_foreign_items = 1;
  for (size_t f = 0; f < n_fx; f++) {
    const towerrt_items *it = fxs[f].items;
    s = NULL;
    st = towerrt_session_create(m, it, &o, &s);
    fz_check_open(st, s, "towerrt_session_create (fixture store)");
    int fits = it->heads == m->heads_item && it->head_dim == m->head_dim;
    if (fits != (st == TOWERRT_OK) && !(fits && st == TOWERRT_ERR_INVALID_ARGUMENT))
      fz_die("store of %u x %u heads, model %u x %u: session gave %s", it->heads, it->head_dim, m->heads_item, m->head_dim,
             towerrt_status_name(st));
    if (!s) continue;
    size_t kk = fxs[f].catalog.n_keys < k ? fxs[f].catalog.n_keys : k;
    st = towerrt_score(s, &user, fxs[f].catalog.keys, kk, scores);
    fz_check_score(st, s, scores, kk, probs, "towerrt_score (fixture store)");
    if (st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE)
      fz_die("catalog ids on a matching store failed: %s: %s", towerrt_status_name(st), towerrt_session_error(s));
    towerrt_session_free(s);
  }
  free(uids), free(iids), free(udense), free(idense), free(scores), free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > MAX_INPUT) return 0;
  fz_fixtures(NULL);
  uint8_t mode = data[0];
  size_t n = size - 1;
  uint8_t *file = malloc(n ? n : 1);
  if (!file) return 0;
  memcpy(file, data + 1, n);
  if (mode & 1) fz_fix_container(file, n, (mode & 4) != 0);
  else if ((mode & 4) && n >= 24) {
    for (int i = 0; i < 8; i++) file[16 + i] = (uint8_t)((uint64_t)n >> (8 * i));
  }
  const char *path = fz_bytes_path(file, n);
  towerrt_options o;
  towerrt_options_init(&o);
  o.verify_checksums = (mode & 2) ? 0 : 1;
  /* the mode bits are all taken: odd sizes load with TOWERRT_LOAD_COPY
   * (the same checks, on a heap copy instead of a mapping) */
  o.load_mode = (size & 1) ? TOWERRT_LOAD_COPY : TOWERRT_LOAD_MAP;
  towerrt_model *m = NULL;
  towerrt_status st = towerrt_model_load(path, &o, &m);
  fz_check_open(st, m, "towerrt_model_load");
  if (st == TOWERRT_OK) exercise(m, mode);
  towerrt_model_free(m);
  free(file);
  return 0;
}
