/* The registry of model families (family.h). */
#include "family.h"

#include <string.h>

#include "status.h"

static const trt_family *const families[] = {&trt_family_inttower, &trt_family_dssm, &trt_family_dat, &trt_family_fit};

towerrt_status trt_family_find(const trt_meta *meta, const trt_family **out) {
  *out = NULL;
  trt_meta_value v;
  if (!trt_meta_find(meta, "general.architecture", &v)) return trt_fail(TOWERRT_ERR_FORMAT, "META lacks general.architecture");
  if (v.type != TRT_META_STRING) return trt_fail(TOWERRT_ERR_FORMAT, "META general.architecture is not a string");
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
    if (v.len == strlen(families[i]->name) && !memcmp(v.str, families[i]->name, v.len)) {
      *out = families[i];
      return TOWERRT_OK;
    }
  return trt_fail(TOWERRT_ERR_UNSUPPORTED, "general.architecture '%.*s' is not served by this build (inttower, dssm, dat, fit)",
                  (int)(v.len > 64 ? 64 : v.len), v.str);
}
