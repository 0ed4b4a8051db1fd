/* msgpack encoding of the internal messages (see msg.h for the shapes). Decoders
 * check every type and length: a message from a buggy or newer peer is rejected
 * with a reason, never trusted. Strings and binaries decode as views into the
 * caller's buffer (msgpack-c's unpacker references str/bin bytes in place). */
#include "msg.h"

#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "sketch.h"

/* ---- sl_buf ---------------------------------------------------------------------- */

void sl_buf_init(sl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sl_buf_fini(sl_buf *b)
{
    free(b->data);
    sl_buf_init(b);
}

void sl_buf_reset(sl_buf *b)
{
    b->len = 0;
}

void sl_buf_shrink(sl_buf *b, size_t max_cap)
{
    if (b->cap > max_cap) {
        sl_buf_fini(b);
    }
}

void sl_buf_reserve(sl_buf *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }
    size_t cap = b->cap == 0 ? 256 : b->cap;
    while (cap < b->len + n) {
        cap *= 2;
    }
    b->data = sl_realloc(b->data, cap);
    b->cap = cap;
}

void sl_buf_append(sl_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    sl_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static int buf_write(void *data, const char *p, size_t n)
{
    sl_buf_append(data, p, n);
    return 0;
}

static void packer_init(msgpack_packer *pk, sl_buf *out)
{
    msgpack_packer_init(pk, out, buf_write);
}

static void pack_str(msgpack_packer *pk, sl_str s)
{
    if (s.p == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.p, s.len);
}

static void pack_bin(msgpack_packer *pk, sl_str s)
{
    msgpack_pack_bin(pk, s.len);
    msgpack_pack_bin_body(pk, s.p == NULL ? "" : s.p, s.len);
}

/* ---- decoding helpers -------------------------------------------------------------- */

/* A decoded top-level message: the zone keeps nested arrays alive. */
typedef struct decoded {
    msgpack_unpacked up;
    const msgpack_object *items;
    uint32_t n;
} decoded;

static int decode_top(const void *data, size_t len, int type, uint32_t min_items, decoded *d,
                      sl_err *err)
{
    size_t off = 0;
    msgpack_unpacked_init(&d->up);
    msgpack_unpack_return rc = msgpack_unpack_next(&d->up, data, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&d->up);
        return sl_err_set(err, SL_ECODEC, "message is not valid msgpack");
    }
    const msgpack_object *o = &d->up.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        o->via.array.ptr[0].via.u64 != (uint64_t)type) {
        msgpack_unpacked_destroy(&d->up);
        return sl_err_set(err, SL_ECODEC, "message is not of type %d", type);
    }
    if (o->via.array.size < min_items + 1) {
        msgpack_unpacked_destroy(&d->up);
        return sl_err_set(err, SL_ECODEC, "message type %d has %u fields, expected %u", type,
                          o->via.array.size - 1, min_items);
    }
    d->items = o->via.array.ptr + 1;
    d->n = o->via.array.size - 1;
    return 0;
}

static void decoded_fini(decoded *d)
{
    msgpack_unpacked_destroy(&d->up);
}

static int get_int(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) {
            return -1;
        }
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return -1;
}

static int get_str(const msgpack_object *o, sl_str *s)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        s->p = o->via.str.ptr;
        s->len = o->via.str.size;
        if (s->p == NULL) {
            s->p = "";
        }
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        s->p = o->via.bin.ptr;
        s->len = o->via.bin.size;
        if (s->p == NULL) {
            s->p = "";
        }
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NIL) {
        s->p = NULL;
        s->len = 0;
        return 0;
    }
    return -1;
}

static int get_double(const msgpack_object *o, double *v)
{
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        *v = o->via.f64;
        return 0;
    }
    int64_t i;
    if (get_int(o, &i) == 0) {
        *v = (double)i;
        return 0;
    }
    return -1;
}

