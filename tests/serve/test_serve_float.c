/* format_float9 (tools/serve/serve_float.c): every float it prints reads
 * back (strtof) as the same float: all 254 binary exponents x 20,000
 * random mantissas, both signs, the powers of ten and their neighbours,
 * denormals and the extremes; and that the text is printf's %.9g. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int format_float9(float f, char *out);

static unsigned long long g_checked, g_differ, g_failed;

static void check(float f) {
  if (!isfinite(f)) return;
  char got[32], ref[32];
  int n = format_float9(f, got);
  snprintf(ref, sizeof ref, "%.9g", (double)f);
  float back = strtof(got, NULL);
  g_checked++;
  if ((size_t)n != strlen(got) || memcmp(&back, &f, sizeof f) != 0 || n > 16) {
    if (g_failed++ < 10) fprintf(stderr, "format_float9(%s) = '%s' reads back as %.9g\n", ref, got, (double)back);
  }
  if (strcmp(got, ref)) g_differ++;
}

static float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

int main(void) {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (uint32_t exp = 0; exp < 255; exp++)
    for (int i = 0; i < 20000; i++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      uint32_t mant = (uint32_t)s & 0x7fffff;
      if (i < 4) mant = (uint32_t[]){0, 1, 0x7fffff, 0x400000}[i];
      check(from_bits(exp << 23 | mant));
      check(from_bits(0x80000000u | exp << 23 | mant));
    }
  for (int e = -45; e <= 38; e++) {
    float p = (float)pow(10.0, e);
    check(p), check(nextafterf(p, 0)), check(nextafterf(p, INFINITY));
  }
  check(0.0f), check(-0.0f), check(1.0f), check(0.5f), check(0.736996966f), check(123456789.0f);
  printf("format_float9: %llu floats, %llu failed round trips, %llu texts differ from %%.9g\n", g_checked, g_failed,
         g_differ);
  return g_failed || g_differ ? 1 : 0;
}
