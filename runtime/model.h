/* The loaded model: the parsed file (fields, tensors, graph) and the
 * compiled plan the sessions execute. Immutable after towerrt_model_load. */
#ifndef TOWERRT_MODEL_H
#define TOWERRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "container.h"
#include "graph_records.h"
#include "kernels/kernels.h"
#include "mapped_file.h"
#include "towerrt.h"

#define TRT_MAX_LAYERS 16
#define TRT_MAX_FIELDS 256
#define TRT_MAX_WIDTH (1u << 16)
#define TRT_MAX_SLOTS 4096
#define TRT_NAME_CAP 80

enum { TRT_FIELD_SINGLE = 0, TRT_FIELD_MULTI = 1, TRT_FIELD_DENSE = 2 };
enum { TRT_DTYPE_F32 = 1, TRT_DTYPE_BF16 = 2, TRT_DTYPE_F16 = 3, TRT_DTYPE_S8 = 4, TRT_DTYPE_U8 = 5, TRT_DTYPE_S32 = 6 };

typedef struct trt_field {
  char name[64];
  uint32_t side, kind, vocab, dim, slots, combiner;
  int32_t table_index;
  const float *table; /* vocab x dim, in the mapped file */
} trt_field;

typedef struct trt_tensor {
  char name[TRT_NAME_CAP];
  uint32_t dtype, ndim;
  uint32_t dims[4];
  uint64_t offset, nbytes, count;
  int32_t scale_index;
  const void *data;
} trt_tensor;

/* A fused Linear (+ folded BatchNorm) (+ ReLU). Weights owned by the model,
 * in one of three precisions (docs/quantization.md): f32 everywhere; bf16
 * or s8 (per-output-channel scales) in the user tower of a quantized model. */
typedef struct trt_dense_layer {
  uint32_t in, out;
  int relu;
  uint32_t wtype;          /* TRT_DTYPE_F32, TRT_DTYPE_BF16 or TRT_DTYPE_S8 */
  const float *w;          /* f32: out x in */
  const uint16_t *w_bf16;  /* bf16: out x in */
  const int8_t *w_s8;      /* s8: out x in_pad, zero beyond in */
  const int32_t *w_sum;    /* s8: per output, sum of its row */
  const float *w_scale;    /* s8: per output, > 0 */
  uint32_t in_pad;         /* s8: in rounded up to 64 */
  float x_scale;           /* s8: calibrated input quantization; 0 = per request */
  int32_t x_zp;
  const float *b; /* out (always present once compiled: zeros if the file has none) */
  int32_t src_weight; /* tensor index, for the printed plan */
  int folded_bn;
} trt_dense_layer;

/* 1 for a bf16 or s8 layer (the user tower of a quantized model). */
static inline int trt_dense_quantized(const trt_dense_layer *d) {
  return d->wtype == TRT_DTYPE_BF16 || d->wtype == TRT_DTYPE_S8;
}

/* One tower as compiled: id fields -> pool -> Light-SE -> concat dense ->
 * dense layers; FE projections on layer inputs (user) or the last output. */
typedef struct trt_tower {
  uint32_t n_id_fields, emb_dim, id_slots, dense_width, input_width;
  uint32_t first_field; /* index into model->fields of this side's first field */
  uint32_t n_fields;
  const float *lightse_w, *lightse_b;
  uint32_t n_layers;
  trt_dense_layer layers[TRT_MAX_LAYERS];
  /* user: fe[i] projects the input of layer i (present if fe_present bit i);
   * item: fe[0] projects the output of the last layer. */
  trt_dense_layer fe[TRT_MAX_LAYERS];
  uint32_t fe_present;
  uint32_t max_width; /* widest activation, for arena planning */
} trt_tower;

#ifndef TRT_MAX_NODES
#define TRT_MAX_NODES 64
#endif

/* The towers with their weights in one NUMA node's memory (placement). */
typedef struct trt_placed_towers {
  trt_tower user, item;
  void *mem;
  int bound;
} trt_placed_towers;

struct towerrt_model {
  trt_mapped_file file;
  trt_container container;
  trt_meta meta;
  uint32_t n_fields;
  trt_field *fields;
  uint32_t n_tensors;
  trt_tensor *tensors;
  trt_tower user, item;
  uint32_t heads_user, heads_item, head_dim;
  uint32_t trained_fe_mask;
  int output_sigmoid;
  float out_bias;
  uint32_t item_fingerprint;
  towerrt_kernels kernels;
  char *owned; /* one block holding every compute weight (folded tower, FE) */
  size_t owned_bytes;
  /* options.max_load_bytes (0: none) and the heap bytes this load holds so
   * far (the file copy): trt_model_reserve checks each block against it. */
  uint64_t max_load_bytes, load_bytes;
  /* Placement (towerrt_options.placement with a pool): per node index, the
   * towers a session on that node runs; NULL = m->user / m->item. */
  const towerrt_pool *pool;
  uint32_t placement;
  trt_placed_towers *placed[TRT_MAX_NODES];
  /* The model's family (runtime/family.h: IntTower, DSSM, DAT) and the
   * family's own compiled state (NULL for IntTower). */
  const struct trt_family *family;
  void *family_data;
};

/* model_load.c: counts `bytes` more of load-time heap (`what` names them)
 * against options.max_load_bytes; LIMIT beyond it. */
towerrt_status trt_model_reserve(towerrt_model *m, uint64_t bytes, const char *what);
/* model_file.c: parse and validate FIELDS and TENSORS. */
towerrt_status trt_model_parse_tables(towerrt_model *m);
/* graph_compile.c: validate the graph, fold BN, plan the towers. */
towerrt_status trt_model_compile(towerrt_model *m);
uint32_t trt_model_item_fingerprint(const towerrt_model *m);
/* One side's field layout into its tower (order, dims, slots, input width). */
towerrt_status trt_plan_fields(towerrt_model *m, uint32_t side);
/* For error messages. */
const char *trt_side_name(uint32_t side);
/* The describe text (towerrt info). */
size_t trt_model_describe_plan(const towerrt_model *m, char *buf, size_t cap);

/* model_place.c: copies the weights to the pool's nodes. */
towerrt_status trt_model_place(towerrt_model *m, const towerrt_pool *pool, uint32_t placement);
void trt_model_unplace(towerrt_model *m);

/* cpu_features.c */
towerrt_status trt_select_kernels(const char *requested, towerrt_kernels *out);

#endif
