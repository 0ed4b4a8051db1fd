/* gzip-compressing test input with zlib itself, for the api/ unit tests that feed
 * gzip bodies to the gateway (api_test.c) or to sl_gzip_inflate (gzip_test.c): the
 * expected bytes come from zlib's deflate, independent of the code under test.
 * Test-only: a static function, included after sl_test.h (it asserts with cmocka). */
#ifndef SL_TESTGZIP_H
#define SL_TESTGZIP_H

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* gzip-compresses in[0..n) (level 6, gzip wrapper) into *out (malloc'd, the caller
 * frees it); returns the compressed length. */
static size_t gz(const void *in, size_t n, unsigned char **out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    *out = malloc(cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = *out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return len;
}

#endif