#define WANT(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rc = sl_err_set(err, SL_ECODEC, "%s", what);                                           \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int sl_msg_type(const void *data, size_t len)
{
    const unsigned char *p = data;
    /* fixarray (0x90..0x9f) or array16/32, then a positive fixint type. */
    if (len < 2) {
        return SL_MSG_NONE;
    }
    size_t at;
    if ((p[0] & 0xf0) == 0x90) {
        at = 1;
    } else if (p[0] == 0xdc) {
        at = 3;
    } else if (p[0] == 0xdd) {
        at = 5;
    } else {
        return SL_MSG_NONE;
    }
    if (at >= len || p[at] >= SL_MSG_TYPE_COUNT || p[at] == 0) {
        return SL_MSG_NONE;
    }
    return p[at];
}

/* ---- events and rows -------------------------------------------------------------- */

void sl_events_put(sl_buf *blob, const sl_event *ev)
{
    msgpack_packer pk;
    packer_init(&pk, blob);
    msgpack_pack_array(&pk, ev->nhashes > 0 ? 4 : 3);
    msgpack_pack_int64(&pk, ev->ts_ms);
    msgpack_pack_array(&pk, (size_t)ev->ndims);
    for (int i = 0; i < ev->ndims; i++) {
        pack_str(&pk, ev->dims[i]);
    }
    msgpack_pack_array(&pk, (size_t)ev->nfields);
    for (int i = 0; i < ev->nfields; i++) {
        if (ev->has_field[i]) {
            msgpack_pack_double(&pk, ev->fields[i]);
        } else {
            msgpack_pack_nil(&pk);
        }
    }
    if (ev->nhashes > 0) {
        msgpack_pack_array(&pk, (size_t)ev->nhashes);
        for (int i = 0; i < ev->nhashes; i++) {
            if (ev->has_hash[i]) {
                msgpack_pack_uint64(&pk, ev->hashes[i]);
            } else {
                msgpack_pack_nil(&pk);
            }
        }
    }
}

void sl_events_iter_init(sl_events_iter *it, const void *data, size_t len)
{
    it->data = data;
    it->len = len;
    it->off = 0;
}

/* Unpacks the next array item of the stream into up: an array of min..max items.
 * Returns 1, 0 at the end, or SL_ECODEC. */
static int next_array(sl_events_iter *it, msgpack_unpacked *up, uint32_t min, uint32_t max,
                      const char *what, sl_err *err)
{
    if (it->off >= it->len) {
        return 0;
    }
    msgpack_unpack_return rc = msgpack_unpack_next(up, it->data, it->len, &it->off);
    if (rc != MSGPACK_UNPACK_SUCCESS) {
        return sl_err_set(err, SL_ECODEC, "truncated or invalid %s in stream", what);
    }
    if (up->data.type != MSGPACK_OBJECT_ARRAY || up->data.via.array.size < min ||
        up->data.via.array.size > max) {
        return sl_err_set(err, SL_ECODEC, "%s is not an array of %u to %u items", what, min, max);
    }
    return 1;
}

