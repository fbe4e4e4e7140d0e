#include "crc32.h"

#include <pthread.h>
#include <string.h>

/* Slicing-by-8 tables, built once: item stores are large and a bytewise
 * CRC would make load time checksum-bound. */
static uint32_t g_table[8][256];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int j = 0; j < 8; j++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    g_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) g_table[t][i] = (g_table[t - 1][i] >> 8) ^ g_table[0][g_table[t - 1][i] & 0xFF];
}

uint32_t trt_crc32(uint32_t crc, const void *data, size_t n) {
  pthread_once(&g_table_once, build_tables);
  const unsigned char *p = data;
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = g_table[7][lo & 0xFF] ^ g_table[6][(lo >> 8) & 0xFF] ^ g_table[5][(lo >> 16) & 0xFF] ^
          g_table[4][lo >> 24] ^ g_table[3][hi & 0xFF] ^ g_table[2][(hi >> 8) & 0xFF] ^
          g_table[1][(hi >> 16) & 0xFF] ^ g_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = g_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* zlib's crc32_combine: multiply crc(A) by x^(8 len(B)) modulo the
 * reflected polynomial, then add crc(B). */
static uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = UINT32_C(1) << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ UINT32_C(0xEDB88320) : b >> 1;
  }
  return p;
}

uint32_t trt_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t x2n = UINT32_C(1) << 30, p = UINT32_C(1) << 31; /* x^1; x^0 */
  for (uint64_t n = len_b * 8; n; n >>= 1) {               /* p = x^(8 len_b) */
    if (n & 1) p = multmodp(x2n, p);
    x2n = multmodp(x2n, x2n);
  }
  return multmodp(p, crc_a) ^ crc_b;
}
