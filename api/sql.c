/* Druid's SQL and metadata endpoints, as Druid clients (BI tools, Grafana's Druid plugin,
 * pydruid) call them:
 *
 *   POST /v1/sql, /druid/v2/sql, /druid/v2/sql/   SQL; forwarded as QUERY_REQ kind SQL
 *   GET  /status                                  {"version":"...","modules":[]}
 *   GET  /status/health                           true
 *   GET  /druid/v2/datasources                    ["page_events", ...]
 *   GET  /druid/v2/datasources/{name}             {"dimensions":[...],"metrics":[...]}
 *
 * SQL bodies: application/json is Druid's request object and goes on as it is;
 * text/plain is the SQL itself and application/x-www-form-urlencoded is the SQL
 * url-encoded (both answered in the object format), wrapped here into {"query": ...}.
 * The query process plans and runs the statement and returns the finished body; the
 * gateway adds what only HTTP knows: the Content-Type of the result format and the
 * X-Druid-SQL-Query-Id header (context.sqlQueryId, or a generated UUID).
 *
 * Overload: at most SL_API_SQL_SLOTS(threads) SQL statements wait on query processes at
 * once, so SQL can never take every HTTP worker from ingestion; the next one gets 429
 * with Retry-After, in Druid's error shape. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <yajl/yajl_tree.h>

#include "api.h"
#include "druid.h"
#include "json.h"
#include "log.h"
#include "msg.h"

#ifndef SL_VERSION
#define SL_VERSION "0.0.0"
#endif

/* SQL statements in flight over all HTTP workers; one worker is always left free. */
#define SL_API_SQL_SLOTS(threads) ((threads) > 1 ? (threads)-1 : 1)

static atomic_int sql_in_flight;

/* The content type of a result format (names compared as Druid does, ignoring case). */
static const char *format_type(const char *fmt)
{
    if (fmt == NULL || strcasecmp(fmt, "object") == 0 || strcasecmp(fmt, "array") == 0) {
        return "application/json";
    }
    if (strcasecmp(fmt, "objectLines") == 0 || strcasecmp(fmt, "arrayLines") == 0) {
        return "text/plain";
    }
    if (strcasecmp(fmt, "csv") == 0) {
        return "text/csv";
    }
    return "application/json"; /* the query process answers 400 for it */
}

static yajl_val field(yajl_val obj, const char *key)
{
    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

static void new_query_id(char *buf, size_t size)
{
    unsigned char b[16] = {0};
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        static atomic_ullong counter;
        unsigned long long c = atomic_fetch_add(&counter, 1) + 1;
        memcpy(b, &c, sizeof(c));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(buf, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* A query id a client gave, if it can go in a header as it is. */
static bool usable_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

/* Decodes a form body (%XX, '+' as space) into out; false when an escape is broken. */
static bool form_decode(const char *s, size_t n, sl_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int v = 0;
            for (int k = 1; k <= 2; k++) {
                char h = i + (size_t)k < n ? s[i + (size_t)k] : '\0';
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) {
                    return false;
                }
                v = v * 16 + d;
            }
            c = (char)v;
            i += 2;
        }
        sl_buf_append(out, &c, 1);
    }
    return true;
}

static void forward_sql(const sl_api *api, sl_http_req *req, const char *body, size_t len,
                        const char *fmt, sl_http_resp *resp)
{
    sl_err err;
    int rc = sl_api_druid_forward(api, req, SL_QUERY_SQL, body, len, resp, &err);
    if (rc == SL_ECODEC) {
        SL_LOG_RATE(ERROR, 1000, "sql_bad_reply", "error=\"%s\"", err.msg);
    } else if (rc == 200) {
        resp->content_type = format_type(fmt);
    } else if (rc == 429) {
        sl_http_resp_header(resp, "Retry-After", "1");
    }
}

void sl_api_sql_check(void *state, sl_http_req *req, sl_http_resp *resp)
{
    sl_api_encoding(req, resp);
}

