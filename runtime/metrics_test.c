/* Unit tests for runtime/metrics.c: the text exposition format byte for byte (escaping,
 * const labels, histogram buckets), exact totals under concurrent updates, value
 * formatting, the process gauges against /proc read independently, the lag marks,
 * the METRICS / ALERTS messages and the docs listing every metric. */
#include "sl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

static char *render(sl_metrics *m, const char *const *labels)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_metrics_render(m, labels, &b);
    sl_buf_append(&b, "", 1);
    return b.data;
}

static void test_render_counter_gauge(void **state)
{
    sl_metrics *m = sl_metrics_new();
    sl_metric *c = sl_metrics_declare(m, SL_METRICS_COUNTER, "t_events_total",
                                      "Events, with a \\ and a\nnewline.", "ds,reason", NULL, 0,
                                      SL_METRICS_PROC);
    sl_metric *g =
        sl_metrics_declare(m, SL_METRICS_GAUGE, "t_lag", "Lag.", "", NULL, 0, SL_METRICS_INST);
    const char *v1[] = {"page_events", "bad \"quote\"\\ \nx"};
    const char *v2[] = {"page_events", "ok"};
    sl_series_add(sl_metrics_seriesv(c, v1), 3);
    sl_series_add(sl_metrics_seriesv(c, v2), 2.5);
    sl_series_add(sl_metrics_seriesv(c, v1), 4); /* the same series again */
    sl_series_set(sl_metrics_seriesv(g, NULL), -7);
    /* Declaring again returns the same family. */
    assert_ptr_equal(c, sl_metrics_declare(m, SL_METRICS_COUNTER, "t_events_total", "x",
                                           "ds,reason", NULL, 0, SL_METRICS_PROC));
    const char *labels[] = {"actor", "ingest", "actor_instance", "1", NULL};
    char *text = render(m, labels);
    const char *want =
        "# HELP t_events_total Events, with a \\\\ and a\\nnewline.\n"
        "# TYPE t_events_total counter\n"
        "t_events_total{actor=\"ingest\",actor_instance=\"1\",ds=\"page_events\","
        "reason=\"bad \\\"quote\\\"\\\\ \\nx\"} 7\n"
        "t_events_total{actor=\"ingest\",actor_instance=\"1\",ds=\"page_events\",reason=\"ok\"} "
        "2.5\n"
        "# HELP t_lag Lag.\n"
        "# TYPE t_lag gauge\n"
        "t_lag -7\n";
    assert_string_equal(text, want);
    free(text);
    /* Without const labels a labelless series has no braces at all. */
    text = render(m, NULL);
    assert_non_null(strstr(text, "\nt_events_total{ds=\"page_events\",reason=\"ok\"} 2.5\n"));
    free(text);
    sl_metrics_free(m);
}

static void test_render_histogram(void **state)
{
    sl_metrics *m = sl_metrics_new();
    const double bounds[] = {0.1, 1, 10};
    sl_metric *h = sl_metrics_declare(m, SL_METRICS_HISTOGRAM, "t_seconds", "Time.", "route",
                                      bounds, 3, SL_METRICS_PROC);
    const char *r[] = {"/v1/query"};
    sl_series *s = sl_metrics_seriesv(h, r);
    /* 0.1 is in the le="0.1" bucket (bounds are inclusive), 10.5 only in +Inf. */
    double obs[] = {0.05, 0.1, 0.5, 1, 2, 10.5};
    double sum = 0;
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        sl_series_observe(s, obs[i]);
        sum += obs[i];
    }
    assert_int_equal(sl_series_count(s), 6);
    assert_int_equal(sl_series_count_le(s, 0.1), 2);
    assert_int_equal(sl_series_count_le(s, 1), 4);
    assert_int_equal(sl_series_count_le(s, INFINITY), 6);
    assert_true(fabs(sl_series_value(s) - sum) < 1e-12);
    char *text = render(m, NULL);
    const char *want = "# HELP t_seconds Time.\n"
                       "# TYPE t_seconds histogram\n"
                       "t_seconds_bucket{route=\"/v1/query\",le=\"0.1\"} 2\n"
                       "t_seconds_bucket{route=\"/v1/query\",le=\"1\"} 4\n"
                       "t_seconds_bucket{route=\"/v1/query\",le=\"10\"} 5\n"
                       "t_seconds_bucket{route=\"/v1/query\",le=\"+Inf\"} 6\n"
                       "t_seconds_sum{route=\"/v1/query\"} 14.15\n"
                       "t_seconds_count{route=\"/v1/query\"} 6\n";
    assert_string_equal(text, want);
    free(text);
    sl_metrics_free(m);
}

