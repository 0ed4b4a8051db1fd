/* JSON writers for the query actor's replies (see result.h). */
#include "result.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "clock.h"
#include "exec.h"

static void print_cb(void *ctx, const char *str, size_t len)
{
    sl_buf_append(ctx, str, len);
}

yajl_gen sl_res_gen(sl_buf *out)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    SL_ASSERT(g != NULL);
    yajl_gen_config(g, yajl_gen_print_callback, print_cb, out);
    return g;
}

void sl_res_gen_free(yajl_gen g)
{
    if (g != NULL) {
        yajl_gen_free(g);
    }
}

void sl_res_time(yajl_gen g, int64_t ms)
{
    char buf[40];
    sl_time_format(ms, buf, sizeof(buf));
    yajl_gen_string(g, (const unsigned char *)buf, strlen(buf));
}

void sl_res_double(yajl_gen g, double v)
{
    if (!isfinite(v)) {
        yajl_gen_null(g);
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    if (strpbrk(buf, ".e") == NULL) {
        strcat(buf, ".0");
    }
    yajl_gen_number(g, buf, strlen(buf));
}

void sl_res_value(yajl_gen g, double v, bool null, bool is_long)
{
    if (null || !isfinite(v)) {
        yajl_gen_null(g);
    } else if (is_long && fabs(v) < 9.2e18) {
        yajl_gen_integer(g, (long long)v);
    } else {
        sl_res_double(g, v);
    }
}

void sl_res_cstr(yajl_gen g, const char *s)
{
    if (s == NULL) {
        yajl_gen_null(g);
    } else {
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    }
}

void sl_res_str(yajl_gen g, sl_str s)
{
    if (s.p == NULL) {
        yajl_gen_null(g);
    } else {
        yajl_gen_string(g, (const unsigned char *)s.p, s.len);
    }
}

void sl_res_columns(yajl_gen g, const sl_native *q, const sl_qval *vals)
{
    for (int i = 0; i < q->ncols; i++) {
        bool is_long = i < q->naggs ? q->aggs[i].is_long : q->post[i - q->naggs]->is_long;
        sl_res_cstr(g, sl_native_column_name(q, i));
        if (sl_native_column_is_array(q, i)) {
            const sl_post *p = q->post[i - q->naggs];
            int n = p->nfractions;
            if (vals[i].arr == NULL) {
                yajl_gen_null(g);
                continue;
            }
            yajl_gen_array_open(g);
            for (int k = 0; k < n; k++) {
                sl_res_double(g, vals[i].arr[k]);
            }
            yajl_gen_array_close(g);
            continue;
        }
        sl_res_value(g, vals[i].v, vals[i].null, is_long);
    }
}

/* ---- errors -------------------------------------------------------------------------- */

typedef struct err_kind {
    int code;
    int status;
    const char *error;
    const char *klass;
} err_kind;

static const err_kind err_kinds[] = {
    {SL_ECODEC, 400, "Invalid query", "sluice.JsonParseException"},
    {SL_EPARSE, 400, "Invalid query", "sluice.QueryParseException"},
    {SL_EINVAL, 400, "Unsupported operation", "sluice.UnsupportedOperationException"},
    {SL_ETOOBIG, 400, "Resource limit exceeded", "sluice.ResourceLimitExceededException"},
    {SL_ETIMEDOUT, 504, "Query timeout", "sluice.QueryTimeoutException"},
};

/* Length of s without a UTF-8 sequence cut short at its end (messages are truncated
 * to fixed buffers and may end mid-character). */
static size_t utf8_whole(const char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3) {
        i--;
    }
    if (i == 0) {
        return n;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return (want > 1 && n - (i - 1) < want) ? i - 1 : n;
}

int sl_res_error(sl_buf *out, int code, const char *msg)
{
    err_kind k = {code, 500, "Unknown exception", "sluice.InternalError"};
    for (size_t i = 0; i < sizeof(err_kinds) / sizeof(err_kinds[0]); i++) {
        if (err_kinds[i].code == code) {
            k = err_kinds[i];
        }
    }
    sl_buf_reset(out);
    yajl_gen g = sl_res_gen(out);
    yajl_gen_map_open(g);
    sl_res_cstr(g, "error");
    sl_res_cstr(g, k.error);
    sl_res_cstr(g, "errorMessage");
    const char *text = msg != NULL && msg[0] != '\0' ? msg : sl_err_name(code);
    yajl_gen_string(g, (const unsigned char *)text, utf8_whole(text));
    sl_res_cstr(g, "errorClass");
    sl_res_cstr(g, k.klass);
    sl_res_cstr(g, "host");
    yajl_gen_null(g);
    yajl_gen_map_close(g);
    sl_res_gen_free(g);
    return k.status;
}

/* ---- datasources --------------------------------------------------------------------- */

/* "minute", "hour", "day" for those exact lengths, else an ISO period. */
static void gen_period(yajl_gen g, int64_t ms, bool names)
{
    char buf[64];
    if (names && ms == 60000) {
        sl_res_cstr(g, "minute");
        return;
    }
    if (names && ms == 3600000) {
        sl_res_cstr(g, "hour");
        return;
    }
    if (names && ms == 86400000) {
        sl_res_cstr(g, "day");
        return;
    }
    int64_t d = ms / 86400000, rest = ms % 86400000;
    int n = snprintf(buf, sizeof(buf), "P");
    if (d > 0) {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%lldD", (long long)d);
    }
    if (rest > 0) {
        int64_t h = rest / 3600000, m = rest / 60000 % 60, s = rest / 1000 % 60, frac = rest % 1000;
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "T");
        if (h > 0) {
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%lldH", (long long)h);
        }
        if (m > 0) {
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%lldM", (long long)m);
        }
        if (s > 0 || frac > 0) {
            if (frac > 0) {
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%lld.%03lldS", (long long)s,
                              (long long)frac);
            } else {
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%lldS", (long long)s);
            }
        }
    }
    sl_res_cstr(g, buf);
}

