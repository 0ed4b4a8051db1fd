/* gzip request bodies: inflating a `Content-Encoding: gzip` upload with a cap on
 * the inflated size, so a small compressed body cannot expand past max_body_bytes
 * (a "zip bomb" is refused as soon as the cap is crossed, not after inflating it). */
#ifndef SL_GZIP_H
#define SL_GZIP_H

#include <stddef.h>

#include "err.h"
#include "msg.h"

/* Inflates the gzip data in[0..len) and appends the result to out. Several gzip
 * members one after another (as `cat a.gz b.gz` makes) inflate to their
 * concatenation. Returns 0; SL_ETOOBIG as soon as the inflated size would exceed
 * max_out bytes; SL_EPARSE for anything that is not complete, valid gzip (err says
 * what: bad header, corrupt data, truncated stream, trailing bytes). On error out
 * holds whatever was inflated before the failure; the caller owns out throughout. */
int sl_gzip_inflate(const void *in, size_t len, size_t max_out, sl_buf *out, sl_err *err);

#endif
