/* sketch_rows: bytes per stored rollup row with and without the sketch metrics (issue 4).
 *
 * Reads NDJSON events on stdin (a `sl-loadgen dump`: the benchmark's seeded events, ≈50k
 * users Zipf 0.9, log-normal latency_ms) and runs them through the pipeline's own code: the
 * ingest parser (actors/ingest/parse.c), one rollup table per partition
 * (actors/windower/rollup.c, drained every --flush events like a windower's flush) and
 * sl_store_merge_row into two LMDB stores in a temp dir: one with the datasource spec as
 * given (default configs/datasources/page_events.json, with its distinct and quantiles
 * metrics), one with the same spec minus its sketch metrics. The stored rows are the same
 * (same minutes and dimensions); only their values differ. Then it scans both stores and
 * prints, as Markdown:
 *   - rows, key and value bytes per row (value = count, doubles, and the length-prefixed
 *     sketches: storage/store.h), and LMDB's bytes in use per row (B-tree pages, dictionary
 *     and all) for each store;
 *   - per sketch metric: rows holding one, its serialized size (mean, p50, p90, p99, max) and
 *     how many distinct sketches turned dense.
 *
 *   build-bench/bench/sl-loadgen dump --events 2000000 --span 604800 --now 1764000000000 |
 *       build-bench/bench/sl-sketch-rows [--spec FILE] [--flush N] [--label TEXT]
 *
 * Outside ctest: the figures go to docs/benchmarks.md ("Sketch metrics: bytes per stored
 * row"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "rollup.h"
#include "sketch.h"
#include "store.h"

#define CHUNK_LINES 1000

typedef struct side {
    const char *name;
    const sl_spec *spec;
    sl_store *store;
    sl_rollup **rollups;
    char dir[512];
    double fold_s;   /* CPU seconds in sl_rollup_add */
    double store_s;  /* CPU seconds draining, decoding and merging into the store */
    uint64_t merged; /* rows merged (deltas' rows, before they combine in the store) */
} side;

/* CPU time of this thread. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct sizes {
    size_t n, cap;
    uint32_t *v;
} sizes;

static void sizes_add(sizes *s, uint32_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = sl_realloc(s->v, s->cap * sizeof(uint32_t));
    }
    s->v[s->n++] = x;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const sizes *s, double q)
{
    return s->n == 0 ? 0 : s->v[(size_t)(q * (double)(s->n - 1))];
}

typedef struct scan_acc {
    const sl_spec *spec;
    uint64_t rows, events, value_bytes;
    sizes sk[SL_MAX_METRICS];
    uint64_t dense[SL_MAX_METRICS];
} scan_acc;

static size_t varint_len(size_t n)
{
    size_t k = 1;
    while (n >= 0x80) {
        n >>= 7;
        k++;
    }
    return k;
}

/* A row's value bytes as storage/store.h lays them out. */
static int on_row(void *arg, const sl_store_row *row)
{
    scan_acc *a = arg;
    const sl_spec *spec = a->spec;
    size_t v = 8, sk = 0;
    bool any = false;
    for (int i = 0; i < spec->nmetrics; i++) {
        if (!sl_metric_is_sketch(spec->metrics[i].kind)) {
            v += 8;
            continue;
        }
        sk += varint_len(row->sketches[i].len) + row->sketches[i].len;
        any |= row->sketches[i].len > 0;
        if (row->sketches[i].len > 0) {
            sizes_add(&a->sk[i], (uint32_t)row->sketches[i].len);
            if (spec->metrics[i].kind == SL_METRIC_DISTINCT &&
                row->sketches[i].len == SL_HLL_DENSE_BYTES) {
                a->dense[i]++;
            }
        }
    }
    a->value_bytes += v + (any ? sk : 0);
    a->rows++;
    a->events += row->count;
    return 0;
}

static void die(const char *what, const sl_err *err)
{
    fprintf(stderr, "sl-sketch-rows: %s: %s\n", what, err != NULL ? err->msg : strerror(errno));
    exit(1);
}

