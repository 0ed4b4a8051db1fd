/* The partitioner: the single writer of the partition log and the sequencer of
 * per-partition offsets.
 *
 * Ingest processes send APPEND requests (one per HTTP request: the accepted events,
 * already split by partition, and the client's Idempotency-Key). Each request becomes
 * one LOG_RECORD, with the next offsets of its partitions, written with one write().
 * After a burst of requests the log is fsync'd once and every request of the burst
 * is answered (group commit): an acknowledged request is on disk. One record per
 * request makes a request atomic: a torn record is dropped whole on recovery.
 *
 * Idempotency keys: a key seen within ingest.idempotency_window_s is answered as a
 * duplicate without writing anything. Keys of records still in the log are rebuilt
 * from the log on start; keys of dropped segments live in a small LMDB table
 * (data/partitioner/keys), synced before any segment is dropped.
 *
 * Kafka sources: an APPEND made from Kafka messages names them (topic, partition,
 * first..last offset); per source partition the highest offset in the log is kept, so
 * a message consumed twice is written once (see "Kafka sources" below).
 *
 * Windowers read the log themselves; the storer commits offsets with the rows. Once
 * the storer's committed offsets pass every record of a segment, it is dropped, so
 * the log holds only what the storer has not yet made durable. When that backlog is
 * over log.max_backlog_mb, appends are refused with SL_EBUSY (the client sees 429). */
#include "actor.h"
#include "hash.h"
#include "kv.h"
#include "log.h"
#include "metrics.h"
#include "plog.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A key in memory: its hash, expiry and the segment of its record. */
typedef struct key_entry {
    uint64_t hash; /* 0 = empty slot */
    int64_t expires_ms;
    uint64_t seg;
    bool pending; /* in the current, not yet synced round */
} key_entry;

/* What a retained segment holds: per (datasource, partition) the end offset of its
 * last record there (0: none). */
typedef struct seg_info {
    uint64_t seq;
    int64_t *end;
} seg_info;

/* A request waiting for the round's sync. */
typedef struct waiter {
    sl_msg *req;
    bool duplicate;
    int status; /* 0, or SL_APPEND_OVERLAP (then hw is the source's high water) */
    int64_t hw;
} waiter;

/* Per (datasource, source topic, source partition): the highest source offset the log
 * holds (see "Kafka sources" in the file comment). */
typedef struct src_entry {
    uint64_t hash; /* of key */
    char *key;     /* "ds\0topic\0partition" (klen bytes): the key in data/partitioner/sources */
    size_t klen;
    int64_t hw;           /* -1: none; includes the current round */
    int64_t hw_durable;   /* as of the last sync */
    int64_t hw_persisted; /* what the sources table holds */
} src_entry;

typedef struct partitioner {
    sl_actor *a;
    const sl_config *cfg;
    sl_sock *in;
    sl_plog *log;
    sl_store *store; /* read-only, opened once the storer created it */
    sl_kv *keydb;
    int *base;       /* per datasource: index of its partition 0 in flat arrays */
    int nslots;      /* sum of partitions over datasources */
    int64_t *next;   /* next offset per (ds, partition) */
    int64_t *round_next; /* next as it was before the current round */
    key_entry *keys;
    size_t keys_cap, keys_n;
    seg_info *segs;
    int nsegs, capsegs;
    waiter *waiters;
    int nwaiters, capwaiters;
    bool round_open;
    char store_full[512]; /* the storer's reason while its store is full, else "" */
    bool sync_always;
    int64_t last_sync_ms;
    sl_buf rec, reply;
    uint64_t appends, duplicates, refused;
    src_entry *srcs; /* Kafka source high waters (few: topics x partitions) */
    int nsrcs, capsrcs;
    sl_kv *srcdb; /* data/partitioner/sources: high waters of dropped segments */
    uint64_t src_duplicates, src_overlaps;
    sl_lagmarks *lag;    /* per (ds, partition): when its uncommitted events were appended */
    sl_series **lagm;    /* per slot: lag events, lag seconds (metrics) */
} partitioner;

static int open_log(partitioner *p, sl_err *err);
static void on_record(void *arg, uint64_t seg, const void *data, size_t len);
static int ds_index(const partitioner *p, sl_str ds);
static int64_t key_window_ms(const partitioner *p, sl_str key);
static uint64_t key_hash(sl_str ds, sl_str key);
static key_entry *key_find(partitioner *p, uint64_t h);
static void key_put(partitioner *p, uint64_t h, int64_t expires_ms, uint64_t seg, bool pending);
static seg_info *seg_of(partitioner *p, uint64_t seq);
static void answer(partitioner *p, sl_sock *to, const sl_msg *req, int status, bool dup,
                   const char *error);
