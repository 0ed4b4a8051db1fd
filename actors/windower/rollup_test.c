/* Window bucketing and rollup: events fold into (minute, dims) rows with exact
 * counts, sums, min and max, compared with values computed here independently. */
#include "sl_test.h"

#include "rollup.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static sl_spec *spec;

static void make_spec(void)
{
    const char *j = "{\"name\":\"t\",\"dimensions\":[\"a\",\"b\"],\"metrics\":["
                    "{\"name\":\"s\",\"type\":\"sum\",\"field\":\"x\"},"
                    "{\"name\":\"lo\",\"type\":\"min\",\"field\":\"x\"},"
                    "{\"name\":\"hi\",\"type\":\"max\",\"field\":\"x\"}]}";
    sl_err err;
    assert_int_equal(sl_spec_parse(j, strlen(j), "t", &spec, &err), 0);
}

static void test_bucketing(void **state)
{
    make_spec();
    assert_int_equal(sl_rollup_bucket(spec, 1749643200000LL), 1749643200000LL);
    assert_int_equal(sl_rollup_bucket(spec, 1749643259999LL), 1749643200000LL);
    assert_int_equal(sl_rollup_bucket(spec, 1749643260000LL), 1749643260000LL);
    assert_int_equal(sl_rollup_bucket(spec, 0), 0);
    assert_int_equal(sl_rollup_bucket(spec, -1), -60000);
    assert_int_equal(sl_rollup_bucket(spec, -60000), -60000);
    assert_int_equal(sl_rollup_bucket(spec, -60001), -120000);
    sl_spec_free(spec);
}

typedef struct expect {
    int64_t bucket;
    char a[8], b[8];
    int bnull;
    uint64_t count;
    double s, lo, hi;
} expect;

static void test_rollup_exact(void **state)
{
    make_spec();
    sl_rollup *r = sl_rollup_new(spec);
    enum { N = 20000 };
    static expect exp[4 * 3 * 4];
    int nexp = 0;
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        int minute = (int)(seed >> 8) % 4, a = (int)(seed >> 12) % 3, b = (int)(seed >> 16) % 4;
        int has_x = (seed >> 20) % 5 != 0;
        double x = (double)((seed >> 4) % 1000) / 4.0;
        char as[8], bs[8];
        snprintf(as, sizeof(as), "a%d", a);
        snprintf(bs, sizeof(bs), "b%d", b);
        sl_event ev = {.ts_ms = 1749643200000LL + minute * 60000 + (int)(seed % 60000),
                       .ndims = 2, .nfields = 1};
        ev.dims[0] = (sl_str){as, strlen(as)};
        ev.dims[1] = b == 3 ? (sl_str){NULL, 0} : (sl_str){bs, strlen(bs)};
        ev.has_field[0] = has_x;
        ev.fields[0] = x;
        sl_rollup_add(r, &ev);
        /* Independent expectation: linear search over a list. */
        int64_t bucket = 1749643200000LL + minute * 60000;
        int k = 0;
        for (; k < nexp; k++) {
            if (exp[k].bucket == bucket && strcmp(exp[k].a, as) == 0 && exp[k].bnull == (b == 3) &&
                (b == 3 || strcmp(exp[k].b, bs) == 0)) {
                break;
            }
        }
        if (k == nexp) {
            memset(&exp[k], 0, sizeof(exp[k]));
            exp[k].bucket = bucket;
            strcpy(exp[k].a, as);
            strcpy(exp[k].b, bs);
            exp[k].bnull = b == 3;
            exp[k].lo = INFINITY;
            exp[k].hi = -INFINITY;
            nexp++;
        }
        exp[k].count++;
        if (has_x) {
            exp[k].s += x;
            exp[k].lo = fmin(exp[k].lo, x);
            exp[k].hi = fmax(exp[k].hi, x);
        }
    }
    assert_int_equal(sl_rollup_rows(r), (size_t)nexp);
    sl_buf blob;
    sl_buf_init(&blob);
    int64_t minb, maxb;
    sl_rollup_drain(r, &blob, &minb, &maxb);
    assert_int_equal(minb, 1749643200000LL);
    assert_int_equal(maxb, 1749643200000LL + 3 * 60000);
    assert_int_equal(sl_rollup_rows(r), 0);
    sl_rows_iter it;
    sl_row row;
    sl_rows_iter_init(&it, blob.data, blob.len);
    int seen = 0;
    uint64_t total = 0;
    while (sl_rows_next(&it, &row, NULL) == 1) {
        int k = 0;
        for (; k < nexp; k++) {
            if (exp[k].bucket == row.bucket_ms && sl_str_eq(row.dims[0], exp[k].a) &&
                (exp[k].bnull ? row.dims[1].p == NULL : sl_str_eq(row.dims[1], exp[k].b))) {
                break;
            }
        }
        assert_true(k < nexp);
        assert_int_equal(row.count, exp[k].count);
        assert_true(row.values[0] == exp[k].s);
        assert_true(row.values[1] == exp[k].lo);
        assert_true(row.values[2] == exp[k].hi);
        total += row.count;
        seen++;
    }
    assert_int_equal(seen, nexp);
    assert_int_equal(total, N);
    /* The table is reusable after a drain. */
    sl_event ev = {.ts_ms = 5, .ndims = 2, .nfields = 1};
    ev.dims[0] = (sl_str){"q", 1};
    ev.dims[1] = (sl_str){"", 0};
    sl_rollup_add(r, &ev);
    sl_rollup_add(r, &ev);
    assert_int_equal(sl_rollup_rows(r), 1);
    sl_buf_fini(&blob);
    sl_rollup_free(r);
    sl_spec_free(spec);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bucketing),
    cmocka_unit_test(test_rollup_exact),
};

SL_TEST_MAIN(tests)
