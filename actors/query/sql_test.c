/* SQL tests: the parser, the planner (the native JSON it generates) and whole statements
 * run against a real LMDB store in a temp directory. Every expected value is computed
 * here by brute force over the rows the test inserted.
 *
 * Each row also carries the events' users and latencies for the sketch metrics users
 * (distinct user_id) and lat_q (quantiles of lat). The latencies are their own values,
 * independent of the row's lat_sum / lat_min / lat_max: each metric is checked against
 * the values it was built from. */
#include "sl_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "sketch.h"
#include "sql.h"

#define T0 1749600000000LL /* 2025-06-11T00:00:00Z */
#define MIN 60000LL
#define HOUR 3600000LL
#define NMIN 130
#define NOW (T0 + 2 * HOUR) /* CURRENT_TIMESTAMP of every statement */

static const char *const SPEC =
    "{\"name\":\"ev\",\"timestamp\":{\"column\":\"ts\",\"format\":\"iso\",\"name\":\"event_time\"},"
    "\"dimensions\":[\"page\",\"country\",\"device\"],"
    "\"metrics\":[{\"name\":\"count\",\"type\":\"count\"},"
    "{\"name\":\"lat_sum\",\"type\":\"sum\",\"field\":\"lat\"},"
    "{\"name\":\"lat_min\",\"type\":\"min\",\"field\":\"lat\"},"
    "{\"name\":\"lat_max\",\"type\":\"max\",\"field\":\"lat\"},"
    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user_id\"},"
    "{\"name\":\"lat_q\",\"type\":\"quantiles\",\"field\":\"lat\"}],"
    "\"partitions\":{\"count\":2,\"key\":\"user_id\"},\"rejection\":{\"early\":\"P1D\"}}";

enum { D_PAGE, D_COUNTRY, D_DEVICE, ND };

#define NUSERS 37
#define MAX_EV 5

typedef struct trow {
    int64_t t;
    const char *d[ND];
    int64_t count;
    double sum, min, max; /* min = +inf / max = -inf: no latency */
    int user[MAX_EV];     /* the count events' users: "u<n>" */
    int nlat;
    double lat[MAX_EV]; /* the latencies in the quantiles sketch */
} trow;

#define MAX_ROWS 1000
static trow rows[MAX_ROWS];
static int nrows;

typedef struct fixture {
    char dir[64];
    char segdir[128];
    sl_config *cfg;
    sl_store *st;
    sl_sql_result *res;
    sl_err err;
    sl_buf buf;
} fixture;

static void gen_rows(void)
{
    static const char *const pages[] = {"/a", "/b", "/pricing", "/blog_1"};
    static const char *const countries[] = {"US", "DE", "FR"};
    static const char *const devices[] = {"mobile", "desktop", NULL};
    nrows = 0;
    for (int m = 0; m < NMIN; m++) {
        if (m % 7 == 3) {
            continue; /* some empty minutes */
        }
        for (int j = 0; j < 1 + m % 3; j++) {
            trow *r = &rows[nrows++];
            r->t = T0 + m * MIN;
            r->d[D_PAGE] = pages[(m + j) % 4];
            r->d[D_COUNTRY] = countries[(m * 3 + j) % 3];
            r->d[D_DEVICE] = devices[(m + 2 * j) % 3];
            r->count = 1 + (m * 7 + j * 3) % 5;
            r->nlat = 0;
            for (int k = 0; k < r->count; k++) {
                r->user[k] = (m * 5 + j * 11 + k * 7) % NUSERS;
                if ((m + k) % 4 != 0) {
                    r->lat[r->nlat++] = 5 + ((m * 13 + j * 7 + k * 3) % 97) * 0.5;
                }
            }
            if ((m + j) % 6 == 0) {
                r->sum = 0;
                r->min = INFINITY;
                r->max = -INFINITY;
            } else {
                r->sum = (double)r->count * (10 + (m % 13) * 0.5);
                r->min = 5 + ((m + j) % 9) * 0.5;
                r->max = r->min + 20 + j;
            }
        }
    }
}

