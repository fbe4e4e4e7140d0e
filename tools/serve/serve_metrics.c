/* Prometheus text exposition (format 0.0.4) on GET /metrics: per model,
 * requests and failures by status, a latency histogram, candidates scored,
 * the loaded version, loads and load failures; globally, HTTP responses by
 * code, queue depth and requests in flight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

atomic_long g_queue_depth, g_in_flight;

/* Seconds; the last bucket (+Inf) is implicit. */
static const double k_lat_bounds[SM_LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,   0.5,   1,      2.5,   5,     10,   30};

/* HTTP codes the server answers, counted globally (no model label: the
 * name of an unknown model comes from the client). */
static const int k_codes[] = {200, 400, 403, 404, 405, 413, 500, 503};
enum { N_CODES = sizeof k_codes / sizeof k_codes[0] };
static atomic_ulong g_http[N_CODES + 1];

void metrics_http_code(int code) {
  size_t i = 0;
  while (i < N_CODES && k_codes[i] != code) i++;
  atomic_fetch_add(&g_http[i], 1);
}

void stats_init(serve_model_stats *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->loaded_version = -1;
}

const char *failure_name(int f) {
  switch (f) {
    case SF_BAD_REQUEST: return "BAD_REQUEST";
    case SF_OVERLOADED: return "OVERLOADED";
    case SF_TIMEOUT: return "TIMEOUT";
    case SF_NOT_READY: return "NOT_READY";
    case SF_TOO_LARGE: return "TOO_LARGE";
    case SF_NOT_FOUND: return "NOT_FOUND";
    default: return towerrt_status_name((towerrt_status)f);
  }
}

static size_t bucket(double seconds) {
  size_t b = 0;
  while (b < SM_LAT_BUCKETS && seconds > k_lat_bounds[b]) b++;
  return b;
}

void stats_request(serve_model_stats *s, int failure, double seconds, double score_seconds, size_t candidates) {
  size_t b = bucket(seconds), sb = bucket(score_seconds);
  pthread_mutex_lock(&s->mu);
  if (failure < 0) {
    s->requests_ok++;
    s->candidates += candidates;
    s->score_buckets[sb]++;
    s->score_sum += score_seconds;
  } else {
    s->failures[failure]++;
  }
  s->lat_buckets[b]++;
  s->lat_sum += seconds;
  pthread_mutex_unlock(&s->mu);
}

static void help(sbuf *b, const char *name, const char *type, const char *text) {
  sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void histogram(sbuf *b, const char *name, const char *model, const uint64_t *buckets, double sum) {
  uint64_t cum = 0;
  for (int i = 0; i <= SM_LAT_BUCKETS; i++) {
    cum += buckets[i];
    if (i < SM_LAT_BUCKETS)
      sb_printf(b, "%s_bucket{model=\"%s\",le=\"%g\"} %llu\n", name, model, k_lat_bounds[i], (unsigned long long)cum);
    else
      sb_printf(b, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name, model, (unsigned long long)cum);
  }
  sb_printf(b, "%s_sum{model=\"%s\"} %.9g\n", name, model, sum);
  sb_printf(b, "%s_count{model=\"%s\"} %llu\n", name, model, (unsigned long long)cum);
}

/* One metric family per pass over the models (the format wants a family's
 * samples together). */
typedef struct pass {
  sbuf *b;
  int which;
} pass;

static void model_samples(serve_model *m, void *arg) {
  pass *p = arg;
  sbuf *b = p->b;
  serve_model_stats s;
  pthread_mutex_lock(&m->stats.mu);
  s = m->stats;
  pthread_mutex_unlock(&m->stats.mu);
  const char *n = m->name; /* repository names are [A-Za-z0-9_.-]: no escaping needed */
  switch (p->which) {
    case 0: {
      uint64_t failed = 0;
      for (int f = 0; f < SF_COUNT; f++) failed += s.failures[f];
      sb_printf(b, "towerrt_infer_requests_total{model=\"%s\",outcome=\"success\"} %llu\n", n,
                (unsigned long long)s.requests_ok);
      sb_printf(b, "towerrt_infer_requests_total{model=\"%s\",outcome=\"failure\"} %llu\n", n,
                (unsigned long long)failed);
      break;
    }
    case 1:
      for (int f = 1; f < SF_COUNT; f++) /* 0 is TOWERRT_OK */
        sb_printf(b, "towerrt_infer_failures_total{model=\"%s\",status=\"%s\"} %llu\n", n, failure_name(f),
                  (unsigned long long)s.failures[f]);
      break;
    case 2:
      histogram(b, "towerrt_infer_duration_seconds", n, s.lat_buckets, s.lat_sum);
      break;
    case 7:
      histogram(b, "towerrt_score_duration_seconds", n, s.score_buckets, s.score_sum);
      break;
    case 3:
      sb_printf(b, "towerrt_candidates_scored_total{model=\"%s\"} %llu\n", n, (unsigned long long)s.candidates);
      break;
    case 4:
      sb_printf(b, "towerrt_model_loaded_version{model=\"%s\"} %ld\n", n, s.loaded_version);
      break;
    case 5:
      sb_printf(b, "towerrt_model_loads_total{model=\"%s\"} %llu\n", n, (unsigned long long)s.loads);
      break;
    case 6:
      sb_printf(b, "towerrt_model_load_failures_total{model=\"%s\"} %llu\n", n, (unsigned long long)s.load_failures);
      break;
  }
}

char *metrics_render(size_t *len) {
  sbuf b = {0};
  static const char *fam[][3] = {
    {"towerrt_infer_requests_total", "counter", "Inference requests by model and outcome."},
    {"towerrt_infer_failures_total", "counter", "Failed inference requests by model and status (runtime status name or server reason)."},
    {"towerrt_infer_duration_seconds", "histogram", "Inference request latency, arrival to response, by model."},
    {"towerrt_candidates_scored_total", "counter", "Candidates scored by successful requests."},
    {"towerrt_model_loaded_version", "gauge", "Version being served (-1: none)."},
    {"towerrt_model_loads_total", "counter", "Successful version loads."},
    {"towerrt_model_load_failures_total", "counter", "Version loads that failed (the old version kept serving)."},
    {"towerrt_score_duration_seconds", "histogram", "Time in the library's scoring calls of successful requests, by model."},
  };
  for (int i = 0; i < 8; i++) {
    help(&b, fam[i][0], fam[i][1], fam[i][2]);
    pass p = {&b, i};
    repo_each(model_samples, &p);
  }
  help(&b, "towerrt_http_responses_total", "counter", "HTTP responses by code (every endpoint).");
  for (size_t i = 0; i <= N_CODES; i++) {
    unsigned long v = atomic_load(&g_http[i]);
    if (i < N_CODES) sb_printf(&b, "towerrt_http_responses_total{code=\"%d\"} %lu\n", k_codes[i], v);
    else sb_printf(&b, "towerrt_http_responses_total{code=\"other\"} %lu\n", v);
  }
  help(&b, "towerrt_queue_depth", "gauge", "Requests waiting for a worker.");
  sb_printf(&b, "towerrt_queue_depth %ld\n", atomic_load(&g_queue_depth));
  help(&b, "towerrt_requests_in_flight", "gauge", "Inference requests accepted and not yet answered.");
  sb_printf(&b, "towerrt_requests_in_flight %ld\n", atomic_load(&g_in_flight));
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
