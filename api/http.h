/* The HTTP server: libmicrohttpd behind a small API (only api/http.c includes
 * microhttpd.h). A route table maps method + path to handlers; this layer does the
 * parts every endpoint shares: reading the request body into memory under a size
 * cap (413 as soon as it is crossed), 404 / 405 (with Allow) / OPTIONS replies,
 * `Access-Control-Allow-Origin: *` on every reply, keep-alive, and a stop that lets
 * requests already being served finish.
 *
 * Threads: libmicrohttpd runs a pool of opts->threads worker threads; handlers run
 * on them, may block (a handler waiting on another actor holds its worker thread and
 * the connections it serves) and must be thread-safe with respect to their state. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "msg.h"

typedef struct sl_http sl_http;
/* One request; lives from its request line to its reply being sent. */
typedef struct sl_http_req sl_http_req;

#define SL_HTTP_MAX_HEADERS 8

/* A streamed reply (see sl_http_resp_stream). */
typedef struct sl_http_stream sl_http_stream;

/* A reply being built by a handler. status 0 means "not set yet". body is sent as
 * it is with content_type (NULL: application/json). Owned by the request. */
typedef struct sl_http_resp {
    int status;
    const char *content_type; /* must outlive the request (a literal) */
    sl_buf body;
    int nheaders;
    struct {
        char name[32];
        char value[224];
    } headers[SL_HTTP_MAX_HEADERS];
    sl_http_stream *stream; /* set by sl_http_resp_stream: body is its first bytes */
} sl_http_resp;

/* A handler reads req and fills resp. state is the pointer given to sl_http_start. */
typedef void (*sl_http_handler)(void *state, sl_http_req *req, sl_http_resp *resp);

/* A route: method ("GET" also answers HEAD) and path (exact, or a prefix when it
 * ends in an asterisk: "/druid/v2/" + "*" matches "/druid/v2/" and everything under it).
 * check, when not NULL, runs as soon as the headers are in: if it sets a status,
 * that is the reply and the body is never read (a 415 needs no 16 MB upload).
 * handle runs once the whole body is in. Tables end with an entry whose method is
 * NULL. */
typedef struct sl_route {
    const char *method;
    const char *path;
    sl_http_handler check;
    sl_http_handler handle;
} sl_route;

typedef struct sl_http_opts {
    const char *host;   /* IPv4 address, or a name resolving to one ("localhost") */
    int port;           /* 0: any free port, see sl_http_port */
    int threads;        /* worker threads (at least 1) */
    size_t max_body;    /* request bodies above this get 413 */
    int idle_timeout_s; /* an idle keep-alive connection is closed after this */
    int drain_ms;       /* how long sl_http_stop waits for requests in flight */
    /* Bytes of request bodies and replies all requests together may hold (0: no limit).
     * A request whose body would take the total above it gets 503 with Retry-After: 1
     * before its body is read (Content-Length) or as soon as a chunk crosses it; handlers
     * reserve what else they buffer with sl_http_req_reserve. */
    size_t max_buffered;
} sl_http_opts;

/* Binds host:port for routes (borrowed: must outlive the server), with state passed to
 * every handler, without serving yet: a caller can claim the port before setting up
 * what the handlers use. Returns 0 with *out set (free with sl_http_stop), or an error
 * naming host:port (SL_ECONFIG for a bad host, -errno such as -EADDRINUSE when the
 * port cannot be bound). opts is copied. */
int sl_http_listen(const sl_http_opts *opts, const sl_route *routes, void *state, sl_http **out,
                   sl_err *err);

/* Starts the worker threads: requests are served from here on. Returns 0 or SL_EIO. */
int sl_http_serve(sl_http *h, sl_err *err);

/* sl_http_listen then sl_http_serve; *out is NULL on error. */
int sl_http_start(const sl_http_opts *opts, const sl_route *routes, void *state, sl_http **out,
                  sl_err *err);

/* The port actually bound (useful with opts->port == 0). */
int sl_http_port(const sl_http *h);

/* Stops accepting connections, waits up to drain_ms for the requests in flight to be
 * answered (their replies say Connection: close), closes every connection and frees
 * h (also one that was bound but never served). NULL is a no-op. */