static int setup(void **state)
{
    fixture *fx = sl_calloc(1, sizeof(*fx));
    sl_err err;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_sql_test.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    snprintf(fx->segdir, sizeof(fx->segdir), "%s/segments", fx->dir);
    fx->cfg = sl_calloc(1, sizeof(sl_config));
    sl_spec *spec;
    if (sl_spec_parse(SPEC, strlen(SPEC), "test", &spec, &err) != 0) {
        fprintf(stderr, "spec: %s\n", err.msg);
        return -1;
    }
    fx->cfg->datasources[fx->cfg->ndatasources++] = spec;
    sl_buf_init(&fx->buf);
    gen_rows();
    sl_store *w;
    sl_store_txn *t;
    if (sl_store_open(&w, fx->segdir, false, 16, 64, &err) != 0 ||
        sl_store_begin(w, &t, &err) != 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    sl_buf hb, qb;
    sl_buf_init(&hb);
    sl_buf_init(&qb);
    for (int i = 0; i < nrows; i++) {
        sl_row r = {
            .bucket_ms = rows[i].t, .ndims = ND, .count = (uint64_t)rows[i].count, .nvalues = 5};
        sl_hll *h = sl_hll_new();
        sl_dds *q = sl_dds_new();
        for (int k = 0; k < rows[i].count; k++) {
            char id[16];
            int n = snprintf(id, sizeof(id), "u%d", rows[i].user[k]);
            sl_hll_add(h, id, (size_t)n);
        }
        for (int k = 0; k < rows[i].nlat; k++) {
            if (sl_dds_add(q, rows[i].lat[k], &err) != 0) {
                return -1;
            }
        }
        sl_buf_reset(&hb);
        sl_buf_reset(&qb);
        sl_hll_serialize(h, &hb);
        sl_dds_serialize(q, &qb);
        sl_hll_free(h);
        sl_dds_free(q);
        r.sketches[3] = (sl_str){hb.data, hb.len};
        if (rows[i].nlat > 0) {
            r.sketches[4] = (sl_str){qb.data, qb.len};
        }
        for (int k = 0; k < ND; k++) {
            r.dims[k].p = rows[i].d[k];
            r.dims[k].len = rows[i].d[k] != NULL ? strlen(rows[i].d[k]) : 0;
        }
        r.values[0] = rows[i].sum;
        r.values[1] = rows[i].min;
        r.values[2] = rows[i].max;
        if (sl_store_merge_row(t, spec, &r, &err) != 0) {
            fprintf(stderr, "merge: %s\n", err.msg);
            return -1;
        }
    }
    sl_buf_fini(&hb);
    sl_buf_fini(&qb);
    if (sl_store_commit(t, &err) != 0) {
        return -1;
    }
    sl_store_close(w);
    if (sl_store_open(&fx->st, fx->segdir, true, 16, 64, &err) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[200];
    sl_sql_result_free(fx->res);
    sl_store_close(fx->st);
    sl_buf_fini(&fx->buf);
    sl_spec_free(fx->cfg->datasources[0]);
    free(fx->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int run_p(fixture *fx, const sl_sql_value *params, int n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Runs a statement; returns its sl_err code (0: fx->res holds the result). */
static int run_p(fixture *fx, const sl_sql_value *params, int n, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    sl_sql_result_free(fx->res);
    fx->res = NULL;
    sl_sql_opts o = {.params = params, .nparams = n, .now_ms = NOW};
    memset(&fx->err, 0, sizeof(fx->err));
    int rc = sl_sql_run(fx->cfg, fx->st, sql, &o, &fx->res, &fx->err);
    if (rc != 0) {
        fprintf(stderr, "  [%s] -> %d %s\n", sql, rc, fx->err.msg);
    }
    return rc;
}

#define run(fx, ...) run_p(fx, NULL, 0, __VA_ARGS__)
#define ok(fx, ...) assert_int_equal(run(fx, __VA_ARGS__), 0)

static size_t nres(fixture *fx)
{
    return sl_sql_result_nrows(fx->res);
}

static int64_t cell_l(fixture *fx, size_t r, int c)
{
    const sl_sql_value *v = sl_sql_result_cell(fx->res, r, c);
    assert_true(v->kind == SL_SQLV_LONG || v->kind == SL_SQLV_TIME);
    return v->i;
}

static double cell_d(fixture *fx, size_t r, int c)
{
    const sl_sql_value *v = sl_sql_result_cell(fx->res, r, c);
    assert_int_equal(v->kind, SL_SQLV_DOUBLE);
    return v->d;
}

static bool cell_null(fixture *fx, size_t r, int c)
{
    return sl_sql_result_cell(fx->res, r, c)->kind == SL_SQLV_NULL;
}

static void cell_s(fixture *fx, size_t r, int c, const char *want)
{
    const sl_sql_value *v = sl_sql_result_cell(fx->res, r, c);
    if (want == NULL) {
        assert_int_equal(v->kind, SL_SQLV_NULL);
        return;
    }
    assert_int_equal(v->kind, SL_SQLV_STR);
    char buf[4096];
    snprintf(buf, sizeof(buf), "%.*s", (int)v->n, v->s);
    assert_string_equal(buf, want);
}

/* Runs sql expecting error code with every needle in the message. */
static void fails(fixture *fx, int code, const char *sql, const char *n1, const char *n2)
{
    int rc = run(fx, "%s", sql);
    if (rc != code || (n1 != NULL && strstr(fx->err.msg, n1) == NULL) ||
        (n2 != NULL && strstr(fx->err.msg, n2) == NULL)) {
        fprintf(stderr, "want %d with \"%s\" \"%s\", got %d: %s\n", code, n1 ? n1 : "",
                n2 ? n2 : "", rc, fx->err.msg);
        fail();
    }
}

static int64_t count_where(bool (*pred)(const trow *))
{
    int64_t n = 0;
    for (int i = 0; i < nrows; i++) {
        if (pred == NULL || pred(&rows[i])) {
            n += rows[i].count;
        }
    }
    return n;
}

static int64_t count_sql(fixture *fx, const char *where)
{
    assert_int_equal(run(fx, "SELECT COUNT(*) FROM ev WHERE %s", where), 0);
    assert_int_equal(nres(fx), 1);
    return cell_l(fx, 0, 0);
}

static bool s_eq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* ---- the seed query and time buckets -------------------------------------------------------- */

static void seed_query_verbatim(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT\nTUMBLE_START(event_time, INTERVAL '1' MINUTE) AS window_start,\nCOUNT(*) AS "
           "page_views\nFROM ev\nGROUP BY TUMBLE(event_time, INTERVAL '1' MINUTE);");
    assert_string_equal(sl_sql_result_name(fx->res, 0), "window_start");
    assert_string_equal(sl_sql_result_name(fx->res, 1), "page_views");
    assert_int_equal(sl_sql_result_type(fx->res, 0), SL_SQL_TIMESTAMP);
    assert_int_equal(sl_sql_result_type(fx->res, 1), SL_SQL_BIGINT);
    size_t k = 0;
    for (int m = 0; m < NMIN; m++) {
        int64_t n = 0;
        for (int i = 0; i < nrows; i++) {
            n += rows[i].t == T0 + m * MIN ? rows[i].count : 0;
        }
        if (n == 0) {
            continue; /* empty minutes are not rows */
        }
        assert_true(k < nres(fx));
        assert_int_equal(cell_l(fx, k, 0), T0 + m * MIN);
        assert_int_equal(cell_l(fx, k, 1), n);
        k++;
    }
    assert_int_equal(k, nres(fx));
}

static void seed_query_plan(void **state)
{
    fixture *fx = *state;
    sl_sql_opts o = {.now_ms = NOW};
    assert_int_equal(sl_sql_plan_native(fx->cfg,
                                        "SELECT TUMBLE_START(event_time, INTERVAL '1' MINUTE) AS "
                                        "window_start, COUNT(*) AS page_views FROM ev GROUP BY "
                                        "TUMBLE(event_time, INTERVAL '1' MINUTE)",
                                        &o, &fx->buf, &fx->err),
                     0);
    sl_buf_append(&fx->buf, "", 1);
    assert_string_equal(
        fx->buf.data,
        "{\"queryType\":\"timeseries\",\"dataSource\":\"ev\",\"intervals\":[\"0000-01-01T00:00:00."
        "000Z/9999-12-31T23:59:59.999Z\"],\"granularity\":{\"type\":\"duration\",\"duration\":"
        "60000},\"aggregations\":[{\"type\":\"count\",\"name\":\"a0\"}],\"context\":{"
        "\"skipEmptyBuckets\":true}}");
}

/* Brute force per bucket of width w (origin 0) over rows matching pred. */
typedef struct bucket {
    int64_t t, count;
    double sum, min, max;
} bucket;

static int buckets(int64_t w, bucket *out)
{
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        int64_t b = rows[i].t - rows[i].t % w;
        if (n == 0 || out[n - 1].t != b) {
            out[n++] = (bucket){b, 0, 0, INFINITY, -INFINITY};
        }
        bucket *x = &out[n - 1];
        x->count += rows[i].count;
        x->sum += rows[i].sum;
        x->min = fmin(x->min, rows[i].min);
        x->max = fmax(x->max, rows[i].max);
    }
    return n;
}

static void check_buckets(fixture *fx, int64_t w)
{
    bucket b[MAX_ROWS];
    int n = buckets(w, b);
    assert_int_equal(nres(fx), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cell_l(fx, (size_t)i, 0), b[i].t);
        assert_int_equal(cell_l(fx, (size_t)i, 1), b[i].count);
    }
}

static void time_buckets(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT TIME_FLOOR(__time, 'PT5M') AS t, COUNT(*) FROM ev GROUP BY 1");
    check_buckets(fx, 5 * MIN);
    ok(fx, "SELECT FLOOR(__time TO HOUR), COUNT(*) FROM ev GROUP BY FLOOR(__time TO HOUR)");
    check_buckets(fx, HOUR);
    ok(fx, "SELECT DATE_TRUNC('hour', event_time) AS h, COUNT(*) AS n FROM ev GROUP BY h");
    check_buckets(fx, HOUR);
    ok(fx, "SELECT __time, COUNT(*) FROM ev GROUP BY __time ORDER BY __time");
    check_buckets(fx, MIN);
    /* TUMBLE_END is the exclusive end */
    ok(fx, "SELECT TUMBLE_START(__time, INTERVAL '15' MINUTE), COUNT(*), TUMBLE_END(__time, "
           "INTERVAL '15' MINUTE) FROM ev GROUP BY TUMBLE(__time, INTERVAL '15' MINUTE)");
    check_buckets(fx, 15 * MIN);
    for (size_t i = 0; i < nres(fx); i++) {
        assert_int_equal(cell_l(fx, i, 2), cell_l(fx, i, 0) + 15 * MIN);
    }
}

static void hop_windows(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT HOP_START(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE) AS s, "
           "HOP_END(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE) AS e, COUNT(*) AS n, "
           "SUM(lat) AS total, MIN(lat) AS lo, MAX(lat) AS hi FROM ev "
           "GROUP BY HOP(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE)");
    /* windows [2k min, 2k + 5 min) holding at least one row */
    size_t r = 0;
    for (int64_t k = -3; k * 2 < NMIN; k++) {
        int64_t s = T0 + k * 2 * MIN, e = s + 5 * MIN, n = 0;
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < nrows; i++) {
            if (rows[i].t >= s && rows[i].t < e) {
                n += rows[i].count;
                sum += rows[i].sum;
                lo = fmin(lo, rows[i].min);
                hi = fmax(hi, rows[i].max);
            }
        }
        if (n == 0) {
            continue;
        }
        assert_true(r < nres(fx));
        assert_int_equal(cell_l(fx, r, 0), s);
        assert_int_equal(cell_l(fx, r, 1), e);
        assert_int_equal(cell_l(fx, r, 2), n);
        assert_true(fabs(cell_d(fx, r, 3) - sum) < 1e-9);
        if (isinf(lo)) {
            assert_true(cell_null(fx, r, 4));
        } else {
            assert_true(cell_d(fx, r, 4) == lo);
            assert_true(cell_d(fx, r, 5) == hi);
        }
        r++;
    }
    assert_int_equal(r, nres(fx));
    /* HOP with a dimension: per window and country */
    ok(fx, "SELECT HOP_START(__time, INTERVAL '10' MINUTE, INTERVAL '30' MINUTE), country, "
           "COUNT(*) FROM ev WHERE country = 'FR' GROUP BY HOP(__time, INTERVAL '10' MINUTE, "
           "INTERVAL '30' MINUTE), country");
    for (size_t i = 0; i < nres(fx); i++) {
        int64_t s = cell_l(fx, i, 0), n = 0;
        for (int j = 0; j < nrows; j++) {
            n += rows[j].t >= s && rows[j].t < s + 30 * MIN && s_eq(rows[j].d[D_COUNTRY], "FR")
                     ? rows[j].count
                     : 0;
        }
        cell_s(fx, i, 1, "FR");
        assert_int_equal(cell_l(fx, i, 2), n);
    }
    assert_int_equal(nres(fx), 15); /* windows starting -20 min .. +120 min */
}

