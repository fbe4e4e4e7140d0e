/* `towerrt bench`: latency curves, per-step profile and roofline of the
 * runtime on this machine (docs/performance.md). towerrt-bench's main
 * (bench_main.c) calls towerrt_bench_main with its arguments; argv[0] is
 * any name. Returns the exit status: 0 success, 1 failure, 2 bad usage. */
#ifndef TOWERRT_BENCH_CLI_H
#define TOWERRT_BENCH_CLI_H

#ifdef __cplusplus
extern "C" {
#endif

int towerrt_bench_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
