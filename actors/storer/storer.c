/* The storer: LMDB's single writer. Deltas from every windower arrive on one pull
 * socket; each burst of them is applied in one transaction (group commit: one
 * fsync for many deltas), together with each partition's committed offset.
 *
 * Exactly-once rule: a delta covering [lo, hi) of a partition whose committed
 * offset is c is applied only when lo == c, and then c becomes hi, in the same
 * transaction as the rows. A delta with hi <= c was applied before and is skipped;
 * any other is refused (the windower rewinds to c and re-reads the log).
 * After each commit a NOTIFY goes out on the pub socket ("data changed" hint).
 *
 * A delta whose rows do not decode or that the store refuses (a row of the wrong shape,
 * a sketch that is not a valid sketch of its metric's type) aborts the transaction; it is
 * then marked bad and the transaction is redone without its rows (its offsets are still
 * consumed: the windower would send the same bytes again). So a bad delta is never half
 * applied and never blocks the deltas sharing its transaction, and good deltas pay for
 * no separate validation pass: the store decodes each sketch once, as it merges it.
 *
 * Within a transaction the rows of all its deltas are first merged in memory by key
 * (coalesce.h), at most COALESCE_MAX_ROWS at a time, so a row that several deltas touch
 * (the busy rows of the current minute, one delta per flush) is read, merged and written
 * once per transaction: with sketch metrics, decoding and encoding the stored sketch is
 * what a merge costs most. */
#include "actor.h"
#include "coalesce.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* While commits fail, at most this many deltas wait in memory; then the pull socket
 * is paused and the windowers block (the data stays in the partition log). */
#define MAX_PENDING_FAILING 1024
/* The coalescing table is applied to the transaction and emptied when it holds this
 * many rows (about 40 MiB with the default spec), bounding the storer's memory. */
#define COALESCE_MAX_ROWS 131072
/* Memory (memory_mb.storer, see mem.h). What grows with a transaction is the copies of
 * its deltas, the coalescing table and LMDB's dirty pages: LMDB copies every page a
 * transaction changes into malloc'd memory (4 KiB each; a row with a random key dirties
 * a leaf of its own) and keeps those pages for reuse after the commit, so the largest
 * transaction sets the storer's memory for good. So:
 * - the deltas received since the last commit are committed at once when their copies
 *   reach PENDING_SHARE of the bound;
 * - the coalescing table is applied every COMMIT_SHARE of the bound / 4 KiB rows at most
 *   (the worst case of one dirty page per row), and after that the transaction commits
 *   with the deltas so far when the measured memory is above COMMIT_SHARE; the rest go
 *   into the next one;
 * - after commits above COMMIT_SHARE, large buffers are freed and freed memory given
 *   back (check_memory); above TOO_SMALL_SHARE with nothing pending, the bound is too small
 *   for the process itself and that is logged. */
#define PENDING_SHARE 0.25
#define COMMIT_SHARE 0.5
#define TOO_SMALL_SHARE 0.9
#define KEEP_BUF_BYTES (4 << 20) /* delta copies larger than this are freed after commit */

typedef struct storer {
    sl_actor *a;
    sl_store *store;
    sl_sock *in;
    sl_sock *notify;
    sl_buf *pending; /* copies of deltas received since the last commit */
    bool *bad;       /* per pending delta: its rows were refused (see above) */
    sl_coalesce *co; /* the transaction's rows, merged by key (see above) */
    int npending, cappending;
    size_t pending_bytes; /* sum of the pending copies' lengths */
    size_t co_max_rows;   /* see COMMIT_SHARE */
    sl_buf msg;
    int64_t retry_at_ms;  /* after a failed commit, not before this */
    bool failing;         /* the last commit failed */
    char full_path[4096]; /* exists (with the reason) while the store is full */
    uint64_t applied, skipped, refused, rows, commits;
} storer;

/* apply_delta's answer for a delta just marked bad: the transaction is gone, redo it. */
#define REDO 2

static int commit_pending(storer *s, sl_err *err);
static void check_memory(storer *s);
static void drop_pending(storer *s, int n);
static void set_full(storer *s, const char *why);
/* What applying one delta did; counted in the metrics once its transaction commits. */
typedef struct delta_done {
    const sl_spec *spec;
    int64_t oldest_ms; /* the delta's oldest_appended_ms (0: not sent) */
    uint64_t rows;
    const char *result; /* applied, skipped, refused, malformed */
} delta_done;

