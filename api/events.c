/* POST /v1/events?datasource=NAME: event ingestion. The gateway checks what it can
 * without the body (datasource parameter and existence, content type, encoding),
 * inflates gzip, and forwards the body as one INGEST_REQ to an ingest process, which
 * parses and validates the events; its reply becomes the HTTP status:
 *
 *   0             -> 200 {"accepted":N,"rejected":M,"errors":[{"line":L,"reason":".."}]}
 *   SL_ENOTFOUND  -> 404    SL_EPARSE -> 400    SL_ETOOBIG -> 413
 *   SL_EBUSY      -> 429 + Retry-After: 1
 *   SL_ENOSPC     -> 507 + Retry-After: 5 (disk or LMDB map full; nothing accepted)
 *   SL_EUNAVAIL, no ingest process, no reply in time -> 503 + Retry-After: 1
 *
 * Idempotency: the client's Idempotency-Key header travels with the body; a retry
 * with the same key is acknowledged again (200, "duplicate": true) and not counted
 * twice. A request without one gets a key made here, private to this request ("\0"
 * first, which no header can hold): NNG resends a request whose peer died, and the
 * partitioner must recognise that resend as the same request. */
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>
#include <string.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "msg.h"

/* Content types an event body may come with (beacons send text/plain). */
static const char *const event_types[] = {"application/json", "application/x-ndjson", "text/plain",
                                          NULL};

/* Puts the datasource parameter into ds, or sets the reply (400 / 404). */
static bool find_datasource(const sl_api *api, sl_http_req *req, sl_http_resp *resp, sl_buf *ds)
{
    sl_err err;
    int rc = sl_http_query_get(sl_http_req_query(req), "datasource", ds, &err);

    if (rc < 0) {
        sl_http_resp_error(resp, 400, "%s", err.msg);
        return false;
    }
    if (rc == 0 || ds->len == 0) {
        sl_http_resp_error(resp, 400,
                           "missing datasource parameter: POST /v1/events?datasource=NAME");
        return false;
    }
    if (sl_config_find(api->cfg, ds->data) == NULL) {
        sl_http_resp_error(resp, 404, "unknown datasource \"%s\"", ds->data);
        return false;
    }
    return true;
}

void sl_api_events_check(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    const char *ctype = sl_http_req_header(req, "Content-Type");
    sl_buf ds;
    sl_err err;
    char media[128];

    sl_buf_init(&ds);
    if (!find_datasource(api, req, resp, &ds)) {
        goto out;
    }
    if (ctype != NULL && ctype[0] != '\0') {
        if (sl_http_media_type(ctype, media, sizeof(media), &err) < 0) {
            sl_http_resp_error(resp, 415, "%s", err.msg);
            goto out;
        }
        bool ok = false;
        for (int i = 0; event_types[i] != NULL; i++) {
            ok = ok || strcmp(media, event_types[i]) == 0;
        }
        if (!ok) {
            /* curl -d sends form encoding unless told otherwise: say so. */
            bool form = strcmp(media, "application/x-www-form-urlencoded") == 0;
            sl_http_resp_error(resp, 415,
                               "unsupported Content-Type \"%s\": send application/json, "
                               "application/x-ndjson or text/plain%s",
                               media,
                               form ? " (curl -d sends form data: add -H 'Content-Type: "
                                      "application/json')"
                                    : "");
            goto out;
        }
    }
    sl_api_encoding(req, resp);
out:
    sl_buf_fini(&ds);
}

/* Maps a non-zero ingest status to the reply. */
static void ingest_error(sl_http_resp *resp, const sl_ingest_rep *rep, const char *ds)
{
    int len = (int)rep->error.len;
    const char *msg = rep->error.p != NULL ? rep->error.p : "";

    switch (rep->status) {
    case SL_ENOTFOUND:
        sl_http_resp_error(resp, 404, "unknown datasource \"%s\"", ds);
        break;
    case SL_EPARSE:
        sl_http_resp_error(resp, 400, "%.*s", len, msg);
        break;
    case SL_ETOOBIG:
        sl_http_resp_error(resp, 413, "%.*s", len, msg);
        break;
    case SL_EBUSY:
        sl_http_resp_error(resp, 429, "ingest is busy, retry later: %.*s", len, msg);
        sl_http_resp_header(resp, "Retry-After", "1");
        break;
    case SL_ENOSPC:
        sl_http_resp_error(resp, 507, "insufficient storage, nothing was accepted: %.*s", len, msg);
        sl_http_resp_header(resp, "Retry-After", "5");
        break;
    case SL_EUNAVAIL:
    case SL_ETIMEDOUT:
        sl_http_resp_error(resp, 503, "ingest unavailable: %.*s", len, msg);
        sl_http_resp_header(resp, "Retry-After", "1");
        break;
    default:
        sl_http_resp_error(resp, 500, "ingest failed (%s): %.*s", sl_err_name(rep->status), len,
                           msg);
        break;
    }
}

