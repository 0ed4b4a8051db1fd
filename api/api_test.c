/* Tests for the gateway endpoints (events.c, query.c, sql.c, druid.c, health.c, body.c)
 * through a real HTTP server, with fake ingest / query / control peers on NNG sockets
 * that record each request and answer with a reply set by the test. */
#include "sl_test.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "http.h"
#include "msg.h"
#include "sock.h"
#include "testgzip.h"
#include "testhttp.h"

/* ---- a fake REP peer ---------------------------------------------------------------- */

typedef struct fake {
    sl_sock *sock;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int nreq;
    sl_buf last;  /* the last request's bytes */
    sl_buf reply; /* what to answer */
    bool silent;  /* never answer (timeouts) */
} fake;

static void *fake_run(void *p)
{
    fake *f = p;
    while (!atomic_load(&f->stop)) {
        sl_msg *m = NULL;
        if (sl_sock_recv(f->sock, &m, false, NULL) != 0) {
            continue; /* receive timeout: check stop */
        }
        pthread_mutex_lock(&f->mu);
        f->nreq++;
        sl_buf_reset(&f->last);
        sl_buf_append(&f->last, sl_msg_data(m), sl_msg_len(m));
        sl_buf out;
        sl_buf_init(&out);
        if (f->reply.len > 0) {
            sl_buf_append(&out, f->reply.data, f->reply.len);
        }
        bool silent = f->silent;
        pthread_mutex_unlock(&f->mu);
        if (!silent) {
            sl_sock_send(f->sock, out.data, out.len, false, NULL);
        }
        sl_buf_fini(&out);
        sl_msg_free(m);
    }
    return NULL;
}

/* Starts a fake REP peer that dials (dial) or listens on url. */
static fake *fake_start(const char *url, bool dial)
{
    fake *f = calloc(1, sizeof(*f));
    sl_err err = {0};
    pthread_mutex_init(&f->mu, NULL);
    sl_buf_init(&f->last);
    sl_buf_init(&f->reply);
    atomic_init(&f->stop, false);
    assert_int_equal(sl_sock_open(&f->sock, SL_SOCK_REP, &err), 0);
    sl_sock_set_timeouts(f->sock, 1000, 50);
    if (dial) {
        assert_int_equal(sl_sock_dial(f->sock, url, &err), 0);
    } else {
        assert_int_equal(sl_sock_listen(f->sock, url, &err), 0);
    }
    assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
    return f;
}

