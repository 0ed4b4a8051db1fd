/* Druid's error shape and the forwarding of a request to a query process, shared by
 * the native (query.c) and SQL (sql.c) endpoints so that both report a missing, slow or
 * broken query process the same way. */
#include <stdio.h>

#include "druid.h"
#include "json.h"
#include "msg.h"

void sl_api_druid_error(sl_http_resp *resp, int status, const char *error, const char *klass,
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

int sl_api_druid_forward(const sl_api *api, sl_http_req *req, int kind, const char *body,
                         size_t len, sl_http_resp *resp, sl_err *err)
{
    sl_buf msg;
    sl_msg *reply = NULL;
    sl_query_rep rep;
    char text[600];

    sl_buf_init(&msg);
    sl_query_req m = {.kind = kind, .body = {body, len}};
    sl_query_req_encode(&msg, &m);
    int rc = sl_sock_request(api->query, msg.data, msg.len, api->timeout_ms, &reply, err);
    if (rc == SL_ETIMEDOUT) {
        snprintf(text, sizeof(text), "Query did not finish within %d ms", api->timeout_ms);
        sl_api_druid_error(resp, 504, "Query timeout",
                           "org.apache.druid.query.QueryTimeoutException", text);
        goto out;
    }
    if (rc < 0) {
        snprintf(text, sizeof(text), "%s",
                 rc == SL_EUNAVAIL ? "no query process is connected" : err->msg);
        sl_api_druid_error(resp, 503, "Query unavailable", "sluice.QueryUnavailable", text);
        sl_http_resp_header(resp, "Retry-After", "1");
        /* SL_ECODEC is kept for a bad reply, which the caller logs. */
        rc = rc == SL_ECODEC ? SL_EIO : rc;
        goto out;
    }
    rc = sl_query_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, err);
    if (rc == 0 && (rep.http_status < 100 || rep.http_status > 599)) {
        rc = sl_err_set(err, SL_ECODEC, "query replied with HTTP status %d", rep.http_status);
    }
    if (rc < 0) {
        snprintf(text, sizeof(text), "bad reply from query: %s", err->msg);
        sl_api_druid_error(resp, 502, "Unknown exception", "sluice.BadReply", text);
        rc = SL_ECODEC;
        goto out;
    }
    if (!sl_http_req_reserve(req, rep.body.len)) {
        sl_http_resp_busy(resp, req, "a query's answer", rep.body.len);
        rc = SL_EBUSY;
        goto out;
    }
    resp->status = rep.http_status;
    resp->content_type = NULL;
    sl_buf_reset(&resp->body);
    if (rep.body.len > 0) {
        sl_buf_append(&resp->body, rep.body.p, rep.body.len);
    }
    rc = rep.http_status;
out:
    sl_msg_free(reply);
    sl_buf_fini(&msg);
    return rc;
}
