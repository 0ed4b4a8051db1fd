/* kafka-produce: a small librdkafka producer for tests.
 *
 *   kafka-produce --bootstrap HOST:PORT --topic NAME [--compression CODEC]
 *                 [--property KEY=VALUE]...
 *
 * Reads stdin lines "PARTITION<TAB>KEY<TAB>VALUE" (PARTITION -1: librdkafka's
 * partitioner picks it from the key; an empty KEY sends no key; VALUE is the rest of
 * the line, "\N" alone for a message without a value) and produces them in order, with
 * the idempotent producer so that retries never duplicate a message. Exits 0 once every
 * message is acknowledged by the broker and prints "delivered N" on stdout; exits 1
 * naming the first failure otherwise. CODEC: none, gzip, snappy, lz4, zstd. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

static long delivered, failed;
static char first_error[512];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failed++ == 0) {
            snprintf(first_error, sizeof(first_error), "%s", rd_kafka_err2str(m->err));
        }
    } else {
        delivered++;
    }
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-produce: %s=%s: %s\n", key, value, errstr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "enable.idempotence", "true") != 0 || set(conf, "linger.ms", "5") != 0 ||
        set(conf, "log_level", "3") != 0) {
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap") == 0 && i + 1 < argc) {
            bootstrap = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            topic = argv[++i];
        } else if (strcmp(argv[i], "--compression") == 0 && i + 1 < argc) {
            if (set(conf, "compression.codec", argv[++i]) != 0) {
                return 1;
            }
        } else if (strcmp(argv[i], "--property") == 0 && i + 1 < argc) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (eq == NULL) {
                fprintf(stderr, "kafka-produce: --property wants KEY=VALUE\n");
                return 2;
            }
            *eq = '\0';
            if (set(conf, kv, eq + 1) != 0) {
                return 1;
            }
        } else {
            fprintf(stderr,
                    "usage: %s --bootstrap HOST:PORT --topic NAME [--compression CODEC] "
                    "[--property KEY=VALUE]...\n",
                    argv[0]);
            return 2;
        }
    }
    if (bootstrap == NULL || topic == NULL || set(conf, "bootstrap.servers", bootstrap) != 0) {
        fprintf(stderr, "kafka-produce: --bootstrap and --topic are required\n");
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-produce: %s\n", errstr);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, sent = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        char *t1 = strchr(line, '\t'), *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
        if (t2 == NULL) {
            fprintf(stderr, "kafka-produce: line %ld is not PARTITION<TAB>KEY<TAB>VALUE\n", lineno);
            rd_kafka_destroy(rk);
            return 2;
        }
        *t1 = *t2 = '\0';
        int32_t partition = atoi(line);
        const char *key = t1 + 1, *value = t2 + 1;
        size_t klen = strlen(key), vlen = strlen(value);
        bool null_value = strcmp(value, "\\N") == 0;
        void *kptr = klen > 0 ? (void *)key : NULL;
        void *vptr = null_value ? NULL : (void *)value;
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                RD_KAFKA_V_KEY(kptr, klen), RD_KAFKA_V_VALUE(vptr, null_value ? 0 : vlen),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "kafka-produce: line %ld: %s\n", lineno, rd_kafka_err2str(e));
                rd_kafka_destroy(rk);
                return 1;
            }
            break;
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    free(line);
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, 60000);
    rd_kafka_destroy(rk);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || failed > 0 || delivered != sent) {
        fprintf(stderr, "kafka-produce: %ld of %ld delivered, %ld failed (%s)\n", delivered, sent,
                failed, failed > 0 ? first_error : rd_kafka_err2str(e));
        return 1;
    }
    printf("delivered %ld\n", delivered);
    return 0;
}