static int apply_delta(storer *s, sl_store_txn *t, int i, int64_t *minb, int64_t *maxb,
                       const sl_spec **spec_out, delta_done *done, sl_err *err);
static void count_commit(storer *s, const delta_done *done, int n, int64_t t0_ns);

/* ---- run ---------------------------------------------------------------------------- */

static void on_delta(void *state, sl_sock *from, const void *data, size_t len);
static void on_idle(void *state);

static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_DELTA] = on_delta,
};

int sl_storer_run(sl_actor *a, sl_err *err)
{
    storer s = {.a = a, .co = sl_coalesce_new()};
    int64_t rows_budget = sl_mem_budget(COMMIT_SHARE) / 4096;
    s.co_max_rows = rows_budget < COALESCE_MAX_ROWS ? (size_t)(rows_budget > 0 ? rows_budget : 1)
                                                    : COALESCE_MAX_ROWS;
    char path[4096], addr[512];
    int rc;
    sl_buf_init(&s.msg);
    snprintf(path, sizeof(path), "%s/state", a->cfg->data_dir);
    mkdir(path, 0755);
    snprintf(s.full_path, sizeof(s.full_path), "%s/state/store_full", a->cfg->data_dir);
    set_full(&s, NULL);
    snprintf(path, sizeof(path), "%s/segments", a->cfg->data_dir);
    if ((rc = sl_store_open(&s.store, path, false, a->cfg->map_size_mb, a->cfg->max_map_size_mb,
                            err)) != 0) {
        goto out;
    }
    if ((rc = sl_sock_open(&s.in, SL_SOCK_PULL, err)) != 0 ||
        (rc = sl_sock_listen(s.in, sl_actor_addr(a, SL_ADDR_STORER, 0, addr, sizeof(addr)), err)) !=
            0 ||
        (rc = sl_sock_open(&s.notify, SL_SOCK_PUB, err)) != 0 ||
        (rc = sl_sock_listen(s.notify, sl_actor_addr(a, SL_ADDR_NOTIFY, 0, addr, sizeof(addr)),
                             err)) != 0 ||
        (rc = sl_loop_add_sock(a->loop, s.in, handlers, &s, err)) != 0 ||
        (rc = sl_loop_add_timer(a->loop, 100, on_idle, &s, err)) != 0) {
        goto out;
    }
    sl_loop_set_idle(a->loop, on_idle, &s);
    sl_loop_run(a->loop);
    /* Shutdown: windowers stopped first and flushed; take the rest and commit it. */
    sl_loop_drain(a->loop, s.in);
    sl_err cerr = {0};
    while (s.npending > 0 && commit_pending(&s, &cerr) == 0) {
    }
    if (s.npending > 0) {
        SL_LOG(ERROR, "final_commit_failed", "deltas=%d error=\"%s\"", s.npending, cerr.msg);
    }
    SL_LOG(INFO, "storer_stopped", "applied=%llu skipped=%llu rows=%llu commits=%llu",
           (unsigned long long)s.applied, (unsigned long long)s.skipped, (unsigned long long)s.rows,
           (unsigned long long)s.commits);
out:
    sl_sock_close(s.in);
    sl_sock_close(s.notify);
    for (int i = 0; i < s.cappending; i++) {
        sl_buf_fini(&s.pending[i]);
    }
    free(s.pending);
    free(s.bad);
    sl_coalesce_free(s.co);
    sl_buf_fini(&s.msg);
    sl_store_close(s.store);
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void on_delta(void *state, sl_sock *from, const void *data, size_t len)
{
    storer *s = state;
    if (s->npending == s->cappending) {
        int cap = s->cappending == 0 ? 64 : s->cappending * 2;
        s->pending = sl_realloc(s->pending, (size_t)cap * sizeof(sl_buf));
        s->bad = sl_realloc(s->bad, (size_t)cap * sizeof(bool));
        for (int i = s->cappending; i < cap; i++) {
            sl_buf_init(&s->pending[i]);
        }
        s->cappending = cap;
    }
    s->bad[s->npending] = false;
    sl_buf *b = &s->pending[s->npending++];
    sl_buf_reset(b);
    sl_buf_append(b, data, len);
    s->pending_bytes += len;
    if (!s->failing && (s->npending >= s->a->cfg->commit_max_msgs ||
                        (int64_t)s->pending_bytes >= sl_mem_budget(PENDING_SHARE))) {
        on_idle(s);
    }
}

static void on_idle(void *state)
{
    storer *s = state;
    if (s->npending == 0 || sl_now_ms() < s->retry_at_ms) {
        return;
    }
    sl_err err = {0};
    int rc = 0;
    while (s->npending > 0 && (rc = commit_pending(s, &err)) == 0) {
    }
    check_memory(s);
    if (rc != 0) {
        SL_METRIC_ADD(SL_M_STORER_COMMIT_FAILURES, 1);
        SL_LOG_RATE(ERROR, 5000, "commit_failed", "deltas=%d code=%s error=\"%s\"", s->npending,
                    sl_err_name(err.code), err.msg);
        s->retry_at_ms = sl_now_ms() + 1000;
        s->failing = true;
        if (err.code == SL_ENOSPC) {
            set_full(s, err.msg);
        }
        if (s->npending >= MAX_PENDING_FAILING ||
            (int64_t)s->pending_bytes >= sl_mem_budget(PENDING_SHARE)) {
            sl_loop_pause(s->a->loop, s->in, true);
        }
        return;
    }
    if (s->failing) {
        SL_LOG(INFO, "commit_recovered", "%s", "");
        s->failing = false;
        set_full(s, NULL);
        sl_loop_pause(s->a->loop, s->in, false);
    }
}

/* After commits: above COMMIT_SHARE, frees large delta copies and returns freed memory
 * to the system. The pull socket is not paused for memory: with nothing pending, a
 * pause could only wait forever (a bound below what the process needs is logged). */
static void check_memory(storer *s)
{
    if (!sl_mem_above(COMMIT_SHARE)) {
        return;
    }
    for (int i = s->npending; i < s->cappending; i++) {
        sl_buf_shrink(&s->pending[i], KEEP_BUF_BYTES);
    }
    sl_mem_release();
    if (s->npending == 0 && sl_mem_above(TOO_SMALL_SHARE)) {
        SL_LOG_RATE(ERROR, 60000, "memory_bound_too_small",
                    "used_mb=%lld bound_mb=%lld with nothing pending: raise memory_mb.storer",
                    (long long)(sl_mem_used() >> 20), (long long)(sl_mem_bound() >> 20));
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

/* Publishes the store-full state for the partitioner (which then refuses appends
 * with 507): a file holding the reason, removed once commits succeed again. */
static void set_full(storer *s, const char *why)
{
    if (why == NULL) {
        unlink(s->full_path);
        return;
    }
    int fd = open(s->full_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, why, strlen(why));
        close(fd);
    }
}

typedef struct apply_ctx {
    sl_store_txn *t;
    sl_err *err;
    sl_err rerr; /* why the store refused a row */
    int bad_src; /* the delta that row first came from, or -1 */
} apply_ctx;

static int apply_row(void *arg, const sl_spec *spec, const sl_row *row, int src)
{
    apply_ctx *c = arg;
    int rc = sl_store_merge_row(c->t, spec, row, &c->rerr);
    if (rc == SL_ECODEC || rc == SL_EINVAL) {
        c->bad_src = src;
    } else if (rc != 0) {
        *c->err = c->rerr;
    }
    return rc;
}

/* Applies the coalesced rows to t and empties the table. A row the store refuses
 * marks the delta it first came from bad (the store has aborted t): REDO. */
static int apply_coalesced(storer *s, sl_store_txn *t, sl_err *err)
{
    apply_ctx c = {.t = t, .err = err, .bad_src = -1};
    int rc = sl_coalesce_each(s->co, apply_row, &c);
    sl_coalesce_reset(s->co);
    if (rc != 0 && c.bad_src >= 0) {
        SL_LOG_RATE(ERROR, 1000, "bad_rows", "delta=%d error=\"%s\"", c.bad_src, c.rerr.msg);
        s->bad[c.bad_src] = true;
        return REDO;
    }
    return rc;
}

/* Applies the pending deltas in one transaction: all of them, or the first ones when
 * the memory bound says to commit early (see COMMIT_SHARE), and drops those from
 * pending. On a full map, grows it and redoes the transaction from the start (the
 * pending copies make that possible). */
static int commit_pending(storer *s, sl_err *err)
{
    delta_done *done = sl_calloc((size_t)s->npending + 1, sizeof(delta_done));
    for (;;) {
        int n = s->npending; /* deltas in this transaction */
        int64_t t0 = sl_mono_ns();
        sl_store_txn *t;
        int rc = sl_store_begin(s->store, &t, err);
        if (rc != 0) {
            free(done);
            return rc;
        }
        int64_t minb = INT64_MAX, maxb = INT64_MIN;
        const sl_spec *spec = NULL;
        uint64_t applied = 0, skipped = 0;
        sl_coalesce_reset(s->co);
        for (int i = 0; i < n && rc == 0; i++) {
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            rc = apply_delta(s, t, i, &lo, &hi, &spec, &done[i], err);
            if (rc == REDO) {
                break;
            }
            if (rc == 1) {
                skipped++;
                rc = 0;
            } else if (rc == 0) {
                applied++;
                minb = lo < minb ? lo : minb;
                maxb = hi > maxb ? hi : maxb;
                if (sl_coalesce_rows(s->co) >= s->co_max_rows) {
                    rc = apply_coalesced(s, t, err);
                }
            }
            if (rc == 0 && i + 1 < n && sl_coalesce_rows(s->co) == 0 &&
                sl_mem_above(COMMIT_SHARE)) {
                n = i + 1; /* commit these; the rest go into the next transaction */
                SL_METRIC_ADD(SL_M_MEMORY_ACTIONS, 1, "commit");
            }
        }
        if (rc == 0) {
            rc = apply_coalesced(s, t, err);
        }
        if (rc == REDO) {
            sl_coalesce_reset(s->co);
            continue; /* without the delta just marked bad */
        }
        if (rc == 0) {
            rc = sl_store_commit(t, err);
        }
        /* On error the transaction has been aborted and freed by the store. */
        if (rc == SL_ENOSPC) {
            if ((rc = sl_store_grow(s->store, err)) != 0) {
                free(done);
                return rc;
            }
            continue;
        }
        if (rc != 0) {
            free(done);
            return rc;
        }
        count_commit(s, done, n, t0);
        free(done);
        s->applied += applied;
        s->skipped += skipped;
        s->commits++;
        drop_pending(s, n);
        if (spec != NULL && applied > 0) {
            sl_notify note = {
                .ds = {spec->name, strlen(spec->name)}, .min_ms = minb, .max_ms = maxb};
            sl_buf_reset(&s->msg);
            sl_notify_encode(&s->msg, &note);
            sl_sock_send(s->notify, s->msg.data, s->msg.len, true, NULL);
        }
        return 0;
    }
}

/* Metrics of a committed burst: commit time, deltas by result, rows, the LMDB map, and
 * per delta the freshness (its oldest event's append to the log -> this commit). */
static void count_commit(storer *s, const delta_done *done, int n, int64_t t0_ns)
{
    int64_t now = sl_now_ms();
    SL_METRIC_OBSERVE(SL_M_STORER_COMMIT_SECONDS, (double)(sl_mono_ns() - t0_ns) / 1e9);
    for (int i = 0; i < n; i++) {
        const delta_done *d = &done[i];
        SL_METRIC_ADD(SL_M_STORER_DELTAS, 1, d->result != NULL ? d->result : "malformed");
        if (d->spec == NULL) {
            continue;
        }
        SL_METRIC_ADD(SL_M_STORER_ROWS, (double)d->rows, d->spec->name);
        if (d->oldest_ms > 0) {
            double age = (double)(now - d->oldest_ms) / 1000;
            SL_METRIC_OBSERVE(SL_M_FRESHNESS, age > 0 ? age : 0, d->spec->name);
        }
    }
    int64_t map = 0, used = 0;
    if (sl_store_usage(s->store, &map, &used) == 0) {
        SL_METRIC_SET(SL_M_LMDB_MAP_BYTES, (double)map);
        SL_METRIC_SET(SL_M_LMDB_USED_BYTES, (double)used);
    }
}

/* Returns 0 when applied, 1 when skipped (already applied, refused or malformed), REDO
 * when its rows turned out bad (*bad is set, the transaction is gone), <0 on error (the
 * transaction is then gone). Malformed deltas are logged and skipped. done says which,
 * for the metrics. */
static int apply_delta(storer *s, sl_store_txn *t, int i, int64_t *minb, int64_t *maxb,
                       const sl_spec **spec_out, delta_done *done, sl_err *err)
{
    const sl_buf *b = &s->pending[i];
    bool *bad = &s->bad[i];
    sl_delta d;
    sl_err derr = {0};
    *done = (delta_done){.result = "malformed"};
    if (sl_delta_decode(b->data, b->len, &d, &derr) != 0) {
        SL_LOG_RATE(ERROR, 1000, "bad_delta", "error=\"%s\"", derr.msg);
        return 1;
    }
    char ds[128];
    snprintf(ds, sizeof(ds), "%.*s", (int)d.ds.len, d.ds.p);
    const sl_spec *spec = sl_config_find(s->a->cfg, ds);
    if (spec == NULL) {
        SL_LOG_RATE(ERROR, 1000, "bad_delta", "ds=%s error=\"unknown datasource\"", ds);
        return 1;
    }
    int64_t committed;
    int rc = sl_store_get_offset(t, ds, d.partition, &committed, err);
    if (rc != 0) {
        return rc;
    }
    if (d.offset_hi <= committed) {
        done->result = "skipped";
        return 1;
    }
    if (d.offset_lo != committed) {
        /* Overlapping (part of it applied: an aggregate cannot be split) or leaving a
         * gap (a delta before it was lost). Either way applying it would miscount;
         * the windower sees the committed offset stall and rewinds to it. */
        SL_LOG_RATE(WARN, 1000, "delta_refused",
                    "ds=%s partition=%d committed=%lld lo=%lld hi=%lld", ds, d.partition,
                    (long long)committed, (long long)d.offset_lo, (long long)d.offset_hi);
        s->refused++;
        done->result = "refused";
        return 1;
    }
    if (*bad) {
        /* its rows were refused in an earlier try of this transaction (logged then) */
        return sl_store_set_offset(t, ds, d.partition, d.offset_hi, err) != 0 ? err->code : 1;
    }
    sl_rows_iter it;
    sl_row row;
    sl_rows_iter_init(&it, d.rows.p, d.rows.len);
    while ((rc = sl_rows_next(&it, &row, &derr)) == 1) {
        if ((rc = sl_coalesce_add(s->co, spec, &row, i, &derr)) != 0) {
            break;
        }
        s->rows++;
        done->rows++;
        *minb = row.bucket_ms < *minb ? row.bucket_ms : *minb;
        *maxb = row.bucket_ms > *maxb ? row.bucket_ms : *maxb;
    }
    if (rc != 0) {
        /* None of it is applied and its offsets are consumed (when the transaction is
         * redone): these events are lost, loudly; the windower would only send the same
         * bytes again. */
        SL_LOG_RATE(ERROR, 1000, "bad_rows", "ds=%s partition=%d lo=%lld hi=%lld error=\"%s\"", ds,
                    d.partition, (long long)d.offset_lo, (long long)d.offset_hi, derr.msg);
        sl_store_abort(t);
        *bad = true;
        return REDO;
    }
    if ((rc = sl_store_set_offset(t, ds, d.partition, d.offset_hi, err)) != 0) {
        return rc;
    }
    *spec_out = spec;
    *done = (delta_done){
        .spec = spec, .oldest_ms = d.oldest_appended_ms, .rows = done->rows, .result = "applied"};
    return 0;
}

/* Drops the first n pending deltas (committed), keeping their buffers for reuse. */
static void drop_pending(storer *s, int n)
{
    for (int i = 0; i < n; i++) {
        s->pending_bytes -= s->pending[i].len;
    }
    for (int i = n; i < s->npending; i++) {
        sl_buf tmp = s->pending[i - n];
        s->pending[i - n] = s->pending[i];
        s->bad[i - n] = s->bad[i];
        s->pending[i] = tmp;
    }
    s->npending -= n;
}
