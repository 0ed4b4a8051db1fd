/* Kafka sources (see kafka.h): librdkafka's high-level consumer, one thread per
 * enabled datasource source, feeding the same parse and APPEND path as HTTP.
 *
 * The thread's loop: gather a batch (consumer_poll until nothing is ready or the batch
 * is full), then for each Kafka partition in it, parse its messages and send them as
 * one APPEND with the source [topic, partition, first, last]; retry it (same messages)
 * until the partitioner answers, then store last + 1 as the offset to commit
 * (enable.auto.commit commits stored offsets every auto.commit.interval.ms and on
 * revoke and close). Only then is the next batch polled, so at most one batch is held
 * and nothing is ever paused (pause/resume can skip messages in librdkafka 2.0).
 *
 * Why the log never misses or repeats a message: a partition's messages are sent in
 * offset order and a consumer moves past a batch only once it is acknowledged, so the
 * log's high water of a source partition (kept by the partitioner) always covers a
 * prefix of what was consumed. A consumer that starts from a committed offset (after a
 * crash, or a rebalance) re-reads from at most high water + 1: the partitioner answers
 * what it already has as a duplicate, or, for a batch that straddles the high water,
 * SL_APPEND_OVERLAP with the high water, and the batch is sent again without the
 * messages up to it. Offsets committed to Kafka only save re-reading.
 *
 * A bad message (invalid JSON, bad timestamp, ...) is a rejection like a bad line of an
 * HTTP body: counted, its reason logged (rate-limited), and its offset passes with the
 * batch, so it never stalls its partition. A batch whose every message is rejected is
 * still appended (a record without events) so that the high water moves past it. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "parse.h"
#include "sock.h"

#define BATCH_MAX_MSGS 20000
#define BATCH_MAX_BYTES (16 << 20)
#define POLL_MS 100
#define STATUS_INTERVAL_MS 1000
#define STATUS_STALE_MS 15000 /* other consumers' entries older than this are dropped */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 2000
#define MAX_LISTED_REJECTIONS 3

/* Rejection classes: the reason label of sluice_events_rejected_total, the same
 * labels as the HTTP path's (ingest.c), plus empty_message. */
#define REJECT_CLASSES(X)                                                                          \
    X(MALFORMED, "malformed_json")                                                                 \
    X(NOT_OBJECT, "not_object")                                                                    \
    X(MISSING_TS, "missing_timestamp")                                                             \
    X(BAD_TS, "bad_timestamp")                                                                     \
    X(TIME_RANGE, "out_of_range_time")                                                             \
    X(BAD_PKEY, "bad_partition_key")                                                               \
    X(BAD_NUMBER, "bad_number")                                                                    \
    X(TOO_LONG, "string_too_long")                                                                 \
    X(BAD_DIM, "bad_dimension")                                                                    \
    X(EMPTY, "empty_message")                                                                      \
    X(OTHER, "other")

enum {
#define REJECT_ENUM(e, name) REJECT_##e,
    REJECT_CLASSES(REJECT_ENUM)
#undef REJECT_ENUM
        REJECT_COUNT
};

static const char *const reject_names[REJECT_COUNT] = {
#define REJECT_NAME(e, name) name,
    REJECT_CLASSES(REJECT_NAME)
#undef REJECT_NAME
};

/* Message and event counts. */
typedef struct kcounts {
    int64_t messages;   /* consumed */
    int64_t written;    /* of them, new to the log */
    int64_t duplicates; /* of them, already in the log (read again) */
    int64_t accepted;   /* events of the written messages */
    int64_t rejected;
    int64_t classes[REJECT_COUNT]; /* rejected by class */
} kcounts;

/* An assigned partition: this round's messages and its progress. */
typedef struct kpart {
    char *topic;
    int32_t partition;
    rd_kafka_message_t **msgs; /* this round's, in offset order */
    int nmsgs, capmsgs;
    int64_t next;         /* offset after the last message the log is known to hold; -1 */
    int64_t last_ts_ms;   /* Kafka timestamp of that message (0: unknown) */
    int64_t caught_up_ms; /* last time next reached the high watermark */
    int64_t hi;           /* cached high watermark, -1 unknown */
    int64_t lag;          /* messages, -1 unknown (as of the last status) */
    double lag_s;         /* seconds, < 0 unknown */
    kcounts n;            /* since this consumer got the partition */
    char last_rejection[200];
    sl_series *m_lag, *m_lag_s; /* gauges */
} kpart;

typedef struct source {
    sl_kafka *owner;
    const sl_config *cfg;
    const sl_spec *spec;
    const sl_kafka_spec *ks;
    int instance;
    char consumer[32]; /* "ingest.<i>" */
    pthread_t thread;
    bool started;
    rd_kafka_t *rk;
    sl_sock *req; /* APPEND requests to the partitioner (REQ) */
    int timeout_ms;
    sl_parser parser;
    sl_buf *ev;   /* per Sluice partition: the batch's events */
    int64_t *cnt; /* events in ev[i] */
    sl_log_part *lparts;
    sl_buf out; /* the encoded APPEND */
    kpart *parts;
    int nparts, capparts;
    int64_t last_status_ms;
    int64_t started_ms;
    kcounts total; /* since this process started */
    char status_path[4200];
    /* the batch being built */
    int64_t b_accepted, b_rejected;
    int64_t b_classes[REJECT_COUNT];
    int b_nlisted;
    struct {
        int64_t offset;
        char reason[200];
    } b_listed[MAX_LISTED_REJECTIONS];
    /* metrics */
    sl_series *m_accepted, *m_dup_events, *m_written, *m_dup;
    sl_series *m_rejected[REJECT_COUNT];
} source;

