/* The HTTP side of Druid SQL in the query actor: the request body, the five result
 * formats with Druid's exact bodies, and Druid's SQL error object.
 *
 * Formats (as Druid's ResultFormat writers):
 *   object       [{"a":1,"b":"x"},...]\n                    application/json
 *   array        [[1,"x"],...]\n                              application/json
 *   objectLines  {"a":1,"b":"x"}\n...{..}\n\n  (blank trailer)  text/plain
 *   arrayLines   [1,"x"]\n...\n\n                             text/plain
 *   csv          1,x\n...\n  then one more \n                  text/csv
 * header adds the column names first (object formats: an object of nulls, or of
 * {"type","sqlType"} with typesHeader / sqlTypesHeader; array and csv: a row of names,
 * then a row of types and one of SQL types). Numbers print as Java (Jackson) prints
 * them: longs as integers, doubles as Double.toString does (1.5, 87.0, 1.0E7). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "clock.h"
#include "result.h"
#include "sql.h"

/* ---- formats ------------------------------------------------------------------------------ */

static const char *const format_names[] = {"object", "array", "objectLines", "arrayLines", "csv"};

int sl_sql_format_parse(const char *name)
{
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(name, format_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *sl_sql_content_type(sl_sql_format f)
{
    switch (f) {
    case SL_SQL_OBJECT:
    case SL_SQL_ARRAY:
        return "application/json";
    case SL_SQL_OBJECTLINES:
    case SL_SQL_ARRAYLINES:
        return "text/plain";
    case SL_SQL_CSV:
        return "text/csv";
    }
    return "application/json";
}

/* Java's Double.toString: the shortest digits that read back, in plain notation with at
 * least one fraction digit for 1e-3 <= |d| < 1e7, else d.dddE[-]n. */
static void java_double(double d, char *buf, size_t size)
{
    char digits[40], tmp[48];
    if (d == 0) {
        snprintf(buf, size, "%s", signbit(d) ? "-0.0" : "0.0");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    /* tmp is [-]D.DDDDe[+-]XX */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) {
        p++;
    }
    size_t nd = 0;
    for (; *p != 'e'; p++) {
        if (*p != '.') {
            digits[nd++] = *p;
        }
    }
    digits[nd] = '\0';
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') {
        digits[--nd] = '\0';
    }
    size_t n = 0;
    char out[64];
    if (neg) {
        out[n++] = '-';
    }
    if (exp >= -3 && exp < 7) {
        if (exp < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = -1; i > exp; i--) {
                out[n++] = '0';
            }
            for (size_t i = 0; i < nd; i++) {
                out[n++] = digits[i];
            }
        } else {
            for (int i = 0; i <= exp; i++) {
                out[n++] = (size_t)i < nd ? digits[i] : '0';
            }
            out[n++] = '.';
            if ((size_t)exp + 1 < nd) {
                for (size_t i = (size_t)exp + 1; i < nd; i++) {
                    out[n++] = digits[i];
                }
            } else {
                out[n++] = '0';
            }
        }
        out[n] = '\0';
    } else {
        out[n++] = digits[0];
        out[n++] = '.';
        if (nd > 1) {
            for (size_t i = 1; i < nd; i++) {
                out[n++] = digits[i];
            }
        } else {
            out[n++] = '0';
        }
        out[n] = '\0';
        snprintf(out + n, sizeof(out) - n, "E%d", exp);
    }
    snprintf(buf, size, "%s", out);
}

static void gen_value(yajl_gen g, const sl_sql_value *v)
{
    char buf[64];
    switch (v->kind) {
    case SL_SQLV_NULL:
        yajl_gen_null(g);
        return;
    case SL_SQLV_BOOL:
        yajl_gen_bool(g, v->i != 0);
        return;
    case SL_SQLV_LONG:
    case SL_SQLV_INTERVAL:
        yajl_gen_integer(g, (long long)v->i);
        return;
    case SL_SQLV_DOUBLE:
        if (!isfinite(v->d)) {
            yajl_gen_null(g);
            return;
        }
        java_double(v->d, buf, sizeof(buf));
        yajl_gen_number(g, buf, strlen(buf));
        return;
    case SL_SQLV_STR:
        yajl_gen_string(g, (const unsigned char *)(v->s != NULL ? v->s : ""), v->n);
        return;
    case SL_SQLV_TIME:
        sl_res_time(g, v->i);
        return;
    }
}