static const char *ts_format_name(sl_ts_format f)
{
    switch (f) {
    case SL_TS_ISO:
        return "iso";
    case SL_TS_MILLIS:
        return "millis";
    case SL_TS_SECONDS:
        return "seconds";
    case SL_TS_AUTO:
        return "auto";
    }
    return "auto";
}

static void gen_spec(yajl_gen g, const sl_spec *s)
{
    yajl_gen_map_open(g);
    sl_res_cstr(g, "timestamp");
    yajl_gen_map_open(g);
    sl_res_cstr(g, "column");
    sl_res_cstr(g, s->ts_field);
    sl_res_cstr(g, "format");
    sl_res_cstr(g, ts_format_name(s->ts_format));
    sl_res_cstr(g, "name");
    sl_res_cstr(g, s->time_column);
    yajl_gen_map_close(g);

    sl_res_cstr(g, "dimensions");
    yajl_gen_array_open(g);
    for (int i = 0; i < s->ndims; i++) {
        sl_res_cstr(g, s->dims[i]);
    }
    yajl_gen_array_close(g);

    sl_res_cstr(g, "metrics");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    sl_res_cstr(g, "name");
    sl_res_cstr(g, s->count_name);
    sl_res_cstr(g, "type");
    sl_res_cstr(g, "count");
    yajl_gen_map_close(g);
    for (int i = 0; i < s->nmetrics; i++) {
        yajl_gen_map_open(g);
        sl_res_cstr(g, "name");
        sl_res_cstr(g, s->metrics[i].name);
        sl_res_cstr(g, "type");
        sl_res_cstr(g, sl_metric_kind_name(s->metrics[i].kind));
        if (s->metrics[i].field != NULL) {
            sl_res_cstr(g, "field");
            sl_res_cstr(g, s->metrics[i].field);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);

    sl_res_cstr(g, "granularity");
    yajl_gen_map_open(g);
    sl_res_cstr(g, "segment");
    gen_period(g, s->segment_ms, true);
    sl_res_cstr(g, "query");
    gen_period(g, s->query_ms, true);
    yajl_gen_map_close(g);

    sl_res_cstr(g, "partitions");
    yajl_gen_map_open(g);
    sl_res_cstr(g, "count");
    yajl_gen_integer(g, s->partitions);
    sl_res_cstr(g, "key");
    sl_res_cstr(g, s->partition_key);
    yajl_gen_map_close(g);

    sl_res_cstr(g, "rejection");
    yajl_gen_map_open(g);
    sl_res_cstr(g, "late");
    if (s->late_reject_ms > 0) {
        gen_period(g, s->late_reject_ms, false);
    } else {
        yajl_gen_null(g);
    }
    sl_res_cstr(g, "early");
    if (s->early_reject_ms > 0) {
        gen_period(g, s->early_reject_ms, false);
    } else {
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);

    sl_res_cstr(g, "max_string_length");
    yajl_gen_integer(g, (long long)s->max_string_len);
    yajl_gen_map_close(g);
}

/* The Kafka consumers' status: the ingest processes write it (merged, atomically) to
 * <data>/state/kafka-<datasource>.json (actors/ingest/kafka.c); it is copied here as it
 * is once it parses as a JSON object. */
static void gen_kafka_status(yajl_gen g, const sl_config *cfg, const sl_spec *s)
{
    char path[4200], ebuf[128];
    snprintf(path, sizeof(path), "%s/state/kafka-%s.json", cfg->data_dir, s->name);
    sl_buf text;
    sl_buf_init(&text);
    FILE *f = s->kafka->enabled ? fopen(path, "rb") : NULL;
    if (f != NULL) {
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len < (4u << 20)) {
            sl_buf_append(&text, chunk, n);
        }
        fclose(f);
    }
    sl_buf_append(&text, "", 1);
    yajl_val v = text.len > 1 ? yajl_tree_parse(text.data, ebuf, sizeof(ebuf)) : NULL;
    if (v != NULL && YAJL_IS_OBJECT(v)) {
        yajl_gen_number(g, text.data, text.len - 1); /* raw JSON, checked just above */
    } else {
        yajl_gen_map_open(g);
        sl_res_cstr(g, "enabled");
        yajl_gen_bool(g, s->kafka->enabled);
        if (s->kafka->enabled) {
            sl_res_cstr(g, "status");
            sl_res_cstr(g, "no consumer has reported yet");
        }
        yajl_gen_map_close(g);
    }
    yajl_tree_free(v);
    sl_buf_fini(&text);
}

