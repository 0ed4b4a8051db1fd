/* Rollup table (see rollup.h): open addressing on an xxh64 of bucket and dims,
 * linear probing, rows stored in flat arrays; strings in a chunked arena.
 *
 * Sketch metrics: each row holds one sl_hll / sl_dds per sketch metric, created when the
 * row first sees a value for it (a row whose events never carried the field sends nil)
 * and taken from a pool of cleared sketches, so a steady stream of flushes allocates
 * almost nothing. A sketch starts sparse (an HLL keeps exact hashes, a DDSketch a few
 * bins), so a row that saw one user costs a few dozen bytes.
 *
 * Memory: sketches are the only part of a row whose size depends on the data (an HLL
 * grows to 16 KiB, a DDSketch's bins to 16 KiB), so the table keeps an estimate of what
 * they hold (sk_bytes) for the windower, which flushes early when it gets large:
 * an HLL holds 8 bytes per hash while sparse (its list doubles from 4) and 16 KiB of
 * registers once dense; a DDSketch holds 8 bytes per bin between its lowest and highest
 * non-empty bin (doubling from 8, at most SL_DDS_MAX_BINS), which follows from the
 * smallest positive and the largest value it saw. The pool of cleared sketches holds at
 * most POOL_BYTES more. */
#include "rollup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "sketch.h"

#define ARENA_CHUNK (64 * 1024)
#define SKETCH_OVERHEAD 48 /* the sketch struct and allocator slack */
#define HLL_DENSE_MEM (SL_HLL_REGISTERS + SKETCH_OVERHEAD)
#define POOL_BYTES (1 << 20) /* cleared sketches kept for reuse, per table */
#define POOL_KEEP_BYTES 2048 /* larger ones (a long hash list, many bins) are freed */

typedef struct pooled {
    void *k;
    uint32_t mem;
} pooled;

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

struct sl_rollup {
    const sl_spec *spec;
    size_t cap;      /* slots, a power of two */
    size_t n;        /* rows */
    uint64_t *hash;  /* per slot; 0 = empty */
    int64_t *bucket; /* per slot */
    sl_str *dims;    /* per slot * ndims */
    uint64_t *count;
    double *values; /* per slot * nmetrics */
    chunk *arena;
    size_t arena_bytes; /* sum of the chunks' capacities */

    /* sketch metrics (only allocated when nsk > 0) */
    int nsk;
    int sk_metric[SL_MAX_METRICS]; /* metric index of sketch j */
    void **sk;                     /* per slot * nsk: sl_hll * or sl_dds *, NULL until a value */
    uint32_t *sk_mem;              /* per slot * nsk: estimated bytes held (see above) */
    double *sk_range; /* per slot * nsk * 2: DDSketch smallest positive, largest value */
    size_t sk_bytes;  /* sum of sk_mem */
    /* cleared sketches for reuse, with the bytes each still holds (a cleared sparse
     * HLL keeps its hash list, a cleared DDSketch its bins): at most POOL_BYTES */
    pooled *hpool, *dpool;
    size_t nhpool, ndpool, caphpool, capdpool;
    size_t pool_bytes;
    sl_buf skbuf; /* serialized sketches of the row being drained */
};

static void alloc_slots(sl_rollup *r, size_t cap)
{
    int nd = r->spec->ndims, nm = r->spec->nmetrics;
    r->cap = cap;
    r->hash = sl_calloc(cap, sizeof(uint64_t));
    r->bucket = sl_malloc(cap * sizeof(int64_t));
    r->dims = sl_malloc(cap * (size_t)(nd > 0 ? nd : 1) * sizeof(sl_str));
    r->count = sl_malloc(cap * sizeof(uint64_t));
    r->values = sl_malloc(cap * (size_t)(nm > 0 ? nm : 1) * sizeof(double));
    if (r->nsk > 0) {
        r->sk = sl_malloc(cap * (size_t)r->nsk * sizeof(void *));
        r->sk_mem = sl_malloc(cap * (size_t)r->nsk * sizeof(uint32_t));
        r->sk_range = sl_malloc(cap * (size_t)r->nsk * 2 * sizeof(double));
    }
}

static void free_slots(sl_rollup *r)
{
    free(r->hash);
    free(r->bucket);
    free(r->dims);
    free(r->count);
    free(r->values);
    free(r->sk);
    free(r->sk_mem);
    free(r->sk_range);
}

