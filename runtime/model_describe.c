/* Text view of a loaded model for `towerrt info`: metadata, fields,
 * tensors and the compiled plan with per-step multiply-adds. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "arch_family.h"
#include "model.h"

typedef struct out_buf {
  char *buf;
  size_t cap, len;
} out_buf;

__attribute__((format(printf, 2, 3))) static void put(out_buf *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = o->len < o->cap ? o->buf + o->len : NULL;
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

static void put_meta(out_buf *o, const towerrt_model *m) {
  static const char *const keys[] = {"general.architecture", "general.name", "general.source", "general.exporter",
                                     "inttower.output", "two_tower.output", "two_tower.similarity", "dat.augment", "quantization"};
  put(o, "metadata:\n");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    trt_meta_value v;
    if (trt_meta_find(&m->meta, keys[i], &v) && v.type == TRT_META_STRING)
      put(o, "  %-22s %.*s\n", keys[i], (int)v.len, v.str);
  }
  if (m->arch) { /* two-tower family hook: no FE heads, one vector per side */
    put(o, "  vectors: user 1 x %u, item 1 x %u\n  kernels: %s\n", m->head_dim, m->head_dim, m->kernels.name);
    return;
  }
  put(o, "  heads: user %u, item %u, head dim %u\n", m->heads_user, m->heads_item, m->head_dim);
  put(o, "  FE layers trained:");
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
    if (m->trained_fe_mask & (1u << L)) put(o, " %u", L);
  put(o, "  (present:");
  for (uint32_t L = 0; L < TRT_MAX_LAYERS; L++)
    if (m->user.fe_present & (1u << L)) put(o, " %u", L);
  put(o, ")\n  kernels: %s\n", m->kernels.name);
}

static void put_fields(out_buf *o, const towerrt_model *m) {
  static const char *const kinds[] = {"single-id", "multi-id", "dense"};
  static const char *const pools[] = {"mean", "sum", "max"};
  put(o, "fields (%u):\n", m->n_fields);
  for (uint32_t i = 0; i < m->n_fields; i++) {
    const trt_field *f = &m->fields[i];
    put(o, "  %-5s %-24s %-9s", trt_side_name(f->side), f->name, kinds[f->kind]);
    if (f->kind == TRT_FIELD_DENSE) put(o, " width %u\n", f->dim);
    else put(o, " vocab %u x %u, %u slot(s)%s%s\n", f->vocab, f->dim, f->slots,
             f->kind == TRT_FIELD_MULTI ? ", pool " : "", f->kind == TRT_FIELD_MULTI ? pools[f->combiner] : "");
  }
}

static void put_tensors(out_buf *o, const towerrt_model *m) {
  static const char *const dt[] = {"?", "f32", "bf16", "f16", "s8", "u8", "s32"};
  put(o, "tensors (%u):\n", m->n_tensors);
  for (uint32_t i = 0; i < m->n_tensors; i++) {
    const trt_tensor *t = &m->tensors[i];
    put(o, "  %3u %-48s %-4s (", i, t->name, dt[t->dtype]);
    for (uint32_t d = 0; d < t->ndim; d++) put(o, "%s%u", d ? ", " : "", t->dims[d]);
    put(o, ")\n");
  }
}

static const char *weight_precision(const trt_dense_layer *d) {
  if (d->wtype == TRT_DTYPE_BF16) return "  [bf16 weights]";
  if (d->wtype == TRT_DTYPE_S8) return d->x_scale > 0.0f ? "  [s8 weights, u8 input calibrated]" : "  [s8 weights, u8 input per request]";
  return "";
}

static void put_tower(out_buf *o, const towerrt_model *m, uint32_t side) {
  const trt_tower *t = side ? &m->item : &m->user;
  put(o, "  %s tower (%s):\n", trt_side_name(side), side ? "per candidate, or offline into the item store" : "once per request");
  put(o, "    embed+pool   %u id fields x %u dims (%u id slots)\n", t->n_id_fields, t->emb_dim, t->id_slots);
  put(o, "    light-se     %u x %u softmax attention, residual\n", t->n_id_fields, t->n_id_fields);
  put(o, "    concat       + %u dense -> %u\n", t->dense_width, t->input_width);
  /* The user tower stops at the last FE layer scored by default. */
  uint32_t last_fe = 31u - (uint32_t)__builtin_clz(m->trained_fe_mask);
  for (uint32_t L = 0; L < t->n_layers; L++) {
    const trt_dense_layer *d = &t->layers[L];
    if (side == 0 && (t->fe_present & (1u << L)))
      put(o, "    fe_proj[%u]   %u -> %u heads x %u%s  (%u MACs)%s\n", L, t->fe[L].in, m->heads_user, m->head_dim,
          weight_precision(&t->fe[L]), t->fe[L].in * t->fe[L].out,
          (m->trained_fe_mask & (1u << L)) ? "" : "  [present, not scored by default]");
    if (side == 0 && L >= last_fe) {
      put(o, "    dense[%u]     %u -> %u  [not run: no scored FE layer reads it]\n", L, d->in, d->out);
      continue;
    }
    put(o, "    dense[%u]     %u -> %u%s%s%s  (%u MACs)\n", L, d->in, d->out, d->folded_bn ? " +BN folded" : "",
        d->relu ? " +ReLU fused" : "", weight_precision(d), d->in * d->out);
  }
  if (side == 1)
    put(o, "    fe_proj      %u -> %u heads x %u  (%u MACs)\n", t->fe[0].in, m->heads_item, m->head_dim, t->fe[0].in * t->fe[0].out);
}

size_t trt_model_describe_plan(const towerrt_model *m, char *buf, size_t cap) {
  out_buf o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  put_meta(&o, m);
  put_fields(&o, m);
  put_tensors(&o, m);
  if (m->arch) { /* two-tower family hook: its plan (runtime/arch_describe.c) */
    o.len += trt_arch_describe_plan(m, o.len < cap ? buf + o.len : NULL, o.len < cap ? cap - o.len : 0);
    return o.len;
  }
  put(&o, "plan:\n");
  put_tower(&o, m, 0);
  put_tower(&o, m, 1);
  uint32_t n_fe = (uint32_t)__builtin_popcount(m->trained_fe_mask);
  put(&o, "  score (per candidate): maxsim %u user heads x %u item heads x %u dims = %u MACs, then %s\n",
      n_fe * m->heads_user, m->heads_item, m->head_dim, n_fe * m->heads_user * m->heads_item * m->head_dim,
      m->output_sigmoid ? "sigmoid(score + bias)" : "score + bias");
  if (cap && o.len >= cap) buf[cap - 1] = '\0';
  return o.len;
}