int sl_events_next(sl_events_iter *it, sl_event *ev, sl_err *err)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = next_array(it, &up, 3, 4, "event", err);
    if (rc <= 0) {
        goto out;
    }
    const msgpack_object *a = up.data.via.array.ptr;
    WANT(get_int(&a[0], &ev->ts_ms) == 0, "event time is not an integer");
    WANT(a[1].type == MSGPACK_OBJECT_ARRAY && a[1].via.array.size <= SL_MAX_DIMS,
         "event dims are not an array");
    WANT(a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size <= SL_MAX_FIELDS,
         "event fields are not an array");
    ev->ndims = (int)a[1].via.array.size;
    for (int i = 0; i < ev->ndims; i++) {
        WANT(get_str(&a[1].via.array.ptr[i], &ev->dims[i]) == 0, "event dim is not a string");
    }
    ev->nfields = (int)a[2].via.array.size;
    for (int i = 0; i < ev->nfields; i++) {
        const msgpack_object *f = &a[2].via.array.ptr[i];
        ev->has_field[i] = f->type != MSGPACK_OBJECT_NIL;
        ev->fields[i] = 0;
        if (ev->has_field[i]) {
            WANT(get_double(f, &ev->fields[i]) == 0, "event field is not a number");
        }
    }
    /* the hashes of distinct fields: absent in records written before they existed */
    ev->nhashes = 0;
    if (up.data.via.array.size == 4) {
        WANT(a[3].type == MSGPACK_OBJECT_ARRAY && a[3].via.array.size <= SL_MAX_FIELDS,
             "event hashes are not an array");
        ev->nhashes = (int)a[3].via.array.size;
        for (int i = 0; i < ev->nhashes; i++) {
            const msgpack_object *h = &a[3].via.array.ptr[i];
            ev->has_hash[i] = h->type != MSGPACK_OBJECT_NIL;
            ev->hashes[i] = 0;
            if (ev->has_hash[i]) {
                WANT(h->type == MSGPACK_OBJECT_POSITIVE_INTEGER,
                     "event hash is not an unsigned integer");
                ev->hashes[i] = h->via.u64;
            }
        }
    }
    rc = 1;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void sl_rows_put(sl_buf *blob, const sl_row *row)
{
    bool sketches = false;
    for (int i = 0; i < row->nvalues; i++) {
        sketches |= row->sketches[i].p != NULL;
    }
    msgpack_packer pk;
    packer_init(&pk, blob);
    msgpack_pack_array(&pk, sketches ? 5 : 4);
    msgpack_pack_int64(&pk, row->bucket_ms);
    msgpack_pack_array(&pk, (size_t)row->ndims);
    for (int i = 0; i < row->ndims; i++) {
        pack_str(&pk, row->dims[i]);
    }
    msgpack_pack_uint64(&pk, row->count);
    msgpack_pack_array(&pk, (size_t)row->nvalues);
    for (int i = 0; i < row->nvalues; i++) {
        /* +0 (every sketch metric's slot) in one byte rather than nine */
        if (row->values[i] == 0 && !signbit(row->values[i])) {
            msgpack_pack_uint8(&pk, 0);
        } else {
            msgpack_pack_double(&pk, row->values[i]);
        }
    }
    if (sketches) {
        msgpack_pack_array(&pk, (size_t)row->nvalues);
        for (int i = 0; i < row->nvalues; i++) {
            if (row->sketches[i].p != NULL) {
                pack_bin(&pk, row->sketches[i]);
            } else {
                msgpack_pack_nil(&pk);
            }
        }
    }
}

void sl_rows_iter_init(sl_rows_iter *it, const void *data, size_t len)
{
    sl_events_iter_init(it, data, len);
}

int sl_rows_next(sl_rows_iter *it, sl_row *row, sl_err *err)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = next_array(it, &up, 4, 5, "row", err);
    if (rc <= 0) {
        goto out;
    }
    const msgpack_object *a = up.data.via.array.ptr;
    int64_t count;
    WANT(get_int(&a[0], &row->bucket_ms) == 0, "row bucket is not an integer");
    WANT(a[1].type == MSGPACK_OBJECT_ARRAY && a[1].via.array.size <= SL_MAX_DIMS,
         "row dims are not an array");
    WANT(get_int(&a[2], &count) == 0 && count >= 0, "row count is not a count");
    WANT(a[3].type == MSGPACK_OBJECT_ARRAY && a[3].via.array.size <= SL_MAX_METRICS,
         "row values are not an array");
    row->count = (uint64_t)count;
    row->ndims = (int)a[1].via.array.size;
    for (int i = 0; i < row->ndims; i++) {
        WANT(get_str(&a[1].via.array.ptr[i], &row->dims[i]) == 0, "row dim is not a string");
    }
    row->nvalues = (int)a[3].via.array.size;
    for (int i = 0; i < row->nvalues; i++) {
        WANT(get_double(&a[3].via.array.ptr[i], &row->values[i]) == 0, "row value is not a number");
        row->sketches[i] = (sl_str){NULL, 0};
    }
    if (up.data.via.array.size == 5) {
        WANT(a[4].type == MSGPACK_OBJECT_ARRAY && a[4].via.array.size == (uint32_t)row->nvalues,
             "row sketches are not an array as long as its values");
        for (int i = 0; i < row->nvalues; i++) {
            const msgpack_object *k = &a[4].via.array.ptr[i];
            if (k->type == MSGPACK_OBJECT_NIL) {
                continue;
            }
            WANT(k->type == MSGPACK_OBJECT_BIN, "row sketch is neither binary nor nil");
            /* the header only (version, type): the storer checks the body as it merges */
            sl_err serr;
            if (sl_sketch_type(k->via.bin.ptr, k->via.bin.size, &serr) < 0) {
                rc = sl_err_set(err, SL_ECODEC, "row sketch %d: %s", i, serr.msg);
                goto out;
            }
            row->sketches[i] = (sl_str){k->via.bin.ptr, k->via.bin.size};
        }
    }
    rc = 1;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* ---- messages ---------------------------------------------------------------------- */

