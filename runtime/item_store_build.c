/* Item-store builds (docs/format.md, docs/item-stores.md): the streaming
 * builder of item_store_build.h, and towerrt_items_build on top of it.
 *
 * The caller's thread validates rows, takes their ids into the id map and
 * stages them into fixed batches; worker threads (one per --threads) run
 * each batch through the item tower (oneDNN matmul, single-threaded per
 * batch, or the internal kernels through tower_exec.h), checksum it and
 * pwrite its heads at their place in a unique temporary PATH.tmp.<x>
 * (atomic_file.h). ITEM_HEADS' offset is known
 * at open because META has a fixed size, and a batch's rows are known when
 * it is staged, so workers never wait for each other; the caller folds the
 * batches' CRCs in order (crc32 combine). finish() writes META, the ID_MAP
 * (and a shard's ROW_ORDER), the section table and the header, then
 * fsyncs and renames the temporary to PATH (and fsyncs the directory), so
 * a failed build never leaves a half-written store under the final name
 * and two builds to one PATH never write into one temporary.
 *
 * Every batch runs the same way whatever the thread count and whatever
 * rows surround it (oneDNN: always the full batch through one primitive,
 * the last batch padded), so the output is the same bytes for any
 * --threads, any chunking of the input, and any row's position. */
#include "item_store_build.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "batch_matmul_internal.h"
#include "crc32.h"
#include "item_store.h"
#include "onednn_matmul.h"
#include "status.h"
#include "tower_exec.h"

/* TOWERRT_HAVE_ONEDNN comes from runtime/onednn.cmake. Without it this file
 * does not reference onednn_matmul.c at all (the library may be built
 * without that file, e.g. by the fuzz harness), and builds use the
 * internal kernels. */
#ifdef TOWERRT_HAVE_ONEDNN
#define MM_BUILT_IN 1
#else
#define MM_BUILT_IN 0
#endif

#define DEFAULT_BATCH 256u
#define MAX_BATCH 65536u
#define MAX_THREADS 256u

/* ---- little-endian byte buffers -------------------------------------------- */
typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;

static int put_bytes(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) return 0;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
  return 1;
}
static int put_u8(bytes *b, uint8_t v) { return put_bytes(b, &v, 1); }
static int put_u16(bytes *b, uint16_t v) { unsigned char t[2] = {(unsigned char)v, (unsigned char)(v >> 8)}; return put_bytes(b, t, 2); }
static int put_u32(bytes *b, uint32_t v) { unsigned char t[4]; for (int i = 0; i < 4; i++) t[i] = (unsigned char)(v >> (8 * i)); return put_bytes(b, t, 4); }
static int put_u64(bytes *b, uint64_t v) { return put_u32(b, (uint32_t)v) && put_u32(b, (uint32_t)(v >> 32)); }
static int meta_key(bytes *b, const char *k, uint8_t type) { return put_u16(b, (uint16_t)strlen(k)) && put_bytes(b, k, strlen(k)) && put_u8(b, type); }
static int meta_int(bytes *b, const char *k, int64_t v) { return meta_key(b, k, 1) && put_u64(b, (uint64_t)v); }
static int meta_str(bytes *b, const char *k, const char *v) { return meta_key(b, k, 3) && put_u32(b, (uint32_t)strlen(v)) && put_bytes(b, v, strlen(v)); }
static uint64_t align64(uint64_t x) { return (x + 63) & ~UINT64_C(63); }

/* META has the same size whatever the counts, so ITEM_HEADS' offset is
 * known before the first row. A shard records which shard it is and how
 * many rows its input had (build.shard, build.shards, build.input_rows); a
 * plain build's META is exactly the original builder's. */
static int build_meta(const towerrt_model *m, uint64_t n, uint64_t seen, uint64_t stride, const trt_build_options *o, bytes *b) {
  int shard = o->shard_count > 0;
  return put_u32(b, shard ? 10 : 7) && meta_int(b, "items.count", (int64_t)n) && meta_int(b, "items.heads", m->heads_item) &&
         meta_int(b, "items.head_dim", m->head_dim) && meta_str(b, "items.dtype", "f32") &&
         meta_int(b, "items.row_stride", (int64_t)stride) && meta_int(b, "model.fingerprint", m->item_fingerprint) &&
         meta_str(b, "general.source", "towerrt_items_build") &&
         (!shard || (meta_int(b, "build.shard", o->shard_index) && meta_int(b, "build.shards", o->shard_count) &&
                     meta_int(b, "build.input_rows", (int64_t)(o->input_rows ? o->input_rows : seen))));
}

/* ---- the builder ------------------------------------------------------------ */
struct trt_items_builder;

/* One worker thread and the batch it owns. */
typedef struct worker {
  struct trt_items_builder *b;
  pthread_t thread;
  int started;
  /* the staged batch: n rows starting at store row first_row */
  int64_t *ids;
  float *dense;
  size_t n;
  uint64_t first_row;
  int busy;        /* submitted, not yet collected */
  int done;        /* computed (or failed) */
  towerrt_status st;
  char err[TRT_MSG_CAP];
  uint32_t crc;    /* of the batch's n rows */
  double t_tower, t_write;
  unsigned char *out; /* batch x stride, 64-byte aligned */
  /* engines, owned by the worker thread */
  void *arena;
  trt_workspace ws;
  trt_mm *mm;      /* oneDNN engine */
  trt_bmm *bmm;    /* internal engine, bf16 / int8 */
  float *x0, *act_a, *act_b, *emb, *scratch;
} worker;

