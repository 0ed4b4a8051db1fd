/* sketch_bench: bytes per serialized sketch, insert/merge/read speed and accuracy over many
 * seeds for runtime/sketch.c (HyperLogLog and DDSketch). Outside ctest; build it -O2
 * (Release) and run `sl-sketch-bench [runs]`. Timings are thread CPU time, medians of
 * `runs` repetitions (default 5); accuracy figures use seeded data and exact answers
 * computed here.
 * Prints Markdown tables for docs/benchmarks.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "sketch.h"

static int g_runs = 5;

/* CPU time of this thread: on a shared machine, time spent descheduled is not counted. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double rng_latency(uint64_t *s) /* log-normal around 80 ms */
{
    double u = rng_unit(s);
    double v = rng_unit(s);
    return 80.0 * exp(1.1 * sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static volatile double g_sink;

static int user_key(char *buf, uint64_t id)
{
    return snprintf(buf, 32, "user-%llu", (unsigned long long)id);
}

/* ---- sizes ----------------------------------------------------------------------- */

static void hll_sizes(void)
{
    static const uint64_t ns[] = {0,   1,    2,    5,    10,   20,    50,     100,    200,
                                  500, 1000, 1500, 1792, 1793, 10000, 100000, 1000000};
    sl_buf b;
    sl_buf_init(&b);
    printf("\n### Distinct (HLL) bytes per serialized sketch\n\n");
    printf("| distinct values | bytes | bytes/value | form |\n|---:|---:|---:|---|\n");
    char key[32];
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_hll *h = sl_hll_new();
        for (uint64_t v = 0; v < ns[i]; v++) {
            sl_hll_add(h, key, (size_t)user_key(key, v));
        }
        b.len = 0;
        size_t size = sl_hll_serialize(h, &b);
        printf("| %llu | %zu | %.2f | %s |\n", (unsigned long long)ns[i], size,
               ns[i] ? (double)size / (double)ns[i] : 0.0,
               sl_hll_is_sparse(h) ? "sparse" : "dense");
        sl_hll_free(h);
    }

    /* the sparse limit: size of the sparse form of n random hashes, over 300 sets */
    printf("\nSparse size near the limit (300 random sets each; dense is %d bytes):\n\n",
           SL_HLL_DENSE_BYTES);
    printf("| hashes | min | median | max |\n|---:|---:|---:|---:|\n");
    static const uint32_t near[] = {1700, 1792};
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        double sizes[300];
        for (int t = 0; t < 300; t++) {
            sl_hll *h = sl_hll_new();
            while (sl_hll_estimate(h) < near[i]) {
                sl_hll_add_hash(h, rng_next(&rng));
            }
            b.len = 0;
            sizes[t] = (double)sl_hll_serialize(h, &b);
            sl_hll_free(h);
        }
        double med = median(sizes, 300);
        printf("| %u | %.0f | %.0f | %.0f |\n", near[i], sizes[0], med, sizes[299]);
    }
    sl_buf_fini(&b);
}

static void dds_sizes(void)
{
    static const uint64_t ns[] = {0, 1, 2, 3, 5, 10, 20, 50, 100, 1000, 10000, 100000, 1000000};
    sl_buf b;
    sl_buf_init(&b);
    uint64_t rng = 7;
    printf("\n### Quantiles (DDSketch) bytes per serialized sketch (log-normal latencies, "
           "median 80 ms)\n\n");
    printf("| values | bytes | form |\n|---:|---:|---|\n");
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sl_dds *s = sl_dds_new();
        for (uint64_t v = 0; v < ns[i]; v++) {
            sl_dds_add(s, rng_latency(&rng), NULL);
        }
        b.len = 0;
        size_t size = sl_dds_serialize(s, &b);
        static const char *forms[] = {"empty", "sparse bins", "dense bins", "single value"};
        printf("| %llu | %zu | %s |\n", (unsigned long long)ns[i], size, forms[(int)b.data[2]]);
        sl_dds_free(s);
    }
    sl_buf_fini(&b);
}

/* ---- speed ----------------------------------------------------------------------- */

typedef double (*bench_fn)(void); /* returns seconds per operation */

static void report(const char *what, bench_fn fn)
{
    double t[32];
    for (int r = 0; r < g_runs; r++) {
        t[r] = fn();
    }
    double m = median(t, g_runs);
    printf("| %s | %.1f | %.2f |\n", what, m * 1e9, 1e-6 / m);
}

#define N_INSERT 2000000

static uint64_t *g_hashes;
static double *g_lat;

static double b_hll_add_hash_big(void)
{
    sl_hll *h = sl_hll_new();
    double t0 = now_s();
    for (int i = 0; i < N_INSERT; i++) {
        sl_hll_add_hash(h, g_hashes[i]);
    }
    double t = now_s() - t0;
    g_sink = sl_hll_estimate(h);
    sl_hll_free(h);
    return t / N_INSERT;
}

