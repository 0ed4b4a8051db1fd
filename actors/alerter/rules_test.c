/* Unit tests for actors/alerter/rules.c: the shipped rules load; bad rules are refused
 * with the file, the key and the reason; query bodies; result parsing; conditions
 * against values worked out by hand; the state machine's transitions and which of them
 * notify. */
#include "sl_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "rules.h"

#define MIN 60000LL
/* 2025-06-11T10:00:00Z */
#define T10 1749636000000LL

static sl_alert_rule *parse_ok(const char *json)
{
    sl_alert_rule *r = NULL;
    sl_err err = {0};
    if (sl_alert_rule_parse(json, strlen(json), "t.json", &r, &err) != 0) {
        fail_msg("rule did not parse: %s\n%s", err.msg, json);
    }
    return r;
}

static void parse_bad(const char *json, const char *key, const char *needle)
{
    sl_alert_rule *r = NULL;
    sl_err err = {0};
    int rc = sl_alert_rule_parse(json, strlen(json), "t.json", &r, &err);
    assert_int_equal(rc, SL_ECONFIG);
    assert_null(r);
    char k[100];
    snprintf(k, sizeof(k), "key \"%s\"", key);
    if (strstr(err.msg, "t.json") == NULL || (key[0] != '\0' && strstr(err.msg, k) == NULL) ||
        strstr(err.msg, needle) == NULL) {
        fail_msg("error \"%s\" does not name the file, key \"%s\" and \"%s\"", err.msg, key,
                 needle);
    }
}

#define NATIVE_Q                                                                                   \
    "\"query\":{\"queryType\":\"timeseries\",\"dataSource\":\"page_events\",\"filter\":"           \
    "{\"type\":\"selector\",\"dimension\":\"event_type\",\"value\":\"page_view\"},"                \
    "\"aggregations\":[{\"type\":\"count\",\"name\":\"views\"}],\"intervals\":[\"x\"]}"

static void test_shipped_rules_load(void **state)
{
    sl_alert_rule **rules;
    int n;
    sl_err err = {0};
    if (sl_alert_rules_load(SL_SOURCE_DIR "/configs/alerts", &rules, &n, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(n, 2);
    /* Sorted by file name. */
    assert_string_equal(rules[0]->name, "page_views_drop");
    assert_int_equal(rules[0]->cond.type, SL_COND_DROP);
    assert_true(rules[0]->cond.percent == 50);
    assert_int_equal(rules[0]->cond.baseline_windows, 10);
    assert_int_equal(rules[0]->for_ms, 2 * MIN);
    assert_null(rules[0]->webhook);
    assert_string_equal(rules[0]->datasource, "page_events");
    assert_string_equal(rules[1]->name, "page_views_spike");
    assert_int_equal(rules[1]->cond.type, SL_COND_SPIKE);
    assert_true(rules[1]->cond.percent == 300);
    assert_false(rules[1]->data_clock);
    assert_int_equal(rules[1]->notify_states, 1u << SL_ALERT_FIRING | 1u << SL_ALERT_RESOLVED);
    sl_alert_rules_free(rules, n);
    /* A missing directory means no rules. */
    assert_int_equal(sl_alert_rules_load("/nonexistent/alerts", &rules, &n, &err), 0);
    assert_int_equal(n, 0);
    sl_alert_rules_free(rules, n);
}

static void test_bad_rules_refused(void **state)
{
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1},"
              "\"colour\":1}",
              "colour", "unknown key");
    parse_bad("{" NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1}}", "name",
              "non-empty string");
    parse_bad("{\"name\":\"a b\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1}}",
              "name", "may only contain");
    parse_bad("{\"name\":\"a\",\"condition\":{\"type\":\"threshold\",\"above\":1}}", "query",
              "exactly one of");
    parse_bad("{\"name\":\"a\",\"query\":{\"queryType\":\"topN\"},\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "query.queryType", "timeseries");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"value\":\"nope\",\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "value", "not the name of an aggregation");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"window\":\"1m\",\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "window", "ISO 8601 duration");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\"}}", "condition",
              "needs \"above\", \"below\" or both");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"drop\",\"below_percent\":50,"
              "\"zscore\":3}}",
              "condition", "exactly one of \"below_percent\" and \"zscore\"");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"drop\",\"below_percent\":"
              "150}}",
              "condition.below_percent", "out of range");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"spike\",\"below_percent\":"
              "50}}",
              "condition.below_percent", "takes \"above_percent\"");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"rise\"}}", "condition.type",
              "threshold, drop, spike, no_data");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"clock\":\"data\",\"condition\":{\"type\":"
              "\"no_data\",\"duration\":\"PT5M\"}}",
              "clock", "wall clock");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"clock\":\"Wall\",\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "clock", "must be \"wall\" or \"data\"");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"missing\":0,\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "missing", "must be \"zero\" or \"no_data\"");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"every\":\"PT0S\",\"condition\":{\"type\":"
              "\"threshold\",\"above\":1}}",
              "every", "shorter than the minimum of 100 ms");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"no_data\",\"duration\":"
              "\"PT90S\"}}",
              "condition.duration", "multiple of the window");
    parse_bad("{\"name\":\"a\",\"sql\":\"SELECT COUNT(*) AS value FROM t WHERE __time >= ?\","
              "\"condition\":{\"type\":\"threshold\",\"above\":1}}",
              "sql", "exactly two ? placeholders");
    parse_bad("{\"name\":\"a\",\"sql\":\"SELECT 1 AS value FROM t WHERE __time >= ? AND __time < "
              "?\",\"clock\":\"data\",\"condition\":{\"type\":\"threshold\",\"above\":1}}",
              "datasource", "must name its datasource");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1},"
              "\"notify\":{\"on\":[\"firing\",\"loud\"]}}",
              "notify.on", "item 1");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1},"
              "\"notify\":{\"webhook\":\"ftp://x/\"}}",
              "notify.webhook", "http:// or https://");
    parse_bad("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\",\"above\":1},"
              "\"labels\":{\"x\":1}}",
              "labels.x", "must be a string");
    parse_bad("{\"name\": ", "", "invalid JSON");
}

