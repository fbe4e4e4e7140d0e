/* trt_text_buf (text_buf.h). */
#include "text_buf.h"

#include <stdarg.h>
#include <stdio.h>

void trt_text_put(trt_text_buf *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = o->len < o->cap ? o->buf + o->len : NULL;
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

size_t trt_text_end(trt_text_buf *o) {
  if (o->cap && o->len >= o->cap) o->buf[o->cap - 1] = '\0';
  return o->len;
}
