/* Coalescing the rows of one storer transaction before they reach the store.
 *
 * A windower sends a delta per partition every flush (200 ms by default), so a busy
 * row of the current minute arrives in every delta, and a transaction that applies
 * several flushes' deltas would merge each of them into the stored row in turn. With
 * sketch metrics that is costly: each merge decodes the stored sketch (up to 12 KiB for
 * a dense distinct count) and encodes it again. The coalescer first merges the rows of
 * all the transaction's deltas by (datasource, minute, dims) in memory, so the stored
 * row is read, merged and written once per transaction. The more the storer falls
 * behind, the more deltas a transaction holds and the more this saves.
 *
 * Merging is the store's own (counts and sums add, min/max keep the extreme, sketches
 * merge exactly), so the stored result is the same bytes as without coalescing.
 *
 * Rows are borrowed: their dims and single sketches point into the caller's delta
 * buffers, which must outlive the table's use (until sl_coalesce_reset). */
#ifndef SL_STORER_COALESCE_H
#define SL_STORER_COALESCE_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "msg.h"

typedef struct sl_coalesce sl_coalesce;

sl_coalesce *sl_coalesce_new(void);
void sl_coalesce_free(sl_coalesce *c);
/* Empties the table (keeping its memory for the next transaction). */
void sl_coalesce_reset(sl_coalesce *c);

/* Adds row of spec, which came from the caller's delta number src. SL_ECODEC (message
 * naming the metric) when a sketch of row does not decode as its metric's type; the
 * table is then in an unspecified state: reset it. */
int sl_coalesce_add(sl_coalesce *c, const sl_spec *spec, const sl_row *row, int src, sl_err *err);

/* Rows in the table (after merging). */
size_t sl_coalesce_rows(const sl_coalesce *c);

/* Calls fn for each merged row, in the order of first arrival, with its spec and the
 * delta it first came from; stops at and returns fn's first non-zero result. The row
 * passed is valid for the call only. */
typedef int (*sl_coalesce_fn)(void *arg, const sl_spec *spec, const sl_row *row, int src);
int sl_coalesce_each(sl_coalesce *c, sl_coalesce_fn fn, void *arg);

#endif
