/* Kafka sources of the ingest actor: one librdkafka high-level consumer per datasource
 * whose spec has an enabled "kafka" object, each on its own thread.
 *
 * Every ingest process joins the datasource's consumer group, so the topic partitions
 * are shared among the processes (eager rebalancing). A consumer reads a batch, parses
 * each message value like an HTTP body (parse.c), and sends each Kafka partition's run
 * of messages as one APPEND to the partitioner, naming its source (topic, partition,
 * first and last offset). Only once the partitioner has acknowledged the append (it is
 * in the partition log) is the next offset stored for commit. The partitioner keeps the
 * highest source offset in the log, so a message read twice (after a crash, or by two
 * consumers around a rebalance) is written once: exactly once (docs/kafka.md).
 *
 * Consumer state (assignment, lag in messages and seconds, counts) is written every
 * second to <data>/state/kafka-<datasource>.json, merged with the other ingest
 * processes' entries under a lock; the query actor includes it in GET /v1/datasources.
 *
 * kafka.c is the only file that includes rdkafka.h. */
#ifndef SL_INGEST_KAFKA_H
#define SL_INGEST_KAFKA_H

#include "config.h"
#include "err.h"

typedef struct sl_kafka sl_kafka;

/* Creates and subscribes the consumers of every enabled Kafka source of cfg and starts
 * their threads. instance is this ingest process's number (client.id and the status
 * entries name it). cfg is borrowed and must outlive sl_kafka_stop. *out is NULL when
 * no source is enabled. Fails with SL_ECONFIG (err names the spec file and property)
 * when librdkafka refuses a property. */
int sl_kafka_start(sl_kafka **out, const sl_config *cfg, int instance, sl_err *err);

/* Stops every consumer: the batch in flight is finished or abandoned (it is read again
 * by whoever gets the partition: harmless), offsets stored so far are committed, the
 * group is left and the threads joined. Frees k; NULL is a no-op. */
void sl_kafka_stop(sl_kafka *k);

/* Path of the status file of datasource ds in data_dir (into buf). */
const char *sl_kafka_status_path(const char *data_dir, const char *ds, char *buf, size_t size);

#endif
