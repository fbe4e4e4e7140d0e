/* Fuzz target: bytes as a text requests file (or an item features file),
 * parsed with tools/text_input.h against a fixture model; every request
 * parsed is scored.
 *
 * Input: one mode byte, then the text.
 *   mode bits 0-3: which fixture (sorted by name, modulo their count);
 *   mode bit 4:    the text is an item features file ("towerrt-items 1"):
 *                  its rows are scored as candidates of a fixture user;
 *   mode bit 5:    output_logits;
 *   mode bit 6:    a session (and reader) with max_k = 8.
 * Requests by id are also scored by features when every candidate is in
 * the fixture catalog, and the two must agree.
 *
 * Round trip (issue 13): the same bytes go through a second, independent
 * reference parser of the grammar of docs/format.md (whole input,
 * token-based, below). The reader must accept exactly what the reference
 * accepts, and return the same values: the same requests in order (user
 * ids and dense values bit for bit, candidates by id or rows), the same
 * number before the first error. A reader that stops at a NUL, or takes
 * "1.5-2" as two values, or "1junk" as 1, disagrees with it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runtime/model.h"

#define MAX_INPUT (1u << 20)
#define MAX_REQUESTS 64
#define MAX_CATALOG_ROWS 4096u

/* ---- the reference parser --------------------------------------------------- */

/* One parsed row or request of the reference, values flattened. */
typedef struct ref_out {
  int64_t ids[1 << 19]; /* inputs are at most 1 MiB: < 2^19 tokens */
  float dense[1 << 19];
  uint64_t keys[1 << 19];
  size_t n_ids, n_dense, n_keys;
} ref_out;

typedef struct ref_parser {
  const unsigned char *text;
  size_t n, pos, line;
  char buf[MAX_INPUT + 1];
  size_t slots[2], width[2], max_cands;
} ref_parser;

static int ref_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The next line that is neither blank nor a comment into p->buf; 1 if one,
 * 0 at the end, -1 on a byte the format refuses. */
static int ref_line(ref_parser *p) {
  while (p->pos < p->n) {
    size_t start = p->pos, end = start;
    while (end < p->n && p->text[end] != '\n') end++;
    p->pos = end < p->n ? end + 1 : end;
    p->line++;
    size_t len = end - start;
    for (size_t i = 0; i < len; i++) {
      unsigned char c = p->text[start + i];
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) return -1;
    }
    memcpy(p->buf, p->text + start, len);
    p->buf[len] = '\0';
    char *s = p->buf;
    while (ref_ws(*s)) s++;
    if (*s == '#' || !*s) continue;
    for (char *q = s; *q; q++)
      if ((unsigned char)*q >= 0x80) return -1;
    return 1;
  }
  return 0;
}

/* Next whitespace-separated token of *s (NUL-terminated in place), or NULL. */
static char *ref_token(char **s) {
  char *t = *s;
  while (ref_ws(*t)) t++;
  if (!*t) return NULL;
  char *e = t;
  while (*e && !ref_ws(*e)) e++;
  if (*e) *e++ = '\0';
  *s = e;
  return t;
}

static int ref_int(const char *t, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(t, &end, 10);
  *v = x;
  return end != t && !*end && !errno;
}

static int ref_key(const char *t, uint64_t *v) {
  char *end;
  if (*t == '-') return 0;
  errno = 0;
  unsigned long long x = strtoull(t, &end, 10);
  *v = x;
  return end != t && !*end && !errno;
}

/* "<ids> [; <dense>]" of one side: split at the first ';'. */
static int ref_row(const ref_parser *p, char *s, int side, ref_out *o) {
  char *semi = strchr(s, ';'), *dense = NULL;
  if (semi) *semi = '\0', dense = semi + 1;
  size_t got = 0;
  for (char *t; (t = ref_token(&s));) {
    if (got == p->slots[side] || o->n_ids >= sizeof o->ids / sizeof o->ids[0]) return 0;
    if (!ref_int(t, &o->ids[o->n_ids + got])) return 0;
    got++;
  }
  if (got != p->slots[side]) return 0;
  size_t nd = 0;
  for (char *t; dense && (t = ref_token(&dense));) {
    char *end;
    if (nd == p->width[side] || o->n_dense >= sizeof o->dense / sizeof o->dense[0]) return 0;
    o->dense[o->n_dense + nd] = strtof(t, &end);
    if (end == t || *end) return 0;
    nd++;
  }
  if (nd != p->width[side]) return 0;
  o->n_ids += got;
  o->n_dense += nd;
  return 1;
}

/* The header line: exactly "<kind> <version 1>". 1 if valid. */
static int ref_header(ref_parser *p, const char *kind) {
  if (ref_line(p) != 1) return 0;
  char *s = p->buf, *k = ref_token(&s), *v = ref_token(&s);
  if (!k || strcmp(k, kind) || !v || ref_token(&s) || *v < '0' || *v > '9') return 0;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  return !*end && !errno && x == 1;
}

