/* Fixtures, in-memory files, CRC repair and the contract checks shared by
 * the fuzz targets (fuzz_common.h). */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/container.h"
#include "runtime/crc32.h"

#ifndef TOWERRT_FUZZ_FIXTURES
#define TOWERRT_FUZZ_FIXTURES "tests/fixtures/golden"
#endif

void fz_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("towerrt fuzz: CONTRACT VIOLATION: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

/* ---- fixtures ------------------------------------------------------------ */

static fz_fixture g_fixtures[FZ_MAX_FIXTURES];
static size_t g_n_fixtures;
static int g_loaded;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void read_requests(fz_fixture *fx, const char *file) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", fx->dir, file);
  FILE *f = fopen(path, "r");
  if (!f) return; /* optional */
  trt_text_reader r;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-requests", fx->model);
  for (int done = 0; !st && !done;) {
    trt_request q = {0};
    st = trt_text_next_request(&r, &q, &done);
    if (st || done) {
      trt_request_free(&q);
      break;
    }
    trt_request *grown = realloc(fx->requests, (fx->n_requests + 1) * sizeof *grown);
    if (!grown) fz_die("out of memory");
    fx->requests = grown;
    fx->requests[fx->n_requests++] = q;
  }
  if (st) fz_die("fixture %s: %s", path, towerrt_last_error());
  trt_text_close(&r);
  fclose(f);
}

static void load_fixture(fz_fixture *fx) {
  char path[700];
  snprintf(path, sizeof path, "%s/model.twr", fx->dir);
  if (towerrt_model_load(path, NULL, &fx->model)) fz_die("fixture: %s", towerrt_last_error());
  snprintf(path, sizeof path, "%s/items.txt", fx->dir);
  FILE *f = fopen(path, "r");
  if (!f) fz_die("fixture: cannot open %s", path);
  trt_text_reader r;
  int done = 0;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-items", fx->model);
  while (!st && !done) st = trt_text_read_items(&r, &fx->catalog, 1u << 20, &done);
  trt_text_close(&r);
  fclose(f);
  if (st || fx->catalog.n_keys == 0) fz_die("fixture %s: %s", path, trt_text_error());
  char tmp[] = "/tmp/towerrt_fuzz_XXXXXX";
  if (!mkdtemp(tmp)) fz_die("mkdtemp: %s", strerror(errno));
  snprintf(path, sizeof path, "%s/items.twi", tmp);
  towerrt_features feats = {fx->catalog.ids, fx->catalog.n_ids, fx->catalog.dense, fx->catalog.n_dense};
  st = towerrt_items_build(fx->model, &feats, fx->catalog.keys, fx->catalog.n_keys, path);
  if (!st) st = towerrt_items_load(path, NULL, &fx->items);
  remove(path); /* the store stays mapped */
  static const towerrt_precision precisions[2] = {TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
  for (int q = 0; q < 2 && !st; q++) {
    snprintf(path, sizeof path, "%s/items_q%d.twi", tmp, q);
    if (towerrt_items_quantize(fx->items, precisions[q], path) || towerrt_items_load(path, NULL, &fx->quantized[q]))
      fprintf(stderr, "fuzz fixture %s: no %s store: %s\n", fx->name, q ? "int8" : "bf16", towerrt_last_error());
    remove(path);
  }
  rmdir(tmp);
  if (st) fz_die("fixture %s: item store: %s", fx->dir, towerrt_last_error());
  read_requests(fx, "requests_ids.txt");
  read_requests(fx, "requests_features.txt");
  if (fx->n_requests == 0) fz_die("fixture %s has no requests", fx->dir);
}

size_t fz_fixtures(const fz_fixture **out) {
  if (!g_loaded) {
    g_loaded = 1;
    const char *root = getenv("TOWERRT_FUZZ_FIXTURES");
    if (!root || !*root) root = TOWERRT_FUZZ_FIXTURES;
    DIR *d = opendir(root);
    if (!d) fz_die("cannot open the fixture directory '%s' (set TOWERRT_FUZZ_FIXTURES)", root);
    char *names[256];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 256;) {
      if (e->d_name[0] == '.') continue;
      char path[1024];
      struct stat st;
      snprintf(path, sizeof path, "%s/%s/model.twr", root, e->d_name);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
      if (g_n_fixtures < FZ_MAX_FIXTURES) {
        fz_fixture *fx = &g_fixtures[g_n_fixtures++];
        snprintf(fx->name, sizeof fx->name, "%s", names[i]);
        snprintf(fx->dir, sizeof fx->dir, "%s/%s", root, names[i]);
        load_fixture(fx);
      }
      free(names[i]);
    }
    if (!g_n_fixtures) fz_die("no fixtures (*/model.twr) under '%s'", root);
  }
  if (out) *out = g_fixtures;
  return g_n_fixtures;
}

