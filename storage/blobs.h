/* A small persistent key -> bytes table in its own LMDB environment (the alerter's
 * rule states, transition history and notification outbox). Every write batch is one
 * transaction, synced to disk before sl_blobs_write returns: what it wrote survives a
 * crash of the process or the machine. Keys are strings; scans go in key order.
 *
 * Thread-safe: several threads may read and write through one handle (LMDB serializes
 * the writers). */
#ifndef SL_BLOBS_H
#define SL_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct sl_blobs sl_blobs;

/* Opens (creating dir and the environment) with a map of max_mb. *out is owned by the
 * caller (sl_blobs_close; NULL is a no-op). */
int sl_blobs_open(sl_blobs **out, const char *dir, int64_t max_mb, sl_err *err);
void sl_blobs_close(sl_blobs *b);

/* The value of key: 0 with *value (a NUL-terminated copy, the caller frees it) and *len,
 * SL_ENOTFOUND, or another error. */
int sl_blobs_get(sl_blobs *b, const char *key, char **value, size_t *len, sl_err *err);

/* One operation of a batch: a put, or a delete when value is NULL (deleting a missing
 * key is not an error). */
typedef struct sl_blobs_op {
    const char *key;
    const void *value;
    size_t len;
} sl_blobs_op;

/* Applies ops in one transaction and syncs it. SL_ENOSPC when the map is full. */
int sl_blobs_write(sl_blobs *b, const sl_blobs_op *ops, size_t n, sl_err *err);

/* Called for each entry of a scan with views valid during the call only; returning
 * non-zero stops the scan (sl_blobs_scan then returns that value). */
typedef int (*sl_blobs_cb)(void *arg, const char *key, size_t klen, const void *val, size_t vlen);

/* Calls cb for every key starting with prefix (non-empty), ascending, or descending
 * when reverse. Returns 0, cb's non-zero value, or an error. */
int sl_blobs_scan(sl_blobs *b, const char *prefix, bool reverse, sl_blobs_cb cb, void *arg,
                  sl_err *err);

#endif
