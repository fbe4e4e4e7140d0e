/* Small helpers shared by the benchmark code: a monotonic clock, a seeded
 * random generator, latency statistics, comma lists, and the machine
 * description written into every result file. No dependency beyond C11 +
 * POSIX. */
#ifndef TOWERRT_BENCH_UTIL_H
#define TOWERRT_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Nanoseconds from CLOCK_MONOTONIC. */
uint64_t tb_now_ns(void);
/* CPU time of the process (all its threads), nanoseconds. */
uint64_t tb_cpu_ns(void);

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * stream on every machine. */
typedef struct tb_rng {
  uint64_t s[4];
} tb_rng;
void tb_rng_seed(tb_rng *r, uint64_t seed);
uint64_t tb_rng_next(tb_rng *r);
/* Uniform in [0, n), n >= 1 (Lemire's multiply, tiny bias ignored). */
uint64_t tb_rng_below(tb_rng *r, uint64_t n);
/* Uniform in [lo, hi). */
float tb_rng_uniform(tb_rng *r, float lo, float hi);

/* Latency statistics over n samples (ns); sorts the array in place.
 * Percentiles are nearest-rank: the smallest sample with at least p% of
 * the samples at or below it. */
typedef struct tb_stats {
  size_t n;
  double p50, p90, p99, p999, mean, min, max; /* ns */
} tb_stats;
void tb_stats_compute(double *samples_ns, size_t n, tb_stats *out);
double tb_percentile_sorted(const double *sorted, size_t n, double p);

/* A growable list of strings (owned copies). */
typedef struct tb_strlist {
  char **v;
  size_t n, cap;
} tb_strlist;
int tb_strlist_add(tb_strlist *l, const char *s);
/* Splits `text` on `sep` (empty pieces are skipped). 0 on out of memory. */
int tb_strlist_split(tb_strlist *l, const char *text, char sep);
void tb_strlist_free(tb_strlist *l);
int tb_strlist_has(const tb_strlist *l, const char *s);

/* 64-byte-aligned allocation of at least `bytes` (rounded up). */
void *tb_alloc(size_t bytes);

/* The machine, for the result files and the docs. */
typedef struct tb_machine {
  char cpu[128];
  int logical_cpus;
  long l2_bytes, l3_bytes;
  char os[128];
  char compiler[64];
  char date_utc[32];
  double loadavg_1m; /* /proc/loadavg: others' work on a shared machine skews timings */
} tb_machine;
void tb_machine_describe(tb_machine *m);

/* Writes s as a JSON string literal (with quotes). */
void tb_json_string(FILE *f, const char *s);
/* Writes a JSON number; NaN and Inf become null. */
void tb_json_number(FILE *f, double v);

/* 1 if an executable named `name` is on PATH (path written to out). */
int tb_find_program(const char *name, char *out, size_t cap);

/* FNV-1a 64 of a string, to name cache folders. */
uint64_t tb_fnv1a(const char *s);

/* Strict decimal parsing for command lines: digits only (no sign, no
 * leading space, no trailing junk), within [lo, hi]. 1 ok, 0 not. */
int tb_parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out);
/* A non-negative decimal number ("3", "0.25", ".5"; no sign, exponent,
 * inf or nan), at most hi. */
int tb_parse_seconds(const char *v, double hi, double *out);

#endif
