/* oneDNN matmul for batched dense layers (onednn_matmul.h). */
#include "onednn_matmul.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_matmul_internal.h"
#include "quantize_heads.h"
#include "status.h"

#ifndef TOWERRT_HAVE_ONEDNN

int trt_mm_available(void) { return 0; }
const char *trt_mm_describe(void) { return "oneDNN: not built in (TOWERRT_WITH_ONEDNN=OFF or not found)"; }
towerrt_status trt_mm_create(unsigned threads, int precision, trt_mm **out) {
  if (out) *out = NULL;
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "this towerrt was built without oneDNN (TOWERRT_WITH_ONEDNN)");
}
void trt_mm_free(trt_mm *mm) {}
towerrt_status trt_mm_dense(trt_mm *mm, const trt_dense_layer *d, int x_nonneg, const float *x, size_t ldx, size_t n,
                            float *y, size_t ldy) {
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "this towerrt was built without oneDNN (TOWERRT_WITH_ONEDNN)");
}
void trt_mm_get_stats(const trt_mm *mm, trt_mm_stats *out) { memset(out, 0, sizeof *out); }
int trt_mm_weight_max(void) { return 127; }
towerrt_status trt_mm_probe(int precision) {
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "this towerrt was built without oneDNN (TOWERRT_WITH_ONEDNN)");
}

#else

#include <dlfcn.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>

/* Weights of one layer in one primitive's layout (shared by the primitives
 * of every batch size that chose that layout). */
typedef struct mm_weights {
  const float *w;
  uint32_t in, out;
  int precision;
  dnnl_memory_desc_t md;
  dnnl_memory_t mem;
  float *scale; /* int8: per output channel */
} mm_weights;

typedef struct mm_entry {
  const float *w;
  uint32_t in, out;
  int relu, precision, x_u8;
  size_t n, ldx, ldy;
  int has_bias;
  dnnl_primitive_t prim;
  dnnl_memory_t src, dst, bias, scales;
  size_t weights; /* index into trt_mm.wts */
} mm_entry;

struct trt_mm {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  int precision;
  mm_entry *ent;
  size_t n_ent, cap_ent;
  mm_weights *wts;
  size_t n_wts, cap_wts;
  /* int8 / bf16 scratch: the converted activations, the output scales. */
  void *xq;
  size_t xq_cap;
  float *oscale;
  size_t oscale_cap;
  trt_mm_stats stats;
};

static towerrt_status dnnl_fail(dnnl_status_t s, const char *what) {
  towerrt_status st = s == dnnl_out_of_memory ? TOWERRT_ERR_NO_MEMORY : TOWERRT_ERR_UNSUPPORTED;
  return trt_fail(st, "oneDNN: %s failed (dnnl status %d)", what, (int)s);
}
#define DN(call, what)                          \
  do {                                          \
    dnnl_status_t s_ = (call);                  \
    if (s_ != dnnl_success) return dnnl_fail(s_, what); \
  } while (0)

int trt_mm_available(void) { return 1; }

/* The name of oneDNN's effective ISA (the CPU's, capped by
 * ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA). */
static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
  case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "unknown";
  }
}

const char *trt_mm_describe(void) {
  static char text[96];
  const dnnl_version_t *v = dnnl_version();
  snprintf(text, sizeof text, "oneDNN %d.%d.%d, isa %s", v->major, v->minor, v->patch, isa_name(dnnl_get_effective_cpu_isa()));
  return text;
}

/* Where oneDNN's ISA lacks VNNI, its int8 matmul multiplies u8 x s8 with
 * vpmaddubsw: two products summed in a saturating int16 (s8 inputs are
 * shifted to u8 first, with a compensation term). 255 x 127 x 2 = 64770
 * overflows it. With weights of at most 63 in magnitude, 255 x 63 x 2 =
 * 32130 <= 32767: no sum can saturate, whatever the input (oneDNN's own
 * advice for such CPUs). VNNI's vpdpbusd sums into int32. */
