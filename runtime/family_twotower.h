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
 *     (trt_twotower_bind_kernels);
 *   - the score is the batched dot product of the MaxSim kernel with one
 *     user head and one item head, finished per candidate by
 *     trt_twotower_finish_scores (cosine: / (|u| |i| + 1e-8), clamp,
 *     x gamma).
 *
 * Everything here is internal (runtime/); the public API is unchanged. */
#ifndef TOWERRT_FAMILY_TWOTOWER_H
#define TOWERRT_FAMILY_TWOTOWER_H

#include <stddef.h>
#include <stdint.h>

#include "family.h"
#include "model.h"


enum { TRT_TWOTOWER_DSSM = 1, TRT_TWOTOWER_DAT = 2 };
/* SIMILARITY attrs[1] */
enum { TRT_SIM_COSINE = 0, TRT_SIM_DOT = 1 };

typedef struct trt_twotower_model {
  uint32_t kind;       /* TRT_ARCH_* */
  uint32_t similarity; /* TRT_SIM_* */
  float gamma;         /* reference Cosine_Similarity gamma (dot: a plain scale) */
  uint32_t dim;        /* width of the user and item vectors */
  uint32_t depth[2];   /* LINEAR layers per side, as in the file */
  uint32_t in_width[2];  /* width of each side's first Linear input, as in the file */
  uint32_t aug_width[2]; /* DAT constant augmented vector per side (0: none), folded into layer 0 */
  int32_t aug_tensor[2];
  uint32_t aug_input[2]; /* DAT augmented vector given per request: width of the dense field (dat.augment = input) */
} trt_twotower_model;

/* family_twotower_graph.c: checks META and the GRAPH (the family pattern),
 * binds and folds the weights, fills m->user, m->item, heads, out_bias;
 * its trt_twotower_model in m->family_data. */
towerrt_status trt_twotower_compile(towerrt_model *m);
/* CRC-32 of the item side's tensors (docs/format.md: every tensor an
 * item-side node references, and the item fields' tables). */
uint32_t trt_twotower_item_fingerprint(const towerrt_model *m);
void trt_twotower_free(towerrt_model *m);

/* family_twotower_score.c: after kernel selection, puts the field
 * concatenation in the Light-SE slot of the model's kernel table. */
void trt_twotower_bind_kernels(towerrt_model *m);
/* Session options that have no meaning for the family (fe_layer_mask). */
towerrt_status trt_twotower_check_session(const towerrt_model *m, const towerrt_options *o);
/* Turns the k dot products in scores[] (from the MaxSim kernel with one
 * user and one item head) into the family's score before the prediction
 * layer: cosine or a scaled dot product, the item norms from the rows the
 * kernel read (s8 rows scaled by their row scale). Allocates nothing; NaN
 * stays NaN. */
void trt_twotower_finish_scores(const towerrt_model *m, const trt_score_block *b, float *scores);

/* family_twotower_describe.c: the heads line and the plan (towerrt info). */
void trt_twotower_describe_heads(const towerrt_model *m, trt_text_buf *o);
void trt_twotower_describe_plan(const towerrt_model *m, trt_text_buf *o);

#endif
