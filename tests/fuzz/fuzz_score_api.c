/* Fuzz target: the public scoring API driven by adversarial arguments on a
 * fixture model and its item store: k (0, max_k, max_k + 1, ...), ids out of
 * range and unknown item ids, wrong counts, NaN/Inf/huge dense values, NULL
 * pointers, odd session options (max_k, fe_layer_mask, logits, no store).
 *
 * Input: one byte choosing the fixture (modulo their count), then a program
 * of operations, each one opcode byte and its argument bytes:
 *   0 new session   1 score by id   2 score by features   3 misc API calls
 *   4 towerrt_user_heads with n_users from small to SIZE_MAX (every size
 *     product of the API with a caller's count: LIMIT, nothing written)
 * Every call is checked against the error contract (fuzz_common.h); a call
 * with nothing adversarial in it must succeed, and a successful call by id
 * must agree with the same candidates by features and one at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runtime/model.h"

#define MAX_OPS 48
#define MAX_BY_ID 2048u
#define MAX_BY_FEATURES 256u

typedef struct api {
  const fz_fixture *fx;
  const towerrt_model *m;
  towerrt_session *s;
  towerrt_options o;
  int with_items, probs, session_ok;
  const towerrt_items *store; /* the session's store when with_items */
  int exact_store;            /* f32: scores by id equal scores by features */
  fz_in in;
} api;

static const uint32_t k_max_ks[] = {1, 2, 31, 32, 33, 255, 256, 257, 1000, 100000};

/* Vocabulary of the field that owns id slot `slot` of a side. */
static uint32_t slot_vocab(const towerrt_model *m, uint32_t side, size_t slot) {
  const trt_tower *t = side ? &m->item : &m->user;
  for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
    const trt_field *f = &m->fields[t->first_field + fi];
    if (slot < f->slots) return f->vocab;
    slot -= f->slots;
  }
  return 1;
}

static void new_session(api *a) {
  uint8_t b = fz_u8(&a->in);
  towerrt_session_free(a->s);
  a->s = NULL;
  towerrt_options_init(&a->o);
  a->o.max_k = (b & 0x80) ? fz_u32(&a->in) : k_max_ks[b % 10];
  if (b & 0x40) {
    uint8_t c = fz_u8(&a->in);
    a->o.fe_layer_mask = (c & 1) ? fz_u32(&a->in) : (uint32_t)(c >> 1) & 15u;
  }
  a->o.output_logits = (b >> 4) & 1u;
  a->o.allow_foreign_items = (b >> 5) & 1u;
  a->with_items = !(b & 8);
  /* the store: f32 (exact: scored by id = by features), or bf16 / int8 */
  a->store = a->fx->items;
  a->exact_store = 1;
  if ((b & 6) == 6 && !(b & 1)) {
    const towerrt_items *q = a->fx->quantized[(b >> 6) & 1];
    if (q) a->store = q, a->exact_store = 0;
  }
  if ((b & 7) == 7) a->o.struct_size = fz_u8(&a->in);
  towerrt_status st = towerrt_session_create(a->m, a->with_items ? a->store : NULL, &a->o, &a->s);
  fz_check_open(st, a->s, "towerrt_session_create");
  uint32_t mask = a->o.fe_layer_mask;
  int valid = a->o.struct_size == sizeof a->o && a->o.max_k > 0 && !(mask & ~a->m->user.fe_present);
  if (valid != (st == TOWERRT_OK)) fz_die("session options (max_k %u, mask 0x%x): %s", a->o.max_k, mask, towerrt_status_name(st));
  a->probs = a->m->output_sigmoid && !a->o.output_logits;
  a->session_ok = st == TOWERRT_OK;
}

/* Mutates an id; returns 1 if the result is outside [0, vocab). */
static int bad_id(fz_in *in, int64_t *id, uint32_t vocab) {
  switch (fz_u8(in) % 8) {
    case 0: *id = -1; break;
    case 1: *id = vocab; break;
    case 2: *id = INT64_MIN; break;
    case 3: *id = INT64_MAX; break;
    case 4: *id = (int64_t)fz_u64(in); break;
    case 5: *id = 0; break;
    default: *id = (int64_t)vocab - 1; break;
  }
  return *id < 0 || *id >= (int64_t)vocab;
}

