/* Request body -> per-partition events blobs (see parse.h).
 *
 * yajl's SAX callbacks drive a small state machine: `depth` counts open containers
 * and `base` is the depth at which events sit (0 for an object stream, 1 inside an
 * array body). Only values directly inside an event object (depth base+1) are looked
 * at; a key is mapped to a "slot" (a spec field: timestamp, dimension, numeric field,
 * field of a distinct metric, partition key; one name may play several roles) through
 * a small hash table, and the slot remembers the kind and text of the last value seen
 * (duplicate keys: the last wins). yajl's string pointers only live for the callback,
 * so texts are copied into a per-event scratch buffer. When the event object closes it
 * is validated in spec order and appended to its partition's blob.
 *
 * Object streams are fed to yajl one line at a time with yajl_allow_multiple_values,
 * so a syntax error costs only its line: the line's results are rolled back, the
 * line is rejected with yajl's message, the handle is replaced and the next line
 * starts clean. If the first line leaves an object open the body is taken to be
 * pretty-printed JSON (one object over several lines, or several such objects) and
 * is parsed as a plain stream of values; if that fails too, the body is parsed again
 * line by line so each bad line gets its own error. */
#include "parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "clock.h"
#include "hash.h"

#define MAX_SLOTS (SL_MAX_DIMS + 2 * SL_MAX_FIELDS + 2)
#define TABLE_SIZE 256 /* power of two, well above 2 * MAX_SLOTS */

/* The kind of the last value seen for a slot. */
enum { V_NONE, V_NULL, V_STRING, V_NUMBER, V_BOOL, V_COMPOUND };

/* An input field named by the spec. */
typedef struct slot {
    const char *name;
    size_t len;
} slot;

/* The last value seen for a slot in the current event; text lives in scratch. */
typedef struct value {
    int kind;
    size_t off;
    size_t len;
} value;

/* One event appended during the current NDJSON line, for rollback. */
typedef struct pending {
    int part;
    size_t len; /* blob length before the append */
} pending;

/* Results at the start of an NDJSON line, for rollback. */
typedef struct mark {
    int64_t accepted;
    int64_t rejected;
    int nerrors;
    size_t errtext_len;
} mark;

struct sl_parse_priv {
    sl_parser *out;
    const sl_spec *spec;
    int64_t now_ms;
    int max_errors;

    /* spec fields: slots and the key -> slot table */
    int nslots;
    slot slots[MAX_SLOTS];
    int16_t table[TABLE_SIZE]; /* slot index + 1; 0 is empty */
    int ts_slot;
    int pkey_slot; /* -1: no partition key */
    int dim_slot[SL_MAX_DIMS];
    int field_slot[SL_MAX_FIELDS];
    int field_quantiles[SL_MAX_FIELDS]; /* metric index of a quantiles metric over it, or -1 */
    int hfield_slot[SL_MAX_FIELDS];

    /* structure */
    yajl_handle h;
    bool array_mode;
    int base;
    int depth;
    bool in_event;
    int cur;         /* slot of the current key at depth base+1, -1 if ignored */
    int64_t line;    /* NDJSON: line being fed */
    int64_t elem;    /* array: elements seen */
    int64_t ev_line; /* line / element of the current top-level value */

    /* the current event */
    value vals[MAX_SLOTS];
    sl_buf scratch;
    sl_event ev;

    /* error reasons (NUL-terminated, back to back) and their offsets */
    sl_buf errtext;
    size_t *erroff;
    int errcap;

    /* rollback of the current NDJSON line */
    bool track;
    mark line_mark;
    pending *pend;
    int npend;
    int pendcap;

    int partcap; /* allocated entries of out->parts / out->counts */
};

static int on_null(void *ctx);
static int on_boolean(void *ctx, int b);
static int on_number(void *ctx, const char *s, size_t len);
static int on_string(void *ctx, const unsigned char *s, size_t len);
static int on_start_map(void *ctx);
static int on_map_key(void *ctx, const unsigned char *key, size_t len);
static int on_end_map(void *ctx);
static int on_start_array(void *ctx);
static int on_end_array(void *ctx);

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* run_lines' answer when a pretty-printed body must be parsed again line by line. */
#define RESTART 1

