/* Unit tests for runtime/sketch.c. Accuracy is checked against exact answers computed here
 * from seeded data (a bitmap of the ids for distinct counts, a sorted copy for quantiles),
 * after splitting the data like the pipeline does (partitions x minutes), serializing every
 * part and merging the bytes. Merge order independence is checked byte for byte. Corrupt
 * inputs are built by hand with an encoder written here from the format comment in
 * sketch.c, and by mutating valid blobs. */
#include "sl_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "sketch.h"

/* ---- helpers --------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double rng_normal(uint64_t *s)
{
    double u = rng_unit(s);
    double v = rng_unit(s);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static void shuffle(size_t *a, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(s) % i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static size_t *iota(size_t n)
{
    size_t *a = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        a[i] = i;
    }
    return a;
}

static void add_user(sl_hll *h, uint64_t id)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "user-%llu", (unsigned long long)id);
    sl_hll_add(h, key, (size_t)len);
}

static void hll_bytes(const sl_hll *h, sl_buf *out)
{
    sl_buf_reset(out);
    sl_hll_serialize(h, out);
}

static void dds_bytes(const sl_dds *s, sl_buf *out)
{
    sl_buf_reset(out);
    sl_dds_serialize(s, out);
}

static void assert_same_bytes(const sl_buf *a, const sl_buf *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        size_t i = 0;
        while (i < a->len && i < b->len && a->data[i] == b->data[i]) {
            i++;
        }
        fail_msg("%s: serialized sketches differ (%zu vs %zu bytes, first difference at %zu)", what,
                 a->len, b->len, i);
    }
}

/* A set of serialized sub-sketches: one buffer, one offset per part. */
typedef struct parts {
    sl_buf buf;
    size_t n;
    size_t *off;
    size_t *len;
} parts;

static void parts_init(parts *p, size_t n)
{
    sl_buf_init(&p->buf);
    p->n = n;
    p->off = calloc(n, sizeof(size_t));
    p->len = calloc(n, sizeof(size_t));
}

static void parts_fini(parts *p)
{
    sl_buf_fini(&p->buf);
    free(p->off);
    free(p->len);
}

/* A small independent encoder for hand-made blobs. */
typedef struct blob {
    uint8_t b[256];
    size_t n;
} blob;

static void blob_byte(blob *x, unsigned v)
{
    x->b[x->n++] = (uint8_t)v;
}

static void blob_varint(blob *x, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        blob_byte(x, v != 0 ? c | 0x80 : c);
    } while (v != 0);
}

static void blob_le64(blob *x, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        blob_byte(x, (unsigned)(v >> (8 * i)) & 0xff);
    }
}

static void blob_double(blob *x, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    blob_le64(x, u);
}

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* One sketch type's entry points behind one signature, so that the checks of the byte
 * format (rejections, prefixes, mutations) are written once for HLL and DDSketch. */
typedef struct codec {
    /* the decoder; *out is passed through, so a sentinel shows whether it was cleared */
    int (*decode)(const void *data, size_t len, void **out, sl_err *err);
    void (*bytes)(const void *sketch, sl_buf *out);
    int (*merge_bytes)(void *dst, const void *data, size_t len);
    void *(*sample)(void); /* a small non-empty sketch */
    void (*release)(void *sketch);
} codec;

static int hll_decode(const void *data, size_t len, void **out, sl_err *err)
{
    sl_hll *h = *out;
    int rc = sl_hll_deserialize(data, len, &h, err);
    *out = h;
    return rc;
}

static void hll_bytes_any(const void *h, sl_buf *out)
{
    hll_bytes(h, out);
}

static int hll_merge_any(void *dst, const void *data, size_t len)
{
    return sl_hll_merge_bytes(dst, data, len, NULL);
}

static void *hll_sample(void)
{
    sl_hll *h = sl_hll_new();
    for (int i = 0; i < 5; i++) {
        add_user(h, (uint64_t)i);
    }
    return h;
}

static void hll_release(void *h)
{
    sl_hll_free(h);
}

static const codec hll_codec = {hll_decode, hll_bytes_any, hll_merge_any, hll_sample, hll_release};

static int dds_decode(const void *data, size_t len, void **out, sl_err *err)
{
    sl_dds *s = *out;
    int rc = sl_dds_deserialize(data, len, &s, err);
    *out = s;
    return rc;
}

static void dds_bytes_any(const void *s, sl_buf *out)
{
    dds_bytes(s, out);
}

static int dds_merge_any(void *dst, const void *data, size_t len)
{
    return sl_dds_merge_bytes(dst, data, len, NULL);
}

static void *dds_sample(void)
{
    sl_dds *s = sl_dds_new();
    assert_int_equal(sl_dds_add(s, 3.0, NULL), 0);
    assert_int_equal(sl_dds_add(s, 0.0, NULL), 0);
    return s;
}

static void dds_release(void *s)
{
    sl_dds_free(s);
}

static const codec dds_codec = {dds_decode, dds_bytes_any, dds_merge_any, dds_sample, dds_release};

/* Expects SL_ECODEC with msg_part in the message, from both decoders' entry points, and
 * checks that a failed merge leaves the destination's bytes unchanged. */
static void expect_reject(const codec *c, const void *data, size_t len, const char *msg_part)
{
    sl_err err = {0};
    void *out = (void *)1;
    assert_int_equal(c->decode(data, len, &out, &err), SL_ECODEC);
    assert_null(out);
    assert_int_equal(err.code, SL_ECODEC);
    if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
    }
    void *dst = c->sample();
    sl_buf before;
    sl_buf after;
    sl_buf_init(&before);
    sl_buf_init(&after);
    c->bytes(dst, &before);
    assert_int_equal(c->merge_bytes(dst, data, len), SL_ECODEC);
    c->bytes(dst, &after);
    assert_same_bytes(&before, &after, "dst after a rejected merge");
    sl_buf_fini(&before);
    sl_buf_fini(&after);
    c->release(dst);
}

static void expect_hll_reject(const void *data, size_t len, const char *msg_part)
{
    expect_reject(&hll_codec, data, len, msg_part);
}

static void expect_dds_reject(const void *data, size_t len, const char *msg_part)
{
    expect_reject(&dds_codec, data, len, msg_part);
}

/* Every strict prefix of the valid blob b (every step-th length) is rejected; each of
 * `mutations` random byte changes is either rejected or decodes to a sketch that
 * serializes back to exactly the changed bytes. b is restored; the outcomes are added
 * to *accepted and *rejected. */
static void check_prefixes_and_mutations(const codec *c, sl_buf *b, size_t step, int mutations,
                                         uint64_t *rng, int *accepted, int *rejected)
{
    sl_buf again;
    sl_buf_init(&again);
    for (size_t len = 0; len < b->len; len += step) {
        void *out = NULL;
        assert_int_equal(c->decode(b->data, len, &out, NULL), SL_ECODEC);
    }
    for (int m = 0; m < mutations; m++) {
        size_t at = (size_t)(rng_next(rng) % b->len);
        char saved = b->data[at];
        b->data[at] = (char)(saved ^ (char)(1 + rng_next(rng) % 255));
        void *out = NULL;
        int rc = c->decode(b->data, b->len, &out, NULL);
        if (rc == 0) {
            c->bytes(out, &again);
            assert_int_equal(again.len, b->len);
            assert_memory_equal(again.data, b->data, b->len);
            c->release(out);
            (*accepted)++;
        } else {
            assert_int_equal(rc, SL_ECODEC);
            (*rejected)++;
        }
        b->data[at] = saved;
    }
    sl_buf_fini(&again);
}

/* ---- HyperLogLog ----------------------------------------------------------------- */

