/* Executor tests against a real LMDB store in a temp directory, written with the
 * writer API. Every expected value is computed here, by brute force over the rows the
 * test inserted, and compared with the JSON the query path returns. */
#include "sl_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "exec.h"
#include "testjson.h"
#include "result.h"

#define T0 1749600000000LL /* 2025-06-11T00:00:00Z */
#define MIN 60000LL
#define HOUR 3600000LL
#define DAY 86400000LL
#define NMIN 180 /* minutes of data from T0 */

static const char *const SPEC =
    "{\"name\":\"ev\",\"timestamp\":{\"column\":\"ts\",\"format\":\"iso\"},"
    "\"dimensions\":[\"page\",\"country\",\"device\",\"status\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
    "{\"name\":\"lat_min\",\"type\":\"min\",\"field\":\"lat\"},"
    "{\"name\":\"lat_max\",\"type\":\"max\",\"field\":\"lat\"}],"
    "\"partitions\":{\"count\":2,\"key\":\"page\"},\"rejection\":{\"early\":\"P1D\"}}";

enum { D_PAGE, D_COUNTRY, D_DEVICE, D_STATUS, ND };

/* A row as inserted; min = +inf / max = -inf when its events had no latency. */
typedef struct trow {
    int64_t t;
    const char *d[ND];
    uint64_t count;
    double sum, min, max;
} trow;

#define MAX_ROWS 1000
static trow rows[MAX_ROWS];
static int nrows;

typedef struct fixture {
    char dir[64];
    char segdir[128];
    sl_config *cfg;
    sl_store *st; /* opened read-only, like the actor */
    sl_buf out;
    yajl_val last;
} fixture;

/* ---- data ---------------------------------------------------------------------------------- */

static bool has_data(int m)
{
    return m % 7 != 3 && !(m >= 100 && m < 110);
}

static void gen_rows(void)
{
    static const char *const pages[] = {"/a", "/b", "/pricing", NULL};
    static const char *const countries[] = {"US", "DE", "FR"};
    static const char *const devices[] = {"mobile", "desktop", NULL};
    static const char *const statuses[] = {"200", "301", "404", "1000", "200"};
    nrows = 0;
    for (int m = 0; m < NMIN; m++) {
        if (!has_data(m)) {
            continue;
        }
        for (int j = 0; j < 1 + m % 3; j++) {
            trow *r = &rows[nrows++];
            r->t = T0 + m * MIN;
            r->d[D_PAGE] = pages[(m + j) % 4];
            r->d[D_COUNTRY] = countries[(m * 3 + j) % 3];
            r->d[D_DEVICE] = devices[(m + 2 * j) % 3];
            r->d[D_STATUS] = statuses[(m + j) % 5];
            r->count = 1 + (uint64_t)((m * 7 + j * 3) % 5);
            if ((m + j) % 6 == 0) {
                r->sum = 0;
                r->min = INFINITY;
                r->max = -INFINITY;
            } else {
                r->sum = (double)r->count * (10 + (m % 13) * 0.5);
                r->min = 5 + ((m + j) % 9) * 0.5;
                r->max = r->min + 20 + j;
            }
        }
    }
    /* Outside the main three hours: one before, one a day later. */
    rows[nrows++] =
        (trow){T0 - 2 * HOUR + 5 * MIN, {"/early", "US", "mobile", "200"}, 2, 20, 10, 10};
    rows[nrows++] =
        (trow){T0 + DAY + 5 * MIN, {"/late", "DE", NULL, "404"}, 3, 0, INFINITY, -INFINITY};
}

