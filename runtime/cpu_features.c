/* CPU feature detection and kernel selection, once at load. The
 * environment variable TOWERRT_ISA (or the isa option) forces a variant so
 * tests can run every kernel set the machine supports. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "status.h"

static const towerrt_kernels k_scalar = {
    .name = "scalar",
    .embed_pool_f32 = trt_embed_pool_f32_scalar,
    .lightse_f32 = trt_lightse_f32_scalar,
    .dense_f32 = trt_dense_f32_scalar,
    .maxsim_f32 = trt_maxsim_f32_scalar,
};

towerrt_status trt_select_kernels(const char *requested, towerrt_kernels *out) {
  const char *env = getenv("TOWERRT_ISA");
  const char *want = (env && *env) ? env : requested;
  if (!want || !*want || strcmp(want, "auto") == 0 || strcmp(want, "scalar") == 0) {
    *out = k_scalar;
    return TOWERRT_OK;
  }
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "ISA '%s' is not available in this build (available: scalar)", want);
}
