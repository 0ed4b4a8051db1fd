/* The ingest actor: the gateway's REQ socket listens on addresses.ingest and spreads
 * INGEST_REQ messages over every ingest process, whose REP sockets dial it. Each
 * request body is parsed and validated against its datasource spec (parse.c); the
 * accepted events go, split by partition, as one APPEND request (with the client's
 * Idempotency-Key) to the partitioner, which answers once they are in the partition
 * log (fsync'd, with the default log.fsync). Only then does the gateway get its
 * INGEST_REP with the counts and the first rejection reasons: a 200 means durable.
 *
 * Nothing is held here between requests: a request's events are either durable in
 * the log before the reply, or the reply says nothing was accepted (status SL_EBUSY,
 * SL_EUNAVAIL or SL_ENOSPC, retriable) so the client sends the body again, with the
 * same key. The wait is bounded by half the gateway's request timeout, so the reply
 * still reaches the gateway before it gives up. Every request gets exactly one reply,
 * including malformed and unexpected messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"
#include "kafka.h"
#include "log.h"
#include "msg.h"
#include "metrics.h"
#include "parse.h"
#include "sock.h"

#define STATS_INTERVAL_MS 10000

/* X(name): counters, logged every STATS_INTERVAL_MS when they changed. */
#define INGEST_COUNTERS(X)                                                                         \
    X(requests)                                                                                    \
    X(accepted)                                                                                    \
    X(rejected)                                                                                    \
    X(bad_requests)                                                                                \
    X(unknown_datasource)                                                                          \
    X(malformed_bodies)                                                                            \
    X(push_failures)                                                                               \
    X(reply_failures)

typedef struct ingest_counters {
#define INGEST_COUNTER_FIELD(name) int64_t name;
    INGEST_COUNTERS(INGEST_COUNTER_FIELD)
#undef INGEST_COUNTER_FIELD
} ingest_counters;

typedef struct ingest {
    sl_actor *a;
    sl_sock *rep;  /* requests from the gateway */
    sl_sock *push; /* APPEND requests to the partitioner (REQ) */
    int push_timeout_ms;
    sl_parser parser;
    sl_log_part parts[SL_MAX_PARTITIONS];
    sl_buf events_msg;
    sl_buf reply;
    ingest_counters n;
    ingest_counters logged; /* as of the last stats line */
    sl_kafka *kafka;        /* Kafka consumers (own threads, kafka.c); NULL: none enabled */
} ingest;

static const sl_handler handlers[SL_MSG_TYPE_COUNT];

static void on_stats(void *state);
static void log_stats(ingest *st, const char *event);
static void count_events(const sl_spec *spec, const sl_parser *p, bool duplicate);
static const char *request_result(int status, bool duplicate);
static const char *log_quote(const char *s, size_t len, char *buf, size_t size);

int sl_ingest_run(sl_actor *a, sl_err *err)
{
    ingest *st = sl_calloc(1, sizeof(*st));
    char addr[512];
    int rc;
    st->a = a;
    sl_parser_init(&st->parser);
    sl_buf_init(&st->events_msg);
    sl_buf_init(&st->reply);
    /* half the gateway's timeout: a reply saying "busy" still reaches it in time */
    st->push_timeout_ms = (int)(a->cfg->request_timeout_ms / 2);

    sl_actor_addr(a, SL_ADDR_PARTITIONER, 0, addr, sizeof(addr));
    if ((rc = sl_sock_open(&st->push, SL_SOCK_REQ, err)) != 0 ||
        (rc = sl_sock_dial(st->push, addr, err)) != 0) {
        goto out;
    }
    sl_actor_addr(a, SL_ADDR_INGEST, 0, addr, sizeof(addr));
    if ((rc = sl_sock_open(&st->rep, SL_SOCK_REP, err)) != 0 ||
        (rc = sl_sock_set_timeouts(st->rep, st->push_timeout_ms, -1)) != 0 ||
        (rc = sl_sock_dial(st->rep, addr, err)) != 0 ||
        (rc = sl_loop_add_sock(a->loop, st->rep, handlers, st, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, STATS_INTERVAL_MS, on_stats, st, err)) != 0) {
        goto out;
    }
    SL_LOG(INFO, "ingest_ready", "ingest=%s push_timeout_ms=%d max_errors=%lld", addr,
           st->push_timeout_ms, (long long)a->cfg->max_errors_listed);
    /* Every datasource's counter exists from the start (rate() needs a first 0); the
     * Kafka lag gauge is declared for the Kafka source, not built yet. */
    for (int i = 0; i < a->cfg->ndatasources; i++) {
        SL_METRIC_ADD(SL_M_EVENTS_ACCEPTED, 0, a->cfg->datasources[i]->name);
    }
    sl_metrics_family(sl_metrics_default(), SL_M_KAFKA_LAG);
    /* Kafka sources: consumer threads with their own partitioner socket; the loop
     * below serves HTTP requests meanwhile. */
    if ((rc = sl_kafka_start(&st->kafka, a->cfg, a->instance, err)) != 0) {
        goto out;
    }
    rc = sl_loop_run(a->loop);
    log_stats(st, "ingest_final_stats");
out:
    sl_kafka_stop(st->kafka);
    sl_sock_close(st->rep);
    sl_sock_close(st->push);
    sl_parser_fini(&st->parser);
    sl_buf_fini(&st->events_msg);
    sl_buf_fini(&st->reply);
    free(st);
    return rc;
}

