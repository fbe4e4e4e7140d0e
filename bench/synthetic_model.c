/* Synthetic IntTower models and catalogs (synthetic_model.h): the bench's
 * configuration (presets, generator options, the cache) over the public
 * generator towerrt_synthetic_model_write, which writes the .twr through
 * the runtime's one container writer (runtime/synthetic_model.c). */
#include "synthetic_model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_util.h"

/* ---- configuration --------------------------------------------------------- */

/* The public reference configuration (towerrt_synthetic_config_init) and
 * its catalog. */
void tb_synth_reference(tb_synth_config *c) {
  towerrt_synthetic_config s;
  towerrt_synthetic_config_init(&s);
  memset(c, 0, sizeof *c);
  c->user_single = s.user_single;
  c->item_single = s.item_single;
  c->item_multi_len = s.item_multi_len;
  c->user_dense = s.user_dense;
  c->item_dense = s.item_dense;
  c->emb_dim = s.emb_dim;
  c->n_layers = s.n_layers;
  memcpy(c->widths, s.widths, sizeof c->widths);
  c->user_heads = s.user_heads;
  c->item_heads = s.item_heads;
  c->head_dim = s.head_dim;
  c->fe_mask = s.fe_mask;
  c->batchnorm = s.batchnorm;
  c->catalog = 100000;
  c->seed = s.seed;
}

void tb_synth_tiny(tb_synth_config *c) {
  tb_synth_reference(c);
  c->user_single = 2;
  c->item_multi_len = 3;
  c->emb_dim = 8;
  c->widths[0] = 16;
  c->widths[1] = 16;
  c->widths[2] = 8;
  c->user_heads = 4;
  c->item_heads = 4;
  c->head_dim = 8;
  c->catalog = 256;
}

int tb_synth_preset(tb_synth_config *c, const char *name) {
  if (!strcmp(name, "reference")) tb_synth_reference(c);
  else if (!strcmp(name, "tiny")) tb_synth_tiny(c);
  else return 0;
  return 1;
}

const char *tb_synth_usage(void) {
  return "  synthetic model (--synthetic; defaults: the reference configuration, docs/performance.md):\n"
         "    --preset reference|tiny   start from a preset (give it before the options below)\n"
         "    --user-fields N           single-id user fields (4: user_id gender age occupation)\n"
         "    --item-fields N           single-id item fields (1: movie_id)\n"
         "    --multi-len L             id slots of the multi-id item field genres (6; 0 = none)\n"
         "    --user-dense N            dense user fields (1)\n"
         "    --item-dense N            dense item fields (1)\n"
         "    --emb-dim D               embedding dim (32)\n"
         "    --towers W1,W2,...        tower widths, both towers (300,300,128)\n"
         "    --user-heads H            user heads per FE layer (32)\n"
         "    --item-heads H            item heads (32)\n"
         "    --head-dim P              dims per head (64)\n"
         "    --fe-layers 0,1,2         user FE layers the model is trained with (0,1,2)\n"
         "    --batchnorm 0|1           BatchNorm after each Linear (1)\n"
         "    --catalog N               items in the synthetic item store (100000)\n"
         "    --model-seed S            random seed of the weights and the catalog (1)\n";
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out) {
  uint64_t x;
  if (!tb_parse_u64(v, lo, hi, &x)) return 0;
  *out = (uint32_t)x;
  return 1;
}

const char *const tb_synth_option_names[] = {"--user-fields", "--item-fields", "--multi-len", "--user-dense", "--item-dense",
                                             "--emb-dim",     "--towers",      "--user-heads", "--item-heads", "--head-dim",
                                             "--fe-layers",   "--batchnorm",   "--catalog",    "--model-seed", NULL};

static int bad(char *err, size_t cap, const char *opt, const char *value, const char *want) {
  snprintf(err, cap, "%s '%s': expected %s", opt, value, want);
  return -1;
}

