/* Metrics: counters, gauges and histograms per process, rendered in the Prometheus
 * text exposition format (version 0.0.4).
 *
 * Every metric Sluice exports is declared once, in SL_METRICS_TABLE below: its name,
 * type, label names, histogram buckets and help text. docs/metrics.md lists the same
 * table (metrics_test checks that it names every metric). An actor touches a metric
 * through the process's registry with the shorthands
 *
 *     SL_METRIC_ADD(SL_M_EVENTS_ACCEPTED, n, spec->name);   // counter += n
 *     SL_METRIC_SET(SL_M_LOG_BACKLOG_BYTES, bytes);          // gauge = v
 *     SL_METRIC_OBSERVE(SL_M_QUERY_SECONDS, s, "timeseries"); // histogram
 *
 * where the trailing arguments are the label values, one per label name of the
 * metric, in order (checked: a wrong count aborts). A family appears in the output
 * once it has been touched in the process; a labelled series appears once it has been
 * touched with those values (its value starts at 0).
 *
 * Thread safety: every call may come from any thread (the gateway's HTTP threads
 * update metrics while the actor loop renders them). Values are atomics; creating a
 * series and rendering take the registry's mutex. A series, once created, lives as
 * long as its registry, so callers on a hot path may keep the sl_series pointer
 * (SL_METRIC_SERIES) and update it without any lookup.
 *
 * Each actor answers METRICS on its control socket with sl_metrics_render of its
 * registry, with the labels actor="<name>",actor_instance="<i>" added to every sample
 * of a process-scoped metric; the gateway merges every instance's text into one
 * /metrics page (api/metrics.c). */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "msg.h"

typedef enum sl_metrics_type {
    SL_METRICS_COUNTER,
    SL_METRICS_GAUGE,
    SL_METRICS_HISTOGRAM,
} sl_metrics_type;

