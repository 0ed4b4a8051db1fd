/* Tests for the dashboard's server side through a real HTTP server: streamed replies
 * (http.c: order, waking a sleeping connection, a client that left, the pending
 * limit, sl_http_stop ending streams instead of waiting for them), GET /v1/live
 * (sse.c: the exact event bytes) and the embedded static files (static.c). */
#include "sl_test.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "clock.h"
#include "dashboard.h"
#include "http.h"
#include "testhttp.h"

/* ---- a chunked-reply reader --------------------------------------------------------- */

typedef struct chunked {
    int fd;
    sl_buf raw;     /* bytes received after the headers */
    sl_buf data;    /* decoded so far */
    size_t parsed;  /* raw bytes decoded into data */
    bool ended;     /* the last chunk (size 0) came */
    bool malformed; /* bad chunk framing */
} chunked;

/* Decodes the complete chunks in raw past parsed. */
static void chunked_decode(chunked *c)
{
    for (;;) {
        const char *p = c->raw.data + c->parsed;
        size_t left = c->raw.len - c->parsed;
        const char *crlf = NULL;
        for (size_t i = 0; i + 1 < left; i++) {
            if (p[i] == '\r' && p[i + 1] == '\n') {
                crlf = p + i;
                break;
            }
        }
        if (crlf == NULL) {
            return;
        }
        char *end;
        unsigned long size = strtoul(p, &end, 16);
        if (end == p) {
            c->malformed = true;
            return;
        }
        size_t head = (size_t)(crlf - p) + 2;
        if (size == 0) {
            if (left >= head + 2) { /* no trailers: the final CRLF */
                c->ended = true;
                c->parsed += head + 2;
            }
            return;
        }
        if (left < head + size + 2) {
            return;
        }
        sl_buf_append(&c->data, p + head, size);
        c->parsed += head + size + 2;
    }
}

/* Reads until data contains want (or the stream ended, for want == NULL); false on a
 * timeout (testhttp's 20 s receive timeout) or a closed connection. */
static bool chunked_until(chunked *c, const char *want)
{
    char buf[4096];
    for (;;) {
        sl_buf_append(&c->data, "", 1); /* NUL for strstr, not counted */
        c->data.len--;
        if (want != NULL ? strstr(c->data.data, want) != NULL : c->ended) {
            return true;
        }
        if (c->ended || c->malformed) {
            return false;
        }
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return false;
        }
        sl_buf_append(&c->raw, buf, (size_t)n);
        chunked_decode(c);
    }
}