static int mm_weight_max(void) {
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  int vnni = isa == dnnl_cpu_isa_avx2_vnni || isa == dnnl_cpu_isa_avx512_core_vnni || isa == dnnl_cpu_isa_avx512_core_bf16 ||
             isa == dnnl_cpu_isa_avx512_core_amx;
  return vnni ? 127 : 63;
}

int trt_mm_weight_max(void) { return mm_weight_max(); }

/* oneDNN's OpenMP runtime takes its thread count from the calling thread's
 * OpenMP setting. libgomp is loaded with libdnnl; looking the setter up at
 * run time avoids a link dependency on a particular OpenMP (and does
 * nothing with a TBB or threadpool build of oneDNN). */
static void set_threads(unsigned threads) {
  if (!threads) return;
  void (*fn)(int) = NULL;
  void *sym = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  memcpy(&fn, &sym, sizeof fn);
  if (fn) fn((int)threads);
}

towerrt_status trt_mm_create(unsigned threads, int precision, trt_mm **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_mm_create: out is NULL");
  *out = NULL;
  if (precision != TOWERRT_PRECISION_F32 && precision != TOWERRT_PRECISION_INT8 && precision != TOWERRT_PRECISION_BF16)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_mm_create: precision %d is not f32, int8 or bf16", precision);
  trt_mm *mm = calloc(1, sizeof *mm);
  if (!mm) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  mm->precision = precision;
  set_threads(threads);
  dnnl_status_t s = dnnl_engine_create(&mm->engine, dnnl_cpu, 0);
  if (s == dnnl_success) s = dnnl_stream_create(&mm->stream, mm->engine, dnnl_stream_default_flags);
  if (s != dnnl_success) {
    trt_mm_free(mm);
    return dnnl_fail(s, "creating the CPU engine");
  }
  *out = mm;
  return TOWERRT_OK;
}

void trt_mm_free(trt_mm *mm) {
  if (!mm) return;
  for (size_t i = 0; i < mm->n_ent; i++) {
    mm_entry *e = &mm->ent[i];
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->src);
    dnnl_memory_destroy(e->dst);
    dnnl_memory_destroy(e->bias);
    dnnl_memory_destroy(e->scales);
  }
  for (size_t i = 0; i < mm->n_wts; i++) {
    dnnl_memory_destroy(mm->wts[i].mem);
    free(mm->wts[i].scale);
  }
  if (mm->stream) dnnl_stream_destroy(mm->stream);
  if (mm->engine) dnnl_engine_destroy(mm->engine);
  free(mm->ent);
  free(mm->wts);
  free(mm->xq);
  free(mm->oscale);
  free(mm);
}

void trt_mm_get_stats(const trt_mm *mm, trt_mm_stats *out) {
  if (mm) *out = mm->stats;
  else memset(out, 0, sizeof *out);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 1;
  size_t c = *cap ? *cap * 2 : 8;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return 0;
  *p = q;
  *cap = c;
  return 1;
}

/* Plain (user-layout) weights: W^T as a K x N matrix, i.e. W (N x K)
 * row-major = format `ba`. int8: quantized symmetrically per output
 * channel (trt_quantize_weights_s8), to 127 levels, or 63 without VNNI. */
static towerrt_status plain_weights(const mm_weights *wt, dnnl_engine_t eng, dnnl_memory_t *mem, void **owned, float *scale) {
  dnnl_dims_t dims = {wt->in, wt->out};
  dnnl_memory_desc_t md;
  DN(dnnl_memory_desc_init_by_tag(&md, 2, dims, wt->precision == TOWERRT_PRECISION_INT8 ? dnnl_s8 : dnnl_f32, dnnl_ba), "weights md");
  *owned = NULL;
  void *data = (void *)wt->w;
  if (wt->precision == TOWERRT_PRECISION_INT8) {
    int8_t *q = malloc((size_t)wt->in * wt->out);
    if (!q) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory quantizing a %u x %u layer", wt->out, wt->in);
    trt_quantize_weights_s8(wt->w, wt->out, wt->in, mm_weight_max(), q, wt->in, NULL, scale);
    data = q;
    *owned = q;
  }
  DN(dnnl_memory_create(mem, &md, eng, data), "weights memory");
  return TOWERRT_OK;
}