static void hll_empty(void **state)
{
    (void)state;
    sl_hll *h = sl_hll_new();
    assert_true(sl_hll_estimate(h) == 0.0);
    assert_true(sl_hll_is_sparse(h));
    sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_hll_serialize(h, &b), 4);
    static const uint8_t want[] = {1, SL_SKETCH_HLL, 0, 0};
    assert_memory_equal(b.data, want, 4);
    sl_hll *back = NULL;
    assert_int_equal(sl_hll_deserialize(b.data, b.len, &back, NULL), 0);
    assert_true(sl_hll_estimate(back) == 0.0);
    assert_int_equal(sl_sketch_type(b.data, b.len, NULL), SL_SKETCH_HLL);
    sl_hll_free(back);
    sl_hll_free(h);
    sl_hll_free(NULL);
    sl_buf_fini(&b);
}

static void hll_one_value_layout(void **state)
{
    (void)state;
    sl_hll *h = sl_hll_new();
    sl_hll_add(h, "u1234", 5);
    sl_hll_add(h, "u1234", 5); /* a repeat changes nothing */
    assert_true(sl_hll_estimate(h) == 1.0);
    sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_hll_serialize(h, &b), 12);
    /* version, type, sparse, n = 1, then the hash itself, little-endian (XXH64("u1234")
     * = 9314a49cc49a958e, see hash_test.c) */
    blob want = {.n = 0};
    blob_byte(&want, 1);
    blob_byte(&want, SL_SKETCH_HLL);
    blob_byte(&want, 0);
    blob_varint(&want, 1);
    blob_le64(&want, 0x9314A49CC49A958EULL);
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    sl_buf_fini(&b);
    sl_hll_free(h);
}

static void hll_sizes_small_sets(void **state)
{
    (void)state;
    static const uint64_t ns[] = {1, 10, 100, 1000, 10000};
    sl_buf b;
    sl_buf_init(&b);
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_hll *h = sl_hll_new();
        for (uint64_t v = 0; v < ns[i]; v++) {
            add_user(h, v);
        }
        size_t size = sl_hll_serialize(h, &b);
        b.len = 0;
        print_message("distinct %6llu: %5zu bytes (%s)\n", (unsigned long long)ns[i], size,
                      sl_hll_is_sparse(h) ? "sparse" : "dense");
        if (ns[i] <= SL_HLL_SPARSE_MAX) {
            assert_true(sl_hll_is_sparse(h));
            assert_true(sl_hll_estimate(h) == (double)ns[i]);
            /* exact hashes Rice-coded: at most 8 bytes a value plus the 4-byte header */
            assert_true(size <= 4 + 8 * ns[i]);
            if (ns[i] >= 100) {
                assert_true(size <= 8 * ns[i] * 15 / 16);
            }
        } else {
            assert_false(sl_hll_is_sparse(h));
            assert_int_equal(size, SL_HLL_DENSE_BYTES);
        }
        sl_hll_free(h);
    }
    sl_buf_fini(&b);
}

static void hll_sparse_to_dense_transition(void **state)
{
    (void)state;
    sl_hll *h = sl_hll_new();
    sl_buf b;
    sl_buf_init(&b);
    for (uint64_t v = 0; v < SL_HLL_SPARSE_MAX; v++) {
        add_user(h, v);
    }
    assert_true(sl_hll_is_sparse(h));
    assert_true(sl_hll_estimate(h) == SL_HLL_SPARSE_MAX);
    size_t sparse_size = sl_hll_serialize(h, &b);
    print_message("sparse at %d values: %zu bytes, dense: %d bytes\n", SL_HLL_SPARSE_MAX,
                  sparse_size, SL_HLL_DENSE_BYTES);
    /* the limit is where the sparse form stops being smaller */
    assert_true(sparse_size < SL_HLL_DENSE_BYTES);
    assert_true(sparse_size > SL_HLL_DENSE_BYTES * 97 / 100);
    add_user(h, 0); /* a repeat stays sparse */
    assert_true(sl_hll_is_sparse(h));
    add_user(h, SL_HLL_SPARSE_MAX);
    assert_false(sl_hll_is_sparse(h));
    double est = sl_hll_estimate(h);
    assert_true(fabs(est - (SL_HLL_SPARSE_MAX + 1)) / (SL_HLL_SPARSE_MAX + 1) < 0.02);
    b.len = 0;
    assert_int_equal(sl_hll_serialize(h, &b), SL_HLL_DENSE_BYTES);

    /* the same values reaching dense through merges give the same registers */
    sl_hll *a = sl_hll_new();
    sl_hll *c = sl_hll_new();
    for (uint64_t v = 0; v <= SL_HLL_SPARSE_MAX; v++) {
        add_user(v % 2 == 0 ? a : c, v);
    }
    assert_true(sl_hll_is_sparse(a) && sl_hll_is_sparse(c));
    sl_hll_merge(a, c);
    assert_false(sl_hll_is_sparse(a));
    sl_buf b2;
    sl_buf_init(&b2);
    hll_bytes(a, &b2);
    assert_same_bytes(&b, &b2, "dense by inserts vs by merge");

    /* clear returns to an empty sparse sketch */
    sl_hll_clear(a);
    assert_true(sl_hll_is_sparse(a));
    assert_true(sl_hll_estimate(a) == 0.0);
    add_user(a, 7);
    assert_true(sl_hll_estimate(a) == 1.0);
    sl_buf_fini(&b);
    sl_buf_fini(&b2);
    sl_hll_free(a);
    sl_hll_free(c);
    sl_hll_free(h);
}

/* Events with ids drawn from [0, universe) spread over parts x minutes (minutes skewed so
 * that some sub-sketches stay sparse and others turn dense), each sub-sketch serialized,
 * then all merged from bytes in a shuffled order. Returns the relative error. */
static double hll_accuracy(uint64_t universe, uint64_t events, int nparts, int minutes,
                           uint64_t seed, bool need_both_forms)
{
    uint64_t rng = seed;
    size_t ncells = (size_t)nparts * (size_t)minutes;
    sl_hll **cells = calloc(ncells, sizeof(sl_hll *));
    for (size_t i = 0; i < ncells; i++) {
        cells[i] = sl_hll_new();
    }
    uint8_t *seen = calloc(universe / 8 + 1, 1);
    for (uint64_t e = 0; e < events; e++) {
        uint64_t id = rng_next(&rng) % universe;
        int part = (int)(rng_next(&rng) % (uint64_t)nparts);
        double u = rng_unit(&rng);
        int minute = (int)(u * u * minutes);
        add_user(cells[(size_t)part * minutes + minute], id);
        seen[id / 8] |= (uint8_t)(1u << (id % 8));
    }
    uint64_t exact = 0;
    for (uint64_t i = 0; i < universe / 8 + 1; i++) {
        exact += (uint64_t)__builtin_popcount(seen[i]);
    }
    free(seen);

    parts p;
    parts_init(&p, ncells);
    size_t nsparse = 0;
    for (size_t i = 0; i < ncells; i++) {
        nsparse += sl_hll_is_sparse(cells[i]);
        p.off[i] = p.buf.len;
        p.len[i] = sl_hll_serialize(cells[i], &p.buf);
    }
    if (need_both_forms) {
        assert_true(nsparse > 0 && nsparse < ncells);
    }
    size_t *order = iota(ncells);
    shuffle(order, ncells, &rng);
    sl_hll *total = sl_hll_new();
    for (size_t i = 0; i < ncells; i++) {
        sl_err err = {0};
        size_t k = order[i];
        if (sl_hll_merge_bytes(total, p.buf.data + p.off[k], p.len[k], &err) != 0) {
            fail_msg("merge_bytes: %s", err.msg);
        }
    }
    double est = sl_hll_estimate(total);
    double rel = (est - (double)exact) / (double)exact;
    print_message("exact %llu distinct, estimate %.1f, error %+.3f%% (%zu sub-sketches, %zu "
                  "sparse, %zu bytes serialized)\n",
                  (unsigned long long)exact, est, 100.0 * rel, ncells, nsparse, p.buf.len);

    /* the in-memory merge in the natural order gives the same bytes */
    sl_hll *mem = sl_hll_new();
    for (size_t i = 0; i < ncells; i++) {
        sl_hll_merge(mem, cells[i]);
    }
    sl_buf a;
    sl_buf b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    hll_bytes(total, &a);
    hll_bytes(mem, &b);
    assert_same_bytes(&a, &b, "merge_bytes shuffled vs merge in order");

    sl_buf_fini(&a);
    sl_buf_fini(&b);
    sl_hll_free(mem);
    sl_hll_free(total);
    free(order);
    parts_fini(&p);
    for (size_t i = 0; i < ncells; i++) {
        sl_hll_free(cells[i]);
    }
    free(cells);
    return rel;
}

