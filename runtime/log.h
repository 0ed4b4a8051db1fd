/* Logging: one logfmt line per event on stderr,
 *   ts=2025-06-11T12:00:00.123Z level=info actor=windower.0 pid=42 event=flush rows=12
 * Event names are stable identifiers; the rest are key=value pairs given by the
 * caller as a printf format. SL_LOG_RATE limits a hot-path log to one line per
 * interval per call site and reports how many were suppressed. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdint.h>

enum { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR };

/* Sets the actor name shown in every line (copied). */
void sl_log_init(const char *actor, int min_level);

void sl_log_write(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG(level, event, ...)                                                                  \
    do {                                                                                           \
        sl_log_write(SL_LOG_##level, event, __VA_ARGS__);                                          \
    } while (0)

#define SL_LOG_RATE(level, interval_ms, event, ...)                                                \
    do {                                                                                           \
        static int64_t sl_log_last_;                                                               \
        static int64_t sl_log_dropped_;                                                            \
        if (sl_log_ratelimit(&sl_log_last_, &sl_log_dropped_, interval_ms)) {                      \
            sl_log_write(SL_LOG_##level, event, __VA_ARGS__);                                      \
        }                                                                                          \
    } while (0)

/* Returns 1 when a rate-limited line may be written now (and logs the count of
 * suppressed lines), 0 otherwise. */
int sl_log_ratelimit(int64_t *last_ms, int64_t *dropped, int64_t interval_ms);

#endif
