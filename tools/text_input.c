#define _POSIX_C_SOURCE 200809L
#include "text_input.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The readers' own error channel (they are not part of libtowerrt, whose
 * channel is towerrt_last_error): the message of this thread's last
 * failure, returned with its status. */
static _Thread_local char g_text_error[512];

static towerrt_status text_fail(towerrt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static towerrt_status text_fail(towerrt_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_text_error, sizeof g_text_error, fmt, ap);
  va_end(ap);
  return st;
}

const char *trt_text_error(void) { return g_text_error; }

#define GROW(ptr, n, cap, add)                                                     \
  do {                                                                             \
    if ((n) + (add) > (cap)) {                                                     \
      size_t nc_ = (cap) ? (cap) * 2 : 64;                                         \
      while (nc_ < (n) + (add)) nc_ *= 2;                                          \
      void *np_ = realloc((ptr), nc_ * sizeof *(ptr));                             \
      if (!np_) return text_fail(TOWERRT_ERR_NO_MEMORY, "out of memory reading input"); \
      (ptr) = np_;                                                                 \
      (cap) = nc_;                                                                 \
    }                                                                              \
  } while (0)

void trt_rows_clear(trt_rows *r) { r->n_ids = r->n_dense = r->n_keys = r->n_rows = 0; }
towerrt_status trt_rows_append(trt_rows *dst, const trt_rows *src) {
  GROW(dst->ids, dst->n_ids, dst->cap_ids, src->n_ids + 1);
  GROW(dst->dense, dst->n_dense, dst->cap_dense, src->n_dense + 1);
  if (src->n_ids) memcpy(dst->ids + dst->n_ids, src->ids, src->n_ids * sizeof *dst->ids);
  if (src->n_dense) memcpy(dst->dense + dst->n_dense, src->dense, src->n_dense * sizeof *dst->dense);
  dst->n_ids += src->n_ids, dst->n_dense += src->n_dense, dst->n_rows++;
  return TOWERRT_OK;
}

void trt_rows_free(trt_rows *r) {
  free(r->ids);
  free(r->dense);
  free(r->keys);
  memset(r, 0, sizeof *r);
}
void trt_request_free(trt_request *q) {
  trt_rows_free(&q->user);
  trt_rows_free(&q->items);
}

static towerrt_status bad(const trt_text_reader *r, towerrt_status st, const char *what) {
  return text_fail(st, "%s:%zu: %s", r->name, r->line, what);
}

/* An error at p, a position in the current line: names line and column. */
static towerrt_status bad_at(const trt_text_reader *r, const char *p, towerrt_status st, const char *what) {
  return text_fail(st, "%s:%zu:%zu: %s", r->name, r->line, (size_t)(p - r->buf) + 1, what);
}

/* Bytes a text file may hold: printable ASCII, tab, CR, LF, and (in
 * comments, where nothing is parsed) bytes >= 0x80 such as UTF-8. A NUL
 * or another control byte is refused: C string functions would stop at a
 * NUL and read the line as shorter, or a blank line (issue 13: "items A\n
 * \0items B C" scored 2 of 4 candidates and returned OK). */
static towerrt_status check_bytes(const trt_text_reader *r, size_t n) {
  const unsigned char *b = (const unsigned char *)r->buf;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = b[i];
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7F || (c == '\n' && i + 1 != n))
      return text_fail(TOWERRT_ERR_FORMAT, "%s:%zu:%zu: byte 0x%02x is not allowed in a text file (control character%s)", r->name,
                      r->line, i + 1, c, c ? "" : ": NUL");
  }
  return TOWERRT_OK;
}

/* Reads the next non-blank, non-comment line into r->buf; 0 at EOF or on
 * an error (*st set). */
static int next_line(trt_text_reader *r, towerrt_status *st) {
  *st = TOWERRT_OK;
  if (r->pushback) {
    r->pushback = 0;
    return 1;
  }
  for (;;) {
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) return 0;
    r->line++;
    if ((*st = check_bytes(r, (size_t)n))) return 0;
    char *p = r->buf;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p == '#') continue;
    for (char *q = p; *q; q++)
      if ((unsigned char)*q >= 0x80) {
        *st = bad_at(r, q, TOWERRT_ERR_FORMAT, "a byte >= 0x80 outside a comment");
        return 0;
      }
    if (*p) return 1;
  }
}

