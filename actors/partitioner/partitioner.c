/* The partitioner: the single sequencer of per-partition offsets. Ingest processes
 * push EVENTS messages already split by partition (hash of the partition key); the
 * partitioner gives each partition's batch the next offsets of that partition and
 * pushes it to the windower that owns the partition (p % processes.windower).
 *
 * Offsets live in a memory-mapped file (<data>/partitioner/offsets), so they keep
 * increasing across restarts of this process: the storer's exactly-once check
 * (skip a delta whose offsets are already committed) depends on offsets never
 * being reused. The durable per-partition log of the durability issue replaces
 * this file and makes the batches themselves survive a crash. */
#include "actor.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFFSET_SLOTS 64

/* One datasource's next offsets; a slot is claimed by writing its name. */
typedef struct offset_slot {
    char name[128];
    int64_t next[SL_MAX_PARTITIONS];
} offset_slot;

typedef struct partitioner {
    sl_actor *a;
    sl_sock *in;
    sl_sock **out; /* one push socket per windower instance */
    int nout;
    offset_slot *slots; /* mmap'd file of OFFSET_SLOTS slots, found by datasource name */
    size_t slots_bytes;
    sl_buf msg;
    uint64_t batches, events;
} partitioner;

static int map_offsets(partitioner *p, sl_err *err);
static int64_t *offsets_of(partitioner *p, const char *ds);

/* ---- run ---------------------------------------------------------------------------- */

static void on_events(void *state, sl_sock *from, const void *data, size_t len);

static const sl_handler handlers[SL_MSG_TYPE_COUNT] = {
    [SL_MSG_EVENTS] = on_events,
};

int sl_partitioner_run(sl_actor *a, sl_err *err)
{
    partitioner p = {.a = a};
    char addr[512];
    int rc;
    sl_buf_init(&p.msg);
    p.nout = a->cfg->processes[SL_ACTOR_WINDOWER];
    p.out = sl_calloc((size_t)p.nout, sizeof(*p.out));
    if ((rc = map_offsets(&p, err)) != 0) {
        goto out;
    }
    if ((rc = sl_sock_open(&p.in, SL_SOCK_PULL, err)) != 0 ||
        (rc = sl_sock_listen(p.in, sl_actor_addr(a, SL_ADDR_PARTITIONER, 0, addr, sizeof(addr)),
                             err)) != 0) {
        goto out;
    }
    for (int i = 0; i < p.nout; i++) {
        if ((rc = sl_sock_open(&p.out[i], SL_SOCK_PUSH, err)) != 0 ||
            (rc = sl_sock_dial(p.out[i], sl_actor_addr(a, SL_ADDR_WINDOWER, i, addr, sizeof(addr)),
                               err)) != 0) {
            goto out;
        }
        sl_sock_set_timeouts(p.out[i], -1, -1);
    }
    if ((rc = sl_loop_add_sock(a->loop, p.in, handlers, &p, err)) != 0) {
        goto out;
    }
    sl_loop_run(a->loop);
    sl_loop_drain(a->loop, p.in);
    SL_LOG(INFO, "partitioner_stopped", "batches=%llu events=%llu",
           (unsigned long long)p.batches, (unsigned long long)p.events);
out:
    sl_sock_close(p.in);
    for (int i = 0; i < p.nout; i++) {
        sl_sock_close(p.out[i]);
    }
    free(p.out);
    if (p.slots != NULL) {
        msync(p.slots, p.slots_bytes, MS_SYNC);
        munmap(p.slots, p.slots_bytes);
    }
    sl_buf_fini(&p.msg);
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void on_events(void *state, sl_sock *from, const void *data, size_t len)
{
    partitioner *p = state;
    sl_events_msg m;
    sl_err err = {0};
    if (sl_events_msg_decode(data, len, &m, &err) != 0) {
        SL_LOG_RATE(ERROR, 1000, "bad_events", "error=\"%s\"", err.msg);
        return;
    }
    char ds[128];
    snprintf(ds, sizeof(ds), "%.*s", (int)m.ds.len, m.ds.p);
    const sl_spec *spec = sl_config_find(p->a->cfg, ds);
    int64_t *offsets = spec != NULL ? offsets_of(p, ds) : NULL;
    if (offsets == NULL) {
        SL_LOG_RATE(ERROR, 1000, "bad_events", "ds=%s error=\"unknown datasource\"", ds);
        goto out;
    }
    for (int i = 0; i < m.nparts; i++) {
        sl_part_events *pe = &m.parts[i];
        if (pe->partition >= spec->partitions) {
            SL_LOG_RATE(ERROR, 1000, "bad_events", "ds=%s partition=%d error=\"out of range\"", ds,
                        pe->partition);
            continue;
        }
        int64_t *next = &offsets[pe->partition];
        sl_part_batch b = {
            .ds = m.ds,
            .partition = pe->partition,
            .first_offset = *next,
            .count = pe->count,
            .events = pe->events,
        };
        sl_buf_reset(&p->msg);
        sl_part_batch_encode(&p->msg, &b);
        sl_sock *out = p->out[pe->partition % p->nout];
        /* Blocking: a slow windower holds us here, and we stop reading from ingest. */
        if (sl_sock_send(out, p->msg.data, p->msg.len, false, &err) != 0) {
            SL_LOG(ERROR, "batch_send_failed", "ds=%s partition=%d error=\"%s\"", ds,
                   pe->partition, err.msg);
            continue;
        }
        *next += pe->count;
        p->batches++;
        p->events += (uint64_t)pe->count;
    }
out:
    sl_events_msg_fini(&m);
}

/* ---- helpers ------------------------------------------------------------------------- */

static int map_offsets(partitioner *p, sl_err *err)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/partitioner", p->a->cfg->data_dir);
    if (mkdir(p->a->cfg->data_dir, 0755) != 0 && errno != EEXIST) {
        return sl_err_set(err, -errno, "mkdir %s: %s", p->a->cfg->data_dir, strerror(errno));
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return sl_err_set(err, -errno, "mkdir %s: %s", dir, strerror(errno));
    }
    p->slots_bytes = OFFSET_SLOTS * sizeof(offset_slot);
    snprintf(path, sizeof(path), "%s/offsets", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return sl_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    }
    if (ftruncate(fd, (off_t)p->slots_bytes) != 0) {
        int e = errno;
        close(fd);
        return sl_err_set(err, -e, "ftruncate %s: %s", path, strerror(e));
    }
    void *m = mmap(NULL, p->slots_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return sl_err_set(err, -errno, "mmap %s: %s", path, strerror(errno));
    }
    p->slots = m;
    return 0;
}

static int64_t *offsets_of(partitioner *p, const char *ds)
{
    for (int i = 0; i < OFFSET_SLOTS; i++) {
        offset_slot *s = &p->slots[i];
        if (s->name[0] == '\0') {
            snprintf(s->name, sizeof(s->name), "%s", ds);
        }
        if (strncmp(s->name, ds, sizeof(s->name)) == 0) {
            return s->next;
        }
    }
    return NULL;
}
