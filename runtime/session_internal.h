/* session_internal.h - what session.c (a session's life) and
 * session_score.c (its requests) share: the session itself and the
 * observer's clock. Nothing outside those two files includes it. */
#ifndef TRT_SESSION_INTERNAL_H
#define TRT_SESSION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "family.h"
#include "item_store.h"
#include "pool.h"
#include "status.h"
#include "topn.h"
#include "tower_exec.h"

/* What one participant of a request keeps besides its workspace: a
 * block's scores before they reach the caller (top-n, skipped candidates),
 * which candidate of the block each score belongs to, and its top-n heap. */
typedef struct trt_serve_slot {
  float *scores;  /* TRT_ID_BLOCK */
  uint16_t *pos;  /* TRT_ID_BLOCK: index in the block of each resolved row */
  /* overlays: candidates found in a delta, before they are grouped by delta */
  uint32_t *drow; /* TRT_ID_BLOCK: row in its delta */
  uint16_t *dpos; /* TRT_ID_BLOCK: index in the block */
  const towerrt_items **dlayer; /* TRT_ID_BLOCK: the delta */
  trt_rank *heap; /* max_topn entries */
  trt_topn topn;
} trt_serve_slot;

struct towerrt_session {
  const towerrt_model *model;
  /* The store of the next request: towerrt_session_set_items may replace it
   * from another thread while a request runs, hence the lock. The session
   * holds a reference to it. */
  pthread_mutex_t items_mu;
  const towerrt_items *current;
  uint32_t allow_foreign;
  /* The store of the request in flight (a reference held until it returns). */
  const towerrt_items *items;
  uint32_t max_k, fe_mask, output_logits;
  uint32_t max_topn, skip_unknown;
  /* Where it runs: a node's pool, that node's copies of the weights/heads. */
  trt_node_pool *pool;
  uint32_t threads, node;
  const trt_tower *user, *item;
  const void *item_heads;
  /* MaxSim of the request's store, chosen once when the store is acquired:
   * the kernel for its precision, and what it reads of the store (all but
   * the heads, which differ for a delta) */
  const trt_maxsim_kernel *maxsim;
  trt_maxsim_items maxsim_items;
  /* One workspace per participant slot (slot 0: the caller). */
  void *arena;
  trt_workspace *ws;
  void *serve_arena;
  trt_serve_slot *slots;
  /* The request being scored, read by the tasks. */
  const uint64_t *req_ids;
  const towerrt_features *req_items;
  float *req_scores;
  size_t req_k;
  size_t req_n; /* top-n requests: n; 0 for scores in candidate order */
  float centre_term;             /* centred base store: sum_u <u, m>, once per request */
  double *user_sum;              /* head_dim: sum_u u of the request (row-centred stores) */
  atomic_size_t first_unknown;   /* lowest candidate index with an unknown id (strict) */
  atomic_size_t first_nonfinite; /* lowest candidate index whose score is not finite */
  atomic_size_t skipped;         /* unknown candidates skipped */
  size_t last_skipped;
  trt_job job;
  struct trt_mm *mm; /* towerrt_user_heads: oneDNN primitives, made on first use */
  void *family_scratch; /* a family with its own request (family.h request_bytes), planned for max_k */
  float *family_scores; /* max_k: its raw scores, for top-n */
  const float **family_rows; /* max_k: by id, each candidate's item row */
  char error[TRT_MSG_CAP];
  towerrt_trace_fn trace; /* towerrt_session_set_trace: NULL = off */
  void *trace_ctx;
};

/* CLOCK_MONOTONIC ns when tracing, else 0 without reading the clock. */
static inline uint64_t trt_trace_begin(const towerrt_session *s) {
  if (!s->trace) return 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void trt_trace_end(const towerrt_session *s, const char *step, uint64_t t0, uint32_t slot) {
  if (s->trace) s->trace(s->trace_ctx, step, t0, trt_trace_begin(s), slot);
}

#endif