const fz_fixture *fz_pick(unsigned selector) {
  const fz_fixture *all;
  size_t n = fz_fixtures(&all);
  return &all[selector % n];
}

/* ---- bytes --------------------------------------------------------------- */

const char *fz_bytes_path(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("towerrt-fuzz", MFD_CLOEXEC);
    if (fd < 0) fz_die("memfd_create: %s", strerror(errno));
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) fz_die("ftruncate: %s", strerror(errno));
  for (size_t done = 0; done < size;) {
    ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
    if (w <= 0) fz_die("pwrite: %s", strerror(errno));
    done += (size_t)w;
  }
  return path;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void fz_fix_container(uint8_t *file, size_t size, int fix_size) {
  if (size < TRT_HEADER_SIZE) return;
  if (fix_size) {
    put32(file + 16, (uint32_t)size);
    put32(file + 20, (uint32_t)((uint64_t)size >> 32));
  }
  uint64_t n = trt_rd32(file + 32);
  uint64_t fits = (size - TRT_HEADER_SIZE) / TRT_SECTION_ENTRY_SIZE;
  for (uint64_t i = 0; i < n && i < fits && i < TRT_MAX_SECTIONS; i++) {
    uint8_t *e = file + TRT_HEADER_SIZE + i * TRT_SECTION_ENTRY_SIZE;
    uint64_t off = trt_rd64(e + 8), sz = trt_rd64(e + 16);
    if (off <= size && sz <= size - off) put32(e + 4, trt_crc32(0, file + off, (size_t)sz));
  }
  if (n <= fits) put32(file + 40, trt_crc32(0, file + TRT_HEADER_SIZE, (size_t)(n * TRT_SECTION_ENTRY_SIZE)));
  put32(file + 60, trt_crc32(0, file, 60));
}

uint8_t fz_u8(fz_in *in) {
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}
uint16_t fz_u16(fz_in *in) { return (uint16_t)(fz_u8(in) | (fz_u8(in) << 8)); }
uint32_t fz_u32(fz_in *in) { return (uint32_t)fz_u16(in) | ((uint32_t)fz_u16(in) << 16); }
uint64_t fz_u64(fz_in *in) { return (uint64_t)fz_u32(in) | ((uint64_t)fz_u32(in) << 32); }

/* ---- contract checks ----------------------------------------------------- */

int fz_close(float a, float b) {
  double d = fabs((double)a - (double)b), m = fmax(fabs((double)a), fabs((double)b));
  return d <= 1e-5 * m + 1e-6;
}

void fz_check_open(towerrt_status st, const void *handle, const char *what) {
  if ((unsigned)st >= TOWERRT_STATUS_COUNT_) fz_die("%s: status %d is not a towerrt_status", what, (int)st);
  if (st != TOWERRT_OK) {
    if (handle) fz_die("%s: failed with %s but set the handle", what, towerrt_status_name(st));
    if (!towerrt_last_error()[0]) fz_die("%s: failed with %s and no message", what, towerrt_status_name(st));
  } else if (!handle) {
    fz_die("%s: OK but no handle", what);
  }
}

