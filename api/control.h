/* The control sockets of every actor instance, as /healthz (health.c) and /metrics
 * (metrics.c) ask them: one REQ socket per instance, dialed once and reused (NNG
 * re-dials by itself when an actor restarts; sl_sock_request is safe from several HTTP
 * threads at once), and asking all of them at once. Private to api/. */
#ifndef SL_API_CONTROL_H
#define SL_API_CONTROL_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "sock.h"

typedef struct sl_control_target {
    sl_actor_kind kind;
    int instance;
    sl_sock *sock; /* REQ dialed to the instance's control address */
} sl_control_target;

/* The instances, in the order of sl_actor_kind, then instance. */
typedef struct sl_control {
    int n;
    sl_control_target *targets;
} sl_control;

/* Opens and dials one socket per instance in cfg->processes, except those of kind skip
 * (-1: none). what names the caller in an error ("healthz: cannot expand the control
 * address of query.0"). On error c is left closed (sl_control_fini not needed, but
 * harmless). c is caller storage; the sockets are its until sl_control_fini. */
int sl_control_init(sl_control *c, const sl_config *cfg, int skip, const char *what, sl_err *err);
void sl_control_fini(sl_control *c);

/* Runs fn on each of n items (items[0], items[size], ...), each on its own thread, all
 * at once, and returns when every one has finished; an item whose thread cannot be
 * started runs inline. fn's return value is ignored. */
void sl_control_fanout(void *items, int n, size_t size, void *(*fn)(void *));

#endif
