/* The segment store over LMDB (layout in store.h). LMDB is the only storage engine
 * and this file is the only one that includes lmdb.h; its errors are converted here.
 *
 * Writes come from one process (the storer) in large transactions, so the cost of
 * a commit (one fsync) is shared by many deltas. Readers (query processes) take a
 * read transaction per query: a consistent snapshot, never blocking the writer. */
#include "store.h"

#include "log.h"
#include "sketch.h"

#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define STORE_MAX_DS 64
#define KEY_MAX (4 + 4 * SL_MAX_DIMS)
#define MINUTE_MS 60000
#define MINUTE_BIAS 0x80000000LL

typedef struct ds_dbs {
    char name[128];
    MDB_dbi rows, dict, rdict;
    int open;
} ds_dbs;

/* Writer-side cache of dictionary ids: ids never change once committed, so a hit
 * saves the B-tree lookup on the hot path. Cleared whenever a transaction aborts,
 * since it may hold ids assigned in that transaction. */
typedef struct dict_ent {
    uint64_t h; /* xxh64 of the string mixed with datasource and dim; 0 = empty */
    uint32_t id;
    int ds;
    int dim;
    char *s;
    size_t len;
} dict_ent;

struct sl_store {
    /* writer scratch for merging rows: the value being built, and one sketch of each
     * type, cleared and reused for every merge */
    sl_buf vbuf;
    sl_buf skbuf;
    sl_hll *hll;
    sl_dds *dds;
    dict_ent *cache;
    size_t cache_cap, cache_n;
    MDB_env *env;
    bool readonly;
    int64_t map_bytes, max_map_bytes;
    MDB_dbi segments, offsets, meta;
    int base_open;
    ds_dbs ds[STORE_MAX_DS];
    int nds;
};

/* Per-transaction segment counters, written once at commit. */
typedef struct seg_delta {
    const char *ds;
    uint32_t hour;
    uint64_t rows, events;
} seg_delta;

struct sl_store_txn {
    sl_store *st;
    MDB_txn *txn;
    int nds_before;       /* dbis opened in an aborted transaction are closed by LMDB: */
    int base_open_before; /* forget them on abort */
    seg_delta *segs;
    int nsegs, capsegs;
};

struct sl_store_reader {
    sl_store *st;
    MDB_txn *txn;
};

static int conv(int rv, sl_err *err, const char *what)
{
    if (rv == 0) {
        return 0;
    }
    int code;
    switch (rv) {
    case MDB_MAP_FULL:
    case ENOSPC:
        code = SL_ENOSPC;
        break;
    case MDB_NOTFOUND:
        code = SL_ENOTFOUND;
        break;
    case ENOMEM:
        code = SL_ENOMEM;
        break;
    default:
        code = rv > 0 ? -rv : SL_EIO;
        break;
    }
    if (rv > 0 && code != SL_ENOSPC && code != SL_ENOMEM) {
        code = -rv;
    }
    if (rv < 0 && code != SL_ENOSPC && code != SL_ENOTFOUND) {
        code = SL_EIO;
    }
    return sl_err_set(err, code, "lmdb %s: %s", what, mdb_strerror(rv));
}

/* ---- encoding ---------------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static uint32_t minute_key(int64_t minute)
{
    return (uint32_t)(minute + MINUTE_BIAS);
}

static int64_t key_minute(uint32_t k)
{
    return (int64_t)k - MINUTE_BIAS;
}

/* ---- row values ------------------------------------------------------------------- */

/* A stored row's value (layout in store.h): count, the doubles of the value metrics
 * (sum/min/max, in spec order), then the sketches of the sketch metrics (in spec order),
 * each as a LEB128 length (0 = empty) and its bytes. Rows with no sketch data end after
 * the doubles; so do rows written before the spec had sketch metrics, and a row whose
 * sketch list is shorter than the spec's (a sketch metric added later) reads the missing
 * ones as empty. */
typedef struct row_val {
    uint64_t count;
    double values[SL_MAX_METRICS];   /* by metric index; 0 for sketch metrics */
    sl_str sketches[SL_MAX_METRICS]; /* by metric index; views into the stored value */
} row_val;

static size_t value_metrics(const sl_spec *spec)
{
    size_t n = 0;
    for (int i = 0; i < spec->nmetrics; i++) {
        n += !sl_metric_is_sketch(spec->metrics[i].kind);
    }
    return n;
}

