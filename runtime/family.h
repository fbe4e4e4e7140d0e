/* Model families: one interface, one instance per architecture that the
 * runtime serves (docs/family.md, docs/architecture.md "A new model
 * family"). A family turns a parsed .twr (META, FIELDS, TENSORS, GRAPH)
 * into the compiled towers that the shared code runs (tower_exec.c,
 * item_store_build.c, session.c), and says what differs from IntTower at
 * scoring time. Nothing outside the family files tests which family a
 * model is: the shared code calls these functions.
 *
 *   inttower   family_inttower.c        Light-SE, FE heads, MaxSim
 *   dssm, dat  family_twotower_*.c      one vector per side, cosine / dot
 *   fit        family_fit*.c            meta queries, query-batched user tower, LSS
 */
#ifndef TOWERRT_FAMILY_H
#define TOWERRT_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "text_buf.h"

/* A block of candidates after the MaxSim kernel, for finish_scores. */
typedef struct trt_score_block {
  const float *user;        /* the f32 user heads of the request */
  const void *items;        /* item rows: row r at items + r * row_bytes */
  uint32_t dtype;           /* the rows' precision (towerrt_precision) */
  size_t row_bytes;
  const float *row_scales;  /* int8 rows: one scale per row */
  const uint32_t *rows;     /* candidate c is row rows[c], or row c if NULL */
  size_t k;
} trt_score_block;

/* A whole request by features, for a family whose request is not "user
 * heads once, then MaxSim per candidate block" (FIT). */
struct trt_workspace;
typedef struct trt_family_request {
  const trt_tower *item;          /* the item tower to run (m->item or its placed copy) */
  struct trt_workspace *ws;       /* the caller's workspace (slot 0) */
  void *scratch;                  /* request_bytes(m, max_k) bytes, 64-byte aligned */
  const towerrt_features *user;   /* one row, checked */
  const towerrt_features *items;  /* by features: k rows, checked */
  const float *const *rows;       /* by id (score_rows): k f32 item-store rows, NULL for a skipped candidate */
  size_t k;
  float *scores;                  /* k raw scores, before the prediction layer */
} trt_family_request;

typedef struct trt_family {
  const char *name; /* META general.architecture */
  /* Checks META and the GRAPH, binds and folds the weights, fills the
   * model's towers, head counts, trained FE mask, output layer; may keep
   * its own state in m->family_data. */
  towerrt_status (*compile)(towerrt_model *m);
  /* The item side's fingerprint (docs/format.md): stores built by a model
   * with the same item side serve it. */
  uint32_t (*item_fingerprint)(const towerrt_model *m);
  /* After kernel selection: the family's own kernel slots (NULL: none). */
  void (*bind_kernels)(towerrt_model *m);
  /* Session options the family cannot honour (NULL: all). */
  towerrt_status (*check_session)(const towerrt_model *m, const towerrt_options *o);
  /* Turns the block's MaxSim sums into the family's score, before the
   * prediction layer (NULL: the sum is the score). Allocates nothing. */
  void (*finish_scores)(const towerrt_model *m, const trt_score_block *b, float *scores);
  /* towerrt info: the heads line(s) and the compiled plan. */
  void (*describe_heads)(const towerrt_model *m, trt_text_buf *out);
  void (*describe_plan)(const towerrt_model *m, trt_text_buf *out);
  /* Families with their own request (NULL: the shared path): the scratch
   * a session plans for max_k candidates, and a request by features on it
   * or by item-store rows (allocates nothing; one thread). */
  size_t (*request_bytes)(const towerrt_model *m, size_t max_k);
  towerrt_status (*score_features)(const towerrt_model *m, const trt_family_request *r);
  towerrt_status (*score_rows)(const towerrt_model *m, const trt_family_request *r);
  /* Item stores the family cannot serve (NULL: all that match its heads). */
  towerrt_status (*check_items)(const towerrt_model *m, const towerrt_items *it);
  /* What the family supports of the shared machinery. */
  int quantize_user_tower;  /* towerrt_model_quantize */
  int batched_user_tower;   /* towerrt_user_heads through oneDNN matmul */
  /* Centred item stores (docs/quantization.md "Centred stores"): the
   * session adds sum_u <u, m> to the kernel's MaxSim sums before
   * finish_scores. Right only where the score is that sum (IntTower);
   * 0: such a store is refused when a session is given it. */
  int centred_items;
  void (*free)(towerrt_model *m); /* m->family_data (NULL: nothing) */
} trt_family;

extern const trt_family trt_family_inttower, trt_family_dssm, trt_family_dat, trt_family_fit;

/* The family named by META general.architecture; UNSUPPORTED naming it
 * (or FORMAT when the key is missing) otherwise. */
towerrt_status trt_family_find(const trt_meta *meta, const trt_family **out);

#endif
