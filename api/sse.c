/* GET /v1/live: Server-Sent Events that tell open dashboards "data changed".
 *
 * The storer publishes a NOTIFY after each commit; the gateway subscribes to it on
 * its actor loop (main thread) and writes one `change` event to every open stream.
 * Browsers re-query the public API when one arrives, so an event carries only what
 * changed (datasource, first and last minute bucket), never data. Pub/sub drops
 * messages for slow subscribers, and a client's queue is bounded: a lost hint only
 * delays an update, because the page also polls, slowly.
 *
 * Threads: HTTP workers add streams (sl_api_live_get); the loop thread writes to them
 * (NOTIFY, heartbeat). The client list is under mu; writes never block (they queue in
 * the stream, see sl_http_stream_write), and a write that finds its stream over (the
 * client left, the server is stopping, the client stopped reading) drops it. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "json.h"
#include "log.h"

/* A client that does not read for this many bytes of events is dropped. */
enum { LIVE_MAX_PENDING = 64 * 1024 };

struct sl_live {
    sl_sock *sub;
    pthread_mutex_t mu;
    sl_http_stream **clients; /* under mu */
    int nclients;
    int cap;
    uint64_t seq;   /* id of the last change event, under mu */
    sl_buf scratch; /* the loop thread's */
};

static void on_notify(void *state, sl_sock *from, const void *data, size_t len);
static void on_heartbeat(void *state);
static void broadcast_locked(sl_live *live, const char *data, size_t len);

static const sl_handler live_handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_NOTIFY] = on_notify,
};

int sl_live_new(const sl_config *cfg, sl_loop *loop, sl_live **out, sl_err *err)
{
    char addr[512];
    int rc;
    sl_live *live = sl_calloc(1, sizeof(*live));

    pthread_mutex_init(&live->mu, NULL);
    sl_buf_init(&live->scratch);
    if ((rc = sl_config_addr(cfg, SL_ADDR_NOTIFY, NULL, 0, addr, sizeof(addr))) != 0) {
        rc = sl_err_set(err, rc, "live: address of notify does not fit in %zu bytes", sizeof(addr));
        goto out;
    }
    if ((rc = sl_sock_open(&live->sub, SL_SOCK_SUB, err)) != 0 ||
        (rc = sl_sock_dial(live->sub, addr, err)) != 0 ||
        (rc = sl_loop_add_sock(loop, live->sub, live_handlers, live, err)) != 0 ||
        (rc = sl_loop_add_timer(loop, SL_LIVE_HEARTBEAT_MS, on_heartbeat, live, err)) != 0) {
        goto out;
    }
    SL_LOG(INFO, "live_subscribed", "addr=%s", addr);
out:
    if (rc != 0) {
        sl_live_free(live);
        live = NULL;
    }
    *out = live;
    return rc;
}

void sl_live_free(sl_live *live)
{
    if (live == NULL) {
        return;
    }
    sl_sock_close(live->sub);
    for (int i = 0; i < live->nclients; i++) {
        sl_http_stream_end(live->clients[i]);
        sl_http_stream_release(live->clients[i]);
    }
    free(live->clients);
    sl_buf_fini(&live->scratch);
    pthread_mutex_destroy(&live->mu);
    free(live);
}

/* ---- the endpoint (HTTP worker threads) -------------------------------------------- */

