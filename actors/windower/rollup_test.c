/* Window bucketing and rollup: events fold into (minute, dims) rows with exact
 * counts, sums, min and max, compared with values computed here independently; sketch
 * metrics: each row's sketches are those of its own values (exact counts while sparse),
 * small rows stay small, order does not matter, and drained sketches are reused clean. */
#include "sl_test.h"

#include "hash.h"
#include "rollup.h"
#include "sketch.h"

#include <stdlib.h>

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
                       .ndims = 2,
                       .nfields = 1};
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

/* ---- sketch metrics ------------------------------------------------------------------- */

#define SK_ROWS 6 /* rows: bucket 0..2 x a in {"a0", "a1"} */
#define SK_EVENTS 24000

typedef struct sk_event {
    int row;
    int user;   /* -1: no user_id */
    double lat; /* < 0 (only -1 here): no latency */
} sk_event;

static sl_spec *sk_spec(void)
{
    const char *j = "{\"name\":\"t\",\"dimensions\":[\"a\"],\"metrics\":["
                    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
                    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user\"},"
                    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"lat\"}]}";
    sl_spec *sp;
    sl_err err;
    assert_int_equal(sl_spec_parse(j, strlen(j), "t", &sp, &err), 0);
    return sp;
}

static uint64_t user_hash(int u)
{
    char s[24];
    snprintf(s, sizeof(s), "user-%d", u);
    return sl_hash64(s, strlen(s));
}

static void sk_add(sl_rollup *r, const sk_event *e)
{
    static const char *as[2] = {"a0", "a1"};
    sl_event ev = {.ts_ms = (int64_t)(e->row / 2) * 60000, .ndims = 1, .nfields = 1, .nhashes = 1};
    ev.dims[0] = (sl_str){as[e->row % 2], 2};
    ev.has_field[0] = e->lat >= 0;
    ev.fields[0] = e->lat;
    ev.has_hash[0] = e->user >= 0;
    ev.hashes[0] = e->user >= 0 ? user_hash(e->user) : 0;
    sl_rollup_add(r, &ev);
}

/* Per row (by bucket and dim): its serialized sketches, copied out of a drained blob. */
typedef struct sk_got {
    uint64_t count;
    double sum;
    size_t hlen, dlen;
    char h[SL_HLL_DENSE_BYTES], d[20000];
} sk_got;

