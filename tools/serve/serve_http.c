/* HTTP/1.1 on libmicrohttpd: epoll I/O threads read whole requests and
 * write responses; inference goes to the workers' queue and the
 * connection is suspended until a worker resumes it, so a slow or idle
 * client costs a connection slot (closed after --connection-timeout), never
 * a worker. Routes (KServe v2 REST):
 *   GET  /v2/health/live, /v2/health/ready, /v2, /metrics
 *   GET  /v2/models/{m}[/versions/{v}], .../ready
 *   POST /v2/models/{m}[/versions/{v}]/infer
 *   GET|POST /v2/repository/index
 *   POST /v2/repository/models/{m}/load|unload   (--enable-admin) */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "serve.h"

#include <unistd.h>

#if MHD_VERSION < 0x00097002
#define MHD_RESULT int
#else
#define MHD_RESULT enum MHD_Result
#endif

atomic_int g_draining;
static struct MHD_Daemon *g_daemon;
static const serve_config *g_cfg;

enum { RX_RECEIVING, RX_QUEUED, RX_DONE };

typedef struct req_ctx {
  char *body;
  size_t len, cap;
  int too_big, counted;
  atomic_int state;
  double t_arrival;
  struct MHD_Connection *conn;
  serve_job job;
} req_ctx;

static MHD_RESULT send_buf(struct MHD_Connection *c, int code, char *body, size_t len, const char *type,
                           size_t header_len, int close) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) return free(body), MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (header_len) {
    char n[32];
    snprintf(n, sizeof n, "%zu", header_len);
    MHD_add_response_header(r, "Inference-Header-Content-Length", n);
  }
  if (close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  MHD_RESULT ok = MHD_queue_response(c, (unsigned)code, r);
  MHD_destroy_response(r);
  metrics_http_code(code);
  return ok;
}

static MHD_RESULT send_json(struct MHD_Connection *c, int code, char *body, size_t len) {
  if (!body) return send_buf(c, 500, NULL, 0, "application/json", 0, 1);
  /* 413: the rest of the body was not read, the connection cannot go on */
  return send_buf(c, code, body, len, "application/json", 0, code == 413 || atomic_load(&g_draining));
}

static MHD_RESULT send_error(struct MHD_Connection *c, int code, const char *fmt, const char *a) {
  serve_response r = {0};
  response_error(&r, code, -1, fmt, a);
  return send_json(c, code, r.body, r.len);
}

/* Splits "/v2/models/NAME[/versions/V][/TAIL]" */
static int parse_model_path(const char *url, char *name, size_t cap, long *version, const char **tail) {
  const char *p = url + strlen("/v2/models/");
  size_t n = strcspn(p, "/");
  if (n == 0 || n >= cap) return 0;
  memcpy(name, p, n);
  name[n] = 0;
  p += n;
  *version = -1;
  if (!strncmp(p, "/versions/", 10)) {
    p += 10;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0) return 0;
    *version = v;
    p = end;
  }
  *tail = p;
  return 1;
}

static void job_done(serve_job *job) {
  req_ctx *rx = job->ctx;
  atomic_store(&rx->state, RX_DONE);
  MHD_resume_connection(rx->conn);
}

static MHD_RESULT infer(req_ctx *rx, struct MHD_Connection *c, const char *name, long version) {
  if (atomic_load(&g_draining)) return send_error(c, 503, "%s", "the server is shutting down");
  serve_job *job = &rx->job;
  snprintf(job->model, sizeof job->model, "%s", name);
  job->version = version;
  job->body = rx->body ? rx->body : "";
  job->len = rx->len;
  job->json_len = rx->len;
  const char *hl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
  if (hl) {
    char *end;
    unsigned long long v = strtoull(hl, &end, 10);
    if (*end || end == hl || v > rx->len)
      return send_error(c, 400, "TOWERRT_ERR_FORMAT: Inference-Header-Content-Length '%s' is not a length within the body", hl);
    job->json_len = (size_t)v;
  }
  job->t_arrival = rx->t_arrival;
  job->deadline = rx->t_arrival + g_cfg->timeout_ms * 1e-3;
  job->done = job_done;
  job->ctx = rx;
  job->resp.failure = -1;
  atomic_store(&rx->state, RX_QUEUED);
  atomic_fetch_add(&g_in_flight, 1);
  rx->counted = 1;
  MHD_suspend_connection(c);
  if (workers_submit(job) < 0) {
    serve_model *m = repo_find(name);
    response_error(&job->resp, 503, SF_OVERLOADED, "server overloaded: %u requests already queued", g_cfg->queue_max);
    if (m) stats_request(&m->stats, SF_OVERLOADED, now_seconds() - rx->t_arrival, 0, 0);
    atomic_store(&rx->state, RX_DONE);
    MHD_resume_connection(c);
  }
  return MHD_YES;
}