/* ---- handlers ---------------------------------------------------------------------- */

static int push_events(ingest *st, const sl_spec *spec, sl_str key, bool *dup, sl_err *err);
static void send_reply(ingest *st, sl_sock *to, const sl_ingest_rep *rep);

static void on_ingest_req(void *state, sl_sock *from, const void *data, size_t len)
{
    ingest *st = state;
    const sl_config *cfg = st->a->cfg;
    int64_t t0 = sl_mono_ns();
    sl_err err = {0};
    sl_ingest_req req;
    memset(&req, 0, sizeof(req));
    sl_ingest_rep rep = {0};
    const sl_spec *spec = NULL;
    st->n.requests++;

    int rc = sl_ingest_req_decode(data, len, &req, &err);
    if (rc != 0) {
        st->n.bad_requests++;
        rep.status = rc;
        goto reply;
    }
    char name[256];
    if (req.ds.len < sizeof(name)) {
        memcpy(name, req.ds.p, req.ds.len);
        name[req.ds.len] = '\0';
        /* a NUL inside the name must not match a shorter datasource */
        if (strlen(name) == req.ds.len) {
            spec = sl_config_find(cfg, name);
        }
    }
    if (spec == NULL) {
        st->n.unknown_datasource++;
        rep.status = sl_err_set(&err, SL_ENOTFOUND, "unknown datasource \"%.*s\"",
                                (int)(req.ds.len > 128 ? 128 : req.ds.len), req.ds.p);
        goto reply;
    }
    sl_parser *p = &st->parser;
    rc = sl_parser_run(p, spec, req.body.p, req.body.len, sl_now_ms(), (int)cfg->max_errors_listed,
                       &err);
    if (rc != 0) {
        st->n.malformed_bodies++;
        rep.status = rc;
        goto reply;
    }
    rep.accepted = p->accepted;
    rep.rejected = p->rejected;
    rep.nerrors = p->nerrors;
    rep.errors = p->errors;
    if (p->accepted > 0 && (rc = push_events(st, spec, req.key, &rep.duplicate, &err)) != 0) {
        st->n.push_failures++;
        rep.status = rc;
        rep.accepted = 0; /* nothing was taken: the client sends the body again */
        goto reply;
    }
    st->n.accepted += p->accepted;
    st->n.rejected += p->rejected;
    count_events(spec, p, rep.duplicate);
reply:
    if (rep.status != 0) {
        rep.error = (sl_str){err.msg, strlen(err.msg)};
    }
    send_reply(st, from, &rep);
    SL_METRIC_ADD(SL_M_INGEST_REQUESTS, 1, request_result(rep.status, rep.duplicate));
    SL_METRIC_OBSERVE(SL_M_INGEST_SECONDS, (double)(sl_mono_ns() - t0) / 1e9);
    if (rep.status != 0) {
        char ds[80], msg[600];
        SL_LOG_RATE(WARN, 1000, "ingest_failed", "ds=\"%s\" bytes=%zu code=%s error=\"%s\"",
                    log_quote(req.ds.p, req.ds.len, ds, sizeof(ds)), req.body.len,
                    sl_err_name(rep.status), log_quote(err.msg, strlen(err.msg), msg, sizeof(msg)));
    } else {
        SL_LOG_RATE(INFO, 1000, "ingest_request",
                    "ds=%s bytes=%zu accepted=%lld rejected=%lld us=%lld", spec->name, req.body.len,
                    (long long)rep.accepted, (long long)rep.rejected,
                    (long long)((sl_mono_ns() - t0) / 1000));
    }
}

