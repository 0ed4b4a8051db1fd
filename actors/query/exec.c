/* Execution of native query plans (see exec.h).
 *
 * Three phases: compile (filters to per-dictionary bitmaps), scan (one sl_store_scan
 * per query interval, aggregating into the group table) and output (sort, zero-fill,
 * rank, having, limit, then JSON). The scan callback is the hot path: it touches only
 * integer ids, one cached bucket per stored minute and a flat accumulator array.
 *
 * Sketch aggregators keep one decoded sketch per group (created at the group's first
 * non-empty stored sketch) and merge each stored row's serialized sketch straight into
 * it with sl_hll_merge_bytes / sl_dds_merge_bytes: nothing is re-serialized, and since
 * both sketches are exactly mergeable the answer does not depend on how the rows were
 * split or in which order they are read. cardinality hashes dimension values at query
 * time, caching the hash of each dictionary id. */
#define _GNU_SOURCE /* qsort_r */
#include "exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hash.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "result.h"
#include "sketch.h"

/* ---- compiled filters ---------------------------------------------------------------- */

typedef enum cf_type { CF_TRUE, CF_FALSE, CF_BITS, CF_AND, CF_OR, CF_NOT } cf_type;

typedef struct cfilt cfilt;
struct cfilt {
    cf_type type;
    int dim;
    uint8_t *bits; /* bits[id] for id < nbits; larger ids never match */
    uint32_t nbits;
    int nkids;
    cfilt **kids;
};

static void cf_free(cfilt *f)
{
    if (f == NULL) {
        return;
    }
    for (int i = 0; i < f->nkids; i++) {
        cf_free(f->kids[i]);
    }
    free(f->kids);
    free(f->bits);
    free(f);
}

static inline bool cf_eval(const cfilt *f, const sl_store_row *row)
{
    switch (f->type) {
    case CF_BITS: {
        uint32_t id = row->dim_ids[f->dim];
        return id < f->nbits && f->bits[id];
    }
    case CF_TRUE:
        return true;
    case CF_FALSE:
        return false;
    case CF_AND:
        for (int i = 0; i < f->nkids; i++) {
            if (!cf_eval(f->kids[i], row)) {
                return false;
            }
        }
        return true;
    case CF_OR:
        for (int i = 0; i < f->nkids; i++) {
            if (cf_eval(f->kids[i], row)) {
                return true;
            }
        }
        return false;
    case CF_NOT:
        return !cf_eval(f->kids[0], row);
    }
    return false;
}

/* ---- the execution state --------------------------------------------------------------- */

/* Groups: open addressing over (bucket, ids[nk]); accumulators in one flat array,
 * sketches (ns per group, NULL until the first value) in another. */
typedef struct gtab {
    int nk;
    int na;
    int ns;
    size_t n, cap;
    int64_t *bucket;
    uint32_t *ids;
    double *acc;
    void **sk;
    uint32_t *slot; /* group index + 1; 0 = empty */
    size_t nslots;  /* power of two */
} gtab;

/* The hashes of one dimension's dictionary ids, filled on first use (0: not yet). */
typedef struct idhash {
    uint64_t *h;
    uint32_t n;
} idhash;

typedef struct ex {
    const sl_native *q;
    const sl_spec *spec;
    sl_store_reader *rd; /* NULL: no store yet */
    sl_err *err;
    uint32_t dict_n[SL_MAX_DIMS];
    bool dict_known[SL_MAX_DIMS];

    cfilt *filter;
    cfilt **aggf; /* per aggregator, NULL when unfiltered */
    double *acc_init;
    bool *sk_dds;   /* per sketch: a DDSketch (else a HyperLogLog) */
    void **sk_none; /* ns NULL sketches: an empty bucket's */
    idhash hcache[SL_MAX_DIMS];
    uint64_t ndense; /* HyperLogLogs turned dense, for the memory bound */

    gtab t;
    int qdim[SL_MAX_DIMS]; /* spec dim index of each query dimension, -1: always null */

    int64_t last_minute;
    int64_t last_bucket;
    size_t cached; /* group of last_bucket when nk == 0, SIZE_MAX: none */
    uint64_t rows;
    int64_t deadline_ms; /* 0: none */
    int64_t timeout_ms;
} ex;

static int dict_size(ex *e, int dim, uint32_t *n)
{
    if (!e->dict_known[dim]) {
        e->dict_n[dim] = 0;
        if (e->rd != NULL) {
            int rc = sl_store_dict_size(e->rd, e->spec, dim, &e->dict_n[dim], e->err);
            if (rc != 0) {
                return rc;
            }
        }
        e->dict_known[dim] = true;
    }
    *n = e->dict_n[dim];
    return 0;
}

static int dict_get(ex *e, int dim, uint32_t id, sl_str *s)
{
    s->p = NULL;
    s->len = 0;
    if (id == 0 || e->rd == NULL) {
        return 0;
    }
    return sl_store_dict_get(e->rd, e->spec, dim, id, s, e->err);
}

/* Sizes the id hash cache of dimension d (read by a cardinality aggregator) to its
 * dictionary; -1 (not a dimension) needs none. */
static int hash_cache_init(ex *e, int d)
{
    if (d < 0 || e->hcache[d].h != NULL) {
        return 0;
    }
    uint32_t n;
    int rc = dict_size(e, d, &n);
    if (rc != 0) {
        return rc;
    }
    e->hcache[d].n = n + 1;
    e->hcache[d].h = sl_calloc((size_t)n + 1, sizeof(uint64_t));
    return 0;
}

/* ---- filter compilation ---------------------------------------------------------------- */

static bool is_leaf(const sl_filter *f)
{
    return f->type != SL_FILTER_AND && f->type != SL_FILTER_OR && f->type != SL_FILTER_NOT;
}

/* Bit set of the stored dimensions f reads (other columns are all null). */
static uint32_t filter_dims(const sl_filter *f)
{
    if (is_leaf(f)) {
        return f->column != NULL && f->dim >= 0 ? 1u << f->dim : 0;
    }
    uint32_t m = 0;
    for (int i = 0; i < f->nkids; i++) {
        m |= filter_dims(f->kids[i]);
    }
    return m;
}

/* f on a row whose dimension d is s (NULL: null) and every other column null. */
static bool eval_one(const sl_filter *f, int d, const char *s, size_t len)
{
    switch (f->type) {
    case SL_FILTER_AND:
        for (int i = 0; i < f->nkids; i++) {
            if (!eval_one(f->kids[i], d, s, len)) {
                return false;
            }
        }
        return true;
    case SL_FILTER_OR:
        for (int i = 0; i < f->nkids; i++) {
            if (eval_one(f->kids[i], d, s, len)) {
                return true;
            }
        }
        return false;
    case SL_FILTER_NOT:
        return !eval_one(f->kids[0], d, s, len);
    default:
        if (f->column != NULL && f->dim == d) {
            return sl_filter_match_str(f, s, len);
        }
        return sl_filter_match_str(f, NULL, 0);
    }
}

/* Fills bits[0..n] for f, a filter reading only dimension d. Selector/in leaves look
 * their values up in the dictionary; other leaves test every dictionary entry. */