static MHD_RESULT model_get(struct MHD_Connection *c, const char *name, long version, const char *tail) {
  serve_model *m = NULL;
  serve_version *v = repo_acquire(name, version, &m);
  MHD_RESULT ok;
  if (!m) ok = send_error(c, 404, "model '%s' is not in the repository", name);
  else if (!strcmp(tail, "/ready")) ok = v ? send_buf(c, 200, NULL, 0, "application/json", 0, 0)
                                            : send_error(c, 503, "model '%s' is not ready", name);
  else if (*tail) ok = send_error(c, 404, "unknown endpoint under model '%s'", name);
  else if (!v) ok = send_error(c, version >= 0 ? 404 : 503, "model '%s': that version is not being served", name);
  else {
    size_t len = 0;
    char *b = protocol_model_metadata(v, &len);
    ok = send_json(c, 200, b, len);
  }
  version_release(v);
  return ok;
}

static MHD_RESULT repository(struct MHD_Connection *c, const char *url, const char *method) {
  if (!strcmp(url, "/v2/repository/index")) {
    size_t len = 0;
    char *b = repo_index_json(&len);
    return send_json(c, 200, b, len);
  }
  if (!g_cfg->enable_admin)
    return send_error(c, 403, "%s: the repository endpoints are off (start the server with --enable-admin)", url);
  char name[128];
  const char *p = url + strlen("/v2/repository/models/");
  size_t n = strncmp(url, "/v2/repository/models/", 22) ? 0 : strcspn(p, "/");
  if (!n || n >= sizeof name || strcmp(method, "POST")) return send_error(c, 404, "unknown endpoint %s", url);
  memcpy(name, p, n);
  name[n] = 0;
  if (!strcmp(p + n, "/load")) {
    char err[1024];
    if (!repo_scan(name, 1, err, sizeof err)) return send_error(c, 400, "%s", err);
    return send_buf(c, 200, NULL, 0, "application/json", 0, 0);
  }
  if (!strcmp(p + n, "/unload"))
    return repo_unload(name) ? send_buf(c, 200, NULL, 0, "application/json", 0, 0)
                             : send_error(c, 404, "model '%s' is not in the repository", name);
  return send_error(c, 404, "unknown endpoint %s", url);
}

static MHD_RESULT route(req_ctx *rx, struct MHD_Connection *c, const char *url, const char *method) {
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
  if (rx->too_big) return send_error(c, 413, "%s", "TOWERRT_ERR_LIMIT: the request body is above the server's limit (--max-body)");
  if (!strcmp(url, "/v2/health/live") && get) return send_buf(c, 200, NULL, 0, "application/json", 0, 0);
  if (!strcmp(url, "/v2/health/ready") && get)
    return repo_ready() && !atomic_load(&g_draining) ? send_buf(c, 200, NULL, 0, "application/json", 0, 0)
                                                     : send_error(c, 503, "%s", "not ready: a model has no version loaded, or the server is draining");
  if (!strcmp(url, "/v2") && get) {
    size_t len = 0;
    char *b = protocol_server_metadata(g_cfg->enable_admin, &len);
    return send_json(c, 200, b, len);
  }
  if (!strcmp(url, "/metrics") && get) {
    size_t len = 0;
    char *b = metrics_render(&len);
    return b ? send_buf(c, 200, b, len, "text/plain; version=0.0.4", 0, 0) : send_json(c, 500, NULL, 0);
  }
  if (!strncmp(url, "/v2/repository/", 15) && (get || post)) return repository(c, url, method);
  if (!strncmp(url, "/v2/models/", 11)) {
    char name[128];
    long version;
    const char *tail;
    if (!parse_model_path(url, name, sizeof name, &version, &tail)) return send_error(c, 404, "bad model path %s", url);
    if (!strcmp(tail, "/infer")) return post ? infer(rx, c, name, version) : send_error(c, 405, "%s takes POST", url);
    if (get) return model_get(c, name, version, tail);
  }
  return send_error(c, 404, "unknown endpoint %s", url);
}

