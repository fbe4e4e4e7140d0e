/* A pool of worker threads for one NUMA node, each pinned to one core of
 * it. Callers run a job (n tasks) with up to max_slots participants: the
 * caller itself (slot 0) plus idle workers that join. Several jobs from
 * several sessions may run at once; nothing is allocated per job. */
#ifndef TOWERRT_THREAD_POOL_H
#define TOWERRT_THREAD_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "topology.h"

typedef void (*trt_task_fn)(void *ctx, uint32_t task, uint32_t slot);

typedef struct trt_job {
  trt_task_fn fn;
  void *ctx;
  uint32_t n_tasks, max_slots;
  atomic_uint next_task;
  uint32_t next_slot, active; /* guarded by the pool mutex */
  struct trt_job *next;
} trt_job;

typedef struct trt_node_pool {
  const trt_topology *topo;
  uint32_t node;      /* index into topo->nodes */
  uint32_t n_workers;
  pthread_t *threads;
  uint32_t *pu;       /* the core (first PU, OS index) each worker is pinned to */
  int *pinned;        /* 1 bound, 0 not bound (simulated topology or pinning off), -1 failed */
  int pin;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  trt_job *head;
  int stop;
  uint32_t started;
} trt_node_pool;

/* Starts n_workers threads on node `node`, pinned round-robin to its cores. */
towerrt_status trt_node_pool_start(trt_node_pool *p, const trt_topology *topo, uint32_t node, uint32_t n_workers, int pin);
void trt_node_pool_stop(trt_node_pool *p);
/* Runs fn(ctx, task, slot) for every task; returns when all are done.
 * slot < max_slots is unique among the participants of this job. */
void trt_node_pool_run(trt_node_pool *p, trt_job *job, uint32_t n_tasks, uint32_t max_slots, trt_task_fn fn, void *ctx);

#endif
