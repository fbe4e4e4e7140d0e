/* `towerrt bench`: the dimensions' values, usage, argument parsing and
 * the checks made before anything is built (bench_cli_internal.h). */
#include "bench_cli_internal.h"

const char *const k_prec_names[N_PREC] = {"f32", "bf16", "int8"};
const size_t k_prec_bytes[N_PREC] = {4, 2, 1};

static int expand_isa(bench_ctx *c, const char *v, tb_strlist *out, char *err, size_t cap);
static int apply_isa(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_threads(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_k(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);
static int apply_concurrency(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap);

/* Outermost first; k stays last: the plot draws one curve per combination
 * of the other dimensions. */
const tb_dim TB_DIMS[N_DIMS] = {
    {"isa", "--isa", "all", "kernel sets: all (SIMD sets; scalar too with --include-scalar), best, or names (scalar,avx2,...)", expand_isa, apply_isa},
    {"precision", "--precision", "f32", "item store precision: f32, bf16, int8 (quantized copies of the store)", NULL,
     bc_apply_precision},
    {"threads", "--threads", "1", "threads per request (the caller + pool workers)", NULL, apply_threads},
    {"concurrency", "--concurrency", "1", "independent sessions scoring at once, one thread each (the server's regime)", NULL,
     apply_concurrency},
    {"fe_mode", "--fe", "trained,0", "user FE layers: trained, all, or layers joined by '+' (0, 0+1+2)", NULL, bc_apply_fe},
    {"k", "--k", "10,100,1000,10000,100000", "candidates per request", NULL, apply_k},
};
_Static_assert(sizeof TB_DIMS / sizeof TB_DIMS[0] == N_DIMS, "N_DIMS counts TB_DIMS");

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

int bc_apply_precision(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
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

int bc_parse_fe(bench_ctx *c, const char *v, uint32_t *mask, char *err, size_t cap) {
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

int bc_apply_fe(bench_ctx *c, tb_point *p, const char *v, char *err, size_t cap) {
  return bc_parse_fe(c, v, &p->fe_mask, err, cap);
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
          "    --load map|copy    how item stores are loaded (map; copy = TOWERRT_LOAD_COPY, which gets transparent\n"
          "                       huge pages where the kernel grants them; TOWERRT_HUGE_PAGES=off asks for none);\n"
          "                       how each store is held is printed on stderr\n"
          "  outputs (a table on stdout always):\n"
          "    --csv PATH --json PATH\n"
          "    --plot PREFIX      PREFIX-latency.{png,svg}, PREFIX-throughput.{png,svg} with gnuplot\n"
          "                       (with --roofline also PREFIX-roofline.{png,svg}: each kernel as a point under the roofs)\n"
          "                       (PREFIX.dat and PREFIX.gp are written even without gnuplot)\n"
          "    --quiet            no bc_progress line on stderr\n"
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
                                           "load", NULL};
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
  else if (!strcmp(a, "--load")) {
    if (strcmp(v, "map") && strcmp(v, "copy")) {
      fprintf(stderr, "towerrt bench: --load wants map or copy (got '%s')\n", v);
      return 0;
    }
    c->load_copy = !strcmp(v, "copy");
  }
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
int bc_parse_args(bench_ctx *c, int argc, char **argv) {
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
int bc_validate_early(bench_ctx *c) {
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
  c->max_k = 0, c->max_threads = 0; /* set again by bc_build_points */
  tb_point pp;
  towerrt_kernels k;
  uint32_t mask;
  if (c->profile_isa && strcmp(c->profile_isa, "best") && strcmp(c->profile_isa, "auto") && !tb_kernels(c->profile_isa, &k)) {
    fprintf(stderr, "towerrt bench: --profile-isa %s is not available here (see --list-isas)\n", c->profile_isa);
    return EXIT_USAGE;
  }
  if (c->profile_precision && !bc_apply_precision(c, &pp, c->profile_precision, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-precision: %s\n", err);
    return EXIT_USAGE;
  }
  if (c->profile_fe && !bc_parse_fe(c, c->profile_fe, &mask, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-fe: %s\n", err);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}
