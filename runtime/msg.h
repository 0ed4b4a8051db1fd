/* Internal messages between actors: every NNG message body is one msgpack array
 * whose first element is the message type. Encoders append to an sl_buf; decoders
 * return borrowed views into the message body (valid while the body lives).
 *
 * Exactly-once is built into the shapes: an event batch for a partition carries
 * the offset of its first event and its event count (offsets are per partition,
 * one per event, assigned by the partitioner), and every aggregate delta says
 * which half-open offset range [offset_lo, offset_hi) of its partition it covers.
 *
 *   INGEST_REQ  gateway -> ingest (req/rep)   [1, ds, body:bin, idempotency_key|nil]
 *   INGEST_REP  ingest -> gateway             [2, status, accepted, rejected, [[line, reason]..],
 * error, duplicate] EVENTS      ingest -> partitioner (push)  [3, ds, [[partition, count,
 * events:bin]..]] PART_BATCH  partitioner -> windower.i     [4, ds, partition, first_offset, count,
 * events:bin] DELTA       windower -> storer (push)     [5, ds, partition, offset_lo, offset_hi,
 * rows:bin] QUERY_REQ   gateway -> query (req/rep)    [6, kind, body:bin] QUERY_REP   query ->
 * gateway              [7, http_status, body:bin] PING / PONG control (req/rep)             [8] /
 * [9, actor, instance, pid, started_ms] NOTIFY      storer pub                    [10, ds,
 * min_time_ms, max_time_ms] APPEND_REQ  ingest -> partitioner (req)   [11, ds, key|nil,
 * [[partition, count, events:bin]..], source?] APPEND_REP  partitioner -> ingest         [12,
 * status, duplicate, error|nil, source_high_water?] LOG_RECORD  one record of the partition log
 *               [13, ds, key|nil, appended_ms, [[partition, first_offset, count, events:bin]..],
 * source?] source (optional, Kafka): [topic, kafka_partition, first_offset, last_offset], the
 *   contiguous run of messages of one Kafka partition the record was made from; decoders
 *   accept records with or without it (see sl_log_source).
 *   METRICS     gateway -> any control socket [14] / METRICS_REP [15, text:bin] (Prometheus text)
 *   ALERTS_REQ  gateway -> alerter (req/rep)  [16, what, query:str] -> QUERY_REP
 *   DELTA may carry a 7th element, oldest_appended_ms (the appended_ms of its oldest
 *   log record): decoders accept 6 or 7 items.
 *
 * events:bin is a msgpack stream of events, each [ts_ms, [dim: str|nil ..], [field: f64|nil ..]]
 * or [ts_ms, [dim ..], [field ..], [hash: u64|nil ..]] with the spec's dims, fields (numeric)
 * and hfields (of distinct metrics, as the xxh64 of the value's text) in spec order; events
 * of a spec without distinct metrics (and records written before them) have no 4th item.
 * rows:bin is a msgpack stream of rows, each [bucket_ms, [dim: str|nil ..], count,
 * [value: f64 ..]] or, when any sketch metric has data, [bucket_ms, [dim ..], count,
 * [value ..], [sketch: bin|nil ..]]: one value per stored metric (0, sent as the integer 0,
 * for sketch metrics) and as many sketches (the runtime/sketch.h serialization for a
 * distinct or quantiles metric with data, nil otherwise). Decoders accept both shapes and
 * check each sketch's version and type bytes; the storer validates the body as it merges. */
#ifndef SL_MSG_H
#define SL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

enum sl_msg_type {
    SL_MSG_NONE = 0,
    SL_MSG_INGEST_REQ = 1,
    SL_MSG_INGEST_REP = 2,
    SL_MSG_EVENTS = 3,
    SL_MSG_PART_BATCH = 4,
    SL_MSG_DELTA = 5,
    SL_MSG_QUERY_REQ = 6,
    SL_MSG_QUERY_REP = 7,
    SL_MSG_PING = 8,
    SL_MSG_PONG = 9,
    SL_MSG_NOTIFY = 10,
    SL_MSG_APPEND_REQ = 11,
    SL_MSG_APPEND_REP = 12,
    SL_MSG_LOG_RECORD = 13,
    SL_MSG_METRICS = 14,
    SL_MSG_METRICS_REP = 15,
    SL_MSG_ALERTS_REQ = 16,
    SL_MSG_TYPE_COUNT
};

/* Growable byte buffer. */
typedef struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
} sl_buf;

void sl_buf_init(sl_buf *b);
void sl_buf_fini(sl_buf *b);
void sl_buf_reset(sl_buf *b);
void sl_buf_append(sl_buf *b, const void *p, size_t n);
void sl_buf_reserve(sl_buf *b, size_t n);
/* Frees b's memory (leaving it empty) when its capacity is above max_cap: a buffer
 * reused across batches otherwise keeps the size of the largest batch for good. */
