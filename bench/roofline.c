/* Roofline measurements (roofline.h). The peak loops keep every operand in
 * registers: N independent accumulators (enough to cover the instruction's
 * latency on two FMA pipes), each updated once per iteration by the one
 * instruction measured. They are compiled with target attributes and only
 * run where __builtin_cpu_supports says the CPU has the instruction.
 * One file (about 800 lines) because its halves are one measurement: the
 * kernel runs are compared with the roofs of their own ISA, measured by
 * the same timing loop (time_loop, per second of thread CPU time) on the
 * same buffers; the kernels come from kernels/kernel_table.h. */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include "roofline.h"

#include <math.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_util.h"

#if defined(__x86_64__) || defined(__i386__)
#define TB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__)
#define TB_ARM64 1
#include <arm_neon.h>
#endif

static volatile double g_sink;

/* Every rate here is per second of this thread's CPU time, not of wall
 * time: on a shared machine another process can take the core for part of
 * a measurement, which would understate the peaks and the kernels
 * differently. (Memory bandwidth is shared too; that cannot be corrected.) */
static uint64_t cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

typedef double (*loop_fn)(uint64_t iters);

/* Best rate (units per second / 1e9) of loop f doing `per_iter` units per
 * iteration, over 3 timed runs of about `seconds` / 3 each. */
static double time_loop(loop_fn f, double per_iter, double seconds) {
  uint64_t iters = 1024;
  double dt = 0.0;
  for (;;) {
    uint64_t t0 = cpu_now();
    g_sink += f(iters);
    dt = (double)(cpu_now() - t0) * 1e-9;
    if (dt > 0.01 || iters > (UINT64_C(1) << 40)) break;
    iters *= 4;
  }
  double per_run = seconds / 3.0;
  if (dt > 0 && per_run > dt) iters = (uint64_t)((double)iters * per_run / dt);
  double best = 0.0;
  for (int rep = 0; rep < 3; rep++) {
    uint64_t t0 = cpu_now();
    g_sink += f(iters);
    double t = (double)(cpu_now() - t0) * 1e-9;
    double rate = (double)iters * per_iter / t;
    if (rate > best) best = rate;
  }
  return best * 1e-9;
}

#define REP16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define REP10(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)

#ifdef TB_X86
/* fp32: a = a * b + c converges to 1 and never leaves the normal range. */
__attribute__((target("avx512f"))) static double f32_avx512(uint64_t n) {
#define DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + 0.01f * (i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define SUM(i) s = _mm512_add_ps(s, a##i);
  REP16(DECL)
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  __m512 s = _mm512_setzero_ps();
  REP16(SUM)
  return (double)_mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static double f32_avx2(uint64_t n) {
#define DECL(i) __m256 a##i = _mm256_set1_ps(1.0f + 0.01f * (i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define SUM(i) s = _mm256_add_ps(s, a##i);
  REP12(DECL)
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (uint64_t i = 0; i < n; i++) { REP12(STEP) }
  __m256 s = _mm256_setzero_ps();
  REP12(SUM)
  float t[8];
  _mm256_storeu_ps(t, s);
  return (double)(t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]);
#undef DECL
#undef STEP
#undef SUM
}

/* int8: u8 x s8 products summed in groups of 4 into int32 lanes (wrap-around
 * is fine: only the instruction rate is measured). */
__attribute__((target("avx512f,avx512vnni"))) static double i8_vnni512(uint64_t n) {
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  REP16(DECL)
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  __m512i s = _mm512_setzero_si512();
  REP16(SUM)
  return (double)_mm512_reduce_add_epi32(s);
#undef DECL
#undef STEP
#undef SUM
}

/* vpmaddubsw + vpmaddwd + vpaddd, as a kernel does per 4 products of a
 * lane. The accumulator is also the unsigned operand: with loop-invariant
 * operands the compiler hoists both multiplies out of the loop and the
 * "roof" measures vpaddd alone (it did, and read 212 GMAC/s on Zen 4). The
 * chain is then 2 multiplies + an add long: 10 (16) chains cover it
 * without spilling (16 ymm registers). */
__attribute__((target("avx512f,avx512bw"))) static double i8_maddubs512(uint64_t n) {
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
#define STEP(i) a##i = _mm512_add_epi32(a##i, _mm512_madd_epi16(_mm512_maddubs_epi16(a##i, y), ones));
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  REP16(DECL)
  const __m512i y = _mm512_set1_epi8(-2), ones = _mm512_set1_epi16(1);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  __m512i s = _mm512_setzero_si512();
  REP16(SUM)
  return (double)_mm512_reduce_add_epi32(s);
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2"))) static double i8_maddubs256(uint64_t n) {
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define STEP(i) a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(a##i, y), ones));
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  REP10(DECL)
  const __m256i y = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  for (uint64_t i = 0; i < n; i++) { REP10(STEP) }
  __m256i s = _mm256_setzero_si256();
  REP10(SUM)
  int t[8];
  _mm256_storeu_si256((__m256i *)t, s);
  return (double)((long long)t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]);
#undef DECL
#undef STEP
#undef SUM
}

