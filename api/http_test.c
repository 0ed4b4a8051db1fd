/* Tests for http.c and json.c: the parsing helpers, then a real server on 127.0.0.1
 * with a test route table, driven by the raw client in testhttp.h. */
#include "sl_test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "json.h"
#include "testhttp.h"

/* ---- parsing helpers --------------------------------------------------------------- */

static void test_query_get(void **state)
{
    sl_buf v;
    sl_err err = {0};

    sl_buf_init(&v);
    assert_int_equal(sl_http_query_get("datasource=page_events", "datasource", &v, &err), 1);
    assert_string_equal(v.data, "page_events");
    assert_int_equal(v.len, 11);
    assert_int_equal(sl_http_query_get("a=1&datasource=x%20y+z&b=2", "datasource", &v, &err), 1);
    assert_string_equal(v.data, "x y z");
    /* The name is decoded too; the first occurrence wins. */
    assert_int_equal(sl_http_query_get("data%73ource=one&datasource=two", "datasource", &v, &err),
                     1);
    assert_string_equal(v.data, "one");
    /* Without '=' the value is empty; a different name is not a match. */
    assert_int_equal(sl_http_query_get("flag&x=1", "flag", &v, &err), 1);
    assert_int_equal(v.len, 0);
    assert_string_equal(v.data, "");
    assert_int_equal(sl_http_query_get("datasources=x&source=y", "datasource", &v, &err), 0);
    assert_int_equal(sl_http_query_get("", "datasource", &v, &err), 0);
    assert_int_equal(sl_http_query_get(NULL, "datasource", &v, &err), 0);
    /* Percent-escapes: UTF-8 bytes pass, upper and lower case hex. */
    assert_int_equal(sl_http_query_get("n=%C3%a9", "n", &v, &err), 1);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.data, "\xc3\xa9", 2);
    sl_buf_fini(&v);
}

static void test_query_get_errors(void **state)
{
    sl_buf v;
    sl_err err = {0};
    const char *bad[] = {"datasource=a%2", "datasource=%", "datasource=%zz", "datasource=%g1"};

    sl_buf_init(&v);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        assert_int_equal(sl_http_query_get(bad[i], "datasource", &v, &err), SL_EPARSE);
        assert_non_null(strstr(err.msg, "malformed %-escape"));
        assert_non_null(strstr(err.msg, "\"datasource\""));
    }
    assert_int_equal(sl_http_query_get("datasource=a%00b", "datasource", &v, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "%00"));
    /* A malformed other parameter does not matter. */
    assert_int_equal(sl_http_query_get("x=%zz&datasource=ok", "datasource", &v, &err), 1);
    assert_string_equal(v.data, "ok");
    sl_buf_fini(&v);
}

