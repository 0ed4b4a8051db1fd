/* Unit tests of the native query parser: valid queries become the expected plans,
 * and each kind of bad input is refused with the right code and a message naming the
 * field. Times are checked against constants computed outside the code under test. */
#include "sl_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "native.h"

/* 2025-06-11T00:00:00Z and friends, from Python's datetime. */
#define T_0611 1749600000000LL
#define T_0612 1749686400000LL
#define HOUR 3600000LL
#define MIN 60000LL
#define DAY 86400000LL

static const char *const SPEC =
    "{\"name\":\"ev\",\"timestamp\":{\"column\":\"ts\",\"format\":\"iso\",\"name\":\"event_time\"},"
    "\"dimensions\":[\"page\",\"country\",\"device\",\"status\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
    "{\"name\":\"lat_min\",\"type\":\"min\",\"field\":\"lat\"},"
    "{\"name\":\"lat_max\",\"type\":\"max\",\"field\":\"lat\"}],"
    "\"partitions\":{\"count\":2,\"key\":\"page\"}}";

static int setup(void **state)
{
    sl_config *cfg = sl_calloc(1, sizeof(*cfg));
    sl_spec *spec;
    sl_err err;
    if (sl_spec_parse(SPEC, strlen(SPEC), "test", &spec, &err) != 0) {
        fprintf(stderr, "spec: %s\n", err.msg);
        return -1;
    }
    cfg->datasources[cfg->ndatasources++] = spec;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    sl_config *cfg = *state;
    for (int i = 0; i < cfg->ndatasources; i++) {
        sl_spec_free(cfg->datasources[i]);
    }
    free(cfg);
    return 0;
}

static sl_native *parse_ok(void **state, const char *json)
{
    sl_native *q = NULL;
    sl_err err = {0, ""};
    int rc = sl_native_parse(*state, json, strlen(json), &q, &err);
    if (rc != 0) {
        fail_msg("parse of %s failed: %s", json, err.msg);
    }
    assert_non_null(q);
    return q;
}

static void parse_fails(void **state, const char *json, int code, const char *expect)
{
    sl_native *q = (sl_native *)1;
    sl_err err = {0, ""};
    int rc = sl_native_parse(*state, json, strlen(json), &q, &err);
    if (rc != code) {
        fail_msg("parse of %s: expected code %d, got %d (%s)", json, code, rc, err.msg);
    }
    assert_null(q);
    if (strstr(err.msg, expect) == NULL) {
        fail_msg("parse of %s: message \"%s\" lacks \"%s\"", json, err.msg, expect);
    }
}

#define TS_HEAD "{\"queryType\":\"timeseries\",\"dataSource\":\"ev\","
#define IV "\"intervals\":[\"2025-06-11T00:00:00Z/2025-06-12T00:00:00Z\"]"

/* ---- valid queries ---------------------------------------------------------------------- */

static void timeseries_plan(void **state)
{
    sl_native *q = parse_ok(
        state, TS_HEAD IV ",\"granularity\":\"hour\","
                          "\"aggregations\":[{\"type\":\"count\",\"name\":\"rows\"},"
                          "{\"type\":\"longSum\",\"name\":\"ev\",\"fieldName\":\"count\"},"
                          "{\"type\":\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"},"
                          "{\"type\":\"doubleMin\",\"name\":\"mn\",\"fieldName\":\"lat_min\"},"
                          "{\"type\":\"longMax\",\"name\":\"mx\",\"fieldName\":\"lat_max\"}],"
                          "\"postAggregations\":[{\"type\":\"arithmetic\",\"name\":\"avg\","
                          "\"fn\":\"/\",\"fields\":[{\"type\":\"fieldAccess\",\"fieldName\":\"s\"},"
                          "{\"type\":\"fieldAccess\",\"fieldName\":\"ev\"}]}],"
                          "\"descending\":\"true\",\"limit\":5,"
                          "\"context\":{\"skipEmptyBuckets\":true,\"timeout\":250,"
                          "\"queryId\":\"x\"}}");
    assert_int_equal(q->type, SL_NQ_TIMESERIES);
    assert_string_equal(q->spec->name, "ev");
    assert_int_equal(q->nintervals, 1);
    assert_true(q->intervals[0].start == T_0611);
    assert_true(q->intervals[0].end == T_0612);
    assert_false(q->gran.all);
    assert_true(q->gran.period_ms == HOUR);
    assert_true(q->gran.origin_ms == 0);
    assert_int_equal(q->naggs, 5);
    assert_int_equal(q->aggs[0].op, SL_AGG_SUM);
    assert_int_equal(q->aggs[0].src, -1);
    assert_true(q->aggs[0].is_long);
    assert_int_equal(q->aggs[1].src, -1); /* longSum over the count metric */
    assert_int_equal(q->aggs[2].src, 0);
    assert_false(q->aggs[2].is_long);
    assert_int_equal(q->aggs[3].op, SL_AGG_MIN);
    assert_int_equal(q->aggs[3].src, 1);
    assert_int_equal(q->aggs[4].op, SL_AGG_MAX);
    assert_int_equal(q->aggs[4].src, 2);
    assert_true(q->aggs[4].is_long);
    assert_int_equal(q->npost, 1);
    assert_int_equal(q->ncols, 6);
    assert_int_equal(q->post[0]->type, SL_POST_ARITH);
    assert_int_equal(q->post[0]->fn, '/');
    assert_int_equal(q->post[0]->nfields, 2);
    assert_int_equal(q->post[0]->fields[0]->ref, 2);
    assert_int_equal(q->post[0]->fields[1]->ref, 1);
    assert_int_equal(sl_native_column(q, "avg"), 5);
    assert_int_equal(sl_native_column(q, "nope"), -1);
    assert_true(q->descending);
    assert_true(q->limit == 5);
    assert_true(q->skip_empty);
    assert_true(q->timeout_ms == 250);
    assert_null(q->filter);
    sl_native_free(q);
}

static void interval_forms(void **state)
{
    /* start/period, period/end, unsorted and overlapping intervals get merged. */
    sl_native *q = parse_ok(state, TS_HEAD "\"intervals\":[\"2025-06-12T00:00Z/PT1H\","
                                           "\"P1D/2025-06-12\","
                                           "\"2025-06-11T12:00:00.000Z/2025-06-11T13:00:00Z\","
                                           "\"2025-06-12T05:00:00+02:00/2025-06-12T04:00:00Z\"]}");
    assert_int_equal(q->nintervals, 2);
    assert_true(q->intervals[0].start == T_0611);
    assert_true(q->intervals[0].end == T_0612 + HOUR);
    assert_true(q->intervals[1].start == T_0612 + 3 * HOUR);
    assert_true(q->intervals[1].end == T_0612 + 4 * HOUR);
    assert_true(q->gran.all);
    sl_native_free(q);

    q = parse_ok(state, TS_HEAD "\"intervals\":\"2025-06-11/2025-06-12\"}");
    assert_int_equal(q->nintervals, 1);
    assert_true(q->intervals[0].start == T_0611 && q->intervals[0].end == T_0612);
    sl_native_free(q);

    q = parse_ok(state, TS_HEAD "\"intervals\":{\"type\":\"intervals\",\"intervals\":"
                                "[\"2025-06-11/PT30M\"]}}");
    assert_true(q->intervals[0].end == T_0611 + 30 * MIN);
    sl_native_free(q);
}