static void bind_spec(sl_parse_priv *q, const sl_spec *spec);
static void reset_results(sl_parse_priv *q);
static void new_handle(sl_parse_priv *q, bool multiple);
static int run_array(sl_parse_priv *q, const char *body, size_t len, sl_err *err);
static int run_lines(sl_parse_priv *q, const char *body, size_t len, bool multiline_ok);
static void reject(sl_parse_priv *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sl_parser_init(sl_parser *p)
{
    memset(p, 0, sizeof(*p));
}

void sl_parser_fini(sl_parser *p)
{
    sl_parse_priv *q = p->priv;
    if (q != NULL) {
        if (q->h != NULL) {
            yajl_free(q->h);
        }
        sl_buf_fini(&q->scratch);
        sl_buf_fini(&q->errtext);
        free(q->erroff);
        free(q->pend);
        for (int i = 0; i < q->partcap; i++) {
            sl_buf_fini(&p->parts[i]);
        }
        free(q);
    }
    free(p->errors);
    free(p->parts);
    free(p->counts);
    memset(p, 0, sizeof(*p));
}

int sl_parser_run(sl_parser *p, const sl_spec *spec, const void *body, size_t len, int64_t now_ms,
                  int max_errors, sl_err *err)
{
    SL_ASSERT(spec != NULL && spec->ts_field != NULL);
    SL_ASSERT(spec->partitions >= 1 && spec->partitions <= SL_MAX_PARTITIONS);
    if (p->priv == NULL) {
        p->priv = sl_calloc(1, sizeof(*p->priv));
        sl_buf_init(&p->priv->scratch);
        sl_buf_init(&p->priv->errtext);
    }
    sl_parse_priv *q = p->priv;
    q->out = p;
    q->now_ms = now_ms;
    q->max_errors = max_errors < 0 ? 0 : max_errors;
    if (q->max_errors > q->errcap) {
        q->errcap = q->max_errors;
        q->erroff = sl_realloc(q->erroff, (size_t)q->errcap * sizeof(*q->erroff));
        p->errors = sl_realloc(p->errors, (size_t)q->errcap * sizeof(*p->errors));
    }
    if (spec->partitions > q->partcap) {
        p->parts = sl_realloc(p->parts, (size_t)spec->partitions * sizeof(*p->parts));
        p->counts = sl_realloc(p->counts, (size_t)spec->partitions * sizeof(*p->counts));
        for (int i = q->partcap; i < spec->partitions; i++) {
            sl_buf_init(&p->parts[i]);
        }
        q->partcap = spec->partitions;
    }
    p->nparts = spec->partitions;
    bind_spec(q, spec);
    reset_results(q);

    const char *s = body;
    /* a UTF-8 byte order mark is not JSON, but editors add it */
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        len -= 3;
    }
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) {
        i++;
    }
    int rc;
    if (i < len && s[i] == '[') {
        rc = run_array(q, s, len, err);
    } else {
        rc = run_lines(q, s, len, true);
        if (rc == RESTART) {
            reset_results(q);
            rc = run_lines(q, s, len, false);
        }
    }
    /* reasons were appended to one growing buffer: point the views at it now */
    for (int k = 0; k < p->nerrors; k++) {
        p->errors[k].reason.p = q->errtext.data + q->erroff[k];
    }
    return rc;
}

/* ---- the three body shapes ------------------------------------------------------- */

