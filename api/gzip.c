/* gzip request bodies (see gzip.h). zlib does the work; this file adds the size cap,
 * multi-member streams and messages that say what is wrong with a bad body. */
#include "gzip.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

enum { CHUNK = 16384 };

int sl_gzip_inflate(const void *in, size_t len, size_t max_out, sl_buf *out, sl_err *err)
{
    z_stream zs;
    unsigned char chunk[CHUNK];
    const unsigned char *next = in;
    size_t left = len; /* input not yet handed to zlib */
    size_t produced = 0;
    int members = 0;
    int rc = 0;

    if (len == 0) {
        return sl_err_set(err, SL_EPARSE, "invalid gzip body: empty");
    }
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip wrapper only (a zlib or raw deflate stream is refused). */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return sl_err_set(err, SL_ENOMEM, "gzip: cannot initialise zlib");
    }
    for (;;) {
        if (zs.avail_in == 0 && left > 0) {
            size_t n = left < UINT_MAX ? left : UINT_MAX;
            zs.next_in = (Bytef *)next;
            zs.avail_in = (uInt)n;
            next += n;
            left -= n;
        }
        /* Never offer zlib more room than one byte past the cap: crossing it is enough
         * to refuse, and keeps a bomb from costing more than max_out bytes. */
        size_t room = max_out - produced >= CHUNK ? CHUNK : max_out - produced + 1;
        zs.next_out = chunk;
        zs.avail_out = (uInt)room;
        int zrc = inflate(&zs, Z_NO_FLUSH);
        size_t got = room - zs.avail_out;
        if (got > 0) {
            produced += got;
            if (produced > max_out) {
                rc = sl_err_set(err, SL_ETOOBIG,
                                "gzip body inflates to more than the limit of %zu bytes", max_out);
                goto out;
            }
            sl_buf_append(out, chunk, got);
        }
        switch (zrc) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            members++;
            if (zs.avail_in == 0 && left == 0) {
                goto out; /* done */
            }
            /* Another member follows; its header is checked like the first one's. */
            if (inflateReset(&zs) != Z_OK) {
                rc = sl_err_set(err, SL_EPARSE, "invalid gzip body: cannot reset zlib");
                goto out;
            }
            break;
        case Z_BUF_ERROR:
            /* No progress possible: with output room available that means the input
             * ran out before the end of the stream. */
            if (zs.avail_in == 0 && left == 0) {
                rc = sl_err_set(err, SL_EPARSE, "invalid gzip body: truncated stream");
                goto out;
            }
            break;
        case Z_MEM_ERROR:
            rc = sl_err_set(err, SL_ENOMEM, "gzip: out of memory");
            goto out;
        default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
            if (members > 0) {
                rc = sl_err_set(err, SL_EPARSE,
                                "invalid gzip body: bytes after gzip member %d are not gzip (%s)",
                                members, zs.msg != NULL ? zs.msg : "bad data");
            } else {
                rc = sl_err_set(err, SL_EPARSE, "invalid gzip body: %s",
                                zs.msg != NULL ? zs.msg : "bad data");
            }
            goto out;
        }
    }
out:
    inflateEnd(&zs);
    return rc;
}
