/* The metrics registry and its Prometheus text rendering (see metrics.h).
 *
 * Values are doubles kept as their bit patterns in 64-bit atomics (adds are a
 * compare-and-swap loop), so updates never take a lock. Histograms keep one
 * non-cumulative count per bucket; rendering sums them into Prometheus's cumulative
 * buckets and derives _count from the same numbers, so a page is always consistent
 * (bucket +Inf == _count) even while observations land. */
#include "metrics.h"

#include "mem.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

struct sl_series {
    char **values;            /* label values, nlabels of them */
    _Atomic uint64_t bits;    /* counter/gauge value, or histogram sum, as double bits */
    _Atomic uint64_t *counts; /* histogram: nbounds + 1 (the last is +Inf) */
    const double *bounds;     /* histogram: the family's bucket bounds */
    int nbounds;
};

struct sl_metric {
    sl_metrics *reg;
    char *name;
    char *help;
    sl_metrics_type type;
    int scope;
    int nlabels;
    char **labels;
    double *bounds;
    int nbounds;
    sl_series **series;
    int nseries, capseries;
};

struct sl_metrics {
    pthread_mutex_t mu;
    sl_metric **fams; /* in declaration order */
    int nfams, capfams;
    sl_metric *by_id[SL_M_COUNT];
};

const char sl_metrics_end_[] = "<end of label values>";

/* ---- the table ------------------------------------------------------------------------ */

#define SL_METRICS_BOUNDS(name, ...) static const double bounds_##name[] = {__VA_ARGS__};
SL_METRICS_BUCKETS(SL_METRICS_BOUNDS)
#undef SL_METRICS_BOUNDS

static const struct {
    const double *b;
    int n;
} bucket_sets[] = {
#define SL_METRICS_BSET(name, ...) {bounds_##name, (int)(sizeof(bounds_##name) / sizeof(double))},
    SL_METRICS_BUCKETS(SL_METRICS_BSET)
#undef SL_METRICS_BSET
};

typedef struct entry {
    sl_metrics_type type;
    const char *name;
    const char *labels;
    sl_metrics_buckets buckets;
    int scope;
    const char *actor;
    const char *help;
} entry;

static const entry table[SL_M_COUNT] = {
#define SL_METRICS_ENTRY(id, type, name, labels, buckets, scope, actor, help)                      \
    {SL_METRICS_##type,  name,  labels, SL_METRICS_BUCKETS_##buckets,                              \
     SL_METRICS_##scope, actor, help},
    SL_METRICS_TABLE(SL_METRICS_ENTRY)
#undef SL_METRICS_ENTRY
};

/* ---- registry ---------------------------------------------------------------------------- */

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static sl_metrics *default_reg;

static void default_init(void)
{
    default_reg = sl_metrics_new();
}

sl_metrics *sl_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_reg;
}