/* Parses a stored value; -1 with *why set when it does not fit spec. */
static int val_decode(const sl_spec *spec, const unsigned char *p, size_t len, row_val *v,
                      const char **why)
{
    size_t need = 8 + 8 * value_metrics(spec), off = 8;
    if (len < need) {
        *why = "shorter than its count and values";
        return -1;
    }
    memcpy(&v->count, p, 8);
    for (int i = 0; i < spec->nmetrics; i++) {
        v->values[i] = 0;
        v->sketches[i] = (sl_str){NULL, 0};
        if (!sl_metric_is_sketch(spec->metrics[i].kind)) {
            memcpy(&v->values[i], p + off, 8);
            off += 8;
        }
    }
    for (int i = 0; i < spec->nmetrics && off < len; i++) {
        if (!sl_metric_is_sketch(spec->metrics[i].kind)) {
            continue;
        }
        uint64_t n = 0;
        for (int shift = 0;; shift += 7) {
            if (off >= len || shift > 28) {
                *why = "a sketch length is truncated or too long";
                return -1;
            }
            unsigned char b = p[off++];
            n |= (uint64_t)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                break;
            }
        }
        if (n > len - off) {
            *why = "a sketch is longer than the value";
            return -1;
        }
        if (n > 0) {
            v->sketches[i] = (sl_str){(const char *)p + off, (size_t)n};
        }
        off += (size_t)n;
    }
    if (off != len) {
        *why = "it has bytes after the last sketch";
        return -1;
    }
    return 0;
}

static void val_encode(const sl_spec *spec, const row_val *v, sl_buf *out)
{
    sl_buf_reset(out);
    sl_buf_append(out, &v->count, 8);
    bool any = false;
    for (int i = 0; i < spec->nmetrics; i++) {
        if (!sl_metric_is_sketch(spec->metrics[i].kind)) {
            sl_buf_append(out, &v->values[i], 8);
        } else {
            any |= v->sketches[i].len > 0;
        }
    }
    if (!any) {
        return;
    }
    for (int i = 0; i < spec->nmetrics; i++) {
        if (!sl_metric_is_sketch(spec->metrics[i].kind)) {
            continue;
        }
        unsigned char len[5];
        size_t n = 0;
        uint64_t x = v->sketches[i].len;
        do {
            len[n++] = (unsigned char)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
            x >>= 7;
        } while (x > 0);
        sl_buf_append(out, len, n);
        sl_buf_append(out, v->sketches[i].p, v->sketches[i].len);
    }
}

static size_t copy(sl_buf *out, sl_str s)
{
    sl_buf_append(out, s.p, s.len);
    return s.len;
}

/* Merges the serialized sketches old (may be empty) and add of a metric of kind, appending
 * the result to out at [*off, *off + *len). add comes from a delta and is validated (its
 * error code is returned); a stored sketch that does not decode sets *bad_old and returns
 * SL_EIO. With nothing stored yet, add (once decoded) is copied as it is: the decoders
 * accept only the canonical serialization, the one merging would produce. */
static int sketch_merge(sl_store *st, sl_metric_kind kind, sl_str old, sl_str add, sl_buf *out,
                        size_t *off, size_t *len, const char **bad_old, sl_err *err)
{
    int rc;
    *off = out->len;
    if (kind == SL_METRIC_DISTINCT) {
        if (st->hll == NULL) {
            st->hll = sl_hll_new();
        }
        sl_hll_clear(st->hll);
        if (old.len > 0 && sl_hll_merge_bytes(st->hll, old.p, old.len, err) != 0) {
            *bad_old = "distinct";
            return SL_EIO;
        }
        if ((rc = sl_hll_merge_bytes(st->hll, add.p, add.len, err)) != 0) {
            return rc;
        }
        *len = old.len > 0 ? sl_hll_serialize(st->hll, out) : copy(out, add);
    } else {
        if (st->dds == NULL) {
            st->dds = sl_dds_new();
        }
        sl_dds_clear(st->dds);
        if (old.len > 0 && sl_dds_merge_bytes(st->dds, old.p, old.len, err) != 0) {
            *bad_old = "quantiles";
            return SL_EIO;
        }
        if ((rc = sl_dds_merge_bytes(st->dds, add.p, add.len, err)) != 0) {
            return rc;
        }
        *len = old.len > 0 ? sl_dds_serialize(st->dds, out) : copy(out, add);
    }
    return 0;
}

/* ---- open / close ------------------------------------------------------------------ */

