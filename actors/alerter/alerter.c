/* The alerter actor: evaluates the alert rules of configs/alerts/ (alerter.rules) and
 * tells the world when their state changes.
 *
 * Three threads. The actor loop answers the gateway's ALERTS requests (GET /v1/alerts
 * and /v1/alerts/history, on a REP socket listening on addresses.alerter) and hears the
 * storer's NOTIFY hints (SUB on addresses.notify), which wake the rules on the data
 * clock. The evaluation thread runs each rule when it is due (its `every`, or a wake):
 * it sends the rule's queries to the gateway over HTTP (the same API users query, so
 * a rule means exactly what its query means there), applies the condition and steps
 * the state machine (rules.c). The notification thread POSTs each transition to the
 * rule's webhook, with a timeout and retries with exponential backoff.
 *
 * Persistence (<data>/alerter, LMDB through storage/blobs.h): each rule's state, the
 * transition history and the outbox of notifications not yet delivered. A transition
 * is written -- state, history entry and outbox entry in one synced transaction --
 * before anything is sent, and an outbox entry is deleted once its webhook answered
 * 2xx. So a restart re-sends nothing that was delivered, and still delivers what was
 * not; a crash between a delivery and its deletion sends that one again (at least
 * once: receivers can use the transition "id" to drop repeats). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "actor.h"
#include "blobs.h"
#include "clock.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "rules.h"

#define MAX_CATCHUP 120        /* data clock: windows evaluated per evaluation at most */
#define HISTORY_KEEP 10000     /* transitions kept in the history */
#define STARTUP_GRACE_MS 30000 /* transient query failures right after start are retried */
#define MAX_RESULT_BYTES (64u << 20)
#define MAX_BACKOFF_MS 300000

typedef struct transition {
    int64_t id;
    int from, to;
    bool notify;
    double value, baseline;
    int64_t wstart, wend; /* the window judged (0: none) */
    int64_t clock_ms;
    int64_t at_ms; /* wall */
    char detail[256];
    char error[512];
} transition;

/* A rule and what the alerter knows about it. Fields below `st` are persisted. */
typedef struct rule_rt {
    sl_alert_rule *r;
    sl_alert_status st;
    int64_t since_wall_ms;
    double value, baseline;
    int64_t wstart, wend;
    int64_t last_window_end; /* data clock: newest window evaluated */
    int64_t last_eval_ms;
    int64_t evaluations;
    char error[512];
    char detail[256];
    /* scheduling (evaluation thread, under mu) */
    int64_t due_ms; /* monotonic */
    bool woken;
} rule_rt;

typedef struct outbox_item {
    int64_t id;
    int rule; /* index into rules, -1 when the rule is gone */
    int attempts;
    int64_t due_ms; /* monotonic */
} outbox_item;

typedef struct alerter {
    sl_actor *a;
    const sl_config *cfg;
    sl_sock *rep, *sub;
    sl_blobs *db;
    char base_url[320];
    char rules_dir[4096];
    sl_alert_rule **rules;
    int nrules;
    rule_rt *rt;
    int64_t started_mono;
    pthread_mutex_t mu;
    pthread_cond_t eval_cv, send_cv;
    bool stopping;
    atomic_bool cancel; /* set at shutdown: aborts the HTTP requests in flight */
    int64_t next_id;
    outbox_item *outbox;
    int nout, capout;
    pthread_t eval_th, send_th;
    bool eval_started, send_started, httpc;
    sl_buf reply, json;
} alerter;

int sl_alerter_run(sl_actor *a, sl_err *err);

static int load_state(alerter *al, sl_err *err);
static void *eval_main(void *arg);
static void *send_main(void *arg);
static void evaluate(alerter *al, rule_rt *x, transition *tr, int *ntr);
static void commit(alerter *al, int i, const rule_rt *x, transition *tr, int ntr);
static void rule_json(sl_buf *out, const rule_rt *x);
static void set_state_gauges(const rule_rt *x);
static int64_t mono_deadline(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_mono);

/* The text of a string value ("" for anything else): never NULL. */
static const char *sval(yajl_val v)
{
    return v != NULL && YAJL_IS_STRING(v) && v->u.string != NULL ? v->u.string : "";
}

/* ---- run ------------------------------------------------------------------------------ */

static void on_alerts(void *state, sl_sock *from, const void *data, size_t len);
static void on_other(void *state, sl_sock *from, const void *data, size_t len);
static void on_notify(void *state, sl_sock *from, const void *data, size_t len);

static sl_handler rep_handlers[SL_MSG_TYPE_COUNT];
static const sl_handler sub_handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_NOTIFY] = on_notify,
};

