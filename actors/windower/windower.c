/* The windower: owns the partitions p with p % processes.windower == instance. It
 * folds each partition's event batches into tumbling windows of the datasource's
 * query granularity (minute), rolled up by the dimensions, and every flush_ms sends
 * what it has as a DELTA to the storer: partial aggregates that the storer adds to
 * the stored rows, so a minute is queryable long before it closes.
 *
 * Each delta names the half-open offset range [lo, hi) of its partition that it
 * covers; the storer applies a delta only if its range starts at or after the
 * partition's committed offset, so a re-sent delta is never counted twice. */
#include "actor.h"
#include "log.h"
#include "rollup.h"

#include <stdlib.h>
#include <string.h>

typedef struct part_state {
    const sl_spec *spec;
    int partition;
    sl_rollup *rollup;
    int64_t lo, hi; /* offsets folded since the last flush: [lo, hi); lo == hi: none */
    bool seen;      /* hi is meaningful */
} part_state;

typedef struct windower {
    sl_actor *a;
    sl_sock *in;
    sl_sock *out;
    part_state *parts; /* ndatasources * SL_MAX_PARTITIONS, allocated lazily */
    sl_buf rows;
    sl_buf msg;
    uint64_t events_in, deltas_out, batches_dup, batches_gap;
} windower;

static void flush_all(windower *w);
static void flush_part(windower *w, part_state *p);
static part_state *part_of(windower *w, const sl_spec *spec, int partition);

/* ---- run ---------------------------------------------------------------------------- */

static void on_batch(void *state, sl_sock *from, const void *data, size_t len);
static void on_flush_timer(void *state);

static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_PART_BATCH] = on_batch,
};

