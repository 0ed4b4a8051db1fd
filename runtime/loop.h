/* The actor loop: one poll() over a signalfd (SIGTERM/SIGINT), timerfds and the NNG
 * receive fds. Received messages are dispatched through a table indexed by message
 * type; a handler borrows the message for the duration of the call. */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "sock.h"

typedef struct sl_loop sl_loop;

/* Called with the decoded-type message; data/len is the whole message body. */
typedef void (*sl_handler)(void *state, sl_sock *from, const void *data, size_t len);
typedef void (*sl_timer_cb)(void *state);

int sl_loop_new(sl_loop **out, sl_err *err);
void sl_loop_free(sl_loop *loop);

/* Registers sock: its messages go to handlers[type] (NULL entries: logged and dropped).
 * handlers must outlive the loop. */
int sl_loop_add_sock(sl_loop *loop, sl_sock *sock, const sl_handler *handlers, void *state,
                     sl_err *err);

/* Inside a handler: takes ownership of the message being dispatched (the handler's
 * data/len stay valid; the caller frees it with sl_msg_free). Used to answer a raw
 * request later, e.g. after a group commit. */
sl_msg *sl_loop_take(sl_loop *loop);

/* Stops (paused) or resumes receiving from sock: while paused its messages stay
 * queued in NNG and, once its buffers fill, the senders block (backpressure). */
void sl_loop_pause(sl_loop *loop, sl_sock *sock, bool paused);

/* A periodic timer. */
int sl_loop_add_timer(sl_loop *loop, int64_t interval_ms, sl_timer_cb cb, void *state,
                      sl_err *err);

/* Called after every round of dispatching (e.g. to commit what a burst of messages
 * brought, once). One per loop. */
void sl_loop_set_idle(sl_loop *loop, sl_timer_cb cb, void *state);

/* Runs until SIGTERM/SIGINT or sl_loop_stop. Returns 0. */
int sl_loop_run(sl_loop *loop);
void sl_loop_stop(sl_loop *loop);
bool sl_loop_stopping(const sl_loop *loop);

/* Receives and dispatches every message already queued on sock (used to drain
 * input at shutdown). Returns the number dispatched. */
int sl_loop_drain(sl_loop *loop, sl_sock *sock);

#endif