int sl_res_datasources(const sl_config *cfg, sl_store *st, sl_buf *out)
{
    sl_err err;
    sl_store_reader *rd = NULL;
    int rc = 0;
    if (st != NULL) {
        rc = sl_store_read_begin(st, &rd, &err);
        if (rc != 0) {
            return sl_res_error(out, rc, err.msg);
        }
    }
    sl_buf_reset(out);
    yajl_gen g = sl_res_gen(out);
    yajl_gen_array_open(g);
    for (int i = 0; i < cfg->ndatasources && rc == 0; i++) {
        const sl_spec *s = cfg->datasources[i];
        int64_t min_ms = 0, max_ms = 0;
        uint64_t rows = 0, events = 0, segments = 0;
        bool empty = true;
        if (rd != NULL) {
            rc = sl_store_time_bounds(rd, s, &min_ms, &max_ms, &err);
            if (rc == 0) {
                empty = false;
            } else if (rc == SL_ENOTFOUND) {
                rc = 0;
            }
            if (rc == 0 && !empty) {
                rc = sl_exec_latest_bucket(rd, s, max_ms, &max_ms, &err);
            }
            if (rc == 0 && !empty) {
                rc = sl_store_stats(rd, s, &rows, &events, &segments, &err);
            }
        }
        if (rc != 0) {
            break;
        }
        yajl_gen_map_open(g);
        sl_res_cstr(g, "name");
        sl_res_cstr(g, s->name);
        sl_res_cstr(g, "spec");
        gen_spec(g, s);
        sl_res_cstr(g, "minTime");
        if (empty) {
            yajl_gen_null(g);
        } else {
            sl_res_time(g, min_ms);
        }
        sl_res_cstr(g, "maxTime");
        if (empty) {
            yajl_gen_null(g);
        } else {
            /* Same convention as timeBoundary: start of the latest stored bucket. */
            sl_res_time(g, max_ms);
        }
        sl_res_cstr(g, "rows");
        yajl_gen_integer(g, (long long)rows);
        sl_res_cstr(g, "events");
        yajl_gen_integer(g, (long long)events);
        sl_res_cstr(g, "segments");
        yajl_gen_integer(g, (long long)segments);
        if (s->kafka != NULL) {
            sl_res_cstr(g, "kafka");
            gen_kafka_status(g, cfg, s);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sl_res_gen_free(g);
    if (rd != NULL) {
        sl_store_read_end(rd);
    }
    if (rc != 0) {
        return sl_res_error(out, rc, err.msg);
    }
    return 200;
}