static void hll_accuracy_1k_exact(void **state)
{
    (void)state;
    /* ~1000 distinct: every part and the union stay sparse, so the count is exact */
    double rel = hll_accuracy(1250, 2000, 12, 60, 101, false);
    assert_true(rel == 0.0);
}

static void hll_accuracy_100k(void **state)
{
    (void)state;
    double rel = hll_accuracy(125000, 200000, 12, 60, 202, false);
    assert_true(fabs(rel) < 0.02);
}

static void hll_accuracy_1m(void **state)
{
    (void)state;
    double rel = hll_accuracy(1250000, 2000000, 12, 60, 303, true);
    assert_true(fabs(rel) < 0.02);
}

/* The same events split three ways (one sketch; 720 parts merged from bytes in a shuffled
 * order; 7 parts merged in memory in reverse order; 720 parts merged as a tree) give
 * bit-identical sketches. */
static void hll_order_independent_n(uint64_t distinct, uint64_t seed)
{
    uint64_t rng = seed;
    uint64_t events = distinct * 3 / 2;
    const size_t nbig = 720;
    const size_t nsmall = 7;
    sl_hll *whole = sl_hll_new();
    sl_hll **big = calloc(nbig, sizeof(sl_hll *));
    sl_hll **small = calloc(nsmall, sizeof(sl_hll *));
    for (size_t i = 0; i < nbig; i++) {
        big[i] = sl_hll_new();
    }
    for (size_t i = 0; i < nsmall; i++) {
        small[i] = sl_hll_new();
    }
    for (uint64_t e = 0; e < events; e++) {
        uint64_t id = rng_next(&rng) % distinct;
        add_user(whole, id);
        add_user(big[rng_next(&rng) % nbig], id);
        add_user(small[rng_next(&rng) % nsmall], id);
    }
    sl_buf want;
    sl_buf got;
    sl_buf_init(&want);
    sl_buf_init(&got);
    hll_bytes(whole, &want);

    parts p;
    parts_init(&p, nbig);
    for (size_t i = 0; i < nbig; i++) {
        p.off[i] = p.buf.len;
        p.len[i] = sl_hll_serialize(big[i], &p.buf);
    }
    size_t *order = iota(nbig);
    shuffle(order, nbig, &rng);
    sl_hll *m1 = sl_hll_new();
    for (size_t i = 0; i < nbig; i++) {
        assert_int_equal(
            sl_hll_merge_bytes(m1, p.buf.data + p.off[order[i]], p.len[order[i]], NULL), 0);
    }
    hll_bytes(m1, &got);
    assert_same_bytes(&want, &got, "720 parts from bytes, shuffled");

    sl_hll *m2 = sl_hll_new();
    for (size_t i = nsmall; i > 0; i--) {
        sl_hll_merge(m2, small[i - 1]);
    }
    hll_bytes(m2, &got);
    assert_same_bytes(&want, &got, "7 parts in memory, reversed");

    /* tree: deserialize every part, merge pairs level by level */
    sl_hll **level = calloc(nbig, sizeof(sl_hll *));
    for (size_t i = 0; i < nbig; i++) {
        assert_int_equal(sl_hll_deserialize(p.buf.data + p.off[i], p.len[i], &level[i], NULL), 0);
    }
    for (size_t n = nbig; n > 1; n = (n + 1) / 2) {
        for (size_t i = 0; i < n / 2; i++) {
            sl_hll_merge(level[2 * i + 1], level[2 * i]);
            sl_hll_free(level[2 * i]);
            level[i] = level[2 * i + 1];
        }
        if (n % 2 == 1) {
            level[n / 2] = level[n - 1];
        }
    }
    hll_bytes(level[0], &got);
    assert_same_bytes(&want, &got, "720 parts merged as a tree");
    print_message("distinct %llu: %zu identical bytes (%s) from 4 splits\n",
                  (unsigned long long)distinct, want.len,
                  sl_hll_is_sparse(whole) ? "sparse" : "dense");

    sl_hll_free(level[0]);
    free(level);
    free(order);
    parts_fini(&p);
    sl_hll_free(m1);
    sl_hll_free(m2);
    for (size_t i = 0; i < nbig; i++) {
        sl_hll_free(big[i]);
    }
    for (size_t i = 0; i < nsmall; i++) {
        sl_hll_free(small[i]);
    }
    free(big);
    free(small);
    sl_hll_free(whole);
    sl_buf_fini(&want);
    sl_buf_fini(&got);
}

static void hll_merge_order_independent(void **state)
{
    (void)state;
    hll_order_independent_n(300, 11);   /* sparse throughout */
    hll_order_independent_n(2500, 12);  /* sparse parts, dense union */
    hll_order_independent_n(60000, 13); /* dense parts and union */
}

static void hll_round_trip(void **state)
{
    (void)state;
    static const uint64_t ns[] = {0, 1, 2, 17, 1000, SL_HLL_SPARSE_MAX, 5000, 200000};
    sl_buf a;
    sl_buf b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    uint64_t rng = 5;
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_hll *h = sl_hll_new();
        for (uint64_t v = 0; v < ns[i]; v++) {
            sl_hll_add_hash(h, rng_next(&rng));
        }
        hll_bytes(h, &a);
        sl_hll *back = NULL;
        sl_err err = {0};
        if (sl_hll_deserialize(a.data, a.len, &back, &err) != 0) {
            fail_msg("n=%llu: %s", (unsigned long long)ns[i], err.msg);
        }
        assert_true(sl_hll_estimate(back) == sl_hll_estimate(h));
        assert_int_equal(sl_hll_is_sparse(back), sl_hll_is_sparse(h));
        hll_bytes(back, &b);
        assert_same_bytes(&a, &b, "round trip");
        sl_hll_free(back);
        sl_hll_free(h);
    }
    /* extreme hashes: 0 and all ones, adjacent values */
    sl_hll *h = sl_hll_new();
    sl_hll_add_hash(h, 0);
    sl_hll_add_hash(h, 1);
    sl_hll_add_hash(h, UINT64_MAX);
    sl_hll_add_hash(h, UINT64_MAX - 1);
    hll_bytes(h, &a);
    sl_hll *back = NULL;
    assert_int_equal(sl_hll_deserialize(a.data, a.len, &back, NULL), 0);
    assert_true(sl_hll_estimate(back) == 4.0);
    hll_bytes(back, &b);
    assert_same_bytes(&a, &b, "extreme hashes");
    sl_hll_free(back);
    sl_hll_free(h);
    sl_buf_fini(&a);
    sl_buf_fini(&b);
}

