/* A minimal blocking HTTP/1.1 client for the api/ unit tests: sends raw request
 * bytes to 127.0.0.1 and parses one reply (status, headers, Content-Length body).
 * Every read has a receive timeout, so a server that never answers fails the test
 * instead of hanging it. Test-only: static functions, included by the tests. */
#ifndef SL_TESTHTTP_H
#define SL_TESTHTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct th_reply {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    char *body;      /* NUL-terminated, malloc'd */
    size_t body_len;
} th_reply;

static int th_connect(int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {.tv_sec = 20};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends n bytes; false when the peer closed or the send failed (a server may close
 * the connection while an oversize upload is still being sent). */
static bool th_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return false;
        }
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Value of header name in r->head (copied into buf), or NULL. */
static const char *th_header(const th_reply *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p != NULL && p[2] != '\0') {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') {
                v++;
            }
            const char *e = strstr(v, "\r\n");
            size_t l = e != NULL ? (size_t)(e - v) : strlen(v);
            if (l >= size) {
                l = size - 1;
            }
            memcpy(buf, v, l);
            buf[l] = '\0';
            return buf;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Reads one reply from fd. Returns 0, or -1 when the connection closed or timed out
 * before a complete reply. head_only: the request was HEAD (no body follows). */
static int th_read(int fd, th_reply *r, bool head_only)
{
    size_t n = 0;
    char hdr[64];

    memset(r, 0, sizeof(*r));
    /* Byte by byte up to the blank line, so a pipelined next reply is not eaten. */
    while (n + 1 < sizeof(r->head)) {
        ssize_t got = recv(fd, r->head + n, 1, 0);
        if (got <= 0) {
            return -1;
        }
        n++;
        r->head[n] = '\0';
        if (n >= 4 && memcmp(r->head + n - 4, "\r\n\r\n", 4) == 0) {
            break;
        }
    }
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) {
        return -1;
    }
    size_t len = 0;
    if (th_header(r, "Content-Length", hdr, sizeof(hdr)) != NULL) {
        len = (size_t)strtoull(hdr, NULL, 10);
    }
    if (head_only) {
        len = 0;
    }
    r->body = malloc(len + 1);
    r->body_len = len;
    size_t have = 0;
    while (have < len) {
        ssize_t got = recv(fd, r->body + have, len - have, 0);
        if (got <= 0) {
            return -1;
        }
        have += (size_t)got;
    }
    r->body[len] = '\0';
    return 0;
}

static void th_reply_fini(th_reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* One request on a new connection; req is the raw request text (headers and body),
 * body/blen an optional binary body appended after it. */
static int th_request(int port, const char *req, const void *body, size_t blen, th_reply *r)
{
    int fd = th_connect(port);
    if (fd < 0) {
        return -1;
    }
    bool ok = th_send(fd, req, strlen(req));
    if (ok && blen > 0) {
        th_send(fd, body, blen); /* may fail if the server replied early and closed */
    }
    int rc = th_read(fd, r, strncmp(req, "HEAD ", 5) == 0);
    close(fd);
    return rc;
}

/* POST helper: builds the request with Content-Length and extra header lines
 * (each ending in \r\n, or ""). */
static int th_post(int port, const char *path, const char *headers, const void *body, size_t blen,
                   th_reply *r)
{
    char req[2048];
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
             "Content-Length: %zu\r\n\r\n",
             path, headers, blen);
    return th_request(port, req, body, blen, r);
}

static int th_get(int port, const char *path, th_reply *r)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    return th_request(port, req, NULL, 0, r);
}

#endif
