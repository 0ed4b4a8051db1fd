/* Unit tests for runtime/hash.c. Partition numbers are part of the on-disk format
 * (offsets are per partition), so the hash must never change: the expected values
 * below were computed with an independent pure-Python XXH64 written from the xxHash
 * specification (it reproduces the published vectors XXH64("") = ef46db3751d8e999,
 * XXH64("a") = d24ec4f1a98c6e5b and XXH64("abc") = 44bc2cf5ad770999). */
#include "sl_test.h"

#include <stdio.h>
#include <string.h>

#include "hash.h"

static const struct {
    const char *key;
    uint64_t hash;
    int part12; /* hash % 12 */
} known[] = {
    {"", 0xEF46DB3751D8E999ULL, 9},
    {"a", 0xD24EC4F1A98C6E5BULL, 11},
    {"abc", 0x44BC2CF5AD770999ULL, 9},
    {"u1234", 0x9314A49CC49A958EULL, 6},
    {"user-42", 0x397E9D3A76AF7C81ULL, 5},
    {"hello world", 0x45AB6734B21E6968ULL, 8},
    /* longer than 32 bytes: exercises XXH64's four-lane loop */
    {"0123456789abcdefghijklmnopqrstuvwxyz0123456789", 0x4AE5684CD402FBB4ULL, 0},
    /* UTF-8 bytes are hashed as bytes */
    {"\xc3\xbc-\xc3\xb1", 0x3829B22929BB9C38ULL, 0},
};

static void known_hash_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        size_t len = strlen(known[i].key);
        uint64_t h = sl_hash64(known[i].key, len);
        if (h != known[i].hash) {
            fail_msg("sl_hash64(\"%s\") = %016llx, want %016llx", known[i].key,
                     (unsigned long long)h, (unsigned long long)known[i].hash);
        }
        assert_int_equal(sl_partition_of(known[i].key, len, 12), known[i].part12);
    }
}

static void hash_uses_only_len_bytes(void **state)
{
    (void)state;
    /* the key is a view: bytes past len must not matter */
    assert_int_equal(sl_hash64("abcdef", 3), 0x44BC2CF5AD770999ULL);
    assert_int_equal(sl_partition_of("u1234-and-more", 5, 12), 6);
}

static void null_key_hashes_as_empty(void **state)
{
    (void)state;
    assert_int_equal(sl_hash64(NULL, 0), 0xEF46DB3751D8E999ULL);
    assert_int_equal(sl_partition_of(NULL, 0, 12), 9);
    assert_int_equal(sl_partition_of(NULL, 0, 12), sl_partition_of("", 0, 12));
    /* a NULL key with a stray length is still the missing key, not a crash */
    assert_int_equal(sl_partition_of(NULL, 5, 12), 9);
}

static void partition_in_range(void **state)
{
    (void)state;
    char key[32];
    static const int ns[] = {1, 2, 3, 7, 12, 64, 1024};
    for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++) {
        for (int i = 0; i < 5000; i++) {
            int len = snprintf(key, sizeof(key), "k%d", i);
            int p = sl_partition_of(key, (size_t)len, ns[j]);
            assert_true(p >= 0 && p < ns[j]);
            /* the partition is the 64-bit hash reduced modulo n */
            assert_int_equal(p, (int)(sl_hash64(key, (size_t)len) % (uint64_t)ns[j]));
        }
    }
    assert_int_equal(sl_partition_of("anything", 8, 1), 0);
}

static void distribution_over_12_partitions(void **state)
{
    (void)state;
    enum { N = 100000, P = 12 };
    int counts[P] = {0};
    char key[32];
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "user-%d", i);
        counts[sl_partition_of(key, (size_t)len, P)]++;
    }
    /* chi-square with 11 degrees of freedom: 31.3 is the 0.001 tail; keys are fixed so
     * this is deterministic, and a biased hash (e.g. one ignoring a byte) fails it */
    double expect = (double)N / P, chi2 = 0;
    for (int p = 0; p < P; p++) {
        double d = counts[p] - expect;
        chi2 += d * d / expect;
        /* and no partition is more than 3% off the mean */
        assert_true(counts[p] > expect * 0.97 && counts[p] < expect * 1.03);
    }
    if (chi2 > 31.3) {
        fail_msg("chi-square %.2f over 12 partitions is not uniform", chi2);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(known_hash_values),
    cmocka_unit_test(hash_uses_only_len_bytes),
    cmocka_unit_test(null_key_hashes_as_empty),
    cmocka_unit_test(partition_in_range),
    cmocka_unit_test(distribution_over_12_partitions),
};

SL_TEST_MAIN(tests)
