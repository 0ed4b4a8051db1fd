/* Clocks and a strict, allocation-free timestamp parser. Written here rather than
 * with strptime(3) because strptime ignores zone offsets and fractional seconds,
 * is locale-dependent and accepts trailing garbage. */
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t sl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sl_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sl_mono_ms(void)
{
    return sl_mono_ns() / 1000000;
}

int64_t sl_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

char *sl_time_format(int64_t ms, char *buf, size_t size)
{
    int64_t days = sl_time_floor(ms, 86400000) / 86400000;
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    return buf;
}

int sl_ts_format_parse(const char *name)
{
    static const char *names[] = {"iso", "millis", "seconds", "auto"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || (*p)[0] < '0' || (*p)[0] > '9') {
            return false;
        }
        v = v * 10 + ((*p)[0] - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int parse_iso(const char *s, size_t len, int64_t *ms, sl_err *err)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s, *end = s + len;
    int y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0;
    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d)) {
        return sl_err_set(err, SL_EPARSE, "timestamp is not ISO 8601 (expected YYYY-MM-DD...)");
    }
    if (mo < 1 || mo > 12) {
        return sl_err_set(err, SL_EPARSE, "timestamp month %d out of range", mo);
    }
    int maxd = mdays[mo - 1] + (mo == 2 && is_leap(y));
    if (d < 1 || d > maxd) {
        return sl_err_set(err, SL_EPARSE, "timestamp day %d out of range for %04d-%02d", d, y, mo);
    }
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (!digits(&p, end, 2, &hh) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi)) {
            return sl_err_set(err, SL_EPARSE, "timestamp time is not hh:mm[:ss]");
        }
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &ss)) {
                return sl_err_set(err, SL_EPARSE, "timestamp seconds are not two digits");
            }
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                int nd = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (nd < 3) {
                        frac = frac * 10 + (*p - '0');
                    }
                    nd++;
                    p++;
                }
                if (nd == 0) {
                    return sl_err_set(err, SL_EPARSE, "timestamp has an empty fraction");
                }
                for (; nd < 3; nd++) {
                    frac *= 10;
                }
            }
        }
        if (hh > 23 || mi > 59 || ss > 60) {
            return sl_err_set(err, SL_EPARSE, "timestamp time %02d:%02d:%02d out of range", hh, mi,
                              ss);
        }
    }
    int64_t offset_min = 0;
    if (p < end) {
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh, om = 0;
            if (!digits(&p, end, 2, &oh)) {
                return sl_err_set(err, SL_EPARSE, "timestamp zone offset is not ±hh[:mm]");
            }
            if (p < end && *p == ':') {
                p++;
                if (!digits(&p, end, 2, &om)) {
                    return sl_err_set(err, SL_EPARSE, "timestamp zone offset is not ±hh[:mm]");
                }
            } else if (p < end && !digits(&p, end, 2, &om)) {
                return sl_err_set(err, SL_EPARSE, "timestamp zone offset is not ±hh[:mm]");
            }
            if (oh > 23 || om > 59) {
                return sl_err_set(err, SL_EPARSE, "timestamp zone offset out of range");
            }
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (p != end) {
        return sl_err_set(err, SL_EPARSE, "timestamp has trailing characters");
    }
    int64_t days = sl_days_from_civil(y, (unsigned)mo, (unsigned)d);
    /* A leap second (ss == 60) is folded into the next second, as Druid/Joda do. */
    *ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) - offset_min * 60) * 1000 + frac;
    return 0;
}

/* Parses an optionally signed decimal number; unit_ms scales it (1 for millis,
 * 1000 for seconds). Fractions below a millisecond are truncated. */
static int parse_number(const char *s, size_t len, int64_t unit_ms, int64_t *ms, sl_err *err)
{
    const char *p = s, *end = s + len;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p++ == '-';
    }
    if (p >= end || *p < '0' || *p > '9') {
        return sl_err_set(err, SL_EPARSE, "timestamp is not a number");
    }
    int64_t whole = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (whole > (INT64_MAX / 10000) / 10) {
            return sl_err_set(err, SL_EPARSE, "timestamp number out of range");
        }
        whole = whole * 10 + (*p++ - '0');
    }
    int64_t frac_ms = 0;
    if (p < end && *p == '.') {
        p++;
        int64_t scale = unit_ms;
        int64_t acc = 0, den = 1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (den < 1000000000) {
                acc = acc * 10 + (*p - '0');
                den *= 10;
            }
            p++;
        }
        frac_ms = acc * scale / den;
    }
    if (p != end) {
        return sl_err_set(err, SL_EPARSE, "timestamp number has trailing characters");
    }
    int64_t v = whole * unit_ms + frac_ms;
    *ms = neg ? -v : v;
    return 0;
}

