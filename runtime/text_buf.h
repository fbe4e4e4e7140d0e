/* Appending formatted text to a caller's buffer of fixed size, counting
 * what did not fit (towerrt_*_describe: they return the full length). */
#ifndef TOWERRT_TEXT_BUF_H
#define TOWERRT_TEXT_BUF_H

#include <stddef.h>

typedef struct trt_text_buf {
  char *buf; /* may be NULL when cap is 0 */
  size_t cap, len;
} trt_text_buf;

/* printf into the buffer at len; len grows by the full length even when
 * it does not fit. */
void trt_text_put(trt_text_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates what fits; returns the full length. */
size_t trt_text_end(trt_text_buf *o);

#endif
