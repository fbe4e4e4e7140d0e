#include "bench_util.h"

#include <ctype.h>
#include <errno.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

uint64_t tb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

uint64_t tb_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

void tb_rng_seed(tb_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tb_rng_next(tb_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t tb_rng_below(tb_rng *r, uint64_t n) {
  /* 32-bit multiply-shift is plenty for the ranges used here (< 2^32). */
  if (n <= UINT32_MAX) return ((tb_rng_next(r) >> 32) * n) >> 32;
  return tb_rng_next(r) % n;
}

float tb_rng_uniform(tb_rng *r, float lo, float hi) {
  double u = (double)(tb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(lo + (hi - lo) * u);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double tb_percentile_sorted(const double *v, size_t n, double p) {
  if (n == 0) return NAN;
  double rank = ceil(p / 100.0 * (double)n);
  size_t i = rank < 1.0 ? 0 : (size_t)rank - 1;
  return v[i < n ? i : n - 1];
}

void tb_stats_compute(double *v, size_t n, tb_stats *o) {
  memset(o, 0, sizeof *o);
  o->n = n;
  if (n == 0) {
    o->p50 = o->p90 = o->p99 = o->p999 = o->mean = o->min = o->max = NAN;
    return;
  }
  qsort(v, n, sizeof *v, cmp_double);
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += v[i];
  o->mean = sum / (double)n;
  o->min = v[0];
  o->max = v[n - 1];
  o->p50 = tb_percentile_sorted(v, n, 50.0);
  o->p90 = tb_percentile_sorted(v, n, 90.0);
  o->p99 = tb_percentile_sorted(v, n, 99.0);
  o->p999 = tb_percentile_sorted(v, n, 99.9);
}

int tb_strlist_add(tb_strlist *l, const char *s) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v) return 0;
    l->v = v;
    l->cap = cap;
  }
  size_t len = strlen(s);
  char *c = malloc(len + 1);
  if (!c) return 0;
  memcpy(c, s, len + 1);
  l->v[l->n++] = c;
  return 1;
}

int tb_strlist_split(tb_strlist *l, const char *text, char sep) {
  const char *p = text;
  while (*p) {
    const char *e = strchr(p, sep);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len) {
      char buf[256];
      if (len >= sizeof buf) len = sizeof buf - 1;
      memcpy(buf, p, len);
      buf[len] = '\0';
      if (!tb_strlist_add(l, buf)) return 0;
    }
    if (!e) break;
    p = e + 1;
  }
  return 1;
}

void tb_strlist_free(tb_strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

int tb_strlist_has(const tb_strlist *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->v[i], s)) return 1;
  return 0;
}

void *tb_alloc(size_t bytes) {
  size_t b = (bytes + 63) & ~(size_t)63;
  return aligned_alloc(64, b ? b : 64);
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
}

void tb_machine_describe(tb_machine *m) {
  memset(m, 0, sizeof *m);
  snprintf(m->cpu, sizeof m->cpu, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      /* x86: "model name"; arm64: no model name, use "CPU part" if nothing else */
      if (!strncmp(line, "model name", 10)) {
        char *c = strchr(line, ':');
        if (c) {
          c++;
          while (*c == ' ' || *c == '\t') c++;
          snprintf(m->cpu, sizeof m->cpu, "%s", c);
          trim(m->cpu);
        }
        break;
      }
    }
    fclose(f);
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m->logical_cpus = n > 0 ? (int)n : 1;
  /* sysfs first: in some VMs sysconf reports the host's caches */
  for (int i = 0; i < 8; i++) {
    char path[96], buf[64];
    long level = 0, size = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *c = fopen(path, "r");
    if (!c) break;
    if (fgets(buf, sizeof buf, c)) level = strtol(buf, NULL, 10);
    fclose(c);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    c = fopen(path, "r");
    if (!c) break;
    if (fgets(buf, sizeof buf, c)) {
      char *end;
      size = strtol(buf, &end, 10);
      if (*end == 'K') size *= 1024;
      else if (*end == 'M') size *= 1024 * 1024;
    }
    fclose(c);
    if (level == 2) m->l2_bytes = size;
    if (level == 3) m->l3_bytes = size;
  }
#ifdef _SC_LEVEL2_CACHE_SIZE
  if (m->l2_bytes <= 0) m->l2_bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
  if (m->l3_bytes <= 0) m->l3_bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  struct utsname u;
  if (uname(&u) == 0) snprintf(m->os, sizeof m->os, "%.40s %.60s %.20s", u.sysname, u.release, u.machine);
#if defined(__clang__)
  snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
  snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#else
  snprintf(m->compiler, sizeof m->compiler, "unknown");
#endif
  trim(m->compiler);
  m->loadavg_1m = -1.0;
  FILE *la = fopen("/proc/loadavg", "r");
  if (la) {
    if (fscanf(la, "%lf", &m->loadavg_1m) != 1) m->loadavg_1m = -1.0;
    fclose(la);
  }
  time_t t = time(NULL);
  struct tm tmv;
  if (gmtime_r(&t, &tmv)) strftime(m->date_utc, sizeof m->date_utc, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

void tb_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}

void tb_json_number(FILE *f, double v) {
  if (!isfinite(v)) fputs("null", f);
  else if (v == floor(v) && fabs(v) < 1e15) fprintf(f, "%.0f", v);
  else fprintf(f, "%.6g", v);
}

int tb_find_program(const char *name, char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  const char *p = path;
  while (*p) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char cand[1024];
    if (len && len + strlen(name) + 2 < sizeof cand) {
      memcpy(cand, p, len);
      snprintf(cand + len, sizeof cand - len, "/%s", name);
      struct stat st;
      if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
        snprintf(out, cap, "%s", cand);
        return 1;
      }
    }
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

uint64_t tb_fnv1a(const char *s) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
  return h;
}

int tb_parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (!v || !isdigit((unsigned char)v[0])) return 0;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end || errno || x < lo || x > hi) return 0;
  *out = (uint64_t)x;
  return 1;
}

int tb_parse_seconds(const char *v, double hi, double *out) {
  if (!v || !(isdigit((unsigned char)v[0]) || (v[0] == '.' && isdigit((unsigned char)v[1])))) return 0;
  for (const char *p = v; *p; p++)
    if (!isdigit((unsigned char)*p) && *p != '.') return 0;
  char *end;
  double x = strtod(v, &end);
  if (*end || !(x >= 0.0) || x > hi) return 0;
  *out = x;
  return 1;
}