static int write_rows(sl_store *st, const sl_spec *spec)
{
    sl_store_txn *t;
    sl_err err;
    if (sl_store_begin(st, &t, &err) != 0) {
        fprintf(stderr, "begin: %s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < nrows; i++) {
        sl_row r = {.bucket_ms = rows[i].t, .ndims = ND, .count = rows[i].count, .nvalues = 3};
        for (int k = 0; k < ND; k++) {
            r.dims[k].p = rows[i].d[k];
            r.dims[k].len = rows[i].d[k] != NULL ? strlen(rows[i].d[k]) : 0;
        }
        r.values[0] = rows[i].sum;
        r.values[1] = rows[i].min;
        r.values[2] = rows[i].max;
        if (sl_store_merge_row(t, spec, &r, &err) != 0) {
            fprintf(stderr, "merge: %s\n", err.msg);
            return -1;
        }
    }
    if (sl_store_commit(t, &err) != 0) {
        fprintf(stderr, "commit: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int make_fixture(void **state, bool with_data)
{
    fixture *fx = sl_calloc(1, sizeof(*fx));
    sl_err err;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_query_test.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    snprintf(fx->segdir, sizeof(fx->segdir), "%s/segments", fx->dir);
    fx->cfg = sl_calloc(1, sizeof(sl_config));
    sl_spec *spec;
    if (sl_spec_parse(SPEC, strlen(SPEC), "test", &spec, &err) != 0) {
        fprintf(stderr, "spec: %s\n", err.msg);
        return -1;
    }
    fx->cfg->datasources[fx->cfg->ndatasources++] = spec;
    sl_buf_init(&fx->out);
    gen_rows();
    if (with_data) {
        sl_store *w;
        if (sl_store_open(&w, fx->segdir, false, 16, 64, &err) != 0) {
            fprintf(stderr, "open: %s\n", err.msg);
            return -1;
        }
        int rc = write_rows(w, spec);
        sl_store_close(w);
        if (rc != 0) {
            return -1;
        }
        if (sl_store_open(&fx->st, fx->segdir, true, 16, 64, &err) != 0) {
            fprintf(stderr, "open ro: %s\n", err.msg);
            return -1;
        }
    }
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return make_fixture(state, true);
}

static int setup_empty(void **state)
{
    return make_fixture(state, false);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[200];
    yajl_tree_free(fx->last);
    sl_store_close(fx->st);
    sl_buf_fini(&fx->out);
    sl_spec_free(fx->cfg->datasources[0]);
    free(fx->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- running queries and reading JSON ------------------------------------------------------- */

static yajl_val run(fixture *fx, int want_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static yajl_val run(fixture *fx, int want_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yajl_val v = tj_vrun(fx->cfg, fx->st, &fx->out, &fx->last, want_status, fmt, ap);
    va_end(ap);
    return v;
}

static const char *jstr(yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        return NULL;
    }
    if (!YAJL_IS_STRING(v)) {
        fail_msg("expected a string");
    }
    return v->u.string;
}

static void expect_num(yajl_val v, double want, const char *what)
{
    if (v == NULL || !YAJL_IS_NUMBER(v)) {
        fail_msg("%s: expected %g, got no number", what, want);
    }
    double got = jnum(v, what);
    if (!(fabs(got - want) <= 1e-9 * fmax(1, fabs(want)))) {
        fail_msg("%s: expected %.17g, got %.17g", what, want, got);
    }
}

/* A long aggregator: a JSON integer. */
static void expect_int(yajl_val v, int64_t want, const char *what)
{
    if (v == NULL || !YAJL_IS_INTEGER(v)) {
        fail_msg("%s: expected integer %lld, got %s", what, (long long)want,
                 v == NULL ? "nothing" : "a non-integer");
    }
    if (YAJL_GET_INTEGER(v) != want) {
        fail_msg("%s: expected %lld, got %lld", what, (long long)want,
                 (long long)YAJL_GET_INTEGER(v));
    }
}

/* A double aggregator: printed with a fraction or exponent. */
static void expect_double(yajl_val v, double want, const char *what)
{
    if (v == NULL || !YAJL_IS_DOUBLE(v)) {
        fail_msg("%s: expected double %g, got %s", what, want,
                 v == NULL ? "nothing" : "a non-double");
    }
    expect_num(v, want, what);
}

static void expect_null(yajl_val v, const char *what)
{
    if (v == NULL || !YAJL_IS_NULL(v)) {
        fail_msg("%s: expected null", what);
    }
}

static void expect_time(yajl_val v, int64_t ms, const char *what)
{
    char want[40];
    sl_time_format(ms, want, sizeof(want));
    const char *got = jstr(v);
    if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("%s: expected %s, got %s", what, want, got ? got : "null");
    }
}

/* ---- reference ------------------------------------------------------------------------------ */

typedef bool (*pred)(const trow *r);

typedef struct ref {
    uint64_t count;
    int nrows;
    double sum, min, max;
} ref;

static void ref_add(ref *a, const trow *r)
{
    a->count += r->count;
    a->nrows++;
    a->sum += r->sum;
    if (isfinite(r->min) && r->min < a->min) {
        a->min = r->min;
    }
    if (isfinite(r->max) && r->max > a->max) {
        a->max = r->max;
    }
}

static ref ref_total(pred p, int64_t from, int64_t to)
{
    ref a = {0, 0, 0, INFINITY, -INFINITY};
    for (int i = 0; i < nrows; i++) {
        if (rows[i].t >= from && rows[i].t < to && (p == NULL || p(&rows[i]))) {
            ref_add(&a, &rows[i]);
        }
    }
    return a;
}

static int64_t ref_bucket(int64_t t, int64_t period, int64_t origin)
{
    int64_t d = t - origin, q = d / period;
    if (d % period < 0) {
        q--;
    }
    return origin + q * period;
}

static bool streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_min_max(yajl_val res, const ref *r, const char *what)
{
    char w[128];
    snprintf(w, sizeof(w), "%s mn", what);
    if (isinf(r->min)) {
        expect_null(jat(res, "mn"), w);
    } else {
        expect_double(jat(res, "mn"), r->min, w);
    }
    snprintf(w, sizeof(w), "%s mx", what);
    if (isinf(r->max)) {
        expect_null(jat(res, "mx"), w);
    } else {
        expect_double(jat(res, "mx"), r->max, w);
    }
}

#define QHEAD "{\"queryType\":\"timeseries\",\"dataSource\":\"ev\","
#define IV3H "\"intervals\":[\"2025-06-11T00:00:00Z/2025-06-11T03:00:00Z\"]"
#define AGGS                                                                                       \
    "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"                                       \
    "{\"type\":\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"},"                           \
    "{\"type\":\"doubleMin\",\"name\":\"mn\",\"fieldName\":\"lat_min\"},"                          \
    "{\"type\":\"doubleMax\",\"name\":\"mx\",\"fieldName\":\"lat_max\"}]"

/* ---- timeseries ------------------------------------------------------------------------------ */

static void ts_minute_zero_filled(void **state)
{
    fixture *fx = *state;
    yajl_val r = run(fx, 200, QHEAD IV3H ",\"granularity\":\"minute\"," AGGS "}");
    /* Data in minutes 0..179 (179 has rows): every minute appears, empty ones as zero. */
    assert_int_equal(jlen(r), NMIN);
    int empty = 0;
    for (int m = 0; m < NMIN; m++) {
        char what[64];
        snprintf(what, sizeof(what), "minute %d", m);
        expect_time(jat(r, "%d/timestamp", m), T0 + m * MIN, what);
        ref a = ref_total(NULL, T0 + m * MIN, T0 + (m + 1) * MIN);
        expect_int(jat(r, "%d/result/n", m), (int64_t)a.count, what);
        expect_double(jat(r, "%d/result/s", m), a.sum, what);
        check_min_max(jat(r, "%d/result", m), &a, what);
        if (!has_data(m)) {
            assert_int_equal(a.count, 0);
            empty++;
        }
    }
    assert_true(empty > 20); /* the fixture does have gaps */
    /* "none" is the stored minute too. */
    r = run(fx, 200, QHEAD IV3H ",\"granularity\":\"none\"," AGGS "}");
    assert_int_equal(jlen(r), NMIN);
}

typedef struct gran_case {
    const char *json;
    int64_t period, origin;
} gran_case;

static void ts_granularities(void **state)
{
    fixture *fx = *state;
    static const gran_case cases[] = {
        {"\"fifteen_minute\"", 15 * MIN, 0},
        {"\"hour\"", HOUR, 0},
        {"{\"type\":\"period\",\"period\":\"PT7M\"}", 7 * MIN, 0},
        {"{\"type\":\"period\",\"period\":\"PT1H\",\"origin\":\"2025-06-11T00:20:00Z\"}", HOUR,
         T0 + 20 * MIN},
        {"{\"type\":\"duration\",\"duration\":1500000}", 25 * MIN, 0},
        {"\"day\"", DAY, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const gran_case *g = &cases[c];
        yajl_val r = run(fx, 200, QHEAD IV3H ",\"granularity\":%s," AGGS "}", g->json);
        int64_t first = ref_bucket(T0, g->period, g->origin);
        int64_t last = ref_bucket(T0 + (NMIN - 1) * MIN, g->period, g->origin);
        size_t want = (size_t)((last - first) / g->period + 1);
        if (jlen(r) != want) {
            fail_msg("granularity %s: %zu buckets, want %zu", g->json, jlen(r), want);
        }
        for (size_t i = 0; i < want; i++) {
            int64_t b = first + (int64_t)i * g->period;
            char what[128];
            snprintf(what, sizeof(what), "granularity %s bucket %zu", g->json, i);
            expect_time(jat(r, "%zu/timestamp", i), b, what);
            /* Rows count in the bucket holding their minute, within the interval. */
            int64_t lo = b > T0 ? b : T0,
                    hi = b + g->period < T0 + 3 * HOUR ? b + g->period : T0 + 3 * HOUR;
            ref a = ref_total(NULL, lo, hi);
            expect_int(jat(r, "%zu/result/n", i), (int64_t)a.count, what);
            expect_double(jat(r, "%zu/result/s", i), a.sum, what);
            check_min_max(jat(r, "%zu/result", i), &a, what);
        }
    }
    /* all: one row stamped with the interval start. */
    yajl_val r = run(fx, 200,
                     QHEAD "\"intervals\":[\"2025-06-11T00:30:00Z/2025-06-11T02:00:00Z\"],"
                           "\"granularity\":\"all\"," AGGS "}");
    assert_int_equal(jlen(r), 1);
    expect_time(jat(r, "0/timestamp"), T0 + 30 * MIN, "all timestamp");
    ref a = ref_total(NULL, T0 + 30 * MIN, T0 + 2 * HOUR);
    expect_int(jat(r, "0/result/n"), (int64_t)a.count, "all n");
    expect_double(jat(r, "0/result/s"), a.sum, "all s");
    check_min_max(jat(r, "0/result"), &a, "all");
}

static void ts_skip_descending_limit(void **state)
{
    fixture *fx = *state;
    int with_data = 0, last_data = -1;
    for (int m = 0; m < NMIN; m++) {
        if (has_data(m)) {
            with_data++;
            last_data = m;
        }
    }
    yajl_val r = run(fx, 200,
                     QHEAD IV3H ",\"granularity\":\"minute\"," AGGS
                                ",\"context\":{\"skipEmptyBuckets\":\"true\"}}");
    assert_int_equal(jlen(r), (size_t)with_data);
    for (size_t i = 0; i < jlen(r); i++) {
        assert_true(jnum(jat(r, "%zu/result/n", i), "value") > 0);
    }
    r = run(fx, 200, QHEAD IV3H ",\"granularity\":\"minute\"," AGGS ",\"descending\":true}");
    assert_int_equal(jlen(r), NMIN);
    expect_time(jat(r, "0/timestamp"), T0 + (NMIN - 1) * MIN, "descending first");
    expect_time(jat(r, "%d/timestamp", NMIN - 1), T0, "descending last");
    r = run(fx, 200,
            QHEAD IV3H ",\"granularity\":\"minute\"," AGGS ",\"descending\":true,\"limit\":5}");
    assert_int_equal(jlen(r), 5);
    expect_time(jat(r, "0/timestamp"), T0 + last_data * MIN, "limit first");
    expect_time(jat(r, "4/timestamp"), T0 + (last_data - 4) * MIN, "limit last");
}

static void ts_empty_interval(void **state)
{
    fixture *fx = *state;
    const char *iv = "\"intervals\":[\"2025-06-11T05:00:00Z/2025-06-11T06:00:00Z\"]";
    yajl_val r = run(fx, 200, QHEAD "%s,\"granularity\":\"all\"," AGGS "}", iv);
    assert_int_equal(jlen(r), 1);
    expect_time(jat(r, "0/timestamp"), T0 + 5 * HOUR, "empty all timestamp");
    expect_int(jat(r, "0/result/n"), 0, "empty n");
    expect_double(jat(r, "0/result/s"), 0, "empty s");
    expect_null(jat(r, "0/result/mn"), "empty mn");
    expect_null(jat(r, "0/result/mx"), "empty mx");
    r = run(fx, 200, QHEAD "%s,\"granularity\":\"minute\"," AGGS "}", iv);
    assert_int_equal(jlen(r), 0);
    r = run(fx, 200,
            QHEAD "%s,\"granularity\":\"all\"," AGGS ",\"context\":{\"skipEmptyBuckets\":true}}",
            iv);
    assert_int_equal(jlen(r), 0);
}

static void ts_multiple_intervals(void **state)
{
    fixture *fx = *state;
    yajl_val r =
        run(fx, 200,
            QHEAD "\"intervals\":[\"2025-06-11T00:30:00Z/PT10M\","
                  "\"2025-06-11T00:00:00Z/2025-06-11T00:10:00Z\"],"
                  "\"granularity\":\"minute\"," AGGS ",\"context\":{\"grandTotal\":true}}");
    /* Minutes 0-9 and 30-39: zero-filled inside the intervals, not between them; then
     * the grand total row. */
    assert_int_equal(jlen(r), 21);
    for (int i = 0; i < 20; i++) {
        int m = i < 10 ? i : 20 + i;
        char what[64];
        snprintf(what, sizeof(what), "row %d", i);
        expect_time(jat(r, "%d/timestamp", i), T0 + m * MIN, what);
        ref a = ref_total(NULL, T0 + m * MIN, T0 + (m + 1) * MIN);
        expect_int(jat(r, "%d/result/n", i), (int64_t)a.count, what);
    }
    ref a = ref_total(NULL, T0, T0 + 10 * MIN);
    ref b = ref_total(NULL, T0 + 30 * MIN, T0 + 40 * MIN);
    expect_null(jat(r, "20/timestamp"), "grand total timestamp");
    expect_int(jat(r, "20/result/n"), (int64_t)(a.count + b.count), "grand total n");
    expect_double(jat(r, "20/result/s"), a.sum + b.sum, "grand total s");
    expect_double(jat(r, "20/result/mn"), fmin(a.min, b.min), "grand total mn");
}

/* ---- filters --------------------------------------------------------------------------------- */

static bool p_page_a(const trow *r)
{
    return streq(r->d[D_PAGE], "/a");
}
static bool p_device_null(const trow *r)
{
    return r->d[D_DEVICE] == NULL;
}
static bool p_all(const trow *r)
{
    (void)r;
    return true;
}
static bool p_none(const trow *r)
{
    (void)r;
    return false;
}
static bool p_in(const trow *r)
{
    return streq(r->d[D_COUNTRY], "DE") || streq(r->d[D_COUNTRY], "FR");
}
static bool p_in_null(const trow *r)
{
    return r->d[D_PAGE] == NULL || streq(r->d[D_PAGE], "/b");
}
static bool p_bound_lex(const trow *r)
{
    /* "1000" < "200" < "301" < "404": [200, 301] */
    return streq(r->d[D_STATUS], "200") || streq(r->d[D_STATUS], "301");
}
static bool p_bound_num(const trow *r)
{
    return atoi(r->d[D_STATUS]) > 250 && atoi(r->d[D_STATUS]) <= 1000;
}
static bool p_like(const trow *r)
{
    return r->d[D_PAGE] != NULL && strncmp(r->d[D_PAGE], "/p", 2) == 0;
}
static bool p_regex(const trow *r)
{
    return r->d[D_PAGE] != NULL && strlen(r->d[D_PAGE]) == 2;
}
static bool p_search(const trow *r)
{
    return r->d[D_DEVICE] != NULL && strstr(r->d[D_DEVICE], "top") != NULL;
}
static bool p_cross(const trow *r)
{
    /* (page=/a or device=mobile) and not country=US */
    return (streq(r->d[D_PAGE], "/a") || streq(r->d[D_DEVICE], "mobile")) &&
           !streq(r->d[D_COUNTRY], "US");
}
static bool p_not_in(const trow *r)
{
    return !(streq(r->d[D_PAGE], "/a") || streq(r->d[D_PAGE], "/b"));
}
static bool p_same_dim(const trow *r)
{
    /* and(like page /%, not selector /b) on one dimension: one bitmap */
    return r->d[D_PAGE] != NULL && !streq(r->d[D_PAGE], "/b");
}

typedef struct filter_case {
    const char *json;
    pred p;
} filter_case;

static void filters(void **state)
{
    fixture *fx = *state;
    static const filter_case cases[] = {
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/a\"}", p_page_a},
        {"{\"type\":\"equals\",\"column\":\"page\",\"matchValueType\":\"STRING\","
         "\"matchValue\":\"/a\"}",
         p_page_a},
        {"{\"type\":\"selector\",\"dimension\":\"device\",\"value\":null}", p_device_null},
        {"{\"type\":\"null\",\"column\":\"device\"}", p_device_null},
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/never\"}", p_none},
        {"{\"type\":\"selector\",\"dimension\":\"browser\",\"value\":null}", p_all},
        {"{\"type\":\"selector\",\"dimension\":\"browser\",\"value\":\"x\"}", p_none},
        {"{\"type\":\"not\",\"field\":{\"type\":\"selector\",\"dimension\":\"browser\","
         "\"value\":\"x\"}}",
         p_all},
        {"{\"type\":\"in\",\"dimension\":\"country\",\"values\":[\"FR\",\"DE\",\"XX\"]}", p_in},
        {"{\"type\":\"in\",\"dimension\":\"page\",\"values\":[null,\"/b\"]}", p_in_null},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\",\"upper\":\"301\"}",
         p_bound_lex},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":250,\"lowerStrict\":true,"
         "\"upper\":1000,\"ordering\":\"numeric\"}",
         p_bound_num},
        {"{\"type\":\"range\",\"column\":\"status\",\"matchValueType\":\"LONG\",\"lower\":250,"
         "\"lowerOpen\":true,\"upper\":1000}",
         p_bound_num},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"/p%\"}", p_like},
        {"{\"type\":\"regex\",\"dimension\":\"page\",\"pattern\":\"^/.$\"}", p_regex},
        {"{\"type\":\"search\",\"dimension\":\"device\",\"query\":{\"type\":"
         "\"insensitive_contains\",\"value\":\"TOP\"}}",
         p_search},
        {"{\"type\":\"and\",\"fields\":[{\"type\":\"or\",\"fields\":[{\"type\":\"selector\","
         "\"dimension\":\"page\",\"value\":\"/a\"},{\"type\":\"selector\",\"dimension\":"
         "\"device\",\"value\":\"mobile\"}]},{\"type\":\"not\",\"field\":{\"type\":\"selector\","
         "\"dimension\":\"country\",\"value\":\"US\"}}]}",
         p_cross},
        {"{\"type\":\"not\",\"field\":{\"type\":\"in\",\"dimension\":\"page\",\"values\":[\"/a\","
         "\"/b\"]}}",
         p_not_in},
        {"{\"type\":\"and\",\"fields\":[{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":"
         "\"/%\"},{\"type\":\"not\",\"field\":{\"type\":\"selector\",\"dimension\":\"page\","
         "\"value\":\"/b\"}}]}",
         p_same_dim},
        {"{\"type\":\"and\",\"fields\":[{\"type\":\"true\"},{\"type\":\"selector\","
         "\"dimension\":\"page\",\"value\":\"/a\"}]}",
         p_page_a},
        {"{\"type\":\"or\",\"fields\":[{\"type\":\"false\"},{\"type\":\"selector\","
         "\"dimension\":\"browser\",\"value\":null}]}",
         p_all},
        {"{\"type\":\"false\"}", p_none},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        yajl_val r = run(fx, 200, QHEAD IV3H ",\"filter\":%s," AGGS "}", cases[c].json);
        ref a = ref_total(cases[c].p, T0, T0 + 3 * HOUR);
        char what[600];
        snprintf(what, sizeof(what), "filter %s", cases[c].json);
        assert_int_equal(jlen(r), 1);
        expect_int(jat(r, "0/result/n"), (int64_t)a.count, what);
        expect_double(jat(r, "0/result/s"), a.sum, what);
        check_min_max(jat(r, "0/result"), &a, what);
        /* The filter also shapes zero-filled minute series the same way. */
        r = run(fx, 200,
                QHEAD IV3H ",\"granularity\":\"hour\",\"filter\":%s," AGGS
                           ",\"context\":{\"skipEmptyBuckets\":true}}",
                cases[c].json);
        size_t k = 0;
        for (int h = 0; h < 3; h++) {
            ref b = ref_total(cases[c].p, T0 + h * HOUR, T0 + (h + 1) * HOUR);
            if (b.nrows == 0) {
                continue;
            }
            expect_time(jat(r, "%zu/timestamp", k), T0 + h * HOUR, what);
            expect_int(jat(r, "%zu/result/n", k), (int64_t)b.count, what);
            k++;
        }
        assert_int_equal(jlen(r), k);
    }
}

/* ---- aggregators and post-aggregators ----------------------------------------------------------
 */

static void aggregators(void **state)
{
    fixture *fx = *state;
    yajl_val r =
        run(fx, 200,
            QHEAD IV3H ",\"aggregations\":["
                       "{\"type\":\"count\",\"name\":\"n\"},"
                       "{\"type\":\"longSum\",\"name\":\"events\",\"fieldName\":\"count\"},"
                       "{\"type\":\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"},"
                       "{\"type\":\"floatSum\",\"name\":\"fs\",\"fieldName\":\"lat_sum\"},"
                       "{\"type\":\"longSum\",\"name\":\"ls\",\"fieldName\":\"lat_sum\"},"
                       "{\"type\":\"doubleMin\",\"name\":\"mn\",\"fieldName\":\"lat_min\"},"
                       "{\"type\":\"doubleMax\",\"name\":\"mx\",\"fieldName\":\"lat_max\"},"
                       "{\"type\":\"longMin\",\"name\":\"lmn\",\"fieldName\":\"lat_min\"},"
                       "{\"type\":\"longMax\",\"name\":\"lmx\",\"fieldName\":\"lat_max\"},"
                       "{\"type\":\"doubleMin\",\"name\":\"smin\",\"fieldName\":\"lat_sum\"},"
                       "{\"type\":\"longMax\",\"name\":\"cmax\",\"fieldName\":\"count\"},"
                       "{\"type\":\"filtered\",\"filter\":{\"type\":\"selector\",\"dimension\":"
                       "\"page\",\"value\":\"/a\"},\"aggregator\":{\"type\":\"count\",\"name\":"
                       "\"na\"}},"
                       "{\"type\":\"filtered\",\"name\":\"fmx\",\"filter\":{\"type\":\"selector\","
                       "\"dimension\":\"country\",\"value\":\"FR\"},\"aggregator\":{\"type\":"
                       "\"doubleMax\",\"name\":\"ignored\",\"fieldName\":\"lat_max\"}},"
                       "{\"type\":\"filtered\",\"filter\":{\"type\":\"false\"},\"aggregator\":{"
                       "\"type\":\"doubleMin\",\"name\":\"never\",\"fieldName\":\"lat_min\"}}]}");
    ref a = ref_total(NULL, T0, T0 + 3 * HOUR);
    ref fa = ref_total(p_page_a, T0, T0 + 3 * HOUR);
    double smin = INFINITY, cmax = 0, fr_max = -INFINITY;
    for (int i = 0; i < nrows; i++) {
        if (rows[i].t < T0 || rows[i].t >= T0 + 3 * HOUR) {
            continue;
        }
        smin = fmin(smin, rows[i].sum);
        cmax = fmax(cmax, (double)rows[i].count);
        if (streq(rows[i].d[D_COUNTRY], "FR") && isfinite(rows[i].max)) {
            fr_max = fmax(fr_max, rows[i].max);
        }
    }
    yajl_val res = jat(r, "0/result");
    /* count is the number of ingested events (the rows' counts), not of stored rows */
    expect_int(jat(res, "n"), (int64_t)a.count, "count");
    assert_true(a.count > (uint64_t)a.nrows);
    expect_int(jat(res, "events"), (int64_t)a.count, "longSum of count");
    expect_double(jat(res, "s"), a.sum, "doubleSum");
    expect_double(jat(res, "fs"), a.sum, "floatSum");
    expect_int(jat(res, "ls"), (int64_t)trunc(a.sum), "longSum truncates");
    expect_double(jat(res, "mn"), a.min, "doubleMin");
    expect_double(jat(res, "mx"), a.max, "doubleMax");
    expect_int(jat(res, "lmn"), (int64_t)trunc(a.min), "longMin");
    expect_int(jat(res, "lmx"), (int64_t)trunc(a.max), "longMax");
    expect_double(jat(res, "smin"), smin, "doubleMin over a sum metric");
    expect_int(jat(res, "cmax"), (int64_t)cmax, "longMax over count");
    expect_int(jat(res, "na"), (int64_t)fa.count, "filtered count");
    expect_double(jat(res, "fmx"), fr_max, "filtered doubleMax");
    expect_null(jat(res, "never"), "filtered min that saw nothing");
    assert_int_equal(res->u.object.len, 14);
    /* output keys come in the order of the query */
    assert_string_equal(res->u.object.keys[0], "n");
    assert_string_equal(res->u.object.keys[13], "never");
}

