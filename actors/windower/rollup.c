/* Rollup table (see rollup.h): open addressing on an xxh64 of bucket and dims,
 * linear probing, rows stored in flat arrays; strings in a chunked arena. */
#include "rollup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define ARENA_CHUNK (64 * 1024)

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
    double *values;  /* per slot * nmetrics */
    chunk *arena;
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
}

static void free_slots(sl_rollup *r)
{
    free(r->hash);
    free(r->bucket);
    free(r->dims);
    free(r->count);
    free(r->values);
}

sl_rollup *sl_rollup_new(const sl_spec *spec)
{
    sl_rollup *r = sl_calloc(1, sizeof(*r));
    r->spec = spec;
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
        memcpy(&r->values[j * (size_t)nm], &old.values[i * (size_t)nm], (size_t)nm * sizeof(double));
    }
    free_slots(&old);
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
        default:
            vals[m] += x;
            break;
        }
    }
}

size_t sl_rollup_rows(const sl_rollup *r)
{
    return r->n;
}

void sl_rollup_drain(sl_rollup *r, sl_buf *blob, int64_t *min_bucket, int64_t *max_bucket)
{
    int nd = r->spec->ndims, nm = r->spec->nmetrics;
    sl_row row;
    row.ndims = nd;
    row.nvalues = nm;
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
    /* Keep one chunk for the next round; a table that grew large shrinks back. */
    if (r->arena != NULL) {
        arena_free(r->arena->next);
        r->arena->next = NULL;
        r->arena->used = 0;
    }
    if (r->cap > 65536) {
        free_slots(r);
        alloc_slots(r, 1024);
    }
}
