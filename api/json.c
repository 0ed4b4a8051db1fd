/* JSON string writing for replies (see json.h). */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

void sl_json_str(sl_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    size_t i = 0;

    sl_buf_append(b, "\"", 1);
    while (i < n) {
        unsigned c = p[i];
        const char *esc = NULL;
        char tmp[8];

        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                esc = "\\ufffd";
            } else {
                i += len;
                continue;
            }
        }
        if (esc == NULL) {
            i++;
            continue;
        }
        sl_buf_append(b, s + run, i - run);
        sl_buf_append(b, esc, strlen(esc));
        i++;
        run = i;
    }
    if (n > run) {
        sl_buf_append(b, s + run, n - run);
    }
    sl_buf_append(b, "\"", 1);
}

void sl_json_strz(sl_buf *b, const char *s)
{
    if (s == NULL) {
        sl_buf_append(b, "null", 4);
        return;
    }
    sl_json_str(b, s, strlen(s));
}

void sl_json_raw(sl_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    SL_ASSERT(n >= 0);
    if ((size_t)n < sizeof(small)) {
        sl_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = sl_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sl_buf_append(b, big, (size_t)n);
    free(big);
}