void fz_check_score(towerrt_status st, const towerrt_session *s, const float *scores, size_t k, int probabilities,
                    const char *what) {
  if ((unsigned)st >= TOWERRT_STATUS_COUNT_) fz_die("%s: status %d is not a towerrt_status", what, (int)st);
  if (st == TOWERRT_OK) {
    for (size_t i = 0; i < k; i++) {
      if (!isfinite(scores[i])) fz_die("%s: OK but score %zu of %zu is %g", what, i, k, (double)scores[i]);
      if (probabilities && (scores[i] < 0.0f || scores[i] > 1.0f))
        fz_die("%s: OK but probability %zu is %g", what, i, (double)scores[i]);
    }
    return;
  }
  const char *msg = towerrt_session_error(s);
  if (!msg || !msg[0]) fz_die("%s: %s with an empty session message", what, towerrt_status_name(st));
  if (!towerrt_last_error()[0]) fz_die("%s: %s with an empty thread message", what, towerrt_status_name(st));
  if (strcmp(msg, towerrt_last_error()) != 0)
    fz_die("%s: session message '%s' differs from the thread's '%s'", what, msg, towerrt_last_error());
  /* LIMIT (k > max_k, a count that overflows) writes nothing: the callers
   * fill their buffers with 7.0 before the call. */
  for (size_t i = 0; scores && i < k; i++)
    if (st == TOWERRT_ERR_LIMIT ? scores[i] != 7.0f : !isnan(scores[i]))
      fz_die("%s: %s but score %zu of %zu is %g, not %s", what, towerrt_status_name(st), i, k, (double)scores[i],
             st == TOWERRT_ERR_LIMIT ? "untouched (7)" : "NaN");
}

static long catalog_row(const fz_fixture *fx, uint64_t key) {
  for (size_t i = 0; i < fx->catalog.n_keys; i++)
    if (fx->catalog.keys[i] == key) return (long)i;
  return -1;
}

towerrt_status fz_score_request(const fz_fixture *fx, towerrt_session *s, const trt_request *q, int probabilities) {
  towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  size_t k = q->by_id ? q->items.n_keys : q->items.n_rows;
  float *scores = malloc((k ? k : 1) * sizeof *scores);
  if (!scores) fz_die("out of memory");
  towerrt_status st;
  if (!q->by_id) {
    towerrt_features items = {q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense};
    st = towerrt_score_features(s, &user, &items, k, scores);
    fz_check_score(st, s, scores, k, probabilities, "towerrt_score_features (request)");
    free(scores);
    return st;
  }
  st = towerrt_score(s, &user, q->items.keys, k, scores);
  fz_check_score(st, s, scores, k, probabilities, "towerrt_score (request)");
  if (st == TOWERRT_OK) {
    /* The same candidates through the online item tower. */
    size_t slots = towerrt_model_id_slots(fx->model, TOWERRT_ITEM), width = towerrt_model_dense_width(fx->model, TOWERRT_ITEM);
    int64_t *ids = malloc((k * slots + 1) * sizeof *ids);
    float *dense = malloc((k * width + 1) * sizeof *dense), *again = malloc(k * sizeof *again);
    if (!ids || !dense || !again) fz_die("out of memory");
    size_t c = 0;
    for (; c < k; c++) {
      long row = catalog_row(fx, q->items.keys[c]);
      if (row < 0) break;
      memcpy(ids + c * slots, fx->catalog.ids + (size_t)row * slots, slots * sizeof *ids);
      memcpy(dense + c * width, fx->catalog.dense + (size_t)row * width, width * sizeof *dense);
    }
    if (c == k) {
      towerrt_features items = {ids, k * slots, width ? dense : NULL, k * width};
      towerrt_status st2 = towerrt_score_features(s, &user, &items, k, again);
      if (st2) fz_die("candidates scored by id but not by features: %s", towerrt_session_error(s));
      for (size_t i = 0; i < k; i++)
        if (!fz_close(scores[i], again[i]))
          fz_die("candidate %zu (item %llu): %.9g by id, %.9g by features", i, (unsigned long long)q->items.keys[i],
                 (double)scores[i], (double)again[i]);
    }
    free(ids);
    free(dense);
    free(again);
  }
  free(scores);
  return st;
}