struct trt_items_builder {
  const towerrt_model *m;
  trt_build_options o;
  trt_atomic_file out; /* the unique temporary and the final name */
  int fd;
  int engine, raw; /* raw: rows come with their heads (append_heads) */
  char engine_name[224];
  char fallback[TRT_MSG_CAP]; /* why oneDNN was not used, when it was wanted */
  uint64_t stride, heads_offset, meta_len, rows, seen, staged_rows;
  size_t per_row;
  uint32_t crc, n_sec;
  towerrt_status failed;
  /* id map in its file layout: 16-byte header, n_slots x 16 bytes */
  unsigned char *map;
  uint64_t n_slots;
  uint64_t *ord; /* shard builds: the input ordinal of each row */
  size_t ord_cap;
  size_t batch, id_slots, dense_w;
  /* workers; batches go round-robin, so they complete and fold in order */
  worker *w;
  unsigned n_workers, next;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int sync_ready, quit;
  trt_items_build_stats stats;
};

void trt_build_options_init(trt_build_options *o) {
  memset(o, 0, sizeof *o);
  o->engine = TRT_ENGINE_AUTO;
  o->precision = TOWERRT_PRECISION_F32;
}

uint32_t trt_item_shard(uint64_t id, uint32_t n) { return n ? (uint32_t)((trt_splitmix64(id) >> 32) % n) : 0; }

uint64_t trt_items_builder_rows(const trt_items_builder *b) { return b ? b->rows : 0; }
uint64_t trt_items_builder_seen(const trt_items_builder *b) { return b ? b->seen : 0; }
const char *trt_items_builder_engine(const trt_items_builder *b) { return b ? b->engine_name : ""; }
void trt_items_builder_get_stats(const trt_items_builder *b, trt_items_build_stats *out) {
  if (b) *out = b->stats;
  else memset(out, 0, sizeof *out);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- CRC-32 of a concatenation (zlib's crc32_combine, by multiplying with
 * x^(8 len) modulo the reflected polynomial) ------------------------------- */
static uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = UINT32_C(1) << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ UINT32_C(0xEDB88320) : b >> 1;
  }
  return p;
}

/* CRC of A || B from crc(A), crc(B) and len(B). */
uint32_t trt_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t x2n = UINT32_C(1) << 30, p = UINT32_C(1) << 31; /* x^1; x^0 */
  for (uint64_t n = len_b * 8; n; n >>= 1) {               /* p = x^(8 len_b) */
    if (n & 1) p = multmodp(x2n, p);
    x2n = multmodp(x2n, x2n);
  }
  return multmodp(p, crc_a) ^ crc_b;
}

/* ---- id map ------------------------------------------------------------------- */
static uint64_t slots_for(uint64_t n) {
  uint64_t s = 16;
  while (s < 2 * n) s *= 2;
  return s;
}

static unsigned char *map_alloc(uint64_t n_slots) {
  if (n_slots > (SIZE_MAX - 16) / 16) return NULL;
  unsigned char *p = malloc(16 + (size_t)n_slots * 16);
  if (!p) return NULL;
  memset(p, 0, 16 + (size_t)n_slots * 16);
  trt_wr64(p, n_slots);
  for (uint64_t i = 0; i < n_slots; i++) memset(p + 16 + i * 16 + 8, 0xFF, 4);
  return p;
}

/* map_insert: the id would sit more than TRT_ID_MAP_MAX_PROBE slots past
 * its home slot (never a row: take_id keeps rows below TRT_EMPTY_ROW - 1). */
#define MAP_TOO_FAR (TRT_EMPTY_ROW - 1)

static towerrt_status too_far(uint64_t id) {
  return trt_fail(TOWERRT_ERR_LIMIT, "item id %llu would sit more than %u slots past its home slot in the id map (the limit): "
                  "the item ids collide pathologically", (unsigned long long)id, TRT_ID_MAP_MAX_PROBE);
}

/* Inserts (id, row); returns TRT_EMPTY_ROW, the row already holding id, or MAP_TOO_FAR. */
static uint32_t map_insert(unsigned char *map, uint64_t n_slots, uint64_t id, uint32_t row) {
  unsigned char *slots = map + 16;
  uint64_t dist = 0;
  for (uint64_t i = trt_splitmix64(id) & (n_slots - 1);; i = (i + 1) & (n_slots - 1), dist++) {
    unsigned char *slot = slots + i * 16;
    uint32_t r = trt_rd32(slot + 8);
    if (r == TRT_EMPTY_ROW) {
      trt_wr64(slot, id);
      trt_wr32(slot + 8, row);
      return TRT_EMPTY_ROW;
    }
    if (trt_rd64(slot) == id) return r;
    if (dist == TRT_ID_MAP_MAX_PROBE) return MAP_TOO_FAR;
  }
}

/* Rebuilds the map with n_slots slots, inserting rows in row order: the
 * table is then exactly the one inserting every row once, in order, into a
 * table of that size gives, whatever the growth history. */
