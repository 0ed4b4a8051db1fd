/* Segment store round trip: merged rows read back with exact sums, min/max, counts,
 * dictionary ids, time bounds, stats, offsets and map growth; sketch metrics merge across
 * merge_row calls into the bytes of one sketch fed every value, rows written without
 * sketches (or before the spec had them) still read, and bad sketches are refused. */
#include "sl_test.h"

#include "sketch.h"
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

/* ---- sketch metrics ----------------------------------------------------------------- */

static sl_spec *parse_spec(const char *j)
{
    sl_spec *sp;
    sl_err err;
    if (sl_spec_parse(j, strlen(j), "t", &sp, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    return sp;
}

/* The old spec (value metrics only) and the same datasource with sketch metrics added:
 * one in the middle of the list, one at the end. */
#define SPEC_OLD                                                                                   \
    "{\"name\":\"sk\",\"dimensions\":[\"a\"],\"metrics\":["                                        \
    "{\"name\":\"s\",\"type\":\"sum\",\"field\":\"x\"},{\"name\":\"hi\",\"type\":\"max\","         \
    "\"field\":\"x\"}]}"
#define SPEC_NEW                                                                                   \
    "{\"name\":\"sk\",\"dimensions\":[\"a\"],\"metrics\":["                                        \
    "{\"name\":\"s\",\"type\":\"sum\",\"field\":\"x\"},"                                           \
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"u\"},"                                  \
    "{\"name\":\"hi\",\"type\":\"max\",\"field\":\"x\"},"                                          \
    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"l\"}]}"
#define SPEC_NEWER                                                                                 \
    "{\"name\":\"sk\",\"dimensions\":[\"a\"],\"metrics\":["                                        \
    "{\"name\":\"s\",\"type\":\"sum\",\"field\":\"x\"},"                                           \
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"u\"},"                                  \
    "{\"name\":\"hi\",\"type\":\"max\",\"field\":\"x\"},"                                          \
    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"l\"},"                                   \
    "{\"name\":\"pages\",\"type\":\"distinct\",\"field\":\"p\"}]}"

/* A row of SPEC_NEW whose sketches are serialized into bufs (kept alive by the caller). */
static sl_row sk_row(int64_t bucket, const char *a, uint64_t count, double s, double hi,
                     const sl_hll *h, const sl_dds *d, sl_buf *hb, sl_buf *db)
{
    sl_row r = {.bucket_ms = bucket, .ndims = 1, .count = count, .nvalues = 4};
    r.dims[0] = (sl_str){a, strlen(a)};
    r.values[0] = s;
    r.values[2] = hi;
    sl_buf_reset(hb);
    sl_buf_reset(db);
    if (h != NULL) {
        sl_hll_serialize(h, hb);
        r.sketches[1] = (sl_str){hb->data, hb->len};
    }
    if (d != NULL) {
        sl_dds_serialize(d, db);
        r.sketches[3] = (sl_str){db->data, db->len};
    }
    return r;
}

/* sk_row with the sketches of one user "u1" and one latency value v. */
static sl_row one_user_row(int64_t bucket, const char *a, uint64_t count, double s, double hi,
                           double v, sl_buf *hb, sl_buf *db)
{
    sl_hll *h = sl_hll_new();
    sl_dds *d = sl_dds_new();
    sl_hll_add(h, "u1", 2);
    assert_int_equal(sl_dds_add(d, v, NULL), 0);
    sl_row r = sk_row(bucket, a, count, s, hi, h, d, hb, db);
    sl_hll_free(h);
    sl_dds_free(d);
    return r;
}

static int merge_one(sl_store *st, const sl_spec *sp, const sl_row *r)
{
    sl_store_txn *t;
    sl_err err = {0};
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    int rc = sl_store_merge_row(t, sp, r, &err);
    if (rc == 0) {
        rc = sl_store_commit(t, &err);
    }
    return rc;
}

static int scan_all(sl_store *st, const sl_spec *sp, collected *c, sl_store_reader **r)
{
    sl_err err = {0};
    assert_int_equal(sl_store_read_begin(st, r, &err), 0);
    c->n = 0;
    return sl_store_scan(*r, sp, 0, INT64_MAX / 2, collect, c, &err);
}

/* Three deltas into one row, in separate merge_row calls and transactions: the stored
 * sketches are byte for byte those of one sketch fed every value, whether the union
 * stays sparse (250 users) or turns dense (5000); a delta without sketches leaves them. */
static void test_sketches_merge_across_merge_row_calls(void **state)
{
    sl_spec *sp = parse_spec(SPEC_NEW);
    char *dir = tmpdir();
    sl_store *st;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, dir, false, 1, 64, &err), 0);
    sl_buf hb, db;
    sl_buf_init(&hb);
    sl_buf_init(&db);
    static const int users[2] = {250, 5000};
    for (int round = 0; round < 2; round++) {
        const char *dim = round == 0 ? "sparse" : "dense";
        int nu = users[round];
        sl_hll *all_h = sl_hll_new(), *h = sl_hll_new();
        sl_dds *all_d = sl_dds_new(), *d = sl_dds_new();
        char u[32];
        /* part p sees users [p * nu/3 - 10, (p+1) * nu/3): overlapping ranges, and
         * latencies 1 + (i % 997) / 3 */
        for (int p = 0; p < 3; p++) {
            sl_hll_clear(h);
            sl_dds_clear(d);
            int lo = p * nu / 3 - (p > 0 ? 10 : 0), hi = (p + 1) * nu / 3;
            for (int i = lo; i < hi; i++) {
                snprintf(u, sizeof(u), "user-%d", i);
                sl_hll_add(h, u, strlen(u));
                sl_hll_add(all_h, u, strlen(u));
                double v = 1 + (i % 997) / 3.0;
                assert_int_equal(sl_dds_add(d, v, NULL), 0);
                assert_int_equal(sl_dds_add(all_d, v, NULL), 0);
            }
            sl_row r = sk_row(60000, dim, (uint64_t)(hi - lo), 1, p, h, d, &hb, &db);
            assert_int_equal(merge_one(st, sp, &r), 0);
        }
        /* a delta of the row with no sketch data (events without user or latency) */
        sl_row r = sk_row(60000, dim, 2, 0.5, -1, NULL, NULL, &hb, &db);
        assert_int_equal(merge_one(st, sp, &r), 0);

        collected c;
        sl_store_reader *rd;
        assert_int_equal(scan_all(st, sp, &c, &rd), 0);
        const sl_store_row *got = NULL;
        for (int i = 0; i < c.n; i++) {
            sl_str s;
            assert_int_equal(sl_store_dict_get(rd, sp, 0, c.rows[i].dim_ids[0], &s, &err), 0);
            got = sl_str_eq(s, dim) ? &c.rows[i] : got;
        }
        assert_non_null(got);
        int total = nu + 20; /* the 10-user overlaps of parts 1 and 2 count twice */
        assert_int_equal(got->count, (uint64_t)total + 2);
        assert_true(got->values[0] == 3.5);
        assert_true(got->values[2] == 2);
        assert_true(got->values[1] == 0 && got->values[3] == 0);
        assert_null(got->sketches[0].p);
        assert_null(got->sketches[2].p);
        sl_buf want;
        sl_buf_init(&want);
        sl_hll_serialize(all_h, &want);
        assert_int_equal(got->sketches[1].len, want.len);
        assert_memory_equal(got->sketches[1].p, want.data, want.len);
        assert_int_equal(sl_hll_is_sparse(all_h), round == 0);
        sl_hll *back;
        assert_int_equal(sl_hll_deserialize(got->sketches[1].p, got->sketches[1].len, &back, &err),
                         0);
        if (round == 0) {
            assert_true(sl_hll_estimate(back) == nu); /* exact while sparse */
        } else {
            assert_true(fabs(sl_hll_estimate(back) - nu) / nu < 0.03);
        }
        sl_hll_free(back);
        sl_buf_reset(&want);
        sl_dds_serialize(all_d, &want);
        assert_int_equal(got->sketches[3].len, want.len);
        assert_memory_equal(got->sketches[3].p, want.data, want.len);
        sl_dds *dback;
        assert_int_equal(sl_dds_deserialize(got->sketches[3].p, got->sketches[3].len, &dback, &err),
                         0);
        assert_int_equal(sl_dds_count(dback), (uint64_t)total);
        sl_dds_free(dback);
        sl_buf_fini(&want);
        sl_store_read_end(rd);
        sl_hll_free(all_h);
        sl_hll_free(h);
        sl_dds_free(all_d);
        sl_dds_free(d);
    }
    sl_buf_fini(&hb);
    sl_buf_fini(&db);
    sl_store_close(st);
    sl_spec_free(sp);
    rm_rf(dir);
    free(dir);
}

