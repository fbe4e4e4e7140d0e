/* Fuzz target: bytes as a .twi item store, used with a fixture model.
 *
 * Input: one mode byte, then the file.
 *   mode bits 0-2: as fuzz_model_load (1 fix CRCs, 2 no checksum
 *                  verification, 4 fix file_size);
 *   mode bit 3:    do NOT set allow_foreign_items (the fingerprint must match);
 *   mode bits 4-7: which fixture model (sorted by name, modulo their count).
 * A store that loads gets a session on the fixture model and scores, for a
 * fixture user: every id its own ID_MAP holds (must all be found: the
 * loader validated the map), then ids read from the end of the input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runtime/container.h"
#include "runtime/item_store.h"
#include "runtime/model.h"

#define MAX_INPUT (1u << 20)
#define MAX_K 300u

static void exercise(const fz_fixture *fx, const towerrt_items *it, uint8_t mode, const uint8_t *data, size_t size) {
  if (towerrt_items_count(it) != it->count || it->count == 0) fz_die("towerrt_items_count disagrees with the store");
  towerrt_options o;
  towerrt_options_init(&o);
  o.max_k = MAX_K;
  o.allow_foreign_items = (mode & 8) ? 0 : 1;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(fx->model, it, &o, &s);
  fz_check_open(st, s, "towerrt_session_create");
  if (!s) {
    if (st != TOWERRT_ERR_MISMATCH) fz_die("session on a loaded store: %s (MISMATCH expected)", towerrt_status_name(st));
    return;
  }
  const towerrt_model *m = fx->model;
  int probs = m->output_sigmoid;
  const trt_request *q = &fx->requests[mode % fx->n_requests];
  towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  uint64_t keys[MAX_K];
  float scores[MAX_K];
  /* Every mapped id, in slot order (at most MAX_K of them). */
  size_t k = 0;
  for (uint64_t i = 0; i < it->n_slots && k < MAX_K; i++) {
    const unsigned char *slot = it->slots + i * 16;
    if (trt_rd32(slot + 8) != TRT_EMPTY_ROW) keys[k++] = trt_rd64(slot);
  }
  st = towerrt_score(s, &user, keys, k, scores);
  fz_check_score(st, s, scores, k, probs, "towerrt_score (mapped ids)");
  if (st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE)
    fz_die("an id of the store's own map was refused: %s: %s", towerrt_status_name(st), towerrt_session_error(s));
  /* Ids from the tail of the input: found or UNKNOWN_ITEM, nothing else. */
  size_t tail = size < 8 * 16 ? size / 8 : 16;
  for (size_t c = 0; c < tail; c++) {
    uint64_t v;
    memcpy(&v, data + size - 8 * (c + 1), 8);
    keys[c] = v;
  }
  if (tail) {
    st = towerrt_score(s, &user, keys, tail, scores);
    fz_check_score(st, s, scores, tail, probs, "towerrt_score (input ids)");
    if (st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE && st != TOWERRT_ERR_UNKNOWN_ITEM)
      fz_die("ids from the input: %s: %s", towerrt_status_name(st), towerrt_session_error(s));
  }
  towerrt_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > MAX_INPUT) return 0;
  uint8_t mode = data[0];
  const fz_fixture *fx = fz_pick(mode >> 4);
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
  towerrt_items *it = NULL;
  towerrt_status st = towerrt_items_load(path, &o, &it);
  fz_check_open(st, it, "towerrt_items_load");
  if (st == TOWERRT_OK) exercise(fx, it, mode, data + 1, n);
  towerrt_items_free(it);
  free(file);
  return 0;
}