sl_metrics *sl_metrics_new(void)
{
    sl_metrics *m = sl_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void series_free(sl_series *s, int nlabels)
{
    for (int i = 0; i < nlabels; i++) {
        free(s->values[i]);
    }
    free(s->values);
    free(s->counts);
    free(s);
}

void sl_metrics_free(sl_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (int i = 0; i < m->nfams; i++) {
        sl_metric *f = m->fams[i];
        for (int j = 0; j < f->nseries; j++) {
            series_free(f->series[j], f->nlabels);
        }
        for (int j = 0; j < f->nlabels; j++) {
            free(f->labels[j]);
        }
        free(f->labels);
        free(f->series);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static sl_series *series_new(sl_metric *f, const char *const *values)
{
    sl_series *s = sl_calloc(1, sizeof(*s));
    s->values = sl_calloc((size_t)(f->nlabels > 0 ? f->nlabels : 1), sizeof(char *));
    for (int i = 0; i < f->nlabels; i++) {
        s->values[i] = sl_strdup(values[i]);
    }
    double zero = 0;
    uint64_t bits;
    memcpy(&bits, &zero, sizeof(bits));
    atomic_init(&s->bits, bits);
    if (f->type == SL_METRICS_HISTOGRAM) {
        s->bounds = f->bounds;
        s->nbounds = f->nbounds;
        s->counts = sl_calloc((size_t)f->nbounds + 1, sizeof(*s->counts));
        for (int i = 0; i <= f->nbounds; i++) {
            atomic_init(&s->counts[i], 0);
        }
    }
    if (f->nseries == f->capseries) {
        f->capseries = f->capseries == 0 ? 4 : f->capseries * 2;
        f->series = sl_realloc(f->series, (size_t)f->capseries * sizeof(*f->series));
    }
    f->series[f->nseries++] = s;
    return s;
}

/* With m->mu held. */
static sl_metric *declare_locked(sl_metrics *m, sl_metrics_type type, const char *name,
                                 const char *help, const char *labels, const double *bounds,
                                 int nbounds, int scope)
{
    for (int i = 0; i < m->nfams; i++) {
        sl_metric *f = m->fams[i];
        if (strcmp(f->name, name) == 0) {
            SL_ASSERT(f->type == type);
            return f;
        }
    }
    sl_metric *f = sl_calloc(1, sizeof(*f));
    f->reg = m;
    f->name = sl_strdup(name);
    f->help = sl_strdup(help);
    f->type = type;
    f->scope = scope;
    if (labels != NULL && labels[0] != '\0') {
        f->nlabels = 1;
        for (const char *p = labels; *p != '\0'; p++) {
            f->nlabels += *p == ',';
        }
        f->labels = sl_calloc((size_t)f->nlabels, sizeof(char *));
        const char *p = labels;
        for (int i = 0; i < f->nlabels; i++) {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
            f->labels[i] = sl_strndup(p, n);
            p += n + (comma != NULL);
        }
    }
    if (type == SL_METRICS_HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = sl_calloc((size_t)(nbounds > 0 ? nbounds : 1), sizeof(double));
        for (int i = 0; i < nbounds; i++) {
            SL_ASSERT(i == 0 || bounds[i] > bounds[i - 1]);
            f->bounds[i] = bounds[i];
        }
    }
    if (m->nfams == m->capfams) {
        m->capfams = m->capfams == 0 ? 16 : m->capfams * 2;
        m->fams = sl_realloc(m->fams, (size_t)m->capfams * sizeof(*m->fams));
    }
    m->fams[m->nfams++] = f;
    /* A metric without labels has exactly one series: it exists from the start. */
    if (f->nlabels == 0) {
        series_new(f, NULL);
    }
    return f;
}

sl_metric *sl_metrics_declare(sl_metrics *m, sl_metrics_type type, const char *name,
                              const char *help, const char *labels, const double *bounds,
                              int nbounds, int scope)
{
    pthread_mutex_lock(&m->mu);
    sl_metric *f = declare_locked(m, type, name, help, labels, bounds, nbounds, scope);
    pthread_mutex_unlock(&m->mu);
    return f;
}

sl_metric *sl_metrics_family(sl_metrics *m, sl_metric_id id)
{
    SL_ASSERT(id >= 0 && id < SL_M_COUNT);
    pthread_mutex_lock(&m->mu);
    sl_metric *f = m->by_id[id];
    if (f == NULL) {
        const entry *e = &table[id];
        int nb = e->buckets == SL_METRICS_BUCKETS_NONE ? 0 : bucket_sets[e->buckets].n;
        f = declare_locked(m, e->type, e->name, e->help, e->labels, bucket_sets[e->buckets].b, nb,
                           e->scope);
        m->by_id[id] = f;
    }
    pthread_mutex_unlock(&m->mu);
    return f;
}

sl_series *sl_metrics_seriesv(sl_metric *f, const char *const *values)
{
    sl_metrics *m = f->reg;
    pthread_mutex_lock(&m->mu);
    sl_series *found = NULL;
    for (int i = 0; i < f->nseries && found == NULL; i++) {
        sl_series *s = f->series[i];
        int j = 0;
        while (j < f->nlabels && strcmp(s->values[j], values[j]) == 0) {
            j++;
        }
        if (j == f->nlabels) {
            found = s;
        }
    }
    if (found == NULL) {
        found = series_new(f, values);
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

sl_series *sl_metrics_series_(sl_metric_id id, ...)
{
    sl_metric *f = sl_metrics_family(sl_metrics_default(), id);
    const char *values[16];
    int n = 0;
    va_list ap;
    va_start(ap, id);
    for (;;) {
        const char *v = va_arg(ap, const char *);
        if (v == SL_METRICS_END) {
            break;
        }
        SL_ASSERT(n < 16 && v != NULL);
        values[n++] = v;
    }
    va_end(ap);
    if (n != f->nlabels) {
        char what[200];
        snprintf(what, sizeof(what), "%s takes %d label values, got %d", f->name, f->nlabels, n);
        sl_panic(__FILE__, __LINE__, what);
    }
    return sl_metrics_seriesv(f, values);
}

/* ---- values ------------------------------------------------------------------------------- */

static double load_double(const _Atomic uint64_t *a)
{
    uint64_t bits = atomic_load_explicit(a, memory_order_relaxed);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void add_double(_Atomic uint64_t *a, double d)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    for (;;) {
        double v;
        memcpy(&v, &old, sizeof(v));
        v += d;
        uint64_t nbits;
        memcpy(&nbits, &v, sizeof(nbits));
        if (atomic_compare_exchange_weak_explicit(a, &old, nbits, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return;
        }
    }
}

void sl_series_add(sl_series *s, double v)
{
    add_double(&s->bits, v);
}

void sl_series_set(sl_series *s, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    atomic_store_explicit(&s->bits, bits, memory_order_relaxed);
}

void sl_series_observe(sl_series *s, double v)
{
    SL_ASSERT(s->counts != NULL);
    int i = 0;
    while (i < s->nbounds && !(v <= s->bounds[i])) {
        i++;
    }
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    add_double(&s->bits, v);
}

double sl_series_value(const sl_series *s)
{
    return load_double(&s->bits);
}

uint64_t sl_series_count(const sl_series *s)
{
    uint64_t n = 0;
    for (int i = 0; s->counts != NULL && i <= s->nbounds; i++) {
        n += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
    }
    return n;
}

uint64_t sl_series_count_le(const sl_series *s, double bound)
{
    if (isinf(bound) && bound > 0) {
        return sl_series_count(s);
    }
    uint64_t n = 0;
    for (int i = 0; s->counts != NULL && i < s->nbounds && s->bounds[i] <= bound; i++) {
        n += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
    }
    return n;
}

/* ---- rendering ----------------------------------------------------------------------------- */

char *sl_metrics_format_value(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, size, "%.0f", v);
    } else {
        /* The shortest %g form that reads back to the same double. */
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) {
                break;
            }
        }
    }
    return buf;
}

static void put_escaped(sl_buf *out, const char *s, bool quote)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\') {
            sl_buf_append(out, "\\\\", 2);
        } else if (*p == '\n') {
            sl_buf_append(out, "\\n", 2);
        } else if (*p == '"' && quote) {
            sl_buf_append(out, "\\\"", 2);
        } else {
            sl_buf_append(out, p, 1);
        }
    }
}