/* Parses a rule and checks its periods and two-word keys. */
static void expect_timing(const char *json, int64_t window_ms, int64_t every_ms, int64_t delay_ms,
                          int64_t for_ms, bool data_clock, bool missing_zero)
{
    sl_alert_rule *r = parse_ok(json);
    assert_int_equal(r->window_ms, window_ms);
    assert_int_equal(r->every_ms, every_ms);
    assert_int_equal(r->delay_ms, delay_ms);
    assert_int_equal(r->for_ms, for_ms);
    assert_int_equal(r->data_clock, data_clock);
    assert_int_equal(r->missing_zero, missing_zero);
    sl_alert_rule_free(r);
}

/* The periods and two-word keys a rule may leave out take their defaults; the delay's
 * default depends on the clock. */
static void test_rule_defaults(void **state)
{
    expect_timing("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\","
                  "\"above\":1}}",
                  60000, 10000, 30000, 0, false, true);
    expect_timing("{\"name\":\"a\"," NATIVE_Q ",\"clock\":\"data\",\"missing\":\"no_data\","
                  "\"window\":\"PT5M\",\"every\":\"PT2S\",\"for\":\"PT0S\","
                  "\"condition\":{\"type\":\"threshold\",\"above\":1}}",
                  5 * MIN, 2000, 0, 0, true, false);
    expect_timing("{\"name\":\"a\"," NATIVE_Q ",\"clock\":\"wall\",\"missing\":\"zero\","
                  "\"delay\":\"PT1M\",\"for\":\"PT3M\",\"condition\":{\"type\":\"threshold\","
                  "\"above\":1}}",
                  MIN, 10000, MIN, 3 * MIN, false, true);
}

