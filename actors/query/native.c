/* Parser for Druid native queries: JSON text -> sl_native plan (see native.h).
 *
 * The body is parsed into a yajl tree, then walked once. Every object is checked
 * against the list of fields Druid defines for it, so a typo ("filters", "fieldname")
 * is a 400 naming the field instead of being silently ignored. Messages start with the
 * JSON path of the offending value ("aggregations[1].fieldName: ..."). Names are
 * resolved against the datasource spec here; execution never looks at strings except
 * to build the dictionary bitmaps of filters and to print results. */
#include "native.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "clock.h"

/* Periods, durations and origins beyond this (about 31000 years) are refused, so
 * bucket arithmetic can never overflow int64. */
#define MAX_SPAN_MS 1000000000000000LL

/* Deeper JSON than this is refused before parsing: yajl_tree_free and our walkers
 * recurse, and no sensible query nests filters a hundred deep. */
#define MAX_DEPTH 100
#define PATH_MAX_LEN 256

/* The string of a value already checked with YAJL_IS_STRING (YAJL_GET_STRING's NULL
 * branch upsets -Wnonnull). */
#define JSTR(v) ((const char *)(v)->u.string)

typedef struct pctx {
    const sl_config *cfg;
    const sl_spec *spec;
    sl_native *q;
    sl_err *err;
} pctx;

static int parse_root(pctx *c, yajl_val root);
static int parse_filter(pctx *c, yajl_val v, const char *path, sl_filter **out);

/* ---- messages --------------------------------------------------------------------- */

static int fail(sl_err *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(sl_err *err, int code, const char *path, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path == NULL || path[0] == '\0') {
        return sl_err_set(err, code, "%s", msg);
    }
    return sl_err_set(err, code, "%s: %s", path, msg);
}

#define BAD(c, path, ...) fail((c)->err, SL_EPARSE, path, __VA_ARGS__)
#define UNSUPPORTED(c, path, ...) fail((c)->err, SL_EINVAL, path, __VA_ARGS__)

static const char *jtype(yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        return "null";
    }
    if (YAJL_IS_STRING(v)) {
        return "a string";
    }
    if (YAJL_IS_NUMBER(v)) {
        return "a number";
    }
    if (YAJL_IS_OBJECT(v)) {
        return "an object";
    }
    if (YAJL_IS_ARRAY(v)) {
        return "an array";
    }
    return "a boolean";
}

/* Paths longer than PATH_MAX_LEN are cut: they only appear in messages. */
static void path_cat(char *dst, size_t *n, const char *s)
{
    while (*s != '\0' && *n + 1 < PATH_MAX_LEN) {
        dst[(*n)++] = *s++;
    }
    dst[*n] = '\0';
}

static void join_key(char *dst, const char *path, const char *key)
{
    size_t n = 0;
    dst[0] = '\0';
    path_cat(dst, &n, path);
    if (path[0] != '\0') {
        path_cat(dst, &n, ".");
    }
    path_cat(dst, &n, key);
}

static void join_index(char *dst, const char *path, size_t i)
{
    char num[32];
    size_t n = 0;
    snprintf(num, sizeof(num), "[%zu]", i);
    dst[0] = '\0';
    path_cat(dst, &n, path);
    path_cat(dst, &n, num);
}

/* Appends ", "-separated items to buf (for "expected one of" lists). */
static void list_append(char *buf, size_t size, const char *item)
{
    size_t n = strlen(buf);
    if (n + 1 >= size) {
        return;
    }
    snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "", item);
}

/* ---- JSON access -------------------------------------------------------------------- */

static yajl_val get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

/* Present and not JSON null. */
static yajl_val get_set(yajl_val obj, const char *key)
{
    yajl_val v = get(obj, key);
    return (v == NULL || YAJL_IS_NULL(v)) ? NULL : v;
}

static int want_object(pctx *c, yajl_val v, const char *path)
{
    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        return BAD(c, path, "expected an object, got %s", jtype(v));
    }
    return 0;
}

/* Every key of obj must be in allowed (NULL-terminated), and none may repeat. */
static int check_keys(pctx *c, yajl_val obj, const char *path, const char *const *allowed)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *k = obj->u.object.keys[i];
        bool ok = false;
        for (size_t j = 0; allowed[j] != NULL; j++) {
            if (strcmp(allowed[j], k) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char list[300] = "";
            for (size_t j = 0; allowed[j] != NULL; j++) {
                list_append(list, sizeof(list), allowed[j]);
            }
            return BAD(c, path, "unknown field \"%s\"; expected one of: %s", k, list);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(obj->u.object.keys[j], k) == 0) {
                return BAD(c, path, "field \"%s\" appears twice", k);
            }
        }
    }
    return 0;
}

/* A string field: *out is borrowed from the tree; NULL when absent and !required. */
static int get_string(pctx *c, yajl_val obj, const char *key, const char *path, bool required,
                      const char **out)
{
    char p[PATH_MAX_LEN];
    yajl_val v = get_set(obj, key);
    *out = NULL;
    if (v == NULL) {
        if (required) {
            join_key(p, path, key);
            return BAD(c, p, "required");
        }
        return 0;
    }
    if (!YAJL_IS_STRING(v)) {
        join_key(p, path, key);
        return BAD(c, p, "expected a string, got %s", jtype(v));
    }
    *out = JSTR(v);
    if (required && (*out)[0] == '\0') {
        join_key(p, path, key);
        return BAD(c, p, "must not be empty");
    }
    return 0;
}

/* true/false, or the strings "true"/"false" (Druid's own examples quote booleans). */
static int get_bool(pctx *c, yajl_val obj, const char *key, const char *path, bool *out)
{
    char p[PATH_MAX_LEN];
    yajl_val v = get_set(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (YAJL_IS_TRUE(v) || (YAJL_IS_STRING(v) && strcmp(JSTR(v), "true") == 0)) {
        *out = true;
        return 0;
    }
    if (YAJL_IS_FALSE(v) || (YAJL_IS_STRING(v) && strcmp(JSTR(v), "false") == 0)) {
        *out = false;
        return 0;
    }
    join_key(p, path, key);
    return BAD(c, p, "expected true or false, got %s", jtype(v));
}

/* An integer in [min, max], also accepted as a string of digits. */
static int get_int(pctx *c, yajl_val obj, const char *key, const char *path, int64_t min,
                   int64_t max, int64_t *out)
{
    char p[PATH_MAX_LEN];
    yajl_val v = get_set(obj, key);
    if (v == NULL) {
        return 0;
    }
    join_key(p, path, key);
    int64_t x;
    if (YAJL_IS_INTEGER(v)) {
        x = YAJL_GET_INTEGER(v);
    } else if (YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) == floor(YAJL_GET_DOUBLE(v)) &&
               fabs(YAJL_GET_DOUBLE(v)) < 9e15) {
        x = (int64_t)YAJL_GET_DOUBLE(v);
    } else if (YAJL_IS_STRING(v)) {
        const char *s = JSTR(v);
        char *end;
        long long ll = strtoll(s, &end, 10);
        if (s[0] == '\0' || *end != '\0') {
            return BAD(c, p, "expected an integer, got \"%s\"", s);
        }
        x = ll;
    } else {
        return BAD(c, p, "expected an integer, got %s", jtype(v));
    }
    if (x < min || x > max) {
        return BAD(c, p, "%lld is out of range [%lld, %lld]", (long long)x, (long long)min,
                   (long long)max);
    }
    *out = x;
    return 0;
}

/* A scalar as a filter value: strings as is, numbers as written, booleans as words,
 * null as NULL. Returns a new string (or NULL) in *out. */
static int scalar_string(pctx *c, yajl_val v, const char *path, char **out)
{
    *out = NULL;
    if (v == NULL || YAJL_IS_NULL(v)) {
        return 0;
    }
    if (YAJL_IS_STRING(v)) {
        *out = sl_strdup(JSTR(v));
    } else if (YAJL_IS_NUMBER(v)) {
        *out = sl_strdup(v->u.number.r);
    } else if (YAJL_IS_TRUE(v)) {
        *out = sl_strdup("true");
    } else if (YAJL_IS_FALSE(v)) {
        *out = sl_strdup("false");
    } else {
        return BAD(c, path, "expected a string, number or null, got %s", jtype(v));
    }
    return 0;
}

/* ---- malformed JSON ------------------------------------------------------------------ */

/* Rejects nesting deeper than MAX_DEPTH without building anything. */
static int check_depth(const char *s, size_t len, sl_err *err)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\') {
                i++;
            } else if (ch == '"') {
                in_str = false;
            }
            continue;
        }
        if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > MAX_DEPTH) {
                return sl_err_set(err, SL_ECODEC,
                                  "query JSON is nested deeper than %d levels (at byte %zu)",
                                  MAX_DEPTH, i);
            }
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return 0;
}

/* Re-runs the stream parser to find where the JSON breaks and says so with line and
 * column (1-based); yajl_tree only reports the message. */