static int build_bits(ex *e, const sl_filter *f, int d, uint8_t *bits, uint32_t n)
{
    int rc;
    if (f->type == SL_FILTER_AND || f->type == SL_FILTER_OR) {
        uint8_t *tmp = sl_malloc((size_t)n + 1);
        rc = build_bits(e, f->kids[0], d, bits, n);
        for (int i = 1; i < f->nkids && rc == 0; i++) {
            rc = build_bits(e, f->kids[i], d, tmp, n);
            for (uint32_t id = 0; id <= n && rc == 0; id++) {
                bits[id] = f->type == SL_FILTER_AND ? (bits[id] & tmp[id]) : (bits[id] | tmp[id]);
            }
        }
        free(tmp);
        return rc;
    }
    if (f->type == SL_FILTER_NOT) {
        rc = build_bits(e, f->kids[0], d, bits, n);
        for (uint32_t id = 0; id <= n; id++) {
            bits[id] = !bits[id];
        }
        return rc;
    }
    if (f->column == NULL || f->dim != d) {
        memset(bits, sl_filter_match_str(f, NULL, 0) ? 1 : 0, (size_t)n + 1);
        return 0;
    }
    if (f->type == SL_FILTER_VALUES) {
        memset(bits, 0, (size_t)n + 1);
        for (int i = 0; i < f->nvalues; i++) {
            if (f->values[i] == NULL) {
                bits[0] = 1;
                continue;
            }
            uint32_t id;
            if (e->rd == NULL) {
                continue;
            }
            rc = sl_store_dict_find(e->rd, e->spec, d, f->values[i], strlen(f->values[i]), &id,
                                    e->err);
            if (rc == SL_ENOTFOUND) {
                continue;
            }
            if (rc != 0) {
                return rc;
            }
            if (id <= n) {
                bits[id] = 1;
            }
        }
        return 0;
    }
    bits[0] = sl_filter_match_str(f, NULL, 0);
    for (uint32_t id = 1; id <= n; id++) {
        sl_str s;
        if ((rc = dict_get(e, d, id, &s)) != 0) {
            return rc;
        }
        bits[id] = sl_filter_match_str(f, s.p, s.len);
    }
    return 0;
}

static int compile(ex *e, const sl_filter *f, cfilt **out)
{
    cfilt *c = sl_calloc(1, sizeof(*c));
    *out = c;
    uint32_t dims = filter_dims(f);
    if (dims == 0) {
        c->type = eval_one(f, -1, NULL, 0) ? CF_TRUE : CF_FALSE;
        return 0;
    }
    if ((dims & (dims - 1)) == 0) {
        int d = __builtin_ctz(dims);
        uint32_t n;
        int rc = dict_size(e, d, &n);
        if (rc != 0) {
            return rc;
        }
        c->type = CF_BITS;
        c->dim = d;
        c->nbits = n + 1;
        c->bits = sl_malloc((size_t)n + 1);
        return build_bits(e, f, d, c->bits, n);
    }
    /* Several dimensions: keep the boolean node, fold constant children. */
    c->type = f->type == SL_FILTER_AND ? CF_AND : f->type == SL_FILTER_OR ? CF_OR : CF_NOT;
    c->kids = sl_calloc((size_t)f->nkids, sizeof(cfilt *));
    for (int i = 0; i < f->nkids; i++) {
        cfilt *k;
        int rc = compile(e, f->kids[i], &k);
        if (rc != 0) {
            cf_free(k);
            return rc;
        }
        if (c->type == CF_NOT) {
            c->kids[c->nkids++] = k;
            continue;
        }
        bool absorbing =
            (c->type == CF_AND && k->type == CF_FALSE) || (c->type == CF_OR && k->type == CF_TRUE);
        bool neutral =
            (c->type == CF_AND && k->type == CF_TRUE) || (c->type == CF_OR && k->type == CF_FALSE);
        if (absorbing) {
            cf_type t = k->type;
            cf_free(k);
            for (int j = 0; j < c->nkids; j++) {
                cf_free(c->kids[j]);
            }
            c->nkids = 0;
            c->type = t;
            return 0;
        }
        if (neutral) {
            cf_free(k);
            continue;
        }
        c->kids[c->nkids++] = k;
    }
    if (c->type != CF_NOT && c->nkids == 0) {
        c->type = c->type == CF_AND ? CF_TRUE : CF_FALSE;
    }
    return 0;
}

/* ---- group table -------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t key_hash(int64_t bucket, const uint32_t *ids, int nk)
{
    uint64_t h = (uint64_t)bucket * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < nk; i++) {
        h = (h ^ ids[i]) * 0x100000001b3ULL;
    }
    return mix64(h);
}

static void gtab_init(gtab *t, int nk, int na, int ns)
{
    memset(t, 0, sizeof(*t));
    t->nk = nk;
    t->na = na;
    t->ns = ns;
    t->nslots = 64;
    t->slot = sl_calloc(t->nslots, sizeof(uint32_t));
}

static void sketches_free(void **sk, int ns, const bool *is_dds)
{
    for (int i = 0; i < ns; i++) {
        if (is_dds[i]) {
            sl_dds_free(sk[i]);
        } else {
            sl_hll_free(sk[i]);
        }
        sk[i] = NULL;
    }
}

static void gtab_fini(gtab *t, const bool *is_dds)
{
    for (size_t g = 0; g < t->n && t->ns > 0; g++) {
        sketches_free(t->sk + g * (size_t)t->ns, t->ns, is_dds);
    }
    free(t->bucket);
    free(t->ids);
    free(t->acc);
    free(t->sk);
    free(t->slot);
}

static void gtab_rehash(gtab *t)
{
    free(t->slot);
    t->nslots *= 2;
    t->slot = sl_calloc(t->nslots, sizeof(uint32_t));
    size_t mask = t->nslots - 1;
    for (size_t g = 0; g < t->n; g++) {
        size_t i = key_hash(t->bucket[g], t->ids + g * (size_t)t->nk, t->nk) & mask;
        while (t->slot[i] != 0) {
            i = (i + 1) & mask;
        }
        t->slot[i] = (uint32_t)(g + 1);
    }
}

/* Index of the group (bucket, ids), created with init accumulators; SIZE_MAX when the
 * table is full (SL_EXEC_MAX_GROUPS). */
