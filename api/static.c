/* GET / and GET /ui/<file>: the dashboard, served from files embedded in the binary
 * at build time (web/assets.cmake generates the table), so the gateway needs no web
 * root on disk and the page works offline. Each file carries an ETag (a hash of its
 * bytes): browsers revalidate (Cache-Control: no-cache) and get 304 while the binary
 * is the same. The Content-Security-Policy lets the page load and connect to this
 * origin only: a CDN reference would fail here, in the browser test, not in the field. */
#include <string.h>

#include "dashboard.h"

static const char CSP[] = "default-src 'self'; img-src 'self' data:; style-src 'self' "
                          "'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                          "frame-ancestors 'none'";

const sl_asset *sl_asset_find(const char *path)
{
    for (const sl_asset *a = sl_assets; a->path != NULL; a++) {
        if (strcmp(a->path, path) == 0) {
            return a;
        }
    }
    return NULL;
}

/* True when an If-None-Match value lists etag (or is "*"). */
static bool etag_matches(const char *inm, const char *etag)
{
    size_t n = strlen(etag);

    if (strcmp(inm, "*") == 0) {
        return true;
    }
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += n) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (start && end) {
            return true;
        }
    }
    return false;
}

void sl_api_static_get(void *state, sl_http_req *req, sl_http_resp *resp)
{
    const char *path = sl_http_req_path(req);
    const sl_asset *a = sl_asset_find(strcmp(path, "/index.html") == 0 ? "/" : path);

    if (a == NULL) {
        sl_http_resp_error(resp, 404, "no such file: %s", path);
        return;
    }
    sl_http_resp_header(resp, "ETag", a->etag);
    sl_http_resp_header(resp, "Cache-Control", "no-cache");
    sl_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    if (strcmp(a->path, "/") == 0) {
        sl_http_resp_header(resp, "Content-Security-Policy", CSP);
    }
    const char *inm = sl_http_req_header(req, "If-None-Match");
    if (inm != NULL && etag_matches(inm, a->etag)) {
        resp->status = 304;
        resp->content_type = a->type;
        sl_buf_reset(&resp->body);
        return;
    }
    resp->status = 200;
    resp->content_type = a->type;
    sl_buf_reset(&resp->body);
    sl_buf_append(&resp->body, a->data, a->len);
}