/* An array body: one parse; a syntax error anywhere rejects the whole body. */
static int run_array(sl_parse_priv *q, const char *body, size_t len, sl_err *err)
{
    q->array_mode = true;
    q->base = 1;
    q->track = false;
    new_handle(q, false);
    size_t off;
    yajl_status st = yajl_parse(q->h, (const unsigned char *)body, len);
    if (st == yajl_status_ok) {
        /* the body ended early: point just past its last non-blank byte */
        st = yajl_complete_parse(q->h);
        off = len;
        while (off > 0 && (body[off - 1] == ' ' || body[off - 1] == '\t' || body[off - 1] == '\r' ||
                           body[off - 1] == '\n')) {
            off--;
        }
    } else {
        /* bytes consumed ends just after the offending byte */
        size_t c = yajl_get_bytes_consumed(q->h);
        off = c > 0 ? c - 1 : 0;
    }
    if (st == yajl_status_ok) {
        return 0;
    }
    int64_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < off && i < len; i++) {
        if (body[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    unsigned char *msg = yajl_get_error(q->h, 0, NULL, 0);
    size_t mlen = strlen((const char *)msg);
    while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == '.')) {
        mlen--;
    }
    sl_err_set(err, SL_EPARSE, "malformed JSON at line %lld, column %lld: %.*s", (long long)line,
               (long long)(off - line_start + 1), (int)mlen, (const char *)msg);
    yajl_free_error(q->h, msg);
    yajl_free(q->h);
    q->h = NULL;
    reset_results(q);
    return SL_EPARSE;
}

static bool blank(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            return false;
        }
    }
    return true;
}

static void line_begin(sl_parse_priv *q)
{
    sl_parser *p = q->out;
    q->line_mark = (mark){p->accepted, p->rejected, p->nerrors, q->errtext.len};
    q->npend = 0;
}

/* Undoes everything the current line produced, rejects it with yajl's message and
 * replaces the handle (a yajl handle cannot continue after an error). */
static void line_failed(sl_parse_priv *q, const char *line, size_t len, bool at_end)
{
    sl_parser *p = q->out;
    for (int i = q->npend - 1; i >= 0; i--) {
        p->parts[q->pend[i].part].len = q->pend[i].len;
        p->counts[q->pend[i].part]--;
    }
    q->npend = 0;
    p->accepted = q->line_mark.accepted;
    p->rejected = q->line_mark.rejected;
    p->nerrors = q->line_mark.nerrors;
    q->errtext.len = q->line_mark.errtext_len;

    size_t col;
    if (at_end) {
        /* the line ended inside a value: point just past its last character */
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        col = len + 1;
    } else {
        col = yajl_get_bytes_consumed(q->h);
        col = col > 0 ? col : 1;
    }
    unsigned char *msg = yajl_get_error(q->h, 0, NULL, 0);
    size_t mlen = strlen((const char *)msg);
    while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == '.')) {
        mlen--;
    }
    q->ev_line = q->line;
    reject(q, "malformed JSON: %.*s at column %zu", (int)mlen, (const char *)msg, col);
    yajl_free_error(q->h, msg);
    new_handle(q, true);
}

/* A stream of objects (NDJSON, or a single object). Returns 0, or RESTART when the
 * body looked pretty-printed but is not valid JSON as a whole. */
static int run_stream(sl_parse_priv *q, const char *pos, const char *end, int64_t line);

static int run_lines(sl_parse_priv *q, const char *body, size_t len, bool multiline_ok)
{
    q->array_mode = false;
    q->base = 0;
    q->track = true;
    new_handle(q, true);
    const char *pos = body, *end = body + len;
    int64_t line = 0;
    bool seen = false;
    while (pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        const char *next = nl != NULL ? nl + 1 : end;
        q->line = ++line;
        if (blank(pos, next)) {
            pos = next;
            continue;
        }
        bool first = !seen;
        seen = true;
        line_begin(q);
        /* the line is fed with its '\n', which ends a trailing number and makes any
         * other unfinished token an error, so a complete line leaves nothing behind */
        yajl_status st = yajl_parse(q->h, (const unsigned char *)pos, (size_t)(next - pos));
        bool at_end = false;
        if (st == yajl_status_ok && q->depth > 0 && first && multiline_ok) {
            q->track = false;
            return run_stream(q, next, end, line);
        }
        if (st == yajl_status_ok && (q->depth > 0 || nl == NULL)) {
            st = yajl_complete_parse(q->h);
            at_end = true;
        }
        if (st != yajl_status_ok) {
            line_failed(q, pos, (size_t)(next - pos), at_end);
        }
        pos = next;
    }
    return 0;
}

static int run_stream(sl_parse_priv *q, const char *pos, const char *end, int64_t line)
{
    while (pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        const char *next = nl != NULL ? nl + 1 : end;
        q->line = ++line;
        if (yajl_parse(q->h, (const unsigned char *)pos, (size_t)(next - pos)) != yajl_status_ok) {
            return RESTART;
        }
        pos = next;
    }
    return yajl_complete_parse(q->h) == yajl_status_ok ? 0 : RESTART;
}