static towerrt_status map_resize(trt_items_builder *b, uint64_t n_slots) {
  uint64_t *by_row = malloc((size_t)(b->rows ? b->rows : 1) * sizeof *by_row);
  if (!by_row) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory resizing the id map (%llu items)", (unsigned long long)b->rows);
  for (uint64_t i = 0; i < b->n_slots; i++) {
    const unsigned char *slot = b->map + 16 + i * 16;
    uint32_t r = trt_rd32(slot + 8);
    if (r != TRT_EMPTY_ROW) by_row[r] = trt_rd64(slot);
  }
  free(b->map);
  b->map = map_alloc(n_slots);
  if (!b->map) {
    free(by_row);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an id map of %llu slots", (unsigned long long)n_slots);
  }
  b->n_slots = n_slots;
  for (uint64_t r = 0; r < b->rows; r++)
    if (map_insert(b->map, n_slots, by_row[r], (uint32_t)r) == MAP_TOO_FAR) {
      towerrt_status st = too_far(by_row[r]);
      free(by_row);
      return st;
    }
  free(by_row);
  return TOWERRT_OK;
}

/* Takes id as row b->rows (not yet counted). */
static towerrt_status take_id(trt_items_builder *b, uint64_t id, uint64_t ordinal) {
  if (b->rows >= (uint64_t)TRT_EMPTY_ROW - 1)
    return trt_fail(TOWERRT_ERR_LIMIT, "an item store holds at most %u items", TRT_EMPTY_ROW - 1);
  if (2 * (b->rows + 1) > b->n_slots) {
    towerrt_status st = map_resize(b, b->n_slots * 2);
    if (st) return st;
  }
  uint32_t dup = map_insert(b->map, b->n_slots, id, (uint32_t)b->rows);
  if (dup == MAP_TOO_FAR) return too_far(id);
  if (dup != TRT_EMPTY_ROW) {
    uint64_t first = b->o.shard_count ? b->ord[dup] : dup;
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %llu appears twice (input rows %llu and %llu)", (unsigned long long)id,
                    (unsigned long long)first, (unsigned long long)ordinal);
  }
  if (b->o.shard_count) {
    if (b->rows >= b->ord_cap) {
      size_t cap = b->ord_cap ? b->ord_cap * 2 : 4096;
      uint64_t *q = realloc(b->ord, cap * sizeof *q);
      if (!q) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the row order");
      b->ord = q;
      b->ord_cap = cap;
    }
    b->ord[b->rows] = ordinal;
  }
  b->rows++;
  return TOWERRT_OK;
}

/* ---- the item tower over one batch (worker threads) ------------------------ */

static void *alloc64(size_t n_bytes) {
  void *p = aligned_alloc(64, (n_bytes + 63) & ~(size_t)63);
  if (p) memset(p, 0, (n_bytes + 63) & ~(size_t)63);
  return p;
}

/* The batched engines (oneDNN, or internal bf16 / int8) run the tower
 * layer by layer over a full batch; the internal f32 engine runs blocks of
 * TRT_ITEM_BLOCK rows through trt_item_forward, as the sessions do. */
static int batched(const trt_items_builder *b) { return b->engine == TRT_ENGINE_ONEDNN || b->o.precision != TOWERRT_PRECISION_F32; }

/* Engine state of a worker, made in its own thread (oneDNN takes the
 * calling thread's OpenMP setting: one thread per batch). */
static towerrt_status worker_engine(worker *w) {
  trt_items_builder *b = w->b;
  const trt_tower *t = &b->m->item;
  size_t B = b->batch;
  if (!batched(b)) {
    if (!(w->arena = alloc64(trt_workspace_bytes(b->m)))) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a workspace");
    trt_workspace_init(b->m, w->arena, &w->ws);
    return TOWERRT_OK;
  }
  if (!((w->x0 = alloc64(B * t->input_width * sizeof(float))) && (w->act_a = alloc64(B * t->max_width * sizeof(float))) &&
        (w->act_b = alloc64(B * t->max_width * sizeof(float))) && (w->emb = alloc64(t->input_width * sizeof(float))) &&
        (w->scratch = alloc64(2 * (size_t)t->n_id_fields * sizeof(float) + 64))))
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu items", B);
  if (b->engine == TRT_ENGINE_INTERNAL) {
    size_t widest = t->input_width > t->max_width ? t->input_width : t->max_width;
    return trt_bmm_create(&b->m->kernels, b->o.precision, B, widest, &w->bmm);
  }
#if MM_BUILT_IN
  return trt_mm_create(1, b->o.precision, &w->mm);
#else
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "built without oneDNN");
#endif
}

/* One layer of the batched engines. */
static towerrt_status batch_dense(worker *w, const trt_dense_layer *d, int nonneg, const float *x, size_t ldx, float *y, size_t ldy) {
  if (w->bmm) return trt_bmm_dense(w->bmm, d, nonneg, x, ldx, w->b->batch, y, ldy);
#if MM_BUILT_IN
  return trt_mm_dense(w->mm, d, nonneg, x, ldx, w->b->batch, y, ldy);
#else
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "built without oneDNN");
#endif
}

/* Heads of the worker's n staged rows into w->out. The batched engines
 * always run the full batch (rows past n are stale or zero, finite, and
 * not written) so that every row goes through the same primitive wherever
 * it sits. */
