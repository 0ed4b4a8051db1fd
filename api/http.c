/* The HTTP server on libmicrohttpd (see http.h). The only file that includes
 * microhttpd.h: libmicrohttpd's return codes and callbacks end here.
 *
 * A request's life: MHD calls uri_logged with the raw request target as soon as the
 * request line is parsed; what it returns becomes the request's context (*con_cls),
 * so the raw query string is kept without re-encoding MHD's decoded arguments.
 * on_request is then called once with the headers (route lookup, Content-Length
 * check, the route's check hook), once per body chunk (accumulated under the cap)
 * and once more at the end (the handler runs and the reply is queued). MHD calls
 * request_done when the reply has been sent or the connection died; that frees the
 * context and counts the request out, which is what sl_http_stop waits for.
 *
 * A streamed reply (Server-Sent Events) is a response from a callback: stream_read
 * hands MHD what is queued and, when nothing is, suspends the connection (off the
 * event loop, no worker thread held) until sl_http_stream_write or _end resumes it.
 * Suspending (inside the callback) and resuming both happen under the stream's mutex
 * with its asleep flag, so a connection is only resumed while suspended, as
 * libmicrohttpd requires; and since MHD_stop_daemon must not find a suspended
 * connection, sl_http_stop ends every stream before it waits. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

struct sl_http {
    struct MHD_Daemon *daemon; /* NULL until sl_http_serve */
    int fd;                    /* the listen socket until the daemon takes it */
    sl_http_opts opts;
    char *host;
    const sl_route *routes;
    void *state;
    size_t max_body;
    int drain_ms;
    int port;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t idle;    /* signalled when inflight drops to 0 */
    int inflight;           /* requests between uri_logged and request_done */
    atomic_size_t buffered; /* sum of the requests' reserved bytes (opts.max_buffered) */
    /* Streamed replies handed to MHD, under mu. */
    sl_http_stream *streams;
};

/* References: the owner's (sl_http_resp_stream's caller) and the reply's (the request
 * until respond() hands it to MHD, then MHD's response until stream_gone). */
struct sl_http_stream {
    pthread_mutex_t mu;
    int refs;
    sl_http *srv;                /* set when queued */
    struct MHD_Connection *conn; /* set when queued; NULL once gone */
    sl_buf pending;              /* queued, not yet handed to MHD */
    size_t max_pending;
    bool asleep; /* the connection is suspended, waiting for data */
    bool ended;  /* nothing more will be queued: the reply ends once pending is out */
    bool gone;   /* MHD is done with the reply */
    sl_http_stream *prev, *next; /* srv->streams, under srv->mu */
};

struct sl_http_req {
    sl_http *srv;
    struct MHD_Connection *conn;
    char *uri;          /* raw request target */
    const char *query;  /* into uri, after '?' */
    const char *method; /* MHD's, valid for the request */
    const char *path;   /* MHD's percent-decoded path */
    const sl_route *route;
    bool started;     /* the headers call has been handled */
    bool replied;     /* a reply has been queued */
    bool deferred;    /* resp is the reply, to be queued at the end of the request */
    size_t discarded; /* body bytes thrown away after the limit was crossed */
    size_t reserved;  /* bytes this request holds of srv->buffered */
    sl_buf body;
    sl_http_resp resp;
    int64_t t0_ns; /* when the request line arrived (for the latency metric) */
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls);
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn);
static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe);
static void mhd_log(void *cls, const char *fmt, va_list ap);
static int listen_on(const char *host, int port, sl_err *err);
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max);
static void stream_gone(void *cls);
static void stream_wake_locked(sl_http_stream *s);

/* ---- server lifecycle ------------------------------------------------------------ */

