/* Opening the small LMDB tables of storage/ and converting LMDB's errors, once
 * (lmdb_env.h). */
#include "lmdb_env.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int sl_lmdb_conv(int rv, sl_err *err, const char *what)
{
    if (rv == 0) {
        return 0;
    }
    int code = rv == MDB_NOTFOUND   ? SL_ENOTFOUND
               : rv == MDB_MAP_FULL ? SL_ENOSPC
               : rv > 0             ? -rv
                                    : SL_EIO;
    return sl_err_set(err, code, "lmdb %s: %s", what, mdb_strerror(rv));
}

int sl_lmdb_open(const char *dir, int64_t max_mb, unsigned int flags, MDB_env **env, MDB_dbi *dbi,
                 sl_err *err)
{
    MDB_env *e = NULL;
    MDB_txn *txn = NULL;
    int rc;

    *env = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_err_set(err, -errno, "mkdir %s: %s", dir, strerror(errno));
        goto out;
    }
    if ((rc = sl_lmdb_conv(mdb_env_create(&e), err, "create")) != 0) {
        e = NULL;
        goto out;
    }
    mdb_env_set_mapsize(e, (size_t)max_mb << 20);
    if ((rc = sl_lmdb_conv(mdb_env_open(e, dir, flags, 0644), err, "open")) != 0 ||
        (rc = sl_lmdb_conv(mdb_txn_begin(e, NULL, 0, &txn), err, "begin")) != 0) {
        txn = NULL;
        goto out;
    }
    if ((rc = sl_lmdb_conv(mdb_dbi_open(txn, NULL, 0, dbi), err, "dbi")) != 0) {
        goto out;
    }
    rc = sl_lmdb_conv(mdb_txn_commit(txn), err, "commit"); /* frees txn either way */
    txn = NULL;
out:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc != 0 && e != NULL) {
        mdb_env_close(e);
        e = NULL;
    }
    *env = e;
    return rc;
}
