/* Unit tests for runtime/clock.c: the timestamp parser in each format, zones and
 * offsets, calendar edges, ISO 8601 periods and the formatter. Expected epoch values
 * were computed independently with Python's calendar.timegm / datetime. */
#include "sl_test.h"

#include <string.h>

#include "clock.h"

/* 2025-06-11T12:00:00Z */
#define T_2025_06_11_NOON 1749643200000LL

static int64_t parse_ok(const char *s, sl_ts_format fmt)
{
    int64_t ms = -424242;
    sl_err err = {0};
    int rc = sl_time_parse(s, strlen(s), fmt, &ms, &err);
    if (rc != 0) {
        fail_msg("\"%s\" (format %d) failed: %s", s, (int)fmt, err.msg);
    }
    return ms;
}

/* Asserts that s is rejected with SL_EPARSE and a reason containing want. */
static void parse_bad(const char *s, sl_ts_format fmt, const char *want)
{
    int64_t ms = -424242;
    sl_err err = {0};
    int rc = sl_time_parse(s, strlen(s), fmt, &ms, &err);
    if (rc != SL_EPARSE) {
        fail_msg("\"%s\" (format %d): expected SL_EPARSE, got %d (ms=%lld)", s, (int)fmt, rc,
                 (long long)ms);
    }
    assert_int_equal(err.code, SL_EPARSE);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("\"%s\": reason \"%s\" does not contain \"%s\"", s, err.msg, want);
    }
    assert_int_equal(ms, -424242); /* untouched on error */
}

static void iso_basic_forms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2025-06-11T12:00:00Z", SL_TS_ISO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("2025-06-11t12:00:00z", SL_TS_ISO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("2025-06-11 12:00:00Z", SL_TS_ISO), T_2025_06_11_NOON);
    /* no zone means UTC */
    assert_int_equal(parse_ok("2025-06-11T12:00:00", SL_TS_ISO), T_2025_06_11_NOON);
    /* seconds are optional */
    assert_int_equal(parse_ok("2025-06-11T12:00Z", SL_TS_ISO), T_2025_06_11_NOON);
    /* date only is midnight UTC */
    assert_int_equal(parse_ok("2025-06-11", SL_TS_ISO), 1749600000000LL);
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z", SL_TS_ISO), 0);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.999Z", SL_TS_ISO), -1);
    assert_int_equal(parse_ok("9999-12-31T23:59:59.999Z", SL_TS_ISO), 253402300799999LL);
    assert_int_equal(parse_ok("2025-01-01T00:00:00Z", SL_TS_ISO), 1735689600000LL);
}

static void iso_fractional_seconds(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2025-06-11T12:00:00.5Z", SL_TS_ISO), T_2025_06_11_NOON + 500);
    assert_int_equal(parse_ok("2025-06-11T12:00:00.05Z", SL_TS_ISO), T_2025_06_11_NOON + 50);
    assert_int_equal(parse_ok("2025-06-11T12:00:00.123Z", SL_TS_ISO), T_2025_06_11_NOON + 123);
    /* digits past milliseconds are truncated, not rounded */
    assert_int_equal(parse_ok("2025-06-11T12:00:00.123999999Z", SL_TS_ISO),
                     T_2025_06_11_NOON + 123);
    /* a comma is ISO 8601's other decimal sign */
    assert_int_equal(parse_ok("2025-06-11T12:00:00,25Z", SL_TS_ISO), T_2025_06_11_NOON + 250);
    assert_int_equal(parse_ok("2000-02-29T12:34:56.789Z", SL_TS_ISO), 951827696789LL);
    parse_bad("2025-06-11T12:00:00.Z", SL_TS_ISO, "empty fraction");
}

