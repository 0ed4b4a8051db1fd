/* Unit tests for storage/blobs.c: puts, deletes and gets in batches, prefix scans in
 * both directions (keys sharing a prefix with other prefixes), and values surviving a
 * close and reopen. */
#include "sl_test.h"

#include <stdio.h>
#include <string.h>

#include "blobs.h"
#include "testdir.h"

static int setup(void **state)
{
    return testdir_reset("blobs");
}

static int teardown(void **state)
{
    return testdir_remove();
}

typedef struct seen {
    char keys[16][32];
    char vals[16][32];
    int n;
    int stop_after;
} seen;

static int collect(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
    seen *s = arg;
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)klen, key);
    snprintf(s->vals[s->n], sizeof(s->vals[0]), "%.*s", (int)vlen, (const char *)val);
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after ? 7 : 0;
}

static void test_put_get_delete_scan(void **state)
{
    sl_blobs *b;
    sl_err err = {0};
    assert_int_equal(sl_blobs_open(&b, dir, 16, &err), 0);
    sl_blobs_op ops[] = {
        {"hist/0002", "two", 3}, {"hist/0001", "one", 3}, {"hist/0003", "three", 5},
        {"histx", "other", 5},   {"his", "short", 5},     {"rule/a", "{\"s\":1}", 7},
    };
    assert_int_equal(sl_blobs_write(b, ops, 6, &err), 0);
    char *v;
    size_t len;
    assert_int_equal(sl_blobs_get(b, "rule/a", &v, &len, &err), 0);
    assert_int_equal(len, 7);
    assert_string_equal(v, "{\"s\":1}");
    free(v);
    assert_int_equal(sl_blobs_get(b, "rule/b", &v, &len, &err), SL_ENOTFOUND);

    seen s = {0};
    assert_int_equal(sl_blobs_scan(b, "hist/", false, collect, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "hist/0001");
    assert_string_equal(s.vals[2], "three");
    memset(&s, 0, sizeof(s));
    assert_int_equal(sl_blobs_scan(b, "hist/", true, collect, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "hist/0003");
    assert_string_equal(s.keys[2], "hist/0001");
    /* A callback's non-zero value stops the scan and is returned. */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    assert_int_equal(sl_blobs_scan(b, "hist/", true, collect, &s, &err), 7);
    assert_int_equal(s.n, 2);
    /* Reverse scan of the last prefix in the table (no key after it). */
    memset(&s, 0, sizeof(s));
    assert_int_equal(sl_blobs_scan(b, "rule/", true, collect, &s, &err), 0);
    assert_int_equal(s.n, 1);
    /* Deletes (a missing key too) and a put in one batch. */
    sl_blobs_op del[] = {{"hist/0002", NULL, 0}, {"nope", NULL, 0}, {"hist/0004", "four", 4}};
    assert_int_equal(sl_blobs_write(b, del, 3, &err), 0);
    sl_blobs_close(b);

    /* Everything survives a reopen. */
    assert_int_equal(sl_blobs_open(&b, dir, 16, &err), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(sl_blobs_scan(b, "hist/", false, collect, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "hist/0001");
    assert_string_equal(s.keys[1], "hist/0003");
    assert_string_equal(s.keys[2], "hist/0004");
    assert_string_equal(s.vals[2], "four");
    memset(&s, 0, sizeof(s));
    assert_int_equal(sl_blobs_scan(b, "none/", true, collect, &s, &err), 0);
    assert_int_equal(s.n, 0);
    sl_blobs_close(b);
    sl_blobs_close(NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_put_get_delete_scan, setup, teardown),
};

SL_TEST_MAIN(tests)
