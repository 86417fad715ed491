/*
 * errors.c - status codes to text, and the per-thread detail message that
 * says exactly what went wrong in the last failing call.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[512];

int kvshm__fail(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return err;
}

void kvshm__clear_detail(void) {
  detail[0] = '\0';
}

const char *kvshm_errdetail(void) {
  return detail;
}

const char *kvshm_strerror(int err) {
  switch (err) {
  case KVSHM_OK:
    return "success";
#define KVSHM_STRERROR_(name, code, msg)                                       \
  case code:                                                                   \
    return msg;
    KVSHM_ERRNO_MAP(KVSHM_STRERROR_)
#undef KVSHM_STRERROR_
  }
  if (err < 0 && err > -4096)
    return strerror(-err);
  return "unknown error";
}

const char *kvshm_err_name(int err) {
  switch (err) {
  case KVSHM_OK:
    return "OK";
#define KVSHM_ERRNAME_(name, code, msg)                                        \
  case code:                                                                   \
    return "E" #name;
    KVSHM_ERRNO_MAP(KVSHM_ERRNAME_)
#undef KVSHM_ERRNAME_
  }
#ifdef __GLIBC__ /* other C libraries: no names for system errors */
  if (err < 0 && err > -4096) {
    const char *n = strerrorname_np(-err);
    if (n)
      return n;
  }
#endif
  return "EUNKNOWN";
}
