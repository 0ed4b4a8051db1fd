/* Configuration loading (see config.h). Files are JSON with comments, parsed with
 * yajl_tree (not a hot path). Each setting is one row of `settings[]`; the same
 * table validates, fills sl_config and prints docs/config.md. */
#include "config.h"

#include "log.h"
#include "msg.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

const char *const sl_actor_names[SL_ACTOR_COUNT] = {
#define SL_ACTOR_NAME(e, name) name,
    SL_ACTOR_TABLE(SL_ACTOR_NAME)
#undef SL_ACTOR_NAME
};

typedef enum setting_type { SET_INT, SET_STR } setting_type;

typedef struct setting {
    const char *key;
    setting_type type;
    const char *def; /* default, as text */
    int64_t min, max;
    size_t offset; /* into sl_config; for SET_INT an int64_t unless is_int */
    int is_int;    /* field is an int, not int64_t */
    const char *help;
} setting;

#define OFF(f) offsetof(sl_config, f)
#define PROC(e, name)                                                                              \
    {"processes." name,                                                                            \
     SET_INT,                                                                                      \
     "1",                                                                                          \
     1,                                                                                            \
     64,                                                                                           \
     OFF(processes) + SL_ACTOR_##e * sizeof(int),                                                  \
     1,                                                                                            \
     "Processes of the " name " actor."},

static const setting settings[] = {
    {"http", SET_STR, "127.0.0.1:8080", 0, 0, OFF(http_host), 0,
     "HOST:PORT the gateway listens on (overridden by --http)."},
    {"data_dir", SET_STR, "./data", 0, 0, OFF(data_dir), 0,
     "Data directory: segments, sockets, logs (overridden by --data-dir)."},
    SL_ACTOR_TABLE(PROC){
        "gateway.max_body_bytes", SET_INT, "16777216", 1024, (int64_t)1 << 32, OFF(max_body_bytes),
        0, "Largest accepted request body in bytes, after gzip decompression (413 above)."},
    {"gateway.request_timeout_ms", SET_INT, "10000", 100, 600000, OFF(request_timeout_ms), 0,
     "How long a request may wait for ingest or query before 503/504."},
    {"gateway.http_threads", SET_INT, "8", 1, 256, OFF(http_threads), 0, "HTTP worker threads."},
    {"ingest.max_errors_listed", SET_INT, "100", 0, 10000, OFF(max_errors_listed), 0,
     "Rejected events listed per reply (all are counted)."},
    {"log.fsync", SET_STR, "always", 0, 0, OFF(log_fsync), 0,
     "When an accepted request is acknowledged: \"always\" = after its log record is fsync'd "
     "(group commit); \"interval\" = after the write, with an fsync every log.fsync_interval_ms."},
    {"log.fsync_interval_ms", SET_INT, "5", 1, 10000, OFF(log_fsync_interval_ms), 0,
     "With log.fsync = \"interval\": at most this much acknowledged data is lost on power loss."},
    {"log.segment_mb", SET_INT, "64", 1, 4096, OFF(log_segment_mb), 0,
     "Size at which the partition log rolls to a new segment file."},
    {"log.max_backlog_mb", SET_INT, "1024", 1, 1 << 20, OFF(log_max_backlog_mb), 0,
     "Log bytes not yet committed by the storer above which ingest answers 429."},
    {"ingest.idempotency_window_s", SET_INT, "86400", 1, 30 * 86400, OFF(idempotency_window_s), 0,
     "How long an Idempotency-Key is remembered."},
    {"windower.flush_ms", SET_INT, "200", 10, 60000, OFF(flush_ms), 0,
     "How often open windows send their partial aggregates to the storer (at most: a "
     "partition whose last delta the storer has not committed yet keeps folding until it has)."},
    {"storer.map_size_mb", SET_INT, "256", 1, 1 << 30, OFF(map_size_mb), 0,
     "Initial LMDB map size in MiB."},
    {"storer.max_map_size_mb", SET_INT, "65536", 1, 1 << 30, OFF(max_map_size_mb), 0,
     "The LMDB map grows up to this many MiB; beyond it writes fail (disk full)."},
    {"storer.commit_max_msgs", SET_INT, "256", 1, 100000, OFF(commit_max_msgs), 0,
     "Deltas applied per LMDB transaction at most."},
    {"alerter.rules", SET_STR, "alerts", 0, 0, OFF(alerter_rules), 0,
     "Directory of alert rule files (*.json, see docs/alerts.md), relative to the config file."},
#define MEM(e, name, def, what)                                                                    \
    {                                                                                              \
        "memory_mb." name, SET_INT, #def, 16, 1 << 20,                                             \
            OFF(memory_mb) + SL_ACTOR_##e * sizeof(int), 1,                                        \
            "Memory bound of each " name                                                           \
            " process in MiB (anonymous resident memory, docs/architecture.md "                    \
            "\"Memory\"); " what                                                                   \
    }
    MEM(GATEWAY, "gateway", 512,
        "request bodies and the replies requests hold take at most 40% of it (503 above), "
        "query answers at most half of it shared by gateway.http_threads (400 above)."),
    MEM(INGEST, "ingest", 256,
        "not acted on: one request's events at a time, Kafka's prefetch is 16 MiB."),
    MEM(PARTITIONER, "partitioner", 256,
        "not acted on: it holds one burst of appends and the idempotency keys of the records "
        "in the log, which log.max_backlog_mb bounds."),
    MEM(WINDOWER, "windower", 512,
        "open windows are sent early at 30% of it, everything it holds above 90%."),
    MEM(STORER, "storer", 1024,
        "received deltas commit at 25% of it, a transaction commits early above 50%."),
    MEM(QUERY, "query", 512,
        "a query that takes the process above 80% of it stops with 400 Resource limit exceeded."),
    MEM(ALERTER, "alerter", 64, "not acted on: rules and their last results are small."),
#undef MEM
#define ADDR_SETTING(e, name, def)                                                                 \
    {"addresses." name,                                                                            \
     SET_STR,                                                                                      \
     def,                                                                                          \
     0,                                                                                            \
     0,                                                                                            \
     OFF(addr) + SL_ADDR_##e * sizeof(char *),                                                     \
     0,                                                                                            \
     "Address template of the " name " socket ({data} = data dir, {i} = instance)."},
    SL_ADDR_TABLE(ADDR_SETTING)
#undef ADDR_SETTING
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

int64_t sl_config_max_answer_bytes(const sl_config *cfg)
{
    double b = (double)((int64_t)cfg->memory_mb[SL_ACTOR_GATEWAY] << 20) *
               SL_GATEWAY_ANSWERS_SHARE / (double)(cfg->http_threads > 0 ? cfg->http_threads : 1);
    return (int64_t)b;
}

/* ---- small helpers ----------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, sl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        sl_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    sl_buf b;
    sl_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sl_buf_append(&b, chunk, n);
    }
    fclose(f);
    sl_buf_append(&b, "", 1);
    *len = b.len - 1;
    return b.data;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return sl_strdup(".");
    }
    return sl_strndup(path, (size_t)(slash - path == 0 ? 1 : slash - path));
}

static char *absolute(const char *path)
{
    if (path[0] == '/') {
        return sl_strdup(path);
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return sl_strdup(path);
    }
    const char *p = path;
    while (strncmp(p, "./", 2) == 0) {
        p += 2;
    }
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *out = sl_malloc(n);
    snprintf(out, n, "%s/%s", cwd, p);
    return out;
}

static const char *type_name(yajl_val v)
{
    if (YAJL_IS_STRING(v)) {
        return "a string";
    }
    if (YAJL_IS_NUMBER(v)) {
        return "a number";
    }
    if (YAJL_IS_OBJECT(v)) {
        return "an object";
    }
    if (YAJL_IS_ARRAY(v)) {
        return "an array";
    }
    if (YAJL_IS_NULL(v)) {
        return "null";
    }
    return "a boolean";
}

static yajl_val parse_json(const char *path, const char *text, sl_err *err)
{
    char ebuf[512];
    yajl_val root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (root == NULL) {
        for (char *p = ebuf; *p != '\0'; p++) {
            if (*p == '\n') {
                *p = ' ';
            }
        }
        sl_err_set(err, SL_ECONFIG, "%s: invalid JSON: %s", path, ebuf);
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) {
        sl_err_set(err, SL_ECONFIG, "%s: top level must be an object", path);
        yajl_tree_free(root);
        return NULL;
    }
    return root;
}

/* ---- settings ---------------------------------------------------------------------- */

static const setting *find_setting(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(settings[i].key, key) == 0) {
            return &settings[i];
        }
    }
    return NULL;
}

