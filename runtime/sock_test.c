/* Unit tests for runtime/sock.c: requests and the wait for a peer. Sockets are ipc://
 * in a temporary directory; the REP side runs on a thread. */
#include "sl_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sock.h"

typedef struct server {
    char url[256];
    int delay_ms; /* listen only after this long */
    int served;
    atomic_int done; /* set by the client once it has the reply */
} server;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Listens after delay_ms, answers one request with its body reversed, and closes once
 * the client has the reply (closing right after the send could reset the connection
 * before the reply left). */
static void *serve_one(void *arg)
{
    server *sv = arg;
    sl_err err = {0};
    sl_sock *rep = NULL;
    sl_msg *req = NULL;
    sleep_ms(sv->delay_ms);
    if (sl_sock_open(&rep, SL_SOCK_REP, &err) != 0 || sl_sock_listen(rep, sv->url, &err) != 0 ||
        sl_sock_recv(rep, &req, false, &err) != 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        goto out;
    }
    size_t n = sl_msg_len(req);
    char buf[64];
    assert_true(n < sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        buf[i] = ((const char *)sl_msg_data(req))[n - 1 - i];
    }
    if (sl_sock_send(rep, buf, n, false, &err) == 0) {
        sv->served = 1;
        while (!atomic_load(&sv->done)) {
            sleep_ms(1);
        }
    }
out:
    sl_msg_free(req);
    sl_sock_close(rep);
    return NULL;
}

static void tmp_url(char *url, size_t size, const char *name)
{
    char dir[] = "/tmp/sl-sock-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(url, size, "ipc://%s/%s.ipc", dir, name);
}

/* A request made before its peer listens waits for the peer (it starts 150 ms later,
 * within SL_SOCK_PEER_WAIT_MS) instead of failing with "no peer connected". */
static void request_waits_for_late_peer(void **state)
{
    (void)state;
    server sv = {.delay_ms = 150};
    tmp_url(sv.url, sizeof(sv.url), "late");
    sl_err err = {0};
    sl_sock *req = NULL;
    assert_int_equal(sl_sock_open(&req, SL_SOCK_REQ, &err), 0);
    assert_int_equal(sl_sock_dial(req, sv.url, &err), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve_one, &sv), 0);
    sl_msg *reply = NULL;
    int rc = sl_sock_request(req, "abc", 3, 5000, &reply, &err);
    atomic_store(&sv.done, 1);
    if (rc != 0) {
        pthread_join(th, NULL);
        fail_msg("request failed: %s", err.msg);
    }
    assert_int_equal(sl_msg_len(reply), 3);
    assert_memory_equal(sl_msg_data(reply), "cba", 3);
    sl_msg_free(reply);
    pthread_join(th, NULL);
    assert_int_equal(sv.served, 1);
    sl_sock_close(req);
}

/* With no peer at all the request fails with SL_EUNAVAIL, after waiting no longer than
 * its own timeout (here shorter than SL_SOCK_PEER_WAIT_MS). */
static void request_without_peer_is_unavailable(void **state)
{
    (void)state;
    char url[256];
    tmp_url(url, sizeof(url), "nobody");
    sl_err err = {0};
    sl_sock *req = NULL;
    assert_int_equal(sl_sock_open(&req, SL_SOCK_REQ, &err), 0);
    assert_int_equal(sl_sock_dial(req, url, &err), 0);
    sl_msg *reply = NULL;
    int64_t t0 = mono_ms();
    assert_int_equal(sl_sock_request(req, "x", 1, 100, &reply, &err), SL_EUNAVAIL);
    int64_t waited = mono_ms() - t0;
    assert_null(reply);
    assert_non_null(strstr(err.msg, "no peer connected"));
    /* It did wait (for a peer that might come), and returned once its timeout passed. */
    assert_true(waited >= 90);
    sl_sock_close(req);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(request_waits_for_late_peer),
    cmocka_unit_test(request_without_peer_is_unavailable),
};

SL_TEST_MAIN(tests)