/* AVX-VNNI: the VEX-encoded 256-bit vpdpbusd (Alder Lake, Zen 5, ...). */
__attribute__((target("avx2,avxvnni"))) static double i8_avxvnni256(uint64_t n) {
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define STEP(i) a##i = _mm256_dpbusd_avx_epi32(a##i, x, y);
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  REP16(DECL)
  const __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  __m256i s = _mm256_setzero_si256();
  REP16(SUM)
  int t[8];
  _mm256_storeu_si256((__m256i *)t, s);
  return (double)((long long)t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]);
#undef DECL
#undef STEP
#undef SUM
}

/* bf16: pairs of bf16 products accumulated in fp32 lanes. */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(uint64_t n) {
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define SUM(i) s = _mm512_add_ps(s, a##i);
  REP16(DECL)
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00); /* 1.0, 2^-7 */
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  __m512 s = _mm512_setzero_ps();
  REP16(SUM)
  return (double)_mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

/* AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX[4] (clang before 16 has no
 * __builtin_cpu_supports("avxvnni")); with AVX2 present, the OS saves the
 * YMM state it needs. */
static int has_avx_vnni(void) {
  unsigned a, b, c, d;
  return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u);
}

static int cpu_has(const char *what) {
  __builtin_cpu_init();
  if (!strcmp(what, "avx512f")) return __builtin_cpu_supports("avx512f");
  if (!strcmp(what, "avx512bw")) return __builtin_cpu_supports("avx512bw");
  if (!strcmp(what, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
  if (!strcmp(what, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
  if (!strcmp(what, "avx2")) return __builtin_cpu_supports("avx2");
  if (!strcmp(what, "avxvnni")) return has_avx_vnni();
  if (!strcmp(what, "fma")) return __builtin_cpu_supports("fma");
  return 0;
}
#endif /* TB_X86 */

#ifdef TB_ARM64
static double f32_neon(uint64_t n) {
#define DECL(i) float32x4_t a##i = vdupq_n_f32(1.0f + 0.01f * (i));
#define STEP(i) a##i = vfmaq_f32(c, a##i, b);
#define SUM(i) s = vaddq_f32(s, a##i);
  REP16(DECL)
  const float32x4_t b = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-6f);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  float32x4_t s = vdupq_n_f32(0.0f);
  REP16(SUM)
  return (double)vaddvq_f32(s);
#undef DECL
#undef STEP
#undef SUM
}
#ifdef __ARM_FEATURE_DOTPROD
static double i8_dotprod(uint64_t n) {
#define DECL(i) int32x4_t a##i = vdupq_n_s32(i);
#define STEP(i) a##i = vdotq_s32(a##i, x, y);
#define SUM(i) s = vaddq_s32(s, a##i);
  REP16(DECL)
  const int8x16_t x = vdupq_n_s8(3), y = vdupq_n_s8(-2);
  for (uint64_t i = 0; i < n; i++) { REP16(STEP) }
  int32x4_t s = vdupq_n_s32(0);
  REP16(SUM)
  return (double)vaddvq_s32(s);
#undef DECL
#undef STEP
#undef SUM
}
#endif
#endif /* TB_ARM64 */

static void set(char *dst, size_t cap, const char *s) {
  if (dst && cap) snprintf(dst, cap, "%s", s);
}

double tb_peak_f32(double seconds, char *ins, size_t cap) {
  set(ins, cap, "none");
#ifdef TB_X86
  if (cpu_has("avx512f")) {
    set(ins, cap, "vfmadd231ps zmm (avx512f)");
    return time_loop(f32_avx512, 16.0 * 16.0, seconds);
  }
  if (cpu_has("avx2") && cpu_has("fma")) {
    set(ins, cap, "vfmadd231ps ymm (avx2+fma)");
    return time_loop(f32_avx2, 12.0 * 8.0, seconds);
  }
#elif defined(TB_ARM64)
  set(ins, cap, "fmla v.4s (neon)");
  return time_loop(f32_neon, 16.0 * 4.0, seconds);
#endif
  (void)seconds;
  return 0.0;
}

double tb_peak_i8(double seconds, char *ins, size_t cap) {
  set(ins, cap, "none");
#ifdef TB_X86
  if (cpu_has("avx512vnni") && cpu_has("avx512f")) {
    set(ins, cap, "vpdpbusd zmm (avx512-vnni)");
    return time_loop(i8_vnni512, 16.0 * 64.0, seconds);
  }
  if (cpu_has("avx512bw")) {
    set(ins, cap, "vpmaddubsw+vpmaddwd zmm (avx512bw)");
    return time_loop(i8_maddubs512, 16.0 * 64.0, seconds);
  }
  if (cpu_has("avx2")) {
    set(ins, cap, "vpmaddubsw+vpmaddwd ymm (avx2)");
    return time_loop(i8_maddubs256, 10.0 * 32.0, seconds);
  }
#elif defined(TB_ARM64) && defined(__ARM_FEATURE_DOTPROD)
  set(ins, cap, "sdot v.4s (dotprod)");
  return time_loop(i8_dotprod, 16.0 * 16.0, seconds);
#endif
  (void)seconds;
  return 0.0;
}

double tb_peak_bf16(double seconds, char *ins, size_t cap) {
  set(ins, cap, "none");
#ifdef TB_X86
  if (cpu_has("avx512bf16") && cpu_has("avx512f")) {
    set(ins, cap, "vdpbf16ps zmm (avx512-bf16)");
    return time_loop(bf16_avx512, 16.0 * 32.0, seconds);
  }
#endif
  (void)seconds;
  return 0.0;
}

/* ---- memory bandwidth ------------------------------------------------------- */

static uint64_t read_generic(const void *p, size_t bytes) {
  const uint64_t *q = p;
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (size_t i = 0; i + 8 <= bytes / 8; i += 8) {
    a0 ^= q[i]; a1 ^= q[i + 1]; a2 ^= q[i + 2]; a3 ^= q[i + 3];
    a4 ^= q[i + 4]; a5 ^= q[i + 5]; a6 ^= q[i + 6]; a7 ^= q[i + 7];
  }
  return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

#ifdef TB_X86
__attribute__((target("avx512f"))) static uint64_t read_avx512(const void *p, size_t bytes) {
  const __m512i *q = p;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 4 <= bytes / 64; i += 4) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(q + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(q + i + 1));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(q + i + 2));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(q + i + 3));
  }
  a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  return (uint64_t)_mm512_reduce_or_epi64(a0);
}
__attribute__((target("avx2"))) static uint64_t read_avx2(const void *p, size_t bytes) {
  const __m256i *q = p;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 4 <= bytes / 32; i += 4) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(q + i));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(q + i + 1));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(q + i + 2));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(q + i + 3));
  }
  a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}
