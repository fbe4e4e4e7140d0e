/* towerrt build-items: item features file -> item store (.twi), streamed in
 * chunks (memory does not grow with the catalog except for the id map),
 * optionally one shard of n (docs/item-stores.md). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "text_input.h"
#include "tools/cli.h"

#define DEFAULT_CHUNK 16384

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Parses a whole decimal number in [lo, hi]. */
static int parse_uint(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
  if (!s || !*s || *s == '-' || *s == '+') return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

/* "i/n" with 0 <= i < n. */
static int parse_shard(const char *s, uint32_t *i, uint32_t *n) {
  const char *slash = strchr(s, '/');
  if (!slash || slash == s || slash - s > 20) return 0;
  char head[24];
  memcpy(head, s, (size_t)(slash - s));
  head[slash - s] = '\0';
  unsigned long long a, b;
  if (!parse_uint(head, 0, UINT32_MAX, &a) || !parse_uint(slash + 1, 1, UINT32_MAX, &b) || a >= b) return 0;
  *i = (uint32_t)a;
  *n = (uint32_t)b;
  return 1;
}

static void fmt_duration(double s, char *buf, size_t cap) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, cap, "?");
    return;
  }
  unsigned long t = (unsigned long)(s + 0.5);
  snprintf(buf, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
}

typedef struct progress {
  int on; /* 0 off, 1 a terminal (one line redrawn), 2 a log (a line every 10 s) */
  double t0, last;
  long long input_size; /* bytes, or -1 when unknown (a pipe) */
  FILE *in;
} progress;

static void progress_show(progress *p, const towerrt_items_builder *b, int final) {
  if (!p->on) return;
  double t = now_s();
  if (!final && t - p->last < (p->on == 2 ? 10.0 : 0.25)) return;
  p->last = t;
  unsigned long long seen = towerrt_items_builder_seen(b), kept = towerrt_items_builder_rows(b);
  double rate = t > p->t0 ? (double)seen / (t - p->t0) : 0.0;
  char eta[64] = "";
  if (p->input_size > 0) {
    off_t pos = ftello(p->in);
    double frac = pos > 0 ? (double)pos / (double)p->input_size : 0.0;
    if (frac > 1.0) frac = 1.0;
    char d[24];
    fmt_duration(frac > 0 ? (t - p->t0) * (1.0 - frac) / frac : -1, d, sizeof d);
    snprintf(eta, sizeof eta, ", %3.0f%%, ETA %s", 100.0 * frac, final ? "0:00:00" : d);
  }
  const char *start = p->on == 1 ? "\r" : "", *end = p->on == 1 ? "   " : "\n";
  if (kept != seen) fprintf(stderr, "%stowerrt: %llu rows read, %llu kept, %.0f rows/s%s%s", start, seen, kept, rate, eta, end);
  else fprintf(stderr, "%stowerrt: %llu rows, %.0f rows/s%s%s", start, seen, rate, eta, end);
  if (final && p->on == 1) fputc('\n', stderr);
  fflush(stderr);
}

static int usage(int help) {
  puts("usage: towerrt build-items --model M.twr --features ITEMS.txt --out STORE.twi\n"
       "                           [--shard i/n] [--chunk ROWS] [--threads N]\n"
       "                           [--engine auto|internal|onednn] [--precision f32|bf16|int8]\n"
       "  Runs the item tower over every item of the features file (docs/format.md;\n"
       "  '-' reads stdin) and writes an item store keyed by the items' ids. The file\n"
       "  is read ROWS rows at a time (default 16384): memory does not grow with the\n"
       "  catalog except for the id map (32-64 bytes per item).\n"
       "  --shard i/n     keep only the items of shard i of n: (splitmix64(id) >> 32) % n == i,\n"
       "                  whatever the order or the split of the file; merge the n shard\n"
       "                  stores with `towerrt merge-items` (docs/item-stores.md)\n"
       "  --threads N     oneDNN threads (default: every core)\n"
       "  --engine        auto (default: oneDNN when built in), internal, onednn\n"
       "  --precision     f32 (default); bf16 or int8 (oneDNN; faster, approximate heads:\n"
       "                  bf16 weights and inputs, or s8 weights and u8/s8 inputs with\n"
       "                  per-batch scales; docs/item-stores.md)\n"
       "  --progress      progress lines on stderr even when it is not a terminal (logs);\n"
       "                  on a terminal progress is shown in place by default.");
  return help ? 0 : EXIT_USAGE;
}

