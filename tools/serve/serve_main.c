/* towerrt serve: options (getopt_long), start-up, signals. Signals are
 * blocked in every thread and taken by the main thread with sigwait:
 * SIGHUP rescans the repository, SIGTERM/SIGINT drain (stop accepting,
 * answer what was accepted, exit 0). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: towerrt serve --model-repository DIR [options]\n"
          "  Open Inference Protocol (KServe v2 REST) server; docs/serving.md, \"towerrt serve\".\n"
          "  --model-repository DIR   one folder per model, numbered versions: DIR/NAME/V/{model.twr,items.twi}\n"
          "  --http-port N            port (default 8000; 0: an ephemeral port, see --port-file)\n"
          "  --host ADDR              IPv4 address to bind (default 127.0.0.1)\n"
          "  --port-file PATH         write the bound port there once listening\n"
          "  --threads N              scoring workers, one session each (default: CPUs online)\n"
          "  --http-threads N         HTTP I/O threads (default 1)\n"
          "  --queue N                requests waiting for a worker at most; 503 beyond (default 64)\n"
          "  --request-timeout-ms N   a request still queued after N ms fails with 503 (default 10000)\n"
          "  --max-body BYTES         request body limit; 413 beyond (default 67108864)\n"
          "  --connection-timeout S   close connections idle or stalled for S seconds (default 30)\n"
          "  --max-connections N      open connections at most (default 1000)\n"
          "  --poll-ms N              rescan the repository every N ms (default 2000; 0: only on SIGHUP/admin)\n"
          "  --drain-timeout S        on SIGTERM, wait at most S seconds for requests in flight (default 30)\n"
          "  --enable-admin           POST /v2/repository/models/{m}/load and /unload\n"
          "  --max-k N, --max-topn N  per-session limits for models without config.json values\n"
          "  --isa NAME               kernel set (default: the best for this CPU)\n"
          "  --log-format text|json   one line per event on stderr (default text)\n"
          "  --log-requests           also one line per inference request\n");
}

static int num(const char *opt, const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
    fprintf(stderr, "towerrt serve: --%s takes a whole number in [%llu, %llu], not '%s'\n", opt, lo, hi, s);
    return 0;
  }
  *out = v;
  return 1;
}

static int parse(int argc, char **argv, serve_config *c) {
  static const struct option opts[] = {
    {"model-repository", 1, 0, 'r'}, {"http-port", 1, 0, 'p'}, {"host", 1, 0, 'H'}, {"port-file", 1, 0, 'P'},
    {"threads", 1, 0, 't'}, {"http-threads", 1, 0, 'T'}, {"queue", 1, 0, 'q'}, {"request-timeout-ms", 1, 0, 'o'},
    {"max-body", 1, 0, 'b'}, {"connection-timeout", 1, 0, 'c'}, {"max-connections", 1, 0, 'C'},
    {"poll-ms", 1, 0, 'l'}, {"drain-timeout", 1, 0, 'd'}, {"enable-admin", 0, 0, 'a'}, {"max-k", 1, 0, 'k'},
    {"max-topn", 1, 0, 'n'}, {"isa", 1, 0, 'i'}, {"log-format", 1, 0, 'f'}, {"log-requests", 0, 0, 'L'},
    {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  *c = (serve_config){.host = "127.0.0.1", .port = 8000, .threads = cpus > 0 ? (unsigned)cpus : 1, .http_threads = 1,
                      .queue_max = 64, .timeout_ms = 10000, .max_body = 64u << 20, .conn_timeout_s = 30,
                      .conn_limit = 1000, .poll_ms = 2000, .drain_s = 30};
  optind = 1;
  opterr = 0;
  int ch;
  unsigned long long v = 0;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    const char *name = optind > 0 && optind <= argc ? argv[optind - 1] + 2 : "";
    int ok = 1;
    switch (ch) {
      case 'r': c->repo_dir = optarg; break;
      case 'H': c->host = optarg; break;
      case 'P': c->port_file = optarg; break;
      case 'i': c->isa = optarg; break;
      case 'a': c->enable_admin = 1; break;
      case 'L': c->log_requests = 1; break;
      case 'f':
        if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
          fprintf(stderr, "towerrt serve: --log-format takes text or json, not '%s'\n", optarg);
          return 0;
        }
        c->log_json = !strcmp(optarg, "json");
        break;
      case 'p': ok = num("http-port", optarg, 0, 65535, &v) && ((c->port = (unsigned)v), 1); break;
      case 't': ok = num("threads", optarg, 1, 256, &v) && ((c->threads = (unsigned)v), 1); break;
      case 'T': ok = num("http-threads", optarg, 1, 64, &v) && ((c->http_threads = (unsigned)v), 1); break;
      case 'q': ok = num("queue", optarg, 1, 1000000, &v) && ((c->queue_max = (unsigned)v), 1); break;
      case 'o': ok = num("request-timeout-ms", optarg, 1, 3600000, &v) && ((c->timeout_ms = (unsigned)v), 1); break;
      /* below 2^31: json-c takes the JSON length as an int */
      case 'b': ok = num("max-body", optarg, 1024, (1ull << 31) - 1, &v) && ((c->max_body = (size_t)v), 1); break;
      case 'c': ok = num("connection-timeout", optarg, 1, 3600, &v) && ((c->conn_timeout_s = (unsigned)v), 1); break;
      case 'C': ok = num("max-connections", optarg, 1, 100000, &v) && ((c->conn_limit = (unsigned)v), 1); break;
      case 'l': ok = num("poll-ms", optarg, 0, 3600000, &v) && ((c->poll_ms = (unsigned)v), 1); break;
      case 'd': ok = num("drain-timeout", optarg, 0, 3600, &v) && ((c->drain_s = (unsigned)v), 1); break;
      case 'k': ok = num("max-k", optarg, 1, 100000000, &v) && ((c->max_k = (uint32_t)v), 1); break;
      case 'n': ok = num("max-topn", optarg, 1, 100000000, &v) && ((c->max_topn = (uint32_t)v), 1); break;
      case 'h': usage(stdout); exit(0);
      case ':': fprintf(stderr, "towerrt serve: %s needs a value\n", argv[optind - 1]); return 0;
      default: fprintf(stderr, "towerrt serve: unknown option '%s'\n", argv[optind - 1]); return 0;
    }
    (void)name;
    if (!ok) return 0;
  }
  if (optind < argc) {
    fprintf(stderr, "towerrt serve: unexpected argument '%s'\n", argv[optind]);
    return 0;
  }
  if (!c->repo_dir) {
    fprintf(stderr, "towerrt serve: --model-repository DIR is required (towerrt serve --help)\n");
    return 0;
  }
  return 1;
}

