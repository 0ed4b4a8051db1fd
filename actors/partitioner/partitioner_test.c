/* The partitioner's Kafka source high waters: duplicates, overlaps and appends of
 * APPENDs that name a source, and that the high water survives a restart, both from
 * the log and (once the log segments holding it are dropped) from the sources table.
 *
 * The real actor runs on a thread with a temp data dir; the test talks to it over its
 * socket like ingest does, and stops it with SIGTERM (its signalfd). */
#include "sl_test.h"

#include "actor.h"
#include "config.h"
#include "msg.h"
#include "sock.h"
#include "store.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_partitioner_run(sl_actor *a, sl_err *err);

typedef struct fixture {
    char dir[256];
    sl_config *cfg;
    sl_loop *loop;
    sl_actor actor;
    pthread_t thread;
    sl_sock *req;
    int64_t next; /* the next log offset of partition 0 (one partition) */
} fixture;

static void *run(void *arg)
{
    fixture *f = arg;
    sl_err err = {0};
    int rc = sl_partitioner_run(&f->actor, &err);
    if (rc != 0) {
        fprintf(stderr, "partitioner: %s\n", err.msg);
    }
    return NULL;
}

static void start(fixture *f)
{
    sl_err err = {0};
    assert_int_equal(sl_loop_new(&f->loop, &err), 0); /* blocks SIGTERM in this thread */
    f->actor = (sl_actor){.cfg = f->cfg, .kind = SL_ACTOR_PARTITIONER, .loop = f->loop};
    assert_int_equal(pthread_create(&f->thread, NULL, run, f), 0);
    char addr[512];
    sl_config_addr(f->cfg, SL_ADDR_PARTITIONER, NULL, 0, addr, sizeof(addr));
    assert_int_equal(sl_sock_open(&f->req, SL_SOCK_REQ, &err), 0);
    assert_int_equal(sl_sock_dial(f->req, addr, &err), 0);
    /* dials are asynchronous: wait (with a deadline) for the connection */
    struct timespec nap = {0, 5 * 1000000};
    for (int i = 0; i < 2000 && sl_sock_peers(f->req) == 0; i++) {
        nanosleep(&nap, NULL);
    }
    assert_int_equal(sl_sock_peers(f->req), 1);
}

