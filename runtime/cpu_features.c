/* CPU feature detection and kernel selection, once at load. The
 * environment variable TOWERRT_ISA (or the isa option) forces a variant so
 * tests can run every kernel set the machine supports.
 *
 * Each ISA name maps to one fixed table (so a forced name always runs the
 * same kernels) and to the CPU features it needs. x86-64: cpuid plus xgetbv,
 * because a CPU can support AVX/AVX-512 while the OS does not save the
 * ymm/zmm state (then those instructions fault). aarch64: getauxval(AT_HWCAP)
 * and, for the matrix extensions (I8MM, BF16), AT_HWCAP2. */
#include "cpu_features.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#if defined(TOWERRT_KERNELS_X86) && defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(TOWERRT_KERNELS_ARM) && defined(__aarch64__)
#include <sys/auxv.h>
#endif

enum {
  F_AVX2 = 1u << 0,    /* AVX2 + FMA, OS saves ymm */
  F_AVX512 = 1u << 1,  /* AVX-512 F/BW/VL/DQ (+ AVX2/FMA), OS saves zmm and k */
  F_VNNI = 1u << 2,    /* AVX512_VNNI */
  F_BF16 = 1u << 3,    /* AVX512_BF16 */
  F_NEON = 1u << 4,    /* aarch64 Advanced SIMD */
  F_DOTPROD = 1u << 5, /* aarch64 SDOT/UDOT */
  F_AVXVNNI = 1u << 6, /* AVX-VNNI: VEX-encoded 256-bit vpdpbusd (Alder Lake, Sierra Forest, Zen 5) */
  F_I8MM = 1u << 7,    /* aarch64 SMMLA/USMMLA/USDOT (HWCAP2_I8MM) */
  F_ABF16 = 1u << 8,   /* aarch64 BFMMLA/BFDOT (HWCAP2_BF16) */
};

typedef struct isa_entry {
  unsigned needs;
  towerrt_kernels k;
} isa_entry;

/* One ISA's kernels for the per-request ops (pooling, Light-SE, u8 quantization). */
#define REQUEST_OPS(isa) .embed_pool_f32 = trt_embed_pool_f32_##isa, .lightse_f32 = trt_lightse_f32_##isa, \
                         .quantize_u8 = trt_quantize_u8_##isa

/* Best first. */
static const isa_entry k_isas[] = {
#if defined(TOWERRT_KERNELS_X86)
#if defined(TOWERRT_KERNELS_AVX512BF16)
    {F_AVX512 | F_VNNI | F_BF16,
     {.name = "avx512-bf16", REQUEST_OPS(avx512), .dense_bf16 = trt_dense_bf16_avx512bf16, .dense_u8s8 = trt_dense_u8s8_avx512vnni,
      .dense_f32 = trt_dense_f32_avx512, .maxsim_f32 = trt_maxsim_f32_avx512, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_avx512),
      .maxsim_bf16 = trt_maxsim_bf16_avx512bf16, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_avx512bf16), .maxsim_u8s8 = trt_maxsim_u8s8_avx512vnni, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_avx512vnni), .u8_max = 255}},
#endif
    {F_AVX512 | F_VNNI,
     {.name = "avx512-vnni", REQUEST_OPS(avx512), .dense_bf16 = trt_dense_bf16_avx512, .dense_u8s8 = trt_dense_u8s8_avx512vnni,
      .dense_f32 = trt_dense_f32_avx512, .maxsim_f32 = trt_maxsim_f32_avx512, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_avx512),
      .maxsim_bf16 = trt_maxsim_bf16_avx512, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_avx512), .maxsim_u8s8 = trt_maxsim_u8s8_avx512vnni, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_avx512vnni), .u8_max = 255}},
    {F_AVX512,
     {.name = "avx512", REQUEST_OPS(avx512), .dense_bf16 = trt_dense_bf16_avx512, .dense_u8s8 = trt_dense_u8s8_avx2,
      .dense_f32 = trt_dense_f32_avx512, .maxsim_f32 = trt_maxsim_f32_avx512, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_avx512),
      .maxsim_bf16 = trt_maxsim_bf16_avx512, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_avx512), .maxsim_u8s8 = trt_maxsim_u8s8_avx2, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_avx2), .u8_max = 127}},
