/* Key -> bytes table over LMDB (see blobs.h). Synced commits (no MDB_NOSYNC): the
 * alerter writes rarely and must not forget a transition it has announced. MDB_NOTLS
 * lets read transactions run on any thread. */
#include "blobs.h"
#include "lmdb_env.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

struct sl_blobs {
    MDB_env *env;
    MDB_dbi dbi;
};

int sl_blobs_open(sl_blobs **out, const char *dir, int64_t max_mb, sl_err *err)
{
    sl_blobs *b = sl_calloc(1, sizeof(*b));
    int rc = sl_lmdb_open(dir, max_mb, MDB_NOTLS, &b->env, &b->dbi, err);
    if (rc != 0) {
        free(b);
        b = NULL;
    }
    *out = b;
    return rc;
}

void sl_blobs_close(sl_blobs *b)
{
    if (b != NULL) {
        mdb_env_close(b->env); /* never NULL once open */
        free(b);
    }
}

int sl_blobs_get(sl_blobs *b, const char *key, char **value, size_t *len, sl_err *err)
{
    MDB_txn *txn;
    int rc = sl_lmdb_conv(mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    MDB_val k = {strlen(key), (void *)key}, v;
    rc = sl_lmdb_conv(mdb_get(txn, b->dbi, &k, &v), err, "get");
    if (rc == 0) {
        *value = sl_malloc(v.mv_size + 1);
        memcpy(*value, v.mv_data, v.mv_size);
        (*value)[v.mv_size] = '\0';
        *len = v.mv_size;
    }
    mdb_txn_abort(txn);
    return rc;
}

int sl_blobs_write(sl_blobs *b, const sl_blobs_op *ops, size_t n, sl_err *err)
{
    MDB_txn *txn;
    int rc = sl_lmdb_conv(mdb_txn_begin(b->env, NULL, 0, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        MDB_val k = {strlen(ops[i].key), (void *)ops[i].key};
        if (ops[i].value == NULL) {
            int rv = mdb_del(txn, b->dbi, &k, NULL);
            rc = rv == MDB_NOTFOUND ? 0 : sl_lmdb_conv(rv, err, "del");
        } else {
            MDB_val v = {ops[i].len, (void *)ops[i].value};
            rc = sl_lmdb_conv(mdb_put(txn, b->dbi, &k, &v, 0), err, "put");
        }
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return sl_lmdb_conv(mdb_txn_commit(txn), err, "commit");
}

int sl_blobs_scan(sl_blobs *b, const char *prefix, bool reverse, sl_blobs_cb cb, void *arg,
                  sl_err *err)
{
    size_t plen = strlen(prefix);
    SL_ASSERT(plen > 0 && (unsigned char)prefix[plen - 1] < 0xff);
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = sl_lmdb_conv(mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    if ((rc = sl_lmdb_conv(mdb_cursor_open(txn, b->dbi, &cur), err, "cursor")) != 0) {
        goto out;
    }
    MDB_val k, v;
    int rv;
    char *upper = NULL;
    if (!reverse) {
        k = (MDB_val){plen, (void *)prefix};
        rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        /* The first key past every key with the prefix, then one step back. */
        upper = sl_strdup(prefix);
        upper[plen - 1]++;
        k = (MDB_val){plen, upper};
        rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        rv = mdb_cursor_get(cur, &k, &v, rv == 0 ? MDB_PREV : MDB_LAST);
    }
    while (rv == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        if ((rc = cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)) != 0) {
            break;
        }
        rv = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
    }
    free(upper);
    if (rc == 0 && rv != 0 && rv != MDB_NOTFOUND) {
        rc = sl_lmdb_conv(rv, err, "scan");
    }
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}