int cmd_build_items(const cli_args *a) {
  if (a->help) return usage(1);
  towerrt_build_options bo;
  towerrt_build_options_init(&bo);
  unsigned long long v;
  size_t chunk = DEFAULT_CHUNK;
  if (a->shard && !parse_shard(a->shard, &bo.shard_index, &bo.shard_count)) {
    fprintf(stderr, "towerrt build-items: --shard wants i/n with 0 <= i < n (got '%s') (towerrt build-items --help)\n", a->shard);
    return EXIT_USAGE;
  }
  if (a->chunk) {
    if (!parse_uint(a->chunk, 1, (unsigned long long)1 << 30, &v)) {
      fprintf(stderr, "towerrt build-items: --chunk wants a row count in 1..2^30 (got '%s') (towerrt build-items --help)\n", a->chunk);
      return EXIT_USAGE;
    }
    chunk = (size_t)v;
  }
  bo.threads = a->threads; /* 0: not given */
  if (a->engine) {
    if (!strcmp(a->engine, "auto")) bo.engine = TOWERRT_BUILD_AUTO;
    else if (!strcmp(a->engine, "internal")) bo.engine = TOWERRT_BUILD_INTERNAL;
    else if (!strcmp(a->engine, "onednn")) bo.engine = TOWERRT_BUILD_ONEDNN;
    else {
      fprintf(stderr, "towerrt build-items: --engine wants auto, internal or onednn (got '%s') (towerrt build-items --help)\n", a->engine);
      return EXIT_USAGE;
    }
  }
  if (a->precision) {
    towerrt_precision p;
    if (!towerrt_precision_parse(a->precision, &p)) bo.precision = p;
    else {
      fprintf(stderr, "towerrt build-items: --precision wants f32, bf16 or int8 (got '%s') (towerrt build-items --help)\n", a->precision);
      return EXIT_USAGE;
    }
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_model *m;
  towerrt_status st = towerrt_model_load(a->model, &o, &m);
  if (st) return fail(st, NULL);
  FILE *f = open_in(a->features);
  if (!f) {
    towerrt_model_free(m);
    return EXIT_FAILED;
  }
  progress p = {isatty(fileno(stderr)) ? 1 : a->progress ? 2 : 0, now_s(), 0.0, -1, f};
  struct stat sb;
  if (f != stdin && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) p.input_size = (long long)sb.st_size;

  trt_text_reader r;
  trt_rows rows = {0};
  towerrt_items_builder *b = NULL;
  char append_error[2048] = ""; /* the failing read's or append's message, naming the file */
  int done = 0;
  st = trt_text_open(&r, f, a->features, "towerrt-items", m);
  if (st) snprintf(append_error, sizeof append_error, "%s", trt_text_error());
  if (!st) st = towerrt_items_builder_open(m, a->out, &bo, &b);
  while (!st && !done) {
    trt_rows_clear(&rows);
    st = trt_text_read_items(&r, &rows, chunk, &done);
    if (st) snprintf(append_error, sizeof append_error, "%s", trt_text_error());
    if (!st && rows.n_keys) {
      towerrt_features feats = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
      st = towerrt_items_builder_append(b, &feats, rows.keys, rows.n_keys);
      if (st) snprintf(append_error, sizeof append_error, "%s: %s", a->features, towerrt_last_error());
    }
    if (!st) progress_show(&p, b, 0);
  }
  unsigned long long kept = towerrt_items_builder_rows(b), seen = towerrt_items_builder_seen(b);
  char engine[200];
  snprintf(engine, sizeof engine, "%s", b ? towerrt_items_builder_engine(b) : "");
  if (!st) progress_show(&p, b, 1);
  if (b) {
    if (!st) st = towerrt_items_builder_finish(b);
    else towerrt_items_builder_abort(b);
  }
  int rc = st ? fail(st, append_error[0] ? append_error : NULL) : 0;
  if (!st) {
    double dt = now_s() - p.t0;
    if (bo.shard_count)
      fprintf(stderr, "towerrt: wrote %llu items to %s (shard %u/%u of %llu input rows) in %.2f s, %.0f input rows/s [%s]\n", kept, a->out,
              bo.shard_index, bo.shard_count, seen, dt, dt > 0 ? (double)seen / dt : 0.0, engine);
    else
      fprintf(stderr, "towerrt: wrote %llu items to %s in %.2f s, %.0f items/s [%s]\n", kept, a->out, dt, dt > 0 ? (double)kept / dt : 0.0,
              engine);
  }
  trt_text_close(&r);
  trt_rows_free(&rows);
  if (f != stdin) fclose(f);
  towerrt_model_free(m);
  return rc;
}
