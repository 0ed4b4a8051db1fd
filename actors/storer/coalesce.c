/* Coalescing a transaction's rows (see coalesce.h).
 *
 * Entries live in one array in arrival order; their dims, values and sketch slots in
 * three side arrays (an entry's ndims/nmetrics consecutive elements), so an entry costs
 * about 60 bytes plus 16 per dim, 8 per metric and 24 per metric slot. An open-addressing
 * table of entry indexes finds a key. Sketch slots borrow the first sketch bytes seen;
 * a second sketch for the same slot turns it into a decoded sketch (sl_hll or sl_dds,
 * kept on free lists across resets) that later ones merge into. */
#define _GNU_SOURCE /* qsort_r */
#include "coalesce.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sketch.h"

typedef struct slot {
    sl_str bytes; /* the only sketch seen so far (borrowed), or {NULL, 0} */
    void *obj;    /* sl_hll * or sl_dds * once two were seen */
} slot;

typedef struct entry {
    const sl_spec *spec;
    uint64_t hash;
    int64_t bucket_ms;
    uint64_t count;
    size_t at; /* first dim, value and slot in the side arrays */
    int src;
    int ndims;
    int nvalues;
} entry;

struct sl_coalesce {
    entry *e;
    size_t n, cap;
    sl_str *dims;
    double *vals;
    slot *slots;
    size_t nside, capside;
    uint32_t *tab; /* entry index + 1; 0 = empty */
    size_t tabcap; /* power of two */
    sl_hll **free_hll;
    size_t nfree_hll, capfree_hll;
    sl_dds **free_dds;
    size_t nfree_dds, capfree_dds;
    sl_buf scratch;
    uint32_t *order; /* entry indexes in the order sl_coalesce_each applies them */
    size_t caporder;
};

sl_coalesce *sl_coalesce_new(void)
{
    sl_coalesce *c = sl_calloc(1, sizeof(*c));
    sl_buf_init(&c->scratch);
    return c;
}

static void release_objs(sl_coalesce *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        for (int m = 0; m < e->nvalues; m++) {
            slot *s = &c->slots[e->at + (size_t)m];
            if (s->obj == NULL) {
                continue;
            }
            if (e->spec->metrics[m].kind == SL_METRIC_DISTINCT) {
                sl_hll_clear(s->obj);
                if (c->nfree_hll == c->capfree_hll) {
                    c->capfree_hll = c->capfree_hll ? c->capfree_hll * 2 : 64;
                    c->free_hll = sl_realloc(c->free_hll, c->capfree_hll * sizeof(sl_hll *));
                }
                c->free_hll[c->nfree_hll++] = s->obj;
            } else {
                sl_dds_clear(s->obj);
                if (c->nfree_dds == c->capfree_dds) {
                    c->capfree_dds = c->capfree_dds ? c->capfree_dds * 2 : 64;
                    c->free_dds = sl_realloc(c->free_dds, c->capfree_dds * sizeof(sl_dds *));
                }
                c->free_dds[c->nfree_dds++] = s->obj;
            }
            s->obj = NULL;
        }
    }
}

void sl_coalesce_reset(sl_coalesce *c)
{
    release_objs(c);
    c->n = 0;
    c->nside = 0;
    if (c->tab != NULL) {
        memset(c->tab, 0, c->tabcap * sizeof(uint32_t));
    }
}

void sl_coalesce_free(sl_coalesce *c)
{
    if (c == NULL) {
        return;
    }
    sl_coalesce_reset(c);
    for (size_t i = 0; i < c->nfree_hll; i++) {
        sl_hll_free(c->free_hll[i]);
    }
    for (size_t i = 0; i < c->nfree_dds; i++) {
        sl_dds_free(c->free_dds[i]);
    }
    free(c->free_hll);
    free(c->free_dds);
    free(c->e);
    free(c->order);
    free(c->dims);
    free(c->vals);
    free(c->slots);
    free(c->tab);
    sl_buf_fini(&c->scratch);
    free(c);
}

size_t sl_coalesce_rows(const sl_coalesce *c)
{
    return c->n;
}

static uint64_t key_hash(const sl_spec *spec, const sl_row *row)
{
    uint64_t h = sl_hash64(&spec, sizeof(spec)) ^ sl_hash64(&row->bucket_ms, sizeof(int64_t));
    for (int i = 0; i < row->ndims; i++) {
        /* a missing value (NULL) and "" are different keys, as in the store */
        uint64_t d = row->dims[i].p == NULL ? 0x9e3779b97f4a7c15ull
                                            : sl_hash64(row->dims[i].p, row->dims[i].len);
        h = (h ^ d) * 0x100000001b3ull + (uint64_t)i;
    }
    return h;
}