typedef struct gran_case {
    const char *json;
    bool all;
    int64_t period, origin;
} gran_case;

static void granularity_forms(void **state)
{
    static const gran_case cases[] = {
        {"\"all\"", true, 0, 0},
        {"\"ALL\"", true, 0, 0},
        {"\"none\"", false, MIN, 0},   /* finer than the stored minute: the minute */
        {"\"second\"", false, MIN, 0}, /* same */
        {"\"minute\"", false, MIN, 0},
        {"\"five_minute\"", false, 5 * MIN, 0},
        {"\"fifteen_minute\"", false, 15 * MIN, 0},
        {"\"thirty_minute\"", false, 30 * MIN, 0},
        {"\"Hour\"", false, HOUR, 0},
        {"\"six_hour\"", false, 6 * HOUR, 0},
        {"\"day\"", false, DAY, 0},
        {"\"week\"", false, 7 * DAY, -3 * DAY}, /* Monday 1969-12-29 */
        {"{\"type\":\"period\",\"period\":\"PT5M\"}", false, 5 * MIN, 0},
        {"{\"type\":\"period\",\"period\":\"P2W\",\"timeZone\":\"UTC\"}", false, 14 * DAY,
         -3 * DAY},
        {"{\"type\":\"period\",\"period\":\"PT1H\",\"origin\":\"1970-01-01T00:30:00Z\"}", false,
         HOUR, 1800000},
        {"{\"type\":\"period\",\"period\":\"PT10S\"}", false, MIN, 0},
        {"{\"type\":\"duration\",\"duration\":7200000,\"origin\":1800000}", false, 2 * HOUR,
         1800000},
        {"{\"type\":\"all\"}", true, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), TS_HEAD IV ",\"granularity\":%s}", cases[i].json);
        sl_native *q = parse_ok(state, json);
        if (q->gran.all != cases[i].all ||
            (!cases[i].all &&
             (q->gran.period_ms != cases[i].period || q->gran.origin_ms != cases[i].origin))) {
            fail_msg("granularity %s: all=%d period=%lld origin=%lld", cases[i].json, q->gran.all,
                     (long long)q->gran.period_ms, (long long)q->gran.origin_ms);
        }
        sl_native_free(q);
    }
    /* Bucket starts, checked by hand. */
    sl_gran g = {false, 15 * MIN, 0};
    assert_true(sl_gran_bucket(&g, T_0611 + 29 * MIN) == T_0611 + 15 * MIN);
    g = (sl_gran){false, 7 * DAY, -3 * DAY};
    /* 2025-06-11 is a Wednesday: its week starts Monday 2025-06-09. */
    assert_true(sl_gran_bucket(&g, T_0611 + 5 * HOUR) == T_0611 - 2 * DAY);
    g = (sl_gran){false, HOUR, 1800000};
    assert_true(sl_gran_bucket(&g, T_0611 + 10 * MIN) == T_0611 - 30 * MIN);
    assert_true(sl_gran_bucket(&g, T_0611 + 40 * MIN) == T_0611 + 30 * MIN);
    g = (sl_gran){false, 7 * MIN, 0};
    assert_true(sl_gran_bucket(&g, -1) == -7 * MIN); /* before the epoch floors down */
}

static void topn_plan(void **state)
{
    const char *head =
        "{\"queryType\":\"topN\",\"dataSource\":{\"type\":\"table\",\"name\":\"ev\"}," IV
        ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],"
        "\"threshold\":3,\"dimension\":";
    char json[1024];
    snprintf(json, sizeof(json), "%s\"page\",\"metric\":\"n\"}", head);
    sl_native *q = parse_ok(state, json);
    assert_int_equal(q->type, SL_NQ_TOPN);
    assert_int_equal(q->ndims, 1);
    assert_string_equal(q->dims[0].output, "page");
    assert_int_equal(q->dims[0].dim, 0);
    assert_true(q->threshold == 3);
    assert_int_equal(q->metric.kind, SL_TOPN_NUMERIC);
    assert_int_equal(q->metric.col, 0);
    assert_false(q->metric.inverted);
    sl_native_free(q);

    snprintf(
        json, sizeof(json),
        "%s{\"type\":\"default\",\"dimension\":\"country\",\"outputName\":\"c\"},"
        "\"metric\":{\"type\":\"inverted\",\"metric\":{\"type\":\"numeric\",\"metric\":\"n\"}}}",
        head);
    q = parse_ok(state, json);
    assert_string_equal(q->dims[0].output, "c");
    assert_int_equal(q->dims[0].dim, 1);
    assert_int_equal(q->metric.kind, SL_TOPN_NUMERIC);
    assert_true(q->metric.inverted);
    sl_native_free(q);

    snprintf(json, sizeof(json),
             "%s\"status\",\"metric\":{\"type\":\"inverted\",\"metric\":{\"type\":\"dimension\","
             "\"ordering\":\"numeric\",\"previousStop\":\"300\"}}}",
             head);
    q = parse_ok(state, json);
    assert_int_equal(q->metric.kind, SL_TOPN_DIMENSION);
    assert_int_equal(q->metric.order, SL_ORDER_NUMERIC);
    assert_true(q->metric.inverted);
    assert_string_equal(q->metric.previous_stop, "300");
    sl_native_free(q);

    /* An unknown dimension is allowed and reads as null everywhere. */
    snprintf(json, sizeof(json), "%s\"browser\",\"metric\":{\"type\":\"dimension\"}}", head);
    q = parse_ok(state, json);
    assert_int_equal(q->dims[0].dim, -1);
    assert_int_equal(q->metric.order, SL_ORDER_LEXICOGRAPHIC);
    sl_native_free(q);
}