static void put_str(sl_buf *out, const char *s)
{
    sl_buf_append(out, s, strlen(s));
}

/* Writes "{a="x",b="y"}" for the const labels (scoped families), the series' labels
 * and an extra label (le); nothing when there are none. */
static void put_labels(sl_buf *out, const sl_metric *f, const sl_series *s,
                       const char *const *const_labels, const char *extra_name,
                       const char *extra_value)
{
    int n = 0;
    if (f->scope == SL_METRICS_PROC && const_labels != NULL) {
        for (int i = 0; const_labels[i] != NULL && const_labels[i + 1] != NULL; i += 2) {
            put_str(out, n++ == 0 ? "{" : ",");
            put_str(out, const_labels[i]);
            put_str(out, "=\"");
            put_escaped(out, const_labels[i + 1], true);
            put_str(out, "\"");
        }
    }
    for (int i = 0; i < f->nlabels; i++) {
        put_str(out, n++ == 0 ? "{" : ",");
        put_str(out, f->labels[i]);
        put_str(out, "=\"");
        put_escaped(out, s->values[i], true);
        put_str(out, "\"");
    }
    if (extra_name != NULL) {
        put_str(out, n++ == 0 ? "{" : ",");
        put_str(out, extra_name);
        put_str(out, "=\"");
        put_str(out, extra_value);
        put_str(out, "\"");
    }
    if (n > 0) {
        put_str(out, "}");
    }
}