/* The layer's weights in layout `md` (reordered once, then shared). */
static towerrt_status get_weights(trt_mm *mm, const trt_dense_layer *d, const dnnl_memory_desc_t *md, size_t *index) {
  for (size_t i = 0; i < mm->n_wts; i++) {
    mm_weights *w = &mm->wts[i];
    if (w->w == d->w && w->in == d->in && w->out == d->out && w->precision == mm->precision && dnnl_memory_desc_equal(&w->md, md)) {
      *index = i;
      return TOWERRT_OK;
    }
  }
  if (!grow((void **)&mm->wts, &mm->cap_wts, mm->n_wts + 1, sizeof *mm->wts)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  mm_weights *w = &mm->wts[mm->n_wts];
  memset(w, 0, sizeof *w);
  w->w = d->w;
  w->in = d->in;
  w->out = d->out;
  w->precision = mm->precision;
  w->md = *md;
  if (mm->precision == TOWERRT_PRECISION_INT8 && !(w->scale = malloc(d->out * sizeof(float))))
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  dnnl_memory_t plain = NULL;
  void *owned = NULL;
  towerrt_status st = plain_weights(w, mm->engine, &plain, &owned, w->scale);
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_status_t s = dnnl_success;
  if (!st) s = dnnl_memory_create(&w->mem, md, mm->engine, DNNL_MEMORY_ALLOCATE);
  if (!st && s == dnnl_success) {
    const dnnl_memory_desc_t *pmd;
    s = dnnl_memory_get_memory_desc(plain, &pmd);
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&rpd, pmd, mm->engine, md, mm->engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&reorder, rpd);
    if (s == dnnl_success) {
      dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, w->mem}};
      s = dnnl_primitive_execute(reorder, mm->stream, 2, args);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(mm->stream);
  }
  if (reorder) dnnl_primitive_destroy(reorder);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (plain) dnnl_memory_destroy(plain);
  free(owned);
  if (!st && s != dnnl_success) st = dnnl_fail(s, "reordering weights");
  if (st) {
    if (w->mem) dnnl_memory_destroy(w->mem);
    free(w->scale);
    return st;
  }
  mm->stats.weight_reorders++;
  *index = mm->n_wts++;
  return TOWERRT_OK;
}

