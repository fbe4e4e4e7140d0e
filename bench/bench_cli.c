/* `towerrt bench` (bench_cli.h): sweeps candidate counts, FE modes and
 * kernel sets over many random requests and reports latency percentiles
 * and throughput; writes CSV, JSON and gnuplot curves; profiles the steps
 * of one request; measures the roofline.
 *
 * The sweep is the Cartesian product of the dimensions in TB_DIMS
 * (bench_args.c). A point (tb_point) holds one value of each; adding a
 * dimension (threads, precision) is one line in TB_DIMS (and N_DIMS), its
 * field in tb_point and the function that applies a value; the CSV and
 * JSON columns, the progress line and the plot series follow the table.
 * The command's files are listed in bench_cli_internal.h; this one runs
 * them in order. */
#include "bench_cli.h"

#include "bench_cli_internal.h"

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
  for (size_t i = 0; c->results && i < c->n_results; i++) bc_free_result(&c->results[i]);
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
  towerrt_model *m = bc_model_for(c, k.name);
  if (!m) return EXIT_FAIL;
  uint32_t mask = 0;
  char err[256];
  if (c->profile_fe && !bc_parse_fe(c, c->profile_fe, &mask, err, sizeof err)) {
    fprintf(stderr, "towerrt bench: %s\n", err);
    return EXIT_USAGE;
  }
  tb_point pp;
  memset(&pp, 0, sizeof pp);
  if (!bc_apply_precision(c, &pp, c->profile_precision ? c->profile_precision : "f32", err, sizeof err)) {
    fprintf(stderr, "towerrt bench: --profile-precision: %s\n", err);
    return EXIT_USAGE;
  }
  towerrt_items *items = bc_store_for(c, pp.precision);
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
  /* the command as a user types it, whichever binary ran (argv[0]) */
  size_t cl = (size_t)snprintf(c.command, sizeof c.command, "towerrt bench");
  for (int i = 1; i < argc && cl < sizeof c.command; i++) cl += (size_t)snprintf(c.command + cl, sizeof c.command - cl, " %s", argv[i]);

  int rc = bc_parse_args(&c, argc, argv);
  if (rc != 1) {
    free_ctx(&c);
    return rc == 2 ? EXIT_OK : EXIT_USAGE;
  }
  c.n_isas = tb_bench_isas(c.isas);
  rc = bc_validate_early(&c);
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
  rc = bc_load_inputs(&c);
  if (!rc && !c.no_sweep) rc = bc_build_points(&c);
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
    bc_print_header(stdout);
    for (size_t i = 0; i < c.n_points && !rc; i++) {
      rc = bc_run_repetitions(&c, i, &c.results[i]);
      if (!rc) {
        c.n_results++;
        if (c.progress) fprintf(stderr, "\r\033[K");
        bc_print_row(stdout, &c.results[i]);
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
  if (!rc && c.csv) rc = bc_write_csv(&c);
  if (!rc && c.json) rc = bc_write_json(&c);
  if (!rc && c.plot && c.n_results) rc = bc_write_plot(&c);
  if (!rc && c.trace) rc = bc_write_trace(&c);
  if (!rc && c.plot && c.roof) rc = bc_write_roofline_plot(&c);
  free_ctx(&c);
  return rc;
}