static void answer_hw(partitioner *p, sl_sock *to, const sl_msg *req, int status, bool dup,
                      const char *error, int64_t hw);
static src_entry *src_get(partitioner *p, sl_str ds, const sl_log_source *s);
static int check_source(partitioner *p, sl_sock *from, sl_msg **req, const sl_log_record *r,
                        src_entry **out);
static int persist_sources(partitioner *p, sl_err *err);
static void end_round(partitioner *p);
static void truncate_log(partitioner *p);
static void check_store_full(partitioner *p);
static void export_lag(partitioner *p, const int64_t *committed);

/* ---- run ---------------------------------------------------------------------------- */

static void on_append(void *state, sl_sock *from, const void *data, size_t len);
static void on_idle(void *state);
static void on_timer(void *state);
static void on_maintenance(void *state);

static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_APPEND_REQ] = on_append,
};

int sl_partitioner_run(sl_actor *a, sl_err *err)
{
    partitioner p = {.a = a, .cfg = a->cfg};
    char addr[512];
    int rc;
    sl_buf_init(&p.rec);
    sl_buf_init(&p.reply);
    p.sync_always = strcmp(a->cfg->log_fsync, "always") == 0;
    p.base = sl_calloc((size_t)a->cfg->ndatasources, sizeof(int));
    for (int i = 0; i < a->cfg->ndatasources; i++) {
        p.base[i] = p.nslots;
        p.nslots += a->cfg->datasources[i]->partitions;
    }
    p.next = sl_calloc((size_t)p.nslots, sizeof(int64_t));
    p.round_next = sl_calloc((size_t)p.nslots, sizeof(int64_t));
    p.keys_cap = 1024;
    p.keys = sl_calloc(p.keys_cap, sizeof(key_entry));
    p.lag = sl_lagmarks_new(p.nslots, 100);
    if ((rc = open_log(&p, err)) != 0) {
        goto out;
    }
    if ((rc = sl_sock_open(&p.in, SL_SOCK_REP_RAW, err)) != 0 ||
        (rc = sl_sock_listen(p.in, sl_actor_addr(a, SL_ADDR_PARTITIONER, 0, addr, sizeof(addr)),
                             err)) != 0 ||
        (rc = sl_loop_add_sock(a->loop, p.in, handlers, &p, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, a->cfg->log_fsync_interval_ms, on_timer, &p, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, 250, on_maintenance, &p, err)) != 0) {
        goto out;
    }
    /* A reply waits at most this long for its requester's pipe (a dead ingest). */
    sl_sock_set_timeouts(p.in, 1000, -1);
    sl_loop_set_idle(a->loop, on_idle, &p);
    sl_loop_run(a->loop);
    sl_loop_drain(a->loop, p.in);
    p.sync_always = true;
    end_round(&p);
    SL_LOG(INFO, "partitioner_stopped",
           "appends=%llu duplicates=%llu refused=%llu source_duplicates=%llu "
           "source_overlaps=%llu",
           (unsigned long long)p.appends, (unsigned long long)p.duplicates,
           (unsigned long long)p.refused, (unsigned long long)p.src_duplicates,
           (unsigned long long)p.src_overlaps);
out:
    sl_sock_close(p.in);
    for (int i = 0; i < p.nwaiters; i++) {
        sl_msg_free(p.waiters[i].req);
    }
    free(p.waiters);
    sl_plog_close(p.log);
    sl_store_close(p.store);
    sl_kv_close(p.keydb);
    sl_kv_close(p.srcdb);
    for (int i = 0; i < p.nsrcs; i++) {
        free(p.srcs[i].key);
    }
    free(p.srcs);
    sl_lagmarks_free(p.lag);
    free(p.lagm);
    for (int i = 0; i < p.nsegs; i++) {
        free(p.segs[i].end);
    }
    free(p.segs);
    free(p.keys);
    free(p.next);
    free(p.round_next);
    free(p.base);
    sl_buf_fini(&p.rec);
    sl_buf_fini(&p.reply);
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void on_append(void *state, sl_sock *from, const void *data, size_t len)
{
    partitioner *p = state;
    sl_msg *req = sl_loop_take(p->a->loop);
    sl_log_record r;
    sl_err err = {0};
    if (sl_log_record_decode(data, len, SL_MSG_APPEND_REQ, &r, &err) != 0) {
        answer(p, from, req, SL_ECODEC, false, err.msg);
        sl_msg_free(req);
        return;
    }
    int dsi = ds_index(p, r.ds);
    const sl_spec *spec = dsi >= 0 ? p->cfg->datasources[dsi] : NULL;
    int64_t now = sl_now_ms();
    uint64_t h = 0;
    if (spec == NULL) {
        answer(p, from, req, SL_ENOTFOUND, false, "unknown datasource");
        goto done;
    }
    for (int i = 0; i < r.nparts; i++) {
        if (r.parts[i].partition >= spec->partitions) {
            answer(p, from, req, SL_EINVAL, false, "partition out of range");
            goto done;
        }
    }
    if (r.key.p != NULL) {
        h = key_hash(r.ds, r.key);
        key_entry *k = key_find(p, h);
        int64_t stored_exp;
        if (k != NULL && k->expires_ms > now) {
            p->duplicates++;
            SL_METRIC_ADD(SL_M_LOG_DUPLICATES, 1);
            if (k->pending) {
                /* The original is in this round: answer both after the same sync. */
                if (p->nwaiters == p->capwaiters) {
                    p->capwaiters = p->capwaiters ? p->capwaiters * 2 : 64;
                    p->waiters = sl_realloc(p->waiters, (size_t)p->capwaiters * sizeof(waiter));
                }
                p->waiters[p->nwaiters++] = (waiter){.req = req, .duplicate = true};
                req = NULL;
            } else {
                answer(p, from, req, 0, true, NULL);
            }
            goto done;
        }
        if (p->keydb != NULL && sl_kv_get(p->keydb, &h, sizeof(h), &stored_exp, NULL) == 0 &&
            stored_exp > now) {
            p->duplicates++;
            SL_METRIC_ADD(SL_M_LOG_DUPLICATES, 1);
            answer(p, from, req, 0, true, NULL);
            goto done;
        }
    }
    src_entry *src = NULL;
    if (r.source.topic.p != NULL && check_source(p, from, &req, &r, &src) != 0) {
        goto done; /* answered (or waiting for the round): already in the log */
    }
    if (p->store_full[0] != '\0') {
        char msg[700];
        snprintf(msg, sizeof(msg), "the segment store is full (%s)", p->store_full);
        p->refused++;
        SL_METRIC_ADD(SL_M_LOG_REFUSED, 1, "store_full");
        answer(p, from, req, SL_ENOSPC, false, msg);
        goto done;
    }
    int64_t backlog = sl_plog_bytes(p->log);
    if (backlog > (p->cfg->log_max_backlog_mb << 20)) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "log backlog of %lld MiB is over log.max_backlog_mb (%lld): the storer is behind",
                 (long long)(backlog >> 20), (long long)p->cfg->log_max_backlog_mb);
        p->refused++;
        SL_METRIC_ADD(SL_M_LOG_REFUSED, 1, "backlog");
        answer(p, from, req, SL_EBUSY, false, msg);
        goto done;
    }
    if (!p->round_open) {
        memcpy(p->round_next, p->next, (size_t)p->nslots * sizeof(int64_t));
        p->round_open = true;
    }
    int64_t *next = &p->next[p->base[dsi]];
    for (int i = 0; i < r.nparts; i++) {
        r.parts[i].first_offset = next[r.parts[i].partition];
        next[r.parts[i].partition] += r.parts[i].count;
    }
    r.appended_ms = now;
    sl_buf_reset(&p->rec);
    sl_log_record_encode(&p->rec, SL_MSG_LOG_RECORD, &r);
    uint64_t seg;
    if (sl_plog_append(p->log, p->rec.data, p->rec.len, &seg, &err) != 0) {
        for (int i = 0; i < r.nparts; i++) {
            next[r.parts[i].partition] -= r.parts[i].count;
        }
        SL_LOG_RATE(ERROR, 1000, "append_failed", "error=\"%s\"", err.msg);
        SL_METRIC_ADD(SL_M_LOG_REFUSED, 1, "io");
        answer(p, from, req, err.code == SL_ENOSPC ? SL_ENOSPC : SL_EIO, false, err.msg);
        goto done;
    }
    seg_info *si = seg_of(p, seg);
    for (int i = 0; i < r.nparts; i++) {
        int slot = p->base[dsi] + r.parts[i].partition;
        si->end[slot] = r.parts[i].first_offset + r.parts[i].count;
        sl_lagmarks_note(p->lag, slot, si->end[slot], now);
    }
    if (r.key.p != NULL) {
        key_put(p, h, now + key_window_ms(p, r.key), seg, true);
    }
    if (src != NULL) {
        src->hw = r.source.last_offset; /* durable with this round's sync */
    }
    p->appends++;
    SL_METRIC_ADD(SL_M_LOG_APPENDS, 1, spec->name);
    if (p->nwaiters == p->capwaiters) {
        p->capwaiters = p->capwaiters ? p->capwaiters * 2 : 64;
        p->waiters = sl_realloc(p->waiters, (size_t)p->capwaiters * sizeof(waiter));
    }
    p->waiters[p->nwaiters++] = (waiter){.req = req, .duplicate = false};
    req = NULL;
