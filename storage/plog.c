/* Partition log (see plog.h). Plain files, write() and fdatasync(): the smallest
 * thing that gives Kafka's "acknowledged means on disk" promise, with a CRC per
 * record so a torn tail is never mistaken for data. */
#include "plog.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define HDR 16
#define MAGIC 0x31474c53u /* "SLG1" little-endian */
#define MAX_RECORD (1u << 30)

struct sl_plog {
    char *dir;
    int fd;          /* current segment */
    uint64_t seq;    /* current segment number */
    int64_t size;    /* bytes in the current segment */
    int64_t synced;  /* bytes of the current segment known durable */
    int64_t segment_bytes;
    int64_t older_bytes; /* bytes in the other segments */
    bool dir_dirty;  /* a segment was created: the directory needs an fsync */
};

struct sl_plog_reader {
    char *dir;
    int fd;
    uint64_t seq;
    int64_t pos;
};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void seg_path(const char *dir, uint64_t seq, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%020llu.seg", dir, (unsigned long long)seq);
}

static int mkdirs(const char *dir, sl_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return sl_err_set(err, -errno, "mkdir %s: %s", tmp, strerror(errno));
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted list of segment numbers in dir. */
static int list_segments(const char *dir, uint64_t **out, int *n, sl_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL && errno == ENOENT) {
        *out = NULL; /* not created yet: no segments */
        *n = 0;
        return 0;
    }
    if (d == NULL) {
        return sl_err_set(err, -errno, "opendir %s: %s", dir, strerror(errno));
    }
    uint64_t *v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l != 24 || strcmp(e->d_name + 20, ".seg") != 0) {
            continue;
        }
        if (cnt == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            v = sl_realloc(v, (size_t)cap * sizeof(*v));
        }
        v[cnt++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    if (cnt > 1) {
        qsort(v, (size_t)cnt, sizeof(*v), cmp_u64);
    }
    *out = v;
    *n = cnt;
    return 0;
}