sl_rollup *sl_rollup_new(const sl_spec *spec)
{
    sl_rollup *r = sl_calloc(1, sizeof(*r));
    r->spec = spec;
    for (int m = 0; m < spec->nmetrics; m++) {
        if (sl_metric_is_sketch(spec->metrics[m].kind)) {
            r->sk_metric[r->nsk++] = m;
        }
    }
    sl_buf_init(&r->skbuf);
    alloc_slots(r, 1024);
    return r;
}

static void arena_free(chunk *c)
{
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

void sl_rollup_free(sl_rollup *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; r->nsk > 0 && i < r->cap; i++) {
        for (int j = 0; r->hash[i] != 0 && j < r->nsk; j++) {
            void *k = r->sk[i * (size_t)r->nsk + (size_t)j];
            if (r->spec->metrics[r->sk_metric[j]].kind == SL_METRIC_DISTINCT) {
                sl_hll_free(k);
            } else {
                sl_dds_free(k);
            }
        }
    }
    for (size_t i = 0; i < r->nhpool; i++) {
        sl_hll_free(r->hpool[i].k);
    }
    for (size_t i = 0; i < r->ndpool; i++) {
        sl_dds_free(r->dpool[i].k);
    }
    free(r->hpool);
    free(r->dpool);
    sl_buf_fini(&r->skbuf);
    free_slots(r);
    arena_free(r->arena);
    free(r);
}

int64_t sl_rollup_bucket(const sl_spec *spec, int64_t ts_ms)
{
    return sl_time_floor(ts_ms, spec->query_ms);
}

static const char *arena_copy(sl_rollup *r, sl_str s)
{
    if (r->arena == NULL || r->arena->cap - r->arena->used < s.len) {
        size_t cap = s.len > ARENA_CHUNK ? s.len : ARENA_CHUNK;
        chunk *c = sl_malloc(sizeof(chunk) + cap);
        c->next = r->arena;
        c->used = 0;
        c->cap = cap;
        r->arena = c;
        r->arena_bytes += sizeof(chunk) + cap;
    }
    char *p = r->arena->data + r->arena->used;
    memcpy(p, s.p, s.len);
    r->arena->used += s.len;
    return p;
}

static uint64_t row_hash(int64_t bucket, const sl_str *dims, int nd)
{
    XXH64_state_t st;
    XXH64_reset(&st, 0);
    XXH64_update(&st, &bucket, sizeof(bucket));
    for (int i = 0; i < nd; i++) {
        /* Length first, -1 for null, so ("a","bc") and ("ab","c") differ. */
        int64_t len = dims[i].p == NULL ? -1 : (int64_t)dims[i].len;
        XXH64_update(&st, &len, sizeof(len));
        if (dims[i].len > 0) {
            XXH64_update(&st, dims[i].p, dims[i].len);
        }
    }
    uint64_t h = XXH64_digest(&st);
    return h == 0 ? 1 : h;
}

static int same_dims(const sl_str *a, const sl_str *b, int nd)
{
    for (int i = 0; i < nd; i++) {
        if ((a[i].p == NULL) != (b[i].p == NULL) || a[i].len != b[i].len ||
            (a[i].len > 0 && memcmp(a[i].p, b[i].p, a[i].len) != 0)) {
            return 0;
        }
    }
    return 1;
}

static size_t find_slot(const sl_rollup *r, uint64_t h, int64_t bucket, const sl_str *dims)
{
    int nd = r->spec->ndims;
    size_t mask = r->cap - 1;
    size_t i = h & mask;
    while (r->hash[i] != 0) {
        if (r->hash[i] == h && r->bucket[i] == bucket &&
            same_dims(&r->dims[i * (size_t)nd], dims, nd)) {
            return i;
        }
        i = (i + 1) & mask;
    }
    return i;
}