int sl_http_listen(const sl_http_opts *opts, const sl_route *routes, void *state, sl_http **out,
                   sl_err *err)
{
    pthread_condattr_t ca;
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);

    int fd = listen_on(opts->host, opts->port, err);
    if (fd < 0) {
        return fd;
    }
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        int e = errno;
        close(fd);
        return sl_err_set(err, -e, "http: getsockname on %s:%d: %s", opts->host, opts->port,
                          strerror(e));
    }
    sl_http *h = sl_calloc(1, sizeof(*h));
    h->fd = fd;
    h->opts = *opts;
    h->host = sl_strdup(opts->host);
    h->opts.host = h->host;
    h->routes = routes;
    h->state = state;
    h->max_body = opts->max_body;
    h->drain_ms = opts->drain_ms;
    h->port = ntohs(sa.sin_port);
    atomic_init(&h->stopping, false);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->idle, &ca);
    pthread_condattr_destroy(&ca);
    *out = h;
    return 0;
}

int sl_http_serve(sl_http *h, sl_err *err)
{
    unsigned threads = h->opts.threads > 1 ? (unsigned)h->opts.threads : 1;
    unsigned idle = (unsigned)(h->opts.idle_timeout_s > 0 ? h->opts.idle_timeout_s : 60);
    /* poll(), not epoll: with epoll, libmicrohttpd 0.9.75's MHD_quiesce_daemon and a busy
     * worker thread can both take the listen socket out of the worker's epoll set, and the
     * loser aborts the process ("Failed to remove listen FD from epoll set"; seen about
     * once in 200 stops under load). With poll() each worker rebuilds its set every turn
     * and quiescing only wakes it. MHD_USE_ITC: needed by MHD_quiesce_daemon in the
     * thread-pool mode (and to wake a resumed stream). MHD_ALLOW_SUSPEND_RESUME: streamed
     * replies sleep suspended. The external logger goes first so that no message reaches
     * MHD's default stderr logger. */
    unsigned flags =
        MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;

    SL_ASSERT(h->daemon == NULL && h->fd >= 0);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_URI_LOG_CALLBACK, uri_logged, h,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, h, MHD_OPTION_END);
    if (h->daemon == NULL) {
        return sl_err_set(err, SL_EIO, "http: cannot start the HTTP server on %s:%d", h->host,
                          h->port);
    }
    h->fd = -1; /* the daemon owns it now */
    return 0;
}

int sl_http_start(const sl_http_opts *opts, const sl_route *routes, void *state, sl_http **out,
                  sl_err *err)
{
    sl_http *h = NULL;
    int rc = sl_http_listen(opts, routes, state, &h, err);
    if (rc == 0 && (rc = sl_http_serve(h, err)) != 0) {
        sl_http_stop(h);
        h = NULL;
    }
    *out = h;
    return rc;
}

int sl_http_port(const sl_http *h)
{
    return h->port;
}

