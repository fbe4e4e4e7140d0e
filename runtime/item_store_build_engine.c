/* Which engine runs the item tower of a build, and one batch through it
 * (item_store_build_internal.h). oneDNN where it can make the precision's
 * matmul on this CPU (one thread per batch: the builder's workers are the
 * parallelism), else the internal kernels: trt_item_forward for f32 as the
 * sessions run it, batch_matmul_internal.c for bf16 / int8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_store_build_internal.h"

#if defined(__SANITIZE_THREAD__)
#define TRT_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TRT_UNDER_TSAN 1
#endif
#endif

#if TRT_MM_BUILT_IN
static towerrt_status mm_probe(int precision) { return trt_mm_probe(precision); }
static int mm_weight_max(void) { return trt_mm_weight_max(); }
static const char *mm_describe(void) { return trt_mm_describe(); }
#else
static towerrt_status mm_probe(int precision) {
  (void)precision;
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "this towerrt was built without oneDNN (TOWERRT_WITH_ONEDNN)");
}
static int mm_weight_max(void) { return 127; }
static const char *mm_describe(void) { return "this towerrt was built without oneDNN"; }
#endif

static const char *precision_name(int p) { return towerrt_precision_name((towerrt_precision)p); }

/* The batched engines (oneDNN, or internal bf16 / int8) run the tower
 * layer by layer over a full batch; the internal f32 engine runs blocks of
 * TRT_ITEM_BLOCK rows through trt_item_forward, as the sessions do. */
static int batched(const trt_items_builder *b) { return b->engine == TRT_ENGINE_ONEDNN || b->o.precision != TOWERRT_PRECISION_F32; }

towerrt_status trt_build_resolve_engine(trt_items_builder *b) {
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
    b->batch = TRT_BUILD_DEFAULT_BATCH;
    b->n_workers = 1;
    if (trt_build_resolve_engine(b)) snprintf(text, sizeof text, "none: %s", towerrt_last_error());
    else snprintf(text, sizeof text, "%s", b->engine_name);
  }
  free(b);
  if (cap) snprintf(buf, cap, "%s", text);
  return strlen(text);
}

/* Engine state of a worker, made in its own thread (oneDNN takes the
 * calling thread's OpenMP setting: one thread per batch). */
static towerrt_status worker_engine(trt_build_worker *w) {
  trt_items_builder *b = w->b;
  const trt_tower *t = &b->m->item;
  size_t B = b->batch;
  if (!batched(b)) {
    if (!(w->arena = trt_build_alloc64(trt_workspace_bytes(b->m)))) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a workspace");
    trt_workspace_init(b->m, w->arena, &w->ws);
    return TOWERRT_OK;
  }
  if (!((w->x0 = trt_build_alloc64(B * t->input_width * sizeof(float))) && (w->act_a = trt_build_alloc64(B * t->max_width * sizeof(float))) &&
        (w->act_b = trt_build_alloc64(B * t->max_width * sizeof(float))) && (w->emb = trt_build_alloc64(t->input_width * sizeof(float))) &&
        (w->scratch = trt_build_alloc64(2 * (size_t)t->n_id_fields * sizeof(float) + 64))))
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu items", B);
  if (b->engine == TRT_ENGINE_INTERNAL) {
    size_t widest = t->input_width > t->max_width ? t->input_width : t->max_width;
    return trt_bmm_create(&b->m->kernels, b->o.precision, B, widest, &w->bmm);
  }
#if TRT_MM_BUILT_IN
  return trt_mm_create(1, b->o.precision, &w->mm);
#else
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "built without oneDNN");
#endif
}

/* One layer of the batched engines. */
static towerrt_status batch_dense(trt_build_worker *w, const trt_dense_layer *d, int nonneg, const float *x, size_t ldx, float *y, size_t ldy) {
  if (w->bmm) return trt_bmm_dense(w->bmm, d, nonneg, x, ldx, w->b->batch, y, ldy);
#if TRT_MM_BUILT_IN
  return trt_mm_dense(w->mm, d, nonneg, x, ldx, w->b->batch, y, ldy);
#else
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "built without oneDNN");
#endif
}

/* Heads of the worker's n staged rows into w->out (its engine made on
 * first use). The batched engines
 * always run the full batch (rows past n are stale or zero, finite, and
 * not written) so that every row goes through the same primitive wherever
 * it sits. */
towerrt_status trt_build_run_tower(trt_build_worker *w) {
  trt_items_builder *b = w->b;
  if (!(w->mm || w->bmm || w->arena)) {
    towerrt_status st = worker_engine(w);
    if (st) return st;
  }
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

/* In the worker's thread, as it ends (the engine was made there). */
void trt_build_engine_free(trt_build_worker *w) {
#if TRT_MM_BUILT_IN
  trt_mm_free(w->mm);
#endif
  trt_bmm_free(w->bmm);
  free(w->arena);
  free(w->x0);
  free(w->act_a);
  free(w->act_b);
  free(w->emb);
  free(w->scratch);
  w->mm = NULL;
  w->bmm = NULL;
  w->arena = NULL;
  w->x0 = w->act_a = w->act_b = w->emb = w->scratch = NULL;
}
