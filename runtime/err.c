/* Error table, messages and the single out-of-memory path. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sl_err_set(sl_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *sl_err_name(int code)
{
    switch (code) {
#define SL_ERR_NAME(name, value, retriable, text)                                                  \
    case value:                                                                                    \
        return #name;
        SL_ERR_TABLE(SL_ERR_NAME)
#undef SL_ERR_NAME
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        return strerror(-code);
    }
    return "unknown error";
}

bool sl_err_retriable(int code)
{
    switch (code) {
#define SL_ERR_RETRY(name, value, retriable, text)                                                 \
    case value:                                                                                    \
        return retriable;
        SL_ERR_TABLE(SL_ERR_RETRY)
#undef SL_ERR_RETRY
    default:
        return false;
    }
}

_Noreturn void sl_panic(const char *file, int line, const char *what)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "level=fatal pid=%d event=assert_failed file=%s line=%d what=\"%s\"\n",
                     (int)getpid(), file, line, what);
    if (n > 0) {
        (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    }
    abort();
}

static void *oom(size_t n)
{
    char buf[128];
    int len = snprintf(buf, sizeof(buf), "level=fatal pid=%d event=out_of_memory bytes=%zu\n",
                       (int)getpid(), n);
    if (len > 0) {
        (void)!write(2, buf, (size_t)len);
    }
    abort();
}

void *sl_malloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    return p != NULL ? p : oom(n);
}

void *sl_calloc(size_t count, size_t n)
{
    void *p = calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
    return p != NULL ? p : oom(count * n);
}

void *sl_realloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    return q != NULL ? q : oom(n);
}

char *sl_strdup(const char *s)
{
    return sl_strndup(s, strlen(s));
}

char *sl_strndup(const char *s, size_t n)
{
    char *p = sl_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
