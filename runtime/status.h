/* Error reporting: every failing path calls trt_fail, which records a
 * message naming what was wrong in a thread-local buffer and returns the
 * status, so callers write `return trt_fail(TOWERRT_ERR_SHAPE, "...")`. */
#ifndef TOWERRT_STATUS_H
#define TOWERRT_STATUS_H

#include "towerrt.h"

#define TRT_MSG_CAP 512

towerrt_status trt_fail(towerrt_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds "context: " in front of the current thread's message. */
towerrt_status trt_fail_context(towerrt_status s, const char *context);
void trt_clear_error(void);

#endif