static void post_aggregators(void **state)
{
    fixture *fx = *state;
    yajl_val r = run(fx, 200,
                     QHEAD IV3H
                     ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"
                     "{\"type\":\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"},"
                     "{\"type\":\"doubleMax\",\"name\":\"mx\",\"fieldName\":\"lat_max\"},"
                     "{\"type\":\"filtered\",\"filter\":{\"type\":\"false\"},\"aggregator\":{"
                     "\"type\":\"count\",\"name\":\"zero\"}},"
                     "{\"type\":\"filtered\",\"filter\":{\"type\":\"false\"},\"aggregator\":{"
                     "\"type\":\"doubleMin\",\"name\":\"nul\",\"fieldName\":\"lat_min\"}}],"
                     "\"postAggregations\":["
                     "{\"type\":\"arithmetic\",\"name\":\"avg\",\"fn\":\"/\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"s\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"}]},"
                     "{\"type\":\"arithmetic\",\"name\":\"div0\",\"fn\":\"/\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"zero\"}]},"
                     "{\"type\":\"arithmetic\",\"name\":\"quot0\",\"fn\":\"quotient\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"zero\"}]},"
                     "{\"type\":\"arithmetic\",\"name\":\"nested\",\"fn\":\"-\",\"fields\":["
                     "{\"type\":\"arithmetic\",\"fn\":\"*\",\"fields\":["
                     "{\"type\":\"arithmetic\",\"fn\":\"+\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"},"
                     "{\"type\":\"constant\",\"value\":1}]},"
                     "{\"type\":\"constant\",\"value\":2.5}]},"
                     "{\"type\":\"finalizingFieldAccess\",\"fieldName\":\"mx\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"avg\"}]},"
                     "{\"type\":\"fieldAccess\",\"name\":\"n_again\",\"fieldName\":\"n\"},"
                     "{\"type\":\"constant\",\"name\":\"seven\",\"value\":7},"
                     "{\"type\":\"arithmetic\",\"name\":\"with_null\",\"fn\":\"+\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"nul\"}]},"
                     "{\"type\":\"doubleGreatest\",\"name\":\"g\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"mx\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"nul\"},"
                     "{\"type\":\"constant\",\"value\":1e9}]},"
                     "{\"type\":\"longLeast\",\"name\":\"l\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"mx\"},"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"s\"}]},"
                     "{\"type\":\"arithmetic\",\"name\":\"sq\",\"fn\":\"pow\",\"fields\":["
                     "{\"type\":\"constant\",\"value\":3},{\"type\":\"constant\",\"value\":2}]}]}");
    ref a = ref_total(NULL, T0, T0 + 3 * HOUR);
    yajl_val res = jat(r, "0/result");
    double avg = a.sum / (double)a.count;
    expect_double(jat(res, "avg"), avg, "avg");
    expect_double(jat(res, "div0"), 0, "division by zero is 0");
    expect_null(jat(res, "quot0"), "quotient by zero is not a number");
    expect_double(jat(res, "nested"), ((double)a.count + 1) * 2.5 - a.max - avg, "nested");
    expect_int(jat(res, "n_again"), (int64_t)a.count, "fieldAccess of a long");
    expect_int(jat(res, "seven"), 7, "integer constant");
    expect_null(jat(res, "with_null"), "arithmetic over null");
    expect_double(jat(res, "g"), 1e9, "doubleGreatest");
    expect_int(jat(res, "l"), (int64_t)trunc(fmin(a.max, a.sum)), "longLeast");
    expect_double(jat(res, "sq"), 9, "pow");
}