done:
    sl_msg_free(req);
    sl_log_record_fini(&r);
}

/* After each burst: with fsync "always", sync and answer now (group commit). */
static void on_idle(void *state)
{
    partitioner *p = state;
    if (p->nwaiters > 0 && p->sync_always) {
        end_round(p);
    } else if (p->nwaiters > 0) {
        /* "interval": acknowledge after the write; on_timer syncs. */
        for (int i = 0; i < p->nwaiters; i++) {
            answer_hw(p, p->in, p->waiters[i].req, p->waiters[i].status, p->waiters[i].duplicate,
                      NULL, p->waiters[i].hw);
            sl_msg_free(p->waiters[i].req);
        }
        p->nwaiters = 0;
    }
}

static void on_timer(void *state)
{
    partitioner *p = state;
    if (!p->sync_always && p->round_open) {
        end_round(p);
    }
}

static void on_maintenance(void *state)
{
    partitioner *p = state;
    check_store_full(p);
    truncate_log(p);
    SL_METRIC_SET(SL_M_LOG_BACKLOG_BYTES, (double)sl_plog_bytes(p->log));
}

/* ---- helpers ------------------------------------------------------------------------- */

/* Syncs the log and answers every waiter: all succeeded, or (sync failed: the log
 * was cut back to its last durable size) all failed and the offsets roll back. */