static size_t gtab_get(gtab *t, int64_t bucket, const uint32_t *ids, const double *init)
{
    size_t mask = t->nslots - 1;
    size_t i = key_hash(bucket, ids, t->nk) & mask;
    size_t klen = sizeof(uint32_t) * (size_t)t->nk;
    for (;;) {
        uint32_t s = t->slot[i];
        if (s == 0) {
            break;
        }
        size_t g = s - 1;
        if (t->bucket[g] == bucket &&
            (klen == 0 || memcmp(t->ids + g * (size_t)t->nk, ids, klen) == 0)) {
            return g;
        }
        i = (i + 1) & mask;
    }
    if (t->n >= SL_EXEC_MAX_GROUPS) {
        return SIZE_MAX;
    }
    if (t->n == t->cap) {
        t->cap = t->cap == 0 ? 64 : t->cap * 2;
        t->bucket = sl_realloc(t->bucket, t->cap * sizeof(int64_t));
        t->ids = sl_realloc(t->ids, t->cap * klen + 1);
        t->acc = sl_realloc(t->acc, t->cap * sizeof(double) * (size_t)t->na + 1);
        t->sk = sl_realloc(t->sk, t->cap * sizeof(void *) * (size_t)t->ns + 1);
    }
    size_t g = t->n++;
    t->bucket[g] = bucket;
    if (klen > 0) {
        memcpy(t->ids + g * (size_t)t->nk, ids, klen);
    }
    if (t->na > 0) {
        memcpy(t->acc + g * (size_t)t->na, init, sizeof(double) * (size_t)t->na);
    }
    for (int k = 0; k < t->ns; k++) {
        t->sk[g * (size_t)t->ns + (size_t)k] = NULL;
    }
    t->slot[i] = (uint32_t)(g + 1);
    if (t->n * 2 > t->nslots) {
        gtab_rehash(t);
    }
    return g;
}

/* ---- scan ------------------------------------------------------------------------------ */

#define STOP_FULL 1
#define STOP_SKETCHES 2
#define STOP_MEMORY 3

/* Memory (memory_mb.query, see mem.h): a query stops once the process is above this
 * share of the bound. It is checked every MEM_CHECK_ROWS scanned rows and every
 * MEM_CHECK_ROWS written result rows, whose growth in between (a few MiB) the rest of
 * the bound leaves room for. */
#define QUERY_MEM_SHARE 0.8
#define MEM_CHECK_ROWS 16384

/* The error of a query stopped by the memory bound (SL_ETOOBIG: 400, "Resource limit
 * exceeded"). */
static int mem_error(ex *e, const char *where)
{
    SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "refuse");
    return sl_err_set(e->err, SL_ETOOBIG,
                      "the query needs more memory than this query process may use (%lld "
                      "MiB, memory_mb.query) %s; narrow the intervals, use a coarser "
                      "granularity, fewer dimensions, a filter or a limit",
                      (long long)(sl_mem_bound() >> 20), where);
}

/* True every MEM_CHECK_ROWS output rows when the process is over QUERY_MEM_SHARE. */
static bool out_over_memory(size_t i)
{
    return (i & (MEM_CHECK_ROWS - 1)) == MEM_CHECK_ROWS - 1 && sl_mem_above(QUERY_MEM_SHARE);
}

/* Dense HyperLogLogs hold 16 KiB each: at most this many per query (512 MiB). */
#define MAX_DENSE_SKETCHES 32768

/* A stored sketch that does not decode: the store is damaged, not the query. */
static int bad_sketch(ex *e, const sl_store_row *row, const sl_agg *a, const sl_err *why)
{
    char t[40];
    return sl_err_set(e->err, SL_EIO, "stored row of %s at %s: metric \"%s\" is unreadable: %s",
                      e->spec->name, sl_time_format(row->bucket_ms, t, sizeof(t)),
                      e->spec->metrics[a->src].name, why->msg);
}

/* xxHash64 of the string of dictionary id of dimension d (the hash a distinct metric
 * gives the same value), cached per id. */
static int id_hash(ex *e, int d, uint32_t id, uint64_t *out)
{
    idhash *c = &e->hcache[d];
    if (id < c->n && c->h[id] != 0) {
        *out = c->h[id];
        return 0;
    }
    sl_str s;
    int rc = dict_get(e, d, id, &s);
    if (rc != 0) {
        return rc;
    }
    uint64_t h = sl_hash64(s.p != NULL ? s.p : "", s.len);
    if (id < c->n) {
        c->h[id] = h;
    }
    *out = h;
    return 0;
}

/* Hashes of the row for a cardinality aggregator: the non-null values of its fields, or
 * (byRow) one hash of the combination, unless every field is null. */
static int card_add(ex *e, const sl_agg *a, const sl_store_row *row, sl_hll *h)
{
    uint64_t hs[SL_MAX_DIMS];
    bool any = false;
    for (int k = 0; k < a->nfields; k++) {
        int d = a->fields[k];
        uint32_t id = d >= 0 ? row->dim_ids[d] : 0;
        /* null: a value no string hashes to in practice, so that (null, "x") and
         * ("", "x") differ */
        hs[k] = 0x9e3779b97f4a7c15ULL;
        if (id == 0) {
            continue;
        }
        int rc = id_hash(e, d, id, &hs[k]);
        if (rc != 0) {
            return rc;
        }
        any = true;
        if (!a->by_row || a->nfields == 1) {
            sl_hll_add_hash(h, hs[k]);
        }
    }
    if (any && a->by_row && a->nfields > 1) {
        sl_hll_add_hash(h, sl_hash64(hs, sizeof(uint64_t) * (size_t)a->nfields));
    }
    return 0;
}

static int sketch_row(ex *e, const sl_agg *a, const sl_store_row *row, void **slot)
{
    sl_err why = {0, ""};
    if (a->op == SL_AGG_DDS) {
        sl_str b = row->sketches[a->src];
        if (b.p == NULL || b.len == 0) {
            return 0;
        }
        if (*slot == NULL) {
            *slot = sl_dds_new();
        }
        if (sl_dds_merge_bytes(*slot, b.p, b.len, &why) != 0) {
            return bad_sketch(e, row, a, &why);
        }
        return 0;
    }
    if (a->op == SL_AGG_HLL) {
        sl_str b = row->sketches[a->src];
        if (b.p == NULL || b.len == 0) {
            return 0;
        }
        if (*slot == NULL) {
            *slot = sl_hll_new();
        }
        bool sparse = sl_hll_is_sparse(*slot);
        if (sl_hll_merge_bytes(*slot, b.p, b.len, &why) != 0) {
            return bad_sketch(e, row, a, &why);
        }
        if (sparse && !sl_hll_is_sparse(*slot) && ++e->ndense > MAX_DENSE_SKETCHES) {
            return STOP_SKETCHES;
        }
        return 0;
    }
    if (*slot == NULL) {
        *slot = sl_hll_new();
    }
    bool sparse = sl_hll_is_sparse(*slot);
    int rc = card_add(e, a, row, *slot);
    if (rc == 0 && sparse && !sl_hll_is_sparse(*slot) && ++e->ndense > MAX_DENSE_SKETCHES) {
        return STOP_SKETCHES;
    }
    return rc;
}

