/* The gateway's HTTP API: the state its handlers share, the route table and the
 * handlers, one file per endpoint family (events.c, query.c, health.c). The gateway
 * actor owns everything in sl_api and passes it as the handlers' state; handlers run
 * on the HTTP worker threads and only use thread-safe calls on it
 * (sl_sock_request, read-only config). */
#ifndef SL_API_H
#define SL_API_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "http.h"
#include "routes.h"
#include "sock.h"

/* Pings every actor instance's control socket for /healthz (health.c). */
typedef struct sl_health sl_health;

typedef struct sl_api {
    const sl_config *cfg; /* borrowed, read-only */
    sl_sock *ingest;      /* REQ listening on addresses.ingest; ingest processes dial it */
    sl_sock *query;       /* REQ listening on addresses.query */
    sl_health *health;
    int timeout_ms; /* how long a request waits for ingest / query */
} sl_api;

/* The gateway's routes (routes.c). */
extern const sl_route sl_api_routes[];

/* POST /v1/events?datasource=NAME (events.c). check refuses a bad request before its
 * body is read. */
void sl_api_events_check(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_events_post(void *state, sl_http_req *req, sl_http_resp *resp);

/* POST /v1/query and GET /v1/datasources (query.c). */
void sl_api_query_check(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_query_post(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* GET /healthz (health.c). */
void sl_api_healthz_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* Opens one REQ socket per actor instance (cfg->processes), dialed to its control
 * address; pings wait up to timeout_ms. *out is owned by the caller (sl_health_free). */
int sl_health_new(const sl_config *cfg, int timeout_ms, sl_health **out, sl_err *err);
void sl_health_free(sl_health *h);

/* ---- request bodies (body.c), shared by the POST endpoints ------------------------ */

/* Checks Content-Encoding: returns 0 for none/identity, 1 for gzip (or x-gzip); any
 * other encoding sets a 415 reply and returns -1. */
int sl_api_encoding(sl_http_req *req, sl_http_resp *resp);

/* The request body, inflated into scratch when it is gzip (the inflated size is
 * capped at max_body). Returns true with *body and *len set (borrowed from the request
 * or scratch), or false with the reply set: 400 "empty body", 400 "invalid gzip
 * body: ...", 413, 415. */
bool sl_api_body(sl_http_req *req, sl_http_resp *resp, size_t max_body, sl_buf *scratch,
                 const char **body, size_t *len);

#endif