static void hll_rejects_bad_headers(void **state)
{
    (void)state;
    static const uint8_t v2[] = {2, SL_SKETCH_HLL, 0, 0};
    expect_hll_reject(v2, sizeof(v2), "unknown format version 2");
    static const uint8_t v0[] = {0, SL_SKETCH_HLL, 0, 0};
    expect_hll_reject(v0, sizeof(v0), "unknown format version 0");
    static const uint8_t dds[] = {1, SL_SKETCH_DDS, 0};
    expect_hll_reject(dds, sizeof(dds), "type byte 2");
    static const uint8_t repr[] = {1, SL_SKETCH_HLL, 7, 0};
    expect_hll_reject(repr, sizeof(repr), "unknown representation 7");
    expect_hll_reject(v2, 0, "truncated header");
    expect_hll_reject(v2, 2, "truncated header");
    expect_hll_reject(NULL, 0, "truncated header");
}

static void hll_rejects_corrupt_sparse(void **state)
{
    (void)state;
    blob x = {.n = 0};
    /* count over the sparse limit (it would be dense) */
    blob_byte(&x, 1);
    blob_byte(&x, SL_SKETCH_HLL);
    blob_byte(&x, 0);
    blob_varint(&x, SL_HLL_SPARSE_MAX + 1);
    blob_le64(&x, 42);
    expect_hll_reject(x.b, x.n, "exceeds the sparse limit");
    /* a huge count must not allocate or read past the end */
    x.n = 3;
    blob_varint(&x, UINT64_MAX);
    expect_hll_reject(x.b, x.n, "exceeds the sparse limit");
    /* varint overflowing 64 bits */
    x.n = 3;
    for (int i = 0; i < 10; i++) {
        blob_byte(&x, 0xff);
    }
    blob_byte(&x, 0x01);
    expect_hll_reject(x.b, x.n, "overflows");
    /* non-minimal varint: 1 written as 0x81 0x00 */
    x.n = 3;
    blob_byte(&x, 0x81);
    blob_byte(&x, 0x00);
    blob_le64(&x, 42);
    expect_hll_reject(x.b, x.n, "non-minimal");
    /* first hash truncated */
    x.n = 3;
    blob_varint(&x, 1);
    blob_byte(&x, 42);
    expect_hll_reject(x.b, x.n, "truncated 8-byte first hash");
    /* trailing byte after one hash / after an empty list */
    x.n = 3;
    blob_varint(&x, 1);
    blob_le64(&x, 42);
    blob_byte(&x, 0);
    expect_hll_reject(x.b, x.n, "trailing bytes");
    x.n = 3;
    blob_varint(&x, 0);
    blob_byte(&x, 0);
    expect_hll_reject(x.b, x.n, "trailing bytes");
    /* two hashes where the gap would run past 2^64: first hash all ones, gap 0 */
    x.n = 3;
    blob_varint(&x, 2);
    blob_le64(&x, UINT64_MAX);
    blob_byte(&x, 0); /* q = 0 (a 0-bit), then 62 zero remainder bits */
    for (int i = 0; i < 7; i++) {
        blob_byte(&x, 0);
    }
    expect_hll_reject(x.b, x.n, "runs past 2^64");
    /* a gap list of all ones never closes its unary quotient */
    x.n = 3;
    blob_varint(&x, 2);
    blob_le64(&x, 0);
    for (int i = 0; i < 40; i++) {
        blob_byte(&x, 0xff);
    }
    expect_hll_reject(x.b, x.n, "overflows 64 bits");
    /* quotient 1 (bits 1, 0), then only 6 of the 62 remainder bits */
    x.n = 3 + 1 + 8;
    blob_byte(&x, 0x01);
    expect_hll_reject(x.b, x.n, "truncated gap list at hash 1 of 2");
    /* the quotient still open at the end of the input (1792 hashes: k = 53, quotients up
     * to 2047 fit, so 80 ones are not an overflow yet) */
    x.n = 3;
    blob_varint(&x, SL_HLL_SPARSE_MAX);
    blob_le64(&x, 0);
    for (int i = 0; i < 10; i++) {
        blob_byte(&x, 0xff);
    }
    expect_hll_reject(x.b, x.n, "truncated gap list at hash 1 of 1792");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void hll_rejects_nonzero_padding(void **state)
{
    (void)state;
    /* For sketches of n values, compute here the Rice bit length from the sorted hashes
     * (k = 63 - floor(log2 n), gap g costs (g >> k) + 1 + k bits), check the size, and
     * set a padding bit where there is one. */
    sl_buf b;
    sl_buf_init(&b);
    int found = 0;
    for (uint64_t n = 2; n < 40; n++) {
        sl_hll *h = sl_hll_new();
        uint64_t hs[40];
        char key[32];
        for (uint64_t v = 0; v < n; v++) {
            int len = snprintf(key, sizeof(key), "user-%llu", (unsigned long long)(v * 1000 + n));
            hs[v] = sl_hash64(key, (size_t)len);
            sl_hll_add_hash(h, hs[v]);
        }
        qsort(hs, n, sizeof(uint64_t), cmp_u64);
        unsigned k = 63 - (unsigned)(63 - __builtin_clzll(n));
        uint64_t bits = 0;
        for (uint64_t v = 1; v < n; v++) {
            bits += ((hs[v] - hs[v - 1] - 1) >> k) + 1 + k;
        }
        hll_bytes(h, &b);
        assert_int_equal(b.len, 3 + 1 + 8 + (bits + 7) / 8);
        unsigned pad = (unsigned)((8 - bits % 8) % 8);
        if (pad > 0) {
            b.data[b.len - 1] = (char)(b.data[b.len - 1] | 0x80);
            sl_err err = {0};
            sl_hll *out = NULL;
            assert_int_equal(sl_hll_deserialize(b.data, b.len, &out, &err), SL_ECODEC);
            if (strstr(err.msg, "non-zero padding") == NULL) {
                fail_msg("n=%llu: %s", (unsigned long long)n, err.msg);
            }
            found++;
        }
        sl_hll_free(h);
    }
    assert_true(found > 20);
    sl_buf_fini(&b);
}

static void hll_rejects_corrupt_dense(void **state)
{
    (void)state;
    sl_hll *h = sl_hll_new();
    for (uint64_t v = 0; v < 5000; v++) {
        add_user(h, v);
    }
    sl_buf b;
    sl_buf_init(&b);
    hll_bytes(h, &b);
    assert_int_equal(b.len, SL_HLL_DENSE_BYTES);
    expect_hll_reject(b.data, b.len - 1, "dense body is 12287 bytes");
    sl_buf_append(&b, "", 1);
    expect_hll_reject(b.data, b.len, "dense body is 12289 bytes");
    b.len--;
    uint8_t saved = (uint8_t)b.data[3];
    b.data[3] = (char)(saved | 0x3f); /* register 0 = 63 */
    expect_hll_reject(b.data, b.len, "register 0 holds rank 63");
    b.data[3] = (char)saved;
    b.data[b.len - 1] = (char)0xff; /* register 16383 = 63 */
    expect_hll_reject(b.data, b.len, "register 16383");
    sl_buf_fini(&b);
    sl_hll_free(h);
}

/* A dense sketch whose registers are all at the maximum rank (only a crafted one can be)
 * estimates a finite 2^64, not infinity; all registers zero estimates 0. */
static void hll_saturated_registers_estimate_finite(void **state)
{
    (void)state;
    static uint8_t blob_all[SL_HLL_DENSE_BYTES];
    blob_all[0] = 1;
    blob_all[1] = SL_SKETCH_HLL;
    blob_all[2] = 1;
    /* rank 51 = 0b110011 in every 6-bit field: the 24-bit pattern of 4 registers */
    uint32_t four = 51u | 51u << 6 | 51u << 12 | 51u << 18;
    for (size_t i = 3; i < SL_HLL_DENSE_BYTES; i += 3) {
        blob_all[i] = (uint8_t)four;
        blob_all[i + 1] = (uint8_t)(four >> 8);
        blob_all[i + 2] = (uint8_t)(four >> 16);
    }
    sl_hll *h = NULL;
    sl_err err = {0};
    if (sl_hll_deserialize(blob_all, sizeof(blob_all), &h, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_true(sl_hll_estimate(h) == 0x1p64);
    sl_hll_free(h);
    memset(blob_all + 3, 0, SL_HLL_DENSE_BYTES - 3);
    assert_int_equal(sl_hll_deserialize(blob_all, sizeof(blob_all), &h, NULL), 0);
    assert_true(sl_hll_estimate(h) == 0.0);
    assert_false(sl_hll_is_sparse(h));
    sl_hll_free(h);
}

/* Every strict prefix of a valid blob is rejected; random byte changes are either
 * rejected or decode to a sketch that serializes back to exactly the changed bytes. */
static void hll_prefixes_and_mutations(void **state)
{
    (void)state;
    static const uint64_t ns[] = {1, 3, 50, 1500, 3000};
    uint64_t rng = 77;
    sl_buf b;
    sl_buf_init(&b);
    int accepted = 0;
    int rejected = 0;
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_hll *h = sl_hll_new();
        for (uint64_t v = 0; v < ns[i]; v++) {
            add_user(h, v);
        }
        hll_bytes(h, &b);
        check_prefixes_and_mutations(&hll_codec, &b, b.len > 2000 ? 97 : 1, 400, &rng, &accepted,
                                     &rejected);
        sl_hll_free(h);
    }
    print_message("mutations: %d accepted (re-serialize identically), %d rejected\n", accepted,
                  rejected);
    assert_true(accepted > 0 && rejected > 0);
    sl_buf_fini(&b);
}

static void sketch_type_peek(void **state)
{
    (void)state;
    sl_buf b;
    sl_buf_init(&b);
    sl_dds *s = sl_dds_new();
    sl_dds_serialize(s, &b);
    assert_int_equal(sl_sketch_type(b.data, b.len, NULL), SL_SKETCH_DDS);
    sl_err err = {0};
    static const uint8_t bad_type[] = {1, 9, 0};
    assert_int_equal(sl_sketch_type(bad_type, 3, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "unknown sketch type 9"));
    static const uint8_t bad_version[] = {3, 1, 0};
    assert_int_equal(sl_sketch_type(bad_version, 3, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "unknown format version 3"));
    assert_int_equal(sl_sketch_type(bad_version, 1, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "truncated"));
    sl_dds_free(s);
    sl_buf_fini(&b);
}

/* ---- DDSketch -------------------------------------------------------------------- */

static void dds_empty(void **state)
{
    (void)state;
    sl_dds *s = sl_dds_new();
    assert_true(isnan(sl_dds_quantile(s, 0.5)));
    assert_true(sl_dds_count(s) == 0);
    assert_true(sl_dds_sum(s) == 0.0);
    assert_true(isnan(sl_dds_min(s)) && isnan(sl_dds_max(s)));
    sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_dds_serialize(s, &b), 3);
    static const uint8_t want[] = {1, SL_SKETCH_DDS, 0};
    assert_memory_equal(b.data, want, 3);
    sl_dds *back = NULL;
    assert_int_equal(sl_dds_deserialize(b.data, b.len, &back, NULL), 0);
    assert_true(sl_dds_count(back) == 0);
    assert_true(isnan(sl_dds_quantile(back, 0.99)));
    /* merging an empty sketch changes nothing */
    assert_int_equal(sl_dds_add(s, 5.0, NULL), 0);
    sl_dds_merge(s, back);
    assert_int_equal(sl_dds_merge_bytes(s, b.data, b.len, NULL), 0);
    assert_true(sl_dds_count(s) == 1);
    assert_true(sl_dds_quantile(s, 0.5) == 5.0);
    assert_true(isnan(sl_dds_quantile(s, -0.1)) && isnan(sl_dds_quantile(s, 1.1)) &&
                isnan(sl_dds_quantile(s, NAN)));
    sl_dds_free(back);
    sl_dds_free(s);
    sl_dds_free(NULL);
    sl_buf_fini(&b);
}

/* Found by fuzz_sketch: without zeros, q = 0 returned the representative of min's bin
 * (within alpha of min) instead of min itself. */
static void dds_quantile_extremes_exact_without_zeros(void **state)
{
    (void)state;
    /* sorted: 557.64, 629.9, 635.5, 753.3, 922.91 */
    static const double vals[] = {922.91, 557.64, 635.5, 629.9, 753.3};
    sl_dds *s = sl_dds_new();
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(sl_dds_add(s, vals[i], NULL), 0);
    }
    assert_true(sl_dds_quantile(s, 0.0) == 557.64);
    assert_true(sl_dds_quantile(s, 0.2) == 557.64); /* rank floor(0.8) = 0 */
    assert_true(sl_dds_quantile(s, 1.0) == 922.91);
    double p99 = sl_dds_quantile(s, 0.99); /* rank floor(3.96) = 3: 753.3 */
    assert_true(fabs(p99 - 753.3) / 753.3 <= SL_DDS_ALPHA * (1 + 1e-9));
    double mid = sl_dds_quantile(s, 0.5); /* rank 2: 635.5 */
    assert_true(fabs(mid - 635.5) / 635.5 <= SL_DDS_ALPHA * (1 + 1e-9));
    assert_true(mid != 635.5); /* a bin's representative, not the value */
    sl_dds_free(s);
}