static ssize_t read_full(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Reads the record at pos: 1 with payload filled, 0 when the rest of the file does
 * not hold a complete valid record (end, torn or corrupt), <0 on I/O error. */
static int read_record(int fd, int64_t pos, sl_buf *payload, int64_t *next, sl_err *err)
{
    unsigned char h[HDR];
    ssize_t r = read_full(fd, h, HDR, pos);
    if (r < 0) {
        return sl_err_set(err, -errno, "read log: %s", strerror(errno));
    }
    if (r < HDR || get32(h) != MAGIC) {
        return 0;
    }
    uint32_t len = get32(h + 4), crc = get32(h + 8);
    if (len > MAX_RECORD) {
        return 0;
    }
    sl_buf_reset(payload);
    sl_buf_reserve(payload, len);
    r = read_full(fd, payload->data, len, pos + HDR);
    if (r < 0) {
        return sl_err_set(err, -errno, "read log: %s", strerror(errno));
    }
    if ((uint32_t)r < len || crc32(0, (const Bytef *)payload->data, len) != crc) {
        return 0;
    }
    payload->len = len;
    *next = pos + HDR + len;
    return 1;
}

static int open_segment(sl_plog *log, uint64_t seq, bool create, sl_err *err)
{
    char path[4200];
    seg_path(log->dir, seq, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
    if (fd < 0) {
        return sl_err_set(err, errno == ENOSPC ? SL_ENOSPC : -errno, "open %s: %s", path,
                          strerror(errno));
    }
    if (log->fd >= 0) {
        close(log->fd);
    }
    log->fd = fd;
    log->seq = seq;
    if (create) {
        log->size = 0;
        log->synced = 0;
        log->dir_dirty = true;
    }
    return 0;
}

int sl_plog_open(sl_plog **out, const char *dir, int64_t segment_bytes, sl_plog_scan_cb cb,
                 void *arg, int64_t *truncated, sl_err *err)
{
    sl_plog *log = sl_calloc(1, sizeof(*log));
    log->dir = sl_strdup(dir);
    log->fd = -1;
    log->segment_bytes = segment_bytes;
    uint64_t *segs = NULL;
    int nsegs = 0, rc;
    sl_buf payload;
    sl_buf_init(&payload);
    if (truncated != NULL) {
        *truncated = 0;
    }
    if ((rc = mkdirs(dir, err)) != 0 || (rc = list_segments(dir, &segs, &nsegs, err)) != 0) {
        goto fail;
    }
    for (int i = 0; i < nsegs; i++) {
        if ((rc = open_segment(log, segs[i], false, err)) != 0) {
            goto fail;
        }
        int64_t pos = 0, next;
        while ((rc = read_record(log->fd, pos, &payload, &next, err)) == 1) {
            if (cb != NULL) {
                cb(arg, segs[i], payload.data, payload.len);
            }
            pos = next;
        }
        if (rc < 0) {
            goto fail;
        }
        struct stat stt;
        fstat(log->fd, &stt);
        if (stt.st_size > pos) {
            /* A torn or corrupt tail. Only the last segment can legitimately have one;
             * in an older one it means corruption: keep what is valid either way. */
            SL_LOG(WARN, "log_tail_truncated", "segment=%llu valid_bytes=%lld cut_bytes=%lld",
                   (unsigned long long)segs[i], (long long)pos, (long long)(stt.st_size - pos));
            if (truncated != NULL) {
                *truncated += stt.st_size - pos;
            }
            if (ftruncate(log->fd, pos) != 0 || fdatasync(log->fd) != 0) {
                rc = sl_err_set(err, -errno, "truncate log tail: %s", strerror(errno));
                goto fail;
            }
        }
        if (i < nsegs - 1) {
            log->older_bytes += pos;
        }
        log->size = pos;
        log->synced = pos;
    }
    if (nsegs == 0 && (rc = open_segment(log, 1, true, err)) != 0) {
        goto fail;
    }
    free(segs);
    sl_buf_fini(&payload);
    *out = log;
    return 0;
fail:
    free(segs);
    sl_buf_fini(&payload);
    sl_plog_close(log);
    *out = NULL;
    return rc;
}

void sl_plog_close(sl_plog *log)
{
    if (log == NULL) {
        return;
    }
    if (log->fd >= 0) {
        close(log->fd);
    }
    free(log->dir);
    free(log);
}

int sl_plog_append(sl_plog *log, const void *payload, size_t len, uint64_t *seg, sl_err *err)
{
    if (len > MAX_RECORD) {
        return sl_err_set(err, SL_ETOOBIG, "log record of %zu bytes is too large", len);
    }
    if (log->size > 0 && log->size + HDR + (int64_t)len > log->segment_bytes) {
        /* Roll: the old segment must be durable before records follow in a new one. */
        int rc = sl_plog_sync(log, err);
        if (rc != 0) {
            return rc;
        }
        log->older_bytes += log->size;
        if ((rc = open_segment(log, log->seq + 1, true, err)) != 0) {
            return rc;
        }
    }
    unsigned char h[HDR];
    put32(h, MAGIC);
    put32(h + 4, (uint32_t)len);
    put32(h + 8, (uint32_t)crc32(0, payload, (uInt)len));
    put32(h + 12, 0);
    struct iovec iov[2] = {{h, HDR}, {(void *)payload, len}};
    size_t want = HDR + len, done = 0;
    while (done < want) {
        ssize_t w = pwritev(log->fd, iov, 2, log->size + (off_t)done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            /* Cut the partial record off so the file ends on a record boundary. */
            if (ftruncate(log->fd, log->size) != 0) {
                SL_LOG(ERROR, "log_truncate_failed", "errno=%d", errno);
            }
            return sl_err_set(err, e == ENOSPC || e == EDQUOT ? SL_ENOSPC : -e,
                              "append to log: %s", strerror(e));
        }
        done += (size_t)w;
        /* Advance the iovecs past what was written. */
        size_t skip = (size_t)w;
        for (int i = 0; i < 2 && skip > 0; i++) {
            size_t take = skip < iov[i].iov_len ? skip : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            skip -= take;
        }
    }
    log->size += (int64_t)want;
    *seg = log->seq;
    return 0;
}

int sl_plog_sync(sl_plog *log, sl_err *err)
{
    if (log->synced == log->size && !log->dir_dirty) {
        return 0;
    }
    if (fdatasync(log->fd) != 0) {
        int e = errno;
        /* After a failed fsync the page cache state is unknown: cut back to the
         * last durable size so that unacknowledged records are not replayed. */
        if (ftruncate(log->fd, log->synced) == 0) {
            log->size = log->synced;
        }
        return sl_err_set(err, e == ENOSPC || e == EDQUOT ? SL_ENOSPC : -e, "fdatasync log: %s",
                          strerror(e));
    }
    if (log->dir_dirty) {
        int dfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        log->dir_dirty = false;
    }
    log->synced = log->size;
    return 0;
}

uint64_t sl_plog_current(const sl_plog *log)
{
    return log->seq;
}

int64_t sl_plog_bytes(const sl_plog *log)
{
    return log->older_bytes + log->size;
}

int sl_plog_drop_before(sl_plog *log, uint64_t before, sl_err *err)
{
    uint64_t *segs;
    int n;
    int rc = list_segments(log->dir, &segs, &n, err);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < n; i++) {
        if (segs[i] >= before || segs[i] >= log->seq) {
            break;
        }
        char path[4200];
        seg_path(log->dir, segs[i], path, sizeof(path));
        struct stat st;
        if (stat(path, &st) == 0) {
            log->older_bytes -= st.st_size;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = sl_err_set(err, -errno, "unlink %s: %s", path, strerror(errno));
            break;
        }
    }
    free(segs);
    return rc;
}

/* ---- reader -------------------------------------------------------------------------- */

int sl_plog_reader_open(sl_plog_reader **out, const char *dir, sl_err *err)
{
    sl_plog_reader *r = sl_calloc(1, sizeof(*r));
    r->dir = sl_strdup(dir);
    r->fd = -1;
    *out = r;
    return 0;
}

void sl_plog_reader_close(sl_plog_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r->dir);
    free(r);
}