static char *g_keys; /* "user-N" strings, 16 bytes apart, NUL-padded */

static double b_hll_add_string_big(void)
{
    sl_hll *h = sl_hll_new();
    double t0 = now_s();
    for (int i = 0; i < N_INSERT; i++) {
        const char *k = g_keys + (size_t)i * 16;
        sl_hll_add(h, k, strlen(k));
    }
    double t = now_s() - t0;
    g_sink = sl_hll_estimate(h);
    sl_hll_free(h);
    return t / N_INSERT;
}

static double b_hll_add_sparse_fill(void)
{
    /* fills fresh sketches up to the sparse limit: the sorted-insert path */
    int per = SL_HLL_SPARSE_MAX;
    int sketches = N_INSERT / per;
    double t0 = now_s();
    for (int s = 0; s < sketches; s++) {
        sl_hll *h = sl_hll_new();
        for (int i = 0; i < per; i++) {
            sl_hll_add_hash(h, g_hashes[(size_t)s * per + i]);
        }
        g_sink = sl_hll_estimate(h);
        sl_hll_free(h);
    }
    return (now_s() - t0) / ((double)sketches * per);
}

static double b_hll_rows(void)
{
    /* rollup rows: a new sketch, 3 users, serialize, free */
    sl_buf b;
    sl_buf_init(&b);
    int rows = N_INSERT / 3;
    double t0 = now_s();
    for (int r = 0; r < rows; r++) {
        sl_hll *h = sl_hll_new();
        for (int i = 0; i < 3; i++) {
            sl_hll_add_hash(h, g_hashes[(size_t)r * 3 + i]);
        }
        b.len = 0;
        sl_hll_serialize(h, &b);
        sl_hll_free(h);
    }
    double t = now_s() - t0;
    sl_buf_fini(&b);
    return t / rows;
}

/* serialized small rows (1..5 users each, from 200k users) for the merge benchmark */
static sl_buf g_rows;
static size_t *g_row_off;
static size_t g_nrows;

static void make_rows(void)
{
    uint64_t rng = 3;
    g_nrows = 1000000;
    g_row_off = malloc((g_nrows + 1) * sizeof(size_t));
    sl_buf_init(&g_rows);
    for (size_t r = 0; r < g_nrows; r++) {
        sl_hll *h = sl_hll_new();
        int k = 1 + (int)(rng_next(&rng) % 5);
        for (int i = 0; i < k; i++) {
            sl_hll_add_hash(h, sl_hash64(&(uint64_t){rng_next(&rng) % 200000}, 8));
        }
        g_row_off[r] = g_rows.len;
        sl_hll_serialize(h, &g_rows);
        sl_hll_free(h);
    }
    g_row_off[g_nrows] = g_rows.len;
}

static double b_hll_merge_rows(void)
{
    sl_hll *h = sl_hll_new();
    double t0 = now_s();
    for (size_t r = 0; r < g_nrows; r++) {
        if (sl_hll_merge_bytes(h, g_rows.data + g_row_off[r], g_row_off[r + 1] - g_row_off[r],
                               NULL) != 0) {
            abort();
        }
    }
    double t = now_s() - t0;
    g_sink = sl_hll_estimate(h);
    sl_hll_free(h);
    return t / (double)g_nrows;
}

static double b_hll_merge_rows_sparse_dst(void)
{
    /* rows merged into a sparse destination (a filter that matches few users): groups of
     * 200 rows, each group into a fresh sketch */
    double t0 = now_s();
    size_t done = 0;
    for (size_t g = 0; g + 200 <= g_nrows; g += 200) {
        sl_hll *h = sl_hll_new();
        for (size_t r = g; r < g + 200; r++) {
            sl_hll_merge_bytes(h, g_rows.data + g_row_off[r], g_row_off[r + 1] - g_row_off[r],
                               NULL);
        }
        g_sink = sl_hll_estimate(h);
        sl_hll_free(h);
        done += 200;
    }
    return (now_s() - t0) / (double)done;
}

static sl_buf g_dense;

static double b_hll_merge_dense_bytes(void)
{
    sl_hll *h = sl_hll_new();
    int n = 2000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        sl_hll_merge_bytes(h, g_dense.data, g_dense.len, NULL);
    }
    double t = now_s() - t0;
    sl_hll_free(h);
    return t / n;
}

static double b_hll_merge_dense_mem(void)
{
    sl_hll *a = sl_hll_new();
    sl_hll *src = NULL;
    sl_hll_deserialize(g_dense.data, g_dense.len, &src, NULL);
    int n = 5000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        sl_hll_merge(a, src);
    }
    double t = now_s() - t0;
    sl_hll_free(a);
    sl_hll_free(src);
    return t / n;
}

