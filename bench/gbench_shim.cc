// gbench_shim.cc - the C interface of gbench_shim.h over Google Benchmark.
// The only C++ file of the benchmarks: everything else is C11.
#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

struct gbs_state {
  benchmark::State *s;
};

namespace {

benchmark::internal::Benchmark *B(gbs_benchmark *b) { return reinterpret_cast<benchmark::internal::Benchmark *>(b); }

benchmark::Counter::Flags flags_of(gbs_counter_kind k) {
  switch (k) {
    case GBS_RATE: return benchmark::Counter::kIsRate;
    case GBS_PER_ITERATION: return benchmark::Counter::kAvgIterations;
    case GBS_RATE_PER_ITERATION: return benchmark::Counter::kIsIterationInvariantRate;
    case GBS_ITERATION_INVARIANT: return benchmark::Counter::kIsIterationInvariant;
    case GBS_PLAIN:
    default: return benchmark::Counter::kDefaults;
  }
}

}  // namespace

extern "C" {

gbs_benchmark *gbs_register(const char *name, gbs_fn fn, void *user) {
  benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(name, [fn, user](benchmark::State &st) {
    gbs_state w{&st};
    fn(&w, user);
  });
  return reinterpret_cast<gbs_benchmark *>(b);
}

void gbs_arg(gbs_benchmark *b, int64_t a) { B(b)->Arg(a); }

void gbs_args(gbs_benchmark *b, const int64_t *args, size_t n) {
  B(b)->Args(std::vector<int64_t>(args, args + n));
}

void gbs_range(gbs_benchmark *b, int64_t lo, int64_t hi) { B(b)->Range(lo, hi); }

void gbs_range_multiplier(gbs_benchmark *b, int m) { B(b)->RangeMultiplier(m); }

void gbs_ranges(gbs_benchmark *b, const int64_t *lo_hi, size_t n) {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (size_t i = 0; i < n; i++) r.emplace_back(lo_hi[2 * i], lo_hi[2 * i + 1]);
  B(b)->Ranges(r);
}

void gbs_dense_range(gbs_benchmark *b, int64_t lo, int64_t hi, int step) { B(b)->DenseRange(lo, hi, step); }

void gbs_args_product(gbs_benchmark *b, const int64_t *const *lists, const size_t *counts, size_t n) {
  std::vector<std::vector<int64_t>> v;
  for (size_t i = 0; i < n; i++) v.emplace_back(lists[i], lists[i] + counts[i]);
  B(b)->ArgsProduct(v);
}

void gbs_arg_names(gbs_benchmark *b, const char *const *names, size_t n) {
  B(b)->ArgNames(std::vector<std::string>(names, names + n));
}

void gbs_unit(gbs_benchmark *b, gbs_time_unit u) {
  static const benchmark::TimeUnit units[] = {benchmark::kNanosecond, benchmark::kMicrosecond, benchmark::kMillisecond,
                                              benchmark::kSecond};
  B(b)->Unit(units[u >= GBS_NS && u <= GBS_S ? u : GBS_NS]);
}

void gbs_min_time(gbs_benchmark *b, double seconds) { B(b)->MinTime(seconds); }
void gbs_iterations(gbs_benchmark *b, int64_t n) { B(b)->Iterations(n); }
void gbs_repetitions(gbs_benchmark *b, int n) { B(b)->Repetitions(n); }
void gbs_use_real_time(gbs_benchmark *b) { B(b)->UseRealTime(); }

int gbs_keep_running(gbs_state *s) { return s->s->KeepRunning() ? 1 : 0; }
int gbs_keep_running_batch(gbs_state *s, int64_t n) {
  return s->s->KeepRunningBatch(static_cast<benchmark::IterationCount>(n)) ? 1 : 0;
}
int64_t gbs_range_arg(const gbs_state *s, size_t i) { return s->s->range(i); }
int64_t gbs_iterations_done(const gbs_state *s) { return static_cast<int64_t>(s->s->iterations()); }
void gbs_pause_timing(gbs_state *s) { s->s->PauseTiming(); }
void gbs_resume_timing(gbs_state *s) { s->s->ResumeTiming(); }
void gbs_set_items_processed(gbs_state *s, int64_t n) { s->s->SetItemsProcessed(n); }
void gbs_set_bytes_processed(gbs_state *s, int64_t n) { s->s->SetBytesProcessed(n); }

void gbs_counter(gbs_state *s, const char *name, double value, gbs_counter_kind kind) {
  s->s->counters[name] = benchmark::Counter(value, flags_of(kind));
}

void gbs_set_label(gbs_state *s, const char *label) { s->s->SetLabel(label); }
void gbs_skip_with_error(gbs_state *s, const char *message) { s->s->SkipWithError(message); }

void gbs_do_not_optimize(const void *p) { benchmark::DoNotOptimize(p); }
void gbs_clobber_memory(void) { benchmark::ClobberMemory(); }

void gbs_initialize(int *argc, char **argv) { benchmark::Initialize(argc, argv); }
int gbs_report_unrecognized(int argc, char **argv) { return benchmark::ReportUnrecognizedArguments(argc, argv) ? 1 : 0; }
void gbs_add_context(const char *key, const char *value) { benchmark::AddCustomContext(key, value); }
size_t gbs_run(void) { return benchmark::RunSpecifiedBenchmarks(); }
void gbs_shutdown(void) { benchmark::Shutdown(); }

}  // extern "C"