typedef struct worker {
    sl_series *counter;
    sl_series *hist;
    int n;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        sl_series_add(w->counter, 1);
        sl_series_observe(w->hist, 0.001);
    }
    return NULL;
}

static void test_concurrent_updates_exact(void **state)
{
    sl_metrics *m = sl_metrics_new();
    sl_series *c = sl_metrics_seriesv(sl_metrics_family(m, SL_M_LOG_DUPLICATES), NULL);
    const char *r[] = {"x"};
    sl_series *h = sl_metrics_seriesv(sl_metrics_family(m, SL_M_QUERY_SECONDS), r);
    enum { THREADS = 4, N = 50000 };
    pthread_t t[THREADS];
    worker w = {c, h, N};
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_true(sl_series_value(c) == (double)(THREADS * N));
    assert_int_equal(sl_series_count(h), THREADS * N);
    assert_int_equal(sl_series_count_le(h, 0.001), THREADS * N);
    assert_int_equal(sl_series_count_le(h, 0.0005), 0);
    sl_metrics_free(m);
}

static void test_table_families(void **state)
{
    sl_metrics *m = sl_metrics_new();
    sl_metric *f = sl_metrics_family(m, SL_M_EVENTS_REJECTED);
    assert_ptr_equal(f, sl_metrics_family(m, SL_M_EVENTS_REJECTED));
    const char *v[] = {"page_events", "malformed_json"};
    sl_series_add(sl_metrics_seriesv(f, v), 2);
    /* A declared family without samples renders its HELP and TYPE only. */
    sl_metrics_family(m, SL_M_KAFKA_LAG);
    sl_metrics_family(m, SL_M_ACTOR_UP);
    sl_series_set(
        sl_metrics_seriesv(sl_metrics_family(m, SL_M_ACTOR_UP), (const char *[]){"query", "1"}), 1);
    const char *labels[] = {"actor", "ingest", "actor_instance", "0", NULL};
    char *text = render(m, labels);
    assert_non_null(strstr(text,
                           "# TYPE sluice_events_rejected_total counter\n"
                           "sluice_events_rejected_total{actor=\"ingest\",actor_instance="
                           "\"0\",datasource=\"page_events\",reason=\"malformed_json\"} 2\n"));
    assert_non_null(strstr(text, "# TYPE sluice_kafka_consumer_lag_messages gauge\n# HELP"));
    /* Instance-scoped families carry their own actor labels, not the process's. */
    assert_non_null(strstr(text, "\nsluice_actor_up{actor=\"query\",actor_instance=\"1\"} 1\n"));
    free(text);
    sl_metrics_free(m);

    /* The shorthands use the default registry. */
    SL_METRIC_ADD(SL_M_EVENTS_ACCEPTED, 5, "ds_a");
    SL_METRIC_ADD(SL_M_EVENTS_ACCEPTED, 6, "ds_a");
    SL_METRIC_SET(SL_M_LOG_BACKLOG_BYTES, 123);
    SL_METRIC_OBSERVE(SL_M_QUERY_SECONDS, 0.2, "topN");
    assert_true(sl_series_value(SL_METRIC_SERIES(SL_M_EVENTS_ACCEPTED, "ds_a")) == 11);
    assert_true(sl_series_value(SL_METRIC_SERIES(SL_M_LOG_BACKLOG_BYTES)) == 123);
    assert_int_equal(sl_series_count(SL_METRIC_SERIES(SL_M_QUERY_SECONDS, "topN")), 1);
}