static int is_end(char c) { return !c || c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static char *skip_ws(char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p;
}

/* "<ids...> [; <dense...>]" into rows, checking the counts. */
static towerrt_status parse_row(trt_text_reader *r, char *p, size_t slots, size_t width, trt_rows *rows) {
  GROW(rows->ids, rows->n_ids, rows->cap_ids, slots);
  GROW(rows->dense, rows->n_dense, rows->cap_dense, width + 1);
  size_t got = 0;
  char msg[160];
  for (p = skip_ws(p); *p && *p != ';'; p = skip_ws(p)) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno || (!is_end(*end) && *end != ';')) return bad_at(r, p, TOWERRT_ERR_INVALID_ARGUMENT, "expected an integer id");
    if (got == slots) {
      snprintf(msg, sizeof msg, "more than the model's %zu id slots", slots);
      return bad_at(r, p, TOWERRT_ERR_SHAPE, msg);
    }
    rows->ids[rows->n_ids + got++] = v;
    p = end;
  }
  if (got != slots) {
    snprintf(msg, sizeof msg, "%zu ids, the model needs %zu id slots", got, slots);
    return bad(r, TOWERRT_ERR_SHAPE, msg);
  }
  size_t dense = 0;
  if (*p == ';') p++;
  for (p = skip_ws(p); *p; p = skip_ws(p)) {
    char *end;
    float v = strtof(p, &end);
    /* strict: "1.5-2" is not two values, "0.5x" not 0.5 */
    if (end == p || !is_end(*end)) return bad_at(r, p, TOWERRT_ERR_INVALID_ARGUMENT, "expected a dense value");
    if (dense == width) {
      snprintf(msg, sizeof msg, "more than the model's %zu dense values", width);
      return bad_at(r, p, TOWERRT_ERR_SHAPE, msg);
    }
    rows->dense[rows->n_dense + dense++] = v;
    p = end;
  }
  if (dense != width) {
    snprintf(msg, sizeof msg, "%zu dense values, the model needs %zu", dense, width);
    return bad(r, TOWERRT_ERR_SHAPE, msg);
  }
  rows->n_ids += slots;
  rows->n_dense += width;
  rows->n_rows++;
  return TOWERRT_OK;
}

static towerrt_status parse_key(trt_text_reader *r, char **p, uint64_t *key) {
  char *s = skip_ws(*p), *end;
  if (*s == '-') return bad_at(r, s, TOWERRT_ERR_INVALID_ARGUMENT, "item ids are unsigned");
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || !is_end(*end)) return bad_at(r, s, TOWERRT_ERR_INVALID_ARGUMENT, "expected an unsigned 64-bit item id");
  *key = v;
  *p = end;
  return TOWERRT_OK;
}

static int directive(char **p, const char *word) {
  char *s = skip_ws(*p);
  size_t n = strlen(word);
  if (strncmp(s, word, n) != 0 || !is_end(s[n])) return 0;
  *p = s + n;
  return 1;
}

towerrt_status trt_text_open(trt_text_reader *r, FILE *f, const char *name, const char *kind, const towerrt_model *m) {
  memset(r, 0, sizeof *r);
  r->f = f;
  r->name = name;
  r->user_slots = towerrt_model_id_slots(m, TOWERRT_USER);
  r->user_dense = towerrt_model_dense_width(m, TOWERRT_USER);
  r->item_slots = towerrt_model_id_slots(m, TOWERRT_ITEM);
  r->item_dense = towerrt_model_dense_width(m, TOWERRT_ITEM);
  r->max_candidates = 100000;
  towerrt_status st;
  if (!next_line(r, &st)) return st ? st : bad(r, TOWERRT_ERR_FORMAT, "empty file");
  char *p = r->buf;
  if (!directive(&p, kind)) return text_fail(TOWERRT_ERR_BAD_MAGIC, "%s:%zu: first line must be '%s 1'", name, r->line, kind);
  p = skip_ws(p);
  /* the version is a whole decimal number: "1junk" or "1 2" is not version 1 */
  char *end;
  errno = 0;
  long version = strtol(p, &end, 10);
  if (end == p || errno || *skip_ws(end) || (*p < '0' || *p > '9'))
    return bad_at(r, p, TOWERRT_ERR_FORMAT, "expected the format version (a number) and nothing after it");
  if (version != 1) return text_fail(TOWERRT_ERR_VERSION, "%s:%zu: only version 1 of %s is supported", name, r->line, kind);
  return TOWERRT_OK;
}

