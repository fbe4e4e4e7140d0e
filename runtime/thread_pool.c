#include "thread_pool.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

static void run_tasks(trt_job *job, uint32_t slot) {
  for (;;) {
    uint32_t t = atomic_fetch_add_explicit(&job->next_task, 1, memory_order_relaxed);
    if (t >= job->n_tasks) return;
    job->fn(job->ctx, t, slot);
  }
}

/* First queued job that still has tasks and a free slot. */
static trt_job *joinable(trt_node_pool *p) {
  for (trt_job *j = p->head; j; j = j->next)
    if (j->next_slot < j->max_slots && atomic_load_explicit(&j->next_task, memory_order_relaxed) < j->n_tasks) return j;
  return NULL;
}

typedef struct worker_arg {
  trt_node_pool *pool;
  uint32_t index;
} worker_arg;

/* Pinned by the starting thread, so the result is known (and printable)
 * before the pool is used. */
static void pin_worker(trt_node_pool *p, uint32_t index) {
  if (!p->pin || p->topo->simulated) {
    p->pinned[index] = 0;
    return;
  }
  p->pinned[index] = trt_topology_pin_thread(p->topo, p->threads[index], p->pu[index]) == 0 ? 1 : -1;
}

static void *worker_main(void *arg) {
  worker_arg wa = *(worker_arg *)arg;
  free(arg);
  trt_node_pool *p = wa.pool;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    trt_job *job;
    while (!p->stop && !(job = joinable(p))) pthread_cond_wait(&p->work, &p->mu);
    if (p->stop) break;
    uint32_t slot = job->next_slot++;
    job->active++;
    pthread_mutex_unlock(&p->mu);
    run_tasks(job, slot);
    pthread_mutex_lock(&p->mu);
    if (--job->active == 0) pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

towerrt_status trt_node_pool_start(trt_node_pool *p, const trt_topology *topo, uint32_t node, uint32_t n_workers, int pin) {
  memset(p, 0, sizeof *p);
  p->topo = topo;
  p->node = node;
  p->pin = pin;
  p->threads = calloc(n_workers + 1, sizeof *p->threads);
  p->pu = calloc(n_workers + 1, sizeof *p->pu);
  p->pinned = calloc(n_workers + 1, sizeof *p->pinned);
  if (!p->threads || !p->pu || !p->pinned) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a pool of %u workers", n_workers);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  const trt_numa_node *nd = &topo->nodes[node];
  /* Fewer workers than cores: take the node's last cores and leave the
   * first ones to the callers, which are not pinned and usually start
   * there; a worker sharing its core with a busy caller only time-slices. */
  uint32_t first = n_workers < nd->n_cores ? nd->n_cores - n_workers : 0;
  for (uint32_t i = 0; i < n_workers; i++) {
    p->pu[i] = nd->n_cores ? nd->core_pu[(first + i) % nd->n_cores] : 0;
    worker_arg *wa = malloc(sizeof *wa);
    if (!wa) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory starting workers");
    *wa = (worker_arg){p, i};
    if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
      free(wa);
      return trt_fail(TOWERRT_ERR_NO_MEMORY, "cannot start worker %u of node %u", i, nd->os_index);
    }
    p->started++;
    p->n_workers++;
    pin_worker(p, i);
  }
  return TOWERRT_OK;
}

void trt_node_pool_stop(trt_node_pool *p) {
  if (!p->threads) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (uint32_t i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p->threads);
  free(p->pu);
  free(p->pinned);
  memset(p, 0, sizeof *p);
}

void trt_node_pool_run(trt_node_pool *p, trt_job *job, uint32_t n_tasks, uint32_t max_slots, trt_task_fn fn, void *ctx) {
  job->fn = fn;
  job->ctx = ctx;
  job->n_tasks = n_tasks;
  job->max_slots = max_slots ? max_slots : 1;
  atomic_store_explicit(&job->next_task, 0, memory_order_relaxed);
  job->next_slot = 1; /* slot 0 is the caller's */
  job->active = 0;
  job->next = NULL;
  int share = p && p->n_workers && job->max_slots > 1 && n_tasks > 1;
  if (share) {
    pthread_mutex_lock(&p->mu);
    trt_job **tail = &p->head;
    while (*tail) tail = &(*tail)->next;
    *tail = job;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
  }
  run_tasks(job, 0);
  if (!share) return;
  /* Every task is claimed: unlink the job so no worker joins it, then wait
   * for the workers still running its last tasks. */
  pthread_mutex_lock(&p->mu);
  for (trt_job **j = &p->head; *j; j = &(*j)->next)
    if (*j == job) {
      *j = job->next;
      break;
    }
  while (job->active) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
