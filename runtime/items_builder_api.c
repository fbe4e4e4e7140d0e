/* The public streaming builder (towerrt.h "streaming item-store builds"):
 * a thin wrapper over the internal trt_items_builder_* of
 * item_store_build.h, which stays the implementation. Also the shard rule
 * and the model's field list, which a caller needs to cut a catalog into
 * shards and to lay out its columns. */
#include <stdlib.h>
#include <string.h>

#include "item_store_build.h"
#include "model.h"
#include "onednn_matmul.h"
#include "status.h"

struct towerrt_items_builder {
  trt_items_builder *b;
};

TOWERRT_API void towerrt_build_options_init(towerrt_build_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = (uint32_t)sizeof *o;
  o->precision = TOWERRT_PRECISION_F32;
}

TOWERRT_API towerrt_status towerrt_items_builder_open(const towerrt_model *m, const char *path, const towerrt_build_options *opts,
                                                      towerrt_items_builder **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_builder_open: out is NULL");
  *out = NULL;
  towerrt_build_options d;
  towerrt_build_options_init(&d);
  if (!opts) opts = &d;
  if (opts->struct_size != sizeof *opts)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "build options.struct_size is %u, expected %zu: call towerrt_build_options_init",
                    opts->struct_size, sizeof *opts);
  if ((unsigned)opts->precision > 2)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "build precision %d is not a towerrt_precision", (int)opts->precision);
  if (opts->shard_count == 0 && opts->shard_index != 0)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "shard_index %u without a shard_count", opts->shard_index);
  trt_build_options o;
  trt_build_options_init(&o);
  o.precision = opts->precision;
  o.threads = opts->threads;
  o.expected = opts->expected_rows;
  o.shard_index = opts->shard_index;
  o.shard_count = opts->shard_count;
  o.input_rows = opts->input_rows;
  if ((unsigned)opts->engine > TOWERRT_BUILD_ONEDNN)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "build engine %d is not auto, internal or onednn", (int)opts->engine);
  o.engine = opts->engine == TOWERRT_BUILD_INTERNAL ? TRT_ENGINE_INTERNAL
             : opts->engine == TOWERRT_BUILD_ONEDNN ? TRT_ENGINE_ONEDNN : TRT_ENGINE_AUTO;
  towerrt_items_builder *w = calloc(1, sizeof *w);
  if (!w) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_status st = trt_items_builder_open(m, path, &o, &w->b);
  if (st) {
    free(w);
    return st;
  }
  *out = w;
  return TOWERRT_OK;
}

TOWERRT_API towerrt_status towerrt_items_builder_append(towerrt_items_builder *w, const towerrt_features *items, const uint64_t *ids,
                                                        size_t n) {
  if (!w) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_builder_append: builder is NULL");
  return trt_items_builder_append(w->b, items, ids, n);
}

TOWERRT_API towerrt_status towerrt_items_builder_append_ordered(towerrt_items_builder *w, const towerrt_features *items,
                                                                const uint64_t *ids, const uint64_t *ordinals, size_t n) {
  if (!w) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_builder_append_ordered: builder is NULL");
  return trt_items_builder_append_ordered(w->b, items, ids, ordinals, n);
}

TOWERRT_API size_t towerrt_items_builder_rows(const towerrt_items_builder *w) { return w ? (size_t)trt_items_builder_rows(w->b) : 0; }
TOWERRT_API size_t towerrt_items_builder_seen(const towerrt_items_builder *w) { return w ? (size_t)trt_items_builder_seen(w->b) : 0; }
TOWERRT_API const char *towerrt_items_builder_engine(const towerrt_items_builder *w) { return w ? trt_items_builder_engine(w->b) : ""; }

TOWERRT_API towerrt_status towerrt_items_builder_finish(towerrt_items_builder *w) {
  if (!w) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_items_builder_finish: builder is NULL");
  towerrt_status st = trt_items_builder_finish(w->b);
  free(w);
  return st;
}

TOWERRT_API void towerrt_items_builder_abort(towerrt_items_builder *w) {
  if (!w) return;
  trt_items_builder_abort(w->b);
  free(w);
}

TOWERRT_API uint32_t towerrt_item_shard(uint64_t id, uint32_t n) { return trt_item_shard(id, n); }

TOWERRT_API size_t towerrt_model_field_count(const towerrt_model *m) { return m ? m->n_fields : 0; }

TOWERRT_API towerrt_status towerrt_model_field(const towerrt_model *m, size_t i, towerrt_field_info *out) {
  if (!m || !out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_model_field: model and out must not be NULL");
  if (i >= m->n_fields) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "field %zu of %u", i, m->n_fields);
  const trt_field *f = &m->fields[i];
  *out = (towerrt_field_info){.name = f->name, .side = (towerrt_side)f->side, .kind = f->kind,
                              .width = f->kind == 2 ? f->dim : f->slots, .vocab = f->vocab};
  return TOWERRT_OK;
}
