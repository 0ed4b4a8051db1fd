/* The gateway actor: the only process with an HTTP port. It turns HTTP requests into
 * internal requests and back (the endpoints are in api/):
 *
 *   POST /v1/events  -> INGEST_REQ on a REQ socket listening on addresses.ingest;
 *                       ingest processes dial it and NNG spreads requests over them
 *   POST /v1/query, GET /v1/datasources -> QUERY_REQ on addresses.query, the same way
 *   GET /healthz     -> PING to every actor instance's control socket
 *
 * The HTTP server runs its own worker threads, which make these requests; the main
 * thread only runs the actor loop (signals, the control socket) until SIGTERM, then
 * stops the HTTP server, letting requests in flight finish before the sockets close. */
#include <stdio.h>
#include <string.h>

#include "actor.h"
#include "api.h"
#include "dashboard.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "sock.h"

/* /healthz waits this long for each actor's PONG. */
enum { HEALTH_TIMEOUT_MS = 500 };
/* /metrics waits this long for each actor's metrics. */
enum { METRICS_TIMEOUT_MS = 1000 };

int sl_gateway_run(sl_actor *a, sl_err *err);

static int open_req(const sl_actor *a, sl_addr_kind role, sl_sock **out, sl_err *err);

int sl_gateway_run(sl_actor *a, sl_err *err)
{
    const sl_config *cfg = a->cfg;
    sl_api api = {.cfg = cfg, .timeout_ms = (int)cfg->request_timeout_ms};
    sl_http *http = NULL;
    int rc;

    sl_http_opts opts = {
        .host = cfg->http_host,
        .port = cfg->http_port,
        .threads = (int)cfg->http_threads,
        .max_body = (size_t)cfg->max_body_bytes,
        .idle_timeout_s = 60,
        /* A request in flight waits at most request_timeout_ms for its reply. */
        .drain_ms = (int)cfg->request_timeout_ms + 1000,
        /* The rest of memory_mb.gateway: query answers on their way in (each at most
         * sl_config_max_answer_bytes, one per HTTP thread) and the process itself. */
        .max_buffered = (size_t)sl_mem_budget(SL_GATEWAY_BUFFERED_SHARE),
    };
    /* The port first: a second gateway on the same instance fails here, before its
     * sockets take over the internal addresses of the one already running. */
    if ((rc = sl_http_listen(&opts, sl_api_routes, &api, &http, err)) != 0 ||
        (rc = open_req(a, SL_ADDR_INGEST, &api.ingest, err)) != 0 ||
        (rc = open_req(a, SL_ADDR_QUERY, &api.query, err)) != 0 ||
        (rc = sl_health_new(cfg, HEALTH_TIMEOUT_MS, &api.health, err)) != 0 ||
        (rc = sl_live_new(cfg, a->loop, &api.live, err)) != 0 ||
        (rc = sl_scrape_new(cfg, METRICS_TIMEOUT_MS, &api.scrape, err)) != 0 ||
        (rc = sl_api_alerts_open(cfg, &api.alerter, err)) != 0 ||
        (rc = sl_http_serve(http, err)) != 0) {
        goto out;
    }
    SL_LOG(INFO, "http_listening", "host=%s port=%d threads=%d max_body_bytes=%lld", cfg->http_host,
           sl_http_port(http), opts.threads, (long long)cfg->max_body_bytes);
    rc = sl_loop_run(a->loop);
    SL_LOG(INFO, "http_stopping", "%s", "");
out:
    /* The HTTP threads use the sockets: they stop first. */
    sl_http_stop(http);
    sl_live_free(api.live);
    sl_scrape_free(api.scrape);
    sl_sock_close(api.alerter);
    sl_health_free(api.health);
    sl_sock_close(api.query);
    sl_sock_close(api.ingest);
    return rc;
}

/* A REQ socket listening on the address of role; the serving actors dial it. */
static int open_req(const sl_actor *a, sl_addr_kind role, sl_sock **out, sl_err *err)
{
    char addr[512];
    int rc;

    sl_actor_addr(a, role, 0, addr, sizeof(addr));
    if ((rc = sl_sock_open(out, SL_SOCK_REQ, err)) != 0) {
        return rc;
    }
    if ((rc = sl_sock_listen(*out, addr, err)) != 0) {
        sl_sock_close(*out);
        *out = NULL;
    }
    return rc;
}