static towerrt_status run_tower(worker *w) {
  trt_items_builder *b = w->b;
  const towerrt_model *m = b->m;
  const trt_tower *t = &m->item;
  if (!batched(b)) {
    trt_item_forward(m, t, &w->ws, w->ids, b->dense_w ? w->dense : NULL, w->n);
    for (size_t r = 0; r < w->n; r++) memcpy(w->out + r * b->stride, w->ws.item_heads + r * b->per_row, b->per_row * sizeof(float));
    return TOWERRT_OK;
  }
  for (size_t r = 0; r < w->n; r++)
    trt_tower_input(m, t, w->ids + r * b->id_slots, b->dense_w ? w->dense + r * b->dense_w : NULL, w->emb, w->scratch,
                    w->x0 + r * t->input_width);
  const float *x = w->x0;
  size_t ldx = t->input_width;
  int nonneg = 0;
  float *next = w->act_a;
  for (uint32_t L = 0; L < t->n_layers; L++) {
    /* dense activations (row stride = width): oneDNN's brgemm matmul
     * wants them, a strided destination falls back to a slower gemm */
    towerrt_status st = batch_dense(w, &t->layers[L], nonneg, x, ldx, next, t->layers[L].out);
    if (st) return st;
    x = next;
    ldx = t->layers[L].out;
    nonneg = t->layers[L].relu;
    next = next == w->act_a ? w->act_b : w->act_a;
  }
  return batch_dense(w, &t->fe[0], nonneg, x, ldx, (float *)(void *)w->out, (size_t)(b->stride / sizeof(float)));
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
  const unsigned char *c = p;
  while (n) {
    ssize_t k = pwrite(fd, c, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    c += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 1;
}

/* Tower, CRC and write of the worker's batch (in the worker's thread). */
static void run_batch(worker *w) {
  trt_items_builder *b = w->b;
  double t0 = now_s();
  towerrt_status st = w->mm || w->bmm || w->arena ? TOWERRT_OK : worker_engine(w);
  if (!st) st = run_tower(w);
  double t1 = now_s();
  if (!st) {
    size_t len = w->n * (size_t)b->stride;
    if (b->o.discard_heads) w->crc = 0;
    else {
      w->crc = trt_crc32(0, w->out, len);
      if (!pwrite_all(b->fd, w->out, len, b->heads_offset + w->first_row * b->stride))
        st = trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", b->out.tmp, strerror(errno));
    }
  }
  w->t_tower += t1 - t0;
  w->t_write += now_s() - t1;
  w->st = st;
  if (st) snprintf(w->err, sizeof w->err, "%s", towerrt_last_error());
}

static void *worker_main(void *arg) {
  worker *w = arg;
  trt_items_builder *b = w->b;
  pthread_mutex_lock(&b->mu);
  for (;;) {
    while (!(w->busy && !w->done) && !b->quit) pthread_cond_wait(&b->cv, &b->mu);
    if (b->quit) break;
    pthread_mutex_unlock(&b->mu);
    run_batch(w);
    pthread_mutex_lock(&b->mu);
    w->done = 1;
    pthread_cond_broadcast(&b->cv);
  }
  pthread_mutex_unlock(&b->mu);
#if MM_BUILT_IN
  trt_mm_free(w->mm);
  w->mm = NULL;
#endif
  trt_bmm_free(w->bmm);
  w->bmm = NULL;
  return NULL;
}

/* Waits for worker w's batch and folds its CRC (batches are collected in
 * the order they were staged). */
static towerrt_status collect(trt_items_builder *b, worker *w) {
  if (!w->busy) return TOWERRT_OK;
  pthread_mutex_lock(&b->mu);
  while (!w->done) pthread_cond_wait(&b->cv, &b->mu);
  w->busy = w->done = 0;
  pthread_mutex_unlock(&b->mu);
  if (w->st) return trt_fail(w->st, "%s", w->err);
  b->crc = trt_crc32_combine(b->crc, w->crc, w->n * b->stride);
  b->stats.batches++;
  return TOWERRT_OK;
}

/* Hands the staged batch of the current worker over, and moves on. */
static towerrt_status submit(trt_items_builder *b) {
  worker *w = &b->w[b->next];
  if (!w->n || w->busy) return TOWERRT_OK; /* nothing staged */
  w->first_row = b->staged_rows;
  b->staged_rows += w->n;
  pthread_mutex_lock(&b->mu);
  w->busy = 1;
  w->done = 0;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  b->next = (b->next + 1) % b->n_workers;
  return TOWERRT_OK;
}

/* The worker that takes the next rows, once its previous batch is in. */
static towerrt_status stage_target(trt_items_builder *b, worker **out) {
  worker *w = &b->w[b->next];
  if (w->busy) {
    towerrt_status st = collect(b, w);
    w->n = 0;
    if (st) return st;
  }
  *out = w;
  return TOWERRT_OK;
}

static towerrt_status drain(trt_items_builder *b) {
  towerrt_status st = TOWERRT_OK;
  for (unsigned k = 0; k < b->n_workers; k++) {
    worker *w = &b->w[(b->next + k) % b->n_workers];
    towerrt_status s = collect(b, w);
    w->n = 0;
    if (s && !st) st = s;
  }
  return st;
}

static towerrt_status start_workers(trt_items_builder *b) {
  if (pthread_mutex_init(&b->mu, NULL) != 0) return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot create a mutex");
  if (pthread_cond_init(&b->cv, NULL) != 0) {
    pthread_mutex_destroy(&b->mu);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot create a condition variable");
  }
  b->sync_ready = 1;
  if (!(b->w = calloc(b->n_workers, sizeof *b->w))) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  for (unsigned i = 0; i < b->n_workers; i++) {
    worker *w = &b->w[i];
    w->b = b;
    w->ids = malloc((b->batch * b->id_slots + 1) * sizeof(int64_t));
    w->dense = malloc((b->batch * b->dense_w + 1) * sizeof(float));
    w->out = alloc64(b->batch * (size_t)b->stride);
    if (!w->ids || !w->dense || !w->out) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu items", b->batch);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot start a build thread");
    w->started = 1;
  }
  return TOWERRT_OK;
}

static void stop_workers(trt_items_builder *b) {
  if (!b->w) return;
  if (b->sync_ready) {
    pthread_mutex_lock(&b->mu);
    for (unsigned i = 0; i < b->n_workers; i++)
      while (b->w[i].busy && !b->w[i].done) pthread_cond_wait(&b->cv, &b->mu);
    b->quit = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
  }
  for (unsigned i = 0; i < b->n_workers; i++) {
    worker *w = &b->w[i];
    if (w->started) pthread_join(w->thread, NULL);
    b->stats.tower_seconds += w->t_tower;
    b->stats.write_seconds += w->t_write;
    free(w->ids);
    free(w->dense);
    free(w->out);
    free(w->arena);
    free(w->x0);
    free(w->act_a);
    free(w->act_b);
    free(w->emb);
    free(w->scratch);
  }
  free(b->w);
  b->w = NULL;
}

/* ---- open / append / finish -------------------------------------------------- */
#if defined(__SANITIZE_THREAD__)
#define TRT_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TRT_UNDER_TSAN 1
#endif
#endif

#if MM_BUILT_IN
static towerrt_status mm_probe(int precision) { return trt_mm_probe(precision); }
static int mm_weight_max(void) { return trt_mm_weight_max(); }
static const char *mm_describe(void) { return trt_mm_describe(); }
#else
static towerrt_status mm_probe(int precision) {
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "this towerrt was built without oneDNN (TOWERRT_WITH_ONEDNN)");
}
static int mm_weight_max(void) { return 127; }
static const char *mm_describe(void) { return "this towerrt was built without oneDNN"; }
#endif