static int apply_setting(sl_config *cfg, const setting *s, const char *text, yajl_val v,
                         const char *path, sl_err *err)
{
    char *field = (char *)cfg + s->offset;
    if (s->type == SET_STR) {
        const char *str = text;
        if (v != NULL) {
            if (!YAJL_IS_STRING(v)) {
                return sl_err_set(err, SL_ECONFIG, "%s: key \"%s\" must be a string, not %s", path,
                                  s->key, type_name(v));
            }
            str = YAJL_GET_STRING(v);
        }
        char **dst = (char **)field;
        free(*dst);
        *dst = sl_strdup(str);
        return 0;
    }
    int64_t val;
    if (v != NULL) {
        if (!YAJL_IS_INTEGER(v)) {
            return sl_err_set(err, SL_ECONFIG, "%s: key \"%s\" must be an integer, not %s", path,
                              s->key, type_name(v));
        }
        val = YAJL_GET_INTEGER(v);
    } else {
        val = strtoll(text, NULL, 10);
    }
    if (val < s->min || val > s->max) {
        return sl_err_set(err, SL_ECONFIG, "%s: key \"%s\" = %lld is out of range [%lld, %lld]",
                          path, s->key, (long long)val, (long long)s->min, (long long)s->max);
    }
    if (s->is_int) {
        *(int *)field = (int)val;
    } else {
        *(int64_t *)field = val;
    }
    return 0;
}