static void grow(sl_rollup *r)
{
    sl_rollup old = *r;
    int nd = r->spec->ndims, nm = r->spec->nmetrics;
    alloc_slots(r, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++) {
        if (old.hash[i] == 0) {
            continue;
        }
        size_t j = find_slot(r, old.hash[i], old.bucket[i], &old.dims[i * (size_t)nd]);
        r->hash[j] = old.hash[i];
        r->bucket[j] = old.bucket[i];
        memcpy(&r->dims[j * (size_t)nd], &old.dims[i * (size_t)nd], (size_t)nd * sizeof(sl_str));
        r->count[j] = old.count[i];
        memcpy(&r->values[j * (size_t)nm], &old.values[i * (size_t)nm],
               (size_t)nm * sizeof(double));
        if (r->nsk > 0) {
            size_t ns = (size_t)r->nsk;
            memcpy(&r->sk[j * ns], &old.sk[i * ns], ns * sizeof(void *));
            memcpy(&r->sk_mem[j * ns], &old.sk_mem[i * ns], ns * sizeof(uint32_t));
            memcpy(&r->sk_range[j * ns * 2], &old.sk_range[i * ns * 2], ns * 2 * sizeof(double));
        }
    }
    free_slots(&old);
}

/* ---- sketches ------------------------------------------------------------------------ */

static uint32_t pow2_at_least(uint32_t n, uint32_t min)
{
    uint32_t c = min;
    while (c < n) {
        c *= 2;
    }
    return c;
}

static uint32_t hll_mem(const sl_hll *h)
{
    if (!sl_hll_is_sparse(h)) {
        return HLL_DENSE_MEM;
    }
    uint32_t n = (uint32_t)sl_hll_estimate(h); /* exact while sparse */
    return n == 0 ? SKETCH_OVERHEAD : 8 * pow2_at_least(n, 4) + SKETCH_OVERHEAD;
}

/* Bins between the smallest positive value lo and the largest hi (the DDSketch's
 * logarithmic mapping with gamma = (1 + alpha) / (1 - alpha)). */
static uint32_t dds_mem(double lo, double hi)
{
    if (!(lo > 0)) {
        return SKETCH_OVERHEAD; /* no positive value: no bins */
    }
    const double inv_ln_gamma = 1.0 / log((1 + SL_DDS_ALPHA) / (1 - SL_DDS_ALPHA));
    double span = ceil(log(hi) * inv_ln_gamma) - ceil(log(lo) * inv_ln_gamma) + 1;
    uint32_t bins = span >= SL_DDS_MAX_BINS ? SL_DDS_MAX_BINS : (uint32_t)span;
    uint32_t cap = pow2_at_least(bins, 8);
    return 8 * (cap < SL_DDS_MAX_BINS ? cap : SL_DDS_MAX_BINS) + SKETCH_OVERHEAD;
}

/* A sketch for a new row: the last one pooled, or a new one. *mem is what it holds. */
static void *sketch_take(sl_rollup *r, sl_metric_kind kind, uint32_t *mem)
{
    bool hll = kind == SL_METRIC_DISTINCT;
    size_t *n = hll ? &r->nhpool : &r->ndpool;
    if (*n == 0) {
        *mem = SKETCH_OVERHEAD;
        return hll ? (void *)sl_hll_new() : (void *)sl_dds_new();
    }
    pooled *p = &(hll ? r->hpool : r->dpool)[--*n];
    r->pool_bytes -= p->mem;
    *mem = p->mem;
    return p->k;
}

/* Clears a drained row's sketch into the pool, or frees it when it holds a large
 * allocation or the pool is full. mem: its estimate (see above). */
static void sketch_give(sl_rollup *r, sl_metric_kind kind, void *k, uint32_t mem)
{
    bool hll = kind == SL_METRIC_DISTINCT;
    if (hll && !sl_hll_is_sparse(k)) {
        mem = SKETCH_OVERHEAD; /* clear frees the registers; its list went when it turned dense */
    }
    if (mem > POOL_KEEP_BYTES || r->pool_bytes + mem > POOL_BYTES) {
        if (hll) {
            sl_hll_free(k);
        } else {
            sl_dds_free(k);
        }
        return;
    }
    pooled **pool = hll ? &r->hpool : &r->dpool;
    size_t *n = hll ? &r->nhpool : &r->ndpool, *cap = hll ? &r->caphpool : &r->capdpool;
    if (*n == *cap) {
        *cap = *cap == 0 ? 256 : *cap * 2;
        *pool = sl_realloc(*pool, *cap * sizeof(pooled));
    }
    if (hll) {
        sl_hll_clear(k);
    } else {
        sl_dds_clear(k);
    }
    (*pool)[(*n)++] = (pooled){k, mem};
    r->pool_bytes += mem;
}