static void test_native_body(void **state)
{
    sl_alert_rule *r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"window\":\"PT5M\",\"condition\":"
                                "{\"type\":\"threshold\",\"below\":10}}");
    assert_string_equal(r->value, "views");
    sl_buf b;
    sl_buf_init(&b);
    sl_alert_native_body(r, T10, T10 + 15 * MIN, &b);
    sl_buf_append(&b, "", 1);
    /* The rule's intervals are replaced, everything else kept. */
    assert_string_equal(
        b.data, "{\"queryType\":\"timeseries\",\"dataSource\":\"page_events\",\"filter\":{\"type\":"
                "\"selector\",\"dimension\":\"event_type\",\"value\":\"page_view\"},"
                "\"aggregations\":[{\"type\":\"count\",\"name\":\"views\"}],\"intervals\":["
                "\"2025-06-11T10:00:00.000Z/2025-06-11T10:15:00.000Z\"],\"granularity\":{"
                "\"type\":\"duration\",\"duration\":300000}}");
    sl_buf_reset(&b);
    sl_alert_boundary_body("page_events", &b);
    sl_buf_append(&b, "", 1);
    assert_string_equal(b.data, "{\"queryType\":\"timeBoundary\",\"bound\":\"maxTime\","
                                "\"dataSource\":\"page_events\"}");
    sl_buf_fini(&b);
    sl_alert_rule_free(r);

    r = parse_ok("{\"name\":\"s\",\"sql\":\"SELECT COUNT(*) AS n FROM page_events WHERE __time "
                 ">= ? AND __time < ?\",\"value\":\"n\",\"condition\":{\"type\":\"threshold\","
                 "\"above\":5}}");
    sl_buf_init(&b);
    sl_alert_sql_body(r, T10, T10 + MIN, &b);
    sl_buf_append(&b, "", 1);
    assert_string_equal(b.data,
                        "{\"query\":\"SELECT COUNT(*) AS n FROM page_events WHERE __time >= ? AND "
                        "__time < ?\",\"resultFormat\":\"object\",\"parameters\":[{\"type\":"
                        "\"TIMESTAMP\",\"value\":\"2025-06-11T10:00:00.000Z\"},{\"type\":"
                        "\"TIMESTAMP\",\"value\":\"2025-06-11T10:01:00.000Z\"}]}");
    double v;
    sl_err err = {0};
    const char *res = "[{\"n\":42}]";
    assert_int_equal(sl_alert_parse_sql(r, res, strlen(res), &v, &err), 0);
    assert_true(v == 42);
    assert_int_equal(sl_alert_parse_sql(r, "[]", 2, &v, &err), 0);
    assert_true(isnan(v));
    res = "[{\"m\":1}]";
    assert_int_equal(sl_alert_parse_sql(r, res, strlen(res), &v, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "no column \"n\""));
    sl_buf_fini(&b);
    sl_alert_rule_free(r);
}

static void test_parse_results(void **state)
{
    sl_alert_rule *r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"drop\","
                                "\"below_percent\":50,\"baseline_windows\":3}}");
    assert_int_equal(sl_alert_nwindows(r), 4);
    double v[4];
    sl_err err = {0};
    /* Window 1 missing, window 2 null, a row outside the windows is ignored. */
    const char *body = "[{\"timestamp\":\"2025-06-11T10:00:00.000Z\",\"result\":{\"views\":10}},"
                       "{\"timestamp\":\"2025-06-11T10:02:00.000Z\",\"result\":{\"views\":null}},"
                       "{\"timestamp\":\"2025-06-11T10:03:00.000Z\",\"result\":{\"views\":2.5}},"
                       "{\"timestamp\":\"2025-06-11T10:09:00.000Z\",\"result\":{\"views\":7}}]";
    assert_int_equal(sl_alert_parse_series(r, body, strlen(body), T10, 4, v, &err), 0);
    assert_true(v[0] == 10);
    assert_true(isnan(v[1]) && isnan(v[2]));
    assert_true(v[3] == 2.5);
    const char *bad1 = "{\"error\":\"x\"}";
    assert_int_equal(sl_alert_parse_series(r, bad1, strlen(bad1), T10, 4, v, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "the query result is not an array of rows"));
    const char *bad2 = "[{\"timestamp\":\"2025-06-11T10:00:00.000Z\",\"result\":{\"other\":1}}]";
    assert_int_equal(sl_alert_parse_series(r, bad2, strlen(bad2), T10, 4, v, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "no field \"views\""));
    assert_int_equal(sl_alert_parse_series(r, "[1,", 3, T10, 4, v, &err), SL_EPARSE);
    int64_t maxt;
    const char *tb = "[{\"timestamp\":\"2025-06-11T10:07:00.000Z\",\"result\":{\"maxTime\":"
                     "\"2025-06-11T10:07:00.000Z\"}}]";
    assert_int_equal(sl_alert_parse_boundary(tb, strlen(tb), &maxt, &err), 0);
    assert_true(maxt == T10 + 7 * MIN);
    assert_int_equal(sl_alert_parse_boundary("[]", 2, &maxt, &err), SL_ENOTFOUND);
    assert_int_equal(sl_alert_parse_boundary("{}", 2, &maxt, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "the timeBoundary result is not an array of rows"));
    assert_int_equal(sl_alert_parse_boundary("[", 1, &maxt, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "the timeBoundary result is not JSON: "));
    sl_alert_rule_free(r);
}