struct sl_kafka {
    atomic_bool stop;
    int nsources;
    source *sources;
};

static void *run_source(void *arg);
static int create_consumer(source *s, sl_err *err);
static void destroy_source(source *s);

/* ---- start and stop -------------------------------------------------------------------- */

int sl_kafka_start(sl_kafka **out, const sl_config *cfg, int instance, sl_err *err)
{
    *out = NULL;
    int n = 0;
    for (int i = 0; i < cfg->ndatasources; i++) {
        n += cfg->datasources[i]->kafka != NULL && cfg->datasources[i]->kafka->enabled;
    }
    if (n == 0) {
        return 0;
    }
    sl_kafka *k = sl_calloc(1, sizeof(*k));
    atomic_init(&k->stop, false);
    k->sources = sl_calloc((size_t)n, sizeof(source));
    int rc = 0;
    char addr[512];
    sl_config_addr(cfg, SL_ADDR_PARTITIONER, NULL, 0, addr, sizeof(addr));
    for (int i = 0; i < cfg->ndatasources; i++) {
        const sl_spec *spec = cfg->datasources[i];
        if (spec->kafka == NULL || !spec->kafka->enabled) {
            continue;
        }
        source *s = &k->sources[k->nsources++];
        s->owner = k;
        s->cfg = cfg;
        s->spec = spec;
        s->ks = spec->kafka;
        s->instance = instance;
        snprintf(s->consumer, sizeof(s->consumer), "ingest.%d", instance);
        s->started_ms = sl_now_ms();
        s->timeout_ms = (int)(cfg->request_timeout_ms / 2);
        sl_parser_init(&s->parser);
        sl_buf_init(&s->out);
        s->ev = sl_calloc((size_t)spec->partitions, sizeof(sl_buf));
        s->cnt = sl_calloc((size_t)spec->partitions, sizeof(int64_t));
        s->lparts = sl_calloc((size_t)spec->partitions, sizeof(sl_log_part));
        sl_kafka_status_path(cfg->data_dir, spec->name, s->status_path, sizeof(s->status_path));
        sl_metrics *reg = sl_metrics_default();
        sl_metric *acc = sl_metrics_family(reg, SL_M_EVENTS_ACCEPTED);
        sl_metric *rej = sl_metrics_family(reg, SL_M_EVENTS_REJECTED);
        sl_metric *msgs = sl_metrics_declare(
            reg, SL_METRICS_COUNTER, "sluice_kafka_messages_total",
            "Kafka messages consumed by result: written (new to the partition log) or "
            "duplicate (the log had them: read again after a crash or a rebalance).",
            "datasource,result", NULL, 0, SL_METRICS_PROC);
        s->m_accepted = sl_metrics_seriesv(acc, (const char *[]){spec->name});
        s->m_dup_events = sl_metrics_seriesv(sl_metrics_family(reg, SL_M_EVENTS_DUPLICATE),
                                             (const char *[]){spec->name});
        s->m_written = sl_metrics_seriesv(msgs, (const char *[]){spec->name, "written"});
        s->m_dup = sl_metrics_seriesv(msgs, (const char *[]){spec->name, "duplicate"});
        for (int c = 0; c < REJECT_COUNT; c++) {
            s->m_rejected[c] =
                sl_metrics_seriesv(rej, (const char *[]){spec->name, reject_names[c]});
        }
        if ((rc = sl_sock_open(&s->req, SL_SOCK_REQ, err)) != 0 ||
            (rc = sl_sock_dial(s->req, addr, err)) != 0 || (rc = create_consumer(s, err)) != 0) {
            goto fail;
        }
    }
    for (int i = 0; i < k->nsources; i++) {
        source *s = &k->sources[i];
        if ((rc = pthread_create(&s->thread, NULL, run_source, s)) != 0) {
            rc = sl_err_set(err, -rc, "pthread_create: %s", strerror(rc));
            goto fail;
        }
        s->started = true;
    }
    *out = k;
    return 0;
fail:
    sl_kafka_stop(k);
    return rc;
}

void sl_kafka_stop(sl_kafka *k)
{
    if (k == NULL) {
        return;
    }
    atomic_store(&k->stop, true);
    for (int i = 0; i < k->nsources; i++) {
        if (k->sources[i].started) {
            pthread_join(k->sources[i].thread, NULL);
        }
        destroy_source(&k->sources[i]);
    }
    free(k->sources);
    free(k);
}

const char *sl_kafka_status_path(const char *data_dir, const char *ds, char *buf, size_t size)
{
    snprintf(buf, size, "%s/state/kafka-%s.json", data_dir, ds);
    return buf;
}

/* ---- the consumer thread ------------------------------------------------------------- */

static bool stopping(const source *s)
{
    return atomic_load(&s->owner->stop);
}

static void gather(source *s);
static void flush_part(source *s, kpart *kp);
static void update_lag(source *s, int64_t now);
static void write_status(source *s, bool leaving);

