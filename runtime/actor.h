/* Actor process scaffolding: argv, config, logging, the loop and the control socket.
 *
 * Every actor's main.c is `return sl_actor_main(argc, argv, SL_ACTOR_X, x_run);`.
 * Command line: sluice-<actor> --config FILE --data-dir DIR --instance N [--http HOST:PORT]
 * so `ps` shows role, instance number and which data dir (instance) a process serves.
 * The control socket (addresses.control) answers PING with PONG; the gateway's
 * /healthz pings every actor instance through it. */
#ifndef SL_ACTOR_H
#define SL_ACTOR_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "loop.h"

typedef struct sl_actor {
    const sl_config *cfg;
    sl_actor_kind kind;
    int instance;
    sl_loop *loop;
    int64_t started_ms;
} sl_actor;

/* Sets up the actor's sockets on a->loop, runs the loop, tears down. Returns 0 or an
 * error (err says why); the process exits non-zero on error. */
typedef int (*sl_actor_run_fn)(sl_actor *a, sl_err *err);

int sl_actor_main(int argc, char **argv, sl_actor_kind kind, sl_actor_run_fn run);

/* Expands the address of role for instance i into buf (fatal on overflow). */
const char *sl_actor_addr(const sl_actor *a, sl_addr_kind role, int i, char *buf, size_t size);

#endif