static void put_sample(sl_buf *out, const sl_metric *f, const char *suffix, const sl_series *s,
                       const char *const *const_labels, const char *le, double v)
{
    char num[64];
    put_str(out, f->name);
    put_str(out, suffix);
    put_labels(out, f, s, const_labels, le != NULL ? "le" : NULL, le);
    put_str(out, " ");
    put_str(out, sl_metrics_format_value(v, num, sizeof(num)));
    put_str(out, "\n");
}

static void render_family(sl_buf *out, const sl_metric *f, const char *const *const_labels)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    put_str(out, "# HELP ");
    put_str(out, f->name);
    put_str(out, " ");
    put_escaped(out, f->help, false);
    put_str(out, "\n# TYPE ");
    put_str(out, f->name);
    put_str(out, " ");
    put_str(out, type_names[f->type]);
    put_str(out, "\n");
    for (int i = 0; i < f->nseries; i++) {
        const sl_series *s = f->series[i];
        if (f->type != SL_METRICS_HISTOGRAM) {
            put_sample(out, f, "", s, const_labels, NULL, sl_series_value(s));
            continue;
        }
        uint64_t cum = 0;
        char le[64];
        for (int b = 0; b <= f->nbounds; b++) {
            cum += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
            if (b < f->nbounds) {
                sl_metrics_format_value(f->bounds[b], le, sizeof(le));
            } else {
                snprintf(le, sizeof(le), "+Inf");
            }
            put_sample(out, f, "_bucket", s, const_labels, le, (double)cum);
        }
        put_sample(out, f, "_sum", s, const_labels, NULL, sl_series_value(s));
        put_sample(out, f, "_count", s, const_labels, NULL, (double)cum);
    }
}

void sl_metrics_render(sl_metrics *m, const char *const *const_labels, sl_buf *out)
{
    pthread_mutex_lock(&m->mu);
    /* Table entries first, in table order, so every process lists families alike. */
    for (int id = 0; id < SL_M_COUNT; id++) {
        if (m->by_id[id] != NULL) {
            render_family(out, m->by_id[id], const_labels);
        }
    }
    for (int i = 0; i < m->nfams; i++) {
        bool in_table = false;
        for (int id = 0; id < SL_M_COUNT && !in_table; id++) {
            in_table = m->by_id[id] == m->fams[i];
        }
        if (!in_table) {
            render_family(out, m->fams[i], const_labels);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- process metrics ------------------------------------------------------------------------ */

void sl_metrics_process_update(sl_metrics *m)
{
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name, which is in parentheses and may hold spaces:
         * state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24). */
        const char *p = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0, start = 0;
        long long rss = 0;
        if (p != NULL &&
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                   "%*d %llu %*u %lld",
                   &utime, &stime, &start, &rss) == 4 &&
            ticks > 0) {
            sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_CPU), NULL),
                          (double)(utime + stime) / (double)ticks);
            sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_RSS), NULL),
                          (double)rss * (double)page);
            sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_ANON), NULL),
                          (double)sl_mem_used());
            sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_MEM_BOUND), NULL),
                          (double)sl_mem_bound());
            /* starttime counts ticks since boot; boot time is btime in /proc/stat. */
            FILE *s = fopen("/proc/stat", "r");
            char line[256];
            long long btime = -1;
            while (s != NULL && fgets(line, sizeof(line), s) != NULL) {
                if (sscanf(line, "btime %lld", &btime) == 1) {
                    break;
                }
            }
            if (s != NULL) {
                fclose(s);
            }
            if (btime >= 0) {
                sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_START), NULL),
                              (double)btime + (double)start / (double)ticks);
            }
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            n += e->d_name[0] != '.';
        }
        closedir(d);
        /* One of them is the directory being read. */
        sl_series_set(sl_metrics_seriesv(sl_metrics_family(m, SL_M_PROCESS_FDS), NULL),
                      (double)(n - 1));
    }
}