void sl_ingest_req_encode(sl_buf *out, const sl_ingest_req *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, SL_MSG_INGEST_REQ);
    pack_str(&pk, m->ds);
    pack_bin(&pk, m->body);
    pack_str(&pk, m->key);
}

int sl_ingest_req_decode(const void *data, size_t len, sl_ingest_req *m, sl_err *err)
{
    decoded d;
    int rc = decode_top(data, len, SL_MSG_INGEST_REQ, 2, &d, err);
    if (rc != 0) {
        return rc;
    }
    m->key = (sl_str){NULL, 0};
    WANT(get_str(&d.items[0], &m->ds) == 0 && m->ds.p != NULL, "ingest request: bad datasource");
    WANT(get_str(&d.items[1], &m->body) == 0 && m->body.p != NULL, "ingest request: bad body");
    WANT(d.n < 3 || get_str(&d.items[2], &m->key) == 0, "ingest request: bad key");
out:
    decoded_fini(&d);
    return rc;
}

void sl_ingest_rep_encode(sl_buf *out, const sl_ingest_rep *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, SL_MSG_INGEST_REP);
    msgpack_pack_int(&pk, m->status);
    msgpack_pack_int64(&pk, m->accepted);
    msgpack_pack_int64(&pk, m->rejected);
    msgpack_pack_array(&pk, (size_t)m->nerrors);
    for (int i = 0; i < m->nerrors; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int64(&pk, m->errors[i].line);
        pack_str(&pk, m->errors[i].reason);
    }
    pack_str(&pk, m->error);
    if (m->duplicate) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
}

int sl_ingest_rep_decode(const void *data, size_t len, sl_ingest_rep *m, sl_err *err)
{
    decoded d;
    int64_t status;
    memset(m, 0, sizeof(*m));
    int rc = decode_top(data, len, SL_MSG_INGEST_REP, 5, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_int(&d.items[0], &status) == 0, "ingest reply: bad status");
    WANT(get_int(&d.items[1], &m->accepted) == 0, "ingest reply: bad accepted");
    WANT(get_int(&d.items[2], &m->rejected) == 0, "ingest reply: bad rejected");
    WANT(d.items[3].type == MSGPACK_OBJECT_ARRAY, "ingest reply: bad errors");
    WANT(get_str(&d.items[4], &m->error) == 0, "ingest reply: bad error");
    WANT(d.n < 6 || d.items[5].type == MSGPACK_OBJECT_BOOLEAN, "ingest reply: bad duplicate");
    m->duplicate = d.n >= 6 && d.items[5].via.boolean;
    m->status = (int)status;
    m->nerrors = (int)d.items[3].via.array.size;
    m->errors = sl_calloc((size_t)m->nerrors, sizeof(*m->errors));
    for (int i = 0; i < m->nerrors; i++) {
        const msgpack_object *e = &d.items[3].via.array.ptr[i];
        WANT(e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size == 2 &&
                 get_int(&e->via.array.ptr[0], &m->errors[i].line) == 0 &&
                 get_str(&e->via.array.ptr[1], &m->errors[i].reason) == 0,
             "ingest reply: bad error entry");
    }
out:
    decoded_fini(&d);
    if (rc != 0) {
        sl_ingest_rep_fini(m);
    }
    return rc;
}

void sl_ingest_rep_fini(sl_ingest_rep *m)
{
    free(m->errors);
    m->errors = NULL;
    m->nerrors = 0;
}

