/* `towerrt bench compare A.json B.json` (compare.h): the points two runs
 * share (the same values of every sweep dimension), B against A: the p50
 * of each, the time ratio, and a two-sided Mann-Whitney U test of the
 * samples, as Google Benchmark's tools/compare.py does (there, over the
 * repetitions; here over the repetitions' p50 when both files have >= 2,
 * else over the requests' latencies, and the table says which).
 *
 * The JSON reader is a small DOM parser for the documents `towerrt bench
 * --json` writes (objects, arrays, strings, numbers, true/false/null); it
 * refuses anything else with the byte offset. */
#include "compare.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

/* ---- JSON ------------------------------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode {
  int type;
  double num;
  char *str;          /* J_STR (and the key of an object member) */
  struct jnode *kids; /* J_ARR, J_OBJ: n kids; an object's kid i has key keys[i] */
  char **keys;
  size_t n;
} jnode;

typedef struct jparser {
  const char *s, *p;
  char err[160];
} jparser;

static void jskip(jparser *j) {
  while (*j->p && isspace((unsigned char)*j->p)) j->p++;
}

static int jfail(jparser *j, const char *what) {
  if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s at byte %ld", what, (long)(j->p - j->s));
  return 0;
}

static int jvalue(jparser *j, jnode *out, int depth);

static int jstring(jparser *j, char **out) {
  if (*j->p != '"') return jfail(j, "expected a string");
  const char *q = ++j->p;
  size_t n = 0;
  while (*q && *q != '"') q += (*q == '\\' && q[1]) ? 2 : 1, n++;
  if (*q != '"') return jfail(j, "unterminated string");
  char *s = malloc(n + 1), *d = s;
  if (!s) return jfail(j, "out of memory");
  for (; j->p < q; j->p++) {
    if (*j->p != '\\') {
      *d++ = *j->p;
      continue;
    }
    j->p++;
    char e = *j->p;
    *d++ = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'u' ? '?' : e; /* \uXXXX: not in our files' keys */
    if (e == 'u')
      for (int k = 0; k < 4 && j->p[1]; k++) j->p++;
  }
  *d = '\0';
  j->p++;
  *out = s;
  return 1;
}

static int jlist(jparser *j, jnode *out, int obj, int depth) {
  char close = obj ? '}' : ']';
  size_t cap = 0;
  j->p++;
  jskip(j);
  if (*j->p == close) return j->p++, 1;
  for (;;) {
    if (out->n == cap) {
      cap = cap ? 2 * cap : 8;
      jnode *k = realloc(out->kids, cap * sizeof *k);
      if (!k) return jfail(j, "out of memory");
      out->kids = k;
      if (obj) {
        char **ks = realloc(out->keys, cap * sizeof *ks);
        if (!ks) return jfail(j, "out of memory");
        out->keys = ks;
      }
    }
    jskip(j);
    if (obj) {
      if (!jstring(j, &out->keys[out->n])) return 0;
      jskip(j);
      if (*j->p != ':') return jfail(j, "expected ':'");
      j->p++;
    }
    memset(&out->kids[out->n], 0, sizeof out->kids[0]);
    out->n++;
    if (!jvalue(j, &out->kids[out->n - 1], depth + 1)) return 0;
    jskip(j);
    if (*j->p == ',') {
      j->p++;
      continue;
    }
    if (*j->p == close) return j->p++, 1;
    return jfail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int jvalue(jparser *j, jnode *out, int depth) {
  if (depth > 64) return jfail(j, "nested too deeply");
  jskip(j);
  memset(out, 0, sizeof *out);
  if (*j->p == '{') return out->type = J_OBJ, jlist(j, out, 1, depth);
  if (*j->p == '[') return out->type = J_ARR, jlist(j, out, 0, depth);
  if (*j->p == '"') return out->type = J_STR, jstring(j, &out->str);
  if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "false", 5)) {
    out->type = J_BOOL, out->num = *j->p == 't';
    j->p += *j->p == 't' ? 4 : 5;
    return 1;
  }
  if (!strncmp(j->p, "null", 4)) return out->type = J_NULL, j->p += 4, 1;
  char *end;
  errno = 0;
  out->num = strtod(j->p, &end);
  if (end == j->p || errno == ERANGE) return jfail(j, "expected a value");
  out->type = J_NUM;
  j->p = end;
  return 1;
}

