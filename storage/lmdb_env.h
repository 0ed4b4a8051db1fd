/* What the small LMDB tables of storage/ share (kv.c, blobs.c): converting LMDB's
 * return codes to SL_E* codes, and opening an environment with its one unnamed
 * database. Private to storage/: only storage/ includes lmdb.h. */
#ifndef SL_LMDB_ENV_H
#define SL_LMDB_ENV_H

#include <lmdb.h>
#include <stdint.h>

#include "err.h"

/* 0 for rv == 0; otherwise fills err with "lmdb <what>: <LMDB's text>" and returns
 * SL_ENOTFOUND (MDB_NOTFOUND), SL_ENOSPC (MDB_MAP_FULL), -rv for an errno value, or
 * SL_EIO for any other LMDB error. what is a static word ("begin", "put"). */
int sl_lmdb_conv(int rv, sl_err *err, const char *what);

/* Creates dir if it is missing (0755) and opens an LMDB environment in it with flags
 * (MDB_NOTLS, MDB_NOSYNC, ...), files 0644 and a map of max_mb MiB, then opens its
 * unnamed database. On success *env (the caller closes it with mdb_env_close) and *dbi
 * are set; on error *env is NULL, nothing is left open and err says what failed. */
int sl_lmdb_open(const char *dir, int64_t max_mb, unsigned int flags, MDB_env **env, MDB_dbi *dbi,
                 sl_err *err);

#endif