static int json_error(const char *body, size_t len, sl_err *err)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    yajl_config(h, yajl_allow_comments, 1);
    size_t off = len;
    bool early = false;
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st != yajl_status_ok) {
        /* bytes consumed include the offending one: point at it */
        off = yajl_get_bytes_consumed(h);
        off = off > 0 ? off - 1 : 0;
    } else {
        st = yajl_complete_parse(h);
        early = true;
    }
    char msg[200] = "invalid JSON";
    if (st != yajl_status_ok) {
        unsigned char *m = yajl_get_error(h, 0, (const unsigned char *)body, len);
        snprintf(msg, sizeof(msg), "%s", (const char *)m);
        yajl_free_error(h, m);
    }
    yajl_free(h);
    size_t n = strlen(msg);
    while (n > 0 && isspace((unsigned char)msg[n - 1])) {
        msg[--n] = '\0';
    }
    if (off > len) {
        off = len;
    }
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (body[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return sl_err_set(err, SL_ECODEC, "malformed JSON at line %zu, column %zu: %s%s", line, col,
                      msg, early ? " (the body ends early)" : "");
}

/* ---- entry --------------------------------------------------------------------------- */

int sl_native_parse(const sl_config *cfg, const char *body, size_t len, sl_native **out,
                    sl_err *err)
{
    int rc;
    char *text = NULL;
    yajl_val root = NULL;
    sl_native *q = sl_calloc(1, sizeof(*q));
    q->limit = -1;
    q->threshold = -1;

    const char *nul = memchr(body, '\0', len);
    if (nul != NULL) {
        rc = sl_err_set(err, SL_ECODEC, "query body contains a NUL byte at offset %zu",
                        (size_t)(nul - body));
        goto out;
    }
    rc = check_depth(body, len, err);
    if (rc != 0) {
        goto out;
    }
    text = sl_malloc(len + 1);
    memcpy(text, body, len);
    text[len] = '\0';
    char ebuf[256];
    root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (root == NULL) {
        rc = json_error(body, len, err);
        goto out;
    }
    pctx c = {.cfg = cfg, .q = q, .err = err};
    if (!YAJL_IS_OBJECT(root)) {
        rc = BAD(&c, "", "a native query must be a JSON object, got %s", jtype(root));
        goto out;
    }
    rc = parse_root(&c, root);
out:
    yajl_tree_free(root);
    free(text);
    if (rc != 0) {
        sl_native_free(q);
        q = NULL;
    }
    *out = q;
    return rc;
}

/* ---- dataSource, intervals, granularity ---------------------------------------------- */

static int parse_datasource(pctx *c, yajl_val root)
{
    yajl_val v = get_set(root, "dataSource");
    const char *name = NULL;
    if (v == NULL) {
        return BAD(c, "dataSource", "required");
    }
    if (YAJL_IS_STRING(v)) {
        name = JSTR(v);
    } else if (YAJL_IS_OBJECT(v)) {
        const char *type = NULL;
        int rc = get_string(c, v, "type", "dataSource", true, &type);
        if (rc != 0) {
            return rc;
        }
        if (strcmp(type, "table") != 0) {
            return UNSUPPORTED(c, "dataSource.type",
                               "dataSource type \"%s\" is not supported; only \"table\"", type);
        }
        static const char *const keys[] = {"type", "name", NULL};
        rc = check_keys(c, v, "dataSource", keys);
        if (rc == 0) {
            rc = get_string(c, v, "name", "dataSource", true, &name);
        }
        if (rc != 0) {
            return rc;
        }
    } else {
        return BAD(c, "dataSource", "expected a string or an object, got %s", jtype(v));
    }
    c->spec = sl_config_find(c->cfg, name);
    if (c->spec == NULL) {
        char list[300] = "";
        for (int i = 0; i < c->cfg->ndatasources; i++) {
            list_append(list, sizeof(list), c->cfg->datasources[i]->name);
        }
        return BAD(c, "dataSource", "unknown datasource \"%s\"; known: %s", name,
                   list[0] ? list : "(none)");
    }
    c->q->spec = c->spec;
    return 0;
}

static int parse_instant(pctx *c, const char *s, size_t n, const char *path, int64_t *ms)
{
    sl_err e;
    if (sl_time_parse(s, n, SL_TS_ISO, ms, &e) != 0) {
        return BAD(c, path, "bad time \"%.*s\": %s", (int)n, s, e.msg);
    }
    return 0;
}

static int parse_interval(pctx *c, const char *s, const char *path, sl_interval *iv)
{
    const char *slash = strchr(s, '/');
    if (slash == NULL || strchr(slash + 1, '/') != NULL) {
        return BAD(c, path, "interval \"%s\" must be start/end, start/period or period/end", s);
    }
    const char *a = s, *b = slash + 1;
    size_t alen = (size_t)(slash - s);
    bool a_period = alen > 0 && (a[0] == 'P' || a[0] == 'p');
    bool b_period = b[0] == 'P' || b[0] == 'p';
    int64_t period = 0;
    sl_err e;
    int rc;
    if (a_period && b_period) {
        return BAD(c, path, "interval \"%s\" has two periods", s);
    }
    if (a_period) {
        char tmp[64];
        if (alen >= sizeof(tmp)) {
            return BAD(c, path, "interval \"%s\": period too long", s);
        }
        memcpy(tmp, a, alen);
        tmp[alen] = '\0';
        if (sl_period_parse(tmp, &period, &e) != 0) {
            return BAD(c, path, "%s", e.msg);
        }
        if (period > MAX_SPAN_MS) {
            return BAD(c, path, "interval \"%s\": period too long", s);
        }
        rc = parse_instant(c, b, strlen(b), path, &iv->end);
        iv->start = iv->end - period;
    } else if (b_period) {
        if (sl_period_parse(b, &period, &e) != 0) {
            return BAD(c, path, "%s", e.msg);
        }
        if (period > MAX_SPAN_MS) {
            return BAD(c, path, "interval \"%s\": period too long", s);
        }
        rc = parse_instant(c, a, alen, path, &iv->start);
        iv->end = iv->start + period;
    } else {
        rc = parse_instant(c, a, alen, path, &iv->start);
        if (rc == 0) {
            rc = parse_instant(c, b, strlen(b), path, &iv->end);
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (iv->end < iv->start) {
        return BAD(c, path, "interval \"%s\" ends before it starts", s);
    }
    return 0;
}

static int cmp_interval(const void *x, const void *y)
{
    const sl_interval *a = x, *b = y;
    return a->start < b->start ? -1 : a->start > b->start ? 1 : 0;
}

/* intervals: ["a/b", ...], a single "a/b", or {"type":"intervals","intervals":[...]}.
 * Sorted and merged so scans never visit a row twice. */
static int parse_intervals(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    yajl_val v = get_set(root, "intervals");
    const char *path = "intervals";
    if (v == NULL) {
        if (q->type == SL_NQ_TIMEBOUNDARY) {
            return 0;
        }
        return BAD(c, path, "required (e.g. [\"2025-06-11T00:00:00Z/2025-06-12T00:00:00Z\"])");
    }
    if (YAJL_IS_OBJECT(v)) {
        static const char *const keys[] = {"type", "intervals", NULL};
        const char *type;
        int rc = check_keys(c, v, path, keys);
        if (rc == 0) {
            rc = get_string(c, v, "type", path, true, &type);
        }
        if (rc != 0) {
            return rc;
        }
        if (strcmp(type, "intervals") != 0) {
            return UNSUPPORTED(c, "intervals.type", "\"%s\" is not supported; only \"intervals\"",
                               type);
        }
        v = get_set(v, "intervals");
        path = "intervals.intervals";
        if (v == NULL) {
            return BAD(c, path, "required");
        }
    }
    if (YAJL_IS_STRING(v)) {
        q->intervals = sl_calloc(1, sizeof(sl_interval));
        q->nintervals = 1;
        q->has_intervals = true;
        return parse_interval(c, JSTR(v), path, &q->intervals[0]);
    }
    if (!YAJL_IS_ARRAY(v)) {
        return BAD(c, path, "expected an array of ISO intervals, got %s", jtype(v));
    }
    size_t n = v->u.array.len;
    if (n == 0) {
        return BAD(c, path, "must not be empty");
    }
    q->intervals = sl_calloc(n, sizeof(sl_interval));
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX_LEN];
        join_index(p, path, i);
        yajl_val e = v->u.array.values[i];
        if (!YAJL_IS_STRING(e)) {
            return BAD(c, p, "expected an ISO interval string, got %s", jtype(e));
        }
        int rc = parse_interval(c, JSTR(e), p, &q->intervals[i]);
        if (rc != 0) {
            return rc;
        }
    }
    qsort(q->intervals, n, sizeof(sl_interval), cmp_interval);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && q->intervals[i].start <= q->intervals[m - 1].end) {
            if (q->intervals[i].end > q->intervals[m - 1].end) {
                q->intervals[m - 1].end = q->intervals[i].end;
            }
        } else {
            q->intervals[m++] = q->intervals[i];
        }
    }
    q->nintervals = (int)m;
    q->has_intervals = true;
    return 0;
}

typedef struct gran_name {
    const char *name;
    int64_t ms; /* 0: all; -1: calendar (unsupported) */
} gran_name;

#define DAY_MS 86400000LL
/* 1970-01-01 was a Thursday; Druid weeks start on Monday. */
#define MONDAY_ORIGIN_MS (-3 * DAY_MS)

static const gran_name gran_names[] = {
    {"all", 0},
    {"none", 1},
    {"second", 1000},
    {"minute", 60000},
    {"five_minute", 300000},
    {"ten_minute", 600000},
    {"fifteen_minute", 900000},
    {"thirty_minute", 1800000},
    {"hour", 3600000},
    {"six_hour", 6 * 3600000LL},
    {"eight_hour", 8 * 3600000LL},
    {"day", DAY_MS},
    {"week", 7 * DAY_MS},
    {"month", -1},
    {"quarter", -1},
    {"year", -1},
};

static int simple_gran(pctx *c, const char *name, const char *path, sl_gran *g)
{
    for (size_t i = 0; i < sizeof(gran_names) / sizeof(gran_names[0]); i++) {
        if (strcasecmp(gran_names[i].name, name) != 0) {
            continue;
        }
        if (gran_names[i].ms < 0) {
            return UNSUPPORTED(c, path,
                               "granularity \"%s\" is calendar-based and not supported; use "
                               "day or week, or a period in days",
                               name);
        }
        g->all = gran_names[i].ms == 0;
        g->period_ms = gran_names[i].ms;
        g->origin_ms = gran_names[i].ms == 7 * DAY_MS ? MONDAY_ORIGIN_MS : 0;
        return 0;
    }
    char list[300] = "";
    for (size_t i = 0; i < sizeof(gran_names) / sizeof(gran_names[0]); i++) {
        list_append(list, sizeof(list), gran_names[i].name);
    }
    return BAD(c, path,
               "unknown granularity \"%s\"; expected one of: %s, or an object of type "
               "period or duration",
               name, list);
}

static bool is_utc(const char *tz)
{
    static const char *const utc[] = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "Zulu"};
    for (size_t i = 0; i < sizeof(utc) / sizeof(utc[0]); i++) {
        if (strcasecmp(tz, utc[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* "P2W": a period made of weeks only, aligned to Monday like Druid's. */
static bool weeks_only(const char *p)
{
    if (p[0] != 'P' && p[0] != 'p') {
        return false;
    }
    size_t i = 1;
    while (isdigit((unsigned char)p[i])) {
        i++;
    }
    return i > 1 && (p[i] == 'W' || p[i] == 'w') && p[i + 1] == '\0';
}

static int parse_origin(pctx *c, yajl_val obj, const char *path, sl_gran *g)
{
    char p[PATH_MAX_LEN];
    yajl_val v = get_set(obj, "origin");
    if (v == NULL) {
        return 0;
    }
    join_key(p, path, "origin");
    if (YAJL_IS_INTEGER(v)) {
        g->origin_ms = YAJL_GET_INTEGER(v);
    } else if (YAJL_IS_STRING(v)) {
        const char *s = JSTR(v);
        int rc = parse_instant(c, s, strlen(s), p, &g->origin_ms);
        if (rc != 0) {
            return rc;
        }
    } else {
        return BAD(c, p, "expected an ISO time or milliseconds, got %s", jtype(v));
    }
    if (g->origin_ms < -MAX_SPAN_MS || g->origin_ms > MAX_SPAN_MS) {
        return BAD(c, p, "origin is too far from 1970");
    }
    return 0;
}

static int parse_granularity(pctx *c, yajl_val root)
{
    sl_gran *g = &c->q->gran;
    const char *path = "granularity";
    yajl_val v = get_set(root, path);
    int rc = 0;
    g->all = true;
    if (v == NULL) {
        return 0;
    }
    if (YAJL_IS_STRING(v)) {
        rc = simple_gran(c, JSTR(v), path, g);
    } else if (YAJL_IS_OBJECT(v)) {
        static const char *const keys[] = {"type",     "period", "duration",
                                           "timeZone", "origin", NULL};
        const char *type, *tz;
        rc = check_keys(c, v, path, keys);
        if (rc == 0) {
            rc = get_string(c, v, "type", path, true, &type);
        }
        if (rc == 0) {
            rc = get_string(c, v, "timeZone", path, false, &tz);
        }
        if (rc != 0) {
            return rc;
        }
        if (tz != NULL && !is_utc(tz)) {
            return UNSUPPORTED(c, "granularity.timeZone",
                               "time zone \"%s\" is not supported; buckets are UTC", tz);
        }
        if (strcmp(type, "period") == 0) {
            const char *period;
            sl_err e;
            rc = get_string(c, v, "period", path, true, &period);
            if (rc != 0) {
                return rc;
            }
            g->all = false;
            if (sl_period_parse(period, &g->period_ms, &e) != 0) {
                return fail(c->err, strstr(e.msg, "calendar") ? SL_EINVAL : SL_EPARSE,
                            "granularity.period", "%s", e.msg);
            }
            if (g->period_ms > MAX_SPAN_MS) {
                return BAD(c, "granularity.period", "period \"%s\" is too long", period);
            }
            g->origin_ms = weeks_only(period) ? MONDAY_ORIGIN_MS : 0;
            rc = parse_origin(c, v, path, g);
        } else if (strcmp(type, "duration") == 0) {
            int64_t d = 0;
            rc = get_int(c, v, "duration", path, 1, MAX_SPAN_MS, &d);
            if (rc == 0 && d == 0) {
                rc = BAD(c, "granularity.duration", "required (milliseconds)");
            }
            if (rc != 0) {
                return rc;
            }
            g->all = false;
            g->period_ms = d;
            g->origin_ms = 0;
            rc = parse_origin(c, v, path, g);
        } else {
            rc = simple_gran(c, type, "granularity.type", g);
        }
    } else {
        return BAD(c, path, "expected a string or an object, got %s", jtype(v));
    }
    if (rc == 0 && !g->all && g->period_ms < c->spec->query_ms) {
        /* Rows are rolled up to the minute: finer buckets would only add empty ones. */
        g->period_ms = c->spec->query_ms;
        g->origin_ms = 0;
    }
    return rc;
}

/* ---- filters ------------------------------------------------------------------------- */

void sl_filter_free(sl_filter *f)
{
    if (f == NULL) {
        return;
    }
    free(f->column);
    for (int i = 0; i < f->nvalues; i++) {
        free(f->values[i]);
    }
    free(f->values);
    free(f->lower);
    free(f->upper);
    free(f->pattern);
    if (f->regex != NULL) {
        regfree(f->regex);
        free(f->regex);
    }
    for (int i = 0; i < f->nkids; i++) {
        sl_filter_free(f->kids[i]);
    }
    free(f->kids);
    free(f->bits);
    free(f);
}

static int cmp_nullable(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == NULL ? (b == NULL ? 0 : -1) : 1;
    }
    return strcmp(a, b);
}

static int cmp_value_ptr(const void *x, const void *y)
{
    return cmp_nullable(*(char *const *)x, *(char *const *)y);
}

/* Resolves a filter's column: a stored dimension, or "not a column" (all null). The
 * time column cannot be filtered on (intervals do that). */
static int filter_column(pctx *c, sl_filter *f, const char *name, const char *path)
{
    if (strcmp(name, "__time") == 0 ||
        (c->spec->time_column != NULL && strcmp(name, c->spec->time_column) == 0)) {
        return UNSUPPORTED(c, path,
                           "filtering on the time column \"%s\" is not supported; use "
                           "\"intervals\"",
                           name);
    }
    f->column = sl_strdup(name);
    f->dim = sl_spec_dim(c->spec, name);
    return 0;
}

static bool parse_number(const char *s, double *out)
{
    char *end;
    if (s == NULL || s[0] == '\0' || isspace((unsigned char)s[0])) {
        return false;
    }
    double d = strtod(s, &end);
    if (*end != '\0' || isnan(d)) {
        return false;
    }
    *out = d;
    return true;
}

static int parse_ordering(pctx *c, yajl_val v, const char *path, sl_order *out)
{
    const char *name;
    if (v == NULL || YAJL_IS_NULL(v)) {
        *out = SL_ORDER_LEXICOGRAPHIC;
        return 0;
    }
    if (YAJL_IS_OBJECT(v)) {
        static const char *const keys[] = {"type", NULL};
        int rc = check_keys(c, v, path, keys);
        if (rc == 0) {
            rc = get_string(c, v, "type", path, true, &name);
        }
        if (rc != 0) {
            return rc;
        }
    } else if (YAJL_IS_STRING(v)) {
        name = JSTR(v);
    } else {
        return BAD(c, path, "expected an ordering name, got %s", jtype(v));
    }
    if (strcasecmp(name, "lexicographic") == 0) {
        *out = SL_ORDER_LEXICOGRAPHIC;
    } else if (strcasecmp(name, "numeric") == 0) {
        *out = SL_ORDER_NUMERIC;
    } else if (strcasecmp(name, "alphanumeric") == 0 || strcasecmp(name, "strlen") == 0 ||
               strcasecmp(name, "version") == 0 || strcasecmp(name, "natural") == 0) {
        return UNSUPPORTED(c, path,
                           "ordering \"%s\" is not supported; use lexicographic or numeric", name);
    } else {
        return BAD(c, path, "unknown ordering \"%s\"; expected lexicographic or numeric", name);
    }
    return 0;
}

static int bound_values(pctx *c, sl_filter *f, yajl_val v, const char *path, const char *lkey,
                        const char *ukey)
{
    char p[PATH_MAX_LEN];
    join_key(p, path, lkey);
    int rc = scalar_string(c, get(v, lkey), p, &f->lower);
    if (rc != 0) {
        return rc;
    }
    join_key(p, path, ukey);
    rc = scalar_string(c, get(v, ukey), p, &f->upper);
    if (rc != 0) {
        return rc;
    }
    if (f->numeric) {
        if (f->lower != NULL && !parse_number(f->lower, &f->lower_num)) {
            join_key(p, path, lkey);
            return BAD(c, p, "\"%s\" is not a number (the ordering is numeric)", f->lower);
        }
        if (f->upper != NULL && !parse_number(f->upper, &f->upper_num)) {
            join_key(p, path, ukey);
            return BAD(c, p, "\"%s\" is not a number (the ordering is numeric)", f->upper);
        }
    }
    return 0;
}

static int filter_kids(pctx *c, sl_filter *f, yajl_val arr, const char *path)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr)) {
        return BAD(c, path, "expected an array of filters, got %s", jtype(arr));
    }
    if (arr->u.array.len == 0) {
        return BAD(c, path, "must not be empty");
    }
    f->nkids = 0;
    f->kids = sl_calloc(arr->u.array.len, sizeof(sl_filter *));
    for (size_t i = 0; i < arr->u.array.len; i++) {
        char p[PATH_MAX_LEN];
        join_index(p, path, i);
        int rc = parse_filter(c, arr->u.array.values[i], p, &f->kids[f->nkids]);
        f->nkids++;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int no_extraction(pctx *c, yajl_val v, const char *path)
{
    if (get_set(v, "extractionFn") != NULL) {
        char p[PATH_MAX_LEN];
        join_key(p, path, "extractionFn");
        return UNSUPPORTED(c, p, "extraction functions are not supported");
    }
    return 0;
}

static const char *const filter_types =
    "selector, equals, in, null, bound, range, like, regex, search, true, false, and, or, not";

static int filter_selector(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "value",
                                       "extractionFn", "filterTuning", NULL};
    f->type = SL_FILTER_VALUES;
    f->nvalues = 1;
    f->values = sl_calloc(1, sizeof(char *));
    join_key(p, path, "value");
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = scalar_string(c, get(v, "value"), p, &f->values[0])) != 0) {
        return rc;
    }
    return 0;
}

