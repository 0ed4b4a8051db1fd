/* Opening every actor instance's control socket and asking them all at once
 * (control.h): the part /healthz and /metrics share. A thread per instance keeps a
 * request to a dead actor from delaying the others: the whole round takes one timeout,
 * not one per instance. */
#include <pthread.h>
#include <stdlib.h>

#include "control.h"

int sl_control_init(sl_control *c, const sl_config *cfg, int skip, const char *what, sl_err *err)
{
    char addr[512];
    int rc = 0;
    int total = 0;

    c->n = 0;
    for (int k = 0; k < SL_ACTOR_COUNT; k++) {
        total += cfg->processes[k];
    }
    c->targets = sl_calloc((size_t)(total > 0 ? total : 1), sizeof(sl_control_target));
    for (int k = 0; k < SL_ACTOR_COUNT; k++) {
        if (k == skip) {
            continue;
        }
        for (int i = 0; i < cfg->processes[k]; i++) {
            sl_control_target *t = &c->targets[c->n];
            t->kind = (sl_actor_kind)k;
            t->instance = i;
            rc = sl_config_addr(cfg, SL_ADDR_CONTROL, sl_actor_names[k], i, addr, sizeof(addr));
            if (rc < 0) {
                rc = sl_err_set(err, rc, "%s: cannot expand the control address of %s.%d", what,
                                sl_actor_names[k], i);
                goto out;
            }
            rc = sl_sock_open(&t->sock, SL_SOCK_REQ, err);
            if (rc < 0) {
                goto out;
            }
            c->n++;
            rc = sl_sock_dial(t->sock, addr, err);
            if (rc < 0) {
                goto out;
            }
        }
    }
out:
    if (rc < 0) {
        sl_control_fini(c);
    }
    return rc;
}

void sl_control_fini(sl_control *c)
{
    for (int i = 0; i < c->n; i++) {
        sl_sock_close(c->targets[i].sock);
    }
    free(c->targets);
    c->targets = NULL;
    c->n = 0;
}

void sl_control_fanout(void *items, int n, size_t size, void *(*fn)(void *))
{
    pthread_t *threads = sl_calloc((size_t)(n > 0 ? n : 1), sizeof(pthread_t));
    bool *started = sl_calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
    char *base = items;

    for (int i = 0; i < n; i++) {
        void *item = base + (size_t)i * size;
        started[i] = pthread_create(&threads[i], NULL, fn, item) == 0;
        if (!started[i]) {
            fn(item); /* no thread to spare: ask inline */
        }
    }
    for (int i = 0; i < n; i++) {
        if (started[i]) {
            pthread_join(threads[i], NULL);
        }
    }
    free(started);
    free(threads);
}
