/* The windower: owns the partitions p with p % processes.windower == instance. It
 * tails the partition log (written by the partitioner), folds its partitions' events
 * into tumbling windows of the datasource's query granularity (minute), rolled up by
 * the dimensions, and every flush_ms sends what it has as a DELTA to the storer:
 * partial aggregates that the storer adds to the stored rows, so a minute is
 * queryable long before it closes. A partition whose previous delta is not committed
 * yet keeps folding instead (pacing, see read_committed).
 *
 * Exactly-once: each delta names the offset range [lo, hi) of its partition that it
 * covers, always whole log records. On start, each partition resumes at the offset
 * the storer has committed (read from LMDB), so a crash of any actor loses nothing
 * that is in the log and the storer's rule (apply only at the committed offset, skip
 * what is below it) counts nothing twice. If the storer stops advancing a partition
 * while deltas beyond its committed offset were sent (a delta lost with a restarted
 * storer, or refused), the partition rewinds to the committed offset and re-reads. */
#include "actor.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "plog.h"
#include "rollup.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define POLL_MS 10
#define READ_BUDGET 20000 /* records per poll, so flushes and signals stay timely */
#define FLUSH_ROWS 50000  /* flush early when a partition holds this many rows */
/* Memory (memory_mb.windower, see mem.h). The open windows of all owned partitions
 * (estimated by sl_rollup_mem_bytes: slots, strings, sketches) are sent early when they
 * reach OPEN_SHARE of the bound. The rest is for what a flush makes: each partition's
 * delta is encoded, kept until sent, and NNG copies it into its send queue; measured
 * with the benchmark's week-spread load, sending 100 MiB of open windows took the
 * process about 80 MiB above what it held before. At FLUSH_ALL_SHARE of the measured memory
 * it sends everything it holds at once (check_memory). Above TRIM_SHARE, freed memory is
 * given back once per TRIM_EVERY_MS. */
#define OPEN_SHARE 0.3
#define FLUSH_ALL_SHARE 0.9
#define TRIM_SHARE 0.5
#define TRIM_EVERY_MS 2000
#define KEEP_BUF_BYTES (4 << 20) /* scratch and delta buffers larger than this are freed */
#define REWIND_AFTER_MS 10000

typedef struct part_state {
    const sl_spec *spec;
    int partition;
    bool owned;
    sl_rollup *rollup;
    int64_t next;      /* next offset to fold */
    int64_t lo;        /* start of what is folded but not yet sent */
    int64_t sent;      /* end of what was sent */
    int64_t committed; /* last committed offset seen in the store */
    int64_t stalled_since_ms;
    int64_t oldest_ms; /* appended_ms of the oldest record folded since the last flush */
} part_state;

typedef struct windower {
    sl_actor *a;
    const sl_config *cfg;
    sl_sock *out;
    sl_store *store;
    sl_plog_reader *reader;
    bool started; /* positions loaded from the store */
    int *base;
    int nslots;
    part_state *parts;
    sl_buf payload, rows, msg;
    sl_buf *unsent; /* encoded deltas the storer has not taken yet, in order */
    int nunsent, capunsent;
    int64_t last_check_ms;
    size_t open_bytes;   /* sum of sl_rollup_mem_bytes over the owned partitions */
    int64_t open_budget; /* OPEN_SHARE of the memory bound */
    int64_t trimmed_ms;  /* last release_buffers */
    uint64_t events_in, deltas_out, rewinds;
} windower;

static int start(windower *w);
static void read_log(windower *w);
static void fold_record(windower *w, const sl_log_record *r);
static void flush_part(windower *w, part_state *p);
static void flush_all(windower *w, bool paced);
static bool send_unsent(windower *w);
static bool read_committed(windower *w);
static void check_committed(windower *w);
static void check_memory(windower *w);
static void release_buffers(windower *w);

/* ---- run ---------------------------------------------------------------------------- */

static void on_poll(void *state);
static void on_flush(void *state);

