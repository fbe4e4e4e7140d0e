/* The compiled plan of a two-tower family model, as text (towerrt info
 * --plan; model_describe.c prints metadata, fields and tensors first). */
#include "family_twotower.h"

static void put_layer(trt_text_buf *o, const char *what, uint32_t L, const trt_dense_layer *d, const char *note) {
  trt_text_put(o, "    %s[%u]%s %u -> %u%s%s  (%u MACs)%s\n", what, L, L < 10 ? " " : "", d->in, d->out, d->folded_bn ? " +BN folded" : "",
      d->relu ? " +ReLU fused" : "", d->in * d->out, note);
}

static void put_tower(trt_text_buf *o, const towerrt_model *m, uint32_t side) {
  const trt_twotower_model *a = m->family_data;
  const trt_tower *t = side ? &m->item : &m->user;
  trt_text_put(o, "  %s tower (%s):\n", side ? "item" : "user", side ? "per candidate, or offline into the item store" : "once per request");
  trt_text_put(o, "    embed+pool   %u id fields x %u dims (%u id slots), concatenated (no Light-SE)\n", t->n_id_fields, t->emb_dim, t->id_slots);
  if (a->aug_width[side])
    trt_text_put(o, "    augment      + %u constant values (DAT augmented vector), folded into layer 0's bias\n", a->aug_width[side]);
  if (a->aug_input[side])
    trt_text_put(o, "    augment      the DAT augmented vector is the dense field '%s_aug_vector' (%u values per request row)\n",
        side ? "item" : "user", a->aug_input[side]);
  trt_text_put(o, "    concat       + %u dense -> %u\n", t->dense_width, t->input_width);
  for (uint32_t L = 0; L < t->n_layers; L++) put_layer(o, "dense", L, &t->layers[L], "");
  put_layer(o, "dense", a->depth[side] - 1, &t->fe[side ? 0 : a->depth[side] - 1], side ? "  -> the item vector (the item store row)" : "  -> the user vector");
}

void trt_twotower_describe_heads(const towerrt_model *m, trt_text_buf *o) {
  trt_text_put(o, "  vectors: user 1 x %u, item 1 x %u\n", m->head_dim, m->head_dim);
}

void trt_twotower_describe_plan(const towerrt_model *m, trt_text_buf *o) {
  const trt_twotower_model *a = m->family_data;
  trt_text_put(o, "plan (%s):\n", a->kind == TRT_TWOTOWER_DAT ? "dat" : "dssm");
  put_tower(o, m, 0);
  put_tower(o, m, 1);
  const char *post = m->output_sigmoid ? "sigmoid(score + bias)" : "score + bias";
  if (a->similarity == TRT_SIM_COSINE)
    trt_text_put(o, "  score (per candidate): cosine: clamp(<u,i> / (|u| |i| + 1e-8), -1, 1) x gamma %g; dot + item norm = %u MACs, then %s\n",
                 (double)a->gamma, 2 * a->dim, post);
  else
    trt_text_put(o, "  score (per candidate): dot: <u,i> x gamma %g = %u MACs, then %s\n", (double)a->gamma, a->dim, post);
  trt_text_put(o, "  item store rows: 1 vector x %u values (raw, the norm is computed when scoring)\n", a->dim);
}