int sl_alerter_run(sl_actor *a, sl_err *err)
{
    alerter al = {.a = a, .cfg = a->cfg, .started_mono = sl_mono_ms(), .next_id = 1};
    atomic_init(&al.cancel, false);
    char addr[512], dir[4096];
    int rc;
    pthread_condattr_t ca;
    pthread_mutex_init(&al.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&al.eval_cv, &ca);
    pthread_cond_init(&al.send_cv, &ca);
    pthread_condattr_destroy(&ca);
    sl_buf_init(&al.reply);
    sl_buf_init(&al.json);
    for (int t = 0; t < SL_MSG_TYPE_COUNT; t++) {
        rep_handlers[t] = t == SL_MSG_ALERTS_REQ ? on_alerts : on_other;
    }

    if (a->cfg->processes[SL_ACTOR_ALERTER] != 1) {
        /* Two alerters would evaluate and notify everything twice. */
        rc = sl_err_set(err, SL_ECONFIG, "%s: processes.alerter must be 1", a->cfg->path);
        goto out;
    }
    /* Rules: alerter.rules, relative to the config file's directory. */
    const char *rd = a->cfg->alerter_rules;
    if (rd[0] == '/') {
        snprintf(al.rules_dir, sizeof(al.rules_dir), "%s", rd);
    } else {
        const char *slash = strrchr(a->cfg->path, '/');
        int dlen = slash != NULL ? (int)(slash - a->cfg->path) : 1;
        snprintf(al.rules_dir, sizeof(al.rules_dir), "%.*s/%s", dlen,
                 slash != NULL ? a->cfg->path : ".", rd);
    }
    if ((rc = sl_alert_rules_load(al.rules_dir, &al.rules, &al.nrules, err)) != 0) {
        goto out;
    }
    al.rt = sl_calloc((size_t)(al.nrules > 0 ? al.nrules : 1), sizeof(rule_rt));
    for (int i = 0; i < al.nrules; i++) {
        al.rt[i].r = al.rules[i];
        al.rt[i].value = al.rt[i].baseline = NAN;
        /* Spread the first evaluations a little; the gateway may still be starting. */
        al.rt[i].due_ms = al.started_mono + 200 + 50 * i;
    }
    snprintf(dir, sizeof(dir), "%s/alerter", a->cfg->data_dir);
    if ((rc = sl_blobs_open(&al.db, dir, 256, err)) != 0 || (rc = load_state(&al, err)) != 0) {
        goto out;
    }
    const char *host = a->cfg->http_host;
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0') {
        host = "127.0.0.1";
    }
    snprintf(al.base_url, sizeof(al.base_url), "http://%s:%d", host, a->cfg->http_port);

    if ((rc = sl_sock_open(&al.rep, SL_SOCK_REP, err)) != 0 ||
        (rc = sl_sock_listen(al.rep, sl_actor_addr(a, SL_ADDR_ALERTER, 0, addr, sizeof(addr)),
                             err)) != 0 ||
        (rc = sl_loop_add_sock(a->loop, al.rep, rep_handlers, &al, err)) != 0 ||
        (rc = sl_sock_open(&al.sub, SL_SOCK_SUB, err)) != 0 ||
        (rc = sl_sock_dial(al.sub, sl_actor_addr(a, SL_ADDR_NOTIFY, 0, addr, sizeof(addr)), err)) !=
            0 ||
        (rc = sl_loop_add_sock(a->loop, al.sub, sub_handlers, &al, err)) != 0) {
        goto out;
    }
    if ((rc = sl_httpc_init(err)) != 0) {
        goto out;
    }
    al.httpc = true;
    for (int i = 0; i < al.nrules; i++) {
        set_state_gauges(&al.rt[i]);
    }
    SL_METRIC_ADD(SL_M_ALERT_NOTIFICATIONS, 0, "sent");
    al.eval_started = pthread_create(&al.eval_th, NULL, eval_main, &al) == 0;
    al.send_started = al.eval_started && pthread_create(&al.send_th, NULL, send_main, &al) == 0;
    if (!al.send_started) {
        rc = sl_err_set(err, SL_ENOMEM, "cannot start the alerter threads");
        goto out;
    }
    SL_LOG(INFO, "alerter_ready", "rules=%d rules_dir=%s gateway=%s outbox=%d next_id=%lld",
           al.nrules, al.rules_dir, al.base_url, al.nout, (long long)al.next_id);
    rc = sl_loop_run(a->loop);
out:
    pthread_mutex_lock(&al.mu);
    al.stopping = true;
    atomic_store(&al.cancel, true);
    pthread_cond_broadcast(&al.eval_cv);
    pthread_cond_broadcast(&al.send_cv);
    pthread_mutex_unlock(&al.mu);
    if (al.eval_started) {
        pthread_join(al.eval_th, NULL);
    }
    if (al.send_started) {
        pthread_join(al.send_th, NULL);
    }
    if (al.httpc) {
        sl_httpc_fini();
    }
    sl_sock_close(al.rep);
    sl_sock_close(al.sub);
    sl_blobs_close(al.db);
    sl_alert_rules_free(al.rules, al.nrules);
    free(al.rt);
    free(al.outbox);
    sl_buf_fini(&al.reply);
    sl_buf_fini(&al.json);
    pthread_cond_destroy(&al.eval_cv);
    pthread_cond_destroy(&al.send_cv);
    pthread_mutex_destroy(&al.mu);
    return rc;
}

/* ---- loop handlers ----------------------------------------------------------------------- */

static void send_rep(alerter *al, sl_sock *to, int status, const sl_buf *body)
{
    sl_query_rep rep = {.http_status = status,
                        .body = {body->data != NULL ? body->data : "", body->len}};
    sl_buf_reset(&al->reply);
    sl_query_rep_encode(&al->reply, &rep);
    sl_err err = {0};
    if (sl_sock_send(to, al->reply.data, al->reply.len, false, &err) != 0) {
        SL_LOG_RATE(WARN, 1000, "reply_failed", "error=\"%s\"", err.msg);
    }
}

static void json_num(sl_buf *out, double v)
{
    char b[64];
    if (!isfinite(v)) {
        sl_buf_append(out, "null", 4);
        return;
    }
    sl_buf_append(out, b, strlen(sl_metrics_format_value(v, b, sizeof(b))));
}

/* ,"key":"value", or ,"key":null when value is NULL (key needs no escaping). */
static void json_field(sl_buf *out, const char *key, const char *value)
{
    sl_alert_json_fmt(out, ",\"%s\":", key);
    sl_alert_json_str(out, value);
}