static double b_hll_estimate_dense(void)
{
    sl_hll *src = NULL;
    sl_hll_deserialize(g_dense.data, g_dense.len, &src, NULL);
    int n = 5000;
    double t0 = now_s();
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += sl_hll_estimate(src);
    }
    double t = now_s() - t0;
    g_sink = acc;
    sl_hll_free(src);
    return t / n;
}

static double b_hll_serialize_dense(void)
{
    sl_hll *src = NULL;
    sl_hll_deserialize(g_dense.data, g_dense.len, &src, NULL);
    sl_buf b;
    sl_buf_init(&b);
    int n = 5000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        b.len = 0;
        sl_hll_serialize(src, &b);
    }
    double t = now_s() - t0;
    sl_buf_fini(&b);
    sl_hll_free(src);
    return t / n;
}

static double b_dds_add(void)
{
    sl_dds *s = sl_dds_new();
    double t0 = now_s();
    for (int i = 0; i < N_INSERT; i++) {
        sl_dds_add(s, g_lat[i], NULL);
    }
    double t = now_s() - t0;
    g_sink = sl_dds_quantile(s, 0.5);
    sl_dds_free(s);
    return t / N_INSERT;
}

static sl_buf g_drows;
static size_t *g_drow_off;
static size_t g_ndrows;
static sl_buf g_dbig;

static void make_dds_rows(void)
{
    uint64_t rng = 4;
    g_ndrows = 1000000;
    g_drow_off = malloc((g_ndrows + 1) * sizeof(size_t));
    sl_buf_init(&g_drows);
    for (size_t r = 0; r < g_ndrows; r++) {
        sl_dds *s = sl_dds_new();
        int k = 1 + (int)(rng_next(&rng) % 5);
        for (int i = 0; i < k; i++) {
            sl_dds_add(s, rng_latency(&rng), NULL);
        }
        g_drow_off[r] = g_drows.len;
        sl_dds_serialize(s, &g_drows);
        sl_dds_free(s);
    }
    g_drow_off[g_ndrows] = g_drows.len;
    sl_dds *big = sl_dds_new();
    for (int i = 0; i < 100000; i++) {
        sl_dds_add(big, rng_latency(&rng), NULL);
    }
    sl_buf_init(&g_dbig);
    sl_dds_serialize(big, &g_dbig);
    sl_dds_free(big);
}

static double b_dds_merge_rows(void)
{
    sl_dds *s = sl_dds_new();
    double t0 = now_s();
    for (size_t r = 0; r < g_ndrows; r++) {
        if (sl_dds_merge_bytes(s, g_drows.data + g_drow_off[r], g_drow_off[r + 1] - g_drow_off[r],
                               NULL) != 0) {
            abort();
        }
    }
    double t = now_s() - t0;
    g_sink = sl_dds_quantile(s, 0.95);
    sl_dds_free(s);
    return t / (double)g_ndrows;
}

static double b_dds_merge_big_bytes(void)
{
    sl_dds *s = sl_dds_new();
    int n = 20000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        sl_dds_merge_bytes(s, g_dbig.data, g_dbig.len, NULL);
    }
    double t = now_s() - t0;
    sl_dds_free(s);
    return t / n;
}

static double b_dds_quantile(void)
{
    sl_dds *s = NULL;
    sl_dds_deserialize(g_dbig.data, g_dbig.len, &s, NULL);
    int n = 200000;
    double acc = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        acc += sl_dds_quantile(s, 0.95);
    }
    double t = now_s() - t0;
    g_sink = acc;
    sl_dds_free(s);
    return t / n;
}

