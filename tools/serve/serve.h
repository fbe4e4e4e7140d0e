/* towerrt serve: an Open Inference Protocol (KServe v2 REST) server over
 * the public API (include/towerrt.h only). One file per concern:
 *   serve_main.c      options, start-up, signals, drain on SIGTERM
 *   serve_http.c      libmicrohttpd daemon, routing, bodies, responses
 *   serve_protocol.c  v2 JSON (json-c) and binary tensor data, infer
 *   serve_repo.c      model repository, versions, live reload
 *   serve_workers.c   scoring workers (a session each), bounded queue
 *   serve_metrics.c   Prometheus text exposition
 *   serve_log.c       one line per event, text or JSON lines
 * docs/serving.md ("towerrt serve") documents it. */
#ifndef TOWERRT_SERVE_H
#define TOWERRT_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "towerrt.h"

/* ---- configuration (serve_main.c) ---------------------------------------- */
typedef struct serve_config {
  const char *repo_dir;
  const char *host;        /* bind address (default 127.0.0.1) */
  unsigned port;           /* 0: an ephemeral port */
  const char *port_file;   /* where the bound port is written (optional) */
  unsigned threads;        /* scoring workers, one session each */
  unsigned http_threads;   /* libmicrohttpd I/O threads */
  unsigned queue_max;      /* queued requests beyond the workers; 503 past it */
  unsigned timeout_ms;     /* a request still queued after this fails (503) */
  size_t max_body;         /* bytes; 413 past it */
  unsigned conn_timeout_s; /* idle/slow connections are closed after this */
  unsigned conn_limit;     /* open connections at most */
  unsigned poll_ms;        /* repository poll period (0: no polling) */
  unsigned drain_s;        /* SIGTERM: longest wait for requests in flight */
  int enable_admin;        /* /v2/repository/models/{m}/load|unload */
  int log_json, log_requests;
  uint32_t max_k, max_topn; /* defaults for models without config.json */
  const char *isa;
} serve_config;

/* ---- growable text (serve_buf.c) ------------------------------------------- */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_put(sbuf *b, const char *s, size_t n);
void sb_json_string(sbuf *b, const char *s); /* quoted and escaped */
int sb_reserve(sbuf *b, size_t more);

/* A float as 9 significant digits in %g's layout that reads back as the
 * same float (serve_float.c); out holds at least 17 bytes. Returns the length. */
int format_float9(float f, char *out);

/* ---- logging (serve_log.c) ----------------------------------------------- */
void slog_init(int json);
/* One line: level, event, then key/value string pairs ending with NULL. */
void slog(const char *level, const char *event, ...);

/* ---- metrics (serve_metrics.c) ------------------------------------------- */
enum { SM_LAT_BUCKETS = 15 };
/* Failure kinds past the runtime's statuses (labels of failures). */
enum {
  SF_BAD_REQUEST = TOWERRT_STATUS_COUNT_, /* malformed JSON or protocol */
  SF_OVERLOADED,                          /* queue full */
  SF_TIMEOUT,                             /* queued past the request timeout */
  SF_NOT_READY,                           /* no version loaded / draining */
  SF_TOO_LARGE,                           /* body above the limit */
  SF_NOT_FOUND,                           /* a version that is not being served */
  SF_COUNT
};
typedef struct serve_model_stats {
  pthread_mutex_t mu;
  uint64_t requests_ok;
  uint64_t failures[SF_COUNT];
  uint64_t lat_buckets[SM_LAT_BUCKETS + 1]; /* last: +Inf */
  double lat_sum;
  uint64_t score_buckets[SM_LAT_BUCKETS + 1]; /* the library calls alone */
  double score_sum;
  uint64_t candidates;
  uint64_t loads, load_failures;
  long loaded_version; /* -1: none */
} serve_model_stats;
void stats_init(serve_model_stats *s);
/* score_seconds: time in the library's scoring calls (successful requests). */
void stats_request(serve_model_stats *s, int failure /* -1: ok */, double seconds, double score_seconds,
                   size_t candidates);
const char *failure_name(int failure);
/* Global gauges and counters. */
extern atomic_long g_queue_depth, g_in_flight;
void metrics_http_code(int code);
/* Renders the whole exposition (malloc'd, *len set). */
char *metrics_render(size_t *len);

