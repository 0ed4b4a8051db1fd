/* The query actor: answers Druid native and SQL queries and the datasource listing from the
 * LMDB segment store, read-only.
 *
 * A REP socket dials the gateway's query address (the gateway's REQ socket listens
 * there and spreads requests over every query process). Each QUERY_REQ gets exactly
 * one QUERY_REP {http_status, body}, errors included, so a gateway request never
 * waits for a reply that will not come. The storer creates the store; until it exists
 * the store is re-opened on each request and every datasource answers as empty. */
#include <stdio.h>
#include <string.h>

#include "actor.h"
#include "exec.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "result.h"
#include "sql.h"
#include "store.h"

/* See the end of on_query. */
#define RELEASE_AFTER_BYTES (4 << 20)
#define RELEASE_ABOVE_SHARE 0.25

typedef struct query {
    sl_actor *a;
    sl_sock *rep;
    sl_store *store; /* NULL until the storer has created it */
    char store_dir[4096];
    sl_buf body;  /* response body */
    sl_buf reply; /* encoded QUERY_REP */
    uint64_t served, failed;
} query;

int sl_query_run(sl_actor *a, sl_err *err);

/* ---- run ------------------------------------------------------------------------------- */

static void on_query(void *state, sl_sock *from, const void *data, size_t len);
static void on_other(void *state, sl_sock *from, const void *data, size_t len);
static void open_store(query *s);
static const char *query_type(const sl_query_req *req);

static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_INGEST_REQ] = on_other, [SL_MSG_INGEST_REP] = on_other, [SL_MSG_EVENTS] = on_other,
    [SL_MSG_PART_BATCH] = on_other, [SL_MSG_DELTA] = on_other,      [SL_MSG_QUERY_REQ] = on_query,
    [SL_MSG_QUERY_REP] = on_other,  [SL_MSG_PING] = on_other,       [SL_MSG_PONG] = on_other,
    [SL_MSG_NOTIFY] = on_other,
};

int sl_query_run(sl_actor *a, sl_err *err)
{
    query s = {.a = a};
    char addr[512];
    int rc;
    sl_buf_init(&s.body);
    sl_buf_init(&s.reply);
    snprintf(s.store_dir, sizeof(s.store_dir), "%s/segments", a->cfg->data_dir);
    open_store(&s);
    if ((rc = sl_sock_open(&s.rep, SL_SOCK_REP, err)) != 0 ||
        (rc = sl_sock_dial(s.rep, sl_actor_addr(a, SL_ADDR_QUERY, 0, addr, sizeof(addr)), err)) !=
            0 ||
        (rc = sl_loop_add_sock(a->loop, s.rep, handlers, &s, err)) != 0) {
        goto out;
    }
    SL_LOG(INFO, "query_ready", "addr=%s store=%s", addr, s.store != NULL ? "open" : "absent");
    sl_loop_run(a->loop);
    SL_LOG(INFO, "query_stopped", "served=%llu failed=%llu", (unsigned long long)s.served,
           (unsigned long long)s.failed);
out:
    sl_sock_close(s.rep);
    sl_store_close(s.store);
    sl_buf_fini(&s.body);
    sl_buf_fini(&s.reply);
    return rc;
}

/* ---- handlers -------------------------------------------------------------------------- */

static void send_reply(query *s, sl_sock *to, int status)
{
    sl_err err = {0, ""};
    sl_query_rep rep = {.http_status = status,
                        .body = {s->body.data != NULL ? s->body.data : "", s->body.len}};
    sl_buf_reset(&s->reply);
    sl_query_rep_encode(&s->reply, &rep);
    if (sl_sock_send(to, s->reply.data, s->reply.len, false, &err) != 0) {
        SL_LOG_RATE(WARN, 1000, "reply_failed", "status=%d error=\"%s\"", status, err.msg);
    }
    s->served++;
    if (status >= 500) {
        s->failed++;
    }
}