static bool same_key(const sl_coalesce *c, const entry *e, const sl_spec *spec, uint64_t h,
                     const sl_row *row)
{
    if (e->hash != h || e->spec != spec || e->bucket_ms != row->bucket_ms ||
        e->ndims != row->ndims) {
        return false;
    }
    for (int i = 0; i < row->ndims; i++) {
        const sl_str *a = &c->dims[e->at + (size_t)i], *b = &row->dims[i];
        if ((a->p == NULL) != (b->p == NULL) || a->len != b->len ||
            (a->len > 0 && memcmp(a->p, b->p, a->len) != 0)) {
            return false;
        }
    }
    return true;
}

static void grow_tab(sl_coalesce *c)
{
    size_t cap = c->tabcap ? c->tabcap * 2 : 1024;
    free(c->tab);
    c->tab = sl_calloc(cap, sizeof(uint32_t));
    c->tabcap = cap;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->e[i].hash & (cap - 1);
        while (c->tab[j] != 0) {
            j = (j + 1) & (cap - 1);
        }
        c->tab[j] = (uint32_t)(i + 1);
    }
}

/* The side arrays hold one element per dim, value and slot of every entry: an entry
 * takes max(ndims, nvalues) consecutive elements of each. */
static size_t take_side(sl_coalesce *c, size_t k)
{
    if (c->nside + k > c->capside) {
        size_t cap = c->capside ? c->capside * 2 : 4096;
        while (cap < c->nside + k) {
            cap *= 2;
        }
        c->dims = sl_realloc(c->dims, cap * sizeof(sl_str));
        c->vals = sl_realloc(c->vals, cap * sizeof(double));
        c->slots = sl_realloc(c->slots, cap * sizeof(slot));
        c->capside = cap;
    }
    size_t at = c->nside;
    c->nside += k;
    return at;
}

static void *take_obj(sl_coalesce *c, sl_metric_kind kind)
{
    if (kind == SL_METRIC_DISTINCT) {
        return c->nfree_hll > 0 ? (void *)c->free_hll[--c->nfree_hll] : (void *)sl_hll_new();
    }
    return c->nfree_dds > 0 ? (void *)c->free_dds[--c->nfree_dds] : (void *)sl_dds_new();
}

static int merge_bytes(void *obj, sl_metric_kind kind, sl_str b, sl_err *err)
{
    return kind == SL_METRIC_DISTINCT ? sl_hll_merge_bytes(obj, b.p, b.len, err)
                                      : sl_dds_merge_bytes(obj, b.p, b.len, err);
}

static int add_sketch(sl_coalesce *c, const sl_spec *spec, int m, slot *s, sl_str add, sl_err *err)
{
    sl_metric_kind kind = spec->metrics[m].kind;
    if (add.p == NULL || add.len == 0) {
        return 0;
    }
    if (s->obj == NULL && s->bytes.len == 0) {
        s->bytes = add;
        return 0;
    }
    sl_err serr = {0};
    int rc = 0;
    if (s->obj == NULL) {
        s->obj = take_obj(c, kind);
        rc = merge_bytes(s->obj, kind, s->bytes, &serr);
        s->bytes = (sl_str){NULL, 0};
    }
    if (rc == 0) {
        rc = merge_bytes(s->obj, kind, add, &serr);
    }
    if (rc != 0) {
        return sl_err_set(err, rc, "row of %s, metric %s: %s", spec->name, spec->metrics[m].name,
                          serr.msg);
    }
    return 0;
}