/* ---- topN
 * ---------------------------------------------------------------------------------------- */

typedef struct kv {
    const char *key;
    uint64_t count;
    double sum;
} kv;

/* Totals per value of dimension d over [from, to). */
static int ref_by_dim(int d, int64_t from, int64_t to, kv *out)
{
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        if (rows[i].t < from || rows[i].t >= to) {
            continue;
        }
        int k = 0;
        while (k < n && !streq(out[k].key, rows[i].d[d])) {
            k++;
        }
        if (k == n) {
            out[n++] = (kv){rows[i].d[d], 0, 0};
        }
        out[k].count += rows[i].count;
        out[k].sum += rows[i].sum;
    }
    return n;
}

static int kv_by_count_desc(const void *x, const void *y)
{
    const kv *a = x, *b = y;
    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }
    if (a->key == NULL || b->key == NULL) {
        return a->key == NULL ? (b->key == NULL ? 0 : -1) : 1;
    }
    return strcmp(a->key, b->key);
}

static int kv_by_count_asc(const void *x, const void *y)
{
    const kv *a = x, *b = y;
    if (a->count != b->count) {
        return a->count < b->count ? -1 : 1;
    }
    if (a->key == NULL || b->key == NULL) {
        return a->key == NULL ? (b->key == NULL ? 0 : -1) : 1;
    }
    return strcmp(a->key, b->key);
}