int sl_time_parse(const char *s, size_t len, sl_ts_format fmt, int64_t *ms, sl_err *err)
{
    if (len == 0) {
        return sl_err_set(err, SL_EPARSE, "timestamp is empty");
    }
    switch (fmt) {
    case SL_TS_ISO:
        return parse_iso(s, len, ms, err);
    case SL_TS_MILLIS:
        return parse_number(s, len, 1, ms, err);
    case SL_TS_SECONDS:
        return parse_number(s, len, 1000, ms, err);
    case SL_TS_AUTO: {
        bool numeric = true;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || c == '.' || (i == 0 && (c == '-' || c == '+')))) {
                numeric = false;
                break;
            }
        }
        if (!numeric) {
            return parse_iso(s, len, ms, err);
        }
        int64_t v;
        int rc = parse_number(s, len, 1, &v, err);
        if (rc != 0) {
            return rc;
        }
        if (v > 100000000000LL || v < -100000000000LL) {
            *ms = v;
            return 0;
        }
        return parse_number(s, len, 1000, ms, err);
    }
    }
    return sl_err_set(err, SL_EINVAL, "unknown timestamp format");
}

int sl_period_parse(const char *s, int64_t *ms, sl_err *err)
{
    const char *p = s;
    if (*p != 'P' && *p != 'p') {
        return sl_err_set(err, SL_EPARSE, "period \"%s\" does not start with P", s);
    }
    p++;
    bool in_time = false, any = false;
    int64_t total = 0;
    while (*p != '\0') {
        if (*p == 'T' || *p == 't') {
            if (in_time) {
                return sl_err_set(err, SL_EPARSE, "period \"%s\" has two T", s);
            }
            in_time = true;
            p++;
            continue;
        }
        if (*p < '0' || *p > '9') {
            return sl_err_set(err, SL_EPARSE, "period \"%s\": expected a number at \"%s\"", s, p);
        }
        int64_t v = 0, frac = 0, den = 1;
        while (*p >= '0' && *p <= '9') {
            if (v > INT64_MAX / 1000000000) {
                return sl_err_set(err, SL_EPARSE, "period \"%s\" is too long", s);
            }
            v = v * 10 + (*p++ - '0');
        }
        if (*p == '.' || *p == ',') {
            p++;
            while (*p >= '0' && *p <= '9') {
                if (den < 1000) {
                    frac = frac * 10 + (*p - '0');
                    den *= 10;
                }
                p++;
            }
        }
        int64_t unit;
        char u = *p;
        if (u >= 'a' && u <= 'z') {
            u = (char)(u - 'a' + 'A');
        }
        if (!in_time && u == 'W') {
            unit = 7 * 86400000LL;
        } else if (!in_time && u == 'D') {
            unit = 86400000LL;
        } else if (in_time && u == 'H') {
            unit = 3600000LL;
        } else if (in_time && u == 'M') {
            unit = 60000LL;
        } else if (in_time && u == 'S') {
            unit = 1000LL;
        } else if (!in_time && (u == 'Y' || u == 'M')) {
            return sl_err_set(err, SL_EPARSE,
                              "period \"%s\": calendar years and months are not supported; use "
                              "days or weeks",
                              s);
        } else {
            return sl_err_set(err, SL_EPARSE, "period \"%s\": unknown unit at \"%s\"", s, p);
        }
        if (frac != 0 && u != 'S') {
            return sl_err_set(err, SL_EPARSE, "period \"%s\": fractions only for seconds", s);
        }
        if (v >= (INT64_MAX - total) / unit) {
            return sl_err_set(err, SL_EPARSE, "period \"%s\" is too long", s);
        }
        total += v * unit + frac * unit / den;
        any = true;
        p++;
    }
    if (!any || total <= 0) {
        return sl_err_set(err, SL_EPARSE, "period \"%s\" is empty or zero", s);
    }
    *ms = total;
    return 0;
}
