/* GET /v1/alerts and GET /v1/alerts/history: answered by the alerter actor, which holds
 * the rules' states and the history. The gateway forwards an ALERTS request on a REQ
 * socket dialed to addresses.alerter and passes the alerter's reply (HTTP status and
 * JSON body) on verbatim; the query string goes along (history filters: rule, limit).
 *   the alerter is not running  -> 503 + Retry-After: 1
 *   no answer in time           -> 504 */
#include <string.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "msg.h"

int sl_api_alerts_open(const sl_config *cfg, sl_sock **out, sl_err *err)
{
    char addr[512];
    int rc = sl_config_addr(cfg, SL_ADDR_ALERTER, "alerter", 0, addr, sizeof(addr));
    if (rc < 0) {
        return sl_err_set(err, rc, "alerts: cannot expand the alerter address");
    }
    if ((rc = sl_sock_open(out, SL_SOCK_REQ, err)) != 0) {
        return rc;
    }
    if ((rc = sl_sock_dial(*out, addr, err)) != 0) {
        sl_sock_close(*out);
        *out = NULL;
    }
    return rc;
}

static void forward(const sl_api *api, int what, sl_http_req *req, sl_http_resp *resp)
{
    sl_buf msg;
    sl_msg *reply = NULL;
    sl_query_rep rep;
    sl_err err = {0};
    const char *q = sl_http_req_query(req);

    sl_buf_init(&msg);
    sl_alerts_req m = {.what = what, .query = {q, strlen(q)}};
    sl_alerts_req_encode(&msg, &m);
    int rc = sl_sock_request(api->alerter, msg.data, msg.len, api->timeout_ms, &reply, &err);
    if (rc == SL_EUNAVAIL) {
        sl_http_resp_error(resp, 503, "the alerter is not running");
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    if (rc == SL_ETIMEDOUT) {
        sl_http_resp_error(resp, 504, "the alerter did not answer within %d ms", api->timeout_ms);
        goto out;
    }
    if (rc < 0) {
        sl_http_resp_error(resp, 503, "alerter: %s", err.msg);
        goto out;
    }
    if (sl_query_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, &err) < 0) {
        SL_LOG_RATE(ERROR, 1000, "alerts_bad_reply", "error=\"%s\"", err.msg);
        sl_http_resp_error(resp, 502, "bad reply from the alerter: %s", err.msg);
        goto out;
    }
    resp->status = rep.http_status;
    resp->content_type = NULL;
    sl_buf_reset(&resp->body);
    sl_buf_append(&resp->body, rep.body.p, rep.body.len);
out:
    sl_msg_free(reply);
    sl_buf_fini(&msg);
}

void sl_api_alerts_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    forward(state, SL_ALERTS_RULES, req, resp);
}

void sl_api_alerts_history_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    forward(state, SL_ALERTS_HISTORY, req, resp);
}