static int load_datasources(sl_config *cfg, yajl_val v, const char *path, sl_err *err)
{
    if (!YAJL_IS_ARRAY(v)) {
        return sl_err_set(err, SL_ECONFIG, "%s: key \"datasources\" must be an array of paths",
                          path);
    }
    char *dir = dir_of(path);
    int rc = 0;
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val item = v->u.array.values[i];
        if (!YAJL_IS_STRING(item)) {
            rc = sl_err_set(err, SL_ECONFIG, "%s: datasources[%zu] must be a file path string",
                            path, i);
            break;
        }
        if (cfg->ndatasources >= (int)(sizeof(cfg->datasources) / sizeof(cfg->datasources[0]))) {
            rc = sl_err_set(err, SL_ECONFIG, "%s: too many datasources", path);
            break;
        }
        const char *p = YAJL_GET_STRING(item);
        char full[PATH_MAX];
        if (p[0] == '/') {
            snprintf(full, sizeof(full), "%s", p);
        } else {
            snprintf(full, sizeof(full), "%s/%s", dir, p);
        }
        sl_spec *spec;
        if ((rc = sl_spec_load(full, &spec, err)) != 0) {
            break;
        }
        if (sl_config_find(cfg, spec->name) != NULL) {
            rc = sl_err_set(err, SL_ECONFIG, "%s: datasource \"%s\" is declared twice", full,
                            spec->name);
            sl_spec_free(spec);
            break;
        }
        cfg->datasources[cfg->ndatasources++] = spec;
    }
    free(dir);
    return rc;
}

static int parse_hostport(sl_config *cfg, const char *hp, const char *path, sl_err *err)
{
    const char *colon = strrchr(hp, ':');
    char *end;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == hp || *end != '\0' || port < 1 || port > 65535) {
        return sl_err_set(err, SL_ECONFIG, "%s: http \"%s\" is not HOST:PORT", path, hp);
    }
    free(cfg->http_host);
    cfg->http_host = sl_strndup(hp, (size_t)(colon - hp));
    cfg->http_port = (int)port;
    return 0;
}

int sl_config_load(const char *path, const char *data_dir, const char *http, sl_config **out,
                   sl_err *err)
{
    sl_config *cfg = sl_calloc(1, sizeof(*cfg));
    yajl_val root = NULL;
    char *text = NULL;
    int rc = 0;
    cfg->path = absolute(path);
    for (size_t i = 0; i < NSETTINGS; i++) {
        if ((rc = apply_setting(cfg, &settings[i], settings[i].def, NULL, path, err)) != 0) {
            goto out;
        }
    }
    size_t len;
    if ((text = read_file(path, &len, err)) == NULL) {
        rc = err != NULL ? err->code : SL_ECONFIG;
        goto out;
    }
    if ((root = parse_json(path, text, err)) == NULL) {
        rc = SL_ECONFIG;
        goto out;
    }
    for (size_t i = 0; i < root->u.object.len && rc == 0; i++) {
        const char *key = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        if (strcmp(key, "datasources") == 0) {
            rc = load_datasources(cfg, v, cfg->path, err);
            continue;
        }
        if (YAJL_IS_OBJECT(v)) {
            for (size_t j = 0; j < v->u.object.len && rc == 0; j++) {
                char full[256];
                snprintf(full, sizeof(full), "%s.%s", key, v->u.object.keys[j]);
                const setting *s = find_setting(full);
                if (s == NULL) {
                    rc = sl_err_set(err, SL_ECONFIG, "%s: unknown key \"%s\"", path, full);
                    break;
                }
                rc = apply_setting(cfg, s, NULL, v->u.object.values[j], path, err);
            }
            continue;
        }
        const setting *s = find_setting(key);
        if (s == NULL) {
            rc = sl_err_set(err, SL_ECONFIG, "%s: unknown key \"%s\"", path, key);
            break;
        }
        rc = apply_setting(cfg, s, NULL, v, path, err);
    }
    if (rc != 0) {
        goto out;
    }
    if (data_dir != NULL) {
        free(cfg->data_dir);
        cfg->data_dir = sl_strdup(data_dir);
    }
    char *abs = absolute(cfg->data_dir);
    free(cfg->data_dir);
    cfg->data_dir = abs;
    /* http_host holds the raw "HOST:PORT" text until split here. */
    char *hp = sl_strdup(http != NULL ? http : cfg->http_host);
    rc = parse_hostport(cfg, hp, path, err);
    free(hp);
    if (rc != 0) {
        goto out;
    }
    if (cfg->processes[SL_ACTOR_GATEWAY] != 1 || cfg->processes[SL_ACTOR_STORER] != 1 ||
        cfg->processes[SL_ACTOR_PARTITIONER] != 1) {
        rc = sl_err_set(err, SL_ECONFIG,
                        "%s: processes.gateway, processes.partitioner and processes.storer must "
                        "be 1 (the HTTP port, the offset sequencer and the LMDB writer are "
                        "single owners)",
                        path);
        goto out;
    }
    if (strcmp(cfg->log_fsync, "always") != 0 && strcmp(cfg->log_fsync, "interval") != 0) {
        rc = sl_err_set(err, SL_ECONFIG, "%s: key \"log.fsync\" must be \"always\" or \"interval\"",
                        path);
        goto out;
    }
    if (cfg->ndatasources == 0) {
        rc = sl_err_set(err, SL_ECONFIG, "%s: no datasources declared", path);
        goto out;
    }
out:
    yajl_tree_free(root);
    free(text);
    if (rc != 0) {
        sl_config_free(cfg);
        cfg = NULL;
    }
    *out = cfg;
    return rc;
}