static void fake_stop(fake *f)
{
    if (f == NULL) {
        return;
    }
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    sl_sock_close(f->sock);
    sl_buf_fini(&f->last);
    sl_buf_fini(&f->reply);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int fake_count(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nreq;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void fake_ingest_reply(fake *f, int status, int64_t acc, int64_t rej, int nerr,
                              sl_line_error *errs, const char *error)
{
    sl_ingest_rep rep = {.status = status,
                         .accepted = acc,
                         .rejected = rej,
                         .nerrors = nerr,
                         .errors = errs,
                         .error = {error, error != NULL ? strlen(error) : 0}};
    pthread_mutex_lock(&f->mu);
    sl_buf_reset(&f->reply);
    sl_ingest_rep_encode(&f->reply, &rep);
    pthread_mutex_unlock(&f->mu);
}

static void fake_query_reply(fake *f, int status, const char *body)
{
    sl_query_rep rep = {.http_status = status, .body = {body, strlen(body)}};
    pthread_mutex_lock(&f->mu);
    sl_buf_reset(&f->reply);
    sl_query_rep_encode(&f->reply, &rep);
    pthread_mutex_unlock(&f->mu);
}

/* Polls (with a deadline) until s has a connected peer. */
static void wait_peer(sl_sock *s)
{
    int64_t deadline = sl_mono_ms() + 10000;
    while (sl_sock_peers(s) == 0) {
        assert_true(sl_mono_ms() < deadline);
        poll(NULL, 0, 5);
    }
}

/* ---- fixture: config, sockets, server ----------------------------------------------- */

typedef struct fixture {
    char dir[64];
    sl_config cfg;
    sl_spec spec;
    sl_api api;
    sl_http *http;
    int port;
    char ingest_url[128], query_url[128];
    fake *ingest, *query;
} fixture;

enum { MAX_BODY = 4096 };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    sl_err err = {0};

    snprintf(f->dir, sizeof(f->dir), "/tmp/sl_api_test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->spec.name = "page_events";
    f->cfg.data_dir = f->dir;
    f->cfg.http_host = "127.0.0.1";
    f->cfg.processes[SL_ACTOR_GATEWAY] = 1;
    f->cfg.processes[SL_ACTOR_INGEST] = 1;
    f->cfg.addr[SL_ADDR_CONTROL] = "ipc://{data}/ctl.{actor}.{i}.ipc";
    f->cfg.max_body_bytes = MAX_BODY;
    f->cfg.request_timeout_ms = 5000;
    f->cfg.ndatasources = 1;
    f->cfg.datasources[0] = &f->spec;
    snprintf(f->ingest_url, sizeof(f->ingest_url), "ipc://%s/ingest.ipc", f->dir);
    snprintf(f->query_url, sizeof(f->query_url), "ipc://%s/query.ipc", f->dir);

    f->api.cfg = &f->cfg;
    f->api.timeout_ms = (int)f->cfg.request_timeout_ms;
    assert_int_equal(sl_sock_open(&f->api.ingest, SL_SOCK_REQ, &err), 0);
    assert_int_equal(sl_sock_listen(f->api.ingest, f->ingest_url, &err), 0);
    assert_int_equal(sl_sock_open(&f->api.query, SL_SOCK_REQ, &err), 0);
    assert_int_equal(sl_sock_listen(f->api.query, f->query_url, &err), 0);
    assert_int_equal(sl_health_new(&f->cfg, 300, &f->api.health, &err), 0);
    sl_http_opts o = {.host = "127.0.0.1",
                      .port = 0,
                      .threads = 2,
                      .max_body = MAX_BODY,
                      .idle_timeout_s = 30,
                      .drain_ms = 10000};
    assert_int_equal(sl_http_start(&o, sl_api_routes, &f->api, &f->http, &err), 0);
    f->port = sl_http_port(f->http);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    sl_http_stop(f->http);
    fake_stop(f->ingest);
    fake_stop(f->query);
    sl_health_free(f->api.health);
    sl_sock_close(f->api.ingest);
    sl_sock_close(f->api.query);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void with_ingest(fixture *f)
{
    f->ingest = fake_start(f->ingest_url, true);
    wait_peer(f->api.ingest);
}

static void with_query(fixture *f)
{
    f->query = fake_start(f->query_url, true);
    wait_peer(f->api.query);
}

/* The last INGEST_REQ the fake received: checks its datasource and body. */
static void assert_ingested(fake *f, const char *ds, const void *body, size_t len)
{
    sl_ingest_req req;
    sl_err err = {0};
    pthread_mutex_lock(&f->mu);
    assert_int_equal(sl_ingest_req_decode(f->last.data, f->last.len, &req, &err), 0);
    assert_true(sl_str_eq(req.ds, ds));
    assert_int_equal(req.body.len, len);
    assert_memory_equal(req.body.p, body, len);
    pthread_mutex_unlock(&f->mu);
}

/* ---- /v1/events ----------------------------------------------------------------------- */

static const char ndjson[] = "{\"timestamp\":1,\"page\":\"/a\"}\n{\"timestamp\":2}\n{oops\n";

static void test_events_accepted(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[64];
    sl_line_error errs[] = {{3, {"bad \"json\"\n", 11}}};

    with_ingest(f);
    fake_ingest_reply(f->ingest, 0, 2, 1, 1, errs, NULL);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Type: application/x-ndjson\r\n", ndjson, strlen(ndjson), &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"accepted\":2,\"rejected\":1,\"errors\":[{\"line\":3,\"reason\":"
                                "\"bad \\\"json\\\"\\n\"}]}");
    assert_string_equal(th_header(&r, "Content-Type", h, sizeof(h)), "application/json");
    assert_string_equal(th_header(&r, "Access-Control-Allow-Origin", h, sizeof(h)), "*");
    th_reply_fini(&r);
    assert_int_equal(fake_count(f->ingest), 1);
    assert_ingested(f->ingest, "page_events", ndjson, strlen(ndjson));

    /* Beacons: text/plain, and no content type at all, are accepted too. */
    fake_ingest_reply(f->ingest, 0, 1, 0, 0, NULL, NULL);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Type: text/plain;charset=UTF-8\r\n", "{}", 2, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"accepted\":1,\"rejected\":0,\"errors\":[]}");
    th_reply_fini(&r);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events", "", "[{}]", 4, &r), 0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    assert_int_equal(fake_count(f->ingest), 3);
    assert_ingested(f->ingest, "page_events", "[{}]", 4);
}

static void test_events_gzip(void **state)
{
    fixture *f = *state;
    th_reply r;
    unsigned char *z;
    size_t zlen = gz(ndjson, strlen(ndjson), &z);

    with_ingest(f);
    fake_ingest_reply(f->ingest, 0, 3, 0, 0, NULL, NULL);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", z,
                             zlen, &r),
                     0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    /* Ingest sees the inflated body. */
    assert_ingested(f->ingest, "page_events", ndjson, strlen(ndjson));
    free(z);
}

