/* NNG sockets behind sock.h. NNG errors are converted here, once. */
#include "sock.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct sl_sock {
    nng_socket s;
    sl_sock_kind kind;
    atomic_int peers;
    /* Ids of the pipes counted in peers: NNG can report a pipe's removal without
     * having reported it added (a pipe that died during its handshake). */
    nng_mtx *mtx;
    nng_cv *peer_cv; /* signalled under mtx when a pipe is added */
    uint32_t *pipes;
    int npipes, cappipes;
};

struct sl_msg {
    nng_msg *m;
};

static int conv(int rv, sl_err *err, const char *what)
{
    int code;
    switch (rv) {
    case 0:
        return 0;
    case NNG_EAGAIN:
        code = SL_EBUSY;
        break;
    case NNG_ETIMEDOUT:
        code = SL_ETIMEDOUT;
        break;
    case NNG_ENOMEM:
        code = SL_ENOMEM;
        break;
    case NNG_ECLOSED:
        code = SL_ECLOSED;
        break;
    case NNG_EADDRINUSE:
    case NNG_ECONNREFUSED:
    case NNG_ECONNSHUT:
        code = SL_EUNAVAIL;
        break;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
        code = SL_EINVAL;
        break;
    default:
        code = SL_EIO;
        break;
    }
    return sl_err_set(err, code, "%s: %s", what, nng_strerror(rv));
}

static void pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct sl_sock *s = arg;
    uint32_t id = nng_pipe_id(p);
    nng_mtx_lock(s->mtx);
    int at = -1;
    for (int i = 0; i < s->npipes; i++) {
        if (s->pipes[i] == id) {
            at = i;
        }
    }
    if (ev == NNG_PIPE_EV_ADD_POST && at < 0) {
        if (s->npipes == s->cappipes) {
            s->cappipes = s->cappipes == 0 ? 8 : s->cappipes * 2;
            s->pipes = sl_realloc(s->pipes, (size_t)s->cappipes * sizeof(uint32_t));
        }
        s->pipes[s->npipes++] = id;
        atomic_store(&s->peers, s->npipes);
        nng_cv_wake(s->peer_cv);
    } else if (ev == NNG_PIPE_EV_REM_POST && at >= 0) {
        s->pipes[at] = s->pipes[--s->npipes];
        atomic_store(&s->peers, s->npipes);
    }
    nng_mtx_unlock(s->mtx);
}