int sl_coalesce_add(sl_coalesce *c, const sl_spec *spec, const sl_row *row, int src, sl_err *err)
{
    if ((c->n + 1) * 2 > c->tabcap) {
        grow_tab(c);
    }
    uint64_t h = key_hash(spec, row);
    size_t j = h & (c->tabcap - 1);
    int nv = spec->nmetrics < row->nvalues ? spec->nmetrics : row->nvalues;
    while (c->tab[j] != 0) {
        entry *e = &c->e[c->tab[j] - 1];
        if (!same_key(c, e, spec, h, row)) {
            j = (j + 1) & (c->tabcap - 1);
            continue;
        }
        /* the store's merge: the entry is the older row, row the newer */
        e->count += row->count;
        for (int m = 0; m < nv && m < e->nvalues; m++) {
            double *o = &c->vals[e->at + (size_t)m];
            double v = row->values[m];
            switch (spec->metrics[m].kind) {
            case SL_METRIC_MIN:
                *o = *o < v ? *o : v;
                break;
            case SL_METRIC_MAX:
                *o = *o > v ? *o : v;
                break;
            case SL_METRIC_DISTINCT:
            case SL_METRIC_QUANTILES: {
                int rc =
                    add_sketch(c, spec, m, &c->slots[e->at + (size_t)m], row->sketches[m], err);
                if (rc != 0) {
                    return rc;
                }
                break;
            }
            default:
                *o += v;
                break;
            }
        }
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->e = sl_realloc(c->e, c->cap * sizeof(entry));
    }
    size_t k = (size_t)(row->ndims > nv ? row->ndims : nv);
    size_t at = take_side(c, k > 0 ? k : 1);
    entry *e = &c->e[c->n];
    *e = (entry){.spec = spec,
                 .hash = h,
                 .bucket_ms = row->bucket_ms,
                 .count = row->count,
                 .at = at,
                 .src = src,
                 .ndims = row->ndims,
                 .nvalues = nv};
    for (int i = 0; i < row->ndims; i++) {
        c->dims[at + (size_t)i] = row->dims[i];
    }
    for (int m = 0; m < nv; m++) {
        c->vals[at + (size_t)m] = row->values[m];
        c->slots[at + (size_t)m] = (slot){{NULL, 0}, NULL};
        if (sl_metric_is_sketch(spec->metrics[m].kind)) {
            c->slots[at + (size_t)m].bytes =
                row->sketches[m].len > 0 ? row->sketches[m] : (sl_str){NULL, 0};
        }
    }
    c->tab[j] = (uint32_t)(++c->n);
    return 0;
}

/* Datasource, then minute, then arrival: see sl_coalesce_each. */
static int cmp_order(const void *x, const void *y, void *arg)
{
    const entry *es = arg;
    const entry *a = &es[*(const uint32_t *)x], *b = &es[*(const uint32_t *)y];
    if (a->spec != b->spec) {
        return (uintptr_t)a->spec < (uintptr_t)b->spec ? -1 : 1;
    }
    if (a->bucket_ms != b->bucket_ms) {
        return a->bucket_ms < b->bucket_ms ? -1 : 1;
    }
    return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

int sl_coalesce_each(sl_coalesce *c, sl_coalesce_fn fn, void *arg)
{
    sl_row row;
    size_t off[SL_MAX_METRICS], len[SL_MAX_METRICS];
    /* In key order of the store as far as it is known here (its keys start with the
     * minute; the dimension ids after it are the store's): the rows of one minute then
     * share B-tree leaves, so a transaction dirties far fewer pages than in arrival
     * order, which is a hash order when the windowers drain their tables. */
    if (c->n > c->caporder) {
        c->caporder = c->n;
        c->order = sl_realloc(c->order, c->caporder * sizeof(uint32_t));
    }
    for (size_t i = 0; i < c->n; i++) {
        c->order[i] = (uint32_t)i;
    }
    qsort_r(c->order, c->n, sizeof(uint32_t), cmp_order, c->e);
    for (size_t k = 0; k < c->n; k++) {
        const entry *e = &c->e[c->order[k]];
        row.bucket_ms = e->bucket_ms;
        row.count = e->count;
        row.ndims = e->ndims;
        row.nvalues = e->nvalues;
        memcpy(row.dims, &c->dims[e->at], (size_t)e->ndims * sizeof(sl_str));
        memcpy(row.values, &c->vals[e->at], (size_t)e->nvalues * sizeof(double));
        for (int m = e->nvalues; m < e->spec->nmetrics; m++) {
            row.values[m] = 0;
            row.sketches[m] = (sl_str){NULL, 0};
        }
        sl_buf_reset(&c->scratch);
        for (int m = 0; m < e->nvalues; m++) {
            const slot *s = &c->slots[e->at + (size_t)m];
            row.sketches[m] = s->bytes;
            off[m] = SIZE_MAX;
            if (s->obj != NULL) {
                off[m] = c->scratch.len;
                len[m] = e->spec->metrics[m].kind == SL_METRIC_DISTINCT
                             ? sl_hll_serialize(s->obj, &c->scratch)
                             : sl_dds_serialize(s->obj, &c->scratch);
            }
        }
        /* views only now: scratch may have moved while it grew */
        for (int m = 0; m < e->nvalues; m++) {
            if (off[m] != SIZE_MAX) {
                row.sketches[m] = (sl_str){c->scratch.data + off[m], len[m]};
            }
        }
        int rc = fn(arg, e->spec, &row, e->src);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
