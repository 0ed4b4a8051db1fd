/* Message codec round trips and rejection of malformed input. */
#include "sl_test.h"

#include "msg.h"

#include <math.h>
#include <string.h>

static sl_str S(const char *z)
{
    return (sl_str){z, strlen(z)};
}

static void test_events_round_trip(void **state)
{
    sl_buf blob;
    sl_buf_init(&blob);
    sl_event in[3];
    memset(in, 0, sizeof(in));
    for (int i = 0; i < 3; i++) {
        in[i].ts_ms = 1749643200000LL + i * 61000 - (i == 2 ? 1749643200000LL * 2 : 0);
        in[i].ndims = 4;
        in[i].dims[0] = S("page_view");
        in[i].dims[1] = i == 1 ? (sl_str){NULL, 0} : S("/pricing");
        in[i].dims[2] = S("");
        in[i].dims[3] = S("US");
        in[i].nfields = 2;
        in[i].has_field[0] = i != 0;
        in[i].fields[0] = 87.5 * i;
        in[i].has_field[1] = true;
        in[i].fields[1] = -1e300;
        sl_events_put(&blob, &in[i]);
    }
    sl_events_iter it;
    sl_event ev;
    sl_events_iter_init(&it, blob.data, blob.len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sl_events_next(&it, &ev, NULL), 1);
        assert_int_equal(ev.ts_ms, in[i].ts_ms);
        assert_int_equal(ev.ndims, 4);
        assert_int_equal(ev.dims[0].len, 9);
        assert_memory_equal(ev.dims[0].p, "page_view", 9);
        if (i == 1) {
            assert_null(ev.dims[1].p);
        } else {
            assert_true(sl_str_eq(ev.dims[1], "/pricing"));
        }
        assert_non_null(ev.dims[2].p);
        assert_int_equal(ev.dims[2].len, 0);
        assert_int_equal(ev.nfields, 2);
        assert_int_equal(ev.has_field[0], i != 0);
        if (i != 0) {
            assert_true(ev.fields[0] == 87.5 * i);
        }
        assert_true(ev.fields[1] == -1e300);
    }
    assert_int_equal(sl_events_next(&it, &ev, NULL), 0);
    sl_buf_fini(&blob);
}

static void test_delta_round_trip(void **state)
{
    sl_buf rows, msg;
    sl_buf_init(&rows);
    sl_buf_init(&msg);
    sl_row r = {.bucket_ms = 60000, .ndims = 2, .count = 7, .nvalues = 3};
    r.dims[0] = S("a");
    r.dims[1] = (sl_str){NULL, 0};
    r.values[0] = 1.5;
    r.values[1] = INFINITY;
    r.values[2] = -INFINITY;
    sl_rows_put(&rows, &r);
    sl_delta d = {.ds = S("page_events"),
                  .partition = 11,
                  .offset_lo = 100,
                  .offset_hi = 250,
                  .rows = {rows.data, rows.len}};
    sl_delta_encode(&msg, &d);
    assert_int_equal(sl_msg_type(msg.data, msg.len), SL_MSG_DELTA);
    sl_delta out;
    assert_int_equal(sl_delta_decode(msg.data, msg.len, &out, NULL), 0);
    assert_true(sl_str_eq(out.ds, "page_events"));
    assert_int_equal(out.partition, 11);
    assert_int_equal(out.offset_lo, 100);
    assert_int_equal(out.offset_hi, 250);
    sl_rows_iter it;
    sl_row o;
    sl_rows_iter_init(&it, out.rows.p, out.rows.len);
    assert_int_equal(sl_rows_next(&it, &o, NULL), 1);
    assert_int_equal(o.bucket_ms, 60000);
    assert_int_equal(o.count, 7);
    assert_true(sl_str_eq(o.dims[0], "a"));
    assert_null(o.dims[1].p);
    assert_true(o.values[0] == 1.5 && isinf(o.values[1]) && o.values[1] > 0 && isinf(o.values[2]) &&
                o.values[2] < 0);
    assert_int_equal(sl_rows_next(&it, &o, NULL), 0);
    sl_buf_fini(&rows);
    sl_buf_fini(&msg);
}