/* Histogram bucket sets (upper bounds in seconds; +Inf is always added). */
#define SL_METRICS_BUCKETS(X)                                                                      \
    X(NONE, 0)                                                                                     \
    X(LATENCY, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)     \
    X(FRESHNESS, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

typedef enum sl_metrics_buckets {
#define SL_METRICS_BUCKETS_ENUM(name, ...) SL_METRICS_BUCKETS_##name,
    SL_METRICS_BUCKETS(SL_METRICS_BUCKETS_ENUM)
#undef SL_METRICS_BUCKETS_ENUM
} sl_metrics_buckets;

/* Scope: PROC metrics describe the process that exports them and get its actor labels;
 * INST metrics are about the whole instance (the gateway sets them while scraping) and
 * carry their own actor labels. */
enum { SL_METRICS_PROC, SL_METRICS_INST };

/* X(id, type, name, labels, buckets, scope, exported by, help). labels: comma-separated
 * label names ("" for none). */
#define SL_METRICS_TABLE(X)                                                                        \
    /* ---- ingest ---- */                                                                         \
    X(EVENTS_ACCEPTED, COUNTER, "sluice_events_accepted_total", "datasource", NONE, PROC,          \
      "ingest",                                                                                    \
      "Events accepted and made durable in the partition log (a retry answered as a duplicate "    \
      "is not counted again).")                                                                    \
    X(EVENTS_REJECTED, COUNTER, "sluice_events_rejected_total", "datasource,reason", NONE, PROC,   \
      "ingest",                                                                                    \
      "Events rejected by validation, by reason (\"unlisted\": beyond the "                        \
      "ingest.max_errors_listed reasons listed per request).")                                     \
    X(EVENTS_DUPLICATE, COUNTER, "sluice_events_duplicate_total", "datasource", NONE, PROC,        \
      "ingest", "Events of requests answered as duplicates of an earlier Idempotency-Key.")        \
    X(INGEST_REQUESTS, COUNTER, "sluice_ingest_requests_total", "result", NONE, PROC, "ingest",    \
      "Ingest requests by result: ok, duplicate, bad_request, unknown_datasource, "                \
      "malformed_body, busy, unavailable, no_space, error.")                                       \
    X(INGEST_SECONDS, HISTOGRAM, "sluice_ingest_request_duration_seconds", "", LATENCY, PROC,      \
      "ingest", "Time to parse a request body and have its events made durable.")                  \
    X(KAFKA_LAG, GAUGE, "sluice_kafka_consumer_lag_messages", "datasource,topic,partition", NONE,  \
      PROC, "ingest",                                                                              \
      "Kafka consumer lag in messages: the partition's high watermark minus the next offset to "   \
      "be written to the partition log.")                                                          \
    /* ---- gateway ---- */                                                                        \
    X(HTTP_REQUESTS, COUNTER, "sluice_http_requests_total", "method,route,status", NONE, PROC,     \
      "gateway", "HTTP requests answered, by method, route (path pattern) and status.")            \
    X(HTTP_SECONDS, HISTOGRAM, "sluice_http_request_duration_seconds", "method,route", LATENCY,    \
      PROC, "gateway", "Time from a request's first line to its reply being queued.")              \
    X(HTTP_BACKPRESSURE, COUNTER, "sluice_http_backpressure_replies_total", "route,status", NONE,  \
      PROC, "gateway", "Replies that ask the client to come back later: 429, 503, 507.")           \
    X(ACTOR_UP, GAUGE, "sluice_actor_up", "actor,actor_instance", NONE, INST, "gateway",           \
      "1 when the actor instance answered the gateway's metrics request, else 0.")                 \
    X(ACTOR_RESTARTS, COUNTER, "sluice_actor_restarts_total", "actor,actor_instance", NONE, INST,  \
      "gateway", "Restarts of the actor instance by the supervisor since ./sluice up.")            \
    /* ---- partitioner ---- */                                                                    \
    X(LOG_APPENDS, COUNTER, "sluice_log_appends_total", "datasource", NONE, PROC, "partitioner",   \
      "Records (one per accepted ingest request) written to the partition log.")                   \
    X(LOG_DUPLICATES, COUNTER, "sluice_log_duplicate_requests_total", "", NONE, PROC,              \
      "partitioner", "Append requests answered as duplicates of an earlier Idempotency-Key.")      \
    X(LOG_REFUSED, COUNTER, "sluice_log_refused_total", "reason", NONE, PROC, "partitioner",       \
      "Append requests refused: backlog (429), store_full (507), io (write failed).")              \
    X(LOG_BACKLOG_BYTES, GAUGE, "sluice_log_backlog_bytes", "", NONE, PROC, "partitioner",         \
      "Bytes in the partition log that the storer has not committed yet.")                         \
    X(LOG_SYNC_SECONDS, HISTOGRAM, "sluice_log_sync_duration_seconds", "", LATENCY, PROC,          \
      "partitioner", "Duration of each fsync of the partition log (one per group commit).")        \
    X(LAG_EVENTS, GAUGE, "sluice_log_lag_events", "datasource,partition", NONE, PROC,              \
      "partitioner", "Events appended to the partition log but not yet committed to the store.")   \
    X(LAG_SECONDS, GAUGE, "sluice_log_lag_seconds", "datasource,partition", NONE, PROC,            \
      "partitioner",                                                                               \
      "Age of the oldest event appended to the partition but not yet committed (0 when none).")    \
    /* ---- windower ---- */                                                                       \
    X(WINDOWER_EVENTS, COUNTER, "sluice_windower_events_total", "datasource", NONE, PROC,          \
      "windower", "Events folded into windows.")                                                   \
    X(WINDOWER_OPEN_ROWS, GAUGE, "sluice_windower_open_rows", "datasource", NONE, PROC,            \
      "windower", "Rollup rows held in open windows at the last flush, before sending them.")      \
    X(WINDOWER_FLUSH_SECONDS, HISTOGRAM, "sluice_windower_flush_duration_seconds", "", LATENCY,    \
      PROC, "windower", "Time to encode and send the deltas of one flush.")                        \
    X(WINDOWER_DELTAS, COUNTER, "sluice_windower_deltas_total", "", NONE, PROC, "windower",        \
      "Deltas sent to the storer.")                                                                \
    X(WINDOWER_UNSENT, GAUGE, "sluice_windower_unsent_deltas", "", NONE, PROC, "windower",         \
      "Deltas the storer has not taken yet (backpressure).")                                       \
    X(WINDOWER_REWINDS, COUNTER, "sluice_windower_rewinds_total", "", NONE, PROC, "windower",      \
      "Partitions re-read from their committed offset after the storer stalled on them.")          \
    /* ---- storer ---- */                                                                         \
    X(STORER_COMMIT_SECONDS, HISTOGRAM, "sluice_storer_commit_duration_seconds", "", LATENCY,      \
      PROC, "storer", "Duration of each LMDB transaction applying a burst of deltas.")             \
    X(STORER_ROWS, COUNTER, "sluice_storer_rows_written_total", "datasource", NONE, PROC,          \
      "storer", "Rollup rows merged into the store.")                                              \
    X(STORER_DELTAS, COUNTER, "sluice_storer_deltas_total", "result", NONE, PROC, "storer",        \
      "Deltas by result: applied, skipped (applied before), refused (not at the committed "        \
      "offset), malformed.")                                                                       \
    X(STORER_COMMIT_FAILURES, COUNTER, "sluice_storer_commit_failures_total", "", NONE, PROC,      \
      "storer", "Failed commits (each is retried).")                                               \
    X(LMDB_MAP_BYTES, GAUGE, "sluice_lmdb_map_size_bytes", "", NONE, PROC, "storer",               \
      "Current size of the LMDB map (it grows up to storer.max_map_size_mb).")                     \
    X(LMDB_USED_BYTES, GAUGE, "sluice_lmdb_used_bytes", "", NONE, PROC, "storer",                  \
      "Bytes of the LMDB map in use.")                                                             \
    X(FRESHNESS, HISTOGRAM, "sluice_freshness_seconds", "datasource", FRESHNESS, PROC, "storer",   \
      "Per delta: time from its oldest event being appended to the log (acknowledged) to its "     \
      "commit in the store (queryable).")                                                          \
    /* ---- query ---- */                                                                          \
    X(QUERY_SECONDS, HISTOGRAM, "sluice_query_duration_seconds", "type", LATENCY, PROC, "query",   \
      "Query execution time by query type (timeseries, topN, groupBy, timeBoundary, "              \
      "datasources, sql, invalid).")                                                               \
    X(QUERIES, COUNTER, "sluice_queries_total", "type,status", NONE, PROC, "query",                \
      "Queries answered, by query type and HTTP status.")                                          \
    /* ---- alerter ---- */                                                                        \
    X(ALERT_EVALUATIONS, COUNTER, "sluice_alert_evaluations_total", "rule,result", NONE, PROC,     \
      "alerter", "Rule evaluations by result: ok, error.")                                         \
    X(ALERT_EVAL_SECONDS, HISTOGRAM, "sluice_alert_evaluation_duration_seconds", "rule", LATENCY,  \
      PROC, "alerter", "Time to evaluate a rule (its queries included).")                          \
    X(ALERT_STATE, GAUGE, "sluice_alert_state", "rule,state", NONE, PROC, "alerter",               \
      "1 for the current state of each rule (ok, pending, firing, resolved, error), else 0.")      \
    X(ALERT_TRANSITIONS, COUNTER, "sluice_alert_transitions_total", "rule,to", NONE, PROC,         \
      "alerter", "State transitions of each rule, by the state entered.")                          \
    X(ALERT_NOTIFICATIONS, COUNTER, "sluice_alert_notifications_total", "result", NONE, PROC,      \
      "alerter", "Webhook deliveries by result: sent, retried, failed (given up).")                \
    /* ---- every process ---- */                                                                  \
    X(PROCESS_RSS, GAUGE, "sluice_process_resident_memory_bytes", "", NONE, PROC, "every actor",   \
      "Resident memory of the process.")                                                           \
    X(PROCESS_ANON, GAUGE, "sluice_process_anon_memory_bytes", "", NONE, PROC, "every actor",      \
      "Anonymous resident memory of the process (heap, stacks, buffers; not LMDB's file "          \
      "pages): what memory_mb.<actor> bounds.")                                                    \
    X(PROCESS_MEM_BOUND, GAUGE, "sluice_process_memory_bound_bytes", "", NONE, PROC,               \
      "every actor", "The process's memory bound (memory_mb.<actor>).")                            \
    X(MEMORY_ACTIONS, COUNTER, "sluice_memory_actions_total", "action", NONE, PROC, "every actor", \
      "Times the process acted to stay under its memory bound: flush (windower: open windows "     \
      "sent early), commit (storer: a smaller transaction), refuse (gateway: 503 for a request "   \
      "body or answer; query: a query stopped).")                                                  \
    X(PROCESS_CPU, COUNTER, "sluice_process_cpu_seconds_total", "", NONE, PROC, "every actor",     \
      "User and system CPU time of the process.")                                                  \
    X(PROCESS_START, GAUGE, "sluice_process_start_time_seconds", "", NONE, PROC, "every actor",    \
      "Start time of the process, seconds since the Unix epoch.")                                  \
    X(PROCESS_FDS, GAUGE, "sluice_process_open_fds", "", NONE, PROC, "every actor",                \
      "Open file descriptors of the process.")

typedef enum sl_metric_id {
#define SL_METRICS_ID(id, ...) SL_M_##id,
    SL_METRICS_TABLE(SL_METRICS_ID)
#undef SL_METRICS_ID
        SL_M_COUNT
} sl_metric_id;

/* A registry (one per process by default), a metric family and one labelled series. */
typedef struct sl_metrics sl_metrics;
typedef struct sl_metric sl_metric;
typedef struct sl_series sl_series;

/* The process's registry: created on first use, lives until exit. */
sl_metrics *sl_metrics_default(void);

/* A private registry (tests). Free with sl_metrics_free; NULL is a no-op. */
sl_metrics *sl_metrics_new(void);
void sl_metrics_free(sl_metrics *m);

/* The family of table entry id in m, declared on first use. Borrowed from m. */
sl_metric *sl_metrics_family(sl_metrics *m, sl_metric_id id);

/* Declares a family outside the table (tests, or a plugin's own metric); calling it
 * again with the same name returns the same family (type and labels must match).
 * labels: comma-separated names or "". bounds: ascending histogram bucket upper bounds
 * (nbounds of them; +Inf is added). Strings are copied. */
sl_metric *sl_metrics_declare(sl_metrics *m, sl_metrics_type type, const char *name,
                              const char *help, const char *labels, const double *bounds,
                              int nbounds, int scope);

/* The series of f with the given label values (as many as f has labels; NUL-terminated,
 * copied). Created with value 0 on first use. Borrowed: lives as long as the registry. */
sl_series *sl_metrics_seriesv(sl_metric *f, const char *const *values);

/* Counter or gauge: adds v (a counter must only grow: v >= 0). */
void sl_series_add(sl_series *s, double v);
/* Gauge, or a counter mirrored from elsewhere (e.g. the supervisor's restart count). */
void sl_series_set(sl_series *s, double v);
/* Histogram: counts one observation of v. */
void sl_series_observe(sl_series *s, double v);
/* Counter/gauge value; for a histogram, the sum of observations. */
double sl_series_value(const sl_series *s);
/* Histogram: number of observations; of them, at most bound (a bucket's upper bound). */
uint64_t sl_series_count(const sl_series *s);
uint64_t sl_series_count_le(const sl_series *s, double bound);

/* Shorthands on the default registry; the variadic arguments are the label values
 * (const char *), one per label name of the metric. */
#define SL_METRICS_END ((const char *)sl_metrics_end_)
extern const char sl_metrics_end_[];
#define SL_METRIC_SERIES(id, ...) sl_metrics_series_((id), ##__VA_ARGS__, SL_METRICS_END)
#define SL_METRIC_ADD(id, v, ...) sl_series_add(SL_METRIC_SERIES(id, ##__VA_ARGS__), (v))
#define SL_METRIC_SET(id, v, ...) sl_series_set(SL_METRIC_SERIES(id, ##__VA_ARGS__), (v))
#define SL_METRIC_OBSERVE(id, v, ...) sl_series_observe(SL_METRIC_SERIES(id, ##__VA_ARGS__), (v))
/* Label values end with SL_METRICS_END; aborts when their count is not the metric's. */
sl_series *sl_metrics_series_(sl_metric_id id, ...);

/* Writes every family of m that has been declared, in table order then declaration
 * order, as text format 0.0.4: "# HELP", "# TYPE" and one line per sample. const_labels
 * (name, value, name, value, ..., NULL; may be NULL) go first in the labels of every
 * sample of a PROC-scoped family. Label values and help texts are escaped. Appends to out. */
void sl_metrics_render(sl_metrics *m, const char *const *const_labels, sl_buf *out);

/* Refreshes the sluice_process_* gauges of m from /proc/self. */
void sl_metrics_process_update(sl_metrics *m);

/* Writes the table as a Markdown table (docs/metrics.md). */
void sl_metrics_print_docs(FILE *f);

/* Formats v as Prometheus does (shortest text that reads back exactly; NaN, +Inf,
 * -Inf) into buf. Returns buf. */
char *sl_metrics_format_value(double v, char *buf, size_t size);

/* ---- log lag: the age of the oldest item not yet consumed, per slot --------------- */

/* Marks (end offset, time) per slot, so that given the offset consumed so far the time
 * of the oldest unconsumed item is known. Marks less than resolution_ms apart are
 * merged (keeping the older time), which bounds memory to one mark per resolution_ms
 * of backlog per slot. Not thread-safe. */
typedef struct sl_lagmarks sl_lagmarks;

sl_lagmarks *sl_lagmarks_new(int nslots, int64_t resolution_ms);
void sl_lagmarks_free(sl_lagmarks *l);
/* Items of slot up to end_offset (exclusive) were appended at at_ms. Offsets grow. */
void sl_lagmarks_note(sl_lagmarks *l, int slot, int64_t end_offset, int64_t at_ms);
/* Forgets the marks of slot at or below consumed; returns the time of the oldest item
 * above consumed, or 0 when none is known. */
int64_t sl_lagmarks_oldest(sl_lagmarks *l, int slot, int64_t consumed);

#endif