void sl_config_free(sl_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].type == SET_STR) {
            free(*(char **)((char *)cfg + settings[i].offset));
        }
    }
    for (int i = 0; i < cfg->ndatasources; i++) {
        sl_spec_free(cfg->datasources[i]);
    }
    free(cfg->path);
    free(cfg);
}

const sl_spec *sl_config_find(const sl_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->ndatasources; i++) {
        if (strcmp(cfg->datasources[i]->name, name) == 0) {
            return cfg->datasources[i];
        }
    }
    return NULL;
}

int sl_config_addr(const sl_config *cfg, sl_addr_kind role, const char *actor, int i, char *buf,
                   size_t size)
{
    const char *t = cfg->addr[role];
    size_t n = 0;
    char num[32];
    while (*t != '\0') {
        const char *sub = NULL;
        size_t skip = 1;
        if (strncmp(t, "{data}", 6) == 0) {
            sub = cfg->data_dir;
            skip = 6;
        } else if (strncmp(t, "{actor}", 7) == 0) {
            sub = actor != NULL ? actor : "";
            skip = 7;
        } else if (strncmp(t, "{i}", 3) == 0) {
            snprintf(num, sizeof(num), "%d", i);
            sub = num;
            skip = 3;
        } else if (strncmp(t, "+{i}", 4) == 0) {
            /* PORT+{i}: add i to the port digits just written. */
            size_t d = n;
            while (d > 0 && buf[d - 1] >= '0' && buf[d - 1] <= '9') {
                d--;
            }
            long port = strtol(buf + d, NULL, 10) + i;
            n = d;
            snprintf(num, sizeof(num), "%ld", port);
            sub = num;
            skip = 4;
        }
        if (sub != NULL) {
            size_t l = strlen(sub);
            if (n + l >= size) {
                return SL_ETOOBIG;
            }
            memcpy(buf + n, sub, l);
            n += l;
        } else {
            if (n + 1 >= size) {
                return SL_ETOOBIG;
            }
            buf[n++] = *t;
        }
        t += skip;
    }
    buf[n] = '\0';
    return 0;
}

void sl_config_print_docs(FILE *f)
{
    fprintf(f, "| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->type == SET_INT) {
            fprintf(f, "| `%s` | integer | `%s` | %lld – %lld | %s |\n", s->key, s->def,
                    (long long)s->min, (long long)s->max, s->help);
        } else {
            fprintf(f, "| `%s` | string | `%s` | | %s |\n", s->key, s->def, s->help);
        }
    }
    fprintf(f, "| `datasources` | array | | | Datasource spec files, relative to the config "
               "file (see below). |\n");
}

/* ---- datasource specs -------------------------------------------------------------- */

typedef struct spec_ctx {
    const char *source;
    sl_err *err;
} spec_ctx;

static int spec_fail(spec_ctx *c, const char *key, const char *fmt, const char *detail)
{
    char msg[300];
    snprintf(msg, sizeof(msg), fmt, detail);
    return sl_err_set(c->err, SL_ECONFIG, "%s: key \"%s\": %s", c->source, key, msg);
}

static int want_string(spec_ctx *c, yajl_val v, const char *key, char **out)
{
    if (!YAJL_IS_STRING(v) || YAJL_GET_STRING(v)[0] == '\0') {
        return spec_fail(c, key, "must be a non-empty string, not %s",
                         YAJL_IS_STRING(v) ? "an empty string" : type_name(v));
    }
    free(*out);
    *out = sl_strdup(YAJL_GET_STRING(v));
    return 0;
}

/* Checks that every key of object v is one of allowed (NULL-terminated). */
static int only_keys(spec_ctx *c, yajl_val v, const char *key, const char *const *allowed)
{
    if (!YAJL_IS_OBJECT(v)) {
        return spec_fail(c, key, "must be an object, not %s", type_name(v));
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++) {
            ok |= strcmp(*a, k) == 0;
        }
        if (!ok) {
            char full[200];
            snprintf(full, sizeof(full), "%s.%s", key, k);
            return spec_fail(c, full, "%s", "unknown key");
        }
    }
    return 0;
}

static yajl_val get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

static int parse_granularity(spec_ctx *c, yajl_val v, const char *key, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } g[] = {{"minute", 60000},          {"five_minute", 300000}, {"fifteen_minute", 900000},
             {"thirty_minute", 1800000}, {"hour", 3600000},       {"day", 86400000}};
    const char *str = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
    if (str != NULL) {
        for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
            if (strcasecmp(str, g[i].name) == 0) {
                *ms = g[i].ms;
                return 0;
            }
        }
    }
    return spec_fail(c, key, "%s",
                     "must be one of minute, five_minute, fifteen_minute, thirty_minute, hour, "
                     "day");
}

static int parse_period_or_null(spec_ctx *c, yajl_val v, const char *key, int64_t *ms)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        *ms = 0;
        return 0;
    }
    sl_err e;
    if (!YAJL_IS_STRING(v) || sl_period_parse(YAJL_GET_STRING(v), ms, &e) != 0) {
        return spec_fail(c, key, "%s", "must be null or an ISO 8601 period such as \"P1D\"");
    }
    return 0;
}

