/* POST /v1/query (Druid native queries) and GET /v1/datasources: forwarded as
 * QUERY_REQ to a query process; its reply (HTTP status and JSON body) is passed on
 * verbatim. Errors made here follow Druid's error shape so Druid clients show them:
 * {"error":"<category>","errorMessage":"<detail>","errorClass":"<class>","host":null}
 *   no query process connected -> 503 + Retry-After: 1
 *   no reply in time           -> 504 "Query timeout"
 *   malformed reply            -> 502 */
#include <string.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "msg.h"

static void druid_error(sl_http_resp *resp, int status, const char *error, const char *klass,
                        const char *message)
{
    resp->status = status;
    resp->content_type = NULL;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"error\":");
    sl_json_strz(&resp->body, error);
    sl_json_raw(&resp->body, ",\"errorMessage\":");
    sl_json_strz(&resp->body, message);
    sl_json_raw(&resp->body, ",\"errorClass\":");
    sl_json_strz(&resp->body, klass);
    sl_json_raw(&resp->body, ",\"host\":null}");
}

static void forward(const sl_api *api, int kind, const char *body, size_t len, sl_http_resp *resp)
{
    sl_buf msg;
    sl_msg *reply = NULL;
    sl_query_rep rep;
    sl_err err;
    char text[600];

    sl_buf_init(&msg);
    sl_query_req m = {.kind = kind, .body = {body, len}};
    sl_query_req_encode(&msg, &m);
    int rc = sl_sock_request(api->query, msg.data, msg.len, api->timeout_ms, &reply, &err);
    if (rc == SL_ETIMEDOUT) {
        snprintf(text, sizeof(text), "Query did not finish within %d ms", api->timeout_ms);
        druid_error(resp, 504, "Query timeout", "org.apache.druid.query.QueryTimeoutException",
                    text);
        goto out;
    }
    if (rc < 0) {
        snprintf(text, sizeof(text), "%s",
                 rc == SL_EUNAVAIL ? "no query process is connected" : err.msg);
        druid_error(resp, 503, "Query unavailable", "sluice.QueryUnavailable", text);
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    rc = sl_query_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, &err);
    if (rc == 0 && (rep.http_status < 100 || rep.http_status > 599)) {
        rc = sl_err_set(&err, SL_ECODEC, "query replied with HTTP status %d", rep.http_status);
    }
    if (rc < 0) {
        SL_LOG_RATE(ERROR, 1000, "query_bad_reply", "error=\"%s\"", err.msg);
        snprintf(text, sizeof(text), "bad reply from query: %s", err.msg);
        druid_error(resp, 502, "Unknown exception", "sluice.BadReply", text);
        goto out;
    }
    resp->status = rep.http_status;
    resp->content_type = NULL;
    sl_buf_reset(&resp->body);
    if (rep.body.len > 0) {
        sl_buf_append(&resp->body, rep.body.p, rep.body.len);
    }
out:
    sl_msg_free(reply);
    sl_buf_fini(&msg);
}

void sl_api_query_check(void *state, sl_http_req *req, sl_http_resp *resp)
{
    sl_api_encoding(req, resp);
}

void sl_api_query_post(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    sl_buf inflated;
    const char *body;
    size_t len;

    sl_buf_init(&inflated);
    if (sl_api_body(req, resp, (size_t)api->cfg->max_body_bytes, &inflated, &body, &len)) {
        forward(api, SL_QUERY_NATIVE, body, len, resp);
    }
    sl_buf_fini(&inflated);
}

void sl_api_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    forward(state, SL_QUERY_DATASOURCES, "", 0, resp);
}
