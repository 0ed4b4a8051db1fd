/* A blocking HTTP client for the alerter: its queries to the gateway and its webhook
 * notifications. libcurl behind one call; only httpc.c includes curl.h.
 *
 * sl_httpc_init must run once, before any other thread exists (libcurl's global
 * setup is not thread-safe); after that sl_httpc_request may be called from any
 * thread. */
#ifndef SL_ALERTER_HTTPC_H
#define SL_ALERTER_HTTPC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

int sl_httpc_init(sl_err *err);
void sl_httpc_fini(void);

/* Sends method url with body[0..len) (content_type when body is not NULL), waits at
 * most timeout_ms for the whole exchange. On 0, *status is the HTTP status (any, 4xx
 * and 5xx included) and resp (reset first, may be NULL) holds at most max_resp bytes of
 * the body. Errors: SL_ETIMEDOUT, SL_EUNAVAIL (connection refused or reset, no such
 * host), SL_ETOOBIG (the reply is longer than max_resp), SL_ECLOSED (cancel became
 * true: checked about every 100 ms, so a shutdown does not wait out a slow peer), SL_EIO;
 * err says which URL and why. cancel may be NULL. */
int sl_httpc_request(const char *method, const char *url, const char *content_type,
                     const void *body, size_t len, int64_t timeout_ms, size_t max_resp,
                     const atomic_bool *cancel, int *status, sl_buf *resp, sl_err *err);

#endif