int sl_windower_run(sl_actor *a, sl_err *err)
{
    windower w = {.a = a, .cfg = a->cfg};
    char addr[512], dir[4096];
    int rc;
    sl_buf_init(&w.payload);
    sl_buf_init(&w.rows);
    sl_buf_init(&w.msg);
    w.base = sl_calloc((size_t)a->cfg->ndatasources, sizeof(int));
    for (int i = 0; i < a->cfg->ndatasources; i++) {
        w.base[i] = w.nslots;
        w.nslots += a->cfg->datasources[i]->partitions;
    }
    w.parts = sl_calloc((size_t)w.nslots, sizeof(part_state));
    w.open_budget = sl_mem_budget(OPEN_SHARE);
    int nw = a->cfg->processes[SL_ACTOR_WINDOWER];
    for (int d = 0; d < a->cfg->ndatasources; d++) {
        const sl_spec *spec = a->cfg->datasources[d];
        for (int i = 0; i < spec->partitions; i++) {
            part_state *p = &w.parts[w.base[d] + i];
            p->spec = spec;
            p->partition = i;
            p->owned = i % nw == a->instance;
            if (p->owned) {
                p->rollup = sl_rollup_new(spec);
                w.open_bytes += sl_rollup_mem_bytes(p->rollup);
            }
        }
    }
    snprintf(dir, sizeof(dir), "%s/wal", a->cfg->data_dir);
    if ((rc = sl_plog_reader_open(&w.reader, dir, err)) != 0 ||
        (rc = sl_sock_open(&w.out, SL_SOCK_PUSH, err)) != 0 ||
        (rc = sl_sock_dial(w.out, sl_actor_addr(a, SL_ADDR_STORER, 0, addr, sizeof(addr)), err)) !=
            0 ||
        (rc = sl_loop_add_timer(a->loop, POLL_MS, on_poll, &w, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, a->cfg->flush_ms, on_flush, &w, err)) != 0) {
        goto out;
    }
    /* A storer that does not take deltas stops the windower from reading the log:
     * backpressure, with the backlog on disk in the log rather than in memory. Sends
     * time out so the loop keeps answering pings and signals meanwhile; the delta is
     * kept and sent again. */
    sl_sock_set_timeouts(w.out, 500, -1);
    sl_sock_set_sendbuf(w.out, 16);
    sl_loop_run(a->loop);
    if (w.started) {
        if (w.nunsent == 0) {
            read_log(&w);
        }
        flush_all(&w, false);
    }
    SL_LOG(INFO, "windower_stopped", "events=%llu deltas=%llu rewinds=%llu",
           (unsigned long long)w.events_in, (unsigned long long)w.deltas_out,
           (unsigned long long)w.rewinds);
out:
    sl_sock_close(w.out);
    sl_plog_reader_close(w.reader);
    sl_store_close(w.store);
    for (int i = 0; i < w.nslots; i++) {
        sl_rollup_free(w.parts[i].rollup);
    }
    free(w.parts);
    free(w.base);
    for (int i = 0; i < w.capunsent; i++) {
        sl_buf_fini(&w.unsent[i]);
    }
    free(w.unsent);
    sl_buf_fini(&w.payload);
    sl_buf_fini(&w.rows);
    sl_buf_fini(&w.msg);
    return rc;
}

/* ---- timers -------------------------------------------------------------------------- */

static void on_poll(void *state)
{
    windower *w = state;
    if (!w->started && start(w) != 0) {
        return;
    }
    if (w->nunsent > 0) {
        return; /* the storer is not taking deltas: do not read further */
    }
    read_log(w);
}