void trt_text_close(trt_text_reader *r) {
  free(r->buf);
  r->buf = NULL;
}

static towerrt_status too_many(const trt_text_reader *r) {
  char msg[96];
  snprintf(msg, sizeof msg, "more than %zu candidates in one request (max_k)", r->max_candidates);
  return bad(r, TOWERRT_ERR_LIMIT, msg);
}

static towerrt_status request_line(trt_text_reader *r, trt_request *q, char *p, int *closed) {
  if (directive(&p, "end")) {
    r->failed_at_end = 1; /* whatever follows, this line closes the request */
    if (*skip_ws(p)) return bad_at(r, skip_ws(p), TOWERRT_ERR_FORMAT, "nothing may follow 'end'");
    if (q->items.n_rows + q->items.n_keys == 0) return bad(r, TOWERRT_ERR_EMPTY_REQUEST, "request has no candidates");
    *closed = 1;
    return TOWERRT_OK;
  }
  if (directive(&p, "items")) {
    if (q->items.n_rows) return bad(r, TOWERRT_ERR_INVALID_ARGUMENT, "'items' and 'item' lines mixed in one request");
    q->by_id = 1;
    for (p = skip_ws(p); *p; p = skip_ws(p)) {
      if (q->items.n_keys >= r->max_candidates) return too_many(r);
      GROW(q->items.keys, q->items.n_keys, q->items.cap_keys, 1);
      towerrt_status st = parse_key(r, &p, &q->items.keys[q->items.n_keys]);
      if (st) return st;
      q->items.n_keys++;
    }
    return TOWERRT_OK;
  }
  if (directive(&p, "item")) {
    if (q->by_id) return bad(r, TOWERRT_ERR_INVALID_ARGUMENT, "'items' and 'item' lines mixed in one request");
    if (q->items.n_rows >= r->max_candidates) return too_many(r);
    return parse_row(r, p, r->item_slots, r->item_dense, &q->items);
  }
  if (directive(&p, "user")) {
    r->failed_at_user = 1;
    return bad(r, TOWERRT_ERR_FORMAT, "'user' before the previous request's 'end'");
  }
  return bad_at(r, skip_ws(p), TOWERRT_ERR_FORMAT, "expected 'items', 'item' or 'end'");
}

towerrt_status trt_text_next_request(trt_text_reader *r, trt_request *q, int *done) {
  trt_rows_clear(&q->user);
  trt_rows_clear(&q->items);
  q->by_id = 0;
  *done = 0;
  r->failed_at_end = r->failed_at_user = 0;
  towerrt_status st;
  if (!next_line(r, &st)) {
    *done = !st;
    return st;
  }
  char *p = r->buf;
  if (!directive(&p, "user")) return bad_at(r, skip_ws(p), TOWERRT_ERR_FORMAT, "expected 'user' to open a request");
  q->line = r->line;
  st = parse_row(r, p, r->user_slots, r->user_dense, &q->user);
  int closed = 0;
  while (!st && !closed) {
    if (!next_line(r, &st)) return st ? st : bad(r, TOWERRT_ERR_TRUNCATED, "file ends inside a request (no 'end')");
    st = request_line(r, q, r->buf, &closed);
  }
  return st;
}

void trt_text_skip_request(trt_text_reader *r) {
  if (r->failed_at_end) return;
  if (r->failed_at_user) {
    r->pushback = 1;
    return;
  }
  for (;;) {
    towerrt_status st;
    if (!next_line(r, &st)) {
      if (st) continue; /* a line with a refused byte: still part of the bad request */
      return;
    }
    char *p = r->buf;
    if (directive(&p, "end")) return;
    p = r->buf;
    if (directive(&p, "user")) {
      r->pushback = 1;
      return;
    }
  }
}

towerrt_status trt_text_read_items(trt_text_reader *r, trt_rows *rows, size_t max_rows, int *done) {
  *done = 0;
  for (size_t n = 0; n < max_rows; n++) {
    towerrt_status lst;
    if (!next_line(r, &lst)) {
      *done = !lst;
      return lst;
    }
    char *p = r->buf;
    GROW(rows->keys, rows->n_keys, rows->cap_keys, 1);
    towerrt_status st = parse_key(r, &p, &rows->keys[rows->n_keys]);
    if (!st) st = parse_row(r, p, r->item_slots, r->item_dense, rows);
    if (st) return st;
    rows->n_keys++;
  }
  return TOWERRT_OK;
}