void sl_http_stop(sl_http *h)
{
    struct timespec deadline;

    if (h == NULL) {
        return;
    }
    if (h->daemon == NULL) {
        goto out; /* bound, never served */
    }
    /* Under mu: a stream queued from here on sees stopping and ends at once. */
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->stopping, true);
    for (sl_http_stream *s = h->streams; s != NULL; s = s->next) {
        sl_http_stream_end(s);
    }
    pthread_mutex_unlock(&h->mu);
    /* No new connections from here on; the listen socket is ours. A worker may still be
     * inside poll() with it: shutdown() stops the listening (new connections are refused)
     * while the descriptor stays valid, and it is closed once the workers are joined. */
    MHD_socket lfd = MHD_quiesce_daemon(h->daemon);
    if (lfd != MHD_INVALID_SOCKET) {
        shutdown(lfd, SHUT_RD);
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += h->drain_ms / 1000;
    deadline.tv_nsec += (long)(h->drain_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    while (h->inflight > 0) {
        if (pthread_cond_timedwait(&h->idle, &h->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    int left = h->inflight;
    pthread_mutex_unlock(&h->mu);
    if (left > 0) {
        SL_LOG(WARN, "http_drain_timeout", "requests=%d drain_ms=%d", left, h->drain_ms);
    }
    /* Joins the worker threads and closes every connection (idle keep-alive ones and
     * any request that did not finish in time); request_done runs for each. */
    MHD_stop_daemon(h->daemon);
    if (lfd != MHD_INVALID_SOCKET) {
        close(lfd);
    }
out:
    if (h->fd >= 0) {
        close(h->fd);
    }
    free(h->host);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->idle);
    free(h);
}

/* ---- MHD callbacks, in the order MHD calls them ----------------------------------- */

static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
    sl_http *h = cls;
    sl_http_req *r = sl_calloc(1, sizeof(*r));

    r->srv = h;
    r->conn = conn;
    r->t0_ns = sl_mono_ns();
    r->uri = sl_strdup(uri != NULL ? uri : "");
    char *q = strchr(r->uri, '?');
    if (q != NULL) {
        *q = '\0'; /* uri is now the raw path, for logs */
        r->query = q + 1;
    } else {
        r->query = "";
    }
    sl_buf_init(&r->body);
    sl_buf_init(&r->resp.body);
    pthread_mutex_lock(&h->mu);
    h->inflight++;
    pthread_mutex_unlock(&h->mu);
    return r;
}

/* The response of a streamed reply: the body so far goes first; the reply's reference
 * passes to the response (stream_gone drops it), which MHD frees once it is done. */
static struct MHD_Response *stream_response(sl_http_req *r)
{
    sl_http_stream *s = r->resp.stream;
    sl_http *h = r->srv;

    pthread_mutex_lock(&s->mu);
    if (r->resp.body.len > 0) {
        sl_buf rest = s->pending;
        sl_buf_init(&s->pending);
        sl_buf_append(&s->pending, r->resp.body.data, r->resp.body.len);
        if (rest.len > 0) {
            sl_buf_append(&s->pending, rest.data, rest.len);
        }
        sl_buf_fini(&rest);
    }
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *m =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_gone);
    if (m == NULL) {
        return NULL; /* the request still holds the reference: request_done drops it */
    }
    r->resp.stream = NULL;
    pthread_mutex_lock(&h->mu);
    pthread_mutex_lock(&s->mu);
    s->srv = h;
    s->conn = r->conn;
    if (atomic_load(&h->stopping)) {
        s->ended = true;
    }
    s->next = h->streams;
    if (h->streams != NULL) {
        h->streams->prev = s;
    }
    h->streams = s;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&h->mu);
    return m;
}

/* Request metrics, labelled by route pattern (not the raw path: label values stay few),
 * method and status. "unmatched": no route took the request (404, 405, OPTIONS). */
static void count_reply(const sl_http_req *r)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST", "PUT",
                                          "DELETE", "OPTIONS", "PATCH"};
    const char *method = "other";
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (r->method != NULL && strcmp(r->method, methods[i]) == 0) {
            method = methods[i];
        }
    }
    const char *route = r->route != NULL ? r->route->path : "unmatched";
    char status[16];
    snprintf(status, sizeof(status), "%d", r->resp.status);
    SL_METRIC_ADD(SL_M_HTTP_REQUESTS, 1, method, route, status);
    SL_METRIC_OBSERVE(SL_M_HTTP_SECONDS, (double)(sl_mono_ns() - r->t0_ns) / 1e9, method, route);
    if (r->resp.status == 429 || r->resp.status == 503 || r->resp.status == 507) {
        SL_METRIC_ADD(SL_M_HTTP_BACKPRESSURE, 1, route, status);
    }
}

/* Queues r->resp. body_unread: the reply goes out before the body was read, so the
 * connection cannot be reused (the rest of the upload would be taken for the next
 * request) and must close. */
static enum MHD_Result respond(sl_http_req *r, bool body_unread)
{
    sl_http_resp *resp = &r->resp;

