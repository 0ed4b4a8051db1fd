/* Errors: one table gives the codes, their names and whether a caller may retry.
 *
 * A fallible function returns int: 0 on success or a negative SL_E* code (or
 * -errno for a failed syscall). The human-readable message travels in an
 * optional trailing `sl_err *`, filled where the error is first known. */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <stdbool.h>
#include <stddef.h>

/* X(name, value, retriable, text) */
#define SL_ERR_TABLE(X)                                                                            \
    X(SL_EINVAL, -1000, false, "invalid argument")                                                 \
    X(SL_ENOMEM, -1001, false, "out of memory")                                                    \
    X(SL_EPARSE, -1002, false, "parse error")                                                      \
    X(SL_ENOTFOUND, -1003, false, "not found")                                                     \
    X(SL_ETOOBIG, -1004, false, "too big")                                                         \
    X(SL_EBUSY, -1005, true, "busy, try again")                                                    \
    X(SL_ETIMEDOUT, -1006, true, "timed out")                                                      \
    X(SL_EUNAVAIL, -1007, true, "unavailable")                                                     \
    X(SL_EIO, -1008, false, "i/o error")                                                           \
    X(SL_ENOSPC, -1009, true, "no space left")                                                     \
    X(SL_ECODEC, -1010, false, "malformed message")                                                \
    X(SL_ECLOSED, -1011, false, "closed")                                                          \
    X(SL_ECONFIG, -1012, false, "bad configuration")

enum {
#define SL_ERR_ENUM(name, value, retriable, text) name = value,
    SL_ERR_TABLE(SL_ERR_ENUM)
#undef SL_ERR_ENUM
};

typedef struct sl_err {
    int code;
    char msg[512];
} sl_err;

/* Fills err (if not NULL) with code and a printf-style message; returns code so
 * callers can write `return sl_err_set(err, SL_EINVAL, "...")`. */
int sl_err_set(sl_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Static name of a code ("SL_EINVAL", or strerror text for -errno). */
const char *sl_err_name(int code);

/* True when an operation that failed with code may succeed if retried. */
bool sl_err_retriable(int code);

/* Invariant checks that are never compiled out. */
#define SL_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            sl_panic(__FILE__, __LINE__, #cond);                                                   \
        }                                                                                          \
    } while (0)

/* Logs and aborts; the supervisor restarts the actor. */
_Noreturn void sl_panic(const char *file, int line, const char *what);

/* Allocation that never returns NULL: out of memory aborts here, in one place. */
void *sl_malloc(size_t n);
void *sl_calloc(size_t count, size_t n);
void *sl_realloc(void *p, size_t n);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);

#endif