/* ---- docs ------------------------------------------------------------------------------------ */

void sl_metrics_print_docs(FILE *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    fprintf(f, "| metric | type | labels | exported by | meaning |\n|---|---|---|---|---|\n");
    for (int id = 0; id < SL_M_COUNT; id++) {
        const entry *e = &table[id];
        fprintf(f, "| `%s` | %s | %s | %s | %s |\n", e->name, type_names[e->type],
                e->labels[0] != '\0' ? e->labels : "", e->actor, e->help);
    }
}

/* ---- lag marks ------------------------------------------------------------------------------- */

typedef struct mark {
    int64_t end;
    int64_t at_ms;
} mark;

typedef struct ring {
    mark *m;
    size_t head, n, cap;
} ring;

struct sl_lagmarks {
    int nslots;
    int64_t resolution_ms;
    ring *slots;
};

sl_lagmarks *sl_lagmarks_new(int nslots, int64_t resolution_ms)
{
    sl_lagmarks *l = sl_calloc(1, sizeof(*l));
    l->nslots = nslots;
    l->resolution_ms = resolution_ms;
    l->slots = sl_calloc((size_t)(nslots > 0 ? nslots : 1), sizeof(ring));
    return l;
}

void sl_lagmarks_free(sl_lagmarks *l)
{
    if (l == NULL) {
        return;
    }
    for (int i = 0; i < l->nslots; i++) {
        free(l->slots[i].m);
    }
    free(l->slots);
    free(l);
}

static mark *ring_at(ring *r, size_t i)
{
    return &r->m[(r->head + i) % r->cap];
}

void sl_lagmarks_note(sl_lagmarks *l, int slot, int64_t end_offset, int64_t at_ms)
{
    SL_ASSERT(slot >= 0 && slot < l->nslots);
    ring *r = &l->slots[slot];
    if (r->n > 0) {
        mark *last = ring_at(r, r->n - 1);
        if (end_offset <= last->end) {
            return;
        }
        if (at_ms - last->at_ms < l->resolution_ms) {
            last->end = end_offset; /* merged: keeps the older time */
            return;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap == 0 ? 16 : r->cap * 2;
        mark *m = sl_malloc(cap * sizeof(mark));
        for (size_t i = 0; i < r->n; i++) {
            m[i] = *ring_at(r, i);
        }
        free(r->m);
        r->m = m;
        r->cap = cap;
        r->head = 0;
    }
    r->n++;
    *ring_at(r, r->n - 1) = (mark){end_offset, at_ms};
}

int64_t sl_lagmarks_oldest(sl_lagmarks *l, int slot, int64_t consumed)
{
    SL_ASSERT(slot >= 0 && slot < l->nslots);
    ring *r = &l->slots[slot];
    while (r->n > 0 && ring_at(r, 0)->end <= consumed) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    return r->n > 0 ? ring_at(r, 0)->at_ms : 0;
}