static void test_messages_round_trip(void **state)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_err err;

    sl_ingest_req rq = {.ds = S("ds"), .body = S("{\"a\":1}\n")};
    sl_ingest_req_encode(&b, &rq);
    sl_ingest_req rq2;
    assert_int_equal(sl_ingest_req_decode(b.data, b.len, &rq2, &err), 0);
    assert_true(sl_str_eq(rq2.ds, "ds") && sl_str_eq(rq2.body, "{\"a\":1}\n"));

    sl_line_error le[2] = {{3, S("bad")}, {9, S("worse")}};
    sl_ingest_rep rp = {
        .status = 0, .accepted = 5, .rejected = 2, .nerrors = 2, .errors = le, .error = {NULL, 0}};
    sl_buf_reset(&b);
    sl_ingest_rep_encode(&b, &rp);
    sl_ingest_rep rp2;
    assert_int_equal(sl_ingest_rep_decode(b.data, b.len, &rp2, &err), 0);
    assert_int_equal(rp2.accepted, 5);
    assert_int_equal(rp2.rejected, 2);
    assert_int_equal(rp2.nerrors, 2);
    assert_int_equal(rp2.errors[1].line, 9);
    assert_true(sl_str_eq(rp2.errors[1].reason, "worse"));
    assert_null(rp2.error.p);
    sl_ingest_rep_fini(&rp2);

    sl_part_events pe[2] = {{3, 10, S("xx")}, {7, 1, S("y")}};
    sl_events_msg em = {.ds = S("ds"), .nparts = 2, .parts = pe};
    sl_buf_reset(&b);
    sl_events_msg_encode(&b, &em);
    sl_events_msg em2;
    assert_int_equal(sl_events_msg_decode(b.data, b.len, &em2, &err), 0);
    assert_int_equal(em2.nparts, 2);
    assert_int_equal(em2.parts[1].partition, 7);
    assert_int_equal(em2.parts[0].count, 10);
    assert_true(sl_str_eq(em2.parts[0].events, "xx"));
    sl_events_msg_fini(&em2);

    sl_part_batch pb = {
        .ds = S("ds"), .partition = 5, .first_offset = 1LL << 40, .count = 3, .events = S("e")};
    sl_buf_reset(&b);
    sl_part_batch_encode(&b, &pb);
    sl_part_batch pb2;
    assert_int_equal(sl_part_batch_decode(b.data, b.len, &pb2, &err), 0);
    assert_int_equal(pb2.first_offset, 1LL << 40);
    assert_int_equal(pb2.count, 3);

    sl_query_rep qr = {.http_status = 400, .body = S("{}")};
    sl_buf_reset(&b);
    sl_query_rep_encode(&b, &qr);
    sl_query_rep qr2;
    assert_int_equal(sl_query_rep_decode(b.data, b.len, &qr2, &err), 0);
    assert_int_equal(qr2.http_status, 400);

    sl_pong pg = {.actor = S("windower"), .instance = 1, .pid = 42, .started_ms = 99};
    sl_buf_reset(&b);
    sl_pong_encode(&b, &pg);
    sl_pong pg2;
    assert_int_equal(sl_pong_decode(b.data, b.len, &pg2, &err), 0);
    assert_true(sl_str_eq(pg2.actor, "windower"));
    assert_int_equal(pg2.pid, 42);
    sl_buf_fini(&b);
}

static void test_malformed_rejected(void **state)
{
    sl_err err = {0};
    sl_delta d;
    /* Wrong type tag. */
    sl_buf b;
    sl_buf_init(&b);
    sl_ping_encode(&b);
    assert_int_equal(sl_delta_decode(b.data, b.len, &d, &err), SL_ECODEC);
    /* Truncated messages of every length must be rejected, never read past the end. */
    sl_buf_reset(&b);
    sl_delta full = {.ds = S("ds"), .partition = 1, .offset_lo = 0, .offset_hi = 1, .rows = S("r")};
    sl_delta_encode(&b, &full);
    for (size_t n = 0; n < b.len; n++) {
        char *copy = malloc(n + 1);
        memcpy(copy, b.data, n);
        assert_int_not_equal(sl_delta_decode(copy, n, &d, &err), 0);
        free(copy);
    }
    /* Offsets must form a non-empty range. */
    sl_buf_reset(&b);
    full.offset_hi = 0;
    sl_delta_encode(&b, &full);
    assert_int_equal(sl_delta_decode(b.data, b.len, &d, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "offset_hi"));
    /* Garbage. */
    assert_int_equal(sl_msg_type("\xc1\xc1", 2), SL_MSG_NONE);
    sl_events_iter it;
    sl_event ev;
    sl_events_iter_init(&it, "\x93\x01", 2);
    assert_int_equal(sl_events_next(&it, &ev, &err), SL_ECODEC);
    sl_buf_fini(&b);
}

/* APPEND_REQ / LOG_RECORD with and without the Kafka source element, and APPEND_REP
 * with the overlap high water. */
