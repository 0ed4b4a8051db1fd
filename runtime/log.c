/* logfmt logging to stderr; one write() per line so lines of concurrent
 * processes sharing a log file do not interleave. */
#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char log_actor[64] = "sluice";
static int log_min_level = SL_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void sl_log_init(const char *actor, int min_level)
{
    snprintf(log_actor, sizeof(log_actor), "%s", actor);
    log_min_level = min_level;
}

void sl_log_write(int level, const char *event, const char *fmt, ...)
{
    if (level < log_min_level) {
        return;
    }
    char line[2048];
    char ts[32];
    sl_time_format(sl_now_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s actor=%s pid=%d event=%s", ts,
                     level_names[level], log_actor, (int)getpid(), event);
    if (n < 0) {
        return;
    }
    if (fmt != NULL && fmt[0] != '\0' && (size_t)n < sizeof(line) - 2) {
        va_list ap;
        line[n++] = ' ';
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m > 0) {
            n += m;
        }
    }
    if ((size_t)n > sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    (void)!write(2, line, (size_t)n);
}

int sl_log_ratelimit(int64_t *last_ms, int64_t *dropped, int64_t interval_ms)
{
    int64_t now = sl_now_ms();
    if (now - *last_ms < interval_ms) {
        (*dropped)++;
        return 0;
    }
    if (*dropped > 0) {
        sl_log_write(SL_LOG_WARN, "log_suppressed", "lines=%lld", (long long)*dropped);
        *dropped = 0;
    }
    *last_ms = now;
    return 1;
}
