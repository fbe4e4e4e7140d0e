/* Scores as JSON numbers: 9 significant digits in %g's layout, without
 * glibc printf's multi-precision path (about 2,000 instructions a value,
 * most of a JSON response's cost).
 *
 * Why 9 digits round-trip: the value is scaled to [1e8, 1e9) in double
 * with one or two roundings (relative error < 3e-16) and rounded to an
 * integer, so the printed value is within 0.5e-8 + 3e-16 (relative) of
 * the float; half the gap between neighbouring floats is at least 2^-25
 * ~ 2.98e-8 relative, so reading the text back gives the same float.
 * Exact ties round to even, as printf does. The text could differ from
 * printf's %.9g in the last digit only if the scaled value fell within
 * 3e-16 of a rounding boundary without being a tie; the float read back
 * would still be the same. tests/serve/test_serve_float.c checks both,
 * over every float exponent with random mantissas: the round trip through
 * strtof, and the text against printf's %.9g. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "serve.h"

static const double k_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* x * 10^p, p in [-60, 60], each step by an exact power of ten. */
static double scale10(double x, int p) {
  while (p > 22) x *= 1e22, p -= 22;
  while (p < -22) x /= 1e22, p += 22;
  return p >= 0 ? x * k_pow10[p] : x / k_pow10[-p];
}

int format_float9(float f, char *out) {
  double d = f;
  if (!isfinite(d) || d == 0 || fabs(d) < 1e-37) return snprintf(out, 17, "%.9g", d);
  char *p = out;
  if (d < 0) *p++ = '-', d = -d;
  int e = (int)floor(log10(d));
  double s = scale10(d, 8 - e);
  if (s < 1e8) s = scale10(d, 8 - --e);       /* log10 rounded up near a power of ten */
  else if (s >= 1e9) s = scale10(d, 8 - ++e); /* ... or down */
  uint64_t m = (uint64_t)nearbyint(s); /* ties to even, as printf rounds exact ties */
  if (m >= 1000000000u) m /= 10, e++; /* 999999999.5 rounded up */
  char dig[9];
  for (int i = 8; i >= 0; i--) dig[i] = (char)('0' + m % 10), m /= 10;
  int nd = 9;
  while (nd > 1 && dig[nd - 1] == '0') nd--; /* %g drops trailing zeros */
  if (e < -4 || e >= 9) {                    /* scientific, as %g */
    *p++ = dig[0];
    if (nd > 1) *p++ = '.', memcpy(p, dig + 1, (size_t)nd - 1), p += nd - 1;
    p += sprintf(p, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  } else if (e < 0) { /* 0.000ddd */
    *p++ = '0', *p++ = '.';
    for (int i = -1; i > e; i--) *p++ = '0';
    memcpy(p, dig, (size_t)nd), p += nd;
  } else { /* ddd.ddd */
    for (int i = 0; i <= e; i++) *p++ = i < nd ? dig[i] : '0';
    if (nd > e + 1) *p++ = '.', memcpy(p, dig + e + 1, (size_t)(nd - e - 1)), p += nd - e - 1;
  }
  *p = 0;
  return (int)(p - out);
}
