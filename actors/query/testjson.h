/* JSON helpers for the query actor's tests: run a native query and parse its reply, walk
 * a reply parsed with yajl_tree and read its values, failing the test (cmocka) when the
 * status or a value's type is not the expected one. */
#ifndef SL_QUERY_TESTJSON_H
#define SL_QUERY_TESTJSON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "exec.h"
#include "sl_test.h"

/* Runs the native query formatted from fmt/ap on st (NULL: no store) and parses its reply
 * into *last (the previous one is freed; the caller frees the last); out holds the reply
 * text. Fails the test when the status is not want_status or the reply is not JSON. */
static yajl_val tj_vrun(const sl_config *cfg, sl_store *st, sl_buf *out, yajl_val *last,
                        int want_status, const char *fmt, va_list ap)
{
    char json[8192];
    vsnprintf(json, sizeof(json), fmt, ap);
    int status = sl_query_native(cfg, st, json, strlen(json), 0, out);
    sl_buf_append(out, "", 1);
    if (status != want_status) {
        fail_msg("query %s: status %d (want %d): %s", json, status, want_status, out->data);
    }
    yajl_tree_free(*last);
    char ebuf[128];
    *last = yajl_tree_parse(out->data, ebuf, sizeof(ebuf));
    if (*last == NULL) {
        fail_msg("query %s: reply is not JSON (%s): %s", json, ebuf, out->data);
    }
    return *last;
}

/* Walks "a/0/b": object keys and array indexes. NULL when absent. */
static yajl_val jat(yajl_val v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static yajl_val jat(yajl_val v, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    char *save = NULL;
    for (char *tok = strtok_r(path, "/", &save); tok != NULL && v != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (YAJL_IS_ARRAY(v)) {
            size_t i = (size_t)strtoul(tok, NULL, 10);
            v = i < v->u.array.len ? v->u.array.values[i] : NULL;
        } else if (YAJL_IS_OBJECT(v)) {
            yajl_val next = NULL;
            for (size_t i = 0; i < v->u.object.len; i++) {
                if (strcmp(v->u.object.keys[i], tok) == 0) {
                    next = v->u.object.values[i];
                }
            }
            v = next;
        } else {
            v = NULL;
        }
    }
    return v;
}

static inline size_t jlen(yajl_val v)
{
    assert_non_null(v);
    assert_true(YAJL_IS_ARRAY(v));
    return v->u.array.len;
}

/* An integer or a double, as a double; what names it in the failure. */
static inline double jnum(yajl_val v, const char *what)
{
    if (v == NULL || !YAJL_IS_NUMBER(v)) {
        fail_msg("%s: expected a number", what);
    }
    return YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
}

#endif