/* Found by fuzz_sketch: with more than 2^53 values, q * (count - 1) in double rounded
 * below count - 1, so q = 1 walked the bins instead of returning max. */
static void dds_quantile_rank_with_counts_past_2_53(void **state)
{
    (void)state;
    blob x = {.n = 0};
    blob_byte(&x, 1);
    blob_byte(&x, SL_SKETCH_DDS);
    blob_byte(&x, 1);
    blob_varint(&x, 0);      /* zeros */
    blob_varint(&x, 0);      /* sum (not checked against the bins) */
    blob_double(&x, 1.0);    /* min */
    blob_double(&x, 999.95); /* max */
    blob_varint(&x, 2);      /* two bins */
    blob_varint(&x, zz(0));  /* bin 0 (value 1) */
    blob_varint(&x, 81135716125656770ULL);
    blob_varint(&x, 689); /* bin 690 (~997) */
    blob_varint(&x, 1);
    sl_dds *s = NULL;
    sl_err err = {0};
    if (sl_dds_deserialize(x.b, x.n, &s, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_true(sl_dds_count(s) == 81135716125656771ULL);
    assert_true(sl_dds_quantile(s, 1.0) == 999.95);
    assert_true(sl_dds_quantile(s, 0.0) == 1.0);
    double mid = sl_dds_quantile(s, 0.5);
    assert_true(mid >= 1.0 && fabs(mid - 1.0) <= SL_DDS_ALPHA * (1 + 1e-9));
    sl_dds_free(s);
}

static void dds_rejects_bad_values(void **state)
{
    (void)state;
    sl_dds *s = sl_dds_new();
    sl_err err = {0};
    assert_int_equal(sl_dds_add(s, -1.0, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "must be finite and >= 0"));
    assert_int_equal(sl_dds_add(s, NAN, NULL), SL_EINVAL);
    assert_int_equal(sl_dds_add(s, INFINITY, NULL), SL_EINVAL);
    assert_int_equal(sl_dds_add(s, -INFINITY, NULL), SL_EINVAL);
    assert_int_equal(sl_dds_add(s, -1e-300, NULL), SL_EINVAL);
    assert_true(sl_dds_count(s) == 0);
    /* -0.0 is zero, stored as +0 */
    assert_int_equal(sl_dds_add(s, -0.0, NULL), 0);
    assert_true(sl_dds_count(s) == 1);
    assert_false(signbit(sl_dds_min(s)));
    assert_true(sl_dds_quantile(s, 0.5) == 0.0);
    /* the extremes of the double range are indexable */
    assert_int_equal(sl_dds_add(s, 4.9e-324, NULL), 0);
    assert_int_equal(sl_dds_add(s, 1.7976931348623157e308, NULL), 0);
    assert_true(sl_dds_max(s) == 1.7976931348623157e308);
    assert_true(isinf(sl_dds_sum(s)));
    sl_buf b;
    sl_buf_init(&b);
    sl_dds_serialize(s, &b);
    sl_dds *back = NULL;
    sl_err e2 = {0};
    if (sl_dds_deserialize(b.data, b.len, &back, &e2) != 0) {
        fail_msg("%s", e2.msg);
    }
    assert_true(sl_dds_count(back) == 3);
    assert_true(sl_dds_quantile(back, 1.0) == 1.7976931348623157e308);
    sl_dds_free(back);
    sl_buf_fini(&b);
    sl_dds_free(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double exact_quantile(const double *sorted, size_t n, double q)
{
    return sorted[(size_t)floor(q * (double)(n - 1))];
}

/* Latency-like values (log-normal around 80 ms, 1% zeros) over 12 partitions x 60 minutes,
 * serialized per part and merged from bytes in a shuffled order. */
static void dds_accuracy_merged(void **state)
{
    (void)state;
    const size_t nparts = 12 * 60;
    const size_t n = 600000;
    uint64_t rng = 404;
    double *vals = malloc(n * sizeof(double));
    sl_dds **cells = calloc(nparts, sizeof(sl_dds *));
    for (size_t i = 0; i < nparts; i++) {
        cells[i] = sl_dds_new();
    }
    long double exact_sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = rng_unit(&rng) < 0.01 ? 0.0 : 80.0 * exp(1.1 * rng_normal(&rng));
        vals[i] = v;
        exact_sum += v;
        assert_int_equal(sl_dds_add(cells[rng_next(&rng) % nparts], v, NULL), 0);
    }
    parts p;
    parts_init(&p, nparts);
    for (size_t i = 0; i < nparts; i++) {
        p.off[i] = p.buf.len;
        p.len[i] = sl_dds_serialize(cells[i], &p.buf);
    }
    size_t *order = iota(nparts);
    shuffle(order, nparts, &rng);
    sl_dds *total = sl_dds_new();
    for (size_t i = 0; i < nparts; i++) {
        sl_err err = {0};
        if (sl_dds_merge_bytes(total, p.buf.data + p.off[order[i]], p.len[order[i]], &err) != 0) {
            fail_msg("merge_bytes: %s", err.msg);
        }
    }
    qsort(vals, n, sizeof(double), cmp_double);
    assert_true(sl_dds_count(total) == n);
    assert_true(sl_dds_min(total) == vals[0]);
    assert_true(sl_dds_max(total) == vals[n - 1]);
    assert_true(sl_dds_quantile(total, 0.0) == vals[0]);
    assert_true(sl_dds_quantile(total, 1.0) == vals[n - 1]);
    assert_true(fabsl(sl_dds_sum(total) - exact_sum) / exact_sum < 1e-9);
    static const double qs[] = {0.5, 0.95, 0.99, 0.02, 0.25, 0.75, 0.999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double want = exact_quantile(vals, n, qs[i]);
        double got = sl_dds_quantile(total, qs[i]);
        double rel = fabs(got - want) / want;
        print_message("p%g: exact %.4f, sketch %.4f, error %.4f%%\n", 100 * qs[i], want, got,
                      100 * rel);
        assert_true(rel <= 0.01);
        assert_true(rel <= SL_DDS_ALPHA * (1 + 1e-9));
    }
    /* 1% zeros: p0.5 is zero */
    assert_true(sl_dds_quantile(total, 0.005) == 0.0);
    print_message("%zu sub-sketches, %zu bytes serialized (%.1f per sketch)\n", nparts, p.buf.len,
                  (double)p.buf.len / (double)nparts);

    /* the in-memory merge in order gives the same bytes */
    sl_dds *mem = sl_dds_new();
    for (size_t i = 0; i < nparts; i++) {
        sl_dds_merge(mem, cells[i]);
    }
    sl_buf a;
    sl_buf b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    dds_bytes(total, &a);
    dds_bytes(mem, &b);
    assert_same_bytes(&a, &b, "merge_bytes shuffled vs merge in order");
    sl_buf_fini(&a);
    sl_buf_fini(&b);
    sl_dds_free(mem);
    sl_dds_free(total);
    free(order);
    parts_fini(&p);
    for (size_t i = 0; i < nparts; i++) {
        sl_dds_free(cells[i]);
    }
    free(cells);
    free(vals);
}

/* Values over 18 decades (more than 2048 bins): the lowest collapse, the sketch stays
 * bounded, upper quantiles keep their accuracy, and collapsing in parts or in the whole
 * gives the same bytes. */
static void dds_collapse_bounded_and_order_independent(void **state)
{
    (void)state;
    const size_t n = 200000;
    const size_t nbig = 500;
    const size_t nsmall = 3;
    uint64_t rng = 505;
    double *vals = malloc(n * sizeof(double));
    sl_dds *whole = sl_dds_new();
    sl_dds **big = calloc(nbig, sizeof(sl_dds *));
    sl_dds **small = calloc(nsmall, sizeof(sl_dds *));
    for (size_t i = 0; i < nbig; i++) {
        big[i] = sl_dds_new();
    }
    for (size_t i = 0; i < nsmall; i++) {
        small[i] = sl_dds_new();
    }
    for (size_t i = 0; i < n; i++) {
        double v = rng_unit(&rng) < 0.001 ? 0.0 : pow(10.0, -6.0 + 18.0 * rng_unit(&rng));
        vals[i] = v;
        assert_int_equal(sl_dds_add(whole, v, NULL), 0);
        assert_int_equal(sl_dds_add(big[rng_next(&rng) % nbig], v, NULL), 0);
        /* the small split is by value range: one part holds only the lowest values */
        size_t k = v < 1e-2 ? 0 : v < 1e6 ? 1 : 2;
        assert_int_equal(sl_dds_add(small[k], v, NULL), 0);
    }
    sl_buf want;
    sl_buf got;
    sl_buf_init(&want);
    sl_buf_init(&got);
    dds_bytes(whole, &want);
    /* bounded: at most 2048 bins of a few bytes each plus the fixed fields */
    assert_true(want.len < 3 + 10 + 19 + 16 + 3 + 5 + SL_DDS_MAX_BINS * 3);
    print_message("18 decades, %zu values: %zu bytes\n", n, want.len);

    parts p;
    parts_init(&p, nbig);
    for (size_t i = 0; i < nbig; i++) {
        p.off[i] = p.buf.len;
        p.len[i] = sl_dds_serialize(big[i], &p.buf);
    }
    size_t *order = iota(nbig);
    shuffle(order, nbig, &rng);
    sl_dds *m1 = sl_dds_new();
    for (size_t i = 0; i < nbig; i++) {
        assert_int_equal(
            sl_dds_merge_bytes(m1, p.buf.data + p.off[order[i]], p.len[order[i]], NULL), 0);
    }
    dds_bytes(m1, &got);
    assert_same_bytes(&want, &got, "500 parts from bytes, shuffled");
    sl_dds *m2 = sl_dds_new();
    sl_dds_merge(m2, small[0]); /* lowest first: the collapse happens at the last merge */
    sl_dds_merge(m2, small[1]);
    sl_dds_merge(m2, small[2]);
    dds_bytes(m2, &got);
    assert_same_bytes(&want, &got, "3 parts by range, low to high");
    sl_dds *m3 = sl_dds_new();
    sl_dds_merge(m3, small[2]);
    sl_dds_merge(m3, small[0]);
    sl_dds_merge(m3, small[1]);
    dds_bytes(m3, &got);
    assert_same_bytes(&want, &got, "3 parts by range, high first");

    qsort(vals, n, sizeof(double), cmp_double);
    /* kept: the top 2048 bins, a factor 7.8e8 below 1e12, so from about 10^3.1 (q ~ 0.51) */
    static const double qs[] = {0.6, 0.95, 0.99};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double e = exact_quantile(vals, n, qs[i]);
        double g = sl_dds_quantile(m1, qs[i]);
        assert_true(fabs(g - e) / e <= SL_DDS_ALPHA * (1 + 1e-9));
    }
    /* below the kept range the answer is the lowest kept bin, not the value: collapsed */
    double low = sl_dds_quantile(m1, 0.25);
    assert_true(low > exact_quantile(vals, n, 0.25) * 1.5);
    assert_true(low < 1300.0);
    assert_true(sl_dds_min(m1) == vals[0] && sl_dds_max(m1) == vals[n - 1]);
    assert_true(sl_dds_count(m1) == n);

    sl_dds_free(m1);
    sl_dds_free(m2);
    sl_dds_free(m3);
    free(order);
    parts_fini(&p);
    for (size_t i = 0; i < nbig; i++) {
        sl_dds_free(big[i]);
    }
    for (size_t i = 0; i < nsmall; i++) {
        sl_dds_free(small[i]);
    }
    free(big);
    free(small);
    sl_dds_free(whole);
    free(vals);
    sl_buf_fini(&want);
    sl_buf_fini(&got);
}

static void dds_merge_order_independent(void **state)
{
    (void)state;
    /* latency-like data split 720 ways and 7 ways, merged in different orders */
    const size_t n = 50000;
    uint64_t rng = 606;
    sl_dds *whole = sl_dds_new();
    sl_dds *parts7[7];
    sl_dds *parts720[720];
    for (size_t i = 0; i < 7; i++) {
        parts7[i] = sl_dds_new();
    }
    for (size_t i = 0; i < 720; i++) {
        parts720[i] = sl_dds_new();
    }
    for (size_t i = 0; i < n; i++) {
        double v = rng_unit(&rng) < 0.02 ? 0.0 : 0.37 * exp(2.0 * rng_normal(&rng));
        sl_dds_add(whole, v, NULL);
        sl_dds_add(parts7[rng_next(&rng) % 7], v, NULL);
        sl_dds_add(parts720[rng_next(&rng) % 720], v, NULL);
    }
    sl_buf want;
    sl_buf got;
    sl_buf_init(&want);
    sl_buf_init(&got);
    dds_bytes(whole, &want);
    sl_dds *a = sl_dds_new();
    for (size_t i = 7; i > 0; i--) {
        sl_dds_merge(a, parts7[i - 1]);
    }
    dds_bytes(a, &got);
    assert_same_bytes(&want, &got, "7 parts reversed");
    sl_dds *b = sl_dds_new();
    sl_buf one;
    sl_buf_init(&one);
    for (size_t i = 0; i < 720; i++) {
        dds_bytes(parts720[(i * 7) % 720], &one); /* 7 and 720 coprime: a permutation */
        assert_int_equal(sl_dds_merge_bytes(b, one.data, one.len, NULL), 0);
    }
    dds_bytes(b, &got);
    assert_same_bytes(&want, &got, "720 parts from bytes, permuted");
    assert_true(sl_dds_sum(b) == sl_dds_sum(whole));
    sl_buf_fini(&one);
    sl_dds_free(a);
    sl_dds_free(b);
    for (size_t i = 0; i < 7; i++) {
        sl_dds_free(parts7[i]);
    }
    for (size_t i = 0; i < 720; i++) {
        sl_dds_free(parts720[i]);
    }
    sl_dds_free(whole);
    sl_buf_fini(&want);
    sl_buf_fini(&got);
}

static void dds_round_trip_and_sizes(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 10, 100, 1000, 10000, 100000};
    uint64_t rng = 707;
    sl_buf a;
    sl_buf b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_dds *s = sl_dds_new();
        for (size_t k = 0; k < ns[i]; k++) {
            sl_dds_add(s, 80.0 * exp(1.1 * rng_normal(&rng)), NULL);
        }
        dds_bytes(s, &a);
        print_message("quantiles over %6zu values: %5zu bytes (%s)\n", ns[i], a.len,
                      a.data[2] == 2   ? "dense bins"
                      : a.data[2] == 3 ? "single value"
                                       : "sparse bins");
        sl_dds *back = NULL;
        sl_err err = {0};
        if (sl_dds_deserialize(a.data, a.len, &back, &err) != 0) {
            fail_msg("n=%zu: %s", ns[i], err.msg);
        }
        dds_bytes(back, &b);
        assert_same_bytes(&a, &b, "round trip");
        assert_true(sl_dds_count(back) == ns[i]);
        assert_true(sl_dds_sum(back) == sl_dds_sum(s));
        assert_true(sl_dds_min(back) == sl_dds_min(s));
        assert_true(sl_dds_max(back) == sl_dds_max(s));
        for (double q = 0; q <= 1.0; q += 0.05) {
            assert_true(sl_dds_quantile(back, q) == sl_dds_quantile(s, q));
        }
        if (ns[i] == 1) {
            assert_int_equal(a.len, 11); /* header + the value */
        }
        sl_dds_free(back);
        sl_dds_free(s);
    }
    /* a single value reads back exactly (clamped to min = max) */
    sl_dds *s = sl_dds_new();
    sl_dds_add(s, 123.456, NULL);
    assert_true(sl_dds_quantile(s, 0.5) == 123.456);
    sl_dds_clear(s);
    assert_true(sl_dds_count(s) == 0 && isnan(sl_dds_quantile(s, 0.5)));
    sl_dds_free(s);
    sl_buf_fini(&a);
    sl_buf_fini(&b);
}