static void flush_side(side *s, int nparts)
{
    double t0 = cpu_s();
    sl_buf blob;
    sl_buf_init(&blob);
    sl_err err = {0};
    sl_store_txn *t;
    for (;;) {
        if (sl_store_begin(s->store, &t, &err) != 0) {
            die("begin", &err);
        }
        int rc = 0;
        for (int p = 0; p < nparts && rc == 0; p++) {
            int64_t lo, hi;
            sl_buf_reset(&blob);
            sl_rollup_drain(s->rollups[p], &blob, &lo, &hi);
            sl_rows_iter it;
            sl_row row;
            sl_rows_iter_init(&it, blob.data, blob.len);
            while (rc == 0 && (rc = sl_rows_next(&it, &row, &err)) == 1) {
                rc = sl_store_merge_row(t, s->spec, &row, &err);
                s->merged++;
            }
            if (rc < 0 && rc != SL_ENOSPC) {
                die("merge", &err);
            }
        }
        if (rc == 0) {
            rc = sl_store_commit(t, &err);
        }
        if (rc == 0) {
            break;
        }
        /* the map is full: the drained rows are gone, so a full map is fatal here; it is
         * sized for the run below */
        die("store full (raise --map-mb)", &err);
    }
    sl_buf_fini(&blob);
    s->store_s += cpu_s() - t0;
}

