/* The one definition of TRT_INLINE: the kernels' register tiles take their
 * block sizes as constant arguments, and only forced inlining turns those
 * into fully unrolled loops with the accumulators in registers. */
#ifndef TOWERRT_KERNELS_INLINE_H
#define TOWERRT_KERNELS_INLINE_H

#define TRT_INLINE static inline __attribute__((always_inline))

#endif
