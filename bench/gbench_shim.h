/* gbench_shim.h - Google Benchmark from C.
 *
 * A C benchmark is a function void f(gbs_state *state, void *user) that
 * loops `while (gbs_keep_running(state)) { ... }` (the C form of
 * `for (auto _ : state)`). Register it with a name, its argument sets and
 * options; then gbs_initialize parses Google Benchmark's own command line
 * (--benchmark_filter, --benchmark_min_time, --benchmark_format=json|csv,
 * --benchmark_out=..., --benchmark_repetitions, ...) and gbs_run runs what
 * the filter selects, with Google Benchmark's console, JSON and CSV
 * reporters. Only gbench_shim.cc is C++.
 *
 *   static void bm_dot(gbs_state *s, void *user) {
 *     int64_t n = gbs_range_arg(s, 0);
 *     while (gbs_keep_running(s)) { ... }
 *     gbs_set_items_processed(s, gbs_iterations_done(s) * n);
 *     gbs_counter(s, "MACs", (double)n, GBS_RATE_PER_ITERATION);
 *   }
 *   gbs_benchmark *b = gbs_register("dot/avx2", bm_dot, NULL);
 *   gbs_arg_names(b, (const char *[]){"n"}, 1);
 *   gbs_range_multiplier(b, 8); gbs_range(b, 8, 4096);
 */
#ifndef TOWERRT_GBENCH_SHIM_H
#define TOWERRT_GBENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gbs_state gbs_state;         /* a running benchmark (benchmark::State) */
typedef struct gbs_benchmark gbs_benchmark; /* a registered one (benchmark::internal::Benchmark) */
typedef void (*gbs_fn)(gbs_state *state, void *user);

typedef enum gbs_time_unit { GBS_NS = 0, GBS_US = 1, GBS_MS = 2, GBS_S = 3 } gbs_time_unit;

/* How a user counter is reported (benchmark::Counter::Flags). */
typedef enum gbs_counter_kind {
  GBS_PLAIN = 0,                  /* the value as set */
  GBS_RATE = 1,                   /* value / elapsed seconds */
  GBS_PER_ITERATION = 2,          /* value / iterations */
  GBS_RATE_PER_ITERATION = 3,     /* value x iterations / elapsed seconds (a per-iteration amount as a rate) */
  GBS_ITERATION_INVARIANT = 4     /* value x iterations */
} gbs_counter_kind;

/* ---- registration ---- */
/* name is copied; user is passed to fn unchanged. */
gbs_benchmark *gbs_register(const char *name, gbs_fn fn, void *user);
void gbs_arg(gbs_benchmark *b, int64_t a);
void gbs_args(gbs_benchmark *b, const int64_t *args, size_t n);
void gbs_range(gbs_benchmark *b, int64_t lo, int64_t hi);
void gbs_range_multiplier(gbs_benchmark *b, int multiplier);
/* One argument per range; lo_hi holds n (lo, hi) pairs. */
void gbs_ranges(gbs_benchmark *b, const int64_t *lo_hi, size_t n);
void gbs_dense_range(gbs_benchmark *b, int64_t lo, int64_t hi, int step);
/* Cartesian product: lists[i] holds counts[i] values. */
void gbs_args_product(gbs_benchmark *b, const int64_t *const *lists, const size_t *counts, size_t n);
void gbs_arg_names(gbs_benchmark *b, const char *const *names, size_t n);
void gbs_unit(gbs_benchmark *b, gbs_time_unit unit);
void gbs_min_time(gbs_benchmark *b, double seconds);
void gbs_iterations(gbs_benchmark *b, int64_t n);
void gbs_repetitions(gbs_benchmark *b, int n);
void gbs_use_real_time(gbs_benchmark *b);

/* ---- inside a benchmark ---- */
int gbs_keep_running(gbs_state *s);
int gbs_keep_running_batch(gbs_state *s, int64_t n);
int64_t gbs_range_arg(const gbs_state *s, size_t i); /* state.range(i) */
int64_t gbs_iterations_done(const gbs_state *s);     /* state.iterations() */
void gbs_pause_timing(gbs_state *s);
void gbs_resume_timing(gbs_state *s);
void gbs_set_items_processed(gbs_state *s, int64_t items);
void gbs_set_bytes_processed(gbs_state *s, int64_t bytes);
void gbs_counter(gbs_state *s, const char *name, double value, gbs_counter_kind kind);
void gbs_set_label(gbs_state *s, const char *label);
void gbs_skip_with_error(gbs_state *s, const char *message);
/* Keeps the compiler from discarding what p points to / pending stores. */
void gbs_do_not_optimize(const void *p);
void gbs_clobber_memory(void);

/* ---- running ---- */
/* benchmark::Initialize: consumes Google Benchmark's flags from argv. */
void gbs_initialize(int *argc, char **argv);
/* 1 (and a message) if arguments other than argv[0] remain. */
int gbs_report_unrecognized(int argc, char **argv);
/* A key/value pair in the "context" of the JSON and console output. */
void gbs_add_context(const char *key, const char *value);
/* Runs the benchmarks the flags select; returns how many ran. */
size_t gbs_run(void);
void gbs_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