/* Anything but INGEST_REQ on the REP socket is a bug elsewhere; the REQ side still
 * gets a reply instead of waiting for its timeout. */
static void on_unexpected(void *state, sl_sock *from, const void *data, size_t len)
{
    ingest *st = state;
    sl_err err = {0};
    st->n.bad_requests++;
    sl_ingest_rep rep = {.status = sl_err_set(&err, SL_ECODEC,
                                              "unexpected message type %d on the ingest socket",
                                              sl_msg_type(data, len))};
    rep.error = (sl_str){err.msg, strlen(err.msg)};
    send_reply(st, from, &rep);
    SL_LOG_RATE(WARN, 1000, "unexpected_message", "type=%d bytes=%zu", sl_msg_type(data, len), len);
}

static void on_stats(void *state)
{
    ingest *st = state;
    if (memcmp(&st->n, &st->logged, sizeof(st->n)) != 0) {
        log_stats(st, "ingest_stats");
    }
}

/* ---- helpers ---------------------------------------------------------------------- */

/* One APPEND request with a part per non-empty partition; returns once the
 * partitioner has made it durable (0), or why it did not take it. */
static int push_events(ingest *st, const sl_spec *spec, sl_str key, bool *dup, sl_err *err)
{
    const sl_parser *p = &st->parser;
    int n = 0;
    for (int i = 0; i < p->nparts; i++) {
        if (p->counts[i] > 0) {
            st->parts[n++] = (sl_log_part){
                .partition = i,
                .count = p->counts[i],
                .events = {p->parts[i].data, p->parts[i].len},
            };
        }
    }
    sl_log_record m = {.ds = {spec->name, strlen(spec->name)}, .key = key, .nparts = n,
                       .parts = st->parts};
    sl_buf_reset(&st->events_msg);
    sl_log_record_encode(&st->events_msg, SL_MSG_APPEND_REQ, &m);
    sl_err serr = {0};
    sl_msg *reply = NULL;
    int rc = sl_sock_request(st->push, st->events_msg.data, st->events_msg.len,
                             st->push_timeout_ms, &reply, &serr);
    if (rc == SL_ETIMEDOUT || rc == SL_EBUSY) {
        return sl_err_set(err, SL_EBUSY,
                          "partitioner did not confirm the events within %d ms; nothing was "
                          "acknowledged, retry later with the same Idempotency-Key",
                          st->push_timeout_ms);
    }
    if (rc != 0) {
        return sl_err_set(err, SL_EUNAVAIL,
                          "partitioner unavailable (%s); nothing was accepted, retry later",
                          serr.msg);
    }
    sl_append_rep ar;
    rc = sl_append_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &ar, &serr);
    if (rc == 0 && ar.status != 0) {
        int code = ar.status == SL_EBUSY || ar.status == SL_ENOSPC ? ar.status : SL_EUNAVAIL;
        rc = sl_err_set(err, code, "%.*s", (int)ar.error.len, ar.error.p != NULL ? ar.error.p : "");
    } else if (rc != 0) {
        rc = sl_err_set(err, SL_EUNAVAIL, "bad reply from the partitioner: %s", serr.msg);
    } else {
        *dup = ar.duplicate;
    }
    sl_msg_free(reply);
    return rc;
}

static void send_reply(ingest *st, sl_sock *to, const sl_ingest_rep *rep)
{
    sl_err err = {0};
    sl_buf_reset(&st->reply);
    sl_ingest_rep_encode(&st->reply, rep);
    if (sl_sock_send(to, st->reply.data, st->reply.len, false, &err) != 0) {
        st->n.reply_failures++;
        SL_LOG_RATE(WARN, 1000, "reply_failed", "error=\"%s\"", err.msg);
    }
}