/* One request into user / items; 1 parsed, 0 at a clean end, -1 invalid. */
static int ref_request(ref_parser *p, ref_out *user, ref_out *items, int *by_id, size_t *n_rows) {
  user->n_ids = user->n_dense = user->n_keys = 0;
  items->n_ids = items->n_dense = items->n_keys = 0;
  *by_id = 0;
  *n_rows = 0;
  int r = ref_line(p);
  if (r <= 0) return r;
  char *s = p->buf, *w = ref_token(&s);
  if (!w || strcmp(w, "user") || !ref_row(p, s, 0, user)) return -1;
  for (;;) {
    if (ref_line(p) != 1) return -1;
    s = p->buf;
    w = ref_token(&s);
    if (!strcmp(w, "end")) return ref_token(&s) || (*n_rows + items->n_keys) == 0 ? -1 : 1;
    if (!strcmp(w, "items")) {
      if (*n_rows) return -1;
      *by_id = 1;
      for (char *t; (t = ref_token(&s));) {
        if (items->n_keys >= p->max_cands || items->n_keys >= sizeof items->keys / sizeof items->keys[0]) return -1;
        if (!ref_key(t, &items->keys[items->n_keys++])) return -1;
      }
    } else if (!strcmp(w, "item")) {
      if (*by_id || *n_rows >= p->max_cands || !ref_row(p, s, 1, items)) return -1;
      ++*n_rows;
    } else {
      return -1;
    }
  }
}

static void same_values(const char *what, size_t n, const int64_t *ids, size_t n_ids, const float *dense, size_t n_dense,
                        const ref_out *ref) {
  if (n_ids != ref->n_ids || n_dense != ref->n_dense)
    fz_die("round trip: %s %zu: %zu ids / %zu dense values read, the reference parse has %zu / %zu", what, n, n_ids, n_dense, ref->n_ids,
           ref->n_dense);
  if (n_ids && memcmp(ids, ref->ids, n_ids * sizeof *ids)) fz_die("round trip: %s %zu: ids differ from the reference parse", what, n);
  if (n_dense && memcmp(dense, ref->dense, n_dense * sizeof *dense))
    fz_die("round trip: %s %zu: dense values differ from the reference parse", what, n);
}

static ref_out g_ref_user, g_ref_items;

static ref_parser *ref_open(const uint8_t *text, size_t n, const towerrt_model *m, size_t max_cands) {
  static ref_parser p;
  memset(&p, 0, offsetof(ref_parser, buf));
  p.text = text, p.n = n;
  p.slots[0] = towerrt_model_id_slots(m, TOWERRT_USER), p.width[0] = towerrt_model_dense_width(m, TOWERRT_USER);
  p.slots[1] = towerrt_model_id_slots(m, TOWERRT_ITEM), p.width[1] = towerrt_model_dense_width(m, TOWERRT_ITEM);
  p.max_cands = max_cands;
  return &p;
}

/* One request the reader returned (n-th) against the reference's next. */
static void check_request(ref_parser *p, size_t n, const trt_request *q) {
  int by_id;
  size_t rows;
  int r = ref_request(p, &g_ref_user, &g_ref_items, &by_id, &rows);
  if (r != 1) fz_die("round trip: the reader returned request %zu, the reference parse %s", n, r ? "refuses it" : "ends before it");
  same_values("request", n, q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense, &g_ref_user);
  if (by_id != q->by_id) fz_die("round trip: request %zu: by id %d, the reference %d", n, q->by_id, by_id);
  if (by_id) {
    if (q->items.n_keys != g_ref_items.n_keys || memcmp(q->items.keys, g_ref_items.keys, q->items.n_keys * sizeof(uint64_t)))
      fz_die("round trip: request %zu: %zu candidate ids, the reference %zu (or other values)", n, q->items.n_keys, g_ref_items.n_keys);
  } else {
    if (q->items.n_rows != rows) fz_die("round trip: request %zu: %zu item rows, the reference %zu", n, q->items.n_rows, rows);
    same_values("request items", n, q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense, &g_ref_items);
  }
}