static void on_flush(void *state)
{
    windower *w = state;
    if (!w->started) {
        return;
    }
    bool fresh = read_committed(w);
    flush_all(w, true);
    check_memory(w);
    if (fresh && sl_now_ms() - w->last_check_ms >= 1000) {
        check_committed(w);
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

/* Loads each owned partition's committed offset: where folding resumes. Returns
 * non-zero while the storer has not created the store yet. */
static int start(windower *w)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/segments/data.mdb", w->cfg->data_dir);
    struct stat st;
    if (stat(dir, &st) != 0) {
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/segments", w->cfg->data_dir);
    if (w->store == NULL && sl_store_open(&w->store, dir, true, 1, 1, NULL) != 0) {
        return -1;
    }
    sl_store_reader *r;
    if (sl_store_read_begin(w->store, &r, NULL) != 0) {
        return -1;
    }
    for (int i = 0; i < w->nslots; i++) {
        part_state *p = &w->parts[i];
        int64_t c = 0;
        if (p->owned && sl_store_read_offset(r, p->spec->name, p->partition, &c, NULL) == 0) {
            p->next = p->lo = p->sent = p->committed = c;
            p->stalled_since_ms = sl_now_ms();
        }
    }
    sl_store_read_end(r);
    w->started = true;
    w->last_check_ms = sl_now_ms();
    SL_LOG(INFO, "windower_started", "partitions_owned=%d",
           w->nslots / w->cfg->processes[SL_ACTOR_WINDOWER]);
    return 0;
}

static void read_log(windower *w)
{
    sl_err err = {0};
    uint64_t seg;
    /* an early flush whose delta the storer did not take stops the reading too, so
     * memory stays bounded while the storer lags */
    for (int n = 0; n < READ_BUDGET && w->nunsent == 0; n++) {
        int rc = sl_plog_reader_next(w->reader, &w->payload, &seg, &err);
        if (rc < 0) {
            SL_LOG_RATE(ERROR, 1000, "log_read_failed", "error=\"%s\"", err.msg);
            return;
        }
        if (rc == 0) {
            return;
        }
        sl_log_record r;
        if (sl_log_record_decode(w->payload.data, w->payload.len, SL_MSG_LOG_RECORD, &r, &err) !=
            0) {
            SL_LOG_RATE(ERROR, 1000, "bad_log_record", "error=\"%s\"", err.msg);
            continue;
        }
        fold_record(w, &r);
        sl_log_record_fini(&r);
    }
}

static void fold_record(windower *w, const sl_log_record *r)
{
    int dsi = -1;
    for (int i = 0; i < w->cfg->ndatasources; i++) {
        if (sl_str_eq(r->ds, w->cfg->datasources[i]->name)) {
            dsi = i;
        }
    }
    if (dsi < 0) {
        return;
    }
    const sl_spec *spec = w->cfg->datasources[dsi];
    sl_err err = {0};
    for (int i = 0; i < r->nparts; i++) {
        const sl_log_part *lp = &r->parts[i];
        if (lp->partition >= spec->partitions) {
            continue;
        }
        part_state *p = &w->parts[w->base[dsi] + lp->partition];
        int64_t end = lp->first_offset + lp->count;
        if (!p->owned || end <= p->next) {
            continue; /* not ours, or folded (and maybe committed) already */
        }
        if (lp->first_offset != p->next) {
            /* Records of a partition are contiguous in the log; a mismatch means
             * the log and the store disagree. Refuse to guess: this is logged, and
             * the rewind check recovers from the committed offset. */
            SL_LOG_RATE(ERROR, 1000, "offset_mismatch", "ds=%s partition=%d expected=%lld got=%lld",
                        spec->name, lp->partition, (long long)p->next, (long long)lp->first_offset);
            continue;
        }
        sl_events_iter it;
        sl_event ev;
        sl_events_iter_init(&it, lp->events.p, lp->events.len);
        int rc;
        int64_t folded = 0;
        size_t mem_before = sl_rollup_mem_bytes(p->rollup);
        while ((rc = sl_events_next(&it, &ev, &err)) == 1) {
            if (ev.ndims == spec->ndims) {
                sl_rollup_add(p->rollup, &ev);
                folded++;
            }
        }
        w->events_in += (uint64_t)folded;
        SL_METRIC_ADD(SL_M_WINDOWER_EVENTS, (double)folded, spec->name);
        if (rc < 0) {
            SL_LOG_RATE(ERROR, 1000, "bad_events", "ds=%s partition=%d error=\"%s\"", spec->name,
                        lp->partition, err.msg);
        }
        p->next = end;
        if (p->oldest_ms == 0 || r->appended_ms < p->oldest_ms) {
            p->oldest_ms = r->appended_ms;
        }
        w->open_bytes += sl_rollup_mem_bytes(p->rollup) - mem_before;
        if (sl_rollup_rows(p->rollup) >= FLUSH_ROWS) {
            flush_part(w, p);
        } else if ((int64_t)w->open_bytes >= w->open_budget) {
            SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "flush");
            SL_LOG_RATE(INFO, 10000, "memory_flush", "open_mb=%zu used_mb=%lld bound_mb=%lld",
                        w->open_bytes >> 20, (long long)(sl_mem_used() >> 20),
                        (long long)(sl_mem_bound() >> 20));
            flush_all(w, false);
            release_buffers(w);
        }
    }
}

/* Drains p's table into w->rows (appended), keeping open_bytes in step. */
static void drain(windower *w, part_state *p, int64_t *minb, int64_t *maxb)
{
    w->open_bytes -= sl_rollup_mem_bytes(p->rollup);
    sl_rollup_drain(p->rollup, &w->rows, minb, maxb);
    w->open_bytes += sl_rollup_mem_bytes(p->rollup);
}

static void flush_part(windower *w, part_state *p)
{
    if (!p->owned || p->next == p->lo) {
        return;
    }
    int64_t minb, maxb;
    sl_buf_reset(&w->rows);
    drain(w, p, &minb, &maxb);
    sl_delta d = {
        .ds = {p->spec->name, strlen(p->spec->name)},
        .partition = p->partition,
        .offset_lo = p->lo,
        .offset_hi = p->next,
        .rows = {w->rows.data != NULL ? w->rows.data : "", w->rows.len},
        .oldest_appended_ms = p->oldest_ms,
    };
    p->oldest_ms = 0;
    if (w->nunsent == w->capunsent) {
        int cap = w->capunsent == 0 ? 16 : w->capunsent * 2;
        w->unsent = sl_realloc(w->unsent, (size_t)cap * sizeof(sl_buf));
        for (int i = w->capunsent; i < cap; i++) {
            sl_buf_init(&w->unsent[i]);
        }
        w->capunsent = cap;
    }
    sl_buf *b = &w->unsent[w->nunsent++];
    sl_buf_reset(b);
    sl_delta_encode(b, &d);
    w->deltas_out++;
    SL_METRIC_ADD(SL_M_WINDOWER_DELTAS, 1);
    p->lo = p->sent = p->next;
    send_unsent(w);
}

/* Sends the kept deltas in order; false when the storer did not take one in time
 * (it stays first in line). */
static bool send_unsent(windower *w)
{
    int sent = 0;
    sl_err err = {0};
    while (sent < w->nunsent) {
        sl_buf *b = &w->unsent[sent];
        if (sl_sock_send(w->out, b->data, b->len, false, &err) != 0) {
            SL_LOG_RATE(WARN, 5000, "storer_not_taking", "unsent=%d peers=%d error=\"%s\"",
                        w->nunsent - sent, sl_sock_peers(w->out), err.msg);
            break;
        }
        sent++;
    }
    if (sent > 0) {
        /* Drop the sent ones from the front, keeping their buffers for reuse. */
        sl_buf done[16];
        for (int i = 0; i < sent; i += 16) {
            int k = sent - i < 16 ? sent - i : 16;
            memcpy(done, w->unsent, (size_t)k * sizeof(sl_buf));
            memmove(w->unsent, w->unsent + k, (size_t)(w->capunsent - k) * sizeof(sl_buf));
            memcpy(w->unsent + w->capunsent - k, done, (size_t)k * sizeof(sl_buf));
        }
        w->nunsent -= sent;
    }
    return w->nunsent == 0;
}

/* Reads each owned partition's committed offset from the store (once per flush tick,
 * for the pacing below and check_committed); a change, or having caught up with what
 * was sent, restarts the partition's stall clock. False when the store could not be
 * read (nothing is updated, and check_committed waits for a fresh read).
 *
 * Pacing: a partition whose last delta the storer has not committed yet keeps folding
 * instead of sending another. So at most one delta per partition waits at the storer,
 * and while the storer is slow (a commit that rewrites large sketches takes longer)
 * each delta carries more flushes' worth of events for the same rows: the flush interval
 * stretches to the storer's pace instead of a queue of deltas building up in front of
 * it. An idle storer commits within milliseconds, so then every flush goes out. */
static bool read_committed(windower *w)
{
    sl_store_reader *r;
    if (sl_store_read_begin(w->store, &r, NULL) != 0) {
        return false;
    }
    int64_t now = sl_now_ms();
    for (int i = 0; i < w->nslots; i++) {
        part_state *p = &w->parts[i];
        int64_t c;
        if (p->owned && sl_store_read_offset(r, p->spec->name, p->partition, &c, NULL) == 0 &&
            (c >= p->sent || c != p->committed)) {
            p->committed = c;
            p->stalled_since_ms = now;
        }
    }
    sl_store_read_end(r);
    return true;
}

/* Sends every owned partition's delta; paced (the timer's flushes): only those whose
 * previous delta is committed as of the last read_committed. */
static void flush_all(windower *w, bool paced)
{
    int64_t t0 = sl_mono_ns();
    if (w->nunsent > 0 && !send_unsent(w)) {
        SL_METRIC_SET(SL_M_WINDOWER_UNSENT, w->nunsent);
        return;
    }
    /* Rows held per datasource, measured before they go out. */
    for (int d = 0; d < w->cfg->ndatasources; d++) {
        size_t rows = 0;
        for (int i = w->base[d]; i < w->base[d] + w->cfg->datasources[d]->partitions; i++) {
            rows += w->parts[i].owned ? sl_rollup_rows(w->parts[i].rollup) : 0;
        }
        SL_METRIC_SET(SL_M_WINDOWER_OPEN_ROWS, (double)rows, w->cfg->datasources[d]->name);
    }
    for (int i = 0; i < w->nslots; i++) {
        part_state *p = &w->parts[i];
        if (!paced || p->committed >= p->sent) {
            flush_part(w, p);
        }
    }
    SL_METRIC_SET(SL_M_WINDOWER_UNSENT, w->nunsent);
    SL_METRIC_OBSERVE(SL_M_WINDOWER_FLUSH_SECONDS, (double)(sl_mono_ns() - t0) / 1e9);
}

/* Compares what was sent with what the storer committed (as of the last
 * read_committed); a partition that stays behind what was sent rewinds to its
 * committed offset. */
static void check_committed(windower *w)
{
    int64_t now = sl_now_ms();
    w->last_check_ms = now;
    bool rewind = false;
    for (int i = 0; i < w->nslots; i++) {
        part_state *p = &w->parts[i];
        int64_t c = p->committed;
        if (!p->owned || c >= p->sent || now - p->stalled_since_ms < REWIND_AFTER_MS) {
            continue;
        }
        SL_LOG(WARN, "partition_rewind", "ds=%s partition=%d committed=%lld sent=%lld",
               p->spec->name, p->partition, (long long)c, (long long)p->sent);
        drain(w, p, &(int64_t){0}, &(int64_t){0});
        sl_buf_reset(&w->rows);
        p->next = p->lo = p->sent = c;
        p->stalled_since_ms = now;
        rewind = true;
        w->rewinds++;
        p->oldest_ms = 0;
        SL_METRIC_ADD(SL_M_WINDOWER_REWINDS, 1);
    }
    if (rewind) {
        /* Re-read from the oldest retained segment; other partitions skip what they
         * have folded already. */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/wal", w->cfg->data_dir);
        sl_plog_reader_close(w->reader);
        sl_plog_reader_open(&w->reader, dir, NULL);
    }
}

/* Once per flush tick: above FLUSH_ALL_SHARE of the bound, send every open window now
 * (unpaced) and free large buffers; above TRIM_SHARE, give freed memory back now and
 * then. Reading the log does not pause for memory: while deltas wait to be sent it
 * stops anyway (read_log), and with nothing held a pause could only wait forever (a
 * bound below what the process needs to run at all is logged instead). */
static void check_memory(windower *w)
{
    int64_t used = sl_mem_used();
    if (used >= sl_mem_budget(TRIM_SHARE) && sl_now_ms() - w->trimmed_ms >= TRIM_EVERY_MS) {
        release_buffers(w);
        used = sl_mem_used();
    }
    if (used < sl_mem_budget(FLUSH_ALL_SHARE)) {
        return;
    }
    SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "flush");
    flush_all(w, false);
    release_buffers(w);
    if (w->nunsent == 0 && sl_mem_above(FLUSH_ALL_SHARE)) {
        SL_LOG_RATE(ERROR, 60000, "memory_bound_too_small",
                    "used_mb=%lld bound_mb=%lld with no open window left: raise "
                    "memory_mb.windower",
                    (long long)(sl_mem_used() >> 20), (long long)(sl_mem_bound() >> 20));
    }
}

/* Frees scratch and sent-delta buffers that a large flush left large, and gives the
 * freed memory back to the system. */
static void release_buffers(windower *w)
{
    sl_buf_shrink(&w->rows, KEEP_BUF_BYTES);
    for (int i = w->nunsent; i < w->capunsent; i++) {
        sl_buf_shrink(&w->unsent[i], KEEP_BUF_BYTES);
    }
    sl_mem_release();
    w->trimmed_ms = sl_now_ms();
}