void sl_events_msg_encode(sl_buf *out, const sl_events_msg *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, SL_MSG_EVENTS);
    pack_str(&pk, m->ds);
    msgpack_pack_array(&pk, (size_t)m->nparts);
    for (int i = 0; i < m->nparts; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int(&pk, m->parts[i].partition);
        msgpack_pack_int64(&pk, m->parts[i].count);
        pack_bin(&pk, m->parts[i].events);
    }
}

int sl_events_msg_decode(const void *data, size_t len, sl_events_msg *m, sl_err *err)
{
    decoded d;
    memset(m, 0, sizeof(*m));
    int rc = decode_top(data, len, SL_MSG_EVENTS, 2, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_str(&d.items[0], &m->ds) == 0 && m->ds.p != NULL, "events: bad datasource");
    WANT(d.items[1].type == MSGPACK_OBJECT_ARRAY, "events: parts is not an array");
    m->nparts = (int)d.items[1].via.array.size;
    m->parts = sl_calloc((size_t)m->nparts, sizeof(*m->parts));
    for (int i = 0; i < m->nparts; i++) {
        const msgpack_object *p = &d.items[1].via.array.ptr[i];
        int64_t part;
        WANT(p->type == MSGPACK_OBJECT_ARRAY && p->via.array.size == 3, "events: bad part");
        WANT(get_int(&p->via.array.ptr[0], &part) == 0 && part >= 0 && part < SL_MAX_PARTITIONS,
             "events: bad partition");
        WANT(get_int(&p->via.array.ptr[1], &m->parts[i].count) == 0 && m->parts[i].count > 0,
             "events: bad count");
        WANT(p->via.array.ptr[2].type == MSGPACK_OBJECT_BIN &&
                 get_str(&p->via.array.ptr[2], &m->parts[i].events) == 0,
             "events: bad blob");
        m->parts[i].partition = (int)part;
    }
out:
    decoded_fini(&d);
    if (rc != 0) {
        sl_events_msg_fini(m);
    }
    return rc;
}

void sl_events_msg_fini(sl_events_msg *m)
{
    free(m->parts);
    m->parts = NULL;
    m->nparts = 0;
}

void sl_part_batch_encode(sl_buf *out, const sl_part_batch *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, SL_MSG_PART_BATCH);
    pack_str(&pk, m->ds);
    msgpack_pack_int(&pk, m->partition);
    msgpack_pack_int64(&pk, m->first_offset);
    msgpack_pack_int64(&pk, m->count);
    pack_bin(&pk, m->events);
}

int sl_part_batch_decode(const void *data, size_t len, sl_part_batch *m, sl_err *err)
{
    decoded d;
    int64_t part;
    int rc = decode_top(data, len, SL_MSG_PART_BATCH, 5, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_str(&d.items[0], &m->ds) == 0 && m->ds.p != NULL, "batch: bad datasource");
    WANT(get_int(&d.items[1], &part) == 0 && part >= 0 && part < SL_MAX_PARTITIONS,
         "batch: bad partition");
    WANT(get_int(&d.items[2], &m->first_offset) == 0 && m->first_offset >= 0, "batch: bad offset");
    WANT(get_int(&d.items[3], &m->count) == 0 && m->count > 0, "batch: bad count");
    WANT(d.items[4].type == MSGPACK_OBJECT_BIN && get_str(&d.items[4], &m->events) == 0,
         "batch: bad events");
    m->partition = (int)part;
out:
    decoded_fini(&d);
    return rc;
}

void sl_delta_encode(sl_buf *out, const sl_delta *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, m->oldest_appended_ms > 0 ? 7 : 6);
    msgpack_pack_uint8(&pk, SL_MSG_DELTA);
    pack_str(&pk, m->ds);
    msgpack_pack_int(&pk, m->partition);
    msgpack_pack_int64(&pk, m->offset_lo);
    msgpack_pack_int64(&pk, m->offset_hi);
    pack_bin(&pk, m->rows);
    if (m->oldest_appended_ms > 0) {
        msgpack_pack_int64(&pk, m->oldest_appended_ms);
    }
}