    if (resp->status == 0 && resp->stream != NULL) {
        resp->status = 200;
    }
    if (resp->status == 0) {
        sl_http_resp_error(resp, 500, "internal error: the handler for %s %s set no reply",
                           r->method, r->path);
    }
    struct MHD_Response *m;
    if (resp->stream != NULL) {
        m = stream_response(r);
    } else if (resp->body.len > 0) {
        /* MHD takes the buffer (and frees it when done): a large reply is not copied. */
        m = MHD_create_response_from_buffer(resp->body.len, resp->body.data, MHD_RESPMEM_MUST_FREE);
        if (m != NULL) {
            sl_buf_init(&resp->body);
        }
    } else {
        m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (m == NULL) {
        return MHD_NO;
    }
    if (resp->status != 204) {
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type != NULL ? resp->content_type
                                                           : "application/json");
    }
    MHD_add_response_header(m, "Access-Control-Allow-Origin", "*");
    for (int i = 0; i < resp->nheaders; i++) {
        MHD_add_response_header(m, resp->headers[i].name, resp->headers[i].value);
    }
    if (body_unread || atomic_load(&r->srv->stopping)) {
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    r->replied = true;
    r->deferred = false;
    if (resp->status >= 500) {
        SL_LOG_RATE(WARN, 1000, "http_reply", "method=%s path=%s status=%d", r->method, r->uri,
                    resp->status);
    } else {
        SL_LOG(DEBUG, "http_reply", "method=%s path=%s status=%d", r->method, r->uri, resp->status);
    }
    count_reply(r);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)resp->status, m);
    MHD_destroy_response(m);
    return ret;
}

/* A reply decided on the headers. With a body announced it goes out now and the
 * connection closes (libmicrohttpd stops reading it: a 413 needs no upload). Without
 * one it waits for the request's last call, where queueing keeps the connection
 * alive (a reply queued on the headers call always closes it). */
static enum MHD_Result early(sl_http_req *r, bool has_body)
{
    if (has_body) {
        return respond(r, true);
    }
    r->deferred = true;
    return MHD_YES;
}

/* The first call: headers are in, nothing of the body is read yet. */
static enum MHD_Result on_headers(sl_http_req *r)
{
    sl_http *h = r->srv;
    char allow[128];
    int status = 0;
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool has_body = (cl != NULL && strcmp(cl, "0") != 0) ||
                    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;

