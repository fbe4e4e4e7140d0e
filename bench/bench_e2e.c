/* e2e/<isa>/<precision>/fe:<mode>: towerrt_score end to end (checks,
 * user tower, id resolution, MaxSim, prediction) on a synthetic model, k
 * candidates per request as the benchmark argument (bench_suites.h), one
 * thread. Each iteration is one request; requests cycle through a pool of
 * random users and candidate lists prepared before timing.
 * items/s = candidates/s. bf16 and int8 use quantized copies of the store
 * (towerrt_items_quantize), where the runtime has them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "bench_suites.h"
#include "gbench_shim.h"
#include "synthetic_model.h"

#define POOL 16 /* distinct requests cycled through */

static struct {
  tb_suite_options opt;
  tb_synth_config cfg;
  int tried, ok;
  char error[512];
  towerrt_items *items[3]; /* f32, bf16, int8 */
  towerrt_model *models[TB_MAX_ISAS];
  char model_path[4096], items_path[4096];
} e;

static const char *const k_prec[3] = {"f32", "bf16", "int8"};

typedef struct e2e_bench {
  char isa[32];
  uint32_t fe_mask; /* 0: trained */
  int precision;    /* index in k_prec */
} e2e_bench;

static e2e_bench benches[TB_MAX_ISAS * 2 * 3];
static size_t n_benches;

void tb_e2e_cleanup(void) {
  for (size_t i = 0; i < TB_MAX_ISAS; i++) towerrt_model_free(e.models[i]);
  for (int i = 0; i < 3; i++) towerrt_items_free(e.items[i]);
  memset(&e, 0, sizeof e);
}

/* The synthetic model and store, built (or found in the cache) on first use. */
static int ensure_fixture(void) {
  if (e.tried) return e.ok;
  e.tried = 1;
  char dir[4096];
  if (e.opt.workdir) snprintf(dir, sizeof dir, "%s", e.opt.workdir);
  else tb_synth_default_dir(&e.cfg, dir, sizeof dir);
  towerrt_status st = tb_synth_prepare(&e.cfg, dir, 1, e.model_path, e.items_path, sizeof e.model_path, stderr);
  if (!st) st = towerrt_items_load(e.items_path, NULL, &e.items[0]);
#ifdef TB_HAVE_PRECISION
  for (int p = 1; p < 3 && !st; p++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/items-%s.twi", dir, k_prec[p]);
    if (towerrt_items_load(path, NULL, &e.items[p]) == TOWERRT_OK && towerrt_items_count(e.items[p]) == e.cfg.catalog) continue;
    towerrt_items_free(e.items[p]);
    e.items[p] = NULL;
    st = towerrt_items_quantize(e.items[0], p == 1 ? TOWERRT_PRECISION_BF16 : TOWERRT_PRECISION_INT8, path);
    if (!st) st = towerrt_items_load(path, NULL, &e.items[p]);
  }
#endif
  if (st) {
    snprintf(e.error, sizeof e.error, "synthetic model: %s (%s)", towerrt_last_error(), towerrt_status_name(st));
    return 0;
  }
  e.ok = 1;
  return 1;
}

static towerrt_model *model_for(const char *isa) {
  const char *isas[TB_MAX_ISAS];
  size_t n = tb_available_isas(isas);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(isas[i], isa)) continue;
    if (!e.models[i]) {
      towerrt_options o;
      towerrt_options_init(&o);
      o.isa = isa;
      if (towerrt_model_load(e.model_path, &o, &e.models[i])) return NULL;
    }
    return e.models[i];
  }
  return NULL;
}