/* GETs path on a new connection and reads the reply's headers into r. */
static void chunked_open(chunked *c, int port, const char *path, th_reply *r)
{
    char req[512];
    memset(c, 0, sizeof(*c));
    sl_buf_init(&c->raw);
    sl_buf_init(&c->data);
    c->fd = th_connect(port);
    assert_true(c->fd >= 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_true(th_send(c->fd, req, strlen(req)));
    assert_int_equal(th_read(c->fd, r, true), 0);
}

static void chunked_close(chunked *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    sl_buf_fini(&c->raw);
    sl_buf_fini(&c->data);
}

/* ---- a server with streaming routes --------------------------------------------------- */

typedef struct server {
    sl_http *http;
    int port;
    pthread_mutex_t mu;
    sl_http_stream *stream; /* the last one a handler opened (a reference of ours) */
    int write_rc;           /* what the handler's own write returned */
} server;

/* The reply opens with its body, then a write made before the handler returns. */
static void h_stream(void *state, sl_http_req *req, sl_http_resp *resp)
{
    server *s = state;
    resp->content_type = "text/event-stream";
    sl_buf_append(&resp->body, "first\n", 6);
    sl_http_stream *st = sl_http_resp_stream(resp, 64);
    int rc = sl_http_stream_write(st, "second\n", 7);
    pthread_mutex_lock(&s->mu);
    sl_http_stream_release(s->stream);
    s->stream = st;
    s->write_rc = rc;
    pthread_mutex_unlock(&s->mu);
}

/* Writes more than the 64-byte limit before the reply is even queued. */
static void h_too_big(void *state, sl_http_req *req, sl_http_resp *resp)
{
    server *s = state;
    char big[65];
    memset(big, 'x', sizeof(big));
    sl_buf_append(&resp->body, "head\n", 5);
    sl_http_stream *st = sl_http_resp_stream(resp, 64);
    int rc = sl_http_stream_write(st, big, sizeof(big));
    pthread_mutex_lock(&s->mu);
    sl_http_stream_release(s->stream);
    s->stream = st;
    s->write_rc = rc;
    pthread_mutex_unlock(&s->mu);
}

static const sl_route stream_routes[] = {
    {"GET", "/s", NULL, h_stream},
    {"GET", "/big", NULL, h_too_big},
    {NULL, NULL, NULL, NULL},
};

static void server_start(server *s, int drain_ms)
{
    sl_err err = {0};
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    sl_http_opts o = {.host = "127.0.0.1",
                      .threads = 2,
                      .max_body = 1024,
                      .idle_timeout_s = 30,
                      .drain_ms = drain_ms};
    assert_int_equal(sl_http_start(&o, stream_routes, s, &s->http, &err), 0);
    s->port = sl_http_port(s->http);
}

/* The stream a handler opened (a new reference, or NULL). */
static sl_http_stream *server_stream(server *s, int *write_rc)
{
    pthread_mutex_lock(&s->mu);
    sl_http_stream *st = s->stream;
    s->stream = NULL;
    if (write_rc != NULL) {
        *write_rc = s->write_rc;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

static void server_stop(server *s)
{
    sl_http_stop(s->http);
    sl_http_stream_release(server_stream(s, NULL));
    pthread_mutex_destroy(&s->mu);
}

/* ---- streamed replies ------------------------------------------------------------------ */

static void test_stream_order_wake_and_end(void **st)
{
    server s;
    chunked c;
    th_reply r;
    char hdr[128];
    char line[32];
    int wrc = -1;

    server_start(&s, 2000);
    chunked_open(&c, s.port, "/s", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(th_header(&r, "Transfer-Encoding", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "chunked");
    assert_non_null(th_header(&r, "Content-Type", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "text/event-stream");
    assert_true(chunked_until(&c, "first\nsecond\n"));
    assert_string_equal(c.data.data, "first\nsecond\n"); /* the body, then the write */
    sl_http_stream *stream = server_stream(&s, &wrc);
    assert_non_null(stream);
    assert_int_equal(wrc, 0);
    /* Each write after the client read everything finds the connection asleep (or
     * about to be): it must come through either way. */
    for (int i = 0; i < 50; i++) {
        snprintf(line, sizeof(line), "line %d\n", i);
        assert_int_equal(sl_http_stream_write(stream, line, strlen(line)), 0);
        assert_true(chunked_until(&c, line));
    }
    sl_http_stream_end(stream);
    assert_true(chunked_until(&c, NULL));
    assert_false(c.malformed);
    assert_int_equal(sl_http_stream_write(stream, "late", 4), SL_ECLOSED);
    sl_http_stream_release(stream);
    th_reply_fini(&r);
    chunked_close(&c);
    server_stop(&s);
}

static void test_stream_client_gone(void **st)
{
    server s;
    chunked c;
    th_reply r;
    int rc = 0;

    server_start(&s, 2000);
    chunked_open(&c, s.port, "/s", &r);
    assert_true(chunked_until(&c, "second\n"));
    sl_http_stream *stream = server_stream(&s, NULL);
    assert_non_null(stream);
    chunked_close(&c);
    /* A sleeping connection cannot see the client leave; the next writes wake it and
     * the failed send ends the stream. */
    int64_t deadline = sl_mono_ms() + 10000;
    while ((rc = sl_http_stream_write(stream, "ping\n", 5)) == 0 && sl_mono_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, SL_ECLOSED);
    sl_http_stream_release(stream);
    th_reply_fini(&r);
    server_stop(&s);
}

static void test_stream_pending_limit(void **st)
{
    server s;
    chunked c;
    th_reply r;
    int wrc = 0;

    server_start(&s, 2000);
    chunked_open(&c, s.port, "/big", &r);
    assert_int_equal(r.status, 200);
    assert_true(chunked_until(&c, NULL)); /* ended after what was queued */
    assert_string_equal(c.data.data, "head\n");
    sl_http_stream *stream = server_stream(&s, &wrc);
    assert_int_equal(wrc, SL_ETOOBIG);
    assert_int_equal(sl_http_stream_write(stream, "x", 1), SL_ECLOSED);
    sl_http_stream_release(stream);
    th_reply_fini(&r);
    chunked_close(&c);
    server_stop(&s);
}

static void test_stream_stop_ends_streams(void **st)
{
    server s;
    chunked c;
    th_reply r;

    /* A drain of 10 s: a stream left open would hold sl_http_stop that long. */
    server_start(&s, 10000);
    chunked_open(&c, s.port, "/s", &r);
    assert_true(chunked_until(&c, "second\n"));
    sl_http_stream *stream = server_stream(&s, NULL);
    int64_t t0 = sl_mono_ms();
    sl_http_stop(s.http);
    int64_t took = sl_mono_ms() - t0;
    assert_true(took < 2000);
    assert_true(chunked_until(&c, NULL)); /* the client saw a clean end */
    assert_int_equal(sl_http_stream_write(stream, "x", 1), SL_ECLOSED);
    sl_http_stream_release(stream);
    th_reply_fini(&r);
    chunked_close(&c);
    pthread_mutex_destroy(&s.mu);
}

/* ---- GET /v1/live ------------------------------------------------------------------------ */

typedef struct live_fixture {
    sl_config cfg;
    sl_loop *loop;
    sl_api api;
    sl_http *http;
    int port;
} live_fixture;

static void live_start(live_fixture *f, bool with_live)
{
    sl_err err = {0};
    memset(f, 0, sizeof(*f));
    f->cfg.data_dir = "/nonexistent";
    f->cfg.addr[SL_ADDR_NOTIFY] = "inproc://sse-test-notify";
    assert_int_equal(sl_loop_new(&f->loop, &err), 0);
    if (with_live) {
        assert_int_equal(sl_live_new(&f->cfg, f->loop, &f->api.live, &err), 0);
    }
    f->api.cfg = &f->cfg;
    sl_http_opts o = {.host = "127.0.0.1",
                      .threads = 2,
                      .max_body = 1024,
                      .idle_timeout_s = 30,
                      .drain_ms = 2000};
    assert_int_equal(sl_http_start(&o, sl_api_routes, &f->api, &f->http, &err), 0);
    f->port = sl_http_port(f->http);
}

static void live_stop(live_fixture *f)
{
    sl_http_stop(f->http);
    sl_live_free(f->api.live);
    sl_loop_free(f->loop);
}

static void test_live_events(void **st)
{
    live_fixture f;
    chunked c;
    th_reply r;
    char hdr[128];
    char want[512];
    char lo[32];
    char hi[32];

    live_start(&f, true);
    chunked_open(&c, f.port, "/v1/live", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(th_header(&r, "Content-Type", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "text/event-stream");
    assert_non_null(th_header(&r, "Cache-Control", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "no-cache");
    snprintf(want, sizeof(want), "retry: 1000\nevent: hello\ndata: {\"heartbeat_ms\":%d}\n\n",
             SL_LIVE_HEARTBEAT_MS);
    assert_true(chunked_until(&c, want));
    assert_string_equal(c.data.data, want);
    int64_t deadline = sl_mono_ms() + 10000;
    while (sl_live_clients(f.api.live) != 1 && sl_mono_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(sl_live_clients(f.api.live), 1);

    /* A datasource name that needs escaping stays valid JSON. */
    const char *ds = "page_\"events\"";
    int64_t min = 1749643200000, max = 1749643380000;
    sl_notify n = {.ds = {ds, strlen(ds)}, .min_ms = min, .max_ms = max};
    sl_live_publish(f.api.live, &n);
    snprintf(want, sizeof(want),
             "id: 1\nevent: change\ndata: {\"datasource\":\"page_\\\"events\\\"\",\"min_ms\":%lld,"
             "\"max_ms\":%lld,\"min\":\"%s\",\"max\":\"%s\"}\n\n",
             (long long)min, (long long)max, sl_time_format(min, lo, sizeof(lo)),
             sl_time_format(max, hi, sizeof(hi)));
    assert_string_equal(lo, "2025-06-11T12:00:00.000Z");
    assert_true(chunked_until(&c, want));
    sl_live_heartbeat(f.api.live);
    assert_true(chunked_until(&c, "\n\n: ping\n\n"));

    /* A client that left is dropped on a later write. */
    chunked_close(&c);
    th_reply_fini(&r);
    deadline = sl_mono_ms() + 10000;
    while (sl_live_clients(f.api.live) > 0 && sl_mono_ms() < deadline) {
        sl_live_heartbeat(f.api.live);
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(sl_live_clients(f.api.live), 0);
    live_stop(&f);
}

static void test_live_off_is_503(void **st)
{
    live_fixture f;
    th_reply r;
    char hdr[64];

    live_start(&f, false);
    assert_int_equal(th_get(f.port, "/v1/live", &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"live updates are not available on this gateway\"}");
    th_reply_fini(&r);
    assert_int_equal(th_post(f.port, "/v1/live", "", "x", 1, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(th_header(&r, "Allow", hdr, sizeof(hdr)));
    assert_string_equal(hdr, "GET, HEAD, OPTIONS");
    th_reply_fini(&r);
    live_stop(&f);
}

/* ---- static files -------------------------------------------------------------------------- */

static void test_static_files(void **st)
{
    live_fixture f;
    th_reply r;
    char hdr[256];
    char req[512];
    int n = 0;

    live_start(&f, false);
    for (const sl_asset *a = sl_assets; a->path != NULL; a++, n++) {
        assert_int_equal(th_get(f.port, a->path, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, a->len);
        assert_memory_equal(r.body, a->data, a->len);
        assert_non_null(th_header(&r, "Content-Type", hdr, sizeof(hdr)));
        assert_string_equal(hdr, a->type);
        assert_non_null(th_header(&r, "ETag", hdr, sizeof(hdr)));
        assert_string_equal(hdr, a->etag);
        th_reply_fini(&r);

        /* Revalidation: the same ETag gets 304 and no body. */
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIf-None-Match: W/\"x\", %s\r\n"
                 "\r\n",
                 a->path, a->etag);
        assert_int_equal(th_request(f.port, req, NULL, 0, &r), 0);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body_len, 0);
        th_reply_fini(&r);
    }
    assert_true(n >= 3); /* the page, its script and its style at least */

    const sl_asset *page = sl_asset_find("/");
    assert_non_null(page);
    assert_non_null(strstr((const char *)page->data, "/ui/app.js"));
    assert_int_equal(th_get(f.port, "/", &r), 0);
    assert_non_null(th_header(&r, "Content-Security-Policy", hdr, sizeof(hdr)));
    assert_non_null(strstr(hdr, "default-src 'self'"));
    th_reply_fini(&r);
    assert_int_equal(th_get(f.port, "/index.html", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, page->len);
    th_reply_fini(&r);

    assert_int_equal(th_get(f.port, "/ui/nope.js", &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"no such file: /ui/nope.js\"}");
    th_reply_fini(&r);
    live_stop(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stream_order_wake_and_end),
    cmocka_unit_test(test_stream_client_gone),
    cmocka_unit_test(test_stream_pending_limit),
    cmocka_unit_test(test_stream_stop_ends_streams),
    cmocka_unit_test(test_live_events),
    cmocka_unit_test(test_live_off_is_503),
    cmocka_unit_test(test_static_files),
};

SL_TEST_MAIN(tests)