static void sk_drain(sl_rollup *r, sk_got *got)
{
    sl_buf blob;
    sl_buf_init(&blob);
    int64_t lo, hi;
    sl_rollup_drain(r, &blob, &lo, &hi);
    sl_rows_iter it;
    sl_row row;
    sl_rows_iter_init(&it, blob.data, blob.len);
    memset(got, 0, SK_ROWS * sizeof(*got));
    int n = 0;
    sl_err err = {0};
    while (sl_rows_next(&it, &row, &err) == 1) {
        int k = (int)(row.bucket_ms / 60000) * 2 + (row.dims[0].p[1] - '0');
        assert_true(k >= 0 && k < SK_ROWS);
        got[k].count = row.count;
        got[k].sum = row.values[0];
        assert_true(row.values[1] == 0 && row.values[2] == 0);
        assert_null(row.sketches[0].p);
        got[k].hlen = row.sketches[1].len;
        got[k].dlen = row.sketches[2].len;
        assert_true(got[k].hlen <= sizeof(got[k].h) && got[k].dlen <= sizeof(got[k].d));
        if (got[k].hlen > 0) {
            memcpy(got[k].h, row.sketches[1].p, got[k].hlen);
        }
        if (got[k].dlen > 0) {
            memcpy(got[k].d, row.sketches[2].p, got[k].dlen);
        }
        n++;
    }
    assert_int_equal(sl_rollup_rows(r), 0);
    assert_int_equal(sl_rollup_sketch_bytes(r), 0);
    sl_buf_fini(&blob);
    (void)n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Each row's sketches are those of its own values, built here by feeding each row's
 * values to its own sketch; distinct counts are checked against an exact count (sorted
 * unique hashes) too. Row 0 sees one user, row 1 none, row 5 ~3000 (dense). */
static void test_rollup_sketches(void **state)
{
    sl_spec *sp = sk_spec();
    static sk_event evs[SK_EVENTS];
    unsigned seed = 99;
    for (int i = 0; i < SK_EVENTS; i++) {
        seed = seed * 1103515245u + 12345u;
        sk_event *e = &evs[i];
        e->row = i < 50 ? 0 : i < 60 ? 1 : 2 + (int)((seed >> 8) % 4);
        /* users skewed: most events from a few hundred users, row 5 from thousands */
        int span = e->row == 5 ? 4000 : ((seed >> 4) % 4 == 0 ? 1500 : 200);
        e->user = e->row == 0              ? 7
                  : e->row == 1            ? -1
                  : (seed >> 12) % 10 == 0 ? -1
                                           : (int)((seed >> 14) % (unsigned)span);
        e->lat = (seed >> 20) % 9 == 0 ? -1 : (double)((seed >> 3) % 5000) / 8.0;
        if (e->row == 1) {
            e->lat = -1;
        }
    }
    sl_rollup *r = sl_rollup_new(sp);
    for (int i = 0; i < SK_EVENTS; i++) {
        sk_add(r, &evs[i]);
    }
    assert_true(sl_rollup_sketch_bytes(r) >= SL_HLL_REGISTERS); /* row 5 is dense */
    static sk_got got[SK_ROWS], again[SK_ROWS];
    sk_drain(r, got);

    /* independent expectations, row by row */
    static uint64_t hs[SK_EVENTS];
    for (int k = 0; k < SK_ROWS; k++) {
        sl_hll *h = sl_hll_new();
        sl_dds *d = sl_dds_new();
        int nh = 0;
        uint64_t count = 0;
        double sum = 0;
        for (int i = 0; i < SK_EVENTS; i++) {
            if (evs[i].row != k) {
                continue;
            }
            count++;
            if (evs[i].user >= 0) {
                hs[nh++] = user_hash(evs[i].user);
                sl_hll_add_hash(h, hs[nh - 1]);
            }
            if (evs[i].lat >= 0) {
                sum += evs[i].lat;
                assert_int_equal(sl_dds_add(d, evs[i].lat, NULL), 0);
            }
        }
        qsort(hs, (size_t)nh, sizeof(uint64_t), cmp_u64);
        int distinct = 0;
        for (int i = 0; i < nh; i++) {
            distinct += i == 0 || hs[i] != hs[i - 1];
        }
        assert_int_equal(got[k].count, count);
        assert_true(got[k].sum == sum);
        sl_buf want;
        sl_buf_init(&want);
        if (distinct == 0) {
            assert_int_equal(got[k].hlen, 0); /* no user: nil, not an empty sketch */
        } else {
            sl_hll_serialize(h, &want);
            assert_int_equal(got[k].hlen, want.len);
            assert_memory_equal(got[k].h, want.data, want.len);
            sl_hll *back;
            assert_int_equal(sl_hll_deserialize(got[k].h, got[k].hlen, &back, NULL), 0);
            if (sl_hll_is_sparse(back)) {
                assert_true(sl_hll_estimate(back) == distinct);
            } else {
                assert_true(fabs(sl_hll_estimate(back) - distinct) / distinct < 0.03);
            }
            sl_hll_free(back);
        }
        sl_buf_reset(&want);
        if (sl_dds_count(d) == 0) {
            assert_int_equal(got[k].dlen, 0);
        } else {
            sl_dds_serialize(d, &want);
            assert_int_equal(got[k].dlen, want.len);
            assert_memory_equal(got[k].d, want.data, want.len);
        }
        sl_buf_fini(&want);
        if (k == 0) {
            assert_int_equal(distinct, 1);
            assert_true(got[0].hlen <= 16); /* one user: a dozen bytes, not kilobytes */
        }
        if (k == 5) {
            assert_true(distinct > SL_HLL_SPARSE_MAX);
            assert_int_equal(got[5].hlen, SL_HLL_DENSE_BYTES);
        }
        sl_hll_free(h);
        sl_dds_free(d);
    }

    /* The same events in reverse order, into the same (drained, reused) table: the same
     * rows and bytes, so pooled sketches carry nothing over. */
    for (int i = SK_EVENTS - 1; i >= 0; i--) {
        sk_add(r, &evs[i]);
    }
    sk_drain(r, again);
    for (int k = 0; k < SK_ROWS; k++) {
        assert_int_equal(again[k].count, got[k].count);
        assert_int_equal(again[k].hlen, got[k].hlen);
        assert_memory_equal(again[k].h, got[k].h, got[k].hlen);
        assert_int_equal(again[k].dlen, got[k].dlen);
        assert_memory_equal(again[k].d, got[k].d, got[k].dlen);
    }
    /* Only row 0's event again: a single user, a single latency. */
    sk_add(r, &evs[0]);
    sk_drain(r, again);
    assert_int_equal(again[0].count, 1);
    assert_true(again[0].hlen > 0 && again[0].hlen <= 16);
    sl_rollup_free(r);
    sl_spec_free(sp);
}

/* A table freed while it holds rows with sketches frees them (ASan checks). */
static void test_rollup_free_with_sketches(void **state)
{
    sl_spec *sp = sk_spec();
    sl_rollup *r = sl_rollup_new(sp);
    for (int i = 0; i < 3000; i++) {
        sk_event e = {.row = i % SK_ROWS, .user = i, .lat = i};
        sk_add(r, &e);
    }
    assert_int_equal(sl_rollup_rows(r), SK_ROWS);
    assert_true(sl_rollup_sketch_bytes(r) > 0);
    sl_rollup_free(r);
    sl_spec_free(sp);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bucketing),
    cmocka_unit_test(test_rollup_exact),
    cmocka_unit_test(test_rollup_sketches),
    cmocka_unit_test(test_rollup_free_with_sketches),
};

SL_TEST_MAIN(tests)
