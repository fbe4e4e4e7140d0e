/* Hardware counters of the measured requests through perf_event_open
 * (`towerrt bench --counters`): cycles, instructions, last-level-cache
 * misses and dTLB load misses of the calling thread, user space only
 * (allowed at perf_event_paranoid <= 2). Where the kernel refuses (a guest
 * without a virtual PMU: ENOENT; paranoid 3; seccomp) tb_counters_open
 * says why and the columns stay empty. */
#ifndef TOWERRT_BENCH_COUNTERS_H
#define TOWERRT_BENCH_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#define TB_N_COUNTERS 4

typedef struct tb_counters {
  int fd[TB_N_COUNTERS]; /* -1: not open */
  int ok;
} tb_counters;

extern const char *const tb_counter_names[TB_N_COUNTERS]; /* "cycles", "instructions", "llc_misses", "dtlb_misses" */

/* 1 if every counter opened (disabled, for this thread); else 0 and the
 * reason in why. TOWERRT_BENCH_COUNTERS=software swaps in software events
 * (task clock, page faults, context switches, migrations) so that the code
 * path can be tested on machines without a PMU. */
int tb_counters_open(tb_counters *c, char *why, size_t cap);
void tb_counters_start(tb_counters *c);
/* Stops and reads the counts since start (scaled if the PMU multiplexed). */
void tb_counters_stop(tb_counters *c, double out[TB_N_COUNTERS]);
void tb_counters_close(tb_counters *c);

#endif
