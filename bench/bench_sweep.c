/* `towerrt bench`: models and stores per point, the points of the sweep,
 * the worker threads that score and time requests, a point's run and its
 * repetitions (bench_cli_internal.h). */
#include "bench_cli_internal.h"

/* ---- model and store ------------------------------------------------------------------ */

towerrt_model *bc_model_for(bench_ctx *c, const char *isa) {
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

/* A store as --load asks; says on stderr how its heads are held (mapped or
 * copied, huge pages asked for and granted: towerrt_items_describe). */
static towerrt_status load_store(const bench_ctx *c, const char *path, towerrt_items **out) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.load_mode = c->load_copy ? TOWERRT_LOAD_COPY : TOWERRT_LOAD_MAP;
  towerrt_status st = towerrt_items_load(path, &o, out);
  if (st || c->quiet) return st;
  char text[1024];
  towerrt_items_describe(*out, text, sizeof text);
  fprintf(stderr, "towerrt bench: %s: %s", path, text);
  return st;
}

int bc_load_inputs(bench_ctx *c) {
  if (c->synthetic) { /* the options were checked by bc_validate_early */
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
  towerrt_status st = load_store(c, c->items_path, &c->items);
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
  c->first = bc_model_for(c, tb_default_isa());
  return c->first ? EXIT_OK : EXIT_FAIL;
}

/* The store at a precision: the loaded one for f32, else a quantized copy
 * (towerrt_items_quantize) written next to the synthetic files or in
 * --workdir (default $TMPDIR/towerrt-bench-<hash of the store path>). */
towerrt_items *bc_store_for(bench_ctx *c, int prec) {
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
  if (fresh && load_store(c, path, &q) == TOWERRT_OK && towerrt_items_count(q) == towerrt_items_count(c->items)) {
    c->stores[prec] = q;
    return q;
  }
  towerrt_items_free(q);
  q = NULL;
  if (!c->quiet) fprintf(stderr, "towerrt bench: writing the %s copy of the item store to %s\n", k_prec_names[prec], path);
  towerrt_precision tp = prec == PREC_BF16 ? TOWERRT_PRECISION_BF16 : TOWERRT_PRECISION_INT8;
  towerrt_status st = towerrt_items_quantize(c->items, tp, path);
  if (!st) st = load_store(c, path, &q);
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

int bc_build_points(bench_ctx *c) {
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
      if (TB_DIMS[d].apply == bc_apply_fe) {
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

void bc_progress(bench_ctx *c, size_t i, const tb_point *p, size_t done, size_t want, const char *phase) {
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
 * barrier). Worker 0 runs on the calling thread and shows the bc_progress. */
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
      bc_progress(c, w->point, p, r + 1, c->warmup, "warm-up");
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
      bc_progress(c, w->point, p, w->n, c->requests, "requests");
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
  towerrt_model *m = bc_model_for(c, p->isa);
  towerrt_items *items = bc_store_for(c, p->precision);
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

void bc_free_result(tb_result *r) {
  free(r->rep_p50_us), free(r->rep_cps), free(r->samples_us);
  r->rep_p50_us = r->rep_cps = r->samples_us = NULL;
}

/* The point --repetitions times; keeps the repetition whose p50 is the
 * median (the lower one of an even count) with the spread of all. */
int bc_run_repetitions(bench_ctx *c, size_t i, tb_result *res) {
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
  for (size_t a = 0; all && a < done; a++) bc_free_result(&all[a]);
  free(all), free(p50), free(cps);
  return rc;
}
