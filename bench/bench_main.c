/* towerrt-bench: the benchmark binary (docs/performance.md). `towerrt
 * bench ARGS` executes it (tools/towerrt.c), so that the CLI does not link
 * the benchmarks; run directly, it takes the same arguments. */
#include "bench_cli.h"

int main(int argc, char **argv) { return towerrt_bench_main(argc, argv); }
