/* Key -> int64 table over LMDB (see kv.h). MDB_NOSYNC: durability comes from an
 * explicit sl_kv_sync at the moments that need it. */
#include "kv.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct sl_kv {
    MDB_env *env;
    MDB_dbi dbi;
};

static int conv(int rv, sl_err *err, const char *what)
{
    if (rv == 0) {
        return 0;
    }
    int code = rv == MDB_NOTFOUND ? SL_ENOTFOUND
               : rv == MDB_MAP_FULL ? SL_ENOSPC
               : rv > 0             ? -rv
                                    : SL_EIO;
    return sl_err_set(err, code, "lmdb %s: %s", what, mdb_strerror(rv));
}

int sl_kv_open(sl_kv **out, const char *dir, int64_t max_mb, sl_err *err)
{
    sl_kv *kv = sl_calloc(1, sizeof(*kv));
    MDB_txn *txn = NULL;
    int rc;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_err_set(err, -errno, "mkdir %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((rc = conv(mdb_env_create(&kv->env), err, "create")) != 0) {
        goto fail;
    }
    mdb_env_set_mapsize(kv->env, (size_t)max_mb << 20);
    if ((rc = conv(mdb_env_open(kv->env, dir, MDB_NOSYNC | MDB_NOTLS, 0644), err, "open")) != 0 ||
        (rc = conv(mdb_txn_begin(kv->env, NULL, 0, &txn), err, "begin")) != 0 ||
        (rc = conv(mdb_dbi_open(txn, NULL, 0, &kv->dbi), err, "dbi")) != 0 ||
        (rc = conv(mdb_txn_commit(txn), err, "commit")) != 0) {
        txn = NULL;
        goto fail;
    }
    *out = kv;
    return 0;
fail:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    sl_kv_close(kv);
    *out = NULL;
    return rc;
}

void sl_kv_close(sl_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    if (kv->env != NULL) {
        mdb_env_close(kv->env);
    }
    free(kv);
}

int sl_kv_get(sl_kv *kv, const void *key, size_t klen, int64_t *value, sl_err *err)
{
    MDB_txn *txn;
    int rc = conv(mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    MDB_val k = {klen, (void *)key}, v;
    rc = conv(mdb_get(txn, kv->dbi, &k, &v), err, "get");
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
    MDB_txn *txn;
    int rc = conv(mdb_txn_begin(kv->env, NULL, 0, &txn), err, "begin");
    for (size_t i = 0; i < n && rc == 0; i++) {
        MDB_val k = {klens[i], (void *)keys[i]}, v = {8, (void *)&values[i]};
        rc = conv(mdb_put(txn, kv->dbi, &k, &v, 0), err, "put");
    }
    if (rc == 0) {
        return conv(mdb_txn_commit(txn), err, "commit");
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
    int rc = conv(mdb_txn_begin(kv->env, NULL, 0, &txn), err, "begin");
    if (rc != 0) {
        return rc;
    }
    if ((rc = conv(mdb_cursor_open(txn, kv->dbi, &cur), err, "cursor")) != 0) {
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
    return conv(mdb_txn_commit(txn), err, "commit");
}

int sl_kv_sync(sl_kv *kv, sl_err *err)
{
    return conv(mdb_env_sync(kv->env, 1), err, "sync");
}
