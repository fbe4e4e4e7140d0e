/* DSSM and DAT as model families (family.h): one compiler, scorer and
 * plan for both (family_twotower_*.c); the GRAPH and META say which. */
#include "family_twotower.h"

#define TWOTOWER_FAMILY(family_name)                       \
  {                                                        \
    .name = family_name,                                   \
    .compile = trt_twotower_compile,                       \
    .item_fingerprint = trt_twotower_item_fingerprint,     \
    .bind_kernels = trt_twotower_bind_kernels,             \
    .check_session = trt_twotower_check_session,           \
    .finish_scores = trt_twotower_finish_scores,           \
    .describe_heads = trt_twotower_describe_heads,         \
    .describe_plan = trt_twotower_describe_plan,           \
    .quantize_user_tower = 0,                              \
    .batched_user_tower = 0,                               \
    .free = trt_twotower_free,                             \
  }

const trt_family trt_family_dssm = TWOTOWER_FAMILY("dssm");
const trt_family trt_family_dat = TWOTOWER_FAMILY("dat");
