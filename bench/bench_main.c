/* towerrt-bench: the benchmark binary (docs/performance.md). `towerrt
 * bench ARGS` executes it (tools/towerrt.c), so that the CLI does not link
 * the benchmarks. Run directly it takes the same arguments, with or
 * without the word "bench" first (`towerrt-bench bench ARGS` is `towerrt
 * bench ARGS`: what a cross build's bench_schema test runs under the
 * emulator, which cannot exec a sibling binary itself). */
#include <string.h>

#include "bench_cli.h"

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "bench")) {
    argv[1] = argv[0];
    return towerrt_bench_main(argc - 1, argv + 1);
  }
  return towerrt_bench_main(argc, argv);
}
