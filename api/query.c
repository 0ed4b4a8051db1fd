/* POST /v1/query (Druid native queries) and GET /v1/datasources: forwarded as
 * QUERY_REQ to a query process; its reply (HTTP status and JSON body) is passed on
 * verbatim. Errors made here follow Druid's error shape so Druid clients show them:
 * {"error":"<category>","errorMessage":"<detail>","errorClass":"<class>","host":null}
 *   no query process connected -> 503 + Retry-After: 1
 *   no reply in time           -> 504 "Query timeout"
 *   malformed reply            -> 502 */
#include "api.h"
#include "druid.h"
#include "log.h"
#include "msg.h"

static void forward(const sl_api *api, sl_http_req *req, int kind, const char *body, size_t len,
                    sl_http_resp *resp)
{
    sl_err err;
    if (sl_api_druid_forward(api, req, kind, body, len, resp, &err) == SL_ECODEC) {
        SL_LOG_RATE(ERROR, 1000, "query_bad_reply", "error=\"%s\"", err.msg);
    }
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
        forward(api, req, SL_QUERY_NATIVE, body, len, resp);
    }
    sl_buf_fini(&inflated);
}

void sl_api_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    forward(state, req, SL_QUERY_DATASOURCES, "", 0, resp);
}