static void json_time(sl_buf *out, int64_t ms)
{
    char b[32];
    if (ms <= 0) {
        sl_buf_append(out, "null", 4);
        return;
    }
    sl_alert_json_fmt(out, "\"%s\"", sl_time_format(ms, b, sizeof(b)));
}

/* ,"value":..,"baseline":..,"window":{"start":..,"end":..} (window null before the first
 * evaluation, wend 0): what an evaluation saw, in a rule's state and in a transition. */
static void json_reading(sl_buf *out, double value, double baseline, int64_t wstart, int64_t wend)
{
    sl_buf_append(out, ",\"value\":", 9);
    json_num(out, value);
    sl_buf_append(out, ",\"baseline\":", 12);
    json_num(out, baseline);
    sl_buf_append(out, ",\"window\":", 10);
    if (wend > 0) {
        sl_buf_append(out, "{\"start\":", 9);
        json_time(out, wstart);
        sl_buf_append(out, ",\"end\":", 7);
        json_time(out, wend);
        sl_buf_append(out, "}", 1);
    } else {
        sl_buf_append(out, "null", 4);
    }
}

/* Decodes the value of name in a raw query string into out (%XX and '+'): 1, 0 when
 * absent (out untouched), -1 for a malformed or NUL %-escape or a value too long. */
static int query_param(sl_str q, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t n = 0;
            for (const char *s = p + nlen + 1; s < stop; s++) {
                if (n + 1 >= size) {
                    return -1;
                }
                if (*s == '%') {
                    char hex[3] = {stop - s >= 3 ? s[1] : 0, stop - s >= 3 ? s[2] : 0, 0};
                    char *e;
                    long c = strtol(hex, &e, 16);
                    if (hex[0] == 0 || hex[1] == 0 || *e != '\0' || hex[0] == '-' ||
                        hex[0] == '+' || c == 0) {
                        return -1;
                    }
                    out[n++] = (char)c;
                    s += 2;
                } else {
                    out[n++] = *s == '+' ? ' ' : *s;
                }
            }
            out[n] = '\0';
            return 1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

typedef struct hist_scan {
    sl_buf *out;
    const char *rule;
    int limit;
    int n;
} hist_scan;

static int hist_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
    hist_scan *h = arg;
    if (h->rule[0] != '\0') {
        /* Entries start with {"id":N,"rule":"NAME", */
        char want[200];
        snprintf(want, sizeof(want), "\"rule\":\"%s\"", h->rule);
        if (memmem(val, vlen, want, strlen(want)) == NULL) {
            return 0;
        }
    }
    if (h->n > 0) {
        sl_buf_append(h->out, ",", 1);
    }
    sl_buf_append(h->out, val, vlen);
    h->n++;
    return h->n >= h->limit ? 1 : 0;
}

/* Answers {"error": msg} with status. */
static void send_error(alerter *al, sl_sock *to, int status, const char *msg)
{
    sl_buf_reset(&al->json);
    sl_buf_append(&al->json, "{\"error\":", 9);
    sl_alert_json_str(&al->json, msg);
    sl_buf_append(&al->json, "}", 1);
    send_rep(al, to, status, &al->json);
}

static void on_alerts(void *state, sl_sock *from, const void *data, size_t len)
{
    alerter *al = state;
    sl_alerts_req req;
    sl_err err = {0};
    sl_buf_reset(&al->json);
    if (sl_alerts_req_decode(data, len, &req, &err) != 0) {
        send_error(al, from, 400, err.msg);
        return;
    }
    if (req.what == SL_ALERTS_RULES) {
        pthread_mutex_lock(&al->mu);
        sl_buf_append(&al->json, "{\"rules\":[", 10);
        for (int i = 0; i < al->nrules; i++) {
            if (i > 0) {
                sl_buf_append(&al->json, ",", 1);
            }
            rule_json(&al->json, &al->rt[i]);
        }
        pthread_mutex_unlock(&al->mu);
        sl_buf_append(&al->json, "]}", 2);
        send_rep(al, from, 200, &al->json);
        return;
    }
    char rule[200] = "", limit[32] = "100";
    if (query_param(req.query, "rule", rule, sizeof(rule)) < 0 ||
        query_param(req.query, "limit", limit, sizeof(limit)) < 0) {
        send_error(al, from, 400,
                   "malformed query parameter: a bad %-escape or a value that is too long");
        return;
    }
    char *end;
    long lim = strtol(limit, &end, 10);
    if (limit[0] == '\0' || *end != '\0' || lim < 1 || lim > HISTORY_KEEP) {
        char msg[120];
        snprintf(msg, sizeof(msg), "limit must be an integer from 1 to %d", HISTORY_KEEP);
        send_error(al, from, 400, msg);
        return;
    }
    sl_buf_append(&al->json, "{\"history\":[", 12);
    hist_scan h = {.out = &al->json, .rule = rule, .limit = (int)lim};
    if (sl_blobs_scan(al->db, "hist/", true, hist_cb, &h, &err) < 0) {
        send_error(al, from, 500, err.msg);
        return;
    }
    sl_buf_append(&al->json, "]}", 2);
    send_rep(al, from, 200, &al->json);
}

static void on_other(void *state, sl_sock *from, const void *data, size_t len)
{
    alerter *al = state;
    sl_buf_reset(&al->json);
    sl_alert_json_fmt(&al->json, "{\"error\":\"sluice-alerter does not handle message type %d\"}",
                      sl_msg_type(data, len));
    send_rep(al, from, 500, &al->json);
}