static void groupby_plan(void **state)
{
    sl_native *q = parse_ok(
        state,
        "{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"granularity\":\"all\","
        "\"dimensions\":[\"page\",{\"type\":\"default\",\"dimension\":\"country\","
        "\"outputName\":\"cc\"}],"
        "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"
        "{\"type\":\"doubleSum\",\"name\":\"s\",\"fieldName\":\"lat_sum\"}],"
        "\"postAggregations\":[{\"type\":\"arithmetic\",\"name\":\"avg\",\"fn\":\"quotient\","
        "\"fields\":[{\"type\":\"fieldAccess\",\"fieldName\":\"s\"},"
        "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"}]}],"
        "\"having\":{\"type\":\"and\",\"havingSpecs\":[{\"type\":\"greaterThan\","
        "\"aggregation\":\"n\",\"value\":2},{\"type\":\"not\",\"havingSpec\":"
        "{\"type\":\"dimSelector\",\"dimension\":\"cc\",\"value\":\"US\"}}]},"
        "\"limitSpec\":{\"type\":\"default\",\"limit\":10,\"offset\":2,\"columns\":["
        "{\"dimension\":\"avg\",\"direction\":\"descending\"},"
        "{\"dimension\":\"page\",\"dimensionOrder\":\"numeric\"},\"cc\"]}}");
    assert_int_equal(q->type, SL_NQ_GROUPBY);
    assert_int_equal(q->ndims, 2);
    assert_string_equal(q->dims[1].name, "country");
    assert_string_equal(q->dims[1].output, "cc");
    assert_int_equal(q->post[0]->fn, 'q');
    assert_non_null(q->having);
    assert_int_equal(q->having->type, SL_HAVING_AND);
    assert_int_equal(q->having->nkids, 2);
    assert_int_equal(q->having->kids[0]->type, SL_HAVING_GT);
    assert_int_equal(q->having->kids[0]->col, 0);
    assert_true(q->having->kids[0]->value == 2);
    assert_int_equal(q->having->kids[1]->type, SL_HAVING_NOT);
    assert_int_equal(q->having->kids[1]->kids[0]->type, SL_HAVING_DIM);
    assert_int_equal(q->having->kids[1]->kids[0]->dim, 1);
    assert_string_equal(q->having->kids[1]->kids[0]->str, "US");
    assert_true(q->limit == 10);
    assert_true(q->offset == 2);
    assert_int_equal(q->norder, 3);
    assert_false(q->orderby[0].is_dim);
    assert_int_equal(q->orderby[0].index, 2);
    assert_true(q->orderby[0].descending);
    assert_true(q->orderby[1].is_dim);
    assert_int_equal(q->orderby[1].index, 0);
    assert_int_equal(q->orderby[1].order, SL_ORDER_NUMERIC);
    assert_true(q->orderby[2].is_dim);
    assert_int_equal(q->orderby[2].index, 1);
    assert_false(q->orderby[2].descending);
    sl_native_free(q);
}

static void timeboundary_plan(void **state)
{
    sl_native *q = parse_ok(state, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"}");
    assert_int_equal(q->type, SL_NQ_TIMEBOUNDARY);
    assert_false(q->has_intervals);
    assert_int_equal(q->bound, SL_BOUND_BOTH);
    sl_native_free(q);
    q = parse_ok(state, "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"bound\":"
                        "\"maxTime\",\"filter\":{\"type\":\"selector\",\"dimension\":\"page\","
                        "\"value\":\"/a\"}}");
    assert_int_equal(q->bound, SL_BOUND_MAX);
    assert_non_null(q->filter);
    sl_native_free(q);
}

/* ---- filters ------------------------------------------------------------------------------ */

static sl_native *parse_filter(void **state, const char *filter)
{
    char json[2048];
    snprintf(json, sizeof(json), TS_HEAD IV ",\"filter\":%s}", filter);
    return parse_ok(state, json);
}

static bool m(const sl_filter *f, const char *s)
{
    return sl_filter_match_str(f, s, s != NULL ? strlen(s) : 0);
}

static void filter_tree(void **state)
{
    sl_native *q = parse_filter(
        state, "{\"type\":\"and\",\"fields\":[{\"type\":\"selector\",\"dimension\":\"page\","
               "\"value\":\"/a\"},{\"type\":\"or\",\"fields\":[{\"type\":\"in\",\"dimension\":"
               "\"country\",\"values\":[\"US\",null,\"DE\"]},{\"type\":\"not\",\"field\":{"
               "\"type\":\"selector\",\"dimension\":\"browser\",\"value\":null}}]}]}");
    const sl_filter *f = q->filter;
    assert_int_equal(f->type, SL_FILTER_AND);
    assert_int_equal(f->nkids, 2);
    assert_int_equal(f->kids[0]->type, SL_FILTER_VALUES);
    assert_int_equal(f->kids[0]->dim, 0);
    assert_int_equal(f->kids[1]->type, SL_FILTER_OR);
    const sl_filter *in = f->kids[1]->kids[0];
    assert_int_equal(in->dim, 1);
    assert_int_equal(in->nvalues, 3);
    assert_null(in->values[0]); /* null sorts first */
    assert_string_equal(in->values[1], "DE");
    assert_string_equal(in->values[2], "US");
    const sl_filter *nt = f->kids[1]->kids[1];
    assert_int_equal(nt->type, SL_FILTER_NOT);
    assert_int_equal(nt->kids[0]->dim, -1); /* not a dimension: always null */
    sl_native_free(q);
}

typedef struct match_case {
    const char *filter;
    const char *value; /* NULL: the null value */
    bool match;
} match_case;

static void filter_matching(void **state)
{
    static const match_case cases[] = {
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/a\"}", "/a", true},
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/a\"}", "/ab", false},
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/a\"}", NULL, false},
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":null}", NULL, true},
        {"{\"type\":\"selector\",\"dimension\":\"page\",\"value\":null}", "", false},
        {"{\"type\":\"selector\",\"dimension\":\"status\",\"value\":404}", "404", true},
        {"{\"type\":\"equals\",\"column\":\"page\",\"matchValueType\":\"STRING\","
         "\"matchValue\":\"/b\"}",
         "/b", true},
        {"{\"type\":\"null\",\"column\":\"page\"}", NULL, true},
        {"{\"type\":\"null\",\"column\":\"page\"}", "x", false},
        {"{\"type\":\"in\",\"dimension\":\"page\",\"values\":[\"c\",\"a\",\"b\"]}", "b", true},
        {"{\"type\":\"in\",\"dimension\":\"page\",\"values\":[\"c\",\"a\",\"b\"]}", "d", false},
        {"{\"type\":\"in\",\"dimension\":\"page\",\"values\":[\"c\",\"a\",\"b\"]}", NULL, false},
        {"{\"type\":\"in\",\"dimension\":\"page\",\"values\":[\"a\",null]}", NULL, true},
        /* lexicographic bounds: "1000" < "200" < "404" */
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\",\"upper\":\"404\"}",
         "1000", false},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\",\"upper\":\"404\"}", "404",
         true},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\",\"upper\":\"404\","
         "\"upperStrict\":true}",
         "404", false},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\",\"lowerStrict\":true}",
         "200", false},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":\"200\"}", NULL, false},
        /* numeric bounds */
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":200,\"upper\":\"999\","
         "\"ordering\":\"numeric\"}",
         "1000", false},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":200,\"upper\":\"999\","
         "\"ordering\":{\"type\":\"numeric\"}}",
         "301", true},
        {"{\"type\":\"bound\",\"dimension\":\"status\",\"lower\":200,\"ordering\":\"numeric\"}",
         "abc", false},
        {"{\"type\":\"range\",\"column\":\"status\",\"matchValueType\":\"LONG\",\"lower\":300,"
         "\"upper\":1000,\"upperOpen\":true}",
         "1000", false},
        {"{\"type\":\"range\",\"column\":\"status\",\"matchValueType\":\"LONG\",\"lower\":300,"
         "\"upper\":1000,\"lowerOpen\":true}",
         "301", true},
        {"{\"type\":\"range\",\"column\":\"page\",\"matchValueType\":\"STRING\",\"lower\":\"/b\"}",
         "/c", true},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"/p%\"}", "/pricing", true},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"/p%\"}", "/about", false},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"_a%t\"}", "/about", true},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"_\"}", "\xc3\xa9", true},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"50!%\",\"escape\":\"!\"}", "50%",
         true},
        {"{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"50!%\",\"escape\":\"!\"}", "500",
         false},
        {"{\"type\":\"regex\",\"dimension\":\"page\",\"pattern\":\"^/(a|b)$\"}", "/b", true},
        {"{\"type\":\"regex\",\"dimension\":\"page\",\"pattern\":\"^/(a|b)$\"}", "/c", false},
        {"{\"type\":\"regex\",\"dimension\":\"page\",\"pattern\":\"ric\"}", "/pricing", true},
        {"{\"type\":\"search\",\"dimension\":\"page\",\"query\":{\"type\":\"contains\","
         "\"value\":\"PRIC\"}}",
         "/pricing", true},
        {"{\"type\":\"search\",\"dimension\":\"page\",\"query\":{\"type\":\"contains\","
         "\"value\":\"PRIC\",\"caseSensitive\":true}}",
         "/pricing", false},
        {"{\"type\":\"search\",\"dimension\":\"page\",\"query\":{\"type\":"
         "\"insensitive_contains\",\"value\":\"Ric\"}}",
         "/pricing", true},
        {"{\"type\":\"true\"}", NULL, true},
        {"{\"type\":\"false\"}", "x", false},
        {"{\"type\":\"not\",\"field\":{\"type\":\"selector\",\"dimension\":\"page\","
         "\"value\":\"/a\"}}",
         NULL, true},
        {"{\"type\":\"or\",\"fields\":[{\"type\":\"selector\",\"dimension\":\"page\","
         "\"value\":\"/a\"},{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"/b\"}]}",
         "/b", true},
        {"{\"type\":\"and\",\"fields\":[{\"type\":\"like\",\"dimension\":\"page\","
         "\"pattern\":\"/%\"},{\"type\":\"not\",\"field\":{\"type\":\"selector\","
         "\"dimension\":\"page\",\"value\":\"/b\"}}]}",
         "/b", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_native *q = parse_filter(state, cases[i].filter);
        if (m(q->filter, cases[i].value) != cases[i].match) {
            fail_msg("filter %s on %s%s%s: expected %s", cases[i].filter,
                     cases[i].value ? "\"" : "", cases[i].value ? cases[i].value : "null",
                     cases[i].value ? "\"" : "", cases[i].match ? "match" : "no match");
        }
        sl_native_free(q);
    }
}