static void end_round(partitioner *p)
{
    if (!p->round_open && p->nwaiters == 0) {
        return;
    }
    sl_err err = {0};
    int64_t t0 = sl_mono_ns();
    int rc = p->round_open ? sl_plog_sync(p->log, &err) : 0;
    if (p->round_open) {
        SL_METRIC_OBSERVE(SL_M_LOG_SYNC_SECONDS, (double)(sl_mono_ns() - t0) / 1e9);
    }
    if (rc != 0) {
        SL_LOG_RATE(ERROR, 1000, "log_sync_failed", "requests=%d error=\"%s\"", p->nwaiters,
                    err.msg);
        memcpy(p->next, p->round_next, (size_t)p->nslots * sizeof(int64_t));
    }
    for (size_t i = 0; i < p->keys_cap; i++) {
        if (p->keys[i].hash != 0 && p->keys[i].pending) {
            p->keys[i].pending = false;
            if (rc != 0) {
                p->keys[i].expires_ms = 0; /* forget: the request was refused */
            }
        }
    }
    for (int i = 0; i < p->nsrcs; i++) {
        if (rc != 0) {
            p->srcs[i].hw = p->srcs[i].hw_durable; /* the round's records are gone */
        } else {
            p->srcs[i].hw_durable = p->srcs[i].hw;
        }
    }
    for (int i = 0; i < p->nwaiters; i++) {
        const waiter *w = &p->waiters[i];
        answer_hw(p, p->in, w->req, rc != 0 ? rc : w->status, w->duplicate, rc ? err.msg : NULL,
                  w->hw);
        sl_msg_free(w->req);
    }
    p->nwaiters = 0;
    p->round_open = false;
    p->last_sync_ms = sl_now_ms();
}

static void answer(partitioner *p, sl_sock *to, const sl_msg *req, int status, bool dup,
                   const char *error)
{
    answer_hw(p, to, req, status, dup, error, -1);
}

/* hw: the source high water sent with SL_APPEND_OVERLAP. */
static void answer_hw(partitioner *p, sl_sock *to, const sl_msg *req, int status, bool dup,
                      const char *error, int64_t hw)
{
    sl_append_rep rep = {
        .status = status,
        .duplicate = dup,
        .error = {error, error != NULL ? strlen(error) : 0},
        .source_hw = hw,
    };
    sl_buf_reset(&p->reply);
    sl_append_rep_encode(&p->reply, &rep);
    sl_err err = {0};
    if (sl_sock_reply(to, req, p->reply.data, p->reply.len, &err) != 0) {
        /* The requester is gone (it times out and its client retries with its key). */
        SL_LOG_RATE(WARN, 1000, "reply_failed", "error=\"%s\"", err.msg);
    }
}