int main(int argc, char **argv)
{
    const char *spec_path = SL_SOURCE_DIR "/configs/datasources/page_events.json";
    const char *label = "stdin";
    long flush = 50000, map_mb = 4096;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) {
            spec_path = argv[++i];
        } else if (strcmp(argv[i], "--flush") == 0 && i + 1 < argc) {
            flush = atol(argv[++i]);
        } else if (strcmp(argv[i], "--map-mb") == 0 && i + 1 < argc) {
            map_mb = atol(argv[++i]);
        } else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
            label = argv[++i];
        } else {
            fprintf(stderr, "usage: sl-sketch-rows [--spec FILE] [--flush EVENTS] [--map-mb MB] "
                            "[--label TEXT] < events.ndjson\n");
            return 2;
        }
    }
    sl_err err = {0};
    sl_spec *full;
    if (sl_spec_load(spec_path, &full, &err) != 0) {
        die(spec_path, &err);
    }
    /* The same spec without its sketch metrics: a shallow copy (never freed as a spec). */
    sl_spec plain = *full;
    plain.nmetrics = 0;
    for (int i = 0; i < full->nmetrics; i++) {
        if (!sl_metric_is_sketch(full->metrics[i].kind)) {
            plain.metrics[plain.nmetrics++] = full->metrics[i];
        }
    }
    char tmpl[] = "/tmp/sl-sketch-rows-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        die("mkdtemp", NULL);
    }
    side sides[2] = {{.name = "with sketches", .spec = full},
                     {.name = "without sketches", .spec = &plain}};
    int nparts = full->partitions;
    for (int k = 0; k < 2; k++) {
        snprintf(sides[k].dir, sizeof(sides[k].dir), "%s/%s", tmpl, k == 0 ? "with" : "without");
        if (sl_store_open(&sides[k].store, sides[k].dir, false, map_mb, map_mb, &err) != 0) {
            die("open store", &err);
        }
        sides[k].rollups = sl_calloc((size_t)nparts, sizeof(sl_rollup *));
        for (int p = 0; p < nparts; p++) {
            sides[k].rollups[p] = sl_rollup_new(sides[k].spec);
        }
    }

    /* Feed stdin through the parser in chunks of lines; the same events go to both. */
    sl_parser parser;
    sl_parser_init(&parser);
    sl_event *evs = sl_malloc(CHUNK_LINES * sizeof(sl_event));
    int *evpart = sl_malloc(CHUNK_LINES * sizeof(int));
    sl_buf chunk;
    sl_buf_init(&chunk);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lines = 0, since_flush = 0, rejected = 0;
    int64_t now = (int64_t)time(NULL) * 1000;
    for (bool done = false; !done;) {
        n = getline(&line, &cap, stdin);
        done = n < 0;
        if (!done) {
            sl_buf_append(&chunk, line, (size_t)n);
            lines++;
        }
        if ((done || lines % CHUNK_LINES == 0) && chunk.len > 0) {
            if (sl_parser_run(&parser, full, chunk.data, chunk.len, now, 1, &err) != 0) {
                die("parse", &err);
            }
            rejected += (long)parser.rejected;
            if (parser.rejected > 0 && parser.nerrors > 0 && rejected == parser.rejected) {
                fprintf(stderr, "sl-sketch-rows: rejected: %s\n", parser.errors[0].reason.p);
            }
            /* decode once, then time each side's folding of the whole chunk */
            int nev = 0;
            for (int p = 0; p < parser.nparts; p++) {
                sl_events_iter it;
                sl_events_iter_init(&it, parser.parts[p].data, parser.parts[p].len);
                while (nev < CHUNK_LINES && sl_events_next(&it, &evs[nev], &err) == 1) {
                    evpart[nev++] = p;
                }
            }
            for (int k = 0; k < 2; k++) {
                double t0 = cpu_s();
                for (int e = 0; e < nev; e++) {
                    sl_rollup_add(sides[k].rollups[evpart[e]], &evs[e]);
                }
                sides[k].fold_s += cpu_s() - t0;
            }
            since_flush += (long)parser.accepted;
            sl_buf_reset(&chunk);
        }
        if (since_flush >= flush || (done && since_flush > 0)) {
            flush_side(&sides[0], nparts);
            flush_side(&sides[1], nparts);
            since_flush = 0;
        }
    }
    free(line);
    free(evs);
    free(evpart);
    sl_buf_fini(&chunk);
    sl_parser_fini(&parser);

    scan_acc acc[2] = {{.spec = full}, {.spec = &plain}};
    int64_t used[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        sl_store_reader *r;
        if (sl_store_read_begin(sides[k].store, &r, &err) != 0 ||
            sl_store_scan(r, sides[k].spec, INT64_MIN / 2, INT64_MAX / 2, on_row, &acc[k], &err) !=
                0) {
            die("scan", &err);
        }
        sl_store_read_end(r);
        int64_t map;
        sl_store_usage(sides[k].store, &map, &used[k]);
    }
    size_t key = 4 + 4 * (size_t)full->ndims;
    printf("#### %s: %ld lines, %llu events, %llu rows (%.1f events per row), %ld rejected\n\n",
           label, lines, (unsigned long long)acc[0].events, (unsigned long long)acc[0].rows,
           acc[0].rows ? (double)acc[0].events / (double)acc[0].rows : 0.0, rejected);
    printf("| store | rows | key bytes/row | value bytes/row | LMDB pages in use, bytes/row | "
           "rollup CPU ns/event | store CPU µs/merged row |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++) {
        double rows = acc[k].rows ? (double)acc[k].rows : 1;
        printf("| %s | %llu | %zu | %.1f | %.1f | %.0f | %.2f |\n", sides[k].name,
               (unsigned long long)acc[k].rows, key, (double)acc[k].value_bytes / rows,
               (double)used[k] / rows,
               1e9 * sides[k].fold_s / (double)(acc[k].events ? acc[k].events : 1),
               1e6 * sides[k].store_s / (double)(sides[k].merged ? sides[k].merged : 1));
    }
    printf(
        "\n| sketch metric | rows with a sketch | mean bytes | p50 | p90 | p99 | max | dense |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < full->nmetrics; i++) {
        sizes *s = &acc[0].sk[i];
        if (!sl_metric_is_sketch(full->metrics[i].kind)) {
            continue;
        }
        qsort(s->v, s->n, sizeof(uint32_t), cmp_u32);
        uint64_t sum = 0;
        for (size_t j = 0; j < s->n; j++) {
            sum += s->v[j];
        }
        char dense[48] = "—";
        if (full->metrics[i].kind == SL_METRIC_DISTINCT) {
            snprintf(dense, sizeof(dense), "%llu (%.2f%%)", (unsigned long long)acc[0].dense[i],
                     s->n ? 100.0 * (double)acc[0].dense[i] / (double)s->n : 0.0);
        }
        printf("| %s (%s of %s) | %zu | %.1f | %u | %u | %u | %u | %s |\n", full->metrics[i].name,
               full->metrics[i].kind == SL_METRIC_DISTINCT ? "distinct" : "quantiles",
               full->metrics[i].field, s->n, s->n ? (double)sum / (double)s->n : 0.0, pct(s, 0.5),
               pct(s, 0.9), pct(s, 0.99), s->n ? s->v[s->n - 1] : 0, dense);
        free(s->v);
    }
    for (int k = 0; k < 2; k++) {
        for (int p = 0; p < nparts; p++) {
            sl_rollup_free(sides[k].rollups[p]);
        }
        free(sides[k].rollups);
        sl_store_close(sides[k].store);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    if (system(cmd) != 0) {
        fprintf(stderr, "sl-sketch-rows: could not remove %s\n", tmpl);
    }
    sl_spec_free(full);
    return 0;
}
