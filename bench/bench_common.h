/* Shared by the `towerrt bench` command and the Google Benchmark suites:
 * the kernel sets this build and this CPU can run, and random requests
 * (users and candidates) drawn from a model and an item store. */
#ifndef TOWERRT_BENCH_COMMON_H
#define TOWERRT_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "bench_util.h"
#include "kernels/kernels.h"
#include "towerrt.h"

#define TB_MAX_ISAS 16

/* Every kernel set this build and this CPU run (towerrt_isas), "scalar"
 * first and the best last. Returns the count;
 * names point to static storage. */
size_t tb_available_isas(const char *names[TB_MAX_ISAS]);
/* The same, or only the TOWERRT_ISA set when that names one this machine
 * runs (it overrides every model's choice): what `towerrt bench` offers. */
size_t tb_bench_isas(const char *names[TB_MAX_ISAS]);
/* Name of the set "auto" selects (the best for this CPU; TOWERRT_ISA aside). */
const char *tb_default_isa(void);
/* The kernel table of one set, TOWERRT_ISA ignored (0 if unavailable):
 * for the kernel micro-benchmarks (kernels/kernel_table.h). */
int tb_kernels(const char *isa, towerrt_kernels *out);

/* Random requests: users drawn from the model's vocabularies and
 * candidates drawn from the store's ids without replacement (with
 * replacement when k exceeds the store). */
typedef struct tb_reqgen {
  tb_rng rng;
  size_t user_slots, user_dense;
  uint32_t *slot_vocab; /* per user id slot */
  uint8_t *slot_multi;  /* 1 if the slot belongs to a multi-id field (0 = padding allowed) */
  uint64_t *ids;        /* every id of the store */
  uint32_t *perm;
  size_t n_ids;
} tb_reqgen;

/* 0 on out of memory. items may be NULL (then no candidates). */
int tb_reqgen_init(tb_reqgen *g, const towerrt_model *m, const towerrt_items *items, uint64_t seed);
void tb_reqgen_user(tb_reqgen *g, int64_t *ids, float *dense);
void tb_reqgen_candidates(tb_reqgen *g, uint64_t *out, size_t k);
void tb_reqgen_free(tb_reqgen *g);

/* The MaxSim shape of a model (towerrt_model_heads). */
static inline uint32_t tb_user_heads(const towerrt_model *m) {
  uint32_t v = 0;
  towerrt_model_heads(m, &v, NULL, NULL);
  return v;
}
static inline uint32_t tb_item_heads(const towerrt_model *m) {
  uint32_t v = 0;
  towerrt_model_heads(m, NULL, &v, NULL);
  return v;
}
static inline uint32_t tb_head_dim(const towerrt_model *m) {
  uint32_t v = 0;
  towerrt_model_heads(m, NULL, NULL, &v);
  return v;
}

/* The bench's own failures (out of memory, a TOWERRT_ISA this machine
 * cannot run) on its own channel, the runtime's being towerrt_last_error():
 * tb_fail records the message and returns st; tb_last_error() is the
 * bench's message when tb_fail was called since tb_clear_error(), else
 * the runtime's. */
towerrt_status tb_fail(towerrt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tb_last_error(void);
void tb_clear_error(void);

/* "0+1+2" for a mask. */
void tb_mask_string(uint32_t mask, char *buf, size_t cap);

#endif
