/* A rollup table: events folded into rows keyed by (time bucket, dimension values),
 * each row holding an event count, the spec's value metrics and a sketch per sketch
 * metric (distinct: an sl_hll of the event's hash; quantiles: an sl_dds of the field).
 * The windower keeps one per partition between flushes. Strings are copied into the
 * table's own arena, so events may be freed after sl_rollup_add. */
#ifndef SL_ROLLUP_H
#define SL_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"

typedef struct sl_rollup sl_rollup;

/* spec is borrowed and must outlive the table. */
sl_rollup *sl_rollup_new(const sl_spec *spec);
void sl_rollup_free(sl_rollup *r);

/* The bucket of an event time: floor to spec->query_ms. */
int64_t sl_rollup_bucket(const sl_spec *spec, int64_t ts_ms);

/* Folds one event (dims/fields in spec order) into its row. */
void sl_rollup_add(sl_rollup *r, const sl_event *ev);

size_t sl_rollup_rows(const sl_rollup *r);

/* Estimated bytes held by the rows' sketches (see rollup.c), the part of
 * sl_rollup_mem_bytes that depends on the data. 0 after a drain. */
size_t sl_rollup_sketch_bytes(const sl_rollup *r);

/* Estimated bytes the table holds in all: its slot arrays (allocated capacity, not just
 * the rows in use), string arena, sketches and pooled sketches. The windower keeps the
 * sum over its tables under its share of the memory bound (memory_mb.windower). */
size_t sl_rollup_mem_bytes(const sl_rollup *r);

/* Appends every row to blob (sl_rows_put), min/max with no value as +inf/-inf, each
 * sketch metric as its serialized sketch (nil when the row saw no value for it), and
 * reports the earliest and latest bucket; then empties the table (its sketches are
 * cleared and kept for reuse). */
void sl_rollup_drain(sl_rollup *r, sl_buf *blob, int64_t *min_bucket, int64_t *max_bucket);

#endif