#endif

typedef uint64_t (*read_fn)(const void *, size_t);

static read_fn pick_read(void) {
#ifdef TB_X86
  if (cpu_has("avx512f")) return read_avx512;
  if (cpu_has("avx2")) return read_avx2;
#endif
  return read_generic;
}

static size_t default_bw_bytes(void) {
  tb_machine mc;
  tb_machine_describe(&mc);
  size_t llc = mc.l3_bytes > 0 ? (size_t)mc.l3_bytes : (size_t)32 << 20;
  size_t b = 16 * llc;
  if (b < ((size_t)256 << 20)) b = (size_t)256 << 20;
  if (b > ((size_t)1 << 30)) b = (size_t)1 << 30;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages > 0 && psz > 0 && b > (size_t)pages * (size_t)psz / 4) b = (size_t)pages * (size_t)psz / 4;
  return b & ~(size_t)4095;
}

static double bandwidth_on(const unsigned char *buf, size_t bytes, double seconds) {
  read_fn rd = pick_read();
  double best = 0.0, spent = 0.0;
  for (int rep = 0; rep < 20 && (rep < 3 || spent < seconds); rep++) {
    uint64_t t0 = cpu_now();
    g_sink += (double)(rd(buf, bytes) & 1);
    double t = (double)(cpu_now() - t0) * 1e-9;
    spent += t;
    double gbps = (double)bytes / t * 1e-9;
    if (gbps > best) best = gbps;
  }
  return best;
}

/* Whether the buffers of gathered rows asked for transparent huge pages,
 * as the runtime does for item stores (options.huge_pages; the same
 * TOWERRT_HUGE_PAGES=off turns both off), and what the kernel granted. */
static const char *g_huge_note = "not asked";

/* madvise(MADV_HUGEPAGE) on the 2 MiB pages inside the block, before it is
 * first touched (docs/performance.md, "Huge pages for item stores"). */
static void advise_huge(unsigned char *b, size_t bytes) {
  const char *e = getenv("TOWERRT_HUGE_PAGES");
  if (e && (!strcmp(e, "0") || !strcmp(e, "off"))) return;
#ifdef MADV_HUGEPAGE
  uintptr_t huge = (uintptr_t)2 << 20, lo = ((uintptr_t)b + huge - 1) & ~(huge - 1), hi = ((uintptr_t)b + bytes) & ~(huge - 1);
  if (hi > lo) g_huge_note = madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0 ? "asked (madvise)" : "refused by madvise";
#endif
}

static unsigned char *alloc_filled(size_t bytes) {
  unsigned char *b = tb_alloc(bytes);
  if (b) advise_huge(b, bytes);
  if (b) memset(b, 0x3c, bytes); /* 0x3c3c3c3c: f32 0.0115, bf16 0.0115, s8 60 */
  return b;
}

double tb_read_bandwidth(size_t bytes, double seconds, size_t *used) {
  if (!bytes) bytes = default_bw_bytes();
  unsigned char *buf = alloc_filled(bytes);
  if (!buf) return 0.0;
  double r = bandwidth_on(buf, bytes, seconds);
  free(buf);
  if (used) *used = bytes;
  return r;
}

/* ---- kernels against the roofs ----------------------------------------------- */

#define K_BLOCK 256u /* candidates per call, as the runtime (a block of 256 ids: docs/architecture.md) */
#define K_USER 96u   /* 3 FE layers x 32 heads */
#define K_ITEM 32u
#define K_DIM 64u
#define HOT_ROWS 32u /* 32 rows x 8 KiB: resident in L2 */