static void iso_zones_and_offsets(void **state)
{
    (void)state;
    /* 12:00 at +05:30 is 06:30Z */
    assert_int_equal(parse_ok("2025-06-11T12:00:00+05:30", SL_TS_ISO), 1749623400000LL);
    assert_int_equal(parse_ok("2025-06-11T12:00:00+0530", SL_TS_ISO), 1749623400000LL);
    /* 12:00 at -08:00 is 20:00Z */
    assert_int_equal(parse_ok("2025-06-11T12:00:00-08:00", SL_TS_ISO), 1749672000000LL);
    assert_int_equal(parse_ok("2025-06-11T12:00:00-0800", SL_TS_ISO), 1749672000000LL);
    assert_int_equal(parse_ok("2025-06-11T12:00:00-08", SL_TS_ISO), 1749672000000LL);
    assert_int_equal(parse_ok("2025-06-11T12:00:00+00:00", SL_TS_ISO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("2025-06-11T12:00:00-00:00", SL_TS_ISO), T_2025_06_11_NOON);
    /* an offset can move the instant across midnight into the previous day */
    assert_int_equal(parse_ok("2025-06-12T01:00:00+02:00", SL_TS_ISO), 1749686400000LL - 3600000LL);
    assert_int_equal(parse_ok("2025-06-11T12:00:00.250+01:00", SL_TS_ISO),
                     T_2025_06_11_NOON - 3600000LL + 250);

    parse_bad("2025-06-11T12:00:00+5", SL_TS_ISO, "zone offset");
    parse_bad("2025-06-11T12:00:00+05:3", SL_TS_ISO, "zone offset");
    parse_bad("2025-06-11T12:00:00+24:00", SL_TS_ISO, "zone offset out of range");
    parse_bad("2025-06-11T12:00:00+05:60", SL_TS_ISO, "zone offset out of range");
    parse_bad("2025-06-11T12:00:00-", SL_TS_ISO, "zone offset");
    parse_bad("2025-06-11T12:00:00 +05:00", SL_TS_ISO, "trailing characters");
    parse_bad("2025-06-11T12:00:00ZZ", SL_TS_ISO, "trailing characters");
    parse_bad("2025-06-11T12:00:00 UTC", SL_TS_ISO, "trailing characters");
}

/* A zone offset that ends in a colon ("+05:") is not ISO 8601. */
static void iso_offset_with_dangling_colon_is_rejected(void **state)
{
    (void)state;
    parse_bad("2025-06-11T12:00:00+05:", SL_TS_ISO, "zone offset");
}

static void iso_leap_days(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z", SL_TS_ISO), 1709164800000LL);
    assert_int_equal(parse_ok("2024-02-29", SL_TS_ISO), 1709164800000LL);
    /* the day after 2024-02-29 is 2024-03-01 */
    assert_int_equal(parse_ok("2024-03-01", SL_TS_ISO), 1709164800000LL + 86400000LL);
    assert_int_equal(parse_ok("2000-02-29", SL_TS_ISO), 951782400000LL);
    parse_bad("2023-02-29", SL_TS_ISO, "day 29 out of range for 2023-02");
    parse_bad("2023-02-29T00:00:00Z", SL_TS_ISO, "day 29 out of range for 2023-02");
    /* 1900 is divisible by 100 and not by 400: not a leap year */
    parse_bad("1900-02-29", SL_TS_ISO, "day 29 out of range for 1900-02");
    assert_int_equal(parse_ok("1900-03-01", SL_TS_ISO), -2203891200000LL);
    parse_bad("2024-02-30", SL_TS_ISO, "day 30 out of range");
}

static void iso_field_ranges(void **state)
{
    (void)state;
    parse_bad("2025-13-01", SL_TS_ISO, "month 13 out of range");
    parse_bad("2025-00-01", SL_TS_ISO, "month 0 out of range");
    parse_bad("2025-06-00", SL_TS_ISO, "day 0 out of range");
    parse_bad("2025-06-31", SL_TS_ISO, "day 31 out of range for 2025-06");
    assert_int_equal(parse_ok("2025-07-31", SL_TS_ISO), 1753920000000LL);
    parse_bad("2025-06-11T24:00:00Z", SL_TS_ISO, "out of range");
    parse_bad("2025-06-11T12:60:00Z", SL_TS_ISO, "out of range");
    parse_bad("2025-06-11T12:00:61Z", SL_TS_ISO, "out of range");
    /* a leap second folds into the next second */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z", SL_TS_ISO),
                     parse_ok("2017-01-01T00:00:00Z", SL_TS_ISO));
}