static int open_log(partitioner *p, sl_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/wal", p->cfg->data_dir);
    int64_t cut = 0;
    /* Segments are dropped whole, so the backlog (retained bytes) is measured in
     * segments: keep them small against the backlog bound. */
    int64_t seg_bytes = p->cfg->log_segment_mb << 20;
    if (seg_bytes > (p->cfg->log_max_backlog_mb << 20) / 8) {
        seg_bytes = (p->cfg->log_max_backlog_mb << 20) / 8;
    }
    int rc = sl_plog_open(&p->log, dir, seg_bytes, on_record, p, &cut, err);
    if (rc != 0) {
        return rc;
    }
    if (cut > 0) {
        SL_LOG(WARN, "log_recovered", "torn_bytes_cut=%lld", (long long)cut);
    }
    snprintf(dir, sizeof(dir), "%s/partitioner", p->cfg->data_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/partitioner/keys", p->cfg->data_dir);
    if ((rc = sl_kv_open(&p->keydb, dir, 4096, err)) != 0) {
        return rc;
    }
    /* Source high waters: the log's (rebuilt by on_record) or, for sources whose
     * records were all dropped, the table's, whichever is higher. */
    snprintf(dir, sizeof(dir), "%s/partitioner/sources", p->cfg->data_dir);
    if ((rc = sl_kv_open(&p->srcdb, dir, 256, err)) != 0) {
        return rc;
    }
    for (int i = 0; i < p->nsrcs; i++) {
        src_entry *e = &p->srcs[i];
        int64_t v;
        if (sl_kv_get(p->srcdb, e->key, e->klen, &v, NULL) == 0) {
            e->hw_persisted = v;
            if (v > e->hw) {
                e->hw = e->hw_durable = v;
            }
        }
    }
    /* Offsets never go backwards: also past what the storer committed (records of
     * dropped segments are not in the log any more). */
    snprintf(dir, sizeof(dir), "%s/segments", p->cfg->data_dir);
    struct stat st;
    if (stat(dir, &st) == 0 && sl_store_open(&p->store, dir, true, 1, 1, NULL) == 0) {
        sl_store_reader *r;
        if (sl_store_read_begin(p->store, &r, NULL) == 0) {
            for (int d = 0; d < p->cfg->ndatasources; d++) {
                const sl_spec *spec = p->cfg->datasources[d];
                for (int i = 0; i < spec->partitions; i++) {
                    int64_t c;
                    if (sl_store_read_offset(r, spec->name, i, &c, NULL) == 0 &&
                        c > p->next[p->base[d] + i]) {
                        p->next[p->base[d] + i] = c;
                    }
                }
            }
            sl_store_read_end(r);
        }
    }
    int64_t total = 0;
    for (int i = 0; i < p->nslots; i++) {
        total += p->next[i];
    }
    SL_LOG(INFO, "log_opened", "segments=%d bytes=%lld offsets_total=%lld keys=%zu", p->nsegs,
           (long long)sl_plog_bytes(p->log), (long long)total, p->keys_n);
    return 0;
}

/* Recovery scan: rebuild offsets, segment contents and keys from each record. */
static void on_record(void *arg, uint64_t seg, const void *data, size_t len)
{
    partitioner *p = arg;
    sl_log_record r;
    if (sl_log_record_decode(data, len, SL_MSG_LOG_RECORD, &r, NULL) != 0) {
        SL_LOG_RATE(ERROR, 1000, "bad_log_record", "segment=%llu", (unsigned long long)seg);
        return;
    }
    int dsi = ds_index(p, r.ds);
    seg_info *si = seg_of(p, seg);
    if (dsi >= 0) {
        const sl_spec *spec = p->cfg->datasources[dsi];
        for (int i = 0; i < r.nparts; i++) {
            if (r.parts[i].partition >= spec->partitions) {
                continue;
            }
            int slot = p->base[dsi] + r.parts[i].partition;
            int64_t end = r.parts[i].first_offset + r.parts[i].count;
            if (end > p->next[slot]) {
                p->next[slot] = end;
            }
            si->end[slot] = end;
            sl_lagmarks_note(p->lag, slot, end, r.appended_ms);
        }
    }
    if (r.key.p != NULL) {
        key_put(p, key_hash(r.ds, r.key), r.appended_ms + key_window_ms(p, r.key), seg, false);
    }
    if (r.source.topic.p != NULL) {
        src_entry *e = src_get(p, r.ds, &r.source);
        if (r.source.last_offset > e->hw) {
            e->hw = e->hw_durable = r.source.last_offset;
        }
    }
    sl_log_record_fini(&r);
}

/* Reads the storer's store-full state (see storer.c). */
static void check_store_full(partitioner *p)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/state/store_full", p->cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (p->store_full[0] != '\0') {
            SL_LOG(INFO, "store_space_ok", "%s", "");
        }
        p->store_full[0] = '\0';
        return;
    }
    char buf[sizeof(p->store_full)];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n == 0) {
        snprintf(buf, sizeof(buf), "no space");
    }
    if (strcmp(buf, p->store_full) != 0) {
        SL_LOG(WARN, "store_full", "reason=\"%s\"", buf);
    }
    memcpy(p->store_full, buf, sizeof(buf));
}

