/* Shared by the files of `towerrt bench` (bench_cli.h): the sweep's
 * points and dimensions, a point's result, the command's state, and the
 * functions one file calls in another:
 *   bench_args.c    the dimensions' values, usage, argument parsing and checks
 *   bench_sweep.c   models and stores, the points, the workers, a point's run
 *   bench_output.c  the table, CSV, JSON and trace outputs
 *   bench_plot.c    the gnuplot curves and the roofline plot
 *   bench_cli.c     towerrt_bench_main: the order of it all
 * Internal to bench/. */
#ifndef TOWERRT_BENCH_CLI_INTERNAL_H
#define TOWERRT_BENCH_CLI_INTERNAL_H

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
extern const char *const k_prec_names[N_PREC]; /* bench_args.c */
extern const size_t k_prec_bytes[N_PREC];

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

/* The dimensions of the sweep (bench_args.c), outermost first. */
#define N_DIMS 6
extern const tb_dim TB_DIMS[N_DIMS];


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
  int load_copy; /* --load copy: stores loaded with TOWERRT_LOAD_COPY */
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


/* ---- across the files -------------------------------------------------------- */

int bc_apply_fe(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
int bc_apply_precision(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
int bc_build_points(bench_ctx *c);
void bc_free_result(tb_result *r);
int bc_load_inputs(bench_ctx *c);
towerrt_model *bc_model_for(bench_ctx *c, const char *isa);
int bc_parse_args(bench_ctx *c, int argc, char **argv);
int bc_parse_fe(bench_ctx *c, const char *v, uint32_t *mask, char *err, size_t cap);
void bc_print_header(FILE *f);
void bc_print_row(FILE *f, const tb_result *r);
void bc_progress(bench_ctx *c, size_t i, const tb_point *p, size_t done, size_t want, const char *phase);
int bc_run_repetitions(bench_ctx *c, size_t i, tb_result *res);
towerrt_items *bc_store_for(bench_ctx *c, int prec);
int bc_validate_early(bench_ctx *c);
int bc_write_csv(const bench_ctx *c);
int bc_write_json(const bench_ctx *c);
int bc_write_plot(const bench_ctx *c);
int bc_write_roofline_plot(const bench_ctx *c);
int bc_write_trace(const bench_ctx *c);

#endif
