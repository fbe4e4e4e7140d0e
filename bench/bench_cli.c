/* `towerrt bench` (bench_cli.h): sweeps candidate counts, FE modes and
 * kernel sets over many random requests and reports latency percentiles
 * and throughput; writes CSV, JSON and gnuplot curves; profiles the steps
 * of one request; measures the roofline.
 *
 * The sweep is the Cartesian product of the dimensions in TB_DIMS. A point
 * (tb_point) holds one value of each; adding a dimension (threads,
 * precision) is one line in TB_DIMS, its field in tb_point and the
 * function that applies a value; the CSV and JSON columns, the progress
 * line and the plot series follow the table. */
#include "bench_cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_util.h"
#include "compare.h"
#include "counters.h"
#include "profile.h"
#include "roofline.h"
#include "synthetic_model.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define TB_MAX_DIMS 8
#define TB_MAX_MODELS TB_MAX_ISAS

/* ---- sweep dimensions -------------------------------------------------------- */

enum { PREC_F32 = 0, PREC_BF16 = 1, PREC_INT8 = 2, N_PREC = 3 };
static const char *const k_prec_names[N_PREC] = {"f32", "bf16", "int8"};
static const size_t k_prec_bytes[N_PREC] = {4, 2, 1};

typedef struct tb_point {
  const char *value[TB_MAX_DIMS]; /* the value of each dimension, as given */
  char isa[32];                   /* kernel set */
  int precision;                  /* of the item store's heads: PREC_* */
  uint32_t threads;               /* per request: the caller + pool workers */
  uint32_t concurrency;           /* independent sessions, each on its own thread, scoring at once */
  uint32_t fe_mask;               /* 0: the FE layers the model was trained with */
  size_t k;                       /* candidates per request */
} tb_point;

typedef struct bench_ctx bench_ctx;

typedef struct tb_dim {
  const char *column;   /* CSV/JSON column */
  const char *option;   /* command-line option taking a comma list */
  const char *defaults; /* default list */
  const char *help;
  /* Expands one listed value into the values it stands for ("all" -> the
   * kernel sets); NULL: the value as is. */
  int (*expand)(bench_ctx *c, const char *value, tb_strlist *out, char *err, size_t cap);
  /* Sets the point's field from one value; 0 and a message if invalid. */
  int (*apply)(bench_ctx *c, tb_point *p, const char *value, char *err, size_t cap);
} tb_dim;