static void on_query(void *state, sl_sock *from, const void *data, size_t len)
{
    query *s = state;
    sl_err err = {0, ""};
    sl_query_req req;
    int64_t t0 = sl_mono_ms();
    int64_t t0_ns = sl_mono_ns();
    int status;
    sl_buf_reset(&s->body);
    if (sl_query_req_decode(data, len, &req, &err) != 0) {
        status = sl_res_error(&s->body, SL_EIO, err.msg);
        send_reply(s, from, status);
        return;
    }
    if (s->store == NULL) {
        open_store(s);
    }
    switch (req.kind) {
    case SL_QUERY_NATIVE:
        status = sl_query_native(s->a->cfg, s->store, req.body.p, req.body.len,
                                 s->a->cfg->request_timeout_ms, &s->body);
        break;
    case SL_QUERY_SQL:
        status = sl_query_sql(s->a->cfg, s->store, req.body.p, req.body.len,
                              s->a->cfg->request_timeout_ms, &s->body);
        break;
    case SL_QUERY_DATASOURCES:
        status = sl_res_datasources(s->a->cfg, s->store, &s->body);
        break;
    default:
        sl_err_set(&err, SL_EINVAL, "query kind %d is not supported by sluice-query", req.kind);
        status = sl_res_error(&s->body, SL_EINVAL, err.msg);
        break;
    }
    int64_t cap = sl_config_max_answer_bytes(s->a->cfg);
    if ((int64_t)s->body.len > cap) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "the answer is %zu bytes, more than the %lld bytes a query answer may take "
                 "(half of memory_mb.gateway shared by gateway.http_threads); narrow the "
                 "intervals, use a coarser granularity, fewer dimensions, a filter or a limit",
                 s->body.len, (long long)cap);
        SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "refuse");
        sl_buf_reset(&s->body);
        status = req.kind == SL_QUERY_SQL ? sl_sql_error(&s->body, SL_ETOOBIG, msg)
                                          : sl_res_error(&s->body, SL_ETOOBIG, msg);
    }
    int64_t ms = sl_mono_ms() - t0;
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    SL_METRIC_OBSERVE(SL_M_QUERY_SECONDS, (double)(sl_mono_ns() - t0_ns) / 1e9, query_type(&req));
    SL_METRIC_ADD(SL_M_QUERIES, 1, query_type(&req), code);
    if (status >= 500) {
        int n = s->body.len < 200 ? (int)s->body.len : 200;
        SL_LOG_RATE(WARN, 1000, "query_failed", "kind=%d status=%d ms=%lld body=%.*s", req.kind,
                    status, (long long)ms, n, s->body.data != NULL ? s->body.data : "");
    } else {
        SL_LOG(DEBUG, "query", "kind=%d status=%d ms=%lld bytes=%zu", req.kind, status,
               (long long)ms, s->body.len);
    }
    send_reply(s, from, status);
    /* A large answer (or a large query that failed) leaves a large buffer and freed
     * heap behind: give them back, so the next query starts from a small process and the
     * memory bound (memory_mb.query) measures that query alone. */
    if (s->body.cap > RELEASE_AFTER_BYTES || sl_mem_above(RELEASE_ABOVE_SHARE)) {
        sl_buf_fini(&s->body);
        sl_mem_release();
    }
}

/* Anything else on a REP socket still gets an answer, or the requester would hang. */
static void on_other(void *state, sl_sock *from, const void *data, size_t len)
{
    query *s = state;
    char msg[100];
    snprintf(msg, sizeof(msg), "sluice-query does not handle message type %d",
             sl_msg_type(data, len));
    send_reply(s, from, sl_res_error(&s->body, SL_EIO, msg));
}

/* ---- helpers --------------------------------------------------------------------------- */

/* The metric label of a query: its native queryType (from a cheap scan of the body: only
 * the known names, so label values stay few), sql or datasources. */
static const char *query_type(const sl_query_req *req)
{
    static const char *const types[] = {"timeseries", "topN", "groupBy", "timeBoundary"};
    if (req->kind == SL_QUERY_SQL) {
        return "sql";
    }
    if (req->kind == SL_QUERY_DATASOURCES) {
        return "datasources";
    }
    if (req->kind != SL_QUERY_NATIVE) {
        return "other";
    }
    const char *p = req->body.p, *end = req->body.p + req->body.len;
    static const char key[] = "\"queryType\"";
    while (p != NULL && p < end) {
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL) {
            break;
        }
        if (end - p < (ptrdiff_t)sizeof(key) || memcmp(p, key, sizeof(key) - 1) != 0) {
            p++;
            continue;
        }
        const char *v = p + sizeof(key) - 1;
        while (v < end && (*v == ' ' || *v == ':' || *v == '\t' || *v == '\n' || *v == '\r')) {
            v++;
        }
        for (size_t i = 0; v < end && *v == '"' && i < sizeof(types) / sizeof(types[0]); i++) {
            size_t n = strlen(types[i]);
            if ((size_t)(end - v) > n + 1 && memcmp(v + 1, types[i], n) == 0 && v[n + 1] == '"') {
                return types[i];
            }
        }
        return "invalid";
    }
    return "invalid";
}

static void open_store(query *s)
{
    sl_err err = {0, ""};
    const sl_config *cfg = s->a->cfg;
    if (sl_store_open(&s->store, s->store_dir, true, cfg->map_size_mb, cfg->max_map_size_mb,
                      &err) != 0) {
        s->store = NULL;
        SL_LOG_RATE(INFO, 10000, "store_absent", "dir=%s error=\"%s\"", s->store_dir, err.msg);
    }
}
