/* perf_event_open counters (counters.h). Linux only; elsewhere they never open. */
#define _GNU_SOURCE
#include "counters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

const char *const tb_counter_names[TB_N_COUNTERS] = {"cycles", "instructions", "llc_misses", "dtlb_misses"};

#ifdef __linux__
static int open_one(uint32_t type, uint64_t config) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.type = type;
  a.size = sizeof a;
  a.config = config;
  a.disabled = 1;
  a.exclude_kernel = 1; /* what perf_event_paranoid 2 allows */
  a.exclude_hv = 1;
  a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static long paranoid_level(void) {
  FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
  long v = -99;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1) v = -99;
    fclose(f);
  }
  return v;
}
#endif

int tb_counters_open(tb_counters *c, char *why, size_t cap) {
  for (int i = 0; i < TB_N_COUNTERS; i++) c->fd[i] = -1;
  c->ok = 0;
#ifdef __linux__
  const char *env = getenv("TOWERRT_BENCH_COUNTERS");
  int soft = env && !strcmp(env, "software");
  const uint64_t hw[TB_N_COUNTERS] = {
      PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CACHE_MISSES,
      PERF_COUNT_HW_CACHE_DTLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) | ((uint64_t)PERF_COUNT_HW_CACHE_RESULT_MISS << 16)};
  const uint32_t hw_type[TB_N_COUNTERS] = {PERF_TYPE_HARDWARE, PERF_TYPE_HARDWARE, PERF_TYPE_HARDWARE, PERF_TYPE_HW_CACHE};
  const uint64_t sw[TB_N_COUNTERS] = {PERF_COUNT_SW_TASK_CLOCK, PERF_COUNT_SW_PAGE_FAULTS, PERF_COUNT_SW_CONTEXT_SWITCHES,
                                      PERF_COUNT_SW_CPU_MIGRATIONS};
  for (int i = 0; i < TB_N_COUNTERS; i++) {
    c->fd[i] = soft ? open_one(PERF_TYPE_SOFTWARE, sw[i]) : open_one(hw_type[i], hw[i]);
    if (c->fd[i] < 0) {
      int e = errno;
      snprintf(why, cap, "perf_event_open(%s): %s (perf_event_paranoid = %ld%s)", tb_counter_names[i], strerror(e), paranoid_level(),
               e == ENOENT || e == EOPNOTSUPP ? "; no hardware PMU here, e.g. a guest without a virtual PMU" : "");
      tb_counters_close(c);
      return 0;
    }
  }
  c->ok = 1;
  return 1;
#else
  snprintf(why, cap, "hardware counters need Linux perf_event_open");
  return 0;
#endif
}

void tb_counters_start(tb_counters *c) {
#ifdef __linux__
  for (int i = 0; c->ok && i < TB_N_COUNTERS; i++) {
    ioctl(c->fd[i], PERF_EVENT_IOC_RESET, 0);
    ioctl(c->fd[i], PERF_EVENT_IOC_ENABLE, 0);
  }
#else
  (void)c;
#endif
}

void tb_counters_stop(tb_counters *c, double out[TB_N_COUNTERS]) {
  for (int i = 0; i < TB_N_COUNTERS; i++) out[i] = -1;
#ifdef __linux__
  for (int i = 0; c->ok && i < TB_N_COUNTERS; i++) ioctl(c->fd[i], PERF_EVENT_IOC_DISABLE, 0);
  for (int i = 0; c->ok && i < TB_N_COUNTERS; i++) {
    uint64_t v[3]; /* value, time enabled, time running */
    if (read(c->fd[i], v, sizeof v) != (ssize_t)sizeof v) continue;
    out[i] = v[2] ? (double)v[0] * ((double)v[1] / (double)v[2]) : 0.0;
  }
#else
  (void)c;
#endif
}

void tb_counters_close(tb_counters *c) {
#ifdef __linux__
  for (int i = 0; i < TB_N_COUNTERS; i++)
    if (c->fd[i] >= 0) close(c->fd[i]);
#endif
  for (int i = 0; i < TB_N_COUNTERS; i++) c->fd[i] = -1;
  c->ok = 0;
}
