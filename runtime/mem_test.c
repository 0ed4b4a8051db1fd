/* Unit tests for runtime/mem.c: the measurement follows anonymous memory the test maps
 * and touches itself, compared with RssAnon read from /proc/self/status (another file
 * than the one mem.c reads); the bound and its shares. */
#include "sl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mem.h"

#define MIB (1024 * 1024)

/* RssAnon from /proc/self/status, in bytes. */
static int64_t rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "RssAnon: %lld kB", &kb) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kb * 1024;
}

static void test_used_follows_anonymous_memory(void **state)
{
    (void)state;
    int64_t before = sl_mem_used(), status_before = rss_anon();
    assert_true(before > 0);
    /* The two readings of the same figure agree within what the test itself moves. */
    assert_true(llabs((long long)(before - status_before)) < 8 * MIB);

    size_t n = 64 * MIB;
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_true(sl_mem_used() - before < 8 * MIB); /* mapped, not touched: not resident */
    memset(p, 1, n);
    int64_t touched = sl_mem_used();
    assert_true(touched - before >= 60 * MIB);
    assert_true(touched - before <= 72 * MIB);
    assert_true(llabs((long long)(touched - rss_anon())) < 8 * MIB);
    munmap(p, n);
    assert_true(sl_mem_used() - before < 8 * MIB);
}

static void test_bound_and_shares(void **state)
{
    (void)state;
    sl_mem_init(0);
    assert_int_equal(sl_mem_bound(), 0);
    assert_false(sl_mem_above(0.0)); /* no bound: never above */
    assert_true(sl_mem_budget(0.5) == INT64_MAX);

    sl_mem_init(100 * MIB);
    assert_true(sl_mem_bound() == 100 * MIB);
    assert_true(sl_mem_budget(0.3) == 30 * MIB);
    int64_t used = sl_mem_used();
    /* A bound just under what the process uses is crossed; one far above is not. */
    sl_mem_init(used / 2);
    assert_true(sl_mem_above(1.0));
    sl_mem_init(used * 4);
    assert_false(sl_mem_above(0.5));
    assert_true(sl_mem_above(0.1));
    sl_mem_release(); /* safe to call any time */
    sl_mem_init(-5);
    assert_int_equal(sl_mem_bound(), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_used_follows_anonymous_memory),
    cmocka_unit_test(test_bound_and_shares),
};

SL_TEST_MAIN(tests)