static void topn(void **state)
{
    fixture *fx = *state;
    kv pages[16];
    int np = ref_by_dim(D_PAGE, T0, T0 + 3 * HOUR, pages);
    assert_int_equal(np, 4);
    qsort(pages, (size_t)np, sizeof(kv), kv_by_count_desc);
    yajl_val r = run(fx, 200,
                     "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
                     ",\"dimension\":\"page\",\"metric\":\"n\",\"threshold\":3,"
                     "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},{\"type\":"
                     "\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"}]}");
    assert_int_equal(jlen(r), 1);
    expect_time(jat(r, "0/timestamp"), T0, "topN timestamp");
    assert_int_equal(jlen(jat(r, "0/result")), 3);
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof(what), "topN rank %d", i);
        assert_true(streq(jstr(jat(r, "0/result/%d/page", i)), pages[i].key));
        expect_int(jat(r, "0/result/%d/n", i), (int64_t)pages[i].count, what);
        expect_double(jat(r, "0/result/%d/s", i), pages[i].sum, what);
    }

    /* inverted: smallest first */
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":{\"type\":\"default\",\"dimension\":\"page\",\"outputName\":\"p\"},"
            "\"metric\":{\"type\":\"inverted\",\"metric\":\"n\"},\"threshold\":2,"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(jat(r, "0/result")), 2);
    /* ties rank by dimension value ascending, inverted or not */
    kv asc[16];
    memcpy(asc, pages, sizeof(kv) * (size_t)np);
    qsort(asc, (size_t)np, sizeof(kv), kv_by_count_asc);
    assert_true(streq(jstr(jat(r, "0/result/0/p")), asc[0].key));
    assert_true(streq(jstr(jat(r, "0/result/1/p")), asc[1].key));
    expect_int(jat(r, "0/result/0/n"), (int64_t)asc[0].count, "inverted first");
    expect_int(jat(r, "0/result/1/n"), (int64_t)asc[1].count, "inverted second");

    /* dimension order: null first, then bytes */
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":\"page\",\"metric\":{\"type\":\"dimension\"},\"threshold\":3,"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    expect_null(jat(r, "0/result/0/page"), "lexicographic first is null");
    assert_string_equal(jstr(jat(r, "0/result/1/page")), "/a");
    assert_string_equal(jstr(jat(r, "0/result/2/page")), "/b");

    /* numeric dimension order with previousStop, and inverted */
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":\"status\",\"metric\":{\"type\":\"dimension\",\"ordering\":"
            "\"numeric\",\"previousStop\":\"250\"},\"threshold\":10,"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(jat(r, "0/result")), 3);
    assert_string_equal(jstr(jat(r, "0/result/0/status")), "301");
    assert_string_equal(jstr(jat(r, "0/result/1/status")), "404");
    assert_string_equal(jstr(jat(r, "0/result/2/status")), "1000");
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":\"status\",\"metric\":{\"type\":\"inverted\",\"metric\":{\"type\":"
            "\"dimension\",\"ordering\":\"numeric\"}},\"threshold\":2,"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_string_equal(jstr(jat(r, "0/result/0/status")), "1000");
    assert_string_equal(jstr(jat(r, "0/result/1/status")), "404");

    /* per hour: one ranked list per bucket */
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"granularity\":\"hour\",\"dimension\":\"country\",\"metric\":\"n\","
            "\"threshold\":1,\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(r), 3);
    for (int h = 0; h < 3; h++) {
        kv cs[8];
        int nc = ref_by_dim(D_COUNTRY, T0 + h * HOUR, T0 + (h + 1) * HOUR, cs);
        qsort(cs, (size_t)nc, sizeof(kv), kv_by_count_desc);
        expect_time(jat(r, "%d/timestamp", h), T0 + h * HOUR, "topN hour");
        assert_int_equal(jlen(jat(r, "%d/result", h)), 1);
        assert_true(streq(jstr(jat(r, "%d/result/0/country", h)), cs[0].key));
        expect_int(jat(r, "%d/result/0/n", h), (int64_t)cs[0].count, "topN hour count");
    }

    /* a post-aggregator as the metric */
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":\"page\",\"metric\":\"neg\",\"threshold\":1,"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":[{"
            "\"type\":\"arithmetic\",\"name\":\"neg\",\"fn\":\"*\",\"fields\":[{\"type\":"
            "\"fieldAccess\",\"fieldName\":\"n\"},{\"type\":\"constant\",\"value\":-1}]}]}");
    assert_true(streq(jstr(jat(r, "0/result/0/page")), asc[0].key));
    expect_double(jat(r, "0/result/0/neg"), -(double)asc[0].count, "topN by post-agg");
}