/* A commit landed: rules on the data clock may have a newly closed window. */
static void on_notify(void *state, sl_sock *from, const void *data, size_t len)
{
    alerter *al = state;
    pthread_mutex_lock(&al->mu);
    for (int i = 0; i < al->nrules; i++) {
        if (al->rt[i].r->data_clock) {
            al->rt[i].woken = true;
        }
    }
    pthread_cond_signal(&al->eval_cv);
    pthread_mutex_unlock(&al->mu);
}

/* ---- the evaluation thread ----------------------------------------------------------------- */

static void *eval_main(void *arg)
{
    alerter *al = arg;
    transition *tr = sl_calloc(MAX_CATCHUP + 1, sizeof(transition));
    pthread_mutex_lock(&al->mu);
    while (!al->stopping) {
        int64_t now = sl_mono_ms();
        int pick = -1;
        int64_t next = now + 60000;
        for (int i = 0; i < al->nrules && pick < 0; i++) {
            if (al->rt[i].woken || al->rt[i].due_ms <= now) {
                pick = i;
            } else if (al->rt[i].due_ms < next) {
                next = al->rt[i].due_ms;
            }
        }
        if (pick < 0) {
            mono_deadline(&al->eval_cv, &al->mu, next);
            continue;
        }
        rule_rt *x = &al->rt[pick];
        x->woken = false;
        x->due_ms = now + x->r->every_ms;
        rule_rt copy = *x;
        pthread_mutex_unlock(&al->mu);
        int ntr = 0;
        evaluate(al, &copy, tr, &ntr);
        pthread_mutex_lock(&al->mu);
        if (copy.due_ms != x->due_ms) {
            x->due_ms = copy.due_ms; /* a retry sooner than `every` (startup grace) */
        }
        commit(al, pick, &copy, tr, ntr);
    }
    pthread_mutex_unlock(&al->mu);
    free(tr);
    return NULL;
}

/* POSTs body to the gateway's path; 0 with the reply body in out, or an error whose
 * message says what the gateway answered. *transient: worth a quiet retry. */
static int post_query(alerter *al, const char *path, const sl_buf *body, sl_buf *out,
                      bool *transient, sl_err *err)
{
    char url[400];
    int status = 0;
    snprintf(url, sizeof(url), "%s%s", al->base_url, path);
    int64_t timeout = al->cfg->request_timeout_ms + 2000;
    int rc = sl_httpc_request("POST", url, "application/json", body->data, body->len, timeout,
                              MAX_RESULT_BYTES, &al->cancel, &status, out, err);
    *transient = rc == SL_EUNAVAIL || rc == SL_ETIMEDOUT;
    if (rc != 0) {
        return rc;
    }
    if (status == 200) {
        return 0;
    }
    *transient = status == 502 || status == 503 || status == 504;
    /* Druid's error shape carries the reason in errorMessage. */
    char msg[400] = "";
    sl_buf_append(out, "", 1);
    yajl_val root = yajl_tree_parse(out->data, NULL, 0);
    if (root != NULL && YAJL_IS_OBJECT(root)) {
        for (size_t i = 0; i < root->u.object.len; i++) {
            const char *k = root->u.object.keys[i];
            yajl_val v = root->u.object.values[i];
            if ((strcmp(k, "errorMessage") == 0 || (msg[0] == '\0' && strcmp(k, "error") == 0)) &&
                YAJL_IS_STRING(v)) {
                snprintf(msg, sizeof(msg), "%s", sval(v));
            }
        }
    }
    yajl_tree_free(root);
    if (msg[0] == '\0') {
        snprintf(msg, sizeof(msg), "%.200s", out->data);
    }
    return sl_err_set(err, SL_EINVAL, "%s answered %d: %s", path, status, msg);
}