int tb_synth_option(tb_synth_config *c, const char *opt, const char *v, char *err, size_t cap) {
  struct {
    const char *name;
    uint32_t *field;
    uint32_t lo, hi;
  } ints[] = {
      {"--user-fields", &c->user_single, 0, 64},   {"--item-fields", &c->item_single, 0, 64},
      {"--multi-len", &c->item_multi_len, 0, 256}, {"--user-dense", &c->user_dense, 0, 64},
      {"--item-dense", &c->item_dense, 0, 64},     {"--emb-dim", &c->emb_dim, 1, 1024},
      {"--user-heads", &c->user_heads, 1, 4096},   {"--item-heads", &c->item_heads, 1, 4096},
      {"--head-dim", &c->head_dim, 1, 4096},       {"--batchnorm", &c->batchnorm, 0, 1},
      {"--catalog", &c->catalog, 1, 50000000},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (strcmp(opt, ints[i].name)) continue;
    if (!parse_u32(v, ints[i].lo, ints[i].hi, ints[i].field)) {
      char want[64];
      snprintf(want, sizeof want, "an integer in %u..%u", ints[i].lo, ints[i].hi);
      return bad(err, cap, opt, v, want);
    }
    return 1;
  }
  if (!strcmp(opt, "--model-seed")) {
    if (!tb_parse_u64(v, 0, UINT64_MAX, &c->seed)) return bad(err, cap, opt, v, "an unsigned integer");
    return 1;
  }
  if (!strcmp(opt, "--towers") || !strcmp(opt, "--fe-layers")) {
    int towers = !strcmp(opt, "--towers");
    tb_strlist l = {0};
    if (!tb_strlist_split(&l, v, ',') || l.n == 0 || l.n > TB_SYNTH_MAX_LAYERS) {
      tb_strlist_free(&l);
      return bad(err, cap, opt, v, towers ? "1 to 8 comma-separated widths" : "comma-separated layer indices");
    }
    uint32_t mask = 0, w[TB_SYNTH_MAX_LAYERS];
    for (size_t i = 0; i < l.n; i++) {
      uint32_t x;
      if (!parse_u32(l.v[i], towers ? 1 : 0, towers ? 65536 : TB_SYNTH_MAX_LAYERS - 1, &x)) {
        tb_strlist_free(&l);
        return bad(err, cap, opt, v, towers ? "widths in 1..65536" : "layer indices in 0..7");
      }
      w[i] = x;
      mask |= 1u << (x & 31);
    }
    if (towers) {
      c->n_layers = (uint32_t)l.n;
      memcpy(c->widths, w, l.n * sizeof w[0]);
    } else {
      c->fe_mask = mask;
    }
    tb_strlist_free(&l);
    return 1;
  }
  return 0;
}

int tb_synth_validate(const tb_synth_config *c, char *err, size_t cap) {
  if (c->user_single == 0) return snprintf(err, cap, "the user side needs at least one single-id field (--user-fields)"), 0;
  if (c->item_single == 0 && c->item_multi_len == 0)
    return snprintf(err, cap, "the item side needs an id field (--item-fields or --multi-len)"), 0;
  if (c->n_layers == 0) return snprintf(err, cap, "--towers: at least one layer"), 0;
  if ((uint64_t)c->user_heads * c->head_dim > 65536 || (uint64_t)c->item_heads * c->head_dim > 65536)
    return snprintf(err, cap, "heads x head dim must be at most 65536"), 0;
  if (c->fe_mask == 0 || (c->fe_mask >> c->n_layers))
    return snprintf(err, cap, "--fe-layers must name layers of the %u-layer user tower", c->n_layers), 0;
  return 1;
}

void tb_synth_describe(const tb_synth_config *c, char *buf, size_t cap) {
  char towers[96] = "", fe[32] = "";
  size_t n = 0;
  for (uint32_t i = 0; i < c->n_layers; i++) n += (size_t)snprintf(towers + n, sizeof towers - n, i ? "-%u" : "%u", c->widths[i]);
  n = 0;
  for (uint32_t i = 0; i < TB_SYNTH_MAX_LAYERS; i++)
    if (c->fe_mask & (1u << i)) n += (size_t)snprintf(fe + n, sizeof fe - n, n ? ",%u" : "%u", i);
  snprintf(buf, cap,
           "user_fields=%u item_fields=%u multi_len=%u user_dense=%u item_dense=%u emb=%u towers=%s "
           "user_heads=%u item_heads=%u head_dim=%u fe_layers=%s bn=%u catalog=%u seed=%llu",
           c->user_single, c->item_single, c->item_multi_len, c->user_dense, c->item_dense, c->emb_dim, towers,
           c->user_heads, c->item_heads, c->head_dim, fe, c->batchnorm, c->catalog, (unsigned long long)c->seed);
}

void tb_synth_default_dir(const tb_synth_config *c, char *buf, size_t cap) {
  char desc[512];
  tb_synth_describe(c, desc, sizeof desc);
  const char *tmp = getenv("TMPDIR");
  /* v1: bump when the generator's output changes for the same description */
  char key[600];
  snprintf(key, sizeof key, "synthetic-v1 %s", desc);
  snprintf(buf, cap, "%s/towerrt-bench-%016llx", tmp && *tmp ? tmp : "/tmp", (unsigned long long)tb_fnv1a(key));
}

/* ---- the model: towerrt_synthetic_model_write ------------------------------ */

towerrt_status tb_synth_write_model(const tb_synth_config *c, const char *path) {
  char err[256], desc[512], source[600];
  if (!tb_synth_validate(c, err, sizeof err)) return tb_fail(TOWERRT_ERR_INVALID_ARGUMENT, "synthetic model: %s", err);
  tb_synth_describe(c, desc, sizeof desc);
  snprintf(source, sizeof source, "synthetic random weights (towerrt bench): %s", desc);
  towerrt_synthetic_config s;
  towerrt_synthetic_config_init(&s);
  s.user_single = c->user_single;
  s.user_dense = c->user_dense;
  s.item_single = c->item_single;
  s.item_multi_len = c->item_multi_len;
  s.item_dense = c->item_dense;
  s.emb_dim = c->emb_dim;
  s.n_layers = c->n_layers;
  memcpy(s.widths, c->widths, sizeof s.widths);
  s.user_heads = c->user_heads;
  s.item_heads = c->item_heads;
  s.head_dim = c->head_dim;
  s.fe_mask = c->fe_mask;
  s.batchnorm = c->batchnorm;
  s.seed = c->seed;
  s.source = source;
  tb_clear_error();
  return towerrt_synthetic_model_write(&s, path);
}