typedef struct kctx {
  const unsigned char *store; /* the bandwidth buffer, reused as an item store */
  size_t store_bytes;
  uint32_t *rows_hot, *rows_cold; /* 16 blocks of K_BLOCK rows each */
  float *user_f32;
  uint16_t *user_bf16;
  uint8_t *user_u8, *user_bits; /* user_bits: random bytes, user_u8 = them in the set's 0..u8_max */
  int32_t *zp, *colsum;
  float *uscale, *iscale, *scores;
  size_t cold_rows; /* rows of the current dtype in the store */
} kctx;

/* Any kernel, to compare function pointers without converting them to
 * object pointers. */
typedef void (*any_fn)(void);
typedef void (*call_fn)(const kctx *c, any_fn kernel, const uint32_t *rows);

static void call_f32(const kctx *c, any_fn fn, const uint32_t *rows) {
  ((trt_maxsim_f32_fn)fn)(c->user_f32, K_USER, (const float *)c->store, K_ITEM * K_DIM, rows, K_BLOCK, K_ITEM, K_DIM, c->scores);
}
#ifdef TB_HAVE_MAXSIM_BF16
static void call_bf16(const kctx *c, any_fn fn, const uint32_t *rows) {
  ((trt_maxsim_bf16_fn)fn)(c->user_bf16, K_USER, (const uint16_t *)c->store, K_ITEM * K_DIM, rows, K_BLOCK, K_ITEM, K_DIM, c->scores);
}
#endif
#ifdef TB_HAVE_MAXSIM_U8S8
static void call_u8s8(const kctx *c, any_fn fn, const uint32_t *rows) {
  trt_maxsim_u8s8_params p = {c->user_u8, c->zp, c->uscale, K_USER, (const int8_t *)c->store, K_ITEM * K_DIM,
                              c->colsum, K_ITEM, c->iscale, K_ITEM, K_DIM};
  ((trt_maxsim_u8s8_fn)fn)(&p, rows, K_BLOCK, c->scores);
}
#endif

/* GMAC/s and GB/s of item rows for `call` over the 16 prepared blocks. */
static void time_maxsim(const kctx *c, call_fn call, any_fn fn, const uint32_t *rows, size_t row_bytes, double seconds,
                        double *gmacs, double *gbps) {
  call(c, fn, rows); /* warm */
  size_t calls = 0;
  uint64_t t0 = cpu_now(), t1;
  do {
    call(c, fn, rows + (calls % 16) * K_BLOCK);
    calls++;
    t1 = cpu_now();
  } while ((double)(t1 - t0) * 1e-9 < seconds || calls < 2);
  double t = (double)(t1 - t0) * 1e-9;
  *gmacs = (double)calls * K_BLOCK * K_USER * K_ITEM * K_DIM / t * 1e-9;
  *gbps = (double)calls * K_BLOCK * row_bytes / t * 1e-9;
}

static void fill_rows(kctx *c, tb_rng *rng, size_t n_rows) {
  for (size_t i = 0; i < 16 * K_BLOCK; i++) {
    c->rows_hot[i] = (uint32_t)tb_rng_below(rng, HOT_ROWS);
    c->rows_cold[i] = (uint32_t)tb_rng_below(rng, n_rows);
  }
}

static tb_kernel_roof *add_kernel(tb_roofline *r, const char *kernel, const char *isa, const char *shape) {
  if (r->n_kernels >= TB_ROOF_MAX_KERNELS) return NULL;
  tb_kernel_roof *k = &r->kernels[r->n_kernels++];
  memset(k, 0, sizeof *k);
  set(k->kernel, sizeof k->kernel, kernel);
  set(k->isa, sizeof k->isa, isa);
  set(k->shape, sizeof k->shape, shape);
  return k;
}

static int seen(any_fn *list, size_t *n, any_fn fn) {
  for (size_t i = 0; i < *n; i++)
    if (list[i] == fn) return 1;
  list[(*n)++] = fn;
  return 0;
}

static void measure_maxsim(tb_roofline *r, kctx *c, const char *kernel, const char *isa, call_fn call, any_fn fn,
                           size_t row_bytes, double peak, const char *peak_what, double seconds, FILE *log) {
  static const char *const where[2] = {"L2-resident rows", "rows from a store >> LLC"};
  tb_rng rng;
  tb_rng_seed(&rng, 7);
  size_t n_rows = c->store_bytes / row_bytes;
  if (n_rows > UINT32_MAX) n_rows = UINT32_MAX;
  fill_rows(c, &rng, n_rows);
  for (int w = 0; w < 2; w++) {
    char shape[96];
    snprintf(shape, sizeof shape, "k=%u x %u x %u x %u, %s", K_BLOCK, K_USER, K_ITEM, K_DIM, where[w]);
    tb_kernel_roof *k = add_kernel(r, kernel, isa, shape);
    if (!k) return;
    time_maxsim(c, call, fn, w ? c->rows_cold : c->rows_hot, row_bytes, seconds, &k->gmacs, &k->gbps);
    k->peak_gmacs = peak;
    k->bw_gbps = w ? r->bandwidth : 0.0; /* L2-resident rows: not a memory-bandwidth case */
    set(k->peak_what, sizeof k->peak_what, peak_what);
    if (log) fprintf(log, "  %-14s %-12s %-44s %8.2f GMAC/s %7.2f GB/s\n", kernel, isa, shape, k->gmacs, k->gbps);
  }
}

