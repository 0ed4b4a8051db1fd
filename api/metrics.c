/* GET /metrics: every actor instance's metrics on one page, in the Prometheus text
 * exposition format 0.0.4.
 *
 * Like /healthz, the gateway asks every instance's control socket at once (METRICS),
 * each with a short timeout; each instance answers with its own registry rendered as
 * text, every sample already labelled actor="<name>",actor_instance="<i>" (actor.c).
 * The gateway adds its own registry (HTTP metrics) and, per instance, sluice_actor_up
 * (did it answer) and sluice_actor_restarts_total (the supervisor's count in
 * <data>/run/<actor>.<i>.restarts), then merges the texts so that each metric family
 * has one HELP/TYPE block followed by the samples of every instance, as the format
 * requires. An instance that does not answer is simply absent (and up 0): a scrape
 * never fails because one actor is down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "control.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"

struct sl_scrape {
    const sl_config *cfg;
    sl_control ctl; /* every instance but the gateway */
    int timeout_ms;
};

/* One instance's answer to one scrape. */
typedef struct probe {
    const sl_control_target *t;
    int timeout_ms;
    bool up;
    sl_buf text;
} probe;

int sl_scrape_new(const sl_config *cfg, int timeout_ms, sl_scrape **out, sl_err *err)
{
    sl_scrape *s = sl_calloc(1, sizeof(*s));
    /* The gateway is this process: its metrics are rendered in place. */
    int rc = sl_control_init(&s->ctl, cfg, SL_ACTOR_GATEWAY, "metrics", err);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->cfg = cfg;
    s->timeout_ms = timeout_ms;
    *out = s;
    return 0;
}

void sl_scrape_free(sl_scrape *s)
{
    if (s == NULL) {
        return;
    }
    sl_control_fini(&s->ctl);
    free(s);
}

static void *probe_run(void *arg)
{
    probe *p = arg;
    sl_buf req;
    sl_msg *reply = NULL;
    sl_err err = {0};
    sl_str text;

    sl_buf_init(&req);
    sl_metrics_req_encode(&req);
    if (sl_sock_request(p->t->sock, req.data, req.len, p->timeout_ms, &reply, &err) == 0 &&
        sl_metrics_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &text, &err) == 0) {
        p->up = true;
        sl_buf_append(&p->text, text.p, text.len);
    }
    sl_msg_free(reply);
    sl_buf_fini(&req);
    return NULL;
}

/* Reads the supervisor's restart count of an instance; -1 when there is none (not run
 * by ./sluice). */
static int64_t restarts_of(const sl_config *cfg, const char *actor, int i)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/run/%s.%d.restarts", cfg->data_dir, actor, i);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long long n = -1;
    if (fscanf(f, "%lld", &n) != 1) {
        n = -1;
    }
    fclose(f);
    return n;
}

/* ---- merging ------------------------------------------------------------------------------- */

typedef struct family {
    char name[128];
    sl_buf head;    /* its # HELP and # TYPE lines */
    sl_buf samples; /* sample lines of every instance */
} family;

typedef struct merger {
    family *f;
    int n, cap;
} merger;

static family *family_of(merger *m, const char *name, size_t len)
{
    for (int i = 0; i < m->n; i++) {
        if (strlen(m->f[i].name) == len && memcmp(m->f[i].name, name, len) == 0) {
            return &m->f[i];
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap == 0 ? 64 : m->cap * 2;
        m->f = sl_realloc(m->f, (size_t)m->cap * sizeof(family));
    }
    family *f = &m->f[m->n++];
    snprintf(f->name, sizeof(f->name), "%.*s", (int)(len < 127 ? len : 127), name);
    sl_buf_init(&f->head);
    sl_buf_init(&f->samples);
    return f;
}

/* Adds one instance's page: each "# HELP x"/"# TYPE x" line opens (or reopens) family
 * x; sample lines go to the family opened last. The first HELP and TYPE of a family
 * win (every process renders the same table, so they agree). */
static void merge_text(merger *m, const char *text, size_t len)
{
    family *cur = NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 7 && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0)) {
            const char *name = p + 7;
            const char *sp = memchr(name, ' ', n - 7);
            size_t nlen = sp != NULL ? (size_t)(sp - name) : n - 7;
            cur = family_of(m, name, nlen);
            bool help = p[2] == 'H';
            const char *mark = help ? "# HELP " : "# TYPE ";
            /* Keep one line of each kind. */
            if (cur->head.len == 0 || strstr(cur->head.data, mark) == NULL) {
                sl_buf_append(&cur->head, p, n);
                sl_buf_append(&cur->head, "\n", 1);
                sl_buf_append(&cur->head, "", 1); /* kept NUL-terminated for strstr */
                cur->head.len--;
            }
        } else if (n > 0 && p[0] != '#') {
            if (cur == NULL) {
                size_t nlen = strcspn(p, "{ ");
                cur = family_of(m, p, nlen < n ? nlen : n);
            }
            sl_buf_append(&cur->samples, p, n);
            sl_buf_append(&cur->samples, "\n", 1);
        }
        p += n + 1;
    }
}

