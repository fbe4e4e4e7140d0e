/* `towerrt bench compare A.json B.json`: per point ratio and Mann-Whitney U
 * test of two `towerrt bench --json` files (compare.c). */
#ifndef TOWERRT_BENCH_COMPARE_H
#define TOWERRT_BENCH_COMPARE_H

#include <stddef.h>

/* argv[0] = "compare". Exit status: 0, 1 (unreadable file, nothing in common), 2 (usage). */
int tb_compare_main(int argc, char **argv);
/* Two-sided p-value of the Mann-Whitney U test (normal approximation with
 * tie and continuity corrections); NAN if a sample has < 2 values. */
double tb_mann_whitney_p(const double *a, size_t na, const double *b, size_t nb);

#endif
