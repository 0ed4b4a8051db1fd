/* loadgen: the benchmark's load generator and freshness probe (bench/README.md).
 *
 * Events have the seed's shape (event_type, timestamp, user_id, page, device, country,
 * latency_ms) and are a pure function of (seed, index): event i is the same whatever
 * the batch size, the number of connections or the target, so Sluice and ClickHouse
 * receive exactly the same rows. Dimensions are skewed: users, pages and countries
 * follow Zipf laws, devices and event types fixed weights, latency a log-normal law.
 *
 * `post` sends NDJSON batches over many keep-alive HTTP/1.1 connections with libcurl's
 * multi interface (one thread, non-blocking sockets; libcurl rather than a hand-written
 * epoll client because it already gets keep-alive, chunked replies, partial writes and
 * connection reuse right, and its cost per request is small next to a batch's). It runs
 * closed loop (each connection sends its next batch as soon as the previous one is
 * acknowledged) or open loop (batches are due at a fixed rate; latency counts from when
 * a batch was due, so a stalled server cannot hide its queueing). With an
 * Idempotency-Key per batch, answers 429/503/507 are retried with the same key after an
 * exponential backoff. A probe thread can post marker events (page "/probe/<run>/<n>")
 * while the load runs and poll a query filtered on each until it is visible.
 *
 * `dump` writes the same events to stdout, as NDJSON for Sluice or as JSONEachRow for
 * ClickHouse (DateTime as "YYYY-MM-DD hh:mm:ss", UTC).
 *
 * Results are one JSON object on stdout; progress and errors go to stderr. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers -------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL) {
        die("out of memory (%zu bytes)", n);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n == 0 ? 1 : n);
    if (p == NULL) {
        die("out of memory (%zu bytes)", n);
    }
    return p;
}

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra + 1) {
            cap *= 2;
        }
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
}

static void buf_add(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Appends v in decimal, zero-padded to at least `width` digits. */
static void buf_uint(buf *b, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || n < width);
    buf_reserve(b, (size_t)n);
    while (n > 0) {
        b->data[b->len++] = tmp[--n];
    }
    b->data[b->len] = '\0';
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_s(double s)
{
    if (s <= 0) {
        return;
    }
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0) {
        return NAN;
    }
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k == 0 ? 0 : k - 1];
}

/* ---- deterministic events ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A uniform double in [0, 1) from 53 bits of h. */
static double unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

#define N_USERS 50000
#define N_PAGES 200
#define N_COUNTRIES 50

static const char *const countries[N_COUNTRIES] = {
    "US", "IN", "DE", "GB", "BR", "FR", "JP", "CA", "ES", "IT", "MX", "NL", "AU",
    "PL", "SE", "KR", "ID", "TR", "RU", "CH", "BE", "AR", "CO", "ZA", "NG", "EG",
    "VN", "PH", "TH", "MY", "SG", "AT", "DK", "NO", "FI", "IE", "PT", "CZ", "RO",
    "HU", "GR", "IL", "AE", "SA", "CL", "PE", "NZ", "UA", "PK", "BD"};
static const char *const devices[3] = {"mobile", "desktop", "tablet"};
static const double device_w[3] = {0.55, 0.40, 0.05};
static const char *const event_types[5] = {"page_view", "click", "scroll", "signup", "purchase"};
static const double event_type_w[5] = {0.60, 0.22, 0.12, 0.04, 0.02};
static const char *const named_pages[] = {"/",       "/pricing", "/docs",  "/blog",    "/login",
                                          "/signup", "/product", "/about", "/careers", "/contact"};
#define N_NAMED_PAGES (sizeof(named_pages) / sizeof(named_pages[0]))

typedef struct zipf {
    double *cdf;
    int n;
} zipf;

static void zipf_init(zipf *z, int n, double s)
{
    z->n = n;
    z->cdf = xmalloc(sizeof(double) * (size_t)n);
    double sum = 0;
    for (int k = 1; k <= n; k++) {
        sum += 1.0 / pow(k, s);
        z->cdf[k - 1] = sum;
    }
    for (int k = 0; k < n; k++) {
        z->cdf[k] /= sum;
    }
}

/* Rank 0..n-1 (0 the most frequent) for u in [0, 1). */
static int zipf_pick(const zipf *z, double u)
{
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cdf[mid] > u) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

static int weighted_pick(const double *w, int n, double u)
{
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += w[i];
        if (u < acc) {
            return i;
        }
    }
    return n - 1;
}