int sl_delta_decode(const void *data, size_t len, sl_delta *m, sl_err *err)
{
    decoded d;
    int64_t part;
    int rc = decode_top(data, len, SL_MSG_DELTA, 5, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_str(&d.items[0], &m->ds) == 0 && m->ds.p != NULL, "delta: bad datasource");
    WANT(get_int(&d.items[1], &part) == 0 && part >= 0 && part < SL_MAX_PARTITIONS,
         "delta: bad partition");
    WANT(get_int(&d.items[2], &m->offset_lo) == 0 && m->offset_lo >= 0, "delta: bad offset_lo");
    WANT(get_int(&d.items[3], &m->offset_hi) == 0 && m->offset_hi > m->offset_lo,
         "delta: bad offset_hi");
    WANT(d.items[4].type == MSGPACK_OBJECT_BIN && get_str(&d.items[4], &m->rows) == 0,
         "delta: bad rows");
    m->oldest_appended_ms = 0;
    WANT(d.n < 6 ||
             (get_int(&d.items[5], &m->oldest_appended_ms) == 0 && m->oldest_appended_ms >= 0),
         "delta: bad oldest_appended_ms");
    m->partition = (int)part;
out:
    decoded_fini(&d);
    return rc;
}

void sl_query_req_encode(sl_buf *out, const sl_query_req *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, SL_MSG_QUERY_REQ);
    msgpack_pack_int(&pk, m->kind);
    pack_bin(&pk, m->body);
}

int sl_query_req_decode(const void *data, size_t len, sl_query_req *m, sl_err *err)
{
    decoded d;
    int64_t kind;
    int rc = decode_top(data, len, SL_MSG_QUERY_REQ, 2, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_int(&d.items[0], &kind) == 0, "query request: bad kind");
    WANT(get_str(&d.items[1], &m->body) == 0 && m->body.p != NULL, "query request: bad body");
    m->kind = (int)kind;
out:
    decoded_fini(&d);
    return rc;
}

void sl_query_rep_encode(sl_buf *out, const sl_query_rep *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, SL_MSG_QUERY_REP);
    msgpack_pack_int(&pk, m->http_status);
    pack_bin(&pk, m->body);
}

int sl_query_rep_decode(const void *data, size_t len, sl_query_rep *m, sl_err *err)
{
    decoded d;
    int64_t status;
    int rc = decode_top(data, len, SL_MSG_QUERY_REP, 2, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_int(&d.items[0], &status) == 0 && status >= 100 && status < 600,
         "query reply: bad status");
    WANT(get_str(&d.items[1], &m->body) == 0 && m->body.p != NULL, "query reply: bad body");
    m->http_status = (int)status;
out:
    decoded_fini(&d);
    return rc;
}

void sl_ping_encode(sl_buf *out)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint8(&pk, SL_MSG_PING);
}

void sl_pong_encode(sl_buf *out, const sl_pong *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, SL_MSG_PONG);
    pack_str(&pk, m->actor);
    msgpack_pack_int(&pk, m->instance);
    msgpack_pack_int(&pk, m->pid);
    msgpack_pack_int64(&pk, m->started_ms);
}

int sl_pong_decode(const void *data, size_t len, sl_pong *m, sl_err *err)
{
    decoded d;
    int64_t inst, pid;
    int rc = decode_top(data, len, SL_MSG_PONG, 4, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_str(&d.items[0], &m->actor) == 0 && m->actor.p != NULL, "pong: bad actor");
    WANT(get_int(&d.items[1], &inst) == 0, "pong: bad instance");
    WANT(get_int(&d.items[2], &pid) == 0, "pong: bad pid");
    WANT(get_int(&d.items[3], &m->started_ms) == 0, "pong: bad start time");
    m->instance = (int)inst;
    m->pid = (int)pid;
out:
    decoded_fini(&d);
    return rc;
}

void sl_notify_encode(sl_buf *out, const sl_notify *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, SL_MSG_NOTIFY);
    pack_str(&pk, m->ds);
    msgpack_pack_int64(&pk, m->min_ms);
    msgpack_pack_int64(&pk, m->max_ms);
}

