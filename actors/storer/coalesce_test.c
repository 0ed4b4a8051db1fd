/* The coalescer against the store's own merging: the same rows, applied one by one or
 * coalesced first, must leave byte-identical stored rows (counts, sums, min/max and the
 * serialized sketches), whatever the mix of repeated keys, missing dims, empty sketches
 * and sketches that turn dense. And a bad sketch is refused with the metric's name. */
#define _GNU_SOURCE /* memmem */
#include "sl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coalesce.h"
#include "sketch.h"
#include "store.h"

#define SPEC                                                                                       \
    "{\"name\":\"co\",\"dimensions\":[\"a\",\"b\"],\"metrics\":["                                  \
    "{\"name\":\"n\",\"type\":\"count\"},"                                                         \
    "{\"name\":\"s\",\"type\":\"sum\",\"field\":\"x\"},"                                           \
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"u\"},"                                  \
    "{\"name\":\"lo\",\"type\":\"min\",\"field\":\"x\"},"                                          \
    "{\"name\":\"hi\",\"type\":\"max\",\"field\":\"x\"},"                                          \
    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"l\"}]}"

#define NROWS 3000
#define NKEYS 40

typedef struct gen_rows {
    sl_row rows[NROWS];
    sl_buf sk; /* every row's sketches, back to back */
    size_t off[NROWS][2], len[NROWS][2];
} gen_rows;

static const char *const avals[] = {"x", "y", "", "zz"};

/* Deterministic rows over NKEYS keys (two minutes, dims with a null and an empty
 * string); key 0 gets thousands of users so its distinct sketch turns dense. */
static void gen(gen_rows *g, sl_spec *spec)
{
    uint64_t r = 12345;
    sl_buf_init(&g->sk);
    sl_hll *h = sl_hll_new();
    sl_dds *d = sl_dds_new();
    for (int i = 0; i < NROWS; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int key = (int)((r >> 33) % NKEYS);
        if (i % 3 == 0) {
            key = 0;
        }
        sl_row *row = &g->rows[i];
        memset(row, 0, sizeof(*row));
        row->bucket_ms = (key % 2) * 60000;
        row->ndims = 2;
        row->dims[0] = (sl_str){avals[key % 4], strlen(avals[key % 4])};
        row->dims[1] = key % 5 == 0 ? (sl_str){NULL, 0} : (sl_str){avals[(key / 4) % 4], 1};
        if (key % 5 != 0) {
            row->dims[1].len = strlen(avals[(key / 4) % 4]);
        }
        row->count = 1 + (r >> 60);
        row->nvalues = spec->nmetrics;
        /* whole numbers: their sums are exact in any order (coalescing changes the order
         * in which a row's sums are added, as the windowers' flush timing already does) */
        double x = (double)((r >> 20) % 1000);
        row->values[0] = x * (double)row->count; /* s (the count is not a metric) */
        row->values[2] = x;                      /* lo */
        row->values[3] = x + 1;                  /* hi */
        sl_hll_clear(h);
        sl_dds_clear(d);
        int users = key == 0 ? 6 : (int)(r >> 61);
        for (int u = 0; u < users; u++) {
            char id[32];
            int n = snprintf(id, sizeof(id), "u%d", key == 0 ? i * 7 + u : (int)((r >> 8) % 50));
            sl_hll_add(h, id, (size_t)n);
            assert_int_equal(sl_dds_add(d, 1.0 + (double)((r >> (u + 3)) % 5000) / 10.0, NULL), 0);
        }
        g->off[i][0] = g->sk.len;
        g->len[i][0] = users > 0 ? sl_hll_serialize(h, &g->sk) : 0;
        g->off[i][1] = g->sk.len;
        g->len[i][1] = users > 0 && i % 4 != 1 ? sl_dds_serialize(d, &g->sk) : 0;
    }
    for (int i = 0; i < NROWS; i++) {
        for (int k = 0; k < 2; k++) {
            g->rows[i].sketches[k == 0 ? 1 : 4] =
                g->len[i][k] > 0 ? (sl_str){g->sk.data + g->off[i][k], g->len[i][k]}
                                 : (sl_str){NULL, 0};
        }
    }
    sl_hll_free(h);
    sl_dds_free(d);
}