static const char *precision_name(int p) { return towerrt_precision_name((towerrt_precision)p); }

static towerrt_status resolve_engine(trt_items_builder *b) {
  int e = b->o.engine;
  if (e == TRT_ENGINE_AUTO) {
    const char *env = getenv("TOWERRT_BUILD_ENGINE");
    if (env && *env && strcmp(env, "auto") != 0) {
      if (!strcmp(env, "internal")) e = TRT_ENGINE_INTERNAL;
      else if (!strcmp(env, "onednn")) e = TRT_ENGINE_ONEDNN;
      else return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "TOWERRT_BUILD_ENGINE='%s': expected auto, internal or onednn", env);
    }
  }
  if (e != TRT_ENGINE_AUTO && e != TRT_ENGINE_INTERNAL && e != TRT_ENGINE_ONEDNN)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "build engine %d is not auto, internal or onednn", b->o.engine);
  if (b->o.precision != TOWERRT_PRECISION_F32 && b->o.precision != TOWERRT_PRECISION_INT8 && b->o.precision != TOWERRT_PRECISION_BF16)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "build precision %d is not f32, bf16 or int8", b->o.precision);
#ifdef TRT_UNDER_TSAN
  /* libdnnl is not instrumented (its primitive cache is shared by the
   * worker threads under its own locks): keep ThreadSanitizer runs on our
   * code unless oneDNN is asked for explicitly. */
  if (e == TRT_ENGINE_AUTO) e = TRT_ENGINE_INTERNAL;
#endif
  /* A model whose kernels are the scalar oracle (TOWERRT_ISA=scalar, or a
   * CPU without SIMD kernels) builds with them: forcing an ISA means
   * exactly those kernels, everywhere. */
  if (e == TRT_ENGINE_AUTO && !strcmp(b->m->kernels.name, "scalar")) e = TRT_ENGINE_INTERNAL;
  b->fallback[0] = 0;
  if (e == TRT_ENGINE_AUTO) {
    /* oneDNN where it can make this precision's matmul on this CPU, else
     * the internal kernels, saying why */
    towerrt_status st = mm_probe(b->o.precision);
    e = st ? TRT_ENGINE_INTERNAL : TRT_ENGINE_ONEDNN;
    if (st) snprintf(b->fallback, sizeof b->fallback, "%s", towerrt_last_error());
  } else if (e == TRT_ENGINE_ONEDNN) {
    towerrt_status st = mm_probe(b->o.precision);
    if (st) return st;
  }
  b->engine = e;
  if (!batched(b)) b->batch = TRT_ITEM_BLOCK;
  if (e == TRT_ENGINE_ONEDNN)
    snprintf(b->engine_name, sizeof b->engine_name, "onednn %s, batch %zu, %u thread(s), %s%s", precision_name(b->o.precision),
             b->batch, b->n_workers, mm_describe(),
             b->o.precision == TOWERRT_PRECISION_INT8 && mm_weight_max() < 127 ? ", 7-bit weights (no VNNI)" : "");
  else
    snprintf(b->engine_name, sizeof b->engine_name, "internal %s %s, batch %zu, %u thread(s)%s%.120s%s", b->m->kernels.name,
             precision_name(b->o.precision), b->batch, b->n_workers, b->fallback[0] ? " (" : "", b->fallback,
             b->fallback[0] ? ")" : "");
  return TOWERRT_OK;
}