/* ---- aggregates -------------------------------------------------------------------------------
 */

static void aggregates(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT COUNT(*), SUM(lat), MIN(lat), MAX(lat), AVG(lat), SUM(lat_sum), "
           "MIN(lat_min), SUM(\"count\"), COUNT(device), AVG(\"count\") FROM ev");
    int64_t n = 0, with_dev = 0, stored = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < nrows; i++) {
        n += rows[i].count;
        sum += rows[i].sum;
        lo = fmin(lo, rows[i].min);
        hi = fmax(hi, rows[i].max);
        with_dev += rows[i].d[D_DEVICE] != NULL ? rows[i].count : 0;
        stored++;
    }
    assert_int_equal(nres(fx), 1);
    assert_int_equal(cell_l(fx, 0, 0), n);
    assert_true(fabs(cell_d(fx, 0, 1) - sum) < 1e-9);
    assert_true(cell_d(fx, 0, 2) == lo);
    assert_true(cell_d(fx, 0, 3) == hi);
    assert_true(fabs(cell_d(fx, 0, 4) - sum / (double)n) < 1e-12);
    assert_true(fabs(cell_d(fx, 0, 5) - sum) < 1e-9);
    assert_true(cell_d(fx, 0, 6) == lo);
    assert_int_equal(cell_l(fx, 0, 7), n);
    assert_int_equal(cell_l(fx, 0, 8), with_dev);
    assert_int_equal(cell_l(fx, 0, 9), 1); /* BIGINT AVG: n / n */
    assert_int_equal(sl_sql_result_type(fx->res, 4), SL_SQL_DOUBLE);
    assert_int_equal(sl_sql_result_type(fx->res, 7), SL_SQL_BIGINT);
    /* expressions over aggregates */
    ok(fx, "SELECT SUM(lat) / COUNT(*) AS a, COUNT(*) * 2 + 1 AS b, COUNT(*) / 2 AS c, "
           "CAST(COUNT(*) AS DOUBLE) / 2 AS d FROM ev");
    assert_true(fabs(cell_d(fx, 0, 0) - sum / (double)n) < 1e-12);
    assert_int_equal(cell_l(fx, 0, 1), n * 2 + 1);
    assert_int_equal(cell_l(fx, 0, 2), n / 2);
    assert_true(cell_d(fx, 0, 3) == (double)n / 2);
    /* nothing matches: COUNT 0, MIN null, AVG null */
    ok(fx, "SELECT COUNT(*), MIN(lat), AVG(lat) FROM ev WHERE page = 'nope'");
    assert_int_equal(nres(fx), 1);
    assert_int_equal(cell_l(fx, 0, 0), 0);
    assert_true(cell_null(fx, 0, 1));
    assert_true(cell_null(fx, 0, 2));
    /* MIN / MAX of __time are a timeBoundary query */
    ok(fx, "SELECT MIN(__time), MAX(__time) FROM ev");
    assert_int_equal(cell_l(fx, 0, 0), rows[0].t);
    assert_int_equal(cell_l(fx, 0, 1), rows[nrows - 1].t);
    ok(fx, "SELECT MAX(__time) FROM ev WHERE country = 'US' AND __time < TIMESTAMP "
           "'2025-06-11 01:00:00'");
    int64_t mx = 0;
    for (int i = 0; i < nrows; i++) {
        if (s_eq(rows[i].d[D_COUNTRY], "US") && rows[i].t < T0 + HOUR && rows[i].t > mx) {
            mx = rows[i].t;
        }
    }
    assert_int_equal(cell_l(fx, 0, 0), mx);
}

/* ---- sketches ------------------------------------------------------------------------------- */

typedef bool (*rowpred)(const trow *r);

/* Exact distinct users and sorted latencies over the rows matching p (NULL: all). */
static int exact_users(rowpred p)
{
    bool seen[NUSERS] = {false};
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        if (p != NULL && !p(&rows[i])) {
            continue;
        }
        for (int k = 0; k < rows[i].count; k++) {
            n += !seen[rows[i].user[k]];
            seen[rows[i].user[k]] = true;
        }
    }
    return n;
}