/* The body arrives in pieces; past --max-body it is dropped and 413 sent. */
static void take_body(req_ctx *rx, const char *data, size_t n) {
  if (rx->too_big) return;
  if (rx->len + n > g_cfg->max_body) {
    rx->too_big = 1;
    free(rx->body);
    rx->body = NULL;
    return;
  }
  if (rx->len + n > rx->cap) {
    size_t cap = rx->cap ? rx->cap * 2 : 4096;
    while (cap < rx->len + n) cap *= 2;
    char *b = realloc(rx->body, cap);
    if (!b) {
      rx->too_big = 1;
      return;
    }
    rx->body = b;
    rx->cap = cap;
  }
  memcpy(rx->body + rx->len, data, n);
  rx->len += n;
}

static MHD_RESULT handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                          const char *version, const char *data, size_t *data_size, void **con_cls) {
  (void)cls, (void)version;
  req_ctx *rx = *con_cls;
  if (!rx) {
    rx = calloc(1, sizeof *rx);
    if (!rx) return MHD_NO;
    rx->conn = c;
    rx->t_arrival = now_seconds();
    *con_cls = rx;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > g_cfg->max_body) { /* refused before reading it */
      rx->too_big = 1;
      return route(rx, c, url, method);
    }
    if (cl && (rx->cap = strtoull(cl, NULL, 10)) > 0 && !(rx->body = malloc(rx->cap))) rx->cap = 0;
    return MHD_YES;
  }
  if (*data_size) {
    take_body(rx, data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
  int state = atomic_load(&rx->state);
  if (state == RX_RECEIVING) return route(rx, c, url, method);
  if (state != RX_DONE) return MHD_YES; /* not expected: resumed only when done */
  serve_response *r = &rx->job.resp;
  if (g_cfg->log_requests || r->code >= 500) {
    char code[8], ms[32];
    snprintf(code, sizeof code, "%d", r->code);
    snprintf(ms, sizeof ms, "%.3f", (now_seconds() - rx->t_arrival) * 1e3);
    slog(r->code >= 500 ? "warning" : "info", "infer", "model", rx->job.model, "code", code, "ms", ms,
         r->code == 200 ? NULL : "error", r->code == 200 ? NULL : r->body, NULL);
  }
  MHD_RESULT ok = send_buf(c, r->code, r->body, r->len, r->header_len ? "application/octet-stream" : "application/json",
                           r->header_len, atomic_load(&g_draining));
  r->body = NULL; /* MHD owns it now */
  atomic_fetch_sub(&g_in_flight, 1);
  rx->counted = 0;
  return ok;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  req_ctx *rx = *con_cls;
  if (!rx) return;
  if (rx->counted) atomic_fetch_sub(&g_in_flight, 1);
  free(rx->job.resp.body);
  free(rx->body);
  free(rx);
  *con_cls = NULL;
}

int http_start(const serve_config *cfg, unsigned *bound_port) {
  g_cfg = cfg;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)cfg->port);
  if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
    slog("error", "bad_address", "host", cfg->host, NULL);
    return 0;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  struct MHD_OptionItem ops[] = {
    {MHD_OPTION_SOCK_ADDR, 0, &addr},
    {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->conn_timeout_s, NULL},
    {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->conn_limit, NULL},
    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
    {cfg->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)cfg->http_threads, NULL},
    {MHD_OPTION_END, 0, NULL}};
  g_daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handler, NULL, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
  if (!g_daemon) return 0;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(g_daemon, MHD_DAEMON_INFO_BIND_PORT);
  *bound_port = info ? info->port : cfg->port;
  return 1;
}

void http_quiesce(void) {
  if (!g_daemon) return;
  MHD_socket s = MHD_quiesce_daemon(g_daemon);
  if (s != MHD_INVALID_SOCKET) close(s);
}

void http_stop(void) {
  if (g_daemon) MHD_stop_daemon(g_daemon);
  g_daemon = NULL;
}