static void measure_dense(tb_roofline *r, const char *isa, trt_dense_f32_fn fn, size_t n, size_t in, size_t out, const char *what,
                          double peak, const char *peak_what, double seconds, FILE *log) {
  float *w = tb_alloc(in * out * sizeof(float)), *b = tb_alloc(out * sizeof(float));
  float *x = tb_alloc(n * in * sizeof(float)), *y = tb_alloc(n * out * sizeof(float));
  if (w && b && x && y) {
    tb_rng rng;
    tb_rng_seed(&rng, 11);
    for (size_t i = 0; i < in * out; i++) w[i] = tb_rng_uniform(&rng, -0.05f, 0.05f);
    for (size_t i = 0; i < out; i++) b[i] = 0.01f;
    for (size_t i = 0; i < n * in; i++) x[i] = tb_rng_uniform(&rng, 0.0f, 1.0f);
    fn(x, n, in, w, b, out, 1, y);
    size_t calls = 0;
    uint64_t t0 = cpu_now(), t1;
    do {
      fn(x, n, in, w, b, out, 1, y);
      calls++;
      t1 = cpu_now();
    } while ((double)(t1 - t0) * 1e-9 < seconds || calls < 2);
    double t = (double)(t1 - t0) * 1e-9;
    char shape[96];
    snprintf(shape, sizeof shape, "n=%zu, %zu -> %zu (%s)", n, in, out, what);
    tb_kernel_roof *k = add_kernel(r, "dense_f32", isa, shape);
    if (k) {
      k->gmacs = (double)calls * n * in * out / t * 1e-9;
      k->gbps = (double)calls * in * out * sizeof(float) / t * 1e-9;
      k->peak_gmacs = peak;
      k->bw_gbps = 0.0; /* the weights (a few MB) are cache-resident after the first call */
      set(k->peak_what, sizeof k->peak_what, peak_what);
      if (log) fprintf(log, "  %-12s %-12s %-44s %8.2f GMAC/s %7.2f GB/s\n", "dense_f32", isa, shape, k->gmacs, k->gbps);
    }
  }
  free(w);
  free(b);
  free(x);
  free(y);
}

static void add_peak(tb_roofline *r, const char *what, const char *ins, const char *unit, double v) {
  if (r->n_peaks >= TB_ROOF_MAX_PEAKS) return;
  tb_peak *p = &r->peaks[r->n_peaks++];
  set(p->what, sizeof p->what, what);
  set(p->instruction, sizeof p->instruction, ins);
  set(p->unit, sizeof p->unit, unit);
  p->value = v;
}

/* The roofs of one kernel set: the best instruction of each type that the
 * set's kernels may use (an avx2 kernel is compared with the 256-bit roof,
 * not with AVX-512 VNNI). */
typedef struct isa_roofs {
  double f32, i8, bf16;
  const char *f32_what, *i8_what, *bf16_what;
} isa_roofs;

typedef struct machine_roofs {
  double f32_zmm, f32_ymm, i8_vnni512, i8_avxvnni, i8_maddubs256, bf16_512;
} machine_roofs;

static isa_roofs roofs_for(const machine_roofs *m, const char *isa, const tb_roofline *best) {
  isa_roofs o = {best->best_f32, best->best_i8, best->best_bf16 > 0 ? best->best_bf16 : best->best_f32,
                 "fp32 FMA", "int8 dot", best->best_bf16 > 0 ? "bf16 dot" : "fp32 FMA"};
  int y = !strcmp(isa, "avx2") || !strcmp(isa, "avx-vnni"), z = !strncmp(isa, "avx512", 6);
  if (y && m->f32_ymm > 0) o.f32 = o.bf16 = m->f32_ymm, o.f32_what = o.bf16_what = "fp32 FMA ymm";
  if (!strcmp(isa, "avx2") && m->i8_maddubs256 > 0) o.i8 = m->i8_maddubs256, o.i8_what = "int8 dot ymm";
  if (!strcmp(isa, "avx-vnni") && m->i8_avxvnni > 0) o.i8 = m->i8_avxvnni, o.i8_what = "int8 dot ymm";
  if (z && m->f32_zmm > 0) o.f32 = o.bf16 = m->f32_zmm, o.f32_what = o.bf16_what = "fp32 FMA";
  if (z && strcmp(isa, "avx512") && m->i8_vnni512 > 0) o.i8 = m->i8_vnni512, o.i8_what = "int8 dot";
  if (!strcmp(isa, "avx512") && m->i8_maddubs256 > 0) o.i8 = m->i8_maddubs256, o.i8_what = "int8 dot ymm"; /* its int8 kernels are avx2's */
  if (!strcmp(isa, "avx512-bf16") && m->bf16_512 > 0) o.bf16 = m->bf16_512, o.bf16_what = "bf16 dot";
  return o;
}

