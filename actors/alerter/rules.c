/* Alert rules (see rules.h): parsing rule files, building queries, reading results,
 * conditions and the state machine. Rule files are JSON with comments, parsed with
 * yajl_tree; every error names the file, the key and what is wrong. */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "clock.h"

/* The text of a string value ("" for anything else): never NULL. */
static const char *sval(yajl_val v)
{
    return v != NULL && YAJL_IS_STRING(v) && v->u.string != NULL ? v->u.string : "";
}

static const char *const state_names[SL_ALERT_NSTATES] = {
#define SL_ALERT_STATE_NAME(e, name) name,
    SL_ALERT_STATES(SL_ALERT_STATE_NAME)
#undef SL_ALERT_STATE_NAME
};

const char *sl_alert_state_name(int state)
{
    return state >= 0 && state < SL_ALERT_NSTATES ? state_names[state] : "unknown";
}

int sl_alert_state_parse(const char *name)
{
    for (int i = 0; i < SL_ALERT_NSTATES; i++) {
        if (strcmp(state_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct pctx {
    const char *source;
    sl_err *err;
} pctx;

static const char *type_name(yajl_val v)
{
    if (v == NULL) {
        return "missing";
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
    if (YAJL_IS_NULL(v)) {
        return "null";
    }
    return "a boolean";
}

static int bad(pctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(pctx *c, const char *key, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sl_err_set(c->err, SL_ECONFIG, "%s: key \"%s\": %s", c->source, key, msg);
}

static yajl_val get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

static int only_keys(pctx *c, yajl_val obj, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *k = obj->u.object.keys[i];
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++) {
            ok = strcmp(*a, k) == 0;
        }
        if (!ok) {
            char full[200];
            snprintf(full, sizeof(full), "%s%s%s", where, where[0] != '\0' ? "." : "", k);
            return bad(c, full, "unknown key");
        }
    }
    return 0;
}

static int want_string(pctx *c, yajl_val v, const char *key, char **out)
{
    if (!YAJL_IS_STRING(v) || sval(v)[0] == '\0') {
        return bad(c, key, "must be a non-empty string, not %s",
                   YAJL_IS_STRING(v) ? "an empty string" : type_name(v));
    }
    free(*out);
    *out = sl_strdup(sval(v));
    return 0;
}

static int want_number(pctx *c, yajl_val v, const char *key, double lo, double hi, double *out)
{
    if (!YAJL_IS_NUMBER(v)) {
        return bad(c, key, "must be a number, not %s", type_name(v));
    }
    double d = YAJL_GET_DOUBLE(v);
    if (YAJL_IS_INTEGER(v)) {
        d = (double)YAJL_GET_INTEGER(v);
    }
    if (!(d >= lo && d <= hi)) {
        return bad(c, key, "%g is out of range [%g, %g]", d, lo, hi);
    }
    *out = d;
    return 0;
}

static int want_int(pctx *c, yajl_val v, const char *key, int lo, int hi, int *out)
{
    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < lo || YAJL_GET_INTEGER(v) > hi) {
        return bad(c, key, "must be an integer in [%d, %d]", lo, hi);
    }
    *out = (int)YAJL_GET_INTEGER(v);
    return 0;
}

/* An ISO 8601 duration such as "PT1M" into ms, at least min_ms. */
static int want_period(pctx *c, yajl_val v, const char *key, int64_t min_ms, int64_t *out)
{
    sl_err e = {0};
    int64_t ms;
    if (!YAJL_IS_STRING(v)) {
        return bad(c, key, "must be an ISO 8601 duration such as \"PT1M\", not %s", type_name(v));
    }
    if (sl_period_parse(sval(v), &ms, &e) != 0) {
        /* sl_period_parse refuses zero; "PT0S" is a fine `for` or `delay`. */
        const char *s = sval(v);
        bool zero = s[0] == 'P' && strpbrk(s, "0") != NULL && strpbrk(s, "123456789") == NULL &&
                    strspn(s, "PTWDHMS0.") == strlen(s);
        if (!zero) {
            return bad(c, key, "\"%s\" is not an ISO 8601 duration such as \"PT1M\": %s", s, e.msg);
        }
        ms = 0;
    }
    if (ms < min_ms) {
        return bad(c, key, "\"%s\" is shorter than the minimum of %lld ms", sval(v),
                   (long long)min_ms);
    }
    *out = ms;
    return 0;
}

/* An optional period: def when key is absent from obj. */
static int opt_period(pctx *c, yajl_val obj, const char *key, int64_t min_ms, int64_t def,
                      int64_t *out)
{
    yajl_val v = get(obj, key);
    *out = def;
    return v != NULL ? want_period(c, v, key, min_ms, out) : 0;
}

/* A string that must be one of two words: *is_b says whether it is b. */
static int want_either(pctx *c, yajl_val v, const char *key, const char *a, const char *b,
                       bool *is_b)
{
    const char *s = YAJL_IS_STRING(v) ? sval(v) : "";
    if (strcmp(s, a) != 0 && strcmp(s, b) != 0) {
        return bad(c, key, "must be \"%s\" or \"%s\"", a, b);
    }
    *is_b = strcmp(s, b) == 0;
    return 0;
}

/* Serializes v with yajl_gen (numbers keep their text). skip: top-level keys left out. */
static void gen_value(yajl_gen g, yajl_val v, const char *const *skip)
{
    if (YAJL_IS_STRING(v)) {
        const char *s = sval(v);
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    } else if (YAJL_IS_NUMBER(v)) {
        const char *r = YAJL_GET_NUMBER(v);
        yajl_gen_number(g, r, strlen(r));
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            bool skipped = false;
            for (const char *const *s = skip; s != NULL && *s != NULL && !skipped; s++) {
                skipped = strcmp(*s, k) == 0;
            }
            if (skipped) {
                continue;
            }
            yajl_gen_string(g, (const unsigned char *)k, strlen(k));
            gen_value(g, v->u.object.values[i], NULL);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++) {
            gen_value(g, v->u.array.values[i], NULL);
        }
        yajl_gen_array_close(g);
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else {
        yajl_gen_null(g);
    }
}

static char *to_json(yajl_val v, const char *const *skip)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    gen_value(g, v, skip);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *out = sl_strndup((const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

/* Names the query's aggregations and post-aggregations may give to the value. */
static bool names_output(yajl_val query, const char *name)
{
    const char *lists[] = {"aggregations", "postAggregations"};
    for (size_t l = 0; l < 2; l++) {
        yajl_val a = get(query, lists[l]);
        for (size_t i = 0; a != NULL && YAJL_IS_ARRAY(a) && i < a->u.array.len; i++) {
            yajl_val agg = a->u.array.values[i];
            yajl_val n = YAJL_IS_OBJECT(agg) ? get(agg, "name") : NULL;
            if (n != NULL && YAJL_IS_STRING(n) && strcmp(sval(n), name) == 0) {
                return true;
            }
        }
    }
    return false;
}

static int parse_query(pctx *c, yajl_val root, sl_alert_rule *r)
{
    yajl_val q = get(root, "query"), sql = get(root, "sql"), v;
    int rc;
    if ((q == NULL) == (sql == NULL)) {
        return bad(c, "query",
                   "give exactly one of \"query\" (a Druid native timeseries "
                   "query) and \"sql\"");
    }
    if (sql != NULL) {
        if ((rc = want_string(c, sql, "sql", &r->sql)) != 0) {
            return rc;
        }
        int marks = 0;
        for (const char *p = r->sql; *p != '\0'; p++) {
            marks += *p == '?';
        }
        if (marks != 2) {
            return bad(c, "sql",
                       "must have exactly two ? placeholders (window start and end, e.g. "
                       "__time >= ? AND __time < ?), found %d",
                       marks);
        }
        if ((v = get(root, "datasource")) != NULL &&
            (rc = want_string(c, v, "datasource", &r->datasource)) != 0) {
            return rc;
        }
        r->value = sl_strdup("value");
        if ((v = get(root, "value")) != NULL && (rc = want_string(c, v, "value", &r->value)) != 0) {
            return rc;
        }
        return 0;
    }
    if (!YAJL_IS_OBJECT(q)) {
        return bad(c, "query", "must be a Druid native query object, not %s", type_name(q));
    }
    yajl_val qt = get(q, "queryType");
    if (qt == NULL || !YAJL_IS_STRING(qt) || strcmp(sval(qt), "timeseries") != 0) {
        return bad(c, "query.queryType",
                   "must be \"timeseries\" (a rule needs one value per window)");
    }
    if ((rc = want_string(c, get(q, "dataSource"), "query.dataSource", &r->datasource)) != 0) {
        return rc;
    }
    if (get(root, "datasource") != NULL) {
        return bad(c, "datasource", "is only for SQL rules; a native query names its dataSource");
    }
    yajl_val aggs = get(q, "aggregations");
    if (aggs == NULL || !YAJL_IS_ARRAY(aggs) || aggs->u.array.len == 0) {
        return bad(c, "query.aggregations", "must be a non-empty array");
    }
    if ((v = get(root, "value")) != NULL) {
        if ((rc = want_string(c, v, "value", &r->value)) != 0) {
            return rc;
        }
        if (!names_output(q, r->value)) {
            return bad(c, "value",
                       "\"%s\" is not the name of an aggregation or postAggregation "
                       "of the query",
                       r->value);
        }
    } else {
        yajl_val first = aggs->u.array.values[0];
        yajl_val n = YAJL_IS_OBJECT(first) ? get(first, "name") : NULL;
        if (n == NULL || !YAJL_IS_STRING(n)) {
            return bad(c, "query.aggregations[0].name", "must be a string");
        }
        r->value = sl_strdup(sval(n));
    }
    static const char *const skip[] = {"intervals", "granularity", NULL};
    char *json = to_json(q, skip);
    size_t n = strlen(json);
    SL_ASSERT(n >= 2 && json[n - 1] == '}');
    json[n - 1] = '\0';
    r->query_prefix = json;
    return 0;
}

static int parse_condition(pctx *c, yajl_val v, sl_alert_rule *r)
{
    static const char *const thr_keys[] = {"type", "above", "below", NULL};
    static const char *const base_keys[] = {
        "type",   "baseline_windows", "below_percent", "above_percent",
        "zscore", "min_baseline",     "min_windows",   NULL};
    static const char *const nd_keys[] = {"type", "duration", NULL};
    sl_alert_cond *cd = &r->cond;
    yajl_val f;
    int rc;
    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        return bad(c, "condition",
                   "is required: an object with a \"type\" (threshold, drop, "
                   "spike, no_data)");
    }
    yajl_val t = get(v, "type");
    const char *type = t != NULL && YAJL_IS_STRING(t) ? sval(t) : "";
    if (strcmp(type, "threshold") == 0) {
        cd->type = SL_COND_THRESHOLD;
        if ((rc = only_keys(c, v, "condition", thr_keys)) != 0) {
            return rc;
        }
        if ((f = get(v, "above")) != NULL) {
            if ((rc = want_number(c, f, "condition.above", -HUGE_VAL, HUGE_VAL, &cd->above)) != 0) {
                return rc;
            }
            cd->has_above = true;
        }
        if ((f = get(v, "below")) != NULL) {
            if ((rc = want_number(c, f, "condition.below", -HUGE_VAL, HUGE_VAL, &cd->below)) != 0) {
                return rc;
            }
            cd->has_below = true;
        }
        if (!cd->has_above && !cd->has_below) {
            return bad(c, "condition", "a threshold needs \"above\", \"below\" or both");
        }
        return 0;
    }
    if (strcmp(type, "drop") == 0 || strcmp(type, "spike") == 0) {
        bool drop = type[0] == 'd';
        const char *pkey = drop ? "below_percent" : "above_percent";
        const char *other = drop ? "above_percent" : "below_percent";
        cd->type = drop ? SL_COND_DROP : SL_COND_SPIKE;
        if ((rc = only_keys(c, v, "condition", base_keys)) != 0) {
            return rc;
        }
        if (get(v, other) != NULL) {
            char k[64];
            snprintf(k, sizeof(k), "condition.%s", other);
            return bad(c, k, "a %s condition takes \"%s\" (or \"zscore\")", type, pkey);
        }
        cd->baseline_windows = 10;
        if ((f = get(v, "baseline_windows")) != NULL &&
            (rc = want_int(c, f, "condition.baseline_windows", 1, 1000, &cd->baseline_windows)) !=
                0) {
            return rc;
        }
        yajl_val pct = get(v, pkey), z = get(v, "zscore");
        if ((pct == NULL) == (z == NULL)) {
            return bad(c, "condition", "a %s condition needs exactly one of \"%s\" and \"zscore\"",
                       type, pkey);
        }
        if (pct != NULL) {
            char k[64];
            snprintf(k, sizeof(k), "condition.%s", pkey);
            if ((rc = want_number(c, pct, k, drop ? 0 : 100, drop ? 100 : 1e9, &cd->percent)) !=
                0) {
                return rc;
            }
        } else {
            cd->zscore_mode = true;
            if ((rc = want_number(c, z, "condition.zscore", 0.01, 1e6, &cd->zscore)) != 0) {
                return rc;
            }
            if (cd->baseline_windows < 2) {
                return bad(c, "condition.baseline_windows",
                           "a z-score needs at least 2 baseline windows");
            }
        }
        cd->min_baseline = 1;
        if ((f = get(v, "min_baseline")) != NULL &&
            (rc = want_number(c, f, "condition.min_baseline", -HUGE_VAL, HUGE_VAL,
                              &cd->min_baseline)) != 0) {
            return rc;
        }
        cd->min_windows = cd->baseline_windows;
        if ((f = get(v, "min_windows")) != NULL &&
            (rc = want_int(c, f, "condition.min_windows", 1, cd->baseline_windows,
                           &cd->min_windows)) != 0) {
            return rc;
        }
        return 0;
    }
    if (strcmp(type, "no_data") == 0) {
        cd->type = SL_COND_NO_DATA;
        if ((rc = only_keys(c, v, "condition", nd_keys)) != 0) {
            return rc;
        }
        if ((rc = want_period(c, get(v, "duration"), "condition.duration", 1, &cd->no_data_ms)) !=
            0) {
            return rc;
        }
        return 0;
    }
    return bad(c, "condition.type", "must be one of threshold, drop, spike, no_data");
}

static int parse_notify(pctx *c, yajl_val v, sl_alert_rule *r)
{
    static const char *const keys[] = {"webhook", "on", "timeout", "retries", "backoff", NULL};
    yajl_val f;
    int rc;
    r->notify_states = 1u << SL_ALERT_FIRING | 1u << SL_ALERT_RESOLVED;
    r->notify_timeout_ms = 5000;
    r->notify_retries = 5;
    r->notify_backoff_ms = 1000;
    if (v == NULL) {
        return 0;
    }
    if (!YAJL_IS_OBJECT(v)) {
        return bad(c, "notify", "must be an object, not %s", type_name(v));
    }
    if ((rc = only_keys(c, v, "notify", keys)) != 0) {
        return rc;
    }
    if ((f = get(v, "webhook")) != NULL && !YAJL_IS_NULL(f)) {
        if ((rc = want_string(c, f, "notify.webhook", &r->webhook)) != 0) {
            return rc;
        }
        if (strncmp(r->webhook, "http://", 7) != 0 && strncmp(r->webhook, "https://", 8) != 0) {
            return bad(c, "notify.webhook", "\"%s\" is not an http:// or https:// URL", r->webhook);
        }
    }
    if ((f = get(v, "on")) != NULL) {
        if (!YAJL_IS_ARRAY(f)) {
            return bad(c, "notify.on", "must be an array of states, not %s", type_name(f));
        }
        r->notify_states = 0;
        for (size_t i = 0; i < f->u.array.len; i++) {
            yajl_val s = f->u.array.values[i];
            int st = YAJL_IS_STRING(s) ? sl_alert_state_parse(sval(s)) : -1;
            if (st < 0) {
                return bad(c, "notify.on",
                           "item %zu must be one of ok, pending, firing, resolved, error", i);
            }
            r->notify_states |= 1u << st;
        }
    }
    if ((f = get(v, "timeout")) != NULL &&
        (rc = want_period(c, f, "notify.timeout", 10, &r->notify_timeout_ms)) != 0) {
        return rc;
    }
    if ((f = get(v, "backoff")) != NULL &&
        (rc = want_period(c, f, "notify.backoff", 1, &r->notify_backoff_ms)) != 0) {
        return rc;
    }
    if ((f = get(v, "retries")) != NULL &&
        (rc = want_int(c, f, "notify.retries", 0, 100, &r->notify_retries)) != 0) {
        return rc;
    }
    return 0;
}

static int rule_from_tree(pctx *c, yajl_val root, sl_alert_rule *r)
{
    static const char *const top[] = {
        "name",  "description", "query",   "sql",       "datasource", "value",  "window", "every",
        "clock", "delay",       "missing", "condition", "for",        "notify", "labels", NULL};
    int rc;
    yajl_val v;
    if ((rc = only_keys(c, root, "", top)) != 0) {
        return rc;
    }
    if ((rc = want_string(c, get(root, "name"), "name", &r->name)) != 0) {
        return rc;
    }
    for (const char *p = r->name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.')) {
            return bad(c, "name", "\"%s\" may only contain letters, digits, _, - and .", r->name);
        }
    }
    if (strlen(r->name) > 128) {
        return bad(c, "name", "is longer than 128 characters");
    }
    if ((v = get(root, "description")) != NULL &&
        (rc = want_string(c, v, "description", &r->description)) != 0) {
        return rc;
    }
    if ((rc = parse_query(c, root, r)) != 0) {
        return rc;
    }
    if ((rc = opt_period(c, root, "window", 1000, 60000, &r->window_ms)) != 0) {
        return rc;
    }
    r->data_clock = false;
    if ((v = get(root, "clock")) != NULL &&
        (rc = want_either(c, v, "clock", "wall", "data", &r->data_clock)) != 0) {
        return rc;
    }
    if ((rc = opt_period(c, root, "every", 100, 10000, &r->every_ms)) != 0 ||
        (rc = opt_period(c, root, "delay", 0, r->data_clock ? 0 : 30000, &r->delay_ms)) != 0 ||
        (rc = opt_period(c, root, "for", 0, 0, &r->for_ms)) != 0) {
        return rc;
    }
    bool missing_no_data = false;
    if ((v = get(root, "missing")) != NULL &&
        (rc = want_either(c, v, "missing", "zero", "no_data", &missing_no_data)) != 0) {
        return rc;
    }
    r->missing_zero = !missing_no_data;
    if ((rc = parse_condition(c, get(root, "condition"), r)) != 0) {
        return rc;
    }
    if (r->cond.type == SL_COND_NO_DATA) {
        if (r->data_clock) {
            return bad(c, "clock",
                       "a no_data condition needs the wall clock (on the data clock "
                       "a window only closes when data arrives)");
        }
        if (r->cond.no_data_ms < r->window_ms || r->cond.no_data_ms % r->window_ms != 0) {
            return bad(c, "condition.duration", "must be a multiple of the window (%lld ms)",
                       (long long)r->window_ms);
        }
        if (r->cond.no_data_ms / r->window_ms > 1000) {
            return bad(c, "condition.duration", "spans more than 1000 windows");
        }
    }
    if (r->data_clock && r->datasource == NULL) {
        return bad(c, "datasource", "a SQL rule on the data clock must name its datasource");
    }
    if ((rc = parse_notify(c, get(root, "notify"), r)) != 0) {
        return rc;
    }
    if ((v = get(root, "labels")) != NULL) {
        if (!YAJL_IS_OBJECT(v)) {
            return bad(c, "labels", "must be an object of strings, not %s", type_name(v));
        }
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (!YAJL_IS_STRING(v->u.object.values[i])) {
                char k[200];
                snprintf(k, sizeof(k), "labels.%s", v->u.object.keys[i]);
                return bad(c, k, "must be a string");
            }
        }
        r->labels_json = to_json(v, NULL);
    } else {
        r->labels_json = sl_strdup("{}");
    }
    return 0;
}

/* Parses json[0..len) (not NUL-terminated); NULL when it is not JSON, with yajl's
 * message in ebuf on one line. The tree is the caller's (yajl_tree_free). */
static yajl_val parse_tree(const char *json, size_t len, char *ebuf, size_t size)
{
    char *text = sl_strndup(json, len);
    yajl_val root = yajl_tree_parse(text, ebuf, size);
    free(text);
    if (root == NULL) {
        for (char *p = ebuf; *p != '\0'; p++) {
            if (*p == '\n') {
                *p = ' ';
            }
        }
    }
    return root;
}

int sl_alert_rule_parse(const char *json, size_t len, const char *source, sl_alert_rule **out,
                        sl_err *err)
{
    char ebuf[512];
    yajl_val root = parse_tree(json, len, ebuf, sizeof(ebuf));
    *out = NULL;
    if (root == NULL) {
        return sl_err_set(err, SL_ECONFIG, "%s: invalid JSON: %s", source, ebuf);
    }
    pctx c = {.source = source, .err = err};
    sl_alert_rule *r = sl_calloc(1, sizeof(*r));
    r->source = sl_strdup(source);
    int rc;
    if (!YAJL_IS_OBJECT(root)) {
        rc = sl_err_set(err, SL_ECONFIG, "%s: a rule must be a JSON object", source);
    } else {
        rc = rule_from_tree(&c, root, r);
    }
    yajl_tree_free(root);
    if (rc != 0) {
        sl_alert_rule_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void sl_alert_rule_free(sl_alert_rule *r)
{
    if (r == NULL) {
        return;
    }
    free(r->name);
    free(r->source);
    free(r->description);
    free(r->query_prefix);
    free(r->sql);
    free(r->datasource);
    free(r->value);
    free(r->webhook);
    free(r->labels_json);
    free(r);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sl_alert_rules_load(const char *dir, sl_alert_rule ***rules, int *n, sl_err *err)
{
    *rules = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        return sl_err_set(err, -errno, "alert rules: cannot open %s: %s", dir, strerror(errno));
    }
    char **names = NULL;
    int nnames = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) {
            continue;
        }
        if (nnames == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            names = sl_realloc(names, (size_t)cap * sizeof(char *));
        }
        names[nnames++] = sl_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nnames, sizeof(char *), cmp_names);
    int rc = 0;
    sl_alert_rule **out = sl_calloc((size_t)(nnames > 0 ? nnames : 1), sizeof(*out));
    int nout = 0;
    for (int i = 0; i < nnames && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            rc = sl_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        sl_buf b;
        sl_buf_init(&b);
        char chunk[8192];
        size_t got;
        while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            sl_buf_append(&b, chunk, got);
        }
        fclose(f);
        sl_alert_rule *r;
        rc = sl_alert_rule_parse(b.data != NULL ? b.data : "", b.len, path, &r, err);
        sl_buf_fini(&b);
        if (rc != 0) {
            break;
        }
        for (int j = 0; j < nout; j++) {
            if (strcmp(out[j]->name, r->name) == 0) {
                rc = sl_err_set(err, SL_ECONFIG, "%s: rule \"%s\" is also defined in %s", path,
                                r->name, out[j]->source);
            }
        }
        if (rc != 0) {
            sl_alert_rule_free(r);
            break;
        }
        out[nout++] = r;
    }
    for (int i = 0; i < nnames; i++) {
        free(names[i]);
    }
    free(names);
    if (rc != 0) {
        sl_alert_rules_free(out, nout);
        return rc;
    }
    *rules = out;
    *n = nout;
    return 0;
}

void sl_alert_rules_free(sl_alert_rule **rules, int n)
{
    for (int i = 0; i < n; i++) {
        sl_alert_rule_free(rules[i]);
    }
    free(rules);
}

/* ---- queries and results ---------------------------------------------------------------- */

int sl_alert_nwindows(const sl_alert_rule *r)
{
    switch (r->cond.type) {
    case SL_COND_DROP:
    case SL_COND_SPIKE:
        return r->cond.baseline_windows + 1;
    case SL_COND_NO_DATA:
        return (int)(r->cond.no_data_ms / r->window_ms);
    default:
        return 1;
    }
}

void sl_alert_json_str(sl_buf *out, const char *s)
{
    if (s == NULL) {
        sl_buf_append(out, "null", 4);
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    sl_buf_append(out, buf, len);
    yajl_gen_free(g);
}

void sl_alert_json_fmt(sl_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    SL_ASSERT(n >= 0);
    /* +1: vsnprintf writes the NUL, which the buffer's length then leaves out. */
    sl_buf_reserve(out, (size_t)n + 1);
    vsnprintf(out->data + out->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    out->len += (size_t)n;
}

void sl_alert_native_body(const sl_alert_rule *r, int64_t from_ms, int64_t to_ms, sl_buf *out)
{
    char a[32], b[32];
    size_t n = strlen(r->query_prefix);
    sl_buf_append(out, r->query_prefix, n);
    sl_alert_json_fmt(out,
                      "%s\"intervals\":[\"%s/%s\"],\"granularity\":{\"type\":\"duration\","
                      "\"duration\":%lld}}",
                      n > 1 ? "," : "", sl_time_format(from_ms, a, sizeof(a)),
                      sl_time_format(to_ms, b, sizeof(b)), (long long)r->window_ms);
}

void sl_alert_sql_body(const sl_alert_rule *r, int64_t from_ms, int64_t to_ms, sl_buf *out)
{
    char a[32], b[32];
    sl_buf_append(out, "{\"query\":", 9);
    sl_alert_json_str(out, r->sql);
    sl_alert_json_fmt(
        out,
        ",\"resultFormat\":\"object\",\"parameters\":[{\"type\":\"TIMESTAMP\",\"value\":"
        "\"%s\"},{\"type\":\"TIMESTAMP\",\"value\":\"%s\"}]}",
        sl_time_format(from_ms, a, sizeof(a)), sl_time_format(to_ms, b, sizeof(b)));
}

void sl_alert_boundary_body(const char *datasource, sl_buf *out)
{
    static const char head[] =
        "{\"queryType\":\"timeBoundary\",\"bound\":\"maxTime\",\"dataSource\":";
    sl_buf_append(out, head, sizeof(head) - 1);
    sl_alert_json_str(out, datasource);
    sl_buf_append(out, "}", 1);
}

/* A query's reply body as a JSON array of rows (the caller frees it), or NULL with err
 * (SL_EPARSE) naming `what` when it is not JSON or not an array. */
static yajl_val parse_rows(const char *body, size_t len, const char *what, sl_err *err)
{
    char ebuf[256];
    yajl_val root = parse_tree(body, len, ebuf, sizeof(ebuf));
    if (root == NULL) {
        sl_err_set(err, SL_EPARSE, "%s is not JSON: %s", what, ebuf);
    } else if (!YAJL_IS_ARRAY(root)) {
        sl_err_set(err, SL_EPARSE, "%s is not an array of rows", what);
        yajl_tree_free(root);
        root = NULL;
    }
    return root;
}

int sl_alert_parse_series(const sl_alert_rule *r, const char *body, size_t len, int64_t from_ms,
                          int n, double *values, sl_err *err)
{
    for (int i = 0; i < n; i++) {
        values[i] = NAN;
    }
    yajl_val root = parse_rows(body, len, "the query result", err);
    if (root == NULL) {
        return SL_EPARSE;
    }
    int rc = 0;
    for (size_t i = 0; i < root->u.array.len; i++) {
        yajl_val row = root->u.array.values[i];
        yajl_val ts = YAJL_IS_OBJECT(row) ? get(row, "timestamp") : NULL;
        yajl_val res = YAJL_IS_OBJECT(row) ? get(row, "result") : NULL;
        int64_t ms;
        if (ts == NULL || !YAJL_IS_STRING(ts) || res == NULL || !YAJL_IS_OBJECT(res) ||
            sl_time_parse(sval(ts), strlen(sval(ts)), SL_TS_ISO, &ms, NULL) != 0) {
            rc =
                sl_err_set(err, SL_EPARSE,
                           "result row %zu is not {\"timestamp\": ISO time, \"result\": {...}}", i);
            goto out;
        }
        yajl_val v = get(res, r->value);
        if (v == NULL) {
            rc = sl_err_set(err, SL_EPARSE, "result row %zu has no field \"%s\"", i, r->value);
            goto out;
        }
        if (YAJL_IS_NULL(v)) {
            continue;
        }
        if (!YAJL_IS_NUMBER(v)) {
            rc = sl_err_set(err, SL_EPARSE, "result row %zu: \"%s\" is not a number", i, r->value);
            goto out;
        }
        int64_t off = ms - from_ms;
        if (off < 0 || off % r->window_ms != 0 || off / r->window_ms >= n) {
            continue; /* outside the asked windows: not ours to judge */
        }
        values[off / r->window_ms] =
            YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
    }
out:
    yajl_tree_free(root);
    return rc;
}

int sl_alert_parse_sql(const sl_alert_rule *r, const char *body, size_t len, double *value,
                       sl_err *err)
{
    *value = NAN;
    yajl_val root = parse_rows(body, len, "the SQL result", err);
    if (root == NULL) {
        return SL_EPARSE;
    }
    int rc = 0;
    if (root->u.array.len == 0) {
        goto out;
    }
    yajl_val row = root->u.array.values[0];
    yajl_val v = YAJL_IS_OBJECT(row) ? get(row, r->value) : NULL;
    if (v == NULL) {
        rc = sl_err_set(err, SL_EPARSE, "the SQL result has no column \"%s\"", r->value);
    } else if (YAJL_IS_NUMBER(v)) {
        *value = YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
    } else if (!YAJL_IS_NULL(v)) {
        rc = sl_err_set(err, SL_EPARSE, "the SQL column \"%s\" is not a number", r->value);
    }
out:
    yajl_tree_free(root);
    return rc;
}

int sl_alert_parse_boundary(const char *body, size_t len, int64_t *max_ms, sl_err *err)
{
    yajl_val root = parse_rows(body, len, "the timeBoundary result", err);
    if (root == NULL) {
        return SL_EPARSE;
    }
    int rc = SL_ENOTFOUND;
    if (root->u.array.len > 0) {
        yajl_val row = root->u.array.values[0];
        yajl_val res = YAJL_IS_OBJECT(row) ? get(row, "result") : NULL;
        yajl_val t = res != NULL && YAJL_IS_OBJECT(res) ? get(res, "maxTime") : NULL;
        if (t == NULL || YAJL_IS_NULL(t)) {
            rc = SL_ENOTFOUND;
        } else if (!YAJL_IS_STRING(t) ||
                   sl_time_parse(sval(t), strlen(sval(t)), SL_TS_ISO, max_ms, NULL) != 0) {
            rc = sl_err_set(err, SL_EPARSE, "the timeBoundary result has no maxTime time");
        } else {
            rc = 0;
        }
    }
    yajl_tree_free(root);
    return rc;
}

/* ---- conditions ----------------------------------------------------------------------------- */

static void baseline_stats(const sl_alert_rule *r, const double *w, int n, double *mean, double *sd,
                           int *with_data)
{
    double sum = 0, sq = 0;
    int used = 0;
    *with_data = 0;
    for (int i = 0; i < n; i++) {
        double v = w[i];
        if (!isnan(v)) {
            (*with_data)++;
        } else if (r->missing_zero) {
            v = 0;
        } else {
            continue;
        }
        sum += v;
        sq += v * v;
        used++;
    }
    *mean = used > 0 ? sum / used : NAN;
    double var = used > 0 ? sq / used - *mean * *mean : NAN;
    *sd = used > 0 ? sqrt(var > 0 ? var : 0) : NAN;
}

void sl_alert_condition(const sl_alert_rule *r, const double *windows, int n, sl_alert_eval *out)
{
    const sl_alert_cond *c = &r->cond;
    memset(out, 0, sizeof(*out));
    out->baseline = NAN;
    double cur = windows[n - 1];
    if (isnan(cur) && r->missing_zero && c->type != SL_COND_NO_DATA) {
        cur = 0;
    }
    out->value = cur;
    switch (c->type) {
    case SL_COND_NO_DATA: {
        int with = 0;
        for (int i = 0; i < n; i++) {
            with += !isnan(windows[i]);
        }
        out->value = with;
        out->known = true;
        out->cond = with == 0;
        snprintf(out->detail, sizeof(out->detail), "%d of the last %d windows have data", with, n);
        return;
    }
    case SL_COND_THRESHOLD:
        if (isnan(cur)) {
            snprintf(out->detail, sizeof(out->detail), "no data in the window");
            return;
        }
        out->known = true;
        out->cond = (c->has_above && cur > c->above) || (c->has_below && cur < c->below);
        snprintf(out->detail, sizeof(out->detail), "value %g %s", cur,
                 c->has_above && cur > c->above   ? "is above the threshold"
                 : c->has_below && cur < c->below ? "is below the threshold"
                                                  : "is within the thresholds");
        return;
    case SL_COND_DROP:
    case SL_COND_SPIKE: {
        bool drop = c->type == SL_COND_DROP;
        double mean, sd;
        int with;
        baseline_stats(r, windows, n - 1, &mean, &sd, &with);
        out->baseline = mean;
        if (isnan(cur)) {
            snprintf(out->detail, sizeof(out->detail), "no data in the window");
            return;
        }
        if (with < c->min_windows) {
            snprintf(out->detail, sizeof(out->detail),
                     "only %d of %d baseline windows have data (min_windows %d)", with, n - 1,
                     c->min_windows);
            return;
        }
        if (isnan(mean) || mean < c->min_baseline) {
            snprintf(out->detail, sizeof(out->detail), "baseline %g is below min_baseline %g", mean,
                     c->min_baseline);
            return;
        }
        out->known = true;
        if (c->zscore_mode) {
            double z = sd > 0 ? (cur - mean) / sd
                              : (cur == mean ? 0 : (cur > mean ? HUGE_VAL : -HUGE_VAL));
            out->cond = drop ? -z > c->zscore : z > c->zscore;
            snprintf(out->detail, sizeof(out->detail),
                     "value %g, baseline mean %g (sd %g) of %d windows: z-score %.2f %s %g", cur,
                     mean, sd, n - 1, z, out->cond ? "beyond" : "within",
                     drop ? -c->zscore : c->zscore);
        } else {
            double limit = mean * c->percent / 100;
            out->cond = drop ? cur < limit : cur > limit;
            snprintf(out->detail, sizeof(out->detail),
                     "value %g is %.1f%% of the baseline %g (mean of %d windows; %s %g%%)", cur,
                     mean != 0 ? cur / mean * 100 : 0.0, mean, n - 1,
                     drop ? "fires below" : "fires above", c->percent);
        }
        return;
    }
    }
}

const char *sl_alert_describe(const sl_alert_rule *r, char *buf, size_t size)
{
    const sl_alert_cond *c = &r->cond;
    switch (c->type) {
    case SL_COND_THRESHOLD:
        if (c->has_above && c->has_below) {
            snprintf(buf, size, "value above %g or below %g", c->above, c->below);
        } else if (c->has_above) {
            snprintf(buf, size, "value above %g", c->above);
        } else {
            snprintf(buf, size, "value below %g", c->below);
        }
        break;
    case SL_COND_DROP:
    case SL_COND_SPIKE:
        if (c->zscore_mode) {
            snprintf(buf, size,
                     "value %s the mean of the previous %d windows by more than %g "
                     "standard deviations",
                     c->type == SL_COND_DROP ? "below" : "above", c->baseline_windows, c->zscore);
        } else {
            snprintf(buf, size, "value %s %g%% of the mean of the previous %d windows",
                     c->type == SL_COND_DROP ? "below" : "above", c->percent, c->baseline_windows);
        }
        break;
    case SL_COND_NO_DATA:
        snprintf(buf, size, "no data for %lld s", (long long)(c->no_data_ms / 1000));
        break;
    }
    return buf;
}

/* ---- the state machine ---------------------------------------------------------------------- */

sl_alert_change sl_alert_step(const sl_alert_rule *r, sl_alert_status *st, bool failed,
                              const sl_alert_eval *ev, int64_t clock_ms)
{
    sl_alert_change ch = {.from = st->state, .to = st->state};
    if (failed) {
        if (st->state != SL_ALERT_ERROR) {
            st->before_error = st->state;
            st->state = SL_ALERT_ERROR;
            st->since_ms = clock_ms;
        }
    } else {
        /* The state the condition works on: an error only interrupts it. */
        int cur = st->state == SL_ALERT_ERROR ? st->before_error : st->state;
        int next = cur;
        if (ev->known && ev->cond) {
            if (cur == SL_ALERT_OK || cur == SL_ALERT_RESOLVED) {
                next = r->for_ms == 0 ? SL_ALERT_FIRING : SL_ALERT_PENDING;
                st->pending_since = clock_ms;
            } else if (cur == SL_ALERT_PENDING && clock_ms - st->pending_since >= r->for_ms) {
                next = SL_ALERT_FIRING;
            }
        } else if (ev->known) {
            if (cur == SL_ALERT_PENDING) {
                next = SL_ALERT_OK;
            } else if (cur == SL_ALERT_FIRING) {
                next = SL_ALERT_RESOLVED;
            }
        }
        if (next != st->state) {
            if (next != cur || st->state == SL_ALERT_ERROR) {
                st->since_ms = clock_ms;
            }
            st->state = next;
        }
    }
    ch.to = st->state;
    ch.changed = ch.from != ch.to;
    /* Back from an error to the state it interrupted: nothing new to tell. */
    ch.notify = ch.changed && (r->notify_states & (1u << ch.to)) &&
                !(ch.from == SL_ALERT_ERROR && ch.to == st->before_error);
    return ch;
}