int sl_store_open(sl_store **out, const char *dir, bool readonly, int64_t map_mb,
                  int64_t max_map_mb, sl_err *err)
{
    sl_store *st = sl_calloc(1, sizeof(*st));
    int rc;
    st->readonly = readonly;
    st->map_bytes = map_mb << 20;
    st->max_map_bytes = max_map_mb << 20;
    if (st->max_map_bytes < st->map_bytes) {
        st->max_map_bytes = st->map_bytes;
    }
    if (!readonly && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_err_set(err, -errno, "mkdir %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((rc = conv(mdb_env_create(&st->env), err, "env create")) != 0) {
        goto fail;
    }
    mdb_env_set_maxdbs(st->env, 3 + 3 * STORE_MAX_DS);
    mdb_env_set_maxreaders(st->env, 256);
    if (!readonly) {
        mdb_env_set_mapsize(st->env, (size_t)st->map_bytes);
    }
    unsigned flags = MDB_NOTLS | (readonly ? MDB_RDONLY : 0);
    if ((rc = conv(mdb_env_open(st->env, dir, flags, 0644), err, "env open")) != 0) {
        goto fail;
    }
    if (readonly) {
        MDB_envinfo info;
        mdb_env_info(st->env, &info);
        st->map_bytes = (int64_t)info.me_mapsize;
    } else {
        /* The map may be larger than configured if it grew in an earlier run. */
        MDB_envinfo info;
        mdb_env_info(st->env, &info);
        if ((int64_t)info.me_mapsize > st->map_bytes) {
            st->map_bytes = (int64_t)info.me_mapsize;
        }
    }
    *out = st;
    return 0;
fail:
    if (st->env != NULL) {
        mdb_env_close(st->env);
    }
    free(st);
    *out = NULL;
    return rc;
}

static void cache_clear(sl_store *st)
{
    for (size_t i = 0; i < st->cache_cap; i++) {
        free(st->cache[i].s);
    }
    free(st->cache);
    st->cache = NULL;
    st->cache_cap = st->cache_n = 0;
}

static uint64_t cache_hash(int ds, int dim, uint64_t sh)
{
    uint64_t h = sh ^ ((uint64_t)ds * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(dim + 1) << 56);
    return h == 0 ? 1 : h;
}

static const dict_ent *cache_get(const sl_store *st, int ds, int dim, uint64_t sh, sl_str s)
{
    if (st->cache_cap == 0) {
        return NULL;
    }
    uint64_t h = cache_hash(ds, dim, sh);
    size_t mask = st->cache_cap - 1;
    for (size_t i = h & mask; st->cache[i].h != 0; i = (i + 1) & mask) {
        const dict_ent *e = &st->cache[i];
        if (e->h == h && e->ds == ds && e->dim == dim && e->len == s.len &&
            memcmp(e->s, s.p, s.len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void cache_put(sl_store *st, int ds, int dim, uint64_t sh, sl_str s, uint32_t id)
{
    if ((st->cache_n + 1) * 2 > st->cache_cap) {
        if (st->cache_n > (1u << 20)) {
            cache_clear(st); /* bounded: a million strings at most */
        }
        size_t cap = st->cache_cap == 0 ? 1024 : st->cache_cap * 2;
        dict_ent *old = st->cache;
        size_t old_cap = st->cache_cap;
        st->cache = sl_calloc(cap, sizeof(dict_ent));
        st->cache_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].h != 0) {
                size_t j = old[i].h & (cap - 1);
                while (st->cache[j].h != 0) {
                    j = (j + 1) & (cap - 1);
                }
                st->cache[j] = old[i];
            }
        }
        free(old);
    }
    uint64_t h = cache_hash(ds, dim, sh);
    size_t mask = st->cache_cap - 1, i = h & mask;
    while (st->cache[i].h != 0) {
        i = (i + 1) & mask;
    }
    st->cache[i] = (dict_ent){h, id, ds, dim, sl_strndup(s.p, s.len), s.len};
    st->cache_n++;
}

void sl_store_close(sl_store *st)
{
    if (st == NULL) {
        return;
    }
    cache_clear(st);
    mdb_env_close(st->env);
    sl_buf_fini(&st->vbuf);
    sl_buf_fini(&st->skbuf);
    sl_hll_free(st->hll);
    sl_dds_free(st->dds);
    free(st);
}

/* Opens the shared and per-datasource dbis inside txn (creating them in a writer).
 * Returns SL_ENOTFOUND in a reader when the storer has not created them yet. */
static int open_base(sl_store *st, MDB_txn *txn, sl_err *err)
{
    if (st->base_open) {
        return 0;
    }
    unsigned f = st->readonly ? 0 : MDB_CREATE;
    int rv = mdb_dbi_open(txn, "segments", f, &st->segments);
    if (rv == 0) {
        rv = mdb_dbi_open(txn, "offsets", f, &st->offsets);
    }
    if (rv == 0) {
        rv = mdb_dbi_open(txn, "meta", f, &st->meta);
    }
    if (rv != 0) {
        return conv(rv, err, "open base databases");
    }
    st->base_open = 1;
    return 0;
}

static int open_ds(sl_store *st, MDB_txn *txn, const char *name, ds_dbs **out, sl_err *err)
{
    for (int i = 0; i < st->nds; i++) {
        if (strcmp(st->ds[i].name, name) == 0) {
            *out = &st->ds[i];
            return 0;
        }
    }
    if (st->nds >= STORE_MAX_DS || strlen(name) >= sizeof(st->ds[0].name) - 8) {
        return sl_err_set(err, SL_ETOOBIG, "too many datasources or name too long");
    }
    ds_dbs d = {0};
    snprintf(d.name, sizeof(d.name), "%s", name);
    char buf[160];
    unsigned f = st->readonly ? 0 : MDB_CREATE;
    int rv;
    snprintf(buf, sizeof(buf), "rows:%s", name);
    rv = mdb_dbi_open(txn, buf, f, &d.rows);
    if (rv == 0) {
        snprintf(buf, sizeof(buf), "dict:%s", name);
        rv = mdb_dbi_open(txn, buf, f, &d.dict);
    }
    if (rv == 0) {
        snprintf(buf, sizeof(buf), "rdict:%s", name);
        rv = mdb_dbi_open(txn, buf, f, &d.rdict);
    }
    if (rv != 0) {
        return conv(rv, err, "open datasource databases");
    }
    d.open = 1;
    st->ds[st->nds] = d;
    *out = &st->ds[st->nds++];
    return 0;
}

int sl_store_grow(sl_store *st, sl_err *err)
{
    if (st->map_bytes >= st->max_map_bytes) {
        return sl_err_set(err, SL_ENOSPC,
                          "LMDB map is full at its maximum of %lld MiB (storer.max_map_size_mb)",
                          (long long)(st->max_map_bytes >> 20));
    }
    int64_t next = st->map_bytes * 2;
    if (next > st->max_map_bytes) {
        next = st->max_map_bytes;
    }
    int rv = mdb_env_set_mapsize(st->env, (size_t)next);
    if (rv != 0) {
        return conv(rv, err, "grow map");
    }
    SL_LOG(INFO, "map_grown", "from_mb=%lld to_mb=%lld", (long long)(st->map_bytes >> 20),
           (long long)(next >> 20));
    st->map_bytes = next;
    return 0;
}

int sl_store_usage(sl_store *st, int64_t *map_bytes, int64_t *used_bytes)
{
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &stat);
    *map_bytes = (int64_t)info.me_mapsize;
    *used_bytes = (int64_t)(info.me_last_pgno + 1) * stat.ms_psize;
    return 0;
}

/* ---- writer ------------------------------------------------------------------------ */

int sl_store_begin(sl_store *st, sl_store_txn **out, sl_err *err)
{
    SL_ASSERT(!st->readonly);
    sl_store_txn *t = sl_calloc(1, sizeof(*t));
    t->st = st;
    t->nds_before = st->nds;
    t->base_open_before = st->base_open;
    int rc = conv(mdb_txn_begin(st->env, NULL, 0, &t->txn), err, "begin");
    if (rc == 0) {
        rc = open_base(st, t->txn, err);
        if (rc != 0) {
            st->base_open = t->base_open_before;
            mdb_txn_abort(t->txn);
        }
    }
    if (rc != 0) {
        free(t);
        *out = NULL;
        return rc;
    }
    *out = t;
    return 0;
}

void sl_store_abort(sl_store_txn *t)
{
    if (t == NULL) {
        return;
    }
    cache_clear(t->st);
    t->st->nds = t->nds_before;
    t->st->base_open = t->base_open_before;
    mdb_txn_abort(t->txn);
    free(t->segs);
    free(t);
}

static int fail(sl_store_txn *t, int rc)
{
    sl_store_abort(t);
    return rc;
}

static size_t offset_key(unsigned char *k, const char *ds, int partition)
{
    size_t n = strlen(ds);
    memcpy(k, ds, n);
    k[n] = 0;
    k[n + 1] = (unsigned char)(partition >> 8);
    k[n + 2] = (unsigned char)partition;
    return n + 3;
}

int sl_store_get_offset(sl_store_txn *t, const char *ds, int partition, int64_t *out, sl_err *err)
{
    unsigned char k[200];
    if (strlen(ds) > 190) {
        return fail(t, sl_err_set(err, SL_EINVAL, "datasource name too long"));
    }
    MDB_val key = {offset_key(k, ds, partition), k}, val;
    int rv = mdb_get(t->txn, t->st->offsets, &key, &val);
    if (rv == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rv != 0 || val.mv_size != 8) {
        return fail(t, conv(rv != 0 ? rv : MDB_CORRUPTED, err, "get offset"));
    }
    memcpy(out, val.mv_data, 8);
    return 0;
}

int sl_store_set_offset(sl_store_txn *t, const char *ds, int partition, int64_t next, sl_err *err)
{
    unsigned char k[200];
    if (strlen(ds) > 190) {
        return fail(t, sl_err_set(err, SL_EINVAL, "datasource name too long"));
    }
    MDB_val key = {offset_key(k, ds, partition), k}, val = {8, &next};
    int rc = conv(mdb_put(t->txn, t->st->offsets, &key, &val, 0), err, "put offset");
    return rc != 0 ? fail(t, rc) : 0;
}

/* Finds or assigns the dictionary id of s for dimension dim. */
static int dict_id(sl_store_txn *t, ds_dbs *d, int dim, sl_str s, uint32_t *id, sl_err *err)
{
    if (s.p == NULL) {
        *id = 0;
        return 0;
    }
    uint64_t sh = XXH64(s.p, s.len, 0);
    int dsi = (int)(d - t->st->ds);
    const dict_ent *hit = cache_get(t->st, dsi, dim, sh, s);
    if (hit != NULL) {
        *id = hit->id;
        return 0;
    }
    unsigned char k[9];
    k[0] = (unsigned char)dim;
    put_u64(k + 1, sh);
    MDB_val key = {sizeof(k), k}, val;
    int rv = mdb_get(t->txn, d->dict, &key, &val);
    const unsigned char *chain = NULL;
    size_t chain_len = 0;
    if (rv == 0) {
        chain = val.mv_data;
        chain_len = val.mv_size;
        for (size_t off = 0; off + 8 <= chain_len;) {
            uint32_t eid = get_u32(chain + off), elen = get_u32(chain + off + 4);
            if (elen == s.len && off + 8 + elen <= chain_len &&
                memcmp(chain + off + 8, s.p, s.len) == 0) {
                *id = eid;
                cache_put(t->st, dsi, dim, sh, s, eid);
                return 0;
            }
            off += 8 + elen;
        }
    } else if (rv != MDB_NOTFOUND) {
        return conv(rv, err, "dict get");
    }
    /* New string: next id from meta, then dict chain and reverse entry. */
    char mk[200];
    int mkl = snprintf(mk, sizeof(mk), "next_id:%s:%d", d->name, dim);
    MDB_val mkey = {(size_t)mkl, mk}, mval;
    uint32_t next = 1;
    rv = mdb_get(t->txn, t->st->meta, &mkey, &mval);
    if (rv == 0 && mval.mv_size == 4) {
        memcpy(&next, mval.mv_data, 4);
    } else if (rv != MDB_NOTFOUND && rv != 0) {
        return conv(rv, err, "meta get");
    }
    uint32_t after = next + 1;
    mval.mv_size = 4;
    mval.mv_data = &after;
    if ((rv = mdb_put(t->txn, t->st->meta, &mkey, &mval, 0)) != 0) {
        return conv(rv, err, "meta put");
    }
    size_t nlen = chain_len + 8 + s.len;
    unsigned char *nchain = sl_malloc(nlen);
    if (chain_len > 0) {
        memcpy(nchain, chain, chain_len);
    }
    put_u32(nchain + chain_len, next);
    put_u32(nchain + chain_len + 4, (uint32_t)s.len);
    memcpy(nchain + chain_len + 8, s.p, s.len);
    val.mv_size = nlen;
    val.mv_data = nchain;
    rv = mdb_put(t->txn, d->dict, &key, &val, 0);
    free(nchain);
    if (rv != 0) {
        return conv(rv, err, "dict put");
    }
    unsigned char rk[5];
    rk[0] = (unsigned char)dim;
    put_u32(rk + 1, next);
    MDB_val rkey = {sizeof(rk), rk}, rval = {s.len, (void *)s.p};
    if ((rv = mdb_put(t->txn, d->rdict, &rkey, &rval, 0)) != 0) {
        return conv(rv, err, "rdict put");
    }
    *id = next;
    cache_put(t->st, dsi, dim, sh, s, next);
    return 0;
}

static void seg_add(sl_store_txn *t, const char *ds, uint32_t hour, uint64_t rows, uint64_t events)
{
    for (int i = 0; i < t->nsegs; i++) {
        if (t->segs[i].hour == hour && strcmp(t->segs[i].ds, ds) == 0) {
            t->segs[i].rows += rows;
            t->segs[i].events += events;
            return;
        }
    }
    if (t->nsegs == t->capsegs) {
        t->capsegs = t->capsegs == 0 ? 16 : t->capsegs * 2;
        t->segs = sl_realloc(t->segs, (size_t)t->capsegs * sizeof(*t->segs));
    }
    t->segs[t->nsegs++] = (seg_delta){ds, hour, rows, events};
}

int sl_store_merge_row(sl_store_txn *t, const sl_spec *spec, const sl_row *row, sl_err *err)
{
    ds_dbs *d;
    int rc = open_ds(t->st, t->txn, spec->name, &d, err);
    if (rc != 0) {
        return fail(t, rc);
    }
    if (row->ndims != spec->ndims || row->nvalues != spec->nmetrics) {
        return fail(
            t, sl_err_set(err, SL_EINVAL, "row shape does not match datasource %s", spec->name));
    }
    unsigned char k[KEY_MAX];
    int64_t minute = floor_div(row->bucket_ms, MINUTE_MS);
    put_u32(k, minute_key(minute));
    for (int i = 0; i < spec->ndims; i++) {
        uint32_t id = 0;
        if ((rc = dict_id(t, d, i, row->dims[i], &id, err)) != 0) {
            return fail(t, rc);
        }
        put_u32(k + 4 + 4 * i, id);
    }
    MDB_val key = {4 + 4 * (size_t)spec->ndims, k}, val;
    row_val rv_new;
    rv_new.count = row->count;
    memcpy(rv_new.values, row->values, sizeof(double) * (size_t)spec->nmetrics);
    int rv = mdb_get(t->txn, d->rows, &key, &val);
    bool fresh = rv == MDB_NOTFOUND;
    row_val old;
    if (rv == 0) {
        const char *why = NULL;
        if (val_decode(spec, val.mv_data, val.mv_size, &old, &why) != 0) {
            return fail(t, sl_err_set(err, SL_EIO, "stored row of %s (%zu bytes) is corrupt: %s",
                                      spec->name, val.mv_size, why));
        }
        rv_new.count += old.count;
        for (int i = 0; i < spec->nmetrics; i++) {
            double o = old.values[i];
            switch (spec->metrics[i].kind) {
            case SL_METRIC_MIN:
                rv_new.values[i] = o < rv_new.values[i] ? o : rv_new.values[i];
                break;
            case SL_METRIC_MAX:
                rv_new.values[i] = o > rv_new.values[i] ? o : rv_new.values[i];
                break;
            case SL_METRIC_DISTINCT:
            case SL_METRIC_QUANTILES:
                rv_new.values[i] = 0;
                break;
            default:
                rv_new.values[i] += o;
                break;
            }
        }
    } else if (!fresh) {
        return fail(t, conv(rv, err, "row get"));
    } else {
        memset(old.sketches, 0, sizeof(old.sketches));
    }
    /* Sketches: merged ones are built in skbuf first (its data may move while it grows),
     * then the views are taken; a sketch with nothing new keeps the stored bytes, which
     * stay valid until the put below. */
    sl_buf *skbuf = &t->st->skbuf;
    sl_buf_reset(skbuf);
    size_t sk_off[SL_MAX_METRICS], sk_len[SL_MAX_METRICS];
    bool merged[SL_MAX_METRICS] = {false};
    for (int i = 0; i < spec->nmetrics; i++) {
        rv_new.sketches[i] = (sl_str){NULL, 0};
        sl_metric_kind kind = spec->metrics[i].kind;
        if (!sl_metric_is_sketch(kind)) {
            continue;
        }
        rv_new.values[i] = 0;
        sl_str add = row->sketches[i];
        if (add.p == NULL || add.len == 0) {
            rv_new.sketches[i] = old.sketches[i];
            continue;
        }
        const char *bad_old = NULL;
        sl_err serr = {0};
        if ((rc = sketch_merge(t->st, kind, old.sketches[i], add, skbuf, &sk_off[i], &sk_len[i],
                               &bad_old, &serr)) != 0) {
            return fail(t, sl_err_set(err, rc, "%s row of %s, metric %s: %s",
                                      bad_old != NULL ? "stored" : "new", spec->name,
                                      spec->metrics[i].name, serr.msg));
        }
        merged[i] = true;
    }
    for (int i = 0; i < spec->nmetrics; i++) {
        if (merged[i]) {
            rv_new.sketches[i] = (sl_str){skbuf->data + sk_off[i], sk_len[i]};
        }
    }
    val_encode(spec, &rv_new, &t->st->vbuf);
    val.mv_size = t->st->vbuf.len;
    val.mv_data = t->st->vbuf.data;
    if ((rv = mdb_put(t->txn, d->rows, &key, &val, 0)) != 0) {
        return fail(t, conv(rv, err, "row put"));
    }
    seg_add(t, spec->name, (uint32_t)(floor_div(minute, 60) + MINUTE_BIAS), fresh ? 1 : 0,
            row->count);
    return 0;
}

int sl_store_commit(sl_store_txn *t, sl_err *err)
{
    int rc = 0;
    for (int i = 0; i < t->nsegs && rc == 0; i++) {
        seg_delta *s = &t->segs[i];
        unsigned char k[200];
        size_t n = strlen(s->ds);
        memcpy(k, s->ds, n);
        k[n] = 0;
        put_u32(k + n + 1, s->hour);
        MDB_val key = {n + 5, k}, val;
        uint64_t cur[2] = {0, 0};
        int rv = mdb_get(t->txn, t->st->segments, &key, &val);
        if (rv == 0 && val.mv_size == sizeof(cur)) {
            memcpy(cur, val.mv_data, sizeof(cur));
        } else if (rv != MDB_NOTFOUND && rv != 0) {
            rc = conv(rv, err, "segment get");
            break;
        }
        cur[0] += s->rows;
        cur[1] += s->events;
        val.mv_size = sizeof(cur);
        val.mv_data = cur;
        rc = conv(mdb_put(t->txn, t->st->segments, &key, &val, 0), err, "segment put");
    }
    if (rc != 0) {
        return fail(t, rc);
    }
    rc = conv(mdb_txn_commit(t->txn), err, "commit");
    free(t->segs);
    free(t);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------ */

int sl_store_read_begin(sl_store *st, sl_store_reader **out, sl_err *err)
{
    MDB_txn *txn;
    int rv = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rv == MDB_MAP_RESIZED) {
        /* The writer grew the map: adopt the new size and retry. */
        mdb_env_set_mapsize(st->env, 0);
        rv = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    }
    if (rv != 0) {
        return conv(rv, err, "begin read");
    }
    sl_store_reader *r = sl_calloc(1, sizeof(*r));
    r->st = st;
    r->txn = txn;
    *out = r;
    return 0;
}

void sl_store_read_end(sl_store_reader *r)
{
    if (r == NULL) {
        return;
    }
    mdb_txn_abort(r->txn);
    free(r);
}

/* Finds the datasource's dbis for a reader; SL_ENOTFOUND when nothing is stored yet.
 * dbi handles opened in a read transaction stay valid only after a commit, so they
 * are opened in a short transaction of their own and cached. */
static int reader_ds(sl_store_reader *r, const sl_spec *spec, ds_dbs **out, sl_err *err)
{
    sl_store *st = r->st;
    for (int i = 0; i < st->nds; i++) {
        if (strcmp(st->ds[i].name, spec->name) == 0) {
            *out = &st->ds[i];
            return 0;
        }
    }
    MDB_txn *txn;
    int rc = conv(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    rc = open_base(st, txn, err);
    if (rc == 0) {
        rc = open_ds(st, txn, spec->name, out, err);
    }
    if (rc == 0) {
        rc = conv(mdb_txn_commit(txn), err, "commit read");
    } else {
        mdb_txn_abort(txn);
    }
    if (rc == 0) {
        /* The reader's snapshot may predate these databases: take a fresh one. No
         * view into the old snapshot can be live yet, as this is the first use. */
        mdb_txn_abort(r->txn);
        r->txn = NULL;
        rc = conv(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn), err, "begin read");
    }
    return rc;
}

int sl_store_scan(sl_store_reader *r, const sl_spec *spec, int64_t from_ms, int64_t to_ms,
                  sl_store_scan_cb cb, void *arg, sl_err *err)
{
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    if (rc == SL_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    int64_t from_min = -floor_div(-from_ms, MINUTE_MS); /* ceil */
    int64_t to_min = -floor_div(-to_ms, MINUTE_MS);
    if (from_min < -MINUTE_BIAS) {
        from_min = -MINUTE_BIAS;
    }
    if (to_min > MINUTE_BIAS - 1) {
        to_min = MINUTE_BIAS - 1;
    }
    if (from_min >= to_min) {
        return 0;
    }
    MDB_cursor *cur;
    if ((rc = conv(mdb_cursor_open(r->txn, d->rows, &cur), err, "cursor")) != 0) {
        return rc;
    }
    unsigned char k[4];
    put_u32(k, minute_key(from_min));
    MDB_val key = {4, k}, val;
    uint32_t end_key = minute_key(to_min);
    size_t klen = 4 + 4 * (size_t)spec->ndims;
    sl_store_row row;
    row.ndims = spec->ndims;
    row.nvalues = spec->nmetrics;
    row_val v;
    int rv = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    rc = 0;
    while (rv == 0) {
        const unsigned char *kp = key.mv_data;
        uint32_t mk = get_u32(kp);
        if (mk >= end_key) {
            break;
        }
        const char *why = NULL;
        if (key.mv_size != klen) {
            rc = sl_err_set(err, SL_EIO, "stored row key of %s has %zu bytes, expected %zu",
                            spec->name, key.mv_size, klen);
            break;
        }
        if (val_decode(spec, val.mv_data, val.mv_size, &v, &why) != 0) {
            rc = sl_err_set(err, SL_EIO, "stored row of %s (%zu bytes) is corrupt: %s", spec->name,
                            val.mv_size, why);
            break;
        }
        row.bucket_ms = key_minute(mk) * MINUTE_MS;
        for (int i = 0; i < spec->ndims; i++) {
            row.dim_ids[i] = get_u32(kp + 4 + 4 * i);
        }
        row.count = v.count;
        memcpy(row.values, v.values, sizeof(double) * (size_t)spec->nmetrics);
        memcpy(row.sketches, v.sketches, sizeof(sl_str) * (size_t)spec->nmetrics);
        if ((rc = cb(arg, &row)) != 0) {
            break;
        }
        rv = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc == 0 && rv != 0 && rv != MDB_NOTFOUND) {
        rc = conv(rv, err, "scan");
    }
    mdb_cursor_close(cur);
    return rc;
}

int sl_store_dict_size(sl_store_reader *r, const sl_spec *spec, int dim, uint32_t *n, sl_err *err)
{
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    *n = 0;
    if (rc == SL_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    char mk[200];
    int mkl = snprintf(mk, sizeof(mk), "next_id:%s:%d", spec->name, dim);
    MDB_val key = {(size_t)mkl, mk}, val;
    int rv = mdb_get(r->txn, r->st->meta, &key, &val);
    if (rv == MDB_NOTFOUND) {
        return 0;
    }
    if (rv != 0 || val.mv_size != 4) {
        return conv(rv != 0 ? rv : MDB_CORRUPTED, err, "dict size");
    }
    uint32_t next;
    memcpy(&next, val.mv_data, 4);
    *n = next - 1;
    return 0;
}

int sl_store_dict_get(sl_store_reader *r, const sl_spec *spec, int dim, uint32_t id, sl_str *out,
                      sl_err *err)
{
    out->p = NULL;
    out->len = 0;
    if (id == 0) {
        return 0;
    }
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    if (rc != 0) {
        return rc;
    }
    unsigned char k[5];
    k[0] = (unsigned char)dim;
    put_u32(k + 1, id);
    MDB_val key = {5, k}, val;
    int rv = mdb_get(r->txn, d->rdict, &key, &val);
    if (rv != 0) {
        return conv(rv, err, "dict lookup");
    }
    out->p = val.mv_size == 0 ? "" : val.mv_data;
    out->len = val.mv_size;
    return 0;
}

int sl_store_dict_find(sl_store_reader *r, const sl_spec *spec, int dim, const char *s, size_t len,
                       uint32_t *id, sl_err *err)
{
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    if (rc != 0) {
        return rc;
    }
    unsigned char k[9];
    k[0] = (unsigned char)dim;
    put_u64(k + 1, XXH64(s, len, 0));
    MDB_val key = {9, k}, val;
    int rv = mdb_get(r->txn, d->dict, &key, &val);
    if (rv != 0) {
        return conv(rv, err, "dict find");
    }
    const unsigned char *chain = val.mv_data;
    for (size_t off = 0; off + 8 <= val.mv_size;) {
        uint32_t eid = get_u32(chain + off), elen = get_u32(chain + off + 4);
        if (elen == len && off + 8 + elen <= val.mv_size && memcmp(chain + off + 8, s, len) == 0) {
            *id = eid;
            return 0;
        }
        off += 8 + elen;
    }
    return sl_err_set(err, SL_ENOTFOUND, "value not in dictionary");
}

int sl_store_time_bounds(sl_store_reader *r, const sl_spec *spec, int64_t *min_ms, int64_t *max_ms,
                         sl_err *err)
{
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur;
    if ((rc = conv(mdb_cursor_open(r->txn, d->rows, &cur), err, "cursor")) != 0) {
        return rc;
    }
    MDB_val key, val;
    int rv = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rv == 0) {
        *min_ms = key_minute(get_u32(key.mv_data)) * MINUTE_MS;
        rv = mdb_cursor_get(cur, &key, &val, MDB_LAST);
        if (rv == 0) {
            *max_ms = key_minute(get_u32(key.mv_data)) * MINUTE_MS;
        }
    }
    mdb_cursor_close(cur);
    return rv == 0 ? 0 : conv(rv, err, "time bounds");
}

int sl_store_stats(sl_store_reader *r, const sl_spec *spec, uint64_t *rows, uint64_t *events,
                   uint64_t *segments, sl_err *err)
{
    *rows = *events = *segments = 0;
    ds_dbs *d;
    int rc = reader_ds(r, spec, &d, err);
    if (rc == SL_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur;
    if ((rc = conv(mdb_cursor_open(r->txn, r->st->segments, &cur), err, "cursor")) != 0) {
        return rc;
    }
    size_t n = strlen(spec->name);
    unsigned char k[200];
    memcpy(k, spec->name, n);
    k[n] = 0;
    MDB_val key = {n + 1, k}, val;
    int rv = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rv == 0 && key.mv_size == n + 5 && memcmp(key.mv_data, k, n + 1) == 0) {
        uint64_t cnt[2];
        if (val.mv_size == sizeof(cnt)) {
            memcpy(cnt, val.mv_data, sizeof(cnt));
            *rows += cnt[0];
            *events += cnt[1];
            (*segments)++;
        }
        rv = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return 0;
}

int sl_store_read_offset(sl_store_reader *r, const char *ds, int partition, int64_t *out,
                         sl_err *err)
{
    *out = 0;
    if (!r->st->base_open) {
        MDB_txn *txn;
        int rc = conv(mdb_txn_begin(r->st->env, NULL, MDB_RDONLY, &txn), err, "begin");
        if (rc != 0) {
            return rc;
        }
        rc = open_base(r->st, txn, err);
        if (rc == 0) {
            rc = conv(mdb_txn_commit(txn), err, "commit read");
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == SL_ENOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        /* Fresh snapshot: the old one may predate the databases. */
        mdb_txn_abort(r->txn);
        r->txn = NULL;
        if ((rc = conv(mdb_txn_begin(r->st->env, NULL, MDB_RDONLY, &r->txn), err, "begin")) != 0) {
            return rc;
        }
    }
    unsigned char k[200];
    if (strlen(ds) > 190) {
        return sl_err_set(err, SL_EINVAL, "datasource name too long");
    }
    MDB_val key = {offset_key(k, ds, partition), k}, val;
    int rv = mdb_get(r->txn, r->st->offsets, &key, &val);
    if (rv == MDB_NOTFOUND) {
        return 0;
    }
    if (rv != 0 || val.mv_size != 8) {
        return conv(rv != 0 ? rv : MDB_CORRUPTED, err, "read offset");
    }
    memcpy(out, val.mv_data, 8);
    return 0;
}
