/* Sockets: NNG behind a small API. Data goes over push/pull (a full pipe blocks the
 * sender: that is the backpressure), requests over req/rep, change hints over pub/sub
 * (lossy: never used for anything that must arrive).
 *
 * ipc:// addresses get their directory created and a stale socket file removed on
 * listen. Dials are asynchronous and retried by NNG, so actors may start in any order. */
#ifndef SL_SOCK_H
#define SL_SOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef enum sl_sock_kind {
    SL_SOCK_PUSH,
    SL_SOCK_PULL,
    SL_SOCK_PUB,
    SL_SOCK_SUB,
    SL_SOCK_REQ,
    SL_SOCK_REP,
    SL_SOCK_REP_RAW, /* many requests in flight; answer each with sl_sock_reply */
} sl_sock_kind;

typedef struct sl_sock sl_sock;

/* A received message; owns its bytes until sl_msg_free. */
typedef struct sl_msg sl_msg;

int sl_sock_open(sl_sock **out, sl_sock_kind kind, sl_err *err);
/* Closes and frees; NULL is a no-op. Pending messages are dropped. */
void sl_sock_close(sl_sock *s);
int sl_sock_listen(sl_sock *s, const char *url, sl_err *err);
int sl_sock_dial(sl_sock *s, const char *url, sl_err *err);
/* Send / receive timeouts in ms (-1: block forever). */
int sl_sock_set_timeouts(sl_sock *s, int send_ms, int recv_ms);
/* Send buffer depth in messages (push sockets: how many may queue before send blocks). */
int sl_sock_set_sendbuf(sl_sock *s, int msgs);
/* A pollable fd that is readable when a message can be received (not for REQ). */
int sl_sock_recv_fd(sl_sock *s, int *fd, sl_err *err);

/* Copies data[0..len) into a message and sends it. nonblock: SL_EBUSY instead of
 * waiting when the pipe is full; blocking sends time out with SL_ETIMEDOUT. */
int sl_sock_send(sl_sock *s, const void *data, size_t len, bool nonblock, sl_err *err);

/* Receives one message into *out (caller frees). nonblock: SL_EBUSY when none. */
int sl_sock_recv(sl_sock *s, sl_msg **out, bool nonblock, sl_err *err);

/* How long a request waits for a peer when none is connected (bounded by its timeout). */
#define SL_SOCK_PEER_WAIT_MS 1000

/* For REQ sockets, thread-safe: sends a request on its own context and waits up to
 * timeout_ms for the reply (*out, caller frees). SL_ETIMEDOUT when no reply came,
 * SL_EUNAVAIL when no peer connected within min(timeout_ms, SL_SOCK_PEER_WAIT_MS). */
int sl_sock_request(sl_sock *s, const void *data, size_t len, int timeout_ms, sl_msg **out,
                    sl_err *err);

/* Answers req (received on a SL_SOCK_REP_RAW socket) with data[0..len). Does not
 * free req. */
int sl_sock_reply(sl_sock *s, const sl_msg *req, const void *data, size_t len, sl_err *err);

/* Number of connected peers (pipes) on s; used to tell "down" from "slow". */
int sl_sock_peers(sl_sock *s);

const void *sl_msg_data(const sl_msg *m);
size_t sl_msg_len(const sl_msg *m);
void sl_msg_free(sl_msg *m);

#endif