TOWERRT_API size_t towerrt_items_build_engine(const towerrt_model *m, towerrt_precision precision, char *buf, size_t cap) {
  char text[sizeof ((trt_items_builder *)0)->engine_name + 32];
  trt_items_builder *b = calloc(1, sizeof *b);
  if (!m || (unsigned)precision > 2) snprintf(text, sizeof text, "invalid model or precision");
  else if (!b) snprintf(text, sizeof text, "out of memory");
  else {
    trt_build_options_init(&b->o);
    b->o.precision = precision;
    b->m = m;
    b->batch = DEFAULT_BATCH;
    b->n_workers = 1;
    if (resolve_engine(b)) snprintf(text, sizeof text, "none: %s", towerrt_last_error());
    else snprintf(text, sizeof text, "%s", b->engine_name);
  }
  free(b);
  if (cap) snprintf(buf, cap, "%s", text);
  return strlen(text);
}

static void builder_free(trt_items_builder *b) {
  if (!b) return;
  stop_workers(b);
  if (b->sync_ready) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
  }
  trt_atomic_abort(&b->out); /* no-op after a commit */
  free(b->map);
  free(b->ord);
  free(b);
}

void trt_items_builder_abort(trt_items_builder *b) {
  if (!b) return;
  stop_workers(b);
  trt_atomic_abort(&b->out);
  b->fd = -1;
  builder_free(b);
}

towerrt_status trt_items_builder_open(const towerrt_model *m, const char *path, const trt_build_options *opts,
                                      trt_items_builder **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_open: out is NULL");
  *out = NULL;
  if (!m || !path) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_open: model and path must not be NULL");
  trt_build_options o;
  if (opts) o = *opts;
  else trt_build_options_init(&o);
  if (o.input_rows && !o.shard_count)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a declared input row count (%llu) needs a shard build", (unsigned long long)o.input_rows);
  if (o.shard_count && o.shard_index >= o.shard_count)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "shard %u/%u: the index must be below the count", o.shard_index, o.shard_count);
  if (o.batch > MAX_BATCH) return trt_fail(TOWERRT_ERR_LIMIT, "batch %u above the limit %u", o.batch, MAX_BATCH);
  if (o.threads > MAX_THREADS) return trt_fail(TOWERRT_ERR_LIMIT, "%u build threads above the limit %u", o.threads, MAX_THREADS);
  trt_items_builder *b = calloc(1, sizeof *b);
  if (!b) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  b->fd = -1;
  b->out.fd = -1;
  b->m = m;
  b->o = o;
  b->per_row = (size_t)m->heads_item * m->head_dim;
  b->stride = align64((uint64_t)b->per_row * sizeof(float));
  b->id_slots = m->item.id_slots;
  b->dense_w = m->item.dense_width;
  b->n_sec = o.shard_count ? 4 : 3;
  b->batch = o.batch ? o.batch : DEFAULT_BATCH;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  b->n_workers = o.threads ? o.threads : (unsigned)(cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : cores);
  towerrt_status st = resolve_engine(b);
  bytes meta = {0};
  if (!st && !build_meta(m, 0, 0, b->stride, &o, &meta)) st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  b->meta_len = meta.len;
  free(meta.p);
  b->heads_offset = align64(align64(64 + (uint64_t)b->n_sec * 32) + b->meta_len);
  if (!st) {
    b->n_slots = slots_for(o.expected);
    if (!(b->map = map_alloc(b->n_slots)))
      st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for an id map of %llu slots", (unsigned long long)b->n_slots);
  }
  /* a unique O_EXCL temporary next to PATH (atomic_file.h) */
  if (!st && !(st = trt_atomic_open(&b->out, path))) b->fd = b->out.fd;
  if (st) {
    trt_items_builder_abort(b);
    return st;
  }
  *out = b;
  return TOWERRT_OK;
}

static towerrt_status sticky(trt_items_builder *b, towerrt_status st) {
  if (st && !b->failed) b->failed = st;
  return st;
}

static towerrt_status check_usable(trt_items_builder *b, int raw) {
  if (b->failed) return trt_fail(b->failed, "this build already failed (%s); abort it", towerrt_status_name(b->failed));
  if (b->rows && b->raw != raw)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a build takes either feature rows or computed heads, not both");
  b->raw = raw;
  return TOWERRT_OK;
}

/* Checks a block of feature rows (row numbers in messages count from the
 * rows seen so far) and starts the workers on the first one. */