/* ---- groupBy
 * ------------------------------------------------------------------------------------- */

typedef struct grp {
    const char *a, *b;
    uint64_t count;
} grp;

static int ref_groups(int da, int db, grp *out)
{
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        if (rows[i].t < T0 || rows[i].t >= T0 + 3 * HOUR) {
            continue;
        }
        int k = 0;
        while (k < n && !(streq(out[k].a, rows[i].d[da]) && streq(out[k].b, rows[i].d[db]))) {
            k++;
        }
        if (k == n) {
            out[n++] = (grp){rows[i].d[da], rows[i].d[db], 0};
        }
        out[k].count += rows[i].count;
    }
    return n;
}

static int cmp_nullable(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == NULL ? (b == NULL ? 0 : -1) : 1;
    }
    return strcmp(a, b);
}

static int grp_by_dims(const void *x, const void *y)
{
    const grp *a = x, *b = y;
    int r = cmp_nullable(a->a, b->a);
    return r != 0 ? r : cmp_nullable(a->b, b->b);
}

static int grp_by_count_desc(const void *x, const void *y)
{
    const grp *a = x, *b = y;
    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }
    return grp_by_dims(x, y);
}

#define GB "{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV3H ","

static void groupby(void **state)
{
    fixture *fx = *state;
    grp g[64];
    int ng = ref_groups(D_PAGE, D_COUNTRY, g);
    qsort(g, (size_t)ng, sizeof(grp), grp_by_dims);

    /* default order: dimensions ascending, null first */
    yajl_val r = run(fx, 200,
                     GB "\"dimensions\":[\"page\",{\"type\":\"default\",\"dimension\":\"country\","
                        "\"outputName\":\"c\"}],\"aggregations\":[{\"type\":\"count\",\"name\":"
                        "\"n\"}]}");
    assert_int_equal(jlen(r), (size_t)ng);
    for (int i = 0; i < ng; i++) {
        assert_string_equal(jstr(jat(r, "%d/version", i)), "v1");
        expect_time(jat(r, "%d/timestamp", i), T0, "groupBy timestamp");
        assert_true(streq(jstr(jat(r, "%d/event/page", i)), g[i].a));
        assert_true(streq(jstr(jat(r, "%d/event/c", i)), g[i].b));
        expect_int(jat(r, "%d/event/n", i), (int64_t)g[i].count, "groupBy count");
    }

    /* having + limitSpec: count > threshold, ordered by count desc, offset 1, limit 3 */
    uint64_t threshold = g[ng / 2].count;
    grp h[64];
    int nh = 0;
    for (int i = 0; i < ng; i++) {
        if (g[i].count > threshold) {
            h[nh++] = g[i];
        }
    }
    qsort(h, (size_t)nh, sizeof(grp), grp_by_count_desc);
    assert_true(nh >= 4);
    r = run(fx, 200,
            GB "\"dimensions\":[\"page\",\"country\"],\"aggregations\":[{\"type\":\"count\","
               "\"name\":\"n\"}],\"having\":{\"type\":\"greaterThan\",\"aggregation\":\"n\","
               "\"value\":%llu},\"limitSpec\":{\"type\":\"default\",\"limit\":3,\"offset\":1,"
               "\"columns\":[{\"dimension\":\"n\",\"direction\":\"descending\"},\"page\","
               "\"country\"]}}",
            (unsigned long long)threshold);
    assert_int_equal(jlen(r), 3);
    for (int i = 0; i < 3; i++) {
        assert_true(streq(jstr(jat(r, "%d/event/page", i)), h[i + 1].a));
        assert_true(streq(jstr(jat(r, "%d/event/country", i)), h[i + 1].b));
        expect_int(jat(r, "%d/event/n", i), (int64_t)h[i + 1].count, "having/limit count");
    }

    /* having: not(dimSelector country=US) and a filter having on the output value */
    int want = 0;
    for (int i = 0; i < ng; i++) {
        if (!streq(g[i].b, "US") && g[i].count >= threshold) {
            want++;
        }
    }
    r = run(fx, 200,
            GB "\"dimensions\":[\"page\",\"country\"],\"aggregations\":[{\"type\":\"count\","
               "\"name\":\"n\"}],\"having\":{\"type\":\"and\",\"havingSpecs\":[{\"type\":\"not\","
               "\"havingSpec\":{\"type\":\"dimSelector\",\"dimension\":\"country\",\"value\":"
               "\"US\"}},{\"type\":\"filter\",\"filter\":{\"type\":\"bound\",\"dimension\":\"n\","
               "\"lower\":%llu,\"ordering\":\"numeric\"}}]}}",
            (unsigned long long)threshold);
    assert_int_equal(jlen(r), (size_t)want);
    for (size_t i = 0; i < jlen(r); i++) {
        assert_false(streq(jstr(jat(r, "%zu/event/country", i)), "US"));
        assert_true(jnum(jat(r, "%zu/event/n", i), "value") >= (double)threshold);
    }

    /* numeric dimension order, descending */
    r = run(fx, 200,
            GB "\"dimensions\":[\"status\"],\"aggregations\":[{\"type\":\"count\",\"name\":"
               "\"n\"}],\"limitSpec\":{\"type\":\"default\",\"columns\":[{\"dimension\":"
               "\"status\",\"direction\":\"descending\",\"dimensionOrder\":\"numeric\"}]}}");
    assert_int_equal(jlen(r), 4);
    assert_string_equal(jstr(jat(r, "0/event/status")), "1000");
    assert_string_equal(jstr(jat(r, "1/event/status")), "404");
    assert_string_equal(jstr(jat(r, "2/event/status")), "301");
    assert_string_equal(jstr(jat(r, "3/event/status")), "200");

    /* an unknown dimension groups everything under null */
    r = run(fx, 200,
            GB "\"dimensions\":[\"browser\"],\"aggregations\":[{\"type\":\"count\",\"name\":"
               "\"n\"}]}");
    assert_int_equal(jlen(r), 1);
    expect_null(jat(r, "0/event/browser"), "unknown dimension");
    expect_int(jat(r, "0/event/n"), (int64_t)ref_total(NULL, T0, T0 + 3 * HOUR).count,
               "unknown dimension count");

    /* per hour: time first, then dimensions */
    r = run(fx, 200,
            GB "\"granularity\":\"hour\",\"dimensions\":[\"country\"],\"aggregations\":[{"
               "\"type\":\"count\",\"name\":\"n\"}],\"limitSpec\":{\"type\":\"default\","
               "\"columns\":[{\"dimension\":\"n\",\"direction\":\"descending\"}]}}");
    assert_int_equal(jlen(r), 9);
    for (int hr = 0; hr < 3; hr++) {
        for (int k = 0; k < 3; k++) {
            expect_time(jat(r, "%d/timestamp", hr * 3 + k), T0 + hr * HOUR, "hourly groupBy");
        }
        assert_true(jnum(jat(r, "%d/event/n", hr * 3), "value") >=
                    jnum(jat(r, "%d/event/n", hr * 3 + 1), "value"));
        assert_true(jnum(jat(r, "%d/event/n", hr * 3 + 1), "value") >=
                    jnum(jat(r, "%d/event/n", hr * 3 + 2), "value"));
    }

    /* no dimensions: one row; nothing matched: no rows */
    r = run(fx, 200, GB "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(r), 1);
    r = run(fx, 200,
            GB "\"dimensions\":[\"page\"],\"filter\":{\"type\":\"false\"},\"aggregations\":[{"
               "\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(r), 0);
}

/* ---- timeBoundary, datasources, errors
 * ------------------------------------------------------------- */

static void timeboundary(void **state)
{
    fixture *fx = *state;
    int64_t lo = INT64_MAX, hi = INT64_MIN, blo = INT64_MAX, bhi = INT64_MIN;
    for (int i = 0; i < nrows; i++) {
        lo = rows[i].t < lo ? rows[i].t : lo;
        hi = rows[i].t > hi ? rows[i].t : hi;
        if (streq(rows[i].d[D_PAGE], "/b")) {
            blo = rows[i].t < blo ? rows[i].t : blo;
            bhi = rows[i].t > bhi ? rows[i].t : bhi;
        }
    }
    yajl_val r = run(fx, 200, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"}");
    assert_int_equal(jlen(r), 1);
    expect_time(jat(r, "0/timestamp"), lo, "timestamp");
    expect_time(jat(r, "0/result/minTime"), lo, "minTime");
    expect_time(jat(r, "0/result/maxTime"), hi, "maxTime is the latest bucket's start");
    r = run(fx, 200,
            "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"bound\":\"maxTime\"}");
    expect_time(jat(r, "0/timestamp"), hi, "maxTime timestamp");
    assert_null(jat(r, "0/result/minTime"));
    r = run(fx, 200,
            "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"bound\":\"minTime\","
            "\"filter\":{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/b\"}}");
    expect_time(jat(r, "0/result/minTime"), blo, "filtered minTime");
    assert_null(jat(r, "0/result/maxTime"));
    r = run(fx, 200,
            "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\","
            "\"filter\":{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/b\"}}");
    expect_time(jat(r, "0/result/maxTime"), bhi, "filtered maxTime");
    r = run(fx, 200, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"," IV3H "}");
    expect_time(jat(r, "0/result/minTime"), T0, "interval minTime");
    expect_time(jat(r, "0/result/maxTime"), T0 + (NMIN - 1) * MIN, "interval maxTime");
    r = run(fx, 200,
            "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"filter\":{"
            "\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/never\"}}");
    assert_int_equal(jlen(r), 0);
}

static void datasources(void **state)
{
    fixture *fx = *state;
    int status = sl_res_datasources(fx->cfg, fx->st, &fx->out);
    assert_int_equal(status, 200);
    sl_buf_append(&fx->out, "", 1);
    char ebuf[128];
    yajl_val r = yajl_tree_parse(fx->out.data, ebuf, sizeof(ebuf));
    assert_non_null(r);
    uint64_t events = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int64_t hours[MAX_ROWS];
    int nh = 0;
    for (int i = 0; i < nrows; i++) {
        events += rows[i].count;
        lo = rows[i].t < lo ? rows[i].t : lo;
        hi = rows[i].t > hi ? rows[i].t : hi;
        int64_t hr = ref_bucket(rows[i].t, HOUR, 0);
        int k = 0;
        while (k < nh && hours[k] != hr) {
            k++;
        }
        if (k == nh) {
            hours[nh++] = hr;
        }
    }
    assert_int_equal(jlen(r), 1);
    assert_string_equal(jstr(jat(r, "0/name")), "ev");
    assert_string_equal(jstr(jat(r, "0/spec/timestamp/column")), "ts");
    assert_string_equal(jstr(jat(r, "0/spec/timestamp/format")), "iso");
    assert_string_equal(jstr(jat(r, "0/spec/timestamp/name")), "__time");
    assert_int_equal(jlen(jat(r, "0/spec/dimensions")), ND);
    assert_string_equal(jstr(jat(r, "0/spec/dimensions/3")), "status");
    assert_int_equal(jlen(jat(r, "0/spec/metrics")), 4);
    assert_string_equal(jstr(jat(r, "0/spec/metrics/0/type")), "count");
    assert_string_equal(jstr(jat(r, "0/spec/metrics/2/type")), "min");
    assert_string_equal(jstr(jat(r, "0/spec/metrics/2/field")), "lat");
    assert_string_equal(jstr(jat(r, "0/spec/granularity/segment")), "hour");
    assert_string_equal(jstr(jat(r, "0/spec/granularity/query")), "minute");
    expect_int(jat(r, "0/spec/partitions/count"), 2, "partitions");
    assert_string_equal(jstr(jat(r, "0/spec/partitions/key")), "page");
    expect_null(jat(r, "0/spec/rejection/late"), "late");
    assert_string_equal(jstr(jat(r, "0/spec/rejection/early")), "P1D");
    expect_time(jat(r, "0/minTime"), lo, "minTime");
    expect_time(jat(r, "0/maxTime"), hi, "maxTime");
    expect_int(jat(r, "0/rows"), nrows, "rows");
    expect_int(jat(r, "0/events"), (int64_t)events, "events");
    expect_int(jat(r, "0/segments"), nh, "segments");
    yajl_tree_free(r);
}

static void no_store_yet(void **state)
{
    fixture *fx = *state;
    assert_null(fx->st);
    yajl_val r = run(fx, 200, QHEAD IV3H "," AGGS "}");
    assert_int_equal(jlen(r), 1);
    expect_int(jat(r, "0/result/n"), 0, "no store: count");
    expect_null(jat(r, "0/result/mn"), "no store: min");
    r = run(fx, 200, QHEAD IV3H ",\"granularity\":\"minute\"," AGGS "}");
    assert_int_equal(jlen(r), 0);
    r = run(fx, 200,
            "{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV3H
            ",\"dimension\":\"page\",\"metric\":\"n\",\"threshold\":3,\"filter\":{\"type\":"
            "\"selector\",\"dimension\":\"page\",\"value\":\"/a\"},"
            "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(r), 0);
    r = run(fx, 200, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"}");
    assert_int_equal(jlen(r), 0);
    assert_int_equal(sl_res_datasources(fx->cfg, NULL, &fx->out), 200);
    sl_buf_append(&fx->out, "", 1);
    char ebuf[128];
    yajl_val d = yajl_tree_parse(fx->out.data, ebuf, sizeof(ebuf));
    assert_non_null(d);
    expect_null(jat(d, "0/minTime"), "no store: minTime");
    expect_null(jat(d, "0/maxTime"), "no store: maxTime");
    expect_int(jat(d, "0/rows"), 0, "no store: rows");
    yajl_tree_free(d);
}

/* An empty store (the storer created it, nothing written yet) behaves the same. */
static void empty_store(void **state)
{
    fixture *fx = *state;
    sl_err err;
    sl_store *w;
    assert_int_equal(sl_store_open(&w, fx->segdir, false, 16, 64, &err), 0);
    sl_store_close(w);
    assert_int_equal(sl_store_open(&fx->st, fx->segdir, true, 16, 64, &err), 0);
    yajl_val r = run(fx, 200, QHEAD IV3H "," AGGS "}");
    expect_int(jat(r, "0/result/n"), 0, "empty store: count");
    r = run(fx, 200,
            GB "\"dimensions\":[\"page\"],\"filter\":{\"type\":\"like\",\"dimension\":\"page\","
               "\"pattern\":\"%%\"},\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}");
    assert_int_equal(jlen(r), 0);
    r = run(fx, 200, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"}");
    assert_int_equal(jlen(r), 0);
}

static void error_replies(void **state)
{
    fixture *fx = *state;
    yajl_val r = run(fx, 400, "{\"queryType\":\"timeseries\",\"dataSource\":\"nope\"," IV3H "}");
    assert_string_equal(jstr(jat(r, "error")), "Invalid query");
    assert_string_equal(jstr(jat(r, "errorMessage")),
                        "dataSource: unknown datasource \"nope\"; known: ev");
    assert_string_equal(jstr(jat(r, "errorClass")), "sluice.QueryParseException");
    expect_null(jat(r, "host"), "host");
    r = run(fx, 400, "{\"queryType\": \"timeseries\",");
    assert_string_equal(jstr(jat(r, "error")), "Invalid query");
    assert_non_null(strstr(jstr(jat(r, "errorMessage")), "line 1, column"));
    r = run(fx, 400, QHEAD IV3H ",\"granularity\":\"month\"}");
    assert_string_equal(jstr(jat(r, "error")), "Unsupported operation");

    sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_res_error(&b, SL_ETIMEDOUT, "slow"), 504);
    assert_int_equal(sl_res_error(&b, SL_ETOOBIG, "big"), 400);
    assert_int_equal(sl_res_error(&b, SL_EIO, "disk"), 500);
    sl_buf_append(&b, "", 1);
    assert_string_equal(b.data, "{\"error\":\"Unknown exception\",\"errorMessage\":\"disk\","
                                "\"errorClass\":\"sluice.InternalError\",\"host\":null}");
    /* a message cut inside a UTF-8 character loses the partial character */
    assert_int_equal(sl_res_error(&b, SL_EPARSE, "caf\xc3\xa9 \xe2\x82"), 400);
    sl_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "\"errorMessage\":\"caf\xc3\xa9 \","));
    sl_buf_fini(&b);
}

