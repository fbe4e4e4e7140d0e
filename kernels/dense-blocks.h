/* The output loop shared by the dense kernels of every ISA: full blocks of
 * 4 outputs, then one block of the 3, 2 or 1 left. BLOCK(o0, no) must be a
 * macro or always-inline call whose `no` is then a constant, so each block
 * size compiles to its own fully unrolled code. */
#ifndef TOWERRT_DENSE_BLOCKS_H
#define TOWERRT_DENSE_BLOCKS_H

#define TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK)   \
  do {                                        \
    size_t o_ = 0;                            \
    for (; o_ + 4 <= (out); o_ += 4) BLOCK(o_, 4); \
    switch ((out) - o_) {                     \
      case 3: BLOCK(o_, 3); break;            \
      case 2: BLOCK(o_, 2); break;            \
      case 1: BLOCK(o_, 1); break;            \
      default: break;                         \
    }                                         \
  } while (0)

#endif
