/* Unit tests for storage/kv.c: puts in one batch, gets (found, missing), deleting
 * below a value, values surviving a sync, close and reopen, and opens that fail (no
 * directory can be made; LMDB cannot open it) saying why. */
#include "sl_test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "testdir.h"

static int setup(void **state)
{
    return testdir_reset("kv");
}

static int teardown(void **state)
{
    return testdir_remove();
}

static void test_put_get_delete_reopen(void **state)
{
    sl_kv *kv;
    sl_err err = {0};
    int64_t v = 0;
    assert_int_equal(sl_kv_open(&kv, dir, 16, &err), 0);
    const void *keys[] = {"a", "bb", "key\0with-nul", "d"};
    const size_t klens[] = {1, 2, 12, 1};
    const int64_t vals[] = {10, -5, INT64_MAX, 30};
    assert_int_equal(sl_kv_put_many(kv, keys, klens, vals, 4, &err), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sl_kv_get(kv, keys[i], klens[i], &v, &err), 0);
        assert_int_equal(v, vals[i]);
    }
    /* The NUL is part of the key: its prefix is another key. */
    assert_int_equal(sl_kv_get(kv, "key", 3, &v, &err), SL_ENOTFOUND);
    assert_non_null(strstr(err.msg, "lmdb get"));
    /* Overwrite one. */
    const void *k1[] = {"d"};
    const size_t l1[] = {1};
    const int64_t v1[] = {31};
    assert_int_equal(sl_kv_put_many(kv, k1, l1, v1, 1, &err), 0);

    size_t deleted = 0;
    assert_int_equal(sl_kv_delete_below(kv, 11, &deleted, &err), 0);
    assert_int_equal(deleted, 2); /* a (10) and bb (-5) */
    assert_int_equal(sl_kv_get(kv, "a", 1, &v, &err), SL_ENOTFOUND);
    assert_int_equal(sl_kv_get(kv, "bb", 2, &v, &err), SL_ENOTFOUND);
    assert_int_equal(sl_kv_sync(kv, &err), 0);
    sl_kv_close(kv);

    assert_int_equal(sl_kv_open(&kv, dir, 16, &err), 0);
    assert_int_equal(sl_kv_get(kv, "d", 1, &v, &err), 0);
    assert_int_equal(v, 31);
    assert_int_equal(sl_kv_get(kv, "key\0with-nul", 12, &v, &err), 0);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(sl_kv_get(kv, "a", 1, &v, &err), SL_ENOTFOUND);
    sl_kv_close(kv);
    sl_kv_close(NULL);
}

static void test_open_error(void **state)
{
    /* The directory would be inside a regular file: mkdir fails with ENOTDIR. */
    assert_int_equal(mkdir(dir, 0755), 0);
    char file[300], sub[320];
    snprintf(file, sizeof(file), "%s/file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(sub, sizeof(sub), "%s/kv", file);
    sl_kv *kv = (sl_kv *)1;
    sl_err err = {0};
    assert_int_equal(sl_kv_open(&kv, sub, 16, &err), -ENOTDIR);
    assert_null(kv);
    char want[400];
    snprintf(want, sizeof(want), "mkdir %s: ", sub);
    assert_non_null(strstr(err.msg, want));
    /* The path itself is a regular file: mkdir says EEXIST, LMDB's open fails and the
     * half-made environment is closed (ASan would report it leaking). */
    kv = (sl_kv *)1;
    assert_int_equal(sl_kv_open(&kv, file, 16, &err), -ENOTDIR);
    assert_null(kv);
    assert_non_null(strstr(err.msg, "lmdb open: "));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_put_get_delete_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_error, setup, teardown),
};

SL_TEST_MAIN(tests)