static int filter_equals(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",       "column",       "matchValueType",
                                       "matchValue", "filterTuning", NULL};
    const char *mvt;
    f->type = SL_FILTER_VALUES;
    f->nvalues = 1;
    f->values = sl_calloc(1, sizeof(char *));
    join_key(p, path, "matchValue");
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = get_string(c, v, "column", path, true, &col)) != 0 ||
        (rc = get_string(c, v, "matchValueType", path, true, &mvt)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = scalar_string(c, get(v, "matchValue"), p, &f->values[0])) != 0) {
        return rc;
    }
    if (f->values[0] == NULL) {
        return BAD(c, p, "required (use a \"null\" filter to match nulls)");
    }
    return 0;
}

static int filter_null(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    int rc;
    const char *col;
    static const char *const keys[] = {"type", "column", "filterTuning", NULL};
    f->type = SL_FILTER_VALUES;
    f->nvalues = 1;
    f->values = sl_calloc(1, sizeof(char *));
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = get_string(c, v, "column", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0) {
        return rc;
    }
    return 0;
}

static int filter_in(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "values",
                                       "extractionFn", "filterTuning", NULL};
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0) {
        return rc;
    }
    yajl_val arr = get_set(v, "values");
    join_key(p, path, "values");
    if (arr == NULL || !YAJL_IS_ARRAY(arr)) {
        return BAD(c, p, "expected an array of values, got %s", jtype(arr));
    }
    f->type = SL_FILTER_VALUES;
    f->values = sl_calloc(arr->u.array.len + 1, sizeof(char *));
    for (size_t i = 0; i < arr->u.array.len; i++) {
        char pi[PATH_MAX_LEN];
        join_index(pi, p, i);
        rc = scalar_string(c, arr->u.array.values[i], pi, &f->values[f->nvalues]);
        if (rc != 0) {
            return rc;
        }
        f->nvalues++;
    }
    qsort(f->values, (size_t)f->nvalues, sizeof(char *), cmp_value_ptr);
    return 0;
}

static int filter_bound(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "lower",    "upper",
                                       "lowerStrict",  "upperStrict",  "ordering", "alphaNumeric",
                                       "extractionFn", "filterTuning", NULL};
    sl_order order;
    bool alnum = false;
    f->type = SL_FILTER_BOUND;
    join_key(p, path, "ordering");
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = get_bool(c, v, "lowerStrict", path, &f->lower_strict)) != 0 ||
        (rc = get_bool(c, v, "upperStrict", path, &f->upper_strict)) != 0 ||
        (rc = get_bool(c, v, "alphaNumeric", path, &alnum)) != 0 ||
        (rc = parse_ordering(c, get(v, "ordering"), p, &order)) != 0) {
        return rc;
    }
    if (alnum) {
        return UNSUPPORTED(c, path, "alphaNumeric ordering is not supported");
    }
    f->numeric = order == SL_ORDER_NUMERIC;
    if ((rc = bound_values(c, f, v, path, "lower", "upper")) != 0) {
        return rc;
    }
    return 0;
}

static int filter_range(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",      "column",    "matchValueType", "lower", "upper",
                                       "lowerOpen", "upperOpen", "filterTuning",   NULL};
    const char *mvt;
    f->type = SL_FILTER_BOUND;
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = get_string(c, v, "column", path, true, &col)) != 0 ||
        (rc = get_string(c, v, "matchValueType", path, true, &mvt)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = get_bool(c, v, "lowerOpen", path, &f->lower_strict)) != 0 ||
        (rc = get_bool(c, v, "upperOpen", path, &f->upper_strict)) != 0) {
        return rc;
    }
    if (strcasecmp(mvt, "STRING") == 0) {
        f->numeric = false;
    } else if (strcasecmp(mvt, "LONG") == 0 || strcasecmp(mvt, "DOUBLE") == 0 ||
               strcasecmp(mvt, "FLOAT") == 0) {
        f->numeric = true;
    } else {
        join_key(p, path, "matchValueType");
        return UNSUPPORTED(c, p, "\"%s\" is not supported; use STRING, LONG, DOUBLE or FLOAT", mvt);
    }
    if ((rc = bound_values(c, f, v, path, "lower", "upper")) != 0) {
        return rc;
    }
    return 0;
}

static int filter_like(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "pattern", "escape",
                                       "extractionFn", "filterTuning", NULL};
    const char *pat, *esc;
    f->type = SL_FILTER_LIKE;
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = get_string(c, v, "pattern", path, false, &pat)) != 0 ||
        (rc = get_string(c, v, "escape", path, false, &esc)) != 0) {
        return rc;
    }
    if (pat == NULL) {
        join_key(p, path, "pattern");
        return BAD(c, p, "required");
    }
    if (esc != NULL && strlen(esc) != 1) {
        join_key(p, path, "escape");
        return BAD(c, p, "must be a single character, got \"%s\"", esc);
    }
    f->pattern = sl_strdup(pat);
    f->escape = esc != NULL ? esc[0] : '\0';
    return 0;
}

static int filter_regex(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "pattern",
                                       "extractionFn", "filterTuning", NULL};
    const char *pat;
    f->type = SL_FILTER_REGEX;
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 ||
        (rc = get_string(c, v, "pattern", path, true, &pat)) != 0) {
        return rc;
    }
    f->pattern = sl_strdup(pat);
    f->regex = sl_malloc(sizeof(regex_t));
    int r = regcomp(f->regex, pat, REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
        char why[128];
        regerror(r, f->regex, why, sizeof(why));
        free(f->regex);
        f->regex = NULL;
        join_key(p, path, "pattern");
        return BAD(c, p, "bad regular expression \"%s\": %s", pat, why);
    }
    return 0;
}

static int filter_search(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    const char *col;
    static const char *const keys[] = {"type",         "dimension",    "query",
                                       "extractionFn", "filterTuning", NULL};
    static const char *const qkeys[] = {"type", "value", "caseSensitive", NULL};
    const char *qtype, *val;
    f->type = SL_FILTER_SEARCH;
    join_key(p, path, "query");
    yajl_val sq = get_set(v, "query");
    if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
        (rc = get_string(c, v, "dimension", path, true, &col)) != 0 ||
        (rc = filter_column(c, f, col, path)) != 0 || (rc = want_object(c, sq, p)) != 0 ||
        (rc = check_keys(c, sq, p, qkeys)) != 0 ||
        (rc = get_string(c, sq, "type", p, true, &qtype)) != 0 ||
        (rc = get_string(c, sq, "value", p, false, &val)) != 0) {
        return rc;
    }
    if (val == NULL) {
        join_key(p, path, "query.value");
        return BAD(c, p, "required");
    }
    if (strcmp(qtype, "contains") == 0) {
        f->case_sensitive = false;
        if ((rc = get_bool(c, sq, "caseSensitive", p, &f->case_sensitive)) != 0) {
            return rc;
        }
    } else if (strcmp(qtype, "insensitive_contains") == 0) {
        f->case_sensitive = false;
    } else {
        join_key(p, path, "query.type");
        return UNSUPPORTED(
            c, p, "search query \"%s\" is not supported; use contains or insensitive_contains",
            qtype);
    }
    f->pattern = sl_strdup(val);
    return 0;
}

static int filter_const(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    int rc;
    static const char *const keys[] = {"type", NULL};
    f->type = type[0] == 't' ? SL_FILTER_TRUE : SL_FILTER_FALSE;
    if ((rc = check_keys(c, v, path, keys)) != 0) {
        return rc;
    }
    return 0;
}

static int filter_bool(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    static const char *const keys[] = {"type", "fields", NULL};
    f->type = type[0] == 'a' ? SL_FILTER_AND : SL_FILTER_OR;
    join_key(p, path, "fields");
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = filter_kids(c, f, get_set(v, "fields"), p)) != 0) {
        return rc;
    }
    return 0;
}

static int filter_not(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f)
{
    char p[PATH_MAX_LEN];
    int rc;
    static const char *const keys[] = {"type", "field", NULL};
    f->type = SL_FILTER_NOT;
    f->kids = sl_calloc(1, sizeof(sl_filter *));
    join_key(p, path, "field");
    if ((rc = check_keys(c, v, path, keys)) != 0) {
        return rc;
    }
    if (get_set(v, "field") == NULL) {
        return BAD(c, p, "required");
    }
    f->nkids = 1;
    if ((rc = parse_filter(c, get_set(v, "field"), p, &f->kids[0])) != 0) {
        return rc;
    }
    return 0;
}