static int name_taken(const sl_spec *s, const char *name)
{
    if (strcmp(name, "__time") == 0 || (s->time_column && strcmp(name, s->time_column) == 0)) {
        return 1;
    }
    for (int i = 0; i < s->ndims; i++) {
        if (strcmp(s->dims[i], name) == 0) {
            return 1;
        }
    }
    for (int i = 0; i < s->nmetrics; i++) {
        if (strcmp(s->metrics[i].name, name) == 0) {
            return 1;
        }
    }
    return s->count_name != NULL && strcmp(s->count_name, name) == 0;
}

static int add_field(spec_ctx *c, const char *key, char **list, int *n, sl_metric_spec *ms);

const char *sl_metric_kind_name(sl_metric_kind k)
{
    switch (k) {
    case SL_METRIC_COUNT:
        return "count";
    case SL_METRIC_SUM:
        return "sum";
    case SL_METRIC_MIN:
        return "min";
    case SL_METRIC_MAX:
        return "max";
    case SL_METRIC_DISTINCT:
        return "distinct";
    case SL_METRIC_QUANTILES:
        return "quantiles";
    }
    return "?";
}

static int parse_metric(spec_ctx *c, sl_spec *s, yajl_val m, size_t idx)
{
    static const char *const keys[] = {"name", "type", "field", NULL};
    static const struct {
        const char *name;
        sl_metric_kind kind;
    } types[] = {{"count", SL_METRIC_COUNT},       {"sum", SL_METRIC_SUM},
                 {"min", SL_METRIC_MIN},           {"max", SL_METRIC_MAX},
                 {"longSum", SL_METRIC_SUM},       {"doubleSum", SL_METRIC_SUM},
                 {"longMin", SL_METRIC_MIN},       {"doubleMin", SL_METRIC_MIN},
                 {"longMax", SL_METRIC_MAX},       {"doubleMax", SL_METRIC_MAX},
                 {"distinct", SL_METRIC_DISTINCT}, {"quantiles", SL_METRIC_QUANTILES}};
    char key[64];
    snprintf(key, sizeof(key), "metrics[%zu]", idx);
    int rc = only_keys(c, m, key, keys);
    if (rc != 0) {
        return rc;
    }
    yajl_val name = get(m, "name"), type = get(m, "type"), field = get(m, "field");
    char *nm = NULL;
    if (name == NULL || (rc = want_string(c, name, key, &nm)) != 0) {
        free(nm);
        return rc != 0 ? rc : spec_fail(c, key, "%s", "needs a \"name\"");
    }
    if (name_taken(s, nm)) {
        rc = spec_fail(c, key, "name \"%s\" is already used", nm);
        free(nm);
        return rc;
    }
    int kind = -1;
    const char *tname = type != NULL && YAJL_IS_STRING(type) ? YAJL_GET_STRING(type) : NULL;
    if (tname != NULL) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcmp(types[i].name, tname) == 0) {
                kind = (int)types[i].kind;
            }
        }
    }
    if (kind < 0) {
        free(nm);
        return spec_fail(c, key, "%s",
                         "\"type\" must be one of count, sum, min, max, distinct, quantiles");
    }
    if (kind == SL_METRIC_COUNT) {
        if (field != NULL) {
            free(nm);
            return spec_fail(c, key, "%s", "a count metric takes no \"field\"");
        }
        free(s->count_name);
        s->count_name = nm;
        return 0;
    }
    if (s->nmetrics >= SL_MAX_METRICS) {
        free(nm);
        return spec_fail(c, key, "%s", "too many metrics");
    }
    sl_metric_spec *ms = &s->metrics[s->nmetrics];
    ms->name = nm;
    ms->kind = (sl_metric_kind)kind;
    ms->field = NULL;
    ms->field_index = -1;
    s->nmetrics++;
    char msg[256];
    if (field == NULL) {
        snprintf(msg, sizeof(msg), "a %s metric needs a \"field\" (%s)", tname,
                 kind == SL_METRIC_DISTINCT ? "the input field whose distinct values it counts"
                                            : "the numeric input field");
        return spec_fail(c, key, "%s", msg);
    }
    if ((rc = want_string(c, field, key, &ms->field)) != 0) {
        return rc;
    }
    if (kind == SL_METRIC_DISTINCT) {
        return add_field(c, key, s->hfields, &s->nhfields, ms);
    }
    /* Quantiles need numbers: a dimension (a string) or the time field cannot be one.
     * (sum/min/max keep their older, laxer rule.) */
    if (kind == SL_METRIC_QUANTILES &&
        (sl_spec_dim(s, ms->field) >= 0 || strcmp(ms->field, s->ts_field) == 0)) {
        snprintf(msg, sizeof(msg), "a %s metric needs a numeric field, and \"%s\" is %s", tname,
                 ms->field,
                 sl_spec_dim(s, ms->field) >= 0 ? "a dimension (a string)" : "the timestamp field");
        return spec_fail(c, key, "%s", msg);
    }
    return add_field(c, key, s->fields, &s->nfields, ms);
}