    r->route = sl_route_match(h->routes, r->method, r->path, &status, allow, sizeof(allow));
    if (r->route == NULL && status == 405 && strcmp(r->method, MHD_HTTP_METHOD_OPTIONS) == 0) {
        /* CORS preflight (or a plain OPTIONS): say what the path takes. */
        r->resp.status = 204;
        sl_http_resp_header(&r->resp, "Allow", allow);
        sl_http_resp_header(&r->resp, "Access-Control-Allow-Methods", allow);
        sl_http_resp_header(&r->resp, "Access-Control-Allow-Headers",
                            "Content-Type, Content-Encoding");
        sl_http_resp_header(&r->resp, "Access-Control-Max-Age", "86400");
        return early(r, has_body);
    }
    if (r->route == NULL && status == 405) {
        sl_http_resp_error(&r->resp, 405, "method %s not allowed on %s (allowed: %s)", r->method,
                           r->path, allow);
        sl_http_resp_header(&r->resp, "Allow", allow);
        return early(r, has_body);
    }
    if (r->route == NULL) {
        sl_http_resp_error(&r->resp, 404, "no such endpoint: %s", r->path);
        return early(r, has_body);
    }
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        /* MHD has already refused a malformed Content-Length; a huge one overflows. */
        if (errno == ERANGE || n > h->max_body) {
            sl_http_resp_error(&r->resp, 413,
                               "request body of %s bytes exceeds the limit of %zu bytes", cl,
                               h->max_body);
            return early(r, has_body);
        }
        if (!sl_http_req_reserve(r, (size_t)n)) {
            sl_http_resp_busy(&r->resp, r, "a request body", (size_t)n);
            return early(r, has_body);
        }
    }
    if (r->route->check != NULL) {
        r->route->check(h->state, r, &r->resp);
        if (r->resp.status != 0) {
            return early(r, has_body);
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    sl_http *h = cls;
    sl_http_req *r = *con_cls;

    if (r == NULL) {
        /* Not expected (uri_logged runs first), but harmless to recover from. */
        r = uri_logged(h, url, conn);
        *con_cls = r;
    }
    if (!r->started) {
        r->started = true;
        r->method = method;
        r->path = url;
        return on_headers(r);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->deferred) {
            /* The reply is decided; the rest of the body is thrown away. libmicrohttpd
             * 0.9.75 only takes a reply before the body or after all of it, so a
             * chunked upload that crosses the limit is read to its end (413 then) --
             * up to max_body more bytes, past which the connection is dropped. */
            r->discarded += n;
            return r->discarded > h->max_body ? MHD_NO : MHD_YES;
        }
        /* A chunked body reserves as it comes (a Content-Length one has already). */
        size_t need = r->body.len + n > r->reserved ? r->body.len + n - r->reserved : 0;
        if (n <= h->max_body - r->body.len && need > 0 && !sl_http_req_reserve(r, need)) {
            sl_http_resp_busy(&r->resp, r, "a request body", r->body.len + n);
            sl_buf_fini(&r->body);
            sl_http_req_unreserve(r, r->reserved);
            r->deferred = true;
            r->discarded = n;
            return MHD_YES;
        }
        if (n > h->max_body - r->body.len) {
            sl_http_resp_error(&r->resp, 413, "request body exceeds the limit of %zu bytes",
                               h->max_body);
            sl_buf_fini(&r->body);
            sl_buf_init(&r->body);
            r->deferred = true;
            r->discarded = n;
            return MHD_YES;
        }
        sl_buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    if (r->deferred) {
        return respond(r, r->resp.status == 413 || r->resp.status == 503);
    }
    if (r->replied) {
        return MHD_YES;
    }
    r->route->handle(h->state, r, &r->resp);
    return respond(r, false);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    sl_http *h = cls;
    sl_http_req *r = *con_cls;

    if (r == NULL) {
        return;
    }
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT) {
        SL_LOG_RATE(INFO, 1000, "http_request_aborted", "method=%s path=%s code=%d",
                    r->method != NULL ? r->method : "-", r->uri, (int)toe);
    }
    sl_buf_fini(&r->body);
    sl_buf_fini(&r->resp.body);
    sl_http_req_unreserve(r, r->reserved);
    sl_http_stream_release(r->resp.stream); /* a stream never handed to MHD */
    free(r->uri);
    free(r);
    pthread_mutex_lock(&h->mu);
    if (--h->inflight == 0) {
        pthread_cond_broadcast(&h->idle);
    }
    pthread_mutex_unlock(&h->mu);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One logfmt value: no newlines, no double quotes. */
    for (char *p = msg; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        } else if (*p == '"') {
            *p = '\'';
        }
    }
    SL_LOG_RATE(WARN, 1000, "http_server", "msg=\"%s\"", msg);
}

/* ---- binding ---------------------------------------------------------------------- */

/* Binds and listens on host:port; returns the socket or a negative error naming
 * host:port. The socket is ours (not MHD's) so a busy port is reported with errno. */
static int listen_on(const char *host, int port, sl_err *err)
{
    struct sockaddr_in sa;
    int fd = -1;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    if (port < 0 || port > 65535) {
        return sl_err_set(err, SL_ECONFIG, "http: bad port %d for host %s", port,
                          host != NULL ? host : "");
    }
    sa.sin_port = htons((uint16_t)port);
    if (host == NULL || host[0] == '\0') {
        return sl_err_set(err, SL_ECONFIG, "http: empty host in :%d", port);
    }
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        struct addrinfo hints;
        struct addrinfo *ai = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        int grc = getaddrinfo(host, NULL, &hints, &ai);
        if (grc != 0 || ai == NULL) {
            return sl_err_set(err, SL_ECONFIG,
                              "http: cannot listen on %s:%d: host is not an IPv4 address (%s)",
                              host, port, gai_strerror(grc));
        }
        sa.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        freeaddrinfo(ai);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return sl_err_set(err, -errno, "http: socket for %s:%d: %s", host, port, strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return sl_err_set(err, -e, "http: cannot listen on %s:%d: %s", host, port, strerror(e));
    }
    return fd;
}