#ifdef TB_X86
/* Every roof the CPU has, each under its own instruction; `only`: the one
 * kernel set TOWERRT_ISA forces (NULL: all), whose roofs alone are listed. */
static void measure_roofs(tb_roofline *r, machine_roofs *m, const char *only, double seconds, FILE *log) {
  int any = !only, y = any || !strcmp(only, "avx2") || !strcmp(only, "avx-vnni") || !strcmp(only, "avx512");
  int z = any || !strncmp(only, "avx512", 6);
  struct {
    int want;
    const char *has1, *has2, *what, *ins;
    loop_fn fn;
    double per_iter, *out;
  } t[] = {
      {z, "avx512f", "avx512f", "fp32 FMA", "vfmadd231ps zmm (avx512f)", f32_avx512, 16.0 * 16.0, &m->f32_zmm},
      {y, "avx2", "fma", "fp32 FMA ymm", "vfmadd231ps ymm (avx2+fma)", f32_avx2, 12.0 * 8.0, &m->f32_ymm},
      {z && (any || strcmp(only, "avx512")), "avx512vnni", "avx512f", "int8 dot", "vpdpbusd zmm (avx512-vnni)", i8_vnni512, 16.0 * 64.0,
       &m->i8_vnni512},
      {any || !strcmp(only, "avx-vnni"), "avxvnni", "avx2", "int8 dot ymm", "{vex} vpdpbusd ymm (avx-vnni)", i8_avxvnni256, 16.0 * 32.0,
       &m->i8_avxvnni},
      {any || !strcmp(only, "avx2") || !strcmp(only, "avx512"), "avx2", "avx2", "int8 dot ymm", "vpmaddubsw+vpmaddwd ymm (avx2)",
       i8_maddubs256, 10.0 * 32.0, &m->i8_maddubs256},
      {z && (any || !strcmp(only, "avx512-bf16")), "avx512bf16", "avx512f", "bf16 dot", "vdpbf16ps zmm (avx512-bf16)", bf16_avx512,
       16.0 * 32.0, &m->bf16_512},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (!t[i].want || !cpu_has(t[i].has1) || !cpu_has(t[i].has2)) continue;
    *t[i].out = time_loop(t[i].fn, t[i].per_iter, seconds);
    add_peak(r, t[i].what, t[i].ins, "GMAC/s", *t[i].out);
    if (log) fprintf(log, "  peak %s: %.1f GMAC/s\n", t[i].ins, *t[i].out);
  }
  r->best_f32 = m->f32_zmm > m->f32_ymm ? m->f32_zmm : m->f32_ymm;
  r->best_i8 = m->i8_vnni512 > 0 ? m->i8_vnni512 : m->i8_avxvnni > 0 ? m->i8_avxvnni : m->i8_maddubs256;
  r->best_bf16 = m->bf16_512;
}
#endif

