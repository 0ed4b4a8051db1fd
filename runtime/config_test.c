/* Config and datasource spec loading: every shipped file loads, and bad specs are
 * rejected with a message naming the file, the key and the reason. */
#include "sl_test.h"

#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_shipped_configs_load(void **state)
{
    sl_config *cfg = NULL;
    sl_err err = {0};
    int rc = sl_config_load(SL_SOURCE_DIR "/configs/sluice.json", "/tmp/sl-data", "127.0.0.1:9999",
                            &cfg, &err);
    if (rc != 0) {
        fail_msg("%s", err.msg);
    }
    assert_string_equal(cfg->http_host, "127.0.0.1");
    assert_int_equal(cfg->http_port, 9999);
    assert_string_equal(cfg->data_dir, "/tmp/sl-data");
    const sl_spec *s = sl_config_find(cfg, "page_events");
    assert_non_null(s);
    assert_int_equal(s->ndims, 4);
    assert_string_equal(s->dims[0], "event_type");
    assert_string_equal(s->dims[3], "country");
    assert_string_equal(s->time_column, "event_time");
    assert_int_equal(s->partitions, 12);
    assert_string_equal(s->partition_key, "user_id");
    assert_int_equal(s->segment_ms, 3600000);
    assert_int_equal(s->query_ms, 60000);
    assert_string_equal(s->count_name, "count");
    assert_int_equal(s->nmetrics, 5);
    assert_int_equal(s->nfields, 1);
    assert_string_equal(s->fields[0], "latency_ms");
    assert_int_equal(s->metrics[1].kind, SL_METRIC_MIN);
    assert_int_equal(s->metrics[3].kind, SL_METRIC_DISTINCT);
    assert_string_equal(s->metrics[3].name, "users");
    assert_int_equal(s->metrics[4].kind, SL_METRIC_QUANTILES);
    assert_string_equal(s->metrics[4].name, "latency");
    assert_int_equal(s->metrics[4].field_index, 0);
    assert_int_equal(s->nhfields, 1);
    assert_string_equal(s->hfields[0], "user_id");
    assert_int_equal(s->early_reject_ms, 86400000);
    assert_int_equal(s->late_reject_ms, 0);
    /* the seed's topic ships disabled, so that ./sluice run needs no broker */
    assert_non_null(s->kafka);
    assert_false(s->kafka->enabled);
    assert_string_equal(s->kafka->topics[0], "user-events");
    char addr[256];
    assert_int_equal(sl_config_addr(cfg, SL_ADDR_STORER, NULL, 0, addr, sizeof(addr)), 0);
    assert_string_equal(addr, "ipc:///tmp/sl-data/sock/storer.ipc");
    assert_int_equal(sl_config_addr(cfg, SL_ADDR_CONTROL, "query", 1, addr, sizeof(addr)), 0);
    assert_string_equal(addr, "ipc:///tmp/sl-data/sock/ctl.query.1.ipc");
    sl_config_free(cfg);

    /* Every datasource spec shipped in configs/datasources loads. */
    DIR *d = opendir(SL_SOURCE_DIR "/configs/datasources");
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".json") == NULL) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/configs/datasources/%s", SL_SOURCE_DIR, e->d_name);
        sl_spec *sp;
        if (sl_spec_load(path, &sp, &err) != 0) {
            fail_msg("%s", err.msg);
        }
        sl_spec_free(sp);
        n++;
    }
    closedir(d);
    assert_true(n >= 1);
}

static void expect_spec_error(const char *json, const char *needle)
{
    sl_spec *s = NULL;
    sl_err err = {0};
    int rc = sl_spec_parse(json, strlen(json), "t.json", &s, &err);
    assert_int_equal(rc, SL_ECONFIG);
    assert_null(s);
    if (strstr(err.msg, needle) == NULL || strstr(err.msg, "t.json") == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\" and the file", err.msg, needle);
    }
}

static void test_bad_specs_rejected(void **state)
{
    expect_spec_error("{\"dimensions\":[]}", "\"name\"");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"colour\":1}", "colour");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":\"a\"}", "dimensions");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[1]}", "dimensions");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[\"a\",\"a\"]}", "twice");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"metrics\":[{\"name\":\"m\",\"type\":"
                      "\"avg\",\"field\":\"f\"}]}",
                      "type");
    expect_spec_error(
        "{\"name\":\"x\",\"dimensions\":[],\"metrics\":[{\"name\":\"m\",\"type\":\"sum\"}]}",
        "field");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"partitions\":{\"count\":0}}",
                      "partitions.count");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"partitions\":{\"count\":\"12\"}}",
                      "partitions.count");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"timestamp\":{\"format\":\"rfc\"}}",
                      "timestamp.format");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"timestamp\":{\"zone\":\"UTC\"}}",
                      "timestamp.zone");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"rejection\":{\"late\":\"P1M\"}}",
                      "rejection.late");
    expect_spec_error("{\"name\":\"x y\",\"dimensions\":[]}", "name");
    expect_spec_error("{\"name\":\"x\",\"dimensions\":[],\"granularity\":{\"segment\":\"day\"}}",
                      "granularity.segment");
    expect_spec_error("[1]", "object");
    expect_spec_error("{\"name\":", "invalid JSON");
}