static towerrt_status create_entry(trt_mm *mm, const trt_dense_layer *d, int x_u8, size_t n, size_t ldx, size_t ldy, mm_entry *e) {
  const int int8 = mm->precision == TOWERRT_PRECISION_INT8, bf16 = mm->precision == TOWERRT_PRECISION_BF16;
  const dnnl_data_type_t low = int8 ? (x_u8 ? dnnl_u8 : dnnl_s8) : bf16 ? dnnl_bf16 : dnnl_f32;
  memset(e, 0, sizeof *e);
  e->w = d->w;
  e->in = d->in;
  e->out = d->out;
  e->relu = d->relu;
  e->precision = mm->precision;
  e->x_u8 = x_u8;
  e->n = n;
  e->ldx = ldx;
  e->ldy = ldy;
  e->has_bias = d->b != NULL;
  dnnl_dims_t src_dims = {(dnnl_dim_t)n, d->in}, src_str = {(dnnl_dim_t)ldx, 1};
  dnnl_dims_t w_dims = {d->in, d->out}, dst_dims = {(dnnl_dim_t)n, d->out}, dst_str = {(dnnl_dim_t)ldy, 1};
  dnnl_dims_t b_dims = {1, d->out}, sc_dims = {d->out};
  dnnl_memory_desc_t src_md, w_md, b_md, dst_md, sc_md;
  DN(dnnl_memory_desc_init_by_strides(&src_md, 2, src_dims, low, src_str), "src md");
  DN(dnnl_memory_desc_init_by_tag(&w_md, 2, w_dims, int8 ? dnnl_s8 : bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any), "weights md");
  DN(dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_str), "dst md");
  DN(dnnl_memory_desc_init_by_tag(&b_md, 2, b_dims, dnnl_f32, dnnl_ab), "bias md");
  DN(dnnl_memory_desc_init_by_tag(&sc_md, 1, sc_dims, dnnl_f32, dnnl_a), "scales md");

  dnnl_matmul_desc_t desc;
  /* fp32: bias as the matmul's bias argument. int8: the bias is added
   * after the output scales, as a binary post-op, so that its meaning does
   * not depend on the oneDNN version's scaling rules. */
  DN(dnnl_matmul_desc_init(&desc, &src_md, &w_md, (e->has_bias && !int8) ? &b_md : NULL, &dst_md), "matmul desc");
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po;
  DN(dnnl_primitive_attr_create(&attr), "attr");
  dnnl_status_t s = dnnl_post_ops_create(&po);
  if (s == dnnl_success && int8) s = dnnl_primitive_attr_set_output_scales(attr, 1, 1 << 1, &DNNL_RUNTIME_F32_VAL);
  if (s == dnnl_success && int8 && e->has_bias) s = dnnl_post_ops_append_binary(po, dnnl_binary_add, &b_md);
  if (s == dnnl_success && d->relu) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
  dnnl_primitive_desc_t pd = NULL;
  if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, mm->engine, NULL);
  dnnl_post_ops_destroy(po);
  dnnl_primitive_attr_destroy(attr);
  if (s != dnnl_success) return dnnl_fail(s, int8 ? "creating an int8 matmul" : bf16 ? "creating a bf16 matmul" : "creating an f32 matmul");
  towerrt_status st = get_weights(mm, d, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &e->weights);
  if (!st) {
    s = dnnl_primitive_create(&e->prim, pd);
    if (s == dnnl_success) s = dnnl_memory_create(&e->src, &src_md, mm->engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&e->dst, &dst_md, mm->engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success && e->has_bias) s = dnnl_memory_create(&e->bias, &b_md, mm->engine, (void *)d->b);
    if (s == dnnl_success && int8) s = dnnl_memory_create(&e->scales, &sc_md, mm->engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) st = dnnl_fail(s, "creating the matmul primitive");
  }
  dnnl_primitive_desc_destroy(pd);
  if (st) {
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->src);
    dnnl_memory_destroy(e->dst);
    dnnl_memory_destroy(e->bias);
    dnnl_memory_destroy(e->scales);
    return st;
  }
  mm->stats.primitives++;
  return TOWERRT_OK;
}

/* Whether oneDNN can make a matmul of this precision here: a small
 * primitive descriptor (no weights, nothing executed) for each input type
 * the builds use. */
towerrt_status trt_mm_probe(int precision) {
  const int int8 = precision == TOWERRT_PRECISION_INT8, bf16 = precision == TOWERRT_PRECISION_BF16;
  const dnnl_data_type_t wt = int8 ? dnnl_s8 : bf16 ? dnnl_bf16 : dnnl_f32;
  const dnnl_data_type_t srcs[2] = {int8 ? dnnl_u8 : wt, int8 ? dnnl_s8 : wt};
  const char *name = int8 ? "an int8" : bf16 ? "a bf16" : "an f32";
  dnnl_engine_t eng = NULL;
  DN(dnnl_engine_create(&eng, dnnl_cpu, 0), "creating the CPU engine");
  dnnl_status_t s = dnnl_success;
  for (int i = 0; i < 2 && s == dnnl_success; i++) {
    dnnl_dims_t src_dims = {16, 64}, w_dims = {64, 64}, dst_dims = {16, 64};
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    s = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, srcs[i], dnnl_ab);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&w_md, 2, w_dims, wt, dnnl_format_tag_any);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, &src_md, &w_md, NULL, &dst_md);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL);
    if (pd) dnnl_primitive_desc_destroy(pd);
  }
  dnnl_engine_destroy(eng);
  if (s == dnnl_unimplemented)
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "oneDNN cannot make %s matmul on this CPU (%s)", name, trt_mm_describe());
  if (s != dnnl_success) return dnnl_fail(s, "probing a matmul");
  return TOWERRT_OK;
}

