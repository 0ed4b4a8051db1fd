/* A small persistent key -> int64 table in its own LMDB environment (the
 * partitioner's idempotency keys). Writes are unsynced until sl_kv_sync. */
#ifndef SL_KV_H
#define SL_KV_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct sl_kv sl_kv;

int sl_kv_open(sl_kv **out, const char *dir, int64_t max_mb, sl_err *err);
void sl_kv_close(sl_kv *kv);
/* 0 with *value, SL_ENOTFOUND, or another error. */
int sl_kv_get(sl_kv *kv, const void *key, size_t klen, int64_t *value, sl_err *err);
/* Puts n entries in one transaction. */
int sl_kv_put_many(sl_kv *kv, const void *const *keys, const size_t *klens, const int64_t *values,
                   size_t n, sl_err *err);
/* Deletes every entry whose value is below min_value; *deleted gets the count. */
int sl_kv_delete_below(sl_kv *kv, int64_t min_value, size_t *deleted, sl_err *err);
int sl_kv_sync(sl_kv *kv, sl_err *err);

#endif
