/* towerrt_gbench: the Google Benchmark suites (bench_suites.h) with Google
 * Benchmark's command line and reporters, e.g.
 *   towerrt_gbench --benchmark_filter='kernel/maxsim' --benchmark_format=json
 *   towerrt_gbench --benchmark_filter='e2e/' --benchmark_out=e2e.csv --benchmark_out_format=csv
 * Own options (after Google Benchmark's):
 *   --towerrt_quick            tiny shapes and a tiny model (a smoke test)
 *   --towerrt_preset=NAME      e2e synthetic model: reference (default) or tiny
 *   --towerrt_catalog=N        e2e item store size
 *   --towerrt_workdir=DIR      cache folder of the synthetic model files
 *   --towerrt_suites=LIST      kernels,e2e (default both) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "bench_suites.h"
#include "gbench_shim.h"

static const char *value_of(const char *arg, const char *name) {
  size_t n = strlen(name);
  return !strncmp(arg, name, n) && arg[n] == '=' ? arg + n + 1 : NULL;
}

int main(int argc, char **argv) {
  gbs_initialize(&argc, argv);
  tb_suite_options o = {0, NULL, 0, NULL};
  int kernels = 1, e2e = 1, out = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--towerrt_quick")) o.quick = 1;
    else if ((v = value_of(a, "--towerrt_preset"))) o.preset = v;
    else if ((v = value_of(a, "--towerrt_catalog"))) o.catalog = (uint32_t)strtoul(v, NULL, 10);
    else if ((v = value_of(a, "--towerrt_workdir"))) o.workdir = v;
    else if ((v = value_of(a, "--towerrt_suites"))) {
      kernels = strstr(v, "kernels") != NULL;
      e2e = strstr(v, "e2e") != NULL;
    } else {
      argv[out++] = argv[i];
      continue;
    }
  }
  argc = out;
  if (gbs_report_unrecognized(argc, argv)) return 2;
  const char *isas[TB_MAX_ISAS];
  size_t n = tb_available_isas(isas);
  char list[256] = "";
  size_t len = 0;
  for (size_t i = 0; i < n && len < sizeof list; i++) len += (size_t)snprintf(list + len, sizeof list - len, i ? ",%s" : "%s", isas[i]);
  gbs_add_context("towerrt_version", towerrt_version_string());
  gbs_add_context("towerrt_isas", list);
  gbs_add_context("towerrt_default_isa", tb_default_isa());
  tb_machine mc;
  tb_machine_describe(&mc);
  gbs_add_context("cpu", mc.cpu);
  if (kernels) tb_register_kernel_suite(&o);
  if (e2e) tb_register_e2e_suite(&o);
  gbs_run();
  gbs_shutdown();
  tb_suites_cleanup();
  return 0;
}
