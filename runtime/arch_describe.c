/* The compiled plan of a two-tower family model, as text (towerrt info
 * --plan; model_describe.c prints metadata, fields and tensors first). */
#include <stdarg.h>
#include <stdio.h>

#include "arch_family.h"

typedef struct abuf {
  char *buf;
  size_t cap, len;
} abuf;

__attribute__((format(printf, 2, 3))) static void put(abuf *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = o->len < o->cap ? o->buf + o->len : NULL;
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

static void put_layer(abuf *o, const char *what, uint32_t L, const trt_dense_layer *d, const char *note) {
  put(o, "    %s[%u]%s %u -> %u%s%s  (%u MACs)%s\n", what, L, L < 10 ? " " : "", d->in, d->out, d->folded_bn ? " +BN folded" : "",
      d->relu ? " +ReLU fused" : "", d->in * d->out, note);
}

static void put_tower(abuf *o, const towerrt_model *m, uint32_t side) {
  const trt_arch_model *a = m->arch;
  const trt_tower *t = side ? &m->item : &m->user;
  put(o, "  %s tower (%s):\n", side ? "item" : "user", side ? "per candidate, or offline into the item store" : "once per request");
  put(o, "    embed+pool   %u id fields x %u dims (%u id slots), concatenated (no Light-SE)\n", t->n_id_fields, t->emb_dim, t->id_slots);
  if (a->aug_width[side])
    put(o, "    augment      + %u constant values (DAT augmented vector), folded into layer 0's bias\n", a->aug_width[side]);
  if (a->aug_input[side])
    put(o, "    augment      the DAT augmented vector is the dense field '%s_aug_vector' (%u values per request row)\n",
        side ? "item" : "user", a->aug_input[side]);
  put(o, "    concat       + %u dense -> %u\n", t->dense_width, t->input_width);
  for (uint32_t L = 0; L < t->n_layers; L++) put_layer(o, "dense", L, &t->layers[L], "");
  put_layer(o, "dense", a->depth[side] - 1, &t->fe[side ? 0 : a->depth[side] - 1], side ? "  -> the item vector (the item store row)" : "  -> the user vector");
}

size_t trt_arch_describe_plan(const towerrt_model *m, char *buf, size_t cap) {
  const trt_arch_model *a = m->arch;
  abuf o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  put(&o, "plan (%s):\n", a->kind == TRT_ARCH_DAT ? "dat" : "dssm");
  put_tower(&o, m, 0);
  put_tower(&o, m, 1);
  const char *post = m->output_sigmoid ? "sigmoid(score + bias)" : "score + bias";
  if (a->similarity == TRT_SIM_COSINE)
    put(&o, "  score (per candidate): cosine: clamp(<u,i> / (|u| |i| + 1e-8), -1, 1) x gamma %g; dot + item norm = %u MACs, then %s\n",
        (double)a->gamma, 2 * a->dim, post);
  else
    put(&o, "  score (per candidate): dot: <u,i> x gamma %g = %u MACs, then %s\n", (double)a->gamma, a->dim, post);
  put(&o, "  item store rows: 1 vector x %u values (raw, the norm is computed when scoring)\n", a->dim);
  if (cap && o.len >= cap) buf[cap - 1] = '\0';
  return o.len;
}