/* Moves to the next segment: the oldest one at the start, else seq + 1 (segments are
 * numbered consecutively; after a drop the oldest may have moved on). 1 if it moved. */
static int reader_advance(sl_plog_reader *r, sl_err *err)
{
    char path[4200];
    if (r->fd >= 0) {
        seg_path(r->dir, r->seq + 1, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return 0;
        }
        close(r->fd);
        r->fd = fd;
        r->seq++;
        r->pos = 0;
        return 1;
    }
    uint64_t *segs;
    int n;
    int rc = list_segments(r->dir, &segs, &n, err);
    if (rc != 0) {
        return rc;
    }
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        seg_path(r->dir, segs[i], path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            r->fd = fd;
            r->seq = segs[i];
            r->pos = 0;
            found = 1;
        }
    }
    free(segs);
    return found;
}

int sl_plog_reader_next(sl_plog_reader *r, sl_buf *payload, uint64_t *seg, sl_err *err)
{
    for (;;) {
        if (r->fd < 0) {
            int rc = reader_advance(r, err);
            if (rc <= 0) {
                return rc;
            }
        }
        int64_t next;
        int rc = read_record(r->fd, r->pos, payload, &next, err);
        if (rc != 0) {
            if (rc == 1) {
                r->pos = next;
                *seg = r->seq;
            }
            return rc;
        }
        /* Nothing complete here: a newer segment means this one is finished. */
        uint64_t cur = r->seq;
        rc = reader_advance(r, err);
        if (rc <= 0 || r->seq == cur) {
            return rc < 0 ? rc : 0;
        }
    }
}