typedef enum fmt { FMT_SLUICE, FMT_CLICKHOUSE } fmt;

typedef struct gen {
    uint64_t seed;
    fmt format;
    int64_t now_ms; /* bulk mode: events lie in [now_ms - span_ms, now_ms) */
    int64_t span_ms;
    zipf users, pages, countries;
} gen;

static void gen_init(gen *g, uint64_t seed, fmt format, int64_t now_ms, int64_t span_ms)
{
    g->seed = seed;
    g->format = format;
    g->now_ms = now_ms;
    g->span_ms = span_ms;
    zipf_init(&g->users, N_USERS, 0.9);
    zipf_init(&g->pages, N_PAGES, 1.1);
    zipf_init(&g->countries, N_COUNTRIES, 1.2);
}

/* Appends the timestamp (whole seconds, UTC) in the target's format. The last second
 * formatted is cached per thread: consecutive events share their second in live mode. */
static void put_time(buf *b, fmt format, int64_t ts_ms)
{
    static __thread int64_t cached_sec = INT64_MIN;
    static __thread fmt cached_fmt;
    static __thread char s[32];
    static __thread size_t n;
    int64_t sec = ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000;
    if (sec != cached_sec || format != cached_fmt) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        n = strftime(s, sizeof(s),
                     format == FMT_SLUICE ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
        cached_sec = sec;
        cached_fmt = format;
    }
    buf_add(b, s, n);
}

/* The bulk-mode timestamp of event i. */
static int64_t gen_time(const gen *g, uint64_t i)
{
    uint64_t h = splitmix(g->seed * 0x100000001b3ULL ^ splitmix(i ^ 0x5bd1e995ULL));
    int64_t back = g->span_ms > 1000 ? (int64_t)(h % (uint64_t)(g->span_ms - 1000)) : 0;
    return g->now_ms - 1000 - back;
}

/* Appends event i, timestamped ts_ms, as one JSON line. */
static void gen_event(const gen *g, buf *b, uint64_t i, int64_t ts_ms)
{
    uint64_t h0 = splitmix(g->seed ^ splitmix(i));
    uint64_t h1 = splitmix(h0), h2 = splitmix(h1), h3 = splitmix(h2), h4 = splitmix(h3);
    uint64_t h5 = splitmix(h4), h6 = splitmix(h5);
    int user = zipf_pick(&g->users, unit(h0));
    /* Ranks are scrambled into ids so the hot users are not u0, u1, ... */
    uint32_t uid = (uint32_t)((uint64_t)user * 2654435761u % 1000003u);
    int page = zipf_pick(&g->pages, unit(h1));
    int country = zipf_pick(&g->countries, unit(h2));
    int device = weighted_pick(device_w, 3, unit(h3));
    int et = weighted_pick(event_type_w, 5, unit(h4));
    /* Log-normal latency, median ~90 ms: Box-Muller from two uniforms. */
    double u1 = unit(h5) + 1e-12, u2 = unit(h6);
    double z = sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
    long latency = lround(exp(4.5 + 0.6 * z));
    if (latency < 1) {
        latency = 1;
    }
    /* Plain appends, not printf: live mode builds events while it sends, on the same
     * two cores as the server, so the generator must stay cheap. */
    buf_str(b, "{\"event_type\":\"");
    buf_str(b, event_types[et]);
    buf_str(b, "\",\"timestamp\":\"");
    put_time(b, g->format, ts_ms);
    buf_str(b, "\",\"user_id\":\"u");
    buf_uint(b, uid, 1);
    buf_str(b, "\",\"page\":\"");
    if ((size_t)page < N_NAMED_PAGES) {
        buf_str(b, named_pages[page]);
    } else {
        buf_str(b, "/p/");
        buf_uint(b, (uint64_t)page, 3);
    }
    buf_str(b, "\",\"device\":\"");
    buf_str(b, devices[device]);
    buf_str(b, "\",\"country\":\"");
    buf_str(b, countries[country]);
    buf_str(b, "\",\"latency_ms\":");
    buf_uint(b, (uint64_t)latency, 1);
    buf_str(b, "}\n");
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct opts {
    const char *mode;
    const char *url;
    const char *probe_url;        /* query URL; probes enabled when set */
    const char *probe_events_url; /* where probe events go (default: url) */
    const char *datasource;
    fmt format;
    int64_t events;  /* bulk mode: total events (0 = live mode, see duration) */
    double duration; /* live mode: seconds */
    int batch;
    int conns;
    double rate; /* events/s; 0 = closed loop */
    uint64_t seed;
    int64_t now_ms;
    int64_t span_ms;
    int64_t offset_ms; /* live mode: event time = wall clock + offset */
    int64_t first_index;
    bool idempotency;
    bool expect_empty; /* ClickHouse: a 200 accepts the whole batch */
    int probe_interval_ms;
    int probe_poll_ms; /* pause between a probe's queries */
    int max_retries;
    const char *run_id;
    const char *input; /* bulk: NDJSON lines from this file instead of generating them */
} opts;

/* ---- post: the load ------------------------------------------------------------------------- */

typedef struct slot {
    CURL *h;
    struct curl_slist *hdrs;
    buf body; /* owned */
    buf resp;
    int64_t batch;
    int count;  /* events in the body */
    double due; /* when the batch was due (open loop) or first sent (closed loop) */
    double retry_at;
    int attempts;
    bool busy, waiting;
    char key[96];
} slot;

typedef struct stats {
    int64_t requests, accepted, rejected, retries, failures, duplicates;
    int64_t status[600];
    double *lat; /* ms */
    size_t nlat, caplat;
    char first_error[512];
} stats;

typedef struct probe_result {
    int64_t event_ms, ack_wall_ms;
    double ms; /* ack -> visible; < 0 = timed out */
} probe_result;

typedef struct probe_state {
    const opts *o;
    atomic_bool stop;
    probe_result *res;
    size_t n, cap;
    int64_t errors;
    char first_error[512];
} probe_state;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buf_add(ud, p, size * n);
    return size * n;
}

