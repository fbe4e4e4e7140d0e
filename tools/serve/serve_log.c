/* One line per event on stderr: "TIME LEVEL EVENT key=value ..." or, with
 * --log-format json, {"ts":..,"level":..,"event":..,"key":"value",...}. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "serve.h"

static int g_json;

void slog_init(int json) { g_json = json; }

static void put_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* Text values with spaces or quotes are quoted so a line stays parseable. */
static void put_text_value(FILE *f, const char *s) {
  if (*s && !strpbrk(s, " \"=\n\t")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) fputc(*s == '"' ? '\'' : (*s == '\n' ? ' ' : *s), f);
  fputc('"', f);
}

void slog(const char *level, const char *event, ...) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
  flockfile(stderr);
  if (g_json) {
    fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", when, level);
    put_json_string(stderr, event);
  } else {
    fprintf(stderr, "%s %s %s", when, level, event);
  }
  va_list ap;
  va_start(ap, event);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    if (!v) v = "";
    if (g_json) {
      fputc(',', stderr);
      put_json_string(stderr, k);
      fputc(':', stderr);
      put_json_string(stderr, v);
    } else {
      fprintf(stderr, " %s=", k);
      put_text_value(stderr, v);
    }
  }
  va_end(ap);
  fputs(g_json ? "}\n" : "\n", stderr);
  funlockfile(stderr);
  fflush(stderr);
}
