/* Per-step profile of one request (profile.h). The steps replay
 * towerrt_score on one thread exactly (runtime/session.c and
 * runtime/tower_exec.c): the request checks; the user tower input (gather
 * + pool, Light-SE, dense concat); the FE projections and tower layers in
 * plan order up to the last FE layer scored; the finiteness check of the
 * user heads and their conversion to the store's precision; per block of
 * TRT_ID_BLOCK candidates the id -> row resolution, MaxSim and the
 * prediction layer; the finiteness check of the scores. The scores are
 * compared with towerrt_score's on the same requests, to show that the
 * profile times the computation the runtime does. */
#include "profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/item_store.h"
#include "runtime/status.h"
#include "runtime/tower_exec.h"
#ifdef TB_HAVE_PRECISION
#include "runtime/quantize_heads.h"
#endif

static const char *weights_name(const trt_dense_layer *d) {
  return d->wtype == TRT_DTYPE_BF16 ? ", bf16 weights" : d->wtype == TRT_DTYPE_S8 ? ", s8 weights" : "";
}

static size_t add_step(tb_profile *p, const char *name, const char *detail) {
  tb_profile_step *s = &p->steps[p->n_steps];
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->detail, sizeof s->detail, "%s", detail);
  return p->n_steps++;
}

typedef struct step_ids {
  size_t check, embed, lightse, concat, fe[TRT_MAX_LAYERS], dense[TRT_MAX_LAYERS], heads_check, convert, resolve, maxsim,
      predict, scores_check;
} step_ids;

enum { P_F32 = 0, P_BF16 = 1, P_INT8 = 2 };

static int store_precision(const towerrt_items *it) {
#ifdef TB_HAVE_PRECISION
  if (it->dtype == TOWERRT_PRECISION_BF16) return P_BF16;
  if (it->dtype == TOWERRT_PRECISION_INT8) return P_INT8;
#else
  (void)it;
#endif
  return P_F32;
}