/* Drops every leading segment whose records the storer has all committed. */
static void truncate_log(partitioner *p)
{
    char dir[4096];
    if (p->store == NULL) {
        snprintf(dir, sizeof(dir), "%s/segments", p->cfg->data_dir);
        struct stat st;
        if (stat(dir, &st) != 0 || sl_store_open(&p->store, dir, true, 1, 1, NULL) != 0) {
            return;
        }
    }
    sl_store_reader *r;
    if (sl_store_read_begin(p->store, &r, NULL) != 0) {
        return;
    }
    int64_t *committed = sl_calloc((size_t)p->nslots, sizeof(int64_t));
    for (int d = 0; d < p->cfg->ndatasources; d++) {
        const sl_spec *spec = p->cfg->datasources[d];
        for (int i = 0; i < spec->partitions; i++) {
            sl_store_read_offset(r, spec->name, i, &committed[p->base[d] + i], NULL);
        }
    }
    sl_store_read_end(r);
    export_lag(p, committed);
    uint64_t cur = sl_plog_current(p->log);
    int drop = 0;
    while (drop < p->nsegs && p->segs[drop].seq < cur) {
        int ok = 1;
        for (int i = 0; i < p->nslots && ok; i++) {
            ok = p->segs[drop].end[i] <= committed[i];
        }
        if (!ok) {
            break;
        }
        drop++;
    }
    free(committed);
    if (drop == 0) {
        return;
    }
    uint64_t before = p->segs[drop - 1].seq + 1;
    /* Keys of the dropped records move to the key table first, durably. */
    size_t n = 0;
    const void **kp = sl_malloc(p->keys_n * sizeof(void *) + 1);
    size_t *kl = sl_malloc(p->keys_n * sizeof(size_t) + 1);
    int64_t *kv = sl_malloc(p->keys_n * sizeof(int64_t) + 1);
    for (size_t i = 0; i < p->keys_cap; i++) {
        key_entry *k = &p->keys[i];
        if (k->hash != 0 && k->seg < before && !k->pending && n < p->keys_n) {
            kp[n] = &k->hash;
            kl[n] = sizeof(k->hash);
            kv[n] = k->expires_ms;
            n++;
        }
    }
    sl_err err = {0};
    int rc = n > 0 ? sl_kv_put_many(p->keydb, kp, kl, kv, n, &err) : 0;
    if (rc == 0) {
        rc = sl_kv_sync(p->keydb, &err);
    }
    free(kp);
    free(kl);
    free(kv);
    if (rc != 0) {
        SL_LOG_RATE(ERROR, 10000, "key_persist_failed", "error=\"%s\"", err.msg);
        return;
    }
    /* Source high waters too: the dropped records may be the only ones holding them. */
    if ((rc = persist_sources(p, &err)) != 0) {
        SL_LOG_RATE(ERROR, 10000, "source_persist_failed", "error=\"%s\"", err.msg);
        return;
    }
    if ((rc = sl_plog_drop_before(p->log, before, &err)) != 0) {
        SL_LOG_RATE(ERROR, 10000, "log_drop_failed", "error=\"%s\"", err.msg);
        return;
    }
    for (int i = 0; i < drop; i++) {
        free(p->segs[i].end);
    }
    memmove(p->segs, p->segs + drop, (size_t)(p->nsegs - drop) * sizeof(seg_info));
    p->nsegs -= drop;
    SL_LOG(INFO, "log_truncated", "segments_dropped=%d keys_moved=%zu bytes_left=%lld", drop, n,
           (long long)sl_plog_bytes(p->log));
    /* Expired keys leave the table now and then. */
    size_t deleted;
    sl_kv_delete_below(p->keydb, sl_now_ms(), &deleted, NULL);
}

/* Per partition: events appended but not committed by the storer, and how long the
 * oldest of them has waited (from the lag marks noted at each append). */
static void export_lag(partitioner *p, const int64_t *committed)
{
    int64_t now = sl_now_ms();
    if (p->lagm == NULL) {
        p->lagm = sl_calloc((size_t)p->nslots * 2, sizeof(sl_series *));
        for (int d = 0; d < p->cfg->ndatasources; d++) {
            const sl_spec *spec = p->cfg->datasources[d];
            for (int i = 0; i < spec->partitions; i++) {
                char part[16];
                snprintf(part, sizeof(part), "%d", i);
                int slot = p->base[d] + i;
                p->lagm[2 * slot] = SL_METRIC_SERIES(SL_M_LAG_EVENTS, spec->name, part);
                p->lagm[2 * slot + 1] = SL_METRIC_SERIES(SL_M_LAG_SECONDS, spec->name, part);
            }
        }
    }
    for (int slot = 0; slot < p->nslots; slot++) {
        int64_t behind = p->next[slot] - committed[slot];
        int64_t oldest = sl_lagmarks_oldest(p->lag, slot, committed[slot]);
        sl_series_set(p->lagm[2 * slot], (double)(behind > 0 ? behind : 0));
        sl_series_set(p->lagm[2 * slot + 1],
                      behind > 0 && oldest > 0 && now > oldest ? (double)(now - oldest) / 1000 : 0);
    }
}