static void stop(fixture *f)
{
    sl_sock_close(f->req);
    f->req = NULL;
    kill(getpid(), SIGTERM); /* blocked in every thread: the loop's signalfd takes it */
    pthread_join(f->thread, NULL);
    sl_loop_free(f->loop);
    f->loop = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl-partitioner-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/ev.json", f->dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"name\":\"ev\",\"dimensions\":[\"d\"],\"partitions\":{\"count\":1}}", fp);
    fclose(fp);
    /* max_backlog_mb 1: 128 KiB log segments, so a few appends roll them */
    snprintf(path, sizeof(path), "%s/sluice.json", f->dir);
    fp = fopen(path, "w");
    fputs("{\"datasources\":[\"ev.json\"],\"log\":{\"max_backlog_mb\":1}}", fp);
    fclose(fp);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    sl_err err = {0};
    if (sl_config_load(path, data, "127.0.0.1:1", &f->cfg, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stop(f);
    sl_config_free(f->cfg);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Sends an APPEND of `events` events (each padded to `pad` bytes) from topic's
 * partition 0, offsets first..last; returns the reply's status, *dup and *hw. */
static int append(fixture *f, const char *topic, int64_t first, int64_t last, int events, int pad,
                  bool *dup, int64_t *hw)
{
    sl_buf blob, out;
    sl_buf_init(&blob);
    sl_buf_init(&out);
    char *text = malloc((size_t)pad + 1);
    memset(text, 'x', (size_t)pad);
    text[pad] = '\0';
    for (int i = 0; i < events; i++) {
        sl_event ev = {.ts_ms = 1749636000000 + i, .ndims = 1, .dims = {{text, (size_t)pad}}};
        sl_events_put(&blob, &ev);
    }
    sl_log_part part = {.partition = 0, .count = events, .events = {blob.data, blob.len}};
    sl_log_record r = {.ds = {"ev", 2},
                       .nparts = events > 0 ? 1 : 0,
                       .parts = &part,
                       .source = {{topic, strlen(topic)}, 0, first, last}};
    sl_log_record_encode(&out, SL_MSG_APPEND_REQ, &r);
    sl_msg *reply = NULL;
    sl_err err = {0};
    assert_int_equal(sl_sock_request(f->req, out.data, out.len, 10000, &reply, &err), 0);
    sl_append_rep rep;
    assert_int_equal(sl_append_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, &err), 0);
    *dup = rep.duplicate;
    *hw = rep.source_hw;
    if (rep.status == 0 && !rep.duplicate) {
        f->next += events;
    }
    sl_msg_free(reply);
    free(text);
    sl_buf_fini(&blob);
    sl_buf_fini(&out);
    return rep.status;
}

#define APPENDED(f, t, a, b, n)                                                                    \
    do {                                                                                           \
        bool d_;                                                                                   \
        int64_t h_;                                                                                \
        assert_int_equal(append(f, t, a, b, n, 100, &d_, &h_), 0);                                 \
        assert_false(d_);                                                                          \
    } while (0)
#define DUPLICATE(f, t, a, b)                                                                      \
    do {                                                                                           \
        bool d_;                                                                                   \
        int64_t h_;                                                                                \
        assert_int_equal(append(f, t, a, b, 1, 8, &d_, &h_), 0);                                   \
        assert_true(d_);                                                                           \
    } while (0)
#define OVERLAP(f, t, a, b, hw)                                                                    \
    do {                                                                                           \
        bool d_;                                                                                   \
        int64_t h_;                                                                                \
        assert_int_equal(append(f, t, a, b, 1, 8, &d_, &h_), SL_APPEND_OVERLAP);                   \
        assert_int_equal(h_, hw);                                                                  \
    } while (0)

static void test_source_high_water(void **state)
{
    fixture *f = *state;
    APPENDED(f, "t", 0, 99, 100);
    DUPLICATE(f, "t", 0, 99);
    DUPLICATE(f, "t", 10, 20);
    OVERLAP(f, "t", 50, 149, 99);
    APPENDED(f, "t", 100, 149, 50);
    DUPLICATE(f, "t", 149, 149);
    APPENDED(f, "u", 0, 9, 10);    /* another topic: its own high water */
    APPENDED(f, "t", 200, 210, 5); /* a gap (compaction, markers) is fine */
    APPENDED(f, "t", 211, 220, 0); /* every message rejected: no events, hw still moves */
    DUPLICATE(f, "t", 215, 220);
    OVERLAP(f, "t", 215, 230, 220);
    /* Rebuilt from the log on restart. */
    stop(f);
    start(f);
    DUPLICATE(f, "t", 0, 220);
    OVERLAP(f, "t", 100, 300, 220);
    DUPLICATE(f, "u", 9, 9);
    APPENDED(f, "u", 10, 19, 10);
    /* A record without a source still appends (HTTP ingest). */
    sl_buf out;
    sl_buf_init(&out);
    sl_log_record r = {.ds = {"ev", 2}};
    sl_log_record_encode(&out, SL_MSG_APPEND_REQ, &r);
    sl_msg *reply = NULL;
    sl_append_rep rep;
    assert_int_equal(sl_sock_request(f->req, out.data, out.len, 10000, &reply, NULL), 0);
    assert_int_equal(sl_append_rep_decode(sl_msg_data(reply), sl_msg_len(reply), &rep, NULL), 0);
    assert_int_equal(rep.status, 0);
    assert_false(rep.duplicate);
    sl_msg_free(reply);
    sl_buf_fini(&out);
}

static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += strstr(e->d_name, ".seg") != NULL;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Once the storer has committed past them, the segments holding a source's records
 * are dropped; its high water must survive that, and a restart. */
static void test_high_water_outlives_segments(void **state)
{
    fixture *f = *state;
    APPENDED(f, "t", 0, 999, 1000); /* ~115 KiB a call: segments roll at 128 KiB */
    for (int i = 0; i < 8; i++) {
        APPENDED(f, "other", i * 1000, i * 1000 + 999, 1000);
    }
    char wal[400], seg[400];
    snprintf(wal, sizeof(wal), "%s/wal", f->cfg->data_dir);
    int before = count_segments(wal);
    assert_true(before >= 3);
    /* Play the storer: everything is committed (while the partitioner is stopped: one
     * LMDB environment per file and process). */
    stop(f);
    snprintf(seg, sizeof(seg), "%s/segments", f->cfg->data_dir);
    sl_store *st;
    sl_store_txn *t;
    sl_err err = {0};
    assert_int_equal(sl_store_open(&st, seg, false, 16, 64, &err), 0);
    assert_int_equal(sl_store_begin(st, &t, &err), 0);
    assert_int_equal(sl_store_set_offset(t, "ev", 0, f->next, &err), 0);
    assert_int_equal(sl_store_commit(t, &err), 0);
    sl_store_close(st);
    start(f);
    /* The partitioner drops the committed segments within its 250 ms maintenance. */
    struct timespec t0, now, nap = {0, 20 * 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left = before;
    do {
        nanosleep(&nap, NULL);
        left = count_segments(wal);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (left > 1 && now.tv_sec - t0.tv_sec < 10);
    assert_int_equal(left, 1);
    stop(f);
    start(f);
    DUPLICATE(f, "t", 0, 999);
    OVERLAP(f, "t", 500, 1500, 999);
    DUPLICATE(f, "other", 7000, 7999);
    APPENDED(f, "t", 1000, 1009, 10);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_source_high_water, setup, teardown),
    cmocka_unit_test_setup_teardown(test_high_water_outlives_segments, setup, teardown),
};

SL_TEST_MAIN(tests)
