/* Configuration: the instance settings (one JSON file, by default configs/sluice.json)
 * and the datasource specs it names (configs/datasources/ holds them).
 *
 * Every setting is declared once in a table {key, type, default, min, max, help} in
 * config.c; the same table validates files, fills sl_config and prints the docs
 * (`sluice-<actor> --help-config`). An unknown key or a bad value is an error that
 * names the file, the key and the reason. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "err.h"

#define SL_MAX_DIMS 32
#define SL_MAX_METRICS 32
#define SL_MAX_FIELDS 32
#define SL_MAX_PARTITIONS 1024

typedef enum sl_metric_kind {
    SL_METRIC_COUNT, /* events rolled into the row; always stored as the row's count */
    SL_METRIC_SUM,
    SL_METRIC_MIN,
    SL_METRIC_MAX,
    SL_METRIC_DISTINCT,  /* spec type "distinct": HyperLogLog (runtime/sketch.h sl_hll) of an input
                            field's value as a string */
    SL_METRIC_QUANTILES, /* spec type "quantiles": DDSketch (sl_dds) of a numeric input field */
} sl_metric_kind;

/* The spec's name of a metric type ("count", "sum", "min", "max", "distinct",
 * "quantiles"). */
const char *sl_metric_kind_name(sl_metric_kind k);

/* True for the metrics kept as a serialized sketch rather than a double. */
static inline int sl_metric_is_sketch(sl_metric_kind k)
{
    return k == SL_METRIC_DISTINCT || k == SL_METRIC_QUANTILES;
}

typedef struct sl_metric_spec {
    char *name;
    sl_metric_kind kind;
    char *field;     /* input field (NULL for count) */
    int field_index; /* index into sl_spec.hfields for distinct, else into sl_spec.fields */
} sl_metric_spec;

/* A datasource's Kafka source: the "kafka" object of its spec (docs/kafka.md). The
 * ingest actor consumes the topics in consumer group group_id when enabled. */
typedef struct sl_kafka_spec {
    int enabled;             /* "enabled": false keeps the settings but consumes nothing */
    char *bootstrap_servers; /* "host:port,host:port" */
    int ntopics;
    char **topics;    /* "topics": [..] or "topic": ".." */
    char *group_id;   /* default "sluice-<datasource>" */
    int start_latest; /* "start": "earliest" (default, 0) or "latest" (1) */
    int nprops;       /* "properties": librdkafka settings, passed through */
    char **prop_keys;
    char **prop_values; /* as text (numbers and booleans converted) */
} sl_kafka_spec;

/* A datasource spec. Stored metrics exclude `count`: every row keeps its event count
 * separately; metric i is a double at index i of the row's values (sum/min/max) or a
 * serialized sketch at index i of the row's sketches (distinct/quantiles). */
typedef struct sl_spec {
    char *name;
    char *source;   /* file it came from, for messages */
    char *ts_field; /* input field holding the event time */
    sl_ts_format ts_format;
    char *time_column; /* its name in queries; "__time" is always an alias */
    int ndims;
    char *dims[SL_MAX_DIMS];
    char *count_name; /* name of the count metric ("count" if not declared) */
    int nmetrics;     /* stored metrics (sum/min/max/distinct/quantiles) */
    sl_metric_spec metrics[SL_MAX_METRICS];
    int nfields; /* distinct numeric input fields of sum/min/max/quantiles */
    char *fields[SL_MAX_FIELDS];
    /* input fields of distinct metrics: ingest carries the xxh64 of each value's text
     * (sl_event.hashes), not the value */
    int nhfields;
    char *hfields[SL_MAX_FIELDS];
    int64_t segment_ms; /* 3600000 (hour) */
    int64_t query_ms;   /* 60000 (minute): the rollup bucket */
    int partitions;
    char *partition_key;     /* input field hashed to choose the partition */
    int64_t late_reject_ms;  /* 0: accept any age */
    int64_t early_reject_ms; /* 0: accept any future time */
    size_t max_string_len;
    sl_kafka_spec *kafka; /* NULL: the spec has no "kafka" object */
} sl_spec;

/* The actors, in pipeline order (also the order `down` stops them). */
#define SL_ACTOR_TABLE(X)                                                                          \
    X(GATEWAY, "gateway")                                                                          \
    X(INGEST, "ingest")                                                                            \
    X(PARTITIONER, "partitioner")                                                                  \
    X(WINDOWER, "windower")                                                                        \
    X(STORER, "storer")                                                                            \
    X(QUERY, "query")                                                                              \
    X(ALERTER, "alerter")