void sl_http_stop(sl_http *h);

/* ---- the request, for handlers (all borrowed, valid until the handler returns) -- */

const char *sl_http_req_method(const sl_http_req *req);
/* The path, percent-decoded, without the query string. */
const char *sl_http_req_path(const sl_http_req *req);
/* The raw query string after '?' ("" when there is none). */
const char *sl_http_req_query(const sl_http_req *req);
/* A request header by name (case-insensitive), or NULL. */
const char *sl_http_req_header(const sl_http_req *req, const char *name);
/* The request body (empty until handle runs). */
const char *sl_http_req_body(const sl_http_req *req, size_t *len);

/* Reserves n more bytes for req against opts.max_buffered (a reply it is about to copy,
 * a decompressed body); everything req reserved is given back when the request ends.
 * False, with nothing reserved, when that would take the total above the limit: the
 * caller answers 503 (sl_http_resp_busy). */
bool sl_http_req_reserve(sl_http_req *req, size_t n);

/* Gives back n bytes of what req reserved (at most what it holds). */
void sl_http_req_unreserve(sl_http_req *req, size_t n);

/* The 503 of a request refused by max_buffered: what, how much is held, the limit. */
void sl_http_resp_busy(sl_http_resp *resp, const sl_http_req *req, const char *what, size_t n);

/* ---- building the reply ---------------------------------------------------------- */

/* Adds a header (copied; truncated to the sizes above; at most SL_HTTP_MAX_HEADERS). */
void sl_http_resp_header(sl_http_resp *resp, const char *name, const char *value);

/* Sets status and a JSON body {"error":"<message>"} (the message is escaped). */
void sl_http_resp_error(sl_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- streamed replies (Server-Sent Events) --------------------------------------- */

/* Makes resp a reply whose body is written over time, chunked, until one side ends it:
 * resp->body (if any) goes first, then whatever sl_http_stream_write queues, from any
 * thread. While nothing is queued the connection is taken off libmicrohttpd's event
 * loop (it holds no worker thread). At most max_pending bytes may wait for a client
 * that does not read; past that the stream ends. The status defaults to 200.
 * Returns the stream with a reference for the caller, who must drop it with
 * sl_http_stream_release (the reply holds its own until the connection is done). A
 * stream that is never queued (HEAD, server stopping) just ends. sl_http_stop ends
 * every stream first, so they do not hold up its drain. */
sl_http_stream *sl_http_resp_stream(sl_http_resp *resp, size_t max_pending);

/* Queues data[0..len). Thread-safe, never blocks. Returns 0, SL_ECLOSED once the
 * reply is over (the client went away, the server is stopping, the stream was
 * ended), or SL_ETOOBIG when more than max_pending bytes would wait (the stream is
 * then ended). A client that went away is noticed on the first write after it left. */
int sl_http_stream_write(sl_http_stream *s, const void *data, size_t len);

/* Ends the reply once what is queued has been sent. Thread-safe. */
void sl_http_stream_end(sl_http_stream *s);

/* Drops the caller's reference; NULL is a no-op. */
void sl_http_stream_release(sl_http_stream *s);

/* ---- parsing helpers (pure functions, exported for the handlers and tests) ------- */

/* Looks name up in a raw query string ("a=1&b=x%20y"): the first parameter with that
 * name (after decoding) has its value decoded (%XX, '+' as space) into out (reset
 * first, NUL-terminated, len excludes the NUL). A parameter without '=' has the
 * empty value. Returns 1 when found, 0 when absent, SL_EPARSE for a malformed
 * %-escape or a %00 in the value (err names the parameter). */
int sl_http_query_get(const char *query, const char *name, sl_buf *out, sl_err *err);

/* Extracts the media type of a Content-Type value ("Application/JSON; charset=utf-8"
 * -> "application/json"): text before ';', surrounding whitespace trimmed, lowercased,
 * into buf. Returns 0, SL_EPARSE when it is not type/subtype made of token
 * characters, SL_ETOOBIG when it does not fit in size bytes. */
int sl_http_media_type(const char *value, char *buf, size_t size, sl_err *err);

#endif
