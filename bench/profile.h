/* `towerrt bench --profile`: the time of each step of one request, as the
 * session's observer reports it from the real request path
 * (towerrt_session_set_trace), summed per step over the request's blocks
 * and repeated over many requests; the median of each step and its share
 * of the total. */
#ifndef TOWERRT_BENCH_PROFILE_H
#define TOWERRT_BENCH_PROFILE_H

#include <stdio.h>

#include "bench_common.h"

#define TB_PROFILE_MAX_STEPS 48

typedef struct tb_profile_step {
  char name[48];   /* "user.dense[1]" */
  char detail[80]; /* "300 -> 300, relu" */
  double median_us, mean_us;
} tb_profile_step;

typedef struct tb_profile {
  char isa[32];
  char precision[8]; /* of the item store: f32, bf16, int8 */
  char fe_layers[32];
  size_t k, requests;
  size_t n_steps;
  tb_profile_step steps[TB_PROFILE_MAX_STEPS];
  double total_median_us;  /* sum of the step medians */
  double score_p50_us;     /* towerrt_score on the same requests, for comparison */
  double max_abs_diff;     /* observed scores vs towerrt_score unobserved (0: the observer changes nothing) */
} tb_profile;

/* Runs `requests` requests of k candidates (after a few warm-up ones) on
 * the store `items` (f32, or bf16/int8 where the runtime has them). */
towerrt_status tb_profile_run(const towerrt_model *m, const towerrt_items *items, uint32_t fe_mask, size_t k, size_t requests,
                              uint64_t seed, tb_profile *out);
void tb_profile_print(const tb_profile *p, FILE *f);
void tb_profile_json(const tb_profile *p, FILE *f, const char *indent);

#endif