int sl_sock_open(sl_sock **out, sl_sock_kind kind, sl_err *err)
{
    sl_sock *s = sl_calloc(1, sizeof(*s));
    int rv;
    switch (kind) {
    case SL_SOCK_PUSH:
        rv = nng_push0_open(&s->s);
        break;
    case SL_SOCK_PULL:
        rv = nng_pull0_open(&s->s);
        break;
    case SL_SOCK_PUB:
        rv = nng_pub0_open(&s->s);
        break;
    case SL_SOCK_SUB:
        rv = nng_sub0_open(&s->s);
        if (rv == 0) {
            rv = nng_socket_set(s->s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
        }
        break;
    case SL_SOCK_REQ:
        rv = nng_req0_open(&s->s);
        if (rv == 0) {
            /* A request is resent to another peer if its peer vanished; the resend
             * timer is our request timeout (set per call). */
            rv = nng_socket_set_ms(s->s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        }
        break;
    case SL_SOCK_REP:
        rv = nng_rep0_open(&s->s);
        break;
    case SL_SOCK_REP_RAW:
        rv = nng_rep0_open_raw(&s->s);
        break;
    default:
        rv = NNG_EINVAL;
        break;
    }
    if (rv != 0) {
        free(s);
        return conv(rv, err, "open socket");
    }
    s->kind = kind;
    atomic_init(&s->peers, 0);
    if ((rv = nng_mtx_alloc(&s->mtx)) != 0) {
        nng_close(s->s);
        free(s);
        return conv(rv, err, "alloc mutex");
    }
    if ((rv = nng_cv_alloc(&s->peer_cv, s->mtx)) != 0) {
        nng_mtx_free(s->mtx);
        nng_close(s->s);
        free(s);
        return conv(rv, err, "alloc condition variable");
    }
    nng_pipe_notify(s->s, NNG_PIPE_EV_ADD_POST, pipe_added, s);
    nng_pipe_notify(s->s, NNG_PIPE_EV_REM_POST, pipe_added, s);
    /* Reconnect quickly: actors restart in well under a second. */
    nng_socket_set_ms(s->s, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(s->s, NNG_OPT_RECONNMAXT, 500);
    /* Internal messages can be large (a 16 MiB HTTP body travels as one). */
    nng_socket_set_size(s->s, NNG_OPT_RECVMAXSZ, 0);
    *out = s;
    return 0;
}

void sl_sock_close(sl_sock *s)
{
    if (s == NULL) {
        return;
    }
    nng_close(s->s);
    nng_cv_free(s->peer_cv);
    nng_mtx_free(s->mtx);
    free(s->pipes);
    free(s);
}

/* For ipc:// creates the directory and removes a stale socket file. */
static int prepare_ipc(const char *url, sl_err *err)
{
    if (strncmp(url, "ipc://", 6) != 0) {
        return 0;
    }
    const char *path = url + 6;
    char dir[4096];
    if (strlen(path) >= sizeof(dir)) {
        return sl_err_set(err, SL_EINVAL, "ipc path too long: %s", path);
    }
    strcpy(dir, path);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                return sl_err_set(err, -errno, "mkdir %s: %s", dir, strerror(errno));
            }
            *p = '/';
        }
    }
    if (strlen(path) > 100) {
        return sl_err_set(err, SL_EINVAL,
                          "ipc path %s is longer than a unix socket allows (about 100 bytes); "
                          "use a shorter data dir",
                          path);
    }
    unlink(path);
    return 0;
}

int sl_sock_listen(sl_sock *s, const char *url, sl_err *err)
{
    int rc = prepare_ipc(url, err);
    if (rc != 0) {
        return rc;
    }
    int rv = nng_listen(s->s, url, NULL, 0);
    if (rv != 0) {
        char what[600];
        snprintf(what, sizeof(what), "listen on %s", url);
        return conv(rv, err, what);
    }
    return 0;
}

int sl_sock_dial(sl_sock *s, const char *url, sl_err *err)
{
    int rv = nng_dial(s->s, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        char what[600];
        snprintf(what, sizeof(what), "dial %s", url);
        return conv(rv, err, what);
    }
    return 0;
}

int sl_sock_set_timeouts(sl_sock *s, int send_ms, int recv_ms)
{
    int rv = nng_socket_set_ms(s->s, NNG_OPT_SENDTIMEO, send_ms < 0 ? NNG_DURATION_INFINITE : send_ms);
    if (rv == 0) {
        rv = nng_socket_set_ms(s->s, NNG_OPT_RECVTIMEO, recv_ms < 0 ? NNG_DURATION_INFINITE : recv_ms);
    }
    return conv(rv, NULL, "set timeouts");
}

int sl_sock_set_sendbuf(sl_sock *s, int msgs)
{
    return conv(nng_socket_set_int(s->s, NNG_OPT_SENDBUF, msgs), NULL, "set sendbuf");
}

int sl_sock_recv_fd(sl_sock *s, int *fd, sl_err *err)
{
    return conv(nng_socket_get_int(s->s, NNG_OPT_RECVFD, fd), err, "get recv fd");
}

int sl_sock_send(sl_sock *s, const void *data, size_t len, bool nonblock, sl_err *err)
{
    int rv = nng_send(s->s, (void *)data, len, nonblock ? NNG_FLAG_NONBLOCK : 0);
    return conv(rv, err, "send");
}