static void evaluate(alerter *al, rule_rt *x, transition *tr, int *ntr)
{
    const sl_alert_rule *r = x->r;
    int64_t t0 = sl_mono_ns();
    int64_t W = r->window_ms;
    int64_t now = sl_now_ms();
    int64_t ends[MAX_CATCHUP];
    int nends = 0;
    sl_buf body, out;
    sl_err err = {0};
    bool transient = false;
    double *values = NULL;
    int rc = 0;
    sl_buf_init(&body);
    sl_buf_init(&out);
    *ntr = 0;
    if (r->data_clock) {
        int64_t maxt = 0;
        sl_alert_boundary_body(r->datasource, &body);
        rc = post_query(al, "/v1/query", &body, &out, &transient, &err);
        if (rc == 0) {
            rc = sl_alert_parse_boundary(out.data, out.len, &maxt, &err);
        }
        if (rc == SL_ENOTFOUND) {
            snprintf(x->detail, sizeof(x->detail), "datasource %s has no data yet", r->datasource);
            rc = 0;
            goto done;
        }
        if (rc == 0) {
            int64_t latest = sl_time_floor(maxt - r->delay_ms, W);
            int64_t first = latest;
            if (x->last_window_end > 0 && x->last_window_end < latest) {
                first = x->last_window_end + W;
            }
            if ((latest - first) / W + 1 > MAX_CATCHUP) {
                first = latest - (MAX_CATCHUP - 1) * W;
            }
            for (int64_t e = first; e <= latest; e += W) {
                ends[nends++] = e;
            }
        }
    } else {
        ends[nends++] = sl_time_floor(now - r->delay_ms, W);
    }
    int nw = sl_alert_nwindows(r);
    int total = nends > 0 ? nw + nends - 1 : 0;
    int64_t from = nends > 0 ? ends[0] - (int64_t)nw * W : 0;
    if (rc == 0) {
        values = sl_calloc((size_t)total, sizeof(double));
        if (r->sql == NULL) {
            sl_buf_reset(&body);
            sl_alert_native_body(r, from, ends[nends - 1], &body);
            rc = post_query(al, "/v1/query", &body, &out, &transient, &err);
            if (rc == 0) {
                rc = sl_alert_parse_series(r, out.data, out.len, from, total, values, &err);
            }
        } else {
            for (int k = 0; k < total && rc == 0; k++) {
                sl_buf_reset(&body);
                sl_alert_sql_body(r, from + k * W, from + (k + 1) * W, &body);
                rc = post_query(al, "/v1/sql", &body, &out, &transient, &err);
                if (rc == 0) {
                    rc = sl_alert_parse_sql(r, out.data, out.len, &values[k], &err);
                }
            }
        }
    }
    if (rc != 0 && transient && sl_mono_ms() - al->started_mono < STARTUP_GRACE_MS) {
        /* The gateway or the query processes are still starting: try again soon. */
        SL_LOG_RATE(INFO, 5000, "alert_query_retry", "rule=%s error=\"%s\"", r->name, err.msg);
        x->due_ms = sl_mono_ms() + 500;
        goto out;
    }
    if (rc != 0) {
        int64_t clock = r->data_clock ? x->last_window_end : now;
        sl_alert_change ch = sl_alert_step(r, &x->st, true, NULL, clock);
        snprintf(x->error, sizeof(x->error), "%s", err.msg);
        x->value = x->baseline = NAN;
        x->detail[0] = '\0';
        if (ch.changed) {
            transition *t = &tr[(*ntr)++];
            *t = (transition){.from = ch.from,
                              .to = ch.to,
                              .notify = ch.notify,
                              .value = NAN,
                              .baseline = NAN,
                              .clock_ms = clock,
                              .at_ms = now};
            snprintf(t->error, sizeof(t->error), "%s", err.msg);
            x->since_wall_ms = now;
        }
        goto done;
    }
    x->error[0] = '\0';
    for (int i = 0; i < nends; i++) {
        sl_alert_eval ev;
        sl_alert_condition(r, values + i, nw, &ev);
        int64_t clock = r->data_clock ? ends[i] : now;
        sl_alert_change ch = sl_alert_step(r, &x->st, false, &ev, clock);
        x->value = ev.value;
        x->baseline = ev.baseline;
        x->wstart = ends[i] - W;
        x->wend = ends[i];
        snprintf(x->detail, sizeof(x->detail), "%s", ev.detail);
        if (ch.changed) {
            transition *t = &tr[(*ntr)++];
            *t = (transition){.from = ch.from,
                              .to = ch.to,
                              .notify = ch.notify,
                              .value = ev.value,
                              .baseline = ev.baseline,
                              .wstart = ends[i] - W,
                              .wend = ends[i],
                              .clock_ms = clock,
                              .at_ms = now};
            snprintf(t->detail, sizeof(t->detail), "%s", ev.detail);
            x->since_wall_ms = now;
        }
    }
    if (r->data_clock) {
        x->last_window_end = ends[nends - 1];
    }
done:
    x->evaluations++;
    x->last_eval_ms = now;
    SL_METRIC_ADD(SL_M_ALERT_EVALUATIONS, 1, r->name, rc == 0 ? "ok" : "error");
    SL_METRIC_OBSERVE(SL_M_ALERT_EVAL_SECONDS, (double)(sl_mono_ns() - t0) / 1e9, r->name);
out:
    free(values);
    sl_buf_fini(&body);
    sl_buf_fini(&out);
}

/* ---- persistence -------------------------------------------------------------------------- */

static void status_json(sl_buf *out, const rule_rt *x)
{
    sl_alert_json_fmt(
        out,
        "{\"state\":\"%s\",\"before_error\":\"%s\",\"since_ms\":%lld,\"since_wall_ms\":%lld,"
        "\"pending_since\":%lld,\"window_start_ms\":%lld,\"window_end_ms\":%lld,"
        "\"last_window_end_ms\":%lld,\"last_eval_ms\":%lld,\"evaluations\":%lld,\"value\":",
        sl_alert_state_name(x->st.state), sl_alert_state_name(x->st.before_error),
        (long long)x->st.since_ms, (long long)x->since_wall_ms, (long long)x->st.pending_since,
        (long long)x->wstart, (long long)x->wend, (long long)x->last_window_end,
        (long long)x->last_eval_ms, (long long)x->evaluations);
    json_num(out, x->value);
    sl_buf_append(out, ",\"baseline\":", 12);
    json_num(out, x->baseline);
    json_field(out, "error", x->error[0] != '\0' ? x->error : NULL);
    json_field(out, "detail", x->detail);
    sl_buf_append(out, "}", 1);
}

static yajl_val obj_get(yajl_val o, const char *k)
{
    for (size_t i = 0; o != NULL && YAJL_IS_OBJECT(o) && i < o->u.object.len; i++) {
        if (strcmp(o->u.object.keys[i], k) == 0) {
            return o->u.object.values[i];
        }
    }
    return NULL;
}

static int64_t obj_int(yajl_val o, const char *k)
{
    yajl_val v = obj_get(o, k);
    return v != NULL && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
}

static double obj_num(yajl_val o, const char *k)
{
    yajl_val v = obj_get(o, k);
    return v != NULL && YAJL_IS_NUMBER(v) ? YAJL_GET_DOUBLE(v) : NAN;
}