int sl_notify_decode(const void *data, size_t len, sl_notify *m, sl_err *err)
{
    decoded d;
    int rc = decode_top(data, len, SL_MSG_NOTIFY, 3, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_str(&d.items[0], &m->ds) == 0 && m->ds.p != NULL, "notify: bad datasource");
    WANT(get_int(&d.items[1], &m->min_ms) == 0, "notify: bad min");
    WANT(get_int(&d.items[2], &m->max_ms) == 0, "notify: bad max");
out:
    decoded_fini(&d);
    return rc;
}

void sl_log_record_encode(sl_buf *out, int type, const sl_log_record *m)
{
    bool rec = type == SL_MSG_LOG_RECORD;
    bool src = m->source.topic.p != NULL;
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, (rec ? 5 : 4) + (src ? 1 : 0));
    msgpack_pack_uint8(&pk, (uint8_t)type);
    pack_str(&pk, m->ds);
    pack_str(&pk, m->key);
    if (rec) {
        msgpack_pack_int64(&pk, m->appended_ms);
    }
    msgpack_pack_array(&pk, (size_t)m->nparts);
    for (int i = 0; i < m->nparts; i++) {
        msgpack_pack_array(&pk, rec ? 4 : 3);
        msgpack_pack_int(&pk, m->parts[i].partition);
        if (rec) {
            msgpack_pack_int64(&pk, m->parts[i].first_offset);
        }
        msgpack_pack_int64(&pk, m->parts[i].count);
        pack_bin(&pk, m->parts[i].events);
    }
    if (src) {
        msgpack_pack_array(&pk, 4);
        pack_str(&pk, m->source.topic);
        msgpack_pack_int32(&pk, m->source.partition);
        msgpack_pack_int64(&pk, m->source.first_offset);
        msgpack_pack_int64(&pk, m->source.last_offset);
    }
}

int sl_log_record_decode(const void *data, size_t len, int type, sl_log_record *m, sl_err *err)
{
    bool rec = type == SL_MSG_LOG_RECORD;
    decoded d;
    memset(m, 0, sizeof(*m));
    int rc = decode_top(data, len, type, rec ? 4 : 3, &d, err);
    if (rc != 0) {
        return rc;
    }
    const msgpack_object *it = d.items;
    WANT(get_str(&it[0], &m->ds) == 0 && m->ds.p != NULL, "append: bad datasource");
    WANT(get_str(&it[1], &m->key) == 0, "append: bad key");
    if (rec) {
        WANT(get_int(&it[2], &m->appended_ms) == 0, "log record: bad time");
        it++;
    }
    WANT(it[2].type == MSGPACK_OBJECT_ARRAY, "append: parts is not an array");
    m->nparts = (int)it[2].via.array.size;
    m->parts = sl_calloc((size_t)m->nparts, sizeof(*m->parts));
    for (int i = 0; i < m->nparts; i++) {
        const msgpack_object *p = &it[2].via.array.ptr[i];
        uint32_t want = rec ? 4 : 3;
        int64_t part;
        WANT(p->type == MSGPACK_OBJECT_ARRAY && p->via.array.size == want, "append: bad part");
        const msgpack_object *f = p->via.array.ptr;
        WANT(get_int(&f[0], &part) == 0 && part >= 0 && part < SL_MAX_PARTITIONS,
             "append: bad partition");
        if (rec) {
            WANT(get_int(&f[1], &m->parts[i].first_offset) == 0 && m->parts[i].first_offset >= 0,
                 "log record: bad offset");
            f++;
        }
        WANT(get_int(&f[1], &m->parts[i].count) == 0 && m->parts[i].count > 0, "append: bad count");
        WANT(f[2].type == MSGPACK_OBJECT_BIN && get_str(&f[2], &m->parts[i].events) == 0,
             "append: bad events");
        m->parts[i].partition = (int)part;
    }
    if (d.n > (rec ? 4u : 3u)) {
        /* the optional source: [topic, partition, first_offset, last_offset] */
        const msgpack_object *s = &it[3];
        int64_t sp;
        WANT(d.n == (rec ? 5u : 4u), "append: too many fields");
        WANT(s->type == MSGPACK_OBJECT_ARRAY && s->via.array.size == 4,
             "append: source is not [topic, partition, first, last]");
        s = s->via.array.ptr;
        WANT(get_str(&s[0], &m->source.topic) == 0 && m->source.topic.p != NULL &&
                 m->source.topic.len > 0,
             "append: bad source topic");
        WANT(get_int(&s[1], &sp) == 0 && sp >= 0 && sp <= INT32_MAX,
             "append: bad source partition");
        WANT(get_int(&s[2], &m->source.first_offset) == 0 && m->source.first_offset >= 0,
             "append: bad source first offset");
        WANT(get_int(&s[3], &m->source.last_offset) == 0 &&
                 m->source.last_offset >= m->source.first_offset,
             "append: bad source last offset");
        m->source.partition = (int32_t)sp;
    }
out:
    decoded_fini(&d);
    if (rc != 0) {
        sl_log_record_fini(m);
    }
    return rc;
}