typedef int (*filter_parser)(pctx *c, yajl_val v, const char *path, const char *type, sl_filter *f);

static const struct {
    const char *type;
    filter_parser parse;
} filter_parsers[] = {
    {"selector", filter_selector}, {"equals", filter_equals},
    {"null", filter_null},         {"in", filter_in},
    {"bound", filter_bound},       {"range", filter_range},
    {"like", filter_like},         {"regex", filter_regex},
    {"search", filter_search},     {"true", filter_const},
    {"false", filter_const},       {"and", filter_bool},
    {"or", filter_bool},           {"not", filter_not},
};

/* Druid filter types Sluice knows of but does not run. */
static const char *const unsupported_filters[] = {
    "interval", "columnComparison",     "expression", "javascript",
    "spatial",  "arrayContainsElement", NULL};

static int parse_filter(pctx *c, yajl_val v, const char *path, sl_filter **out)
{
    char p[PATH_MAX_LEN];
    const char *type;
    int rc = want_object(c, v, path);
    if (rc != 0) {
        return rc;
    }
    rc = get_string(c, v, "type", path, true, &type);
    if (rc != 0) {
        return rc;
    }
    sl_filter *f = sl_calloc(1, sizeof(*f));
    *out = f;
    f->dim = -1;
    for (size_t i = 0; i < sizeof(filter_parsers) / sizeof(filter_parsers[0]); i++) {
        if (strcmp(filter_parsers[i].type, type) == 0) {
            return filter_parsers[i].parse(c, v, path, type, f);
        }
    }
    join_key(p, path, "type");
    for (size_t i = 0; unsupported_filters[i] != NULL; i++) {
        if (strcmp(unsupported_filters[i], type) == 0) {
            return UNSUPPORTED(c, p, "filter type \"%s\" is not supported; supported: %s", type,
                               filter_types);
        }
    }
    return BAD(c, p, "unknown filter type \"%s\"; expected one of: %s", type, filter_types);
}

/* ---- filter evaluation on strings ---------------------------------------------------- */

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = memcmp(a, b, n);
    if (r != 0) {
        return r;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static bool values_match(const sl_filter *f, const char *s, size_t len)
{
    if (s == NULL) {
        return f->nvalues > 0 && f->values[0] == NULL;
    }
    int lo = 0, hi = f->nvalues - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *v = f->values[mid];
        int r = v == NULL ? -1 : cmp_bytes(v, strlen(v), s, len);
        if (r == 0) {
            return true;
        }
        if (r < 0) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return false;
}

static bool bound_match(const sl_filter *f, const char *s, size_t len)
{
    if (s == NULL) {
        return false;
    }
    if (f->numeric) {
        char tmp[64];
        double d;
        if (len >= sizeof(tmp)) {
            return false;
        }
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        if (!parse_number(tmp, &d)) {
            return false;
        }
        if (f->lower != NULL && (f->lower_strict ? d <= f->lower_num : d < f->lower_num)) {
            return false;
        }
        if (f->upper != NULL && (f->upper_strict ? d >= f->upper_num : d > f->upper_num)) {
            return false;
        }
        return true;
    }
    if (f->lower != NULL) {
        int r = cmp_bytes(s, len, f->lower, strlen(f->lower));
        if (f->lower_strict ? r <= 0 : r < 0) {
            return false;
        }
    }
    if (f->upper != NULL) {
        int r = cmp_bytes(s, len, f->upper, strlen(f->upper));
        if (f->upper_strict ? r >= 0 : r > 0) {
            return false;
        }
    }
    return true;
}

/* Length of the UTF-8 sequence starting with byte b (1 for stray bytes). */
static size_t utf8_len(unsigned char b)
{
    if (b >= 0xf0) {
        return 4;
    }
    if (b >= 0xe0) {
        return 3;
    }
    if (b >= 0xc0) {
        return 2;
    }
    return 1;
}

/* SQL LIKE: % any run, _ one character, escape makes the next pattern char literal. */
static bool like_match(const char *p, char esc, const char *s, size_t len)
{
    size_t i = 0;
    while (*p != '\0') {
        if (esc != '\0' && *p == esc && p[1] != '\0') {
            if (i >= len || s[i] != p[1]) {
                return false;
            }
            p += 2;
            i++;
        } else if (*p == '%') {
            while (*p == '%') {
                p++;
            }
            if (*p == '\0') {
                return true;
            }
            for (size_t j = i; j <= len; j++) {
                if (like_match(p, esc, s + j, len - j)) {
                    return true;
                }
            }
            return false;
        } else if (*p == '_') {
            if (i >= len) {
                return false;
            }
            i += utf8_len((unsigned char)s[i]);
            if (i > len) {
                return false;
            }
            p++;
        } else {
            if (i >= len || s[i] != *p) {
                return false;
            }
            p++;
            i++;
        }
    }
    return i == len;
}

static bool contains(const char *s, size_t len, const char *needle, bool case_sensitive)
{
    size_t n = strlen(needle);
    if (n == 0) {
        return true;
    }
    for (size_t i = 0; i + n <= len; i++) {
        size_t j = 0;
        if (case_sensitive) {
            while (j < n && s[i + j] == needle[j]) {
                j++;
            }
        } else {
            while (j < n && tolower((unsigned char)s[i + j]) == tolower((unsigned char)needle[j])) {
                j++;
            }
        }
        if (j == n) {
            return true;
        }
    }
    return false;
}

bool sl_filter_match_str(const sl_filter *f, const char *s, size_t len)
{
    switch (f->type) {
    case SL_FILTER_TRUE:
        return true;
    case SL_FILTER_FALSE:
        return false;
    case SL_FILTER_VALUES:
        return values_match(f, s, len);
    case SL_FILTER_BOUND:
        return bound_match(f, s, len);
    case SL_FILTER_LIKE:
        return s != NULL && like_match(f->pattern, f->escape, s, len);
    case SL_FILTER_REGEX: {
        if (s == NULL) {
            return false;
        }
        char stack[256];
        char *tmp = len < sizeof(stack) ? stack : sl_malloc(len + 1);
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        bool m = regexec(f->regex, tmp, 0, NULL, 0) == 0;
        if (tmp != stack) {
            free(tmp);
        }
        return m;
    }
    case SL_FILTER_SEARCH:
        return s != NULL && contains(s, len, f->pattern, f->case_sensitive);
    case SL_FILTER_AND:
        for (int i = 0; i < f->nkids; i++) {
            if (!sl_filter_match_str(f->kids[i], s, len)) {
                return false;
            }
        }
        return true;
    case SL_FILTER_OR:
        for (int i = 0; i < f->nkids; i++) {
            if (sl_filter_match_str(f->kids[i], s, len)) {
                return true;
            }
        }
        return false;
    case SL_FILTER_NOT:
        return !sl_filter_match_str(f->kids[0], s, len);
    case SL_FILTER_BITMAP:
        break;
    }
    SL_ASSERT(!"bitmap filters are matched by id");
    return false;
}

/* ---- aggregators --------------------------------------------------------------------- */

typedef struct agg_type {
    const char *name;
    sl_agg_op op;
    bool is_long;
} agg_type;

static const agg_type agg_types[] = {
    {"count", SL_AGG_SUM, true},      {"longSum", SL_AGG_SUM, true},
    {"doubleSum", SL_AGG_SUM, false}, {"floatSum", SL_AGG_SUM, false},
    {"longMin", SL_AGG_MIN, true},    {"doubleMin", SL_AGG_MIN, false},
    {"floatMin", SL_AGG_MIN, false},  {"longMax", SL_AGG_MAX, true},
    {"doubleMax", SL_AGG_MAX, false}, {"floatMax", SL_AGG_MAX, false},
};

static void metric_list(const sl_spec *spec, char *buf, size_t size)
{
    buf[0] = '\0';
    list_append(buf, size, spec->count_name);
    for (int i = 0; i < spec->nmetrics; i++) {
        list_append(buf, size, spec->metrics[i].name);
    }
}

/* A metric's type as errors name it: the spec's type, and for sketches which one. */
static const char *metric_kind_name(sl_metric_kind k)
{
    return k == SL_METRIC_DISTINCT    ? "distinct (HyperLogLog sketch)"
           : k == SL_METRIC_QUANTILES ? "quantiles (DDSketch)"
                                      : sl_metric_kind_name(k);
}

/* The metrics of kind k, or "(none)". */
static void kind_list(const sl_spec *spec, sl_metric_kind k, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < spec->nmetrics; i++) {
        if (spec->metrics[i].kind == k) {
            list_append(buf, size, spec->metrics[i].name);
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, size, "(none)");
    }
}