/* "distinct" and "quantiles" metrics: where their fields go, and each kind of mistake. */
static void test_sketch_metrics_spec(void **state)
{
    const char *j = "{\"name\":\"x\",\"dimensions\":[\"page\"],\"metrics\":["
                    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
                    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user\"},"
                    "{\"name\":\"pages\",\"type\":\"distinct\",\"field\":\"page\"},"
                    "{\"name\":\"users2\",\"type\":\"distinct\",\"field\":\"user\"},"
                    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"lat\"},"
                    "{\"name\":\"size\",\"type\":\"quantiles\",\"field\":\"bytes\"}]}";
    sl_spec *s;
    sl_err err = {0};
    if (sl_spec_parse(j, strlen(j), "t.json", &s, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(s->nmetrics, 6);
    /* numeric fields: lat (sum and quantiles share it), bytes */
    assert_int_equal(s->nfields, 2);
    assert_string_equal(s->fields[0], "lat");
    assert_string_equal(s->fields[1], "bytes");
    /* distinct fields: user (twice), page (also a dimension: allowed) */
    assert_int_equal(s->nhfields, 2);
    assert_string_equal(s->hfields[0], "user");
    assert_string_equal(s->hfields[1], "page");
    static const struct {
        sl_metric_kind kind;
        int field_index;
    } want[] = {{SL_METRIC_SUM, 0},      {SL_METRIC_DISTINCT, 0},  {SL_METRIC_DISTINCT, 1},
                {SL_METRIC_DISTINCT, 0}, {SL_METRIC_QUANTILES, 0}, {SL_METRIC_QUANTILES, 1}};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s->metrics[i].kind, want[i].kind);
        assert_int_equal(s->metrics[i].field_index, want[i].field_index);
        assert_int_equal(sl_metric_is_sketch(s->metrics[i].kind), i > 0);
    }
    assert_int_equal(sl_spec_metric(s, "lat"), 4);
    sl_spec_free(s);

#define SPEC(m) "{\"name\":\"x\",\"dimensions\":[\"page\"],\"metrics\":[" m "]}"
    expect_spec_error(SPEC("{\"name\":\"u\",\"type\":\"distinct\"}"),
                      "a distinct metric needs a \"field\"");
    expect_spec_error(SPEC("{\"name\":\"q\",\"type\":\"quantiles\"}"),
                      "a quantiles metric needs a \"field\" (the numeric input field)");
    expect_spec_error(SPEC("{\"name\":\"u\",\"type\":\"distinct\",\"field\":\"\"}"),
                      "non-empty string");
    expect_spec_error(SPEC("{\"name\":\"q\",\"type\":\"quantiles\",\"field\":\"page\"}"),
                      "needs a numeric field, and \"page\" is a dimension");
    expect_spec_error(SPEC("{\"name\":\"q\",\"type\":\"quantiles\",\"field\":\"timestamp\"}"),
                      "\"timestamp\" is the timestamp field");
    /* name clashes: with a dimension, another metric, the time column, the count */
    expect_spec_error(SPEC("{\"name\":\"page\",\"type\":\"distinct\",\"field\":\"u\"}"),
                      "name \"page\" is already used");
    expect_spec_error(SPEC("{\"name\":\"l\",\"type\":\"sum\",\"field\":\"lat\"},"
                           "{\"name\":\"l\",\"type\":\"quantiles\",\"field\":\"lat\"}"),
                      "name \"l\" is already used");
    expect_spec_error(SPEC("{\"name\":\"__time\",\"type\":\"distinct\",\"field\":\"u\"}"),
                      "name \"__time\" is already used");
    expect_spec_error(SPEC("{\"name\":\"n\",\"type\":\"count\"},"
                           "{\"name\":\"n\",\"type\":\"distinct\",\"field\":\"u\"}"),
                      "name \"n\" is already used");
    expect_spec_error(SPEC("{\"name\":\"count\",\"type\":\"distinct\",\"field\":\"u\"}"),
                      "implicit count metric");
    expect_spec_error(SPEC("{\"name\":\"q\",\"type\":\"quantile\",\"field\":\"lat\"}"),
                      "distinct, quantiles");
#undef SPEC
}