void sl_buf_shrink(sl_buf *b, size_t max_cap);

/* A string view; p is not NUL-terminated. p == NULL means nil/absent. */
typedef struct sl_str {
    const char *p;
    size_t len;
} sl_str;

static inline bool sl_str_eq(sl_str s, const char *z)
{
    size_t n = 0;
    while (z[n] != '\0') {
        n++;
    }
    return s.p != NULL && s.len == n && __builtin_memcmp(s.p, z, n) == 0;
}

/* Type of an encoded message, or SL_MSG_NONE if it is not one of ours. */
int sl_msg_type(const void *data, size_t len);

/* ---- events ---------------------------------------------------------------------- */

/* One decoded event: views into the events blob. */
typedef struct sl_event {
    int64_t ts_ms;
    int ndims;
    sl_str dims[SL_MAX_DIMS];
    int nfields;
    bool has_field[SL_MAX_FIELDS];
    double fields[SL_MAX_FIELDS];
    int nhashes; /* spec->nhfields: the values of the distinct metrics' fields, hashed */
    bool has_hash[SL_MAX_FIELDS];
    uint64_t hashes[SL_MAX_FIELDS]; /* sl_hash64 of the value's text (runtime/sketch.h) */
} sl_event;

/* Appends one event to an events blob. */
void sl_events_put(sl_buf *blob, const sl_event *ev);

/* Iterates an events blob. */
typedef struct sl_events_iter {
    const char *data;
    size_t len;
    size_t off;
} sl_events_iter;

void sl_events_iter_init(sl_events_iter *it, const void *data, size_t len);
/* Returns 1 with *ev filled, 0 at the end, SL_ECODEC on malformed data. */
int sl_events_next(sl_events_iter *it, sl_event *ev, sl_err *err);

/* ---- rollup rows ------------------------------------------------------------------ */

typedef struct sl_row {
    int64_t bucket_ms;
    int ndims;
    sl_str dims[SL_MAX_DIMS];
    uint64_t count;
    int nvalues;
    double values[SL_MAX_METRICS];   /* 0 for a sketch metric */
    sl_str sketches[SL_MAX_METRICS]; /* serialized sketch (runtime/sketch.h format) of metric i
                                        when it is distinct/quantiles; {NULL, 0} otherwise or
                                        when empty */
} sl_row;

void sl_rows_put(sl_buf *blob, const sl_row *row);

typedef sl_events_iter sl_rows_iter;
void sl_rows_iter_init(sl_rows_iter *it, const void *data, size_t len);
int sl_rows_next(sl_rows_iter *it, sl_row *row, sl_err *err);

/* ---- messages --------------------------------------------------------------------- */

typedef struct sl_ingest_req {
    sl_str ds;
    sl_str body;
    sl_str key; /* Idempotency-Key header; p == NULL when none */
} sl_ingest_req;

typedef struct sl_line_error {
    int64_t line;
    sl_str reason;
} sl_line_error;

typedef struct sl_ingest_rep {
    int status;     /* 0, or an SL_E* code (error says why) */
    bool duplicate; /* an Idempotency-Key seen before: acknowledged, not counted again */
    int64_t accepted;
    int64_t rejected;
    int nerrors;
    sl_line_error *errors; /* decoded: points into rep storage (see decode) */
    sl_str error;
} sl_ingest_rep;

typedef struct sl_part_events {
    int partition;
    int64_t count;
    sl_str events;
} sl_part_events;

typedef struct sl_events_msg {
    sl_str ds;
    int nparts;
    sl_part_events *parts; /* decoded: owned by the msg, freed by sl_events_msg_fini */
} sl_events_msg;

/* APPEND_REQ (offsets unset) and LOG_RECORD (offsets assigned) share one shape. */
typedef struct sl_log_part {
    int partition;
    int64_t first_offset;
    int64_t count;
    sl_str events;
} sl_log_part;

/* Where a record's events came from, for exactly-once from an outside log (Kafka): the
 * messages first_offset..last_offset (inclusive; offsets may have gaps) of one
 * partition of topic. topic.p == NULL: no source (HTTP ingest). The partitioner keeps
 * the highest last_offset in the log per (datasource, topic, partition). */
typedef struct sl_log_source {
    sl_str topic;
    int32_t partition;
    int64_t first_offset;
    int64_t last_offset;
} sl_log_source;

typedef struct sl_log_record {
    sl_str ds;
    sl_str key; /* idempotency key; p == NULL when none */
    int64_t appended_ms;
    int nparts;
    sl_log_part *parts;   /* decoded: owned, freed by sl_log_record_fini */
    sl_log_source source; /* optional */
} sl_log_record;

/* APPEND_REP status (besides 0 and SL_E* codes) for a request with a source that
 * overlaps what the log holds (first_offset <= high water < last_offset): nothing was
 * written; source_hw says up to which offset the log has the source, and the sender
 * sends the messages after it again. */
