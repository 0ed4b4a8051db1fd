/* Segment store round trip: merged rows read back with exact sums, min/max, counts,
 * dictionary ids, time bounds, stats, offsets and map growth. */
#include "sl_test.h"

#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

static char *tmpdir(void)
{
    char *d = strdup("/tmp/sl-store-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

typedef struct collected {
    int n;
    sl_store_row rows[64];
} collected;

static int collect(void *arg, const sl_store_row *row)
{
    collected *c = arg;
    c->rows[c->n++] = *row;
    return 0;
}

static sl_row mkrow(int64_t bucket, const char *a, const char *b, uint64_t count, double s,
                    double lo, double hi)
{
    sl_row r = {.bucket_ms = bucket, .ndims = 2, .count = count, .nvalues = 3};
    r.dims[0] = a ? (sl_str){a, strlen(a)} : (sl_str){NULL, 0};
    r.dims[1] = b ? (sl_str){b, strlen(b)} : (sl_str){NULL, 0};
    r.values[0] = s;
    r.values[1] = lo;
    r.values[2] = hi;
    return r;
}

static void test_round_trip(void **state)
{
    make_spec();
    char *dir = tmpdir();
    sl_store *st, *ro;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, dir, false, 1, 64, &err), 0);
    sl_store_txn *t;
    int64_t h = 1749643200000LL; /* 2025-06-11T12:00Z */
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    sl_row r1 = mkrow(h, "x", "y", 3, 10, 1, 7);
    sl_row r2 = mkrow(h, "x", NULL, 1, 0, INFINITY, -INFINITY);
    sl_row r3 = mkrow(h + 3600000, "z", "y", 2, 4, 2, 2);
    sl_row r4 = mkrow(-60000, "old", "y", 1, 1, 1, 1); /* before 1970 */
    assert_int_equal(sl_store_merge_row(t, spec, &r1, &err), 0);
    assert_int_equal(sl_store_merge_row(t, spec, &r2, &err), 0);
    assert_int_equal(sl_store_merge_row(t, spec, &r3, &err), 0);
    assert_int_equal(sl_store_merge_row(t, spec, &r4, &err), 0);
    assert_int_equal(sl_store_set_offset(t, "t", 3, 42, &err), 0);
    assert_int_equal(sl_store_commit(t, &err), 0);
    /* A second delta into the same row merges. */
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    sl_row r5 = mkrow(h, "x", "y", 2, 5, 0.5, 3);
    assert_int_equal(sl_store_merge_row(t, spec, &r5, &err), 0);
    int64_t off;
    assert_int_equal(sl_store_get_offset(t, "t", 3, &off, &err), 0);
    assert_int_equal(off, 42);
    assert_int_equal(sl_store_get_offset(t, "t", 4, &off, &err), 0);
    assert_int_equal(off, 0);
    assert_int_equal(sl_store_commit(t, &err), 0);

    assert_int_equal(sl_store_open(&ro, dir, true, 1, 64, &err), 0);
    sl_store_reader *r;
    assert_int_equal(sl_store_read_begin(ro, &r, &err), 0);
    collected c = {0};
    assert_int_equal(sl_store_scan(r, spec, h, h + 60000, collect, &c, &err), 0);
    assert_int_equal(c.n, 2);
    /* Key order: dims ids x=1,y=1 vs x=1,null=0: the null row sorts first. */
    assert_int_equal(c.rows[0].dim_ids[1], 0);
    assert_int_equal(c.rows[0].count, 1);
    assert_int_equal(c.rows[1].count, 5);
    assert_true(c.rows[1].values[0] == 15);
    assert_true(c.rows[1].values[1] == 0.5);
    assert_true(c.rows[1].values[2] == 7);
    assert_int_equal(c.rows[1].bucket_ms, h);
    sl_str s;
    assert_int_equal(sl_store_dict_get(r, spec, 0, c.rows[1].dim_ids[0], &s, &err), 0);
    assert_true(sl_str_eq(s, "x"));
    uint32_t id, n;
    assert_int_equal(sl_store_dict_find(r, spec, 1, "y", 1, &id, &err), 0);
    assert_int_equal(id, c.rows[1].dim_ids[1]);
    assert_int_equal(sl_store_dict_find(r, spec, 1, "nope", 4, &id, &err), SL_ENOTFOUND);
    assert_int_equal(sl_store_dict_size(r, spec, 0, &n, &err), 0);
    assert_int_equal(n, 3); /* x, z, old */
    /* Whole range, including before 1970. */
    c.n = 0;
    assert_int_equal(sl_store_scan(r, spec, -86400000, h + 7200000, collect, &c, &err), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.rows[0].bucket_ms, -60000);
    /* Unaligned bounds: [h+1, h+60001) contains no bucket start but h+60000. */
    c.n = 0;
    assert_int_equal(sl_store_scan(r, spec, h + 1, h + 60001, collect, &c, &err), 0);
    assert_int_equal(c.n, 0);
    int64_t lo, hi;
    assert_int_equal(sl_store_time_bounds(r, spec, &lo, &hi, &err), 0);
    assert_int_equal(lo, -60000);
    assert_int_equal(hi, h + 3600000);
    uint64_t rows, events, segs;
    assert_int_equal(sl_store_stats(r, spec, &rows, &events, &segs, &err), 0);
    assert_int_equal(rows, 4);
    assert_int_equal(events, 3 + 1 + 2 + 1 + 2);
    assert_int_equal(segs, 3);
    sl_store_read_end(r);
    sl_store_close(ro);
    sl_store_close(st);
    sl_spec_free(spec);
    rm_rf(dir);
    free(dir);
}

static void test_map_grows_until_max(void **state)
{
    make_spec();
    char *dir = tmpdir();
    sl_store *st;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, dir, false, 1, 4, &err), 0);
    char a[64];
    int written = 0, grows = 0, full = 0;
    /* Write distinct rows one transaction per 1000 until the 4 MiB maximum stops us. */
    for (int batch = 0; batch < 200 && !full; batch++) {
        for (;;) {
            sl_store_txn *t;
            assert_int_equal(sl_store_begin(st, &t, &err), 0);
            int rc = 0;
            for (int i = 0; i < 1000 && rc == 0; i++) {
                snprintf(a, sizeof(a), "value-%d-%d", batch, i);
                sl_row r = mkrow(60000LL * i, a, "b", 1, 1, 1, 1);
                rc = sl_store_merge_row(t, spec, &r, &err);
            }
            if (rc == 0) {
                rc = sl_store_commit(t, &err);
            }
            if (rc == SL_ENOSPC) {
                if (sl_store_grow(st, &err) == 0) {
                    grows++;
                    continue;
                }
                assert_non_null(strstr(err.msg, "max_map_size_mb"));
                full = 1;
                break;
            }
            assert_int_equal(rc, 0);
            written += 1000;
            break;
        }
    }
    assert_true(full);
    assert_int_equal(grows, 2); /* 1 -> 2 -> 4 MiB */
    /* What was committed before the map filled is all there. */
    sl_store_reader *r;
    assert_int_equal(sl_store_read_begin(st, &r, &err), 0);
    uint64_t rows, events, segs;
    assert_int_equal(sl_store_stats(r, spec, &rows, &events, &segs, &err), 0);
    assert_int_equal(rows, (uint64_t)written);
    assert_int_equal(events, (uint64_t)written);
    sl_store_read_end(r);
    sl_store_close(st);
    sl_spec_free(spec);
    rm_rf(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_map_grows_until_max),
};

SL_TEST_MAIN(tests)