/* Makes s safe inside a quoted logfmt value: quotes and backslashes escaped, control
 * bytes as '?', cut to fit buf. s may be NULL. */
static const char *log_quote(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; s != NULL && i < len && n + 3 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else {
            buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    buf[n] = '\0';
    return buf;
}

/* The metric label of a rejection reason (parse.c's messages, by their fixed start). */
static const char *reject_reason(sl_str reason)
{
    static const struct {
        const char *prefix;
        const char *label;
    } kinds[] = {
        {"malformed JSON", "malformed_json"},       {"event is not a JSON object", "not_object"},
        {"missing timestamp", "missing_timestamp"}, {"timestamp field", "bad_timestamp"},
        {"timestamp ", "out_of_range_time"}, /* older / further than the rejection periods */
        {"partition key", "bad_partition_key"},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (reason.len >= n && memcmp(reason.p, kinds[i].prefix, n) == 0) {
            return kinds[i].label;
        }
    }
    /* field "x": <time error> | field "x" must be ... | dimension "x" ... */
    const char *q = reason.len > 7 ? memchr(reason.p + 7, '"', reason.len - 7) : NULL;
    if (reason.len > 7 && memcmp(reason.p, "field \"", 7) == 0 && q != NULL) {
        return q + 1 < reason.p + reason.len && q[1] == ':' ? "bad_timestamp" : "bad_number";
    }
    if (reason.len > 11 && memcmp(reason.p, "dimension \"", 11) == 0) {
        /* reason views are NUL-terminated (parse.h) */
        return strstr(reason.p, "bytes, longer") != NULL ? "string_too_long" : "bad_dimension";
    }
    return "other";
}

/* Accepted events (unless the request was a duplicate: counted the first time) and
 * rejected ones by reason. */
static void count_events(const sl_spec *spec, const sl_parser *p, bool duplicate)
{
    if (duplicate) {
        SL_METRIC_ADD(SL_M_EVENTS_DUPLICATE, (double)p->accepted, spec->name);
        return;
    }
    SL_METRIC_ADD(SL_M_EVENTS_ACCEPTED, (double)p->accepted, spec->name);
    for (int i = 0; i < p->nerrors; i++) {
        SL_METRIC_ADD(SL_M_EVENTS_REJECTED, 1, spec->name, reject_reason(p->errors[i].reason));
    }
    if (p->rejected > p->nerrors) {
        SL_METRIC_ADD(SL_M_EVENTS_REJECTED, (double)(p->rejected - p->nerrors), spec->name,
                      "unlisted");
    }
}

static const char *request_result(int status, bool duplicate)
{
    switch (status) {
    case 0:
        return duplicate ? "duplicate" : "ok";
    case SL_ECODEC:
        return "bad_request";
    case SL_ENOTFOUND:
        return "unknown_datasource";
    case SL_EPARSE:
        return "malformed_body";
    case SL_EBUSY:
        return "busy";
    case SL_EUNAVAIL:
        return "unavailable";
    case SL_ENOSPC:
        return "no_space";
    default:
        return "error";
    }
}

static void log_stats(ingest *st, const char *event)
{
    char line[512];
    int n = 0;
#define INGEST_COUNTER_FMT(name)                                                                   \
    n += snprintf(line + n, sizeof(line) - (size_t)n, "%s" #name "=%lld", n > 0 ? " " : "",        \
                  (long long)st->n.name);
    INGEST_COUNTERS(INGEST_COUNTER_FMT)
#undef INGEST_COUNTER_FMT
    SL_LOG(INFO, event, "%s", line);
    st->logged = st->n;
}

/* ---- tables ------------------------------------------------------------------------ */

/* Every other type, including ones added later, still gets a reply (GNU ranges). */
static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_NONE... SL_MSG_INGEST_REQ - 1] = on_unexpected,
    [SL_MSG_INGEST_REQ] = on_ingest_req,
    [SL_MSG_INGEST_REQ + 1 ... SL_MSG_TYPE_COUNT - 1] = on_unexpected,
};