static void stats_lat(stats *s, double ms)
{
    if (s->nlat == s->caplat) {
        s->caplat = s->caplat ? s->caplat * 2 : 4096;
        s->lat = xrealloc(s->lat, sizeof(double) * s->caplat);
    }
    s->lat[s->nlat++] = ms;
}

static int64_t json_int(const char *body, const char *key, int64_t dflt)
{
    const char *p = body ? strstr(body, key) : NULL;
    if (p == NULL) {
        return dflt;
    }
    p += strlen(key);
    while (*p == ' ' || *p == ':') {
        p++;
    }
    return strtoll(p, NULL, 10);
}

static void slot_fill(const opts *o, const gen *g, slot *s, int64_t batch, const int64_t *live_ts)
{
    s->body.len = 0;
    int64_t first = o->first_index + batch * o->batch;
    int count = o->batch;
    if (o->events > 0 && batch * o->batch + count > o->events) {
        count = (int)(o->events - batch * o->batch);
    }
    for (int k = 0; k < count; k++) {
        uint64_t i = (uint64_t)(first + k);
        int64_t ts = live_ts ? *live_ts - (int64_t)(splitmix(i ^ 0x77) % 1000) : gen_time(g, i);
        gen_event(g, &s->body, i, ts);
    }
    s->batch = batch;
    s->count = count;
    s->attempts = 0;
    snprintf(s->key, sizeof(s->key), "Idempotency-Key: %s-%" PRId64, o->run_id, batch);
}

static void slot_send(CURLM *m, const opts *o, slot *s)
{
    curl_easy_setopt(s->h, CURLOPT_URL, o->url);
    curl_easy_setopt(s->h, CURLOPT_POST, 1L);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body.data);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    curl_slist_free_all(s->hdrs);
    s->hdrs = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    if (o->idempotency) {
        s->hdrs = curl_slist_append(s->hdrs, s->key);
    }
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
    s->resp.len = 0;
    s->attempts++;
    s->busy = true;
    s->waiting = false;
    CURLMcode mc = curl_multi_add_handle(m, s->h);
    if (mc != CURLM_OK) {
        die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
    }
}

/* A finished transfer: counts it; returns true when the slot is free again, false when
 * the batch waits for a retry. */