int sl_windower_run(sl_actor *a, sl_err *err)
{
    windower w = {.a = a};
    char addr[512];
    int rc;
    sl_buf_init(&w.rows);
    sl_buf_init(&w.msg);
    w.parts = sl_calloc((size_t)a->cfg->ndatasources * SL_MAX_PARTITIONS, sizeof(part_state));
    if ((rc = sl_sock_open(&w.in, SL_SOCK_PULL, err)) != 0 ||
        (rc = sl_sock_listen(w.in, sl_actor_addr(a, SL_ADDR_WINDOWER, a->instance, addr,
                                                 sizeof(addr)),
                             err)) != 0 ||
        (rc = sl_sock_open(&w.out, SL_SOCK_PUSH, err)) != 0 ||
        (rc = sl_sock_dial(w.out, sl_actor_addr(a, SL_ADDR_STORER, 0, addr, sizeof(addr)),
                           err)) != 0 ||
        (rc = sl_loop_add_sock(a->loop, w.in, handlers, &w, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, a->cfg->flush_ms, on_flush_timer, &w, err)) != 0) {
        goto out;
    }
    /* A blocked storer stops the flush, which stops reading batches: backpressure. */
    sl_sock_set_timeouts(w.out, -1, -1);
    sl_loop_run(a->loop);
    /* Shutdown: the partitioner stopped first; take what it left queued, then flush. */
    sl_loop_drain(a->loop, w.in);
    flush_all(&w);
    SL_LOG(INFO, "windower_stopped", "events=%llu deltas=%llu", (unsigned long long)w.events_in,
           (unsigned long long)w.deltas_out);
out:
    sl_sock_close(w.in);
    /* Closing a push socket drops what it still queues: give NNG a moment by lingering. */
    sl_sock_close(w.out);
    for (int i = 0; i < a->cfg->ndatasources * SL_MAX_PARTITIONS; i++) {
        sl_rollup_free(w.parts[i].rollup);
    }
    free(w.parts);
    sl_buf_fini(&w.rows);
    sl_buf_fini(&w.msg);
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void on_batch(void *state, sl_sock *from, const void *data, size_t len)
{
    windower *w = state;
    sl_part_batch b;
    sl_err err = {0};
    if (sl_part_batch_decode(data, len, &b, &err) != 0) {
        SL_LOG_RATE(ERROR, 1000, "bad_batch", "error=\"%s\"", err.msg);
        return;
    }
    char ds[128];
    snprintf(ds, sizeof(ds), "%.*s", (int)b.ds.len, b.ds.p);
    const sl_spec *spec = sl_config_find(w->a->cfg, ds);
    if (spec == NULL || b.partition >= spec->partitions) {
        SL_LOG_RATE(ERROR, 1000, "bad_batch", "ds=%s partition=%d error=\"unknown\"", ds,
                    b.partition);
        return;
    }
    part_state *p = part_of(w, spec, b.partition);
    int64_t end = b.first_offset + b.count;
    if (p->seen && end <= p->hi) {
        /* Already folded (a resend): skipping keeps counts exact. */
        w->batches_dup++;
        return;
    }
    if (p->seen && b.first_offset != p->hi) {
        /* Offsets must be contiguous within one delta: close the current range. */
        SL_LOG_RATE(WARN, 1000, "offset_gap", "ds=%s partition=%d expected=%lld got=%lld", ds,
                    b.partition, (long long)p->hi, (long long)b.first_offset);
        flush_part(w, p);
        w->batches_gap++;
    }
    if (!p->seen || p->lo == p->hi) {
        p->lo = b.first_offset;
    }
    sl_events_iter it;
    sl_event ev;
    sl_events_iter_init(&it, b.events.p, b.events.len);
    int64_t n = 0;
    int rc;
    while ((rc = sl_events_next(&it, &ev, &err)) == 1) {
        if (ev.ndims != spec->ndims) {
            rc = sl_err_set(&err, SL_ECODEC, "event has %d dims, spec %d", ev.ndims, spec->ndims);
            break;
        }
        sl_rollup_add(p->rollup, &ev);
        n++;
    }
    if (rc < 0) {
        /* Cannot happen with our ingest; the offsets are still consumed so the
         * partition does not stall, and the loss is logged loudly. */
        SL_LOG(ERROR, "bad_events", "ds=%s partition=%d error=\"%s\"", ds, b.partition, err.msg);
    }
    p->hi = end;
    p->seen = true;
    w->events_in += (uint64_t)n;
}

static void on_flush_timer(void *state)
{
    flush_all(state);
}

/* ---- helpers ------------------------------------------------------------------------- */

static part_state *part_of(windower *w, const sl_spec *spec, int partition)
{
    int ds = 0;
    while (w->a->cfg->datasources[ds] != spec) {
        ds++;
    }
    part_state *p = &w->parts[ds * SL_MAX_PARTITIONS + partition];
    if (p->rollup == NULL) {
        p->spec = spec;
        p->partition = partition;
        p->rollup = sl_rollup_new(spec);
    }
    return p;
}

static void flush_part(windower *w, part_state *p)
{
    if (p->rollup == NULL || p->lo == p->hi) {
        return;
    }
    int64_t minb, maxb;
    sl_buf_reset(&w->rows);
    sl_rollup_drain(p->rollup, &w->rows, &minb, &maxb);
    sl_delta d = {
        .ds = {p->spec->name, strlen(p->spec->name)},
        .partition = p->partition,
        .offset_lo = p->lo,
        .offset_hi = p->hi,
        .rows = {w->rows.data != NULL ? w->rows.data : "", w->rows.len},
    };
    sl_buf_reset(&w->msg);
    sl_delta_encode(&w->msg, &d);
    sl_err err = {0};
    int rc = sl_sock_send(w->out, w->msg.data, w->msg.len, false, &err);
    if (rc != 0) {
        SL_LOG(ERROR, "delta_send_failed", "ds=%s partition=%d error=\"%s\"", p->spec->name,
               p->partition, err.msg);
    }
    w->deltas_out++;
    p->lo = p->hi;
}

static void flush_all(windower *w)
{
    for (int i = 0; i < w->a->cfg->ndatasources * SL_MAX_PARTITIONS; i++) {
        flush_part(w, &w->parts[i]);
    }
}