/* ---- errors ------------------------------------------------------------------------------ */

typedef struct err_case {
    const char *json;
    int code;
    const char *message;
} err_case;

static void parse_errors(void **state)
{
    static const err_case cases[] = {
        /* malformed JSON: where it breaks */
        {"{\"queryType\": \"timeseries\",\n \"dataSource\": }", SL_ECODEC,
         "malformed JSON at line 2, column"},
        {"{\"queryType\":", SL_ECODEC, "the body ends early"},
        {"", SL_ECODEC, "malformed JSON at line 1, column 1"},
        {"[1]", SL_EPARSE, "a native query must be a JSON object, got an array"},
        /* the query type */
        {"{}", SL_EPARSE, "queryType: required"},
        {"{\"queryType\":7}", SL_EPARSE, "queryType: expected a string, got a number"},
        {"{\"queryType\":\"timeSeries\"}", SL_EPARSE,
         "queryType: unknown query type \"timeSeries\"; supported: timeseries, topN, groupBy, "
         "timeBoundary"},
        {"{\"queryType\":\"scan\"}", SL_EINVAL, "query type \"scan\" is not supported"},
        /* top-level fields */
        {TS_HEAD IV ",\"filters\":{}}", SL_EPARSE,
         "unknown field \"filters\"; expected one of: queryType, dataSource"},
        {TS_HEAD IV ",\"limit\":1,\"limit\":2}", SL_EPARSE, "field \"limit\" appears twice"},
        {"{\"queryType\":\"timeseries\"," IV "}", SL_EPARSE, "dataSource: required"},
        {"{\"queryType\":\"timeseries\",\"dataSource\":\"nope\"," IV "}", SL_EPARSE,
         "dataSource: unknown datasource \"nope\"; known: ev"},
        {"{\"queryType\":\"timeseries\",\"dataSource\":{\"type\":\"union\"}," IV "}", SL_EINVAL,
         "dataSource type \"union\" is not supported"},
        {TS_HEAD "\"granularity\":\"hour\"}", SL_EPARSE, "intervals: required"},
        {TS_HEAD "\"intervals\":[]}", SL_EPARSE, "intervals: must not be empty"},
        {TS_HEAD "\"intervals\":[\"2025-06-11\"]}", SL_EPARSE,
         "intervals[0]: interval \"2025-06-11\" must be start/end"},
        {TS_HEAD "\"intervals\":[\"2025-06-11/2025-06-12\",\"2025-13-01/2025-06-12\"]}", SL_EPARSE,
         "intervals[1]: bad time \"2025-13-01\""},
        {TS_HEAD "\"intervals\":[\"2025-06-12/2025-06-11\"]}", SL_EPARSE, "ends before it starts"},
        {TS_HEAD "\"intervals\":[\"2025-06-12/P1M\"]}", SL_EPARSE, "calendar"},
        {TS_HEAD IV ",\"granularity\":\"fortnight\"}", SL_EPARSE,
         "granularity: unknown granularity \"fortnight\"; expected one of: all, none"},
        {TS_HEAD IV ",\"granularity\":\"month\"}", SL_EINVAL, "calendar-based"},
        {TS_HEAD IV ",\"granularity\":{\"type\":\"period\",\"period\":\"P1M\"}}", SL_EINVAL,
         "granularity.period"},
        {TS_HEAD IV ",\"granularity\":{\"type\":\"period\",\"period\":\"PT1H\",\"timeZone\":"
                    "\"America/New_York\"}}",
         SL_EINVAL, "time zone \"America/New_York\" is not supported"},
        {TS_HEAD IV ",\"granularity\":{\"type\":\"period\"}}", SL_EPARSE,
         "granularity.period: required"},
        {TS_HEAD IV ",\"granularity\":{\"type\":\"duration\",\"duration\":9000000000000000000}}",
         SL_EPARSE, "granularity.duration: 9000000000000000000 is out of range"},
        {TS_HEAD IV ",\"granularity\":{\"type\":\"period\",\"period\":\"PT1M\",\"origin\":"
                    "-9000000000000000000}}",
         SL_EPARSE, "granularity.origin: origin is too far from 1970"},
        {TS_HEAD "\"intervals\":[\"2025-06-11/P9000000000W\"]}", SL_EPARSE,
         "intervals[0]: interval \"2025-06-11/P9000000000W\": period too long"},
        {TS_HEAD IV ",\"descending\":\"maybe\"}", SL_EPARSE,
         "descending: expected true or false, got a string"},
        {TS_HEAD IV ",\"limit\":0}", SL_EPARSE, "limit: 0 is out of range"},
        {TS_HEAD IV ",\"context\":{\"timeout\":-1}}", SL_EPARSE, "context.timeout: -1 is out"},
        {TS_HEAD IV ",\"context\":[]}", SL_EPARSE, "context: expected an object, got an array"},
        {TS_HEAD IV ",\"virtualColumns\":[{\"type\":\"expression\"}]}", SL_EINVAL,
         "virtualColumns"},
        /* aggregators */
        {TS_HEAD IV ",\"aggregations\":{}}", SL_EPARSE,
         "aggregations: expected an array, got an object"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\"}]}", SL_EPARSE,
         "aggregations[0].name: required"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},{\"type\":"
                    "\"longSum\",\"name\":\"x\",\"fieldName\":\"latency\"}]}",
         SL_EPARSE,
         "aggregations[1].fieldName: \"latency\" is not a stored metric of datasource \"ev\"; "
         "metrics: count, lat_sum, lat_min, lat_max"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"longSum\",\"name\":\"x\",\"fieldName\":"
                    "\"page\"}]}",
         SL_EPARSE, "aggregations[0].fieldName: \"page\" is a dimension"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"longSum\",\"name\":\"x\"}]}", SL_EPARSE,
         "aggregations[0].fieldName: required for a longSum aggregator"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"thetaSketch\",\"name\":\"u\",\"fieldName\":"
                    "\"page\"}]}",
         SL_EINVAL, "aggregations[0].type: aggregator type \"thetaSketch\" is not supported"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"hyperUnique\",\"name\":\"u\",\"fieldName\":"
                    "\"page\"}]}",
         SL_EPARSE,
         "aggregations[0].fieldName: \"page\" is a dimension of datasource \"ev\", not a "
         "distinct metric; count its values with {\"type\":\"cardinality\",\"fields\":[\"page\"]}"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},{\"type\":\"count\","
                    "\"name\":\"n\"}]}",
         SL_EPARSE, "aggregations[1]: output name \"n\" is already used by aggregations[0]"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\",\"fieldname\":\"x\"}"
                    "]}",
         SL_EPARSE, "aggregations[0]: unknown field \"fieldname\""},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"filtered\",\"name\":\"f\",\"aggregator\":"
                    "{\"type\":\"count\",\"name\":\"n\"}}]}",
         SL_EPARSE, "aggregations[0].filter: required"},
        /* post-aggregators */
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":"
                    "[{\"type\":\"arithmetic\",\"name\":\"r\",\"fn\":\"/\",\"fields\":[{\"type\":"
                    "\"fieldAccess\",\"fieldName\":\"n\"},{\"type\":\"fieldAccess\","
                    "\"fieldName\":\"m\"}]}]}",
         SL_EPARSE,
         "postAggregations[0].fields[1].fieldName: \"m\" is not an aggregator or an earlier "
         "post-aggregator of this query; available: n"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":"
                    "[{\"type\":\"arithmetic\",\"name\":\"r\",\"fn\":\"%\",\"fields\":[{\"type\":"
                    "\"constant\",\"value\":1},{\"type\":\"constant\",\"value\":2}]}]}",
         SL_EPARSE, "postAggregations[0].fn: unknown function \"%\""},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":"
                    "[{\"type\":\"arithmetic\",\"name\":\"r\",\"fn\":\"+\",\"fields\":[{\"type\":"
                    "\"constant\",\"value\":1}]}]}",
         SL_EPARSE, "postAggregations[0].fields: needs at least 2 fields"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":"
                    "[{\"type\":\"constant\",\"value\":1}]}",
         SL_EPARSE, "postAggregations[0].name: required"},
        {TS_HEAD IV ",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"postAggregations\":"
                    "[{\"type\":\"constant\",\"name\":\"n\",\"value\":1}]}",
         SL_EPARSE, "postAggregations[0]: output name \"n\" is already used"},
        {TS_HEAD IV ",\"postAggregations\":[{\"type\":\"expression\",\"name\":\"e\"}]}", SL_EINVAL,
         "post-aggregator type \"expression\" is not supported"},
        /* filters */
        {TS_HEAD IV ",\"filter\":{\"type\":\"selectr\",\"dimension\":\"page\"}}", SL_EPARSE,
         "filter.type: unknown filter type \"selectr\"; expected one of: selector"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"and\",\"fields\":[{\"type\":\"true\"},{\"type\":"
                    "\"selector\",\"value\":\"x\"}]}}",
         SL_EPARSE, "filter.fields[1].dimension: required"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"or\",\"fields\":[]}}", SL_EPARSE,
         "filter.fields: must not be empty"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"not\"}}", SL_EPARSE, "filter.field: required"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"selector\",\"dimension\":\"__time\",\"value\":1}}",
         SL_EINVAL, "filtering on the time column \"__time\" is not supported"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"selector\",\"dimension\":\"event_time\","
                    "\"value\":1}}",
         SL_EINVAL, "time column \"event_time\""},
        {TS_HEAD IV ",\"filter\":{\"type\":\"selector\",\"dimension\":\"page\",\"value\":{}}}",
         SL_EPARSE, "filter.value: expected a string, number or null, got an object"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"bound\",\"dimension\":\"page\",\"lower\":\"abc\","
                    "\"ordering\":\"numeric\"}}",
         SL_EPARSE, "filter.lower: \"abc\" is not a number (the ordering is numeric)"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"bound\",\"dimension\":\"page\",\"ordering\":"
                    "\"alphanumeric\"}}",
         SL_EINVAL, "filter.ordering: ordering \"alphanumeric\" is not supported"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"regex\",\"dimension\":\"page\",\"pattern\":\"(\"}}",
         SL_EPARSE, "filter.pattern: bad regular expression \"(\""},
        {TS_HEAD IV ",\"filter\":{\"type\":\"like\",\"dimension\":\"page\",\"pattern\":\"a\","
                    "\"escape\":\"ab\"}}",
         SL_EPARSE, "filter.escape: must be a single character"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"selector\",\"dimension\":\"page\",\"value\":\"a\","
                    "\"extractionFn\":{\"type\":\"upper\"}}}",
         SL_EINVAL, "filter.extractionFn: extraction functions are not supported"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"interval\",\"dimension\":\"__time\"}}", SL_EINVAL,
         "filter type \"interval\" is not supported"},
        {TS_HEAD IV ",\"filter\":{\"type\":\"equals\",\"column\":\"page\",\"matchValueType\":"
                    "\"STRING\"}}",
         SL_EPARSE, "filter.matchValue: required"},
        /* topN */
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"threshold\":3,\"metric\":\"n\"}",
         SL_EPARSE, "dimension: required"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":\"page\","
         "\"metric\":\"n\",\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}",
         SL_EPARSE, "threshold: required"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":\"page\","
         "\"threshold\":3,\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}",
         SL_EPARSE, "metric: required"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":\"page\","
         "\"threshold\":3,\"metric\":\"cnt\",\"aggregations\":[{\"type\":\"count\",\"name\":"
         "\"n\"}]}",
         SL_EPARSE,
         "metric: \"cnt\" is not an aggregator or post-aggregator of this query; "
         "available: n"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":\"page\","
         "\"threshold\":3,\"metric\":{\"type\":\"numerical\"},\"aggregations\":[]}",
         SL_EPARSE, "metric.type: unknown metric spec type \"numerical\""},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":{\"type\":"
         "\"extraction\",\"dimension\":\"page\"},\"threshold\":3,\"metric\":\"n\"}",
         SL_EINVAL, "dimension.type: dimension spec \"extraction\" is not supported"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"ev\"," IV ",\"dimension\":\"page\","
         "\"threshold\":3,\"metric\":\"page\",\"aggregations\":[{\"type\":\"count\",\"name\":"
         "\"page\"}]}",
         SL_EPARSE, "dimension: output name \"page\" is also an aggregator"},
        /* groupBy */
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":\"page\"}",
         SL_EPARSE, "dimensions: expected an array, got a string"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\","
         "\"__time\"]}",
         SL_EINVAL, "dimensions[1]: grouping on the time column \"__time\" is not supported"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\","
         "\"page\"]}",
         SL_EPARSE, "dimensions[1]: output name \"page\" appears twice"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"having\":{\"type\":\"greaterThan\",\"aggregation\":\"n\",\"value\":1}}",
         SL_EPARSE, "having.aggregation: \"n\" is not an aggregator or post-aggregator"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}],\"having\":{\"type\":\"or\","
         "\"havingSpecs\":[{\"type\":\"greaterThan\",\"aggregation\":\"n\",\"value\":\"1\"}]}}",
         SL_EPARSE, "having.havingSpecs[0].value: expected a number, got a string"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"having\":{\"type\":\"dimSelector\",\"dimension\":\"country\",\"value\":\"US\"}}",
         SL_EPARSE, "having.dimension: \"country\" is not a dimension of this query"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"limitSpec\":{\"type\":\"default\",\"columns\":[{\"dimension\":\"n\"}]}}",
         SL_EPARSE, "limitSpec.columns[0]: \"n\" is not a dimension, aggregator or"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"limitSpec\":{\"type\":\"default\",\"columns\":[{\"dimension\":\"page\","
         "\"direction\":\"up\"}]}}",
         SL_EPARSE, "limitSpec.columns[0].direction: expected ascending or descending"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"ev\"," IV ",\"dimensions\":[\"page\"],"
         "\"limitSpec\":{\"limit\":-3}}",
         SL_EPARSE, "limitSpec.limit: -3 is out of range"},
        /* timeBoundary */
        {"{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"bound\":\"max\"}", SL_EPARSE,
         "bound: expected minTime or maxTime, got \"max\""},
        {"{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\",\"granularity\":\"all\"}",
         SL_EPARSE, "unknown field \"granularity\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_fails(state, cases[i].json, cases[i].code, cases[i].message);
    }
}

