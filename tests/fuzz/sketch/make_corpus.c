/* Writes the seed corpus of fuzz_sketch into the directory given as argv[1]: valid
 * sketches of every representation (HLL empty, sparse of 1..1792 values, dense; DDSketch
 * empty, single value, sparse and dense bins, collapsed, extreme values) plus a few
 * truncated and off-by-one variants. Deterministic: rerunning it rewrites the same files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

static const char *g_dir;

static void put(const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void hll(const char *name, uint64_t n)
{
    sl_hll *h = sl_hll_new();
    for (uint64_t i = 0; i < n; i++) {
        sl_hll_add(h, &i, sizeof(i));
    }
    sl_buf b;
    sl_buf_init(&b);
    sl_hll_serialize(h, &b);
    put(name, b.data, b.len);
    char cut[256];
    snprintf(cut, sizeof(cut), "%s-truncated", name);
    put(cut, b.data, b.len / 2);
    sl_buf_fini(&b);
    sl_hll_free(h);
}

static void dds(const char *name, size_t n, double (*gen)(uint64_t *))
{
    sl_dds *s = sl_dds_new();
    uint64_t rng = 42;
    for (size_t i = 0; i < n; i++) {
        sl_dds_add(s, gen(&rng), NULL);
    }
    sl_buf b;
    sl_buf_init(&b);
    sl_dds_serialize(s, &b);
    put(name, b.data, b.len);
    if (b.len > 4) {
        char cut[256];
        snprintf(cut, sizeof(cut), "%s-truncated", name);
        put(cut, b.data, b.len - 1);
    }
    sl_buf_fini(&b);
    sl_dds_free(s);
}

static double latency(uint64_t *rng)
{
    return (double)(rng_next(rng) % 100000) / 100.0; /* 0 .. 999.99 ms, some zeros */
}

static double wide(uint64_t *rng)
{
    return (double)(rng_next(rng) >> 11) * 0x1p-53 * 1e300 * (double)(rng_next(rng) % 2) +
           (double)(rng_next(rng) % 7) * 1e-300;
}

static double one_value(uint64_t *rng)
{
    (void)rng;
    return 87.0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    hll("hll-empty", 0);
    hll("hll-1", 1);
    hll("hll-2", 2);
    hll("hll-10", 10);
    hll("hll-300", 300);
    hll("hll-1792", SL_HLL_SPARSE_MAX);
    hll("hll-dense-5000", 5000);
    dds("dds-empty", 0, latency);
    dds("dds-single", 1, one_value);
    dds("dds-5", 5, latency);
    dds("dds-200", 200, latency);
    dds("dds-20000", 20000, latency);
    dds("dds-wide-collapsed", 3000, wide);
    static const unsigned char v2[] = {2, 1, 0, 0};
    put("bad-version", v2, sizeof(v2));
    static const unsigned char type9[] = {1, 9, 0};
    put("bad-type", type9, sizeof(type9));
    return 0;
}