/* The status file and lag gauges, once per STATUS_INTERVAL_MS. */
static void maybe_status(source *s)
{
    int64_t now = sl_now_ms();
    if (now - s->last_status_ms >= STATUS_INTERVAL_MS) {
        update_lag(s, now);
        write_status(s, false);
        s->last_status_ms = now;
    }
}

static void *run_source(void *arg)
{
    source *s = arg;
    char name[16];
    snprintf(name, sizeof(name), "kafka-%.9s", s->spec->name);
    pthread_setname_np(pthread_self(), name);
    SL_LOG(INFO, "kafka_consumer_started", "ds=%s group=%s bootstrap=\"%s\" topics=%d",
           s->spec->name, s->ks->group_id, s->ks->bootstrap_servers, s->ks->ntopics);
    while (!stopping(s)) {
        gather(s);
        /* Parts can change only inside poll (rebalance callback): none here. */
        for (int i = 0; i < s->nparts && !stopping(s); i++) {
            if (s->parts[i].nmsgs > 0) {
                flush_part(s, &s->parts[i]);
            }
        }
        maybe_status(s);
    }
    /* Unsent messages are dropped: they were not stored, so they are read again. */
    for (int i = 0; i < s->nparts; i++) {
        for (int j = 0; j < s->parts[i].nmsgs; j++) {
            rd_kafka_message_destroy(s->parts[i].msgs[j]);
        }
        s->parts[i].nmsgs = 0;
    }
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(s->rk); /* commits stored offsets */
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SL_LOG(WARN, "kafka_close_failed", "ds=%s error=\"%s\"", s->spec->name,
               rd_kafka_err2str(e));
    }
    write_status(s, true);
    SL_LOG(INFO, "kafka_consumer_stopped", "ds=%s", s->spec->name);
    return NULL;
}

static kpart *find_part(source *s, const char *topic, int32_t partition)
{
    for (int i = 0; i < s->nparts; i++) {
        if (s->parts[i].partition == partition && strcmp(s->parts[i].topic, topic) == 0) {
            return &s->parts[i];
        }
    }
    return NULL;
}

/* Polls until nothing more is ready or the batch is full. */
static void gather(source *s)
{
    int n = 0;
    size_t bytes = 0;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, POLL_MS);
    while (m != NULL) {
        const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "";
        kpart *kp = find_part(s, topic, m->partition);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* At the end: what we hold of it (if anything) is all there is. */
            if (kp != NULL && kp->nmsgs == 0 && m->offset > kp->next) {
                kp->next = m->offset;
            }
            if (kp != NULL) {
                kp->caught_up_ms = sl_now_ms();
            }
            rd_kafka_message_destroy(m);
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            SL_LOG_RATE(WARN, 5000, "kafka_consume_error",
                        "ds=%s topic=%s partition=%d error=\"%s\"", s->spec->name, topic,
                        (int)m->partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        } else if (kp == NULL) {
            rd_kafka_message_destroy(m); /* not assigned (any more): read again by its owner */
        } else {
            if (kp->nmsgs == kp->capmsgs) {
                kp->capmsgs = kp->capmsgs ? kp->capmsgs * 2 : 256;
                kp->msgs = sl_realloc(kp->msgs, (size_t)kp->capmsgs * sizeof(*kp->msgs));
            }
            kp->msgs[kp->nmsgs++] = m;
            if (kp->next < 0) {
                /* Consumption of a new assignment starts at the committed offset (or at
                 * "start"): everything before it is in the log already. */
                kp->next = m->offset;
            }
            n++;
            bytes += m->len;
        }
        if (n >= BATCH_MAX_MSGS || bytes >= BATCH_MAX_BYTES || stopping(s)) {
            break;
        }
        m = rd_kafka_consumer_poll(s->rk, 0);
    }
}

/* ---- one partition's batch ------------------------------------------------------------- */

/* parse.c's reasons by their fixed start (as ingest.c labels them). */
static int classify(const char *reason)
{
    static const struct {
        const char *prefix;
        int cls;
    } kinds[] = {
        {"malformed JSON", REJECT_MALFORMED},     {"event is not a JSON object", REJECT_NOT_OBJECT},
        {"missing timestamp", REJECT_MISSING_TS}, {"timestamp field", REJECT_BAD_TS},
        {"timestamp ", REJECT_TIME_RANGE},        {"partition key", REJECT_BAD_PKEY},
        {"empty message", REJECT_EMPTY},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strncmp(reason, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) {
            return kinds[i].cls;
        }
    }
    /* field "x": <time error> | field "x" must be ... | dimension "x" ... */
    const char *q = strncmp(reason, "field \"", 7) == 0 ? strchr(reason + 7, '"') : NULL;
    if (q != NULL) {
        return q[1] == ':' ? REJECT_BAD_TS : REJECT_BAD_NUMBER;
    }
    if (strncmp(reason, "dimension \"", 11) == 0) {
        return strstr(reason, "bytes, longer") != NULL ? REJECT_TOO_LONG : REJECT_BAD_DIM;
    }
    return REJECT_OTHER;
}