#if defined(TOWERRT_KERNELS_AVXVNNI)
    {F_AVX2 | F_AVXVNNI,
     {.name = "avx-vnni", REQUEST_OPS(avx2), .dense_bf16 = trt_dense_bf16_avx2, .dense_u8s8 = trt_dense_u8s8_avxvnni,
      .dense_f32 = trt_dense_f32_avx2, .maxsim_f32 = trt_maxsim_f32_avx2, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_avx2),
      .maxsim_bf16 = trt_maxsim_bf16_avx2, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_avx2), .maxsim_u8s8 = trt_maxsim_u8s8_avxvnni, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_avxvnni), .u8_max = 255}},
#endif
    /* vpmaddubsw int8 kernels: 7-bit activations (kernels.h, u8_max) */
    {F_AVX2,
     {.name = "avx2", REQUEST_OPS(avx2), .dense_bf16 = trt_dense_bf16_avx2, .dense_u8s8 = trt_dense_u8s8_avx2,
      .dense_f32 = trt_dense_f32_avx2, .maxsim_f32 = trt_maxsim_f32_avx2, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_avx2),
      .maxsim_bf16 = trt_maxsim_bf16_avx2, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_avx2), .maxsim_u8s8 = trt_maxsim_u8s8_avx2, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_avx2), .u8_max = 127}},
#endif
#if defined(TOWERRT_KERNELS_ARM)
#if defined(TOWERRT_KERNELS_ARM_MATRIX)
    {F_NEON | F_DOTPROD | F_I8MM | F_ABF16,
     {.name = "neon-bf16", REQUEST_OPS(neon), .dense_bf16 = trt_dense_bf16_neonbf16, .dense_u8s8 = trt_dense_u8s8_neoni8mm,
      .dense_f32 = trt_dense_f32_neon, .maxsim_f32 = trt_maxsim_f32_neon, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_neon),
      .maxsim_bf16 = trt_maxsim_bf16_neonbf16, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_neonbf16), .maxsim_u8s8 = trt_maxsim_u8s8_neoni8mm, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_neoni8mm), .u8_max = 255}},
    {F_NEON | F_DOTPROD | F_I8MM,
     {.name = "neon-i8mm", REQUEST_OPS(neon), .dense_bf16 = trt_dense_bf16_neon, .dense_u8s8 = trt_dense_u8s8_neoni8mm,
      .dense_f32 = trt_dense_f32_neon, .maxsim_f32 = trt_maxsim_f32_neon, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_neon),
      .maxsim_bf16 = trt_maxsim_bf16_neon, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_neon), .maxsim_u8s8 = trt_maxsim_u8s8_neoni8mm, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_neoni8mm), .u8_max = 255}},
#endif
    {F_NEON | F_DOTPROD,
     {.name = "neon-dotprod", REQUEST_OPS(neon), .dense_bf16 = trt_dense_bf16_neon, .dense_u8s8 = trt_dense_u8s8_neondotprod,
      .dense_f32 = trt_dense_f32_neon, .maxsim_f32 = trt_maxsim_f32_neon, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_neon),
      .maxsim_bf16 = trt_maxsim_bf16_neon, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_neon), .maxsim_u8s8 = trt_maxsim_u8s8_neondotprod, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_neondotprod), .u8_max = 255}},
    {F_NEON,
     {.name = "neon", REQUEST_OPS(neon), .dense_bf16 = trt_dense_bf16_neon, .dense_u8s8 = trt_dense_u8s8_neon,
      .dense_f32 = trt_dense_f32_neon, .maxsim_f32 = trt_maxsim_f32_neon, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_neon),
      .maxsim_bf16 = trt_maxsim_bf16_neon, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_neon), .maxsim_u8s8 = trt_maxsim_u8s8_neon, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_neon), .u8_max = 255}},
#endif
    {0,
     {.name = "scalar", REQUEST_OPS(scalar), .dense_bf16 = trt_dense_bf16_scalar, .dense_u8s8 = trt_dense_u8s8_scalar,
      .dense_f32 = trt_dense_f32_scalar, .maxsim_f32 = trt_maxsim_f32_scalar, .packed_maxsim_f32 = TRT_PACKED_MAXSIM(trt_maxsim_f32_scalar),
      .maxsim_bf16 = trt_maxsim_bf16_scalar, .packed_maxsim_bf16 = TRT_PACKED_MAXSIM(trt_maxsim_bf16_scalar), .maxsim_u8s8 = trt_maxsim_u8s8_scalar, .packed_maxsim_u8s8 = TRT_PACKED_MAXSIM(trt_maxsim_u8s8_scalar), .u8_max = 255}},
};
#define N_ISAS (sizeof k_isas / sizeof k_isas[0])