static void jfree(jnode *n) {
  for (size_t i = 0; i < n->n; i++) {
    jfree(&n->kids[i]);
    if (n->keys) free(n->keys[i]);
  }
  free(n->kids), free(n->keys), free(n->str);
}

static const jnode *jget(const jnode *o, const char *key) {
  if (!o || o->type != J_OBJ) return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return &o->kids[i];
  return NULL;
}

/* A towerrt bench JSON file, parsed; 0 and a message on stderr if not one. */
static int load_doc(const char *path, jnode *doc) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "towerrt bench compare: cannot read '%s': %s\n", path, strerror(errno));
    return 0;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (n + 1 == cap) {
      char *b = realloc(buf, cap *= 2);
      if (!b) free(buf);
      buf = b;
    }
  }
  fclose(f);
  if (!buf) return fprintf(stderr, "towerrt bench compare: out of memory reading '%s'\n", path), 0;
  buf[n] = '\0';
  jparser j = {buf, buf, ""};
  int ok = jvalue(&j, doc, 0);
  if (ok) {
    jskip(&j);
    if (*j.p) ok = jfail(&j, "trailing characters");
  }
  free(buf);
  const jnode *schema = ok ? jget(doc, "schema") : NULL;
  if (ok && (!schema || schema->type != J_STR || strncmp(schema->str, "towerrt-bench/", 14))) {
    snprintf(j.err, sizeof j.err, "not a towerrt bench --json file (no \"schema\": \"towerrt-bench/...\")");
    ok = 0;
  }
  const jnode *pts = ok ? jget(doc, "points") : NULL;
  if (ok && (!pts || pts->type != J_ARR)) snprintf(j.err, sizeof j.err, "no \"points\" array"), ok = 0;
  if (!ok) {
    fprintf(stderr, "towerrt bench compare: %s: %s\n", path, j.err);
    jfree(doc);
  }
  return ok;
}

/* ---- statistics ------------------------------------------------------------- */

typedef struct ranked {
  double v;
  int from_b;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
  double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
  return (x > y) - (x < y);
}

/* Two-sided p-value of the Mann-Whitney U test of samples a and b: the
 * normal approximation with the tie correction and a continuity
 * correction (scipy.stats.mannwhitneyu, method="asymptotic"). NAN when a
 * sample has fewer than 2 values. */
double tb_mann_whitney_p(const double *a, size_t na, const double *b, size_t nb) {
  if (na < 2 || nb < 2) return NAN;
  size_t n = na + nb;
  ranked *r = malloc(n * sizeof *r);
  if (!r) return NAN;
  for (size_t i = 0; i < na; i++) r[i] = (ranked){a[i], 0};
  for (size_t i = 0; i < nb; i++) r[na + i] = (ranked){b[i], 1};
  qsort(r, n, sizeof *r, cmp_ranked);
  double rank_a = 0, ties = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && r[j].v == r[i].v) j++;
    double avg = 0.5 * (double)(i + 1 + j), t = (double)(j - i); /* ranks i+1 .. j */
    for (size_t k = i; k < j; k++)
      if (!r[k].from_b) rank_a += avg;
    ties += t * t * t - t;
    i = j;
  }
  free(r);
  double u = rank_a - (double)na * (double)(na + 1) / 2.0, mu = (double)na * (double)nb / 2.0;
  double var = (double)na * (double)nb / 12.0 * ((double)(n + 1) - ties / ((double)n * (double)(n - 1)));
  if (!(var > 0)) return 1.0;
  double z = (fabs(u - mu) - 0.5) / sqrt(var);
  if (z < 0) z = 0;
  return erfc(z / sqrt(2.0));
}

/* ---- the table -------------------------------------------------------------- */