static void hostile_bodies(void **state)
{
    /* Deep nesting is refused before anything recurses over it. */
    size_t n = 5000;
    char *deep = sl_malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    parse_fails(state, deep, SL_ECODEC, "nested deeper than 100 levels");
    free(deep);

    /* A NUL byte inside the body. */
    const char body[] = "{\"queryType\":\"time\0series\"}";
    sl_native *q = NULL;
    sl_err err = {0, ""};
    assert_int_equal(sl_native_parse(*state, body, sizeof(body) - 1, &q, &err), SL_ECODEC);
    assert_null(q);
    assert_non_null(strstr(err.msg, "NUL byte at offset 18"));

    /* Invalid UTF-8 in a string. */
    parse_fails(state, "{\"queryType\":\"\xff\"}", SL_ECODEC, "malformed JSON at line 1");

    /* Not null-terminated: only len bytes count. */
    const char *longer = "{\"queryType\":\"timeBoundary\",\"dataSource\":\"ev\"}GARBAGE";
    assert_int_equal(sl_native_parse(*state, longer, strlen(longer) - 7, &q, &err), 0);
    sl_native_free(q);
}

/* ---- sketch aggregators ---------------------------------------------------------------- */

static const char *const SPEC_SK =
    "{\"name\":\"sk\",\"timestamp\":{\"column\":\"ts\",\"format\":\"iso\"},"
    "\"dimensions\":[\"page\",\"country\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user_id\"},"
    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
    "{\"name\":\"latency\",\"type\":\"quantiles\",\"field\":\"lat\"}],"
    "\"partitions\":{\"count\":2,\"key\":\"user_id\"}}";

