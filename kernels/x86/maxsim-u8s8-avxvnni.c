/* int8 batched MaxSim with AVX-VNNI: the VEX-encoded 256-bit vpdpbusd of
 * CPUs that have it without AVX-512 (Alder Lake and later clients, Sierra
 * Forest, Zen 5). Semantics: kernels.h, trt_maxsim_u8s8_params.
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes and adds the four
 * products to the int32 lane, with no intermediate saturation
 * (|sum| <= 4 * 255 * 128), so the full u8 range is exact: this set's
 * tables keep u8_max = 255, the same quantization as the scalar oracle and
 * AVX-512 VNNI. The tile is shared with the AVX2 kernel
 * (maxsim-u8s8-ymm-tile.h); only the step differs. Selected only where
 * cpuid says AVX-VNNI (runtime/cpu_features.c). */
#include <immintrin.h>

#include "../inline.h"

/* Inline asm with the {vex} prefix: the EVEX form would need AVX512VL, and
 * "x" keeps the operands in ymm0-15, which VEX can encode. */
TRT_INLINE __m256i trt_yq_dot(__m256i acc, __m256i u, __m256i s) {
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
  return acc;
}
#define TRT_YQ_MR 3
#define TRT_YQ_NR 4
#define TRT_MS_NAME trt_maxsim_u8s8_avxvnni
#define TRT_MS_SCALAR trt_maxsim_u8s8_scalar
#define TRT_MS_U8S8 1
#include "maxsim-u8s8-ymm-tile.h"