static int cmp_dbl(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The exact q-quantile (docs/api.md: the value of 0-based rank floor(q * (n - 1))) of
 * the latencies of the rows matching p; NaN when there are none. */
static double exact_quantile(rowpred p, double q)
{
    static double v[MAX_ROWS * MAX_EV];
    size_t n = 0;
    for (int i = 0; i < nrows; i++) {
        if (p == NULL || p(&rows[i])) {
            for (int k = 0; k < rows[i].nlat; k++) {
                v[n++] = rows[i].lat[k];
            }
        }
    }
    if (n == 0) {
        return NAN;
    }
    qsort(v, n, sizeof(double), cmp_dbl);
    return v[(size_t)floor(q * (double)(n - 1))];
}

/* Within the quantiles sketch's documented relative accuracy. */
static void near_quantile(double got, double want)
{
    if (!(fabs(got - want) <= SL_DDS_ALPHA * want + 1e-12)) {
        fail_msg("quantile %.10g, exact %.10g: off by more than %g", got, want, SL_DDS_ALPHA);
    }
}

static int64_t cur_minute;
static bool in_cur_minute(const trow *r)
{
    return r->t == cur_minute;
}

static const char *cur_country;
static bool in_cur_country(const trow *r)
{
    return s_eq(r->d[D_COUNTRY], cur_country);
}

static bool us_first_hour(const trow *r)
{
    return s_eq(r->d[D_COUNTRY], "US") && r->t < T0 + HOUR;
}

static void sketches(void **state)
{
    fixture *fx = *state;
    /* a few dozen users: the distinct-count sketch is still exact (sparse) */
    ok(fx,
       "SELECT COUNT(DISTINCT user_id), APPROX_COUNT_DISTINCT(user_id), "
       "APPROX_COUNT_DISTINCT(users), COUNT(DISTINCT page), APPROX_QUANTILE(lat, 0.5), "
       "APPROX_QUANTILE(lat_q, 0.95), APPROX_QUANTILE(lat, 0), APPROX_QUANTILE(lat, 1) FROM ev");
    assert_int_equal(nres(fx), 1);
    assert_int_equal(sl_sql_result_type(fx->res, 0), SL_SQL_BIGINT);
    assert_int_equal(sl_sql_result_type(fx->res, 4), SL_SQL_DOUBLE);
    int users = exact_users(NULL);
    assert_int_equal(cell_l(fx, 0, 0), users);
    assert_int_equal(cell_l(fx, 0, 1), users);
    assert_int_equal(cell_l(fx, 0, 2), users);
    assert_int_equal(cell_l(fx, 0, 3), 4);
    near_quantile(cell_d(fx, 0, 4), exact_quantile(NULL, 0.5));
    near_quantile(cell_d(fx, 0, 5), exact_quantile(NULL, 0.95));
    assert_true(cell_d(fx, 0, 6) == exact_quantile(NULL, 0)); /* min and max are exact */
    assert_true(cell_d(fx, 0, 7) == exact_quantile(NULL, 1));

    /* per minute (the seed query's window) with a filter */
    ok(fx, "SELECT TUMBLE_START(__time, INTERVAL '1' MINUTE) AS t, COUNT(DISTINCT user_id) AS u, "
           "APPROX_QUANTILE(lat, 0.95) AS p95, COUNT(*) AS n FROM ev WHERE __time < TIMESTAMP "
           "'2025-06-11 01:00:00' GROUP BY TUMBLE(__time, INTERVAL '1' MINUTE)");
    size_t k = 0;
    for (int m = 0; m < 60; m++) {
        cur_minute = T0 + m * MIN;
        if (m % 7 == 3) {
            continue;
        }
        assert_true(k < nres(fx));
        assert_int_equal(cell_l(fx, k, 0), cur_minute);
        assert_int_equal(cell_l(fx, k, 1), exact_users(in_cur_minute));
        double want = exact_quantile(in_cur_minute, 0.95);
        if (isnan(want)) {
            assert_true(cell_null(fx, k, 2)); /* no latency in that minute */
        } else {
            near_quantile(cell_d(fx, k, 2), want);
        }
        k++;
    }
    assert_int_equal(nres(fx), k);

    /* GROUP BY, HAVING and ORDER BY on the sketch results */
    ok(fx,
       "SELECT country, COUNT(DISTINCT user_id) AS u, APPROX_QUANTILE(lat_q, 0.5) AS med FROM "
       "ev GROUP BY country HAVING COUNT(DISTINCT user_id) > 3 ORDER BY u DESC, country LIMIT 2");
    static const char *const cs[] = {"US", "DE", "FR"};
    int cu[3];
    for (int c = 0; c < 3; c++) {
        cur_country = cs[c];
        cu[c] = exact_users(in_cur_country);
    }
    assert_int_equal(nres(fx), 2);
    int prev = 1 << 30;
    for (size_t i = 0; i < 2; i++) {
        const sl_sql_value *v = sl_sql_result_cell(fx->res, i, 0);
        char c[8];
        snprintf(c, sizeof(c), "%.*s", (int)v->n, v->s);
        int ci = strcmp(c, "US") == 0 ? 0 : strcmp(c, "DE") == 0 ? 1 : 2;
        cur_country = cs[ci];
        assert_int_equal(cell_l(fx, i, 1), cu[ci]);
        assert_true(cu[ci] <= prev);
        prev = cu[ci];
        near_quantile(cell_d(fx, i, 2), exact_quantile(in_cur_country, 0.5));
    }
    ok(fx, "SELECT APPROX_COUNT_DISTINCT(user_id) FROM ev WHERE country = 'US' AND __time < "
           "TIMESTAMP '2025-06-11 01:00:00'");
    assert_int_equal(cell_l(fx, 0, 0), exact_users(us_first_hour));

    /* nothing matches: a distinct count of 0 and no quantile */
    ok(fx, "SELECT COUNT(DISTINCT user_id), APPROX_QUANTILE(lat, 0.5) FROM ev WHERE page = 'nope'");
    assert_int_equal(cell_l(fx, 0, 0), 0);
    assert_true(cell_null(fx, 0, 1));

    /* the plan: Druid's aggregators over the sketch metrics */
    sl_sql_opts o = {.now_ms = NOW};
    assert_int_equal(sl_sql_plan_native(fx->cfg,
                                        "SELECT COUNT(DISTINCT user_id), APPROX_QUANTILE(lat, 0.9) "
                                        "FROM ev",
                                        &o, &fx->buf, &fx->err),
                     0);
    sl_buf_append(&fx->buf, "", 1);
    assert_non_null(strstr(fx->buf.data, "{\"type\":\"HLLSketchMerge\",\"name\":\"a0\","
                                         "\"fieldName\":\"users\",\"round\":true}"));
    assert_non_null(strstr(fx->buf.data, "{\"type\":\"quantilesDoublesSketch\",\"name\":"
                                         "\"a1:agg\",\"fieldName\":\"lat_q\"}"));
    assert_non_null(strstr(fx->buf.data, "\"postAggregations\":[{\"type\":"
                                         "\"quantilesDoublesSketchToQuantile\",\"name\":\"a1\","
                                         "\"field\":{\"type\":\"fieldAccess\",\"fieldName\":"
                                         "\"a1:agg\"},\"fraction\":0.9"));

    /* what cannot be asked of a sketch, or of a field without one */
    fails(fx, SL_EINVAL, "SELECT SUM(users) FROM ev",
          "SUM(users) (line 1, column 8) is not supported",
          "users holds a distinct-count sketch (HyperLogLog); use APPROX_COUNT_DISTINCT(users)");
    fails(fx, SL_EINVAL, "SELECT AVG(lat_q) FROM ev", "lat_q holds a quantiles sketch (DDSketch)",
          "APPROX_QUANTILE");
    fails(
        fx, SL_EINVAL, "SELECT APPROX_QUANTILE(lat_sum, 0.5) FROM ev",
        "APPROX_QUANTILE(lat_sum, 0.5) (line 1, column 24) needs a quantiles sketch: lat_sum is a "
        "rolled-up sum, min or max",
        "quantiles are kept for: lat, lat_q");
    fails(fx, SL_EINVAL, "SELECT APPROX_QUANTILE(users, 0.5) FROM ev",
          "users is a distinct-count "
          "sketch",
          NULL);
    fails(fx, SL_EINVAL, "SELECT APPROX_QUANTILE(\"count\", 0.5) FROM ev", "is the event count",
          NULL);
    fails(fx, SL_EINVAL, "SELECT APPROX_QUANTILE(user_id, 0.5) FROM ev",
          "needs a quantiles sketch of user_id, which ev does not keep", NULL);
    fails(fx, SL_EINVAL, "SELECT APPROX_QUANTILE(lat, 1.5) FROM ev",
          "the fraction must be a number between 0 and 1", NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(DISTINCT lat_q) FROM ev", "lat_q is a quantiles sketch",
          NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(DISTINCT lat_sum) FROM ev", "a rolled-up metric", NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(DISTINCT lat) FROM ev", "was not kept by rollup",
          "APPROX_QUANTILE(lat, q)");
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev WHERE users = 'x'", "'users'", "is a metric");
    fails(fx, SL_EINVAL,
          "SELECT COUNT(DISTINCT page) FROM ev GROUP BY HOP(__time, INTERVAL '1' MINUTE, "
          "INTERVAL '2' MINUTE)",
          "overlapping HOP", NULL);
    fails(fx, SL_EINVAL,
          "SELECT APPROX_QUANTILE(lat, 0.5) FROM ev GROUP BY HOP(__time, INTERVAL '1' MINUTE, "
          "INTERVAL '2' MINUTE)",
          "overlapping HOP", NULL);
}

/* ---- filters ------------------------------------------------------------------------------------
 */

static bool f_us(const trow *r)
{
    return s_eq(r->d[D_COUNTRY], "US");
}
static bool f_not_us(const trow *r)
{
    return r->d[D_COUNTRY] != NULL && !s_eq(r->d[D_COUNTRY], "US");
}
static bool f_in(const trow *r)
{
    return s_eq(r->d[D_PAGE], "/a") || s_eq(r->d[D_PAGE], "/pricing");
}
static bool f_not_in(const trow *r)
{
    return !f_in(r);
}
static bool f_like(const trow *r)
{
    return r->d[D_PAGE] != NULL && strncmp(r->d[D_PAGE], "/b", 2) == 0;
}
static bool f_like_esc(const trow *r)
{
    return s_eq(r->d[D_PAGE], "/blog_1");
}
static bool f_null(const trow *r)
{
    return r->d[D_DEVICE] == NULL;
}
static bool f_notnull(const trow *r)
{
    return r->d[D_DEVICE] != NULL;
}
static bool f_ne_dev(const trow *r)
{
    return r->d[D_DEVICE] != NULL && !s_eq(r->d[D_DEVICE], "mobile");
}
static bool f_between(const trow *r)
{
    return strcmp(r->d[D_PAGE], "/a") >= 0 && strcmp(r->d[D_PAGE], "/b") <= 0;
}
static bool f_lt(const trow *r)
{
    return strcmp(r->d[D_COUNTRY], "FR") < 0;
}
static bool f_or_not(const trow *r)
{
    /* NOT (device = 'mobile' OR country = 'DE'): null device makes the OR unknown unless
     * country = 'DE' decides it */
    bool dev_m = s_eq(r->d[D_DEVICE], "mobile"), de = s_eq(r->d[D_COUNTRY], "DE");
    if (dev_m || de) {
        return false;
    }
    return r->d[D_DEVICE] != NULL; /* FALSE OR FALSE only when device is known */
}
static bool f_time(const trow *r)
{
    return r->t >= T0 + 30 * MIN && r->t < T0 + HOUR;
}
static bool f_time_between(const trow *r)
{
    return r->t >= T0 + 10 * MIN && r->t <= T0 + 20 * MIN;
}
static bool f_time_or(const trow *r)
{
    return (r->t < T0 + 5 * MIN || r->t >= T0 + 2 * HOUR) && s_eq(r->d[D_COUNTRY], "DE");
}
static bool f_recent(const trow *r)
{
    return r->t >= NOW - HOUR;
}
static bool f_time_in(const trow *r)
{
    return r->t == T0 + MIN || r->t == T0 + 2 * MIN;
}

static void filters(void **state)
{
    fixture *fx = *state;
    assert_int_equal(count_sql(fx, "country = 'US'"), count_where(f_us));
    assert_int_equal(count_sql(fx, "'US' = country"), count_where(f_us));
    assert_int_equal(count_sql(fx, "country <> 'US'"), count_where(f_not_us));
    assert_int_equal(count_sql(fx, "NOT country = 'US'"), count_where(f_not_us));
    assert_int_equal(count_sql(fx, "page IN ('/a', '/pricing')"), count_where(f_in));
    assert_int_equal(count_sql(fx, "page NOT IN ('/a', '/pricing')"), count_where(f_not_in));
    assert_int_equal(count_sql(fx, "page NOT IN ('/a', NULL)"), 0);
    assert_int_equal(count_sql(fx, "page LIKE '/b%'"), count_where(f_like));
    assert_int_equal(count_sql(fx, "page LIKE '/blog!_%' ESCAPE '!'"), count_where(f_like_esc));
    assert_int_equal(count_sql(fx, "page NOT LIKE '/b%'"), count_where(NULL) - count_where(f_like));
    assert_int_equal(count_sql(fx, "device IS NULL"), count_where(f_null));
    assert_int_equal(count_sql(fx, "device IS NOT NULL"), count_where(f_notnull));
    assert_int_equal(count_sql(fx, "device <> 'mobile'"), count_where(f_ne_dev));
    assert_int_equal(count_sql(fx, "page BETWEEN '/a' AND '/b'"), count_where(f_between));
    assert_int_equal(count_sql(fx, "country < 'FR'"), count_where(f_lt));
    assert_int_equal(count_sql(fx, "NOT (device = 'mobile' OR country = 'DE')"),
                     count_where(f_or_not));
    assert_int_equal(count_sql(fx, "country = 'US' OR page IN ('/a', '/pricing')"),
                     count_where(f_us) + count_where(f_in) -
                         count_sql(fx, "country = 'US' AND page IN ('/a', '/pricing')"));
    assert_int_equal(count_sql(fx, "1 = 1"), count_where(NULL));
    assert_int_equal(count_sql(fx, "1 = 0"), 0);
    assert_int_equal(count_sql(fx, "country = NULL"), 0);
    /* time conditions become intervals */
    assert_int_equal(count_sql(fx, "__time >= TIMESTAMP '2025-06-11 00:30:00' AND event_time < "
                                   "'2025-06-11T01:00:00Z'"),
                     count_where(f_time));
    assert_int_equal(count_sql(fx, "__time BETWEEN TIME_PARSE('2025-06-11T00:10:00Z') AND "
                                   "TIMESTAMP '2025-06-11 00:20:00'"),
                     count_where(f_time_between));
    assert_int_equal(count_sql(fx, "(__time < TIMESTAMP '2025-06-11 00:05:00' OR __time >= "
                                   "TIMESTAMP '2025-06-11 02:00:00') AND country = 'DE'"),
                     count_where(f_time_or));
    assert_int_equal(count_sql(fx, "__time >= CURRENT_TIMESTAMP - INTERVAL '1' HOUR"),
                     count_where(f_recent));
    assert_int_equal(count_sql(fx, "__time IN (TIMESTAMP '2025-06-11 00:01:00', TIMESTAMP "
                                   "'2025-06-11 00:02:00')"),
                     count_where(f_time_in));
    assert_int_equal(count_sql(fx, "__time < TIMESTAMP '2025-06-11 00:00:00'"), 0);
    assert_int_equal(count_sql(fx, "__time = TIMESTAMP '2025-06-11 00:30:00' AND __time = "
                                   "TIMESTAMP '2025-06-11 00:31:00'"),
                     0);
    sl_sql_opts o = {.now_ms = NOW};
    assert_int_equal(sl_sql_plan_native(fx->cfg,
                                        "SELECT COUNT(*) FROM ev WHERE __time >= TIMESTAMP "
                                        "'2025-06-11 00:30:00' AND __time < TIMESTAMP "
                                        "'2025-06-11 01:00:00' AND country <> 'US'",
                                        &o, &fx->buf, &fx->err),
                     0);
    sl_buf_append(&fx->buf, "", 1);
    assert_non_null(strstr(fx->buf.data, "\"intervals\":[\"2025-06-11T00:30:00.000Z/"
                                         "2025-06-11T01:00:00.000Z\"]"));
    assert_non_null(strstr(fx->buf.data,
                           "\"filter\":{\"type\":\"and\",\"fields\":[{\"type\":\"not\",\"field\":"
                           "{\"type\":\"selector\",\"dimension\":\"country\",\"value\":\"US\"}},"
                           "{\"type\":\"not\",\"field\":{\"type\":\"null\",\"column\":"
                           "\"country\"}}]}"));
}

/* ---- grouping, ordering, limits
 * ------------------------------------------------------------------ */

static void group_order_limit(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT page, COUNT(*) AS n FROM ev GROUP BY page ORDER BY n DESC, page LIMIT 3");
    /* brute force: counts per page */
    static const char *const pages[] = {"/a", "/b", "/pricing", "/blog_1"};
    int64_t cnt[4] = {0};
    for (int i = 0; i < nrows; i++) {
        for (int p = 0; p < 4; p++) {
            cnt[p] += s_eq(rows[i].d[D_PAGE], pages[p]) ? rows[i].count : 0;
        }
    }
    assert_int_equal(nres(fx), 3);
    for (size_t r = 0; r < 3; r++) {
        int best = -1;
        for (int p = 0; p < 4; p++) {
            bool used = false;
            for (size_t q = 0; q < r; q++) {
                const sl_sql_value *v = sl_sql_result_cell(fx->res, q, 0);
                used = used || (v->n == strlen(pages[p]) && memcmp(v->s, pages[p], v->n) == 0);
            }
            if (!used && (best < 0 || cnt[p] > cnt[best] ||
                          (cnt[p] == cnt[best] && strcmp(pages[p], pages[best]) < 0))) {
                best = p;
            }
        }
        cell_s(fx, r, 0, pages[best]);
        assert_int_equal(cell_l(fx, r, 1), cnt[best]);
    }
    /* OFFSET, ordinals, HAVING, an expression in ORDER BY (sorted in the SQL layer) */
    ok(fx, "SELECT page, COUNT(*) FROM ev GROUP BY 1 HAVING COUNT(*) > 0 ORDER BY 2 DESC, 1 "
           "LIMIT 2 OFFSET 1");
    assert_int_equal(nres(fx), 2);
    ok(fx, "SELECT country, device, SUM(lat) AS s FROM ev GROUP BY country, device HAVING "
           "SUM(lat) > 1000 AND country <> 'DE' ORDER BY SUM(lat) / COUNT(*) DESC");
    double prev = INFINITY;
    for (size_t r = 0; r < nres(fx); r++) {
        const sl_sql_value *c = sl_sql_result_cell(fx->res, r, 0);
        assert_false(c->n == 2 && memcmp(c->s, "DE", 2) == 0);
        assert_true(cell_d(fx, r, 2) > 1000);
        (void)prev;
    }
    /* per-minute counts in descending time order, limited (timeseries descending + limit) */
    ok(fx, "SELECT FLOOR(__time TO MINUTE) AS m, COUNT(*) FROM ev GROUP BY 1 ORDER BY m DESC "
           "LIMIT 2");
    assert_int_equal(nres(fx), 2);
    assert_int_equal(cell_l(fx, 0, 0), rows[nrows - 1].t);
    assert_true(cell_l(fx, 1, 0) < cell_l(fx, 0, 0));
    /* SELECT DISTINCT is a GROUP BY */
    ok(fx, "SELECT DISTINCT country FROM ev ORDER BY country");
    assert_int_equal(nres(fx), 3);
    cell_s(fx, 0, 0, "DE");
    cell_s(fx, 1, 0, "FR");
    cell_s(fx, 2, 0, "US");
    /* a null group sorts first */
    ok(fx, "SELECT device, COUNT(*) FROM ev GROUP BY device ORDER BY device");
    assert_int_equal(nres(fx), 3);
    cell_s(fx, 0, 0, NULL);
    assert_int_equal(cell_l(fx, 0, 1), count_where(f_null));
    /* rows of the rollup: SELECT * */
    ok(fx, "SELECT * FROM ev WHERE __time < TIMESTAMP '2025-06-11 00:03:00' ORDER BY __time, "
           "page");
    assert_int_equal(sl_sql_result_ncols(fx->res), 10);
    assert_string_equal(sl_sql_result_name(fx->res, 0), "__time");
    assert_string_equal(sl_sql_result_name(fx->res, 4), "count");
    /* sketch columns: typed OTHER, shown as null (read them with their aggregates) */
    assert_string_equal(sl_sql_result_name(fx->res, 8), "users");
    assert_int_equal(sl_sql_result_type(fx->res, 8), SL_SQL_OTHER);
    assert_true(cell_null(fx, 0, 8));
    assert_true(cell_null(fx, 0, 9));
    int n3 = 0;
    for (int i = 0; i < nrows; i++) {
        n3 += rows[i].t < T0 + 3 * MIN;
    }
    assert_int_equal(nres(fx), n3);
    ok(fx, "SELECT page, \"count\" FROM ev LIMIT 4");
    assert_int_equal(nres(fx), 4);
}

static void params_and_literals(void **state)
{
    fixture *fx = *state;
    sl_sql_value p[3] = {{.kind = SL_SQLV_STR, .s = "US", .n = 2},
                         {.kind = SL_SQLV_TIME, .i = T0 + 30 * MIN},
                         {.kind = SL_SQLV_LONG, .i = 1}};
    assert_int_equal(
        run_p(fx, p, 3, "SELECT COUNT(*) FROM ev WHERE country = ? AND __time < ? LIMIT ?"), 0);
    int64_t n = 0;
    for (int i = 0; i < nrows; i++) {
        n += s_eq(rows[i].d[D_COUNTRY], "US") && rows[i].t < T0 + 30 * MIN ? rows[i].count : 0;
    }
    assert_int_equal(cell_l(fx, 0, 0), n);
    assert_int_equal(run_p(fx, p, 1, "SELECT COUNT(*) FROM ev WHERE country = ? AND page = ?"),
                     SL_EINVAL);
    assert_non_null(strstr(fx->err.msg, "Parameter 2 at line 1, column 54 has no value"));
    assert_int_equal(run_p(fx, p, 2, "SELECT COUNT(*) FROM ev WHERE country = ?"), SL_EINVAL);
    /* scalar expressions */
    ok(fx, "SELECT TIMESTAMP '2025-06-11 12:00:00' + INTERVAL '90' MINUTE, 7 / 2, 7.0 / 2, "
           "'a' || 'b', CAST('12' AS BIGINT) + 1, TIME_FLOOR(TIMESTAMP '2025-06-11 12:34:56', "
           "'PT15M'), DATE_TRUNC('day', TIMESTAMP '2025-06-11 12:34:56'), 1 / 0 FROM ev LIMIT 1");
    assert_int_equal(cell_l(fx, 0, 0), T0 + 13 * HOUR + 30 * MIN);
    assert_int_equal(cell_l(fx, 0, 1), 3);
    assert_true(cell_d(fx, 0, 2) == 3.5);
    cell_s(fx, 0, 3, "ab");
    assert_int_equal(cell_l(fx, 0, 4), 13);
    assert_int_equal(cell_l(fx, 0, 5), T0 + 12 * HOUR + 30 * MIN);
    assert_int_equal(cell_l(fx, 0, 6), T0);
    assert_true(cell_null(fx, 0, 7));
}

/* ---- INFORMATION_SCHEMA
 * --------------------------------------------------------------------------- */

static void information_schema(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA ORDER BY 1");
    assert_int_equal(nres(fx), 2);
    cell_s(fx, 0, 0, "INFORMATION_SCHEMA");
    cell_s(fx, 1, 0, "druid");
    ok(fx, "SELECT TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = "
           "'druid'");
    assert_int_equal(nres(fx), 1);
    cell_s(fx, 0, 0, "ev");
    cell_s(fx, 0, 1, "TABLE");
    ok(fx, "SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE, JDBC_TYPE FROM "
           "INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'druid' AND TABLE_NAME = 'ev' ORDER "
           "BY ORDINAL_POSITION");
    static const char *const names[] = {"__time",  "page",    "country", "device", "count",
                                        "lat_sum", "lat_min", "lat_max", "users",  "lat_q"};
    /* sketch columns are Druid COMPLEX columns: DATA_TYPE OTHER, JDBC type 1111 */
    static const char *const types[] = {"TIMESTAMP", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
                                        "DOUBLE",    "DOUBLE",  "DOUBLE",  "OTHER",   "OTHER"};
    static const int64_t jdbc[] = {93, 12, 12, 12, -5, 8, 8, 8, 1111, 1111};
    assert_int_equal(nres(fx), 10);
    for (size_t i = 0; i < 10; i++) {
        cell_s(fx, i, 0, names[i]);
        cell_s(fx, i, 1, types[i]);
        assert_int_equal(cell_l(fx, i, 2), (int64_t)i + 1);
        assert_int_equal(cell_l(fx, i, 4), jdbc[i]);
    }
    cell_s(fx, 0, 3, "NO");
    cell_s(fx, 1, 3, "YES");
    cell_s(fx, 5, 3, "NO");
    cell_s(fx, 8, 3, "YES");
    /* every DATA_TYPE is one Druid (and Superset) knows */
    ok(fx, "SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE DATA_TYPE NOT IN ('VARCHAR', "
           "'BIGINT', 'DOUBLE', 'FLOAT', 'TIMESTAMP', 'BOOLEAN', 'OTHER')");
    assert_int_equal(nres(fx), 0);
    ok(fx, "SELECT * FROM INFORMATION_SCHEMA.COLUMNS WHERE COLUMN_NAME LIKE 'lat%%'");
    assert_int_equal(nres(fx), 4);
}

/* ---- errors
 * --------------------------------------------------------------------------------------- */

static void errors(void **state)
{
    fixture *fx = *state;
    fails(fx, SL_EPARSE, "SELECT FROM ev", "Encountered \"FROM\" at line 1, column 8", NULL);
    fails(fx, SL_EPARSE, "SELECT page\nFROM ev\nWHERE page = ", "Encountered <EOF> at line 3",
          "expected an expression");
    fails(fx, SL_EPARSE, "SELECT 'abc FROM ev", "line 1, column 8", "string literal is not closed");
    fails(fx, SL_EPARSE, "SELECT page FROM ev WHERE page = 'a' GARBAGE", "\"GARBAGE\"",
          "line 1, column 38");
    fails(fx, SL_EPARSE, "SELECT # FROM ev", "unexpected character '#'", "column 8");
    fails(fx, SL_EINVAL, "SELECT nope FROM ev", "Column 'nope' not found in table 'ev'",
          "line 1, column 8");
    fails(fx, SL_EINVAL, "SELECT user_id FROM ev",
          "column user_id (line 1, column 8) was not kept "
          "by rollup: ev keeps dimensions page, country, device",
          "distinct counts of user_id are available as COUNT(DISTINCT user_id) and "
          "APPROX_COUNT_DISTINCT(user_id)");
    fails(fx, SL_EINVAL, "SELECT user_id, COUNT(*) FROM ev GROUP BY user_id",
          "was not kept by rollup", NULL);
    fails(fx, SL_EINVAL, "SELECT lat FROM ev", "was not kept by rollup", "SUM(lat)");
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM nope", "Table 'nope' not found", "datasources: ev");
    fails(fx, SL_EINVAL, "SELECT page, COUNT(*) FROM ev", "Expression 'page'", "not being grouped");
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev WHERE COUNT(*) > 1", "Aggregate in WHERE", NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev WHERE lat_sum > 1", "'lat_sum'", "is a metric");
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev WHERE __time > 5", "Cannot compare __time", NULL);
    fails(fx, SL_EINVAL,
          "SELECT COUNT(*) FROM ev WHERE __time > TIMESTAMP '2025-01-01' OR page = 'a'",
          "must be ANDed", NULL);
    fails(fx, SL_EINVAL, "SELECT UPPER(page) FROM ev", "Function UPPER", "not supported");
    fails(fx, SL_EINVAL,
          "SELECT TUMBLE_START(__time, INTERVAL '5' MINUTE), COUNT(*) FROM ev GROUP "
          "BY TUMBLE(__time, INTERVAL '1' MINUTE)",
          "does not match a GROUP BY TUMBLE", NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev GROUP BY TIME_FLOOR(__time, 'P1M')", "calendar",
          NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev a JOIN ev b ON a.page = b.page", "Joins", NULL);
    fails(fx, SL_EINVAL, "SELECT SUM(page) FROM ev", "VARCHAR dimension", NULL);
    fails(fx, SL_EINVAL, "SELECT COUNT(*) FROM ev GROUP BY lat_sum", "is a metric", NULL);
    fails(fx, SL_EINVAL, "SELECT x.page FROM ev", "Table 'x' not found", NULL);
    fails(fx, SL_EINVAL, "SELECT * FROM INFORMATION_SCHEMA.NOPE", "INFORMATION_SCHEMA.NOPE", NULL);
    fails(fx, SL_EINVAL, "SELECT page FROM ev HAVING page = 'a'", "not being grouped", NULL);
}

/* ---- result formats
 * -------------------------------------------------------------------------------- */

static void check_format(fixture *fx, sl_sql_format f, bool h, bool t, bool s, const char *want)
{
    sl_sql_result_write(fx->res, f, h, t, s, &fx->buf);
    sl_buf_append(&fx->buf, "", 1);
    assert_string_equal(fx->buf.data, want);
}

static void result_formats(void **state)
{
    fixture *fx = *state;
    ok(fx, "SELECT TIMESTAMP '2025-06-11 12:00:00' AS t, 'a,\"b\"' AS s, 2 AS n, 1.5 AS d, "
           "NULL AS z, 12345678.0 AS big FROM ev LIMIT 1");
    check_format(fx, SL_SQL_OBJECT, false, false, false,
                 "[{\"t\":\"2025-06-11T12:00:00.000Z\",\"s\":\"a,\\\"b\\\"\",\"n\":2,\"d\":1.5,"
                 "\"z\":null,\"big\":1.2345678E7}]\n");
    check_format(fx, SL_SQL_ARRAY, false, false, false,
                 "[[\"2025-06-11T12:00:00.000Z\",\"a,\\\"b\\\"\",2,1.5,null,1.2345678E7]]\n");
    check_format(fx, SL_SQL_OBJECTLINES, false, false, false,
                 "{\"t\":\"2025-06-11T12:00:00.000Z\",\"s\":\"a,\\\"b\\\"\",\"n\":2,\"d\":1.5,"
                 "\"z\":null,\"big\":1.2345678E7}\n\n");
    check_format(fx, SL_SQL_ARRAYLINES, false, false, false,
                 "[\"2025-06-11T12:00:00.000Z\",\"a,\\\"b\\\"\",2,1.5,null,1.2345678E7]\n\n");
    check_format(fx, SL_SQL_CSV, false, false, false,
                 "2025-06-11T12:00:00.000Z,\"a,\"\"b\"\"\",2,1.5,,1.2345678E7\n\n");
    check_format(fx, SL_SQL_CSV, true, true, true,
                 "t,s,n,d,z,big\nLONG,STRING,LONG,DOUBLE,STRING,DOUBLE\nTIMESTAMP,VARCHAR,BIGINT,"
                 "DOUBLE,VARCHAR,DOUBLE\n2025-06-11T12:00:00.000Z,\"a,\"\"b\"\"\",2,1.5,,"
                 "1.2345678E7\n\n");
    check_format(fx, SL_SQL_ARRAY, true, false, true,
                 "[[\"t\",\"s\",\"n\",\"d\",\"z\",\"big\"],[\"TIMESTAMP\",\"VARCHAR\",\"BIGINT\","
                 "\"DOUBLE\",\"VARCHAR\",\"DOUBLE\"],[\"2025-06-11T12:00:00.000Z\",\"a,\\\"b\\\"\","
                 "2,1.5,null,1.2345678E7]]\n");
    check_format(
        fx, SL_SQL_ARRAYLINES, true, true, false,
        "[\"t\",\"s\",\"n\",\"d\",\"z\",\"big\"]\n[\"LONG\",\"STRING\",\"LONG\",\"DOUBLE\","
        "\"STRING\",\"DOUBLE\"]\n[\"2025-06-11T12:00:00.000Z\",\"a,\\\"b\\\"\",2,1.5,null,"
        "1.2345678E7]\n\n");
    ok(fx, "SELECT 2 AS n, 0.001 AS d FROM ev LIMIT 1");
    check_format(fx, SL_SQL_OBJECT, true, false, false,
                 "[{\"n\":null,\"d\":null},{\"n\":2,\"d\":0.001}]\n");
    check_format(fx, SL_SQL_OBJECTLINES, true, true, true,
                 "{\"n\":{\"type\":\"LONG\",\"sqlType\":\"BIGINT\"},\"d\":{\"type\":\"DOUBLE\","
                 "\"sqlType\":\"DOUBLE\"}}\n{\"n\":2,\"d\":0.001}\n\n");
    /* header flags without header are ignored; no rows */
    ok(fx, "SELECT page FROM ev WHERE page = 'none'");
    check_format(fx, SL_SQL_OBJECT, false, true, true, "[]\n");
    check_format(fx, SL_SQL_OBJECTLINES, false, false, false, "\n\n");
    check_format(fx, SL_SQL_CSV, false, false, false, "\n");
    check_format(fx, SL_SQL_CSV, true, false, false, "page\n\n");
    /* a single empty CSV field is quoted so the row is not a blank line */
    ok(fx, "SELECT '' AS e FROM ev LIMIT 1");
    check_format(fx, SL_SQL_CSV, false, false, false, "\"\"\n\n");
}

/* ---- the request and the whole path
 * ---------------------------------------------------------------- */

static int query_sql(fixture *fx, const char *body)
{
    int status = sl_query_sql(fx->cfg, fx->st, body, strlen(body), 0, &fx->buf);
    sl_buf_append(&fx->buf, "", 1);
    return status;
}

static void whole_request(void **state)
{
    fixture *fx = *state;
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT COUNT(*) AS n FROM ev WHERE country = "
                                   "?\",\"resultFormat\":\"ARRAY\",\"header\":true,"
                                   "\"parameters\":[{\"type\":\"VARCHAR\",\"value\":\"US\"}],"
                                   "\"context\":{\"sqlQueryId\":\"q1\",\"timeout\":5000}}"),
                     200);
    char want[100];
    snprintf(want, sizeof(want), "[[\"n\"],[%lld]]\n", (long long)count_where(f_us));
    assert_string_equal(fx->buf.data, want);
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT FROM ev\"}"), 400);
    assert_string_equal(
        fx->buf.data, "{\"error\":\"SQL parse failed\",\"errorMessage\":\"Encountered \\\"FROM\\\" "
                      "at line 1, column 8; expected an expression\",\"errorClass\":\"org.apache."
                      "calcite.sql.parser.SqlParseException\",\"host\":null}");
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT nope FROM ev\"}"), 400);
    assert_non_null(strstr(fx->buf.data, "\"error\":\"Plan validation failed\""));
    assert_non_null(strstr(fx->buf.data, "org.apache.calcite.tools.ValidationException"));
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT COUNT(DISTINCT user_id) AS u FROM ev\"}"),
                     200);
    snprintf(want, sizeof(want), "[{\"u\":%d}]\n", exact_users(NULL));
    assert_string_equal(fx->buf.data, want);
    /* a plan the native engine refuses */
    assert_int_equal(sl_sql_error(&fx->buf, SL_ENOTFOUND, "no"), 400);
    sl_buf_append(&fx->buf, "", 1);
    assert_non_null(strstr(fx->buf.data, "\"error\":\"Unsupported operation\""));
    assert_int_equal(query_sql(fx, "not json"), 400);
    assert_non_null(strstr(fx->buf.data, "not valid JSON"));
    assert_int_equal(query_sql(fx, "{\"sql\":\"SELECT 1\"}"), 400);
    assert_non_null(strstr(fx->buf.data, "query: required"));
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT 1 FROM ev\",\"resultFormat\":\"xml\"}"),
                     400);
    assert_non_null(strstr(fx->buf.data, "resultFormat"));
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT 1 FROM ev\",\"parameters\":[{\"type\":"
                                   "\"BIGINT\",\"value\":\"x\"}]}"),
                     400);
    assert_non_null(strstr(fx->buf.data, "parameters[0].value"));
    assert_int_equal(query_sql(fx, "{\"query\":\"SELECT 1 FROM ev\",\"context\":{\"sqlTimeZone\":"
                                   "\"America/New_York\"}}"),
                     400);
    /* a timed-out query: 504 */
    assert_int_equal(sl_sql_error(&fx->buf, SL_ETIMEDOUT, "slow"), 504);
    assert_int_equal(sl_sql_error(&fx->buf, SL_EBUSY, "busy"), 429);
    sl_buf_append(&fx->buf, "", 1);
    assert_string_equal(fx->buf.data, "{\"error\":\"Query capacity exceeded\",\"errorMessage\":"
                                      "\"busy\",\"errorClass\":\"org.apache.druid.query."
                                      "QueryCapacityExceededException\",\"host\":null}");
    assert_int_equal(sl_sql_format_parse("objectlines"), SL_SQL_OBJECTLINES);
    assert_string_equal(sl_sql_content_type(SL_SQL_CSV), "text/csv");
}

