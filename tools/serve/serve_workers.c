/* Scoring workers: n threads, each owning sessions[i] of every loaded
 * version (a session is used by one thread only) and its own scratch
 * buffers. Requests wait in one FIFO bounded at queue_max: past it the
 * HTTP side answers 503 at once, so memory never grows with the load. A
 * request still queued at its deadline fails (503, TIMEOUT) without being
 * scored; scoring itself is not interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "serve.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static serve_job *g_head, *g_tail;
static unsigned g_queued, g_queue_max, g_n;
static int g_stop;
static pthread_t *g_threads;

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_job(serve_job *job, unsigned worker, serve_scratch *scratch) {
  serve_model *m = NULL;
  serve_version *v = repo_acquire(job->model, job->version, &m);
  if (now_seconds() > job->deadline) {
    response_error(&job->resp, 503, SF_TIMEOUT, "request waited in the queue past its timeout");
  } else if (!m) {
    response_error(&job->resp, 404, -1, "model '%s' is not in the repository", job->model);
  } else if (!v && job->version >= 0) {
    response_error(&job->resp, 404, SF_NOT_FOUND, "model '%s' version %ld is not being served", job->model, job->version);
  } else if (!v) {
    response_error(&job->resp, 503, SF_NOT_READY, "model '%s' has no version loaded", job->model);
  } else {
    protocol_infer(v, worker, scratch, job->body, job->len, job->json_len, &job->resp);
  }
  if (m)
    stats_request(&m->stats, job->resp.failure, now_seconds() - job->t_arrival, job->resp.score_seconds,
                  job->resp.candidates);
  version_release(v);
}

static void *worker_main(void *arg) {
  unsigned worker = (unsigned)(size_t)arg;
  serve_scratch scratch = {0};
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!g_head && !g_stop) pthread_cond_wait(&g_cv, &g_mu);
    if (!g_head) break; /* stopping, and the queue is empty */
    serve_job *job = g_head;
    g_head = job->next;
    if (!g_head) g_tail = NULL;
    g_queued--;
    atomic_fetch_sub(&g_queue_depth, 1);
    pthread_mutex_unlock(&g_mu);
    run_job(job, worker, &scratch);
    job->done(job);
    pthread_mutex_lock(&g_mu);
  }
  pthread_mutex_unlock(&g_mu);
  scratch_free(&scratch);
  return NULL;
}

int workers_start(unsigned n, unsigned queue_max) {
  g_queue_max = queue_max;
  g_threads = calloc(n, sizeof *g_threads);
  if (!g_threads) return 0;
  for (g_n = 0; g_n < n; g_n++)
    if (pthread_create(&g_threads[g_n], NULL, worker_main, (void *)(size_t)g_n)) return 0;
  return 1;
}

int workers_submit(serve_job *job) {
  pthread_mutex_lock(&g_mu);
  if (g_queued >= g_queue_max || g_stop) {
    pthread_mutex_unlock(&g_mu);
    return -1;
  }
  job->next = NULL;
  if (g_tail) g_tail->next = job;
  else g_head = job;
  g_tail = job;
  g_queued++;
  atomic_fetch_add(&g_queue_depth, 1);
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return 0;
}

/* Finishes what is queued, then joins the workers. */
void workers_stop(void) {
  pthread_mutex_lock(&g_mu);
  g_stop = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (unsigned i = 0; i < g_n; i++) pthread_join(g_threads[i], NULL);
  free(g_threads);
  g_threads = NULL;
  g_n = 0;
}