static void number_format(void **state)
{
    (void)state;
    static const struct {
        double v;
        bool is_long, null;
        const char *want;
    } cases[] = {
        {0.1 + 0.2, false, false, "0.30000000000000004"},
        {3.0, false, false, "3.0"},
        {-0.5, false, false, "-0.5"},
        {1e21, false, false, "1e+21"},
        {12.75, true, false, "12"},
        {-12.75, true, false, "-12"},
        {9007199254740993.0, true, false, "9007199254740992"},
        {NAN, false, false, "null"},
        {INFINITY, true, false, "null"},
        {1.0, false, true, "null"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_buf b;
        sl_buf_init(&b);
        yajl_gen g = sl_res_gen(&b);
        yajl_gen_array_open(g);
        sl_res_value(g, cases[i].v, cases[i].null, cases[i].is_long);
        yajl_gen_array_close(g);
        sl_res_gen_free(g);
        sl_buf_append(&b, "", 1);
        char want[64];
        snprintf(want, sizeof(want), "[%s]", cases[i].want);
        assert_string_equal(b.data, want);
        sl_buf_fini(&b);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(ts_minute_zero_filled, setup, teardown),
    cmocka_unit_test_setup_teardown(ts_granularities, setup, teardown),
    cmocka_unit_test_setup_teardown(ts_skip_descending_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(ts_empty_interval, setup, teardown),
    cmocka_unit_test_setup_teardown(ts_multiple_intervals, setup, teardown),
    cmocka_unit_test_setup_teardown(filters, setup, teardown),
    cmocka_unit_test_setup_teardown(aggregators, setup, teardown),
    cmocka_unit_test_setup_teardown(post_aggregators, setup, teardown),
    cmocka_unit_test_setup_teardown(topn, setup, teardown),
    cmocka_unit_test_setup_teardown(groupby, setup, teardown),
    cmocka_unit_test_setup_teardown(timeboundary, setup, teardown),
    cmocka_unit_test_setup_teardown(datasources, setup, teardown),
    cmocka_unit_test_setup_teardown(no_store_yet, setup_empty, teardown),
    cmocka_unit_test_setup_teardown(empty_store, setup_empty, teardown),
    cmocka_unit_test_setup_teardown(error_replies, setup, teardown),
    cmocka_unit_test(number_format),
};

SL_TEST_MAIN(tests)