static int on_row(void *arg, const sl_store_row *row)
{
    ex *e = arg;
    const sl_native *q = e->q;
    if ((++e->rows & 1023) == 0) {
        if (e->deadline_ms != 0 && sl_mono_ms() > e->deadline_ms) {
            return SL_ETIMEDOUT;
        }
        if ((e->rows & (MEM_CHECK_ROWS - 1)) == 0 && sl_mem_above(QUERY_MEM_SHARE)) {
            return STOP_MEMORY;
        }
    }
    if (e->filter != NULL && !cf_eval(e->filter, row)) {
        return 0;
    }
    if (row->bucket_ms != e->last_minute) {
        e->last_minute = row->bucket_ms;
        e->last_bucket = q->gran.all ? 0 : sl_gran_bucket(&q->gran, row->bucket_ms);
        e->cached = SIZE_MAX;
    }
    size_t g;
    if (e->t.nk == 0) {
        if (e->cached == SIZE_MAX) {
            e->cached = gtab_get(&e->t, e->last_bucket, NULL, e->acc_init);
        }
        g = e->cached;
    } else {
        uint32_t ids[SL_MAX_DIMS];
        for (int k = 0; k < e->t.nk; k++) {
            ids[k] = e->qdim[k] >= 0 ? row->dim_ids[e->qdim[k]] : 0;
        }
        g = gtab_get(&e->t, e->last_bucket, ids, e->acc_init);
    }
    if (g == SIZE_MAX) {
        return STOP_FULL;
    }
    double *acc = e->t.acc + g * (size_t)e->t.na;
    for (int i = 0; i < q->naggs; i++) {
        const sl_agg *a = &q->aggs[i];
        if (e->aggf[i] != NULL && !cf_eval(e->aggf[i], row)) {
            continue;
        }
        if (a->sketch >= 0) {
            int rc = sketch_row(e, a, row, &e->t.sk[g * (size_t)e->t.ns + (size_t)a->sketch]);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        double v = a->src < 0 ? (double)row->count : row->values[a->src];
        /* Stored min/max rows without a value hold +-inf; never let them win. */
        if (!isfinite(v)) {
            continue;
        }
        switch (a->op) {
        case SL_AGG_SUM:
            acc[i] += v;
            break;
        case SL_AGG_MIN:
            if (v < acc[i]) {
                acc[i] = v;
            }
            break;
        case SL_AGG_MAX:
            if (v > acc[i]) {
                acc[i] = v;
            }
            break;
        case SL_AGG_HLL:
        case SL_AGG_CARD:
        case SL_AGG_DDS:
            break;
        }
    }
    return 0;
}

static int scan_range(ex *e, int64_t from, int64_t to, sl_store_scan_cb cb)
{
    if (e->rd == NULL) {
        return 0;
    }
    int rc = sl_store_scan(e->rd, e->spec, from, to, cb, e, e->err);
    if (rc == SL_ETIMEDOUT) {
        return sl_err_set(e->err, SL_ETIMEDOUT,
                          "query did not finish within %lld ms (after %llu rows); narrow the "
                          "intervals or raise context.timeout",
                          (long long)e->timeout_ms, (unsigned long long)e->rows);
    }
    if (rc == STOP_FULL) {
        return sl_err_set(e->err, SL_ETOOBIG,
                          "the query has more than %d groups of (time bucket, dimension values); "
                          "use a coarser granularity, fewer dimensions or a filter",
                          SL_EXEC_MAX_GROUPS);
    }
    if (rc == STOP_MEMORY) {
        char where[96];
        snprintf(where, sizeof(where), "after %llu rows", (unsigned long long)e->rows);
        return mem_error(e, where);
    }
    if (rc == STOP_SKETCHES) {
        return sl_err_set(e->err, SL_ETOOBIG,
                          "the query keeps more than %d large distinct-count sketches (one per "
                          "group and aggregator, 16 KiB each); use a coarser granularity, fewer "
                          "dimensions or a filter",
                          MAX_DENSE_SKETCHES);
    }
    return rc;
}

static int scan_all(ex *e)
{
    const sl_native *q = e->q;
    for (int i = 0; i < q->nintervals; i++) {
        int rc = scan_range(e, q->intervals[i].start, q->intervals[i].end, on_row);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- values -------------------------------------------------------------------------- */

/* The estimate of an HLL sketch (NULL: empty), rounded when the column is a long. */
static double hll_value(const void *sk, bool round_it)
{
    double v = sk != NULL ? sl_hll_estimate(sk) : 0.0;
    return round_it ? round(v) : v;
}

/* A row's sketches (ns of them, NULL: empty) and scratch for its array values. */
typedef struct rowsk {
    void *const *sk;
    double *arr;
} rowsk;

static sl_qval post_eval(const sl_native *q, const sl_post *p, const sl_qval *vals, const rowsk *rs)
{
    sl_qval r = {0, false, NULL};
    switch (p->type) {
    case SL_POST_FIELD:
        return vals[p->ref];
    case SL_POST_CONST:
        r.v = p->value;
        return r;
    case SL_POST_ESTIMATE:
        r.v = hll_value(rs->sk[q->aggs[p->ref].sketch], p->is_long);
        return r;
    case SL_POST_QUANTILE: {
        const sl_dds *d = rs->sk[q->aggs[p->ref].sketch];
        r.v = d != NULL ? sl_dds_quantile(d, p->value) : NAN;
        r.null = isnan(r.v);
        return r;
    }
    case SL_POST_QUANTILES: {
        const sl_dds *d = rs->sk[q->aggs[p->ref].sketch];
        double *out = rs->arr + p->arr_off;
        for (int i = 0; i < p->nfractions; i++) {
            out[i] = d != NULL ? sl_dds_quantile(d, p->fractions[i]) : NAN;
        }
        r.arr = out;
        return r;
    }
    case SL_POST_ARITH:
        for (int i = 0; i < p->nfields; i++) {
            sl_qval x = post_eval(q, p->fields[i], vals, rs);
            if (x.null) {
                r.null = true;
                return r;
            }
            if (i == 0) {
                r.v = x.v;
                continue;
            }
            switch (p->fn) {
            case '+':
                r.v += x.v;
                break;
            case '-':
                r.v -= x.v;
                break;
            case '*':
                r.v *= x.v;
                break;
            case '/': /* Druid: division by zero is 0 */
                r.v = x.v == 0 ? 0 : r.v / x.v;
                break;
            case 'q':
                r.v = r.v / x.v;
                break;
            case 'p':
                r.v = pow(r.v, x.v);
                break;
            }
        }
        return r;
    case SL_POST_GREATEST:
    case SL_POST_LEAST: {
        bool any = false;
        for (int i = 0; i < p->nfields; i++) {
            sl_qval x = post_eval(q, p->fields[i], vals, rs);
            if (x.null) {
                continue;
            }
            if (!any || (p->type == SL_POST_GREATEST ? x.v > r.v : x.v < r.v)) {
                r.v = x.v;
            }
            any = true;
        }
        r.null = !any;
        if (p->is_long && any) {
            r.v = trunc(r.v);
        }
        return r;
    }
    }
    return r;
}

/* Aggregator results (min/max never set: null; long: truncated; sketches: their
 * estimate, rounded for "round": true, or their count of values) and post-aggregators.
 * rs->arr has q->narr doubles for the array values, which vals then point into. */
static void finalize(const sl_native *q, const double *acc, const rowsk *rs, sl_qval *vals)
{
    for (int i = 0; i < q->naggs; i++) {
        const sl_agg *a = &q->aggs[i];
        double v = acc[i];
        vals[i].arr = NULL;
        if (a->sketch >= 0) {
            const void *sk = rs->sk[a->sketch];
            vals[i].null = false;
            vals[i].v = a->op == SL_AGG_DDS ? (sk != NULL ? (double)sl_dds_count(sk) : 0.0)
                                            : hll_value(sk, a->is_long);
            continue;
        }
        vals[i].null = a->op != SL_AGG_SUM && isinf(v);
        vals[i].v = a->is_long ? trunc(v) : v;
    }
    for (int j = 0; j < q->npost; j++) {
        sl_qval r = post_eval(q, q->post[j], vals, rs);
        if (r.arr == NULL && !r.null && !isfinite(r.v)) {
            r.null = true;
        }
        vals[q->naggs + j] = r;
    }
}

/* into += the sketches of sk (both ns long; into's NULL entries are created). */
static void combine_sketches(const ex *e, void **into, void *const *sk)
{
    for (int i = 0; i < e->t.ns; i++) {
        if (sk[i] == NULL) {
            continue;
        }
        if (e->sk_dds[i]) {
            if (into[i] == NULL) {
                into[i] = sl_dds_new();
            }
            sl_dds_merge(into[i], sk[i]);
        } else {
            if (into[i] == NULL) {
                into[i] = sl_hll_new();
            }
            sl_hll_merge(into[i], sk[i]);
        }
    }
}

static void combine(const sl_native *q, double *into, const double *acc)
{
    for (int i = 0; i < q->naggs; i++) {
        switch (q->aggs[i].op) {
        case SL_AGG_SUM:
            into[i] += acc[i];
            break;
        case SL_AGG_MIN:
            into[i] = acc[i] < into[i] ? acc[i] : into[i];
            break;
        case SL_AGG_MAX:
            into[i] = acc[i] > into[i] ? acc[i] : into[i];
            break;
        case SL_AGG_HLL:
        case SL_AGG_CARD:
        case SL_AGG_DDS:
            break; /* combine_sketches */
        }
    }
}

/* ---- comparisons ------------------------------------------------------------------------ */

static int cmp_str(sl_str a, sl_str b)
{
    if (a.p == NULL || b.p == NULL) {
        return a.p == NULL ? (b.p == NULL ? 0 : -1) : 1;
    }
    size_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.p, b.p, n);
    if (r != 0) {
        return r < 0 ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static bool str_number(sl_str s, double *out)
{
    char tmp[64];
    if (s.p == NULL || s.len == 0 || s.len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = '\0';
    char *end;
    *out = strtod(tmp, &end);
    return *end == '\0' && !isnan(*out);
}

/* Numeric order: null, then non-numbers (lexicographic), then numbers by value. */
static int cmp_str_order(sl_str a, sl_str b, sl_order order)
{
    if (order == SL_ORDER_LEXICOGRAPHIC || a.p == NULL || b.p == NULL) {
        return cmp_str(a, b);
    }
    double x, y;
    bool xn = str_number(a, &x), yn = str_number(b, &y);
    if (xn && yn) {
        return x < y ? -1 : x > y ? 1 : cmp_str(a, b);
    }
    if (xn != yn) {
        return xn ? 1 : -1;
    }
    return cmp_str(a, b);
}

/* Values: null lowest. */
static int cmp_val(sl_qval a, sl_qval b)
{
    if (a.null || b.null) {
        return a.null ? (b.null ? 0 : -1) : 1;
    }
    return a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* ---- output helpers ------------------------------------------------------------------- */

/* Output rows of topN / groupBy: a group with its finished values and dim strings. */
typedef struct orow {
    int64_t bucket;
    sl_qval *vals;
    sl_str *dims;
} orow;

/* The sketches of group g (e->sk_none for SIZE_MAX, an empty bucket). */
static void *const *group_sketches(const ex *e, size_t g)
{
    if (g == SIZE_MAX || e->t.ns == 0) {
        return e->sk_none;
    }
    return e->t.sk + g * (size_t)e->t.ns;
}

typedef struct sort_ctx {
    const sl_native *q;
} sort_ctx;

/* Resolves every group's dimension strings and values into rows; array values live in
 * *arrbuf. The caller frees the four buffers. */
static int make_rows(ex *e, orow **out, sl_qval **valbuf, sl_str **strbuf, double **arrbuf)
{
    const sl_native *q = e->q;
    size_t n = e->t.n;
    int nk = e->t.nk;
    *out = NULL;
    *valbuf = NULL;
    *strbuf = NULL;
    *arrbuf = NULL;
    /* What this and the sort take at once, checked before it is allocated: a large
     * groupBy would otherwise pass the bound in one step, between two checks. */
    size_t need =
        n * (sizeof(orow) + (size_t)q->ncols * sizeof(sl_qval) + (size_t)nk * sizeof(sl_str) +
             (size_t)q->narr * sizeof(double) + sizeof(orow *));
    if (sl_mem_bound() > 0 && sl_mem_used() + (int64_t)need > sl_mem_budget(QUERY_MEM_SHARE)) {
        char where[96];
        snprintf(where, sizeof(where), "assembling its %zu result groups", n);
        return mem_error(e, where);
    }
    orow *rows = sl_calloc(n + 1, sizeof(orow));
    sl_qval *vals = sl_calloc(n * (size_t)q->ncols + 1, sizeof(sl_qval));
    sl_str *strs = sl_calloc(n * (size_t)nk + 1, sizeof(sl_str));
    double *arr = sl_calloc(n * (size_t)q->narr + 1, sizeof(double));
    *out = rows;
    *valbuf = vals;
    *strbuf = strs;
    *arrbuf = arr;
    for (size_t g = 0; g < n; g++) {
        rows[g].bucket = e->t.bucket[g];
        rows[g].vals = vals + g * (size_t)q->ncols;
        rows[g].dims = strs + g * (size_t)nk;
        rowsk rs = {group_sketches(e, g), arr + g * (size_t)q->narr};
        finalize(q, e->t.acc + g * (size_t)e->t.na, &rs, rows[g].vals);
        for (int k = 0; k < nk; k++) {
            if (e->qdim[k] < 0) {
                continue;
            }
            int rc =
                dict_get(e, e->qdim[k], e->t.ids[g * (size_t)nk + (size_t)k], &rows[g].dims[k]);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int64_t out_time(const sl_native *q, int64_t bucket)
{
    return q->gran.all ? q->intervals[0].start : bucket;
}

/* ---- timeseries ------------------------------------------------------------------------ */

static int cmp_group_bucket(const void *x, const void *y, void *arg)
{
    const gtab *t = arg;
    return cmp_i64(t->bucket[*(const size_t *)x], t->bucket[*(const size_t *)y]);
}

static bool bucket_in_intervals(const sl_native *q, int64_t b)
{
    int64_t end = b + q->gran.period_ms;
    for (int i = 0; i < q->nintervals; i++) {
        if (b < q->intervals[i].end && end > q->intervals[i].start) {
            return true;
        }
    }
    return false;
}

typedef struct ts_entry {
    int64_t bucket;
    size_t group; /* SIZE_MAX: empty bucket */
} ts_entry;

static void ts_row(yajl_gen g, const sl_native *q, int64_t ts, bool null_ts, const double *acc,
                   const rowsk *rs, sl_qval *vals)
{
    finalize(q, acc, rs, vals);
    yajl_gen_map_open(g);
    sl_res_cstr(g, "timestamp");
    if (null_ts) {
        yajl_gen_null(g);
    } else {
        sl_res_time(g, ts);
    }
    sl_res_cstr(g, "result");
    yajl_gen_map_open(g);
    sl_res_columns(g, q, vals);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

static int out_timeseries(ex *e, yajl_gen g)
{
    const sl_native *q = e->q;
    gtab *t = &e->t;
    size_t n = t->n;
    size_t *order = sl_malloc((n + 1) * sizeof(size_t));
    ts_entry *list = NULL;
    size_t nlist = 0;
    sl_qval *vals = sl_calloc((size_t)q->ncols + 1, sizeof(sl_qval));
    double *total = sl_malloc(((size_t)q->naggs + 1) * sizeof(double));
    double *arr = sl_calloc((size_t)q->narr + 1, sizeof(double));
    void **total_sk = sl_calloc((size_t)t->ns + 1, sizeof(void *));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    qsort_r(order, n, sizeof(size_t), cmp_group_bucket, t);

    if (q->gran.all) {
        list = sl_calloc(1, sizeof(ts_entry));
        if (n > 0 || !q->skip_empty) {
            list[nlist++] = (ts_entry){q->intervals[0].start, n > 0 ? order[0] : SIZE_MAX};
        }
    } else if (q->skip_empty || n == 0) {
        list = sl_calloc(n + 1, sizeof(ts_entry));
        for (size_t i = 0; i < n; i++) {
            list[nlist++] = (ts_entry){t->bucket[order[i]], order[i]};
        }
    } else {
        /* Zero-fill between the first and last non-empty bucket, only where a bucket
         * overlaps a query interval. */
        int64_t first = t->bucket[order[0]], last = t->bucket[order[n - 1]];
        uint64_t span = (uint64_t)(last - first) / (uint64_t)q->gran.period_ms + 1;
        if (span > SL_EXEC_MAX_ROWS) {
            rc = sl_err_set(e->err, SL_ETOOBIG,
                            "zero-filling would return %llu buckets (more than %d); use a "
                            "coarser granularity or context.skipEmptyBuckets",
                            (unsigned long long)span, SL_EXEC_MAX_ROWS);
            goto out;
        }
        list = sl_calloc(span + 1, sizeof(ts_entry));
        size_t j = 0;
        for (int64_t b = first; b <= last; b += q->gran.period_ms) {
            size_t grp = SIZE_MAX;
            if (j < n && t->bucket[order[j]] == b) {
                grp = order[j++];
            } else if (!bucket_in_intervals(q, b)) {
                continue;
            }
            list[nlist++] = (ts_entry){b, grp};
        }
    }
    if (q->descending) {
        for (size_t i = 0; i < nlist / 2; i++) {
            ts_entry tmp = list[i];
            list[i] = list[nlist - 1 - i];
            list[nlist - 1 - i] = tmp;
        }
    }
    if (q->limit >= 0 && (uint64_t)q->limit < nlist) {
        nlist = (size_t)q->limit;
    }
    yajl_gen_array_open(g);
    for (size_t i = 0; i < nlist; i++) {
        if (out_over_memory(i)) {
            rc = mem_error(e, "writing its result");
            goto out;
        }
        const double *acc =
            list[i].group == SIZE_MAX ? e->acc_init : t->acc + list[i].group * (size_t)t->na;
        rowsk rs = {group_sketches(e, list[i].group), arr};
        ts_row(g, q, list[i].bucket, false, acc, &rs, vals);
    }
    if (q->grand_total) {
        memcpy(total, e->acc_init, sizeof(double) * (size_t)q->naggs);
        for (size_t i = 0; i < n; i++) {
            combine(q, total, t->acc + i * (size_t)t->na);
            combine_sketches(e, total_sk, group_sketches(e, i));
        }
        rowsk rs = {total_sk, arr};
        ts_row(g, q, 0, true, total, &rs, vals);
    }
    yajl_gen_array_close(g);
out:
    free(order);
    free(list);
    free(vals);
    free(total);
    free(arr);
    sketches_free(total_sk, t->ns, e->sk_dds);
    free(total_sk);
    return rc;
}

/* ---- topN -------------------------------------------------------------------------------- */

static int cmp_topn(const void *x, const void *y, void *arg)
{
    const sort_ctx *c = arg;
    const orow *a = *(orow *const *)x, *b = *(orow *const *)y;
    const sl_topn_metric *m = &c->q->metric;
    int r = cmp_i64(a->bucket, b->bucket);
    if (r != 0) {
        return r;
    }
    if (m->kind == SL_TOPN_NUMERIC) {
        r = -cmp_val(a->vals[m->col], b->vals[m->col]); /* largest first */
        if (m->inverted) {
            r = -r;
        }
        if (r != 0) {
            return r;
        }
        return cmp_str(a->dims[0], b->dims[0]);
    }
    r = cmp_str_order(a->dims[0], b->dims[0], m->order);
    return m->inverted ? -r : r;
}

static void out_dim_value(yajl_gen g, const sl_dimspec *d, sl_str s)
{
    sl_res_cstr(g, d->output);
    sl_res_str(g, s);
}

static int out_topn(ex *e, yajl_gen g)
{
    const sl_native *q = e->q;
    orow *rows = NULL, **ptrs = NULL;
    sl_qval *vals = NULL;
    sl_str *strs = NULL;
    double *arr = NULL;
    int rc = make_rows(e, &rows, &vals, &strs, &arr);
    size_t n = e->t.n, m = 0;
    if (rc != 0) {
        goto out;
    }
    ptrs = sl_calloc(n + 1, sizeof(orow *));
    const sl_topn_metric *met = &q->metric;
    for (size_t i = 0; i < n; i++) {
        if (met->kind == SL_TOPN_DIMENSION && met->previous_stop != NULL) {
            sl_str stop = {met->previous_stop, strlen(met->previous_stop)};
            int r = cmp_str_order(rows[i].dims[0], stop, met->order);
            if (met->inverted ? r >= 0 : r <= 0) {
                continue;
            }
        }
        ptrs[m++] = &rows[i];
    }
    sort_ctx sc = {q};
    qsort_r(ptrs, m, sizeof(orow *), cmp_topn, &sc);
    size_t written = 0;
    yajl_gen_array_open(g);
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && ptrs[j]->bucket == ptrs[i]->bucket) {
            j++;
        }
        yajl_gen_map_open(g);
        sl_res_cstr(g, "timestamp");
        sl_res_time(g, out_time(q, ptrs[i]->bucket));
        sl_res_cstr(g, "result");
        yajl_gen_array_open(g);
        for (size_t k = i; k < j && (int64_t)(k - i) < q->threshold; k++) {
            if (out_over_memory(written++)) {
                rc = mem_error(e, "writing its result");
                goto out;
            }
            yajl_gen_map_open(g);
            out_dim_value(g, &q->dims[0], ptrs[k]->dims[0]);
            sl_res_columns(g, q, ptrs[k]->vals);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        i = j;
    }
    yajl_gen_array_close(g);
out:
    free(ptrs);
    free(rows);
    free(vals);
    free(strs);
    free(arr);
    return rc;
}

/* ---- groupBy ----------------------------------------------------------------------------- */

static void format_value(const sl_native *q, int col, sl_qval v, char *buf, size_t size)
{
    bool is_long = col < q->naggs ? q->aggs[col].is_long : q->post[col - q->naggs]->is_long;
    if (is_long && fabs(v.v) < 9.2e18) {
        snprintf(buf, size, "%lld", (long long)v.v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v.v);
        if (strtod(buf, NULL) == v.v) {
            break;
        }
    }
    if (strpbrk(buf, ".e") == NULL && strlen(buf) + 3 < size) {
        strcat(buf, ".0");
    }
}

/* A having filter sees the output row: query dimensions and value columns (as text). */
static bool having_filter(const sl_native *q, const sl_filter *f, const orow *r)
{
    switch (f->type) {
    case SL_FILTER_AND:
        for (int i = 0; i < f->nkids; i++) {
            if (!having_filter(q, f->kids[i], r)) {
                return false;
            }
        }
        return true;
    case SL_FILTER_OR:
        for (int i = 0; i < f->nkids; i++) {
            if (having_filter(q, f->kids[i], r)) {
                return true;
            }
        }
        return false;
    case SL_FILTER_NOT:
        return !having_filter(q, f->kids[0], r);
    default:
        break;
    }
    if (f->column == NULL || f->dim == -1) {
        return sl_filter_match_str(f, NULL, 0);
    }
    if (f->dim >= 0) {
        return sl_filter_match_str(f, r->dims[f->dim].p, r->dims[f->dim].len);
    }
    int col = -2 - f->dim;
    sl_qval v = r->vals[col];
    if (v.null || v.arr != NULL) {
        return sl_filter_match_str(f, NULL, 0);
    }
    char buf[64];
    format_value(q, col, v, buf, sizeof(buf));
    return sl_filter_match_str(f, buf, strlen(buf));
}

static bool having_eval(const sl_native *q, const sl_having *h, const orow *r)
{
    switch (h->type) {
    case SL_HAVING_GT:
        return !r->vals[h->col].null && r->vals[h->col].v > h->value;
    case SL_HAVING_LT:
        return !r->vals[h->col].null && r->vals[h->col].v < h->value;
    case SL_HAVING_EQ:
        return !r->vals[h->col].null && r->vals[h->col].v == h->value;
    case SL_HAVING_AND:
        for (int i = 0; i < h->nkids; i++) {
            if (!having_eval(q, h->kids[i], r)) {
                return false;
            }
        }
        return true;
    case SL_HAVING_OR:
        for (int i = 0; i < h->nkids; i++) {
            if (having_eval(q, h->kids[i], r)) {
                return true;
            }
        }
        return false;
    case SL_HAVING_NOT:
        return !having_eval(q, h->kids[0], r);
    case SL_HAVING_DIM: {
        sl_str want = {h->str, h->str != NULL ? strlen(h->str) : 0};
        return cmp_str(r->dims[h->dim], want) == 0;
    }
    case SL_HAVING_FILTER:
        return having_filter(q, h->filter, r);
    }
    return false;
}

/* Time first (unless granularity all), then the limitSpec columns, then the dimensions
 * ascending so equal keys still come out in a stable order. */
static int cmp_groupby(const void *x, const void *y, void *arg)
{
    const sort_ctx *c = arg;
    const sl_native *q = c->q;
    const orow *a = *(orow *const *)x, *b = *(orow *const *)y;
    int r = cmp_i64(a->bucket, b->bucket);
    if (r != 0) {
        return r;
    }
    for (int i = 0; i < q->norder; i++) {
        const sl_order_col *oc = &q->orderby[i];
        if (oc->is_dim) {
            r = cmp_str_order(a->dims[oc->index], b->dims[oc->index], oc->order);
        } else {
            r = cmp_val(a->vals[oc->index], b->vals[oc->index]);
        }
        if (r != 0) {
            return oc->descending ? -r : r;
        }
    }
    for (int k = 0; k < q->ndims; k++) {
        r = cmp_str(a->dims[k], b->dims[k]);
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

static int out_groupby(ex *e, yajl_gen g)
{
    const sl_native *q = e->q;
    orow *rows = NULL, **ptrs = NULL;
    sl_qval *vals = NULL;
    sl_str *strs = NULL;
    double *arr = NULL;
    int rc = make_rows(e, &rows, &vals, &strs, &arr);
    size_t n = e->t.n, m = 0;
    if (rc != 0) {
        goto out;
    }
    ptrs = sl_calloc(n + 1, sizeof(orow *));
    for (size_t i = 0; i < n; i++) {
        if (q->having == NULL || having_eval(q, q->having, &rows[i])) {
            ptrs[m++] = &rows[i];
        }
    }
    sort_ctx sc = {q};
    qsort_r(ptrs, m, sizeof(orow *), cmp_groupby, &sc);
    size_t from = (uint64_t)q->offset < m ? (size_t)q->offset : m;
    size_t to = m;
    if (q->limit >= 0 && (uint64_t)q->limit < to - from) {
        to = from + (size_t)q->limit;
    }
    yajl_gen_array_open(g);
    for (size_t i = from; i < to; i++) {
        if (out_over_memory(i)) {
            rc = mem_error(e, "writing its result");
            goto out;
        }
        yajl_gen_map_open(g);
        sl_res_cstr(g, "version");
        sl_res_cstr(g, "v1");
        sl_res_cstr(g, "timestamp");
        sl_res_time(g, out_time(q, ptrs[i]->bucket));
        sl_res_cstr(g, "event");
        yajl_gen_map_open(g);
        for (int k = 0; k < q->ndims; k++) {
            out_dim_value(g, &q->dims[k], ptrs[i]->dims[k]);
        }
        sl_res_columns(g, q, ptrs[i]->vals);
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
out:
    free(ptrs);
    free(rows);
    free(vals);
    free(strs);
    free(arr);
    return rc;
}

/* ---- timeBoundary ------------------------------------------------------------------------ */

typedef struct tb_state {
    ex *e;
    bool any;
    int64_t min, max;
    bool stop_at_first;
} tb_state;

static int on_tb_row(void *arg, const sl_store_row *row)
{
    tb_state *s = arg;
    ex *e = s->e;
    if ((++e->rows & 1023) == 0 && e->deadline_ms != 0 && sl_mono_ms() > e->deadline_ms) {
        return SL_ETIMEDOUT;
    }
    if (e->filter != NULL && !cf_eval(e->filter, row)) {
        return 0;
    }
    if (!s->any || row->bucket_ms < s->min) {
        s->min = row->bucket_ms;
    }
    if (!s->any || row->bucket_ms > s->max) {
        s->max = row->bucket_ms;
    }
    s->any = true;
    return s->stop_at_first ? 2 : 0;
}

static int on_any_row(void *arg, const sl_store_row *row)
{
    (void)row;
    *(bool *)arg = true;
    return 1;
}

int sl_exec_latest_bucket(sl_store_reader *rd, const sl_spec *spec, int64_t max_ms, int64_t *out,
                          sl_err *err)
{
    /* store.h documents the second bound of sl_store_time_bounds as the end of the
     * latest bucket, store.c returns its start: accept either by looking for a row
     * starting at max_ms. */
    bool found = false;
    int rc = sl_store_scan(rd, spec, max_ms, max_ms + spec->query_ms, on_any_row, &found, err);
    if (rc != 0 && rc != 1) {
        return rc;
    }
    *out = found ? max_ms : max_ms - spec->query_ms;
    return 0;
}

static int out_timeboundary(ex *e, yajl_gen g)
{
    const sl_native *q = e->q;
    tb_state s = {.e = e};
    int rc = 0;
    if (e->rd != NULL && !q->has_intervals && q->filter == NULL) {
        int64_t max_ms;
        rc = sl_store_time_bounds(e->rd, e->spec, &s.min, &max_ms, e->err);
        if (rc == 0) {
            rc = sl_exec_latest_bucket(e->rd, e->spec, max_ms, &s.max, e->err);
            s.any = rc == 0;
        } else if (rc == SL_ENOTFOUND) {
            rc = 0;
        }
    } else if (e->rd != NULL) {
        s.stop_at_first = q->bound == SL_BOUND_MIN;
        sl_interval all = {INT64_MIN / 4, INT64_MAX / 4};
        const sl_interval *ivs = q->has_intervals ? q->intervals : &all;
        int niv = q->has_intervals ? q->nintervals : 1;
        for (int i = 0; i < niv && rc == 0 && !(s.any && s.stop_at_first); i++) {
            rc = sl_store_scan(e->rd, e->spec, ivs[i].start, ivs[i].end, on_tb_row, &s, e->err);
            if (rc == 2) {
                rc = 0;
            } else if (rc == SL_ETIMEDOUT) {
                rc = sl_err_set(e->err, SL_ETIMEDOUT, "query did not finish within %lld ms",
                                (long long)e->timeout_ms);
            }
        }
    }
    if (rc != 0) {
        return rc;
    }
    yajl_gen_array_open(g);
    if (s.any) {
        yajl_gen_map_open(g);
        sl_res_cstr(g, "timestamp");
        sl_res_time(g, q->bound == SL_BOUND_MAX ? s.max : s.min);
        sl_res_cstr(g, "result");
        yajl_gen_map_open(g);
        if (q->bound != SL_BOUND_MAX) {
            sl_res_cstr(g, "minTime");
            sl_res_time(g, s.min);
        }
        if (q->bound != SL_BOUND_MIN) {
            sl_res_cstr(g, "maxTime");
            sl_res_time(g, s.max);
        }
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    return 0;
}

/* ---- entry points ------------------------------------------------------------------------ */

int sl_native_exec(const sl_native *q, sl_store *st, int64_t default_timeout_ms, sl_buf *out,
                   sl_err *err)
{
    ex e;
    memset(&e, 0, sizeof(e));
    e.q = q;
    e.spec = q->spec;
    e.err = err;
    e.last_minute = INT64_MIN;
    e.cached = SIZE_MAX;
    e.timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : default_timeout_ms;
    if (e.timeout_ms > 0) {
        e.deadline_ms = sl_mono_ms() + e.timeout_ms;
    }
    e.aggf = sl_calloc((size_t)q->naggs + 1, sizeof(cfilt *));
    e.acc_init = sl_calloc((size_t)q->naggs + 1, sizeof(double));
    e.sk_dds = sl_calloc((size_t)q->nsketch + 1, sizeof(bool));
    e.sk_none = sl_calloc((size_t)q->nsketch + 1, sizeof(void *));
    for (int i = 0; i < q->naggs; i++) {
        e.acc_init[i] = q->aggs[i].op == SL_AGG_MIN   ? INFINITY
                        : q->aggs[i].op == SL_AGG_MAX ? -INFINITY
                                                      : 0.0;
    }
    for (int k = 0; k < q->ndims; k++) {
        e.qdim[k] = q->dims[k].dim;
    }
    for (int i = 0; i < q->naggs; i++) {
        if (q->aggs[i].sketch >= 0) {
            e.sk_dds[q->aggs[i].sketch] = q->aggs[i].op == SL_AGG_DDS;
        }
    }
    gtab_init(&e.t, q->ndims, q->naggs, q->nsketch);
    yajl_gen g = NULL;
    int rc = 0;

    if (st != NULL && (rc = sl_store_read_begin(st, &e.rd, err)) != 0) {
        goto out;
    }
    if (q->filter != NULL && (rc = compile(&e, q->filter, &e.filter)) != 0) {
        goto out;
    }
    for (int i = 0; i < q->naggs && rc == 0; i++) {
        if (q->aggs[i].filter != NULL) {
            rc = compile(&e, q->aggs[i].filter, &e.aggf[i]);
        }
        for (int k = 0; k < q->aggs[i].nfields && rc == 0; k++) {
            rc = hash_cache_init(&e, q->aggs[i].fields[k]);
        }
    }
    if (rc != 0) {
        goto out;
    }
    sl_buf_reset(out);
    g = sl_res_gen(out);
    if (q->type == SL_NQ_TIMEBOUNDARY) {
        rc = out_timeboundary(&e, g);
        goto out;
    }
    /* A filter that can never match (say, a selector on a value never stored) skips
     * the scan; timeseries still answers with its zero rows. */
    if (e.filter == NULL || e.filter->type != CF_FALSE) {
        if (e.filter != NULL && e.filter->type == CF_TRUE) {
            cf_free(e.filter);
            e.filter = NULL;
        }
        if ((rc = scan_all(&e)) != 0) {
            goto out;
        }
    }
    switch (q->type) {
    case SL_NQ_TIMESERIES:
        rc = out_timeseries(&e, g);
        break;
    case SL_NQ_TOPN:
        rc = out_topn(&e, g);
        break;
    case SL_NQ_GROUPBY:
        rc = out_groupby(&e, g);
        break;
    case SL_NQ_TIMEBOUNDARY:
        break;
    }
out:
    sl_res_gen_free(g);
    if (e.rd != NULL) {
        sl_store_read_end(e.rd);
    }
    cf_free(e.filter);
    for (int i = 0; i < q->naggs; i++) {
        cf_free(e.aggf[i]);
    }
    free(e.aggf);
    free(e.acc_init);
    gtab_fini(&e.t, e.sk_dds);
    free(e.sk_dds);
    free(e.sk_none);
    for (int d = 0; d < SL_MAX_DIMS; d++) {
        free(e.hcache[d].h);
    }
    return rc;
}

int sl_query_native(const sl_config *cfg, sl_store *st, const char *body, size_t len,
                    int64_t default_timeout_ms, sl_buf *out)
{
    sl_native *q = NULL;
    sl_err err = {0, ""};
    int rc = sl_native_parse(cfg, body != NULL ? body : "", body != NULL ? len : 0, &q, &err);
    if (rc == 0) {
        rc = sl_native_exec(q, st, default_timeout_ms, out, &err);
    }
    sl_native_free(q);
    if (rc != 0) {
        return sl_res_error(out, rc, err.msg);
    }
    return 200;
}