static void merger_write(merger *m, sl_buf *out)
{
    for (int i = 0; i < m->n; i++) {
        family *f = &m->f[i];
        /* HELP before TYPE, as Prometheus writes them. */
        const char *h = f->head.data != NULL ? strstr(f->head.data, "# HELP ") : NULL;
        const char *t = f->head.data != NULL ? strstr(f->head.data, "# TYPE ") : NULL;
        if (h != NULL) {
            sl_buf_append(out, h, strcspn(h, "\n") + 1);
        }
        if (t != NULL) {
            sl_buf_append(out, t, strcspn(t, "\n") + 1);
        }
        if (f->samples.len > 0) {
            sl_buf_append(out, f->samples.data, f->samples.len);
        }
        sl_buf_fini(&f->head);
        sl_buf_fini(&f->samples);
    }
    free(m->f);
    m->f = NULL;
    m->n = m->cap = 0;
}

/* ---- the handler ------------------------------------------------------------------------------
 */

void sl_api_metrics_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    const sl_scrape *s = api->scrape;
    int n = s->ctl.n;
    probe *probes = sl_calloc((size_t)(n > 0 ? n : 1), sizeof(probe));

    for (int i = 0; i < n; i++) {
        probes[i].t = &s->ctl.targets[i];
        probes[i].timeout_ms = s->timeout_ms;
        sl_buf_init(&probes[i].text);
    }
    sl_control_fanout(probes, n, sizeof(probe), probe_run);
    /* The instance-wide metrics, kept in this process's registry. */
    for (int k = 0; k < SL_ACTOR_COUNT; k++) {
        for (int i = 0; i < s->cfg->processes[k]; i++) {
            char inst[16];
            snprintf(inst, sizeof(inst), "%d", i);
            bool up = k == SL_ACTOR_GATEWAY;
            for (int j = 0; j < n; j++) {
                if (probes[j].t->kind == (sl_actor_kind)k && probes[j].t->instance == i) {
                    up = probes[j].up;
                }
            }
            SL_METRIC_SET(SL_M_ACTOR_UP, up ? 1 : 0, sl_actor_names[k], inst);
            int64_t r = restarts_of(s->cfg, sl_actor_names[k], i);
            if (r >= 0) {
                SL_METRIC_SET(SL_M_ACTOR_RESTARTS, (double)r, sl_actor_names[k], inst);
            }
        }
    }
    sl_buf own;
    sl_buf_init(&own);
    const char *labels[] = {"actor", sl_actor_names[SL_ACTOR_GATEWAY], "actor_instance", "0", NULL};
    sl_metrics_process_update(sl_metrics_default());
    sl_metrics_render(sl_metrics_default(), labels, &own);

    merger m = {0};
    merge_text(&m, own.data != NULL ? own.data : "", own.len);
    for (int i = 0; i < n; i++) {
        if (probes[i].up) {
            merge_text(&m, probes[i].text.data != NULL ? probes[i].text.data : "",
                       probes[i].text.len);
        }
        sl_buf_fini(&probes[i].text);
    }
    sl_buf_reset(&resp->body);
    merger_write(&m, &resp->body);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    sl_buf_fini(&own);
    free(probes);
}