static void test_events_gzip_errors(void **state)
{
    fixture *f = *state;
    th_reply r;
    char *big = calloc(1, MAX_BODY + 1);
    unsigned char *z;
    size_t zlen;

    with_ingest(f);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Encoding: gzip\r\n", ndjson, strlen(ndjson), &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "{\"error\":\"invalid gzip body"));
    th_reply_fini(&r);
    /* One byte over the limit once inflated: 413, although the upload is small. */
    memset(big, ' ', MAX_BODY + 1);
    zlen = gz(big, MAX_BODY + 1, &z);
    assert_true(zlen < 200);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Encoding: gzip\r\n", z, zlen, &r),
                     0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body,
                        "{\"error\":\"gzip body inflates to more than the limit of 4096 bytes\"}");
    th_reply_fini(&r);
    free(z);
    /* Exactly at the limit is fine. */
    fake_ingest_reply(f->ingest, 0, 0, 0, 0, NULL, NULL);
    zlen = gz(big, MAX_BODY, &z);
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events",
                             "Content-Encoding: gzip\r\n", z, zlen, &r),
                     0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    free(z);
    assert_int_equal(fake_count(f->ingest), 1);
    free(big);
}

static void test_events_refused_before_ingest(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *path, *headers;
        const char *body;
        int status;
        const char *reply;
    } cases[] = {
        {"/v1/events?datasource=nope", "", "{}", 404,
         "{\"error\":\"unknown datasource \\\"nope\\\"\"}"},
        {"/v1/events", "", "{}", 400,
         "{\"error\":\"missing datasource parameter: POST /v1/events?datasource=NAME\"}"},
        {"/v1/events?datasource=", "", "{}", 400,
         "{\"error\":\"missing datasource parameter: POST /v1/events?datasource=NAME\"}"},
        {"/v1/events?datasource=page%zz", "", "{}", 400,
         "{\"error\":\"malformed %-escape in query parameter \\\"datasource\\\"\"}"},
        {"/v1/events?datasource=page_events", "Content-Type: application/xml\r\n", "{}", 415,
         "{\"error\":\"unsupported Content-Type \\\"application/xml\\\": send application/json, "
         "application/x-ndjson or text/plain\"}"},
        {"/v1/events?datasource=page_events", "Content-Type: application/x-www-form-urlencoded\r\n",
         "{}", 415,
         "{\"error\":\"unsupported Content-Type \\\"application/x-www-form-urlencoded\\\": send "
         "application/json, application/x-ndjson or text/plain (curl -d sends form data: add -H "
         "'Content-Type: application/json')\"}"},
        {"/v1/events?datasource=page_events", "Content-Type: json\r\n", "{}", 415,
         "{\"error\":\"malformed Content-Type \\\"json\\\": expected type/subtype\"}"},
        {"/v1/events?datasource=page_events", "Content-Encoding: br\r\n", "{}", 415,
         "{\"error\":\"unsupported Content-Encoding \\\"br\\\": send gzip or no "
         "Content-Encoding\"}"},
        {"/v1/events?datasource=page_events", "", "", 400, "{\"error\":\"empty body\"}"},
    };
    th_reply r;

    with_ingest(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(th_post(f->port, cases[i].path, cases[i].headers, cases[i].body,
                                 strlen(cases[i].body), &r),
                         0);
        if (r.status != cases[i].status || strcmp(r.body, cases[i].reply) != 0) {
            fail_msg("case %zu: got %d %s", i, r.status, r.body);
        }
        th_reply_fini(&r);
    }
    assert_int_equal(fake_count(f->ingest), 0);
}

static void test_events_413(void **state)
{
    fixture *f = *state;
    th_reply r;
    char *big = malloc(MAX_BODY + 1);

    memset(big, ' ', MAX_BODY + 1);
    assert_int_equal(
        th_post(f->port, "/v1/events?datasource=page_events", "", big, MAX_BODY + 1, &r), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"request body of 4097 bytes exceeds the limit of "
                                "4096 bytes\"}");
    th_reply_fini(&r);
    free(big);
}

