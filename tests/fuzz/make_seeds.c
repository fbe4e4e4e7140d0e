/* Writes the seed corpora of the fuzz targets from the golden fixtures, in
 * each target's input format (see the comment at the top of each target):
 *   OUT/fuzz_model_load/   every model.twr behind a few mode bytes, and its
 *                          bf16 and int8 quantized twins
 *   OUT/fuzz_items_load/   an item store built from every items.txt (and its
 *                          bf16, int8 and centred int8 copies)
 *   OUT/fuzz_requests/     every requests_*.txt and items.txt
 *   OUT/fuzz_score_api/    operation programs for every fixture
 * usage: fuzz_make_seeds OUT   (fixtures: TOWERRT_FUZZ_FIXTURES or the
 * compiled-in tests/fixtures/golden). Generated, not committed: the seeds
 * follow the fixtures when those are regenerated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static const char *g_out;

static void mkdir_p(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) fz_die("cannot create %s: %s", path, strerror(errno));
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fz_die("cannot open %s", path);
  size_t cap = 1 << 16;
  unsigned char *buf = malloc(cap);
  *n = 0;
  for (size_t got; buf && (got = fread(buf + *n, 1, cap - *n, f)) > 0;) {
    *n += got;
    if (*n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf) fz_die("out of memory");
  return buf;
}

/* OUT/target/name = prefix byte + body. */
static void seed(const char *target, const char *name, unsigned char prefix, const unsigned char *body, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_out, target);
  mkdir_p(path);
  snprintf(path, sizeof path, "%s/%s/%s", g_out, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fputc(prefix, f) == EOF || fwrite(body, 1, n, f) != n || fclose(f) != 0) fz_die("cannot write %s", path);
}

static void seed_file(const char *target, const char *name, unsigned char prefix, const char *src) {
  size_t n;
  unsigned char *body = slurp(src, &n);
  seed(target, name, prefix, body, n);
  free(body);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  g_out = argv[1];
  mkdir_p(g_out);
  const fz_fixture *fxs;
  size_t n_fx = fz_fixtures(&fxs);
  for (size_t i = 0; i < n_fx; i++) {
    const fz_fixture *fx = &fxs[i];
    char src[1024], name[256];
    unsigned char sel = (unsigned char)i;
    /* models: CRCs and size repaired / as is / repaired + forced FE layer 0 + logits */
    snprintf(src, sizeof src, "%s/model.twr", fx->dir);
    static const unsigned char model_modes[3] = {0x05, 0x00, 0x1D};
    for (int m = 0; m < 3; m++) {
      snprintf(name, sizeof name, "%s-mode%02x", fx->name, model_modes[m]);
      seed_file("fuzz_model_load", name, model_modes[m], src);
    }
    /* item stores, built by this fixture's model */
    char tmp[] = "/tmp/towerrt_seeds_XXXXXX";
    if (!mkdtemp(tmp)) fz_die("mkdtemp: %s", strerror(errno));
    snprintf(src, sizeof src, "%s/items.twi", tmp);
    towerrt_features feats = {fx->catalog.ids, fx->catalog.n_ids, fx->catalog.dense, fx->catalog.n_dense};
    if (towerrt_items_build(fx->model, &feats, fx->catalog.keys, fx->catalog.n_keys, src))
      fz_die("build-items for %s: %s", fx->name, towerrt_last_error());
    snprintf(name, sizeof name, "%s-fixed", fx->name);
    seed_file("fuzz_items_load", name, (unsigned char)(sel << 4 | 0x05), src);
    snprintf(name, sizeof name, "%s-raw", fx->name);
    seed_file("fuzz_items_load", name, (unsigned char)(sel << 4 | 0x08), src);
    remove(src);
    static const towerrt_precision precisions[2] = {TOWERRT_PRECISION_BF16, TOWERRT_PRECISION_INT8};
    for (int q = 0; q < 2; q++) {
      if (!fx->quantized[q] || towerrt_items_quantize(fx->items, precisions[q], src)) continue;
      snprintf(name, sizeof name, "%s-%s", fx->name, q ? "int8" : "bf16");
      seed_file("fuzz_items_load", name, (unsigned char)(sel << 4 | 0x05), src);
      remove(src);
    }
    /* centred int8 stores (ITEM_CENTRE, ROW_CENTRES; format version 2) */
    for (int c = 1; c <= 2 && fx->quantized[1]; c++) {
      if (towerrt_items_quantize_centred(fx->items, TOWERRT_PRECISION_INT8, (towerrt_centring)c, src)) continue;
      snprintf(name, sizeof name, "%s-int8-%s", fx->name, c == 1 ? "mean" : "row-mean");
      seed_file("fuzz_items_load", name, (unsigned char)(sel << 4 | 0x05), src);
      remove(src);
    }
    /* quantized models: the user tower in bf16 and in s8 */
    snprintf(src, sizeof src, "%s/model.twr", tmp);
    for (int q = 0; q < 2; q++) {
      if (towerrt_model_quantize(fx->model, precisions[q], NULL, 0, src)) fz_die("quantize %s: %s", fx->name, towerrt_last_error());
      snprintf(name, sizeof name, "%s-model-%s", fx->name, q ? "int8" : "bf16");
      seed_file("fuzz_model_load", name, model_modes[0], src);
      remove(src);
    }
    rmdir(tmp);
    /* text files */
    static const char *const texts[3] = {"requests_ids.txt", "requests_features.txt", "items.txt"};
    for (int t = 0; t < 3; t++) {
      snprintf(src, sizeof src, "%s/%s", fx->dir, texts[t]);
      if (access(src, R_OK) != 0) continue;
      snprintf(name, sizeof name, "%s-%s", fx->name, texts[t]);
      seed_file("fuzz_requests", name, (unsigned char)(sel | (t == 2 ? 0x10 : 0)), src);
    }
    snprintf(src, sizeof src, "%s/requests_ids.txt", fx->dir);
    snprintf(name, sizeof name, "%s-maxk8-requests_ids.txt", fx->name);
    seed_file("fuzz_requests", name, (unsigned char)(sel | 0x40), src);
    /* operation programs: pseudo-random bytes (every byte string is a program) */
    uint64_t state = 0x9E3779B97F4A7C15ull * (i + 1);
    for (int p = 0; p < 6; p++) {
      unsigned char prog[256];
      for (size_t b = 0; b < sizeof prog; b++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        prog[b] = (unsigned char)(state >> 56);
      }
      prog[0] = (unsigned char)(p % 3 + 1); /* start with a score */
      snprintf(name, sizeof name, "%s-program%d", fx->name, p);
      seed("fuzz_score_api", name, sel, prog, sizeof prog);
    }
  }
  printf("fuzz_make_seeds: seeds of %zu fixtures written to %s\n", n_fx, g_out);
  return 0;
}
