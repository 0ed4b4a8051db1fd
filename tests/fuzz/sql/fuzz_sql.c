/* libFuzzer target for the SQL parser and planner: every input is parsed, then planned
 * against a fixed datasource spec, then run against no store (every datasource empty),
 * which walks the row pipeline too. Any crash, leak or sanitizer report is a bug;
 * errors are expected and ignored.
 *
 *   cmake -DSL_FUZZ=ON -DCMAKE_C_COMPILER=clang ... && ./fuzz_sql corpus/ -max_total_time=600 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"

static const char SPEC[] =
    "{\"name\":\"page_events\",\"timestamp\":{\"column\":\"timestamp\",\"format\":\"auto\","
    "\"name\":\"event_time\"},\"dimensions\":[\"event_type\",\"page\",\"device\",\"country\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"latency_ms_sum\",\"type\":\"sum\",\"field\":\"latency_ms\"},"
    "{\"name\":\"latency_ms_min\",\"type\":\"min\",\"field\":\"latency_ms\"},"
    "{\"name\":\"latency_ms_max\",\"type\":\"max\",\"field\":\"latency_ms\"},"
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user_id\"},"
    "{\"name\":\"latency\",\"type\":\"quantiles\",\"field\":\"latency_ms\"}],"
    "\"partitions\":{\"count\":4,\"key\":\"user_id\"}}";

static sl_config *config(void)
{
    static sl_config *cfg;
    if (cfg == NULL) {
        sl_spec *spec;
        sl_err err;
        if (sl_spec_parse(SPEC, strlen(SPEC), "fuzz", &spec, &err) != 0) {
            abort();
        }
        cfg = calloc(1, sizeof(*cfg));
        cfg->datasources[cfg->ndatasources++] = spec;
    }
    return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sl_sql_value params[2] = {{.kind = SL_SQLV_STR, .s = "US", .n = 2},
                                           {.kind = SL_SQLV_LONG, .i = 3}};
    sl_sql_opts o = {.params = params, .nparams = 2, .now_ms = 1749643200000LL, .timeout_ms = 1000};
    sl_err err;
    sl_sql_parse_only((const char *)data, size, &o, &err);
    if (size > 4096 || memchr(data, '\0', size) != NULL) {
        return 0;
    }
    char *sql = malloc(size + 1);
    memcpy(sql, data, size);
    sql[size] = '\0';
    sl_sql_opts lenient = o;
    sl_sql_result *res = NULL;
    for (int n = 0; n <= 2; n++) { /* the statement may use 0, 1 or 2 parameters */
        lenient.nparams = n;
        if (sl_sql_run(config(), NULL, sql, &lenient, &res, &err) == 0) {
            sl_buf out;
            sl_buf_init(&out);
            sl_sql_result_write(res, (sl_sql_format)(size % 5), size & 1, size & 2, size & 4, &out);
            sl_buf_fini(&out);
            sl_sql_result_free(res);
            break;
        }
    }
    free(sql);
    return 0;
}