static int expand_isa(bench_ctx *c, const char *v, tb_strlist *out, char *err, size_t cap);
static int apply_isa(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_precision(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_threads(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_fe(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_k(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_concurrency(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);

/* Outermost first; k stays last: the plot draws one curve per combination
 * of the other dimensions. */
static const tb_dim TB_DIMS[] = {
    {"isa", "--isa", "all", "kernel sets: all (SIMD sets; scalar too with --include-scalar), best, or names (scalar,avx2,...)", expand_isa, apply_isa},
    {"precision", "--precision", "f32", "item store precision: f32, bf16, int8 (quantized copies of the store)", NULL,
     apply_precision},
    {"threads", "--threads", "1", "threads per request (the caller + pool workers)", NULL, apply_threads},
    {"concurrency", "--concurrency", "1", "independent sessions scoring at once, one thread each (the server's regime)", NULL,
     apply_concurrency},
    {"fe_mode", "--fe", "trained,0", "user FE layers: trained, all, or layers joined by '+' (0, 0+1+2)", NULL, apply_fe},
    {"k", "--k", "10,100,1000,10000,100000", "candidates per request", NULL, apply_k},
};
#define N_DIMS (sizeof TB_DIMS / sizeof TB_DIMS[0])

/* ---- state --------------------------------------------------------------------- */

typedef struct tb_result {
  tb_point pt;
  tb_stats st;        /* latency, ns */
  double cpu_p50_us;  /* process CPU time per request, median */
  double cpu_share;   /* CPU time / wall time over the measured requests: < 1 when others took the cores */
  size_t warmup_done;
  uint32_t fe_resolved;
  size_t user_heads;  /* user heads scored per candidate */
  double cands_per_s;     /* k / mean latency: the throughput, outliers included */
  double cands_per_s_p50; /* k / median latency */
  double gmacs;           /* MaxSim multiply-adds / median latency */
  double requests_per_s;  /* requests completed by all sessions / the wall time they took */
  /* --repetitions: the point measured that many times; the result above is
   * the repetition with the median p50; spread over the repetitions */
  size_t reps;
  double *rep_p50_us, *rep_cps; /* reps values each */
  double p50_sd_us, p50_cv, cps_sd, cps_cv;
  double *samples_us;           /* every measured request's latency (for compare's U test) */
  double counts[TB_N_COUNTERS]; /* --counters: per request of session 0, its thread only; -1 if not measured */
  double item_gbps;       /* item-row bytes / median latency */
} tb_result;

struct bench_ctx {
  /* options */
  const char *model_path, *items_path, *csv, *json, *plot, *workdir, *trace;
  int synthetic, reuse, quiet, profile, roofline, no_sweep, list_isas, include_scalar, counters;
  tb_synth_config synth;
  size_t requests, warmup, min_requests, repetitions;
  double seconds, roofline_seconds;
  uint64_t seed;
  size_t profile_k, profile_requests;
  const char *profile_isa, *profile_fe;
  tb_strlist dim_values[N_DIMS];
  int dim_given[N_DIMS];
  char command[2048];
  /* loaded */
  char model_buf[4096], items_buf[4096];
  towerrt_items *items;
  towerrt_model *models[TB_MAX_MODELS];
  const char *model_isa[TB_MAX_MODELS];
  size_t n_models;
  towerrt_model *first; /* any loaded model: the layout is the same for all ISAs */
  towerrt_items *stores[N_PREC]; /* [loaded_precision] = items; the others quantized from f32 on first use */
  int loaded_precision;          /* PREC_* of --items (f32 unless it is a towerrt quantize copy) */
  const char *profile_precision;
  towerrt_pool *pool;
  uint32_t max_threads;
  const char *isas[TB_MAX_ISAS];
  size_t n_isas;
  size_t max_k;
  /* results */
  tb_point *points;
  size_t n_points;
  tb_result *results;
  size_t n_results;
  tb_profile prof;
  int have_profile;
  tb_roofline *roof;
  int progress;
  double loadavg_start;
  double cpu_clock_ns; /* median cost of two CPU-clock reads and two wall-clock reads */
  /* --trace: the steps of every request, from the runtime's trace hook */
  struct tb_trace_event *events;
  atomic_size_t n_events, dropped;
};

typedef struct tb_trace_event {
  const char *step; /* a string literal of the runtime */
  uint64_t t0, t1;  /* CLOCK_MONOTONIC ns */
  uint32_t tid;     /* session * 1000 + participant slot */
  uint32_t point;
} tb_trace_event;
#define TB_TRACE_CAP (1u << 20) /* events kept (32 MiB); later ones are counted, not kept */

/* ---- dimension handlers ------------------------------------------------------------- */

static int expand_isa(bench_ctx *c, const char *v, tb_strlist *out, char *err, size_t cap) {
  if (!strcmp(v, "all")) { /* scalar (the oracle, 10-100x slower) only when asked for */
    for (size_t i = 0; i < c->n_isas; i++) {
      if (!c->include_scalar && !strcmp(c->isas[i], "scalar") && c->n_isas > 1) continue;
      if (!tb_strlist_has(out, c->isas[i]) && !tb_strlist_add(out, c->isas[i])) return snprintf(err, cap, "out of memory"), 0;
    }
    return 1;
  }
  const char *name = (!strcmp(v, "best") || !strcmp(v, "auto")) ? tb_default_isa() : v;
  if (!tb_strlist_has(out, name) && !tb_strlist_add(out, name)) return snprintf(err, cap, "out of memory"), 0;
  return 1;
}

static int apply_isa(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  towerrt_kernels k;
  if (!tb_kernels(v, &k)) {
    size_t n = (size_t)snprintf(err, cap, "--isa %s: not available on this machine/build (available:", v);
    for (size_t i = 0; i < c->n_isas && n < cap; i++) n += (size_t)snprintf(err + n, cap - n, " %s", c->isas[i]);
    if (n < cap) snprintf(err + n, cap - n, ")");
    return 0;
  }
  snprintf(p->isa, sizeof p->isa, "%s", k.name);
  return 1;
}

static int parse_precision(const char *v, int *out) {
  for (int i = 0; i < N_PREC; i++)
    if (!strcmp(v, k_prec_names[i])) {
      *out = i;
      return 1;
    }
  return 0;
}

static int apply_precision(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  (void)c;
  if (!parse_precision(v, &p->precision)) {
    snprintf(err, cap, "--precision %s: expected f32, bf16 or int8", v);
    return 0;
  }
#ifndef TB_HAVE_PRECISION
  if (p->precision != PREC_F32) {
    snprintf(err, cap, "--precision %s: this build's runtime has f32 item stores only", v);
    return 0;
  }
#endif
  return 1;
}

static int apply_threads(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  uint64_t t;
  if (!tb_parse_u64(v, 1, 1024, &t)) {
    snprintf(err, cap, "--threads %s: expected 1..1024", v);
    return 0;
  }
#ifndef TB_HAVE_POOL
  if (t > 1) {
    snprintf(err, cap, "--threads %s: this build's runtime scores a request on one thread", v);
    return 0;
  }
#endif
  p->threads = (uint32_t)t;
  if (p->threads > c->max_threads) c->max_threads = p->threads;
  return 1;
}

static int apply_concurrency(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  (void)c;
  uint64_t n;
  if (!tb_parse_u64(v, 1, 256, &n)) {
    snprintf(err, cap, "--concurrency %s: expected 1..256 sessions", v);
    return 0;
  }
  p->concurrency = (uint32_t)n;
  return 1;
}

static int parse_fe(bench_ctx *c, const char *v, uint32_t *mask, char *err, size_t cap) {
  /* before the model is loaded: the synthetic configuration's layers, or any */
  uint32_t present = c->first ? towerrt_model_fe_layers_available(c->first) : c->synthetic ? c->synth.fe_mask : 0xFFFFu;
  if (!strcmp(v, "trained")) {
    *mask = 0;
    return 1;
  }
  if (!strcmp(v, "all")) {
    *mask = present;
    return 1;
  }
  uint32_t m = 0;
  const char *s = v;
  while (*s) {
    char *end;
    long L = strtol(s, &end, 10);
    if (end == s || !(*s >= '0' && *s <= '9') || L < 0 || L > 15 || (*end && *end != '+') || (*end == '+' && !end[1])) {
      snprintf(err, cap, "--fe %s: expected trained, all, or user layers joined by '+' (e.g. 0 or 0+1+2)", v);
      return 0;
    }
    m |= 1u << L;
    s = *end ? end + 1 : end;
  }
  if (m & ~present) {
    char have[32];
    tb_mask_string(present, have, sizeof have);
    snprintf(err, cap, "--fe %s: the model has user FE projections on layers %s only", v, have);
    return 0;
  }
  *mask = m;
  return 1;
}

static int apply_fe(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  return parse_fe(c, v, &p->fe_mask, err, cap);
}

static int apply_k(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  uint64_t k;
  if (!tb_parse_u64(v, 1, 100000000, &k)) {
    snprintf(err, cap, "--k %s: expected a candidate count in 1..100000000", v);
    return 0;
  }
  p->k = (size_t)k;
  if (p->k > c->max_k) c->max_k = p->k;
  return 1;
}

/* ---- output columns --------------------------------------------------------------- */

typedef struct tb_column {
  const char *name;
  int is_text;
  double (*num)(const tb_result *r);
  void (*text)(const tb_result *r, char *buf, size_t cap);
  int decimals;
  int counters_only; /* a --counters column */
} tb_column;

static void col_fe_layers(const tb_result *r, char *b, size_t cap) { tb_mask_string(r->fe_resolved, b, cap); }
static double col_user_heads(const tb_result *r) { return (double)r->user_heads; }
static double col_requests(const tb_result *r) { return (double)r->st.n; }
static double col_warmup(const tb_result *r) { return (double)r->warmup_done; }
static double col_p50(const tb_result *r) { return r->st.p50 * 1e-3; }
static double col_p90(const tb_result *r) { return r->st.p90 * 1e-3; }
static double col_p99(const tb_result *r) { return r->st.p99 * 1e-3; }
static double col_p999(const tb_result *r) { return r->st.p999 * 1e-3; }
static double col_mean(const tb_result *r) { return r->st.mean * 1e-3; }
static double col_min(const tb_result *r) { return r->st.min * 1e-3; }
static double col_max(const tb_result *r) { return r->st.max * 1e-3; }
static double col_cps(const tb_result *r) { return r->cands_per_s; }
static double col_cps50(const tb_result *r) { return r->cands_per_s_p50; }
static double col_gmacs(const tb_result *r) { return r->gmacs; }
static double col_gbps(const tb_result *r) { return r->item_gbps; }
static double col_cpu50(const tb_result *r) { return r->cpu_p50_us; }
static double col_share(const tb_result *r) { return r->cpu_share; }
static double col_rps(const tb_result *r) { return r->requests_per_s; }
static double col_reps(const tb_result *r) { return (double)r->reps; }
static double col_p50_sd(const tb_result *r) { return r->p50_sd_us; }
static double col_p50_cv(const tb_result *r) { return r->p50_cv; }
static double col_cps_sd(const tb_result *r) { return r->cps_sd; }
static double col_cps_cv(const tb_result *r) { return r->cps_cv; }
static double col_cycles(const tb_result *r) { return r->counts[0]; }
static double col_instr(const tb_result *r) { return r->counts[1]; }
static double col_ipc(const tb_result *r) { return r->counts[0] > 0 ? r->counts[1] / r->counts[0] : -1; }
static double col_llc(const tb_result *r) { return r->counts[2]; }
static double col_dtlb(const tb_result *r) { return r->counts[3]; }

/* After the dimension columns. */
static const tb_column TB_COLUMNS[] = {
    {"fe_layers", 1, NULL, col_fe_layers, 0, 0},
    {"user_heads", 0, col_user_heads, NULL, 0, 0},
    {"requests", 0, col_requests, NULL, 0, 0},
    {"warmup", 0, col_warmup, NULL, 0, 0},
    {"p50_us", 0, col_p50, NULL, 3, 0},
    {"p90_us", 0, col_p90, NULL, 3, 0},
    {"p99_us", 0, col_p99, NULL, 3, 0},
    {"p999_us", 0, col_p999, NULL, 3, 0},
    {"mean_us", 0, col_mean, NULL, 3, 0},
    {"min_us", 0, col_min, NULL, 3, 0},
    {"max_us", 0, col_max, NULL, 3, 0},
    {"cands_per_s", 0, col_cps, NULL, 1, 0},
    {"cands_per_s_p50", 0, col_cps50, NULL, 1, 0},
    {"maxsim_gmac_per_s", 0, col_gmacs, NULL, 3, 0},
    {"item_gb_per_s", 0, col_gbps, NULL, 3, 0},
    {"cpu_p50_us", 0, col_cpu50, NULL, 3, 0},
    {"cpu_share", 0, col_share, NULL, 3, 0},
    {"requests_per_s", 0, col_rps, NULL, 1, 0},
    {"repetitions", 0, col_reps, NULL, 0, 0},
    {"p50_us_stddev", 0, col_p50_sd, NULL, 3, 0},
    {"p50_us_cv", 0, col_p50_cv, NULL, 4, 0},
    {"cands_per_s_stddev", 0, col_cps_sd, NULL, 1, 0},
    {"cands_per_s_cv", 0, col_cps_cv, NULL, 4, 0},
    {"cycles_per_request", 0, col_cycles, NULL, 0, 1},
    {"instructions_per_request", 0, col_instr, NULL, 0, 1},
    {"ipc", 0, col_ipc, NULL, 3, 1},
    {"llc_misses_per_request", 0, col_llc, NULL, 1, 1},
    {"dtlb_misses_per_request", 0, col_dtlb, NULL, 1, 1},
};
#define N_COLUMNS (sizeof TB_COLUMNS / sizeof TB_COLUMNS[0])
#define COLUMN_ON(c, j) (!TB_COLUMNS[j].counters_only || (c)->counters)

/* ---- usage ------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: towerrt bench (--model M.twr --items S.twi | --synthetic [generator options]) [options]\n"
          "       towerrt bench compare A.json B.json   (per point ratio and U test of two --json runs)\n"
          "  Latency curves of the runtime on this machine: for every point of the sweep,\n"
          "  many random requests (random users, random candidates from the store) after a\n"
          "  warm-up; p50/p90/p99/p99.9 latency and candidates per second.\n\n"
          "  sweep (comma lists; the sweep is every combination):\n");
  for (size_t d = 0; d < N_DIMS; d++) fprintf(f, "    %-12s %s (default %s)\n", TB_DIMS[d].option, TB_DIMS[d].help, TB_DIMS[d].defaults);
  fprintf(f,
          "  measurement:\n"
          "    --requests N       requests measured per point, at most (1000)\n"
          "    --warmup N         warm-up requests per point, at most (20; also capped at --seconds/4)\n"
          "    --seconds S        time budget of one point's measured requests (3)\n"
          "    --min-requests N   requests measured per point even past the budget (5)\n"
          "    --seed S           seed of the random requests (42); every point sees the same requests\n"
          "    --repetitions N    measure every point N times (1): the median repetition (by p50) is reported, with the\n"
          "                       standard deviation and coefficient of variation of p50 and cands/s over the N\n"
          "  outputs (a table on stdout always):\n"
          "    --csv PATH --json PATH\n"
          "    --plot PREFIX      PREFIX-latency.{png,svg}, PREFIX-throughput.{png,svg} with gnuplot\n"
          "                       (with --roofline also PREFIX-roofline.{png,svg}: each kernel as a point under the roofs)\n"
          "                       (PREFIX.dat and PREFIX.gp are written even without gnuplot)\n"
          "    --quiet            no progress line on stderr\n"
          "    --trace PATH       a Chrome trace (chrome://tracing, ui.perfetto.dev) of every request: a span per\n"
          "                       step (user tower, user heads, each candidate block) per session and worker thread,\n"
          "                       from the runtime's own hook (towerrt_session_set_trace)\n"
          "    --counters         hardware counters per request (cycles, instructions, IPC, LLC and dTLB misses) of\n"
          "                       session 0's thread, through perf_event_open; skipped with a note where not allowed\n"
          "    --include-scalar   also the scalar oracle in --isa all and in the plots (off: 10-100x slower, it flattens the curves)\n"
          "  extras:\n"
          "    --profile          time per step of one request (median over --profile-requests)\n"
          "    --profile-k K (1000) --profile-requests N (200) --profile-isa NAME (best) --profile-fe F (trained)\n"
          "    --profile-precision P (f32)\n"
          "    --roofline         fp32/int8/bf16 peaks, memory bandwidth, each kernel's fraction\n"
          "    --roofline-seconds S  time per roofline measurement (0.3)\n"
          "    --no-sweep         only --profile and/or --roofline (alone: just write the --synthetic files)\n"
          "    --list-isas        print the kernel sets this machine runs and exit\n"
          "  synthetic model files are cached in --workdir DIR (default $TMPDIR/towerrt-bench-<hash>);\n"
          "  --no-cache rebuilds them.\n\n%s",
          tb_synth_usage());
}

/* ---- argument parsing ----------------------------------------------------------------- */

static int parse_size(const char *opt, const char *v, size_t lo, size_t hi, size_t *out) {
  uint64_t x;
  if (!tb_parse_u64(v, lo, hi, &x)) {
    fprintf(stderr, "towerrt bench: %s '%s': expected an integer in %zu..%zu\n", opt, v, lo, hi);
    return 0;
  }
  *out = (size_t)x;
  return 1;
}

static int parse_seconds(const char *opt, const char *v, double *out) {
  if (!tb_parse_seconds(v, 86400.0, out)) {
    fprintf(stderr, "towerrt bench: %s '%s': expected seconds in 0..86400 (e.g. 3 or 0.25)\n", opt, v);
    return 0;
  }
  return 1;
}

/* The options without a value, and those with one (beside the sweep
 * dimensions and the generator's options). getopt_long takes both
 * "--opt value" and "--opt=value". */
static const char *const k_flag_opts[] = {"help", "synthetic", "no-cache", "quiet", "profile", "roofline", "no-sweep",
                                          "list-isas", "include-scalar", "counters", NULL};
static const char *const k_value_opts[] = {"model", "items", "csv", "json", "plot", "workdir", "requests", "warmup",
                                           "min-requests", "seconds", "roofline-seconds", "profile-k", "profile-requests",
                                           "profile-isa", "profile-fe", "profile-precision", "seed", "preset", "repetitions", "trace",
                                           NULL};
#define MAX_LONG_OPTS 64

static size_t build_long_options(struct option *o) {
  size_t n = 0;
  for (size_t i = 0; k_flag_opts[i]; i++) o[n] = (struct option){k_flag_opts[i], no_argument, NULL, 0}, n++;
  for (size_t i = 0; k_value_opts[i]; i++) o[n] = (struct option){k_value_opts[i], required_argument, NULL, 0}, n++;
  for (size_t d = 0; d < N_DIMS; d++) o[n] = (struct option){TB_DIMS[d].option + 2, required_argument, NULL, 0}, n++;
  for (size_t i = 0; tb_synth_option_names[i] && n + 1 < MAX_LONG_OPTS; i++)
    o[n] = (struct option){tb_synth_option_names[i] + 2, required_argument, NULL, 0}, n++;
  o[n] = (struct option){NULL, 0, NULL, 0};
  for (size_t i = 0; i < n; i++) o[i].val = (int)(i + 256);
  return n;
}

/* One flag ("--quiet"); 0 if `a` is not one. */
static int apply_flag(bench_ctx *c, const char *a) {
  if (!strcmp(a, "--synthetic")) c->synthetic = 1;
  else if (!strcmp(a, "--no-cache")) c->reuse = 0;
  else if (!strcmp(a, "--quiet")) c->quiet = 1;
  else if (!strcmp(a, "--profile")) c->profile = 1;
  else if (!strcmp(a, "--roofline")) c->roofline = 1;
  else if (!strcmp(a, "--no-sweep")) c->no_sweep = 1;
  else if (!strcmp(a, "--list-isas")) c->list_isas = 1;
  else if (!strcmp(a, "--include-scalar")) c->include_scalar = 1;
  else if (!strcmp(a, "--counters")) c->counters = 1;
  else return 0;
  return 1;
}

/* One bench option with its value: 1 ok, 0 invalid (message printed). */
static int apply_value(bench_ctx *c, const char *a, const char *v) {
  for (size_t d = 0; d < N_DIMS; d++)
    if (!strcmp(a, TB_DIMS[d].option)) {
      tb_strlist_free(&c->dim_values[d]);
      if (!tb_strlist_split(&c->dim_values[d], v, ',') || c->dim_values[d].n == 0) {
        fprintf(stderr, "towerrt bench: %s '%s': expected a comma-separated list\n", a, v);
        return 0;
      }
      c->dim_given[d] = 1;
      return 1;
    }
  if (!strcmp(a, "--model")) c->model_path = v;
  else if (!strcmp(a, "--items")) c->items_path = v;
  else if (!strcmp(a, "--csv")) c->csv = v;
  else if (!strcmp(a, "--json")) c->json = v;
  else if (!strcmp(a, "--plot")) c->plot = v;
  else if (!strcmp(a, "--workdir")) c->workdir = v;
  else if (!strcmp(a, "--trace")) c->trace = v;
  else if (!strcmp(a, "--requests")) return parse_size(a, v, 1, 100000000, &c->requests);
  else if (!strcmp(a, "--warmup")) return parse_size(a, v, 0, 100000000, &c->warmup);
  else if (!strcmp(a, "--min-requests")) return parse_size(a, v, 1, 100000000, &c->min_requests);
  else if (!strcmp(a, "--seconds")) return parse_seconds(a, v, &c->seconds);
  else if (!strcmp(a, "--roofline-seconds")) return parse_seconds(a, v, &c->roofline_seconds);
  else if (!strcmp(a, "--profile-k")) return parse_size(a, v, 1, 100000000, &c->profile_k);
  else if (!strcmp(a, "--repetitions")) return parse_size(a, v, 1, 1000, &c->repetitions);
  else if (!strcmp(a, "--profile-requests")) return parse_size(a, v, 1, 100000000, &c->profile_requests);
  else if (!strcmp(a, "--profile-isa")) c->profile_isa = v;
  else if (!strcmp(a, "--profile-fe")) c->profile_fe = v;
  else if (!strcmp(a, "--profile-precision")) c->profile_precision = v;
  else if (!strcmp(a, "--seed")) {
    uint64_t x;
    if (!tb_parse_u64(v, 0, UINT64_MAX, &x)) {
      fprintf(stderr, "towerrt bench: --seed '%s': expected an unsigned integer\n", v);
      return 0;
    }
    c->seed = x;
  }
  return 1;
}

/* 1 ok, 0 usage error, 2 help printed. The generator options are applied
 * after the loop, a --preset first, so that the others refine it wherever
 * they stand on the line. */
static int parse_args(bench_ctx *c, int argc, char **argv) {
  tb_synth_reference(&c->synth);
  struct option lo[MAX_LONG_OPTS];
  build_long_options(lo);
  const char *synth_opt[MAX_LONG_OPTS * 4], *synth_val[MAX_LONG_OPTS * 4], *preset = NULL;
  size_t n_synth = 0;
  char names[MAX_LONG_OPTS][40];
  optind = 0; /* a full re-initialisation: the CLI may have run getopt already */
  opterr = 0;
  int ch, at = 0;
  while ((ch = getopt_long(argc, argv, ":h", lo, &at)) != -1) {
    if (ch == 'h') {
      usage(stdout);
      return 2;
    }
    if (ch == '?' || ch == ':') {
      const char *bad = argv[optind - 1];
      if (ch == ':') fprintf(stderr, "towerrt bench: option %s needs a value (try --help)\n", bad);
      else if (optopt) fprintf(stderr, "towerrt bench: unknown option '-%c' (try --help)\n", optopt);
      else fprintf(stderr, "towerrt bench: unknown option '%s' (try --help)\n", bad);
      return 0;
    }
    const struct option *o = &lo[ch - 256];
    char *a = names[ch - 256];
    snprintf(a, sizeof names[0], "--%s", o->name);
    if (!strcmp(a, "--help")) {
      usage(stdout);
      return 2;
    }
    if (o->has_arg == no_argument) {
      apply_flag(c, a);
      continue;
    }
    if (!strcmp(a, "--preset")) {
      preset = optarg;
      continue;
    }
    int generator = 0;
    for (size_t i = 0; tb_synth_option_names[i]; i++) generator |= !strcmp(a, tb_synth_option_names[i]);
    if (generator) {
      if (n_synth < sizeof synth_opt / sizeof synth_opt[0]) synth_opt[n_synth] = a, synth_val[n_synth++] = optarg;
      continue;
    }
    if (!apply_value(c, a, optarg)) return 0;
  }
  if (optind < argc) {
    fprintf(stderr, "towerrt bench: unexpected argument '%s' (options start with --; try --help)\n", argv[optind]);
    return 0;
  }
  if (preset && !tb_synth_preset(&c->synth, preset)) {
    fprintf(stderr, "towerrt bench: --preset '%s': expected reference or tiny\n", preset);
    return 0;
  }
  for (size_t i = 0; i < n_synth; i++) {
    char err[256];
    if (tb_synth_option(&c->synth, synth_opt[i], synth_val[i], err, sizeof err) <= 0) {
      fprintf(stderr, "towerrt bench: %s\n", err);
      return 0;
    }
  }
  for (size_t d = 0; d < N_DIMS; d++)
    if (!c->dim_given[d] && !tb_strlist_split(&c->dim_values[d], TB_DIMS[d].defaults, ',')) return 0;
  if (c->requests < c->min_requests) c->min_requests = c->requests;
  return 1;
}

/* A file the run will write: its folder must exist and be writable now,
 * not after minutes of measuring. */
static int check_output(const char *opt, const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  struct stat st;
  if (!*path || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "towerrt bench: %s '%s': the folder '%s' %s\n", opt, path, dir,
            !*path ? "is empty" : stat(dir, &st) != 0 ? "does not exist" : "is not a folder");
    return 0;
  }
  /* the file itself (for --plot: PREFIX.dat): opened for appending, so an
   * existing file is left as it is, and removed again if this made it */
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fprintf(stderr, "towerrt bench: %s '%s' is a folder: give a file name%s\n", opt, path, strcmp(opt, "--plot") ? "" : " prefix (e.g. DIR/bench)");
    return 0;
  }
  char file[4200];
  snprintf(file, sizeof file, "%s%s", path, strcmp(opt, "--plot") ? "" : ".dat");
  int existed = stat(file, &st) == 0;
  FILE *f = fopen(file, "a");
  if (!f) {
    fprintf(stderr, "towerrt bench: %s: cannot write '%s': %s\n", opt, file, strerror(errno));
    return 0;
  }
  fclose(f);
  if (!existed) remove(file);
  return 1;
}

/* Everything that can be checked before the expensive set-up (building a
 * synthetic model takes seconds, a sweep minutes): the inputs named, the
 * output folders, and every sweep value that does not need the model
 * (--fe is checked for its syntax here, against the model's layers later). */
static int validate_early(bench_ctx *c) {
  if (c->list_isas) return EXIT_OK;
  if (c->synthetic && (c->model_path || c->items_path)) {
    fprintf(stderr, "towerrt bench: give either --synthetic or --model/--items, not both\n");
    return EXIT_USAGE;
  }
  if (!c->synthetic && (!c->model_path || !c->items_path)) {
    if (c->model_path || c->items_path)
      fprintf(stderr, "towerrt bench: missing %s (needed with %s)\n", c->model_path ? "--items" : "--model",
              c->model_path ? "--model" : "--items");
    else
      fprintf(stderr, "towerrt bench: missing --model M.twr --items S.twi, or --synthetic (try --help)\n");
    return EXIT_USAGE;
  }
  const char *inputs[2][2] = {{"--model", c->model_path}, {"--items", c->items_path}};
  for (int i = 0; i < 2 && !c->synthetic; i++)
    if (access(inputs[i][1], R_OK) != 0) {
      fprintf(stderr, "towerrt bench: %s '%s': %s\n", inputs[i][0], inputs[i][1], strerror(errno));
      return EXIT_USAGE;
    }
  char err[512];
  if (c->synthetic && !tb_synth_validate(&c->synth, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: %s\n", err);
    return EXIT_USAGE;
  }
  if ((c->csv && !check_output("--csv", c->csv)) || (c->json && !check_output("--json", c->json)) ||
      (c->plot && !check_output("--plot", c->plot)) || (c->trace && !check_output("--trace", c->trace)))
    return EXIT_USAGE;
  for (size_t d = 0; d < N_DIMS; d++)
    for (size_t i = 0; i < c->dim_values[d].n; i++) {
      const char *v = c->dim_values[d].v[i];
      tb_point probe;
      memset(&probe, 0, sizeof probe);
      tb_strlist ex = {0};
      int ok = TB_DIMS[d].expand ? TB_DIMS[d].expand(c, v, &ex, err, sizeof err) : 1;
      for (size_t j = 0; ok && j < (TB_DIMS[d].expand ? ex.n : 1); j++)
        ok = TB_DIMS[d].apply(c, &probe, TB_DIMS[d].expand ? ex.v[j] : v, err, sizeof err);
      tb_strlist_free(&ex);
      if (!ok) {
        fprintf(stderr, "towerrt bench: %s\n", err);
        return EXIT_USAGE;
      }
    }
  int conc = 0, thr = 0;
  for (size_t d = 0; d < N_DIMS; d++)
    for (size_t i = 0; i < c->dim_values[d].n; i++) {
      tb_point probe;
      memset(&probe, 0, sizeof probe);
      if (TB_DIMS[d].apply == apply_concurrency && apply_concurrency(c, &probe, c->dim_values[d].v[i], err, sizeof err))
        conc |= probe.concurrency > 1;
      if (TB_DIMS[d].apply == apply_threads && apply_threads(c, &probe, c->dim_values[d].v[i], err, sizeof err)) thr |= probe.threads > 1;
    }
  if (conc && thr) {
    fprintf(stderr, "towerrt bench: --concurrency > 1 runs one thread per session: give --threads 1 with it\n");
    return EXIT_USAGE;
  }
  if (c->counters) {
    tb_counters probe_pc;
    char why[256];
    if (tb_counters_open(&probe_pc, why, sizeof why)) tb_counters_close(&probe_pc);
    else fprintf(stderr, "towerrt bench: note: --counters skipped: %s; the counter columns hold -1\n", why);
  }
  c->max_k = 0, c->max_threads = 0; /* set again by build_points */
  tb_point pp;
  towerrt_kernels k;
  uint32_t mask;
  if (c->profile_isa && strcmp(c->profile_isa, "best") && strcmp(c->profile_isa, "auto") && !tb_kernels(c->profile_isa, &k)) {
    fprintf(stderr, "towerrt bench: --profile-isa %s is not available here (see --list-isas)\n", c->profile_isa);
    return EXIT_USAGE;
  }
  if (c->profile_precision && !apply_precision(c, &pp, c->profile_precision, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-precision: %s\n", err);
    return EXIT_USAGE;
  }
  if (c->profile_fe && !parse_fe(c, c->profile_fe, &mask, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-fe: %s\n", err);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

/* ---- model and store ------------------------------------------------------------------ */

static towerrt_model *model_for(bench_ctx *c, const char *isa) {
  for (size_t i = 0; i < c->n_models; i++)
    if (!strcmp(c->model_isa[i], isa)) return c->models[i];
  if (c->n_models == TB_MAX_MODELS) return NULL;
  towerrt_options o;
  towerrt_options_init(&o);
  o.isa = isa;
  towerrt_model *m = NULL;
  towerrt_status st = towerrt_model_load(c->model_path, &o, &m);
  if (st) {
    fprintf(stderr, "towerrt bench: error: %s (%s)\n", towerrt_last_error(), towerrt_status_name(st));
    return NULL;
  }
  if (strcmp(towerrt_model_isa(m), isa))
    fprintf(stderr, "towerrt bench: note: asked for ISA %s, the model runs %s (TOWERRT_ISA=%s overrides)\n", isa, towerrt_model_isa(m),
            getenv("TOWERRT_ISA") ? getenv("TOWERRT_ISA") : "");
  c->models[c->n_models] = m;
  c->model_isa[c->n_models++] = isa;
  return m;
}

static int load_inputs(bench_ctx *c) {
  if (c->synthetic) { /* the options were checked by validate_early */
    char dir[4096];
    if (c->workdir) snprintf(dir, sizeof dir, "%s", c->workdir);
    else tb_synth_default_dir(&c->synth, dir, sizeof dir);
    towerrt_status st = tb_synth_prepare(&c->synth, dir, c->reuse, c->model_buf, c->items_buf, sizeof c->model_buf, c->quiet ? NULL : stderr);
    if (st) {
      fprintf(stderr, "towerrt bench: error: synthetic model: %s (%s)\n", tb_last_error(), towerrt_status_name(st));
      return EXIT_FAIL;
    }
    c->model_path = c->model_buf;
    c->items_path = c->items_buf;
  } else if (!c->model_path || !c->items_path) {
    fprintf(stderr, "towerrt bench: give --model M.twr --items S.twi, or --synthetic (try --help)\n");
    return EXIT_USAGE;
  }
  towerrt_status st = towerrt_items_load(c->items_path, NULL, &c->items);
  if (st) {
    fprintf(stderr, "towerrt bench: error: %s (%s)\n", towerrt_last_error(), towerrt_status_name(st));
    return EXIT_FAIL;
  }
  /* A quantized store (towerrt quantize) is measured as it is: it is the
   * default precision, and the others can only be quantized from f32. */
  c->loaded_precision = (int)towerrt_items_precision(c->items);
  c->stores[c->loaded_precision] = c->items;
  if (c->loaded_precision != PREC_F32 && !c->dim_given[1]) {
    tb_strlist_free(&c->dim_values[1]);
    if (!tb_strlist_split(&c->dim_values[1], k_prec_names[c->loaded_precision], ',')) return EXIT_FAIL;
  }
  if (!c->profile_precision) c->profile_precision = k_prec_names[c->loaded_precision];
  c->first = model_for(c, tb_default_isa());
  return c->first ? EXIT_OK : EXIT_FAIL;
}

/* The store at a precision: the loaded one for f32, else a quantized copy
 * (towerrt_items_quantize) written next to the synthetic files or in
 * --workdir (default $TMPDIR/towerrt-bench-<hash of the store path>). */
static towerrt_items *store_for(bench_ctx *c, int prec) {
  if (c->stores[prec]) return c->stores[prec];
  if (c->loaded_precision != PREC_F32) {
    fprintf(stderr, "towerrt bench: %s is a %s store: --precision %s needs an f32 store to quantize\n", c->items_path,
            k_prec_names[c->loaded_precision], k_prec_names[prec]);
    return NULL;
  }
#ifdef TB_HAVE_PRECISION
  char dir[4096], path[4200];
  if (c->workdir) snprintf(dir, sizeof dir, "%s", c->workdir);
  else if (c->synthetic) {
    snprintf(dir, sizeof dir, "%s", c->items_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/towerrt-bench-%016llx", tmp && *tmp ? tmp : "/tmp", (unsigned long long)tb_fnv1a(c->items_path));
  }
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "towerrt bench: cannot create '%s': %s\n", dir, strerror(errno));
    return NULL;
  }
  snprintf(path, sizeof path, "%s/items-%s.twi", dir, k_prec_names[prec]);
  towerrt_items *q = NULL;
  struct stat st_q, st_src;
  int fresh = c->synthetic && c->reuse && stat(path, &st_q) == 0 && stat(c->items_path, &st_src) == 0 &&
              st_q.st_mtime >= st_src.st_mtime;
  if (fresh && towerrt_items_load(path, NULL, &q) == TOWERRT_OK && towerrt_items_count(q) == towerrt_items_count(c->items)) {
    c->stores[prec] = q;
    return q;
  }
  towerrt_items_free(q);
  q = NULL;
  if (!c->quiet) fprintf(stderr, "towerrt bench: writing the %s copy of the item store to %s\n", k_prec_names[prec], path);
  towerrt_precision tp = prec == PREC_BF16 ? TOWERRT_PRECISION_BF16 : TOWERRT_PRECISION_INT8;
  towerrt_status st = towerrt_items_quantize(c->items, tp, path);
  if (!st) st = towerrt_items_load(path, NULL, &q);
  if (st) {
    fprintf(stderr, "towerrt bench: error: %s store: %s (%s)\n", k_prec_names[prec], towerrt_last_error(), towerrt_status_name(st));
    return NULL;
  }
  c->stores[prec] = q;
  return q;
#else
  fprintf(stderr, "towerrt bench: %s stores are not in this build\n", k_prec_names[prec]);
  return NULL;
#endif
}

#ifdef TB_HAVE_POOL
/* One pool for every point with threads > 1: max_threads - 1 workers (the
 * caller is the other thread), pinned, on the caller's NUMA node. */
static towerrt_pool *pool_for(bench_ctx *c) {
  if (c->pool) return c->pool;
  towerrt_options o;
  towerrt_options_init(&o);
  o.threads_per_node = c->max_threads - 1;
  towerrt_status st = towerrt_pool_create(&o, &c->pool);
  if (st) {
    fprintf(stderr, "towerrt bench: error: thread pool: %s (%s)\n", towerrt_last_error(), towerrt_status_name(st));
    return NULL;
  }
  return c->pool;
}
#endif

/* ---- the sweep --------------------------------------------------------------------------- */

static int build_points(bench_ctx *c) {
  tb_strlist vals[N_DIMS];
  memset(vals, 0, sizeof vals);
  int rc = EXIT_OK;
  char err[512];
  for (size_t d = 0; d < N_DIMS && !rc; d++) {
    for (size_t i = 0; i < c->dim_values[d].n && !rc; i++) {
      const char *v = c->dim_values[d].v[i];
      if (TB_DIMS[d].expand) {
        if (!TB_DIMS[d].expand(c, v, &vals[d], err, sizeof err)) rc = EXIT_USAGE;
      } else if (!tb_strlist_has(&vals[d], v) && !tb_strlist_add(&vals[d], v)) {
        snprintf(err, sizeof err, "out of memory");
        rc = EXIT_FAIL;
      }
    }
    /* every value must apply (and fe values naming the same layers collapse) */
    tb_strlist kept = {0};
    uint32_t masks[64];
    size_t n_masks = 0;
    for (size_t i = 0; i < vals[d].n && !rc; i++) {
      tb_point probe;
      memset(&probe, 0, sizeof probe);
      if (!TB_DIMS[d].apply(c, &probe, vals[d].v[i], err, sizeof err)) {
        rc = EXIT_USAGE;
        break;
      }
      if (TB_DIMS[d].apply == apply_fe) {
        uint32_t m = probe.fe_mask ? probe.fe_mask : towerrt_model_fe_layer_mask(c->first);
        int dup = 0;
        for (size_t j = 0; j < n_masks; j++) dup |= masks[j] == m;
        if (dup) {
          if (c->dim_given[d]) fprintf(stderr, "towerrt bench: note: --fe %s scores the same layers as an earlier value; skipped\n", vals[d].v[i]);
          continue;
        }
        if (n_masks < 64) masks[n_masks++] = m;
      }
      tb_strlist_add(&kept, vals[d].v[i]);
    }
    tb_strlist_free(&vals[d]);
    vals[d] = kept;
  }
  if (rc) {
    fprintf(stderr, "towerrt bench: %s\n", err);
    for (size_t d = 0; d < N_DIMS; d++) tb_strlist_free(&vals[d]);
    return rc;
  }
  size_t total = 1;
  for (size_t d = 0; d < N_DIMS; d++) total *= vals[d].n;
  c->points = calloc(total ? total : 1, sizeof *c->points);
  if (!c->points) return EXIT_FAIL;
  /* odometer over the dimensions, the last one fastest */
  size_t idx[TB_MAX_DIMS] = {0};
  for (size_t n = 0; n < total; n++) {
    tb_point *p = &c->points[n];
    for (size_t d = 0; d < N_DIMS; d++) {
      /* the strings live in c->dim_values: move the kept lists there */
      p->value[d] = vals[d].v[idx[d]];
      TB_DIMS[d].apply(c, p, p->value[d], err, sizeof err);
    }
    for (size_t d = N_DIMS; d-- > 0;) {
      if (++idx[d] < vals[d].n) break;
      idx[d] = 0;
    }
  }
  c->n_points = total;
  for (size_t d = 0; d < N_DIMS; d++) {
    tb_strlist_free(&c->dim_values[d]);
    c->dim_values[d] = vals[d]; /* owns the strings the points point to */
  }
  return EXIT_OK;
}

static void progress(bench_ctx *c, size_t i, const tb_point *p, size_t done, size_t want, const char *phase) {
  if (!c->progress) return;
  char buf[256];
  size_t n = (size_t)snprintf(buf, sizeof buf, "[%zu/%zu]", i + 1, c->n_points);
  for (size_t d = 0; d < N_DIMS && n < sizeof buf; d++) n += (size_t)snprintf(buf + n, sizeof buf - n, " %s=%s", TB_DIMS[d].column, p->value[d]);
  if (n < sizeof buf) snprintf(buf + n, sizeof buf - n, "  %s %zu/%zu", phase, done, want);
  fprintf(stderr, "\r\033[K%s", buf);
  fflush(stderr);
}

/* One session's requests of a point, on its own thread when the point has
 * concurrency > 1 (then all start the measured phase together, at a
 * barrier). Worker 0 runs on the calling thread and shows the progress. */
typedef struct tb_worker {
  bench_ctx *c;
  size_t point;
  towerrt_session *s;
  const towerrt_model *m;
  const towerrt_items *items;
  uint32_t id;
  pthread_barrier_t *start; /* NULL: a single session */
  double *lat, *cpu;        /* c->requests each */
  size_t n, warmup_done;
  double wall_sum, cpu_sum;
  uint64_t t_begin, t_end;  /* the measured phase, wall clock */
  towerrt_status st;
  int rc, finite;
  double counts[TB_N_COUNTERS]; /* totals over the measured requests; -1: none */
} tb_worker;

/* CPU time of the request: the whole process's when the request has pool
 * workers (their time counts), else the calling thread's (with concurrent
 * sessions the process time would include the others'). */
static uint64_t request_cpu_ns(const tb_point *p) {
  if (p->threads > 1) return tb_cpu_ns();
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void *worker_main(void *arg) {
  tb_worker *w = arg;
  bench_ctx *c = w->c;
  const tb_point *p = &c->points[w->point];
  const towerrt_model *m = w->m;
  size_t k = p->k, slots = towerrt_model_id_slots(m, TOWERRT_USER), dw = towerrt_model_dense_width(m, TOWERRT_USER);
  uint64_t *cands = malloc(k * sizeof *cands);
  float *scores = malloc(k * sizeof *scores);
  int64_t *uids = malloc((slots + 1) * sizeof *uids);
  float *udense = malloc((dw + 1) * sizeof *udense);
  tb_reqgen g;
  /* session 0 sees the same requests as a single-session point; the others their own */
  int ok = tb_reqgen_init(&g, m, w->items, c->seed + (uint64_t)w->id * UINT64_C(0x9E3779B97F4A7C15));
  towerrt_status st = TOWERRT_OK;
  w->rc = EXIT_OK;
  if (!cands || !scores || !uids || !udense || !ok) {
    fprintf(stderr, "towerrt bench: out of memory for k = %zu\n", k);
    w->rc = EXIT_FAIL;
  }
  towerrt_features user = {uids, slots, dw ? udense : NULL, dw};
  uint64_t last_progress = 0;
  /* warm-up: up to --warmup requests, within a quarter of the budget (at least one) */
  uint64_t w0 = tb_now_ns();
  for (size_t r = 0; r < c->warmup && !w->rc; r++) {
    tb_reqgen_user(&g, uids, udense);
    tb_reqgen_candidates(&g, cands, k);
    st = towerrt_score(w->s, &user, cands, k, scores);
    if (st) break;
    w->warmup_done++;
    uint64_t now = tb_now_ns();
    if (w->id == 0 && now - last_progress > 100000000u) {
      progress(c, w->point, p, r + 1, c->warmup, "warm-up");
      last_progress = now;
    }
    if ((double)(now - w0) * 1e-9 > c->seconds / 4) break;
  }
  if (w->start) pthread_barrier_wait(w->start); /* every session waits, failed or not */
  tb_counters pc;
  char why[256];
  int counting = c->counters && w->id == 0 && tb_counters_open(&pc, why, sizeof why);
  if (counting) tb_counters_start(&pc);
  uint64_t m0 = tb_now_ns();
  w->t_begin = m0;
  while (!w->rc && !st && w->n < c->requests) {
    tb_reqgen_user(&g, uids, udense);
    tb_reqgen_candidates(&g, cands, k);
    uint64_t c0 = request_cpu_ns(p), t0 = tb_now_ns();
    st = towerrt_score(w->s, &user, cands, k, scores);
    uint64_t t1 = tb_now_ns(), c1 = request_cpu_ns(p);
    if (st) break;
    double cpu = (double)(c1 - c0) - c->cpu_clock_ns; /* minus the cost of the clock reads */
    w->cpu[w->n] = cpu < 0 ? 0 : cpu;
    w->lat[w->n++] = (double)(t1 - t0);
    w->wall_sum += (double)(t1 - t0);
    w->cpu_sum += w->cpu[w->n - 1];
    w->t_end = t1;
    if (w->id == 0 && t1 - last_progress > 100000000u) {
      progress(c, w->point, p, w->n, c->requests, "requests");
      last_progress = t1;
    }
    if (w->n >= c->min_requests && (double)(t1 - m0) * 1e-9 > c->seconds) break;
  }
  for (int j = 0; j < TB_N_COUNTERS; j++) w->counts[j] = -1;
  if (counting) {
    tb_counters_stop(&pc, w->counts);
    tb_counters_close(&pc);
  }
  w->st = st;
  if (st) {
    fprintf(stderr, "\ntowerrt bench: error: %s (%s)\n", towerrt_session_error(w->s), towerrt_status_name(st));
    w->rc = EXIT_FAIL;
  }
  w->finite = !w->rc && w->n && isfinite(scores[0]) && isfinite(scores[k - 1]);
  if (ok) tb_reqgen_free(&g);
  free(cands);
  free(scores);
  free(uids);
  free(udense);
  return NULL;
}

/* towerrt_trace_fn: one event into the shared buffer (lock-free: a slot
 * per fetch_add). */
static void on_trace(void *ctx, const char *step, uint64_t t0, uint64_t t1, uint32_t slot) {
  tb_worker *w = ctx;
  bench_ctx *c = w->c;
  size_t i = atomic_fetch_add(&c->n_events, 1);
  if (i >= TB_TRACE_CAP) {
    atomic_fetch_add(&c->dropped, 1);
    return;
  }
  c->events[i] = (tb_trace_event){step, t0, t1, w->id * 1000u + slot, (uint32_t)w->point};
}

/* The sessions of a point, each with its own latency buffers. */
static int make_sessions(bench_ctx *c, size_t i, towerrt_model *m, towerrt_items *items, tb_worker *w, uint32_t n) {
  const tb_point *p = &c->points[i];
  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = p->fe_mask;
  o.max_k = (uint32_t)c->max_k;
#ifdef TB_HAVE_POOL
  if (p->threads > 1) {
    o.pool = pool_for(c);
    o.threads = p->threads;
    if (!o.pool) return EXIT_FAIL;
  }
#endif
  for (uint32_t j = 0; j < n; j++) {
    w[j] = (tb_worker){.c = c, .point = i, .m = m, .items = items, .id = j};
    w[j].lat = malloc(c->requests * sizeof *w[j].lat);
    w[j].cpu = malloc(c->requests * sizeof *w[j].cpu);
    if (!w[j].lat || !w[j].cpu) {
      fprintf(stderr, "towerrt bench: out of memory for %zu requests\n", c->requests);
      return EXIT_FAIL;
    }
    towerrt_status st = towerrt_session_create(m, items, &o, &w[j].s);
    if (st) {
      fprintf(stderr, "\ntowerrt bench: error: %s (%s)\n", towerrt_last_error(), towerrt_status_name(st));
      return EXIT_FAIL;
    }
    if (c->events) towerrt_session_set_trace(w[j].s, on_trace, &w[j]);
  }
  return EXIT_OK;
}

/* Runs the sessions (worker 0 on this thread) and merges their samples. */
static int run_workers(bench_ctx *c, tb_worker *w, uint32_t n, tb_result *res) {
  pthread_barrier_t start;
  pthread_t tid[256];
  uint32_t started = 1;
  int rc = EXIT_OK;
  if (n > 1) {
    if (pthread_barrier_init(&start, NULL, n) != 0) return EXIT_FAIL;
    for (uint32_t j = 0; j < n; j++) w[j].start = &start;
    for (; started < n; started++)
      if (pthread_create(&tid[started], NULL, worker_main, &w[started]) != 0) break;
    if (started < n) { /* the barrier would never open: a thread per missing session stands in */
      fprintf(stderr, "towerrt bench: cannot start %u threads\n", n);
      for (uint32_t j = started; j < n; j++) w[j].rc = EXIT_FAIL, w[j].start = NULL;
      rc = EXIT_FAIL;
    }
  }
  if (!rc) worker_main(&w[0]);
  for (uint32_t j = 1; j < started; j++) pthread_join(tid[j], NULL);
  if (n > 1) pthread_barrier_destroy(&start);
  size_t total = 0;
  uint64_t t0 = UINT64_MAX, t1 = 0;
  double wall = 0, cpu = 0;
  for (uint32_t j = 0; j < n; j++) {
    if (w[j].rc || !w[j].finite) {
      if (!w[j].rc) fprintf(stderr, "\ntowerrt bench: error: non-finite scores at k = %zu\n", c->points[w[j].point].k);
      return EXIT_FAIL;
    }
    total += w[j].n, wall += w[j].wall_sum, cpu += w[j].cpu_sum;
    if (w[j].t_begin < t0) t0 = w[j].t_begin;
    if (w[j].t_end > t1) t1 = w[j].t_end;
  }
  double *lat = malloc(total * sizeof *lat), *cpus = malloc(total * sizeof *cpus);
  if (!lat || !cpus) {
    free(lat), free(cpus);
    return EXIT_FAIL;
  }
  for (uint32_t j = 0, at = 0; j < n; at += (uint32_t)w[j].n, j++) {
    memcpy(lat + at, w[j].lat, w[j].n * sizeof *lat);
    memcpy(cpus + at, w[j].cpu, w[j].n * sizeof *cpus);
  }
  res->warmup_done = w[0].warmup_done;
  for (int j = 0; j < TB_N_COUNTERS; j++) res->counts[j] = w[0].counts[j] >= 0 && w[0].n ? w[0].counts[j] / (double)w[0].n : -1;
  tb_stats_compute(lat, total, &res->st);
  tb_stats cst;
  tb_stats_compute(cpus, total, &cst);
  res->cpu_p50_us = cst.p50 * 1e-3;
  res->cpu_share = wall > 0 ? cpu / wall : NAN;
  res->requests_per_s = t1 > t0 ? (double)total / ((double)(t1 - t0) * 1e-9) : NAN;
  for (size_t j = 0; j < total; j++) lat[j] *= 1e-3; /* ns -> us, kept for the JSON */
  res->samples_us = lat;
  free(cpus);
  return rc;
}

static int run_point(bench_ctx *c, size_t i, tb_result *res) {
  const tb_point *p = &c->points[i];
  memset(res, 0, sizeof *res);
  res->pt = *p;
  towerrt_model *m = model_for(c, p->isa);
  towerrt_items *items = store_for(c, p->precision);
  if (!m || !items) return EXIT_FAIL;
  uint32_t n = p->concurrency ? p->concurrency : 1;
  tb_worker *w = calloc(n, sizeof *w);
  if (!w) return EXIT_FAIL;
  int rc = make_sessions(c, i, m, items, w, n);
  if (!rc) rc = run_workers(c, w, n, res);
  for (uint32_t j = 0; j < n; j++) {
    towerrt_session_free(w[j].s);
    free(w[j].lat), free(w[j].cpu);
  }
  free(w);
  if (rc) return rc;
  res->fe_resolved = p->fe_mask ? p->fe_mask : towerrt_model_fe_layer_mask(m);
  res->user_heads = (size_t)__builtin_popcount(res->fe_resolved) * tb_user_heads(m);
  size_t k = p->k;
  double mean_s = res->st.mean * 1e-9, p50_s = res->st.p50 * 1e-9;
  res->cands_per_s = (double)k / mean_s;
  res->cands_per_s_p50 = (double)k / p50_s;
  res->gmacs = (double)k * (double)res->user_heads * tb_item_heads(m) * tb_head_dim(m) / p50_s * 1e-9;
  res->item_gbps = (double)k * tb_item_heads(m) * tb_head_dim(m) * k_prec_bytes[p->precision] / p50_s * 1e-9;
  return EXIT_OK;
}

static double mean_of(const double *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  return n ? s / (double)n : NAN;
}

/* Sample standard deviation (n - 1); 0 for one value. */
static double sd_of(const double *v, size_t n) {
  if (n < 2) return 0.0;
  double m = mean_of(v, n), s = 0;
  for (size_t i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
  return sqrt(s / (double)(n - 1));
}

static void free_result(tb_result *r) {
  free(r->rep_p50_us), free(r->rep_cps), free(r->samples_us);
  r->rep_p50_us = r->rep_cps = r->samples_us = NULL;
}

/* The point --repetitions times; keeps the repetition whose p50 is the
 * median (the lower one of an even count) with the spread of all. */
static int run_repetitions(bench_ctx *c, size_t i, tb_result *res) {
  size_t n = c->repetitions ? c->repetitions : 1;
  tb_result *all = calloc(n, sizeof *all);
  double *p50 = malloc(n * sizeof *p50), *cps = malloc(n * sizeof *cps);
  int rc = all && p50 && cps ? EXIT_OK : EXIT_FAIL;
  size_t done = 0;
  for (; done < n && !rc; done++) {
    rc = run_point(c, i, &all[done]);
    if (!rc) p50[done] = all[done].st.p50 * 1e-3, cps[done] = all[done].cands_per_s;
  }
  if (!rc) {
    size_t best = 0;
    for (size_t a = 0; a < n; a++) { /* the median by rank: as many below as above (+-1) */
      size_t below = 0;
      for (size_t b = 0; b < n; b++) below += p50[b] < p50[a] || (p50[b] == p50[a] && b < a);
      if (below == (n - 1) / 2) best = a;
    }
    *res = all[best];
    all[best].samples_us = NULL;
    res->reps = n;
    res->rep_p50_us = p50, res->rep_cps = cps;
    p50 = cps = NULL;
    res->p50_sd_us = sd_of(res->rep_p50_us, n), res->cps_sd = sd_of(res->rep_cps, n);
    res->p50_cv = res->p50_sd_us / mean_of(res->rep_p50_us, n), res->cps_cv = res->cps_sd / mean_of(res->rep_cps, n);
  }
  for (size_t a = 0; all && a < done; a++) free_result(&all[a]);
  free(all), free(p50), free(cps);
  return rc;
}

/* ---- outputs ---------------------------------------------------------------------------- */

static void print_header(FILE *f) {
  for (size_t d = 0; d < N_DIMS; d++) fprintf(f, "%-*s ", d + 1 == N_DIMS ? 8 : 12, TB_DIMS[d].column);
  fprintf(f, "%8s %10s %10s %10s %10s %13s %13s %9s %9s\n", "requests", "p50 us", "p90 us", "p99 us", "p99.9 us", "cands/s", "cands/s@p50",
          "GMAC/s", "req/s");
}

static void print_row(FILE *f, const tb_result *r) {
  for (size_t d = 0; d < N_DIMS; d++) fprintf(f, "%-*s ", d + 1 == N_DIMS ? 8 : 12, r->pt.value[d]);
  fprintf(f, "%8zu %10.1f %10.1f %10.1f %10.1f %13.0f %13.0f %9.2f %9.1f\n", r->st.n, r->st.p50 * 1e-3, r->st.p90 * 1e-3, r->st.p99 * 1e-3,
          r->st.p999 * 1e-3, r->cands_per_s, r->cands_per_s_p50, r->gmacs, r->requests_per_s);
  fflush(f);
}

static void csv_field(FILE *f, const char *s) {
  if (strpbrk(s, ",\"\n")) {
    fputc('"', f);
    for (; *s; s++) {
      if (*s == '"') fputc('"', f);
      fputc(*s, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
}

static int write_csv(const bench_ctx *c) {
  FILE *f = fopen(c->csv, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->csv, strerror(errno));
    return EXIT_FAIL;
  }
  for (size_t d = 0; d < N_DIMS; d++) fprintf(f, "%s%s", d ? "," : "", TB_DIMS[d].column);
  for (size_t j = 0; j < N_COLUMNS; j++)
    if (COLUMN_ON(c, j)) fprintf(f, ",%s", TB_COLUMNS[j].name);
  fputc('\n', f);
  for (size_t i = 0; i < c->n_results; i++) {
    const tb_result *r = &c->results[i];
    for (size_t d = 0; d < N_DIMS; d++) {
      if (d) fputc(',', f);
      csv_field(f, r->pt.value[d]);
    }
    for (size_t j = 0; j < N_COLUMNS; j++) {
      if (!COLUMN_ON(c, j)) continue;
      fputc(',', f);
      if (TB_COLUMNS[j].is_text) {
        char b[64];
        TB_COLUMNS[j].text(r, b, sizeof b);
        csv_field(f, b);
      } else {
        double v = TB_COLUMNS[j].num(r);
        if (isfinite(v)) fprintf(f, "%.*f", TB_COLUMNS[j].decimals, v);
      }
    }
    fputc('\n', f);
  }
  if (fclose(f) != 0) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->csv, strerror(errno));
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static void json_kv_str(FILE *f, const char *ind, const char *k, const char *v, int comma) {
  fprintf(f, "%s", ind);
  tb_json_string(f, k);
  fputs(": ", f);
  tb_json_string(f, v);
  fputs(comma ? ",\n" : "\n", f);
}

static void json_kv_num(FILE *f, const char *ind, const char *k, double v, int comma) {
  fprintf(f, "%s", ind);
  tb_json_string(f, k);
  fputs(": ", f);
  tb_json_number(f, v);
  fputs(comma ? ",\n" : "\n", f);
}

static int write_json(const bench_ctx *c) {
  FILE *f = fopen(c->json, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->json, strerror(errno));
    return EXIT_FAIL;
  }
  tb_machine mc;
  tb_machine_describe(&mc);
  const towerrt_model *m = c->first;
  char desc[512] = "", trained[32];
  if (c->synthetic) tb_synth_describe(&c->synth, desc, sizeof desc);
  tb_mask_string(towerrt_model_fe_layer_mask(m), trained, sizeof trained);
  fprintf(f, "{\n");
  json_kv_str(f, "  ", "schema", "towerrt-bench/1", 1);
  json_kv_str(f, "  ", "towerrt_version", towerrt_version_string(), 1);
  json_kv_str(f, "  ", "command", c->command, 1);
  fprintf(f, "  \"machine\": {\n");
  json_kv_str(f, "    ", "cpu", mc.cpu, 1);
  json_kv_num(f, "    ", "logical_cpus", mc.logical_cpus, 1);
  json_kv_num(f, "    ", "l2_bytes", (double)mc.l2_bytes, 1);
  json_kv_num(f, "    ", "l3_bytes", (double)mc.l3_bytes, 1);
  json_kv_str(f, "    ", "os", mc.os, 1);
  json_kv_str(f, "    ", "compiler", mc.compiler, 1);
  json_kv_str(f, "    ", "date_utc", mc.date_utc, 1);
  json_kv_num(f, "    ", "loadavg_1m_at_end", mc.loadavg_1m, 1);
  json_kv_num(f, "    ", "loadavg_1m_at_start", c->loadavg_start, 1);
  fprintf(f, "    \"isas\": [");
  for (size_t i = 0; i < c->n_isas; i++) {
    fputs(i ? ", " : "", f);
    tb_json_string(f, c->isas[i]);
  }
  fprintf(f, "],\n");
  json_kv_str(f, "    ", "default_isa", tb_default_isa(), 0);
  fprintf(f, "  },\n  \"model\": {\n");
  json_kv_str(f, "    ", "path", c->model_path, 1);
  json_kv_str(f, "    ", "items", c->items_path, 1);
  fprintf(f, "    \"synthetic\": ");
  if (c->synthetic) tb_json_string(f, desc);
  else fputs("null", f);
  fputs(",\n", f);
  json_kv_num(f, "    ", "items_count", (double)towerrt_items_count(c->items), 1);
  json_kv_num(f, "    ", "user_heads_per_layer", tb_user_heads(m), 1);
  json_kv_num(f, "    ", "item_heads", tb_item_heads(m), 1);
  json_kv_num(f, "    ", "head_dim", tb_head_dim(m), 1);
  json_kv_str(f, "    ", "trained_fe_layers", trained, 0);
  fprintf(f, "  },\n  \"settings\": {\n");
  json_kv_num(f, "    ", "requests", (double)c->requests, 1);
  json_kv_num(f, "    ", "warmup", (double)c->warmup, 1);
  json_kv_num(f, "    ", "seconds", c->seconds, 1);
  json_kv_num(f, "    ", "min_requests", (double)c->min_requests, 1);
  json_kv_num(f, "    ", "repetitions", (double)c->repetitions, 1);
  json_kv_num(f, "    ", "seed", (double)c->seed, 0);
  fprintf(f, "  },\n  \"dimensions\": [");
  for (size_t d = 0; d < N_DIMS; d++) {
    fputs(d ? ", " : "", f);
    tb_json_string(f, TB_DIMS[d].column);
  }
  fprintf(f, "],\n  \"columns\": [");
  for (size_t d = 0; d < N_DIMS; d++) {
    fputs(d ? ", " : "", f);
    tb_json_string(f, TB_DIMS[d].column);
  }
  for (size_t j = 0; j < N_COLUMNS; j++) {
    if (!COLUMN_ON(c, j)) continue;
    fputs(", ", f);
    tb_json_string(f, TB_COLUMNS[j].name);
  }
  fprintf(f, "],\n  \"points\": [");
  for (size_t i = 0; i < c->n_results; i++) {
    const tb_result *r = &c->results[i];
    fprintf(f, "%s\n    {", i ? "," : "");
    for (size_t d = 0; d < N_DIMS; d++) {
      fputs(d ? ", " : "", f);
      tb_json_string(f, TB_DIMS[d].column);
      fputs(": ", f);
      /* numeric dimension values stay numbers */
      char *end;
      double v = strtod(r->pt.value[d], &end);
      if (*r->pt.value[d] && !*end) tb_json_number(f, v);
      else tb_json_string(f, r->pt.value[d]);
    }
    for (size_t j = 0; j < N_COLUMNS; j++) {
      if (!COLUMN_ON(c, j)) continue;
      fputs(", ", f);
      tb_json_string(f, TB_COLUMNS[j].name);
      fputs(": ", f);
      if (TB_COLUMNS[j].is_text) {
        char b[64];
        TB_COLUMNS[j].text(r, b, sizeof b);
        tb_json_string(f, b);
      } else {
        tb_json_number(f, TB_COLUMNS[j].num(r));
      }
    }
    fprintf(f, ", \"repetition_p50_us\": [");
    for (size_t j = 0; j < r->reps; j++) fprintf(f, "%s%.3f", j ? ", " : "", r->rep_p50_us[j]);
    fprintf(f, "], \"latency_us\": [");
    for (size_t j = 0; r->samples_us && j < r->st.n; j++) fprintf(f, "%s%.3f", j ? ", " : "", r->samples_us[j]);
    fputs("]}", f);
  }
  fprintf(f, "\n  ]");
  if (c->have_profile) {
    fprintf(f, ",\n  \"profile\": ");
    tb_profile_json(&c->prof, f, "  ");
  }
  if (c->roof) {
    fprintf(f, ",\n  \"roofline\": ");
    tb_roofline_json(c->roof, f, "  ");
  }
  fprintf(f, "\n}\n");
  if (fclose(f) != 0) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->json, strerror(errno));
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* The Chrome trace event format (a JSON object with "traceEvents"): one
 * complete event ("ph": "X") per step, ts/dur in microseconds; a thread
 * per session and participant slot, named; the points as spans on their
 * own track. */
static int write_trace(const bench_ctx *c) {
  FILE *f = fopen(c->trace, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->trace, strerror(errno));
    return EXIT_FAIL;
  }
  size_t n = atomic_load(&c->n_events);
  if (n > TB_TRACE_CAP) n = TB_TRACE_CAP;
  uint64_t base = UINT64_MAX;
  for (size_t i = 0; i < n; i++) base = c->events[i].t0 < base ? c->events[i].t0 : base;
  fprintf(f, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"command\": ");
  tb_json_string(f, c->command);
  fprintf(f, ", \"dropped_events\": %zu}, \"traceEvents\": [\n", atomic_load(&c->dropped));
  fprintf(f, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": \"towerrt bench\"}}");
  uint32_t named[512];
  size_t n_named = 0;
  for (size_t i = 0; i < n; i++) {
    const tb_trace_event *e = &c->events[i];
    int seen = 0;
    for (size_t j = 0; j < n_named; j++) seen |= named[j] == e->tid;
    if (!seen && n_named < 512) {
      named[n_named++] = e->tid;
      fprintf(f, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": %u, \"args\": {\"name\": \"session %u %s %u\"}}",
              e->tid + 1, e->tid / 1000, e->tid % 1000 ? "worker" : "caller", e->tid % 1000);
    }
    const tb_point *p = &c->points[e->point];
    fprintf(f, ",\n{\"name\": \"%s\", \"cat\": \"request\", \"ph\": \"X\", \"pid\": 1, \"tid\": %u, \"ts\": %.3f, \"dur\": %.3f, "
               "\"args\": {\"point\": %u, \"isa\": \"%s\", \"precision\": \"%s\", \"k\": %zu}}",
            e->step, e->tid + 1, (double)(e->t0 - base) * 1e-3, (double)(e->t1 - e->t0) * 1e-3, e->point, p->isa,
            k_prec_names[p->precision], p->k);
  }
  fprintf(f, "\n]}\n");
  if (fclose(f) != 0) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", c->trace, strerror(errno));
    return EXIT_FAIL;
  }
  if (!c->quiet)
    fprintf(stderr, "towerrt bench: wrote %zu trace events to %s%s\n", n, c->trace,
            atomic_load(&c->dropped) ? " (the buffer was full: later events were dropped)" : "");
  return EXIT_OK;
}

/* Series = the dimensions but k (the last) that vary in this run, as
 * name=value joined by '/' ("isa=avx2/fe_mode=0"). */
static void series_name(const bench_ctx *c, const tb_result *r, char *buf, size_t cap, int skip_precision) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t d = 0; d + 1 < N_DIMS && n < cap; d++) {
    int varies = 0;
    for (size_t i = 0; i < c->n_results && !varies; i++) varies = strcmp(c->results[i].pt.value[d], r->pt.value[d]) != 0;
    if (!varies || (skip_precision && d == 1)) continue;
    if (d == 0) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", r->pt.value[d]); /* an ISA name says what it is */
    else n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", n ? " " : "", TB_DIMS[d].column, r->pt.value[d]);
  }
  if (!n) snprintf(buf, cap, "towerrt");
  for (char *p = buf; *p; p++)
    if (*p == '"' || *p == '\'' || *p == '|') *p = '_';
}

static int run_gnuplot(const char *script) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execlp("gnuplot", "gnuplot", script, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The compute roof of a precision on this machine (GMAC/s, one core): the
 * --roofline result if there is one, else a short measurement now. */
static double precision_roof(const bench_ctx *c, int prec, char *ins, size_t cap) {
  if (c->roof) {
    double v = prec == PREC_INT8 ? c->roof->best_i8 : prec == PREC_BF16 ? c->roof->best_bf16 : c->roof->best_f32;
    if (prec == PREC_BF16 && v <= 0) v = c->roof->best_f32;
    snprintf(ins, cap, "%s", prec == PREC_INT8 ? "int8 dot" : prec == PREC_BF16 && c->roof->best_bf16 > 0 ? "bf16 dot" : "fp32 FMA");
    return v;
  }
  double v = prec == PREC_INT8 ? tb_peak_i8(0.15, ins, cap) : prec == PREC_BF16 ? tb_peak_bf16(0.15, ins, cap) : 0.0;
  if (v <= 0) v = tb_peak_f32(0.15, ins, cap);
  return v;
}

/* One line for the plots' caption: model, catalog, threads, machine. */
static void plot_caption(const bench_ctx *c, char *buf, size_t cap) {
  tb_machine mc;
  tb_machine_describe(&mc);
  char model[320], threads[64] = "";
  const towerrt_model *m = c->first;
  if (c->synthetic) tb_synth_describe(&c->synth, model, sizeof model);
  else snprintf(model, sizeof model, "%s", c->model_path);
  size_t n = 0;
  for (size_t i = 0; i < c->n_results && n < sizeof threads; i++) {
    char t[16];
    snprintf(t, sizeof t, "%u", c->results[i].pt.threads);
    if (!strstr(threads, t)) n += (size_t)snprintf(threads + n, sizeof threads - n, "%s%s", n ? "," : "", t);
  }
  const char *forced = getenv("TOWERRT_ISA");
  snprintf(buf, cap, "model: %s, %u x %u heads of %u dims; catalog %zu items; threads per request %s; %s, %d logical CPUs, best ISA %s%s%s",
           model, tb_user_heads(m), tb_item_heads(m), tb_head_dim(m), towerrt_items_count(c->items), threads, mc.cpu, mc.logical_cpus,
           tb_default_isa(), forced && *forced ? ", TOWERRT_ISA=" : "", forced && *forced ? forced : "");
  for (char *q = buf; *q; q++)
    if (*q == '"' || *q == '\'') *q = ' ';
}

static int write_plot(const bench_ctx *c) {
  char dat[4096], gp[4096], titles[4096] = "", caption[1024], bounds[512] = "";
  snprintf(dat, sizeof dat, "%s.dat", c->plot);
  snprintf(gp, sizeof gp, "%s.gp", c->plot);
  FILE *f = fopen(dat, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", dat, strerror(errno));
    return EXIT_FAIL;
  }
  /* the compute bound of each precision: roof / MaxSim MACs per candidate */
  double roof[N_PREC] = {0};
  size_t bl = 0;
  for (size_t i = 0; i < c->n_results; i++) {
    int pr = c->results[i].pt.precision;
    if (roof[pr] > 0) continue;
    char ins[48];
    roof[pr] = precision_roof(c, pr, ins, sizeof ins);
    bl += (size_t)snprintf(bounds + bl, bl < sizeof bounds ? sizeof bounds - bl : 0, "%s%s %.0f GMAC/s (%s)", bl ? ", " : "",
                           k_prec_names[pr], roof[pr], ins);
  }
  /* one panel per precision (the legend stays short): the series of a
   * precision are consecutive data blocks, first_series[p] .. end_series[p] */
  size_t n_series = 0, tl = 0, skipped = 0, first_series[N_PREC] = {0}, end_series[N_PREC] = {0};
  for (int pr = 0; pr < N_PREC; pr++) {
  first_series[pr] = n_series;
  char prev[256] = "";
  for (size_t i = 0; i < c->n_results; i++) {
    const tb_result *r = &c->results[i];
    if (r->pt.precision != pr) continue;
    if (!c->include_scalar && !strcmp(r->pt.isa, "scalar")) { /* 10-100x slower: it flattens every other curve */
      skipped++;
      continue;
    }
    char name[256];
    series_name(c, r, name, sizeof name, 1);
    if (n_series == first_series[pr] || strcmp(name, prev)) {
      if (n_series) fputs("\n\n", f);
      fprintf(f, "# %s\n# k p50_us p90_us p99_us p999_us cands_per_s roof_cands_per_s\n", name);
      tl += (size_t)snprintf(titles + tl, tl < sizeof titles ? sizeof titles - tl : 0, "%s%s", n_series ? "|" : "", name);
      n_series++;
      snprintf(prev, sizeof prev, "%s", name);
    }
    double macs = (double)r->user_heads * tb_item_heads(c->first) * tb_head_dim(c->first);
    fprintf(f, "%zu %.3f %.3f %.3f %.3f %.1f %.1f\n", r->pt.k, r->st.p50 * 1e-3, r->st.p90 * 1e-3, r->st.p99 * 1e-3, r->st.p999 * 1e-3,
            r->cands_per_s, macs > 0 ? roof[r->pt.precision] * 1e9 / macs : 0.0);
  }
  end_series[pr] = n_series;
  }
  fclose(f);
  if (!n_series) {
    fprintf(stderr, "towerrt bench: --plot: only scalar points were measured; add --include-scalar to plot them\n");
    return EXIT_OK;
  }
  if (skipped && !c->quiet) fprintf(stderr, "towerrt bench: note: scalar points left out of the plots (--include-scalar draws them)\n");
  plot_caption(c, caption, sizeof caption);
  f = fopen(gp, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", gp, strerror(errno));
    return EXIT_FAIL;
  }
  const char *base = strrchr(c->plot, '/');
  base = base ? base + 1 : c->plot;
  int panels = 0;
  size_t most = 0;
  for (int pr = 0; pr < N_PREC; pr++)
    if (end_series[pr] > first_series[pr]) {
      panels++;
      if (end_series[pr] - first_series[pr] > most) most = end_series[pr] - first_series[pr];
    }
  int width = panels > 1 ? 620 * panels : 1100, height = 560 + 18 * (int)((most + 1) / 2);
  char machine[1100], model[1100];
  snprintf(model, sizeof model, "%s", caption);
  char *semi = strstr(model, "; threads");
  snprintf(machine, sizeof machine, "%s", semi ? semi + 2 : "");
  if (semi) *semi = '\0';
  /* a long model line wraps once, at the space nearest its middle */
  size_t ml = strlen(model);
  if (ml > 110 && ml + 3 < sizeof model) {
    size_t cut = ml / 2;
    while (cut < ml && model[cut] != ' ') cut++;
    if (cut < ml) {
      memmove(model + cut + 2, model + cut + 1, ml - cut);
      model[cut] = '\\', model[cut + 1] = 'n';
    }
  }
  fprintf(f,
          "# Latency and throughput versus candidates per request, one panel per item-store precision;\n"
          "# written by towerrt bench --plot. Run from this folder: gnuplot %s.gp\n"
          "datafile = '%s.dat'\n"
          "# series (data blocks in order): %s\n"
          "set logscale x\n"
          "set grid\n"
          "set key below maxcolumns 2 noenhanced\n"
          "set xlabel 'candidates per request (k)'\n"
          "set format x '10^{%%L}'\n"
          "set logscale y\n"
          "png = (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) ? 'pngcairo' : 'png'\n"
          "do for [fmt in 'png svg'] {\n"
          "  if (fmt eq 'png') { set terminal png size %d,%d } else { set terminal svg size %d,%d dynamic background rgb 'white' }\n"
          "  if (fmt eq 'png' && png eq 'pngcairo') { set terminal pngcairo size %d,%d font ',10' }\n",
          base, base, titles, width, height, width, height, width, height);
  for (int chart = 0; chart < 2; chart++) {
    fprintf(f, "  set output '%s-%s.'.fmt\n", base, chart ? "throughput" : "latency");
    fprintf(f, "  set multiplot layout 1,%d title \"%s\\n%s\\n%s\" noenhanced\n", panels,
            chart ? "towerrt throughput, one request at a time; dotted: the compute bound (roof of the precision / MaxSim MACs per candidate)"
                  : "towerrt request latency: p50 solid with filled points, p99 dashed with open points",
            model, machine);
    fprintf(f, "  set ylabel '%s'\n", chart ? "candidates per second" : "latency (ms)");
    for (int pr = 0; pr < N_PREC; pr++) {
      if (end_series[pr] == first_series[pr]) continue;
      fprintf(f, "  set title '%s item store' noenhanced\n", k_prec_names[pr]);
      fprintf(f, "  plot \\\n");
      const char *t = titles;
      for (size_t i = 0; i < end_series[pr]; i++) {
        const char *bar = strchr(t, '|');
        int len = bar ? (int)(bar - t) : (int)strlen(t);
        if (i >= first_series[pr]) {
          size_t col = i - first_series[pr] + 1;
          if (chart)
            fprintf(f,
                    "    datafile index %zu using 1:6 with linespoints lw 2 pt 7 ps 0.8 lc %zu title '%.*s', \\\n"
                    "    datafile index %zu using 1:7 with lines lw 1.5 lc %zu dt (2,3) notitle%s\n",
                    i, col, len, t, i, col, i + 1 < end_series[pr] ? ", \\" : "");
          else
            fprintf(f,
                    "    datafile index %zu using 1:($2/1000) with linespoints lw 2 pt 7 ps 0.8 lc %zu title '%.*s', \\\n"
                    "    datafile index %zu using 1:($4/1000) with linespoints lw 1.5 pt 6 ps 0.8 lc %zu dt (8,4) notitle%s\n",
                    i, col, len, t, i, col, i + 1 < end_series[pr] ? ", \\" : "");
        }
        t = bar ? bar + 1 : t + len;
      }
    }
    fprintf(f, "  unset multiplot\n");
  }
  fprintf(f, "}\n# compute roofs used (one core): %s\n", bounds);
  fclose(f);
  char prog[4096];
  if (!tb_find_program("gnuplot", prog, sizeof prog)) {
    fprintf(stderr,
            "towerrt bench: gnuplot is NOT installed (not found on PATH): no PNG/SVG curves were drawn.\n"
            "  Wrote %s and %s; install gnuplot (Debian: apt-get install gnuplot-nox) and run\n"
            "  (cd %.*s && gnuplot %s.gp)\n",
            dat, gp, (int)(base - c->plot > 1 ? base - c->plot - 1 : 1), base - c->plot > 1 ? c->plot : ".", base);
    return EXIT_OK;
  }
  /* gnuplot runs in the plot's folder so that the script's relative names work */
  char cwd[4096];
  int have_cwd = getcwd(cwd, sizeof cwd) != NULL, rc;
  if (base != c->plot) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(base - c->plot), c->plot);
    if (chdir(dir) != 0) {
      fprintf(stderr, "towerrt bench: cannot enter '%s': %s\n", dir, strerror(errno));
      return EXIT_FAIL;
    }
  }
  char script[4200];
  snprintf(script, sizeof script, "%s.gp", base);
  rc = run_gnuplot(script);
  if (have_cwd && base != c->plot && chdir(cwd) != 0) fprintf(stderr, "towerrt bench: cannot return to '%s'\n", cwd);
  if (rc != 0) {
    fprintf(stderr, "towerrt bench: gnuplot %s failed (exit %d)\n", gp, rc);
    return EXIT_FAIL;
  }
  fprintf(stderr, "towerrt bench: wrote %s-latency.png/.svg and %s-throughput.png/.svg\n", c->plot, c->plot);
  return EXIT_OK;
}

/* --roofline with --plot: PREFIX-roofline.{png,svg}, the roofline model of
 * this core: x = multiply-adds per byte of item rows (or weights) read,
 * y = GMAC/s; the compute roofs as horizontal lines, the read bandwidth as
 * the slope; each kernel measurement a labelled point. */
static int write_roofline_plot(const bench_ctx *c) {
  const tb_roofline *r = c->roof;
  char dat[4096], gp[4096];
  snprintf(dat, sizeof dat, "%s-roofline.dat", c->plot);
  snprintf(gp, sizeof gp, "%s-roofline.gp", c->plot);
  FILE *f = fopen(dat, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", dat, strerror(errno));
    return EXIT_FAIL;
  }
  fprintf(f, "# intensity_mac_per_byte gmac_per_s label label_dx label_dy\n");
  for (size_t i = 0, shown = 0; i < r->n_kernels; i++) {
    const tb_kernel_roof *k = &r->kernels[i];
    if (!(k->gbps > 0) || !(k->gmacs > 0) || (!c->include_scalar && !strcmp(k->isa, "scalar"))) continue;
    /* labels fan out around their point: kernels of one intensity share an x */
    int side = shown % 2 ? -1 : 1, lift = (int)(shown++ % 4) / 2;
    fprintf(f, "%.6g %.6g \"%s %s%s\" %d %d\n", k->gmacs / k->gbps, k->gmacs, k->kernel, k->isa,
            strstr(k->shape, "store") ? " (store)" : strstr(k->shape, "L2") ? " (L2)" : strstr(k->shape, "n=1,") ? " (n=1)" : " (n=32)",
            side, side * (1 + lift));
  }
  fclose(f);
  const char *base = strrchr(c->plot, '/');
  base = base ? base + 1 : c->plot;
  tb_machine mc;
  tb_machine_describe(&mc);
  f = fopen(gp, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", gp, strerror(errno));
    return EXIT_FAIL;
  }
  fprintf(f,
          "# The roofline of one core with each kernel as a point; written by towerrt bench --roofline --plot.\n"
          "set logscale xy\nset grid\nset key below maxcolumns 3 noenhanced\n"
          "set xlabel 'multiply-adds per byte of item rows / weights read (scalar kernels left out unless --include-scalar)'\nset ylabel 'GMAC/s'\n"
          "set xrange [0.1:1e3]\nset yrange [1:%.0f]\n"
          "bw = %.3f\n"
          "do for [fmt in 'png svg'] {\n"
          "  if (fmt eq 'png') { set terminal png size 1200,800 } else { set terminal svg size 1200,800 dynamic background rgb 'white' }\n"
          "  if (fmt eq 'png' && strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1200,800 font ',10' }\n"
          "  set output '%s-roofline.'.fmt\n"
          "  set title \"towerrt kernels against the roofs of one core: %s%s%s\\n(read bandwidth %.1f GB/s from a %zu MiB buffer; L2-resident points sit left of the slope's reach)\" noenhanced\n"
          "  plot bw * x with lines lw 2 lc rgb 'black' dt 2 title sprintf('DRAM read %%.1f GB/s', bw)",
          4.0 * (r->best_i8 > r->best_f32 ? r->best_i8 : r->best_f32), r->bandwidth, base, mc.cpu,
          getenv("TOWERRT_ISA") ? ", TOWERRT_ISA=" : "", getenv("TOWERRT_ISA") ? getenv("TOWERRT_ISA") : "", r->bandwidth,
          r->buffer_bytes >> 20);
  int lc = 1;
  for (size_t i = 0; i < r->n_peaks; i++) {
    if (strcmp(r->peaks[i].unit, "GMAC/s")) continue;
    fprintf(f, ", \\\n       %.3f with lines lw 2 lc %d title '%s %.0f GMAC/s'", r->peaks[i].value, lc++, r->peaks[i].instruction,
            r->peaks[i].value);
  }
  fprintf(f,
          ", \\\n       '%s-roofline.dat' using 1:2 with points pt 7 ps 1.3 lc rgb '#c00000' title 'kernels (measured)', \\\n"
          "       '' using 1:2:($4 > 0 ? stringcolumn(3) : '') with labels left offset 1,0.4 font ',8' noenhanced notitle, \\\n"
          "       '' using 1:2:($4 < 0 ? stringcolumn(3) : '') with labels right offset -1,-0.4 font ',8' noenhanced notitle\n}\n",
          base);
  fclose(f);
  char prog[4096], cwd[4096], dir[4096], script[4200];
  if (!tb_find_program("gnuplot", prog, sizeof prog)) {
    fprintf(stderr, "towerrt bench: gnuplot is NOT installed: wrote %s and %s only\n", dat, gp);
    return EXIT_OK;
  }
  int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
  snprintf(dir, sizeof dir, "%.*s", (int)(base - c->plot), c->plot);
  if (base != c->plot && chdir(dir) != 0) {
    fprintf(stderr, "towerrt bench: cannot enter '%s': %s\n", dir, strerror(errno));
    return EXIT_FAIL;
  }
  snprintf(script, sizeof script, "%s-roofline.gp", base);
  int rc = run_gnuplot(script);
  if (have_cwd && base != c->plot && chdir(cwd) != 0) fprintf(stderr, "towerrt bench: cannot return to '%s'\n", cwd);
  if (rc != 0) {
    fprintf(stderr, "towerrt bench: gnuplot %s failed (exit %d)\n", gp, rc);
    return EXIT_FAIL;
  }
  if (!c->quiet) fprintf(stderr, "towerrt bench: wrote %s-roofline.png/.svg\n", c->plot);
  return EXIT_OK;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void free_ctx(bench_ctx *c) {
  for (size_t i = 0; i < c->n_models; i++) towerrt_model_free(c->models[i]);
  for (int i = 0; i < N_PREC; i++)
    if (c->stores[i] != c->items) towerrt_items_free(c->stores[i]);
  towerrt_items_free(c->items);
#ifdef TB_HAVE_POOL
  towerrt_pool_free(c->pool);
#endif
  for (size_t d = 0; d < N_DIMS; d++) tb_strlist_free(&c->dim_values[d]);
  free(c->points);
  for (size_t i = 0; c->results && i < c->n_results; i++) free_result(&c->results[i]);
  free(c->results);
  free(c->roof);
  free(c->events);
}

static int run_profile(bench_ctx *c) {
  const char *isa = c->profile_isa ? c->profile_isa : tb_default_isa();
  towerrt_kernels k;
  if (!tb_kernels(isa, &k)) {
    fprintf(stderr, "towerrt bench: --profile-isa %s is not available here\n", isa);
    return EXIT_USAGE;
  }
  towerrt_model *m = model_for(c, k.name);
  if (!m) return EXIT_FAIL;
  uint32_t mask = 0;
  char err[256];
  if (c->profile_fe && !parse_fe(c, c->profile_fe, &mask, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: %s\n", err);
    return EXIT_USAGE;
  }
  tb_point pp;
  memset(&pp, 0, sizeof pp);
  if (!apply_precision(c, &pp, c->profile_precision ? c->profile_precision : "f32", err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-precision: %s\n", err);
    return EXIT_USAGE;
  }
  towerrt_items *items = store_for(c, pp.precision);
  if (!items) return EXIT_FAIL;
  size_t kk = c->profile_k;
  if (!c->quiet) fprintf(stderr, "towerrt bench: profiling %zu requests of k = %zu (isa %s)...\n", c->profile_requests, kk, k.name);
  towerrt_status st = tb_profile_run(m, items, mask, kk, c->profile_requests, c->seed, &c->prof);
  if (st) {
    fprintf(stderr, "towerrt bench: error: profile: %s (%s)\n", tb_last_error(), towerrt_status_name(st));
    return EXIT_FAIL;
  }
  c->have_profile = 1;
  tb_profile_print(&c->prof, stdout);
  return EXIT_OK;
}

int towerrt_bench_main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "compare")) return tb_compare_main(argc - 1, argv + 1);
  bench_ctx c;
  memset(&c, 0, sizeof c);
  c.reuse = 1;
  c.requests = 1000;
  c.warmup = 20;
  c.min_requests = 5;
  c.seconds = 3.0;
  c.roofline_seconds = 0.3;
  c.seed = 42;
  c.profile_k = 1000;
  c.profile_requests = 200;
  c.repetitions = 1;
  size_t cl = (size_t)snprintf(c.command, sizeof c.command, "towerrt");
  for (int i = 0; i < argc && cl < sizeof c.command; i++) cl += (size_t)snprintf(c.command + cl, sizeof c.command - cl, " %s", argv[i]);

  int rc = parse_args(&c, argc, argv);
  if (rc != 1) {
    free_ctx(&c);
    return rc == 2 ? EXIT_OK : EXIT_USAGE;
  }
  c.n_isas = tb_bench_isas(c.isas);
  rc = validate_early(&c);
  if (rc) {
    free_ctx(&c);
    return rc;
  }
  if (c.list_isas) {
    for (size_t i = 0; i < c.n_isas; i++) printf("%s%s\n", c.isas[i], strcmp(c.isas[i], tb_default_isa()) ? "" : " (default)");
    free_ctx(&c);
    return EXIT_OK;
  }
  c.progress = !c.quiet && isatty(fileno(stderr));
  {
    double d[101];
    for (int i = 0; i < 101; i++) {
      uint64_t c0 = tb_cpu_ns(), t0 = tb_now_ns(), t1 = tb_now_ns(), c1 = tb_cpu_ns();
      d[i] = (double)(c1 - c0) - (double)(t1 - t0);
    }
    tb_stats cs;
    tb_stats_compute(d, 101, &cs);
    c.cpu_clock_ns = cs.p50 > 0 ? cs.p50 : 0;
  }
  {
    tb_machine mc;
    tb_machine_describe(&mc);
    c.loadavg_start = mc.loadavg_1m;
  }
  if (c.trace && !(c.events = malloc(TB_TRACE_CAP * sizeof *c.events))) {
    fprintf(stderr, "towerrt bench: out of memory for the trace buffer\n");
    free_ctx(&c);
    return EXIT_FAIL;
  }
  rc = load_inputs(&c);
  if (!rc && !c.no_sweep) rc = build_points(&c);
  if (!rc && !c.no_sweep) {
    c.results = calloc(c.n_points ? c.n_points : 1, sizeof *c.results);
    if (!c.results) rc = EXIT_FAIL;
  }
  if (!rc && !c.no_sweep) {
    tb_machine mc;
    tb_machine_describe(&mc);
    printf("towerrt %s bench on %s (%d logical CPUs, load average %.2f), model %s, %zu items in the store\n",
           towerrt_version_string(), mc.cpu, mc.logical_cpus, mc.loadavg_1m, c.model_path, towerrt_items_count(c.items));
    printf("%zu points; per point up to %zu requests within %.1f s after up to %zu warm-up requests; latency of towerrt_score\n\n",
           c.n_points, c.requests, c.seconds, c.warmup);
    print_header(stdout);
    for (size_t i = 0; i < c.n_points && !rc; i++) {
      rc = run_repetitions(&c, i, &c.results[i]);
      if (!rc) {
        c.n_results++;
        if (c.progress) fprintf(stderr, "\r\033[K");
        print_row(stdout, &c.results[i]);
      }
    }
    if (c.progress) fprintf(stderr, "\r\033[K");
  }
  if (!rc && c.profile) rc = run_profile(&c);
  if (!rc && c.roofline) {
    c.roof = calloc(1, sizeof *c.roof);
    if (!c.roof) rc = EXIT_FAIL;
    else {
      if (!c.quiet) fprintf(stderr, "towerrt bench: measuring the roofline (%.2f s per measurement)...\n", c.roofline_seconds);
      towerrt_status st = tb_roofline_run(c.roof, c.roofline_seconds, c.quiet ? NULL : stderr);
      if (st) {
        fprintf(stderr, "towerrt bench: error: roofline: %s (%s)\n", tb_last_error(), towerrt_status_name(st));
        rc = EXIT_FAIL;
      } else {
        tb_roofline_print(c.roof, stdout);
      }
    }
  }
  if (!rc && c.csv) rc = write_csv(&c);
  if (!rc && c.json) rc = write_json(&c);
  if (!rc && c.plot && c.n_results) rc = write_plot(&c);
  if (!rc && c.trace) rc = write_trace(&c);
  if (!rc && c.plot && c.roof) rc = write_roofline_plot(&c);
  free_ctx(&c);
  return rc;
}