/* Points ms at its input field in list (adding it when new). */
static int add_field(spec_ctx *c, const char *key, char **list, int *n, sl_metric_spec *ms)
{
    for (int i = 0; i < *n; i++) {
        if (strcmp(list[i], ms->field) == 0) {
            ms->field_index = i;
            return 0;
        }
    }
    if (*n >= SL_MAX_FIELDS) {
        return spec_fail(c, key, "%s", "too many input fields for metrics (at most 32)");
    }
    ms->field_index = *n;
    list[(*n)++] = sl_strdup(ms->field);
    return 0;
}

/* librdkafka properties that Sluice sets itself: the exactly-once path depends on them. */
static const char *kafka_reserved(const char *key, const char *value)
{
    static const struct {
        const char *key, *why;
    } r[] = {
        {"bootstrap.servers", "set \"bootstrap_servers\" instead"},
        {"metadata.broker.list", "set \"bootstrap_servers\" instead"},
        {"group.id", "set \"group_id\" instead"},
        {"auto.offset.reset", "set \"start\" (earliest or latest) instead"},
        {"enable.auto.offset.store",
         "Sluice stores each offset itself, once the partition log has the message"},
        {"enable.auto.commit", "Sluice commits the offsets it stored; it must stay on"},
        {"enable.partition.eof", "Sluice uses end-of-partition events to measure the lag"},
        {"group.instance.id", "every ingest process would share it (static members fence "
                              "each other)"},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        if (strcmp(key, r[i].key) == 0) {
            return r[i].why;
        }
    }
    if (strcmp(key, "partition.assignment.strategy") == 0 && strstr(value, "cooperative")) {
        return "only the eager assignors (range, roundrobin) are supported";
    }
    return NULL;
}

static int parse_kafka(spec_ctx *c, yajl_val v, sl_spec *s)
{
    static const char *const keys[] = {
        "enabled", "bootstrap_servers", "topics", "topic", "group_id", "start", "properties", NULL};
    int rc = only_keys(c, v, "kafka", keys);
    if (rc != 0) {
        return rc;
    }
    sl_kafka_spec *k = s->kafka = sl_calloc(1, sizeof(*k));
    yajl_val f;
    k->enabled = 1;
    if ((f = get(v, "enabled")) != NULL) {
        if (!YAJL_IS_TRUE(f) && !YAJL_IS_FALSE(f)) {
            return spec_fail(c, "kafka.enabled", "must be true or false, not %s", type_name(f));
        }
        k->enabled = YAJL_IS_TRUE(f);
    }
    if ((f = get(v, "bootstrap_servers")) != NULL &&
        (rc = want_string(c, f, "kafka.bootstrap_servers", &k->bootstrap_servers)) != 0) {
        return rc;
    }
    yajl_val topic = get(v, "topic"), topics = get(v, "topics");
    if (topic != NULL && topics != NULL) {
        return spec_fail(c, "kafka.topic", "%s", "give \"topic\" or \"topics\", not both");
    }
    if (topic != NULL) {
        k->topics = sl_calloc(1, sizeof(char *));
        k->ntopics = 1;
        if ((rc = want_string(c, topic, "kafka.topic", &k->topics[0])) != 0) {
            return rc;
        }
    } else if (topics != NULL) {
        if (!YAJL_IS_ARRAY(topics) || topics->u.array.len == 0) {
            return spec_fail(c, "kafka.topics", "must be a non-empty array of topic names, not %s",
                             YAJL_IS_ARRAY(topics) ? "an empty array" : type_name(topics));
        }
        k->topics = sl_calloc(topics->u.array.len, sizeof(char *));
        for (size_t i = 0; i < topics->u.array.len; i++) {
            if ((rc = want_string(c, topics->u.array.values[i], "kafka.topics",
                                  &k->topics[k->ntopics])) != 0) {
                return rc;
            }
            k->ntopics++;
        }
    }
    for (int i = 0; i < k->ntopics; i++) {
        const char *t = k->topics[i];
        size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
        if (t[n] != '\0' || n > 249) {
            return spec_fail(c, "kafka.topics",
                             "\"%s\" is not a Kafka topic name (letters, digits, . _ -; at most "
                             "249)",
                             t);
        }
    }
    if ((f = get(v, "group_id")) != NULL &&
        (rc = want_string(c, f, "kafka.group_id", &k->group_id)) != 0) {
        return rc;
    }
    if (k->group_id == NULL) {
        size_t n = strlen(s->name) + 8;
        k->group_id = sl_malloc(n);
        snprintf(k->group_id, n, "sluice-%s", s->name);
    }
    if ((f = get(v, "start")) != NULL) {
        const char *str = YAJL_IS_STRING(f) ? YAJL_GET_STRING(f) : "";
        if (strcmp(str, "earliest") != 0 && strcmp(str, "latest") != 0) {
            return spec_fail(c, "kafka.start", "%s",
                             "must be \"earliest\" or \"latest\" (where a group without a "
                             "committed offset starts)");
        }
        k->start_latest = strcmp(str, "latest") == 0;
    }
    if ((f = get(v, "properties")) != NULL) {
        if (!YAJL_IS_OBJECT(f)) {
            return spec_fail(c, "kafka.properties", "must be an object, not %s", type_name(f));
        }
        size_t n = f->u.object.len;
        k->prop_keys = sl_calloc(n + 1, sizeof(char *));
        k->prop_values = sl_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            const char *key = f->u.object.keys[i];
            yajl_val pv = f->u.object.values[i];
            char full[200];
            const char *val = NULL;
            snprintf(full, sizeof(full), "kafka.properties.%s", key);
            if (YAJL_IS_STRING(pv)) {
                val = YAJL_GET_STRING(pv);
            } else if (YAJL_IS_NUMBER(pv)) {
                val = YAJL_GET_NUMBER(pv); /* the number as written */
            } else if (YAJL_IS_TRUE(pv) || YAJL_IS_FALSE(pv)) {
                val = YAJL_IS_TRUE(pv) ? "true" : "false";
            } else {
                return spec_fail(c, full, "must be a string, number or boolean, not %s",
                                 type_name(pv));
            }
            const char *why = kafka_reserved(key, val);
            if (why != NULL) {
                return spec_fail(c, full, "%s", why);
            }
            k->prop_keys[k->nprops] = sl_strdup(key);
            k->prop_values[k->nprops] = sl_strdup(val);
            k->nprops++;
        }
    }
    if (k->enabled && k->bootstrap_servers == NULL) {
        return spec_fail(c, "kafka.bootstrap_servers", "%s", "is required when kafka is enabled");
    }
    if (k->enabled && k->ntopics == 0) {
        return spec_fail(c, "kafka.topics", "%s", "is required when kafka is enabled");
    }
    return 0;
}

