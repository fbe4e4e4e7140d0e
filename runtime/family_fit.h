/* FIT as a model family (docs/family.md "FIT"; reference
 * tools/reference/fit_ref.py, a reconstruction from shared/FIT.md).
 *
 * How FIT sits on the shared machinery:
 *   - the item tower is the shared one: its Linear layers as tower layers,
 *     the LSS item projection as its FE projection fe[0], so an item's
 *     heads Zv (Hv x p) come out of trt_item_forward; m->item is widened
 *     so that its rows (the item store's) also carry the item's N match
 *     logits e_c . q_i (linear in the tower input: layer 0 computes
 *     relu(+m) and relu(-m), every later layer copies them with one-hot
 *     rows, the FE projection outputs their difference after Zv): an
 *     item row is Hv heads of p, then ceil(N / p) heads holding the
 *     logits (heads_item = Hv + ceil(N / p), head_dim = p), and the
 *     shared builder, quantizer-free f32 stores, deltas and overlays
 *     serve FIT unchanged;
 *   - the user tower is FIT's own (its input holds the meta query and the
 *     DIN output, which the shared tower input does not know): its layers
 *     and the LSS user projection live in trt_fit_model and run batched,
 *     once per distinct query index among the candidates;
 *   - the request (by features) is the family's score_features hook:
 *     family_fit_score.c, the only file that calls kernels.
 * Everything here is internal (runtime/). */
#ifndef TOWERRT_FAMILY_FIT_H
#define TOWERRT_FAMILY_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "family.h"
#include "model.h"

#define TRT_FIT_MAX_QUERIES 4096u
#define TRT_FIT_GROUP_CHUNK 64u /* candidates of one query index per LSS pass */

typedef struct trt_fit_model {
  /* MQM */
  uint32_t N, D;            /* meta queries, their width */
  uint32_t ec_mask;         /* item id fields (bits, FIELDS order within the item side) forming e_c */
  uint32_t ec_width;        /* their embeddings concatenated */
  int proj;                 /* e_c projected to D by ec_proj */
  trt_dense_layer ec_proj;
  trt_dense_layer match;    /* W = Q (N x D), no bias: the match logits e_c . q_i */
  const float *qstar;       /* N x D hard queries (Q Q^T) Q */
  /* DIN over the behaviour sequence (seq_field < 0: none) */
  int32_t seq_field;        /* index among the user side's id fields */
  uint32_t seq_len, A;
  trt_dense_layer din[2];   /* 4D -> A (ReLU), A -> 1 */
  /* user tower (FIT's own) and LSS */
  uint32_t user_in, n_user, max_user_width;
  trt_dense_layer user[TRT_MAX_LAYERS];
  trt_dense_layer user_proj; /* -> Hu x p */
  uint32_t Hu, Hv, p, o;
  int scale, bn;
  const float *s_mul, *s_add; /* Hu x Hv: S = S * s_mul + s_add (scale and BatchNorm folded); NULL: none */
  trt_dense_layer row, col, out;
  /* The item tower as trained (by features). m->item is the same tower
   * widened to carry the match logits e_c . q_i to the end (below). */
  trt_tower item_plain;
  uint32_t row_len; /* floats of an item row: Hv p heads, then N match logits, padded to whole heads */
} trt_fit_model;

/* family_fit_graph.c */
towerrt_status trt_fit_compile(towerrt_model *m);
void trt_fit_free(towerrt_model *m);

/* family_fit_score.c: the requests (family.h score_features, score_rows). */
size_t trt_fit_request_bytes(const towerrt_model *m, size_t max_k);
towerrt_status trt_fit_score_features(const towerrt_model *m, const trt_family_request *r);
towerrt_status trt_fit_score_rows(const towerrt_model *m, const trt_family_request *r);
/* Multiply-adds per candidate of the LSS, and of one user-tower pass. */
uint64_t trt_fit_lss_macs(const trt_fit_model *f);
uint64_t trt_fit_user_macs(const trt_fit_model *f);

/* family_fit.c */
void trt_fit_describe_heads(const towerrt_model *m, trt_text_buf *o);
void trt_fit_describe_plan(const towerrt_model *m, trt_text_buf *o);

#endif