/* The plan's steps, in execution order. */
static void plan_steps(const towerrt_model *m, uint32_t mask, size_t k, int prec, tb_profile *p, step_ids *id) {
  const trt_tower *t = &m->user;
  char d[80];
  id->check = add_step(p, "request.check", "user ids in range, dense values finite");
  snprintf(d, sizeof d, "%u id fields x %u dims (gather, pool)", t->n_id_fields, t->emb_dim);
  id->embed = add_step(p, "user.embed", d);
  snprintf(d, sizeof d, "%u x %u excitation, softmax", t->n_id_fields, t->n_id_fields);
  id->lightse = add_step(p, "user.lightse", d);
  snprintf(d, sizeof d, "+%u dense -> %u wide", t->dense_width, t->input_width);
  id->concat = add_step(p, "user.concat_dense", d);
  uint32_t last = 31u - (uint32_t)__builtin_clz(mask);
  for (uint32_t L = 0; L <= last; L++) {
    char n[48];
    if (mask & (1u << L)) {
      snprintf(n, sizeof n, "user.fe_proj[%u]", L);
      snprintf(d, sizeof d, "%u -> %u heads x %u%s", t->fe[L].in, m->heads_user, m->head_dim, weights_name(&t->fe[L]));
      id->fe[L] = add_step(p, n, d);
    }
    if (L == last) break;
    snprintf(n, sizeof n, "user.dense[%u]", L);
    snprintf(d, sizeof d, "%u -> %u%s%s%s", t->layers[L].in, t->layers[L].out, t->layers[L].folded_bn ? ", BN folded" : "",
             t->layers[L].relu ? ", relu" : "", weights_name(&t->layers[L]));
    id->dense[L] = add_step(p, n, d);
  }
  size_t n_user = (size_t)__builtin_popcount(mask) * m->heads_user;
  snprintf(d, sizeof d, "%zu x %u values finite", n_user, m->head_dim);
  id->heads_check = add_step(p, "user.heads_check", d);
  id->convert = SIZE_MAX;
  if (prec != P_F32)
    id->convert = add_step(p, "user.heads_convert", prec == P_BF16 ? "to bf16 (round to nearest even)" : "to u8, zero point + scale per head");
  snprintf(d, sizeof d, "%zu ids -> store rows (hash map)", k);
  id->resolve = add_step(p, "items.resolve", d);
  double macs = (double)k * (double)n_user * m->heads_item * m->head_dim;
  snprintf(d, sizeof d, "%zu x %zu x %u x %u = %.3g MACs (%s)", k, n_user, m->heads_item, m->head_dim, macs,
           prec == P_F32 ? "f32" : prec == P_BF16 ? "bf16" : "u8 x s8");
  id->maxsim = add_step(p, "maxsim", d);
  id->predict = add_step(p, "predict", m->output_sigmoid ? "sigmoid(score + bias)" : "score + bias");
  id->scores_check = add_step(p, "scores.check", "k scores finite");
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

towerrt_status tb_profile_run(const towerrt_model *m, const towerrt_items *it, uint32_t fe_mask, size_t k, size_t requests,
                              uint64_t seed, tb_profile *out) {
  memset(out, 0, sizeof *out);
  uint32_t mask = fe_mask ? fe_mask : m->trained_fe_mask;
  int prec = store_precision(it);
  if (requests < 1) requests = 1;
  snprintf(out->isa, sizeof out->isa, "%s", m->kernels.name);
  snprintf(out->precision, sizeof out->precision, "%s", prec == P_F32 ? "f32" : prec == P_BF16 ? "bf16" : "int8");
  tb_mask_string(mask, out->fe_layers, sizeof out->fe_layers);
  out->k = k;
  out->requests = requests;
  step_ids id;
  memset(&id, 0, sizeof id);
  plan_steps(m, mask, k, prec, out, &id);

  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = fe_mask;
  o.max_k = (uint32_t)k;
  towerrt_session *sess = NULL;
  towerrt_status st = towerrt_session_create(m, it, &o, &sess);
  if (st) return st;
  tb_reqgen g;
  void *arena = tb_alloc(trt_workspace_bytes(m));
  double *samples = calloc(out->n_steps * requests, sizeof *samples);
  double *whole = malloc(requests * sizeof *whole);
  int64_t *uids = malloc((m->user.id_slots + 1) * sizeof *uids);
  float *udense = malloc((m->user.dense_width + 1) * sizeof *udense);
  uint64_t *cands = malloc(k * sizeof *cands);
  float *scores = malloc(k * sizeof *scores), *ref = malloc(k * sizeof *ref);
  int gen_ok = tb_reqgen_init(&g, m, it, seed);
  if (!arena || !samples || !whole || !uids || !udense || !cands || !scores || !ref || !gen_ok) {
    st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the profile of k = %zu", k);
    goto done;
  }
  trt_workspace ws;
  trt_workspace_init(m, arena, &ws);
  const trt_tower *t = &m->user;
  const towerrt_kernels *kn = &m->kernels;
  size_t n_user = (size_t)__builtin_popcount(mask) * m->heads_user, per_layer = (size_t)m->heads_user * m->head_dim;
#ifdef TB_HAVE_PRECISION
  const void *heads_data = it->heads_data;
  size_t stride = (size_t)(it->row_stride / it->elem_size);
  trt_maxsim_u8s8_params u8 = {.user = ws.user_u8, .user_zp = ws.user_zp, .user_scale = ws.user_scale, .n_user = n_user,
                               .items = heads_data, .item_stride = (size_t)it->row_stride, .colsum = it->colsums,
                               .colsum_stride = it->heads, .item_scale = it->scales, .n_item = m->heads_item, .dim = m->head_dim};
#else
  const float *heads_data = it->heads_data;
  size_t stride = (size_t)(it->row_stride / sizeof(float));
#endif
  uint32_t last = 31u - (uint32_t)__builtin_clz(mask);
  size_t warm = requests < 3 ? 1 : 3;
  for (size_t r = 0; r < warm + requests; r++) {
    double *smp = r >= warm ? samples + (r - warm) : NULL; /* step s of this request at smp[s * requests] */
#define STEP(idx, t0)                                               \
  do {                                                              \
    uint64_t t1_ = tb_now_ns();                                     \
    if (smp) smp[(idx) * requests] += (double)(t1_ - (t0)) * 1e-3; \
    (t0) = t1_;                                                     \
  } while (0)
    tb_reqgen_user(&g, uids, udense);
    tb_reqgen_candidates(&g, cands, k);
    towerrt_features user = {uids, t->id_slots, t->dense_width ? udense : NULL, t->dense_width};
    uint64_t t0 = tb_now_ns();
    st = trt_check_features(m, TOWERRT_USER, &user, 1);
    if (st) goto done;
    STEP(id.check, t0);
    size_t slot = 0;
    for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
      const trt_field *f = &m->fields[t->first_field + fi];
      if (f->kind == TRT_FIELD_SINGLE)
        memcpy(ws.user_emb + (size_t)fi * t->emb_dim, f->table + (size_t)uids[slot] * t->emb_dim, t->emb_dim * sizeof(float));
      else
        kn->embed_pool_f32(f->table, t->emb_dim, uids + slot, f->slots, (int)f->combiner, ws.user_emb + (size_t)fi * t->emb_dim);
      slot += f->slots;
    }
    STEP(id.embed, t0);
    kn->lightse_f32(ws.user_emb, t->n_id_fields, t->emb_dim, t->lightse_w, t->lightse_b, ws.user_scratch, ws.user_x0);
    STEP(id.lightse, t0);
    if (t->dense_width) memcpy(ws.user_x0 + (size_t)t->n_id_fields * t->emb_dim, udense, t->dense_width * sizeof(float));
    STEP(id.concat, t0);
    const float *x = ws.user_x0;
    float *next = ws.user_a, *heads = ws.user_heads;
    for (uint32_t L = 0; L <= last; L++) {
      if (mask & (1u << L)) {
        trt_user_dense(m, &ws, &t->fe[L], x, heads);
        heads += per_layer;
        STEP(id.fe[L], t0);
      }
      if (L == last) break;
      trt_user_dense(m, &ws, &t->layers[L], x, next);
      x = next;
      next = next == ws.user_a ? ws.user_b : ws.user_a;
      STEP(id.dense[L], t0);
    }
    int finite = 1;
    for (size_t i = 0; i < n_user * m->head_dim; i++) finite &= isfinite(ws.user_heads[i]) != 0;
    STEP(id.heads_check, t0);
#ifdef TB_HAVE_PRECISION
    if (prec == P_BF16) trt_f32_to_bf16_array(ws.user_heads, n_user * m->head_dim, ws.user_bf16);
    if (prec == P_INT8) kn->quantize_u8(ws.user_heads, n_user, m->head_dim, kn->u8_max, ws.user_u8, ws.user_zp, ws.user_scale);
    if (prec != P_F32) STEP(id.convert, t0);
#endif
    float bias = m->out_bias;
    int sigmoid = m->output_sigmoid;
    for (size_t c0 = 0; c0 < k; c0 += TRT_ID_BLOCK) {
      size_t b = k - c0 < TRT_ID_BLOCK ? k - c0 : TRT_ID_BLOCK;
      for (size_t c = 0; c < b; c++) ws.rows[c] = trt_items_find(it, cands[c0 + c]);
      STEP(id.resolve, t0);
      float *sc = scores + c0;
#ifdef TB_HAVE_PRECISION
      if (prec == P_INT8) kn->maxsim_u8s8(&u8, ws.rows, b, sc);
      else if (prec == P_BF16) kn->maxsim_bf16(ws.user_bf16, n_user, heads_data, stride, ws.rows, b, m->heads_item, m->head_dim, sc);
      else
#endif
        kn->maxsim_f32(ws.user_heads, n_user, heads_data, stride, ws.rows, b, m->heads_item, m->head_dim, sc);
      STEP(id.maxsim, t0);
      for (size_t i = 0; i < b; i++) {
        float z = sc[i] + bias;
        sc[i] = !isfinite(z) ? NAN : sigmoid ? 1.0f / (1.0f + expf(-z)) : z;
      }
      STEP(id.predict, t0);
    }
    for (size_t i = 0; i < k; i++) finite &= isfinite(scores[i]) != 0;
    STEP(id.scores_check, t0);
#undef STEP
    if (!finite) {
      st = trt_fail(TOWERRT_ERR_NONFINITE, "profile: non-finite user heads or scores");
      goto done;
    }
    /* the same request through the public API */
    uint64_t w0 = tb_now_ns();
    st = towerrt_score(sess, &user, cands, k, ref);
    uint64_t w1 = tb_now_ns();
    if (st) goto done;
    if (r >= warm) {
      whole[r - warm] = (double)(w1 - w0) * 1e-3;
      for (size_t i = 0; i < k; i++) {
        double d = fabs((double)scores[i] - (double)ref[i]);
        if (!(d <= out->max_abs_diff)) out->max_abs_diff = d; /* NaN propagates */
      }
    }
  }
  for (size_t s = 0; s < out->n_steps; s++) {
    double *v = samples + s * requests, sum = 0.0;
    for (size_t r = 0; r < requests; r++) sum += v[r];
    qsort(v, requests, sizeof *v, cmp_d);
    out->steps[s].median_us = tb_percentile_sorted(v, requests, 50.0);
    out->steps[s].mean_us = sum / (double)requests;
    out->total_median_us += out->steps[s].median_us;
  }
  qsort(whole, requests, sizeof *whole, cmp_d);
  out->score_p50_us = tb_percentile_sorted(whole, requests, 50.0);
done:
  if (gen_ok) tb_reqgen_free(&g);
  towerrt_session_free(sess);
  free(arena);
  free(samples);
  free(whole);
  free(uids);
  free(udense);
  free(cands);
  free(scores);
  free(ref);
  return st;
}