/* The stored rows as text records, dimension ids resolved to their strings and the
 * records sorted: the ids depend on the order in which a store first saw each string,
 * which coalescing changes (it applies rows minute by minute), the contents must not. */
typedef struct dump {
    sl_buf b;
    sl_store_reader *r;
    const sl_spec *spec;
    sl_buf *recs;
    size_t n, cap;
} dump;

static int dump_row(void *arg, const sl_store_row *row)
{
    dump *d = arg;
    if (d->n == d->cap) {
        d->cap = d->cap == 0 ? 64 : d->cap * 2;
        d->recs = realloc(d->recs, d->cap * sizeof(sl_buf));
        assert_non_null(d->recs);
    }
    sl_buf *b = &d->recs[d->n++];
    sl_buf_init(b);
    char line[512];
    int n = snprintf(line, sizeof(line), "%lld", (long long)row->bucket_ms);
    sl_buf_append(b, line, (size_t)n);
    for (int k = 0; k < 2; k++) {
        sl_str v;
        sl_err err = {0};
        assert_int_equal(sl_store_dict_get(d->r, d->spec, k, row->dim_ids[k], &v, &err), 0);
        sl_buf_append(b, " ", 1);
        sl_buf_append(b, v.p, v.len);
    }
    n = snprintf(line, sizeof(line), " %llu", (unsigned long long)row->count);
    sl_buf_append(b, line, (size_t)n);
    for (int m = 0; m < row->nvalues; m++) {
        n = snprintf(line, sizeof(line), " %.17g/%zu:", row->values[m], row->sketches[m].len);
        sl_buf_append(b, line, (size_t)n);
        sl_buf_append(b, row->sketches[m].p, row->sketches[m].len);
    }
    sl_buf_append(b, "\n", 1);
    return 0;
}

static int cmp_rec(const void *x, const void *y)
{
    const sl_buf *a = x, *b = y;
    int c = memcmp(a->data, b->data, a->len < b->len ? a->len : b->len);
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

static void store_dump(sl_store *st, const sl_spec *spec, dump *out)
{
    sl_err err = {0};
    memset(out, 0, sizeof(*out));
    sl_buf_init(&out->b);
    out->spec = spec;
    assert_int_equal(sl_store_read_begin(st, &out->r, &err), 0);
    assert_int_equal(sl_store_scan(out->r, spec, 0, INT64_MAX / 2, dump_row, out, &err), 0);
    sl_store_read_end(out->r);
    qsort(out->recs, out->n, sizeof(sl_buf), cmp_rec);
    for (size_t i = 0; i < out->n; i++) {
        sl_buf_append(&out->b, out->recs[i].data, out->recs[i].len);
        sl_buf_fini(&out->recs[i]);
    }
    free(out->recs);
}

static int apply(void *arg, const sl_spec *spec, const sl_row *row, int src)
{
    (void)src;
    sl_err err = {0};
    return sl_store_merge_row(arg, spec, row, &err);
}

static sl_store *open_store(const char *name)
{
    char path[256], cmd[300];
    snprintf(path, sizeof(path), "/tmp/sl-coalesce-test-%d-%s", (int)getpid(), name);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
    assert_int_equal(system(cmd), 0);
    sl_store *st;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, path, false, 1, 64, &err), 0);
    return st;
}

static void remove_store(sl_store *st, const char *name)
{
    char cmd[300];
    sl_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf /tmp/sl-coalesce-test-%d-%s", (int)getpid(), name);
    assert_int_equal(system(cmd), 0);
}