/* Adds the event's values of the sketch metrics to row slot i. */
static void add_sketches(sl_rollup *r, size_t i, const sl_event *ev)
{
    const sl_spec *spec = r->spec;
    size_t base = i * (size_t)r->nsk;
    for (int j = 0; j < r->nsk; j++) {
        const sl_metric_spec *ms = &spec->metrics[r->sk_metric[j]];
        int f = ms->field_index;
        void **slot = &r->sk[base + (size_t)j];
        uint32_t *mem = &r->sk_mem[base + (size_t)j];
        uint32_t before = *mem;
        if (ms->kind == SL_METRIC_DISTINCT) {
            /* records written before the spec had this metric carry fewer hashes */
            if (f >= ev->nhashes || !ev->has_hash[f]) {
                continue;
            }
            if (*slot == NULL) {
                *slot = sketch_take(r, ms->kind, mem);
            }
            sl_hll *h = *slot;
            bool was_sparse = sl_hll_is_sparse(h);
            sl_hll_add_hash(h, ev->hashes[f]);
            if (was_sparse) {
                uint32_t m = hll_mem(h);
                *mem = m > *mem ? m : *mem; /* a pooled list keeps its capacity */
            }
        } else {
            if (f >= ev->nfields || !ev->has_field[f]) {
                continue;
            }
            double x = ev->fields[f];
            if (!(x >= 0) || isinf(x)) {
                continue; /* ingest rejects these; older log records may hold them */
            }
            if (*slot == NULL) {
                *slot = sketch_take(r, ms->kind, mem);
            }
            sl_dds_add(*slot, x, NULL);
            double *rg = &r->sk_range[(base + (size_t)j) * 2];
            if (x > 0 && (isnan(rg[0]) || x < rg[0] || x > rg[1])) {
                rg[0] = isnan(rg[0]) || x < rg[0] ? x : rg[0];
                rg[1] = isnan(rg[1]) || x > rg[1] ? x : rg[1];
                /* one value (most rows) needs no logarithms: a single bin */
                uint32_t m = rg[0] == rg[1] ? 8 * 8 + SKETCH_OVERHEAD : dds_mem(rg[0], rg[1]);
                *mem = m > *mem ? m : *mem;
            }
        }
        r->sk_bytes += *mem - before;
    }
}

size_t sl_rollup_sketch_bytes(const sl_rollup *r)
{
    return r->sk_bytes;
}

size_t sl_rollup_mem_bytes(const sl_rollup *r)
{
    size_t nd = (size_t)r->spec->ndims, nm = (size_t)r->spec->nmetrics, ns = (size_t)r->nsk;
    size_t slot = sizeof(uint64_t) + sizeof(int64_t) + (nd > 0 ? nd : 1) * sizeof(sl_str) +
                  sizeof(uint64_t) + (nm > 0 ? nm : 1) * sizeof(double) +
                  ns * (sizeof(void *) + sizeof(uint32_t) + 2 * sizeof(double));
    return sizeof(*r) + r->cap * slot + r->arena_bytes + r->sk_bytes + r->pool_bytes + r->skbuf.cap;
}