/* The point's key: "dim=value ..." over the file's dimensions. */
static void point_key(const jnode *dims, const jnode *pt, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t d = 0; dims && d < dims->n && n < cap; d++) {
    if (dims->kids[d].type != J_STR) continue;
    const jnode *v = jget(pt, dims->kids[d].str);
    char val[64] = "?";
    if (v && v->type == J_STR) snprintf(val, sizeof val, "%s", v->str);
    else if (v && v->type == J_NUM) snprintf(val, sizeof val, "%.15g", v->num);
    n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", n ? " " : "", dims->kids[d].str, val);
  }
}

static double num_of(const jnode *pt, const char *key) {
  const jnode *v = jget(pt, key);
  return v && v->type == J_NUM ? v->num : NAN;
}

/* The numbers of an array member, in a new buffer (n = 0 if absent). */
static double *array_of(const jnode *pt, const char *key, size_t *n) {
  const jnode *v = jget(pt, key);
  *n = 0;
  if (!v || v->type != J_ARR || !v->n) return NULL;
  double *out = malloc(v->n * sizeof *out);
  for (size_t i = 0; out && i < v->n; i++)
    if (v->kids[i].type == J_NUM) out[(*n)++] = v->kids[i].num;
  return out;
}

static void compare_point(const jnode *pa, const jnode *pb, const char *key, double alpha) {
  double a50 = num_of(pa, "p50_us"), b50 = num_of(pb, "p50_us");
  size_t na, nb;
  double *ra = array_of(pa, "repetition_p50_us", &na), *rb = array_of(pb, "repetition_p50_us", &nb);
  const char *what = "reps";
  if (na < 2 || nb < 2) {
    free(ra), free(rb);
    ra = array_of(pa, "latency_us", &na), rb = array_of(pb, "latency_us", &nb);
    what = "requests";
  }
  double p = tb_mann_whitney_p(ra, na, rb, nb);
  char pv[32];
  if (isnan(p)) snprintf(pv, sizeof pv, "%12s", "n/a");
  else snprintf(pv, sizeof pv, "%12.4g", p);
  printf("%-72s %11.1f %11.1f %+8.1f%% %8.3f %s %-8s %s\n", key, a50, b50, 100.0 * (b50 - a50) / a50, b50 / a50, pv, what,
         isnan(p) ? "" : p < alpha ? (b50 < a50 ? "faster" : "slower") : "same");
  free(ra), free(rb);
}

int tb_compare_main(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: towerrt bench compare A.json B.json\n"
           "  For every point both `towerrt bench --json` files measured (the same value of every sweep\n"
           "  dimension): p50 latency of A and B, the change (B - A) / A, the time ratio B / A, and the\n"
           "  two-sided Mann-Whitney U test p-value, over the repetitions' p50 when both ran\n"
           "  --repetitions >= 2, else over the requests' latencies. 'faster'/'slower' at p < 0.05.\n");
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "towerrt bench compare: expected two files: towerrt bench compare A.json B.json%s\n",
            argc > 3 ? " (extra arguments given)" : "");
    return 2;
  }
  jnode a, b;
  if (!load_doc(argv[1], &a)) return 1;
  if (!load_doc(argv[2], &b)) {
    jfree(&a);
    return 1;
  }
  const jnode *pa = jget(&a, "points"), *pb = jget(&b, "points"), *da = jget(&a, "dimensions"), *db = jget(&b, "dimensions");
  printf("comparing %s (A) with %s (B): p50 latency per point; U test p-value, alpha 0.05\n", argv[1], argv[2]);
  printf("%-72s %11s %11s %9s %8s %12s %-8s\n", "point", "A p50 us", "B p50 us", "change", "B/A", "p-value", "samples");
  size_t matched = 0;
  for (size_t i = 0; i < pa->n; i++) {
    char ka[512], kb[512];
    point_key(da, &pa->kids[i], ka, sizeof ka);
    for (size_t j = 0; j < pb->n; j++) {
      point_key(db, &pb->kids[j], kb, sizeof kb);
      if (strcmp(ka, kb)) continue;
      compare_point(&pa->kids[i], &pb->kids[j], ka, 0.05);
      matched++;
      break;
    }
  }
  if (!matched) fprintf(stderr, "towerrt bench compare: the two files share no point (the same value of every dimension)\n");
  jfree(&a), jfree(&b);
  return matched ? 0 : 1;
}
