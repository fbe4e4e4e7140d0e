/* The text readers (tools/text_input.c) on bytes the format does not
 * allow (issue 13): a NUL or another control byte anywhere, a version
 * "1junk", dense values run together, words after 'end'. Each is an error
 * that names line and column; valid text with a comment in UTF-8, CRLF
 * line ends and tabs still parses, to the same values.
 * usage: test_text_input FIXTURE_DIR (the accel_deep layout: user 2 ids +
 * 2 dense, item 6 ids + 1 dense) */
#define _GNU_SOURCE /* fmemopen */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/text_input.h"
#include "test_util.h"
#include "towerrt.h"

static const towerrt_model *g_m;

/* Parses `n` bytes of a requests file; returns the status of the first
 * failure (or OK) and the number of requests read and their candidates. */
static towerrt_status parse_requests(const char *text, size_t n, size_t *n_req, size_t *n_cands) {
  char *copy = malloc(n ? n : 1);
  memcpy(copy, text, n);
  FILE *f = fmemopen(copy, n, "r");
  trt_text_reader r;
  towerrt_status st = trt_text_open(&r, f, "req.txt", "towerrt-requests", g_m);
  trt_request q = {0};
  *n_req = *n_cands = 0;
  for (int done = 0; !st && !done;) {
    st = trt_text_next_request(&r, &q, &done);
    if (!st && !done) ++*n_req, *n_cands += q.by_id ? q.items.n_keys : q.items.n_rows;
  }
  trt_request_free(&q);
  trt_text_close(&r);
  fclose(f);
  free(copy);
  return st;
}

static towerrt_status parse_items(const char *text, size_t n, size_t *rows) {
  char *copy = malloc(n);
  memcpy(copy, text, n);
  FILE *f = fmemopen(copy, n, "r");
  trt_text_reader r;
  towerrt_status st = trt_text_open(&r, f, "items.txt", "towerrt-items", g_m);
  trt_rows out = {0};
  int done = 0;
  while (!st && !done) st = trt_text_read_items(&r, &out, 1000, &done);
  *rows = out.n_rows;
  trt_rows_free(&out);
  trt_text_close(&r);
  fclose(f);
  free(copy);
  return st;
}

#define USER "user 0 3 ; 0.5 -0.25\n"

/* A request text (sizeof - 1: NULs inside are part of it) must fail with
 * `want`, the message naming `where` ("req.txt:LINE:COLUMN"). */
static void expect_bad(const char *text, size_t n, towerrt_status want, const char *where, const char *what) {
  size_t nr, nc;
  towerrt_status st = parse_requests(text, n, &nr, &nc);
  CHECK(st == want, "%s: got %s (%s), want %s", what, towerrt_status_name(st), trt_text_error(), towerrt_status_name(want));
  CHECK(strstr(trt_text_error(), where) != NULL, "%s: message '%s' does not name '%s'", what, trt_text_error(), where);
}

#define BAD(lit, want, where) expect_bad(lit, sizeof(lit) - 1, want, where, #lit)

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char path[512];
  snprintf(path, sizeof path, "%s/model.twr", argv[1]);
  towerrt_model *m = NULL;
  if (towerrt_model_load(path, NULL, &m)) {
    fprintf(stderr, "%s\n", towerrt_last_error());
    return 1;
  }
  g_m = m;
  if (towerrt_model_id_slots(m, TOWERRT_USER) != 2 || towerrt_model_dense_width(m, TOWERRT_USER) != 2) {
    fprintf(stderr, "test_text_input: the fixture must have 2 user id slots and 2 dense values\n");
    return 1;
  }
  /* the cases of issue 13 (each used to return OK with another meaning) */
  BAD("towerrt-requests 1\n" USER "items 1\n\0items 2 3\nitems 4\nend\n", TOWERRT_ERR_FORMAT, "req.txt:4:1:");
  BAD("towerrt-requests 1\n" USER "items 1 2\0 3 4\nend\n", TOWERRT_ERR_FORMAT, "req.txt:3:10:");
  BAD("towerrt-requests 1\n\0" USER "items 1\nend\n" USER "items 2\nend\n", TOWERRT_ERR_FORMAT, "req.txt:2:1:");
  BAD("towerrt-requests 1junk\n" USER "items 1\nend\n", TOWERRT_ERR_FORMAT, "req.txt:1:18:");
  BAD("towerrt-requests 1 2\n" USER "items 1\nend\n", TOWERRT_ERR_FORMAT, "req.txt:1:18:");
  BAD("towerrt-requests 2\n", TOWERRT_ERR_VERSION, "only version 1");
  /* other bytes and words the format does not allow */
  BAD("towerrt-requests 1\n" USER "items 1\x01\nend\n", TOWERRT_ERR_FORMAT, "req.txt:3:8:");
  BAD("towerrt-requests 1\n" USER "items 1\x7f\nend\n", TOWERRT_ERR_FORMAT, "req.txt:3:8:");
  BAD("towerrt-requests 1\nuser 0 3 ; 0.5-0.25\nitems 1\nend\n", TOWERRT_ERR_INVALID_ARGUMENT, "req.txt:2:12:");
  BAD("towerrt-requests 1\nuser 0 3 ; 0.5x -0.25\nitems 1\nend\n", TOWERRT_ERR_INVALID_ARGUMENT, "req.txt:2:12:");
  BAD("towerrt-requests 1\n" USER "items 1\nend now\n", TOWERRT_ERR_FORMAT, "req.txt:4:5:");
  BAD("towerrt-requests 1\n" USER "items 1 \xc3\xa9\nend\n", TOWERRT_ERR_FORMAT, "req.txt:3:9:");
  BAD("towerrt-requests 1\n" USER "itemz 1\nend\n", TOWERRT_ERR_FORMAT, "req.txt:3:1:");
  /* valid: UTF-8 in a comment, CRLF, tabs, blank lines; every candidate read */
  static const char ok[] = "towerrt-requests 1\r\n# caf\xc3\xa9 \xe2\x80\x94 a comment\n\n" USER "items 1\t2\r\nitems 3\nend\r\n" USER
                           "items 4\nend";
  size_t nr = 0, nc = 0;
  towerrt_status st = parse_requests(ok, sizeof ok - 1, &nr, &nc);
  CHECK(st == TOWERRT_OK && nr == 2 && nc == 4, "valid text: %s (%s), %zu requests, %zu candidates", towerrt_status_name(st),
        trt_text_error(), nr, nc);
  /* catalogs (build-items): a line starting with NUL is not skipped */
  static const char cat[] = "towerrt-items 1\n11 1 2 3 4 5 6 ; 0.5\n\0" "12 1 2 3 4 5 6 ; 0.5\n13 1 2 3 4 5 6 ; 0.5\n";
  size_t rows = 0;
  st = parse_items(cat, sizeof cat - 1, &rows);
  CHECK(st == TOWERRT_ERR_FORMAT && strstr(trt_text_error(), "items.txt:3:1:"), "catalog with a NUL line: %s (%s)",
        towerrt_status_name(st), trt_text_error());
  static const char cat_ok[] = "towerrt-items 1\n11 1 2 3 4 5 6 ; 0.5\n12 1 2 3 4 5 6 ; 0.5\n";
  st = parse_items(cat_ok, sizeof cat_ok - 1, &rows);
  CHECK(st == TOWERRT_OK && rows == 2, "valid catalog: %s, %zu rows", towerrt_status_name(st), rows);
  towerrt_model_free(m);
  return test_finish("test_text_input");
}