static void test_conditions(void **state)
{
    sl_alert_eval ev;
    /* Drop, percent: baseline mean (100+80+120)/3 = 100; 49 < 50 fires, 50 does not. */
    sl_alert_rule *r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"drop\","
                                "\"below_percent\":50,\"baseline_windows\":3}}");
    sl_alert_condition(r, (const double[]){100, 80, 120, 49}, 4, &ev);
    assert_true(ev.known && ev.cond);
    assert_true(ev.value == 49 && ev.baseline == 100);
    sl_alert_condition(r, (const double[]){100, 80, 120, 50}, 4, &ev);
    assert_true(ev.known && !ev.cond);
    /* A missing current window counts as 0 (missing: zero): a total outage is a drop. */
    sl_alert_condition(r, (const double[]){100, 80, 120, NAN}, 4, &ev);
    assert_true(ev.known && ev.cond && ev.value == 0);
    /* Baseline windows without data: no verdict until min_windows (3) have data. */
    sl_alert_condition(r, (const double[]){NAN, 80, 120, 1}, 4, &ev);
    assert_false(ev.known);
    assert_non_null(strstr(ev.detail, "only 2 of 3"));
    sl_alert_rule_free(r);

    /* Spike with min_windows 2 and missing windows as zeros: mean (0+60+90)/3 = 50. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"spike\","
                 "\"above_percent\":200,\"baseline_windows\":3,\"min_windows\":2,"
                 "\"min_baseline\":40}}");
    sl_alert_condition(r, (const double[]){NAN, 60, 90, 101}, 4, &ev);
    assert_true(ev.known && ev.cond && ev.baseline == 50);
    sl_alert_condition(r, (const double[]){NAN, 60, 90, 100}, 4, &ev);
    assert_true(ev.known && !ev.cond);
    /* Below min_baseline: no verdict. */
    sl_alert_condition(r, (const double[]){NAN, 30, 60, 1000}, 4, &ev);
    assert_false(ev.known);
    sl_alert_rule_free(r);

    /* z-score: baseline 10, 20, 30, 40 -> mean 25, population sd sqrt(125) = 11.18..;
     * spike over 2 sd: above 47.36; 48 fires, 47 does not. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"spike\",\"zscore\":2,"
                 "\"baseline_windows\":4}}");
    sl_alert_condition(r, (const double[]){10, 20, 30, 40, 48}, 5, &ev);
    assert_true(ev.known && ev.cond && ev.baseline == 25);
    sl_alert_condition(r, (const double[]){10, 20, 30, 40, 47}, 5, &ev);
    assert_true(ev.known && !ev.cond);
    sl_alert_rule_free(r);
    /* Drop by z-score: below 25 - 2 * 11.18 = 2.64. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"drop\",\"zscore\":2,"
                 "\"baseline_windows\":4}}");
    sl_alert_condition(r, (const double[]){10, 20, 30, 40, 2}, 5, &ev);
    assert_true(ev.known && ev.cond);
    sl_alert_condition(r, (const double[]){10, 20, 30, 40, 3}, 5, &ev);
    assert_true(ev.known && !ev.cond);
    sl_alert_rule_free(r);

    /* Threshold with missing "no_data": an empty window has no verdict. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"missing\":\"no_data\",\"condition\":{\"type\":"
                 "\"threshold\",\"above\":5,\"below\":1}}");
    sl_alert_condition(r, (const double[]){6}, 1, &ev);
    assert_true(ev.known && ev.cond);
    sl_alert_condition(r, (const double[]){0.5}, 1, &ev);
    assert_true(ev.known && ev.cond);
    sl_alert_condition(r, (const double[]){3}, 1, &ev);
    assert_true(ev.known && !ev.cond);
    sl_alert_condition(r, (const double[]){NAN}, 1, &ev);
    assert_false(ev.known);
    sl_alert_rule_free(r);

    /* No data for 3 minutes = 3 windows. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"no_data\",\"duration\":"
                 "\"PT3M\"}}");
    assert_int_equal(sl_alert_nwindows(r), 3);
    sl_alert_condition(r, (const double[]){NAN, NAN, NAN}, 3, &ev);
    assert_true(ev.known && ev.cond);
    sl_alert_condition(r, (const double[]){NAN, 0, NAN}, 3, &ev);
    assert_true(ev.known && !ev.cond);
    sl_alert_rule_free(r);
}

static sl_alert_eval verdict(bool known, bool cond)
{
    sl_alert_eval ev = {.known = known, .cond = cond, .value = 1, .baseline = NAN};
    return ev;
}

static void expect(sl_alert_change ch, bool changed, int from, int to, bool notify)
{
    if (ch.changed != changed || (changed && (ch.from != from || ch.to != to)) ||
        ch.notify != notify) {
        fail_msg("got changed=%d %s->%s notify=%d, want changed=%d %s->%s notify=%d", ch.changed,
                 sl_alert_state_name(ch.from), sl_alert_state_name(ch.to), ch.notify, changed,
                 sl_alert_state_name(from), sl_alert_state_name(to), notify);
    }
}

static void test_state_machine(void **state)
{
    /* for = 2 minutes; notifications on every state. */
    sl_alert_rule *r = parse_ok(
        "{\"name\":\"a\"," NATIVE_Q ",\"for\":\"PT2M\",\"condition\":{\"type\":\"threshold\","
        "\"above\":1},\"notify\":{\"webhook\":\"http://127.0.0.1:9/\",\"on\":[\"ok\",\"pending\","
        "\"firing\",\"resolved\",\"error\"]}}");
    sl_alert_status st = {0};
    sl_alert_eval t = verdict(true, true), f = verdict(true, false), u = verdict(false, false);
    expect(sl_alert_step(r, &st, false, &f, T10), false, 0, 0, false);
    expect(sl_alert_step(r, &st, false, &t, T10 + MIN), true, SL_ALERT_OK, SL_ALERT_PENDING, true);
    assert_true(st.since_ms == T10 + MIN && st.pending_since == T10 + MIN);
    /* Still pending after 1 minute; firing once 2 minutes have passed. */
    expect(sl_alert_step(r, &st, false, &t, T10 + 2 * MIN), false, 0, 0, false);
    /* An unknown verdict keeps the state. */
    expect(sl_alert_step(r, &st, false, &u, T10 + 2 * MIN + 1), false, 0, 0, false);
    expect(sl_alert_step(r, &st, false, &t, T10 + 3 * MIN), true, SL_ALERT_PENDING, SL_ALERT_FIRING,
           true);
    assert_true(st.since_ms == T10 + 3 * MIN);
    expect(sl_alert_step(r, &st, false, &t, T10 + 4 * MIN), false, 0, 0, false);
    /* An error interrupts; coming back to the same state notifies nothing. */
    expect(sl_alert_step(r, &st, true, NULL, T10 + 5 * MIN), true, SL_ALERT_FIRING, SL_ALERT_ERROR,
           true);
    expect(sl_alert_step(r, &st, true, NULL, T10 + 6 * MIN), false, 0, 0, false);
    expect(sl_alert_step(r, &st, false, &t, T10 + 7 * MIN), true, SL_ALERT_ERROR, SL_ALERT_FIRING,
           false);
    expect(sl_alert_step(r, &st, false, &f, T10 + 8 * MIN), true, SL_ALERT_FIRING,
           SL_ALERT_RESOLVED, true);
    /* Resolved -> pending -> (condition gone before `for`) ok. */
    expect(sl_alert_step(r, &st, false, &t, T10 + 9 * MIN), true, SL_ALERT_RESOLVED,
           SL_ALERT_PENDING, true);
    expect(sl_alert_step(r, &st, false, &f, T10 + 10 * MIN), true, SL_ALERT_PENDING, SL_ALERT_OK,
           true);
    /* An error that ends in a different state than it interrupted does notify. */
    expect(sl_alert_step(r, &st, true, NULL, T10 + 11 * MIN), true, SL_ALERT_OK, SL_ALERT_ERROR,
           true);
    expect(sl_alert_step(r, &st, false, &t, T10 + 12 * MIN), true, SL_ALERT_ERROR, SL_ALERT_PENDING,
           true);
    sl_alert_rule_free(r);

    /* for = 0 fires at once; the default notifications are firing and resolved only. */
    r = parse_ok("{\"name\":\"a\"," NATIVE_Q ",\"condition\":{\"type\":\"threshold\","
                 "\"above\":1},\"notify\":{\"webhook\":\"http://127.0.0.1:9/\"}}");
    memset(&st, 0, sizeof(st));
    expect(sl_alert_step(r, &st, false, &t, T10), true, SL_ALERT_OK, SL_ALERT_FIRING, true);
    expect(sl_alert_step(r, &st, true, NULL, T10 + MIN), true, SL_ALERT_FIRING, SL_ALERT_ERROR,
           false);
    expect(sl_alert_step(r, &st, false, &f, T10 + 2 * MIN), true, SL_ALERT_ERROR, SL_ALERT_RESOLVED,
           true);
    expect(sl_alert_step(r, &st, false, &f, T10 + 3 * MIN), false, 0, 0, false);
    sl_alert_rule_free(r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_shipped_rules_load), cmocka_unit_test(test_bad_rules_refused),
    cmocka_unit_test(test_rule_defaults),      cmocka_unit_test(test_native_body),
    cmocka_unit_test(test_parse_results),      cmocka_unit_test(test_conditions),
    cmocka_unit_test(test_state_machine),
};

SL_TEST_MAIN(tests)
