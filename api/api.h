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
/* Forwards the storer's NOTIFY hints to browsers on GET /v1/live (sse.c, dashboard.h). */
typedef struct sl_live sl_live;
/* Collects every actor instance's metrics for /metrics (metrics.c). */
typedef struct sl_scrape sl_scrape;

typedef struct sl_api {
    const sl_config *cfg; /* borrowed, read-only */
    sl_sock *ingest;      /* REQ listening on addresses.ingest; ingest processes dial it */
    sl_sock *query;       /* REQ listening on addresses.query */
    sl_health *health;
    sl_live *live;     /* NULL: /v1/live answers 503 */
    sl_scrape *scrape; /* asks every instance for its metrics (metrics.c) */
    sl_sock *alerter;  /* REQ dialed to addresses.alerter (alerts.c) */
    int timeout_ms; /* how long a request waits for ingest / query */
} sl_api;

/* The gateway's routes (routes.c). */
extern const sl_route sl_api_routes[];

/* POST /v1/events?datasource=NAME (events.c). check refuses a bad request before its
 * body is read. */
void sl_api_events_check(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_events_post(void *state, sl_http_req *req, sl_http_resp *resp);

/* POST /v1/query (also /druid/v2, Druid's native endpoint) and GET /v1/datasources
 * (query.c). */
void sl_api_query_check(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_query_post(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* Druid SQL and metadata endpoints (sql.c): POST /v1/sql, /druid/v2/sql[/];
 * GET /status, /status/health, /druid/v2/datasources, /druid/v2/datasources/{name}. */
void sl_api_sql_check(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_sql_post(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_status_get(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_status_health_get(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_druid_datasources_get(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_druid_datasource_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* GET /healthz (health.c). */
void sl_api_healthz_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* Opens one REQ socket per actor instance (cfg->processes), dialed to its control
 * address; pings wait up to timeout_ms. *out is owned by the caller (sl_health_free). */
int sl_health_new(const sl_config *cfg, int timeout_ms, sl_health **out, sl_err *err);
void sl_health_free(sl_health *h);

/* GET /metrics (metrics.c): Prometheus text of every actor instance. */
void sl_api_metrics_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* Opens one REQ socket per actor instance but the gateway (cfg->processes), dialed to
 * its control address; each METRICS request waits up to timeout_ms. *out is owned by
 * the caller (sl_scrape_free; NULL is a no-op). */
int sl_scrape_new(const sl_config *cfg, int timeout_ms, sl_scrape **out, sl_err *err);
void sl_scrape_free(sl_scrape *s);

/* GET /v1/alerts and GET /v1/alerts/history (alerts.c), answered by the alerter. */
void sl_api_alerts_get(void *state, sl_http_req *req, sl_http_resp *resp);
void sl_api_alerts_history_get(void *state, sl_http_req *req, sl_http_resp *resp);

/* A REQ socket dialed to the alerter's address (*out owned by the caller). */
int sl_api_alerts_open(const sl_config *cfg, sl_sock **out, sl_err *err);

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
