/* Request bodies shared by the POST endpoints: Content-Encoding (identity or gzip)
 * and the empty-body check, so every endpoint refuses the same things the same way. */
#include <strings.h>

#include "api.h"
#include "gzip.h"

int sl_api_encoding(sl_http_req *req, sl_http_resp *resp)
{
    const char *enc = sl_http_req_header(req, "Content-Encoding");

    if (enc == NULL || enc[0] == '\0' || strcasecmp(enc, "identity") == 0) {
        return 0;
    }
    if (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0) {
        return 1;
    }
    sl_http_resp_error(
        resp, 415, "unsupported Content-Encoding \"%s\": send gzip or no Content-Encoding", enc);
    return -1;
}

bool sl_api_body(sl_http_req *req, sl_http_resp *resp, size_t max_body, sl_buf *scratch,
                 const char **body, size_t *len)
{
    sl_err err;
    const char *raw;
    size_t n;

    int enc = sl_api_encoding(req, resp);
    if (enc < 0) {
        return false;
    }
    raw = sl_http_req_body(req, &n);
    if (n == 0) {
        sl_http_resp_error(resp, 400, "empty body");
        return false;
    }
    if (enc == 0) {
        *body = raw;
        *len = n;
        return true;
    }
    /* The decompressed copy may take up to max_body: reserve that much first, then give
     * back what it did not take. */
    if (!sl_http_req_reserve(req, max_body)) {
        sl_http_resp_busy(resp, req, "a decompressed request body (reserved at its limit)",
                          max_body);
        return false;
    }
    sl_buf_reset(scratch);
    int rc = sl_gzip_inflate(raw, n, max_body, scratch, &err);
    sl_http_req_unreserve(req, scratch->cap < max_body ? max_body - scratch->cap : 0);
    if (rc == SL_ETOOBIG) {
        sl_http_resp_error(resp, 413, "%s", err.msg);
        return false;
    }
    if (rc < 0) {
        sl_http_resp_error(resp, rc == SL_EPARSE ? 400 : 500, "%s", err.msg);
        return false;
    }
    if (scratch->len == 0) {
        sl_http_resp_error(resp, 400, "empty body (after gzip decompression)");
        return false;
    }
    *body = scratch->data;
    *len = scratch->len;
    return true;
}