static void test_format_value(void **state)
{
    char b[64];
    assert_string_equal(sl_metrics_format_value(0, b, sizeof(b)), "0");
    assert_string_equal(sl_metrics_format_value(42, b, sizeof(b)), "42");
    assert_string_equal(sl_metrics_format_value(-3, b, sizeof(b)), "-3");
    assert_string_equal(sl_metrics_format_value(0.1, b, sizeof(b)), "0.1");
    assert_string_equal(sl_metrics_format_value(0.0025, b, sizeof(b)), "0.0025");
    assert_string_equal(sl_metrics_format_value(1.0 / 3, b, sizeof(b)), "0.3333333333333333");
    assert_string_equal(sl_metrics_format_value(1e20, b, sizeof(b)), "1e+20");
    assert_string_equal(sl_metrics_format_value(123456789012.0, b, sizeof(b)), "123456789012");
    assert_string_equal(sl_metrics_format_value(NAN, b, sizeof(b)), "NaN");
    assert_string_equal(sl_metrics_format_value(INFINITY, b, sizeof(b)), "+Inf");
    assert_string_equal(sl_metrics_format_value(-INFINITY, b, sizeof(b)), "-Inf");
}

/* VmRSS from /proc/self/status, in bytes: read differently from metrics.c (statm). */
static double vmrss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kb * 1024;
}

static void test_process_metrics(void **state)
{
    sl_metrics *m = sl_metrics_new();
    /* Burn a little CPU so the counter has something to show. */
    volatile double x = 0;
    clock_t c0 = clock();
    while (clock() - c0 < CLOCKS_PER_SEC / 20) {
        x += 1;
    }
    (void)x;
    double rss_before = vmrss_bytes();
    sl_metrics_process_update(m);
    double rss_after = vmrss_bytes();
    double rss = sl_series_value(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_RSS), NULL));
    double cpu = sl_series_value(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_CPU), NULL));
    double start =
        sl_series_value(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_START), NULL));
    double fds = sl_series_value(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_FDS), NULL));
    double lo = (rss_before < rss_after ? rss_before : rss_after) * 0.8;
    double hi = (rss_before > rss_after ? rss_before : rss_after) * 1.25;
    if (!(rss >= lo && rss <= hi)) {
        fail_msg("rss %.0f not near VmRSS %.0f..%.0f", rss, rss_before, rss_after);
    }
    double used = (double)clock() / CLOCKS_PER_SEC;
    if (!(cpu >= 0.04 && cpu <= used + 0.05)) {
        fail_msg("cpu %.3f s, clock() says %.3f s", cpu, used);
    }
    double now = (double)time(NULL);
    if (!(start <= now + 1 && start > now - 3600)) {
        fail_msg("start time %.0f, now %.0f", start, now);
    }
    /* stdin, stdout, stderr at least. */
    assert_true(fds >= 3);
    sl_metrics_free(m);
}

static void test_lagmarks(void **state)
{
    sl_lagmarks *l = sl_lagmarks_new(2, 100);
    assert_true(sl_lagmarks_oldest(l, 0, 0) == 0);
    sl_lagmarks_note(l, 0, 10, 1000); /* offsets [0, 10) at 1000 */
    sl_lagmarks_note(l, 0, 20, 1050); /* within the resolution: merged into the first */
    sl_lagmarks_note(l, 0, 30, 1200); /* [20, 30) at 1200 */
    sl_lagmarks_note(l, 0, 25, 1300); /* offsets never go back: ignored */
    sl_lagmarks_note(l, 1, 5, 900);
    assert_true(sl_lagmarks_oldest(l, 0, 0) == 1000);
    assert_true(sl_lagmarks_oldest(l, 0, 19) == 1000);
    assert_true(sl_lagmarks_oldest(l, 0, 20) == 1200);
    assert_true(sl_lagmarks_oldest(l, 0, 30) == 0);
    assert_true(sl_lagmarks_oldest(l, 1, 4) == 900);
    /* Many marks: the ring grows and wraps. */
    for (int i = 1; i <= 1000; i++) {
        sl_lagmarks_note(l, 0, 30 + i, 2000 + i * 100);
        if (i % 3 == 0) {
            assert_true(sl_lagmarks_oldest(l, 0, 30 + i - 2) == 2000 + (i - 1) * 100);
        }
    }
    assert_true(sl_lagmarks_oldest(l, 0, 1029) == 2000 + 1000 * 100);
    sl_lagmarks_free(l);
    sl_lagmarks_free(NULL);
}

