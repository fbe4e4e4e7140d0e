/* The two-tower family (docs/family.md): the plain two-tower model (DSSM,
 * reference model/dssm.py) and DAT (model/DAT.py), served by the same
 * loader, sessions, item stores and kernels as IntTower.
 *
 * How a family model fits the IntTower machinery, so that the shared code
 * (tower_exec.c, item_store_build.c, session.c) runs it unchanged:
 *   - each side's vector is "one head of `dim` values": heads_user =
 *     heads_item = 1, head_dim = dim; an item store holds one raw item
 *     vector per row (its norm is computed when scoring);
 *   - the last Linear of each tower is compiled as the side's FE
 *     projection (with its folded BatchNorm and ReLU): user fe[N-1] projects
 *     the input of user layer N-1, item fe[0] the output of item layer N-2,
 *     so the shared forward passes produce exactly the tower outputs;
 *   - there is no Light-SE: the model's kernel table carries a plain
 *     concatenation of the field embeddings in the Light-SE slot
 *     (trt_arch_bind_kernels);
 *   - the score is the batched dot product of the MaxSim kernel with one
 *     user head and one item head, finished per candidate by
 *     trt_arch_scores (cosine: / (|u| |i| + 1e-8), clamp, x gamma).
 *
 * Everything here is internal (runtime/); the public API is unchanged. */
#ifndef TOWERRT_ARCH_FAMILY_H
#define TOWERRT_ARCH_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* GRAPH ops of the family (docs/format.md op table). */
enum { TRT_OP_SIMILARITY = 9, TRT_OP_AUGMENT = 10 };

enum { TRT_ARCH_DSSM = 1, TRT_ARCH_DAT = 2 };
/* SIMILARITY attrs[1] */
enum { TRT_SIM_COSINE = 0, TRT_SIM_DOT = 1 };

typedef struct trt_arch_model {
  uint32_t kind;       /* TRT_ARCH_* */
  uint32_t similarity; /* TRT_SIM_* */
  float gamma;         /* reference Cosine_Similarity gamma (dot: a plain scale) */
  uint32_t dim;        /* width of the user and item vectors */
  uint32_t depth[2];   /* LINEAR layers per side, as in the file */
  uint32_t in_width[2];  /* width of each side's first Linear input, as in the file */
  uint32_t aug_width[2]; /* DAT constant augmented vector per side (0: none), folded into layer 0 */
  int32_t aug_tensor[2];
  uint32_t aug_input[2]; /* DAT augmented vector given per request: width of the dense field (dat.augment = input) */
} trt_arch_model;

/* 1 if META general.architecture names a family model (dssm, dat). */
int trt_arch_is_family(const trt_meta *meta);

/* arch_graph.c: checks META and the GRAPH (the family pattern), binds and
 * folds the weights, fills m->user, m->item, heads, out_bias; sets m->arch. */
towerrt_status trt_arch_compile(towerrt_model *m);
/* CRC-32 of the item side's tensors (docs/format.md: every tensor an
 * item-side node references, and the item fields' tables). */
uint32_t trt_arch_item_fingerprint(const towerrt_model *m);
void trt_arch_free(towerrt_model *m);

/* arch_score.c: after kernel selection, puts the field concatenation in the
 * Light-SE slot of the model's kernel table. */
void trt_arch_bind_kernels(towerrt_model *m);
/* Session options that have no meaning for the family (fe_layer_mask). */
towerrt_status trt_arch_check_session(const towerrt_model *m, const towerrt_options *o);
/* Turns the k dot products in scores[] (from the MaxSim kernel with one
 * user and one item head) into the family's score before the prediction
 * layer. user: the f32 user vector (dim). items: item rows, row r at
 * items + r * row_bytes, in the store's dtype (TRT_ITEMS_F32 / BF16 / S8;
 * s8 rows scaled by row_scales[r]); candidate c is row rows[c] (or c if
 * rows is NULL). Allocates nothing; NaN stays NaN. */
void trt_arch_scores(const towerrt_model *m, const float *user, const void *items, uint32_t dtype, size_t row_bytes,
                     const float *row_scales, const uint32_t *rows, size_t k, float *scores);

/* arch_describe.c: the plan part of towerrt_model_describe. Writes at most
 * cap bytes (NUL-terminated when cap > 0); returns the full length. */
size_t trt_arch_describe_plan(const towerrt_model *m, char *buf, size_t cap);

#endif
