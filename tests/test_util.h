/* Small helpers shared by the C tests: a seeded PRNG, checks that report
 * file:line and keep going, and float comparison with a relative bound. */
#ifndef TOWERRT_TEST_UTIL_H
#define TOWERRT_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/text_input.h"
#include "towerrt.h"

extern int g_test_failures;

uint64_t test_rand_u64(uint64_t *state);
/* Uniform in [lo, hi). */
float test_rand_float(uint64_t *state, float lo, float hi);
size_t test_rand_range(uint64_t *state, size_t lo, size_t hi_inclusive);
/* Seed from TOWERRT_TEST_SEED or a fixed default; printed so a failure can be replayed. */
uint64_t test_seed(const char *test_name);

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fputc('\n', stderr);                                            \
      g_test_failures++;                                              \
    }                                                                 \
  } while (0)

/* |a - b| <= rel * max(|a|, |b|) + abs_floor */
int test_close(double a, double b, double rel, double abs_floor);

/* Reads a whole file into a malloc'd buffer; NULL on failure. */
unsigned char *test_read_file(const char *path, size_t *size);
int test_write_file(const char *path, const void *data, size_t size);
/* Re-computes the CRCs of a towerrt container in memory after a test edited it. */
void test_fix_crcs(unsigned char *file, size_t size);

int test_finish(const char *name);

/* tests/test_fixture.c (needs the runtime) ---------------------------------- */
/* FIXTURE_DIR/items.txt (a golden fixture's catalog) into rows. */
towerrt_status test_read_catalog(const towerrt_model *m, const char *dir, trt_rows *rows);
/* Builds FIXTURE_DIR/items.txt into an item store at `out`. */
towerrt_status test_build_store(const towerrt_model *m, const char *dir, const char *out);
/* The first request of FIXTURE_DIR/name into *q; 0 if there is none. */
int test_first_request(const towerrt_model *m, const char *dir, const char *name, trt_request *q);

/* Every request of FIXTURE_DIR/name into a malloc'd array; returns the count. */
size_t test_read_requests(const towerrt_model *m, const char *dir, const char *name, trt_request **out);
void test_free_requests(trt_request *q, size_t n);
/* The users of n requests as one block of rows (rows: trt_rows_free it). */
towerrt_features test_users_of(const trt_request *q, size_t n, trt_rows *rows);

/* Exit code ctest reads as "skipped" (SKIP_RETURN_CODE). */
#define TEST_SKIPPED 77
/* 1 if TOWERRT_ISA forces a kernel set this CPU cannot run (the test is then skipped). */
int test_forced_isa_unavailable(void);

/* 1 if the two files hold the same bytes; else names the first differing byte on stderr. */
int test_same_files(const char *a, const char *b);

#endif
