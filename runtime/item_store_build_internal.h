/* The streaming item-store builder's state, shared by its three files:
 *   item_store_build.c          open / append / finish: ids, staging, META, the file
 *   item_store_build_engine.c   which engine runs the item tower, and one batch through it
 *   item_store_build_workers.c  the threads that run batches while the caller stages more
 * Not an API: item_store_build.h is. */
#ifndef TOWERRT_ITEM_STORE_BUILD_INTERNAL_H
#define TOWERRT_ITEM_STORE_BUILD_INTERNAL_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_matmul_internal.h"
#include "container_write.h"
#include "item_store_build.h"
#include "onednn_matmul.h"
#include "status.h"
#include "tower_exec.h"

/* TOWERRT_HAVE_ONEDNN comes from runtime/onednn.cmake. Without it the
 * builder does not reference onednn_matmul.c at all (the library may be
 * built without that file, e.g. by the fuzz harness), and builds use the
 * internal kernels. */
#ifdef TOWERRT_HAVE_ONEDNN
#define TRT_MM_BUILT_IN 1
#else
#define TRT_MM_BUILT_IN 0
#endif

#define TRT_BUILD_DEFAULT_BATCH 256u

/* One worker thread and the batch it owns. */
typedef struct trt_build_worker {
  struct trt_items_builder *b;
  pthread_t thread;
  int started;
  /* the staged batch: n rows starting at store row first_row */
  int64_t *ids;
  float *dense;
  size_t n;
  uint64_t first_row;
  int busy; /* submitted, not yet collected */
  int done; /* computed (or failed) */
  towerrt_status st;
  char err[TRT_MSG_CAP];
  uint32_t crc; /* of the batch's n rows */
  double t_tower, t_write;
  unsigned char *out; /* batch x stride, 64-byte aligned */
  /* engines, owned by the worker thread */
  void *arena;
  trt_workspace ws;
  trt_mm *mm;   /* oneDNN engine */
  trt_bmm *bmm; /* internal engine, bf16 / int8 */
  float *x0, *act_a, *act_b, *emb, *scratch;
} trt_build_worker;

struct trt_items_builder {
  const towerrt_model *m;
  trt_build_options o;
  trt_writer file; /* the container, in a unique temporary until finish */
  int engine, raw; /* raw: rows come with their heads (append_heads) */
  char engine_name[224];
  char fallback[TRT_MSG_CAP]; /* why oneDNN was not used, when it was wanted */
  uint64_t stride, meta_len, rows, seen, staged_rows;
  size_t per_row;
  uint32_t crc; /* of ITEM_HEADS so far (the collected batches) */
  towerrt_status failed;
  /* id map in its file layout (item_id_map.h) */
  unsigned char *map;
  uint64_t n_slots;
  uint64_t *ord; /* shard builds: the input ordinal of each row */
  size_t ord_cap;
  size_t batch, id_slots, dense_w;
  /* workers; batches go round-robin, so they complete and fold in order */
  trt_build_worker *w;
  unsigned n_workers, next;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int sync_ready, quit;
  trt_items_build_stats stats;
};

/* Zeroed, 64-byte aligned (rows of heads, activations). */
static inline void *trt_build_alloc64(size_t n_bytes) {
  void *p = aligned_alloc(64, (n_bytes + 63) & ~(size_t)63);
  if (p) memset(p, 0, (n_bytes + 63) & ~(size_t)63);
  return p;
}

static inline double trt_build_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* item_store_build_engine.c */
/* Chooses b->engine (options, TOWERRT_BUILD_ENGINE, what this CPU and
 * build offer) and names it in b->engine_name. */
towerrt_status trt_build_resolve_engine(trt_items_builder *b);
/* The heads of the worker's n staged rows into w->out (its engine made on
 * first use, in the worker's thread); trt_build_engine_free releases it. */
towerrt_status trt_build_run_tower(trt_build_worker *w);
void trt_build_engine_free(trt_build_worker *w);

/* item_store_build_workers.c */
towerrt_status trt_build_start_workers(trt_items_builder *b);
/* Waits for every batch, joins the threads, frees their buffers. */
void trt_build_stop_workers(trt_items_builder *b);
/* Hands the staged batch of the current worker over, and moves on. */
void trt_build_submit(trt_items_builder *b);
/* The worker that takes the next rows, once its previous batch is in. */
towerrt_status trt_build_stage_target(trt_items_builder *b, trt_build_worker **out);
/* Collects every batch in flight (in staging order). */
towerrt_status trt_build_drain(trt_items_builder *b);

#endif
