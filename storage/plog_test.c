/* Partition log: records survive reopen, a torn or corrupt tail is cut off (never
 * read as data), segments roll and are dropped, readers follow the writer. */
#include "sl_test.h"

#include "plog.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir(void)
{
    char *d = strdup("/tmp/sl-plog-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(d);
}

typedef struct scan {
    int n;
    char last[64];
    uint64_t segs[4096];
} scan;

static void on_record(void *arg, uint64_t seg, const void *p, size_t len)
{
    scan *s = arg;
    char want[64];
    snprintf(want, sizeof(want), "record-%d", s->n);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
    snprintf(s->last, sizeof(s->last), "%.*s", (int)len, (const char *)p);
    s->segs[s->n++] = seg;
}

static void append_n(sl_plog *log, int from, int n)
{
    char rec[64];
    for (int i = from; i < from + n; i++) {
        uint64_t seg;
        snprintf(rec, sizeof(rec), "record-%d", i);
        assert_int_equal(sl_plog_append(log, rec, strlen(rec), &seg, NULL), 0);
    }
    assert_int_equal(sl_plog_sync(log, NULL), 0);
}

static void test_reopen_keeps_records(void **state)
{
    char *dir = tmpdir();
    sl_plog *log;
    scan s = {0};
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, NULL, NULL), 0);
    assert_int_equal(s.n, 0);
    append_n(log, 0, 1000);
    sl_plog_close(log);
    int64_t cut;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, &cut, NULL), 0);
    assert_int_equal(s.n, 1000);
    assert_int_equal(cut, 0);
    append_n(log, 1000, 10);
    sl_plog_close(log);
    s.n = 0;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, NULL, NULL), 0);
    assert_int_equal(s.n, 1010);
    sl_plog_close(log);
    rm_rf(dir);
}

static void test_torn_tail_is_truncated(void **state)
{
    char *dir = tmpdir();
    sl_plog *log;
    scan s = {0};
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, NULL, NULL, NULL, NULL), 0);
    append_n(log, 0, 100);
    sl_plog_close(log);
    char path[512];
    snprintf(path, sizeof(path), "%s/%020d.seg", dir, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* Power loss mid-append: the last record is cut in the middle of its payload. */
    assert_int_equal(truncate(path, st.st_size - 3), 0);
    int64_t cut;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, &cut, NULL), 0);
    assert_int_equal(s.n, 99);
    assert_string_equal(s.last, "record-98");
    assert_true(cut > 0);
    /* Appending after recovery continues cleanly. */
    s.n = 99;
    append_n(log, 99, 1);
    sl_plog_close(log);
    s.n = 0;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, &cut, NULL), 0);
    assert_int_equal(s.n, 100);
    assert_int_equal(cut, 0);
    sl_plog_close(log);

    /* A corrupt tail (garbage, or a flipped byte in the last record) is cut as well. */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SLG1garbage-garbage", 19), 19);
    close(fd);
    s.n = 0;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, &cut, NULL), 0);
    assert_int_equal(s.n, 100);
    assert_int_equal(cut, 19);
    sl_plog_close(log);
    assert_int_equal(stat(path, &st), 0);
    fd = open(path, O_RDWR);
    char c;
    assert_int_equal(pread(fd, &c, 1, st.st_size - 1), 1);
    c ^= 0x55;
    assert_int_equal(pwrite(fd, &c, 1, st.st_size - 1), 1);
    close(fd);
    s.n = 0;
    assert_int_equal(sl_plog_open(&log, dir, 1 << 20, on_record, &s, &cut, NULL), 0);
    assert_int_equal(s.n, 99);
    sl_plog_close(log);
    rm_rf(dir);
}

static void test_segments_roll_and_drop(void **state)
{
    char *dir = tmpdir();
    sl_plog *log;
    scan s = {0};
    /* Tiny segments: about 10 records each. */
    assert_int_equal(sl_plog_open(&log, dir, 260, NULL, NULL, NULL, NULL), 0);
    append_n(log, 0, 100);
    assert_true(sl_plog_current(log) >= 9);
    uint64_t cur = sl_plog_current(log);
    sl_plog_close(log);
    assert_int_equal(sl_plog_open(&log, dir, 260, on_record, &s, NULL, NULL), 0);
    assert_int_equal(s.n, 100);
    assert_int_equal(s.segs[0], 1);
    assert_int_equal(s.segs[99], cur);
    /* Drop everything before the segment of record 50. */
    uint64_t keep = s.segs[50];
    int first_kept = 0;
    while (s.segs[first_kept] < keep) {
        first_kept++;
    }
    int64_t before = sl_plog_bytes(log);
    assert_int_equal(sl_plog_drop_before(log, keep, NULL), 0);
    assert_true(sl_plog_bytes(log) < before);
    sl_plog_close(log);
    sl_plog_reader *r;
    sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_plog_reader_open(&r, dir, NULL), 0);
    uint64_t seg;
    int n = 0;
    while (sl_plog_reader_next(r, &b, &seg, NULL) == 1) {
        char want[64];
        snprintf(want, sizeof(want), "record-%d", first_kept + n);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        n++;
    }
    assert_int_equal(n, 100 - first_kept);
    sl_plog_reader_close(r);
    sl_buf_fini(&b);
    rm_rf(dir);
}

static void test_reader_follows_writer(void **state)
{
    char *dir = tmpdir();
    sl_plog *log;
    assert_int_equal(sl_plog_open(&log, dir, 300, NULL, NULL, NULL, NULL), 0);
    sl_plog_reader *r;
    sl_buf b;
    sl_buf_init(&b);
    uint64_t seg;
    assert_int_equal(sl_plog_reader_open(&r, dir, NULL), 0);
    assert_int_equal(sl_plog_reader_next(r, &b, &seg, NULL), 0);
    int n = 0;
    for (int round = 0; round < 20; round++) {
        append_n(log, round * 7, 7);
        while (sl_plog_reader_next(r, &b, &seg, NULL) == 1) {
            char want[64];
            snprintf(want, sizeof(want), "record-%d", n);
            assert_int_equal(b.len, strlen(want));
            assert_memory_equal(b.data, want, b.len);
            n++;
        }
        assert_int_equal(n, (round + 1) * 7);
    }
    /* A half-written record at the end reads as "nothing yet", not as data. */
    char path[512];
    snprintf(path, sizeof(path), "%s/%020llu.seg", dir, (unsigned long long)sl_plog_current(log));
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "SLG1\x05\x00\x00\x00", 8), 8);
    close(fd);
    assert_int_equal(sl_plog_reader_next(r, &b, &seg, NULL), 0);
    sl_plog_reader_close(r);
    sl_plog_close(log);
    sl_buf_fini(&b);
    rm_rf(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reopen_keeps_records),
    cmocka_unit_test(test_torn_tail_is_truncated),
    cmocka_unit_test(test_segments_roll_and_drop),
    cmocka_unit_test(test_reader_follows_writer),
};

SL_TEST_MAIN(tests)
