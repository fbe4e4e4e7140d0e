/* A synthetic IntTower model: random weights in the exact .twr layout of
 * docs/format.md (the reference state_dict names, BatchNorm, one FE
 * projection per user layer), and a synthetic catalog turned into an item
 * store by towerrt_items_build. Used by `towerrt bench --synthetic`, the
 * Google Benchmark suites and the peer comparisons, so every number can be
 * reproduced from a configuration string and a seed. */
#ifndef TOWERRT_BENCH_SYNTHETIC_MODEL_H
#define TOWERRT_BENCH_SYNTHETIC_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "towerrt.h"

#define TB_SYNTH_MAX_LAYERS TOWERRT_SYNTHETIC_MAX_LAYERS

typedef struct tb_synth_config {
  uint32_t user_single;    /* single-id user fields (user_id, gender, age, occupation, ...) */
  uint32_t item_single;    /* single-id item fields (movie_id, ...) */
  uint32_t item_multi_len; /* id slots of the multi-id item field "genres" (0: none) */
  uint32_t user_dense;     /* dense user fields, 1 value each */
  uint32_t item_dense;     /* dense item fields, 1 value each */
  uint32_t emb_dim;
  uint32_t n_layers;
  uint32_t widths[TB_SYNTH_MAX_LAYERS]; /* both towers */
  uint32_t user_heads, item_heads, head_dim;
  uint32_t fe_mask;    /* user FE layers the model is "trained" with (bit i = layer i) */
  uint32_t batchnorm;  /* 1: BatchNorm after every Linear (the reference default) */
  uint32_t catalog;    /* items in the synthetic item store */
  uint64_t seed;
} tb_synth_config;

/* The reference configuration (the official MovieLens-1M script's; docs/performance.md): emb 32, towers 300-300-128,
 * 32 user and 32 item heads of 64 dims, FE on user layers 0,1,2, MovieLens
 * fields (4 single-id user fields + 1 dense; movie_id + genres (6 slots) +
 * 1 dense), BatchNorm; a catalog of 100,000 items; seed 1. */
void tb_synth_reference(tb_synth_config *c);
/* A tiny model (emb 8, towers 16-16-8, 4 x 4 heads of 8 dims, 256 items)
 * for tests: builds and scores in milliseconds. */
void tb_synth_tiny(tb_synth_config *c);
/* Applies a preset by name ("reference", "tiny"); 0 if unknown. */
int tb_synth_preset(tb_synth_config *c, const char *name);

/* Parses one generator option (e.g. "--emb-dim", "32"). Returns 1 if it
 * was a generator option and its value is valid, 0 if `opt` is not one,
 * -1 (message in err) if the value is invalid. */
int tb_synth_option(tb_synth_config *c, const char *opt, const char *value, char *err, size_t cap);
/* The generator options tb_synth_option knows (each takes a value), NULL-terminated. */
extern const char *const tb_synth_option_names[];
/* Checks the configuration as a whole (0 and a message if invalid). */
int tb_synth_validate(const tb_synth_config *c, char *err, size_t cap);
/* Help text of the generator options. */
const char *tb_synth_usage(void);

/* Canonical one-line description ("emb=32 towers=300-300-128 ..."): the
 * cache key of generated files, printed in every result file. */
void tb_synth_describe(const tb_synth_config *c, char *buf, size_t cap);

/* Writes the .twr (towerrt_synthetic_model_write: atomically). */
towerrt_status tb_synth_write_model(const tb_synth_config *c, const char *path);
/* External id of catalog row r (unique, not consecutive). */
uint64_t tb_synth_item_id(uint64_t row);
/* Random catalog of c->catalog items (features drawn from the seed) run
 * through towerrt_items_build into `path`. */
towerrt_status tb_synth_build_items(const towerrt_model *m, const tb_synth_config *c, const char *path);

/* Writes (or reuses, when reuse != 0 and both files load) model.twr and
 * items.twi under `dir` (created if missing); checks both load with
 * towerrt_model_load / towerrt_items_load. Paths written to model_path and
 * items_path (cap bytes each). Progress to `log` if not NULL. */
towerrt_status tb_synth_prepare(const tb_synth_config *c, const char *dir, int reuse, char *model_path,
                                char *items_path, size_t cap, FILE *log);
/* The default cache folder of a configuration: $TMPDIR (or /tmp) /
 * towerrt-bench-<hash of the description>. */
void tb_synth_default_dir(const tb_synth_config *c, char *buf, size_t cap);

#endif