static void dds_header(blob *x, unsigned repr)
{
    x->n = 0;
    blob_byte(x, 1);
    blob_byte(x, SL_SKETCH_DDS);
    blob_byte(x, repr);
}

/* A sketch body: zeros, sum, min, max, then the caller's bins. */
static void dds_body(blob *x, uint64_t zeros, uint64_t sum, double min, double max)
{
    blob_varint(x, zeros);
    blob_varint(x, sum);
    blob_double(x, min);
    blob_double(x, max);
}

static void dds_rejects_corrupt(void **state)
{
    (void)state;
    blob x;
    /* a valid hand-made sketch first: 100 twice (bin ceil(ln 100 / ln gamma) = 461) */
    dds_header(&x, 1);
    dds_body(&x, 0, 200ULL << 32, 100.0, 100.0);
    blob_varint(&x, 1);
    blob_varint(&x, zz(461));
    blob_varint(&x, 2);
    sl_dds *ok = NULL;
    sl_err err = {0};
    if (sl_dds_deserialize(x.b, x.n, &ok, &err) != 0) {
        fail_msg("hand-made sketch rejected: %s", err.msg);
    }
    assert_true(sl_dds_quantile(ok, 0.5) == 100.0);
    sl_dds *direct = sl_dds_new();
    sl_dds_add(direct, 100.0, NULL);
    sl_dds_add(direct, 100.0, NULL);
    sl_buf b;
    sl_buf_init(&b);
    dds_bytes(direct, &b);
    assert_int_equal(b.len, x.n);
    assert_memory_equal(b.data, x.b, x.n); /* the encoder agrees with the spec */
    sl_dds_free(direct);
    sl_dds_free(ok);
    size_t valid_len = x.n;
    blob_byte(&x, 0);
    expect_dds_reject(x.b, x.n, "trailing bytes after the bins");
    for (size_t len = 0; len < valid_len; len++) {
        expect_dds_reject(x.b, len, NULL);
    }

    static const uint8_t v9[] = {9, SL_SKETCH_DDS, 0};
    expect_dds_reject(v9, 3, "unknown format version 9");
    static const uint8_t hll[] = {1, SL_SKETCH_HLL, 0, 0};
    expect_dds_reject(hll, 4, "type byte 1");
    static const uint8_t repr[] = {1, SL_SKETCH_DDS, 4};
    expect_dds_reject(repr, 3, "unknown representation 4");
    static const uint8_t empty_tail[] = {1, SL_SKETCH_DDS, 0, 0};
    expect_dds_reject(empty_tail, 4, "trailing bytes after an empty sketch");

    /* Sketches with bins, each wrong in one way: header, body, then the bins' varints. */
    const struct {
        unsigned repr;
        uint64_t zeros, sum;
        double min, max;
        size_t nv;
        uint64_t v[5];
        const char *msg;
    } bad[] = {
        /* the same single bin written dense: not smaller, so not canonical */
        {2, 0, 200ULL << 32, 100.0, 100.0, 3, {1, zz(461), 2}, "non-canonical bin encoding"},
        /* dense with an empty first bin */
        {2, 0, 0, 1.0, 100.0, 5, {3, zz(10), 0, 1, 1}, "empty bin 10"},
        /* sparse with a stored empty bin */
        {1, 0, 0, 1.0, 100.0, 5, {2, zz(10), 0, 0, 3}, "empty bin 10"},
        /* min negative, -0.0, NaN, min > max */
        {1, 0, 0, -1.0, 100.0, 3, {1, zz(461), 1}, "bad min/max"},
        {1, 0, 0, -0.0, 100.0, 3, {1, zz(461), 1}, "bad min/max"},
        {1, 0, 0, NAN, 100.0, 3, {1, zz(461), 1}, "bad min/max"},
        {1, 0, 0, 100.0, 1.0, 3, {1, zz(461), 1}, "bad min/max"},
        {1, 0, 0, 1.0, INFINITY, 3, {1, zz(461), 1}, "bad min/max"},
        /* zeros without min = 0; bins without max > 0 */
        {1, 2, 0, 5.0, 100.0, 3, {1, zz(461), 1}, "disagree"},
        {1, 2, 0, 0.0, 0.0, 3, {1, zz(461), 1}, "disagree"},
        /* bins encodings of no value or of one value (those have their own forms) */
        {1, 0, 0, 0.0, 0.0, 1, {0}, "count below 2"},
        {1, 1, 0, 0.0, 0.0, 1, {0}, "count below 2"},
        /* too many bins, a span over 2048 (next index 2048: span 2049), an index out of
         * range */
        {1, 0, 0, 1.0, 2.0, 1, {SL_DDS_MAX_BINS + 1}, "exceed the limit 2048"},
        {1, 0, 0, 1.0, 2.0, 5, {2, zz(0), 1, SL_DDS_MAX_BINS - 1, 1}, "span more than 2048"},
        {1, 0, 0, 1.0, 2.0, 3, {1, zz(-2000000), 1}, "out of range"},
        /* counts overflowing 64 bits */
        {1, 0, 0, 1.0, 2.0, 5, {2, zz(0), UINT64_MAX, 0, 1}, "overflows 64 bits"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dds_header(&x, bad[i].repr);
        dds_body(&x, bad[i].zeros, bad[i].sum, bad[i].min, bad[i].max);
        for (size_t k = 0; k < bad[i].nv; k++) {
            blob_varint(&x, bad[i].v[k]);
        }
        expect_dds_reject(x.b, x.n, bad[i].msg);
    }
    /* the single-value form */
    dds_header(&x, 3);
    blob_double(&x, 100.0);
    sl_dds *one = sl_dds_new();
    sl_dds_add(one, 100.0, NULL);
    dds_bytes(one, &b);
    assert_int_equal(b.len, x.n);
    assert_memory_equal(b.data, x.b, x.n);
    sl_dds_free(one);
    blob_byte(&x, 0);
    expect_dds_reject(x.b, x.n, "trailing bytes after a single value");
    expect_dds_reject(x.b, 10, "truncated 8-byte value");
    static const double bad_single[] = {-1.0, -0.0, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_single) / sizeof(bad_single[0]); i++) {
        dds_header(&x, 3);
        blob_double(&x, bad_single[i]);
        expect_dds_reject(x.b, x.n, "bad single value");
    }
    /* a sum varint longer than 128 bits */
    dds_header(&x, 1);
    blob_varint(&x, 0);
    for (int i = 0; i < 19; i++) {
        blob_byte(&x, 0xff);
    }
    blob_byte(&x, 0x01);
    expect_dds_reject(x.b, x.n, "varint for the sum overflows 128 bits");
    sl_buf_fini(&b);
}

