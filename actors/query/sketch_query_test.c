/* Sketch metrics through the query engine: distinct (HyperLogLog) and quantiles
 * (DDSketch) metrics written with sl_store_merge_row into a real LMDB store, then read by
 * native queries.
 *
 * The data are seeded events (user, minute, country, device, latency). The test plays
 * the windower: it groups events by (partition, minute, dimensions), builds one sketch
 * per group with the runtime's sketch API and merges each group as one sl_row. Expected
 * values are computed here from the events themselves: exact distinct counts by
 * brute force (a bitmap per user), exact quantiles by sorting the latencies and taking
 * the value of rank floor(q * (n - 1)), the definition docs/api.md gives.
 *
 *   accuracy_*      1k / 100k / 1M distinct users over 12 partitions and 64 minutes:
 *                   distinct counts within 2% of exact, p50 / p95 / p99 within 1%.
 *   order_independence  the same events split over other partitions, in another merge
 *                   order and other transaction boundaries answer with the same bytes,
 *                   and equal a single sketch of all the data, bit for bit.
 *   small_exact     every aggregator and post-aggregator on data small enough for the
 *                   sparse (exact) HyperLogLog: exact answers, empty buckets, errors. */
#include "sl_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "exec.h"
#include "testjson.h"
#include "hash.h"
#include "result.h"
#include "sketch.h"

#define T0 1749600000000LL /* 2025-06-11T00:00:00Z */
#define MIN 60000LL
#define NMIN 64
#define NCOUNTRY 3
#define NDEVICE 3 /* the third is null */

static const char *const SPEC =
    "{\"name\":\"pe\",\"timestamp\":{\"column\":\"timestamp\",\"format\":\"iso\"},"
    "\"dimensions\":[\"country\",\"device\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user_id\"},"
    "{\"name\":\"latency\",\"type\":\"quantiles\",\"field\":\"latency_ms\"},"
    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"latency_ms\"}],"
    "\"partitions\":{\"count\":12,\"key\":\"user_id\"}}";

enum { M_USERS, M_LATENCY, M_LATSUM, NMETRICS };

static const char *const countries[NCOUNTRY] = {"US", "DE", "FR"};
static const char *const devices[NDEVICE] = {"mobile", "desktop", NULL};

/* ---- seeded events ------------------------------------------------------------------------ */

typedef struct event {
    uint32_t user;
    uint8_t minute;
    uint8_t country;
    uint8_t device;
    bool has_lat;
    double lat;
} event;

typedef struct dataset {
    uint32_t nusers;
    size_t n;
    event *ev;
    uint64_t *uhash; /* sl_hash64 of each user's id string, as the windower hashes it */
} dataset;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
}

static int user_id(uint32_t u, char *buf, size_t size)
{
    return snprintf(buf, size, "user-%u", u);
}

/* nusers distinct users over n >= nusers events: event i < nusers is user i, the others
 * pick a random user. Latencies are log-normal (median ~33 ms) at 0.1 ms resolution;
 * one event in ten has none. */
static void gen(dataset *d, uint32_t nusers, size_t n, uint64_t seed)
{
    d->nusers = nusers;
    d->n = n;
    d->ev = sl_malloc(n * sizeof(event));
    d->uhash = sl_malloc((size_t)nusers * sizeof(uint64_t));
    for (uint32_t u = 0; u < nusers; u++) {
        char id[32];
        int len = user_id(u, id, sizeof(id));
        d->uhash[u] = sl_hash64(id, (size_t)len);
    }
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        event *e = &d->ev[i];
        e->user = i < nusers ? (uint32_t)i : (uint32_t)(rng_next(&s) % nusers);
        e->minute = (uint8_t)(rng_next(&s) % NMIN);
        e->country = (uint8_t)(rng_next(&s) % NCOUNTRY);
        e->device = (uint8_t)(rng_next(&s) % NDEVICE);
        e->has_lat = rng_next(&s) % 10 != 0;
        double z = sqrt(-2 * log(rng_unit(&s))) * cos(2 * M_PI * rng_unit(&s));
        e->lat = e->has_lat ? round(exp(3.5 + 0.9 * z) * 10) / 10 : 0;
    }
}

static void gen_free(dataset *d)
{
    free(d->ev);
    free(d->uhash);
}

/* ---- writing: the test plays the windower -----------------------------------------------------
 */

typedef struct wopts {
    int (*part)(const dataset *d, uint32_t user, int nparts);
    int nparts;
    bool reverse;  /* merge the rows in reverse order */
    int split;     /* each group goes out as this many rows (deltas) */
    int txn_every; /* commit after this many rows */
} wopts;

static int part_hash(const dataset *d, uint32_t user, int nparts)
{
    char id[32];
    int len = user_id(user, id, sizeof(id));
    (void)d;
    return sl_partition_of(id, (size_t)len, nparts);
}

static int part_mul(const dataset *d, uint32_t user, int nparts)
{
    (void)d;
    return (int)(((uint64_t)user * 2654435761u) % (uint64_t)nparts);
}

/* One outgoing row: its key and serialized sketches. */
typedef struct wrow {
    int minute, country, device;
    uint64_t count;
    double lat_sum;
    sl_buf hll, dds;
} wrow;

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Builds the rows of d as the windowers would (one per partition, minute, dimensions and
 * split part) and merges them into a new store in dir. */