#if defined(TOWERRT_KERNELS_X86) && defined(__x86_64__)
static unsigned long long xcr0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

static unsigned detect(void) {
  unsigned a, b, c, d, f = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx || !fma) return 0;
  unsigned long long x = xcr0();
  int os_ymm = (x & 0x6) == 0x6, os_zmm = (x & 0xE6) == 0xE6; /* SSE, AVX, opmask, ZMM hi */
  if (!os_ymm || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
  if (avx2) f |= F_AVX2;
  if (avx2 && os_zmm && f512 && dq && bw && vl) f |= F_AVX512;
  if ((f & F_AVX512) && ((c >> 11) & 1)) f |= F_VNNI;
  unsigned a1, b1, c1, d1;
  int leaf71 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  if ((f & F_VNNI) && leaf71 && ((a1 >> 5) & 1)) f |= F_BF16;
  if ((f & F_AVX2) && leaf71 && ((a1 >> 4) & 1)) f |= F_AVXVNNI; /* CPUID.(7,1):EAX[4] */
  return f;
}
#elif defined(TOWERRT_KERNELS_ARM) && defined(__aarch64__)
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1ul << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1ul << 14)
#endif
static unsigned detect(void) {
  unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  unsigned f = 0;
  if (hw & HWCAP_ASIMD) f |= F_NEON;
  if ((f & F_NEON) && (hw & HWCAP_ASIMDDP)) f |= F_DOTPROD;
  if ((f & F_DOTPROD) && (hw2 & HWCAP2_I8MM)) f |= F_I8MM;
  if ((f & F_I8MM) && (hw2 & HWCAP2_BF16)) f |= F_ABF16;
  return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

/* The CPU does not change under a running process: detect once. */
static pthread_once_t g_detect_once = PTHREAD_ONCE_INIT;
static unsigned g_features;
static void detect_once(void) { g_features = detect(); }

static unsigned cpu_features(void) {
  pthread_once(&g_detect_once, detect_once);
  return g_features;
}

size_t trt_cpu_isas(const char **names, size_t cap) {
  unsigned f = cpu_features();
  size_t n = 0;
  for (size_t i = 0; i < N_ISAS; i++)
    if ((k_isas[i].needs & f) == k_isas[i].needs) {
      if (n < cap) names[n] = k_isas[i].k.name;
      n++;
    }
  return n;
}

size_t towerrt_isas(const char **names, size_t cap) { return trt_cpu_isas(names, cap); }

/* "a, b, c": the runnable ISAs, for error messages. */
static void list_available(char *buf, size_t cap) {
  const char *names[N_ISAS];
  size_t n = trt_cpu_isas(names, N_ISAS), used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++) {
    int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

towerrt_status trt_kernels_for_isa(const char *name, towerrt_kernels *out) {
  char avail[160];
  for (size_t i = 0; i < N_ISAS && name; i++) {
    if (strcmp(name, k_isas[i].k.name) != 0) continue;
    if ((k_isas[i].needs & cpu_features()) == k_isas[i].needs) {
      *out = k_isas[i].k;
      return TOWERRT_OK;
    }
    list_available(avail, sizeof avail);
    return trt_fail(TOWERRT_ERR_UNSUPPORTED, "ISA '%s' is not supported by this CPU (available: %s)", name, avail);
  }
  list_available(avail, sizeof avail);
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "ISA '%s' is not available in this build (available: %s)",
                  name ? name : "(null)", avail);
}

towerrt_status trt_select_kernels(const char *requested, towerrt_kernels *out) {
  const char *env = getenv("TOWERRT_ISA");
  const char *want = (env && *env) ? env : requested;
  if (!want || !*want || strcmp(want, "auto") == 0) {
    const char *best;
    trt_cpu_isas(&best, 1); /* "scalar" at worst: never empty */
    want = best;
  }
  towerrt_status st = trt_kernels_for_isa(want, out);
  if (st && env && *env) return trt_fail_context(st, "TOWERRT_ISA");
  return st;
}
