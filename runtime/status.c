#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_last_error[TRT_MSG_CAP];

towerrt_status trt_fail(towerrt_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  return s;
}

towerrt_status trt_fail_context(towerrt_status s, const char *context) {
  char tmp[TRT_MSG_CAP];
  size_t n = strlen(context);
  if (n > TRT_MSG_CAP / 2) n = TRT_MSG_CAP / 2; /* keep room for the message itself */
  memcpy(tmp, context, n);
  memcpy(tmp + n, ": ", 2);
  size_t rest = strlen(g_last_error);
  if (rest > TRT_MSG_CAP - n - 3) rest = TRT_MSG_CAP - n - 3;
  memcpy(tmp + n + 2, g_last_error, rest);
  tmp[n + 2 + rest] = '\0';
  memcpy(g_last_error, tmp, sizeof tmp);
  return s;
}

void trt_clear_error(void) { g_last_error[0] = '\0'; }

const char *towerrt_last_error(void) { return g_last_error; }

const char *towerrt_status_name(towerrt_status s) {
  static const char *const names[TOWERRT_STATUS_COUNT_] = {
      "TOWERRT_OK",
      "TOWERRT_ERR_INVALID_ARGUMENT",
      "TOWERRT_ERR_IO",
      "TOWERRT_ERR_TRUNCATED",
      "TOWERRT_ERR_BAD_MAGIC",
      "TOWERRT_ERR_VERSION",
      "TOWERRT_ERR_CHECKSUM",
      "TOWERRT_ERR_FORMAT",
      "TOWERRT_ERR_SHAPE",
      "TOWERRT_ERR_NONFINITE",
      "TOWERRT_ERR_UNSUPPORTED",
      "TOWERRT_ERR_ID_OUT_OF_RANGE",
      "TOWERRT_ERR_UNKNOWN_ITEM",
      "TOWERRT_ERR_EMPTY_REQUEST",
      "TOWERRT_ERR_LIMIT",
      "TOWERRT_ERR_MISMATCH",
      "TOWERRT_ERR_NO_MEMORY",
      "TOWERRT_ERR_NO_ITEMS",
  };
  if ((unsigned)s >= TOWERRT_STATUS_COUNT_) return "TOWERRT_ERR_UNKNOWN_STATUS";
  return names[s];
}