static towerrt_status get_entry(trt_mm *mm, const trt_dense_layer *d, int x_u8, size_t n, size_t ldx, size_t ldy, mm_entry **out) {
  for (size_t i = 0; i < mm->n_ent; i++) {
    mm_entry *e = &mm->ent[i];
    if (e->w == d->w && e->in == d->in && e->out == d->out && e->relu == d->relu && e->n == n && e->ldx == ldx &&
        e->ldy == ldy && e->x_u8 == x_u8 && e->has_bias == (d->b != NULL)) {
      *out = e;
      return TOWERRT_OK;
    }
  }
  if (!grow((void **)&mm->ent, &mm->cap_ent, mm->n_ent + 1, sizeof *mm->ent)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_status st = create_entry(mm, d, x_u8, n, ldx, ldy, &mm->ent[mm->n_ent]);
  if (st) return st;
  *out = &mm->ent[mm->n_ent++];
  return TOWERRT_OK;
}

/* Quantizes n rows of x (stride ldx) into mm->xq (stride in), one scale
 * for the call (trt_quantize_batch_int8). */
static towerrt_status quantize_x(trt_mm *mm, const float *x, size_t ldx, size_t n, size_t in, int u8, float *scale) {
  if (!grow(&mm->xq, &mm->xq_cap, n * in, 1)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  *scale = trt_quantize_batch_int8(x, ldx, n, in, u8, mm->xq, in);
  return TOWERRT_OK;
}

/* n rows of x (stride ldx) as bf16 into mm->xq (stride in), rounded to
 * nearest even (x is finite). */
static towerrt_status to_bf16(trt_mm *mm, const float *x, size_t ldx, size_t n, size_t in) {
  if (!grow(&mm->xq, &mm->xq_cap, n * in * 2, 1)) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  uint16_t *q = mm->xq;
  for (size_t r = 0; r < n; r++) trt_f32_to_bf16_array(x + r * ldx, in, q + r * in);
  return TOWERRT_OK;
}

towerrt_status trt_mm_dense(trt_mm *mm, const trt_dense_layer *d, int x_nonneg, const float *x, size_t ldx, size_t n,
                            float *y, size_t ldy) {
  if (!mm || !d || !x || !y) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_mm_dense: NULL argument");
  if (n == 0) return TOWERRT_OK;
  if (ldx < d->in || ldy < d->out)
    return trt_fail(TOWERRT_ERR_SHAPE, "trt_mm_dense: row strides %zu / %zu below the layer's %u x %u", ldx, ldy, d->out, d->in);
  const int int8 = mm->precision == TOWERRT_PRECISION_INT8, bf16 = mm->precision == TOWERRT_PRECISION_BF16;
  const int x_u8 = int8 && x_nonneg;
  mm_entry *e = NULL;
  towerrt_status st = get_entry(mm, d, x_u8, n, int8 || bf16 ? d->in : ldx, ldy, &e);
  if (st) return st;
  mm_weights *w = &mm->wts[e->weights];
  dnnl_exec_arg_t args[6];
  int na = 0;
  if (int8) {
    float sx = 1.0f;
    if ((st = quantize_x(mm, x, ldx, n, d->in, x_u8, &sx))) return st;
    if (!grow((void **)&mm->oscale, &mm->oscale_cap, d->out, sizeof(float))) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
    for (uint32_t o = 0; o < d->out; o++) mm->oscale[o] = sx * w->scale[o];
    DN(dnnl_memory_set_data_handle(e->src, mm->xq), "src handle");
    DN(dnnl_memory_set_data_handle(e->scales, mm->oscale), "scales handle");
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_OUTPUT_SCALES, e->scales};
    if (e->has_bias) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, e->bias};
  } else {
    if (bf16 && (st = to_bf16(mm, x, ldx, n, d->in))) return st;
    DN(dnnl_memory_set_data_handle(e->src, bf16 ? mm->xq : (void *)x), "src handle");
    if (e->has_bias) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
  }
  DN(dnnl_memory_set_data_handle(e->dst, y), "dst handle");
  args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->src};
  args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, w->mem};
  args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->dst};
  DN(dnnl_primitive_execute(e->prim, mm->stream, na, args), "matmul");
  DN(dnnl_stream_wait(mm->stream), "matmul wait");
  mm->stats.calls++;
  return TOWERRT_OK;
}

#endif