static void iso_garbage(void **state)
{
    (void)state;
    parse_bad("", SL_TS_ISO, "empty");
    parse_bad("abc", SL_TS_ISO, "not ISO 8601");
    parse_bad("2025", SL_TS_ISO, "not ISO 8601");
    parse_bad("2025-6-11", SL_TS_ISO, "not ISO 8601");
    parse_bad("2025/06/11", SL_TS_ISO, "not ISO 8601");
    parse_bad("25-06-11", SL_TS_ISO, "not ISO 8601");
    parse_bad("2025-06-11T", SL_TS_ISO, "hh:mm");
    parse_bad("2025-06-11T12", SL_TS_ISO, "hh:mm");
    parse_bad("2025-06-11T1200", SL_TS_ISO, "hh:mm");
    parse_bad("2025-06-11T12:00:0", SL_TS_ISO, "seconds are not two digits");
    parse_bad("2025-06-11junk", SL_TS_ISO, "trailing characters");
    parse_bad("2025-06-11T12:00:00Zjunk", SL_TS_ISO, "trailing characters");
    parse_bad("1749643200000", SL_TS_ISO, "not ISO 8601");
    /* the length bounds the parse: a valid prefix with the rest cut off */
    int64_t ms = 0;
    assert_int_equal(sl_time_parse("2025-06-11T12:00:00Zjunk", 20, SL_TS_ISO, &ms, NULL), 0);
    assert_int_equal(ms, T_2025_06_11_NOON);
    assert_int_equal(sl_time_parse("2025-06-11T12:00:00Z", 9, SL_TS_ISO, &ms, NULL), SL_EPARSE);
}

static void millis_format(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1749643200000", SL_TS_MILLIS), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("0", SL_TS_MILLIS), 0);
    assert_int_equal(parse_ok("-1500", SL_TS_MILLIS), -1500);
    assert_int_equal(parse_ok("+42", SL_TS_MILLIS), 42);
    /* sub-millisecond fractions are truncated */
    assert_int_equal(parse_ok("1749643200000.9", SL_TS_MILLIS), T_2025_06_11_NOON);
    /* small values stay millis: no guessing in an explicit format */
    assert_int_equal(parse_ok("1749643200", SL_TS_MILLIS), 1749643200LL);
    parse_bad("12a", SL_TS_MILLIS, "trailing characters");
    parse_bad("1e3", SL_TS_MILLIS, "trailing characters");
    parse_bad("abc", SL_TS_MILLIS, "not a number");
    parse_bad("-", SL_TS_MILLIS, "not a number");
    parse_bad(".5", SL_TS_MILLIS, "not a number");
    parse_bad(" 5", SL_TS_MILLIS, "not a number");
    parse_bad("2025-06-11T12:00:00Z", SL_TS_MILLIS, "trailing characters");
    parse_bad("99999999999999999999", SL_TS_MILLIS, "out of range");
}

static void seconds_format(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1749643200", SL_TS_SECONDS), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("1749643200.25", SL_TS_SECONDS), T_2025_06_11_NOON + 250);
    assert_int_equal(parse_ok("1749643200.0019", SL_TS_SECONDS), T_2025_06_11_NOON + 1);
    assert_int_equal(parse_ok("-1.5", SL_TS_SECONDS), -1500);
    assert_int_equal(parse_ok("0.001", SL_TS_SECONDS), 1);
    parse_bad("1749643200s", SL_TS_SECONDS, "trailing characters");
    parse_bad("", SL_TS_SECONDS, "empty");
    parse_bad("99999999999999999999", SL_TS_SECONDS, "out of range");
}