towerrt_status tb_roofline_run(tb_roofline *r, double seconds, FILE *log) {
  memset(r, 0, sizeof *r);
  if (seconds <= 0) seconds = 0.2;
  const char *only = getenv("TOWERRT_ISA");
  if (only && (!*only || !strcmp(only, "auto"))) only = NULL;
  if (only) {
    towerrt_kernels probe;
    if (!tb_kernels(only, &probe)) return tb_fail(TOWERRT_ERR_UNSUPPORTED, "TOWERRT_ISA: %s", towerrt_last_error());
  }
  machine_roofs mr;
  memset(&mr, 0, sizeof mr);
#ifdef TB_X86
  measure_roofs(r, &mr, only, seconds, log);
#else
  char ins[48];
  r->best_f32 = tb_peak_f32(seconds, ins, sizeof ins);
  add_peak(r, "fp32 FMA", ins, "GMAC/s", r->best_f32);
  if (log) fprintf(log, "  peak fp32 %s: %.1f GMAC/s\n", ins, r->best_f32);
  r->best_i8 = tb_peak_i8(seconds, ins, sizeof ins);
  add_peak(r, "int8 dot", ins, "GMAC/s", r->best_i8);
  if (log) fprintf(log, "  peak int8 %s: %.1f GMAC/s\n", ins, r->best_i8);
#endif

  kctx c;
  memset(&c, 0, sizeof c);
  c.store_bytes = default_bw_bytes();
  unsigned char *store = alloc_filled(c.store_bytes);
  c.store = store;
  c.rows_hot = malloc(16 * K_BLOCK * sizeof *c.rows_hot);
  c.rows_cold = malloc(16 * K_BLOCK * sizeof *c.rows_cold);
  c.user_f32 = tb_alloc(K_USER * K_DIM * sizeof(float));
  c.user_bf16 = tb_alloc(K_USER * K_DIM * sizeof(uint16_t));
  c.user_u8 = tb_alloc(K_USER * K_DIM);
  c.user_bits = tb_alloc(K_USER * K_DIM);
  c.zp = malloc(K_USER * sizeof *c.zp);
  c.uscale = malloc(K_USER * sizeof *c.uscale);
  c.scores = malloc(K_BLOCK * sizeof *c.scores);
  size_t max_rows_u8 = c.store_bytes / (K_ITEM * K_DIM);
  /* gathered with the rows, as a store's ITEM_COLSUMS / ITEM_SCALES are */
  c.colsum = tb_alloc(max_rows_u8 * K_ITEM * sizeof *c.colsum);
  c.iscale = tb_alloc(max_rows_u8 * sizeof *c.iscale);
  if (c.colsum) advise_huge((unsigned char *)c.colsum, max_rows_u8 * K_ITEM * sizeof *c.colsum);
  if (c.iscale) advise_huge((unsigned char *)c.iscale, max_rows_u8 * sizeof *c.iscale);
  towerrt_status st = TOWERRT_OK;
  if (!store || !c.rows_hot || !c.rows_cold || !c.user_f32 || !c.user_bf16 || !c.user_u8 || !c.user_bits || !c.zp || !c.uscale || !c.scores ||
      !c.colsum || !c.iscale) {
    st = tb_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for the roofline buffers (%zu bytes)", c.store_bytes);
    goto done;
  }
  r->buffer_bytes = c.store_bytes;
  r->bandwidth = bandwidth_on(store, c.store_bytes, seconds);
  add_peak(r, "memory read", "streaming loads, 1 core", "GB/s", r->bandwidth);
  if (log) fprintf(log, "  read bandwidth (%zu MiB buffer, huge pages %s): %.1f GB/s\n", c.store_bytes >> 20, g_huge_note, r->bandwidth);

  tb_rng rng;
  tb_rng_seed(&rng, 3);
  for (size_t i = 0; i < K_USER * K_DIM; i++) {
    float v = tb_rng_uniform(&rng, -1.0f, 1.0f);
    uint32_t bits;
    c.user_f32[i] = v;
    memcpy(&bits, &v, 4);
    c.user_bf16[i] = (uint16_t)(bits >> 16);
    c.user_bits[i] = (uint8_t)tb_rng_below(&rng, 256);
  }
  for (size_t u = 0; u < K_USER; u++) {
    c.zp[u] = 128;
    c.uscale[u] = 0.01f;
  }
  for (size_t i = 0; i < max_rows_u8 * K_ITEM; i++) c.colsum[i] = 60 * (int32_t)K_DIM;
  for (size_t i = 0; i < max_rows_u8; i++) c.iscale[i] = 0.001f;

  const char *isas[TB_MAX_ISAS];
  size_t n_isa = tb_available_isas(isas);
  any_fn done_f32[TB_MAX_ISAS], done_bf16[TB_MAX_ISAS], done_u8[TB_MAX_ISAS], done_dense[TB_MAX_ISAS];
  size_t n_f32 = 0, n_bf16 = 0, n_u8 = 0, n_dense = 0;
  (void)done_bf16;
  (void)done_u8;
  (void)n_bf16;
  (void)n_u8;
  for (size_t i = 0; i < n_isa; i++) {
    towerrt_kernels k;
    if (only && strcmp(isas[i], only)) continue;
    if (!tb_kernels(isas[i], &k)) continue;
    isa_roofs ro = roofs_for(&mr, k.name, r);
    if (k.maxsim_f32 && !seen(done_f32, &n_f32, (any_fn)k.maxsim_f32))
      measure_maxsim(r, &c, "maxsim_f32", k.name, call_f32, (any_fn)k.maxsim_f32, K_ITEM * K_DIM * 4, ro.f32, ro.f32_what,
                     seconds, log);
#ifdef TB_HAVE_MAXSIM_BF16
    if (k.maxsim_bf16 && !seen(done_bf16, &n_bf16, (any_fn)k.maxsim_bf16))
      measure_maxsim(r, &c, "maxsim_bf16", k.name, call_bf16, (any_fn)k.maxsim_bf16, K_ITEM * K_DIM * 2, ro.bf16, ro.bf16_what,
                     seconds, log);
#endif
#ifdef TB_HAVE_MAXSIM_U8S8
    if (k.maxsim_u8s8 && !seen(done_u8, &n_u8, (any_fn)k.maxsim_u8s8)) {
      /* user bytes as the runtime quantizes them for this set (kernels.h, u8_max) */
      for (size_t j = 0; j < K_USER * K_DIM; j++) c.user_u8[j] = (uint8_t)(c.user_bits[j] % ((unsigned)k.u8_max + 1u));
      for (size_t u = 0; u < K_USER; u++) c.zp[u] = (k.u8_max + 1) / 2;
      measure_maxsim(r, &c, "maxsim_u8s8", k.name, call_u8s8, (any_fn)k.maxsim_u8s8, K_ITEM * K_DIM, ro.i8, ro.i8_what,
                     seconds, log);
      if (k.u8_max < 255) { /* the same kernel on full-range bytes: its exact (widening) path, for comparison */
        memcpy(c.user_u8, c.user_bits, K_USER * K_DIM);
        for (size_t u = 0; u < K_USER; u++) c.zp[u] = 128;
        measure_maxsim(r, &c, "maxsim_u8s8/u8", k.name, call_u8s8, (any_fn)k.maxsim_u8s8, K_ITEM * K_DIM, ro.i8, ro.i8_what,
                       seconds, log);
      }
    }
#endif
    if (k.dense_f32 && !seen(done_dense, &n_dense, (any_fn)k.dense_f32)) {
      measure_dense(r, k.name, k.dense_f32, 1, 300, 2048, "user FE projection", ro.f32, ro.f32_what, seconds, log);
      measure_dense(r, k.name, k.dense_f32, 32, 300, 2048, "item block FE projection", ro.f32, ro.f32_what, seconds, log);
    }
  }
done:
  free(store);
  free(c.rows_hot);
  free(c.rows_cold);
  free(c.user_f32);
  free(c.user_bf16);
  free(c.user_u8);
  free(c.user_bits);
  free(c.zp);
  free(c.uscale);
  free(c.scores);
  free(c.colsum);
  free(c.iscale);
  return st;
}