/* Mutates a dense value; returns 1 if it is not finite. */
static int bad_dense(fz_in *in, float *v) {
  uint32_t bits;
  switch (fz_u8(in) % 8) {
    case 0: *v = NAN; break;
    case 1: *v = INFINITY; break;
    case 2: *v = -INFINITY; break;
    case 3: *v = 3e38f; break;
    case 4: *v = -3e38f; break;
    case 5: *v = 1e-45f; break;
    case 6: *v = 0.0f; break;
    default:
      bits = fz_u32(in);
      memcpy(v, &bits, 4);
      break;
  }
  return !isfinite(*v);
}

/* The user row of a fixture request, maybe mutated. *adversarial is set
 * when an id or a value is invalid. Arrays have room for one extra. */
static void make_user(api *a, int64_t **ids, size_t *n_ids, float **dense, size_t *n_dense, int *adversarial) {
  const trt_request *q = &a->fx->requests[fz_u8(&a->in) % a->fx->n_requests];
  *n_ids = q->user.n_ids;
  *n_dense = q->user.n_dense;
  *ids = malloc((*n_ids + 1) * sizeof **ids);
  *dense = malloc((*n_dense + 1) * sizeof **dense);
  if (!*ids || !*dense) fz_die("out of memory");
  memcpy(*ids, q->user.ids, *n_ids * sizeof **ids);
  memcpy(*dense, q->user.dense, *n_dense * sizeof **dense);
  (*ids)[*n_ids] = 0;
  (*dense)[*n_dense] = 0.0f;
  uint8_t n_mut = fz_u8(&a->in);
  n_mut = n_mut < 192 ? 0 : n_mut % 4;
  for (uint8_t i = 0; i < n_mut; i++) {
    uint8_t which = fz_u8(&a->in);
    if ((which & 1) || !*n_dense) {
      size_t slot = which % *n_ids;
      *adversarial |= bad_id(&a->in, &(*ids)[slot], slot_vocab(a->m, TOWERRT_USER, slot));
    } else {
      *adversarial |= bad_dense(&a->in, &(*dense)[which % *n_dense]);
    }
  }
}

static size_t pick_k(api *a) {
  uint8_t b = fz_u8(&a->in);
  uint32_t mk = a->session_ok ? a->o.max_k : 64;
  switch (b % 8) {
    case 0: return 0;
    case 1: return mk;
    case 2: return mk < (1u << 20) ? (size_t)mk + 1 : 70000;
    case 3: return fz_u16(&a->in) % 600u;
    default: return 1 + fz_u8(&a->in) % 64u;
  }
}