/* ---- yajl callbacks ---------------------------------------------------------------- */

/* A new top-level value (an array element or an NDJSON value) starts. */
static void begin_value(sl_parse_priv *q)
{
    q->ev_line = q->array_mode ? ++q->elem : q->line;
}

static void set_value(sl_parse_priv *q, int kind, const char *s, size_t len)
{
    value *v = &q->vals[q->cur];
    v->kind = kind;
    v->off = q->scratch.len;
    v->len = len;
    if (s != NULL) {
        sl_buf_reserve(&q->scratch, len + 1);
        memcpy(q->scratch.data + q->scratch.len, s, len);
        q->scratch.data[q->scratch.len + len] = '\0'; /* for strtod */
        q->scratch.len += len + 1;
    }
}

static int scalar(sl_parse_priv *q, int kind, const char *s, size_t len)
{
    if (q->depth == q->base + 1) {
        if (q->in_event && q->cur >= 0) {
            set_value(q, kind, s, len);
        }
    } else if (q->depth == q->base) {
        begin_value(q);
        reject(q, "event is not a JSON object");
    }
    return 1;
}

static int on_null(void *ctx)
{
    return scalar(ctx, V_NULL, NULL, 0);
}

static int on_boolean(void *ctx, int b)
{
    return scalar(ctx, V_BOOL, b ? "true" : "false", b ? 4 : 5);
}