typedef enum sl_actor_kind {
#define SL_ACTOR_ENUM(e, name) SL_ACTOR_##e,
    SL_ACTOR_TABLE(SL_ACTOR_ENUM)
#undef SL_ACTOR_ENUM
        SL_ACTOR_COUNT
} sl_actor_kind;

extern const char *const sl_actor_names[SL_ACTOR_COUNT];

/* Socket roles; each has an address template in the config ("addresses.<name>"). */
#define SL_ADDR_TABLE(X)                                                                           \
    X(INGEST, "ingest", "ipc://{data}/sock/ingest.ipc")                                            \
    X(PARTITIONER, "partitioner", "ipc://{data}/sock/partitioner.ipc")                             \
    X(STORER, "storer", "ipc://{data}/sock/storer.ipc")                                            \
    X(QUERY, "query", "ipc://{data}/sock/query.ipc")                                               \
    X(NOTIFY, "notify", "ipc://{data}/sock/notify.ipc")                                            \
    X(CONTROL, "control", "ipc://{data}/sock/ctl.{actor}.{i}.ipc")                                 \
    X(ALERTER, "alerter", "ipc://{data}/sock/alerter.ipc")

typedef enum sl_addr_kind {
#define SL_ADDR_ENUM(e, name, def) SL_ADDR_##e,
    SL_ADDR_TABLE(SL_ADDR_ENUM)
#undef SL_ADDR_ENUM
        SL_ADDR_COUNT
} sl_addr_kind;

typedef struct sl_config {
    char *path;     /* the config file */
    char *data_dir; /* absolute */
    char *http_host;
    int http_port;
    int processes[SL_ACTOR_COUNT];
    int memory_mb[SL_ACTOR_COUNT]; /* memory bound per process of each actor */
    char *addr[SL_ADDR_COUNT];     /* templates with {data}, {i}, {actor} */

    /* gateway */
    int64_t max_body_bytes;
    int64_t request_timeout_ms;
    int64_t http_threads;
    /* ingest */
    int64_t max_errors_listed;
    /* partitioner and its log */
    char *log_fsync; /* "always" or "interval" */
    int64_t log_fsync_interval_ms;
    int64_t log_segment_mb;
    int64_t log_max_backlog_mb;
    int64_t idempotency_window_s;
    /* windower */
    int64_t flush_ms;
    /* storer */
    int64_t map_size_mb;
    int64_t max_map_size_mb;
    int64_t commit_max_msgs;
    /* alerter */
    char *alerter_rules; /* directory of alert rule files, relative to the config file */

    int ndatasources;
    sl_spec *datasources[64];
} sl_config;

/* Loads the config at path. data_dir/http override the file when not NULL.
 * On success *out is a new config owned by the caller (sl_config_free). */
int sl_config_load(const char *path, const char *data_dir, const char *http, sl_config **out,
                   sl_err *err);
void sl_config_free(sl_config *cfg);

/* Loads one datasource spec file (used by sl_config_load and the config test). */
int sl_spec_load(const char *path, sl_spec **out, sl_err *err);
/* Parses a spec from a JSON text; source names it in messages. */
int sl_spec_parse(const char *json, size_t len, const char *source, sl_spec **out, sl_err *err);
void sl_spec_free(sl_spec *spec);

/* The datasource named name, or NULL (borrowed from cfg). */
const sl_spec *sl_config_find(const sl_config *cfg, const char *name);

/* Index of a dimension / stored metric (any kind but count) by name, or -1. */
int sl_spec_dim(const sl_spec *spec, const char *name);
int sl_spec_metric(const sl_spec *spec, const char *name);

/* Expands the address template of role for instance i (and actor for CONTROL) into buf. */
int sl_config_addr(const sl_config *cfg, sl_addr_kind role, const char *actor, int i, char *buf,
                   size_t size);

/* How memory_mb.gateway is split (docs/architecture.md, "Memory"): request bodies and
 * the replies that requests hold take at most SL_GATEWAY_BUFFERED_SHARE of it; query
 * answers on their way in from the query processes, one per HTTP thread, at most
 * SL_GATEWAY_ANSWERS_SHARE together. */
#define SL_GATEWAY_BUFFERED_SHARE 0.4
#define SL_GATEWAY_ANSWERS_SHARE 0.5

/* The largest answer a query process sends the gateway, in bytes:
 * SL_GATEWAY_ANSWERS_SHARE × memory_mb.gateway / gateway.http_threads. A larger one is
 * replaced by 400 "Resource limit exceeded". */
int64_t sl_config_max_answer_bytes(const sl_config *cfg);

/* Writes the settings table as Markdown (docs/config.md is generated from it). */
void sl_config_print_docs(FILE *f);

#endif