/* The reader's catalog rows against the reference's, row by row. */
static void catalog_round_trip(ref_parser *p, const trt_rows *rows, towerrt_status st, int done) {
  size_t n = 0, ids = 0, dense = 0;
  for (; n < rows->n_rows || (st || done); n++) {
    g_ref_items.n_ids = g_ref_items.n_dense = 0;
    int r = ref_line(p);
    if (r == 1) {
      char *s = p->buf, *k = ref_token(&s);
      r = k && ref_key(k, &g_ref_items.keys[0]) && ref_row(p, s, 1, &g_ref_items) ? 1 : -1;
    }
    if (n >= rows->n_rows) { /* where the reader stopped: an error, or the end */
      if (st ? r != -1 : r != 0)
        fz_die("round trip: the reader %s after %zu catalog rows, the reference parse %s", st ? "fails" : "ends", n,
               r == 1 ? "reads another" : r ? "fails" : "ends");
      return;
    }
    if (r != 1) fz_die("round trip: catalog row %zu read, the reference parse %s", n, r ? "refuses it" : "ends before it");
    if (rows->keys[n] != g_ref_items.keys[0]) fz_die("round trip: catalog row %zu: key differs from the reference parse", n);
    size_t ni = p->slots[1], nd = p->width[1];
    same_values("catalog row", n, rows->ids + ids, ni, rows->dense + dense, nd, &g_ref_items);
    ids += ni, dense += nd;
  }
}

static void score_catalog(const fz_fixture *fx, towerrt_session *s, trt_text_reader *r, int probs, ref_parser *ref) {
  trt_rows rows = {0};
  int done = 0;
  towerrt_status st = trt_text_read_items(r, &rows, MAX_CATALOG_ROWS, &done);
  catalog_round_trip(ref, &rows, st, done);
  if (st) {
    if (!trt_text_error()[0]) fz_die("trt_text_read_items failed without a message");
  } else if (rows.n_rows) {
    if (rows.n_keys != rows.n_rows) fz_die("items file: %zu keys for %zu rows", rows.n_keys, rows.n_rows);
    const trt_request *q = &fx->requests[0];
    towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
    towerrt_features items = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
    float *scores = malloc(rows.n_rows * sizeof *scores);
    if (!scores) fz_die("out of memory");
    for (size_t i = 0; i < rows.n_rows; i++) scores[i] = 7.0f; /* fz_check_score: LIMIT leaves them 7 */
    st = towerrt_score_features(s, &user, &items, rows.n_rows, scores);
    fz_check_score(st, s, scores, rows.n_rows, probs, "towerrt_score_features (items file)");
    free(scores);
  }
  trt_rows_free(&rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > MAX_INPUT) return 0;
  uint8_t mode = data[0];
  const fz_fixture *fx = fz_pick(mode & 15u);
  int items_file = (mode & 16) != 0;
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = (mode >> 5) & 1u;
  if (mode & 64) o.max_k = 8;
  int probs = fx->model->output_sigmoid && !o.output_logits;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(fx->model, fx->items, &o, &s);
  if (st) fz_die("session on a fixture: %s", towerrt_last_error());

  char *text = malloc(size - 1);
  if (!text) fz_die("out of memory");
  memcpy(text, data + 1, size - 1);
  FILE *f = fmemopen(text, size - 1, "r");
  if (!f) fz_die("fmemopen failed");
  trt_text_reader r;
  st = trt_text_open(&r, f, "fuzz.txt", items_file ? "towerrt-items" : "towerrt-requests", fx->model);
  ref_parser *ref = ref_open(data + 1, size - 1, fx->model, o.max_k);
  if (ref_header(ref, items_file ? "towerrt-items" : "towerrt-requests") != (st == TOWERRT_OK))
    fz_die("round trip: the reader %s the header line, the reference parse %s it", st ? "refuses" : "accepts", st ? "accepts" : "refuses");
  if (st) {
    if (!trt_text_error()[0]) fz_die("trt_text_open failed without a message");
  } else if (items_file) {
    score_catalog(fx, s, &r, probs, ref);
  } else {
    r.max_candidates = o.max_k;
    trt_request q = {0};
    for (int n = 0; n < MAX_REQUESTS; n++) {
      int done = 0;
      st = trt_text_next_request(&r, &q, &done);
      if (st || done) {
        int rr = ref_request(ref, &g_ref_user, &g_ref_items, &(int){0}, &(size_t){0});
        if (st ? rr != -1 : rr != 0)
          fz_die("round trip: the reader %s after %d requests, the reference parse %s", st ? "fails" : "ends", n,
                 rr == 1 ? "reads another" : rr ? "fails" : "ends");
      }
      if (st) {
        if (!trt_text_error()[0]) fz_die("trt_text_next_request failed without a message");
        break;
      }
      if (done) break;
      check_request(ref, (size_t)n, &q);
      size_t k = q.by_id ? q.items.n_keys : q.items.n_rows;
      if (k == 0 || k > o.max_k) fz_die("the reader returned a request of %zu candidates (max %u)", k, o.max_k);
      if (q.user.n_rows != 1) fz_die("the reader returned %zu user rows", q.user.n_rows);
      fz_score_request(fx, s, &q, probs);
    }
    trt_request_free(&q);
  }
  trt_text_close(&r);
  fclose(f);
  free(text);
  towerrt_session_free(s);
  return 0;
}