/* A row written under the old spec (no sketch metrics) reads under the new one with empty
 * sketches and takes sketches on its next merge; a row with the new spec's sketches reads
 * under a spec with one more sketch metric, the new one empty. */
static void test_row_written_without_sketches_reads(void **state)
{
    sl_spec *old = parse_spec(SPEC_OLD), *sp = parse_spec(SPEC_NEW),
            *newer = parse_spec(SPEC_NEWER);
    char *dir = tmpdir();
    sl_store *st;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, dir, false, 1, 64, &err), 0);
    sl_row r = {.bucket_ms = 120000, .ndims = 1, .count = 4, .nvalues = 2};
    r.dims[0] = (sl_str){"k", 1};
    r.values[0] = 10;
    r.values[1] = 7;
    assert_int_equal(merge_one(st, old, &r), 0);

    collected c;
    sl_store_reader *rd;
    assert_int_equal(scan_all(st, sp, &c, &rd), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].count, 4);
    assert_int_equal(c.rows[0].nvalues, 4);
    assert_true(c.rows[0].values[0] == 10 && c.rows[0].values[2] == 7);
    for (int i = 0; i < 4; i++) {
        assert_null(c.rows[0].sketches[i].p);
        assert_int_equal(c.rows[0].sketches[i].len, 0);
    }
    sl_store_read_end(rd);

    /* The next delta of that row under the new spec brings sketches. */
    sl_buf hb, db;
    sl_buf_init(&hb);
    sl_buf_init(&db);
    sl_row r2 = one_user_row(120000, "k", 1, 5, 9, 42, &hb, &db);
    assert_int_equal(merge_one(st, sp, &r2), 0);
    assert_int_equal(scan_all(st, sp, &c, &rd), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].count, 5);
    assert_true(c.rows[0].values[0] == 15 && c.rows[0].values[2] == 9);
    assert_int_equal(c.rows[0].sketches[1].len, hb.len);
    assert_memory_equal(c.rows[0].sketches[1].p, hb.data, hb.len);
    /* one user is a small sketch: a sparse list of one hash, not kilobytes */
    assert_true(hb.len <= 16);
    assert_int_equal(c.rows[0].sketches[3].len, db.len);
    assert_memory_equal(c.rows[0].sketches[3].p, db.data, db.len);
    sl_store_read_end(rd);

    /* A spec that gained a third sketch metric reads it as empty. */
    assert_int_equal(scan_all(st, newer, &c, &rd), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].nvalues, 5);
    assert_int_equal(c.rows[0].sketches[1].len, hb.len);
    assert_int_equal(c.rows[0].sketches[3].len, db.len);
    assert_null(c.rows[0].sketches[4].p);
    sl_store_read_end(rd);

    sl_buf_fini(&hb);
    sl_buf_fini(&db);
    sl_store_close(st);
    sl_spec_free(old);
    sl_spec_free(sp);
    sl_spec_free(newer);
    rm_rf(dir);
    free(dir);
}

