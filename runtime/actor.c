/* Actor process scaffolding (see actor.h): parses argv, loads the config, sets up
 * logging, the loop and the control socket, then hands over to the actor. */
#include "actor.h"

#include "log.h"
#include "mem.h"
#include "metrics.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct control {
    sl_actor *actor;
    sl_sock *sock;
    sl_buf out;
} control;

static void on_ping(void *state, sl_sock *from, const void *data, size_t len)
{
    control *c = state;
    sl_pong pong = {
        .actor = {sl_actor_names[c->actor->kind], strlen(sl_actor_names[c->actor->kind])},
        .instance = c->actor->instance,
        .pid = (int)getpid(),
        .started_ms = c->actor->started_ms,
    };
    sl_buf_reset(&c->out);
    sl_pong_encode(&c->out, &pong);
    sl_sock_send(from, c->out.data, c->out.len, true, NULL);
}

/* The process's metrics as Prometheus text, every sample labelled with this instance
 * (the gateway merges all instances into /metrics). */
static void on_metrics(void *state, sl_sock *from, const void *data, size_t len)
{
    control *c = state;
    char inst[16];
    snprintf(inst, sizeof(inst), "%d", c->actor->instance);
    const char *labels[] = {"actor", sl_actor_names[c->actor->kind], "actor_instance", inst, NULL};
    sl_buf text;
    sl_buf_init(&text);
    sl_metrics_process_update(sl_metrics_default());
    sl_metrics_render(sl_metrics_default(), labels, &text);
    sl_buf_reset(&c->out);
    sl_metrics_rep_encode(&c->out, (sl_str){text.data != NULL ? text.data : "", text.len});
    sl_sock_send(from, c->out.data, c->out.len, true, NULL);
    sl_buf_fini(&text);
}

static const sl_handler control_handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_PING] = on_ping,
    [SL_MSG_METRICS] = on_metrics,
};

static void usage(FILE *f, const char *name)
{
    fprintf(f,
            "usage: sluice-%s --config FILE [--data-dir DIR] [--instance N] [--http HOST:PORT]\n"
            "       sluice-%s --help-config   (print every setting as Markdown)\n"
            "       sluice-%s --help-metrics  (print every metric as Markdown)\n"
            "Normally started by ./sluice (the supervisor), not by hand.\n",
            name, name, name);
}

const char *sl_actor_addr(const sl_actor *a, sl_addr_kind role, int i, char *buf, size_t size)
{
    int rc = sl_config_addr(a->cfg, role, sl_actor_names[a->kind], i, buf, size);
    SL_ASSERT(rc == 0);
    return buf;
}

int sl_actor_main(int argc, char **argv, sl_actor_kind kind, sl_actor_run_fn run)
{
    const char *name = sl_actor_names[kind];
    const char *config_path = NULL, *data_dir = NULL, *http = NULL;
    int instance = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"data-dir", required_argument, NULL, 'd'},
        {"instance", required_argument, NULL, 'i'}, {"http", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},           {"help-config", no_argument, NULL, 'C'},
        {"help-metrics", no_argument, NULL, 'M'},   {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:d:i:H:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 'i':
            instance = atoi(optarg);
            break;
        case 'H':
            http = optarg;
            break;
        case 'h':
            usage(stdout, name);
            return 0;
        case 'C':
            sl_config_print_docs(stdout);
            return 0;
        case 'M':
            sl_metrics_print_docs(stdout);
            return 0;
        default:
            usage(stderr, name);
            return 2;
        }
    }
    if (config_path == NULL) {
        usage(stderr, name);
        return 2;
    }

    char label[64];
    snprintf(label, sizeof(label), "%s.%d", name, instance);
    sl_log_init(label, getenv("SLUICE_DEBUG") != NULL ? SL_LOG_DEBUG : SL_LOG_INFO);

    sl_err err = {0};
    sl_config *cfg = NULL;
    sl_actor a = {.kind = kind, .instance = instance, .started_ms = sl_now_ms()};
    control ctl = {.actor = &a};
    sl_buf_init(&ctl.out);
    int rc = sl_config_load(config_path, data_dir, http, &cfg, &err);
    if (rc != 0) {
        goto out;
    }
    a.cfg = cfg;
    if (instance < 0 || instance >= cfg->processes[kind]) {
        rc = sl_err_set(&err, SL_EINVAL, "instance %d out of range: config has %d %s process(es)",
                        instance, cfg->processes[kind], name);
        goto out;
    }
    /* Before the first thread (NNG's) starts: see mem.h. */
    sl_mem_init((int64_t)cfg->memory_mb[kind] << 20);
    if ((rc = sl_loop_new(&a.loop, &err)) != 0) {
        goto out;
    }
    char addr[512];
    sl_actor_addr(&a, SL_ADDR_CONTROL, instance, addr, sizeof(addr));
    if ((rc = sl_sock_open(&ctl.sock, SL_SOCK_REP, &err)) != 0 ||
        (rc = sl_sock_listen(ctl.sock, addr, &err)) != 0 ||
        (rc = sl_loop_add_sock(a.loop, ctl.sock, control_handlers, &ctl, &err)) != 0) {
        goto out;
    }
    SL_LOG(INFO, "actor_start", "config=%s data_dir=%s", cfg->path, cfg->data_dir);
    rc = run(&a, &err);
out:
    if (rc != 0) {
        SL_LOG(ERROR, "actor_failed", "code=%s error=\"%s\"", sl_err_name(rc), err.msg);
    } else {
        SL_LOG(INFO, "actor_stop", "%s", "");
    }
    sl_sock_close(ctl.sock);
    sl_buf_fini(&ctl.out);
    sl_loop_free(a.loop);
    sl_config_free(cfg);
    return rc == 0 ? 0 : 1;
}
