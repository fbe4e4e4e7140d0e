/* Rank agreement per request and by candidate-count bucket (rank_agreement.h). */
#include "tools/rank_agreement.h"

#include <math.h>
#include <stdlib.h>

typedef struct scored {
  float score;
  size_t pos;
} scored;

/* Ascending by score, then by position: a total order, so ties are stable. */
static int by_score_up(const void *x, const void *y) {
  const scored *a = x, *b = y;
  if (a->score != b->score) return a->score < b->score ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Descending by score, ties by position (first wins): the top-n order. */
static int by_score_down(const void *x, const void *y) {
  const scored *a = x, *b = y;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

static void load(scored *s, const float *x, size_t k, int (*cmp)(const void *, const void *)) {
  for (size_t i = 0; i < k; i++) s[i].score = x[i], s[i].pos = i;
  qsort(s, k, sizeof *s, cmp);
}

/* Average ranks, 1-based (ties share their mean rank). */
static void ranks(const float *x, size_t k, scored *s, double *r) {
  load(s, x, k, by_score_up);
  for (size_t i = 0; i < k;) {
    size_t j = i;
    while (j + 1 < k && s[j + 1].score == s[i].score) j++;
    for (size_t t = i; t <= j; t++) r[s[t].pos] = (double)(i + j) / 2.0 + 1.0;
    i = j + 1;
  }
}

static double spearman(const float *a, const float *b, size_t k, scored *s, double *ra, double *rb) {
  ranks(a, k, s, ra);
  ranks(b, k, s, rb);
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < k; i++) ma += ra[i], mb += rb[i];
  ma /= (double)k;
  mb /= (double)k;
  for (size_t i = 0; i < k; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa > 0 && sbb > 0) return sab / sqrt(saa * sbb);
  return saa == sbb ? 1.0 : 0.0; /* both constant: the same (non-)order; one: its order is all lost or made up */
}

/* |top n of a & top n of b| / n; mark: k bytes of scratch. */
static double top_overlap(const float *a, const float *b, size_t k, size_t n, scored *s, unsigned char *mark) {
  for (size_t i = 0; i < k; i++) mark[i] = 0;
  load(s, a, k, by_score_down);
  for (size_t i = 0; i < n; i++) mark[s[i].pos] = 1;
  load(s, b, k, by_score_down);
  size_t common = 0;
  for (size_t i = 0; i < n; i++) common += mark[s[i].pos];
  return (double)common / (double)n;
}

static void stat_add(rank_stat *st, double v) {
  st->min = st->n ? fmin(st->min, v) : v;
  st->sum += v;
  st->n++;
}

static void bucket_add(rank_bucket *b, size_t k, double rho, double top_n, double top_tenth, double max_abs) {
  b->requests++;
  b->scores += k;
  stat_add(&b->rho, rho);
  if (top_n >= 0) stat_add(&b->top_n, top_n);
  if (top_tenth >= 0) stat_add(&b->top_tenth, top_tenth);
  b->max_abs = fmax(b->max_abs, max_abs);
}

int rank_bucket_of(size_t k) {
  int b = 0;
  for (size_t lim = 10; b < RANK_BUCKETS - 1 && k >= lim; lim *= 10) b++;
  return b;
}

const char *rank_bucket_name(int b) {
  static const char *const names[RANK_BUCKETS] = {"1-9", "10-99", "100-999", "1000-9999", "10000+"};
  return b >= 0 && b < RANK_BUCKETS ? names[b] : "?";
}

int rank_report_add(rank_report *r, const float *ref, const float *other, size_t k) {
  if (k == 0) return 0;
  scored *s = malloc(k * sizeof *s);
  double *ra = malloc(k * sizeof *ra), *rb = malloc(k * sizeof *rb);
  unsigned char *mark = malloc(k);
  int ok = s && ra && rb && mark;
  if (ok) {
    double rho = spearman(ref, other, k, s, ra, rb);
    double top_n = k > RANK_TOP_N ? top_overlap(ref, other, k, RANK_TOP_N, s, mark) : -1.0;
    double top_tenth = k >= 2 ? top_overlap(ref, other, k, (k + 9) / 10, s, mark) : -1.0;
    double max_abs = 0;
    /* not fmax(max_abs, d): GCC 12 for aarch64 at -O3 fails on that loop
     * (internal compiler error in vect_transform_reduction); the same max */
    for (size_t i = 0; i < k; i++) {
      double d = fabs((double)ref[i] - (double)other[i]);
      if (d > max_abs) max_abs = d;
    }
    bucket_add(&r->bucket[rank_bucket_of(k)], k, rho, top_n, top_tenth, max_abs);
    bucket_add(&r->all, k, rho, top_n, top_tenth, max_abs);
  }
  free(s), free(ra), free(rb), free(mark);
  return ok ? 0 : -1;
}

/* "  mean      min" of one measure, or dashes where no request had it. */
static void print_stat(FILE *f, const rank_stat *st) {
  if (st->n) fprintf(f, "  %10.6f %10.6f", st->sum / (double)st->n, st->min);
  else fprintf(f, "  %10s %10s", "-", "-");
}

void rank_report_print(const rank_report *r, FILE *f) {
  const rank_bucket *a = &r->all;
  fprintf(f, "calibration: %zu requests, %zu scores: Spearman rho mean %.6f, min %.6f; max |score difference| %.3g\n",
          a->requests, a->scores, a->rho.n ? a->rho.sum / (double)a->rho.n : 1.0, a->rho.n ? a->rho.min : 1.0, a->max_abs);
  fprintf(f, "calibration by candidates per request (k): per request, Spearman rho of its k scores, top-10 and\n"
             "top-tenth (ceil(k/10)) overlap = shared candidates / n; mean and min over the bucket's requests\n");
  fprintf(f, "  %-10s %8s %10s  %10s %10s  %10s %10s  %10s %10s  %10s\n", "k", "requests", "scores", "rho mean", "rho min",
          "top10 mean", "top10 min", "tenth mean", "tenth min", "max |diff|");
  for (int b = 0; b < RANK_BUCKETS; b++) {
    const rank_bucket *x = &r->bucket[b];
    if (!x->requests) continue;
    fprintf(f, "  %-10s %8zu %10zu", rank_bucket_name(b), x->requests, x->scores);
    print_stat(f, &x->rho);
    print_stat(f, &x->top_n);
    print_stat(f, &x->top_tenth);
    fprintf(f, "  %10.3g\n", x->max_abs);
  }
}