static int write_store(const char *dir, const sl_spec *spec, const dataset *d, const wopts *o)
{
    int nkeys = o->nparts * o->split * NMIN * NCOUNTRY * NDEVICE;
    size_t *start = sl_calloc((size_t)nkeys + 1, sizeof(size_t));
    size_t *order = sl_malloc(d->n * sizeof(size_t) + 1);
    int *key = sl_malloc(d->n * sizeof(int) + 1);
    /* counting sort of the events by key */
    for (size_t i = 0; i < d->n; i++) {
        const event *e = &d->ev[i];
        int p = o->part(d, e->user, o->nparts) * o->split + (int)(i % (size_t)o->split);
        key[i] = ((p * NMIN + e->minute) * NCOUNTRY + e->country) * NDEVICE + e->device;
        start[key[i] + 1]++;
    }
    for (int k = 0; k < nkeys; k++) {
        start[k + 1] += start[k];
    }
    size_t *fill = sl_malloc(((size_t)nkeys + 1) * sizeof(size_t));
    memcpy(fill, start, ((size_t)nkeys + 1) * sizeof(size_t));
    for (size_t i = 0; i < d->n; i++) {
        order[fill[key[i]]++] = i;
    }
    free(fill);

    wrow *rows = sl_calloc((size_t)nkeys + 1, sizeof(wrow));
    int nrows = 0;
    uint64_t *hs = sl_malloc(d->n * sizeof(uint64_t) + 1);
    sl_hll *h = sl_hll_new();
    sl_dds *q = sl_dds_new();
    sl_err err;
    for (int k = 0; k < nkeys; k++) {
        if (start[k] == start[k + 1]) {
            continue;
        }
        wrow *r = &rows[nrows++];
        r->device = k % NDEVICE;
        r->country = (k / NDEVICE) % NCOUNTRY;
        r->minute = (k / (NDEVICE * NCOUNTRY)) % NMIN;
        sl_hll_clear(h);
        sl_dds_clear(q);
        size_t nh = 0;
        for (size_t j = start[k]; j < start[k + 1]; j++) {
            const event *e = &d->ev[order[j]];
            hs[nh++] = d->uhash[e->user];
            r->count++;
            if (e->has_lat) {
                assert_int_equal(sl_dds_add(q, e->lat, &err), 0);
                r->lat_sum += e->lat;
            }
        }
        /* adding hashes in increasing order keeps the sparse insert cheap; the sketch
         * is the same whatever the order */
        qsort(hs, nh, sizeof(uint64_t), cmp_u64);
        for (size_t j = 0; j < nh; j++) {
            sl_hll_add_hash(h, hs[j]);
        }
        sl_buf_init(&r->hll);
        sl_buf_init(&r->dds);
        sl_hll_serialize(h, &r->hll);
        if (sl_dds_count(q) > 0) {
            sl_dds_serialize(q, &r->dds);
        }
    }
    sl_hll_free(h);
    sl_dds_free(q);
    free(hs);
    free(start);
    free(order);
    free(key);

    sl_store *st;
    sl_store_txn *t = NULL;
    int rc = sl_store_open(&st, dir, false, 64, 1024, &err);
    if (rc != 0) {
        fail_msg("open %s: %s", dir, err.msg);
    }
    for (int i = 0; i < nrows; i++) {
        const wrow *w = &rows[o->reverse ? nrows - 1 - i : i];
        if (t == NULL && (rc = sl_store_begin(st, &t, &err)) != 0) {
            fail_msg("begin: %s", err.msg);
        }
        sl_row r = {
            .bucket_ms = T0 + w->minute * MIN, .ndims = 2, .count = w->count, .nvalues = NMETRICS};
        r.dims[0].p = countries[w->country];
        r.dims[0].len = strlen(countries[w->country]);
        r.dims[1].p = devices[w->device];
        r.dims[1].len = devices[w->device] != NULL ? strlen(devices[w->device]) : 0;
        r.sketches[M_USERS] = (sl_str){w->hll.data, w->hll.len};
        if (w->dds.len > 0) {
            r.sketches[M_LATENCY] = (sl_str){w->dds.data, w->dds.len};
        }
        r.values[M_LATSUM] = w->lat_sum;
        if ((rc = sl_store_merge_row(t, spec, &r, &err)) != 0) {
            fail_msg("merge_row: %s", err.msg);
        }
        if ((i + 1) % o->txn_every == 0 || i == nrows - 1) {
            if ((rc = sl_store_commit(t, &err)) != 0) {
                fail_msg("commit: %s", err.msg);
            }
            t = NULL;
        }
    }
    sl_store_close(st);
    for (int i = 0; i < nrows; i++) {
        sl_buf_fini(&rows[i].hll);
        sl_buf_fini(&rows[i].dds);
    }
    free(rows);
    return 0;
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

typedef struct fixture {
    char dir[64];
    sl_config *cfg;
    sl_store *st;
    sl_buf out;
    yajl_val last;
} fixture;

static fixture *fx_new(void)
{
    fixture *fx = sl_calloc(1, sizeof(*fx));
    sl_err err;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_sketch_query.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->cfg = sl_calloc(1, sizeof(sl_config));
    sl_spec *spec;
    if (sl_spec_parse(SPEC, strlen(SPEC), "test", &spec, &err) != 0) {
        fail_msg("spec: %s", err.msg);
    }
    fx->cfg->datasources[fx->cfg->ndatasources++] = spec;
    sl_buf_init(&fx->out);
    return fx;
}

/* Writes d into store `name` under the fixture dir and opens it read-only. */
static sl_store *fx_store(fixture *fx, const char *name, const dataset *d, const wopts *o)
{
    char dir[128];
    sl_err err;
    snprintf(dir, sizeof(dir), "%s/%s", fx->dir, name);
    write_store(dir, fx->cfg->datasources[0], d, o);
    sl_store *st;
    if (sl_store_open(&st, dir, true, 64, 1024, &err) != 0) {
        fail_msg("open ro: %s", err.msg);
    }
    return st;
}

static void fx_free(fixture *fx)
{
    char cmd[128];
    yajl_tree_free(fx->last);
    sl_store_close(fx->st);
    sl_buf_fini(&fx->out);
    sl_spec_free(fx->cfg->datasources[0]);
    free(fx->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

static const wopts W_DEFAULT = {part_hash, 12, false, 1, 1000000};

/* ---- queries and JSON --------------------------------------------------------------------------
 */

#define IV "\"intervals\":[\"2025-06-11T00:00:00Z/2025-06-12T00:00:00Z\"]"
#define TS(gran)                                                                                   \
    "{\"queryType\":\"timeseries\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"" gran "\","

static yajl_val run_on(fixture *fx, sl_store *st, int want_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static yajl_val run_on(fixture *fx, sl_store *st, int want_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yajl_val v = tj_vrun(fx->cfg, st, &fx->out, &fx->last, want_status, fmt, ap);
    va_end(ap);
    return v;
}

#define run(fx, ...) run_on(fx, (fx)->st, 200, __VA_ARGS__)

static int64_t jint(yajl_val v, const char *what)
{
    if (v == NULL || !YAJL_IS_INTEGER(v)) {
        fail_msg("%s: expected an integer", what);
    }
    return YAJL_GET_INTEGER(v);
}

static double jdouble(yajl_val v, const char *what)
{
    if (v == NULL || !YAJL_IS_DOUBLE(v)) {
        fail_msg("%s: expected a double (printed with a fraction)", what);
    }
    return YAJL_GET_DOUBLE(v);
}

static const char *jstr(yajl_val v)
{
    return v != NULL && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static void expect_null(yajl_val v, const char *what)
{
    if (v == NULL || !YAJL_IS_NULL(v)) {
        fail_msg("%s: expected null", what);
    }
}

/* |got - want| <= rel * want */
static void within(double got, double want, double rel, const char *what)
{
    if (!(fabs(got - want) <= rel * fabs(want))) {
        fail_msg("%s: got %.10g, exact %.10g: relative error %.4f%% > %.2f%%", what, got, want,
                 100 * fabs(got - want) / fabs(want), 100 * rel);
    }
}

/* ---- reference values ---------------------------------------------------------------------------
 */

typedef bool (*evpred)(const event *e, const void *arg);

/* Exact number of distinct users among the events matching p (NULL: all). */
static uint64_t exact_distinct(const dataset *d, evpred p, const void *arg)
{
    uint8_t *seen = sl_calloc((size_t)d->nusers / 8 + 1, 1);
    uint64_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const event *e = &d->ev[i];
        if (p != NULL && !p(e, arg)) {
            continue;
        }
        if (!(seen[e->user / 8] & (1u << (e->user % 8)))) {
            seen[e->user / 8] |= (uint8_t)(1u << (e->user % 8));
            n++;
        }
    }
    free(seen);
    return n;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The sorted latencies of the events matching p; *n of them. */
static double *exact_lats(const dataset *d, evpred p, const void *arg, size_t *n)
{
    double *v = sl_malloc(d->n * sizeof(double) + 1);
    *n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const event *e = &d->ev[i];
        if (e->has_lat && (p == NULL || p(e, arg))) {
            v[(*n)++] = e->lat;
        }
    }
    qsort(v, *n, sizeof(double), cmp_double);
    return v;
}

/* docs/api.md: the q-quantile is the value of 0-based rank floor(q * (n - 1)). */
static double exact_quantile(const double *sorted, size_t n, double q)
{
    return sorted[(size_t)floor(q * (double)(n - 1))];
}

static bool in_country(const event *e, const void *arg)
{
    return e->country == *(const int *)arg;
}

static bool in_minute(const event *e, const void *arg)
{
    return e->minute == *(const int *)arg;
}

static bool us_mobile(const event *e, const void *arg)
{
    (void)arg;
    return e->country == 0 && e->device == 0;
}

/* ---- accuracy
 * ------------------------------------------------------------------------------------ */

static const double FRACTIONS[] = {0.5, 0.95, 0.99};

static void check_quantiles(yajl_val arr, const double *sorted, size_t n, const char *what)
{
    assert_int_equal(jlen(arr), 3);
    for (int k = 0; k < 3; k++) {
        char w[128];
        snprintf(w, sizeof(w), "%s p%g", what, FRACTIONS[k] * 100);
        double got = jnum(arr->u.array.values[k], w);
        double want = exact_quantile(sorted, n, FRACTIONS[k]);
        within(got, want, 0.01, w);
        /* and the documented bound of the sketch itself */
        within(got, want, SL_DDS_ALPHA + 1e-12, w);
    }
}

static void accuracy(uint32_t nusers, size_t nevents, uint64_t seed)
{
    fixture *fx = fx_new();
    dataset d;
    gen(&d, nusers, nevents, seed);
    fx->st = fx_store(fx, "a", &d, &W_DEFAULT);
    char what[128];

    /* all of it: distinct users within 2%, quantiles within 1% */
    yajl_val r = run(fx, TS("all") "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"
                                   "{\"type\":\"HLLSketchMerge\",\"name\":\"users\",\"fieldName\":"
                                   "\"users\"},{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\","
                                   "\"fieldName\":\"latency\"}],\"postAggregations\":[{\"type\":"
                                   "\"quantilesDoublesSketchToQuantiles\",\"name\":\"p\",\"field\":"
                                   "{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":"
                                   "[0.5,0.95,0.99]}]}");
    assert_int_equal(jlen(r), 1);
    assert_int_equal(jint(jat(r, "0/result/n"), "n"), (int64_t)d.n);
    snprintf(what, sizeof(what), "%u users: distinct count", nusers);
    double est = jdouble(jat(r, "0/result/users"), "users");
    within(est, nusers, 0.02, what);
    size_t nl;
    double *lats = exact_lats(&d, NULL, NULL, &nl);
    assert_int_equal(jint(jat(r, "0/result/q"), "q"), (int64_t)nl);
    check_quantiles(jat(r, "0/result/p"), lats, nl, "all");
    print_message("%u users, %zu events: distinct estimate %.1f (%+.3f%%); p50 %g/%g p95 %g/%g "
                  "p99 %g/%g (sketch/exact)\n",
                  nusers, d.n, est, 100 * (est - nusers) / nusers,
                  jnum(jat(r, "0/result/p/0"), "p50"), exact_quantile(lats, nl, 0.5),
                  jnum(jat(r, "0/result/p/1"), "p95"), exact_quantile(lats, nl, 0.95),
                  jnum(jat(r, "0/result/p/2"), "p99"), exact_quantile(lats, nl, 0.99));
    free(lats);

    /* per country (groupBy), merged across partitions, minutes and devices */
    r = run(fx, "{\"queryType\":\"groupBy\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"all\","
                "\"dimensions\":[\"country\"],\"aggregations\":[{\"type\":\"HLLSketchMerge\","
                "\"name\":\"u\",\"fieldName\":\"users\",\"round\":true},{\"type\":"
                "\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\"}],"
                "\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantiles\",\"name\":"
                "\"p\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":"
                "[0.5,0.95,0.99]}]}");
    assert_int_equal(jlen(r), NCOUNTRY);
    for (size_t i = 0; i < NCOUNTRY; i++) {
        const char *c = jstr(jat(r, "%zu/event/country", i));
        int ci = -1;
        for (int k = 0; k < NCOUNTRY; k++) {
            ci = c != NULL && strcmp(c, countries[k]) == 0 ? k : ci;
        }
        assert_true(ci >= 0);
        snprintf(what, sizeof(what), "%u users, country %s", nusers, c);
        within((double)jint(jat(r, "%zu/event/u", i), what),
               (double)exact_distinct(&d, in_country, &ci), 0.02, what);
        lats = exact_lats(&d, in_country, &ci, &nl);
        check_quantiles(jat(r, "%zu/event/p", i), lats, nl, what);
        free(lats);
    }

    /* a filter across both dimensions */
    r = run(fx, TS("all") "\"filter\":{\"type\":\"and\",\"fields\":[{\"type\":\"selector\","
                          "\"dimension\":\"country\",\"value\":\"US\"},{\"type\":\"selector\","
                          "\"dimension\":\"device\",\"value\":\"mobile\"}]},\"aggregations\":"
                          "[{\"type\":\"hyperUnique\",\"name\":\"u\",\"fieldName\":\"users\"}]}");
    snprintf(what, sizeof(what), "%u users, US mobile", nusers);
    within(jnum(jat(r, "0/result/u"), what), (double)exact_distinct(&d, us_mobile, NULL), 0.02,
           what);

    /* per minute: each within 4 standard errors (3.3%), the root mean square within 2% */
    r = run(fx, TS("minute") "\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\","
                             "\"fieldName\":\"users\"},{\"type\":\"quantilesDoublesSketch\","
                             "\"name\":\"q\",\"fieldName\":\"latency\"}],\"postAggregations\":[{"
                             "\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":\"p95\","
                             "\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},"
                             "\"fraction\":0.95}]}");
    assert_int_equal(jlen(r), NMIN);
    /* the exact figures of every minute in one pass: distinct users with a bitmap of
     * (minute, user), latencies bucketed by minute then sorted */
    uint64_t mdistinct[NMIN] = {0};
    size_t mstart[NMIN + 1] = {0};
    for (size_t i = 0; i < d.n; i++) {
        mstart[d.ev[i].minute + 1] += d.ev[i].has_lat;
    }
    for (int m = 0; m < NMIN; m++) {
        mstart[m + 1] += mstart[m];
    }
    size_t mfill[NMIN];
    memcpy(mfill, mstart, sizeof(mfill));
    lats = sl_malloc((mstart[NMIN] + 1) * sizeof(double));
    uint8_t *seen = sl_calloc((size_t)NMIN * ((d.nusers + 7) / 8), 1);
    size_t row = (d.nusers + 7) / 8;
    for (size_t i = 0; i < d.n; i++) {
        const event *e = &d.ev[i];
        uint8_t *b = &seen[e->minute * row + e->user / 8];
        if (!(*b & (1u << (e->user % 8)))) {
            *b |= (uint8_t)(1u << (e->user % 8));
            mdistinct[e->minute]++;
        }
        if (e->has_lat) {
            lats[mfill[e->minute]++] = e->lat;
        }
    }
    free(seen);
    double sq = 0;
    for (int m = 0; m < NMIN; m++) {
        snprintf(what, sizeof(what), "%u users, minute %d", nusers, m);
        /* the brute force of exact_distinct, for one minute: the one-pass figures agree */
        if (m == 0) {
            assert_int_equal(mdistinct[0], exact_distinct(&d, in_minute, &m));
        }
        double want = (double)mdistinct[m];
        double got = jnum(jat(r, "%d/result/u", m), what);
        within(got, want, 4 * 1.04 / 128, what);
        sq += (got - want) / want * (got - want) / want;
        nl = mstart[m + 1] - mstart[m];
        qsort(lats + mstart[m], nl, sizeof(double), cmp_double);
        within(jnum(jat(r, "%d/result/p95", m), what), exact_quantile(lats + mstart[m], nl, 0.95),
               0.01, what);
    }
    free(lats);
    print_message("%u users: per-minute RMS relative error of the distinct count %.3f%%\n", nusers,
                  100 * sqrt(sq / NMIN));
    if (!(sqrt(sq / NMIN) <= 0.02)) {
        fail_msg("%u users: per-minute RMS relative error %.4f > 2%%", nusers, sqrt(sq / NMIN));
    }
    gen_free(&d);
    fx_free(fx);
}

static void accuracy_1k(void **state)
{
    (void)state;
    accuracy(1000, 40000, 1);
}

static void accuracy_100k(void **state)
{
    (void)state;
    accuracy(100000, 300000, 2);
}

/* A million users: rows hold a few hundred users each, stored rows thousands. */
static void accuracy_1m(void **state)
{
    (void)state;
    accuracy(1000000, 1500000, 3);
}

/* ---- order independence ---------------------------------------------------------------------- */

static const char *const ORDER_QUERIES[] = {
    TS("all") "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},{\"type\":\"hyperUnique\","
              "\"name\":\"u\",\"fieldName\":\"users\"},{\"type\":\"quantilesDoublesSketch\","
              "\"name\":\"q\",\"fieldName\":\"latency\"},{\"type\":\"cardinality\",\"name\":\"c\","
              "\"fields\":[\"country\",\"device\"],\"byRow\":true}],\"postAggregations\":[{"
              "\"type\":"
              "\"quantilesDoublesSketchToQuantiles\",\"name\":\"p\",\"field\":{\"type\":"
              "\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0,0.25,0.5,0.9,0.95,0.99,1]}]}",
    TS("minute") "\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\",\"fieldName\":"
                 "\"users\"},{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":"
                 "\"latency\"}],\"postAggregations\":[{\"type\":"
                 "\"quantilesDoublesSketchToQuantile\","
                 "\"name\":\"p\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},"
                 "\"fraction\":0.95}]}",
    TS("fifteen_minute") "\"filter\":{\"type\":\"in\",\"dimension\":\"country\",\"values\":"
                         "[\"US\",\"FR\"]},\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":"
                         "\"u\",\"fieldName\":\"users\"}]}",
    "{\"queryType\":\"groupBy\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"hour\","
    "\"dimensions\":[\"country\",\"device\"],\"aggregations\":[{\"type\":\"HLLSketchMerge\","
    "\"name\":\"u\",\"fieldName\":\"users\"},{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\","
    "\"fieldName\":\"latency\"}],\"postAggregations\":[{\"type\":"
    "\"quantilesDoublesSketchToQuantiles\",\"name\":\"p\",\"field\":{\"type\":\"fieldAccess\","
    "\"fieldName\":\"q\"},\"fractions\":[0.5,0.99]}]}",
    "{\"queryType\":\"topN\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"all\",\"dimension\":"
    "\"device\",\"metric\":\"u\",\"threshold\":2,\"aggregations\":[{\"type\":\"HLLSketchMerge\","
    "\"name\":\"u\",\"fieldName\":\"users\"}]}",
};

static void order_independence(void **state)
{
    (void)state;
    fixture *fx = fx_new();
    dataset d;
    gen(&d, 20000, 60000, 4);
    /* A: 12 partitions by the hash of the user id, natural order, one transaction.
     * B: 16 partitions by another function of the user, each group sent as 3 deltas,
     *    merged in reverse order and committed every 7 rows. */
    fx->st = fx_store(fx, "a", &d, &W_DEFAULT);
    wopts wb = {part_mul, 16, true, 3, 7};
    sl_store *b = fx_store(fx, "b", &d, &wb);
    sl_buf first;
    sl_buf_init(&first);
    for (size_t i = 0; i < sizeof(ORDER_QUERIES) / sizeof(ORDER_QUERIES[0]); i++) {
        run_on(fx, fx->st, 200, "%s", ORDER_QUERIES[i]);
        sl_buf_reset(&first);
        sl_buf_append(&first, fx->out.data, fx->out.len);
        run_on(fx, b, 200, "%s", ORDER_QUERIES[i]);
        if (first.len != fx->out.len || memcmp(first.data, fx->out.data, first.len) != 0) {
            fail_msg("query %zu differs:\n%s\n%s", i, first.data, fx->out.data);
        }
    }
    /* the whole, merged from stored rows, equals one sketch of every event, bit for bit */
    sl_hll *h = sl_hll_new();
    sl_dds *q = sl_dds_new();
    for (size_t i = 0; i < d.n; i++) {
        sl_hll_add_hash(h, d.uhash[d.ev[i].user]);
        if (d.ev[i].has_lat) {
            assert_int_equal(sl_dds_add(q, d.ev[i].lat, NULL), 0);
        }
    }
    yajl_val r = run_on(fx, b, 200, "%s", ORDER_QUERIES[0]);
    assert_true(jdouble(jat(r, "0/result/u"), "u") == sl_hll_estimate(h));
    assert_int_equal(jint(jat(r, "0/result/q"), "q"), (int64_t)sl_dds_count(q));
    static const double fr[] = {0, 0.25, 0.5, 0.9, 0.95, 0.99, 1};
    for (int k = 0; k < 7; k++) {
        assert_true(jnum(jat(r, "0/result/p/%d", k), "p") == sl_dds_quantile(q, fr[k]));
    }
    /* byRow cardinality of (country, device): every combination occurs */
    assert_true(jdouble(jat(r, "0/result/c"), "c") == NCOUNTRY * NDEVICE);
    sl_hll_free(h);
    sl_dds_free(q);
    sl_buf_fini(&first);
    sl_store_close(b);
    gen_free(&d);
    fx_free(fx);
}

/* ---- small data: exact answers
 * -------------------------------------------------------------------- */

static bool ev_match(const event *e, const void *arg)
{
    const int *c = arg; /* {minute or -1, country or -1, device or -1} */
    return (c[0] < 0 || e->minute == c[0]) && (c[1] < 0 || e->country == c[1]) &&
           (c[2] < 0 || e->device == c[2]);
}

/* 40 users, 500 events over 64 minutes; minutes 10..14 have no events. */
static void gen_small(dataset *d)
{
    gen(d, 40, 500, 5);
    for (size_t i = 0; i < d->n; i++) {
        if (d->ev[i].minute >= 10 && d->ev[i].minute < 15) {
            d->ev[i].minute = (uint8_t)(d->ev[i].minute + 20);
        }
    }
}

static void small_exact(void **state)
{
    (void)state;
    fixture *fx = fx_new();
    dataset d;
    gen_small(&d);
    wopts w3 = {part_hash, 3, false, 1, 50};
    fx->st = fx_store(fx, "a", &d, &w3);
    char what[128];

    /* per minute, zero-filled: distinct users exact (sparse), empty minutes 0 / null */
    yajl_val r = run(
        fx,
        TS("minute") "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"},"
                     "{\"type\":\"HLLSketchMerge\",\"name\":\"u\",\"fieldName\":\"users\","
                     "\"round\":true},{\"type\":\"hyperUnique\",\"name\":\"hu\",\"fieldName\":"
                     "\"users\"},{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\","
                     "\"fieldName\":\"latency\"},{\"type\":\"cardinality\",\"name\":\"dev\","
                     "\"fields\":[\"device\"]},{\"type\":\"filtered\",\"filter\":{\"type\":"
                     "\"selector\",\"dimension\":\"country\",\"value\":\"DE\"},\"aggregator\":"
                     "{\"type\":\"HLLSketchMerge\",\"name\":\"u_de\",\"fieldName\":\"users\","
                     "\"round\":true}}],\"postAggregations\":[{\"type\":"
                     "\"quantilesDoublesSketchToQuantile\",\"name\":\"p50\",\"field\":{\"type\":"
                     "\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":0.5},{\"type\":"
                     "\"quantilesDoublesSketchToQuantiles\",\"name\":\"mm\",\"field\":{\"type\":"
                     "\"fieldAccess\",\"fieldName\":\"q\"},\"fractions\":[0,1]},{\"type\":"
                     "\"hyperUniqueCardinality\",\"name\":\"huc\",\"fieldName\":\"hu\"},{\"type\":"
                     "\"arithmetic\",\"name\":\"per_user\",\"fn\":\"/\",\"fields\":[{\"type\":"
                     "\"fieldAccess\",\"fieldName\":\"n\"},{\"type\":\"HLLSketchEstimate\","
                     "\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"u\"}}]}]}");
    assert_int_equal(jlen(r), NMIN);
    int nempty = 0;
    for (int m = 0; m < NMIN; m++) {
        snprintf(what, sizeof(what), "minute %d", m);
        int all[3] = {m, -1, -1}, de[3] = {m, 1, -1};
        uint64_t users = exact_distinct(&d, ev_match, all);
        size_t nl;
        double *lats = exact_lats(&d, ev_match, all, &nl);
        int64_t n = 0;
        bool dev_seen[NDEVICE] = {false};
        int ndev = 0;
        for (size_t i = 0; i < d.n; i++) {
            if (ev_match(&d.ev[i], all)) {
                n++;
                if (devices[d.ev[i].device] != NULL && !dev_seen[d.ev[i].device]) {
                    dev_seen[d.ev[i].device] = true;
                    ndev++;
                }
            }
        }
        assert_int_equal(jint(jat(r, "%d/result/n", m), what), n);
        assert_int_equal(jint(jat(r, "%d/result/u", m), what), (int64_t)users);
        assert_true(jdouble(jat(r, "%d/result/hu", m), what) == (double)users);
        assert_true(jdouble(jat(r, "%d/result/huc", m), what) == (double)users);
        assert_int_equal(jint(jat(r, "%d/result/q", m), what), (int64_t)nl);
        assert_true(jdouble(jat(r, "%d/result/dev", m), what) == (double)ndev);
        assert_int_equal(jint(jat(r, "%d/result/u_de", m), what),
                         (int64_t)exact_distinct(&d, ev_match, de));
        if (n == 0) {
            /* an empty bucket: estimates 0, no quantiles (and 0 / 0 is 0, as in Druid) */
            nempty++;
            expect_null(jat(r, "%d/result/p50", m), what);
            expect_null(jat(r, "%d/result/mm/0", m), what);
            assert_true(jnum(jat(r, "%d/result/per_user", m), what) == 0);
        } else {
            within(jnum(jat(r, "%d/result/p50", m), what), exact_quantile(lats, nl, 0.5),
                   SL_DDS_ALPHA + 1e-12, what);
            /* the extremes are exact */
            assert_true(jnum(jat(r, "%d/result/mm/0", m), what) == lats[0]);
            assert_true(jnum(jat(r, "%d/result/mm/1", m), what) == lats[nl - 1]);
            within(jnum(jat(r, "%d/result/per_user", m), what), (double)n / (double)users, 1e-12,
                   what);
        }
        free(lats);
    }

    /* grand total: the sketches of every bucket merged */
    r = run(fx,
            TS("minute") "\"context\":{\"grandTotal\":true,\"skipEmptyBuckets\":true},"
                         "\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\","
                         "\"fieldName\":\"users\",\"round\":true},{\"type\":"
                         "\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\"}],"
                         "\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantile\","
                         "\"name\":\"p90\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":"
                         "\"q\"},\"fraction\":0.9}]}");
    assert_true(nempty >= 5); /* minutes 10..14 at least */
    int tot = NMIN - nempty;
    assert_int_equal(jlen(r), tot + 1);
    expect_null(jat(r, "%d/timestamp", tot), "grand total timestamp");
    assert_int_equal(jint(jat(r, "%d/result/u", tot), "total"), d.nusers);
    size_t nl;
    double *lats = exact_lats(&d, NULL, NULL, &nl);
    within(jnum(jat(r, "%d/result/p90", tot), "total p90"), exact_quantile(lats, nl, 0.9),
           SL_DDS_ALPHA + 1e-12, "total p90");
    free(lats);

    /* cardinality: union of values vs combinations */
    r = run(fx,
            TS("all") "\"aggregations\":[{\"type\":\"cardinality\",\"name\":\"vals\",\"fields\":"
                      "[\"country\",\"device\"]},{\"type\":\"cardinality\",\"name\":\"rows\","
                      "\"fields\":[\"country\",\"device\"],\"byRow\":true,\"round\":true},"
                      "{\"type\":\"HLLSketchBuild\",\"name\":\"b\",\"fieldName\":\"country\"}]}");
    /* 3 countries + 2 devices (null is not a value); 3 x 3 combinations (null included) */
    assert_true(jdouble(jat(r, "0/result/vals"), "vals") == 5.0);
    assert_int_equal(jint(jat(r, "0/result/rows"), "rows"), 9);
    assert_true(jdouble(jat(r, "0/result/b"), "b") == 3.0);

    /* topN ranked by distinct users, per country */
    r = run(fx, "{\"queryType\":\"topN\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"all\","
                "\"dimension\":\"country\",\"metric\":\"u\",\"threshold\":2,\"aggregations\":"
                "[{\"type\":\"HLLSketchMerge\",\"name\":\"u\",\"fieldName\":\"users\",\"round\":"
                "true}]}");
    uint64_t uc[NCOUNTRY];
    for (int c = 0; c < NCOUNTRY; c++) {
        int k[3] = {-1, c, -1};
        uc[c] = exact_distinct(&d, ev_match, k);
    }
    assert_int_equal(jlen(jat(r, "0/result")), 2);
    int64_t u0 = jint(jat(r, "0/result/0/u"), "top 0"), u1 = jint(jat(r, "0/result/1/u"), "top 1");
    uint64_t best = 0, second = 0;
    for (int c = 0; c < NCOUNTRY; c++) {
        if (uc[c] > best) {
            second = best;
            best = uc[c];
        } else if (uc[c] > second) {
            second = uc[c];
        }
    }
    assert_int_equal(u0, (int64_t)best);
    assert_int_equal(u1, (int64_t)second);
    /* the inverted order: fewest users first */
    r = run(fx, "{\"queryType\":\"topN\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"all\","
                "\"dimension\":\"country\",\"metric\":{\"type\":\"inverted\",\"metric\":\"u\"},"
                "\"threshold\":1,\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\","
                "\"fieldName\":\"users\",\"round\":true}]}");
    uint64_t least =
        uc[0] < uc[1] ? (uc[0] < uc[2] ? uc[0] : uc[2]) : (uc[1] < uc[2] ? uc[1] : uc[2]);
    assert_int_equal(jint(jat(r, "0/result/0/u"), "least"), (int64_t)least);

    /* groupBy: having and limitSpec on sketch values */
    r = run(fx,
            "{\"queryType\":\"groupBy\",\"dataSource\":\"pe\"," IV ",\"granularity\":\"all\","
            "\"dimensions\":[\"country\",\"device\"],\"aggregations\":[{\"type\":"
            "\"HLLSketchMerge\",\"name\":\"u\",\"fieldName\":\"users\",\"round\":true},{\"type\":"
            "\"quantilesDoublesSketch\",\"name\":\"q\",\"fieldName\":\"latency\"}],"
            "\"postAggregations\":[{\"type\":\"quantilesDoublesSketchToQuantile\",\"name\":"
            "\"p95\",\"field\":{\"type\":\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":"
            "0.95}],\"having\":{\"type\":\"greaterThan\",\"aggregation\":\"u\",\"value\":20},"
            "\"limitSpec\":{\"type\":\"default\",\"limit\":3,\"columns\":[{\"dimension\":"
            "\"p95\",\"direction\":\"descending\",\"dimensionOrder\":\"numeric\"}]}}");
    /* expected: combinations with more than 20 users, by exact p95 descending, top 3 */
    struct {
        int c, dv;
        double p95;
    } want[NCOUNTRY * NDEVICE];
    int nw = 0;
    for (int c = 0; c < NCOUNTRY; c++) {
        for (int dv = 0; dv < NDEVICE; dv++) {
            int k[3] = {-1, c, dv};
            if (exact_distinct(&d, ev_match, k) <= 20) {
                continue;
            }
            lats = exact_lats(&d, ev_match, k, &nl);
            want[nw].c = c;
            want[nw].dv = dv;
            want[nw].p95 = exact_quantile(lats, nl, 0.95);
            nw++;
            free(lats);
        }
    }
    assert_true(nw >= 3);
    size_t nr = jlen(r);
    assert_int_equal(nr, 3);
    double prev = INFINITY;
    for (size_t i = 0; i < nr; i++) {
        const char *c = jstr(jat(r, "%zu/event/country", i));
        const char *dv = jstr(jat(r, "%zu/event/device", i));
        double p95 = jnum(jat(r, "%zu/event/p95", i), "p95");
        assert_true(p95 <= prev);
        prev = p95;
        bool found = false;
        for (int k = 0; k < nw; k++) {
            bool same_dev = devices[want[k].dv] == NULL
                                ? dv == NULL
                                : dv != NULL && strcmp(dv, devices[want[k].dv]) == 0;
            if (c != NULL && strcmp(c, countries[want[k].c]) == 0 && same_dev) {
                within(p95, want[k].p95, SL_DDS_ALPHA + 1e-12, "groupBy p95");
                found = true;
            }
        }
        assert_true(found);
        assert_true(jint(jat(r, "%zu/event/u", i), "u") > 20);
    }

    gen_free(&d);
    fx_free(fx);
}

/* Errors at execution: sketch aggregators on the wrong columns are 400s naming them. */
static void error_replies(void **state)
{
    (void)state;
    fixture *fx = fx_new();
    dataset d;
    gen_small(&d);
    fx->st = fx_store(fx, "a", &d, &W_DEFAULT);
    yajl_val r = run_on(fx, fx->st, 400,
                        TS("all") "\"aggregations\":[{\"type\":\"hyperUnique\",\"name\":\"u\","
                                  "\"fieldName\":\"lat_sum\"}]}");
    assert_string_equal(jstr(jat(r, "error")), "Invalid query");
    assert_non_null(strstr(jstr(jat(r, "errorMessage")),
                           "aggregations[0].fieldName: \"lat_sum\" is a sum metric"));
    r = run_on(fx, fx->st, 400,
               TS("all") "\"aggregations\":[{\"type\":\"quantilesDoublesSketch\",\"name\":\"q\","
                         "\"fieldName\":\"latency\"}],\"postAggregations\":[{\"type\":"
                         "\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":{\"type\":"
                         "\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":95}]}");
    assert_non_null(strstr(jstr(jat(r, "errorMessage")),
                           "postAggregations[0].fraction: the fraction must be between 0 and 1, "
                           "got 95"));
    /* no store yet: sketches of nothing */
    r = run_on(fx, NULL, 200,
               TS("all") "\"aggregations\":[{\"type\":\"HLLSketchMerge\",\"name\":\"u\","
                         "\"fieldName\":\"users\"},{\"type\":\"quantilesDoublesSketch\",\"name\":"
                         "\"q\",\"fieldName\":\"latency\"}],\"postAggregations\":[{\"type\":"
                         "\"quantilesDoublesSketchToQuantile\",\"name\":\"p\",\"field\":{\"type\":"
                         "\"fieldAccess\",\"fieldName\":\"q\"},\"fraction\":0.5}]}");
    assert_true(jdouble(jat(r, "0/result/u"), "u") == 0.0);
    assert_int_equal(jint(jat(r, "0/result/q"), "q"), 0);
    expect_null(jat(r, "0/result/p"), "p");
    gen_free(&d);
    fx_free(fx);
}

/* The datasource listing names the sketch metrics' types as the spec does (the dashboard
 * finds the metric to query by them). */
static void datasource_listing(void **state)
{
    (void)state;
    fixture *fx = fx_new();
    assert_int_equal(sl_res_datasources(fx->cfg, NULL, &fx->out), 200);
    sl_buf_append(&fx->out, "", 1);
    char ebuf[128];
    yajl_val v = yajl_tree_parse(fx->out.data, ebuf, sizeof(ebuf));
    assert_non_null(v);
    static const char *const want[][2] = {
        {"count", "count"}, {"users", "distinct"}, {"latency", "quantiles"}, {"lat_sum", "sum"}};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(jstr(jat(v, "0/spec/metrics/%d/name", i)), want[i][0]);
        assert_string_equal(jstr(jat(v, "0/spec/metrics/%d/type", i)), want[i][1]);
    }
    assert_string_equal(jstr(jat(v, "0/spec/metrics/1/field")), "user_id");
    yajl_tree_free(v);
    fx_free(fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(datasource_listing), cmocka_unit_test(small_exact),
    cmocka_unit_test(error_replies),      cmocka_unit_test(order_independence),
    cmocka_unit_test(accuracy_1k),        cmocka_unit_test(accuracy_100k),
    cmocka_unit_test(accuracy_1m),
};

SL_TEST_MAIN(tests)