static int setup_sk(void **state)
{
    sl_config *cfg = sl_calloc(1, sizeof(*cfg));
    sl_spec *spec;
    sl_err err;
    if (sl_spec_parse(SPEC_SK, strlen(SPEC_SK), "test", &spec, &err) != 0) {
        fprintf(stderr, "spec: %s\n", err.msg);
        return -1;
    }
    cfg->datasources[cfg->ndatasources++] = spec;
    *state = cfg;
    return 0;
}

#define SK_HEAD "{\"queryType\":\"timeseries\",\"dataSource\":\"sk\"," IV ","

static void sketch_plans(void **state)
{
    sl_native *q = parse_ok(
        state, SK_HEAD
        "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"
        "{\"type\":\"hyperUnique\",\"name\":\"hu\",\"fieldName\":\"users\"},"
        "{\"type\":\"HLLSketchMerge\",\"name\":\"hm\",\"fieldName\":\"users\",\"lgK\":12,"
        "\"tgtHllType\":\"HLL_4\",\"round\":true},"
        "{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[\"country\",{\"type\":"
        "\"default\",\"dimension\":\"page\"}],\"byRow\":true},"
        "{\"type\":\"filtered\",\"filter\":{\"type\":\"selector\",\"dimension\":\"page\","
        "\"value\":\"/a\"},\"aggregator\":{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\","
        "\"fieldName\":\"latency\",\"k\":256}},"
        "{\"type\":\"HLLSketchBuild\",\"name\":\"hb\",\"fieldName\":\"page\"}],"
        "\"postAggregations\":["
        "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p95\",\"field\":{\"type\":"
        "\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":0.95},"
        "{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":\"ps\",\"field\":{\"type\":"
        "\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5,0.99,1]},"
        "{\"type\":\"hyperUniqueCardinality\",\"name\":\"huc\",\"fieldName\":\"hu\"},"
        "{\"type\":\"HLLSketchEstimate\",\"name\":\"he\",\"field\":{\"type\":"
        "\"finalizingFieldAccess\",\"fieldName\":\"c\"},\"round\":true},"
        "{\"type\":\"arithmetic\",\"name\":\"per_user\",\"fn\":\"/\",\"fields\":[{\"type\":"
        "\"fieldAccess\",\"fieldName\":\"n\"},{\"type\":\"hyperUniqueCardinality\","
        "\"fieldName\":\"hu\"}]}]}");
    assert_int_equal(q->naggs, 6);
    assert_int_equal(q->nsketch, 5);
    assert_int_equal(q->aggs[0].sketch, -1);
    assert_int_equal(q->aggs[1].op, SL_AGG_HLL);
    assert_int_equal(q->aggs[1].src, 0); /* users is metric 0 */
    assert_false(q->aggs[1].is_long);    /* hyperUnique: a double */
    assert_int_equal(q->aggs[1].sketch, 0);
    assert_int_equal(q->aggs[2].op, SL_AGG_HLL);
    assert_true(q->aggs[2].is_long); /* round: true */
    assert_int_equal(q->aggs[3].op, SL_AGG_CARD);
    assert_true(q->aggs[3].by_row);
    assert_int_equal(q->aggs[3].nfields, 2);
    assert_int_equal(q->aggs[3].fields[0], 1); /* country */
    assert_int_equal(q->aggs[3].fields[1], 0); /* page */
    assert_int_equal(q->aggs[4].op, SL_AGG_DDS);
    assert_int_equal(q->aggs[4].src, 2); /* latency is metric 2 */
    assert_true(q->aggs[4].is_long);     /* alone: the number of values */
    assert_non_null(q->aggs[4].filter);
    assert_string_equal(q->aggs[4].name, "q");
    assert_int_equal(q->aggs[5].op, SL_AGG_CARD); /* HLLSketchBuild of a dimension */
    assert_int_equal(q->aggs[5].nfields, 1);
    assert_int_equal(q->aggs[5].fields[0], 0);
    assert_int_equal(q->npost, 5);
    assert_int_equal(q->post[0]->type, SL_POST_QUANTILE);
    assert_int_equal(q->post[0]->ref, 4);
    assert_true(q->post[0]->value == 0.95);
    assert_int_equal(q->post[1]->type, SL_POST_QUANTILES);
    assert_true(q->post[1]->is_array);
    assert_int_equal(q->post[1]->nfractions, 3);
    assert_true(q->post[1]->fractions[1] == 0.99 && q->post[1]->fractions[2] == 1.0);
    assert_int_equal(q->narr, 3);
    assert_true(sl_native_column_is_array(q, q->naggs + 1));
    assert_false(sl_native_column_is_array(q, q->naggs));
    assert_int_equal(q->post[2]->type, SL_POST_ESTIMATE);
    assert_int_equal(q->post[2]->ref, 1);
    assert_false(q->post[2]->is_long);
    assert_int_equal(q->post[3]->type, SL_POST_ESTIMATE);
    assert_int_equal(q->post[3]->ref, 3);
    assert_true(q->post[3]->is_long);
    assert_int_equal(q->post[4]->fields[1]->type, SL_POST_ESTIMATE);
    sl_native_free(q);

    /* topN ranked by an estimate; groupBy having and limitSpec on one */
    q = parse_ok(state, "{\"queryType\":\"topN\",\"dataSource\":\"sk\"," IV
                        ",\"dimension\":\"page\",\"threshold\":3,\"metric\":\"u\","
                        "\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\","
                        "\"fieldName\":\"users\"}]}");
    assert_int_equal(q->metric.col, 0);
    sl_native_free(q);
    q = parse_ok(state, "{\"queryType\":\"groupBy\",\"dataSource\":\"sk\"," IV
                        ",\"dimensions\":[\"page\"],\"aggregations\":[{\"type\":"
                        "\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\"}],"
                        "\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantile\","
                        "\"name\":\"p\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},"
                        "\"fraction\":0}],\"having\":{\"type\":\"greaterThan\",\"aggregation\":"
                        "\"p\",\"value\":10},\"limitSpec\":{\"type\":\"default\",\"limit\":2,"
                        "\"columns\":[{\"dimension\":\"p\",\"direction\":\"descending\"}]}}");
    assert_int_equal(q->having->col, 1);
    assert_int_equal(q->orderby[0].index, 1);
    sl_native_free(q);
}