/* ---- request accessors and reply building ---------------------------------------- */

const char *sl_http_req_method(const sl_http_req *req)
{
    return req->method;
}

const char *sl_http_req_path(const sl_http_req *req)
{
    return req->path;
}

const char *sl_http_req_query(const sl_http_req *req)
{
    return req->query;
}

const char *sl_http_req_header(const sl_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sl_http_req_body(const sl_http_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.len > 0 ? req->body.data : "";
}

void sl_http_resp_header(sl_http_resp *resp, const char *name, const char *value)
{
    SL_ASSERT(resp->nheaders < SL_HTTP_MAX_HEADERS);
    snprintf(resp->headers[resp->nheaders].name, sizeof(resp->headers[0].name), "%s", name);
    snprintf(resp->headers[resp->nheaders].value, sizeof(resp->headers[0].value), "%s", value);
    resp->nheaders++;
}

void sl_http_resp_error(sl_http_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = NULL;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"error\":");
    sl_json_strz(&resp->body, msg);
    sl_json_raw(&resp->body, "}");
}

/* ---- streamed replies --------------------------------------------------------------- */

sl_http_stream *sl_http_resp_stream(sl_http_resp *resp, size_t max_pending)
{
    SL_ASSERT(resp->stream == NULL);
    sl_http_stream *s = sl_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 2;
    s->max_pending = max_pending;
    sl_buf_init(&s->pending);
    resp->stream = s;
    return s;
}

int sl_http_stream_write(sl_http_stream *s, const void *data, size_t len)
{
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    if (s->ended || s->gone) {
        rc = SL_ECLOSED;
    } else if (s->pending.len + len > s->max_pending) {
        s->ended = true;
        rc = SL_ETOOBIG;
    } else {
        sl_buf_append(&s->pending, data, len);
    }
    stream_wake_locked(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sl_http_stream_end(sl_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    stream_wake_locked(s);
    pthread_mutex_unlock(&s->mu);
}

void sl_http_stream_release(sl_http_stream *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0) {
        sl_buf_fini(&s->pending);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}

static void stream_wake_locked(sl_http_stream *s)
{
    if (s->asleep) {
        s->asleep = false;
        MHD_resume_connection(s->conn);
    }
}

/* MHD's content reader, on the connection's worker thread. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sl_http_stream *s = cls;
    ssize_t n;

    pthread_mutex_lock(&s->mu);
    if (s->pending.len > 0) {
        size_t k = s->pending.len < max ? s->pending.len : max;
        memcpy(buf, s->pending.data, k);
        memmove(s->pending.data, s->pending.data + k, s->pending.len - k);
        s->pending.len -= k;
        n = (ssize_t)k;
    } else if (s->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: sleep until a write or an end wakes the connection. */
        s->asleep = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* MHD frees the response: the connection is done with the stream. */
static void stream_gone(void *cls)
{
    sl_http_stream *s = cls;
    sl_http *h = s->srv;

    pthread_mutex_lock(&h->mu);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        h->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&s->mu);
    s->gone = true;
    s->ended = true;
    s->asleep = false;
    s->conn = NULL;
    pthread_mutex_unlock(&s->mu);
    sl_http_stream_release(s);
}

/* ---- parsing helpers --------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decodes s[0..n) (%XX, '+' as space) into out, NUL-terminated. Returns 0, -1 for a
 * malformed escape, -2 for an escaped NUL. */
static int query_decode(const char *s, size_t n, sl_buf *out)
{
    sl_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int hi = hexval((unsigned char)s[i + 1]);
            int lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            if (c == '\0') {
                return -2;
            }
            i += 2;
        }
        sl_buf_append(out, &c, 1);
    }
    sl_buf_append(out, "", 1);
    out->len--;
    return 0;
}

