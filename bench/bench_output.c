/* `towerrt bench`: the output columns, the table, CSV, JSON and the
 * Chrome trace (bench_cli_internal.h). */
#include "bench_cli_internal.h"

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


/* ---- outputs ---------------------------------------------------------------------------- */

void bc_print_header(FILE *f) {
  for (size_t d = 0; d < N_DIMS; d++) fprintf(f, "%-*s ", d + 1 == N_DIMS ? 8 : 12, TB_DIMS[d].column);
  fprintf(f, "%8s %10s %10s %10s %10s %13s %13s %9s %9s\n", "requests", "p50 us", "p90 us", "p99 us", "p99.9 us", "cands/s", "cands/s@p50",
          "GMAC/s", "req/s");
}

void bc_print_row(FILE *f, const tb_result *r) {
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

int bc_write_csv(const bench_ctx *c) {
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

int bc_write_json(const bench_ctx *c) {
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
int bc_write_trace(const bench_ctx *c) {
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
