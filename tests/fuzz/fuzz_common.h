/* Shared by the libFuzzer targets of tests/fuzz/, their standalone replay
 * driver (replay_main.c) and the seed generator (make_seeds.c).
 *
 * Every target defines LLVMFuzzerTestOneInput. The fixtures they score
 * against are the golden models of tests/fixtures/golden (directory from the
 * environment variable TOWERRT_FUZZ_FIXTURES, else the path compiled in),
 * each loaded once with an item store built from its items.txt. A contract
 * violation (a crash-free but wrong answer: a status out of range, a handle
 * set on failure, an empty message, a score that is not NaN after an error
 * or NaN after success) aborts, so libFuzzer records it like a crash. */
#ifndef TOWERRT_FUZZ_COMMON_H
#define TOWERRT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "tools/text_input.h"
#include "towerrt.h"

#define FZ_MAX_FIXTURES 16

typedef struct fz_fixture {
  char name[128];
  char dir[512];
  towerrt_model *model;
  towerrt_items *items; /* built from items.txt with this model (f32) */
  towerrt_items *quantized[2]; /* the same store in bf16 and int8 (NULL if quantizing failed) */
  trt_rows catalog;     /* items.txt: keys + feature rows, in file order */
  trt_request *requests; /* requests_ids.txt, then requests_features.txt */
  size_t n_requests;
} fz_fixture;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* All golden fixtures (sorted by name), loaded on first use; aborts if none. */
size_t fz_fixtures(const fz_fixture **out);
/* Fixture number `selector` modulo the count. */
const fz_fixture *fz_pick(unsigned selector);

/* Writes the bytes to an in-memory file (memfd) and returns a path to it
 * ("/proc/self/fd/N"); the same file is reused by the next call. */
const char *fz_bytes_path(const uint8_t *data, size_t size);

/* Recomputes a container's CRCs in place (header, section table, every
 * section that lies inside the buffer), so mutations reach the parsers
 * behind the checksums. Safe on any bytes. If fix_size, also sets the
 * header's file_size to `size`. */
void fz_fix_container(uint8_t *file, size_t size, int fix_size);

/* Consumes fuzz bytes; returns zeros once they run out. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;
uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
uint64_t fz_u64(fz_in *in);

/* Aborts with a message (a finding). */
void fz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The error contract of one scoring call on a live session with a scores
 * buffer of k floats: a known status; OK means every score is finite (and
 * in [0, 1] when `probabilities`); an error means a message on the session
 * and on the thread, and every one of the k scores NaN (scores non-NULL). */
void fz_check_score(towerrt_status st, const towerrt_session *s, const float *scores, size_t k, int probabilities,
                    const char *what);
/* A load or create: a known status; on failure the handle is NULL and the
 * thread's message is not empty; on success it is set. */
void fz_check_open(towerrt_status st, const void *handle, const char *what);

/* Scores the by-id request q on s, then the same candidates by features
 * (when every key is in the fixture's catalog) and compares: a store row
 * and the online item tower must agree. Returns the by-id status. */
towerrt_status fz_score_request(const fz_fixture *fx, towerrt_session *s, const trt_request *q, int probabilities);

/* Relative closeness used by the differential checks. */
int fz_close(float a, float b);

#endif