void tb_profile_print(const tb_profile *p, FILE *f) {
  fprintf(f, "\nprofile: one request, isa %s, %s item store, FE layers %s, k = %zu (median of %zu requests, one thread)\n", p->isa,
          p->precision, p->fe_layers, p->k, p->requests);
  fprintf(f, "  %-20s %-52s %12s %7s\n", "step", "what", "median us", "%");
  for (size_t i = 0; i < p->n_steps; i++) {
    const tb_profile_step *s = &p->steps[i];
    fprintf(f, "  %-20s %-52s %12.2f %6.1f%%\n", s->name, s->detail, s->median_us,
            p->total_median_us > 0 ? 100.0 * s->median_us / p->total_median_us : 0.0);
  }
  fprintf(f, "  %-20s %-52s %12.2f %6.1f%%\n", "total", "sum of the step medians", p->total_median_us, 100.0);
  fprintf(f, "  towerrt_score on the same requests: p50 %.2f us; scores differ by at most %.3g\n", p->score_p50_us,
          p->max_abs_diff);
}

void tb_profile_json(const tb_profile *p, FILE *f, const char *ind) {
  fprintf(f, "{\n%s  \"isa\": ", ind);
  tb_json_string(f, p->isa);
  fprintf(f, ",\n%s  \"precision\": ", ind);
  tb_json_string(f, p->precision);
  fprintf(f, ",\n%s  \"fe_layers\": ", ind);
  tb_json_string(f, p->fe_layers);
  fprintf(f, ",\n%s  \"k\": %zu,\n%s  \"requests\": %zu,\n%s  \"total_median_us\": ", ind, p->k, ind, p->requests, ind);
  tb_json_number(f, p->total_median_us);
  fprintf(f, ",\n%s  \"score_p50_us\": ", ind);
  tb_json_number(f, p->score_p50_us);
  fprintf(f, ",\n%s  \"max_abs_diff\": ", ind);
  tb_json_number(f, p->max_abs_diff);
  fprintf(f, ",\n%s  \"steps\": [", ind);
  for (size_t i = 0; i < p->n_steps; i++) {
    const tb_profile_step *s = &p->steps[i];
    fprintf(f, "%s\n%s    {\"step\": ", i ? "," : "", ind);
    tb_json_string(f, s->name);
    fprintf(f, ", \"what\": ");
    tb_json_string(f, s->detail);
    fprintf(f, ", \"median_us\": ");
    tb_json_number(f, s->median_us);
    fprintf(f, ", \"mean_us\": ");
    tb_json_number(f, s->mean_us);
    fprintf(f, ", \"percent\": ");
    tb_json_number(f, p->total_median_us > 0 ? 100.0 * s->median_us / p->total_median_us : 0.0);
    fputc('}', f);
  }
  fprintf(f, "\n%s  ]\n%s}", ind, ind);
}