void sl_api_live_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    sl_live *live = api->live;
    char hello[160];

    if (live == NULL) {
        sl_http_resp_error(resp, 503, "live updates are not available on this gateway");
        return;
    }
    pthread_mutex_lock(&live->mu);
    if (live->nclients >= SL_LIVE_MAX_CLIENTS) {
        pthread_mutex_unlock(&live->mu);
        sl_http_resp_error(resp, 503, "too many live clients (%d); the page falls back to polling",
                           SL_LIVE_MAX_CLIENTS);
        sl_http_resp_header(resp, "Retry-After", "30");
        return;
    }
    if (live->nclients == live->cap) {
        live->cap = live->cap > 0 ? live->cap * 2 : 8;
        live->clients = sl_realloc(live->clients, (size_t)live->cap * sizeof(*live->clients));
    }
    resp->status = 200;
    resp->content_type = "text/event-stream";
    sl_http_resp_header(resp, "Cache-Control", "no-cache");
    sl_http_resp_header(resp, "X-Accel-Buffering", "no");
    /* The first bytes go out with the headers, so the browser sees the stream open at
     * once; retry: how soon EventSource reconnects after the stream ends. */
    int n =
        snprintf(hello, sizeof(hello), "retry: 1000\nevent: hello\ndata: {\"heartbeat_ms\":%d}\n\n",
                 SL_LIVE_HEARTBEAT_MS);
    sl_buf_reset(&resp->body);
    sl_buf_append(&resp->body, hello, (size_t)n);
    live->clients[live->nclients++] = sl_http_resp_stream(resp, LIVE_MAX_PENDING);
    int clients = live->nclients;
    pthread_mutex_unlock(&live->mu);
    SL_LOG(DEBUG, "live_client", "clients=%d", clients);
}

/* ---- broadcasting (the loop thread) --------------------------------------------------- */

static void on_notify(void *state, sl_sock *from, const void *data, size_t len)
{
    sl_live *live = state;
    sl_notify n;
    sl_err err;

    if (sl_notify_decode(data, len, &n, &err) != 0) {
        SL_LOG_RATE(WARN, 1000, "live_bad_notify", "error=\"%s\"", err.msg);
        return;
    }
    sl_live_publish(live, &n);
}

static void on_heartbeat(void *state)
{
    sl_live_heartbeat(state);
}

void sl_live_publish(sl_live *live, const sl_notify *n)
{
    char lo[32];
    char hi[32];

    pthread_mutex_lock(&live->mu);
    if (live->nclients == 0) {
        pthread_mutex_unlock(&live->mu);
        return;
    }
    sl_buf *b = &live->scratch;
    sl_buf_reset(b);
    sl_json_raw(b,
                "id: %llu\nevent: change\ndata: {\"datasource\":", (unsigned long long)++live->seq);
    sl_json_str(b, n->ds.p, n->ds.len);
    sl_json_raw(b, ",\"min_ms\":%lld,\"max_ms\":%lld,\"min\":\"%s\",\"max\":\"%s\"}\n\n",
                (long long)n->min_ms, (long long)n->max_ms,
                sl_time_format(n->min_ms, lo, sizeof(lo)),
                sl_time_format(n->max_ms, hi, sizeof(hi)));
    broadcast_locked(live, b->data, b->len);
    pthread_mutex_unlock(&live->mu);
}

void sl_live_heartbeat(sl_live *live)
{
    static const char ping[] = ": ping\n\n";

    pthread_mutex_lock(&live->mu);
    broadcast_locked(live, ping, sizeof(ping) - 1);
    pthread_mutex_unlock(&live->mu);
}

int sl_live_clients(sl_live *live)
{
    pthread_mutex_lock(&live->mu);
    int n = live->nclients;
    pthread_mutex_unlock(&live->mu);
    return n;
}

/* Writes to every client, dropping those whose stream is over. */
static void broadcast_locked(sl_live *live, const char *data, size_t len)
{
    int kept = 0;

    for (int i = 0; i < live->nclients; i++) {
        sl_http_stream *s = live->clients[i];
        int rc = sl_http_stream_write(s, data, len);
        if (rc == 0) {
            live->clients[kept++] = s;
            continue;
        }
        if (rc == SL_ETOOBIG) {
            SL_LOG_RATE(INFO, 1000, "live_client_slow", "pending_limit=%d", (int)LIVE_MAX_PENDING);
        }
        sl_http_stream_release(s);
    }
    live->nclients = kept;
}