static bool slot_done(const opts *o, slot *s, CURLcode cc, stats *st, double t)
{
    long code = 0;
    st->requests++;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    }
    if (code >= 0 && code < 600) {
        st->status[code]++;
    }
    if (code == 200) {
        if (o->expect_empty) {
            st->accepted += s->count;
        } else {
            int64_t acc = json_int(s->resp.data, "\"accepted\"", -1);
            if (acc < 0) {
                acc = 0;
                if (st->first_error[0] == '\0') {
                    snprintf(st->first_error, sizeof(st->first_error),
                             "200 without \"accepted\": %.200s", s->resp.data ? s->resp.data : "");
                }
            }
            st->accepted += acc;
            st->rejected += json_int(s->resp.data, "\"rejected\"", 0);
            if (s->resp.data && strstr(s->resp.data, "\"duplicate\":true")) {
                st->duplicates++;
            }
            if (acc < s->count && st->first_error[0] == '\0') {
                snprintf(st->first_error, sizeof(st->first_error), "partly rejected: %.300s",
                         s->resp.data ? s->resp.data : "");
            }
        }
        stats_lat(st, (t - s->due) * 1000.0);
        return true;
    }
    bool retriable = cc != CURLE_OK || code == 429 || code == 503 || code == 507;
    if (retriable && s->attempts <= o->max_retries) {
        st->retries++;
        double backoff = 0.01 * (double)(1 << (s->attempts < 7 ? s->attempts - 1 : 6));
        s->retry_at = t + backoff;
        s->waiting = true;
        return false;
    }
    st->failures++;
    if (st->first_error[0] == '\0') {
        snprintf(st->first_error, sizeof(st->first_error), "batch %" PRId64 ": %s %ld: %.300s",
                 s->batch, cc == CURLE_OK ? "HTTP" : curl_easy_strerror(cc), code,
                 s->resp.data ? s->resp.data : "");
    }
    return true;
}

/* ---- the freshness probe ---------------------------------------------------------------- */

static void iso_ms(char *out, size_t n, int64_t ms)
{
    buf b = {0};
    put_time(&b, FMT_SLUICE, ms);
    snprintf(out, n, "%s", b.data);
    free(b.data);
}