static int write_port(const char *path, unsigned port) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) || rename(tmp, path)) {
    slog("error", "port_file", "path", path, "error", strerror(errno), NULL);
    return 0;
  }
  return 1;
}

/* Waits for the requests accepted before SIGTERM (bounded by drain_s). */
static int drain(unsigned seconds) {
  double end = now_seconds() + seconds;
  while ((atomic_load(&g_in_flight) > 0 || atomic_load(&g_queue_depth) > 0) && now_seconds() < end) {
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  return atomic_load(&g_in_flight) == 0;
}

static int serve(const serve_config *c) {
  char buf[64];
  if (!repo_open(c, c->threads)) return 1;
  if (!workers_start(c->threads, c->queue_max)) {
    slog("error", "workers_failed", NULL);
    return 1;
  }
  unsigned port = 0;
  if (!http_start(c, &port)) {
    snprintf(buf, sizeof buf, "%u", c->port);
    slog("error", "listen_failed", "host", c->host, "port", buf, NULL);
    workers_stop();
    repo_close();
    return 1;
  }
  snprintf(buf, sizeof buf, "%u", port);
  char th[16];
  snprintf(th, sizeof th, "%u", c->threads);
  slog("info", "listening", "host", c->host, "port", buf, "threads", th, "repository", c->repo_dir, NULL);
  if (c->port_file && !write_port(c->port_file, port)) return http_stop(), workers_stop(), repo_close(), 1;
  repo_start_poller();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig)) continue;
    if (sig != SIGHUP) break;
    slog("info", "sighup", "action", "rescan", NULL);
    repo_request_rescan();
  }
  atomic_store(&g_draining, 1);
  http_quiesce();
  snprintf(buf, sizeof buf, "%ld", atomic_load(&g_in_flight));
  slog("info", "draining", "in_flight", buf, NULL);
  int drained = drain(c->drain_s);
  repo_stop_poller();
  workers_stop(); /* answers whatever is still queued (only past --drain-timeout) */
  if (!drained) drain(2);
  http_stop();
  repo_close();
  slog(drained ? "info" : "warning", drained ? "stopped" : "stopped_undrained", NULL);
  return 0;
}

int towerrt_serve_main(int argc, char **argv) {
  serve_config c;
  if (!parse(argc, argv, &c)) return 2;
  slog_init(c.log_json);
  /* Before any thread starts: every thread inherits the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  return serve(&c);
}