/* Client keys live ingest.idempotency_window_s; the gateway's private keys (NUL
 * first) only need to outlast an internal resend. */
static int64_t key_window_ms(const partitioner *p, sl_str key)
{
    if (key.len > 0 && key.p[0] == '\0') {
        return 10 * 60 * 1000;
    }
    return p->cfg->idempotency_window_s * 1000;
}

static int ds_index(const partitioner *p, sl_str ds)
{
    for (int i = 0; i < p->cfg->ndatasources; i++) {
        if (sl_str_eq(ds, p->cfg->datasources[i]->name)) {
            return i;
        }
    }
    return -1;
}

static uint64_t key_hash(sl_str ds, sl_str key)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_buf_append(&b, ds.p, ds.len);
    sl_buf_append(&b, "", 1);
    sl_buf_append(&b, key.p, key.len);
    uint64_t h = sl_hash64(b.data, b.len);
    sl_buf_fini(&b);
    return h == 0 ? 1 : h;
}

static key_entry *key_find(partitioner *p, uint64_t h)
{
    size_t mask = p->keys_cap - 1;
    for (size_t i = h & mask; p->keys[i].hash != 0; i = (i + 1) & mask) {
        if (p->keys[i].hash == h) {
            return &p->keys[i];
        }
    }
    return NULL;
}

static void key_put(partitioner *p, uint64_t h, int64_t expires_ms, uint64_t seg, bool pending)
{
    key_entry *k = key_find(p, h);
    if (k != NULL) {
        k->expires_ms = expires_ms;
        k->seg = seg;
        k->pending = pending;
        return;
    }
    if ((p->keys_n + 1) * 2 > p->keys_cap) {
        /* Rehash; entries whose segment was dropped were moved to the key table. */
        size_t old_cap = p->keys_cap;
        key_entry *old = p->keys;
        uint64_t oldest = p->nsegs > 0 ? p->segs[0].seq : sl_plog_current(p->log);
        size_t live = 0;
        for (size_t i = 0; i < old_cap; i++) {
            live += old[i].hash != 0 && (old[i].seg >= oldest || old[i].pending);
        }
        p->keys_cap = 1024;
        while (p->keys_cap < (live + 1) * 4) {
            p->keys_cap *= 2;
        }
        p->keys = sl_calloc(p->keys_cap, sizeof(key_entry));
        p->keys_n = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].hash != 0 && (old[i].seg >= oldest || old[i].pending)) {
                size_t mask = p->keys_cap - 1, j = old[i].hash & mask;
                while (p->keys[j].hash != 0) {
                    j = (j + 1) & mask;
                }
                p->keys[j] = old[i];
                p->keys_n++;
            }
        }
        free(old);
    }
    size_t mask = p->keys_cap - 1, i = h & mask;
    while (p->keys[i].hash != 0) {
        i = (i + 1) & mask;
    }
    p->keys[i] = (key_entry){h, expires_ms, seg, pending};
    p->keys_n++;
}

static seg_info *seg_of(partitioner *p, uint64_t seq)
{
    if (p->nsegs > 0 && p->segs[p->nsegs - 1].seq == seq) {
        return &p->segs[p->nsegs - 1];
    }
    for (int i = 0; i < p->nsegs; i++) {
        if (p->segs[i].seq == seq) {
            return &p->segs[i];
        }
    }
    if (p->nsegs == p->capsegs) {
        p->capsegs = p->capsegs ? p->capsegs * 2 : 16;
        p->segs = sl_realloc(p->segs, (size_t)p->capsegs * sizeof(seg_info));
    }
    seg_info *s = &p->segs[p->nsegs++];
    s->seq = seq;
    s->end = sl_calloc((size_t)p->nslots, sizeof(int64_t));
    return s;
}

/* ---- Kafka sources --------------------------------------------------------------------
 *
 * An APPEND from a Kafka consumer carries its source: messages first..last of one
 * partition of a topic. Per (datasource, topic, partition) the partitioner keeps the
 * highest source offset in the log (hw), so a message read again after a crash, or by
 * a second consumer during a rebalance, is recognised and written once:
 *   last <= hw          duplicate: acknowledged, nothing written;
 *   first > hw          appended, hw = last (offsets may have gaps: compaction);
 *   first <= hw < last  SL_APPEND_OVERLAP with hw: the sender drops what it holds up
 *                       to hw and sends the rest again.
 * A consumer sends each partition's messages in order and only moves past a batch once
 * it is acknowledged, so the log never skips a message that is sent later. hw is rebuilt
 * from the log on start and persisted in data/partitioner/sources before the segments
 * holding it are dropped. Answers based on an hw that is not yet synced wait for the
 * round's sync, as a pending idempotency key does. */