void sl_api_sql_post(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    sl_buf inflated, wrapped, decoded;
    const char *body;
    size_t len;
    yajl_val tree = NULL;
    char *text = NULL;
    char id[240];
    const char *fmt = NULL;
    bool counted = false;

    sl_buf_init(&inflated);
    sl_buf_init(&wrapped);
    sl_buf_init(&decoded);
    new_query_id(id, sizeof(id));
    if (!sl_api_body(req, resp, (size_t)api->cfg->max_body_bytes, &inflated, &body, &len)) {
        goto out;
    }
    char media[128] = "application/json";
    const char *ct = sl_http_req_header(req, "Content-Type");
    sl_err err;
    if (ct != NULL && ct[0] != '\0' && sl_http_media_type(ct, media, sizeof(media), &err) != 0) {
        sl_http_resp_error(resp, 415, "%s", err.msg);
        goto out;
    }
    if (strcmp(media, "application/json") == 0) {
        /* read only what the reply needs; the query process validates the rest */
        text = sl_strndup(body, len);
        tree = yajl_tree_parse(text, NULL, 0);
        yajl_val f = field(tree, "resultFormat");
        fmt = f != NULL && YAJL_IS_STRING(f) ? f->u.string : NULL;
        yajl_val qid = field(field(tree, "context"), "sqlQueryId");
        if (qid != NULL && YAJL_IS_STRING(qid) && usable_id(qid->u.string)) {
            snprintf(id, sizeof(id), "%s", qid->u.string);
        }
    } else if (strcmp(media, "text/plain") == 0 ||
               strcmp(media, "application/x-www-form-urlencoded") == 0) {
        if (media[0] == 'a') {
            if (!form_decode(body, len, &decoded)) {
                sl_api_druid_error(resp, 400, "Malformed query", "sluice.SqlRequestException",
                                   "the form-encoded body has a broken %-escape");
                goto out;
            }
            body = decoded.data != NULL ? decoded.data : "";
            len = decoded.len;
        }
        sl_json_raw(&wrapped, "{\"query\":");
        sl_json_str(&wrapped, body, len);
        sl_json_raw(&wrapped, "}");
        body = wrapped.data;
        len = wrapped.len;
    } else {
        sl_http_resp_error(resp, 415,
                           "unsupported Content-Type \"%s\": send application/json, text/plain "
                           "or application/x-www-form-urlencoded",
                           media);
        goto out;
    }
    int limit = SL_API_SQL_SLOTS((int)api->cfg->http_threads);
    counted = true;
    if (atomic_fetch_add(&sql_in_flight, 1) >= limit) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Too many concurrent SQL queries (at most %d at once); retry later", limit);
        sl_api_druid_error(resp, 429, "Query capacity exceeded",
                           "org.apache.druid.query.QueryCapacityExceededException", msg);
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    forward_sql(api, req, body, len, fmt, resp);
out:
    if (counted) {
        atomic_fetch_sub(&sql_in_flight, 1);
    }
    sl_http_resp_header(resp, "X-Druid-SQL-Query-Id", id);
    yajl_tree_free(tree);
    free(text);
    sl_buf_fini(&inflated);
    sl_buf_fini(&wrapped);
    sl_buf_fini(&decoded);
}

/* ---- metadata --------------------------------------------------------------------------- */

void sl_api_status_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    resp->status = 200;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"version\":");
    sl_json_strz(&resp->body, SL_VERSION);
    sl_json_raw(&resp->body, ",\"modules\":[]}");
}

void sl_api_status_health_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    resp->status = 200;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "true");
}

void sl_api_druid_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    resp->status = 200;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "[");
    for (int i = 0; i < api->cfg->ndatasources; i++) {
        if (i > 0) {
            sl_json_raw(&resp->body, ",");
        }
        sl_json_strz(&resp->body, api->cfg->datasources[i]->name);
    }
    sl_json_raw(&resp->body, "]");
}

void sl_api_druid_datasource_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    static const char prefix[] = "/druid/v2/datasources/";
    const char *path = sl_http_req_path(req);
    const char *name =
        strncmp(path, prefix, sizeof(prefix) - 1) == 0 ? path + sizeof(prefix) - 1 : "";
    const sl_spec *s = sl_config_find(api->cfg, name);
    if (s == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "datasource \"%.200s\" not found", name);
        sl_http_resp_error(resp, 404, "%s", msg);
        return;
    }
    resp->status = 200;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"dimensions\":[");
    for (int i = 0; i < s->ndims; i++) {
        if (i > 0) {
            sl_json_raw(&resp->body, ",");
        }
        sl_json_strz(&resp->body, s->dims[i]);
    }
    sl_json_raw(&resp->body, "],\"metrics\":[");
    sl_json_strz(&resp->body, s->count_name);
    for (int i = 0; i < s->nmetrics; i++) {
        sl_json_raw(&resp->body, ",");
        sl_json_strz(&resp->body, s->metrics[i].name);
    }
    sl_json_raw(&resp->body, "]}");
}