int sl_http_query_get(const char *query, const char *name, sl_buf *out, sl_err *err)
{
    const char *p = query != NULL ? query : "";
    sl_buf key;
    int rc = 0;

    sl_buf_init(&key);
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        if (end == NULL) {
            end = p + strlen(p);
        }
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq != NULL ? eq : end;
        /* A parameter whose name does not decode cannot be the one asked for. */
        if (query_decode(p, (size_t)(kend - p), &key) == 0 && strcmp(key.data, name) == 0) {
            const char *v = eq != NULL ? eq + 1 : end;
            int drc = query_decode(v, (size_t)(end - v), out);
            if (drc == -1) {
                rc = sl_err_set(err, SL_EPARSE, "malformed %%-escape in query parameter \"%s\"",
                                name);
            } else if (drc == -2) {
                rc = sl_err_set(err, SL_EPARSE, "query parameter \"%s\" contains %%00", name);
            } else {
                rc = 1;
            }
            goto out;
        }
        p = *end != '\0' ? end + 1 : end;
    }
out:
    sl_buf_fini(&key);
    return rc;
}

static bool is_tchar(int c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int sl_http_media_type(const char *value, char *buf, size_t size, sl_err *err)
{
    const char *s = value;
    const char *e;
    const char *slash = NULL;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = strchr(s, ';');
    if (e == NULL) {
        e = s + strlen(s);
    }
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    size_t n = (size_t)(e - s);
    for (const char *p = s; p < e; p++) {
        if (*p == '/' && slash == NULL) {
            slash = p;
        } else if (!is_tchar((unsigned char)*p)) {
            slash = NULL;
            break;
        }
    }
    if (slash == NULL || slash == s || slash + 1 == e) {
        return sl_err_set(err, SL_EPARSE, "malformed Content-Type \"%s\": expected type/subtype",
                          value);
    }
    if (n + 1 > size) {
        return sl_err_set(err, SL_ETOOBIG, "Content-Type \"%s\" is too long", value);
    }
    for (size_t i = 0; i < n; i++) {
        buf[i] = (char)tolower((unsigned char)s[i]);
    }
    buf[n] = '\0';
    return 0;
}

/* ---- memory held by requests ------------------------------------------------------ */

bool sl_http_req_reserve(sl_http_req *req, size_t n)
{
    if (req == NULL) {
        return true;
    }
    sl_http *h = req->srv;
    size_t max = h->opts.max_buffered;
    size_t cur = atomic_load(&h->buffered);
    do {
        if (max > 0 && (n > max || cur > max - n)) {
            SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "refuse");
            return false;
        }
    } while (!atomic_compare_exchange_weak(&h->buffered, &cur, cur + n));
    req->reserved += n;
    return true;
}

void sl_http_req_unreserve(sl_http_req *req, size_t n)
{
    if (req == NULL) {
        return;
    }
    n = n < req->reserved ? n : req->reserved;
    req->reserved -= n;
    atomic_fetch_sub(&req->srv->buffered, n);
}

void sl_http_resp_busy(sl_http_resp *resp, const sl_http_req *req, const char *what, size_t n)
{
    const sl_http *h = req->srv;
    sl_http_resp_error(resp, 503,
                       "the gateway is at its memory bound: %s of %zu bytes does not fit next to "
                       "the %zu bytes that requests in flight hold (limit %zu bytes, 40%% of "
                       "memory_mb.gateway); retry",
                       what, n, (size_t)atomic_load(&h->buffered), h->opts.max_buffered);
    sl_http_resp_header(resp, "Retry-After", "1");
}