static void dds_prefixes_and_mutations(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 5, 300, 20000};
    uint64_t rng = 808;
    sl_buf b;
    sl_buf_init(&b);
    int accepted = 0;
    int rejected = 0;
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_dds *s = sl_dds_new();
        for (size_t k = 0; k < ns[i]; k++) {
            double v = k % 50 == 7 ? 0.0 : 3.0 * exp(1.5 * rng_normal(&rng));
            sl_dds_add(s, v, NULL);
        }
        dds_bytes(s, &b);
        check_prefixes_and_mutations(&dds_codec, &b, 1, 1000, &rng, &accepted, &rejected);
        sl_dds_free(s);
    }
    print_message("mutations: %d accepted (re-serialize identically), %d rejected\n", accepted,
                  rejected);
    assert_true(accepted > 0 && rejected > 0);
    sl_buf_fini(&b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(hll_empty),
    cmocka_unit_test(hll_one_value_layout),
    cmocka_unit_test(hll_sizes_small_sets),
    cmocka_unit_test(hll_sparse_to_dense_transition),
    cmocka_unit_test(hll_accuracy_1k_exact),
    cmocka_unit_test(hll_accuracy_100k),
    cmocka_unit_test(hll_accuracy_1m),
    cmocka_unit_test(hll_merge_order_independent),
    cmocka_unit_test(hll_round_trip),
    cmocka_unit_test(hll_rejects_bad_headers),
    cmocka_unit_test(hll_rejects_corrupt_sparse),
    cmocka_unit_test(hll_rejects_nonzero_padding),
    cmocka_unit_test(hll_rejects_corrupt_dense),
    cmocka_unit_test(hll_saturated_registers_estimate_finite),
    cmocka_unit_test(hll_prefixes_and_mutations),
    cmocka_unit_test(sketch_type_peek),
    cmocka_unit_test(dds_empty),
    cmocka_unit_test(dds_quantile_extremes_exact_without_zeros),
    cmocka_unit_test(dds_quantile_rank_with_counts_past_2_53),
    cmocka_unit_test(dds_rejects_bad_values),
    cmocka_unit_test(dds_accuracy_merged),
    cmocka_unit_test(dds_collapse_bounded_and_order_independent),
    cmocka_unit_test(dds_merge_order_independent),
    cmocka_unit_test(dds_round_trip_and_sizes),
    cmocka_unit_test(dds_rejects_corrupt),
    cmocka_unit_test(dds_prefixes_and_mutations),
};

SL_TEST_MAIN(tests)