static int obj_state(yajl_val o, const char *k)
{
    yajl_val v = obj_get(o, k);
    int s = v != NULL && YAJL_IS_STRING(v) ? sl_alert_state_parse(sval(v)) : -1;
    return s >= 0 ? s : SL_ALERT_OK;
}

typedef struct out_scan {
    alerter *al;
} out_scan;

static int outbox_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
    alerter *al = ((out_scan *)arg)->al;
    char idtext[32];
    snprintf(idtext, sizeof(idtext), "%.*s", (int)(klen - 4), key + 4);
    int rule = -1;
    for (int i = 0; i < al->nrules; i++) {
        if (strlen(al->rules[i]->name) == vlen && memcmp(al->rules[i]->name, val, vlen) == 0) {
            rule = i;
        }
    }
    if (al->nout == al->capout) {
        al->capout = al->capout == 0 ? 16 : al->capout * 2;
        al->outbox = sl_realloc(al->outbox, (size_t)al->capout * sizeof(outbox_item));
    }
    al->outbox[al->nout++] =
        (outbox_item){.id = strtoll(idtext, NULL, 10), .rule = rule, .due_ms = sl_mono_ms()};
    return 0;
}

/* Restores each rule's state, the next transition id and the outbox. */
static int load_state(alerter *al, sl_err *err)
{
    char *v;
    size_t len;
    int rc = sl_blobs_get(al->db, "meta/next_id", &v, &len, err);
    if (rc == 0) {
        al->next_id = strtoll(v, NULL, 10);
        free(v);
    } else if (rc != SL_ENOTFOUND) {
        return rc;
    }
    for (int i = 0; i < al->nrules; i++) {
        rule_rt *x = &al->rt[i];
        char key[200];
        snprintf(key, sizeof(key), "rule/%s", x->r->name);
        rc = sl_blobs_get(al->db, key, &v, &len, err);
        if (rc == SL_ENOTFOUND) {
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        yajl_val o = yajl_tree_parse(v, NULL, 0);
        free(v);
        if (o == NULL) {
            SL_LOG(WARN, "alert_state_unreadable", "rule=%s", x->r->name);
            continue;
        }
        x->st.state = obj_state(o, "state");
        x->st.before_error = obj_state(o, "before_error");
        x->st.since_ms = obj_int(o, "since_ms");
        x->st.pending_since = obj_int(o, "pending_since");
        x->since_wall_ms = obj_int(o, "since_wall_ms");
        x->wstart = obj_int(o, "window_start_ms");
        x->wend = obj_int(o, "window_end_ms");
        x->last_window_end = obj_int(o, "last_window_end_ms");
        x->last_eval_ms = obj_int(o, "last_eval_ms");
        x->evaluations = obj_int(o, "evaluations");
        x->value = obj_num(o, "value");
        x->baseline = obj_num(o, "baseline");
        yajl_val e = obj_get(o, "error"), d = obj_get(o, "detail");
        snprintf(x->error, sizeof(x->error), "%s", e != NULL && YAJL_IS_STRING(e) ? sval(e) : "");
        snprintf(x->detail, sizeof(x->detail), "%s", d != NULL && YAJL_IS_STRING(d) ? sval(d) : "");
        yajl_tree_free(o);
        SL_LOG(INFO, "alert_state_restored", "rule=%s state=%s since_ms=%lld", x->r->name,
               sl_alert_state_name(x->st.state), (long long)x->st.since_ms);
    }
    out_scan s = {al};
    return sl_blobs_scan(al->db, "out/", false, outbox_cb, &s, err);
}

static void history_json(sl_buf *out, const sl_alert_rule *r, const transition *t)
{
    char at[32];
    sl_alert_json_fmt(out, "{\"id\":%lld,\"rule\":", (long long)t->id);
    sl_alert_json_str(out, r->name);
    sl_alert_json_fmt(
        out, ",\"from\":\"%s\",\"to\":\"%s\",\"state\":\"%s\",\"at\":\"%s\",\"at_ms\":%lld,",
        sl_alert_state_name(t->from), sl_alert_state_name(t->to), sl_alert_state_name(t->to),
        sl_time_format(t->at_ms, at, sizeof(at)), (long long)t->at_ms);
    sl_alert_json_fmt(out, "\"clock\":\"%s\",\"clock_time\":", r->data_clock ? "data" : "wall");
    json_time(out, t->clock_ms);
    json_reading(out, t->value, t->baseline, t->wstart, t->wend);
    char cond[256];
    json_field(out, "condition", sl_alert_describe(r, cond, sizeof(cond)));
    json_field(out, "detail", t->detail);
    json_field(out, "error", t->error[0] != '\0' ? t->error : NULL);
    json_field(out, "description", r->description);
    sl_buf_append(out, ",\"labels\":", 10);
    sl_buf_append(out, r->labels_json, strlen(r->labels_json));
    sl_buf_append(out, "}", 1);
}

/* With mu held: takes the evaluation's results, persists them with its transitions in
 * one transaction, logs each transition and queues its notification. */
static void commit(alerter *al, int i, const rule_rt *x, transition *tr, int ntr)
{
    rule_rt *dst = &al->rt[i];
    const sl_alert_rule *r = dst->r;
    int64_t due = dst->due_ms;
    bool woken = dst->woken;
    *dst = *x;
    dst->due_ms = due;
    dst->woken = woken;
    int nops = 0;
    sl_blobs_op *ops = sl_calloc((size_t)(ntr * 3 + 2), sizeof(sl_blobs_op));
    sl_buf *bufs = sl_calloc((size_t)(ntr + 2), sizeof(sl_buf));
    char(*keys)[64] = sl_calloc((size_t)(ntr * 3 + 2), 64);
    for (int k = 0; k < ntr + 2; k++) {
        sl_buf_init(&bufs[k]);
    }
    for (int k = 0; k < ntr; k++) {
        transition *t = &tr[k];
        t->id = al->next_id++;
        history_json(&bufs[k], r, t);
        snprintf(keys[nops], 64, "hist/%020lld", (long long)t->id);
        ops[nops] = (sl_blobs_op){keys[nops], bufs[k].data, bufs[k].len};
        nops++;
        if (t->id > HISTORY_KEEP) {
            snprintf(keys[nops], 64, "hist/%020lld", (long long)(t->id - HISTORY_KEEP));
            ops[nops] = (sl_blobs_op){keys[nops], NULL, 0};
            nops++;
        }
        if (t->notify && r->webhook != NULL) {
            snprintf(keys[nops], 64, "out/%020lld", (long long)t->id);
            ops[nops] = (sl_blobs_op){keys[nops], r->name, strlen(r->name)};
            nops++;
        }
    }
    char rkey[200];
    snprintf(rkey, sizeof(rkey), "rule/%s", r->name);
    status_json(&bufs[ntr], dst);
    ops[nops++] = (sl_blobs_op){rkey, bufs[ntr].data, bufs[ntr].len};
    sl_alert_json_fmt(&bufs[ntr + 1], "%lld", (long long)al->next_id);
    ops[nops++] = (sl_blobs_op){"meta/next_id", bufs[ntr + 1].data, bufs[ntr + 1].len};
    sl_err err = {0};
    int rc = sl_blobs_write(al->db, ops, (size_t)nops, &err);
    if (rc != 0) {
        SL_LOG_RATE(ERROR, 10000, "alert_state_write_failed", "rule=%s error=\"%s\"", r->name,
                    err.msg);
    }
    for (int k = 0; k < ntr; k++) {
        const transition *t = &tr[k];
        char v[64], b[64], ws[32];
        sl_metrics_format_value(t->value, v, sizeof(v));
        sl_metrics_format_value(t->baseline, b, sizeof(b));
        const char *fmt = "rule=%s id=%lld from=%s to=%s value=%s baseline=%s window_start=%s "
                          "detail=\"%s\" error=\"%s\"";
        if (t->to == SL_ALERT_FIRING || t->to == SL_ALERT_ERROR) {
            SL_LOG(WARN, "alert_transition", fmt, r->name, (long long)t->id,
                   sl_alert_state_name(t->from), sl_alert_state_name(t->to), v, b,
                   t->wstart > 0 ? sl_time_format(t->wstart, ws, sizeof(ws)) : "-", t->detail,
                   t->error);
        } else {
            SL_LOG(INFO, "alert_transition", fmt, r->name, (long long)t->id,
                   sl_alert_state_name(t->from), sl_alert_state_name(t->to), v, b,
                   t->wstart > 0 ? sl_time_format(t->wstart, ws, sizeof(ws)) : "-", t->detail,
                   t->error);
        }
        SL_METRIC_ADD(SL_M_ALERT_TRANSITIONS, 1, r->name, sl_alert_state_name(t->to));
        if (t->notify && r->webhook != NULL && rc == 0) {
            if (al->nout == al->capout) {
                al->capout = al->capout == 0 ? 16 : al->capout * 2;
                al->outbox = sl_realloc(al->outbox, (size_t)al->capout * sizeof(outbox_item));
            }
            al->outbox[al->nout++] = (outbox_item){.id = t->id, .rule = i, .due_ms = sl_mono_ms()};
            pthread_cond_signal(&al->send_cv);
        }
    }
    set_state_gauges(dst);
    for (int k = 0; k < ntr + 2; k++) {
        sl_buf_fini(&bufs[k]);
    }
    free(bufs);
    free(ops);
    free(keys);
}

/* ---- the notification thread ---------------------------------------------------------------- */

static void *send_main(void *arg)
{
    alerter *al = arg;
    sl_buf payload, resp;
    sl_buf_init(&payload);
    sl_buf_init(&resp);
    pthread_mutex_lock(&al->mu);
    while (!al->stopping) {
        int pick = -1;
        for (int k = 0; k < al->nout; k++) {
            if (pick < 0 || al->outbox[k].due_ms < al->outbox[pick].due_ms ||
                (al->outbox[k].due_ms == al->outbox[pick].due_ms &&
                 al->outbox[k].id < al->outbox[pick].id)) {
                pick = k;
            }
        }
        if (pick < 0) {
            pthread_cond_wait(&al->send_cv, &al->mu);
            continue;
        }
        outbox_item it = al->outbox[pick];
        if (it.due_ms > sl_mono_ms()) {
            mono_deadline(&al->send_cv, &al->mu, it.due_ms);
            continue;
        }
        const sl_alert_rule *r = it.rule >= 0 ? al->rules[it.rule] : NULL;
        pthread_mutex_unlock(&al->mu);

        char key[64], url[1024] = "";
        snprintf(key, sizeof(key), "hist/%020lld", (long long)it.id);
        char *body = NULL;
        size_t blen = 0;
        sl_err err = {0};
        int status = 0;
        int rc = sl_blobs_get(al->db, key, &body, &blen, &err);
        bool done;
        const char *result;
        if (r == NULL || r->webhook == NULL || rc != 0) {
            /* The rule is gone, lost its webhook, or the entry aged out: nothing to send. */
            done = true;
            result = "dropped";
            rc = 0;
        } else {
            snprintf(url, sizeof(url), "%s", r->webhook);
            rc = sl_httpc_request("POST", url, "application/json", body, blen, r->notify_timeout_ms,
                                  64 << 10, &al->cancel, &status, &resp, &err);
            if (rc == 0 && (status < 200 || status > 299)) {
                rc = sl_err_set(&err, SL_EIO, "webhook answered %d", status);
            }
            done = rc == 0 || it.attempts >= r->notify_retries;
            result = rc == 0 ? "sent" : done ? "failed" : "retried";
        }
        free(body);
        if (rc == SL_ECLOSED) {
            /* Stopping: the outbox entry stays, the next start delivers it. */
            pthread_mutex_lock(&al->mu);
            continue;
        }
        if (done) {
            char okey[64];
            snprintf(okey, sizeof(okey), "out/%020lld", (long long)it.id);
            sl_blobs_op op = {okey, NULL, 0};
            sl_err werr = {0};
            if (sl_blobs_write(al->db, &op, 1, &werr) != 0) {
                SL_LOG_RATE(ERROR, 10000, "alert_outbox_write_failed", "error=\"%s\"", werr.msg);
            }
        }
        if (strcmp(result, "dropped") != 0) {
            SL_METRIC_ADD(SL_M_ALERT_NOTIFICATIONS, 1, result);
        }
        if (rc == 0 && strcmp(result, "sent") == 0) {
            SL_LOG(INFO, "alert_notified", "rule=%s id=%lld url=%s status=%d attempts=%d", r->name,
                   (long long)it.id, url, status, it.attempts + 1);
        } else if (rc != 0 && done) {
            SL_LOG(ERROR, "alert_notify_failed", "rule=%s id=%lld url=%s attempts=%d error=\"%s\"",
                   r->name, (long long)it.id, url, it.attempts + 1, err.msg);
        } else if (rc != 0) {
            SL_LOG_RATE(WARN, 1000, "alert_notify_retry",
                        "rule=%s id=%lld url=%s attempts=%d error=\"%s\"", r->name,
                        (long long)it.id, url, it.attempts + 1, err.msg);
        }
        pthread_mutex_lock(&al->mu);
        for (int k = 0; k < al->nout; k++) {
            if (al->outbox[k].id != it.id) {
                continue;
            }
            if (done) {
                al->outbox[k] = al->outbox[--al->nout];
            } else {
                int64_t backoff = r->notify_backoff_ms;
                for (int n = 0; n < it.attempts && backoff < MAX_BACKOFF_MS; n++) {
                    backoff *= 2;
                }
                al->outbox[k].attempts++;
                al->outbox[k].due_ms =
                    sl_mono_ms() + (backoff < MAX_BACKOFF_MS ? backoff : MAX_BACKOFF_MS);
            }
            break;
        }
    }
    pthread_mutex_unlock(&al->mu);
    sl_buf_fini(&payload);
    sl_buf_fini(&resp);
    return NULL;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static void rule_json(sl_buf *out, const rule_rt *x)
{
    const sl_alert_rule *r = x->r;
    char cond[256];
    sl_buf_append(out, "{\"name\":", 8);
    sl_alert_json_str(out, r->name);
    json_field(out, "description", r->description);
    sl_alert_json_fmt(out, ",\"state\":\"%s\",\"since\":", sl_alert_state_name(x->st.state));
    json_time(out, x->since_wall_ms);
    sl_buf_append(out, ",\"since_clock\":", 15);
    json_time(out, x->st.since_ms);
    json_reading(out, x->value, x->baseline, x->wstart, x->wend);
    json_field(out, "detail", x->detail);
    json_field(out, "error", x->error[0] != '\0' ? x->error : NULL);
    sl_buf_append(out, ",\"last_evaluation\":", 19);
    json_time(out, x->last_eval_ms);
    sl_alert_json_fmt(out, ",\"evaluations\":%lld,\"condition\":", (long long)x->evaluations);
    sl_alert_json_str(out, sl_alert_describe(r, cond, sizeof(cond)));
    sl_alert_json_fmt(out, ",\"query\":\"%s\",\"datasource\":", r->sql != NULL ? "sql" : "native");
    sl_alert_json_str(out, r->datasource);
    sl_alert_json_fmt(
        out,
        ",\"clock\":\"%s\",\"window_seconds\":%g,\"every_seconds\":%g,\"delay_seconds\":%g,"
        "\"for_seconds\":%g,\"webhook\":%s,\"labels\":",
        r->data_clock ? "data" : "wall", (double)r->window_ms / 1000, (double)r->every_ms / 1000,
        (double)r->delay_ms / 1000, (double)r->for_ms / 1000,
        r->webhook != NULL ? "true" : "false");
    sl_buf_append(out, r->labels_json, strlen(r->labels_json));
    json_field(out, "file", r->source);
    sl_buf_append(out, "}", 1);
}

static void set_state_gauges(const rule_rt *x)
{
    for (int s = 0; s < SL_ALERT_NSTATES; s++) {
        SL_METRIC_SET(SL_M_ALERT_STATE, x->st.state == s ? 1 : 0, x->r->name,
                      sl_alert_state_name(s));
    }
}

/* Waits on cv (a CLOCK_MONOTONIC condition) until signalled or until_mono. */
static int64_t mono_deadline(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_mono)
{
    int64_t ms = until_mono;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    pthread_cond_timedwait(cv, mu, &ts);
    return sl_mono_ms();
}
