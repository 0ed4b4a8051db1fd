/* Writing JSON replies: the HTTP layer builds its small bodies by hand ({"error":..},
 * {"accepted":..}), and every string that may hold outside bytes (a datasource name
 * from the query string, a content type, an error from another actor) goes through
 * sl_json_str so the reply is always valid JSON. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>

#include "msg.h"

/* Appends s[0..n) as a quoted JSON string: quotes, backslashes and control
 * characters are escaped, valid UTF-8 is kept, and each byte that is not part of a
 * valid UTF-8 sequence becomes \ufffd. s may be NULL when n is 0. */
void sl_json_str(sl_buf *b, const char *s, size_t n);

/* sl_json_str for a NUL-terminated string; NULL appends null. */
void sl_json_strz(sl_buf *b, const char *s);

/* Appends printf-formatted text verbatim (numbers, punctuation). */
void sl_json_raw(sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
