/* Text view of a loaded model for `towerrt info`: metadata, fields,
 * tensors, then the family's heads and compiled plan with per-step
 * multiply-adds (family.h). */
#include <stdio.h>
#include <string.h>

#include "family.h"
#include "model.h"

static void put_meta(trt_text_buf *o, const towerrt_model *m) {
  static const char *const keys[] = {"general.architecture", "general.name", "general.source", "general.exporter",
                                     "inttower.output", "two_tower.output", "two_tower.similarity", "dat.augment", "quantization"};
  trt_text_put(o, "metadata:\n");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    trt_meta_value v;
    if (trt_meta_find(&m->meta, keys[i], &v) && v.type == TRT_META_STRING)
      trt_text_put(o, "  %-22s %.*s\n", keys[i], (int)v.len, v.str);
  }
  m->family->describe_heads(m, o);
  trt_text_put(o, "  kernels: %s\n", m->kernels.name);
}

static void put_fields(trt_text_buf *o, const towerrt_model *m) {
  static const char *const kinds[] = {"single-id", "multi-id", "dense"};
  static const char *const pools[] = {"mean", "sum", "max"};
  trt_text_put(o, "fields (%u):\n", m->n_fields);
  for (uint32_t i = 0; i < m->n_fields; i++) {
    const trt_field *f = &m->fields[i];
    trt_text_put(o, "  %-5s %-24s %-9s", trt_side_name(f->side), f->name, kinds[f->kind]);
    if (f->kind == TRT_FIELD_DENSE) trt_text_put(o, " width %u\n", f->dim);
    else trt_text_put(o, " vocab %u x %u, %u slot(s)%s%s\n", f->vocab, f->dim, f->slots,
             f->kind == TRT_FIELD_MULTI ? ", pool " : "", f->kind == TRT_FIELD_MULTI ? pools[f->combiner] : "");
  }
}

static void put_tensors(trt_text_buf *o, const towerrt_model *m) {
  static const char *const dt[] = {"?", "f32", "bf16", "f16", "s8", "u8", "s32"};
  trt_text_put(o, "tensors (%u):\n", m->n_tensors);
  for (uint32_t i = 0; i < m->n_tensors; i++) {
    const trt_tensor *t = &m->tensors[i];
    trt_text_put(o, "  %3u %-48s %-4s (", i, t->name, dt[t->dtype]);
    for (uint32_t d = 0; d < t->ndim; d++) trt_text_put(o, "%s%u", d ? ", " : "", t->dims[d]);
    trt_text_put(o, ")\n");
  }
}

size_t trt_model_describe_plan(const towerrt_model *m, char *buf, size_t cap) {
  trt_text_buf o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  put_meta(&o, m);
  put_fields(&o, m);
  put_tensors(&o, m);
  m->family->describe_plan(m, &o);
  return trt_text_end(&o);
}
