/* kafka-mock-cluster: a Kafka cluster for tests, librdkafka's mock cluster (it speaks
 * the real Kafka protocol over TCP on 127.0.0.1).
 *
 *   kafka-mock-cluster [--brokers N] [--topic NAME:PARTITIONS]...
 *
 * Starts N brokers (1-3, default 1), creates each topic (default user-events:12),
 * prints the bootstrap address ("127.0.0.1:port,...") as its first stdout line and
 * stays up until SIGTERM or SIGINT. Commands on stdin, one per line, each answered
 * with "ok" or "error <why>" on stdout:
 *
 *   down BROKER    disconnect the broker (-1: all) and refuse new connections
 *   up BROKER      accept connections again
 *   topic NAME PARTITIONS
 *   quit
 *
 * Known behaviour of librdkafka 2.0.2's mock (see docs/kafka.md): each consumer group
 * rebalance waits about session.timeout.ms - 1 s; commits during a rebalance are
 * refused; it keeps at most a few MiB per partition. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *spec, char *why, size_t size)
{
    char name[256];
    int parts = 0;
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(name) ||
        (parts = atoi(colon + 1)) < 1) {
        snprintf(why, size, "topic \"%s\" is not NAME:PARTITIONS", spec);
        return -1;
    }
    memcpy(name, spec, (size_t)(colon - spec));
    name[colon - spec] = '\0';
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, size, "creating %s: %s", name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Runs one stdin command; writes the answer line. Returns 1 on quit. */
static int command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char why[512] = "";
    char verb[16], arg[256];
    int32_t id = 0;
    int n = sscanf(line, "%15s %255s %d", verb, arg, &id);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (n >= 1 && strcmp(verb, "quit") == 0) {
        printf("ok\n");
        return 1;
    }
    if (n == 2 && (strcmp(verb, "down") == 0 || strcmp(verb, "up") == 0)) {
        id = atoi(arg);
        e = strcmp(verb, "down") == 0 ? rd_kafka_mock_broker_set_down(mc, id)
                                      : rd_kafka_mock_broker_set_up(mc, id);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(why, sizeof(why), "%s %d: %s", verb, (int)id, rd_kafka_err2str(e));
        }
    } else if (n == 3 && strcmp(verb, "topic") == 0) {
        char spec[300];
        snprintf(spec, sizeof(spec), "%s:%d", arg, (int)id);
        create_topic(mc, spec, why, sizeof(why));
    } else {
        snprintf(why, sizeof(why),
                 "unknown command (down N | up N | topic NAME PARTITIONS | quit)");
    }
    if (why[0] != '\0') {
        printf("error %s\n", why);
    } else {
        printf("ok\n");
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 1;
    const char *topics[32];
    int ntopics = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < 32) {
            topics[ntopics++] = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--brokers 1-3] [--topic NAME:PARTITIONS]...\n", argv[0]);
            return 2;
        }
    }
    if (brokers < 1 || brokers > 3) {
        fprintf(stderr, "kafka-mock-cluster: --brokers must be 1, 2 or 3\n");
        return 2;
    }
    if (ntopics == 0) {
        topics[ntopics++] = "user-events:12";
    }
    /* Signals are taken through a signalfd; block them before librdkafka starts its
     * threads so that they inherit the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-mock-cluster: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka-mock-cluster: could not create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        if (create_topic(mc, topics[i], errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "kafka-mock-cluster: %s\n", errstr);
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    char line[1024];
    size_t have = 0;
    bool in_open = true, quit = false;
    while (!quit) {
        struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[0].revents & POLLIN) {
            break; /* SIGTERM / SIGINT */
        }
        if (pfd[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, line + have, sizeof(line) - 1 - have);
            if (n <= 0) {
                in_open = false; /* stdin closed: keep serving until a signal */
                continue;
            }
            have += (size_t)n;
            char *nl;
            while (!quit && (nl = memchr(line, '\n', have)) != NULL) {
                *nl = '\0';
                quit = command(mc, line);
                size_t used = (size_t)(nl - line) + 1;
                memmove(line, nl + 1, have - used);
                have -= used;
            }
            if (have == sizeof(line) - 1) {
                have = 0; /* an overlong line is dropped */
            }
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    close(sfd);
    return 0;
}
