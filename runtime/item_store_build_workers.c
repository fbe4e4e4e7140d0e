/* The builder's worker threads (item_store_build_internal.h). The caller's
 * thread stages rows into fixed batches, one per worker in turn; a worker
 * runs its batch through the item tower, checksums it and writes its heads
 * at their place in the file (trt_writer_pwrite), while the caller goes on
 * staging, and returns from append with batches still in flight; batches
 * are collected, and their CRCs folded, in the order they were staged.
 *
 * Why these threads and not runtime/thread_pool.c's node pools:
 *  - trt_node_pool_run is fork-join: the caller takes part and returns
 *    only when every task of the job is done. A build needs the caller to
 *    hand a batch over and return (to parse the next input rows, in the
 *    CLI: from text) while the batch computes; a job per append would make
 *    reading the input and running the tower take turns instead of
 *    overlapping.
 *  - An engine belongs to the thread that made it: oneDNN (OpenMP) takes
 *    its thread count from the calling thread's setting, one thread per
 *    batch here; a pool's tasks land on whichever worker joins, so every
 *    task would have to set it again.
 *  - A node pool's workers are pinned to a NUMA node's cores and shared by
 *    every session's request jobs on it: a catalog build queued there
 *    would delay requests. And a build has no pool to use
 *    (towerrt_items_build takes none), while making one needs a topology.
 * What the two share is small (a mutex, a condition variable, a round of
 * threads); the batch logic is the builder's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "item_store_build_internal.h"

/* Tower, CRC and write of the worker's batch (in the worker's thread). */
static void run_batch(trt_build_worker *w) {
  trt_items_builder *b = w->b;
  double t0 = trt_build_now();
  towerrt_status st = trt_build_run_tower(w);
  double t1 = trt_build_now();
  if (!st) {
    size_t len = w->n * (size_t)b->stride;
    w->crc = trt_crc32(0, w->out, len);
    st = trt_writer_pwrite(&b->file, w->first_row * b->stride, w->out, len);
  }
  w->t_tower += t1 - t0;
  w->t_write += trt_build_now() - t1;
  w->st = st;
  if (st) snprintf(w->err, sizeof w->err, "%s", towerrt_last_error());
}

static void *worker_main(void *arg) {
  trt_build_worker *w = arg;
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
  trt_build_engine_free(w);
  return NULL;
}

/* Waits for worker w's batch and folds its CRC (batches are collected in
 * the order they were staged). */
static towerrt_status collect(trt_items_builder *b, trt_build_worker *w) {
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

void trt_build_submit(trt_items_builder *b) {
  trt_build_worker *w = &b->w[b->next];
  if (!w->n || w->busy) return; /* nothing staged */
  w->first_row = b->staged_rows;
  b->staged_rows += w->n;
  pthread_mutex_lock(&b->mu);
  w->busy = 1;
  w->done = 0;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  b->next = (b->next + 1) % b->n_workers;
}

towerrt_status trt_build_stage_target(trt_items_builder *b, trt_build_worker **out) {
  trt_build_worker *w = &b->w[b->next];
  if (w->busy) {
    towerrt_status st = collect(b, w);
    w->n = 0;
    if (st) return st;
  }
  *out = w;
  return TOWERRT_OK;
}

towerrt_status trt_build_drain(trt_items_builder *b) {
  towerrt_status st = TOWERRT_OK;
  for (unsigned k = 0; k < b->n_workers; k++) {
    trt_build_worker *w = &b->w[(b->next + k) % b->n_workers];
    towerrt_status s = collect(b, w);
    w->n = 0;
    if (s && !st) st = s;
  }
  return st;
}

towerrt_status trt_build_start_workers(trt_items_builder *b) {
  if (pthread_mutex_init(&b->mu, NULL) != 0) return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot create a mutex");
  if (pthread_cond_init(&b->cv, NULL) != 0) {
    pthread_mutex_destroy(&b->mu);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot create a condition variable");
  }
  b->sync_ready = 1;
  if (!(b->w = calloc(b->n_workers, sizeof *b->w))) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  for (unsigned i = 0; i < b->n_workers; i++) {
    trt_build_worker *w = &b->w[i];
    w->b = b;
    w->ids = malloc((b->batch * b->id_slots + 1) * sizeof(int64_t));
    w->dense = malloc((b->batch * b->dense_w + 1) * sizeof(float));
    w->out = trt_build_alloc64(b->batch * (size_t)b->stride);
    if (!w->ids || !w->dense || !w->out) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu items", b->batch);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot start a build thread");
    w->started = 1;
  }
  return TOWERRT_OK;
}

void trt_build_stop_workers(trt_items_builder *b) {
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
    trt_build_worker *w = &b->w[i];
    if (w->started) pthread_join(w->thread, NULL);
    b->stats.tower_seconds += w->t_tower;
    b->stats.write_seconds += w->t_write;
    free(w->ids);
    free(w->dense);
    free(w->out);
  }
  free(b->w);
  b->w = NULL;
}
