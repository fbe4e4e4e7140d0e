/* Per-step profile of one request (profile.h). The steps are those the
 * session's observer reports (towerrt_session_set_trace, include/towerrt.h)
 * while towerrt_score runs on one thread: the request checks, the user
 * tower, the finiteness check of the user heads and their conversion to
 * the store's precision, and per block of candidates the id -> row
 * resolution, MaxSim with the prediction layer, and placing the scores.
 * Nothing is replayed: a change to the request path shows here as it is.
 * Each request is scored twice, observed and not: the unobserved call
 * gives the latency to compare the sum of the steps with, and its scores
 * must equal the observed call's. */
#include "profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The observer's steps shown, in request order ("request" and
 * "score_block" are spans around them). */
enum { S_CHECK, S_TOWER, S_HEADS_CHECK, S_CONVERT, S_RESOLVE, S_MAXSIM, S_OUTPUT, N_OBSERVED };
static const char *const k_observed[N_OBSERVED] = {"check", "user_tower", "heads_check", "user_heads", "resolve", "maxsim", "output"};
static const char *const k_shown[N_OBSERVED] = {"request.check", "user.tower", "user.heads_check", "user.heads_convert",
                                                 "items.resolve", "maxsim", "scores.place"};

/* The observer's context: this request's time per step (ns). */
typedef struct observed {
  uint64_t ns[N_OBSERVED];
} observed;

static void observe(void *ctx, const char *step, uint64_t begin_ns, uint64_t end_ns, uint32_t slot) {
  observed *o = ctx;
  (void)slot; /* one thread: always 0 */
  for (int i = 0; i < N_OBSERVED; i++)
    if (!strcmp(step, k_observed[i])) o->ns[i] += end_ns - begin_ns;
}

static const char *precision_of(const towerrt_items *it) { return towerrt_precision_name(towerrt_items_precision(it)); }

/* What each step does, for the table. */
static void describe_steps(const towerrt_model *m, const towerrt_items *it, uint32_t mask, size_t k, tb_profile *p, size_t id[N_OBSERVED]) {
  towerrt_precision prec = towerrt_items_precision(it);
  uint32_t uh = tb_user_heads(m), ih = tb_item_heads(m), dim = tb_head_dim(m);
  size_t n_user = (size_t)__builtin_popcount(mask) * uh;
  double macs = (double)k * (double)n_user * ih * dim;
  char d[N_OBSERVED][80];
  snprintf(d[S_CHECK], 80, "user ids in range, dense values finite, %zu candidates", k);
  snprintf(d[S_TOWER], 80, "the user tower up to FE layer %u (the last scored)", 31u - (uint32_t)__builtin_clz(mask));
  snprintf(d[S_HEADS_CHECK], 80, "%zu x %u values finite", n_user, dim);
  snprintf(d[S_CONVERT], 80, "%s", prec == TOWERRT_PRECISION_BF16 ? "to bf16 (round to nearest even)" : "to u8, zero point + scale per head");
  snprintf(d[S_RESOLVE], 80, "%zu ids -> store rows (hash map)", k);
  snprintf(d[S_MAXSIM], 80, "%zu x %zu x %u x %u = %.3g MACs (%s), prediction", k, n_user, ih, dim, macs,
           prec == TOWERRT_PRECISION_F32 ? "f32" : prec == TOWERRT_PRECISION_BF16 ? "bf16" : "u8 x s8");
  snprintf(d[S_OUTPUT], 80, "k scores into candidate order, finite");
  for (int i = 0; i < N_OBSERVED; i++) {
    id[i] = SIZE_MAX;
    if (i == S_CONVERT && prec == TOWERRT_PRECISION_F32) continue; /* f32 heads are used as they are */
    tb_profile_step *s = &p->steps[p->n_steps];
    snprintf(s->name, sizeof s->name, "%s", k_shown[i]);
    memcpy(s->detail, d[i], sizeof s->detail); /* both 80 bytes, NUL-terminated */
    id[i] = p->n_steps++;
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median and mean of each step, and of the unobserved latency. */
static void summarize(tb_profile *out, double *samples, double *whole, size_t requests) {
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
}

towerrt_status tb_profile_run(const towerrt_model *m, const towerrt_items *it, uint32_t fe_mask, size_t k, size_t requests,
                              uint64_t seed, tb_profile *out) {
  memset(out, 0, sizeof *out);
  uint32_t mask = fe_mask ? fe_mask : towerrt_model_fe_layer_mask(m);
  if (requests < 1) requests = 1;
  snprintf(out->isa, sizeof out->isa, "%s", towerrt_model_isa(m));
  snprintf(out->precision, sizeof out->precision, "%s", precision_of(it));
  tb_mask_string(mask, out->fe_layers, sizeof out->fe_layers);
  out->k = k;
  out->requests = requests;
  size_t id[N_OBSERVED];
  describe_steps(m, it, mask, k, out, id);

  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = fe_mask;
  o.max_k = (uint32_t)k;
  o.threads = 1;
  towerrt_session *sess = NULL;
  towerrt_status st = towerrt_session_create(m, it, &o, &sess);
  if (st) return st;
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), dw = towerrt_model_dense_width(m, TOWERRT_USER);
  tb_reqgen g;
  double *samples = calloc(out->n_steps * requests, sizeof *samples);
  double *whole = malloc(requests * sizeof *whole);
  int64_t *uids = malloc((slots + 1) * sizeof *uids);
  float *udense = malloc((dw + 1) * sizeof *udense);
  uint64_t *cands = malloc(k * sizeof *cands);
  float *scores = malloc(k * sizeof *scores), *ref = malloc(k * sizeof *ref);
  int gen_ok = tb_reqgen_init(&g, m, it, seed);
  if (!samples || !whole || !uids || !udense || !cands || !scores || !ref || !gen_ok) {
    st = tb_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the profile of k = %zu", k);
    goto done;
  }
  size_t warm = requests < 3 ? 1 : 3;
  for (size_t r = 0; r < warm + requests && !st; r++) {
    tb_reqgen_user(&g, uids, udense);
    tb_reqgen_candidates(&g, cands, k);
    towerrt_features user = {uids, slots, dw ? udense : NULL, dw};
    observed seen;
    memset(&seen, 0, sizeof seen);
    towerrt_session_set_trace(sess, observe, &seen);
    st = towerrt_score(sess, &user, cands, k, scores);
    towerrt_session_set_trace(sess, NULL, NULL);
    uint64_t w0 = tb_now_ns();
    if (!st) st = towerrt_score(sess, &user, cands, k, ref);
    uint64_t w1 = tb_now_ns();
    if (st || r < warm) continue;
    whole[r - warm] = (double)(w1 - w0) * 1e-3;
    for (int i = 0; i < N_OBSERVED; i++)
      if (id[i] != SIZE_MAX) samples[id[i] * requests + (r - warm)] = (double)seen.ns[i] * 1e-3;
    for (size_t i = 0; i < k; i++) {
      double d = fabs((double)scores[i] - (double)ref[i]);
      if (!(d <= out->max_abs_diff)) out->max_abs_diff = d; /* NaN propagates */
    }
  }
  if (!st) summarize(out, samples, whole, requests);
done:
  if (gen_ok) tb_reqgen_free(&g);
  towerrt_session_free(sess);
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
  fprintf(f, "  towerrt_score unobserved on the same requests: p50 %.2f us; scores differ by at most %.3g\n", p->score_p50_us,
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