static void test_same_bytes_as_row_by_row(void **state)
{
    (void)state;
    sl_spec *spec;
    sl_err err = {0};
    assert_int_equal(sl_spec_parse(SPEC, strlen(SPEC), "t", &spec, &err), 0);
    static gen_rows g;
    gen(&g, spec);

    /* A: every row merged into the store as it comes, 10 transactions */
    sl_store *a = open_store("a");
    for (int t0 = 0; t0 < NROWS; t0 += NROWS / 10) {
        sl_store_txn *t;
        assert_int_equal(sl_store_begin(a, &t, &err), 0);
        for (int i = t0; i < t0 + NROWS / 10; i++) {
            assert_int_equal(sl_store_merge_row(t, spec, &g.rows[i], &err), 0);
        }
        assert_int_equal(sl_store_commit(t, &err), 0);
    }
    /* B: the same 10 transactions, each coalesced first */
    sl_store *b = open_store("b");
    sl_coalesce *co = sl_coalesce_new();
    size_t most = 0;
    for (int t0 = 0; t0 < NROWS; t0 += NROWS / 10) {
        sl_store_txn *t;
        assert_int_equal(sl_store_begin(b, &t, &err), 0);
        for (int i = t0; i < t0 + NROWS / 10; i++) {
            assert_int_equal(sl_coalesce_add(co, spec, &g.rows[i], i, &err), 0);
        }
        most = sl_coalesce_rows(co) > most ? sl_coalesce_rows(co) : most;
        assert_int_equal(sl_coalesce_each(co, apply, t), 0);
        sl_coalesce_reset(co);
        assert_int_equal(sl_store_commit(t, &err), 0);
    }
    assert_true(most <= NKEYS); /* 300 rows per transaction became at most 40 */

    dump da, db;
    store_dump(a, spec, &da);
    store_dump(b, spec, &db);
    assert_true(da.b.len > 0);
    assert_int_equal(da.b.len, db.b.len);
    assert_memory_equal(da.b.data, db.b.data, da.b.len);

    /* the dense case happened: key 0's distinct sketch is the 12 KiB dense form */
    assert_non_null(memmem(da.b.data, da.b.len, "/12291:", 7));

    sl_buf_fini(&da.b);
    sl_buf_fini(&db.b);
    sl_buf_fini(&g.sk);
    sl_coalesce_free(co);
    remove_store(a, "a");
    remove_store(b, "b");
    sl_spec_free(spec);
}

static void test_bad_sketch_named(void **state)
{
    (void)state;
    sl_spec *spec;
    sl_err err = {0};
    assert_int_equal(sl_spec_parse(SPEC, strlen(SPEC), "t", &spec, &err), 0);
    sl_hll *h = sl_hll_new();
    sl_hll_add(h, "u1", 2);
    sl_buf hb;
    sl_buf_init(&hb);
    sl_hll_serialize(h, &hb);
    sl_row row = {.bucket_ms = 0, .ndims = 1, .count = 1, .nvalues = spec->nmetrics};
    row.dims[0] = (sl_str){"x", 1};
    row.sketches[1] = (sl_str){hb.data, hb.len};
    sl_coalesce *co = sl_coalesce_new();
    assert_int_equal(sl_coalesce_add(co, spec, &row, 0, &err), 0);
    /* the same key again, its "distinct" sketch being a quantiles sketch's bytes */
    sl_dds *d = sl_dds_new();
    assert_int_equal(sl_dds_add(d, 3, NULL), 0);
    sl_buf db;
    sl_buf_init(&db);
    sl_dds_serialize(d, &db);
    row.sketches[1] = (sl_str){db.data, db.len};
    assert_int_equal(sl_coalesce_add(co, spec, &row, 1, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "metric users"));
    sl_coalesce_reset(co);
    assert_int_equal(sl_coalesce_rows(co), 0);
    sl_coalesce_free(co);
    sl_hll_free(h);
    sl_dds_free(d);
    sl_buf_fini(&hb);
    sl_buf_fini(&db);
    sl_spec_free(spec);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_same_bytes_as_row_by_row),
    cmocka_unit_test(test_bad_sketch_named),
};

SL_TEST_MAIN(tests)