/* ---- repository (serve_repo.c) -------------------------------------------- */
typedef struct serve_version {
  atomic_int refs;
  char name[128];
  long version;
  towerrt_model *model;
  towerrt_items *items;
  towerrt_session **sessions; /* one per worker: sessions[i] belongs to worker i */
  unsigned n_sessions;
  uint32_t max_k, max_topn;
  size_t id_slots, dense_width;
} serve_version;

typedef enum { MS_LOADING, MS_READY, MS_UNAVAILABLE, MS_UNLOADED } model_state;

typedef struct serve_model {
  char name[128];
  serve_version *current; /* guarded by the repository lock */
  model_state state;
  long failed_version;    /* last version that failed to load, or -1 */
  unsigned long long failed_sig; /* its files' signature: retried when they change */
  char reason[512];       /* why it failed */
  serve_model_stats stats;
} serve_model;

int repo_open(const serve_config *cfg, unsigned n_workers);
void repo_close(void);
/* Scans the repository: new models and changed latest versions load
 * beside the old, then switch. only: one model's name or NULL; force:
 * reload even the version already served. Returns 0 if every load asked
 * for succeeded (err gets the first failure). */
int repo_scan(const char *only, int force, char *err, size_t cap);
/* The served version of a model (a reference: version_release it);
 * *model gets the entry (NULL: no such model). version -1: whichever. */
serve_version *repo_acquire(const char *name, long version, serve_model **model);
void version_release(serve_version *v);
serve_model *repo_find(const char *name);
int repo_unload(const char *name);
/* 1 when every model of the repository has a version serving. */
int repo_ready(void);
/* Visits every model (under the repository lock). */
void repo_each(void (*fn)(serve_model *m, void *arg), void *arg);
/* The repository index as v2 JSON (malloc'd). */
char *repo_index_json(size_t *len);
/* Wakes the poller for a rescan now (SIGHUP). */
void repo_request_rescan(void);
int repo_start_poller(void);
void repo_stop_poller(void);

/* ---- protocol (serve_protocol.c) ------------------------------------------ */
typedef struct serve_response {
  int code;
  char *body;         /* malloc'd */
  size_t len;
  size_t header_len;  /* binary tensor data: the JSON part's length, else 0 */
  int failure;        /* -1 or a failure kind for the metrics */
  size_t candidates;
  double score_seconds; /* in towerrt_score / towerrt_score_topn */
} serve_response;

/* Per-worker scratch (grown when a model with a larger max_k arrives). */
typedef struct serve_scratch {
  size_t cap_k, cap_n, cap_user;
  uint64_t *ids;
  float *scores;
  uint64_t *top_ids;
  float *top_scores;
  int64_t *user_ids;
  float *user_dense;
  char *out;
  size_t out_cap;
} serve_scratch;

void response_error(serve_response *r, int code, int failure, const char *fmt, ...);
/* POST /v2/models/{m}/infer: body of len bytes, json_len of them JSON
 * (Inference-Header-Content-Length; len when absent). */
void protocol_infer(serve_version *v, unsigned worker, serve_scratch *s, const char *body, size_t len,
                    size_t json_len, serve_response *r);
void scratch_free(serve_scratch *s);
char *protocol_model_metadata(serve_version *v, size_t *len);
char *protocol_server_metadata(int admin, size_t *len);

/* ---- workers (serve_workers.c) -------------------------------------------- */
typedef struct serve_job {
  char model[128];
  long version;
  const char *body;
  size_t len, json_len;
  double t_arrival, deadline;
  serve_response resp;
  void (*done)(struct serve_job *job); /* called on the worker when finished */
  void *ctx;
  struct serve_job *next;
} serve_job;

int workers_start(unsigned n, unsigned queue_max);
/* 0: queued; -1: the queue is full (the caller answers 503 at once). */
int workers_submit(serve_job *job);
void workers_stop(void);
double now_seconds(void);

/* ---- http (serve_http.c) --------------------------------------------------- */
int http_start(const serve_config *cfg, unsigned *bound_port);
/* Stops accepting new connections (the listening socket is closed). */
void http_quiesce(void);
void http_stop(void);
extern atomic_int g_draining;

int towerrt_serve_main(int argc, char **argv);

#endif