static void test_log_record_source(void **state)
{
    sl_err err = {0};
    sl_buf b;
    sl_buf_init(&b);
    sl_log_part parts[2] = {{.partition = 3, .first_offset = 10, .count = 2, .events = S("ab")},
                            {.partition = 0, .first_offset = 0, .count = 1, .events = S("c")}};
    sl_log_record in = {.ds = S("ds"),
                        .appended_ms = 7,
                        .nparts = 2,
                        .parts = parts,
                        .source = {S("user-events"), 11, 100, 199}};
    int types[2] = {SL_MSG_APPEND_REQ, SL_MSG_LOG_RECORD};
    for (int t = 0; t < 2; t++) {
        sl_log_record r;
        /* with the source */
        sl_buf_reset(&b);
        sl_log_record_encode(&b, types[t], &in);
        assert_int_equal(sl_log_record_decode(b.data, b.len, types[t], &r, &err), 0);
        assert_true(sl_str_eq(r.source.topic, "user-events"));
        assert_int_equal(r.source.partition, 11);
        assert_int_equal(r.source.first_offset, 100);
        assert_int_equal(r.source.last_offset, 199);
        assert_int_equal(r.nparts, 2);
        assert_int_equal(r.parts[0].count, 2);
        sl_log_record_fini(&r);
        for (size_t n = 0; n < b.len; n++) {
            assert_int_not_equal(sl_log_record_decode(b.data, n, types[t], &r, &err), 0);
        }
        /* without: accepted, source absent */
        sl_log_record plain = in;
        plain.source = (sl_log_source){0};
        sl_buf_reset(&b);
        sl_log_record_encode(&b, types[t], &plain);
        assert_int_equal(sl_log_record_decode(b.data, b.len, types[t], &r, &err), 0);
        assert_null(r.source.topic.p);
        sl_log_record_fini(&r);
        /* a source whose last offset is before its first is refused, with a reason */
        sl_log_record bad = in;
        bad.source.last_offset = 99;
        sl_buf_reset(&b);
        sl_log_record_encode(&b, types[t], &bad);
        assert_int_equal(sl_log_record_decode(b.data, b.len, types[t], &r, &err), SL_ECODEC);
        assert_non_null(strstr(err.msg, "source last offset"));
    }
    sl_append_rep rep = {.status = SL_APPEND_OVERLAP, .source_hw = 150};
    sl_append_rep got;
    sl_buf_reset(&b);
    sl_append_rep_encode(&b, &rep);
    assert_int_equal(sl_append_rep_decode(b.data, b.len, &got, &err), 0);
    assert_int_equal(got.status, SL_APPEND_OVERLAP);
    assert_int_equal(got.source_hw, 150);
    rep = (sl_append_rep){.status = 0, .duplicate = true};
    sl_buf_reset(&b);
    sl_append_rep_encode(&b, &rep);
    assert_int_equal(sl_append_rep_decode(b.data, b.len, &got, &err), 0);
    assert_true(got.duplicate);
    assert_int_equal(got.source_hw, -1);
    sl_buf_fini(&b);
}

/* Events with the hashes of distinct fields (a 4th item) and without (3 items, as in
 * records written before sketches existed); rows with sketches (a 5th item) and without. */