static void test_media_type(void **state)
{
    char buf[64];
    sl_err err = {0};

    assert_int_equal(sl_http_media_type("application/json", buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "application/json");
    assert_int_equal(
        sl_http_media_type(" Application/JSON ; charset=UTF-8", buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "application/json");
    assert_int_equal(sl_http_media_type("text/plain;charset=UTF-8", buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "text/plain");
    assert_int_equal(sl_http_media_type("application/x-ndjson", buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "application/x-ndjson");
    assert_int_equal(sl_http_media_type("application/vnd.api+json", buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "application/vnd.api+json");
}

static void test_media_type_errors(void **state)
{
    char buf[64];
    char tiny[8];
    sl_err err = {0};
    const char *bad[] = {"json",         "/json", "application/", "a/b/c",
                         "text plain/x", "",      "; a=b",        "appl\"ication/json"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sl_http_media_type(bad[i], buf, sizeof(buf), &err), SL_EPARSE);
        assert_non_null(strstr(err.msg, "malformed Content-Type"));
    }
    assert_int_equal(sl_http_media_type("application/json", tiny, sizeof(tiny), &err), SL_ETOOBIG);
}

static void json_of(const char *s, size_t n, char *out, size_t size)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_json_str(&b, s, n);
    assert_true(b.len < size);
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    sl_buf_fini(&b);
}

static void test_json_str(void **state)
{
    char out[128];

    json_of("plain", 5, out, sizeof(out));
    assert_string_equal(out, "\"plain\"");
    json_of("a\"b\\c\n\t\r", 8, out, sizeof(out));
    assert_string_equal(out, "\"a\\\"b\\\\c\\n\\t\\r\"");
    json_of("\x01x\x1f\x7f", 4, out, sizeof(out));
    assert_string_equal(out, "\"\\u0001x\\u001f\\u007f\"");
    /* Valid UTF-8 (2, 3 and 4 bytes) is kept. */
    json_of("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, out, sizeof(out));
    assert_string_equal(out, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Invalid bytes: a lone continuation, a truncated sequence, an overlong '/', a
     * UTF-16 surrogate, 0xff. */
    json_of("\x80", 1, out, sizeof(out));
    assert_string_equal(out, "\"\\ufffd\"");
    json_of("a\xe2\x82", 3, out, sizeof(out));
    assert_string_equal(out, "\"a\\ufffd\\ufffd\"");
    json_of("\xc0\xaf", 2, out, sizeof(out));
    assert_string_equal(out, "\"\\ufffd\\ufffd\"");
    json_of("\xed\xa0\x80", 3, out, sizeof(out));
    assert_string_equal(out, "\"\\ufffd\\ufffd\\ufffd\"");
    json_of("\xff", 1, out, sizeof(out));
    assert_string_equal(out, "\"\\ufffd\"");
    /* An embedded NUL is escaped, not a terminator. */
    json_of("a\0b", 3, out, sizeof(out));
    assert_string_equal(out, "\"a\\u0000b\"");
    json_of(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "\"\"");
}

/* ---- a real server ---------------------------------------------------------------- */

typedef struct fixture {
    sl_http *http;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool slow_entered;
    bool slow_release;
    int handled; /* handle calls of /checked */
} fixture;

static void h_echo(void *state, sl_http_req *req, sl_http_resp *resp)
{
    size_t n;
    const char *b = sl_http_req_body(req, &n);
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    sl_buf_append(&resp->body, b, n);
}

static void h_query(void *state, sl_http_req *req, sl_http_resp *resp)
{
    resp->status = 200;
    sl_json_raw(&resp->body, "{\"path\":");
    sl_json_strz(&resp->body, sl_http_req_path(req));
    sl_json_raw(&resp->body, ",\"query\":");
    sl_json_strz(&resp->body, sl_http_req_query(req));
    sl_json_raw(&resp->body, "}");
    sl_http_resp_header(resp, "X-Test", "yes");
}

static void c_checked(void *state, sl_http_req *req, sl_http_resp *resp)
{
    if (sl_http_req_header(req, "x-refuse") != NULL) {
        sl_http_resp_error(resp, 415, "refused by check");
    }
}

static void h_checked(void *state, sl_http_req *req, sl_http_resp *resp)
{
    fixture *f = state;
    pthread_mutex_lock(&f->mu);
    f->handled++;
    pthread_mutex_unlock(&f->mu);
    resp->status = 200;
    sl_json_raw(&resp->body, "{}");
}

static void h_slow(void *state, sl_http_req *req, sl_http_resp *resp)
{
    fixture *f = state;
    pthread_mutex_lock(&f->mu);
    f->slow_entered = true;
    pthread_cond_broadcast(&f->cv);
    while (!f->slow_release) {
        pthread_cond_wait(&f->cv, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    resp->status = 200;
    sl_json_raw(&resp->body, "{\"slow\":true}");
}

static void h_noreply(void *state, sl_http_req *req, sl_http_resp *resp)
{
}

static const sl_route routes[] = {
    {"POST", "/echo", NULL, h_echo},
    {"GET", "/q/*", NULL, h_query},
    {"POST", "/checked", c_checked, h_checked},
    {"GET", "/slow", NULL, h_slow},
    {"GET", "/noreply", NULL, h_noreply},
    {NULL, NULL, NULL, NULL},
};

enum { MAX_BODY = 100000 };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    sl_http_opts o = {.host = "127.0.0.1",
                      .port = 0,
                      .threads = 2,
                      .max_body = MAX_BODY,
                      .idle_timeout_s = 30,
                      .drain_ms = 20000};
    sl_err err = {0};

    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    int rc = sl_http_start(&o, routes, f, &f->http, &err);
    if (rc != 0) {
        fprintf(stderr, "sl_http_start: %s\n", err.msg);
        return -1;
    }
    f->port = sl_http_port(f->http);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sl_http_stop(f->http);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
    return 0;
}

static void test_server_404_json(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];

    assert_int_equal(th_get(f->port, "/nope", &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(th_header(&r, "Content-Type", h, sizeof(h)), "application/json");
    assert_string_equal(th_header(&r, "Access-Control-Allow-Origin", h, sizeof(h)), "*");
    assert_string_equal(r.body, "{\"error\":\"no such endpoint: /nope\"}");
    th_reply_fini(&r);
}

static void test_server_405_allow(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];

    assert_int_equal(th_get(f->port, "/echo", &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(th_header(&r, "Allow", h, sizeof(h)), "POST, OPTIONS");
    assert_string_equal(r.body,
                        "{\"error\":\"method GET not allowed on /echo (allowed: POST, OPTIONS)\"}");
    assert_string_equal(th_header(&r, "Access-Control-Allow-Origin", h, sizeof(h)), "*");
    th_reply_fini(&r);
}

static void test_server_options_preflight(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];

    assert_int_equal(th_request(f->port,
                                "OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n"
                                "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
                                NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 204);
    assert_null(th_header(&r, "Content-Type", h, sizeof(h)));
    assert_string_equal(th_header(&r, "Access-Control-Allow-Origin", h, sizeof(h)), "*");
    assert_string_equal(th_header(&r, "Access-Control-Allow-Methods", h, sizeof(h)),
                        "POST, OPTIONS");
    assert_non_null(
        strstr(th_header(&r, "Access-Control-Allow-Headers", h, sizeof(h)), "Content-Encoding"));
    th_reply_fini(&r);
    /* OPTIONS on an unknown path is still 404. */
    assert_int_equal(th_request(f->port,
                                "OPTIONS /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 404);
    th_reply_fini(&r);
}

static void test_server_echo_body(void **state)
{
    fixture *f = *state;
    const size_t n = MAX_BODY; /* exactly at the limit, larger than MHD's buffers */
    char *body = malloc(n);
    th_reply r;

    for (size_t i = 0; i < n; i++) {
        body[i] = (char)('a' + (i * 7) % 26);
    }
    assert_int_equal(th_post(f->port, "/echo", "", body, n, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, body, n);
    th_reply_fini(&r);
    free(body);
}

static void test_server_query_and_headers(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];

    assert_int_equal(th_get(f->port, "/q/a%20b?datasource=x%20y&z", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"path\":\"/q/a b\",\"query\":\"datasource=x%20y&z\"}");
    assert_string_equal(th_header(&r, "X-Test", h, sizeof(h)), "yes");
    th_reply_fini(&r);
    /* HEAD: same status and headers, no body. */
    assert_int_equal(th_request(f->port,
                                "HEAD /q/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL,
                                0, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(th_header(&r, "X-Test", h, sizeof(h)), "yes");
    th_reply_fini(&r);
}

static void test_server_413_content_length(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];
    char req[256];

    /* Only the headers are sent: the reply must come without the body. */
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
             MAX_BODY + 1);
    assert_int_equal(th_request(f->port, req, NULL, 0, &r), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"request body of 100001 bytes exceeds the limit of "
                                "100000 bytes\"}");
    assert_string_equal(th_header(&r, "Connection", h, sizeof(h)), "close");
    th_reply_fini(&r);
    /* A Content-Length too large for any integer is refused the same way. */
    assert_int_equal(th_request(f->port,
                                "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: 99999999999999999999999\r\n\r\n",
                                NULL, 0, &r),
                     0);
    assert_true(r.status == 413 || r.status == 400);
    th_reply_fini(&r);
}

/* Sends a chunked body of total bytes (1 KiB chunks) and, when finish, its end. */
static bool send_chunked(int fd, const char *path, size_t total, bool finish)
{
    char head[256];
    char data[1024];
    char size_line[16];

    memset(data, 'x', sizeof(data));
    snprintf(head, sizeof(head),
             "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", path);
    if (!th_send(fd, head, strlen(head))) {
        return false;
    }
    int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", sizeof(data));
    for (size_t sent = 0; sent < total; sent += sizeof(data)) {
        if (!th_send(fd, size_line, (size_t)n) || !th_send(fd, data, sizeof(data)) ||
            !th_send(fd, "\r\n", 2)) {
            return false;
        }
    }
    return !finish || th_send(fd, "0\r\n\r\n", 5);
}

/* A chunked upload (no Content-Length) that crosses the limit gets 413, not the
 * handler; the part past the limit is read and dropped. */
static void test_server_413_streamed(void **state)
{
    fixture *f = *state;
    th_reply r;
    int fd = th_connect(f->port);

    assert_true(fd >= 0);
    assert_true(send_chunked(fd, "/echo", MAX_BODY + 10 * 1024, true));
    assert_int_equal(th_read(fd, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"request body exceeds the limit of 100000 bytes\"}");
    th_reply_fini(&r);
    close(fd);

    /* Under the limit, chunked works. */
    fd = th_connect(f->port);
    assert_true(send_chunked(fd, "/echo", 4096, true));
    assert_int_equal(th_read(fd, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 4096);
    th_reply_fini(&r);
    close(fd);
}

/* Past twice the limit the server stops reading and drops the connection. */
static void test_server_413_streamed_drop(void **state)
{
    fixture *f = *state;
    th_reply r;
    int fd = th_connect(f->port);

    assert_true(fd >= 0);
    send_chunked(fd, "/echo", 4 * MAX_BODY, false); /* fails part way: that is the point */
    assert_int_equal(th_read(fd, &r, false), -1);
    th_reply_fini(&r);
    close(fd);
}

static void test_server_keep_alive(void **state)
{
    fixture *f = *state;
    th_reply r;
    int fd = th_connect(f->port);
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";

    assert_true(fd >= 0);
    for (int i = 0; i < 3; i++) {
        assert_true(th_send(fd, req, strlen(req)));
        assert_int_equal(th_read(fd, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        th_reply_fini(&r);
    }
    /* An error reply on the same connection (body read in full) keeps it open too. */
    const char *bad = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(th_send(fd, bad, strlen(bad)));
    assert_int_equal(th_read(fd, &r, false), 0);
    assert_int_equal(r.status, 404);
    th_reply_fini(&r);
    assert_true(th_send(fd, req, strlen(req)));
    assert_int_equal(th_read(fd, &r, false), 0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    close(fd);
}

static void test_server_check_hook(void **state)
{
    fixture *f = *state;
    th_reply r;

    assert_int_equal(th_post(f->port, "/checked", "X-Refuse: 1\r\n", "{}", 2, &r), 0);
    assert_int_equal(r.status, 415);
    assert_string_equal(r.body, "{\"error\":\"refused by check\"}");
    th_reply_fini(&r);
    assert_int_equal(f->handled, 0);
    assert_int_equal(th_post(f->port, "/checked", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->handled, 1);
    pthread_mutex_unlock(&f->mu);
}

static void test_server_no_reply_is_500(void **state)
{
    fixture *f = *state;
    th_reply r;

    assert_int_equal(th_get(f->port, "/noreply", &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "set no reply"));
    th_reply_fini(&r);
}

static void test_server_port_busy(void **state)
{
    fixture *f = *state;
    sl_http *second = NULL;
    sl_http_opts o = {.host = "127.0.0.1", .port = f->port, .threads = 1, .max_body = 10};
    sl_err err = {0};
    char want[64];

    assert_int_equal(sl_http_start(&o, routes, f, &second, &err), -EADDRINUSE);
    assert_null(second);
    snprintf(want, sizeof(want), "127.0.0.1:%d", f->port);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "in use"));
}

/* Bound but not served: the port is taken (a second bind fails) and stop frees it. */
static void test_server_listen_only(void **state)
{
    sl_http *a = NULL, *b = NULL;
    sl_http_opts o = {.host = "localhost", .port = 0, .threads = 1, .max_body = 10};
    sl_err err = {0};

    assert_int_equal(sl_http_listen(&o, routes, NULL, &a, &err), 0);
    o.port = sl_http_port(a);
    assert_true(o.port > 0);
    o.host = "127.0.0.1";
    assert_int_equal(sl_http_listen(&o, routes, NULL, &b, &err), -EADDRINUSE);
    sl_http_stop(a);
    assert_int_equal(sl_http_listen(&o, routes, NULL, &b, &err), 0);
    sl_http_stop(b);
}

static void test_server_bad_host(void **state)
{
    sl_http *h = NULL;
    sl_http_opts o = {.host = "no such host.invalid", .port = 0, .threads = 1, .max_body = 10};
    sl_err err = {0};

    assert_int_equal(sl_http_start(&o, routes, NULL, &h, &err), SL_ECONFIG);
    assert_null(h);
    assert_non_null(strstr(err.msg, "no such host.invalid:0"));
}

typedef struct client_arg {
    int port;
    th_reply r;
    int rc;
} client_arg;

static void *client_slow(void *p)
{
    client_arg *c = p;
    c->rc = th_get(c->port, "/slow", &c->r);
    return NULL;
}

static void *stopper(void *p)
{
    fixture *f = p;
    sl_http_stop(f->http);
    f->http = NULL;
    return NULL;
}

/* Stop lets a request in flight finish: its reply arrives (with Connection: close)
 * although the server stopped accepting connections before the handler returned. */
static void test_server_stop_drains(void **state)
{
    fixture *f = *state;
    client_arg c = {.port = f->port};
    pthread_t tc, ts;
    struct timespec deadline;

    assert_int_equal(pthread_create(&tc, NULL, client_slow, &c), 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&f->mu);
    while (!f->slow_entered) {
        assert_int_not_equal(pthread_cond_timedwait(&f->cv, &f->mu, &deadline), ETIMEDOUT);
    }
    pthread_mutex_unlock(&f->mu);

    assert_int_equal(pthread_create(&ts, NULL, stopper, f), 0);
    /* Wait (polling with a deadline) until the listen socket is gone: stop has begun. */
    int refused = 0;
    for (int i = 0; i < 2000 && !refused; i++) {
        int fd = th_connect(f->port);
        if (fd < 0) {
            refused = 1;
        } else {
            close(fd);
            poll(NULL, 0, 10);
        }
    }
    assert_true(refused);

    pthread_mutex_lock(&f->mu);
    f->slow_release = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(tc, NULL);
    pthread_join(ts, NULL);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.r.status, 200);
    assert_string_equal(c.r.body, "{\"slow\":true}");
    th_reply_fini(&c.r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_query_get),
    cmocka_unit_test(test_query_get_errors),
    cmocka_unit_test(test_media_type),
    cmocka_unit_test(test_media_type_errors),
    cmocka_unit_test(test_json_str),
    cmocka_unit_test_setup_teardown(test_server_404_json, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_405_allow, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_options_preflight, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_echo_body, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_query_and_headers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_413_content_length, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_413_streamed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_413_streamed_drop, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_keep_alive, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_check_hook, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_no_reply_is_500, setup, teardown),
    cmocka_unit_test_setup_teardown(test_server_port_busy, setup, teardown),
    cmocka_unit_test(test_server_listen_only),
    cmocka_unit_test(test_server_bad_host),
    cmocka_unit_test_setup_teardown(test_server_stop_drains, setup, teardown),
};

SL_TEST_MAIN(tests)