/* The metric of kind k kept for input field name, or -1. */
static int metric_of_field(const sl_spec *spec, sl_metric_kind k, const char *name)
{
    for (int i = 0; i < spec->nmetrics; i++) {
        if (spec->metrics[i].kind == k && spec->metrics[i].field != NULL &&
            strcmp(spec->metrics[i].field, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Resolves the fieldName of a sketch aggregator (type) to a metric of kind want. Every
 * way of pointing at the wrong column gets a message saying what it is instead. */
static int sketch_source(pctx *c, const char *field, const char *path, const char *type,
                         sl_metric_kind want, int *out)
{
    const sl_spec *spec = c->spec;
    const char *want_name = want == SL_METRIC_DISTINCT ? "distinct" : "quantiles";
    char list[300];
    kind_list(spec, want, list, sizeof(list));
    int m = sl_spec_metric(spec, field);
    if (m >= 0 && spec->metrics[m].kind == want) {
        *out = m;
        return 0;
    }
    if (m >= 0) {
        return BAD(c, path,
                   "\"%s\" is a %s metric of datasource \"%s\"; a %s aggregator reads a %s "
                   "metric: %s",
                   field, metric_kind_name(spec->metrics[m].kind), spec->name, type, want_name,
                   list);
    }
    if (strcmp(field, spec->count_name) == 0) {
        return BAD(c, path,
                   "\"%s\" is the event count of datasource \"%s\"; a %s aggregator reads a %s "
                   "metric: %s",
                   field, spec->name, type, want_name, list);
    }
    if (sl_spec_dim(spec, field) >= 0) {
        if (want == SL_METRIC_DISTINCT) {
            return BAD(c, path,
                       "\"%s\" is a dimension of datasource \"%s\", not a distinct metric; count "
                       "its values with {\"type\":\"cardinality\",\"fields\":[\"%s\"]}",
                       field, spec->name, field);
        }
        return BAD(c, path,
                   "\"%s\" is a dimension of datasource \"%s\"; a %s aggregator reads a "
                   "quantiles metric: %s",
                   field, spec->name, type, list);
    }
    int k = metric_of_field(spec, want, field);
    if (k >= 0) {
        return BAD(c, path,
                   "\"%s\" is an input field that rollup did not keep; its %s sketch is the "
                   "metric \"%s\"",
                   field, want_name, spec->metrics[k].name);
    }
    return BAD(c, path, "\"%s\" is not a stored metric of datasource \"%s\"; %s metrics: %s", field,
               spec->name, want_name, list);
}

/* Optional sketch parameters Druid defines: accepted when valid, otherwise unused (the
 * stored sketches fix their precision; see docs/api.md). */
static int sketch_params(pctx *c, yajl_val v, const char *path)
{
    char p[PATH_MAX_LEN];
    int64_t x = 0;
    int rc;
    if ((rc = get_int(c, v, "lgK", path, 4, 21, &x)) != 0 ||
        (rc = get_int(c, v, "maxStreamLength", path, 1, INT64_MAX, &x)) != 0) {
        return rc;
    }
    x = 128;
    if ((rc = get_int(c, v, "k", path, 2, 32768, &x)) != 0) {
        return rc;
    }
    if ((x & (x - 1)) != 0) {
        join_key(p, path, "k");
        return BAD(c, p, "must be a power of 2 from 2 to 32768, got %lld", (long long)x);
    }
    const char *hll_type;
    if ((rc = get_string(c, v, "tgtHllType", path, false, &hll_type)) != 0) {
        return rc;
    }
    if (hll_type != NULL && strcmp(hll_type, "HLL_4") != 0 && strcmp(hll_type, "HLL_6") != 0 &&
        strcmp(hll_type, "HLL_8") != 0) {
        join_key(p, path, "tgtHllType");
        return BAD(c, p, "expected HLL_4, HLL_6 or HLL_8, got \"%s\"", hll_type);
    }
    bool b = true;
    if ((rc = get_bool(c, v, "isInputHyperUnique", path, &b)) != 0) {
        return rc;
    }
    b = true;
    if ((rc = get_bool(c, v, "shouldFinalize", path, &b)) != 0) {
        return rc;
    }
    if (!b) {
        join_key(p, path, "shouldFinalize");
        return UNSUPPORTED(c, p,
                           "false (returning the sketch itself) is not supported; results are "
                           "always finalized");
    }
    return 0;
}

/* cardinality: "fields" are dimension names or default dimension specs. */
static int card_fields(pctx *c, yajl_val v, const char *path, sl_agg *a)
{
    char p[PATH_MAX_LEN];
    yajl_val arr = get_set(v, "fields");
    join_key(p, path, "fields");
    if (arr == NULL || !YAJL_IS_ARRAY(arr) || arr->u.array.len == 0) {
        return BAD(c, p, "expected a non-empty array of dimension names, got %s",
                   arr != NULL && YAJL_IS_ARRAY(arr) ? "an empty array" : jtype(arr));
    }
    if (arr->u.array.len > SL_MAX_DIMS) {
        return BAD(c, p, "at most %d fields", SL_MAX_DIMS);
    }
    for (size_t i = 0; i < arr->u.array.len; i++) {
        char pi[PATH_MAX_LEN];
        join_index(pi, p, i);
        yajl_val f = arr->u.array.values[i];
        const char *name = NULL;
        if (YAJL_IS_STRING(f)) {
            name = JSTR(f);
        } else if (YAJL_IS_OBJECT(f)) {
            static const char *const keys[] = {"type", "dimension", "outputName", "outputType",
                                               NULL};
            const char *type;
            int rc;
            if ((rc = check_keys(c, f, pi, keys)) != 0 ||
                (rc = get_string(c, f, "type", pi, false, &type)) != 0 ||
                (rc = get_string(c, f, "dimension", pi, true, &name)) != 0) {
                return rc;
            }
            if (type != NULL && strcmp(type, "default") != 0) {
                char pt[PATH_MAX_LEN];
                join_key(pt, pi, "type");
                return UNSUPPORTED(
                    c, pt, "dimension spec \"%s\" is not supported; only \"default\"", type);
            }
        } else {
            return BAD(c, pi, "expected a dimension name or a dimension spec, got %s", jtype(f));
        }
        int d = sl_spec_dim(c->spec, name);
        if (d < 0) {
            int m = sl_spec_metric(c->spec, name);
            int k = metric_of_field(c->spec, SL_METRIC_DISTINCT, name);
            if (m >= 0 && c->spec->metrics[m].kind == SL_METRIC_DISTINCT) {
                return BAD(c, pi,
                           "\"%s\" is a distinct metric, not a dimension; read it with "
                           "{\"type\":\"HLLSketchMerge\",\"fieldName\":\"%s\"}",
                           name, name);
            }
            if (k >= 0) {
                return BAD(c, pi,
                           "\"%s\" is not a dimension of datasource \"%s\"; its distinct sketch is "
                           "the metric \"%s\" (read it with HLLSketchMerge)",
                           name, c->spec->name, c->spec->metrics[k].name);
            }
            return BAD(c, pi,
                       "\"%s\" is not a dimension of datasource \"%s\"; cardinality counts "
                       "dimension values",
                       name, c->spec->name);
        }
        a->fields[a->nfields++] = d;
    }
    return 0;
}

/* The sketch aggregators. Returns 1 when type is not one of them. */
static int parse_sketch_agg(pctx *c, yajl_val v, const char *path, const char *type, sl_agg *a)
{
    static const char *const hu_keys[] = {"type",  "name", "fieldName", "isInputHyperUnique",
                                          "round", NULL};
    static const char *const hll_keys[] = {"type",       "name",  "fieldName",      "lgK",
                                           "tgtHllType", "round", "shouldFinalize", NULL};
    static const char *const card_keys[] = {"type", "name", "fields", "byRow", "round", NULL};
    static const char *const dds_keys[] = {
        "type", "name", "fieldName", "k", "maxStreamLength", "shouldFinalize", NULL};
    const char *const *keys;
    sl_agg_op op;
    if (strcmp(type, "hyperUnique") == 0) {
        keys = hu_keys;
        op = SL_AGG_HLL;
    } else if (strcmp(type, "HLLSketchMerge") == 0 || strcmp(type, "HLLSketchBuild") == 0) {
        keys = hll_keys;
        op = SL_AGG_HLL;
    } else if (strcmp(type, "cardinality") == 0) {
        keys = card_keys;
        op = SL_AGG_CARD;
    } else if (strcmp(type, "quantilesDoublesSketch") == 0) {
        keys = dds_keys;
        op = SL_AGG_DDS;
    } else {
        return 1;
    }
    const char *name, *field = NULL;
    bool round = false;
    int rc;
    char p[PATH_MAX_LEN];
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = get_string(c, v, "name", path, true, &name)) != 0 ||
        (rc = get_bool(c, v, "round", path, &round)) != 0 ||
        (rc = sketch_params(c, v, path)) != 0) {
        return rc;
    }
    if (op != SL_AGG_CARD && (rc = get_string(c, v, "fieldName", path, true, &field)) != 0) {
        return rc;
    }
    a->name = sl_strdup(name);
    a->type = sl_strdup(type);
    a->op = op;
    a->is_long = op == SL_AGG_DDS || round;
    a->src = -1;
    join_key(p, path, "fieldName");
    if (op == SL_AGG_CARD) {
        if ((rc = get_bool(c, v, "byRow", path, &a->by_row)) != 0) {
            return rc;
        }
        return card_fields(c, v, path, a);
    }
    if (strcmp(type, "HLLSketchBuild") == 0 && sl_spec_dim(c->spec, field) >= 0) {
        /* building from a string column: the distinct values of that dimension */
        a->op = SL_AGG_CARD;
        a->fields[a->nfields++] = sl_spec_dim(c->spec, field);
        return 0;
    }
    return sketch_source(c, field, p, type,
                         op == SL_AGG_DDS ? SL_METRIC_QUANTILES : SL_METRIC_DISTINCT, &a->src);
}

static int parse_agg(pctx *c, yajl_val v, const char *path, sl_agg *a, bool inner)
{
    char p[PATH_MAX_LEN];
    const char *type, *name, *field;
    int rc = want_object(c, v, path);
    if (rc == 0) {
        rc = get_string(c, v, "type", path, true, &type);
    }
    if (rc != 0) {
        return rc;
    }
    if (strcmp(type, "filtered") == 0) {
        if (inner) {
            return UNSUPPORTED(c, path, "nested filtered aggregators are not supported");
        }
        static const char *const keys[] = {"type", "name", "filter", "aggregator", NULL};
        yajl_val inner_v = get_set(v, "aggregator");
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "name", path, false, &name)) != 0) {
            return rc;
        }
        join_key(p, path, "aggregator");
        if (inner_v == NULL) {
            return BAD(c, p, "required");
        }
        if ((rc = parse_agg(c, inner_v, p, a, true)) != 0) {
            return rc;
        }
        if (name != NULL && name[0] != '\0') {
            free(a->name);
            a->name = sl_strdup(name);
        }
        join_key(p, path, "filter");
        if (get_set(v, "filter") == NULL) {
            return BAD(c, p, "required");
        }
        return parse_filter(c, get_set(v, "filter"), p, &a->filter);
    }
    rc = parse_sketch_agg(c, v, path, type, a);
    if (rc <= 0) {
        return rc;
    }
    const agg_type *t = NULL;
    for (size_t i = 0; i < sizeof(agg_types) / sizeof(agg_types[0]); i++) {
        if (strcmp(agg_types[i].name, type) == 0) {
            t = &agg_types[i];
        }
    }
    join_key(p, path, "type");
    if (t == NULL) {
        char list[400] = "";
        for (size_t i = 0; i < sizeof(agg_types) / sizeof(agg_types[0]); i++) {
            list_append(list, sizeof(list), agg_types[i].name);
        }
        list_append(list, sizeof(list),
                    "hyperUnique, HLLSketchMerge, HLLSketchBuild, cardinality, "
                    "quantilesDoublesSketch, filtered");
        return fail(c->err, SL_EINVAL, p, "aggregator type \"%s\" is not supported; supported: %s",
                    type, list);
    }
    static const char *const keys[] = {"type", "name", "fieldName", "expression", NULL};
    if ((rc = check_keys(c, v, path, keys)) != 0 ||
        (rc = get_string(c, v, "name", path, true, &name)) != 0 ||
        (rc = get_string(c, v, "fieldName", path, false, &field)) != 0) {
        return rc;
    }
    if (get_set(v, "expression") != NULL) {
        join_key(p, path, "expression");
        return UNSUPPORTED(c, p, "aggregator expressions are not supported; use fieldName");
    }
    a->name = sl_strdup(name);
    a->type = sl_strdup(type);
    a->op = t->op;
    a->is_long = t->is_long;
    a->src = -1;
    if (strcmp(type, "count") == 0) {
        return 0;
    }
    join_key(p, path, "fieldName");
    if (field == NULL) {
        return BAD(c, p, "required for a %s aggregator", type);
    }
    int m = sl_spec_metric(c->spec, field);
    if (m >= 0 && sl_metric_is_sketch(c->spec->metrics[m].kind)) {
        bool hll = c->spec->metrics[m].kind == SL_METRIC_DISTINCT;
        return BAD(c, p,
                   "\"%s\" is a %s metric: it holds sketches, not numbers; read it with %s, not "
                   "%s",
                   field, metric_kind_name(c->spec->metrics[m].kind),
                   hll ? "hyperUnique or HLLSketchMerge"
                       : "quantilesDoublesSketch (and quantilesDoublesSketchToQuantile)",
                   type);
    }
    if (m >= 0) {
        a->src = m;
        return 0;
    }
    if (strcmp(field, c->spec->count_name) == 0) {
        a->src = -1;
        return 0;
    }
    char list[300];
    metric_list(c->spec, list, sizeof(list));
    if (sl_spec_dim(c->spec, field) >= 0) {
        return BAD(c, p, "\"%s\" is a dimension of datasource \"%s\", not a metric; metrics: %s",
                   field, c->spec->name, list);
    }
    return BAD(c, p, "\"%s\" is not a stored metric of datasource \"%s\"; metrics: %s", field,
               c->spec->name, list);
}

static int parse_aggs(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    yajl_val v = get_set(root, "aggregations");
    if (v == NULL) {
        return 0;
    }
    if (!YAJL_IS_ARRAY(v)) {
        return BAD(c, "aggregations", "expected an array, got %s", jtype(v));
    }
    q->aggs = sl_calloc(v->u.array.len + 1, sizeof(sl_agg));
    for (size_t i = 0; i < v->u.array.len; i++) {
        char p[PATH_MAX_LEN];
        join_index(p, "aggregations", i);
        sl_agg *a = &q->aggs[q->naggs++];
        int rc = parse_agg(c, v->u.array.values[i], p, a, false);
        if (rc != 0) {
            return rc;
        }
        a->sketch = sl_agg_is_sketch(a->op) ? q->nsketch++ : -1;
        for (int j = 0; j < q->naggs - 1; j++) {
            if (strcmp(q->aggs[j].name, a->name) == 0) {
                return BAD(c, p, "output name \"%s\" is already used by aggregations[%d]", a->name,
                           j);
            }
        }
    }
    return 0;
}

/* ---- post-aggregators ---------------------------------------------------------------- */

static void post_free(sl_post *p)
{
    if (p == NULL) {
        return;
    }
    free(p->name);
    for (int i = 0; i < p->nfields; i++) {
        post_free(p->fields[i]);
    }
    free(p->fields);
    free(p->fractions);
    free(p);
}

int sl_native_column(const sl_native *q, const char *name)
{
    for (int i = 0; i < q->naggs; i++) {
        if (strcmp(q->aggs[i].name, name) == 0) {
            return i;
        }
    }
    for (int i = 0; i < q->npost; i++) {
        if (q->post[i] != NULL && q->post[i]->name != NULL && strcmp(q->post[i]->name, name) == 0) {
            return q->naggs + i;
        }
    }
    return -1;
}

const char *sl_native_column_name(const sl_native *q, int i)
{
    return i < q->naggs ? q->aggs[i].name : q->post[i - q->naggs]->name;
}

static bool column_is_long(const sl_native *q, int i)
{
    return i < q->naggs ? q->aggs[i].is_long : q->post[i - q->naggs]->is_long;
}

bool sl_native_column_is_array(const sl_native *q, int i)
{
    return i >= q->naggs && q->post[i - q->naggs]->is_array;
}

/* Array columns hold several numbers: they can be output, not compared. */
static int not_array(pctx *c, int col, const char *path, const char *use)
{
    if (col < 0 || !sl_native_column_is_array(c->q, col)) {
        return 0;
    }
    return BAD(c, path,
               "\"%s\" is an array of quantiles (quantilesDoublesSketchToQuantiles) and cannot be "
               "%s; use quantilesDoublesSketchToQuantile for a single fraction",
               sl_native_column_name(c->q, col), use);
}