static towerrt_status check_block(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids, size_t n) {
  towerrt_status st = check_usable(b, 0);
  if (st) return st;
  if (!f || (n && !ids)) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append: features and ids must not be NULL"));
  if (!b->w && (st = start_workers(b))) return sticky(b, st);
  if ((st = trt_check_features(b->m, TOWERRT_ITEM, f, n))) {
    if (b->seen) {
      char ctx[96];
      snprintf(ctx, sizeof ctx, "input rows %llu..%llu (row numbers below count from %llu)", (unsigned long long)b->seen,
               (unsigned long long)(b->seen + n - 1), (unsigned long long)b->seen);
      trt_fail_context(st, ctx);
    }
    return sticky(b, st);
  }
  return TOWERRT_OK;
}

/* Takes row r of f as input ordinal `ordinal` and stages it into a batch. */
static towerrt_status stage_row(trt_items_builder *b, const towerrt_features *f, size_t r, uint64_t id, uint64_t ordinal, worker **w) {
  towerrt_status st = take_id(b, id, ordinal);
  if (!st && !*w) st = stage_target(b, w);
  if (st) return sticky(b, st);
  if (b->id_slots) memcpy((*w)->ids + (*w)->n * b->id_slots, f->ids + r * b->id_slots, b->id_slots * sizeof(int64_t));
  if (b->dense_w) memcpy((*w)->dense + (*w)->n * b->dense_w, f->dense + r * b->dense_w, b->dense_w * sizeof(float));
  if (++(*w)->n == b->batch) {
    submit(b);
    *w = NULL;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids, size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append: builder is NULL");
  if (b->o.input_rows)
    return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "a build with a declared input row count takes rows with their ordinals"));
  towerrt_status st = check_block(b, f, ids, n);
  if (st) return st;
  worker *w = NULL;
  for (size_t r = 0; r < n; r++) {
    uint64_t ordinal = b->seen++;
    if (b->o.shard_count && trt_item_shard(ids[r], b->o.shard_count) != b->o.shard_index) continue;
    if ((st = stage_row(b, f, r, ids[r], ordinal, &w))) return st;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append_ordered(trt_items_builder *b, const towerrt_features *f, const uint64_t *ids,
                                                const uint64_t *ordinals, size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_ordered: builder is NULL");
  if (!b->o.shard_count || !b->o.input_rows)
    return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "rows with ordinals need a shard build with a declared input row count"));
  if (n && !ordinals) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_ordered: ordinals are NULL"));
  towerrt_status st = check_block(b, f, ids, n);
  if (st) return st;
  worker *w = NULL;
  for (size_t r = 0; r < n; r++) {
    uint64_t prev = b->rows ? b->ord[b->rows - 1] : 0;
    if (ordinals[r] >= b->o.input_rows || (b->rows && ordinals[r] <= prev))
      return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "row ordinal %llu: not above the previous (%llu) or not below the %llu input rows",
                                (unsigned long long)ordinals[r], (unsigned long long)prev, (unsigned long long)b->o.input_rows));
    uint32_t shard = trt_item_shard(ids[r], b->o.shard_count);
    if (shard != b->o.shard_index)
      return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "item id %llu belongs to shard %u, not to this shard %u of %u",
                                (unsigned long long)ids[r], shard, b->o.shard_index, b->o.shard_count));
    b->seen++;
    if ((st = stage_row(b, f, r, ids[r], ordinals[r], &w))) return st;
  }
  return TOWERRT_OK;
}

