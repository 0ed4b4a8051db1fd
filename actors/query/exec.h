/* Running a native query plan against the segment store.
 *
 * One read transaction per query. Filters are compiled to a match bitmap per
 * dictionary (one byte per id of a dimension), so the scan loop only indexes arrays;
 * rows are aggregated into an open-addressing table keyed by (bucket, dimension ids),
 * and ids become strings only when the result is written. Sketch aggregators keep one
 * decoded sketch per group and merge the stored rows' serialized sketches into it. */
#ifndef SL_QUERY_EXEC_H
#define SL_QUERY_EXEC_H

#include <stdint.h>

#include "config.h"
#include "msg.h"
#include "native.h"
#include "store.h"

/* At most this many (bucket, dimensions) groups per query: SL_ETOOBIG beyond. */
#define SL_EXEC_MAX_GROUPS 4000000
/* At most this many result rows (zero-filled buckets included): SL_ETOOBIG beyond. */
#define SL_EXEC_MAX_ROWS 2000000

/* Runs q and writes Druid's result JSON into out (reset first). st == NULL means the
 * store does not exist yet: every datasource is empty. default_timeout_ms applies
 * when the query's context gives none (0: no limit). Returns 0, or an error code with
 * err filled: SL_ETOOBIG (too many groups, rows or large sketches), SL_ETIMEDOUT, SL_EIO
 * (a stored sketch that does not decode: the message names the row and metric), or a
 * store error. */
int sl_native_exec(const sl_native *q, sl_store *st, int64_t default_timeout_ms, sl_buf *out,
                   sl_err *err);

/* Start of the latest stored bucket, given the second bound of sl_store_time_bounds. */
int sl_exec_latest_bucket(sl_store_reader *rd, const sl_spec *spec, int64_t max_ms, int64_t *out,
                          sl_err *err);

/* Parses and runs body[0..len) against cfg's datasources. Always fills out with the
 * response body (result or Druid error JSON) and returns the HTTP status. */
int sl_query_native(const sl_config *cfg, sl_store *st, const char *body, size_t len,
                    int64_t default_timeout_ms, sl_buf *out);

#endif