static void test_messages(void **state)
{
    sl_buf b;
    sl_err err = {0};
    sl_str text;
    sl_buf_init(&b);
    sl_metrics_req_encode(&b);
    assert_int_equal(sl_msg_type(b.data, b.len), SL_MSG_METRICS);
    sl_buf_reset(&b);
    sl_metrics_rep_encode(&b, (sl_str){"a 1\n", 4});
    assert_int_equal(sl_msg_type(b.data, b.len), SL_MSG_METRICS_REP);
    assert_int_equal(sl_metrics_rep_decode(b.data, b.len, &text, &err), 0);
    assert_int_equal(text.len, 4);
    assert_memory_equal(text.p, "a 1\n", 4);
    /* Truncations are rejected. */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_not_equal(sl_metrics_rep_decode(b.data, n, &text, &err), 0);
    }
    sl_alerts_req r = {.what = SL_ALERTS_HISTORY, .query = {"rule=x&limit=3", 14}}, got;
    sl_buf_reset(&b);
    sl_alerts_req_encode(&b, &r);
    assert_int_equal(sl_alerts_req_decode(b.data, b.len, &got, &err), 0);
    assert_int_equal(got.what, SL_ALERTS_HISTORY);
    assert_int_equal(got.query.len, 14);
    assert_memory_equal(got.query.p, "rule=x&limit=3", 14);
    r.what = 7;
    sl_buf_reset(&b);
    sl_alerts_req_encode(&b, &r);
    assert_int_equal(sl_alerts_req_decode(b.data, b.len, &got, &err), SL_ECODEC);
    assert_non_null(strstr(err.msg, "bad what"));
    /* DELTA: the optional 7th element round-trips, and 6-element deltas still decode. */
    sl_delta d = {.ds = {"ds", 2},
                  .partition = 3,
                  .offset_lo = 5,
                  .offset_hi = 9,
                  .rows = {"r", 1},
                  .oldest_appended_ms = 1749643200123LL},
             dd;
    sl_buf_reset(&b);
    sl_delta_encode(&b, &d);
    assert_int_equal(sl_delta_decode(b.data, b.len, &dd, &err), 0);
    assert_true(dd.oldest_appended_ms == 1749643200123LL);
    assert_int_equal(dd.offset_hi, 9);
    d.oldest_appended_ms = 0;
    sl_buf_reset(&b);
    sl_delta_encode(&b, &d);
    assert_int_equal((unsigned char)b.data[0], 0x96); /* a fixarray of 6 */
    assert_int_equal(sl_delta_decode(b.data, b.len, &dd, &err), 0);
    assert_true(dd.oldest_appended_ms == 0);
    sl_buf_fini(&b);
}

/* docs/metrics.md lists every metric of the table. */
static void test_docs_list_every_metric(void **state)
{
    FILE *f = fopen(SL_SOURCE_DIR "/docs/metrics.md", "r");
    assert_non_null(f);
    sl_buf doc;
    sl_buf_init(&doc);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sl_buf_append(&doc, chunk, n);
    }
    fclose(f);
    sl_buf_append(&doc, "", 1);
    char *table = NULL;
    size_t tlen = 0;
    FILE *t = open_memstream(&table, &tlen);
    sl_metrics_print_docs(t);
    fclose(t);
    if (strstr(doc.data, table) == NULL) {
        fail_msg("docs/metrics.md does not contain the current metrics table; regenerate it "
                 "with `sluice-gateway --help-metrics`:\n%s",
                 table);
    }
    free(table);
    sl_buf_fini(&doc);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_render_counter_gauge),
    cmocka_unit_test(test_render_histogram),
    cmocka_unit_test(test_concurrent_updates_exact),
    cmocka_unit_test(test_table_families),
    cmocka_unit_test(test_format_value),
    cmocka_unit_test(test_process_metrics),
    cmocka_unit_test(test_lagmarks),
    cmocka_unit_test(test_messages),
    cmocka_unit_test(test_docs_list_every_metric),
};

SL_TEST_MAIN(tests)