/* ---- catalog ----------------------------------------------------------------- */

uint64_t tb_synth_item_id(uint64_t row) { return row * UINT64_C(7919) + UINT64_C(1000003); }

/* One catalog row's item ids: field by field (the model's item id
 * fields, in order), a single id from the vocabulary, or 1..slots real ids
 * of a multi-id field then padding 0. */
static void random_item_ids(const towerrt_model *m, tb_rng *rng, int64_t *row) {
  size_t s = 0;
  for (size_t i = 0, nf = towerrt_model_field_count(m); i < nf; i++) {
    towerrt_field_info f;
    if (towerrt_model_field(m, i, &f) || f.side != TOWERRT_ITEM || f.kind == 2) continue;
    if (f.kind == 0) {
      row[s++] = (int64_t)tb_rng_below(rng, f.vocab);
    } else {
      size_t used = 1 + (size_t)tb_rng_below(rng, f.width);
      for (size_t j = 0; j < f.width; j++) row[s++] = j < used ? 1 + (int64_t)tb_rng_below(rng, f.vocab - 1) : 0;
    }
  }
}

towerrt_status tb_synth_build_items(const towerrt_model *m, const tb_synth_config *c, const char *path) {
  size_t n = c->catalog;
  size_t slots = towerrt_model_id_slots(m, TOWERRT_ITEM), dw = towerrt_model_dense_width(m, TOWERRT_ITEM);
  int64_t *ids = malloc((n * slots + 1) * sizeof *ids);
  float *dense = malloc((n * dw + 1) * sizeof *dense);
  uint64_t *keys = malloc(n * sizeof *keys);
  towerrt_status st;
  tb_clear_error();
  if (!ids || !dense || !keys) {
    st = tb_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a catalog of %zu items", n);
    goto done;
  }
  tb_rng rng;
  tb_rng_seed(&rng, c->seed ^ UINT64_C(0xC47A106));
  for (size_t r = 0; r < n; r++) {
    random_item_ids(m, &rng, ids + r * slots);
    for (size_t j = 0; j < dw; j++) dense[r * dw + j] = tb_rng_uniform(&rng, 0.0f, 1.0f);
    keys[r] = tb_synth_item_id(r);
  }
  towerrt_features feats = {ids, n * slots, dw ? dense : NULL, n * dw};
  st = towerrt_items_build(m, &feats, keys, n, path);
done:
  free(ids);
  free(dense);
  free(keys);
  return st;
}

static int file_exists(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

towerrt_status tb_synth_prepare(const tb_synth_config *c, const char *dir, int reuse, char *model_path, char *items_path,
                                size_t cap, FILE *log) {
  tb_clear_error();
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return tb_fail(TOWERRT_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
  snprintf(model_path, cap, "%s/model.twr", dir);
  snprintf(items_path, cap, "%s/items.twi", dir);
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  towerrt_status st;
  if (reuse && file_exists(model_path) && file_exists(items_path)) {
    st = towerrt_model_load(model_path, NULL, &m);
    if (!st) st = towerrt_items_load(items_path, NULL, &it);
    int ok = !st && towerrt_items_count(it) == c->catalog;
    towerrt_items_free(it);
    towerrt_model_free(m);
    if (ok) {
      if (log) fprintf(log, "towerrt bench: reusing the synthetic model and item store in %s\n", dir);
      return TOWERRT_OK;
    }
    m = NULL;
    it = NULL;
  }
  char desc[512];
  tb_synth_describe(c, desc, sizeof desc);
  if (log) fprintf(log, "towerrt bench: writing a synthetic model (%s) to %s\n", desc, model_path);
  uint64_t t0 = tb_now_ns();
  if ((st = tb_synth_write_model(c, model_path))) return st;
  if ((st = towerrt_model_load(model_path, NULL, &m))) return st;
  if (log) fprintf(log, "towerrt bench: building the item store of %u items (item tower, ISA %s)...\n", c->catalog, towerrt_model_isa(m));
  st = tb_synth_build_items(m, c, items_path);
  towerrt_model_free(m);
  if (st) return st;
  if ((st = towerrt_items_load(items_path, NULL, &it))) return st;
  towerrt_items_free(it);
  if (log) fprintf(log, "towerrt bench: model and item store ready in %.1f s\n", (double)(tb_now_ns() - t0) * 1e-9);
  return TOWERRT_OK;
}