static void auto_format(void **state)
{
    (void)state;
    /* digits only: seconds up to 1e11, millis above */
    assert_int_equal(parse_ok("1749643200", SL_TS_AUTO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("1749643200000", SL_TS_AUTO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("1749643200.5", SL_TS_AUTO), T_2025_06_11_NOON + 500);
    assert_int_equal(parse_ok("1749643200000.5", SL_TS_AUTO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("100000000000", SL_TS_AUTO), 100000000000000LL);
    assert_int_equal(parse_ok("100000000001", SL_TS_AUTO), 100000000001LL);
    assert_int_equal(parse_ok("0", SL_TS_AUTO), 0);
    assert_int_equal(parse_ok("-86400", SL_TS_AUTO), -86400000LL);
    /* anything else is ISO 8601 */
    assert_int_equal(parse_ok("2025-06-11T12:00:00Z", SL_TS_AUTO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("2025-06-11T14:00:00+02:00", SL_TS_AUTO), T_2025_06_11_NOON);
    assert_int_equal(parse_ok("2024-02-29", SL_TS_AUTO), 1709164800000LL);
    parse_bad("2023-02-29", SL_TS_AUTO, "day 29 out of range");
    parse_bad("12:00", SL_TS_AUTO, "not ISO 8601");
    parse_bad("1.2.3", SL_TS_AUTO, "trailing characters");
    parse_bad("1e12", SL_TS_AUTO, "not ISO 8601");
    parse_bad("-", SL_TS_AUTO, "not a number");
    parse_bad("", SL_TS_AUTO, "empty");
    parse_bad("yesterday", SL_TS_AUTO, "not ISO 8601");
}

static void format_names(void **state)
{
    (void)state;
    assert_int_equal(sl_ts_format_parse("iso"), SL_TS_ISO);
    assert_int_equal(sl_ts_format_parse("millis"), SL_TS_MILLIS);
    assert_int_equal(sl_ts_format_parse("seconds"), SL_TS_SECONDS);
    assert_int_equal(sl_ts_format_parse("auto"), SL_TS_AUTO);
    assert_int_equal(sl_ts_format_parse("ISO"), -1);
    assert_int_equal(sl_ts_format_parse(""), -1);
    assert_int_equal(sl_ts_format_parse("nanos"), -1);
    int64_t ms;
    sl_err err = {0};
    assert_int_equal(sl_time_parse("1", 1, (sl_ts_format)99, &ms, &err), SL_EINVAL);
}

static void period_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"PT5M", 300000},     {"PT1M", 60000},        {"PT1H", 3600000},
        {"P1D", 86400000},    {"P1W", 604800000},     {"PT1S", 1000},
        {"PT1.5S", 1500},     {"PT0.25S", 250},       {"PT1,5S", 1500},
        {"PT1H30M", 5400000}, {"P1DT12H", 129600000}, {"P2W3D", 1468800000},
        {"PT90M", 5400000},   {"pt5m", 300000},       {"P1DT1H1M1.001S", 90061001},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        sl_err err = {0};
        if (sl_period_parse(ok[i].s, &ms, &err) != 0) {
            fail_msg("period \"%s\" failed: %s", ok[i].s, err.msg);
        }
        if (ms != ok[i].ms) {
            fail_msg("period \"%s\": got %lld, want %lld", ok[i].s, (long long)ms,
                     (long long)ok[i].ms);
        }
    }
}

static void period_errors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *want;
    } bad[] = {
        {"5M", "does not start with P"},
        {"", "does not start with P"},
        {"P", "empty or zero"},
        {"PT", "empty or zero"},
        {"P0D", "empty or zero"},
        {"PT0S", "empty or zero"},
        {"P1Y", "calendar years and months"},
        {"P1M", "calendar years and months"},
        {"PT5X", "unknown unit"},
        {"PT5", "unknown unit"},
        {"P1H", "unknown unit"},  /* hours need the T */
        {"PT1D", "unknown unit"}, /* days go before the T */
        {"P1.5D", "fractions only for seconds"},
        {"PT1.5M", "fractions only for seconds"},
        {"PTT1M", "two T"},
        {"P-1D", "expected a number"},
        {"PT.5S", "expected a number"},
        {"P99999999999999999999D", "too long"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -7;
        sl_err err = {0};
        int rc = sl_period_parse(bad[i].s, &ms, &err);
        if (rc != SL_EPARSE) {
            fail_msg("period \"%s\": expected SL_EPARSE, got %d (ms=%lld)", bad[i].s, rc,
                     (long long)ms);
        }
        if (strstr(err.msg, bad[i].want) == NULL) {
            fail_msg("period \"%s\": reason \"%s\" lacks \"%s\"", bad[i].s, err.msg, bad[i].want);
        }
        assert_int_equal(ms, -7);
    }
}

/* A period whose value does not fit int64 milliseconds must be an error, not signed
 * overflow (20000000000 weeks is about 1.2e19 ms). */
static void period_overflow_is_rejected(void **state)
{
    (void)state;
    static const char *bad[] = {"P20000000000W", "P9000000000W9000000000W",
                                "P90000000000D90000000000D"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -7;
        sl_err err = {0};
        int rc = sl_period_parse(bad[i], &ms, &err);
        if (rc != SL_EPARSE) {
            fail_msg("period \"%s\": expected SL_EPARSE, got %d (ms=%lld)", bad[i], rc,
                     (long long)ms);
        }
    }
}