/* The "kafka" object: defaults, properties as text, and each kind of mistake. */
static void test_kafka_spec(void **state)
{
    const char *ok = "{\"name\":\"ev\",\"dimensions\":[],\"kafka\":{\"bootstrap_servers\":"
                     "\"127.0.0.1:9092\",\"topic\":\"user-events\",\"properties\":{"
                     "\"session.timeout.ms\":6000,\"check.crcs\":true,\"client.rack\":\"r1\"}}}";
    sl_spec *s = NULL;
    sl_err err = {0};
    if (sl_spec_parse(ok, strlen(ok), "t.json", &s, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_non_null(s->kafka);
    assert_true(s->kafka->enabled);
    assert_int_equal(s->kafka->ntopics, 1);
    assert_string_equal(s->kafka->topics[0], "user-events");
    assert_string_equal(s->kafka->group_id, "sluice-ev");
    assert_false(s->kafka->start_latest);
    assert_int_equal(s->kafka->nprops, 3);
    assert_string_equal(s->kafka->prop_keys[0], "session.timeout.ms");
    assert_string_equal(s->kafka->prop_values[0], "6000");
    assert_string_equal(s->kafka->prop_values[1], "true");
    assert_string_equal(s->kafka->prop_values[2], "r1");
    sl_spec_free(s);
    /* disabled: nothing required */
    const char *off = "{\"name\":\"ev\",\"dimensions\":[],\"kafka\":{\"enabled\":false,"
                      "\"topics\":[\"a\",\"b\"],\"start\":\"latest\",\"group_id\":\"g\"}}";
    if (sl_spec_parse(off, strlen(off), "t.json", &s, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_false(s->kafka->enabled);
    assert_int_equal(s->kafka->ntopics, 2);
    assert_true(s->kafka->start_latest);
    assert_string_equal(s->kafka->group_id, "g");
    sl_spec_free(s);

#define K(body) "{\"name\":\"x\",\"dimensions\":[],\"kafka\":{" body "}}"
#define BT "\"bootstrap_servers\":\"h:1\",\"topic\":\"t\""
    expect_spec_error(K("\"topic\":\"t\""), "kafka.bootstrap_servers");
    expect_spec_error(K("\"bootstrap_servers\":\"h:1\""), "kafka.topics");
    expect_spec_error(K(BT ",\"topics\":[\"u\"]"), "not both");
    expect_spec_error(K("\"bootstrap_servers\":\"h:1\",\"topics\":[]"), "kafka.topics");
    expect_spec_error(K("\"bootstrap_servers\":\"h:1\",\"topic\":\"a b\""), "not a Kafka topic");
    expect_spec_error(K(BT ",\"enabled\":\"yes\""), "kafka.enabled");
    expect_spec_error(K(BT ",\"start\":\"beginning\""), "kafka.start");
    expect_spec_error(K(BT ",\"brokers\":\"h:1\""), "kafka.brokers");
    expect_spec_error(K(BT ",\"properties\":[]"), "kafka.properties");
    expect_spec_error(K(BT ",\"properties\":{\"a.b\":[1]}"), "kafka.properties.a.b");
    expect_spec_error(K(BT ",\"properties\":{\"enable.auto.offset.store\":true}"),
                      "stores each offset itself");
    expect_spec_error(K(BT ",\"properties\":{\"group.id\":\"g\"}"), "group_id");
    expect_spec_error(
        K(BT ",\"properties\":{\"partition.assignment.strategy\":\"cooperative-sticky\"}"),
        "eager");
#undef BT
#undef K
}

static void test_bad_config_rejected(void **state)
{
    char path[] = "/tmp/sl-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"gateway\": {\"max_body_byte\": 5}, \"datasources\": []}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    sl_config *cfg;
    sl_err err = {0};
    assert_int_equal(sl_config_load(path, NULL, NULL, &cfg, &err), SL_ECONFIG);
    assert_non_null(strstr(err.msg, "gateway.max_body_byte"));
    assert_non_null(strstr(err.msg, path));

    FILE *f = fopen(path, "w");
    fputs("{\"processes\": {\"ingest\": 0}}", f);
    fclose(f);
    assert_int_equal(sl_config_load(path, NULL, NULL, &cfg, &err), SL_ECONFIG);
    assert_non_null(strstr(err.msg, "processes.ingest"));
    assert_non_null(strstr(err.msg, "out of range"));

    f = fopen(path, "w");
    fputs("{\"http\": \"localhost\"}", f);
    fclose(f);
    assert_int_equal(sl_config_load(path, NULL, NULL, &cfg, &err), SL_ECONFIG);
    assert_non_null(strstr(err.msg, "HOST:PORT"));
    unlink(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_shipped_configs_load), cmocka_unit_test(test_bad_specs_rejected),
    cmocka_unit_test(test_sketch_metrics_spec),  cmocka_unit_test(test_kafka_spec),
    cmocka_unit_test(test_bad_config_rejected),
};

SL_TEST_MAIN(tests)