static void sketch_parse_errors(void **state)
{
#define AGG1(a) SK_HEAD "\"aggregations\":[" a "]}"
#define QAGG "{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\"}"
#define HAGG "{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"users\"}"
#define POST1(aggs, p) SK_HEAD "\"aggregations\":[" aggs "],\"postAggregations\":[" p "]}"
    static const struct {
        const char *json;
        int code;
        const char *msg;
    } cases[] = {
        /* a sketch aggregator on the wrong kind of column */
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"lat_sum\"}"), SL_EPARSE,
         "aggregations[0].fieldName: \"lat_sum\" is a sum metric of datasource \"sk\"; a "
         "HLLSketchMerge aggregator reads a distinct metric: users"},
        {AGG1("{\"type\":\"hyperUnique\",\"name\":\"h\",\"fieldName\":\"latency\"}"), SL_EPARSE,
         "\"latency\" is a quantiles (DDSketch) metric of datasource \"sk\""},
        {AGG1("{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"users\"}"),
         SL_EPARSE,
         "\"users\" is a distinct (HyperLogLog sketch) metric of datasource \"sk\"; a "
         "quantilesDoublesSketch aggregator reads a quantiles metric: latency"},
        {AGG1("{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"lat\"}"),
         SL_EPARSE,
         "\"lat\" is an input field that rollup did not keep; its quantiles sketch is the "
         "metric \"latency\""},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"user_id\"}"), SL_EPARSE,
         "its distinct sketch is the metric \"users\""},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"count\"}"), SL_EPARSE,
         "\"count\" is the event count of datasource \"sk\""},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"nope\"}"), SL_EPARSE,
         "\"nope\" is not a stored metric of datasource \"sk\"; distinct metrics: users"},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\"}"), SL_EPARSE,
         "aggregations[0].fieldName: required"},
        /* a number aggregator on a sketch metric */
        {AGG1("{\"type\":\"longSum\",\"name\":\"s\",\"fieldName\":\"users\"}"), SL_EPARSE,
         "\"users\" is a distinct (HyperLogLog sketch) metric: it holds sketches, not numbers; "
         "read it with hyperUnique or HLLSketchMerge, not longSum"},
        {AGG1("{\"type\":\"doubleMax\",\"name\":\"s\",\"fieldName\":\"latency\"}"), SL_EPARSE,
         "read it with quantilesDoublesSketch"},
        /* parameters */
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"users\","
              "\"lgK\":30}"),
         SL_EPARSE, "aggregations[0].lgK: 30 is out of range [4, 21]"},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"users\","
              "\"tgtHllType\":\"HLL_5\"}"),
         SL_EPARSE, "aggregations[0].tgtHllType: expected HLL_4, HLL_6 or HLL_8"},
        {AGG1("{\"type\":\"HLLSketchMerge\",\"name\":\"h\",\"fieldName\":\"users\","
              "\"shouldFinalize\":false}"),
         SL_EINVAL,
         "aggregations[0].shouldFinalize: false (returning the sketch itself) is not "
         "supported"},
        {AGG1("{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\","
              "\"k\":100}"),
         SL_EPARSE, "aggregations[0].k: must be a power of 2 from 2 to 32768, got 100"},
        {AGG1("{\"type\":\"hyperUnique\",\"name\":\"h\",\"fieldName\":\"users\","
              "\"lgK\":12}"),
         SL_EPARSE, "aggregations[0]: unknown field \"lgK\""},
        {AGG1("{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\","
              "\"round\":true}"),
         SL_EPARSE, "aggregations[0]: unknown field \"round\""},
        /* cardinality */
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[]}"), SL_EPARSE,
         "aggregations[0].fields: expected a non-empty array of dimension names, got an empty "
         "array"},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\"}"), SL_EPARSE,
         "aggregations[0].fields: expected a non-empty array"},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[\"page\",\"user_id\"]}"),
         SL_EPARSE,
         "aggregations[0].fields[1]: \"user_id\" is not a dimension of datasource \"sk\"; its "
         "distinct sketch is the metric \"users\""},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[\"users\"]}"), SL_EPARSE,
         "\"users\" is a distinct metric, not a dimension"},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[\"lat_sum\"]}"), SL_EPARSE,
         "\"lat_sum\" is not a dimension of datasource \"sk\""},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[3]}"), SL_EPARSE,
         "aggregations[0].fields[0]: expected a dimension name or a dimension spec, got a number"},
        {AGG1("{\"type\":\"cardinality\",\"name\":\"c\",\"fields\":[\"page\"],"
              "\"byRow\":3}"),
         SL_EPARSE, "aggregations[0].byRow: expected true or false"},
        /* post-aggregators */
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":1.5}"),
         SL_EPARSE, "postAggregations[0].fraction: the fraction must be between 0 and 1, got 1.5"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":-0.1}"),
         SL_EPARSE, "the fraction must be between 0 and 1, got -0.1"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"}}"),
         SL_EPARSE, "postAggregations[0].fraction: expected a fraction between 0 and 1, got null"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5,2]}"),
         SL_EPARSE, "postAggregations[0].fractions[1]: the fraction must be between 0 and 1"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[]}"),
         SL_EPARSE, "postAggregations[0].fractions: expected a non-empty array"},
        {POST1("{\"type\":\"count\",\"name\":\"n\"}",
               "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":"
               "{\"type\":\"fieldAccess\",\"fieldName\":\"n\"},\"fraction\":0.5}"),
         SL_EPARSE,
         "postAggregations[0].field.fieldName: \"n\" is a count aggregator, not a sketch of "
         "quantiles; quantilesDoublesSketchToQuantile reads a quantilesDoublesSketch aggregator"},
        {POST1(HAGG, "{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"h\"},\"fraction\":0.5}"),
         SL_EPARSE, "\"h\" is a HLLSketchMerge aggregator, not a sketch of quantiles"},
        {POST1(QAGG, "{\"type\":\"HLLSketchEstimate\",\"name\":\"e\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"}}"),
         SL_EPARSE,
         "\"q\" is a quantilesDoublesSketch aggregator, not a sketch of distinct values; "
         "HLLSketchEstimate reads a hyperUnique, HLLSketchMerge or cardinality aggregator"},
        {POST1(HAGG, "{\"type\":\"hyperUniqueCardinality\",\"name\":\"e\",\"fieldName\":\"x\"}"),
         SL_EPARSE,
         "postAggregations[0].fieldName: \"x\" is not an aggregator of this query; "
         "available: h"},
        {POST1(HAGG, "{\"type\":\"HLLSketchEstimate\",\"name\":\"e\",\"field\":"
                     "{\"type\":\"constant\",\"value\":1}}"),
         SL_EPARSE,
         "postAggregations[0].field.type: HLLSketchEstimate reads a sketch: expected a "
         "fieldAccess of a hyperUnique, HLLSketchMerge or cardinality aggregator, got a "
         "\"constant\" post-aggregator"},
        {POST1(HAGG, "{\"type\":\"HLLSketchEstimate\",\"name\":\"e\"}"), SL_EPARSE,
         "postAggregations[0].field: required"},
        {POST1(HAGG, "{\"type\":\"hyperUniqueCardinality\",\"name\":\"e\",\"fieldName\":\"h\"},"
                     "{\"type\":\"HLLSketchEstimate\",\"name\":\"f\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"e\"}}"),
         SL_EPARSE, "postAggregations[1].field.fieldName: \"e\" is a post-aggregator"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToRank\",\"name\":\"r\"}"), SL_EINVAL,
         "postAggregations[0].type: post-aggregator type \"quantilesDoublesSketchToRank\" is not "
         "supported"},
        /* arrays cannot be compared or computed with */
        {POST1(QAGG, "{\"type\":\"arithmetic\",\"name\":\"a\",\"fn\":\"+\",\"fields\":["
                     "{\"type\":\"quantilesDoublesSketchToQuantiles\",\"field\":{\"type\":"
                     "\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5]},"
                     "{\"type\":\"constant\",\"value\":1}]}"),
         SL_EPARSE, "cannot be an input of another post-aggregator"},
        {POST1(QAGG, "{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":\"ps\",\"field\":"
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5]},"
                     "{\"type\":\"arithmetic\",\"name\":\"a\",\"fn\":\"+\",\"fields\":["
                     "{\"type\":\"fieldAccess\",\"fieldName\":\"ps\"},"
                     "{\"type\":\"constant\",\"value\":1}]}"),
         SL_EPARSE,
         "postAggregations[1].fields[0]: \"ps\" is an array of quantiles "
         "(quantilesDoublesSketchToQuantiles) and cannot be an input of arithmetic"},
        {"{\"queryType\":\"topN\",\"dataSource\":\"sk\"," IV
         ",\"dimension\":\"page\",\"threshold\":3,\"metric\":\"ps\",\"aggregations\":[" QAGG
         "],\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":"
         "\"ps\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5]}]}",
         SL_EPARSE, "metric: \"ps\" is an array of quantiles"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"sk\"," IV
         ",\"dimensions\":[\"page\"],\"aggregations\":[" QAGG
         "],\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":"
         "\"ps\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5]}],"
         "\"having\":{\"type\":\"lessThan\",\"aggregation\":\"ps\",\"value\":1}}",
         SL_EPARSE, "having.aggregation: \"ps\" is an array of quantiles"},
        {"{\"queryType\":\"groupBy\",\"dataSource\":\"sk\"," IV
         ",\"dimensions\":[\"page\"],\"aggregations\":[" QAGG
         "],\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":"
         "\"ps\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0.5]}],"
         "\"limitSpec\":{\"type\":\"default\",\"columns\":[\"ps\"]}}",
         SL_EPARSE, "limitSpec.columns[0]: \"ps\" is an array of quantiles"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_fails(state, cases[i].json, cases[i].code, cases[i].msg);
    }
#undef AGG1
#undef QAGG
#undef HAGG
#undef POST1
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(timeseries_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(interval_forms, setup, teardown),
    cmocka_unit_test_setup_teardown(granularity_forms, setup, teardown),
    cmocka_unit_test_setup_teardown(topn_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(groupby_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(timeboundary_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(filter_tree, setup, teardown),
    cmocka_unit_test_setup_teardown(filter_matching, setup, teardown),
    cmocka_unit_test_setup_teardown(parse_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(hostile_bodies, setup, teardown),
    cmocka_unit_test_setup_teardown(sketch_plans, setup_sk, teardown),
    cmocka_unit_test_setup_teardown(sketch_parse_errors, setup_sk, teardown),
};

SL_TEST_MAIN(tests)