void sl_log_record_fini(sl_log_record *m)
{
    free(m->parts);
    m->parts = NULL;
    m->nparts = 0;
}

void sl_append_rep_encode(sl_buf *out, const sl_append_rep *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    bool hw = m->status == SL_APPEND_OVERLAP;
    msgpack_pack_array(&pk, hw ? 5 : 4);
    msgpack_pack_uint8(&pk, SL_MSG_APPEND_REP);
    msgpack_pack_int(&pk, m->status);
    if (m->duplicate) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    pack_str(&pk, m->error);
    if (hw) {
        msgpack_pack_int64(&pk, m->source_hw);
    }
}

int sl_append_rep_decode(const void *data, size_t len, sl_append_rep *m, sl_err *err)
{
    decoded d;
    int64_t status;
    int rc = decode_top(data, len, SL_MSG_APPEND_REP, 3, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_int(&d.items[0], &status) == 0, "append reply: bad status");
    WANT(d.items[1].type == MSGPACK_OBJECT_BOOLEAN, "append reply: bad duplicate flag");
    WANT(get_str(&d.items[2], &m->error) == 0, "append reply: bad error");
    m->status = (int)status;
    m->duplicate = d.items[1].via.boolean;
    m->source_hw = -1;
    if (d.n > 3) {
        WANT(get_int(&d.items[3], &m->source_hw) == 0 && m->source_hw >= 0,
             "append reply: bad source high water");
    }
    WANT(m->status != SL_APPEND_OVERLAP || m->source_hw >= 0,
         "append reply: overlap without a high water");
out:
    decoded_fini(&d);
    return rc;
}

void sl_metrics_req_encode(sl_buf *out)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint8(&pk, SL_MSG_METRICS);
}

void sl_metrics_rep_encode(sl_buf *out, sl_str text)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, SL_MSG_METRICS_REP);
    pack_bin(&pk, text);
}

int sl_metrics_rep_decode(const void *data, size_t len, sl_str *text, sl_err *err)
{
    decoded d;
    int rc = decode_top(data, len, SL_MSG_METRICS_REP, 1, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(d.items[0].type == MSGPACK_OBJECT_BIN && get_str(&d.items[0], text) == 0,
         "metrics reply: text is not a binary");
out:
    decoded_fini(&d);
    return rc;
}

void sl_alerts_req_encode(sl_buf *out, const sl_alerts_req *m)
{
    msgpack_packer pk;
    packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, SL_MSG_ALERTS_REQ);
    msgpack_pack_int(&pk, m->what);
    pack_str(&pk, m->query.p != NULL ? m->query : (sl_str){"", 0});
}

int sl_alerts_req_decode(const void *data, size_t len, sl_alerts_req *m, sl_err *err)
{
    decoded d;
    int64_t what;
    int rc = decode_top(data, len, SL_MSG_ALERTS_REQ, 2, &d, err);
    if (rc != 0) {
        return rc;
    }
    WANT(get_int(&d.items[0], &what) == 0 && (what == SL_ALERTS_RULES || what == SL_ALERTS_HISTORY),
         "alerts request: bad what (expected 0 for rules or 1 for history)");
    WANT(d.items[1].type == MSGPACK_OBJECT_STR && get_str(&d.items[1], &m->query) == 0,
         "alerts request: query is not a string");
    m->what = (int)what;
out:
    decoded_fini(&d);
    return rc;
}
