/* GET /healthz: pings the control socket of every actor instance the config runs
 * (cfg->processes, the gateway itself included), all at once, each with a short
 * timeout. 200 {"status":"ok","actors":[..]} when every instance answered; otherwise
 * 503 with "status":"degraded" and the same list, where each instance that did not
 * answer has "up":false and an "error" saying why.
 *
 * The sockets are dialed at startup and reused, and the pings go out all at once
 * (control.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "control.h"
#include "json.h"
#include "msg.h"

struct sl_health {
    sl_control ctl;
    int timeout_ms;
};

/* One ping of one /healthz request. */
typedef struct probe {
    const sl_control_target *t;
    int timeout_ms;
    bool up;
    int pid;
    int64_t started_ms;
    char error[600];
} probe;

int sl_health_new(const sl_config *cfg, int timeout_ms, sl_health **out, sl_err *err)
{
    sl_health *h = sl_calloc(1, sizeof(*h));
    int rc = sl_control_init(&h->ctl, cfg, -1, "healthz", err);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->timeout_ms = timeout_ms;
    *out = h;
    return 0;
}

void sl_health_free(sl_health *h)
{
    if (h == NULL) {
        return;
    }
    sl_control_fini(&h->ctl);
    free(h);
}

static void *probe_run(void *arg)
{
    probe *p = arg;
    const sl_control_target *t = p->t;
    const char *name = sl_actor_names[t->kind];
    sl_buf req;
    sl_msg *reply = NULL;
    sl_pong pong;
    sl_err err;

    sl_buf_init(&req);
    sl_ping_encode(&req);
    int rc = sl_sock_request(t->sock, req.data, req.len, p->timeout_ms, &reply, &err);
    if (rc == SL_EUNAVAIL) {
        snprintf(p->error, sizeof(p->error), "not connected");
    } else if (rc == SL_ETIMEDOUT) {
        snprintf(p->error, sizeof(p->error), "no reply within %d ms", p->timeout_ms);
    } else if (rc < 0) {
        snprintf(p->error, sizeof(p->error), "%s", err.msg);
    } else if (sl_pong_decode(sl_msg_data(reply), sl_msg_len(reply), &pong, &err) < 0) {
        snprintf(p->error, sizeof(p->error), "bad reply: %s", err.msg);
    } else if (!sl_str_eq(pong.actor, name) || pong.instance != t->instance) {
        /* Two instances configured onto one address, say. */
        snprintf(p->error, sizeof(p->error), "answered as %.*s.%d", (int)pong.actor.len,
                 pong.actor.p != NULL ? pong.actor.p : "", pong.instance);
    } else {
        p->up = true;
        p->pid = pong.pid;
        p->started_ms = pong.started_ms;
    }
    sl_msg_free(reply);
    sl_buf_fini(&req);
    return NULL;
}

void sl_api_healthz_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    const sl_health *h = api->health;
    int n = h->ctl.n;
    probe *probes = sl_calloc((size_t)(n > 0 ? n : 1), sizeof(probe));
    bool all_up = true;

    for (int i = 0; i < n; i++) {
        probes[i].t = &h->ctl.targets[i];
        probes[i].timeout_ms = h->timeout_ms;
    }
    sl_control_fanout(probes, n, sizeof(probe), probe_run);
    int64_t now = sl_now_ms();
    /* The status word depends on every probe: the list is written first. */
    sl_buf list;
    sl_buf_init(&list);
    for (int i = 0; i < n; i++) {
        const probe *p = &probes[i];
        sl_json_raw(&list, "%s{\"actor\":\"%s\",\"instance\":%d,\"up\":%s", i > 0 ? "," : "",
                    sl_actor_names[p->t->kind], p->t->instance, p->up ? "true" : "false");
        if (p->up) {
            int64_t up_ms = now - p->started_ms;
            sl_json_raw(&list, ",\"pid\":%d,\"uptime_s\":%lld}", p->pid,
                        (long long)(up_ms > 0 ? up_ms / 1000 : 0));
        } else {
            all_up = false;
            sl_json_raw(&list, ",\"error\":");
            sl_json_strz(&list, p->error);
            sl_json_raw(&list, "}");
        }
    }
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"status\":\"%s\",\"actors\":[", all_up ? "ok" : "degraded");
    if (list.len > 0) {
        sl_buf_append(&resp->body, list.data, list.len);
    }
    sl_json_raw(&resp->body, "]}");
    resp->status = all_up ? 200 : 503;
    sl_buf_fini(&list);
    free(probes);
}