/* The entry of (ds, topic, partition), created (hw -1, or the table's) if new. */
static src_entry *src_get(partitioner *p, sl_str ds, const sl_log_source *s)
{
    char part[16];
    int plen = snprintf(part, sizeof(part), "%d", (int)s->partition);
    size_t klen = ds.len + 1 + s->topic.len + 1 + (size_t)plen;
    char *key = sl_malloc(klen);
    memcpy(key, ds.p, ds.len);
    key[ds.len] = '\0';
    memcpy(key + ds.len + 1, s->topic.p, s->topic.len);
    key[ds.len + 1 + s->topic.len] = '\0';
    memcpy(key + ds.len + 2 + s->topic.len, part, (size_t)plen);
    uint64_t h = sl_hash64(key, klen);
    for (int i = 0; i < p->nsrcs; i++) {
        if (p->srcs[i].hash == h && p->srcs[i].klen == klen &&
            memcmp(p->srcs[i].key, key, klen) == 0) {
            free(key);
            return &p->srcs[i];
        }
    }
    if (p->nsrcs == p->capsrcs) {
        p->capsrcs = p->capsrcs ? p->capsrcs * 2 : 32;
        p->srcs = sl_realloc(p->srcs, (size_t)p->capsrcs * sizeof(src_entry));
    }
    src_entry *e = &p->srcs[p->nsrcs++];
    *e = (src_entry){
        .hash = h, .key = key, .klen = klen, .hw = -1, .hw_durable = -1, .hw_persisted = -1};
    int64_t v;
    if (p->srcdb != NULL && sl_kv_get(p->srcdb, key, klen, &v, NULL) == 0) {
        e->hw = e->hw_durable = e->hw_persisted = v;
    }
    return e;
}

/* Returns 1 when the request was answered or queued for the round (*req taken), 0 when
 * it is to be appended (*out: its entry). */
static int check_source(partitioner *p, sl_sock *from, sl_msg **req, const sl_log_record *r,
                        src_entry **out)
{
    src_entry *e = src_get(p, r->ds, &r->source);
    *out = e;
    if (r->source.first_offset > e->hw) {
        return 0;
    }
    bool dup = r->source.last_offset <= e->hw;
    int status = dup ? 0 : SL_APPEND_OVERLAP;
    if (dup) {
        p->src_duplicates++;
    } else {
        p->src_overlaps++;
    }
    SL_LOG_RATE(INFO, 1000, dup ? "source_duplicate" : "source_overlap",
                "ds=%.*s topic=%.*s partition=%d first=%lld last=%lld high_water=%lld",
                (int)r->ds.len, r->ds.p, (int)r->source.topic.len, r->source.topic.p,
                (int)r->source.partition, (long long)r->source.first_offset,
                (long long)r->source.last_offset, (long long)e->hw);
    if (e->hw > e->hw_durable) {
        /* What the answer rests on is in this round: answer after its sync. */
        if (p->nwaiters == p->capwaiters) {
            p->capwaiters = p->capwaiters ? p->capwaiters * 2 : 64;
            p->waiters = sl_realloc(p->waiters, (size_t)p->capwaiters * sizeof(waiter));
        }
        p->waiters[p->nwaiters++] = (waiter){*req, dup, status, e->hw};
        *req = NULL;
    } else {
        answer_hw(p, from, *req, status, dup, NULL, e->hw);
    }
    return 1;
}

/* Writes every high water that changed since the last call to the sources table and
 * syncs it. Only synced (durable) high waters are written. */
static int persist_sources(partitioner *p, sl_err *err)
{
    size_t n = 0;
    const void **kp = sl_malloc((size_t)p->nsrcs * sizeof(void *) + 1);
    size_t *kl = sl_malloc((size_t)p->nsrcs * sizeof(size_t) + 1);
    int64_t *kv = sl_malloc((size_t)p->nsrcs * sizeof(int64_t) + 1);
    for (int i = 0; i < p->nsrcs; i++) {
        if (p->srcs[i].hw_durable > p->srcs[i].hw_persisted) {
            kp[n] = p->srcs[i].key;
            kl[n] = p->srcs[i].klen;
            kv[n] = p->srcs[i].hw_durable;
            n++;
        }
    }
    int rc = 0;
    if (n > 0 && (rc = sl_kv_put_many(p->srcdb, kp, kl, kv, n, err)) == 0 &&
        (rc = sl_kv_sync(p->srcdb, err)) == 0) {
        for (int i = 0; i < p->nsrcs; i++) {
            if (p->srcs[i].hw_durable > p->srcs[i].hw_persisted) {
                p->srcs[i].hw_persisted = p->srcs[i].hw_durable;
            }
        }
    }
    free(kp);
    free(kl);
    free(kv);
    return rc;
}
