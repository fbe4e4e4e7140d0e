#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/container.h"
#include "runtime/crc32.h"
#include "runtime/model.h"

int g_test_failures = 0;

uint64_t test_rand_u64(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

float test_rand_float(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(test_rand_u64(s) >> 11) / 9007199254740992.0);
}

size_t test_rand_range(uint64_t *s, size_t lo, size_t hi) { return lo + (size_t)(test_rand_u64(s) % (hi - lo + 1)); }

uint64_t test_seed(const char *name) {
  const char *env = getenv("TOWERRT_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : UINT64_C(20261123);
  printf("%s: seed %llu (TOWERRT_TEST_SEED to replay)\n", name, (unsigned long long)seed);
  return seed;
}

int test_close(double a, double b, double rel, double abs_floor) {
  double m = fmax(fabs(a), fabs(b));
  return fabs(a - b) <= rel * m + abs_floor;
}

unsigned char *test_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return p;
}

int test_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void test_fix_crcs(unsigned char *file, size_t size) {
  uint32_t n = trt_rd32(file + 32);
  if (n > (size - 64) / 32) n = (uint32_t)((size - 64) / 32); /* a test may have set an absurd count */
  for (uint32_t i = 0; i < n && 64 + (i + 1) * 32 <= size; i++) {
    unsigned char *e = file + 64 + i * 32;
    uint64_t off = trt_rd64(e + 8), sz = trt_rd64(e + 16);
    if (off <= size && sz <= size - off) put32(e + 4, trt_crc32(0, file + off, (size_t)sz));
  }
  put32(file + 40, trt_crc32(0, file + 64, (size_t)n * 32));
  put32(file + 60, trt_crc32(0, file, 60));
}

int test_finish(const char *name) {
  if (g_test_failures) {
    fprintf(stderr, "%s: %d check(s) FAILED\n", name, g_test_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

int test_forced_isa_unavailable(void) {
  const char *isa = getenv("TOWERRT_ISA");
  towerrt_kernels k;
  if (!isa || !*isa || trt_select_kernels(NULL, &k) == TOWERRT_OK) return 0;
  printf("skipped: this CPU cannot run the forced ISA '%s'\n", isa);
  return 1;
}


int test_same_files(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb);
  int same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
  if (!same && pa && pb) {
    size_t i = 0;
    while (i < na && i < nb && pa[i] == pb[i]) i++;
    fprintf(stderr, "  %s (%zu bytes) and %s (%zu bytes) differ from byte %zu\n", a, na, b, nb, i);
  }
  free(pa);
  free(pb);
  return same;
}