static void column_list(const sl_native *q, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < q->naggs; i++) {
        list_append(buf, size, q->aggs[i].name);
    }
    for (int i = 0; i < q->npost; i++) {
        if (q->post[i] != NULL && q->post[i]->name != NULL) {
            list_append(buf, size, q->post[i]->name);
        }
    }
}

static const char *const post_types =
    "arithmetic, fieldAccess, finalizingFieldAccess, constant, doubleGreatest, doubleLeast, "
    "longGreatest, longLeast, hyperUniqueCardinality, HLLSketchEstimate, "
    "quantilesDoublesSketchToQuantile, quantilesDoublesSketchToQuantiles";

/* Druid post-aggregators Sluice knows of but does not run. */
static const char *const unsupported_posts[] = {
    "expression",
    "javascript",
    "HLLSketchUnion",
    "HLLSketchToString",
    "HLLSketchEstimateWithBounds",
    "quantilesDoublesSketchToRank",
    "quantilesDoublesSketchToCDF",
    "quantilesDoublesSketchToHistogram",
    "quantilesDoublesSketchToString",
    "quantilesDoublesSketchToBase64",
    "thetaSketchEstimate",
    "thetaSketchSetOp",
    NULL,
};

static const char *agg_kind_needed(sl_agg_op op)
{
    return op == SL_AGG_DDS ? "a quantilesDoublesSketch aggregator"
                            : "a hyperUnique, HLLSketchMerge or cardinality aggregator";
}

/* The aggregator a sketch post-aggregator reads, named by fieldName (or by the field
 * post-aggregator, a fieldAccess, at path.field). want is SL_AGG_HLL (also takes CARD)
 * or SL_AGG_DDS. */
static int sketch_ref(pctx *c, const char *fname, const char *path, const char *type,
                      sl_agg_op want, int *out)
{
    sl_native *q = c->q;
    int col = sl_native_column(q, fname);
    if (col < 0) {
        char list[300];
        column_list(q, list, sizeof(list));
        return BAD(c, path, "\"%s\" is not an aggregator of this query; available: %s", fname,
                   list[0] ? list : "(none)");
    }
    if (col >= q->naggs) {
        return BAD(c, path, "\"%s\" is a post-aggregator; %s reads a sketch, which only %s gives",
                   fname, type, agg_kind_needed(want));
    }
    const sl_agg *a = &q->aggs[col];
    bool ok =
        want == SL_AGG_DDS ? a->op == SL_AGG_DDS : (a->op == SL_AGG_HLL || a->op == SL_AGG_CARD);
    if (!ok) {
        return BAD(c, path, "\"%s\" is a %s aggregator, not a sketch %s; %s reads %s", fname,
                   a->type, want == SL_AGG_DDS ? "of quantiles" : "of distinct values", type,
                   agg_kind_needed(want));
    }
    *out = col;
    return 0;
}

/* "field": {"type": "fieldAccess" | "finalizingFieldAccess", "fieldName": aggregator}. */
static int sketch_field(pctx *c, yajl_val v, const char *path, const char *type, sl_agg_op want,
                        int *out)
{
    char p[PATH_MAX_LEN], pn[PATH_MAX_LEN];
    yajl_val f = get_set(v, "field");
    join_key(p, path, "field");
    if (f == NULL) {
        return BAD(c, p, "required: {\"type\":\"fieldAccess\",\"fieldName\": <%s>}",
                   agg_kind_needed(want));
    }
    const char *ftype, *fname;
    int rc = want_object(c, f, p);
    if (rc == 0) {
        rc = get_string(c, f, "type", p, true, &ftype);
    }
    if (rc != 0) {
        return rc;
    }
    if (strcmp(ftype, "fieldAccess") != 0 && strcmp(ftype, "finalizingFieldAccess") != 0) {
        join_key(pn, p, "type");
        return BAD(c, pn,
                   "%s reads a sketch: expected a fieldAccess of %s, got a \"%s\" "
                   "post-aggregator",
                   type, agg_kind_needed(want), ftype);
    }
    static const char *const keys[] = {"type", "name", "fieldName", NULL};
    if ((rc = check_keys(c, f, p, keys)) != 0 ||
        (rc = get_string(c, f, "fieldName", p, true, &fname)) != 0) {
        return rc;
    }
    join_key(pn, p, "fieldName");
    return sketch_ref(c, fname, pn, type, want, out);
}

static int get_fraction(pctx *c, yajl_val v, const char *path, double *out)
{
    if (v == NULL || !YAJL_IS_NUMBER(v)) {
        return BAD(c, path, "expected a fraction between 0 and 1, got %s", jtype(v));
    }
    double f = YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
    if (!(f >= 0.0 && f <= 1.0)) {
        return BAD(c, path, "the fraction must be between 0 and 1, got %s", v->u.number.r);
    }
    *out = f;
    return 0;
}

#define MAX_FRACTIONS 1000

/* hyperUniqueCardinality, HLLSketchEstimate, quantilesDoublesSketchToQuantile(s).
 * Returns 1 when type is not one of them. */
static int parse_sketch_post(pctx *c, yajl_val v, const char *path, const char *type, bool top,
                             sl_post *pa)
{
    char p[PATH_MAX_LEN];
    int rc;
    if (strcmp(type, "hyperUniqueCardinality") == 0) {
        static const char *const keys[] = {"type", "name", "fieldName", "round", NULL};
        const char *fname;
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "fieldName", path, true, &fname)) != 0 ||
            (rc = get_bool(c, v, "round", path, &pa->is_long)) != 0) {
            return rc;
        }
        pa->type = SL_POST_ESTIMATE;
        join_key(p, path, "fieldName");
        return sketch_ref(c, fname, p, type, SL_AGG_HLL, &pa->ref);
    }
    if (strcmp(type, "HLLSketchEstimate") == 0) {
        static const char *const keys[] = {"type", "name", "field", "round", NULL};
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_bool(c, v, "round", path, &pa->is_long)) != 0) {
            return rc;
        }
        pa->type = SL_POST_ESTIMATE;
        return sketch_field(c, v, path, type, SL_AGG_HLL, &pa->ref);
    }
    if (strcmp(type, "quantilesDoublesSketchToQuantile") == 0) {
        static const char *const keys[] = {"type", "name", "field", "fraction", NULL};
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        pa->type = SL_POST_QUANTILE;
        join_key(p, path, "fraction");
        if ((rc = get_fraction(c, get_set(v, "fraction"), p, &pa->value)) != 0) {
            return rc;
        }
        return sketch_field(c, v, path, type, SL_AGG_DDS, &pa->ref);
    }
    if (strcmp(type, "quantilesDoublesSketchToQuantiles") == 0) {
        static const char *const keys[] = {"type", "name", "field", "fractions", NULL};
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        pa->type = SL_POST_QUANTILES;
        pa->is_array = true;
        yajl_val arr = get_set(v, "fractions");
        join_key(p, path, "fractions");
        if (arr == NULL || !YAJL_IS_ARRAY(arr) || arr->u.array.len == 0) {
            return BAD(c, p, "expected a non-empty array of fractions between 0 and 1, got %s",
                       arr != NULL && YAJL_IS_ARRAY(arr) ? "an empty array" : jtype(arr));
        }
        if (arr->u.array.len > MAX_FRACTIONS) {
            return BAD(c, p, "at most %d fractions", MAX_FRACTIONS);
        }
        pa->fractions = sl_calloc(arr->u.array.len, sizeof(double));
        for (size_t i = 0; i < arr->u.array.len; i++) {
            char pi[PATH_MAX_LEN];
            join_index(pi, p, i);
            if ((rc = get_fraction(c, arr->u.array.values[i], pi, &pa->fractions[i])) != 0) {
                return rc;
            }
            pa->nfractions++;
        }
        if (!top) {
            return BAD(c, path,
                       "quantilesDoublesSketchToQuantiles gives an array, which cannot be an "
                       "input of another post-aggregator; use quantilesDoublesSketchToQuantile");
        }
        pa->arr_off = c->q->narr;
        c->q->narr += pa->nfractions;
        return sketch_field(c, v, path, type, SL_AGG_DDS, &pa->ref);
    }
    return 1;
}

static int parse_post(pctx *c, yajl_val v, const char *path, bool top, sl_post **out)
{
    char p[PATH_MAX_LEN];
    const char *type, *name;
    int rc = want_object(c, v, path);
    if (rc == 0) {
        rc = get_string(c, v, "type", path, true, &type);
    }
    if (rc == 0) {
        rc = get_string(c, v, "name", path, false, &name);
    }
    if (rc != 0) {
        return rc;
    }
    sl_post *pa = sl_calloc(1, sizeof(*pa));
    *out = pa;
    if (name != NULL) {
        pa->name = sl_strdup(name);
    }
    if (strcmp(type, "arithmetic") == 0 || strstr(type, "Greatest") != NULL ||
        strstr(type, "Least") != NULL) {
        bool arith = strcmp(type, "arithmetic") == 0;
        if (!arith && strcmp(type, "doubleGreatest") != 0 && strcmp(type, "longGreatest") != 0 &&
            strcmp(type, "doubleLeast") != 0 && strcmp(type, "longLeast") != 0) {
            join_key(p, path, "type");
            return BAD(c, p, "unknown post-aggregator type \"%s\"; expected one of: %s", type,
                       post_types);
        }
        static const char *const akeys[] = {"type", "name", "fn", "fields", "ordering", NULL};
        static const char *const gkeys[] = {"type", "name", "fields", NULL};
        if ((rc = check_keys(c, v, path, arith ? akeys : gkeys)) != 0) {
            return rc;
        }
        if (arith) {
            const char *fn;
            if ((rc = get_string(c, v, "fn", path, true, &fn)) != 0) {
                return rc;
            }
            pa->type = SL_POST_ARITH;
            if (strcmp(fn, "+") == 0 || strcmp(fn, "-") == 0 || strcmp(fn, "*") == 0 ||
                strcmp(fn, "/") == 0) {
                pa->fn = fn[0];
            } else if (strcmp(fn, "quotient") == 0) {
                pa->fn = 'q';
            } else if (strcmp(fn, "pow") == 0) {
                pa->fn = 'p';
            } else {
                join_key(p, path, "fn");
                return BAD(c, p,
                           "unknown function \"%s\"; expected one of: +, -, *, /, quotient, "
                           "pow",
                           fn);
            }
        } else {
            pa->type = strstr(type, "Greatest") ? SL_POST_GREATEST : SL_POST_LEAST;
            pa->is_long = type[0] == 'l';
        }
        yajl_val arr = get_set(v, "fields");
        join_key(p, path, "fields");
        if (arr == NULL || !YAJL_IS_ARRAY(arr)) {
            return BAD(c, p, "expected an array of post-aggregators, got %s", jtype(arr));
        }
        if (arr->u.array.len < (arith ? 2u : 1u)) {
            return BAD(c, p, "needs at least %d fields", arith ? 2 : 1);
        }
        pa->fields = sl_calloc(arr->u.array.len, sizeof(sl_post *));
        for (size_t i = 0; i < arr->u.array.len; i++) {
            char pi[PATH_MAX_LEN];
            join_index(pi, p, i);
            rc = parse_post(c, arr->u.array.values[i], pi, false, &pa->fields[pa->nfields]);
            pa->nfields++;
            if (rc != 0) {
                return rc;
            }
            const sl_post *kid = pa->fields[pa->nfields - 1];
            if (kid->type == SL_POST_FIELD && (rc = not_array(c, kid->ref, pi,
                                                              "an input of "
                                                              "arithmetic")) != 0) {
                return rc;
            }
        }
    } else if (strcmp(type, "fieldAccess") == 0 || strcmp(type, "finalizingFieldAccess") == 0) {
        static const char *const keys[] = {"type", "name", "fieldName", NULL};
        const char *field;
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "fieldName", path, true, &field)) != 0) {
            return rc;
        }
        pa->type = SL_POST_FIELD;
        pa->ref = sl_native_column(c->q, field);
        if (pa->ref < 0) {
            char list[300];
            column_list(c->q, list, sizeof(list));
            join_key(p, path, "fieldName");
            return BAD(c, p,
                       "\"%s\" is not an aggregator or an earlier post-aggregator of this query; "
                       "available: %s",
                       field, list[0] ? list : "(none)");
        }
        pa->is_long = column_is_long(c->q, pa->ref);
        if (sl_native_column_is_array(c->q, pa->ref)) {
            pa->is_array = true;
            pa->nfractions = c->q->post[pa->ref - c->q->naggs]->nfractions;
        }
    } else if (strcmp(type, "constant") == 0) {
        static const char *const keys[] = {"type", "name", "value", NULL};
        yajl_val val = get_set(v, "value");
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        join_key(p, path, "value");
        if (val == NULL || !YAJL_IS_NUMBER(val)) {
            return BAD(c, p, "expected a number, got %s", jtype(val));
        }
        pa->type = SL_POST_CONST;
        pa->is_long = YAJL_IS_INTEGER(val);
        pa->value = YAJL_IS_INTEGER(val) ? (double)YAJL_GET_INTEGER(val) : YAJL_GET_DOUBLE(val);
    } else if ((rc = parse_sketch_post(c, v, path, type, top, pa)) <= 0) {
        if (rc != 0) {
            return rc;
        }
    } else {
        for (size_t i = 0; unsupported_posts[i] != NULL; i++) {
            if (strcmp(type, unsupported_posts[i]) == 0) {
                join_key(p, path, "type");
                return UNSUPPORTED(c, p,
                                   "post-aggregator type \"%s\" is not supported; supported: %s",
                                   type, post_types);
            }
        }
        join_key(p, path, "type");
        return BAD(c, p, "unknown post-aggregator type \"%s\"; expected one of: %s", type,
                   post_types);
    }
    if (top && (pa->name == NULL || pa->name[0] == '\0')) {
        join_key(p, path, "name");
        return BAD(c, p, "required");
    }
    return 0;
}