static void speed(void)
{
    uint64_t rng = 1;
    g_hashes = malloc(N_INSERT * sizeof(uint64_t));
    g_lat = malloc(N_INSERT * sizeof(double));
    g_keys = calloc(N_INSERT, 16);
    for (int i = 0; i < N_INSERT; i++) {
        user_key(g_keys + (size_t)i * 16, (uint64_t)i);
        g_hashes[i] = rng_next(&rng);
        g_lat[i] = rng_latency(&rng);
    }
    make_rows();
    make_dds_rows();
    sl_hll *d = sl_hll_new();
    for (int i = 0; i < 1000000; i++) {
        sl_hll_add_hash(d, g_hashes[i]);
    }
    sl_buf_init(&g_dense);
    sl_hll_serialize(d, &g_dense);
    sl_hll_free(d);

    printf("\n### Speed (thread CPU time, median of %d runs)\n\n", g_runs);
    printf("| operation | ns/op | M ops/s |\n|---|---:|---:|\n");
    report("HLL add_hash, one sketch, 2M distinct (dense)", b_hll_add_hash_big);
    report("HLL add (xxHash64 of \"user-N\" + insert), 2M distinct", b_hll_add_string_big);
    report("HLL add_hash while sparse (fresh sketches filled to 1792)", b_hll_add_sparse_fill);
    report("HLL row: new + 3 add_hash + serialize + free", b_hll_rows);
    report("HLL merge_bytes of a 1-5 user row into a dense total", b_hll_merge_rows);
    report("HLL merge_bytes of a 1-5 user row into a sparse total (200 rows)",
           b_hll_merge_rows_sparse_dst);
    report("HLL merge_bytes of a dense 12 KB sketch", b_hll_merge_dense_bytes);
    report("HLL merge in memory, dense into dense", b_hll_merge_dense_mem);
    report("HLL estimate, dense", b_hll_estimate_dense);
    report("HLL serialize, dense", b_hll_serialize_dense);
    report("DDS add (log-normal latencies)", b_dds_add);
    report("DDS merge_bytes of a 1-5 value row", b_dds_merge_rows);
    report("DDS merge_bytes of a 100k-value sketch", b_dds_merge_big_bytes);
    report("DDS quantile(0.95), 100k-value sketch", b_dds_quantile);
    printf("\nRows for the merge figures: %zu HLL rows, %.1f bytes/row; %zu DDS rows, %.1f "
           "bytes/row.\n",
           g_nrows, (double)g_rows.len / (double)g_nrows, g_ndrows,
           (double)g_drows.len / (double)g_ndrows);
}

/* ---- accuracy over seeds --------------------------------------------------------- */

static void hll_accuracy(void)
{
    printf("\n### Distinct count error over seeds (direct inserts; merges give identical "
           "sketches)\n\n");
    printf(
        "| distinct | seeds | mean error | RMSE | max abs error |\n|---:|---:|---:|---:|---:|\n");
    static const struct {
        uint64_t n;
        int seeds;
    } cases[] = {{1000, 100}, {2000, 100}, {5000, 100}, {20000, 100}, {100000, 100}, {1000000, 30}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        double sum = 0;
        double sq = 0;
        double mx = 0;
        for (int s = 0; s < cases[c].seeds; s++) {
            uint64_t rng = 1000 + (uint64_t)s * 7919 + cases[c].n;
            sl_hll *h = sl_hll_new();
            for (uint64_t i = 0; i < cases[c].n; i++) {
                sl_hll_add_hash(h, rng_next(&rng)); /* distinct with overwhelming odds */
            }
            double e = (sl_hll_estimate(h) - (double)cases[c].n) / (double)cases[c].n;
            sum += e;
            sq += e * e;
            mx = fabs(e) > mx ? fabs(e) : mx;
            sl_hll_free(h);
        }
        printf("| %llu | %d | %+.3f%% | %.3f%% | %.3f%% |\n", (unsigned long long)cases[c].n,
               cases[c].seeds, 100 * sum / cases[c].seeds, 100 * sqrt(sq / cases[c].seeds),
               100 * mx);
    }
}

static void dds_accuracy(void)
{
    printf("\n### Quantile relative error over seeds (1M log-normal values each)\n\n");
    printf("| quantile | seeds | mean error | max error |\n|---|---:|---:|---:|\n");
    static const double qs[] = {0.5, 0.95, 0.99, 0.999};
    const int seeds = 10;
    const size_t n = 1000000;
    double mean[4] = {0};
    double mx[4] = {0};
    double *v = malloc(n * sizeof(double));
    for (int s = 0; s < seeds; s++) {
        uint64_t rng = 555 + (uint64_t)s;
        sl_dds *d = sl_dds_new();
        for (size_t i = 0; i < n; i++) {
            v[i] = rng_latency(&rng);
            sl_dds_add(d, v[i], NULL);
        }
        qsort(v, n, sizeof(double), cmp_double);
        for (int q = 0; q < 4; q++) {
            double want = v[(size_t)floor(qs[q] * (double)(n - 1))];
            double e = fabs(sl_dds_quantile(d, qs[q]) - want) / want;
            mean[q] += e / seeds;
            mx[q] = e > mx[q] ? e : mx[q];
        }
        sl_dds_free(d);
    }
    for (int q = 0; q < 4; q++) {
        printf("| p%g | %d | %.3f%% | %.3f%% |\n", 100 * qs[q], seeds, 100 * mean[q], 100 * mx[q]);
    }
    free(v);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        g_runs = atoi(argv[1]);
        if (g_runs < 1 || g_runs > 31) {
            fprintf(stderr, "usage: %s [runs 1..31]\n", argv[0]);
            return 2;
        }
    }
    printf("## Sketches (runtime/sketch.c)\n");
    hll_sizes();
    dds_sizes();
    speed();
    hll_accuracy();
    dds_accuracy();
    return 0;
}
