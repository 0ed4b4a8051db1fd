/* The segment store: rollup rows in LMDB, one environment per data dir (data/segments).
 *
 * Layout (named databases):
 *   rows:<ds>   key = minute (u32 BE, minutes since epoch + 2^31) | dim ids (u32 BE each, spec
 * order) val = count (u64, native order) | a double per sum/min/max metric (f64, spec order; sketch
 * metrics have none) | then, once a sketch metric has data, per distinct/quantiles metric (spec
 * order): length (LEB128, 0 = empty) | serialized sketch (runtime/sketch.h; it carries its format
 * version). A value may end before the sketch list (no sketch data yet, or a row written before the
 * spec had sketch metrics) or stop partway through it (a sketch metric appended to the spec later):
 * missing sketches read as empty. An hourly segment is the key range of its 60 minutes. dict:<ds>
 * key = dim index (u8) | xxh64(string) (u64 BE) -> entries [id u32 | len u32 | bytes].. (a
 * collision chain, almost always one entry; ids from 1, 0 means null/missing) rdict:<ds>  key = dim
 * index (u8) | id (u32 BE) -> string segments    key = ds \0 hour (u32 BE)        -> rows (u64) |
 * events (u64) offsets     key = ds \0 partition (u16 BE)   -> next offset not yet applied (i64)
 *   meta        key = "next_id:" ds ":" dim      -> next dictionary id (u32)
 *
 * One writer process (the storer) and any number of reader processes (query). */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "msg.h"

typedef struct sl_store sl_store;
typedef struct sl_store_txn sl_store_txn;
typedef struct sl_store_reader sl_store_reader;

/* Opens (creating when !readonly) the store in dir. map_mb: initial map size;
 * max_map_mb: the map grows up to this before writes fail with SL_ENOSPC. */
int sl_store_open(sl_store **out, const char *dir, bool readonly, int64_t map_mb,
                  int64_t max_map_mb, sl_err *err);
void sl_store_close(sl_store *st);

/* ---- writer: any call that fails aborts and frees the transaction ---------------- */
int sl_store_begin(sl_store *st, sl_store_txn **out, sl_err *err);
/* Next offset of (ds, partition) not yet applied (0 when none). */
int sl_store_get_offset(sl_store_txn *t, const char *ds, int partition, int64_t *out, sl_err *err);
int sl_store_set_offset(sl_store_txn *t, const char *ds, int partition, int64_t next, sl_err *err);
/* Adds row into the stored row with the same minute and dims (creating it): counts and
 * sums add, min/max keep the extreme, and each non-empty row->sketches[i] of a sketch
 * metric is merged into the stored sketch (sl_hll/sl_dds merge, so the stored bytes are
 * those of one sketch fed every value). row is borrowed for the call; row->values[i] of
 * a sketch metric is ignored. On any error the transaction is aborted and freed:
 * SL_ENOSPC when the map is full, SL_ECODEC when a sketch of row is not a valid sketch of
 * its metric's type, SL_EIO when the stored row is corrupt. */
int sl_store_merge_row(sl_store_txn *t, const sl_spec *spec, const sl_row *row, sl_err *err);
/* Commits. On SL_ENOSPC (map full) the transaction is gone: call sl_store_grow and
 * redo the whole transaction. */
int sl_store_commit(sl_store_txn *t, sl_err *err);
/* Doubles the map size up to max_map_mb; SL_ENOSPC when already there. No transaction
 * may be open. */
int sl_store_grow(sl_store *st, sl_err *err);
/* Current map size and bytes in use, for metrics and the disk-full message. */
int sl_store_usage(sl_store *st, int64_t *map_bytes, int64_t *used_bytes);
void sl_store_abort(sl_store_txn *t);

/* ---- reader ----------------------------------------------------------------------- */
int sl_store_read_begin(sl_store *st, sl_store_reader **out, sl_err *err);
void sl_store_read_end(sl_store_reader *r);

/* A stored row as the scan callback sees it (valid during the callback only). */
typedef struct sl_store_row {
    int64_t bucket_ms;
    int ndims;
    uint32_t dim_ids[SL_MAX_DIMS];
    uint64_t count;
    int nvalues;
    double values[SL_MAX_METRICS];   /* 0 for a sketch metric */
    sl_str sketches[SL_MAX_METRICS]; /* serialized sketch (runtime/sketch.h format) of metric i
                                        when it is distinct/quantiles; {NULL, 0} otherwise or
                                        when empty. Views valid during the callback only. */
} sl_store_row;

/* Returns 0 to continue, non-zero to stop the scan (that value is returned). */
typedef int (*sl_store_scan_cb)(void *arg, const sl_store_row *row);

/* Calls cb for every row of spec's datasource with from_ms <= bucket < to_ms, in key order. */
int sl_store_scan(sl_store_reader *r, const sl_spec *spec, int64_t from_ms, int64_t to_ms,
                  sl_store_scan_cb cb, void *arg, sl_err *err);

/* Number of ids in use for dim (ids are 1..n; 0 is null). */
int sl_store_dict_size(sl_store_reader *r, const sl_spec *spec, int dim, uint32_t *n, sl_err *err);
/* String of id (a view valid until sl_store_read_end); id 0 gives {NULL, 0}. */
int sl_store_dict_get(sl_store_reader *r, const sl_spec *spec, int dim, uint32_t id, sl_str *out,
                      sl_err *err);
/* Id of a string, SL_ENOTFOUND when it was never stored. */
int sl_store_dict_find(sl_store_reader *r, const sl_spec *spec, int dim, const char *s, size_t len,
                       uint32_t *id, sl_err *err);

/* Committed offset of (ds, partition) as of the reader's snapshot (0 when none). */
int sl_store_read_offset(sl_store_reader *r, const char *ds, int partition, int64_t *out,
                         sl_err *err);

/* Start of the earliest and of the latest stored bucket; SL_ENOTFOUND when empty. */
int sl_store_time_bounds(sl_store_reader *r, const sl_spec *spec, int64_t *min_ms, int64_t *max_ms,
                         sl_err *err);
/* Totals over all segments of the datasource. */
int sl_store_stats(sl_store_reader *r, const sl_spec *spec, uint64_t *rows, uint64_t *events,
                   uint64_t *segments, sl_err *err);

#endif