static int spec_from_tree(spec_ctx *c, yajl_val root, sl_spec *s)
{
    static const char *const top[] = {
        "name",       "timestamp", "dimensions",        "metrics", "granularity",
        "partitions", "rejection", "max_string_length", "kafka",   NULL};
    static const char *const ts_keys[] = {"column", "format", "name", NULL};
    static const char *const gran_keys[] = {"segment", "query", NULL};
    static const char *const part_keys[] = {"count", "key", NULL};
    static const char *const rej_keys[] = {"late", "early", NULL};
    int rc = only_keys(c, root, "(top level)", top);
    if (rc != 0) {
        return rc;
    }
    yajl_val v;
    if ((v = get(root, "name")) == NULL) {
        return spec_fail(c, "name", "%s", "is required");
    }
    if ((rc = want_string(c, v, "name", &s->name)) != 0) {
        return rc;
    }
    for (const char *p = s->name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-')) {
            return spec_fail(c, "name", "\"%s\" may only contain letters, digits, _ and -",
                             s->name);
        }
    }
    /* timestamp */
    s->ts_field = sl_strdup("timestamp");
    s->ts_format = SL_TS_AUTO;
    s->time_column = sl_strdup("__time");
    if ((v = get(root, "timestamp")) != NULL) {
        if ((rc = only_keys(c, v, "timestamp", ts_keys)) != 0) {
            return rc;
        }
        yajl_val f;
        if ((f = get(v, "column")) != NULL &&
            (rc = want_string(c, f, "timestamp.column", &s->ts_field)) != 0) {
            return rc;
        }
        if ((f = get(v, "name")) != NULL &&
            (rc = want_string(c, f, "timestamp.name", &s->time_column)) != 0) {
            return rc;
        }
        if ((f = get(v, "format")) != NULL) {
            int fmt = YAJL_IS_STRING(f) ? sl_ts_format_parse(YAJL_GET_STRING(f)) : -1;
            if (fmt < 0) {
                return spec_fail(c, "timestamp.format", "%s",
                                 "must be iso, millis, seconds or auto");
            }
            s->ts_format = (sl_ts_format)fmt;
        }
    }
    /* dimensions */
    if ((v = get(root, "dimensions")) == NULL || !YAJL_IS_ARRAY(v)) {
        return spec_fail(c, "dimensions", "%s", "is required: an array of field names");
    }
    if (v->u.array.len > SL_MAX_DIMS) {
        return spec_fail(c, "dimensions", "%s", "too many (at most 32)");
    }
    for (size_t i = 0; i < v->u.array.len; i++) {
        char *d = NULL;
        if ((rc = want_string(c, v->u.array.values[i], "dimensions", &d)) != 0) {
            return rc;
        }
        if (name_taken(s, d)) {
            rc = spec_fail(c, "dimensions",
                           "\"%s\" is listed twice or clashes with the time column", d);
            free(d);
            return rc;
        }
        s->dims[s->ndims++] = d;
    }
    /* metrics */
    if ((v = get(root, "metrics")) != NULL) {
        if (!YAJL_IS_ARRAY(v)) {
            return spec_fail(c, "metrics", "must be an array, not %s", type_name(v));
        }
        for (size_t i = 0; i < v->u.array.len; i++) {
            if ((rc = parse_metric(c, s, v->u.array.values[i], i)) != 0) {
                return rc;
            }
        }
    }
    if (s->count_name == NULL) {
        if (sl_spec_metric(s, "count") >= 0) {
            return spec_fail(c, "metrics", "%s",
                             "a metric is named \"count\", the name of the implicit count metric: "
                             "rename it, or declare {\"type\": \"count\"} under another name");
        }
        s->count_name = sl_strdup("count");
    }
    /* granularity */
    s->segment_ms = 3600000;
    s->query_ms = 60000;
    if ((v = get(root, "granularity")) != NULL) {
        if ((rc = only_keys(c, v, "granularity", gran_keys)) != 0) {
            return rc;
        }
        yajl_val f;
        if ((f = get(v, "segment")) != NULL &&
            (rc = parse_granularity(c, f, "granularity.segment", &s->segment_ms)) != 0) {
            return rc;
        }
        if ((f = get(v, "query")) != NULL &&
            (rc = parse_granularity(c, f, "granularity.query", &s->query_ms)) != 0) {
            return rc;
        }
    }
    if (s->segment_ms != 3600000) {
        return spec_fail(c, "granularity.segment", "%s", "only \"hour\" segments are supported");
    }
    if (s->segment_ms % s->query_ms != 0) {
        return spec_fail(c, "granularity.query", "%s", "must divide the segment granularity");
    }
    /* partitions */
    s->partitions = 1;
    if ((v = get(root, "partitions")) != NULL) {
        if ((rc = only_keys(c, v, "partitions", part_keys)) != 0) {
            return rc;
        }
        yajl_val f;
        if ((f = get(v, "count")) != NULL) {
            if (!YAJL_IS_INTEGER(f) || YAJL_GET_INTEGER(f) < 1 ||
                YAJL_GET_INTEGER(f) > SL_MAX_PARTITIONS) {
                return spec_fail(c, "partitions.count", "%s", "must be an integer in 1..1024");
            }
            s->partitions = (int)YAJL_GET_INTEGER(f);
        }
        if ((f = get(v, "key")) != NULL &&
            (rc = want_string(c, f, "partitions.key", &s->partition_key)) != 0) {
            return rc;
        }
    }
    /* rejection */
    if ((v = get(root, "rejection")) != NULL) {
        if ((rc = only_keys(c, v, "rejection", rej_keys)) != 0) {
            return rc;
        }
        if ((rc = parse_period_or_null(c, get(v, "late"), "rejection.late", &s->late_reject_ms)) !=
                0 ||
            (rc = parse_period_or_null(c, get(v, "early"), "rejection.early",
                                       &s->early_reject_ms)) != 0) {
            return rc;
        }
    }
    s->max_string_len = 1024;
    if ((v = get(root, "max_string_length")) != NULL) {
        if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 || YAJL_GET_INTEGER(v) > 65536) {
            return spec_fail(c, "max_string_length", "%s", "must be an integer in 1..65536");
        }
        s->max_string_len = (size_t)YAJL_GET_INTEGER(v);
    }
    if ((v = get(root, "kafka")) != NULL && (rc = parse_kafka(c, v, s)) != 0) {
        return rc;
    }
    return 0;
}