static double pct(double a, double b) { return b > 0 ? 100.0 * a / b : NAN; }

void tb_roofline_print(const tb_roofline *r, FILE *f) {
  fprintf(f, "\nroofline: this machine, one core\n");
  fprintf(f, "  %-12s %-36s %12s\n", "roof", "instruction", "value");
  for (size_t i = 0; i < r->n_peaks; i++)
    fprintf(f, "  %-12s %-36s %8.1f %s\n", r->peaks[i].what, r->peaks[i].instruction, r->peaks[i].value, r->peaks[i].unit);
  fprintf(f, "\n  %-14s %-12s %-46s %9s %7s %8s %7s\n", "kernel", "isa", "shape", "GMAC/s", "%peak", "GB/s", "%bw");
  for (size_t i = 0; i < r->n_kernels; i++) {
    const tb_kernel_roof *k = &r->kernels[i];
    if (k->bw_gbps > 0)
      fprintf(f, "  %-14s %-12s %-46s %9.2f %6.1f%% %8.2f %6.1f%%\n", k->kernel, k->isa, k->shape, k->gmacs,
              pct(k->gmacs, k->peak_gmacs), k->gbps, pct(k->gbps, k->bw_gbps));
    else
      fprintf(f, "  %-14s %-12s %-46s %9.2f %6.1f%% %8.2f %7s\n", k->kernel, k->isa, k->shape, k->gmacs,
              pct(k->gmacs, k->peak_gmacs), k->gbps, "cache");
  }
  fprintf(f, "  (rates per second of CPU time of the measuring thread; %%peak: of the best roof above for the kernel's type;\n"
             "   %%bw: bytes of item rows read per second over the read bandwidth, for rows streamed from DRAM;\n"
             "   cache: the data is cache-resident, the bandwidth roof does not apply)\n");
}

void tb_roofline_json(const tb_roofline *r, FILE *f, const char *ind) {
  fprintf(f, "{\n%s  \"buffer_bytes\": %zu,\n%s  \"peaks\": [", ind, r->buffer_bytes, ind);
  for (size_t i = 0; i < r->n_peaks; i++) {
    fprintf(f, "%s\n%s    {\"roof\": ", i ? "," : "", ind);
    tb_json_string(f, r->peaks[i].what);
    fprintf(f, ", \"instruction\": ");
    tb_json_string(f, r->peaks[i].instruction);
    fprintf(f, ", \"unit\": ");
    tb_json_string(f, r->peaks[i].unit);
    fprintf(f, ", \"value\": ");
    tb_json_number(f, r->peaks[i].value);
    fputc('}', f);
  }
  fprintf(f, "\n%s  ],\n%s  \"kernels\": [", ind, ind);
  for (size_t i = 0; i < r->n_kernels; i++) {
    const tb_kernel_roof *k = &r->kernels[i];
    fprintf(f, "%s\n%s    {\"kernel\": ", i ? "," : "", ind);
    tb_json_string(f, k->kernel);
    fprintf(f, ", \"isa\": ");
    tb_json_string(f, k->isa);
    fprintf(f, ", \"shape\": ");
    tb_json_string(f, k->shape);
    fprintf(f, ", \"gmac_per_s\": ");
    tb_json_number(f, k->gmacs);
    fprintf(f, ", \"peak\": ");
    tb_json_string(f, k->peak_what);
    fprintf(f, ", \"peak_gmac_per_s\": ");
    tb_json_number(f, k->peak_gmacs);
    fprintf(f, ", \"fraction_of_peak\": ");
    tb_json_number(f, k->peak_gmacs > 0 ? k->gmacs / k->peak_gmacs : NAN);
    fprintf(f, ", \"gb_per_s\": ");
    tb_json_number(f, k->gbps);
    fprintf(f, ", \"fraction_of_bandwidth\": ");
    tb_json_number(f, k->bw_gbps > 0 ? k->gbps / k->bw_gbps : NAN);
    fputc('}', f);
  }
  fprintf(f, "\n%s  ]\n%s}", ind, ind);
}