static void bm_e2e(gbs_state *s, void *user) {
  const e2e_bench *b = user;
  size_t k = (size_t)gbs_range_arg(s, 0);
  if (!ensure_fixture()) {
    gbs_skip_with_error(s, e.error);
    return;
  }
  towerrt_model *m = model_for(b->isa);
  if (!m) {
    gbs_skip_with_error(s, towerrt_last_error());
    return;
  }
  towerrt_options o;
  towerrt_options_init(&o);
  o.fe_layer_mask = b->fe_mask;
  o.max_k = (uint32_t)k;
  towerrt_session *sess = NULL;
  towerrt_items *items = e.items[b->precision];
  if (!items) {
    gbs_skip_with_error(s, "no item store at this precision");
    return;
  }
  if (towerrt_session_create(m, items, &o, &sess)) {
    gbs_skip_with_error(s, towerrt_last_error());
    return;
  }
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), dw = towerrt_model_dense_width(m, TOWERRT_USER);
  int64_t *uids = malloc(POOL * (slots + 1) * sizeof *uids);
  float *udense = malloc(POOL * (dw + 1) * sizeof *udense);
  uint64_t *cands = malloc(POOL * k * sizeof *cands);
  float *scores = malloc(k * sizeof *scores);
  tb_reqgen g;
  int gen = tb_reqgen_init(&g, m, items, 42);
  if (!uids || !udense || !cands || !scores || !gen) {
    gbs_skip_with_error(s, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < POOL; r++) {
    tb_reqgen_user(&g, uids + r * (slots + 1), udense + r * (dw + 1));
    tb_reqgen_candidates(&g, cands + r * k, k);
  }
  size_t r = 0;
  while (gbs_keep_running(s)) {
    towerrt_features feats = {uids + r * (slots + 1), slots, dw ? udense + r * (dw + 1) : NULL, dw};
    if (towerrt_score(sess, &feats, cands + r * k, k, scores)) {
      gbs_skip_with_error(s, towerrt_session_error(sess));
      break;
    }
    r = (r + 1) % POOL;
  }
  uint32_t mask = b->fe_mask ? b->fe_mask : towerrt_model_fe_layer_mask(m);
  size_t row_bytes = (size_t)tb_item_heads(m) * tb_head_dim(m) * (b->precision == 0 ? 4u : b->precision == 1 ? 2u : 1u);
  int64_t it = gbs_iterations_done(s);
  gbs_set_items_processed(s, it * (int64_t)k);
  gbs_set_bytes_processed(s, it * (int64_t)(k * row_bytes));
  gbs_counter(s, "MACs", (double)k * __builtin_popcount(mask) * tb_user_heads(m) * tb_item_heads(m) * tb_head_dim(m), GBS_RATE_PER_ITERATION);
done:
  if (gen) tb_reqgen_free(&g);
  towerrt_session_free(sess);
  free(uids);
  free(udense);
  free(cands);
  free(scores);
}

void tb_register_e2e_suite(const tb_suite_options *o) {
  e.opt = *o;
  if (!tb_synth_preset(&e.cfg, o->preset ? o->preset : (o->quick ? "tiny" : "reference"))) tb_synth_reference(&e.cfg);
  if (o->catalog) e.cfg.catalog = o->catalog;
  static const int64_t ks_full[] = {10, 100, 1000, 10000, 100000}, ks_quick[] = {10, 100};
  const int64_t *ks = o->quick ? ks_quick : ks_full;
  size_t n_ks = o->quick ? 2 : 5;
  const char *isas[TB_MAX_ISAS];
  size_t n = tb_available_isas(isas);
  /* the model's trained FE layers, and layer 0 alone (the README's fast mode) */
  uint32_t masks[2] = {0, 1};
  const char *mask_names[2] = {"trained", "0"};
  size_t n_masks = (e.cfg.fe_mask == 1) ? 1 : 2;
#ifdef TB_HAVE_PRECISION
  const int n_prec = 3;
#else
  const int n_prec = 1;
#endif
  for (size_t i = 0; i < n; i++) {
    for (int pr = 0; pr < n_prec; pr++)
    for (size_t f = 0; f < n_masks && n_benches < sizeof benches / sizeof benches[0]; f++) {
      e2e_bench *b = &benches[n_benches++];
      snprintf(b->isa, sizeof b->isa, "%s", isas[i]);
      b->fe_mask = masks[f];
      b->precision = pr;
      char name[96];
      snprintf(name, sizeof name, "e2e/%s/%s/fe:%s", isas[i], k_prec[pr], mask_names[f]);
      gbs_benchmark *bm = gbs_register(name, bm_e2e, b);
      static const char *const names[] = {"k"};
      gbs_arg_names(bm, names, 1);
      for (size_t j = 0; j < n_ks; j++) {
        /* past the store's size candidates repeat; keep k within the catalog */
        if (ks[j] <= (int64_t)e.cfg.catalog || j == 0) gbs_arg(bm, ks[j]);
      }
      gbs_unit(bm, GBS_US);
      gbs_use_real_time(bm);
    }
  }
}