/* The text of a value in CSV (null is empty). */
static size_t csv_text(const sl_sql_value *v, char *buf, size_t size, const char **out)
{
    switch (v->kind) {
    case SL_SQLV_NULL:
        *out = "";
        return 0;
    case SL_SQLV_BOOL:
        snprintf(buf, size, "%s", v->i ? "true" : "false");
        break;
    case SL_SQLV_LONG:
    case SL_SQLV_INTERVAL:
        snprintf(buf, size, "%lld", (long long)v->i);
        break;
    case SL_SQLV_DOUBLE:
        if (isnan(v->d)) {
            snprintf(buf, size, "NaN");
        } else if (isinf(v->d)) {
            snprintf(buf, size, "%s", v->d > 0 ? "Infinity" : "-Infinity");
        } else {
            java_double(v->d, buf, size);
        }
        break;
    case SL_SQLV_STR:
        *out = v->s != NULL ? v->s : "";
        return v->n;
    case SL_SQLV_TIME:
        sl_time_format(v->i, buf, size);
        break;
    }
    *out = buf;
    return strlen(buf);
}

/* One CSV field: quoted (quotes doubled) when it holds a quote, comma or line break, as
 * opencsv's CSVWriter does; quote_all for a row whose only field is empty. */
static void csv_field(sl_buf *out, const char *s, size_t n, bool quote_all)
{
    bool q = quote_all;
    for (size_t i = 0; i < n && !q; i++) {
        q = s[i] == '"' || s[i] == ',' || s[i] == '\n' || s[i] == '\r';
    }
    if (!q) {
        sl_buf_append(out, s, n);
        return;
    }
    sl_buf_append(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            sl_buf_append(out, "\"", 1);
        }
        sl_buf_append(out, &s[i], 1);
    }
    sl_buf_append(out, "\"", 1);
}

static void csv_line(sl_buf *out, int n, const char *const *fields)
{
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            sl_buf_append(out, ",", 1);
        }
        csv_field(out, fields[i], strlen(fields[i]), false);
    }
    sl_buf_append(out, "\n", 1);
}

static void write_csv(const sl_sql_result *r, bool header, bool types, bool sql_types, sl_buf *out)
{
    int nc = sl_sql_result_ncols(r);
    const char **f = sl_calloc((size_t)nc + 1, sizeof(char *));
    if (header) {
        for (int i = 0; i < nc; i++) {
            f[i] = sl_sql_result_name(r, i);
        }
        csv_line(out, nc, f);
        if (types) {
            for (int i = 0; i < nc; i++) {
                f[i] = sl_sql_native_type(sl_sql_result_type(r, i));
            }
            csv_line(out, nc, f);
        }
        if (sql_types) {
            for (int i = 0; i < nc; i++) {
                f[i] = sl_sql_type_name(sl_sql_result_type(r, i));
            }
            csv_line(out, nc, f);
        }
    }
    for (size_t row = 0; row < sl_sql_result_nrows(r); row++) {
        for (int i = 0; i < nc; i++) {
            char buf[64];
            const char *s;
            size_t n = csv_text(sl_sql_result_cell(r, row, i), buf, sizeof(buf), &s);
            if (i > 0) {
                sl_buf_append(out, ",", 1);
            }
            csv_field(out, s, n, nc == 1 && n == 0);
        }
        sl_buf_append(out, "\n", 1);
    }
    sl_buf_append(out, "\n", 1);
    free(f);
}

