/* Parsers of the text request and item-feature files (docs/format.md),
 * used by the CLI, the tests and the fuzzers. Not part of libtowerrt
 * (docs/architecture.md, "Text request files"): they use towerrt.h only
 * and report errors on their own channel, trt_text_error(). Errors name
 * the line. */
#ifndef TOWERRT_TEXT_INPUT_H
#define TOWERRT_TEXT_INPUT_H

#include <stdio.h>

#include "towerrt.h"

/* A growable array of one request or a whole catalog. */
typedef struct trt_rows {
  int64_t *ids;
  size_t n_ids, cap_ids;
  float *dense;
  size_t n_dense, cap_dense;
  uint64_t *keys; /* item ids (candidates by id, or catalog keys) */
  size_t n_keys, cap_keys;
  size_t n_rows;
} trt_rows;

typedef struct trt_request {
  trt_rows user;
  trt_rows items; /* by features: rows; by id: keys */
  int by_id;
  size_t line; /* line of its `user` directive */
} trt_request;

typedef struct trt_text_reader {
  FILE *f;
  const char *name;
  size_t line;
  size_t user_slots, user_dense, item_slots, item_dense; /* the model's layout */
  size_t max_candidates;
  char *buf;
  size_t cap;
  /* Recovery after a bad request (trt_text_skip_request): the line that
   * failed was an `end` (the request is closed), or a `user` that opens the
   * next request (read again); pushback: next_line returns buf again. */
  int failed_at_end, failed_at_user, pushback;
} trt_text_reader;

/* The message of this thread's last failed reader call (every function
 * here that returns a status other than TOWERRT_OK sets it; the runtime's
 * towerrt_last_error() is not touched). */
const char *trt_text_error(void);

void trt_rows_clear(trt_rows *r);
/* Appends src's ids and dense values to dst as one more row (n_rows + 1):
 * the users of several requests as one block of rows. */
towerrt_status trt_rows_append(trt_rows *dst, const trt_rows *src);
void trt_rows_free(trt_rows *r);
void trt_request_free(trt_request *q);

/* Opens a reader on f (its first line must be the header for `kind`:
 * "towerrt-requests" or "towerrt-items"). */
towerrt_status trt_text_open(trt_text_reader *r, FILE *f, const char *name, const char *kind, const towerrt_model *m);
void trt_text_close(trt_text_reader *r);
/* Next request; *done = 1 at end of file. */
towerrt_status trt_text_next_request(trt_text_reader *r, trt_request *q, int *done);
/* After trt_text_next_request failed on a request: skips the rest of it
 * (up to its `end`, or to the next `user` line, which the next call reads),
 * so that the following requests can still be read (score --on-error skip). */
void trt_text_skip_request(trt_text_reader *r);
/* Up to max_rows catalog rows appended to rows (keys + features); *done at EOF. */
towerrt_status trt_text_read_items(trt_text_reader *r, trt_rows *rows, size_t max_rows, int *done);

#endif