static void batch_reject(source *s, int64_t offset, const char *reason, int64_t n)
{
    s->b_rejected += n;
    s->b_classes[classify(reason)] += n;
    if (s->b_nlisted < MAX_LISTED_REJECTIONS) {
        s->b_listed[s->b_nlisted].offset = offset;
        snprintf(s->b_listed[s->b_nlisted].reason, sizeof(s->b_listed[0].reason), "%s", reason);
        s->b_nlisted++;
    }
}

/* Parses msgs[from..nmsgs) into the APPEND request s->out. */
static void build_append(source *s, kpart *kp, int from)
{
    const sl_spec *spec = s->spec;
    for (int i = 0; i < spec->partitions; i++) {
        sl_buf_reset(&s->ev[i]);
        s->cnt[i] = 0;
    }
    s->b_accepted = s->b_rejected = 0;
    memset(s->b_classes, 0, sizeof(s->b_classes));
    s->b_nlisted = 0;
    int64_t now = sl_now_ms();
    for (int j = from; j < kp->nmsgs; j++) {
        const rd_kafka_message_t *m = kp->msgs[j];
        if (m->payload == NULL || m->len == 0) {
            batch_reject(s, m->offset, "empty message (no value)", 1);
            continue;
        }
        sl_err err = {0};
        sl_parser *p = &s->parser;
        if (sl_parser_run(p, spec, m->payload, m->len, now, 1, &err) != 0) {
            batch_reject(s, m->offset, err.msg, 1);
            continue;
        }
        if (p->rejected > 0) {
            batch_reject(s, m->offset, p->nerrors > 0 ? p->errors[0].reason.p : "rejected",
                         p->rejected);
        }
        s->b_accepted += p->accepted;
        for (int i = 0; i < p->nparts; i++) {
            if (p->counts[i] > 0) {
                sl_buf_append(&s->ev[i], p->parts[i].data, p->parts[i].len);
                s->cnt[i] += p->counts[i];
            }
        }
    }
    int n = 0;
    for (int i = 0; i < spec->partitions; i++) {
        if (s->cnt[i] > 0) {
            s->lparts[n++] = (sl_log_part){
                .partition = i,
                .count = s->cnt[i],
                .events = {s->ev[i].data, s->ev[i].len},
            };
        }
    }
    sl_log_record r = {
        .ds = {spec->name, strlen(spec->name)},
        .nparts = n,
        .parts = s->lparts,
        .source = {{kp->topic, strlen(kp->topic)},
                   kp->partition,
                   kp->msgs[from]->offset,
                   kp->msgs[kp->nmsgs - 1]->offset},
    };
    sl_buf_reset(&s->out);
    sl_log_record_encode(&s->out, SL_MSG_APPEND_REQ, &r);
}

/* Sends s->out; returns 0 (*rep filled) or a retriable error (err says why). */
static int send_append(source *s, sl_append_rep *rep, sl_err *err)
{
    sl_msg *reply = NULL;
    sl_err serr = {0};
    int rc = sl_sock_request(s->req, s->out.data, s->out.len, s->timeout_ms, &reply, &serr);
    if (rc != 0) {
        return sl_err_set(err, rc, "partitioner: %s", serr.msg);
    }
    rc = sl_append_rep_decode(sl_msg_data(reply), sl_msg_len(reply), rep, &serr);
    if (rc != 0) {
        rc = sl_err_set(err, SL_EUNAVAIL, "bad reply from the partitioner: %s", serr.msg);
    } else if (rep->status != 0 && rep->status != SL_APPEND_OVERLAP) {
        rc = sl_err_set(err, rep->status, "partitioner refused the append: %.*s",
                        (int)rep->error.len, rep->error.p != NULL ? rep->error.p : "");
    }
    sl_msg_free(reply);
    return rc;
}

/* The log holds kp's messages up to index upto (exclusive): store the offset to
 * commit and account. */