static int parse_posts(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    yajl_val v = get_set(root, "postAggregations");
    q->ncols = q->naggs;
    if (v == NULL) {
        return 0;
    }
    if (!YAJL_IS_ARRAY(v)) {
        return BAD(c, "postAggregations", "expected an array, got %s", jtype(v));
    }
    q->post = sl_calloc(v->u.array.len + 1, sizeof(sl_post *));
    for (size_t i = 0; i < v->u.array.len; i++) {
        char p[PATH_MAX_LEN];
        join_index(p, "postAggregations", i);
        sl_post *pa = NULL;
        int rc = parse_post(c, v->u.array.values[i], p, true, &pa);
        if (rc != 0) {
            post_free(pa);
            return rc;
        }
        if (sl_native_column(q, pa->name) >= 0) {
            rc = BAD(c, p, "output name \"%s\" is already used", pa->name);
            post_free(pa);
            return rc;
        }
        q->post[q->npost++] = pa;
    }
    q->ncols = q->naggs + q->npost;
    return 0;
}

/* ---- dimensions ---------------------------------------------------------------------- */

static int parse_dimspec(pctx *c, yajl_val v, const char *path, sl_dimspec *d)
{
    const char *name, *output = NULL;
    int rc;
    if (YAJL_IS_STRING(v)) {
        name = JSTR(v);
        if (name[0] == '\0') {
            return BAD(c, path, "must not be empty");
        }
    } else if (YAJL_IS_OBJECT(v)) {
        static const char *const keys[] = {"type", "dimension", "outputName", "outputType", NULL};
        const char *type, *otype;
        if ((rc = get_string(c, v, "type", path, false, &type)) != 0) {
            return rc;
        }
        if (type != NULL && strcmp(type, "default") != 0) {
            char p[PATH_MAX_LEN];
            join_key(p, path, "type");
            return UNSUPPORTED(c, p, "dimension spec \"%s\" is not supported; only \"default\"",
                               type);
        }
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "dimension", path, true, &name)) != 0 ||
            (rc = get_string(c, v, "outputName", path, false, &output)) != 0 ||
            (rc = get_string(c, v, "outputType", path, false, &otype)) != 0) {
            return rc;
        }
        if (otype != NULL && strcasecmp(otype, "STRING") != 0) {
            char p[PATH_MAX_LEN];
            join_key(p, path, "outputType");
            return UNSUPPORTED(c, p, "only STRING dimensions are supported, got \"%s\"", otype);
        }
    } else {
        return BAD(c, path, "expected a dimension name or a dimension spec, got %s", jtype(v));
    }
    if (strcmp(name, "__time") == 0 ||
        (c->spec->time_column != NULL && strcmp(name, c->spec->time_column) == 0)) {
        return UNSUPPORTED(c, path,
                           "grouping on the time column \"%s\" is not supported; use "
                           "\"granularity\"",
                           name);
    }
    d->name = sl_strdup(name);
    d->output = sl_strdup(output != NULL && output[0] != '\0' ? output : name);
    d->dim = sl_spec_dim(c->spec, name);
    return 0;
}

/* Output names must be unique across dimensions and value columns. */
static int check_dim_names(pctx *c, const char *what)
{
    sl_native *q = c->q;
    for (int i = 0; i < q->ndims; i++) {
        char p[PATH_MAX_LEN];
        if (q->type == SL_NQ_TOPN) {
            snprintf(p, sizeof(p), "%s", what);
        } else {
            join_index(p, what, (size_t)i);
        }
        if (sl_native_column(q, q->dims[i].output) >= 0) {
            return BAD(c, p, "output name \"%s\" is also an aggregator or post-aggregator name",
                       q->dims[i].output);
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(q->dims[j].output, q->dims[i].output) == 0) {
                return BAD(c, p, "output name \"%s\" appears twice", q->dims[i].output);
            }
        }
    }
    return 0;
}

/* ---- topN ---------------------------------------------------------------------------- */

static int parse_topn_metric(pctx *c, yajl_val v, const char *path, sl_topn_metric *m)
{
    char p[PATH_MAX_LEN];
    int rc;
    if (v == NULL || YAJL_IS_NULL(v)) {
        return BAD(c, path, "required (the aggregator or post-aggregator to rank by)");
    }
    if (YAJL_IS_STRING(v)) {
        const char *name = JSTR(v);
        m->kind = SL_TOPN_NUMERIC;
        m->col = sl_native_column(c->q, name);
        if (m->col < 0) {
            char list[300];
            column_list(c->q, list, sizeof(list));
            return BAD(c, path,
                       "\"%s\" is not an aggregator or post-aggregator of this query; "
                       "available: %s",
                       name, list[0] ? list : "(none)");
        }
        return not_array(c, m->col, path, "ranked by");
    }
    if (!YAJL_IS_OBJECT(v)) {
        return BAD(c, path, "expected a metric name or a metric spec, got %s", jtype(v));
    }
    const char *type;
    if ((rc = get_string(c, v, "type", path, true, &type)) != 0) {
        return rc;
    }
    if (strcmp(type, "numeric") == 0) {
        static const char *const keys[] = {"type", "metric", NULL};
        join_key(p, path, "metric");
        yajl_val mv = get_set(v, "metric");
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        if (mv == NULL || !YAJL_IS_STRING(mv)) {
            return BAD(c, p, "expected a metric name, got %s", jtype(mv));
        }
        return parse_topn_metric(c, mv, p, m);
    }
    if (strcmp(type, "inverted") == 0) {
        static const char *const keys[] = {"type", "metric", NULL};
        join_key(p, path, "metric");
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = parse_topn_metric(c, get_set(v, "metric"), p, m)) != 0) {
            return rc;
        }
        m->inverted = !m->inverted;
        return 0;
    }
    if (strcmp(type, "dimension") == 0 || strcmp(type, "lexicographic") == 0) {
        static const char *const keys[] = {"type", "ordering", "previousStop", NULL};
        const char *stop;
        m->kind = SL_TOPN_DIMENSION;
        join_key(p, path, "ordering");
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = parse_ordering(c, get(v, "ordering"), p, &m->order)) != 0 ||
            (rc = get_string(c, v, "previousStop", path, false, &stop)) != 0) {
            return rc;
        }
        if (strcmp(type, "lexicographic") == 0) {
            m->order = SL_ORDER_LEXICOGRAPHIC;
        }
        if (stop != NULL) {
            m->previous_stop = sl_strdup(stop);
        }
        return 0;
    }
    join_key(p, path, "type");
    if (strcmp(type, "alphaNumeric") == 0) {
        return UNSUPPORTED(c, p, "alphaNumeric ordering is not supported");
    }
    return BAD(c, p, "unknown metric spec type \"%s\"; expected numeric, inverted or dimension",
               type);
}

static int parse_topn(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    yajl_val d = get_set(root, "dimension");
    if (d == NULL) {
        return BAD(c, "dimension", "required");
    }
    q->ndims = 1;
    q->dims = sl_calloc(1, sizeof(sl_dimspec));
    int rc = parse_dimspec(c, d, "dimension", &q->dims[0]);
    if (rc != 0) {
        return rc;
    }
    if ((rc = get_int(c, root, "threshold", "", 1, 1000000000, &q->threshold)) != 0) {
        return rc;
    }
    if (q->threshold < 0) {
        return BAD(c, "threshold", "required (how many values to return per bucket)");
    }
    if ((rc = parse_topn_metric(c, get_set(root, "metric"), "metric", &q->metric)) != 0) {
        return rc;
    }
    return check_dim_names(c, "dimension");
}

/* ---- groupBy ------------------------------------------------------------------------- */

static void having_free(sl_having *h)
{
    if (h == NULL) {
        return;
    }
    free(h->str);
    sl_filter_free(h->filter);
    for (int i = 0; i < h->nkids; i++) {
        having_free(h->kids[i]);
    }
    free(h->kids);
    free(h);
}