static void ingest_accepted(sl_http_resp *resp, const sl_ingest_rep *rep)
{
    resp->status = 200;
    sl_buf_reset(&resp->body);
    sl_json_raw(&resp->body, "{\"accepted\":%lld,\"rejected\":%lld,\"errors\":[",
                (long long)rep->accepted, (long long)rep->rejected);
    for (int i = 0; i < rep->nerrors; i++) {
        sl_json_raw(&resp->body, "%s{\"line\":%lld,\"reason\":", i > 0 ? "," : "",
                    (long long)rep->errors[i].line);
        sl_json_str(&resp->body, rep->errors[i].reason.p, rep->errors[i].reason.len);
        sl_json_raw(&resp->body, "}");
    }
    sl_json_raw(&resp->body, "]%s}", rep->duplicate ? ",\"duplicate\":true" : "");
}

/* A key no client can send: NUL, then 16 random bytes from a per-process seed and a
 * counter (unique per gateway process and request). */
static size_t private_key(char *buf)
{
    static uint64_t seed[2];
    static atomic_uint_fast64_t counter;
    static atomic_int seeded;
    if (!atomic_load(&seeded)) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed)) {
            seed[0] = (uint64_t)getpid() << 32 ^ (uint64_t)sl_now_ms();
            seed[1] = (uint64_t)sl_mono_ns();
        }
        if (fd >= 0) {
            close(fd);
        }
        atomic_store(&seeded, 1);
    }
    uint64_t n = atomic_fetch_add(&counter, 1);
    buf[0] = '\0';
    memcpy(buf + 1, &seed[0], 8);
    uint64_t x = seed[1] ^ n;
    memcpy(buf + 9, &x, 8);
    return 17;
}

void sl_api_events_post(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const sl_api *api = state;
    sl_buf ds, inflated, msg;
    sl_msg *reply = NULL;
    sl_ingest_rep rep;
    bool have_rep = false;
    sl_err err;
    const char *body;
    size_t len;

    sl_buf_init(&ds);
    sl_buf_init(&inflated);
    sl_buf_init(&msg);
    memset(&rep, 0, sizeof(rep));
    /* The check ran on the headers; the datasource lookup is repeated for its value. */
    if (!find_datasource(api, req, resp, &ds)) {
        goto out;
    }
    if (!sl_api_body(req, resp, (size_t)api->cfg->max_body_bytes, &inflated, &body, &len)) {
        goto out;
    }
    sl_ingest_req m = {.ds = {ds.data, ds.len}, .body = {body, len}};
    char keybuf[24];
    const char *key = sl_http_req_header(req, "Idempotency-Key");
    if (key != NULL && key[0] != '\0') {
        if (strlen(key) > 256) {
            sl_http_resp_error(resp, 400, "Idempotency-Key is longer than 256 bytes");
            goto out;
        }
        m.key = (sl_str){key, strlen(key)};
    } else {
        m.key = (sl_str){keybuf, private_key(keybuf)};
    }
    sl_ingest_req_encode(&msg, &m);
    int rc = sl_sock_request(api->ingest, msg.data, msg.len, api->timeout_ms, &reply, &err);
    if (rc == SL_EUNAVAIL) {
        sl_http_resp_error(resp, 503, "ingest unavailable: no ingest process is connected");
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    if (rc == SL_ETIMEDOUT) {
        sl_http_resp_error(resp, 503, "ingest unavailable: no reply within %d ms", api->timeout_ms);
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    if (rc < 0) {
        sl_http_resp_error(resp, 503, "ingest unavailable: %s", err.msg);
        sl_http_resp_header(resp, "Retry-After", "1");
        goto out;
    }
    if (sl_ingest_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, &err) < 0) {
        SL_LOG_RATE(ERROR, 1000, "ingest_bad_reply", "error=\"%s\"", err.msg);
        sl_http_resp_error(resp, 502, "bad reply from ingest: %s", err.msg);
        goto out;
    }
    have_rep = true;
    if (rep.status != 0) {
        ingest_error(resp, &rep, ds.data);
        goto out;
    }
    ingest_accepted(resp, &rep);
out:
    if (have_rep) {
        sl_ingest_rep_fini(&rep);
    }
    sl_msg_free(reply);
    sl_buf_fini(&msg);
    sl_buf_fini(&inflated);
    sl_buf_fini(&ds);
}
