/* Key -> int64 table over LMDB (see kv.h). MDB_NOSYNC: durability comes from an
 * explicit sl_kv_sync at the moments that need it. */
#include "kv.h"
#include "lmdb_env.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

struct sl_kv {
    MDB_env *env;
    MDB_dbi dbi;
};

int sl_kv_open(sl_kv **out, const char *dir, int64_t max_mb, sl_err *err)
{
    sl_kv *kv = sl_calloc(1, sizeof(*kv));
    int rc = sl_lmdb_open(dir, max_mb, MDB_NOSYNC | MDB_NOTLS, &kv->env, &kv->dbi, err);
    if (rc != 0) {
        free(kv);
        kv = NULL;
    }
    *out = kv;
    return rc;
}

void sl_kv_close(sl_kv *kv)
{
    if (kv != NULL) {
        mdb_env_close(kv->env); /* never NULL once open */
        free(kv);
    }
}

int sl_kv_get(sl_kv *kv, const void *key, size_t klen, int64_t *value, sl_err *err)
{
    MDB_txn *txn;
    int rc = sl_lmdb_conv(mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    MDB_val k = {klen, (void *)key}, v;
    rc = sl_lmdb_conv(mdb_get(txn, kv->dbi, &k, &v), err, "get");
    if (rc == 0) {
        if (v.mv_size == 8) {
            memcpy(value, v.mv_data, 8);
        } else {
            rc = sl_err_set(err, SL_EIO, "kv value has %zu bytes", v.mv_size);
        }
    }
    mdb_txn_abort(txn);
    return rc;
}

int sl_kv_put_many(sl_kv *kv, const void *const *keys, const size_t *klens, const int64_t *values,
                   size_t n, sl_err *err)
{
    MDB_txn *txn = NULL; /* mdb_txn_begin leaves it unset when it fails */
    int rc = sl_lmdb_conv(mdb_txn_begin(kv->env, NULL, 0, &txn), err, "begin");
    for (size_t i = 0; i < n && rc == 0; i++) {
        MDB_val k = {klens[i], (void *)keys[i]}, v = {8, (void *)&values[i]};
        rc = sl_lmdb_conv(mdb_put(txn, kv->dbi, &k, &v, 0), err, "put");
    }
    if (rc == 0) {
        return sl_lmdb_conv(mdb_txn_commit(txn), err, "commit");
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    return rc;
}

int sl_kv_delete_below(sl_kv *kv, int64_t min_value, size_t *deleted, sl_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    *deleted = 0;
    int rc = sl_lmdb_conv(mdb_txn_begin(kv->env, NULL, 0, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    if ((rc = sl_lmdb_conv(mdb_cursor_open(txn, kv->dbi, &cur), err, "cursor")) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_val k, v;
    int rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rv == 0) {
        int64_t val;
        if (v.mv_size == 8) {
            memcpy(&val, v.mv_data, 8);
            if (val < min_value && mdb_cursor_del(cur, 0) == 0) {
                (*deleted)++;
            }
        }
        rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return sl_lmdb_conv(mdb_txn_commit(txn), err, "commit");
}

int sl_kv_sync(sl_kv *kv, sl_err *err)
{
    return sl_lmdb_conv(mdb_env_sync(kv->env, 1), err, "sync");
}
