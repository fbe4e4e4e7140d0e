/* Rank agreement between two scorings of the same requests (f32 and its
 * quantized twin), per request and aggregated by candidate count: what
 * `towerrt quantize --calibration` reports (docs/quantization.md).
 *
 * Per request of k candidates:
 *   - Spearman's rho of the two score vectors (Pearson correlation of
 *     average ranks; 1 when both sides are constant, 0 when one is, as
 *     tools/quant_accuracy.py);
 *   - top-n overlap: |top n of the reference & top n of the other| / n, the
 *     top n taken by score, descending, ties broken by candidate position
 *     (first wins) on both sides; n = 10 (requests with k > 10) and n =
 *     ceil(k / 10), the top tenth (requests with k >= 2);
 *   - the largest |score difference|.
 * Buckets by k: 1-9, 10-99, 100-999, 1000-9999, 10000+ (one decade each:
 * one swapped pair moves rho by about 6 / k^2, so a minimum over mixed sizes
 * is set by the smallest requests and says nothing about large ones). */
#ifndef TOWERRT_RANK_AGREEMENT_H
#define TOWERRT_RANK_AGREEMENT_H

#include <stddef.h>
#include <stdio.h>

enum { RANK_BUCKETS = 5, RANK_TOP_N = 10 };

typedef struct rank_stat { /* mean and min of one per-request measure */
  size_t n;
  double sum, min;
} rank_stat;

typedef struct rank_bucket {
  size_t requests, scores;
  rank_stat rho, top_n, top_tenth;
  double max_abs;
} rank_bucket;

typedef struct rank_report {
  rank_bucket bucket[RANK_BUCKETS];
  rank_bucket all;
} rank_report;

/* The bucket of a request of k candidates (0 .. RANK_BUCKETS-1). */
int rank_bucket_of(size_t k);
/* "1-9", "10-99", ... */
const char *rank_bucket_name(int b);
/* Adds one request (ref, other: its k scores). Returns 0, or -1 when out of memory. */
int rank_report_add(rank_report *r, const float *ref, const float *other, size_t k);
/* The overall line, then one line per non-empty bucket, on f. */
void rank_report_print(const rank_report *r, FILE *f);

#endif