/* A sketch that does not decode, or is of the other type, is refused with SL_ECODEC and
 * a message naming the metric; the stored row is unchanged. */
static void test_bad_sketch_refused(void **state)
{
    sl_spec *sp = parse_spec(SPEC_NEW);
    char *dir = tmpdir();
    sl_store *st;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, dir, false, 1, 64, &err), 0);
    sl_buf hb, db;
    sl_buf_init(&hb);
    sl_buf_init(&db);
    sl_row good = one_user_row(0, "k", 1, 1, 1, 3, &hb, &db);
    assert_int_equal(merge_one(st, sp, &good), 0);

    sl_row bad = good;
    bad.sketches[1] = good.sketches[3]; /* a quantiles sketch for the distinct metric */
    sl_store_txn *t;
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    assert_int_equal(sl_store_merge_row(t, sp, &bad, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "users"));
    char junk[] = "\x01\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    bad = good;
    bad.sketches[1] = (sl_str){junk, sizeof(junk) - 1}; /* sparse count varint runs off */
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    assert_int_equal(sl_store_merge_row(t, sp, &bad, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "users"));
    bad = good;
    bad.sketches[3] = (sl_str){"\x09\x02\x00", 3}; /* unknown version */
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    assert_int_equal(sl_store_merge_row(t, sp, &bad, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "lat"));
    assert_non_null(strstr(err.msg, "version"));

    collected c;
    sl_store_reader *rd;
    assert_int_equal(scan_all(st, sp, &c, &rd), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].count, 1);
    assert_int_equal(c.rows[0].sketches[1].len, hb.len);
    sl_store_read_end(rd);
    sl_buf_fini(&hb);
    sl_buf_fini(&db);
    sl_store_close(st);
    sl_spec_free(sp);
    rm_rf(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_map_grows_until_max),
    cmocka_unit_test(test_sketches_merge_across_merge_row_calls),
    cmocka_unit_test(test_row_written_without_sketches_reads),
    cmocka_unit_test(test_bad_sketch_refused),
};

SL_TEST_MAIN(tests)