static int query_dim(const sl_native *q, const char *name)
{
    for (int i = 0; i < q->ndims; i++) {
        if (strcmp(q->dims[i].output, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Having filters see the output row: leaves name a query dimension (dim = its index)
 * or a value column (dim = -2 - column); anything else is all null (dim = -1). */
static void rebind_having_filter(const sl_native *q, sl_filter *f)
{
    for (int i = 0; i < f->nkids; i++) {
        rebind_having_filter(q, f->kids[i]);
    }
    if (f->column == NULL) {
        return;
    }
    f->dim = query_dim(q, f->column);
    if (f->dim < 0) {
        int col = sl_native_column(q, f->column);
        f->dim = col >= 0 ? -2 - col : -1;
    }
}

static int parse_having(pctx *c, yajl_val v, const char *path, sl_having **out)
{
    char p[PATH_MAX_LEN];
    const char *type;
    int rc = want_object(c, v, path);
    if (rc == 0) {
        rc = get_string(c, v, "type", path, true, &type);
    }
    if (rc != 0) {
        return rc;
    }
    sl_having *h = sl_calloc(1, sizeof(*h));
    *out = h;
    if (strcmp(type, "greaterThan") == 0 || strcmp(type, "lessThan") == 0 ||
        strcmp(type, "equalTo") == 0) {
        static const char *const keys[] = {"type", "aggregation", "value", NULL};
        const char *agg;
        h->type = type[0] == 'g' ? SL_HAVING_GT : type[0] == 'l' ? SL_HAVING_LT : SL_HAVING_EQ;
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "aggregation", path, true, &agg)) != 0) {
            return rc;
        }
        h->col = sl_native_column(c->q, agg);
        if (h->col < 0) {
            char list[300];
            column_list(c->q, list, sizeof(list));
            join_key(p, path, "aggregation");
            return BAD(c, p,
                       "\"%s\" is not an aggregator or post-aggregator of this query; "
                       "available: %s",
                       agg, list[0] ? list : "(none)");
        }
        join_key(p, path, "aggregation");
        if ((rc = not_array(c, h->col, p, "compared")) != 0) {
            return rc;
        }
        yajl_val val = get_set(v, "value");
        join_key(p, path, "value");
        if (val == NULL || !YAJL_IS_NUMBER(val)) {
            return BAD(c, p, "expected a number, got %s", jtype(val));
        }
        h->value = YAJL_IS_INTEGER(val) ? (double)YAJL_GET_INTEGER(val) : YAJL_GET_DOUBLE(val);
    } else if (strcmp(type, "and") == 0 || strcmp(type, "or") == 0) {
        static const char *const keys[] = {"type", "havingSpecs", NULL};
        h->type = type[0] == 'a' ? SL_HAVING_AND : SL_HAVING_OR;
        yajl_val arr = get_set(v, "havingSpecs");
        join_key(p, path, "havingSpecs");
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        if (arr == NULL || !YAJL_IS_ARRAY(arr) || arr->u.array.len == 0) {
            return BAD(c, p, "expected a non-empty array of having specs, got %s", jtype(arr));
        }
        h->kids = sl_calloc(arr->u.array.len, sizeof(sl_having *));
        for (size_t i = 0; i < arr->u.array.len; i++) {
            char pi[PATH_MAX_LEN];
            join_index(pi, p, i);
            rc = parse_having(c, arr->u.array.values[i], pi, &h->kids[h->nkids]);
            h->nkids++;
            if (rc != 0) {
                return rc;
            }
        }
    } else if (strcmp(type, "not") == 0) {
        static const char *const keys[] = {"type", "havingSpec", NULL};
        h->type = SL_HAVING_NOT;
        h->kids = sl_calloc(1, sizeof(sl_having *));
        join_key(p, path, "havingSpec");
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        h->nkids = 1;
        return parse_having(c, get_set(v, "havingSpec"), p, &h->kids[0]);
    } else if (strcmp(type, "dimSelector") == 0) {
        static const char *const keys[] = {"type", "dimension", "value", "extractionFn", NULL};
        const char *dim;
        h->type = SL_HAVING_DIM;
        join_key(p, path, "value");
        if ((rc = check_keys(c, v, path, keys)) != 0 || (rc = no_extraction(c, v, path)) != 0 ||
            (rc = get_string(c, v, "dimension", path, true, &dim)) != 0 ||
            (rc = scalar_string(c, get(v, "value"), p, &h->str)) != 0) {
            return rc;
        }
        h->dim = query_dim(c->q, dim);
        if (h->dim < 0) {
            join_key(p, path, "dimension");
            return BAD(c, p, "\"%s\" is not a dimension of this query", dim);
        }
    } else if (strcmp(type, "filter") == 0) {
        static const char *const keys[] = {"type", "filter", NULL};
        h->type = SL_HAVING_FILTER;
        join_key(p, path, "filter");
        if ((rc = check_keys(c, v, path, keys)) != 0) {
            return rc;
        }
        if (get_set(v, "filter") == NULL) {
            return BAD(c, p, "required");
        }
        if ((rc = parse_filter(c, get_set(v, "filter"), p, &h->filter)) != 0) {
            return rc;
        }
        rebind_having_filter(c->q, h->filter);
    } else {
        join_key(p, path, "type");
        return BAD(c, p,
                   "unknown having type \"%s\"; expected one of: greaterThan, lessThan, equalTo, "
                   "and, or, not, dimSelector, filter",
                   type);
    }
    return 0;
}

static int parse_order_col(pctx *c, yajl_val v, const char *path, sl_order_col *oc)
{
    const char *name, *dir = NULL;
    int rc;
    oc->order = SL_ORDER_LEXICOGRAPHIC;
    if (YAJL_IS_STRING(v)) {
        name = JSTR(v);
    } else if (YAJL_IS_OBJECT(v)) {
        static const char *const keys[] = {"dimension", "direction", "dimensionOrder", NULL};
        char p[PATH_MAX_LEN];
        join_key(p, path, "dimensionOrder");
        if ((rc = check_keys(c, v, path, keys)) != 0 ||
            (rc = get_string(c, v, "dimension", path, true, &name)) != 0 ||
            (rc = get_string(c, v, "direction", path, false, &dir)) != 0 ||
            (rc = parse_ordering(c, get(v, "dimensionOrder"), p, &oc->order)) != 0) {
            return rc;
        }
    } else {
        return BAD(c, path, "expected a column name or an orderBy spec, got %s", jtype(v));
    }
    if (dir != NULL) {
        if (strcasecmp(dir, "descending") == 0 || strcasecmp(dir, "desc") == 0) {
            oc->descending = true;
        } else if (strcasecmp(dir, "ascending") != 0 && strcasecmp(dir, "asc") != 0) {
            char p[PATH_MAX_LEN];
            join_key(p, path, "direction");
            return BAD(c, p, "expected ascending or descending, got \"%s\"", dir);
        }
    }
    int d = query_dim(c->q, name);
    if (d >= 0) {
        oc->is_dim = true;
        oc->index = d;
        return 0;
    }
    oc->index = sl_native_column(c->q, name);
    if (oc->index < 0) {
        return BAD(c, path,
                   "\"%s\" is not a dimension, aggregator or post-aggregator of this query", name);
    }
    return not_array(c, oc->index, path, "sorted on");
}

static int parse_limit_spec(pctx *c, yajl_val v)
{
    static const char *const keys[] = {"type", "limit", "offset", "columns", NULL};
    const char *path = "limitSpec", *type;
    sl_native *q = c->q;
    int rc = want_object(c, v, path);
    if (rc == 0) {
        rc = check_keys(c, v, path, keys);
    }
    if (rc == 0) {
        rc = get_string(c, v, "type", path, false, &type);
    }
    if (rc != 0) {
        return rc;
    }
    if (type != NULL && strcmp(type, "default") != 0) {
        return UNSUPPORTED(c, "limitSpec.type", "\"%s\" is not supported; only \"default\"", type);
    }
    if ((rc = get_int(c, v, "limit", path, 1, INT64_MAX, &q->limit)) != 0 ||
        (rc = get_int(c, v, "offset", path, 0, INT64_MAX, &q->offset)) != 0) {
        return rc;
    }
    yajl_val cols = get_set(v, "columns");
    if (cols == NULL) {
        return 0;
    }
    if (!YAJL_IS_ARRAY(cols)) {
        return BAD(c, "limitSpec.columns", "expected an array, got %s", jtype(cols));
    }
    q->orderby = sl_calloc(cols->u.array.len + 1, sizeof(sl_order_col));
    for (size_t i = 0; i < cols->u.array.len; i++) {
        char p[PATH_MAX_LEN];
        join_index(p, "limitSpec.columns", i);
        if ((rc = parse_order_col(c, cols->u.array.values[i], p, &q->orderby[q->norder])) != 0) {
            return rc;
        }
        q->norder++;
    }
    return 0;
}

static int parse_groupby(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    yajl_val d = get_set(root, "dimensions");
    int rc;
    if (d != NULL) {
        if (!YAJL_IS_ARRAY(d)) {
            return BAD(c, "dimensions", "expected an array, got %s", jtype(d));
        }
        if (d->u.array.len > SL_MAX_DIMS) {
            return BAD(c, "dimensions", "at most %d dimensions", SL_MAX_DIMS);
        }
        q->dims = sl_calloc(d->u.array.len + 1, sizeof(sl_dimspec));
        for (size_t i = 0; i < d->u.array.len; i++) {
            char p[PATH_MAX_LEN];
            join_index(p, "dimensions", i);
            if ((rc = parse_dimspec(c, d->u.array.values[i], p, &q->dims[q->ndims])) != 0) {
                return rc;
            }
            q->ndims++;
        }
    }
    if ((rc = check_dim_names(c, "dimensions")) != 0) {
        return rc;
    }
    if (get_set(root, "subtotalsSpec") != NULL) {
        return UNSUPPORTED(c, "subtotalsSpec", "subtotals are not supported");
    }
    if (get_set(root, "having") != NULL &&
        (rc = parse_having(c, get_set(root, "having"), "having", &q->having)) != 0) {
        return rc;
    }
    if (get_set(root, "limitSpec") != NULL &&
        (rc = parse_limit_spec(c, get_set(root, "limitSpec"))) != 0) {
        return rc;
    }
    return 0;
}

/* ---- root ---------------------------------------------------------------------------- */

static int parse_context(pctx *c, yajl_val root)
{
    yajl_val v = get_set(root, "context");
    sl_native *q = c->q;
    if (v == NULL) {
        return 0;
    }
    int rc = want_object(c, v, "context");
    if (rc != 0) {
        return rc;
    }
    /* Other context keys (queryId, priority, ...) are accepted and ignored, as Druid
     * ignores the ones a query type does not use. */
    if ((rc = get_bool(c, v, "skipEmptyBuckets", "context", &q->skip_empty)) != 0 ||
        (rc = get_bool(c, v, "grandTotal", "context", &q->grand_total)) != 0 ||
        (rc = get_int(c, v, "timeout", "context", 0, INT64_MAX / 2, &q->timeout_ms)) != 0) {
        return rc;
    }
    bool dims_first = false;
    if ((rc = get_bool(c, v, "sortByDimsFirst", "context", &dims_first)) != 0) {
        return rc;
    }
    if (dims_first) {
        return UNSUPPORTED(c, "context.sortByDimsFirst", "is not supported");
    }
    return 0;
}

static int parse_root(pctx *c, yajl_val root)
{
    sl_native *q = c->q;
    const char *qt;
    int rc = get_string(c, root, "queryType", "", true, &qt);
    if (rc != 0) {
        return rc;
    }
    static const char *const ts_keys[] = {"queryType",        "dataSource",     "intervals",
                                          "granularity",      "filter",         "aggregations",
                                          "postAggregations", "descending",     "limit",
                                          "context",          "virtualColumns", NULL};
    static const char *const topn_keys[] = {
        "queryType",    "dataSource",       "intervals", "granularity", "filter",
        "aggregations", "postAggregations", "dimension", "metric",      "threshold",
        "context",      "virtualColumns",   NULL};
    static const char *const gb_keys[] = {
        "queryType",     "dataSource",       "intervals",      "granularity", "filter",
        "aggregations",  "postAggregations", "dimensions",     "having",      "limitSpec",
        "subtotalsSpec", "context",          "virtualColumns", NULL};
    static const char *const tb_keys[] = {"queryType", "dataSource", "intervals", "bound",
                                          "filter",    "context",    NULL};
    const char *const *keys;
    if (strcmp(qt, "timeseries") == 0) {
        q->type = SL_NQ_TIMESERIES;
        keys = ts_keys;
    } else if (strcmp(qt, "topN") == 0) {
        q->type = SL_NQ_TOPN;
        keys = topn_keys;
    } else if (strcmp(qt, "groupBy") == 0) {
        q->type = SL_NQ_GROUPBY;
        keys = gb_keys;
    } else if (strcmp(qt, "timeBoundary") == 0) {
        q->type = SL_NQ_TIMEBOUNDARY;
        keys = tb_keys;
    } else if (strcmp(qt, "scan") == 0 || strcmp(qt, "search") == 0 ||
               strcmp(qt, "segmentMetadata") == 0 || strcmp(qt, "dataSourceMetadata") == 0 ||
               strcmp(qt, "select") == 0) {
        return UNSUPPORTED(c, "queryType",
                           "query type \"%s\" is not supported; supported: timeseries, topN, "
                           "groupBy, timeBoundary",
                           qt);
    } else {
        return BAD(c, "queryType",
                   "unknown query type \"%s\"; supported: timeseries, topN, groupBy, timeBoundary",
                   qt);
    }
    if ((rc = check_keys(c, root, "", keys)) != 0 || (rc = parse_datasource(c, root)) != 0 ||
        (rc = parse_intervals(c, root)) != 0 || (rc = parse_context(c, root)) != 0) {
        return rc;
    }
    yajl_val vc = get_set(root, "virtualColumns");
    if (vc != NULL && !(YAJL_IS_ARRAY(vc) && vc->u.array.len == 0)) {
        return UNSUPPORTED(c, "virtualColumns", "virtual columns are not supported");
    }
    if (get_set(root, "filter") != NULL &&
        (rc = parse_filter(c, get_set(root, "filter"), "filter", &q->filter)) != 0) {
        return rc;
    }
    if (q->type == SL_NQ_TIMEBOUNDARY) {
        const char *bound;
        if ((rc = get_string(c, root, "bound", "", false, &bound)) != 0) {
            return rc;
        }
        if (bound == NULL) {
            q->bound = SL_BOUND_BOTH;
        } else if (strcmp(bound, "minTime") == 0) {
            q->bound = SL_BOUND_MIN;
        } else if (strcmp(bound, "maxTime") == 0) {
            q->bound = SL_BOUND_MAX;
        } else {
            return BAD(c, "bound", "expected minTime or maxTime, got \"%s\"", bound);
        }
        q->gran.all = true;
        return 0;
    }
    if ((rc = parse_granularity(c, root)) != 0 || (rc = parse_aggs(c, root)) != 0 ||
        (rc = parse_posts(c, root)) != 0) {
        return rc;
    }
    switch (q->type) {
    case SL_NQ_TIMESERIES:
        if ((rc = get_bool(c, root, "descending", "", &q->descending)) != 0 ||
            (rc = get_int(c, root, "limit", "", 1, INT64_MAX, &q->limit)) != 0) {
            return rc;
        }
        return 0;
    case SL_NQ_TOPN:
        return parse_topn(c, root);
    case SL_NQ_GROUPBY:
        return parse_groupby(c, root);
    case SL_NQ_TIMEBOUNDARY:
        break;
    }
    return 0;
}

void sl_native_free(sl_native *q)
{
    if (q == NULL) {
        return;
    }
    free(q->intervals);
    sl_filter_free(q->filter);
    for (int i = 0; i < q->naggs; i++) {
        free(q->aggs[i].name);
        free(q->aggs[i].type);
        sl_filter_free(q->aggs[i].filter);
    }
    free(q->aggs);
    for (int i = 0; i < q->npost; i++) {
        post_free(q->post[i]);
    }
    free(q->post);
    for (int i = 0; i < q->ndims; i++) {
        free(q->dims[i].name);
        free(q->dims[i].output);
    }
    free(q->dims);
    free(q->metric.previous_stop);
    having_free(q->having);
    free(q->orderby);
    free(q);
}
