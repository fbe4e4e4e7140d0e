/* FIT as a model family (family.h, family_fit.h): the instance, and its
 * heads line and plan (towerrt info). */
#include "family_fit.h"
#include "family_twotower.h"
#include "item_store.h"
#include "status.h"

static void put_layer(trt_text_buf *o, const char *what, uint32_t L, const trt_dense_layer *d, const char *note) {
  trt_text_put(o, "    %s[%u] %u -> %u%s%s  (%u MACs)%s\n", what, L, d->in, d->out, d->folded_bn ? " +BN folded" : "", d->relu ? " +ReLU fused" : "",
               d->in * d->out, note);
}

void trt_fit_describe_heads(const towerrt_model *m, trt_text_buf *o) {
  const trt_fit_model *f = m->family_data;
  trt_text_put(o, "  heads: user %u x %u per meta query, item %u x %u; %u meta queries of %u values; LSS o = %u\n", f->Hu, f->p, f->Hv, f->p,
               f->N, f->D, f->o);
}

void trt_fit_describe_plan(const towerrt_model *m, trt_text_buf *o) {
  const trt_fit_model *f = m->family_data;
  const trt_tower *it = &m->item;
  trt_text_put(o, "plan (fit):\n  item side (per candidate by features; offline into the item store):\n");
  trt_text_put(o, "    embed+pool   %u id fields x %u dims, concatenated, + %u dense -> %u\n", it->n_id_fields, it->emb_dim, it->dense_width,
               it->input_width);
  for (uint32_t L = 0; L < it->n_layers; L++) put_layer(o, "dense", L, &f->item_plain.layers[L], "");
  put_layer(o, "lss item proj", 0, &f->item_plain.fe[0], "  -> Zv");
  trt_text_put(o, "    query index  e_c (%u values)%s . Q^T (%u x %u) -> argmax  (%u MACs)\n", f->ec_width, f->proj ? " projected" : "", f->N, f->D,
               (f->proj ? f->ec_width * f->D : 0) + f->N * f->D);
  uint64_t wide = (uint64_t)it->fe[0].in * it->fe[0].out - (uint64_t)f->item_plain.fe[0].in * f->item_plain.fe[0].out;
  for (uint32_t L = 0; L < it->n_layers; L++)
    wide += (uint64_t)it->layers[L].in * it->layers[L].out - (uint64_t)f->item_plain.layers[L].in * f->item_plain.layers[L].out;
  trt_text_put(o, "    item store   rows of %u heads x %u: Zv, then the %u match logits (the widened item tower carries them: +%llu MACs "
               "per item at build time)\n", m->heads_item, m->head_dim, f->N, (unsigned long long)wide);
  trt_text_put(o, "  user side (once per distinct query index among the candidates, batched):\n");
  trt_text_put(o, "    input        id embeddings + Q*[index] (%u)%s + %u dense -> %u\n", f->D, f->seq_field >= 0 ? " + DIN over the sequence" : "",
               m->user.dense_width, f->user_in);
  if (f->seq_field >= 0) trt_text_put(o, "    din          %u positions x MLP(%u -> %u -> 1), masked softmax\n", f->seq_len, 4 * f->D, f->A);
  for (uint32_t L = 0; L < f->n_user; L++) put_layer(o, "dense", L, &f->user[L], "");
  put_layer(o, "lss user proj", 0, &f->user_proj, "  -> Zu");
  trt_text_put(o, "  LSS (per candidate, batched per query group): S = Zu Zv^T (%u x %u)%s%s, row layer -> %u x %u, column layer -> %u x %u, "
               "output: %llu MACs, then %s\n", f->Hu, f->Hv, f->scale ? " x exp(s)" : "", f->bn ? " + BatchNorm (folded)" : "", f->Hu, f->o,
               f->o, f->o, (unsigned long long)trt_fit_lss_macs(f), m->output_sigmoid ? "sigmoid" : "identity");
  trt_text_put(o, "  user tower pass: %llu MACs\n", (unsigned long long)trt_fit_user_macs(f));
}

static towerrt_status fit_check_session(const towerrt_model *m, const towerrt_options *o) {
  (void)m;
  if (o->fe_layer_mask) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask 0x%x: a FIT model has no FE layers (leave it 0)", o->fe_layer_mask);
  return TOWERRT_OK;
}

/* The rows carry the match logits: a rounded copy could pick another
 * query (and the LSS reads f32 heads): f32 stores only. */
static towerrt_status fit_check_items(const towerrt_model *m, const towerrt_items *it) {
  (void)m;
  if (it->dtype != TOWERRT_PRECISION_F32)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "a FIT model serves f32 item stores only (this one is %s): its rows carry the match logits "
                    "that choose each item's meta query", towerrt_precision_name((towerrt_precision)it->dtype));
  return TOWERRT_OK;
}

const trt_family trt_family_fit = {
    .name = "fit",
    .compile = trt_fit_compile,
    .item_fingerprint = trt_twotower_item_fingerprint, /* every item-side tensor: MQM, item tower, LSS item projection */
    .bind_kernels = trt_twotower_bind_kernels,         /* no Light-SE: the field concatenation */
    .check_session = fit_check_session,
    .describe_heads = trt_fit_describe_heads,
    .describe_plan = trt_fit_describe_plan,
    .request_bytes = trt_fit_request_bytes,
    .score_features = trt_fit_score_features,
    .score_rows = trt_fit_score_rows,
    .check_items = fit_check_items,
    .quantize_user_tower = 0,
    .batched_user_tower = 0,
    .free = trt_fit_free,
};