int sl_spec_parse(const char *json, size_t len, const char *source, sl_spec **out, sl_err *err)
{
    char *text = sl_strndup(json, len);
    yajl_val root = parse_json(source, text, err);
    free(text);
    if (root == NULL) {
        return SL_ECONFIG;
    }
    sl_spec *s = sl_calloc(1, sizeof(*s));
    s->source = sl_strdup(source);
    spec_ctx c = {.source = source, .err = err};
    int rc = spec_from_tree(&c, root, s);
    yajl_tree_free(root);
    if (rc != 0) {
        sl_spec_free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

int sl_spec_load(const char *path, sl_spec **out, sl_err *err)
{
    size_t len;
    char *text = read_file(path, &len, err);
    if (text == NULL) {
        *out = NULL;
        return err != NULL ? err->code : SL_ECONFIG;
    }
    int rc = sl_spec_parse(text, len, path, out, err);
    free(text);
    return rc;
}

void sl_spec_free(sl_spec *s)
{
    if (s == NULL) {
        return;
    }
    free(s->name);
    free(s->source);
    free(s->ts_field);
    free(s->time_column);
    for (int i = 0; i < s->ndims; i++) {
        free(s->dims[i]);
    }
    free(s->count_name);
    for (int i = 0; i < s->nmetrics; i++) {
        free(s->metrics[i].name);
        free(s->metrics[i].field);
    }
    for (int i = 0; i < s->nfields; i++) {
        free(s->fields[i]);
    }
    for (int i = 0; i < s->nhfields; i++) {
        free(s->hfields[i]);
    }
    free(s->partition_key);
    if (s->kafka != NULL) {
        free(s->kafka->bootstrap_servers);
        for (int i = 0; i < s->kafka->ntopics; i++) {
            free(s->kafka->topics[i]);
        }
        free(s->kafka->topics);
        free(s->kafka->group_id);
        for (int i = 0; i < s->kafka->nprops; i++) {
            free(s->kafka->prop_keys[i]);
            free(s->kafka->prop_values[i]);
        }
        free(s->kafka->prop_keys);
        free(s->kafka->prop_values);
        free(s->kafka);
    }
    free(s);
}

int sl_spec_dim(const sl_spec *spec, const char *name)
{
    for (int i = 0; i < spec->ndims; i++) {
        if (strcmp(spec->dims[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

int sl_spec_metric(const sl_spec *spec, const char *name)
{
    for (int i = 0; i < spec->nmetrics; i++) {
        if (strcmp(spec->metrics[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}