static int on_number(void *ctx, const char *s, size_t len)
{
    return scalar(ctx, V_NUMBER, s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    return scalar(ctx, V_STRING, (const char *)s, len);
}

static int on_start_map(void *ctx)
{
    sl_parse_priv *q = ctx;
    if (q->depth == q->base) {
        begin_value(q);
        q->in_event = true;
        q->cur = -1;
        sl_buf_reset(&q->scratch);
        for (int i = 0; i < q->nslots; i++) {
            q->vals[i].kind = V_NONE;
        }
    } else if (q->depth == q->base + 1 && q->in_event && q->cur >= 0) {
        set_value(q, V_COMPOUND, NULL, 0);
    }
    q->depth++;
    return 1;
}

/* Spreads a spec's few names over the table from the length and three bytes: much
 * cheaper than hashing every byte of every key. A collision only costs a probe, and
 * unknown keys are never inserted, so a probe chain is at most MAX_SLOTS long. */
static uint32_t key_hash(const unsigned char *s, size_t len)
{
    if (len == 0) {
        return 0;
    }
    return (uint32_t)len * 31u + s[0] * 7u + s[len / 2] * 61u + s[len - 1] * 131u;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    sl_parse_priv *q = ctx;
    if (q->depth != q->base + 1 || !q->in_event) {
        return 1;
    }
    q->cur = -1;
    for (uint32_t i = key_hash(key, len) & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        int s = q->table[i] - 1;
        if (s < 0) {
            break;
        }
        if (q->slots[s].len == len && memcmp(q->slots[s].name, key, len) == 0) {
            q->cur = s;
            break;
        }
    }
    return 1;
}

static void finish_event(sl_parse_priv *q);

static int on_end_map(void *ctx)
{
    sl_parse_priv *q = ctx;
    q->depth--;
    if (q->depth == q->base && q->in_event) {
        q->in_event = false;
        finish_event(q);
    }
    return 1;
}

static int on_start_array(void *ctx)
{
    sl_parse_priv *q = ctx;
    if (q->depth == q->base) {
        begin_value(q);
        reject(q, "event is not a JSON object");
    } else if (q->depth == q->base + 1 && q->in_event && q->cur >= 0) {
        set_value(q, V_COMPOUND, NULL, 0);
    }
    /* depth < base: the body's own array */
    q->depth++;
    return 1;
}

static int on_end_array(void *ctx)
{
    sl_parse_priv *q = ctx;
    q->depth--;
    return 1;
}

/* ---- validation ---------------------------------------------------------------- */

/* Writes ms as an ISO 8601 duration ("P1D", "PT1H30M", "PT0.5S"). */
static void format_period(int64_t ms, char *buf, size_t size)
{
    int64_t d = ms / 86400000, h = ms / 3600000 % 24, m = ms / 60000 % 60, s = ms / 1000 % 60,
            f = ms % 1000;
    int n = snprintf(buf, size, "P");
    if (d > 0) {
        n += snprintf(buf + n, size - (size_t)n, "%lldD", (long long)d);
    }
    if (h > 0 || m > 0 || s > 0 || f > 0) {
        n += snprintf(buf + n, size - (size_t)n, "T");
    }
    if (h > 0) {
        n += snprintf(buf + n, size - (size_t)n, "%lldH", (long long)h);
    }
    if (m > 0) {
        n += snprintf(buf + n, size - (size_t)n, "%lldM", (long long)m);
    }
    if (f > 0) {
        snprintf(buf + n, size - (size_t)n, "%lld.%03lldS", (long long)s, (long long)f);
    } else if (s > 0) {
        snprintf(buf + n, size - (size_t)n, "%lldS", (long long)s);
    }
}

/* Copies at most 40 bytes of an offending value for a message, printable ASCII only
 * (the value may hold quotes, control characters or a cut UTF-8 sequence). */
static const char *excerpt(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = 0, lim = len > 40 ? 37 : len;
    for (size_t i = 0; i < lim && n + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    if (len > lim) {
        for (int i = 0; i < 3 && n + 1 < size; i++) {
            buf[n++] = '.';
        }
    }
    buf[n] = '\0';
    return buf;
}

/* Parses a JSON number token; integers of up to 15 digits are converted exactly
 * without strtod. The text is NUL-terminated in scratch. */
static double number_value(const char *s, size_t len)
{
    size_t i = s[0] == '-' ? 1 : 0;
    if (len - i <= 15) {
        int64_t v = 0;
        size_t j = i;
        while (j < len && s[j] >= '0' && s[j] <= '9') {
            v = v * 10 + (s[j] - '0');
            j++;
        }
        if (j == len) {
            return i == 1 ? -(double)v : (double)v;
        }
    }
    return strtod(s, NULL);
}

static void finish_event(sl_parse_priv *q)
{
    const sl_spec *spec = q->spec;
    sl_parser *p = q->out;
    const char *text = q->scratch.data;
    sl_event *ev = &q->ev;
    char tbuf[32], xbuf[48];

    /* timestamp */
    const value *v = &q->vals[q->ts_slot];
    if (v->kind == V_NONE || v->kind == V_NULL) {
        reject(q, "missing timestamp field \"%s\"", spec->ts_field);
        return;
    }
    if (v->kind != V_STRING && v->kind != V_NUMBER) {
        reject(q, "timestamp field \"%s\" must be a string or a number", spec->ts_field);
        return;
    }
    sl_err terr;
    if (sl_time_parse(text + v->off, v->len, spec->ts_format, &ev->ts_ms, &terr) != 0) {
        reject(q, "field \"%s\": %s (got \"%s\")", spec->ts_field, terr.msg,
               excerpt(text + v->off, v->len, xbuf, sizeof(xbuf)));
        return;
    }
    if (spec->late_reject_ms > 0 && ev->ts_ms < q->now_ms - spec->late_reject_ms) {
        format_period(spec->late_reject_ms, xbuf, sizeof(xbuf));
        reject(q, "timestamp %s is older than the late rejection period (%s)",
               sl_time_format(ev->ts_ms, tbuf, sizeof(tbuf)), xbuf);
        return;
    }
    if (spec->early_reject_ms > 0 && ev->ts_ms > q->now_ms + spec->early_reject_ms) {
        format_period(spec->early_reject_ms, xbuf, sizeof(xbuf));
        reject(q, "timestamp %s is further in the future than the early rejection period (%s)",
               sl_time_format(ev->ts_ms, tbuf, sizeof(tbuf)), xbuf);
        return;
    }

    /* dimensions: strings, or numbers and booleans as their JSON text */
    ev->ndims = spec->ndims;
    for (int i = 0; i < spec->ndims; i++) {
        v = &q->vals[q->dim_slot[i]];
        switch (v->kind) {
        case V_STRING:
        case V_NUMBER:
        case V_BOOL:
            if (v->len > spec->max_string_len) {
                reject(q, "dimension \"%s\" is %zu bytes, longer than max_string_length (%zu)",
                       spec->dims[i], v->len, spec->max_string_len);
                return;
            }
            ev->dims[i] = (sl_str){text + v->off, v->len};
            break;
        case V_COMPOUND:
            reject(q, "dimension \"%s\" must be a string", spec->dims[i]);
            return;
        default:
            ev->dims[i] = (sl_str){NULL, 0};
            break;
        }
    }

    /* numeric fields */
    ev->nfields = spec->nfields;
    for (int i = 0; i < spec->nfields; i++) {
        v = &q->vals[q->field_slot[i]];
        ev->has_field[i] = false;
        ev->fields[i] = 0;
        if (v->kind == V_NONE || v->kind == V_NULL) {
            continue;
        }
        if (v->kind != V_NUMBER) {
            reject(q, "field \"%s\" must be a number", spec->fields[i]);
            return;
        }
        double d = number_value(text + v->off, v->len);
        if (!isfinite(d)) {
            reject(q, "field \"%s\" must be a finite number (got %s)", spec->fields[i],
                   excerpt(text + v->off, v->len, xbuf, sizeof(xbuf)));
            return;
        }
        if (d < 0 && q->field_quantiles[i] >= 0) {
            reject(q,
                   "field \"%s\" must not be negative (got %s): the quantiles metric \"%s\" "
                   "keeps values >= 0",
                   spec->fields[i], excerpt(text + v->off, v->len, xbuf, sizeof(xbuf)),
                   spec->metrics[q->field_quantiles[i]].name);
            return;
        }
        ev->has_field[i] = true;
        ev->fields[i] = d;
    }

    /* fields of distinct metrics: the xxh64 of the value's text (a string's bytes, or a
     * number's or boolean's JSON text, as for dimensions), which is all the HLL needs;
     * the partition key, when it is the same field, reuses it */
    ev->nhashes = spec->nhfields;
    uint64_t pkey_hash = 0;
    bool have_key_hash = false;
    for (int i = 0; i < spec->nhfields; i++) {
        v = &q->vals[q->hfield_slot[i]];
        ev->has_hash[i] = false;
        ev->hashes[i] = 0;
        switch (v->kind) {
        case V_STRING:
        case V_NUMBER:
        case V_BOOL:
            ev->has_hash[i] = true;
            ev->hashes[i] = sl_hash64(text + v->off, v->len);
            if (q->hfield_slot[i] == q->pkey_slot) {
                pkey_hash = ev->hashes[i];
                have_key_hash = true;
            }
            break;
        case V_COMPOUND:
            reject(q,
                   "field \"%s\" must be a string, a number or a boolean (its distinct values "
                   "are counted)",
                   spec->hfields[i]);
            return;
        default:
            break;
        }
    }

    /* partition */
    const char *key = NULL;
    size_t klen = 0;
    if (q->pkey_slot >= 0) {
        v = &q->vals[q->pkey_slot];
        switch (v->kind) {
        case V_STRING:
        case V_NUMBER:
        case V_BOOL:
            if (v->len > spec->max_string_len) {
                reject(q, "partition key \"%s\" is %zu bytes, longer than max_string_length (%zu)",
                       spec->partition_key, v->len, spec->max_string_len);
                return;
            }
            key = text + v->off;
            klen = v->len;
            break;
        case V_COMPOUND:
            reject(q, "partition key \"%s\" must be a string", spec->partition_key);
            return;
        default:
            break;
        }
    }
    int part = have_key_hash && key != NULL
                   ? (int)(pkey_hash % (uint64_t)spec->partitions) /* = sl_partition_of */
                   : sl_partition_of(key, klen, spec->partitions);
    if (q->track) {
        if (q->npend == q->pendcap) {
            q->pendcap = q->pendcap == 0 ? 8 : q->pendcap * 2;
            q->pend = sl_realloc(q->pend, (size_t)q->pendcap * sizeof(*q->pend));
        }
        q->pend[q->npend++] = (pending){part, p->parts[part].len};
    }
    sl_events_put(&p->parts[part], ev);
    p->counts[part]++;
    p->accepted++;
}

/* Counts a rejection of the current top-level value and lists it while there is room. */
static void reject(sl_parse_priv *q, const char *fmt, ...)
{
    sl_parser *p = q->out;
    p->rejected++;
    if (p->nerrors >= q->max_errors) {
        return;
    }
    sl_buf *b = &q->errtext;
    size_t off = b->len;
    va_list ap;
    for (size_t room = 160;;) {
        sl_buf_reserve(b, room);
        va_start(ap, fmt);
        int n = vsnprintf(b->data + off, room, fmt, ap);
        va_end(ap);
        SL_ASSERT(n >= 0);
        if ((size_t)n < room) {
            b->len = off + (size_t)n + 1;
            p->errors[p->nerrors] = (sl_line_error){q->ev_line, {NULL, (size_t)n}};
            break;
        }
        room = (size_t)n + 1;
    }
    q->erroff[p->nerrors++] = off;
}

/* ---- setup ------------------------------------------------------------------------ */

static int add_slot(sl_parse_priv *q, const char *name)
{
    size_t len = strlen(name);
    uint32_t i = key_hash((const unsigned char *)name, len) & (TABLE_SIZE - 1);
    for (;; i = (i + 1) & (TABLE_SIZE - 1)) {
        int s = q->table[i] - 1;
        if (s < 0) {
            break;
        }
        if (q->slots[s].len == len && memcmp(q->slots[s].name, name, len) == 0) {
            return s;
        }
    }
    SL_ASSERT(q->nslots < MAX_SLOTS);
    int s = q->nslots++;
    q->slots[s] = (slot){name, len};
    q->table[i] = (int16_t)(s + 1);
    return s;
}

/* Builds the slot table for spec; cheap enough to do per request, which keeps the
 * parser valid whatever happens to earlier specs. */
static void bind_spec(sl_parse_priv *q, const sl_spec *spec)
{
    SL_ASSERT(spec->ndims <= SL_MAX_DIMS && spec->nfields <= SL_MAX_FIELDS &&
              spec->nhfields <= SL_MAX_FIELDS);
    q->spec = spec;
    q->nslots = 0;
    memset(q->table, 0, sizeof(q->table));
    q->ts_slot = add_slot(q, spec->ts_field);
    for (int i = 0; i < spec->ndims; i++) {
        q->dim_slot[i] = add_slot(q, spec->dims[i]);
    }
    for (int i = 0; i < spec->nfields; i++) {
        q->field_slot[i] = add_slot(q, spec->fields[i]);
        q->field_quantiles[i] = -1;
    }
    for (int m = 0; m < spec->nmetrics; m++) {
        if (spec->metrics[m].kind == SL_METRIC_QUANTILES && spec->metrics[m].field_index >= 0) {
            q->field_quantiles[spec->metrics[m].field_index] = m;
        }
    }
    for (int i = 0; i < spec->nhfields; i++) {
        q->hfield_slot[i] = add_slot(q, spec->hfields[i]);
    }
    q->pkey_slot = spec->partition_key != NULL ? add_slot(q, spec->partition_key) : -1;
}

static void reset_results(sl_parse_priv *q)
{
    sl_parser *p = q->out;
    p->accepted = 0;
    p->rejected = 0;
    p->nerrors = 0;
    for (int i = 0; i < p->nparts; i++) {
        sl_buf_reset(&p->parts[i]);
        p->counts[i] = 0;
    }
    sl_buf_reset(&q->errtext);
    q->npend = 0;
    q->elem = 0;
}

/* A fresh yajl handle and structure state (yajl has no reset). */
static void new_handle(sl_parse_priv *q, bool multiple)
{
    if (q->h != NULL) {
        yajl_free(q->h);
    }
    q->h = yajl_alloc(&callbacks, NULL, q);
    SL_ASSERT(q->h != NULL);
    if (multiple) {
        yajl_config(q->h, yajl_allow_multiple_values, 1);
    }
    q->depth = 0;
    q->in_event = false;
    q->cur = -1;
}