#define SL_APPEND_OVERLAP 1

typedef struct sl_append_rep {
    int status; /* 0, SL_APPEND_OVERLAP or an SL_E* code */
    bool duplicate;
    sl_str error;
    int64_t source_hw; /* with SL_APPEND_OVERLAP (sent then only), else -1 */
} sl_append_rep;

typedef struct sl_part_batch {
    sl_str ds;
    int partition;
    int64_t first_offset;
    int64_t count;
    sl_str events;
} sl_part_batch;

typedef struct sl_delta {
    sl_str ds;
    int partition;
    int64_t offset_lo; /* first offset covered */
    int64_t offset_hi; /* one past the last offset covered */
    sl_str rows;
    int64_t oldest_appended_ms; /* optional (0: not sent): for the freshness metric */
} sl_delta;

enum sl_query_kind { SL_QUERY_NATIVE = 0, SL_QUERY_DATASOURCES = 1, SL_QUERY_SQL = 2 };

typedef struct sl_query_req {
    int kind;
    sl_str body;
} sl_query_req;

typedef struct sl_query_rep {
    int http_status;
    sl_str body;
} sl_query_rep;

typedef struct sl_pong {
    sl_str actor;
    int instance;
    int pid;
    int64_t started_ms;
} sl_pong;

typedef struct sl_notify {
    sl_str ds;
    int64_t min_ms;
    int64_t max_ms;
} sl_notify;

/* Encoders append one complete message to out (which the caller resets first). */
void sl_ingest_req_encode(sl_buf *out, const sl_ingest_req *m);
void sl_ingest_rep_encode(sl_buf *out, const sl_ingest_rep *m);
void sl_events_msg_encode(sl_buf *out, const sl_events_msg *m);
void sl_part_batch_encode(sl_buf *out, const sl_part_batch *m);
void sl_delta_encode(sl_buf *out, const sl_delta *m);
void sl_query_req_encode(sl_buf *out, const sl_query_req *m);
void sl_query_rep_encode(sl_buf *out, const sl_query_rep *m);
void sl_ping_encode(sl_buf *out);
void sl_pong_encode(sl_buf *out, const sl_pong *m);
void sl_notify_encode(sl_buf *out, const sl_notify *m);
/* type is SL_MSG_APPEND_REQ (first_offset and appended_ms not sent) or SL_MSG_LOG_RECORD. */
void sl_log_record_encode(sl_buf *out, int type, const sl_log_record *m);
void sl_append_rep_encode(sl_buf *out, const sl_append_rep *m);

/* Decoders: 0 or SL_ECODEC (err says what is wrong). Views point into data. */
int sl_ingest_req_decode(const void *data, size_t len, sl_ingest_req *m, sl_err *err);
/* errors are allocated; free with sl_ingest_rep_fini. */
int sl_ingest_rep_decode(const void *data, size_t len, sl_ingest_rep *m, sl_err *err);
void sl_ingest_rep_fini(sl_ingest_rep *m);
int sl_events_msg_decode(const void *data, size_t len, sl_events_msg *m, sl_err *err);
void sl_events_msg_fini(sl_events_msg *m);
int sl_part_batch_decode(const void *data, size_t len, sl_part_batch *m, sl_err *err);
int sl_delta_decode(const void *data, size_t len, sl_delta *m, sl_err *err);
int sl_query_req_decode(const void *data, size_t len, sl_query_req *m, sl_err *err);
int sl_query_rep_decode(const void *data, size_t len, sl_query_rep *m, sl_err *err);
int sl_pong_decode(const void *data, size_t len, sl_pong *m, sl_err *err);
int sl_notify_decode(const void *data, size_t len, sl_notify *m, sl_err *err);
int sl_log_record_decode(const void *data, size_t len, int type, sl_log_record *m, sl_err *err);
void sl_log_record_fini(sl_log_record *m);
int sl_append_rep_decode(const void *data, size_t len, sl_append_rep *m, sl_err *err);

/* METRICS asks an actor for its metrics; METRICS_REP carries them as Prometheus text
 * (text is a view into data). */
void sl_metrics_req_encode(sl_buf *out);
void sl_metrics_rep_encode(sl_buf *out, sl_str text);
int sl_metrics_rep_decode(const void *data, size_t len, sl_str *text, sl_err *err);

/* ALERTS_REQ asks the alerter for its rules (what 0) or its history (what 1); query is
 * the HTTP query string (filters). The answer is a QUERY_REP (HTTP status, JSON body). */
enum { SL_ALERTS_RULES = 0, SL_ALERTS_HISTORY = 1 };

typedef struct sl_alerts_req {
    int what;
    sl_str query;
} sl_alerts_req;

void sl_alerts_req_encode(sl_buf *out, const sl_alerts_req *m);
int sl_alerts_req_decode(const void *data, size_t len, sl_alerts_req *m, sl_err *err);

#endif
