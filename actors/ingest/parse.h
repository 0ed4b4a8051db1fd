/* Request body -> events: the ingest actor's hot path.
 *
 * A body is one JSON object, a JSON array of objects, or NDJSON (one object per
 * line; blank lines and CRLF line ends allowed). The first non-whitespace byte
 * decides: '[' is an array, anything else a stream of objects (a single object is
 * NDJSON with one line; a pretty-printed object spanning lines is accepted too, see
 * parse.c). Each event is validated against its datasource spec, and the accepted
 * ones are encoded with sl_events_put() into one events blob per partition.
 *
 * Rejections are per event: the event is counted in `rejected` and, up to
 * max_errors of them, listed with its line (NDJSON: 1-based line number in the
 * body; array: 1-based element index) and a reason naming the field at fault. Only
 * a syntax error inside an array body rejects the whole body (a truncated array is a
 * truncated upload): sl_parser_run then returns SL_EPARSE naming line and column.
 *
 * The parser is reusable: it keeps its buffers between requests, so a steady stream
 * of requests does not allocate. It is not thread-safe; use one per thread. */
#ifndef SL_INGEST_PARSE_H
#define SL_INGEST_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "msg.h"

typedef struct sl_parse_priv sl_parse_priv;

typedef struct sl_parser {
    /* Results of the last sl_parser_run: owned by the parser, valid until the next
     * run or sl_parser_fini. After a failed run the counts and lists are empty. */
    int64_t accepted;
    int64_t rejected;
    int nerrors;           /* entries in errors: min(rejected, max_errors) */
    sl_line_error *errors; /* reason views are also NUL-terminated */
    int nparts;            /* spec->partitions */
    sl_buf *parts;         /* events blob per partition (sl_events_iter reads them) */
    int64_t *counts;       /* events in each blob */

    sl_parse_priv *priv; /* scratch buffers and the yajl handle */
} sl_parser;

/* Prepares an empty parser (no allocation until the first run). */
void sl_parser_init(sl_parser *p);

/* Frees everything the parser holds; the struct may be reused after sl_parser_init. */
void sl_parser_fini(sl_parser *p);

/* Parses body[0..len) as events of spec. now_ms is the current wall-clock time, used
 * for the spec's late/early rejection windows. At most max_errors rejections are
 * listed (all are counted). spec and body are borrowed for the call only: every
 * view in the results points into the parser's own buffers.
 *
 * Returns 0 (some events may still have been rejected: see p->rejected), or
 * SL_EPARSE when an array body is not valid JSON (err names line and column; no
 * event is accepted). */
int sl_parser_run(sl_parser *p, const sl_spec *spec, const void *body, size_t len, int64_t now_ms,
                  int max_errors, sl_err *err);

#endif