static void done_through(source *s, kpart *kp, int upto)
{
    const rd_kafka_message_t *last = kp->msgs[upto - 1];
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = last->offset + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(s->rk, l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || l->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Revoked meanwhile: its new owner re-reads, and the log recognises it. */
        SL_LOG_RATE(INFO, 5000, "kafka_offset_not_stored",
                    "ds=%s topic=%s partition=%d error=\"%s\"", s->spec->name, kp->topic,
                    (int)kp->partition,
                    rd_kafka_err2str(e != RD_KAFKA_RESP_ERR_NO_ERROR ? e : l->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (last->offset + 1 > kp->next) {
        kp->next = last->offset + 1;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(last, &tt);
    if (ts > 0) {
        kp->last_ts_ms = ts;
    }
}

static void count_dup(source *s, kpart *kp, int n)
{
    kp->n.messages += n;
    kp->n.duplicates += n;
    s->total.messages += n;
    s->total.duplicates += n;
    sl_series_add(s->m_dup, (double)n);
}

static void flush_part(source *s, kpart *kp)
{
    int from = 0;
    int64_t backoff = RETRY_MIN_MS;
    bool built = false;
    while (from < kp->nmsgs && !stopping(s)) {
        if (!built) {
            build_append(s, kp, from);
            built = true;
        }
        sl_append_rep rep;
        sl_err err = {0};
        int rc = send_append(s, &rep, &err);
        if (rc != 0) {
            /* Not taken (or not known to be): the same messages again, after a pause.
             * Meanwhile nothing is polled, so nothing more piles up. */
            SL_LOG_RATE(WARN, 2000, "kafka_append_retry",
                        "ds=%s topic=%s partition=%d first=%lld "
                        "messages=%d code=%s error=\"%s\"",
                        s->spec->name, kp->topic, (int)kp->partition,
                        (long long)kp->msgs[from]->offset, kp->nmsgs - from, sl_err_name(rc),
                        err.msg);
            for (int64_t t = 0; t < backoff && !stopping(s); t += 10) {
                struct timespec ts = {0, 10 * 1000000};
                nanosleep(&ts, NULL);
                maybe_status(s); /* the lag keeps growing meanwhile: show it */
            }
            backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            continue;
        }
        if (rep.status == SL_APPEND_OVERLAP) {
            /* The log has this partition up to rep.source_hw: send only what follows. */
            int k = from;
            while (k < kp->nmsgs && kp->msgs[k]->offset <= rep.source_hw) {
                k++;
            }
            if (k == from) {
                /* cannot be (first <= high water): a confused peer; do not spin */
                SL_LOG_RATE(ERROR, 5000, "kafka_bad_overlap",
                            "ds=%s topic=%s partition=%d "
                            "first=%lld high_water=%lld",
                            s->spec->name, kp->topic, (int)kp->partition,
                            (long long)kp->msgs[from]->offset, (long long)rep.source_hw);
                struct timespec ts = {0, 200 * 1000000};
                nanosleep(&ts, NULL);
                continue;
            }
            count_dup(s, kp, k - from);
            if (k > from) {
                done_through(s, kp, k);
            }
            from = k;
            built = false;
            continue;
        }
        int n = kp->nmsgs - from;
        if (rep.duplicate) {
            count_dup(s, kp, n);
            sl_series_add(s->m_dup_events, (double)s->b_accepted);
        } else {
            kcounts *cs[2] = {&kp->n, &s->total};
            for (int c = 0; c < 2; c++) {
                cs[c]->messages += n;
                cs[c]->written += n;
                cs[c]->accepted += s->b_accepted;
                cs[c]->rejected += s->b_rejected;
                for (int r = 0; r < REJECT_COUNT; r++) {
                    cs[c]->classes[r] += s->b_classes[r];
                }
            }
            sl_series_add(s->m_written, (double)n);
            sl_series_add(s->m_accepted, (double)s->b_accepted);
            for (int c = 0; c < REJECT_COUNT; c++) {
                if (s->b_classes[c] > 0) {
                    sl_series_add(s->m_rejected[c], (double)s->b_classes[c]);
                }
            }
            for (int j = 0; j < s->b_nlisted; j++) {
                snprintf(kp->last_rejection, sizeof(kp->last_rejection), "offset %lld: %s",
                         (long long)s->b_listed[j].offset, s->b_listed[j].reason);
                SL_LOG_RATE(WARN, 1000, "kafka_message_rejected",
                            "ds=%s topic=%s partition=%d offset=%lld reason=\"%s\"", s->spec->name,
                            kp->topic, (int)kp->partition, (long long)s->b_listed[j].offset,
                            s->b_listed[j].reason);
            }
        }
        done_through(s, kp, kp->nmsgs);
        from = kp->nmsgs;
    }
    for (int j = 0; j < kp->nmsgs; j++) {
        rd_kafka_message_destroy(kp->msgs[j]);
    }
    kp->nmsgs = 0;
}

/* ---- lag and status ---------------------------------------------------------------------- */

/* Lag in messages: high watermark - next. In seconds: how long the oldest message not
 * yet in the log can have waited at most: now - max(timestamp of the last message in
 * the log, last time the partition was caught up); 0 when caught up. */
static void update_lag(source *s, int64_t now)
{
    for (int i = 0; i < s->nparts; i++) {
        kpart *kp = &s->parts[i];
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(s->rk, kp->topic, kp->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0) {
            kp->hi = hi;
        }
        kp->lag = kp->hi >= 0 && kp->next >= 0 ? (kp->hi > kp->next ? kp->hi - kp->next : 0) : -1;
        if (kp->lag == 0) {
            kp->caught_up_ms = now;
            kp->lag_s = 0;
        } else {
            int64_t since = kp->last_ts_ms > kp->caught_up_ms ? kp->last_ts_ms : kp->caught_up_ms;
            kp->lag_s =
                kp->lag > 0 && since > 0 ? (now > since ? (double)(now - since) / 1000.0 : 0) : -1;
        }
        sl_series_set(kp->m_lag, kp->lag >= 0 ? (double)kp->lag : 0);
        sl_series_set(kp->m_lag_s, kp->lag_s >= 0 ? kp->lag_s : 0);
    }
}

static int buf_print(void *ctx, const char *str, size_t len)
{
    sl_buf_append(ctx, str, len);
    return 0;
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Re-emits a parsed value (another consumer's entry). */
static void gen_tree(yajl_gen g, yajl_val v, int depth)
{
    if (v == NULL || depth > 8) {
        yajl_gen_null(g);
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gen_str(g, v->u.object.keys[i]);
            gen_tree(g, v->u.object.values[i], depth + 1);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++) {
            gen_tree(g, v->u.array.values[i], depth + 1);
        }
        yajl_gen_array_close(g);
    } else if (YAJL_IS_STRING(v)) {
        gen_str(g, YAJL_GET_STRING(v));
    } else if (YAJL_IS_NUMBER(v)) {
        const char *num = YAJL_GET_NUMBER(v);
        yajl_gen_number(g, num, strlen(num));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, YAJL_IS_TRUE(v));
    } else {
        yajl_gen_null(g);
    }
}

static yajl_val field(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return YAJL_IS_OBJECT(obj) ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

static char *read_small_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    sl_buf b;
    sl_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (4u << 20)) {
        sl_buf_append(&b, chunk, n);
    }
    fclose(f);
    sl_buf_append(&b, "", 1);
    return b.data;
}

static void gen_counts(yajl_gen g, const kcounts *c, bool classes)
{
    gen_str(g, "messages");
    yajl_gen_integer(g, c->messages);
    gen_str(g, "written");
    yajl_gen_integer(g, c->written);
    gen_str(g, "duplicates");
    yajl_gen_integer(g, c->duplicates);
    gen_str(g, "accepted");
    yajl_gen_integer(g, c->accepted);
    gen_str(g, "rejected");
    yajl_gen_integer(g, c->rejected);
    if (classes) {
        gen_str(g, "rejected_by_reason");
        yajl_gen_map_open(g);
        for (int r = 0; r < REJECT_COUNT; r++) {
            if (c->classes[r] > 0) {
                gen_str(g, reject_names[r]);
                yajl_gen_integer(g, c->classes[r]);
            }
        }
        yajl_gen_map_close(g);
    }
}

static void gen_part(yajl_gen g, const source *s, const kpart *kp, int64_t now)
{
    yajl_gen_map_open(g);
    gen_str(g, "topic");
    gen_str(g, kp->topic);
    gen_str(g, "partition");
    yajl_gen_integer(g, kp->partition);
    gen_str(g, "consumer");
    gen_str(g, s->consumer);
    gen_str(g, "position");
    if (kp->next >= 0) {
        yajl_gen_integer(g, kp->next);
    } else {
        yajl_gen_null(g);
    }
    gen_str(g, "high_watermark");
    if (kp->hi >= 0) {
        yajl_gen_integer(g, kp->hi);
    } else {
        yajl_gen_null(g);
    }
    gen_str(g, "lag_messages");
    if (kp->lag >= 0) {
        yajl_gen_integer(g, kp->lag);
    } else {
        yajl_gen_null(g);
    }
    gen_str(g, "lag_seconds");
    if (kp->lag_s >= 0) {
        yajl_gen_double(g, (double)(int64_t)(kp->lag_s * 1000) / 1000.0);
    } else {
        yajl_gen_null(g);
    }
    gen_counts(g, &kp->n, false);
    gen_str(g, "last_rejection");
    if (kp->last_rejection[0] != '\0') {
        gen_str(g, kp->last_rejection);
    } else {
        yajl_gen_null(g);
    }
    gen_str(g, "updated_ms");
    yajl_gen_integer(g, now);
    yajl_gen_map_close(g);
}

/* Copies the entries of prev (an array of objects) that belong to other consumers,
 * were updated within STATUS_STALE_MS and (with_parts) are not partitions this
 * consumer has now; adds their lag to *lag and *lag_s. Returns how many. */
static int merge_entries(yajl_gen g, const source *s, yajl_val prev, bool with_parts, int64_t now,
                         int64_t *lag, double *lag_s)
{
    int n = 0;
    for (size_t i = 0; YAJL_IS_ARRAY(prev) && i < prev->u.array.len; i++) {
        yajl_val e = prev->u.array.values[i];
        yajl_val consumer = field(e, "consumer"), upd = field(e, "updated_ms");
        if (!YAJL_IS_STRING(consumer) || !YAJL_IS_INTEGER(upd) ||
            strcmp(consumer->u.string, s->consumer) == 0 ||
            now - YAJL_GET_INTEGER(upd) > STATUS_STALE_MS) {
            continue; /* ours (written anew), or stale */
        }
        if (with_parts) {
            yajl_val topic = field(e, "topic"), part = field(e, "partition");
            if (!YAJL_IS_STRING(topic) || !YAJL_IS_INTEGER(part) ||
                find_part((source *)s, topic->u.string, (int32_t)YAJL_GET_INTEGER(part)) != NULL) {
                continue; /* ours now */
            }
            yajl_val l = field(e, "lag_messages"), ls = field(e, "lag_seconds");
            *lag += YAJL_IS_INTEGER(l) ? YAJL_GET_INTEGER(l) : 0;
            if (YAJL_IS_NUMBER(ls) && YAJL_GET_DOUBLE(ls) > *lag_s) {
                *lag_s = YAJL_GET_DOUBLE(ls);
            }
        }
        gen_tree(g, e, 0);
        n++;
    }
    return n;
}

/* Rewrites the datasource's status file: this consumer's partitions and totals (none
 * when leaving) plus the other consumers' recent entries. Under an exclusive lock,
 * written to a temporary file and renamed, so readers see a whole file. Failures are
 * logged: the status is only informative.
 *
 *   {"enabled", "bootstrap_servers", "group_id", "topics", "partitions": [{"topic",
 *    "partition", "consumer", "position", "high_watermark", "lag_messages",
 *    "lag_seconds", counts since the consumer got it, "last_rejection", "updated_ms"}],
 *    "consumers": [{"consumer", "pid", "started_ms", counts since it started,
 *    "rejected_by_reason", "updated_ms"}], "assigned_partitions", "lag_messages" (sum),
 *    "lag_seconds" (max), "updated"} */
static void write_status(source *s, bool leaving)
{
    char dir[4200], lock[4300], tmp[4300];
    snprintf(dir, sizeof(dir), "%s/state", s->cfg->data_dir);
    mkdir(dir, 0755);
    snprintf(lock, sizeof(lock), "%s.lock", s->status_path);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", s->status_path, (int)getpid());
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        SL_LOG_RATE(WARN, 10000, "kafka_status_failed", "path=%s error=\"%s\"", lock,
                    strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    int64_t now = sl_now_ms();
    char *old = read_small_file(s->status_path);
    char ebuf[128];
    yajl_val prev = old != NULL ? yajl_tree_parse(old, ebuf, sizeof(ebuf)) : NULL;

    sl_buf out;
    sl_buf_init(&out);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_print_callback, buf_print, &out);
    yajl_gen_map_open(g);
    gen_str(g, "enabled");
    yajl_gen_bool(g, 1);
    gen_str(g, "bootstrap_servers");
    gen_str(g, s->ks->bootstrap_servers);
    gen_str(g, "group_id");
    gen_str(g, s->ks->group_id);
    gen_str(g, "topics");
    yajl_gen_array_open(g);
    for (int i = 0; i < s->ks->ntopics; i++) {
        gen_str(g, s->ks->topics[i]);
    }
    yajl_gen_array_close(g);
    int64_t lag = 0;
    double lag_s = 0;
    int nparts = 0;
    gen_str(g, "partitions");
    yajl_gen_array_open(g);
    for (int i = 0; !leaving && i < s->nparts; i++) {
        gen_part(g, s, &s->parts[i], now);
        lag += s->parts[i].lag > 0 ? s->parts[i].lag : 0;
        lag_s = s->parts[i].lag_s > lag_s ? s->parts[i].lag_s : lag_s;
        nparts++;
    }
    nparts += merge_entries(g, s, field(prev, "partitions"), true, now, &lag, &lag_s);
    yajl_gen_array_close(g);
    gen_str(g, "consumers");
    yajl_gen_array_open(g);
    if (!leaving) {
        yajl_gen_map_open(g);
        gen_str(g, "consumer");
        gen_str(g, s->consumer);
        gen_str(g, "pid");
        yajl_gen_integer(g, getpid());
        gen_str(g, "started_ms");
        yajl_gen_integer(g, s->started_ms);
        gen_counts(g, &s->total, true);
        gen_str(g, "updated_ms");
        yajl_gen_integer(g, now);
        yajl_gen_map_close(g);
    }
    merge_entries(g, s, field(prev, "consumers"), false, now, NULL, NULL);
    yajl_gen_array_close(g);
    gen_str(g, "assigned_partitions");
    yajl_gen_integer(g, nparts);
    gen_str(g, "lag_messages");
    yajl_gen_integer(g, lag);
    gen_str(g, "lag_seconds");
    yajl_gen_double(g, lag_s);
    gen_str(g, "updated");
    char ts[40];
    sl_time_format(now, ts, sizeof(ts));
    gen_str(g, ts);
    yajl_gen_map_close(g);
    yajl_gen_free(g);
    yajl_tree_free(prev);
    free(old);

    FILE *f = fopen(tmp, "wb");
    bool ok = f != NULL && fwrite(out.data, 1, out.len, f) == out.len;
    ok = f != NULL && fclose(f) == 0 && ok;
    if (!ok || rename(tmp, s->status_path) != 0) {
        SL_LOG_RATE(WARN, 10000, "kafka_status_failed", "path=%s error=\"%s\"", s->status_path,
                    strerror(errno));
        unlink(tmp);
    }
    sl_buf_fini(&out);
    flock(fd, LOCK_UN);
    close(fd);
}

/* ---- librdkafka callbacks ------------------------------------------------------------------ */

static void clear_parts(source *s)
{
    for (int i = 0; i < s->nparts; i++) {
        kpart *kp = &s->parts[i];
        for (int j = 0; j < kp->nmsgs; j++) {
            rd_kafka_message_destroy(kp->msgs[j]);
        }
        sl_series_set(kp->m_lag, 0);
        sl_series_set(kp->m_lag_s, 0);
        free(kp->msgs);
        free(kp->topic);
    }
    s->nparts = 0;
}

/* Eager protocol: every rebalance revokes the whole assignment, then assigns anew. The
 * messages held for a revoked partition are dropped: its next owner reads them again
 * from the committed offset, and the log recognises whatever this consumer had
 * written. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    source *s = opaque;
    sl_metric *lagf = sl_metrics_family(sl_metrics_default(), SL_M_KAFKA_LAG);
    sl_metric *lagsf = sl_metrics_declare(
        sl_metrics_default(), SL_METRICS_GAUGE, "sluice_kafka_consumer_lag_seconds",
        "Kafka consumer lag in seconds: at most how long the oldest message not yet in the "
        "partition log has waited (0 when caught up).",
        "datasource,topic,partition", NULL, 0, SL_METRICS_PROC);
    clear_parts(s);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        char list[1024];
        int n = 0;
        list[0] = '\0';
        for (int i = 0; i < parts->cnt; i++) {
            if (s->nparts == s->capparts) {
                s->capparts = s->capparts ? s->capparts * 2 : 16;
                s->parts = sl_realloc(s->parts, (size_t)s->capparts * sizeof(kpart));
            }
            kpart *kp = &s->parts[s->nparts++];
            char pn[16];
            snprintf(pn, sizeof(pn), "%d", (int)parts->elems[i].partition);
            *kp = (kpart){.topic = sl_strdup(parts->elems[i].topic),
                          .partition = parts->elems[i].partition,
                          .next = -1,
                          .hi = -1,
                          .lag = -1,
                          .lag_s = -1};
            const char *labels[] = {s->spec->name, kp->topic, pn};
            kp->m_lag = sl_metrics_seriesv(lagf, labels);
            kp->m_lag_s = sl_metrics_seriesv(lagsf, labels);
            if (n < (int)sizeof(list) - 40) {
                n += snprintf(list + n, sizeof(list) - (size_t)n, "%s%s:%d", i > 0 ? "," : "",
                              kp->topic, (int)kp->partition);
            }
        }
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
        SL_LOG(INFO, "kafka_assigned", "ds=%s partitions=%d list=%s error=\"%s\"", s->spec->name,
               parts->cnt, list, rd_kafka_err2str(e));
    } else {
        rd_kafka_assign(rk, NULL);
        SL_LOG(INFO, "kafka_revoked", "ds=%s reason=\"%s\"", s->spec->name, rd_kafka_err2str(err));
    }
    write_status(s, false);
    s->last_status_ms = sl_now_ms();
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    source *s = opaque;
    SL_LOG_RATE(WARN, 5000, "kafka_error", "ds=%s error=%s reason=\"%s\"", s->spec->name,
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* librdkafka's own warnings and errors (syslog levels; 4 = warning) */
    if (level <= 4) {
        SL_LOG_RATE(WARN, 5000, "kafka_log", "facility=%s message=\"%s\"", fac, buf);
    }
}

/* ---- setup --------------------------------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const source *s, const char *key, const char *value,
                    bool user, sl_err *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return sl_err_set(err, SL_ECONFIG, "%s: key \"kafka.%s%s\": %s", s->spec->source,
                          user ? "properties." : "", key, errstr);
    }
    return 0;
}

static int create_consumer(source *s, sl_err *err)
{
    const sl_kafka_spec *ks = s->ks;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client[64], errstr[512];
    snprintf(client, sizeof(client), "sluice-ingest-%d", s->instance);
    int rc;
    /* Defaults first, then the spec's properties (they win), then what exactly-once
     * needs (the spec parser refuses properties that would change these). */
    if ((rc = conf_set(conf, s, "client.id", client, false, err)) != 0 ||
        (rc = conf_set(conf, s, "auto.commit.interval.ms", "1000", false, err)) != 0 ||
        (rc = conf_set(conf, s, "session.timeout.ms", "6000", false, err)) != 0 ||
        (rc = conf_set(conf, s, "heartbeat.interval.ms", "500", false, err)) != 0 ||
        /* librdkafka's prefetch queue (default 64 MiB) bounds the process's memory */
        (rc = conf_set(conf, s, "queued.max.messages.kbytes", "16384", false, err)) != 0) {
        goto fail;
    }
    for (int i = 0; i < ks->nprops; i++) {
        if ((rc = conf_set(conf, s, ks->prop_keys[i], ks->prop_values[i], true, err)) != 0) {
            goto fail;
        }
    }
    if ((rc = conf_set(conf, s, "bootstrap.servers", ks->bootstrap_servers, false, err)) != 0 ||
        (rc = conf_set(conf, s, "group.id", ks->group_id, false, err)) != 0 ||
        (rc = conf_set(conf, s, "auto.offset.reset", ks->start_latest ? "latest" : "earliest",
                       false, err)) != 0 ||
        (rc = conf_set(conf, s, "enable.auto.commit", "true", false, err)) != 0 ||
        (rc = conf_set(conf, s, "enable.auto.offset.store", "false", false, err)) != 0 ||
        (rc = conf_set(conf, s, "enable.partition.eof", "true", false, err)) != 0) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (s->rk == NULL) {
        rc = sl_err_set(err, SL_ECONFIG, "%s: kafka consumer: %s", s->spec->source, errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(s->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(ks->ntopics);
    for (int i = 0; i < ks->ntopics; i++) {
        rd_kafka_topic_partition_list_add(topics, ks->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = sl_err_set(err, SL_ECONFIG, "%s: kafka subscribe: %s", s->spec->source,
                        rd_kafka_err2str(e));
        goto fail;
    }
    return 0;
fail:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}

static void destroy_source(source *s)
{
    clear_parts(s);
    free(s->parts);
    if (s->rk != NULL) {
        rd_kafka_destroy(s->rk);
    }
    sl_sock_close(s->req);
    sl_parser_fini(&s->parser);
    for (int i = 0; s->ev != NULL && i < s->spec->partitions; i++) {
        sl_buf_fini(&s->ev[i]);
    }
    free(s->ev);
    free(s->cnt);
    free(s->lparts);
    sl_buf_fini(&s->out);
}