static void test_hashes_and_sketches_round_trip(void **state)
{
    sl_buf blob;
    sl_buf_init(&blob);
    sl_event in = {.ts_ms = 5, .ndims = 1, .nfields = 1, .nhashes = 3};
    in.dims[0] = S("x");
    in.has_field[0] = true;
    in.fields[0] = 2.5;
    in.has_hash[0] = true;
    in.hashes[0] = UINT64_MAX;
    in.has_hash[1] = false;
    in.has_hash[2] = true;
    in.hashes[2] = 0;
    sl_events_put(&blob, &in);
    size_t first = blob.len;
    in.nhashes = 0;
    sl_events_put(&blob, &in);
    assert_int_equal((unsigned char)blob.data[0], 0x94);
    assert_int_equal((unsigned char)blob.data[first], 0x93);
    sl_events_iter it;
    sl_event ev;
    sl_err err = {0};
    sl_events_iter_init(&it, blob.data, blob.len);
    assert_int_equal(sl_events_next(&it, &ev, &err), 1);
    assert_int_equal(ev.nhashes, 3);
    assert_true(ev.has_hash[0] && ev.hashes[0] == UINT64_MAX);
    assert_false(ev.has_hash[1]);
    assert_true(ev.has_hash[2] && ev.hashes[2] == 0);
    assert_true(ev.has_field[0] && ev.fields[0] == 2.5);
    assert_int_equal(sl_events_next(&it, &ev, &err), 1);
    assert_int_equal(ev.nhashes, 0);
    assert_int_equal(sl_events_next(&it, &ev, &err), 0);

    /* rows: sketch bytes are views; +0 values travel as one byte */
    static const char hll1[] = "\x01\x01\x00\x01\x11\x22\x33\x44\x55\x66\x77\x88";
    static const char dds1[] = "\x01\x02\x03\x00\x00\x00\x00\x00\x00\x45\x40";
    sl_row r = {.bucket_ms = 60000, .ndims = 1, .count = 3, .nvalues = 3};
    r.dims[0] = S("a");
    r.values[0] = 7;
    r.sketches[1] = (sl_str){hll1, sizeof(hll1) - 1};
    r.sketches[2] = (sl_str){dds1, sizeof(dds1) - 1};
    sl_buf_reset(&blob);
    sl_rows_put(&blob, &r);
    first = blob.len;
    sl_row plain = {.bucket_ms = 0, .ndims = 0, .count = 1, .nvalues = 1};
    sl_rows_put(&blob, &plain);
    assert_int_equal((unsigned char)blob.data[0], 0x95);
    assert_int_equal((unsigned char)blob.data[first], 0x94);
    assert_int_equal(blob.len - first, 6); /* [0, [], 1, [0]] */
    sl_row o;
    sl_rows_iter_init(&it, blob.data, blob.len);
    assert_int_equal(sl_rows_next(&it, &o, &err), 1);
    assert_int_equal(o.nvalues, 3);
    assert_true(o.values[0] == 7 && o.values[1] == 0 && o.values[2] == 0);
    assert_null(o.sketches[0].p);
    assert_int_equal(o.sketches[1].len, sizeof(hll1) - 1);
    assert_memory_equal(o.sketches[1].p, hll1, sizeof(hll1) - 1);
    assert_int_equal(o.sketches[2].len, sizeof(dds1) - 1);
    assert_memory_equal(o.sketches[2].p, dds1, sizeof(dds1) - 1);
    assert_int_equal(sl_rows_next(&it, &o, &err), 1);
    assert_int_equal(o.nvalues, 1);
    assert_null(o.sketches[0].p);
    assert_int_equal(sl_rows_next(&it, &o, &err), 0);
    sl_buf_fini(&blob);
}

/* Each malformed hash or sketch item is refused with a message naming it. */
static void test_bad_hashes_and_sketches_rejected(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        bool row;
        const char *msg;
    } cases[] = {
        {"\x94\x00\x90\x90\x91\xa1x", 7, false, "event hash is not an unsigned integer"},
        {"\x94\x00\x90\x90\x91\xff", 6, false, "event hash is not an unsigned integer"},
        {"\x94\x00\x90\x90\xc0", 5, false, "event hashes are not an array"},
        {"\x95\x00\x90\x90\x90\x90", 6, false, "event is not an array of 3 to 4 items"},
        {"\x95\x00\x90\x01\x91\x00\x92\xc0\xc0", 9, true,
         "row sketches are not an array as long as its values"},
        {"\x95\x00\x90\x01\x91\x00\x91\xa3"
         "abc",
         11, true, "row sketch is neither binary nor nil"},
        {"\x95\x00\x90\x01\x91\x00\x91\xc4\x03\x09\x01\x00", 12, true,
         "row sketch 0: sketch: unknown format version 9"},
        {"\x95\x00\x90\x01\x91\x00\x91\xc4\x00", 9, true, "row sketch 0: sketch: truncated"},
        {"\x95\x00\x90\x01\x91\x00\x91\xc4\x03\x01\x07\x00", 12, true,
         "row sketch 0: sketch: unknown sketch type 7"},
        {"\x96\x00\x90\x01\x91\x00\x91\xc0\xc0", 9, true, "row is not an array of 4 to 5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_events_iter it;
        sl_err err = {0};
        int rc;
        sl_events_iter_init(&it, cases[i].bytes, cases[i].len);
        if (cases[i].row) {
            sl_row o;
            rc = sl_rows_next(&it, &o, &err);
        } else {
            sl_event ev;
            rc = sl_events_next(&it, &ev, &err);
        }
        assert_int_equal(rc, SL_ECODEC);
        if (strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.msg, cases[i].msg);
        }
    }
    /* the smallest valid sketch (an empty quantiles sketch) is accepted */
    sl_events_iter it;
    sl_row o;
    sl_events_iter_init(&it, "\x95\x00\x90\x01\x91\x00\x91\xc4\x03\x01\x02\x00", 12);
    assert_int_equal(sl_rows_next(&it, &o, NULL), 1);
    assert_int_equal(o.sketches[0].len, 3);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_events_round_trip),
    cmocka_unit_test(test_delta_round_trip),
    cmocka_unit_test(test_messages_round_trip),
    cmocka_unit_test(test_malformed_rejected),
    cmocka_unit_test(test_log_record_source),
    cmocka_unit_test(test_hashes_and_sketches_round_trip),
    cmocka_unit_test(test_bad_hashes_and_sketches_rejected),
};

SL_TEST_MAIN(tests)