static void score_op(api *a, int by_id) {
  const fz_fixture *fx = a->fx;
  const towerrt_model *m = a->m;
  int adversarial = 0;
  int64_t *uids;
  float *udense;
  size_t n_uids, n_udense;
  make_user(a, &uids, &n_uids, &udense, &n_udense, &adversarial);
  size_t k = pick_k(a);
  size_t cap = by_id ? MAX_BY_ID : MAX_BY_FEATURES;
  if (k > cap && a->session_ok && k <= a->o.max_k) k = cap; /* keep an execution fast */
  size_t n_cat = fx->catalog.n_keys;
  size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), iw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  /* Candidates: catalog rows (rows[] remembers which), rarely something else. */
  size_t *rows = malloc((k + 1) * sizeof *rows);
  uint64_t *keys = malloc((k + 1) * sizeof *keys);
  size_t cand_rows = by_id ? 0 : k;
  int64_t *iids = malloc((cand_rows * is + 1) * sizeof *iids);
  float *idense = malloc((cand_rows * iw + 1) * sizeof *idense);
  if (!rows || !keys || !iids || !idense) fz_die("out of memory");
  int unknown = 0;
  for (size_t c = 0; c < k; c++) {
    uint8_t t = c < 64 ? fz_u8(&a->in) : (uint8_t)(c * 37u % 220u);
    rows[c] = t % n_cat;
    if (by_id) {
      keys[c] = fx->catalog.keys[rows[c]];
      if (t >= 220) {
        keys[c] = t < 240 ? fz_u64(&a->in) : t < 248 ? keys[c] + 1 : (t & 1) ? UINT64_MAX : 0;
        int known = 0;
        for (size_t r = 0; r < n_cat; r++)
          if (fx->catalog.keys[r] == keys[c]) known = 1, rows[c] = r;
        unknown |= !known;
      }
    } else {
      memcpy(iids + c * is, fx->catalog.ids + rows[c] * is, is * sizeof *iids);
      memcpy(idense + c * iw, fx->catalog.dense + rows[c] * iw, iw * sizeof *idense);
      if (t >= 240) {
        uint8_t which = fz_u8(&a->in);
        if ((which & 1) || !iw) {
          size_t slot = which % is;
          adversarial |= bad_id(&a->in, &iids[c * is + slot], slot_vocab(m, TOWERRT_ITEM, slot));
        } else {
          adversarial |= bad_dense(&a->in, &idense[c * iw + which % iw]);
        }
      }
    }
  }
  /* Counts and NULLs: rarely. */
  uint8_t flags = fz_u8(&a->in);
  if (flags < 224) flags = 0;
  towerrt_features user = {uids, n_uids, n_udense ? udense : NULL, n_udense};
  towerrt_features items = {iids, cand_rows * is, iw ? idense : NULL, cand_rows * iw};
  if (flags & 1) user.n_ids++;
  if (flags & 2) items.n_ids = items.n_ids ? items.n_ids - 1 : 1;
  if (flags & 4) user.n_dense = user.n_dense ? user.n_dense - 1 : 1;
  if ((flags & 8) && n_uids) user.ids = NULL;
  if ((flags & 16) && iw) items.dense = NULL;
  int null_user = (flags & 0x60) == 0x20, null_cands = (flags & 0x60) == 0x40, null_scores = (flags & 0x60) == 0x60;
  if (flags & 0x1F) adversarial = 1;
  float *scores = malloc((k ? k : 1) * sizeof *scores);
  if (!scores) fz_die("out of memory");
  for (size_t c = 0; c < k; c++) scores[c] = 7.0f;
  towerrt_status st = by_id ? towerrt_score(a->s, null_user ? NULL : &user, null_cands ? NULL : keys, k, null_scores ? NULL : scores)
                            : towerrt_score_features(a->s, null_user ? NULL : &user, null_cands ? NULL : &items, k,
                                                     null_scores ? NULL : scores);
  const char *what = by_id ? "towerrt_score" : "towerrt_score_features";
  if (!a->s) {
    if (st != TOWERRT_ERR_INVALID_ARGUMENT) fz_die("%s on a NULL session: %s", what, towerrt_status_name(st));
  } else {
    fz_check_score(st, a->s, null_scores ? NULL : scores, k, a->probs, what);
    int clean = !adversarial && !unknown && !null_user && !null_cands && !null_scores && k > 0 && k <= a->o.max_k &&
                (a->with_items || !by_id);
    if (clean && st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE)
      fz_die("%s: a valid call (k %zu, max_k %u) failed: %s: %s", what, k, a->o.max_k, towerrt_status_name(st),
             towerrt_session_error(a->s));
    if (st == TOWERRT_OK && clean) {
      /* One at a time, and (by id) through the item tower: same scores. */
      size_t n_check = k < 3 ? k : 3;
      float one;
      for (size_t c = 0; c < n_check; c++) {
        size_t pick = (c * 7919u) % k;
        towerrt_status s1;
        if (by_id) {
          s1 = towerrt_score(a->s, &user, &keys[pick], 1, &one);
        } else {
          towerrt_features it1 = {iids + pick * is, is, iw ? idense + pick * iw : NULL, iw};
          s1 = towerrt_score_features(a->s, &user, &it1, 1, &one);
        }
        if (s1 != TOWERRT_OK || !fz_close(one, scores[pick]))
          fz_die("%s: candidate %zu of %zu scored %.9g in the batch, %.9g alone (%s)", what, pick, k, (double)scores[pick],
                 (double)one, towerrt_status_name(s1));
        if (by_id && a->exact_store) {
          towerrt_features it1 = {fx->catalog.ids + rows[pick] * is, is, iw ? fx->catalog.dense + rows[pick] * iw : NULL, iw};
          s1 = towerrt_score_features(a->s, &user, &it1, 1, &one);
          if (s1 != TOWERRT_OK || !fz_close(one, scores[pick]))
            fz_die("item %llu: %.9g from the store, %.9g by features (%s)", (unsigned long long)keys[pick], (double)scores[pick],
                   (double)one, towerrt_status_name(s1));
        }
      }
    }
  }
  free(uids), free(udense), free(rows), free(keys), free(iids), free(idense), free(scores);
}