towerrt_status trt_items_builder_append_heads(trt_items_builder *b, const unsigned char *rows, size_t stride, const uint64_t *ids,
                                              size_t n) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_heads: builder is NULL");
  towerrt_status st = check_usable(b, 1);
  if (st) return st;
  if (n && (!rows || !ids)) return sticky(b, trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_append_heads: rows and ids must not be NULL"));
  if (stride != b->stride)
    return sticky(b, trt_fail(TOWERRT_ERR_SHAPE, "rows of %zu bytes given, the model's store rows are %llu bytes", stride,
                              (unsigned long long)b->stride));
  uint64_t first = b->rows;
  for (size_t r = 0; r < n; r++) {
    uint64_t ordinal = b->seen++;
    if ((st = take_id(b, ids[r], ordinal))) return sticky(b, st);
  }
  size_t len = n * (size_t)b->stride;
  double t0 = now_s();
  b->crc = trt_crc32(b->crc, rows, len);
  if (!pwrite_all(b->fd, rows, len, b->heads_offset + first * b->stride))
    return sticky(b, trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", b->out.tmp, strerror(errno)));
  b->staged_rows = b->rows;
  b->stats.write_seconds += now_s() - t0;
  return TOWERRT_OK;
}

static int write_zeros(int fd, uint64_t from, uint64_t to) {
  static const unsigned char zero[64];
  return to <= from || pwrite_all(fd, zero, (size_t)(to - from), from);
}

typedef struct section_out {
  uint32_t kind, crc;
  uint64_t offset, size;
} section_out;

static int write_header(int fd, const section_out *sec, uint32_t n_sec, uint64_t file_size) {
  bytes table = {0}, head = {0};
  int ok = 1;
  for (uint32_t i = 0; i < n_sec && ok; i++)
    ok = put_u32(&table, sec[i].kind) && put_u32(&table, sec[i].crc) && put_u64(&table, sec[i].offset) && put_u64(&table, sec[i].size) &&
         put_u64(&table, 0);
  unsigned char zero[16] = {0};
  ok = ok && put_bytes(&head, "TWRITEMS", 8) && put_u32(&head, 1) && put_u32(&head, 64) && put_u64(&head, file_size) &&
       put_u64(&head, 64) && put_u32(&head, n_sec) && put_u32(&head, 0) && put_u32(&head, trt_crc32(0, table.p, table.len)) &&
       put_bytes(&head, zero, 16);
  ok = ok && put_u32(&head, trt_crc32(0, head.p, 60));
  ok = ok && pwrite_all(fd, head.p, head.len, 0) && pwrite_all(fd, table.p, table.len, 64);
  free(table.p);
  free(head.p);
  return ok;
}

static towerrt_status write_tail(trt_items_builder *b) {
  towerrt_status st;
  if (!b->o.shard_count && b->rows == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "no items to build a store from");
  uint64_t want = slots_for(b->rows);
  if (want != b->n_slots && (st = map_resize(b, want))) return st;
  bytes meta = {0}, order = {0};
  if (!build_meta(b->m, b->rows, b->seen, b->stride, &b->o, &meta)) {
    free(meta.p);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  int ok = 1;
  for (uint64_t r = 0; r < b->rows && b->o.shard_count && ok; r++) ok = put_u64(&order, b->ord[r]);
  if (!ok) {
    free(meta.p);
    free(order.p);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  size_t map_len = 16 + (size_t)b->n_slots * 16;
  section_out sec[4] = {{TRT_SEC_META, trt_crc32(0, meta.p, meta.len), align64(64 + (uint64_t)b->n_sec * 32), meta.len},
                        {TRT_SEC_ITEM_HEADS, b->crc, b->heads_offset, b->rows * b->stride},
                        {TRT_SEC_ID_MAP, trt_crc32(0, b->map, map_len), 0, map_len},
                        {TRT_SEC_ROW_ORDER, trt_crc32(0, order.p, order.len), 0, order.len}};
  sec[2].offset = align64(sec[1].offset + sec[1].size);
  sec[3].offset = align64(sec[2].offset + sec[2].size);
  uint64_t file_size = b->n_sec == 4 ? sec[3].offset + sec[3].size : sec[2].offset + sec[2].size;
  ok = meta.len == b->meta_len && write_zeros(b->fd, 64 + (uint64_t)b->n_sec * 32, sec[0].offset) &&
       pwrite_all(b->fd, meta.p, meta.len, sec[0].offset) && write_zeros(b->fd, sec[0].offset + meta.len, sec[1].offset) &&
       write_zeros(b->fd, sec[1].offset + sec[1].size, sec[2].offset) && pwrite_all(b->fd, b->map, map_len, sec[2].offset);
  if (ok && b->n_sec == 4)
    ok = write_zeros(b->fd, sec[2].offset + sec[2].size, sec[3].offset) && (order.len == 0 || pwrite_all(b->fd, order.p, order.len, sec[3].offset));
  ok = ok && write_header(b->fd, sec, b->n_sec, file_size) && ftruncate(b->fd, (off_t)file_size) == 0;
  free(meta.p);
  free(order.p);
  return ok ? TOWERRT_OK : trt_fail(TOWERRT_ERR_IO, "cannot write '%s': %s", b->out.tmp, strerror(errno));
}

towerrt_status trt_items_builder_finish(trt_items_builder *b) {
  if (!b) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_items_builder_finish: builder is NULL");
  towerrt_status st = b->failed ? trt_fail(b->failed, "this build already failed (%s)", towerrt_status_name(b->failed)) : TOWERRT_OK;
  if (!st && b->w) {
    submit(b);
    st = drain(b);
  }
  stop_workers(b);
  if (!st && b->o.discard_heads) {
    /* benchmark mode: nothing is written */
    trt_items_builder_abort(b);
    return TOWERRT_OK;
  }
  if (!st) st = write_tail(b);
  if (!st) {
    b->fd = -1; /* fsync, close, rename, fsync of the directory */
    st = trt_atomic_commit(&b->out);
  }
  if (st) trt_items_builder_abort(b);
  else builder_free(b);
  return st;
}

/* ---- the public whole-array build -------------------------------------------- */
towerrt_status towerrt_items_build(const towerrt_model *m, const towerrt_features *items, const uint64_t *item_ids, size_t n,
                                   const char *path) {
  if (!m || !items || !item_ids || !path)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_build: model, items, item_ids and path must not be NULL");
  if (n == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_items_build: no items");
  if (n >= TRT_EMPTY_ROW) return trt_fail(TOWERRT_ERR_LIMIT, "towerrt_items_build: %zu items exceed the limit %u", n, TRT_EMPTY_ROW - 1);
  towerrt_status st = trt_check_features(m, TOWERRT_ITEM, items, n);
  if (st) return st;
  trt_build_options o;
  trt_build_options_init(&o);
  o.expected = n;
  trt_items_builder *b;
  if ((st = trt_items_builder_open(m, path, &o, &b))) return st;
  st = trt_items_builder_append(b, items, item_ids, n);
  if (st) {
    trt_items_builder_abort(b);
    return st;
  }
  return trt_items_builder_finish(b);
}