static void *probe_main(void *arg)
{
    probe_state *ps = arg;
    const opts *o = ps->o;
    CURL *post = curl_easy_init(), *query = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    buf body = {0}, resp = {0}, q = {0};
    const char *events_url = o->probe_events_url ? o->probe_events_url : o->url;
    for (int64_t n = 0; !atomic_load(&ps->stop); n++) {
        double next = now_mono() + o->probe_interval_ms / 1000.0;
        int64_t ts = now_wall_ms() + o->offset_ms;
        char page[128], iso[40], lo[40], hi[40];
        snprintf(page, sizeof(page), "/probe/%s/%" PRId64, o->run_id, n);
        iso_ms(iso, sizeof(iso), ts);
        body.len = 0;
        buf_printf(&body,
                   "{\"event_type\":\"page_view\",\"timestamp\":\"%s\",\"user_id\":\"probe\","
                   "\"page\":\"%s\",\"device\":\"desktop\",\"country\":\"US\",\"latency_ms\":1}\n",
                   iso, page);
        resp.len = 0;
        curl_easy_setopt(post, CURLOPT_URL, events_url);
        curl_easy_setopt(post, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(post, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
        curl_easy_setopt(post, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(post, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(post, CURLOPT_WRITEDATA, &resp);
        long code = 0;
        CURLcode cc = curl_easy_perform(post);
        if (cc == CURLE_OK) {
            curl_easy_getinfo(post, CURLINFO_RESPONSE_CODE, &code);
        }
        if (code != 200 || json_int(resp.data, "\"accepted\"", 0) != 1) {
            ps->errors++;
            if (ps->first_error[0] == '\0') {
                snprintf(ps->first_error, sizeof(ps->first_error), "probe post: %s %ld %.200s",
                         curl_easy_strerror(cc), code, resp.data ? resp.data : "");
            }
            sleep_s(next - now_mono());
            continue;
        }
        double t_ack = now_mono();
        int64_t ack_wall = now_wall_ms();
        iso_ms(lo, sizeof(lo), ts - 60000);
        iso_ms(hi, sizeof(hi), ts + 60000);
        q.len = 0;
        buf_printf(&q,
                   "{\"queryType\":\"timeseries\",\"dataSource\":\"%s\",\"granularity\":\"all\","
                   "\"intervals\":[\"%s/%s\"],\"filter\":{\"type\":\"selector\","
                   "\"dimension\":\"page\",\"value\":\"%s\"},"
                   "\"aggregations\":[{\"type\":\"count\",\"name\":\"n\"}]}",
                   o->datasource, lo, hi, page);
        curl_easy_setopt(query, CURLOPT_URL, o->probe_url);
        curl_easy_setopt(query, CURLOPT_POSTFIELDS, q.data);
        curl_easy_setopt(query, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q.len);
        curl_easy_setopt(query, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(query, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(query, CURLOPT_WRITEDATA, &resp);
        double visible = -1;
        while (now_mono() - t_ack < 30.0) {
            resp.len = 0;
            code = 0;
            cc = curl_easy_perform(query);
            if (cc == CURLE_OK) {
                curl_easy_getinfo(query, CURLINFO_RESPONSE_CODE, &code);
            }
            if (code == 200 && json_int(resp.data, "\"n\"", 0) >= 1) {
                visible = (now_mono() - t_ack) * 1000.0;
                break;
            }
            if (code != 200 && ps->first_error[0] == '\0') {
                snprintf(ps->first_error, sizeof(ps->first_error), "probe query: %s %ld %.200s",
                         curl_easy_strerror(cc), code, resp.data ? resp.data : "");
            }
            sleep_s(o->probe_poll_ms / 1000.0);
        }
        if (ps->n == ps->cap) {
            ps->cap = ps->cap ? ps->cap * 2 : 256;
            ps->res = xrealloc(ps->res, sizeof(*ps->res) * ps->cap);
        }
        ps->res[ps->n++] = (probe_result){ts, ack_wall, visible};
        sleep_s(next - now_mono());
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(post);
    curl_easy_cleanup(query);
    free(body.data);
    free(resp.data);
    free(q.data);
    return NULL;
}

/* ---- post: the main loop ---------------------------------------------------------------- */

static void print_results(const opts *o, stats *st, double elapsed, probe_state *ps)
{
    qsort(st->lat, st->nlat, sizeof(double), cmp_double);
    printf("{\"mode\":\"%s\",\"batch\":%d,\"conns\":%d,\"rate\":%.0f,\"elapsed_s\":%.4f,"
           "\"requests\":%" PRId64 ",\"accepted\":%" PRId64 ",\"rejected\":%" PRId64
           ",\"retries\":%" PRId64 ",\"failures\":%" PRId64 ",\"duplicates\":%" PRId64
           ",\"events_per_s\":%.1f,",
           o->events > 0 ? "bulk" : "live", o->batch, o->conns, o->rate, elapsed, st->requests,
           st->accepted, st->rejected, st->retries, st->failures, st->duplicates,
           elapsed > 0 ? (double)st->accepted / elapsed : 0.0);
    printf("\"ack_ms\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},", st->nlat,
           pct(st->lat, st->nlat, 50), pct(st->lat, st->nlat, 99), pct(st->lat, st->nlat, 99.9),
           st->nlat ? st->lat[st->nlat - 1] : NAN);
    printf("\"status\":{");
    bool first = true;
    for (int c = 0; c < 600; c++) {
        if (st->status[c]) {
            printf("%s\"%d\":%" PRId64, first ? "" : ",", c, st->status[c]);
            first = false;
        }
    }
    printf("},\"first_error\":\"");
    for (const char *p = st->first_error; *p; p++) {
        if (*p == '"' || *p == '\\') {
            putchar('\\');
        }
        putchar((unsigned char)*p < 0x20 ? ' ' : *p);
    }
    printf("\"");
    if (ps != NULL) {
        printf(",\"probe_errors\":%" PRId64 ",\"probe_first_error\":\"", ps->errors);
        for (const char *p = ps->first_error; *p; p++) {
            if (*p == '"' || *p == '\\') {
                putchar('\\');
            }
            putchar((unsigned char)*p < 0x20 ? ' ' : *p);
        }
        printf("\",\"probes\":[");
        for (size_t i = 0; i < ps->n; i++) {
            printf("%s[%" PRId64 ",%" PRId64 ",%.3f]", i ? "," : "", ps->res[i].event_ms,
                   ps->res[i].ack_wall_ms, ps->res[i].ms);
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
    fprintf(stderr,
            "loadgen: %" PRId64 " accepted in %.2f s = %.0f events/s; ack p50 %.2f ms p99 %.2f "
            "ms p99.9 %.2f ms; %" PRId64 " retries, %" PRId64 " failures%s%s\n",
            st->accepted, elapsed, elapsed > 0 ? (double)st->accepted / elapsed : 0.0,
            pct(st->lat, st->nlat, 50), pct(st->lat, st->nlat, 99), pct(st->lat, st->nlat, 99.9),
            st->retries, st->failures, st->first_error[0] ? "; first error: " : "",
            st->first_error);
}

/* Splits the first o->events lines of o->input into nbatches bodies of o->batch lines:
 * a dump made once (`loadgen dump`) serves every run, which saves generating it again. */
static buf *read_batches(const opts *o, int64_t nbatches)
{
    FILE *f = fopen(o->input, "rb");
    if (f == NULL) {
        die("%s: %s", o->input, strerror(errno));
    }
    buf *pre = calloc((size_t)nbatches, sizeof(buf));
    if (pre == NULL) {
        die("out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t i = 0;
    while (i < o->events && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            die("%s: line %" PRId64 " does not end with a newline", o->input, i + 1);
        }
        buf_add(&pre[i / o->batch], line, (size_t)n);
        i++;
    }
    free(line);
    fclose(f);
    if (i < o->events) {
        die("%s has %" PRId64 " lines, fewer than --events %" PRId64, o->input, i, o->events);
    }
    return pre;
}

static int run_post(const opts *o)
{
    if (o->url == NULL) {
        die("post needs --url");
    }
    if (o->events <= 0 && o->duration <= 0) {
        die("post needs --events N (bulk) or --duration S (live)");
    }
    gen g;
    gen_init(&g, o->seed, o->format, o->now_ms, o->span_ms);
    bool live = o->events <= 0;
    int64_t nbatches = live ? INT64_MAX : (o->events + o->batch - 1) / o->batch;

    /* Bulk mode: every body is built before the clock starts, so generating events
     * costs the measurement nothing. */
    buf *pre = NULL;
    if (!live && o->input) {
        pre = read_batches(o, nbatches);
    } else if (!live) {
        pre = xmalloc(sizeof(buf) * (size_t)nbatches);
        slot tmp = {0};
        for (int64_t b = 0; b < nbatches; b++) {
            slot_fill(o, &g, &tmp, b, NULL);
            pre[b] = tmp.body;
            tmp.body = (buf){0};
        }
    }

    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->conns);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)o->conns);
    slot *slots = calloc((size_t)o->conns, sizeof(slot));
    if (slots == NULL) {
        die("out of memory");
    }
    for (int i = 0; i < o->conns; i++) {
        slots[i].h = curl_easy_init();
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEDATA, &slots[i].resp);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        curl_easy_setopt(slots[i].h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(slots[i].h, CURLOPT_TIMEOUT, 120L);
    }

    stats st = {0};
    probe_state ps = {.o = o};
    pthread_t probe_thread;
    if (o->probe_url) {
        atomic_init(&ps.stop, false);
        if (pthread_create(&probe_thread, NULL, probe_main, &ps) != 0) {
            die("cannot start the probe thread");
        }
    }

    /* bench/run starts sampling the server's CPU at this line. */
    fprintf(stderr, "loadgen: sending\n");
    double t0 = now_mono();
    double end = live ? t0 + o->duration : INFINITY;
    int64_t next_batch = 0;
    int inflight = 0;
    double report_at = t0 + 5;
    for (;;) {
        double t = now_mono();
        bool more = next_batch < nbatches && t < end;
        /* Dispatch: retries first, then new batches (closed loop: whenever a slot is
         * free; open loop: when due). */
        for (int i = 0; i < o->conns; i++) {
            slot *s = &slots[i];
            if (s->waiting && t >= s->retry_at) {
                slot_send(m, o, s);
                inflight++;
            }
        }
        for (int i = 0; i < o->conns && more; i++) {
            slot *s = &slots[i];
            if (s->busy) {
                continue;
            }
            double due = t;
            if (o->rate > 0) {
                due = t0 + (double)next_batch * o->batch / o->rate;
                if (due > t) {
                    break;
                }
            }
            if (live) {
                int64_t ts = now_wall_ms() + o->offset_ms;
                slot_fill(o, &g, s, next_batch, &ts);
            } else {
                free(s->body.data);
                s->body = pre[next_batch];
                pre[next_batch] = (buf){0};
                s->batch = next_batch;
                s->count = (int)(next_batch * o->batch + o->batch > o->events
                                     ? o->events - next_batch * o->batch
                                     : o->batch);
                s->attempts = 0;
                snprintf(s->key, sizeof(s->key), "Idempotency-Key: %s-%" PRId64, o->run_id,
                         next_batch);
            }
            s->due = due;
            slot_send(m, o, s);
            inflight++;
            next_batch++;
            more = next_batch < nbatches && t < end;
        }
        bool waiting = false;
        for (int i = 0; i < o->conns; i++) {
            waiting |= slots[i].waiting;
        }
        if (inflight == 0 && !waiting && !more) {
            break;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(m, s->h);
            inflight--;
            if (slot_done(o, s, cc, &st, now_mono())) {
                s->busy = false;
            }
        }
        /* Sleep until a socket is ready, the next batch is due, or a retry is. */
        double wake = now_mono() + 0.05;
        if (o->rate > 0 && next_batch < nbatches) {
            double due = t0 + (double)next_batch * o->batch / o->rate;
            wake = due < wake ? due : wake;
        }
        for (int i = 0; i < o->conns; i++) {
            if (slots[i].waiting && slots[i].retry_at < wake) {
                wake = slots[i].retry_at;
            }
        }
        int ms = (int)((wake - now_mono()) * 1000.0);
        if (inflight > 0) {
            curl_multi_poll(m, NULL, 0, ms < 0 ? 0 : ms, NULL);
        } else {
            sleep_s(wake - now_mono());
        }
        if (now_mono() > report_at) {
            report_at += 5;
            fprintf(stderr, "loadgen: %.0f s: %" PRId64 " accepted (%.0f/s)\n", now_mono() - t0,
                    st.accepted, (double)st.accepted / (now_mono() - t0));
        }
    }
    double elapsed = now_mono() - t0;
    if (o->probe_url) {
        atomic_store(&ps.stop, true);
        pthread_join(probe_thread, NULL);
    }
    print_results(o, &st, elapsed, o->probe_url ? &ps : NULL);
    for (int i = 0; i < o->conns; i++) {
        curl_easy_cleanup(slots[i].h);
        curl_slist_free_all(slots[i].hdrs);
        free(slots[i].body.data);
        free(slots[i].resp.data);
    }
    curl_multi_cleanup(m);
    free(slots);
    if (pre) {
        for (int64_t b = 0; b < nbatches; b++) {
            free(pre[b].data);
        }
        free(pre);
    }
    free(st.lat);
    free(ps.res);
    return st.failures > 0 ? 1 : 0;
}

/* ---- dump ---------------------------------------------------------------------------- */

static int run_dump(const opts *o)
{
    if (o->events <= 0) {
        die("dump needs --events N");
    }
    gen g;
    gen_init(&g, o->seed, o->format, o->now_ms, o->span_ms);
    buf b = {0};
    for (int64_t i = 0; i < o->events; i++) {
        uint64_t idx = (uint64_t)(o->first_index + i);
        gen_event(&g, &b, idx, gen_time(&g, idx));
        if (b.len > (1 << 20)) {
            fwrite(b.data, 1, b.len, stdout);
            b.len = 0;
        }
    }
    fwrite(b.data, 1, b.len, stdout);
    free(b.data);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------------------- */

static const char usage[] =
    "Usage: loadgen post|dump [options]\n"
    "  --url URL             where batches are POSTed (post)\n"
    "  --format sluice|clickhouse  timestamp format (default sluice: ISO-8601 UTC)\n"
    "  --clickhouse          --format clickhouse and count a 200 as the whole batch\n"
    "  --events N            bulk: send events 0..N-1, timestamps spread over --span\n"
    "  --duration S          live: send for S seconds, timestamps = now + --offset-ms\n"
    "  --batch N             events per request (default 1000)\n"
    "  --conns N             keep-alive connections (default 8)\n"
    "  --rate R              open loop at R events/s (default 0: closed loop)\n"
    "  --seed S              (default 1)\n"
    "  --now MS              bulk: reference time in ms since the epoch (default: now)\n"
    "  --span S              bulk: seconds before --now that events spread over (default 3600)\n"
    "  --offset-ms MS        live: event time offset from the wall clock (default 0)\n"
    "  --first-index N       index of the first event (default 0)\n"
    "  --input FILE          bulk: send the first --events lines of FILE (a dump)\n"
    "  --no-idempotency      send no Idempotency-Key\n"
    "  --max-retries N       per batch, on 429/503/507/transport errors (default 50)\n"
    "  --probe-url URL       query URL: run the freshness probe against it\n"
    "  --probe-events-url U  where probe events go (default --url)\n"
    "  --probe-interval-ms M (default 100)\n"
    "  --probe-poll-ms M     pause between a probe's queries (default 5)\n"
    "  --datasource NAME     (default page_events)\n"
    "  --run-id ID           prefix of idempotency keys and probe pages (default pid)\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static char run_id[32];
    snprintf(run_id, sizeof(run_id), "lg%d", (int)getpid());
    opts o = {.mode = argv[1],
              .format = FMT_SLUICE,
              .batch = 1000,
              .conns = 8,
              .seed = 1,
              .now_ms = now_wall_ms(),
              .span_ms = 3600 * 1000,
              .idempotency = true,
              .probe_interval_ms = 100,
              .probe_poll_ms = 5,
              .max_retries = 50,
              .datasource = "page_events",
              .run_id = run_id};
    enum {
        O_URL = 1,
        O_FORMAT,
        O_CH,
        O_EVENTS,
        O_DURATION,
        O_BATCH,
        O_CONNS,
        O_RATE,
        O_SEED,
        O_NOW,
        O_SPAN,
        O_OFFSET,
        O_FIRST,
        O_NOIDEM,
        O_RETRIES,
        O_PURL,
        O_PEURL,
        O_PINT,
        O_DS,
        O_RUNID,
        O_INPUT,
        O_PPOLL
    };
    static const struct option longopts[] = {{"url", 1, 0, O_URL},
                                             {"format", 1, 0, O_FORMAT},
                                             {"clickhouse", 0, 0, O_CH},
                                             {"events", 1, 0, O_EVENTS},
                                             {"duration", 1, 0, O_DURATION},
                                             {"batch", 1, 0, O_BATCH},
                                             {"conns", 1, 0, O_CONNS},
                                             {"rate", 1, 0, O_RATE},
                                             {"seed", 1, 0, O_SEED},
                                             {"now", 1, 0, O_NOW},
                                             {"span", 1, 0, O_SPAN},
                                             {"offset-ms", 1, 0, O_OFFSET},
                                             {"first-index", 1, 0, O_FIRST},
                                             {"no-idempotency", 0, 0, O_NOIDEM},
                                             {"max-retries", 1, 0, O_RETRIES},
                                             {"probe-url", 1, 0, O_PURL},
                                             {"probe-events-url", 1, 0, O_PEURL},
                                             {"probe-interval-ms", 1, 0, O_PINT},
                                             {"datasource", 1, 0, O_DS},
                                             {"run-id", 1, 0, O_RUNID},
                                             {"input", 1, 0, O_INPUT},
                                             {"probe-poll-ms", 1, 0, O_PPOLL},
                                             {0, 0, 0, 0}};
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_URL:
            o.url = optarg;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "sluice") == 0) {
                o.format = FMT_SLUICE;
            } else if (strcmp(optarg, "clickhouse") == 0) {
                o.format = FMT_CLICKHOUSE;
            } else {
                die("--format must be sluice or clickhouse, got \"%s\"", optarg);
            }
            break;
        case O_CH:
            o.format = FMT_CLICKHOUSE;
            o.expect_empty = true;
            break;
        case O_EVENTS:
            o.events = strtoll(optarg, NULL, 10);
            break;
        case O_DURATION:
            o.duration = strtod(optarg, NULL);
            break;
        case O_BATCH:
            o.batch = atoi(optarg);
            break;
        case O_CONNS:
            o.conns = atoi(optarg);
            break;
        case O_RATE:
            o.rate = strtod(optarg, NULL);
            break;
        case O_SEED:
            o.seed = strtoull(optarg, NULL, 10);
            break;
        case O_NOW:
            o.now_ms = strtoll(optarg, NULL, 10);
            break;
        case O_SPAN:
            o.span_ms = (int64_t)(strtod(optarg, NULL) * 1000.0);
            break;
        case O_OFFSET:
            o.offset_ms = strtoll(optarg, NULL, 10);
            break;
        case O_FIRST:
            o.first_index = strtoll(optarg, NULL, 10);
            break;
        case O_NOIDEM:
            o.idempotency = false;
            break;
        case O_RETRIES:
            o.max_retries = atoi(optarg);
            break;
        case O_PURL:
            o.probe_url = optarg;
            break;
        case O_PEURL:
            o.probe_events_url = optarg;
            break;
        case O_PINT:
            o.probe_interval_ms = atoi(optarg);
            break;
        case O_DS:
            o.datasource = optarg;
            break;
        case O_PPOLL:
            o.probe_poll_ms = atoi(optarg);
            break;
        case O_INPUT:
            o.input = optarg;
            break;
        case O_RUNID:
            o.run_id = optarg;
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        die("unexpected argument \"%s\"", argv[optind]);
    }
    if (o.batch < 1 || o.conns < 1 || o.conns > 1024 || o.rate < 0 || o.probe_interval_ms < 1 ||
        o.probe_poll_ms < 0 || o.span_ms < 0) {
        die("bad option value (need --batch >= 1, 1 <= --conns <= 1024, --rate >= 0, "
            "--span >= 0, --probe-interval-ms >= 1)");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(o.mode, "post") == 0) {
        rc = run_post(&o);
    } else if (strcmp(o.mode, "dump") == 0) {
        rc = run_dump(&o);
    } else {
        die("unknown mode \"%s\" (post or dump)", o.mode);
    }
    curl_global_cleanup();
    return rc;
}