static void test_events_ingest_statuses(void **state)
{
    fixture *f = *state;
    static const struct {
        int code;
        const char *error;
        int status;
        const char *reply;
        const char *retry_after;
    } cases[] = {
        {SL_EPARSE, "line 1: expected an object", 400, "{\"error\":\"line 1: expected an object\"}",
         NULL},
        {SL_ENOTFOUND, "whatever", 404, "{\"error\":\"unknown datasource \\\"page_events\\\"\"}",
         NULL},
        {SL_EBUSY, "queue full", 429, "{\"error\":\"ingest is busy, retry later: queue full\"}",
         "1"},
        {SL_EUNAVAIL, "partitioner down", 503,
         "{\"error\":\"ingest unavailable: partitioner down\"}", "1"},
        {SL_ETOOBIG, "too many events", 413, "{\"error\":\"too many events\"}", NULL},
        {SL_EIO, "disk", 500, "{\"error\":\"ingest failed (SL_EIO): disk\"}", NULL},
    };
    th_reply r;
    char h[64];

    with_ingest(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_ingest_reply(f->ingest, cases[i].code, 0, 0, 0, NULL, cases[i].error);
        assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events", "", "{}", 2, &r), 0);
        if (r.status != cases[i].status || strcmp(r.body, cases[i].reply) != 0) {
            fail_msg("case %zu: got %d %s", i, r.status, r.body);
        }
        const char *ra = th_header(&r, "Retry-After", h, sizeof(h));
        if (cases[i].retry_after == NULL) {
            assert_null(ra);
        } else {
            assert_string_equal(ra, cases[i].retry_after);
        }
        th_reply_fini(&r);
    }
}

static void test_events_no_ingest(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[64];

    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body,
                        "{\"error\":\"ingest unavailable: no ingest process is connected\"}");
    assert_string_equal(th_header(&r, "Retry-After", h, sizeof(h)), "1");
    th_reply_fini(&r);
}

static void test_events_ingest_timeout(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[64];

    with_ingest(f);
    f->ingest->silent = true;
    f->api.timeout_ms = 200;
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"ingest unavailable: no reply within 200 ms\"}");
    assert_string_equal(th_header(&r, "Retry-After", h, sizeof(h)), "1");
    th_reply_fini(&r);
}

static void test_events_bad_reply(void **state)
{
    fixture *f = *state;
    th_reply r;

    with_ingest(f);
    fake_query_reply(f->ingest, 200, "not an ingest reply");
    assert_int_equal(th_post(f->port, "/v1/events?datasource=page_events", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "{\"error\":\"bad reply from ingest: "));
    th_reply_fini(&r);
}

/* ---- /v1/query and /v1/datasources ------------------------------------------------ */

static void assert_queried(fake *f, int kind, const char *body)
{
    sl_query_req req;
    sl_err err = {0};
    pthread_mutex_lock(&f->mu);
    assert_int_equal(sl_query_req_decode(f->last.data, f->last.len, &req, &err), 0);
    assert_int_equal(req.kind, kind);
    assert_int_equal(req.body.len, strlen(body));
    assert_memory_equal(req.body.p != NULL ? req.body.p : "", body, strlen(body));
    pthread_mutex_unlock(&f->mu);
}