void sl_rollup_add(sl_rollup *r, const sl_event *ev)
{
    const sl_spec *spec = r->spec;
    int nd = spec->ndims, nm = spec->nmetrics;
    SL_ASSERT(ev->ndims == nd);
    if ((r->n + 1) * 4 > r->cap * 3) {
        grow(r);
    }
    int64_t bucket = sl_rollup_bucket(spec, ev->ts_ms);
    uint64_t h = row_hash(bucket, ev->dims, nd);
    size_t i = find_slot(r, h, bucket, ev->dims);
    double *vals = &r->values[i * (size_t)nm];
    if (r->hash[i] == 0) {
        r->hash[i] = h;
        r->bucket[i] = bucket;
        sl_str *d = &r->dims[i * (size_t)nd];
        for (int k = 0; k < nd; k++) {
            d[k].len = ev->dims[k].len;
            d[k].p = ev->dims[k].p == NULL ? NULL : arena_copy(r, ev->dims[k]);
        }
        r->count[i] = 0;
        for (int m = 0; m < nm; m++) {
            sl_metric_kind kind = spec->metrics[m].kind;
            vals[m] = kind == SL_METRIC_MIN ? INFINITY : kind == SL_METRIC_MAX ? -INFINITY : 0;
        }
        for (size_t j = i * (size_t)r->nsk; j < (i + 1) * (size_t)r->nsk; j++) {
            r->sk[j] = NULL;
            r->sk_mem[j] = 0;
            r->sk_range[2 * j] = r->sk_range[2 * j + 1] = NAN;
        }
        r->n++;
    }
    r->count[i]++;
    for (int m = 0; m < nm; m++) {
        int f = spec->metrics[m].field_index;
        if (f < 0 || f >= ev->nfields || !ev->has_field[f]) {
            continue;
        }
        double x = ev->fields[f];
        switch (spec->metrics[m].kind) {
        case SL_METRIC_MIN:
            vals[m] = x < vals[m] ? x : vals[m];
            break;
        case SL_METRIC_MAX:
            vals[m] = x > vals[m] ? x : vals[m];
            break;
        case SL_METRIC_SUM:
            vals[m] += x;
            break;
        default:
            break; /* sketches: below */
        }
    }
    if (r->nsk > 0) {
        add_sketches(r, i, ev);
    }
}

size_t sl_rollup_rows(const sl_rollup *r)
{
    return r->n;
}

/* Serializes row slot i's sketches into row (views into r->skbuf, valid until the next
 * row) and gives them back to the pool. */
static void drain_sketches(sl_rollup *r, size_t i, sl_row *row)
{
    size_t off[SL_MAX_METRICS], len[SL_MAX_METRICS];
    size_t base = i * (size_t)r->nsk;
    sl_buf_reset(&r->skbuf);
    for (int j = 0; j < r->nsk; j++) {
        int m = r->sk_metric[j];
        sl_metric_kind kind = r->spec->metrics[m].kind;
        void *k = r->sk[base + (size_t)j];
        row->values[m] = 0;
        len[j] = 0;
        if (k == NULL) {
            continue;
        }
        off[j] = r->skbuf.len;
        len[j] = kind == SL_METRIC_DISTINCT ? sl_hll_serialize(k, &r->skbuf)
                                            : sl_dds_serialize(k, &r->skbuf);
        sketch_give(r, kind, k, r->sk_mem[base + (size_t)j]);
    }
    for (int j = 0; j < r->nsk; j++) {
        row->sketches[r->sk_metric[j]] =
            len[j] > 0 ? (sl_str){r->skbuf.data + off[j], len[j]} : (sl_str){NULL, 0};
    }
}

void sl_rollup_drain(sl_rollup *r, sl_buf *blob, int64_t *min_bucket, int64_t *max_bucket)
{
    int nd = r->spec->ndims, nm = r->spec->nmetrics;
    sl_row row;
    row.ndims = nd;
    row.nvalues = nm;
    for (int m = 0; m < nm; m++) {
        row.sketches[m] = (sl_str){NULL, 0};
    }
    *min_bucket = INT64_MAX;
    *max_bucket = INT64_MIN;
    for (size_t i = 0; i < r->cap; i++) {
        if (r->hash[i] == 0) {
            continue;
        }
        row.bucket_ms = r->bucket[i];
        memcpy(row.dims, &r->dims[i * (size_t)nd], (size_t)nd * sizeof(sl_str));
        row.count = r->count[i];
        memcpy(row.values, &r->values[i * (size_t)nm], (size_t)nm * sizeof(double));
        if (r->nsk > 0) {
            drain_sketches(r, i, &row);
        }
        sl_rows_put(blob, &row);
        if (row.bucket_ms < *min_bucket) {
            *min_bucket = row.bucket_ms;
        }
        if (row.bucket_ms > *max_bucket) {
            *max_bucket = row.bucket_ms;
        }
        r->hash[i] = 0;
    }
    r->n = 0;
    r->sk_bytes = 0;
    /* Keep one chunk for the next round; a table that grew large shrinks back. */
    if (r->arena != NULL) {
        arena_free(r->arena->next);
        r->arena->next = NULL;
        r->arena->used = 0;
        r->arena_bytes = sizeof(chunk) + r->arena->cap;
    }
    if (r->cap > 65536) {
        free_slots(r);
        alloc_slots(r, 1024);
    }
}
