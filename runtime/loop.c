/* The actor loop (see loop.h): poll() over a signalfd, timerfds and NNG recv fds.
 * NNG's recv fd is level-ish: it is readable while a message is queued, so each
 * wake-up drains up to a budget of messages and returns to poll for fairness. */
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <stdlib.h>
#include <unistd.h>

#define LOOP_MAX_SOURCES 64
#define LOOP_BATCH 64

typedef enum source_kind { SRC_SIGNAL, SRC_TIMER, SRC_SOCK } source_kind;

typedef struct source {
    source_kind kind;
    int fd;
    sl_sock *sock;
    const sl_handler *handlers;
    sl_timer_cb timer;
    void *state;
    bool paused;
} source;

struct sl_loop {
    source src[LOOP_MAX_SOURCES];
    int nsrc;
    bool stopping;
    sl_timer_cb idle;
    void *idle_state;
    sl_msg *current; /* the message being dispatched, NULL once taken */
};

static int add_source(sl_loop *loop, source s, sl_err *err)
{
    if (loop->nsrc >= LOOP_MAX_SOURCES) {
        return sl_err_set(err, SL_ETOOBIG, "too many loop sources");
    }
    loop->src[loop->nsrc++] = s;
    return 0;
}

int sl_loop_new(sl_loop **out, sl_err *err)
{
    sl_loop *loop = sl_calloc(1, sizeof(*loop));
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        free(loop);
        return sl_err_set(err, -errno, "sigprocmask: %s", strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        free(loop);
        return sl_err_set(err, -errno, "signalfd: %s", strerror(errno));
    }
    source s = {.kind = SRC_SIGNAL, .fd = fd};
    add_source(loop, s, NULL);
    *out = loop;
    return 0;
}

void sl_loop_free(sl_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    for (int i = 0; i < loop->nsrc; i++) {
        if (loop->src[i].kind != SRC_SOCK) {
            close(loop->src[i].fd);
        }
    }
    free(loop);
}

int sl_loop_add_sock(sl_loop *loop, sl_sock *sock, const sl_handler *handlers, void *state,
                     sl_err *err)
{
    int fd;
    int rc = sl_sock_recv_fd(sock, &fd, err);
    if (rc != 0) {
        return rc;
    }
    source s = {.kind = SRC_SOCK, .fd = fd, .sock = sock, .handlers = handlers, .state = state};
    return add_source(loop, s, err);
}

int sl_loop_add_timer(sl_loop *loop, int64_t interval_ms, sl_timer_cb cb, void *state,
                      sl_err *err)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) {
        return sl_err_set(err, -errno, "timerfd_create: %s", strerror(errno));
    }
    struct itimerspec its = {
        .it_interval = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000},
        .it_value = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000},
    };
    if (timerfd_settime(fd, 0, &its, NULL) != 0) {
        close(fd);
        return sl_err_set(err, -errno, "timerfd_settime: %s", strerror(errno));
    }
    source s = {.kind = SRC_TIMER, .fd = fd, .timer = cb, .state = state};
    int rc = add_source(loop, s, err);
    if (rc != 0) {
        close(fd);
    }
    return rc;
}

static void dispatch(sl_loop *loop, source *s, sl_msg *m)
{
    const void *data = sl_msg_data(m);
    size_t len = sl_msg_len(m);
    int type = sl_msg_type(data, len);
    sl_handler h = s->handlers[type]; /* [SL_MSG_NONE] handles what is not ours */
    if (h == NULL) {
        SL_LOG_RATE(WARN, 1000, "message_dropped", "type=%d bytes=%zu reason=\"no handler\"",
                    type, len);
        return;
    }
    loop->current = m;
    h(s->state, s->sock, data, len);
}

static int drain(sl_loop *loop, source *s, int budget)
{
    int n = 0;
    while (budget < 0 || n < budget) {
        sl_msg *m;
        if (sl_sock_recv(s->sock, &m, true, NULL) != 0) {
            break;
        }
        dispatch(loop, s, m);
        if (loop->current == m) {
            sl_msg_free(m);
        }
        loop->current = NULL;
        n++;
    }
    return n;
}

int sl_loop_drain(sl_loop *loop, sl_sock *sock)
{
    for (int i = 0; i < loop->nsrc; i++) {
        if (loop->src[i].kind == SRC_SOCK && loop->src[i].sock == sock) {
            return drain(loop, &loop->src[i], -1);
        }
    }
    return 0;
}

int sl_loop_run(sl_loop *loop)
{
    struct pollfd pfd[LOOP_MAX_SOURCES];
    while (!loop->stopping) {
        int n = loop->nsrc;
        for (int i = 0; i < n; i++) {
            pfd[i].fd = loop->src[i].paused ? -1 : loop->src[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        int rc = poll(pfd, (nfds_t)n, -1);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            SL_LOG(ERROR, "poll_failed", "errno=%d", errno);
            return -errno;
        }
        for (int i = 0; i < n && !loop->stopping; i++) {
            if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) == 0) {
                continue;
            }
            source *s = &loop->src[i];
            switch (s->kind) {
            case SRC_SIGNAL: {
                struct signalfd_siginfo si;
                while (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    SL_LOG(INFO, "signal", "signo=%u", si.ssi_signo);
                    loop->stopping = true;
                }
                break;
            }
            case SRC_TIMER: {
                uint64_t ticks;
                if (read(s->fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks)) {
                    s->timer(s->state);
                }
                break;
            }
            case SRC_SOCK:
                drain(loop, s, LOOP_BATCH);
                break;
            }
        }
        if (loop->idle != NULL) {
            loop->idle(loop->idle_state);
        }
    }
    return 0;
}

void sl_loop_pause(sl_loop *loop, sl_sock *sock, bool paused)
{
    for (int i = 0; i < loop->nsrc; i++) {
        if (loop->src[i].kind == SRC_SOCK && loop->src[i].sock == sock) {
            loop->src[i].paused = paused;
        }
    }
}

sl_msg *sl_loop_take(sl_loop *loop)
{
    sl_msg *m = loop->current;
    loop->current = NULL;
    return m;
}

void sl_loop_set_idle(sl_loop *loop, sl_timer_cb cb, void *state)
{
    loop->idle = cb;
    loop->idle_state = state;
}

void sl_loop_stop(sl_loop *loop)
{
    loop->stopping = true;
}

bool sl_loop_stopping(const sl_loop *loop)
{
    return loop->stopping;
}
