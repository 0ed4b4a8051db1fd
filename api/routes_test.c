/* Tests for routes.c: matching rules on a test table, and the gateway's table. */
#include "sl_test.h"

#include <string.h>

#include "api.h"
#include "routes.h"

static void h_a(void *s, sl_http_req *r, sl_http_resp *p)
{
}
static void h_b(void *s, sl_http_req *r, sl_http_resp *p)
{
}
static void h_c(void *s, sl_http_req *r, sl_http_resp *p)
{
}
static void h_d(void *s, sl_http_req *r, sl_http_resp *p)
{
}

static const sl_route table[] = {
    {"GET", "/v1/things", NULL, h_a},   {"POST", "/v1/things", NULL, h_b},
    {"POST", "/druid/v2/*", NULL, h_c}, {"GET", "/", NULL, h_d},
    {NULL, NULL, NULL, NULL},
};

static void test_route_exact(void **state)
{
    int status = 0;
    const sl_route *r = sl_route_match(table, "GET", "/v1/things", &status, NULL, 0);
    assert_non_null(r);
    assert_ptr_equal(r->handle, h_a);
    r = sl_route_match(table, "POST", "/v1/things", &status, NULL, 0);
    assert_non_null(r);
    assert_ptr_equal(r->handle, h_b);
    r = sl_route_match(table, "GET", "/", &status, NULL, 0);
    assert_ptr_equal(r->handle, h_d);
}

static void test_route_head_is_get(void **state)
{
    int status = 0;
    const sl_route *r = sl_route_match(table, "HEAD", "/v1/things", &status, NULL, 0);
    assert_non_null(r);
    assert_ptr_equal(r->handle, h_a);
}

static void test_route_prefix(void **state)
{
    int status = 0;
    const sl_route *r = sl_route_match(table, "POST", "/druid/v2/", &status, NULL, 0);
    assert_non_null(r);
    assert_ptr_equal(r->handle, h_c);
    r = sl_route_match(table, "POST", "/druid/v2/sql/statements", &status, NULL, 0);
    assert_ptr_equal(r->handle, h_c);
    /* The prefix is literal: no match without the slash before '*'. */
    assert_null(sl_route_match(table, "POST", "/druid/v2", &status, NULL, 0));
    assert_int_equal(status, 404);
}

static void test_route_not_found(void **state)
{
    int status = 0;
    char allow[64] = "unchanged";
    assert_null(sl_route_match(table, "GET", "/v1/thing", &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
    assert_string_equal(allow, "unchanged");
    status = 0;
    assert_null(sl_route_match(table, "GET", "/v1/things/", &status, NULL, 0));
    assert_int_equal(status, 404);
    status = 0;
    assert_null(sl_route_match(table, "GET", "/v1/thingsx", &status, NULL, 0));
    assert_int_equal(status, 404);
}

static void test_route_method_not_allowed(void **state)
{
    int status = 0;
    char allow[64] = "";
    assert_null(sl_route_match(table, "DELETE", "/v1/things", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD, POST, OPTIONS");
    assert_null(sl_route_match(table, "GET", "/druid/v2/x", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "POST, OPTIONS");
    /* OPTIONS is answered by the HTTP layer from this same 405 + Allow. */
    assert_null(sl_route_match(table, "OPTIONS", "/", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
}

static void test_route_allow_truncated(void **state)
{
    int status = 0;
    char allow[8];
    assert_null(sl_route_match(table, "PUT", "/v1/things", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HE");
}

/* The gateway's table: each endpoint goes to its handler, and nothing else matches. */
static void test_route_gateway_table(void **state)
{
    static const struct {
        const char *method, *path;
        sl_http_handler handle;
    } cases[] = {
        {"POST", "/v1/events", sl_api_events_post},
        {"POST", "/v1/query", sl_api_query_post},
        {"GET", "/v1/datasources", sl_api_datasources_get},
        {"HEAD", "/v1/datasources", sl_api_datasources_get},
        {"GET", "/healthz", sl_api_healthz_get},
    };
    int status = 0;
    char allow[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const sl_route *r =
            sl_route_match(sl_api_routes, cases[i].method, cases[i].path, &status, NULL, 0);
        assert_non_null(r);
        assert_ptr_equal(r->handle, cases[i].handle);
    }
    const sl_route *ev = sl_route_match(sl_api_routes, "POST", "/v1/events", &status, NULL, 0);
    assert_ptr_equal(ev->check, sl_api_events_check);

    assert_null(sl_route_match(sl_api_routes, "GET", "/v1/events", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "POST, OPTIONS");
    assert_null(sl_route_match(sl_api_routes, "POST", "/healthz", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    assert_null(sl_route_match(sl_api_routes, "GET", "/v2/events", &status, NULL, 0));
    assert_int_equal(status, 404);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_route_exact),
    cmocka_unit_test(test_route_head_is_get),
    cmocka_unit_test(test_route_prefix),
    cmocka_unit_test(test_route_not_found),
    cmocka_unit_test(test_route_method_not_allowed),
    cmocka_unit_test(test_route_allow_truncated),
    cmocka_unit_test(test_route_gateway_table),
};

SL_TEST_MAIN(tests)