static void test_query_verbatim(void **state)
{
    fixture *f = *state;
    th_reply r;
    const char *q = "{\"queryType\":\"timeseries\",\"dataSource\":\"page_events\"}";

    with_query(f);
    fake_query_reply(f->query, 200, "[{\"timestamp\":\"2025-06-11T12:00:00.000Z\"}]");
    assert_int_equal(
        th_post(f->port, "/v1/query", "Content-Type: application/json\r\n", q, strlen(q), &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[{\"timestamp\":\"2025-06-11T12:00:00.000Z\"}]");
    th_reply_fini(&r);
    assert_queried(f->query, SL_QUERY_NATIVE, q);

    /* The query actor's own error status and body pass through unchanged. */
    fake_query_reply(f->query, 400, "{\"error\":\"Unknown exception\",\"errorMessage\":\"x\"}");
    assert_int_equal(th_post(f->port, "/v1/query", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"error\":\"Unknown exception\",\"errorMessage\":\"x\"}");
    th_reply_fini(&r);

    /* gzip bodies are inflated for queries too. */
    unsigned char *z;
    size_t zlen = gz(q, strlen(q), &z);
    fake_query_reply(f->query, 200, "[]");
    assert_int_equal(th_post(f->port, "/v1/query", "Content-Encoding: gzip\r\n", z, zlen, &r), 0);
    assert_int_equal(r.status, 200);
    th_reply_fini(&r);
    assert_queried(f->query, SL_QUERY_NATIVE, q);
    free(z);
    assert_int_equal(fake_count(f->query), 3);
}

static void test_datasources(void **state)
{
    fixture *f = *state;
    th_reply r;

    with_query(f);
    fake_query_reply(f->query, 200, "[\"page_events\"]");
    assert_int_equal(th_get(f->port, "/v1/datasources", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[\"page_events\"]");
    th_reply_fini(&r);
    assert_queried(f->query, SL_QUERY_DATASOURCES, "");
}

static void test_query_unavailable_and_timeout(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[64];

    assert_int_equal(th_post(f->port, "/v1/query", "", "{}", 2, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"Query unavailable\",\"errorMessage\":\"no query "
                                "process is connected\",\"errorClass\":\"sluice.QueryUnavailable\","
                                "\"host\":null}");
    assert_string_equal(th_header(&r, "Retry-After", h, sizeof(h)), "1");
    th_reply_fini(&r);

    with_query(f);
    f->query->silent = true;
    f->api.timeout_ms = 200;
    assert_int_equal(th_get(f->port, "/v1/datasources", &r), 0);
    assert_int_equal(r.status, 504);
    assert_string_equal(r.body,
                        "{\"error\":\"Query timeout\",\"errorMessage\":\"Query did not finish "
                        "within 200 ms\",\"errorClass\":\"org.apache.druid.query."
                        "QueryTimeoutException\",\"host\":null}");
    th_reply_fini(&r);

    assert_int_equal(th_post(f->port, "/v1/query", "", "", 0, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"error\":\"empty body\"}");
    th_reply_fini(&r);
}

/* The forwarding that /v1/query and /v1/sql share: a malformed reply or an impossible
 * status is a 502 in Druid's shape on both; SQL adds the result format's content type
 * to a 200 and Retry-After to a 429. */
static void test_query_bad_reply_and_sql(void **state)
{
    fixture *f = *state;
    th_reply r;
    char h[128];
    const char *sql = "{\"query\":\"SELECT 1\",\"resultFormat\":\"csv\"}";
    const char *json = "Content-Type: application/json\r\n";

    with_query(f);
    pthread_mutex_lock(&f->query->mu);
    sl_buf_reset(&f->query->reply);
    sl_buf_append(&f->query->reply, "\xc1", 1); /* never valid msgpack */
    pthread_mutex_unlock(&f->query->mu);
    assert_int_equal(th_post(f->port, "/v1/query", json, "{}", 2, &r), 0);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "{\"error\":\"Unknown exception\",\"errorMessage\":\"bad reply "
                                   "from query: "));
    assert_non_null(strstr(r.body, "\"errorClass\":\"sluice.BadReply\",\"host\":null}"));
    th_reply_fini(&r);
    assert_int_equal(th_post(f->port, "/v1/sql", json, sql, strlen(sql), &r), 0);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "\"errorMessage\":\"bad reply from query: "));
    assert_non_null(th_header(&r, "X-Druid-SQL-Query-Id", h, sizeof(h)));
    th_reply_fini(&r);
    assert_queried(f->query, SL_QUERY_SQL, sql);

    fake_query_reply(f->query, 700, "[]");
    assert_int_equal(th_post(f->port, "/v1/query", json, "{}", 2, &r), 0);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "\"errorMessage\":\"bad reply from query: "));
    assert_non_null(strstr(r.body, "status"));
    th_reply_fini(&r);

    fake_query_reply(f->query, 200, "a\n1\n");
    assert_int_equal(th_post(f->port, "/v1/sql", json, sql, strlen(sql), &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a\n1\n");
    assert_string_equal(th_header(&r, "Content-Type", h, sizeof(h)), "text/csv");
    th_reply_fini(&r);

    fake_query_reply(f->query, 429, "{\"error\":\"busy\"}");
    assert_int_equal(th_post(f->port, "/v1/sql", json, sql, strlen(sql), &r), 0);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.body, "{\"error\":\"busy\"}");
    assert_string_equal(th_header(&r, "Retry-After", h, sizeof(h)), "1");
    assert_string_equal(th_header(&r, "Content-Type", h, sizeof(h)), "application/json");
    th_reply_fini(&r);
    assert_int_equal(fake_count(f->query), 5);
}

/* ---- /healthz -------------------------------------------------------------------------- */

/* A fake control socket answering PING with a PONG for actor.instance. */
static fake *fake_control(fixture *f, const char *actor, int instance, int pid, int64_t started)
{
    char url[256];
    sl_pong pong = {
        .actor = {actor, strlen(actor)}, .instance = instance, .pid = pid, .started_ms = started};
    sl_config_addr(&f->cfg, SL_ADDR_CONTROL, actor, instance, url, sizeof(url));
    fake *c = fake_start(url, false);
    pthread_mutex_lock(&c->mu);
    sl_pong_encode(&c->reply, &pong);
    pthread_mutex_unlock(&c->mu);
    return c;
}

static void test_healthz(void **state)
{
    fixture *f = *state;
    th_reply r;
    int64_t now = sl_now_ms();
    fake *gw = fake_control(f, "gateway", 0, 4242, now - 5500);

    /* ingest.0 is not running: 503, listing it as down. Poll until the gateway's own
     * control socket is connected (dials are asynchronous). */
    int64_t deadline = sl_mono_ms() + 10000;
    for (;;) {
        assert_int_equal(th_get(f->port, "/healthz", &r), 0);
        if (strstr(r.body, "\"up\":true") != NULL || sl_mono_ms() > deadline) {
            break;
        }
        th_reply_fini(&r);
        poll(NULL, 0, 20);
    }
    assert_int_equal(r.status, 503);
    /* uptime_s counts from started_ms (5.5 s before the test began), in whole seconds. */
    const char *up = strstr(r.body, "\"uptime_s\":");
    assert_non_null(up);
    long uptime = strtol(up + 11, NULL, 10);
    assert_true(uptime >= 5 && uptime <= 5 + (sl_now_ms() - now) / 1000 + 1);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"status\":\"degraded\",\"actors\":["
             "{\"actor\":\"gateway\",\"instance\":0,\"up\":true,\"pid\":4242,"
             "\"uptime_s\":%ld},"
             "{\"actor\":\"ingest\",\"instance\":0,\"up\":false,"
             "\"error\":\"not connected\"}]}",
             uptime);
    assert_string_equal(r.body, want);
    th_reply_fini(&r);

    /* ingest.0 comes up: 200 once it is connected. */
    fake *in = fake_control(f, "ingest", 0, 77, now);
    deadline = sl_mono_ms() + 10000;
    for (;;) {
        assert_int_equal(th_get(f->port, "/healthz", &r), 0);
        if (r.status == 200 || sl_mono_ms() > deadline) {
            break;
        }
        th_reply_fini(&r);
        poll(NULL, 0, 20);
    }
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "{\"status\":\"ok\",\"actors\":["));
    assert_non_null(strstr(r.body, "{\"actor\":\"ingest\",\"instance\":0,\"up\":true,\"pid\":77,"));
    th_reply_fini(&r);

    /* An instance that is connected but does not answer is down after the timeout. */
    pthread_mutex_lock(&in->mu);
    in->silent = true;
    pthread_mutex_unlock(&in->mu);
    assert_int_equal(th_get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "{\"actor\":\"ingest\",\"instance\":0,\"up\":false,"
                                   "\"error\":\"no reply within 300 ms\"}"));
    th_reply_fini(&r);

    /* An answer from the wrong actor is not taken for the right one. */
    pthread_mutex_lock(&in->mu);
    in->silent = false;
    sl_pong wrong = {.actor = {"query", 5}, .instance = 0, .pid = 1, .started_ms = now};
    sl_buf_reset(&in->reply);
    sl_pong_encode(&in->reply, &wrong);
    pthread_mutex_unlock(&in->mu);
    assert_int_equal(th_get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"error\":\"answered as query.0\""));
    th_reply_fini(&r);
    fake_stop(in);
    fake_stop(gw);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_events_accepted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_gzip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_gzip_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_refused_before_ingest, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_413, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_ingest_statuses, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_no_ingest, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_ingest_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_bad_reply, setup, teardown),
    cmocka_unit_test_setup_teardown(test_query_verbatim, setup, teardown),
    cmocka_unit_test_setup_teardown(test_datasources, setup, teardown),
    cmocka_unit_test_setup_teardown(test_query_unavailable_and_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_query_bad_reply_and_sql, setup, teardown),
    cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
};

SL_TEST_MAIN(tests)