static void misc_op(api *a) {
  uint32_t v = fz_u32(&a->in);
  const char *name = towerrt_status_name((towerrt_status)v);
  if (!name || !name[0]) fz_die("towerrt_status_name(%u) is empty", v);
  if (towerrt_session_error(NULL)[0]) fz_die("towerrt_session_error(NULL) is not empty");
  if (towerrt_model_id_slots(NULL, TOWERRT_USER) || towerrt_model_dense_width(NULL, TOWERRT_ITEM) || towerrt_items_count(NULL) ||
      towerrt_model_fe_layer_mask(NULL))
    fz_die("a NULL handle has a non-zero size");
  towerrt_session_free(NULL);
  towerrt_options_init(NULL);
  float x = 0.0f;
  uint64_t key = 0;
  if (towerrt_score(NULL, NULL, &key, 1, &x) != TOWERRT_ERR_INVALID_ARGUMENT) fz_die("towerrt_score(NULL session)");
  towerrt_session *out = (towerrt_session *)&x;
  if (towerrt_session_create(NULL, NULL, NULL, &out) != TOWERRT_ERR_INVALID_ARGUMENT || out)
    fz_die("towerrt_session_create(NULL model)");
  if (a->s && towerrt_session_error(a->s) == NULL) fz_die("towerrt_session_error is NULL");
}

/* Counts whose products with a row size wrap or overflow a buffer: the
 * pattern of issue 13 (towerrt_user_heads(s, &u, SIZE_MAX / 2, h) wrote
 * n_users x per NaNs with a wrapped product before returning LIMIT). */
static size_t pick_n_users(api *a, size_t per, size_t slots) {
  uint8_t b = fz_u8(&a->in);
  switch (b % 10) {
    case 0: return SIZE_MAX / 2;
    case 1: return SIZE_MAX;
    case 2: return SIZE_MAX / (per ? per : 1) + 1;
    case 3: return SIZE_MAX / sizeof(float) / (per ? per : 1) + 1;
    case 4: return SIZE_MAX / (slots ? slots : 1) + 1;
    case 5: return (size_t)fz_u64(&a->in);
    case 6: return 0;
    default: return 1 + b % 4u;
  }
}

/* towerrt_user_heads: a buffer of 4 users' heads (or 45 floats), counts
 * from the table above. Huge counts must give LIMIT with the buffer
 * untouched; small valid ones must agree with towerrt_score_heads. */
