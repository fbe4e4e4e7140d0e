/* towerrt_options_init and the struct_size check (options.h). */
#include "options.h"

#include <string.h>

#include "status.h"

void towerrt_options_init(towerrt_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->verify_checksums = 1;
  o->max_k = 100000;
  o->max_topn = 1024;
  o->pin_threads = 1;
  o->threads = 1;
  o->numa_node = -1;
  o->load_mode = TOWERRT_LOAD_MAP;
  o->max_load_bytes = TOWERRT_DEFAULT_MAX_LOAD_BYTES;
  o->huge_pages = 1;
}

towerrt_status trt_options_check(const towerrt_options *o) {
  if (o && o->struct_size != sizeof *o)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.struct_size is %u, expected %zu: call towerrt_options_init", o->struct_size,
                    sizeof *o);
  return TOWERRT_OK;
}

towerrt_status trt_options_resolve(const towerrt_options *o, towerrt_options *defaults, const towerrt_options **use) {
  towerrt_status st = trt_options_check(o);
  if (st) return st;
  if (!o) {
    towerrt_options_init(defaults);
    o = defaults;
  }
  *use = o;
  return TOWERRT_OK;
}
