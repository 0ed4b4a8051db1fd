/* HTTP requests over libcurl (see httpc.h). libcurl's errors become SL_E* codes here,
 * once. CURLOPT_NOSIGNAL: the timeouts must not use SIGALRM in a threaded process. */
#include "httpc.h"

#include <curl/curl.h>
#include <string.h>

int sl_httpc_init(sl_err *err)
{
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c != CURLE_OK) {
        return sl_err_set(err, SL_EIO, "libcurl init: %s", curl_easy_strerror(c));
    }
    return 0;
}

void sl_httpc_fini(void)
{
    curl_global_cleanup();
}

/* libcurl's progress callback: non-zero aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const atomic_bool *cancel = arg;
    return atomic_load(cancel) ? 1 : 0;
}

typedef struct sink {
    sl_buf *out;
    size_t max;
    size_t got;
    int too_big;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;
    s->got += len;
    if (s->got > s->max) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->out != NULL) {
        sl_buf_append(s->out, p, len);
    }
    return len;
}

int sl_httpc_request(const char *method, const char *url, const char *content_type,
                     const void *body, size_t len, int64_t timeout_ms, size_t max_resp,
                     const atomic_bool *cancel, int *status, sl_buf *resp, sl_err *err)
{
    CURL *h = curl_easy_init();
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    sink s = {.out = resp, .max = max_resp};
    int rc = 0;
    if (h == NULL) {
        return sl_err_set(err, SL_EIO, "%s %s: libcurl cannot make a handle", method, url);
    }
    if (resp != NULL) {
        sl_buf_reset(resp);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-alerter");
    if (cancel != NULL) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    headers = curl_slist_append(headers, "Expect:");
    if (body != NULL) {
        char ct[200];
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode c = curl_easy_perform(h);
    if (c == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        *status = (int)code;
    } else {
        const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c);
        int code;
        switch (c) {
        case CURLE_OPERATION_TIMEDOUT:
            code = SL_ETIMEDOUT;
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
            code = SL_EUNAVAIL;
            break;
        case CURLE_ABORTED_BY_CALLBACK:
            code = SL_ECLOSED;
            why = "cancelled: the alerter is stopping";
            break;
        case CURLE_WRITE_ERROR:
            code = s.too_big ? SL_ETOOBIG : SL_EIO;
            why = s.too_big ? "reply too large" : why;
            break;
        default:
            code = SL_EIO;
            break;
        }
        rc = sl_err_set(err, code, "%s %s: %s", method, url, why);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}