static void heads_op(api *a) {
  if (!a->s) return;
  size_t per = towerrt_session_user_heads_size(a->s);
  size_t slots = towerrt_model_id_slots(a->m, TOWERRT_USER), width = towerrt_model_dense_width(a->m, TOWERRT_USER);
  size_t n = pick_n_users(a, per, slots);
  int small = n >= 1 && n <= 4;
  /* a valid call gets room for its heads; a refused one may get 45 floats */
  size_t cap = !small && (fz_u8(&a->in) & 1) ? 45 : 4 * per, rows = small ? n : 4;
  const trt_request *q = &a->fx->requests[fz_u8(&a->in) % a->fx->n_requests];
  int64_t *ids = calloc(4 * slots + 1, sizeof *ids);
  float *dense = calloc(4 * width + 1, sizeof *dense), *heads = malloc(cap * sizeof *heads);
  if (!ids || !dense || !heads) fz_die("out of memory");
  for (size_t r = 0; r < rows; r++) {
    memcpy(ids + r * slots, q->user.ids, slots * sizeof *ids);
    memcpy(dense + r * width, q->user.dense, width * sizeof *dense);
  }
  for (size_t i = 0; i < cap; i++) heads[i] = 7.0f;
  /* A count whose products overflow gets n_ids / n_dense as a caller with a
   * wrapped product would pass them (LIMIT expected); any other count
   * above 4 gets the 4 rows there are (SHAPE expected). */
  size_t widest = per > slots ? per : slots;
  widest = widest > width ? widest : width;
  int wraps = n > SIZE_MAX / sizeof(float) / (widest ? widest : 1);
  size_t given = small || wraps ? n : 4;
  towerrt_features users = {ids, given * slots, width ? dense : NULL, given * width};
  towerrt_status st = towerrt_user_heads(a->s, &users, n, heads);
  if (!small) {
    towerrt_status want = n == 0 ? TOWERRT_ERR_EMPTY_REQUEST : wraps ? TOWERRT_ERR_LIMIT : TOWERRT_ERR_SHAPE;
    if (st != want)
      fz_die("towerrt_user_heads(n_users %zu, %zu floats each): %s, want %s", n, per, towerrt_status_name(st), towerrt_status_name(want));
    for (size_t i = 0; i < cap; i++)
      if (heads[i] != 7.0f) fz_die("towerrt_user_heads(n_users %zu) failed with %s but wrote head value %zu", n, towerrt_status_name(st), i);
  } else {
    if (st != TOWERRT_OK && st != TOWERRT_ERR_NONFINITE)
      fz_die("towerrt_user_heads: %zu valid users failed: %s: %s", n, towerrt_status_name(st), towerrt_session_error(a->s));
    if (st == TOWERRT_OK && a->with_items && a->session_ok) {
      float one = 0.0f, again = 0.0f;
      uint64_t key = a->fx->catalog.keys[0];
      towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
      towerrt_status s1 = towerrt_score_heads(a->s, heads + (n - 1) * per, &key, 1, &one);
      towerrt_status s2 = towerrt_score(a->s, &user, &key, 1, &again);
      if (s1 != s2 || (s1 == TOWERRT_OK && !fz_close(one, again)))
        fz_die("user heads: %.9g (%s) by heads, %.9g (%s) by features", (double)one, towerrt_status_name(s1), (double)again,
               towerrt_status_name(s2));
    }
  }
  free(ids), free(dense), free(heads);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  api a;
  memset(&a, 0, sizeof a);
  a.fx = fz_pick(data[0]);
  a.m = a.fx->model;
  a.in = (fz_in){data + 1, size - 1};
  /* Start with a session with the store and max_k 1000 (op 0 reaches the
   * default 100000: a k above it costs ~1 ms of page faults per call). */
  towerrt_options_init(&a.o);
  a.o.max_k = 1000;
  a.with_items = 1;
  a.store = a.fx->items;
  a.exact_store = 1;
  if (towerrt_session_create(a.m, a.fx->items, &a.o, &a.s)) fz_die("default session: %s", towerrt_last_error());
  a.probs = a.m->output_sigmoid;
  a.session_ok = 1;
  for (int op = 0; op < MAX_OPS && a.in.n; op++) {
    switch (fz_u8(&a.in) % 5) {
      case 0: new_session(&a); break;
      case 1: score_op(&a, 1); break;
      case 2: score_op(&a, 0); break;
      case 3: misc_op(&a); break;
      default: heads_op(&a); break;
    }
  }
  towerrt_session_free(a.s);
  return 0;
}
