/* What the Druid-compatible endpoints share (query.c, sql.c): Druid's error shape and
 * forwarding a request to a query process. Private to api/. */
#ifndef SL_API_DRUID_H
#define SL_API_DRUID_H

#include <stddef.h>

#include "api.h"

/* Sets resp to status with Druid's error object
 * {"error":error,"errorMessage":message,"errorClass":klass,"host":null}, which Druid
 * clients show; the strings are borrowed and copied (escaped) into the body. */
void sl_api_druid_error(sl_http_resp *resp, int status, const char *error, const char *klass,
                        const char *message);

/* Sends QUERY_REQ {kind, body[0..len)} to a query process and waits up to
 * api->timeout_ms. When the query process answers, its status and body are put in resp
 * (content type left NULL, i.e. JSON) and the status (100..599) is returned. Otherwise
 * resp holds a Druid error and a negative code is returned:
 *   SL_ETIMEDOUT          504 "Query timeout"
 *   SL_ECODEC             502: the reply was malformed; err says how, for the caller to
 *                         log under its own event name
 *   any other code        503 "Query unavailable" + Retry-After: 1 (no query process
 *                         connected, or the socket failed)
 *   SL_EBUSY              503 + Retry-After: 1: the reply does not fit in the gateway's
 *                         memory bound (sl_http_req_reserve for req)
 * body is borrowed for the call; err must not be NULL (it fills the error replies). */
int sl_api_druid_forward(const sl_api *api, sl_http_req *req, int kind, const char *body,
                         size_t len, sl_http_resp *resp, sl_err *err);

#endif