static void explain_plan(void **state)
{
    fixture *fx = *state;
    ok(fx, "EXPLAIN PLAN FOR SELECT page, COUNT(*) FROM ev GROUP BY page ORDER BY 2 DESC LIMIT 5");
    assert_int_equal(nres(fx), 1);
    cell_s(fx, 0, 0,
           "[{\"query\":{\"queryType\":\"groupBy\",\"dataSource\":\"ev\",\"intervals\":[\"0000-01-"
           "01T00:00:00.000Z/9999-12-31T23:59:59.999Z\"],\"granularity\":\"all\",\"dimensions\":[{"
           "\"type\":\"default\",\"dimension\":\"page\",\"outputName\":\"d0\"}],\"aggregations\":"
           "[{\"type\":\"count\",\"name\":\"a0\"}],\"limitSpec\":{\"type\":\"default\",\"limit\":5,"
           "\"columns\":[{\"dimension\":\"a0\",\"direction\":\"descending\",\"dimensionOrder\":"
           "\"numeric\"}]}}}]");
    cell_s(fx, 0, 1, "[{\"name\":\"ev\",\"type\":\"DATASOURCE\"}]");
}

static void parser_corners(void **state)
{
    fixture *fx = *state;
    /* comments, quoted identifiers, qualified names, aliases without AS, case */
    ok(fx, "select /* c */ e.\"page\" p, count(*) -- trailing\nfrom druid.\"ev\" e group by "
           "e.page order by p fetch first 2 rows only");
    assert_int_equal(nres(fx), 2);
    assert_string_equal(sl_sql_result_name(fx->res, 0), "p");
    sl_err err;
    assert_int_equal(sl_sql_parse_only("SELECT ((((1)))) FROM t;", 24, NULL, &err), 0);
    char deep[2000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "SELECT ");
    for (int i = 0; i < 600; i++) {
        deep[n++] = '(';
    }
    deep[n] = '\0';
    assert_int_equal(sl_sql_parse_only(deep, n, NULL, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    assert_int_equal(sl_sql_parse_only("SELECT 1 FROM t\0x", 17, NULL, &err), SL_EPARSE);
    assert_non_null(strstr(err.msg, "NUL"));
    assert_int_equal(sl_sql_parse_only("SELECT 1 FROM t UNION SELECT 2 FROM t", 37, NULL, &err),
                     SL_EINVAL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(seed_query_verbatim, setup, teardown),
    cmocka_unit_test_setup_teardown(seed_query_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(time_buckets, setup, teardown),
    cmocka_unit_test_setup_teardown(hop_windows, setup, teardown),
    cmocka_unit_test_setup_teardown(aggregates, setup, teardown),
    cmocka_unit_test_setup_teardown(sketches, setup, teardown),
    cmocka_unit_test_setup_teardown(filters, setup, teardown),
    cmocka_unit_test_setup_teardown(group_order_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(params_and_literals, setup, teardown),
    cmocka_unit_test_setup_teardown(information_schema, setup, teardown),
    cmocka_unit_test_setup_teardown(errors, setup, teardown),
    cmocka_unit_test_setup_teardown(result_formats, setup, teardown),
    cmocka_unit_test_setup_teardown(whole_request, setup, teardown),
    cmocka_unit_test_setup_teardown(explain_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(parser_corners, setup, teardown),
};

SL_TEST_MAIN(tests)