/* The header entry of an object format. */
static void object_header(yajl_gen g, const sl_sql_result *r, bool types, bool sql_types)
{
    yajl_gen_map_open(g);
    for (int i = 0; i < sl_sql_result_ncols(r); i++) {
        sl_res_cstr(g, sl_sql_result_name(r, i));
        if (!types && !sql_types) {
            yajl_gen_null(g);
            continue;
        }
        yajl_gen_map_open(g);
        if (types) {
            sl_res_cstr(g, "type");
            sl_res_cstr(g, sl_sql_native_type(sl_sql_result_type(r, i)));
        }
        if (sql_types) {
            sl_res_cstr(g, "sqlType");
            sl_res_cstr(g, sl_sql_type_name(sl_sql_result_type(r, i)));
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
}

/* The header rows of an array format; returns how many it wrote. */
static int array_header(yajl_gen g, const sl_sql_result *r, bool types, bool sql_types, bool lines,
                        sl_buf *out)
{
    int n = 0;
    for (int k = 0; k < 3; k++) {
        if ((k == 1 && !types) || (k == 2 && !sql_types)) {
            continue;
        }
        if (lines && n > 0) {
            yajl_gen_reset(g, NULL);
            sl_buf_append(out, "\n", 1);
        }
        yajl_gen_array_open(g);
        for (int i = 0; i < sl_sql_result_ncols(r); i++) {
            sl_sql_type t = sl_sql_result_type(r, i);
            sl_res_cstr(g, k == 0   ? sl_sql_result_name(r, i)
                           : k == 1 ? sl_sql_native_type(t)
                                    : sl_sql_type_name(t));
        }
        yajl_gen_array_close(g);
        n++;
    }
    return n;
}

void sl_sql_result_write(const sl_sql_result *r, sl_sql_format f, bool header, bool types,
                         bool sql_types, sl_buf *out)
{
    sl_buf_reset(out);
    if (!header) {
        types = sql_types = false;
    }
    if (f == SL_SQL_CSV) {
        write_csv(r, header, types, sql_types, out);
        return;
    }
    bool lines = f == SL_SQL_OBJECTLINES || f == SL_SQL_ARRAYLINES;
    bool objects = f == SL_SQL_OBJECT || f == SL_SQL_OBJECTLINES;
    int nc = sl_sql_result_ncols(r);
    yajl_gen g = sl_res_gen(out);
    size_t written = 0;
    if (!lines) {
        yajl_gen_array_open(g);
    }
    if (header) {
        if (objects) {
            object_header(g, r, types, sql_types);
            written = 1;
        } else {
            written = (size_t)array_header(g, r, types, sql_types, lines, out);
        }
    }
    for (size_t row = 0; row < sl_sql_result_nrows(r); row++) {
        if (lines && written > 0) {
            yajl_gen_reset(g, NULL);
            sl_buf_append(out, "\n", 1);
        }
        if (objects) {
            yajl_gen_map_open(g);
        } else {
            yajl_gen_array_open(g);
        }
        for (int i = 0; i < nc; i++) {
            if (objects) {
                sl_res_cstr(g, sl_sql_result_name(r, i));
            }
            gen_value(g, sl_sql_result_cell(r, row, i));
        }
        if (objects) {
            yajl_gen_map_close(g);
        } else {
            yajl_gen_array_close(g);
        }
        written++;
    }
    if (!lines) {
        yajl_gen_array_close(g);
    }
    sl_res_gen_free(g);
    sl_buf_append(out, lines ? "\n\n" : "\n", lines ? 2 : 1);
}

/* ---- errors ---------------------------------------------------------------------------------- */

typedef struct sql_err_kind {
    int code;
    int status;
    const char *error;
    const char *klass;
} sql_err_kind;

static const sql_err_kind sql_errs[] = {
    {SL_ECODEC, 400, "Malformed query", "sluice.SqlRequestException"},
    {SL_EPARSE, 400, "SQL parse failed", "org.apache.calcite.sql.parser.SqlParseException"},
    {SL_EINVAL, 400, "Plan validation failed", "org.apache.calcite.tools.ValidationException"},
    {SL_ENOTFOUND, 400, "Unsupported operation", "sluice.UnsupportedOperationException"},
    {SL_ETOOBIG, 400, "Resource limit exceeded",
     "org.apache.druid.query.ResourceLimitExceededException"},
    {SL_EBUSY, 429, "Query capacity exceeded",
     "org.apache.druid.query.QueryCapacityExceededException"},
    {SL_ETIMEDOUT, 504, "Query timeout", "org.apache.druid.query.QueryTimeoutException"},
};

int sl_sql_error(sl_buf *out, int code, const char *msg)
{
    sql_err_kind k = {code, 500, "Unknown exception", "sluice.InternalError"};
    for (size_t i = 0; i < sizeof(sql_errs) / sizeof(sql_errs[0]); i++) {
        if (sql_errs[i].code == code) {
            k = sql_errs[i];
        }
    }
    sl_buf_reset(out);
    yajl_gen g = sl_res_gen(out);
    yajl_gen_map_open(g);
    sl_res_cstr(g, "error");
    sl_res_cstr(g, k.error);
    sl_res_cstr(g, "errorMessage");
    const char *text = msg != NULL && msg[0] != '\0' ? msg : sl_err_name(code);
    /* never cut a UTF-8 sequence: messages may quote user text truncated to a buffer */
    size_t n = strlen(text), i = n;
    while (i > 0 && ((unsigned char)text[i - 1] & 0xc0) == 0x80 && n - i < 3) {
        i--;
    }
    if (i > 0) {
        unsigned char lead = (unsigned char)text[i - 1];
        size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (want > 1 && n - (i - 1) < want) {
            n = i - 1;
        }
    }
    yajl_gen_string(g, (const unsigned char *)text, n);
    sl_res_cstr(g, "errorClass");
    sl_res_cstr(g, k.klass);
    sl_res_cstr(g, "host");
    yajl_gen_null(g);
    yajl_gen_map_close(g);
    sl_res_gen_free(g);
    return k.status;
}

/* ---- the request ------------------------------------------------------------------------------
 */

#define JSTR(v) ((const char *)(v)->u.string)

static yajl_val jfield(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

static int get_flag(yajl_val root, const char *key, bool *out, sl_err *err)
{
    yajl_val v = jfield(root, key);
    if (v == NULL || YAJL_IS_NULL(v)) {
        return 0;
    }
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        *out = YAJL_IS_TRUE(v);
        return 0;
    }
    return sl_err_set(err, SL_ECODEC, "%s: expected true or false", key);
}

static int parse_param(yajl_val v, size_t i, sl_sql_value *out, sl_err *err)
{
    if (!YAJL_IS_OBJECT(v)) {
        return sl_err_set(err, SL_ECODEC,
                          "parameters[%zu]: expected an object {\"type\": ..., \"value\": ...}", i);
    }
    yajl_val t = jfield(v, "type"), val = jfield(v, "value");
    if (t == NULL || !YAJL_IS_STRING(t)) {
        return sl_err_set(err, SL_ECODEC, "parameters[%zu].type: required, a SQL type name", i);
    }
    const char *type = JSTR(t);
    memset(out, 0, sizeof(*out));
    if (val == NULL || YAJL_IS_NULL(val)) {
        out->kind = SL_SQLV_NULL;
        return 0;
    }
    char num[64];
    const char *text = NULL;
    if (YAJL_IS_STRING(val)) {
        text = JSTR(val);
    } else if (YAJL_IS_NUMBER(val)) {
        text = YAJL_GET_NUMBER(val);
    } else if (YAJL_IS_TRUE(val) || YAJL_IS_FALSE(val)) {
        text = YAJL_IS_TRUE(val) ? "true" : "false";
    } else {
        return sl_err_set(err, SL_ECODEC, "parameters[%zu].value: expected a scalar", i);
    }
    snprintf(num, sizeof(num), "%s", text);
    if (strcasecmp(type, "VARCHAR") == 0 || strcasecmp(type, "CHAR") == 0) {
        out->kind = SL_SQLV_STR;
        out->s = sl_strdup(text);
        out->n = strlen(text);
        return 0;
    }
    char *end;
    if (strcasecmp(type, "BIGINT") == 0 || strcasecmp(type, "INTEGER") == 0 ||
        strcasecmp(type, "SMALLINT") == 0 || strcasecmp(type, "TINYINT") == 0) {
        long long x = strtoll(num, &end, 10);
        if (end == num || *end != '\0') {
            return sl_err_set(err, SL_ECODEC, "parameters[%zu].value: \"%s\" is not a %s", i, num,
                              type);
        }
        out->kind = SL_SQLV_LONG;
        out->i = x;
        return 0;
    }
    if (strcasecmp(type, "DOUBLE") == 0 || strcasecmp(type, "FLOAT") == 0 ||
        strcasecmp(type, "REAL") == 0 || strcasecmp(type, "DECIMAL") == 0) {
        double d = strtod(num, &end);
        if (end == num || *end != '\0' || !isfinite(d)) {
            return sl_err_set(err, SL_ECODEC, "parameters[%zu].value: \"%s\" is not a %s", i, num,
                              type);
        }
        out->kind = SL_SQLV_DOUBLE;
        out->d = d;
        return 0;
    }
    if (strcasecmp(type, "BOOLEAN") == 0) {
        if (strcasecmp(num, "true") != 0 && strcasecmp(num, "false") != 0) {
            return sl_err_set(err, SL_ECODEC, "parameters[%zu].value: \"%s\" is not a BOOLEAN", i,
                              num);
        }
        out->kind = SL_SQLV_BOOL;
        out->i = strcasecmp(num, "true") == 0;
        return 0;
    }
    if (strcasecmp(type, "TIMESTAMP") == 0 || strcasecmp(type, "DATE") == 0) {
        int64_t ms;
        sl_err e;
        if (YAJL_IS_INTEGER(val)) {
            ms = val->u.number.i;
        } else if (sl_time_parse(text, strlen(text), SL_TS_ISO, &ms, &e) != 0) {
            return sl_err_set(err, SL_ECODEC, "parameters[%zu].value: \"%s\" is not a %s: %s", i,
                              text, type, e.msg);
        }
        out->kind = SL_SQLV_TIME;
        out->i = ms;
        return 0;
    }
    return sl_err_set(err, SL_ECODEC,
                      "parameters[%zu].type: \"%s\" is not supported; use VARCHAR, BIGINT, "
                      "INTEGER, DOUBLE, FLOAT, BOOLEAN, TIMESTAMP or DATE",
                      i, type);
}

int sl_sql_request_parse(const char *body, size_t len, sl_sql_request **out, sl_err *err)
{
    sl_sql_request *r = sl_calloc(1, sizeof(*r));
    yajl_val root = NULL;
    char *text = NULL;
    int rc = 0;
    *out = NULL;
    if (memchr(body, '\0', len) != NULL) {
        rc = sl_err_set(err, SL_ECODEC, "request body contains a NUL byte");
        goto out;
    }
    /* yajl's tree parser recurses: refuse absurd nesting before parsing */
    int depth = 0, maxd = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            maxd = ++depth > maxd ? depth : maxd;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    if (maxd > 64) {
        rc = sl_err_set(err, SL_ECODEC, "request body is nested more than 64 levels deep");
        goto out;
    }
    text = sl_strndup(body, len);
    char ebuf[256];
    root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (root == NULL) {
        char *nl;
        while ((nl = strchr(ebuf, '\n')) != NULL) {
            *nl = ' ';
        }
        rc = sl_err_set(err, SL_ECODEC, "request body is not valid JSON: %s", ebuf);
        goto out;
    }
    if (!YAJL_IS_OBJECT(root)) {
        rc = sl_err_set(err, SL_ECODEC,
                        "request body must be a JSON object such as {\"query\": \"SELECT ...\"}");
        goto out;
    }
    yajl_val q = jfield(root, "query");
    if (q == NULL || !YAJL_IS_STRING(q)) {
        rc = sl_err_set(err, SL_ECODEC, "query: required, the SQL text as a string");
        goto out;
    }
    r->query = sl_strdup(JSTR(q));
    r->format = SL_SQL_OBJECT;
    yajl_val f = jfield(root, "resultFormat");
    if (f != NULL && !YAJL_IS_NULL(f)) {
        int fmt = YAJL_IS_STRING(f) ? sl_sql_format_parse(JSTR(f)) : -1;
        if (fmt < 0) {
            rc = sl_err_set(err, SL_ECODEC,
                            "resultFormat: expected object, array, objectLines, arrayLines or csv");
            goto out;
        }
        r->format = (sl_sql_format)fmt;
    }
    if ((rc = get_flag(root, "header", &r->header, err)) != 0 ||
        (rc = get_flag(root, "typesHeader", &r->types_header, err)) != 0 ||
        (rc = get_flag(root, "sqlTypesHeader", &r->sql_types_header, err)) != 0) {
        goto out;
    }
    yajl_val ctx = jfield(root, "context");
    if (ctx != NULL && !YAJL_IS_NULL(ctx)) {
        if (!YAJL_IS_OBJECT(ctx)) {
            rc = sl_err_set(err, SL_ECODEC, "context: expected an object");
            goto out;
        }
        yajl_val t = jfield(ctx, "timeout");
        if (t != NULL && !YAJL_IS_NULL(t)) {
            if (!YAJL_IS_INTEGER(t) || t->u.number.i < 0) {
                rc = sl_err_set(err, SL_ECODEC,
                                "context.timeout: expected a non-negative number of milliseconds");
                goto out;
            }
            r->timeout_ms = t->u.number.i;
        }
        yajl_val tz = jfield(ctx, "sqlTimeZone");
        if (tz != NULL && !YAJL_IS_NULL(tz) &&
            !(YAJL_IS_STRING(tz) &&
              (strcmp(JSTR(tz), "UTC") == 0 || strcmp(JSTR(tz), "Etc/UTC") == 0 ||
               strcmp(JSTR(tz), "Z") == 0))) {
            rc = sl_err_set(err, SL_ECODEC, "context.sqlTimeZone: only UTC is supported");
            goto out;
        }
    }
    yajl_val ps = jfield(root, "parameters");
    if (ps != NULL && !YAJL_IS_NULL(ps)) {
        if (!YAJL_IS_ARRAY(ps)) {
            rc = sl_err_set(err, SL_ECODEC, "parameters: expected an array");
            goto out;
        }
        r->params = sl_calloc(ps->u.array.len + 1, sizeof(sl_sql_value));
        for (size_t i = 0; i < ps->u.array.len; i++) {
            if ((rc = parse_param(ps->u.array.values[i], i, &r->params[i], err)) != 0) {
                goto out;
            }
            r->nparams++;
        }
    }
out:
    yajl_tree_free(root);
    free(text);
    if (rc != 0) {
        sl_sql_request_free(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

void sl_sql_request_free(sl_sql_request *r)
{
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < r->nparams; i++) {
        if (r->params[i].kind == SL_SQLV_STR) {
            free((char *)r->params[i].s);
        }
    }
    free(r->params);
    free(r->query);
    free(r);
}

int sl_query_sql(const sl_config *cfg, sl_store *st, const char *body, size_t len,
                 int64_t default_timeout_ms, sl_buf *out)
{
    sl_err err = {0, ""};
    sl_sql_request *req = NULL;
    sl_sql_result *res = NULL;
    int rc = sl_sql_request_parse(body != NULL ? body : "", body != NULL ? len : 0, &req, &err);
    if (rc == 0) {
        sl_sql_opts opts = {.params = req->params,
                            .nparams = req->nparams,
                            .now_ms = sl_now_ms(),
                            .timeout_ms =
                                req->timeout_ms > 0 ? req->timeout_ms : default_timeout_ms};
        rc = sl_sql_run(cfg, st, req->query, &opts, &res, &err);
    }
    int status = 200;
    if (rc == 0) {
        sl_sql_result_write(res, req->format, req->header, req->types_header, req->sql_types_header,
                            out);
    } else {
        status = sl_sql_error(out, rc, err.msg);
    }
    sl_sql_result_free(res);
    sl_sql_request_free(req);
    return status;
}
