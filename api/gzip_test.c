/* Tests for gzip.c: the expected bytes are compressed here with zlib's deflate and
 * compared after sl_gzip_inflate. */
#include "sl_test.h"

#include <string.h>

#include "gzip.h"
#include "testgzip.h"

/* Deterministic, poorly compressible bytes spanning many inflate chunks. */
static unsigned char *noise(size_t n)
{
    unsigned char *p = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static void test_gzip_round_trip(void **state)
{
    const size_t n = 200000;
    unsigned char *plain = noise(n);
    unsigned char *z;
    size_t zlen = gz(plain, n, &z);
    sl_buf out;
    sl_err err = {0};

    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, n, &out, &err), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, plain, n);
    sl_buf_fini(&out);
    free(z);
    free(plain);
}

static void test_gzip_ndjson_text(void **state)
{
    const char *text = "{\"a\":1}\n{\"a\":2}\n";
    unsigned char *z;
    size_t zlen = gz(text, strlen(text), &z);
    sl_buf out;

    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, 1024, &out, NULL), 0);
    assert_int_equal(out.len, strlen(text));
    assert_memory_equal(out.data, text, strlen(text));
    sl_buf_fini(&out);
    free(z);
}

static void test_gzip_multi_member(void **state)
{
    unsigned char *a, *b;
    size_t alen = gz("hello ", 6, &a);
    size_t blen = gz("world", 5, &b);
    unsigned char *both = malloc(alen + blen);
    sl_buf out;

    memcpy(both, a, alen);
    memcpy(both + alen, b, blen);
    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(both, alen + blen, 100, &out, NULL), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    sl_buf_fini(&out);
    free(both);
    free(a);
    free(b);
}

static void test_gzip_corrupt_data(void **state)
{
    const size_t n = 50000;
    unsigned char *plain = noise(n);
    unsigned char *z;
    size_t zlen = gz(plain, n, &z);
    sl_buf out;
    sl_err err = {0};

    /* Flip bytes in the middle of the deflate data and in the CRC trailer. */
    for (size_t i = 100; i < 200; i++) {
        z[i] ^= 0x5a;
    }
    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, n, &out, &err), SL_EPARSE);
    assert_int_equal(err.code, SL_EPARSE);
    assert_non_null(strstr(err.msg, "invalid gzip body"));
    sl_buf_fini(&out);
    free(z);
    free(plain);
}

static void test_gzip_bad_crc(void **state)
{
    unsigned char *z;
    size_t zlen = gz("some text", 9, &z);
    sl_buf out;
    sl_err err = {0};

    z[zlen - 8] ^= 0xff; /* the CRC32 of the trailer */
    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, 100, &out, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "invalid gzip body"));
    assert_non_null(strstr(err.msg, "check"));
    sl_buf_fini(&out);
    free(z);
}

static void test_gzip_not_gzip(void **state)
{
    const char *plain = "{\"not\":\"compressed\"}";
    sl_buf out;
    sl_err err = {0};

    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(plain, strlen(plain), 100, &out, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "invalid gzip body"));
    assert_int_equal(out.len, 0);
    assert_int_equal(sl_gzip_inflate("", 0, 100, &out, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "empty"));
    sl_buf_fini(&out);
}

static void test_gzip_truncated(void **state)
{
    const char *text = "a line of text that is long enough to compress somewhat";
    unsigned char *z;
    size_t zlen = gz(text, strlen(text), &z);
    sl_buf out;
    sl_err err = {0};

    sl_buf_init(&out);
    /* Cut inside the trailer, then inside the data, then inside the header. */
    size_t cuts[] = {zlen - 3, zlen / 2, 5};
    for (size_t i = 0; i < 3; i++) {
        sl_buf_reset(&out);
        assert_int_equal(sl_gzip_inflate(z, cuts[i], 1000, &out, &err), SL_EPARSE);
        assert_non_null(strstr(err.msg, "truncated"));
    }
    sl_buf_fini(&out);
    free(z);
}

static void test_gzip_trailing_garbage(void **state)
{
    unsigned char *z;
    size_t zlen = gz("abc", 3, &z);
    unsigned char *buf = malloc(zlen + 4);
    sl_buf out;
    sl_err err = {0};

    memcpy(buf, z, zlen);
    memcpy(buf + zlen, "junk", 4);
    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(buf, zlen + 4, 100, &out, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "after gzip member 1"));
    sl_buf_fini(&out);
    free(buf);
    free(z);
}

static void test_gzip_size_cap(void **state)
{
    /* 4 MB of zeros compress to a few KB: a small body that inflates past the cap. */
    const size_t n = 4u << 20;
    unsigned char *zeros = calloc(1, n);
    unsigned char *z;
    size_t zlen = gz(zeros, n, &z);
    sl_buf out;
    sl_err err = {0};

    assert_true(zlen < 10000);
    sl_buf_init(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, 100000, &out, &err), SL_ETOOBIG);
    assert_int_equal(err.code, SL_ETOOBIG);
    assert_non_null(strstr(err.msg, "100000"));
    /* Nothing past the cap was kept. */
    assert_true(out.len <= 100000);

    /* The cap is inclusive: exactly n bytes fit in a cap of n, not in n - 1. */
    sl_buf_reset(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, n, &out, &err), 0);
    assert_int_equal(out.len, n);
    sl_buf_reset(&out);
    assert_int_equal(sl_gzip_inflate(z, zlen, n - 1, &out, &err), SL_ETOOBIG);
    sl_buf_fini(&out);
    free(z);
    free(zeros);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_gzip_round_trip),   cmocka_unit_test(test_gzip_ndjson_text),
    cmocka_unit_test(test_gzip_multi_member), cmocka_unit_test(test_gzip_corrupt_data),
    cmocka_unit_test(test_gzip_bad_crc),      cmocka_unit_test(test_gzip_not_gzip),
    cmocka_unit_test(test_gzip_truncated),    cmocka_unit_test(test_gzip_trailing_garbage),
    cmocka_unit_test(test_gzip_size_cap),
};

SL_TEST_MAIN(tests)
