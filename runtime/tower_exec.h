/* Executes the compiled towers with the selected kernels on a caller's
 * workspace: no allocation here. Shared by sessions and the store builder. */
#ifndef TOWERRT_TOWER_EXEC_H
#define TOWERRT_TOWER_EXEC_H

#include "model.h"

#define TRT_ITEM_BLOCK 32u /* candidates per item-tower block */
#define TRT_ID_BLOCK 256u  /* candidate ids resolved per MaxSim call */

typedef struct trt_workspace {
  float *user_emb, *user_x0, *user_scratch, *user_a, *user_b, *user_heads;
  /* the user heads converted for a bf16 or int8 item store */
  uint16_t *user_bf16;
  uint8_t *user_u8;
  int32_t *user_zp;
  float *user_scale;
  /* the user heads packed once per request for the MaxSim kernel
   * (trt_maxsim_kernel.pack): room for the largest of the set's layouts */
  void *user_packed;
  /* a quantized user layer's input: bf16, or u8 rows of in_pad bytes */
  uint16_t *user_x_bf16;
  uint8_t *user_x_u8;
  float *item_emb, *item_x0, *item_scratch, *item_a, *item_b, *item_heads;
  uint32_t *rows;
} trt_workspace;

/* Bytes of one workspace (64-byte aligned slices). */
size_t trt_workspace_bytes(const towerrt_model *m);
/* Carves the workspace out of a 64-byte-aligned arena of trt_workspace_bytes. */
void trt_workspace_init(const towerrt_model *m, void *arena, trt_workspace *ws);

/* Checks one side's rows: counts, id ranges, finite dense values. */
towerrt_status trt_check_features(const towerrt_model *m, uint32_t side, const towerrt_features *f, size_t rows);

/* User heads of the FE layers in fe_mask, stacked: popcount(mask) x heads x dim.
 * t: the user tower to run (m->user, or its copy on a NUMA node). */
void trt_user_forward(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids,
                      const float *dense, uint32_t fe_mask, float *heads);

/* One row's tower input: gather + pool + Light-SE + dense values into x0
 * (t->input_width floats); emb and scratch as in the workspace. */
void trt_tower_input(const towerrt_model *m, const trt_tower *t, const int64_t *ids, const float *dense, float *emb,
                     float *scratch, float *x0);

/* The heads of n users (n x popcount(fe_mask) x heads x dim), the user
 * tower run as batched matrix products through oneDNN where this build has
 * it and the tower is f32 IntTower, else one row at a time exactly as
 * trt_user_forward (runtime/user_batch.c). Allocates its batch buffers;
 * *mm caches the oneDNN primitives between calls (created if NULL, freed
 * by the owner with trt_mm_free). */
struct trt_mm;
towerrt_status trt_user_heads_batch(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, struct trt_mm **mm,
                                    uint32_t fe_mask, const towerrt_features *users, size_t n, float *heads);

/* One user row through one layer of any weight precision (f32, bf16, s8). */
void trt_user_dense(const towerrt_model *m, trt_workspace *ws, const trt_dense_layer *d, const float *x, float *y);

/* As trt_user_forward, and calls observe(ctx, L, x, width) with the input
 * of every user layer L it runs (the quantizer's calibration). */
typedef void (*trt_layer_observer)(void *ctx, uint32_t layer, const float *x, size_t width);
void trt_user_forward_observed(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids,
                               const float *dense, uint32_t fe_mask, float *heads, trt_layer_observer observe, void *ctx);
/* Item heads of n <= TRT_ITEM_BLOCK rows: n x heads x dim, into ws->item_heads. */
void trt_item_forward(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids,
                      const float *dense, size_t n);

#endif
