/* Clocks and timestamps. Event time is int64 milliseconds since the Unix epoch, UTC. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum sl_ts_format { SL_TS_ISO, SL_TS_MILLIS, SL_TS_SECONDS, SL_TS_AUTO } sl_ts_format;

/* Wall clock, ms since epoch. */
int64_t sl_now_ms(void);
/* Monotonic clock, ms / ns; only differences mean anything. */
int64_t sl_mono_ms(void);
int64_t sl_mono_ns(void);

/* Parses s[0..len) as a timestamp in the given format into *ms.
 * ISO 8601: YYYY-MM-DD, optional [T ]hh:mm[:ss[.fff…]], optional Z / ±hh[:mm] / ±hhmm
 * (no zone means UTC). millis/seconds: an integer or decimal number (decimal seconds keep
 * milliseconds). auto: digits only → millis if > 1e11 (after 1973-03-03 as millis) else
 * seconds; otherwise ISO. Returns 0 or SL_EPARSE with a reason in err. */
int sl_time_parse(const char *s, size_t len, sl_ts_format fmt, int64_t *ms, sl_err *err);

/* Formats ms as "2025-06-11T12:00:00.000Z" into buf (at least 25 bytes). Returns buf. */
char *sl_time_format(int64_t ms, char *buf, size_t size);

/* Parses the name of a format ("iso", "millis", "seconds", "auto"); -1 if unknown. */
int sl_ts_format_parse(const char *name);

/* Days since 1970-01-01 for a proleptic Gregorian date. */
int64_t sl_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Floors ms to a multiple of period_ms (correct for negative times). */
static inline int64_t sl_time_floor(int64_t ms, int64_t period_ms)
{
    int64_t r = ms % period_ms;
    return r < 0 ? ms - r - period_ms : ms - r;
}

#endif

#ifndef SL_CLOCK_PERIOD
#define SL_CLOCK_PERIOD
/* Parses a fixed-length ISO 8601 duration: P[nW][nD][T[nH][nM][n[.fff]S]] into ms
 * (e.g. "PT5M" = 300000, "P1D" = 86400000). Calendar units (Y, months) are rejected
 * with a message saying so. Returns 0 or SL_EPARSE. */
int sl_period_parse(const char *s, int64_t *ms, sl_err *err);
#endif