int sl_sock_recv(sl_sock *s, sl_msg **out, bool nonblock, sl_err *err)
{
    nng_msg *m;
    int rv = nng_recvmsg(s->s, &m, nonblock ? NNG_FLAG_NONBLOCK : 0);
    if (rv != 0) {
        return conv(rv, err, "recv");
    }
    sl_msg *w = sl_malloc(sizeof(*w));
    w->m = m;
    *out = w;
    return 0;
}

/* Waits up to min(timeout_ms, SL_SOCK_PEER_WAIT_MS) for a peer to connect. A peer that
 * is restarting, or that started a moment after us (NNG re-dials every 20..500 ms),
 * is then waited for instead of failing the request; one that stays away still fails
 * fast enough for a caller to answer "unavailable, retry". */
static bool wait_for_peer(sl_sock *s, int timeout_ms)
{
    int wait_ms = timeout_ms < SL_SOCK_PEER_WAIT_MS ? timeout_ms : SL_SOCK_PEER_WAIT_MS;
    nng_time until = nng_clock() + (nng_time)(wait_ms > 0 ? wait_ms : 0);
    nng_mtx_lock(s->mtx);
    while (s->npipes == 0 && nng_cv_until(s->peer_cv, until) != NNG_ETIMEDOUT) {
    }
    bool ok = s->npipes > 0;
    nng_mtx_unlock(s->mtx);
    return ok;
}

int sl_sock_request(sl_sock *s, const void *data, size_t len, int timeout_ms, sl_msg **out,
                    sl_err *err)
{
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *m = NULL;
    int rc;
    if (atomic_load(&s->peers) == 0 && !wait_for_peer(s, timeout_ms)) {
        return sl_err_set(err, SL_EUNAVAIL, "no peer connected");
    }
    int rv = nng_ctx_open(&ctx, s->s);
    if (rv != 0) {
        return conv(rv, err, "open request context");
    }
    /* nng 1.5 has no nng_ctx_sendmsg: requests go through an aio on the context. */
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        rc = conv(rv, err, "alloc aio");
        goto out;
    }
    nng_aio_set_timeout(aio, timeout_ms);
    if ((rv = nng_msg_alloc(&m, len)) != 0) {
        rc = conv(rv, err, "alloc request");
        goto out;
    }
    memcpy(nng_msg_body(m), data, len);
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(m);
        rc = conv(rv, err, "send request");
        goto out;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        rc = conv(rv, err, "receive reply");
        goto out;
    }
    sl_msg *w = sl_malloc(sizeof(*w));
    w->m = nng_aio_get_msg(aio);
    *out = w;
    rc = 0;
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rc;
}

int sl_sock_reply(sl_sock *s, const sl_msg *req, const void *data, size_t len, sl_err *err)
{
    nng_msg *m;
    int rv = nng_msg_alloc(&m, len);
    if (rv != 0) {
        return conv(rv, err, "alloc reply");
    }
    /* The raw request's header is its route back (the request id and pipe). */
    if ((rv = nng_msg_header_append(m, nng_msg_header(req->m), nng_msg_header_len(req->m))) != 0) {
        nng_msg_free(m);
        return conv(rv, err, "reply header");
    }
    memcpy(nng_msg_body(m), data, len);
    nng_msg_set_pipe(m, nng_msg_get_pipe(req->m));
    /* Blocking (bounded by the socket's send timeout): a raw REP sends one reply per
     * pipe at a time, so a non-blocking send fails with EAGAIN under load. */
    if ((rv = nng_sendmsg(s->s, m, 0)) != 0) {
        nng_msg_free(m);
        return conv(rv, err, "send reply");
    }
    return 0;
}

int sl_sock_peers(sl_sock *s)
{
    return atomic_load(&s->peers);
}

const void *sl_msg_data(const sl_msg *m)
{
    return nng_msg_body(m->m);
}

size_t sl_msg_len(const sl_msg *m)
{
    return nng_msg_len(m->m);
}

void sl_msg_free(sl_msg *m)
{
    if (m == NULL) {
        return;
    }
    nng_msg_free(m->m);
    free(m);
}