static void format_known_values(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(sl_time_format(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
    assert_string_equal(sl_time_format(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
    assert_string_equal(sl_time_format(T_2025_06_11_NOON + 7, buf, sizeof(buf)),
                        "2025-06-11T12:00:00.007Z");
    assert_string_equal(sl_time_format(1709164800000LL + 86399999LL, buf, sizeof(buf)),
                        "2024-02-29T23:59:59.999Z");
    assert_string_equal(sl_time_format(253402300799999LL, buf, sizeof(buf)),
                        "9999-12-31T23:59:59.999Z");
    assert_string_equal(sl_time_format(-2203891200000LL, buf, sizeof(buf)),
                        "1900-03-01T00:00:00.000Z");
    /* 25 bytes is enough, as documented */
    char small[25];
    assert_string_equal(sl_time_format(T_2025_06_11_NOON, small, sizeof(small)),
                        "2025-06-11T12:00:00.000Z");
}

static void format_parse_round_trip(void **state)
{
    (void)state;
    static const int64_t fixed[] = {0,
                                    -1,
                                    1,
                                    999,
                                    -86400000,
                                    951782400000LL,
                                    1709164800000LL,
                                    1709251199999LL,
                                    T_2025_06_11_NOON,
                                    253402300799999LL,
                                    -62135596800000LL /* 0001-01-01 */};
    char buf[32];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        sl_time_format(fixed[i], buf, sizeof(buf));
        assert_int_equal(parse_ok(buf, SL_TS_ISO), fixed[i]);
    }
    /* pseudo-random instants between year 1 and 9999 */
    uint64_t x = 88172645463325252ULL;
    const int64_t lo = -62135596800000LL, span = 253402300799999LL - lo;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = lo + (int64_t)(x % (uint64_t)span);
        sl_time_format(ms, buf, sizeof(buf));
        int64_t back = 0;
        sl_err err = {0};
        if (sl_time_parse(buf, strlen(buf), SL_TS_ISO, &back, &err) != 0 || back != ms) {
            fail_msg("round trip of %lld via \"%s\" gave %lld (%s)", (long long)ms, buf,
                     (long long)back, err.msg);
        }
        /* auto reads ISO text the same way */
        assert_int_equal(parse_ok(buf, SL_TS_AUTO), ms);
    }
}

static void days_from_civil_and_floor(void **state)
{
    (void)state;
    assert_int_equal(sl_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(sl_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(sl_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(sl_days_from_civil(1600, 1, 1), -135140);
    assert_int_equal(sl_time_floor(T_2025_06_11_NOON + 59999, 60000), T_2025_06_11_NOON);
    assert_int_equal(sl_time_floor(-1, 1000), -1000);
    assert_int_equal(sl_time_floor(-1000, 1000), -1000);
    assert_int_equal(sl_time_floor(-1001, 1000), -2000);
    assert_int_equal(sl_time_floor(0, 3600000), 0);
}

static void clocks_advance(void **state)
{
    (void)state;
    /* wall clock is after 2020-01-01 and the monotonic clock never goes back */
    assert_true(sl_now_ms() > 1577836800000LL);
    int64_t a = sl_mono_ns();
    int64_t b = sl_mono_ns();
    assert_true(b >= a);
    assert_true(sl_mono_ms() >= a / 1000000);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(iso_basic_forms),
    cmocka_unit_test(iso_fractional_seconds),
    cmocka_unit_test(iso_zones_and_offsets),
    cmocka_unit_test(iso_offset_with_dangling_colon_is_rejected),
    cmocka_unit_test(iso_leap_days),
    cmocka_unit_test(iso_field_ranges),
    cmocka_unit_test(iso_garbage),
    cmocka_unit_test(millis_format),
    cmocka_unit_test(seconds_format),
    cmocka_unit_test(auto_format),
    cmocka_unit_test(format_names),
    cmocka_unit_test(period_parse),
    cmocka_unit_test(period_errors),
    cmocka_unit_test(period_overflow_is_rejected),
    cmocka_unit_test(format_known_values),
    cmocka_unit_test(format_parse_round_trip),
    cmocka_unit_test(days_from_civil_and_floor),
    cmocka_unit_test(clocks_advance),
};

SL_TEST_MAIN(tests)
