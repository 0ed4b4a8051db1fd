/* Unit tests for the ingest body parser (parse.c): body shapes, every rejection
 * reason, line numbers, partition assignment and the encoded events. Expected
 * partitions for fixed keys come from hash_test.c's independently computed XXH64
 * values ("u1234" -> 6 of 12, "" -> 9 of 12, "42" -> 5 of 12). */
#include "sl_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "parse.h"

/* 2025-06-11T12:00:00Z, the "current time" of every test. */
#define NOW 1749643200000LL
#define TS "\"2025-06-11T12:00:00Z\""

#define SPEC_JSON                                                                                  \
    "{\"name\": \"t\", \"timestamp\": {\"column\": \"timestamp\", \"format\": \"%s\"},\n"          \
    " \"dimensions\": [\"event_type\", \"page\", \"device\", \"country\"],\n"                      \
    " \"metrics\": [{\"name\": \"count\", \"type\": \"count\"},\n"                                 \
    "   {\"name\": \"lat_sum\", \"type\": \"sum\", \"field\": \"latency_ms\"},\n"                  \
    "   {\"name\": \"lat_max\", \"type\": \"max\", \"field\": \"latency_ms\"},\n"                  \
    "   {\"name\": \"bytes_sum\", \"type\": \"sum\", \"field\": \"bytes\"}],\n"                    \
    " \"partitions\": {\"count\": %d%s},\n"                                                        \
    " \"rejection\": {\"late\": \"P1D\", \"early\": \"PT1H\"},\n"                                  \
    " \"max_string_length\": 16}"

enum { DIM_EVENT_TYPE, DIM_PAGE, DIM_DEVICE, DIM_COUNTRY };
enum { F_LATENCY, F_BYTES };

typedef struct fx {
    sl_spec *spec;
    sl_parser p;
    sl_err err;
    int max_errors;
} fx;

static sl_spec *make_spec(const char *format, int partitions, bool key)
{
    char json[1024];
    snprintf(json, sizeof(json), SPEC_JSON, format, partitions,
             key ? ", \"key\": \"user_id\"" : "");
    sl_spec *spec = NULL;
    sl_err err = {0};
    if (sl_spec_parse(json, strlen(json), "parse_test", &spec, &err) != 0) {
        fail_msg("test spec does not parse: %s", err.msg);
    }
    /* the test relies on this field order */
    assert_int_equal(spec->nfields, 2);
    assert_string_equal(spec->fields[F_LATENCY], "latency_ms");
    assert_string_equal(spec->fields[F_BYTES], "bytes");
    return spec;
}

static int setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    f->spec = make_spec("auto", 12, true);
    f->max_errors = 100;
    sl_parser_init(&f->p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    sl_parser_fini(&f->p);
    sl_spec_free(f->spec);
    test_free(f);
    return 0;
}

static void use_spec(fx *f, const char *format, int partitions, bool key)
{
    sl_spec_free(f->spec);
    f->spec = make_spec(format, partitions, key);
}

static int run_len(fx *f, const char *body, size_t len)
{
    memset(&f->err, 0, sizeof(f->err));
    return sl_parser_run(&f->p, f->spec, body, len, NOW, f->max_errors, &f->err);
}

/* Parses body and checks the counts. */
static void run(fx *f, const char *body, int64_t accepted, int64_t rejected)
{
    int rc = run_len(f, body, strlen(body));
    if (rc != 0) {
        fail_msg("run failed: %d %s", rc, f->err.msg);
    }
    if (f->p.accepted != accepted || f->p.rejected != rejected) {
        for (int i = 0; i < f->p.nerrors; i++) {
            print_message("  error line %lld: %s\n", (long long)f->p.errors[i].line,
                          f->p.errors[i].reason.p);
        }
        fail_msg("accepted %lld rejected %lld, want %lld %lld", (long long)f->p.accepted,
                 (long long)f->p.rejected, (long long)accepted, (long long)rejected);
    }
    assert_int_equal(f->p.nerrors, rejected < f->max_errors ? rejected : f->max_errors);
}

static void expect_error(fx *f, int i, int64_t line, const char *reason)
{
    assert_true(i < f->p.nerrors);
    assert_int_equal(f->p.errors[i].line, line);
    assert_string_equal(f->p.errors[i].reason.p, reason);
    assert_int_equal(f->p.errors[i].reason.len, strlen(reason));
}

/* Parses body, which must hold exactly one event, rejected with reason. */
static void expect_reject(fx *f, const char *body, const char *reason)
{
    run(f, body, 0, 1);
    expect_error(f, 0, 1, reason);
    for (int i = 0; i < f->p.nparts; i++) {
        assert_int_equal(f->p.counts[i], 0);
        assert_int_equal(f->p.parts[i].len, 0);
    }
}

/* Decodes every partition's blob into evs (in partition order, then input order);
 * checks each blob holds exactly counts[i] events and the total is accepted. */
static int collect(fx *f, sl_event *evs, int *parts, int max)
{
    int n = 0;
    for (int i = 0; i < f->p.nparts; i++) {
        sl_events_iter it;
        sl_events_iter_init(&it, f->p.parts[i].data, f->p.parts[i].len);
        int64_t in_part = 0;
        for (;;) {
            sl_err err = {0};
            assert_true(n < max);
            int rc = sl_events_next(&it, &evs[n], &err);
            if (rc < 0) {
                fail_msg("partition %d: %s", i, err.msg);
            }
            if (rc == 0) {
                break;
            }
            parts[n++] = i;
            in_part++;
        }
        assert_int_equal(in_part, f->p.counts[i]);
    }
    assert_int_equal(n, f->p.accepted);
    return n;
}

/* The single accepted event; returns its partition. */
static int only_event(fx *f, sl_event *ev)
{
    sl_event evs[2];
    int parts[2];
    assert_int_equal(collect(f, evs, parts, 2), 1);
    *ev = evs[0];
    return parts[0];
}

static void assert_dim(sl_str s, const char *want)
{
    if (want == NULL) {
        assert_null(s.p);
        assert_int_equal(s.len, 0);
        return;
    }
    assert_non_null(s.p);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

/* ---- body shapes ------------------------------------------------------------------ */

static const char seed_event[] =
    "{\"event_type\":\"page_view\",\"timestamp\":\"2025-06-11T12:00:00Z\",\"user_id\":\"u1234\","
    "\"page\":\"/pricing\",\"device\":\"mobile\",\"country\":\"US\",\"latency_ms\":87}";

static void single_object(void **state)
{
    fx *f = *state;
    run(f, seed_event, 1, 0);
    sl_event ev;
    int part = only_event(f, &ev);
    assert_int_equal(part, 6);
    assert_int_equal(part, sl_partition_of("u1234", 5, 12));
    assert_int_equal(ev.ts_ms, NOW);
    assert_int_equal(ev.ndims, 4);
    assert_dim(ev.dims[DIM_EVENT_TYPE], "page_view");
    assert_dim(ev.dims[DIM_PAGE], "/pricing");
    assert_dim(ev.dims[DIM_DEVICE], "mobile");
    assert_dim(ev.dims[DIM_COUNTRY], "US");
    assert_int_equal(ev.nfields, 2);
    assert_true(ev.has_field[F_LATENCY]);
    assert_true(ev.fields[F_LATENCY] == 87.0);
    assert_false(ev.has_field[F_BYTES]);
    assert_int_equal(f->p.nparts, 12);
}

static void single_object_with_surrounding_whitespace_and_bom(void **state)
{
    fx *f = *state;
    char body[512];
    snprintf(body, sizeof(body), "\xEF\xBB\xBF \r\n\t%s\r\n\n  ", seed_event);
    run(f, body, 1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 6);
}

static void pretty_printed_object(void **state)
{
    fx *f = *state;
    run(f,
        "{\n"
        "  \"timestamp\": \"2025-06-11T12:00:00Z\",\n"
        "  \"user_id\": \"u1234\",\n"
        "  \"page\": \"/pricing\",\n"
        "  \"meta\": {\n"
        "    \"a\": [1, 2]\n"
        "  },\n"
        "  \"latency_ms\": 12.5\n"
        "}\n",
        1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 6);
    assert_dim(ev.dims[DIM_PAGE], "/pricing");
    assert_true(ev.fields[F_LATENCY] == 12.5);
}

static void pretty_printed_objects_keep_their_start_line(void **state)
{
    fx *f = *state;
    run(f,
        "{\n"
        "  \"timestamp\": \"2025-06-11T12:00:00Z\",\n"
        "  \"page\": \"/a\"\n"
        "}\n"
        "{\n"
        "  \"page\": \"/b\"\n"
        "}\n",
        1, 1);
    expect_error(f, 0, 5, "missing timestamp field \"timestamp\"");
}

/* A body that looks pretty-printed but is broken is judged line by line. */
static void broken_pretty_printed_object_rejects_each_line(void **state)
{
    fx *f = *state;
    run(f,
        "{\n"
        "  \"timestamp\": \"2025-06-11T12:00:00Z\",\n"
        "  \"page\": \n"
        "}\n",
        0, 4);
    expect_error(f, 0, 1, "malformed JSON: parse error: premature EOF at column 2");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f->p.errors[i].line, i + 1);
        assert_memory_equal(f->p.errors[i].reason.p, "malformed JSON: ", 16);
    }
}

/* A truncated first line followed by good lines is NDJSON with one bad line. */
static void truncated_first_line_then_good_lines(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":" TS ",\n"
        "{\"timestamp\":" TS ",\"user_id\":\"u1234\"}\n"
        "{\"timestamp\":" TS ",\"user_id\":\"u1234\"}\n",
        2, 1);
    expect_error(f, 0, 1, "malformed JSON: parse error: premature EOF at column 37");
    assert_int_equal(f->p.counts[6], 2);
}

static void array_body(void **state)
{
    fx *f = *state;
    run(f,
        " [\n"
        "  {\"timestamp\":" TS ",\"user_id\":\"u1234\",\"page\":\"/a\"},\n"
        "  {\"timestamp\":1749643201000,\"page\":\"/b\"},\n"
        "  {\"timestamp\":\"1749643202\",\"user_id\":42,\"page\":\"/c\"}\n"
        "]\n",
        3, 0);
    assert_int_equal(f->p.counts[6], 1);
    assert_int_equal(f->p.counts[9], 1); /* no key: hash of "" */
    assert_int_equal(f->p.counts[5], 1); /* the number 42 hashes as its text "42" */
    sl_event evs[4];
    int parts[4];
    assert_int_equal(collect(f, evs, parts, 4), 3);
    /* partition order: 5, 6, 9 */
    assert_dim(evs[0].dims[DIM_PAGE], "/c");
    assert_int_equal(evs[0].ts_ms, NOW + 2000);
    assert_dim(evs[1].dims[DIM_PAGE], "/a");
    assert_int_equal(evs[1].ts_ms, NOW);
    assert_dim(evs[2].dims[DIM_PAGE], "/b");
    assert_int_equal(evs[2].ts_ms, NOW + 1000);
}

static void empty_bodies(void **state)
{
    fx *f = *state;
    run(f, "", 0, 0);
    run(f, " \n\r\n\t\n", 0, 0);
    run(f, "[]", 0, 0);
    run(f, "  [ ]  \n", 0, 0);
}

static void array_non_object_elements_rejected_individually(void **state)
{
    fx *f = *state;
    run(f,
        "[{\"timestamp\":" TS ",\"user_id\":\"u1234\"},\n"
        " 5, \"x\", [1, {\"timestamp\":" TS "}], null,\n"
        " {\"timestamp\":" TS ",\"user_id\":\"u1234\"},\n"
        " {\"user_id\":\"u9\"}, true, {}]",
        2, 7);
    expect_error(f, 0, 2, "event is not a JSON object");
    expect_error(f, 1, 3, "event is not a JSON object");
    expect_error(f, 2, 4, "event is not a JSON object");
    expect_error(f, 3, 5, "event is not a JSON object");
    expect_error(f, 4, 7, "missing timestamp field \"timestamp\"");
    expect_error(f, 5, 8, "event is not a JSON object");
    expect_error(f, 6, 9, "missing timestamp field \"timestamp\"");
    assert_int_equal(f->p.counts[6], 2);
}

static void array_syntax_error_rejects_whole_body(void **state)
{
    fx *f = *state;
    const char *body = "[\n{\"timestamp\":" TS ",\"user_id\":\"u1234\"},\n{\"a\": }\n]";
    assert_int_equal(run_len(f, body, strlen(body)), SL_EPARSE);
    assert_int_equal(f->err.code, SL_EPARSE);
    assert_string_equal(
        f->err.msg,
        "malformed JSON at line 3, column 7: parse error: unallowed token at this point in JSON "
        "text");
    assert_int_equal(f->p.accepted, 0);
    assert_int_equal(f->p.rejected, 0);
    assert_int_equal(f->p.nerrors, 0);
    for (int i = 0; i < f->p.nparts; i++) {
        assert_int_equal(f->p.counts[i], 0);
        assert_int_equal(f->p.parts[i].len, 0);
    }

    /* a truncated upload */
    body = "[{\"timestamp\":" TS "},\n{\"timestamp\":";
    assert_int_equal(run_len(f, body, strlen(body)), SL_EPARSE);
    assert_string_equal(f->err.msg,
                        "malformed JSON at line 2, column 14: parse error: premature EOF");
    assert_int_equal(f->p.accepted, 0);

    /* blank lines after a truncated body do not move the position */
    body = "[{\"timestamp\":" TS "},\n{\"timestamp\":\n\n  \n";
    assert_int_equal(run_len(f, body, strlen(body)), SL_EPARSE);
    assert_string_equal(f->err.msg,
                        "malformed JSON at line 2, column 14: parse error: premature EOF");

    body = "[] x";
    assert_int_equal(run_len(f, body, strlen(body)), SL_EPARSE);
    assert_string_equal(f->err.msg,
                        "malformed JSON at line 1, column 4: parse error: trailing garbage");

    body = "[{\"timestamp\":" TS "}] [{\"timestamp\":" TS "}]";
    assert_int_equal(run_len(f, body, strlen(body)), SL_EPARSE);
    assert_int_equal(f->p.accepted, 0);

    /* the parser is fine afterwards */
    run(f, "[{\"timestamp\":" TS "}]", 1, 0);
}

static void ndjson_crlf_and_blank_lines(void **state)
{
    fx *f = *state;
    run(f,
        "\r\n"                                                                 /* 1 */
        "{\"timestamp\":" TS ",\"user_id\":\"u1234\",\"page\":\"/a\"}\r\n"     /* 2 */
        "   \t\r\n"                                                            /* 3 */
        "{\"timestamp\":" TS ",\"user_id\":\"u1234\",\"page\":\"/b\"}\r\n"     /* 4 */
        "\r\n"                                                                 /* 5 */
        "\n"                                                                   /* 6 */
        "{\"user_id\":\"u3\"}\r\n"                                             /* 7 */
        "{\"timestamp\":1749643200000,\"user_id\":\"u1234\",\"page\":\"/c\"}", /* 8, no EOL */
        3, 1);
    expect_error(f, 0, 7, "missing timestamp field \"timestamp\"");
    sl_event evs[4];
    int parts[4];
    assert_int_equal(collect(f, evs, parts, 4), 3);
    assert_dim(evs[0].dims[DIM_PAGE], "/a");
    assert_dim(evs[1].dims[DIM_PAGE], "/b");
    assert_dim(evs[2].dims[DIM_PAGE], "/c");
    assert_int_equal(parts[2], 6);
}

static void ndjson_bad_lines_mixed_with_good(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":" TS ",\"user_id\":\"u1\",\"page\":\"/a\"}\n"                     /* 1 */
        "{\"timestamp\":\"2025-06-11T12:00:00Z\",\"page\": }\n"                           /* 2 */
        "{\"timestamp\":" TS ",\"user_id\":\"u2\",\"page\":\"/b\"}\n"                     /* 3 */
        "{\"timestamp\":\n"                                                               /* 4 */
        "{\"timestamp\":" TS ",\"user_id\":\"u3\",\"page\":\"/c\"}\n"                     /* 5 */
        "not json\n"                                                                      /* 6 */
        "{\"timestamp\":" TS ",\"user_id\":\"u4\",\"page\":\"/d\"} junk\n"                /* 7 */
        "{\"timestamp\":" TS ",\"user_id\":\"u5\",\"page\":\"/e\"}\n"                     /* 8 */
        "{\"timestamp\":" TS ",\"page\":\"/f\"}{\"page\":\"/g\"} {\"timestamp\":" TS "\n" /* 9 */
        "{\"timestamp\":" TS ",\"user_id\":\"u6\",\"page\":\"/h\"}",                      /* 10 */
        5, 5);
    expect_error(f, 0, 2,
                 "malformed JSON: parse error: unallowed token at this point in JSON text at "
                 "column 45");
    expect_error(f, 1, 4, "malformed JSON: parse error: premature EOF at column 14");
    expect_error(f, 2, 6, "malformed JSON: lexical error: invalid string in json text at column 1");
    expect_error(f, 3, 7, "malformed JSON: lexical error: invalid char in json text at column 65");
    /* line 9: an accepted and a rejected value before the syntax error are undone */
    expect_error(f, 4, 9, "malformed JSON: parse error: premature EOF at column 98");

    sl_event evs[8];
    int parts[8];
    int n = collect(f, evs, parts, 8);
    assert_int_equal(n, 5);
    const char *want[] = {"/a", "/b", "/c", "/e", "/h"};
    int seen = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 5; j++) {
            if (sl_str_eq(evs[i].dims[DIM_PAGE], want[j])) {
                seen |= 1 << j;
            }
        }
        assert_false(sl_str_eq(evs[i].dims[DIM_PAGE], "/d"));
        assert_false(sl_str_eq(evs[i].dims[DIM_PAGE], "/f"));
    }
    assert_int_equal(seen, 0x1f);
}

static void ndjson_invalid_utf8_rejects_the_line(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":" TS ",\"page\":\"\xff\"}\n"
        "{\"timestamp\":" TS ",\"page\":\"ok\"}\n",
        1, 1);
    expect_error(f, 0, 1,
                 "malformed JSON: lexical error: invalid bytes in UTF8 string at column 45");
}

static void ndjson_many_values_on_one_line_rolled_back(void **state)
{
    fx *f = *state;
    char body[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "{\"timestamp\":" TS ",\"user_id\":\"u%d\"}", i);
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, ",\n{\"timestamp\":" TS "}\n");
    run(f, body, 1, 1);
    assert_int_equal(f->p.errors[0].line, 1);
    assert_int_equal(f->p.counts[9], 1);
    size_t total = 0;
    for (int i = 0; i < f->p.nparts; i++) {
        total += f->p.parts[i].len;
    }
    assert_int_equal(total, f->p.parts[9].len);
}

static void top_level_non_objects_in_ndjson(void **state)
{
    fx *f = *state;
    run(f, "5\n\"x\"\n[1, {\"a\": 2}]\nnull\ntrue\n{\"timestamp\":" TS "}\n-1.5", 1, 6);
    for (int i = 0; i < 5; i++) {
        expect_error(f, i, i + 1, "event is not a JSON object");
    }
    expect_error(f, 5, 7, "event is not a JSON object");
    run(f, "5", 0, 1);
    expect_error(f, 0, 1, "event is not a JSON object");
}

/* ---- rejection reasons ------------------------------------------------------------ */

static void timestamp_rejections(void **state)
{
    fx *f = *state;
    expect_reject(f, "{\"page\":\"/a\"}", "missing timestamp field \"timestamp\"");
    expect_reject(f, "{\"timestamp\":null}", "missing timestamp field \"timestamp\"");
    expect_reject(f, "{\"Timestamp\":" TS "}", "missing timestamp field \"timestamp\"");
    expect_reject(f, "{\"timestamp\":{\"iso\":" TS "}}",
                  "timestamp field \"timestamp\" must be a string or a number");
    expect_reject(f, "{\"timestamp\":[" TS "]}",
                  "timestamp field \"timestamp\" must be a string or a number");
    expect_reject(f, "{\"timestamp\":true}",
                  "timestamp field \"timestamp\" must be a string or a number");
    expect_reject(f, "{\"timestamp\":\"2023-02-29\"}",
                  "field \"timestamp\": timestamp day 29 out of range for 2023-02 (got "
                  "\"2023-02-29\")");
    expect_reject(f, "{\"timestamp\":\"\"}", "field \"timestamp\": timestamp is empty (got \"\")");
    expect_reject(f, "{\"timestamp\":\"soon \\\"ish\\\"\"}",
                  "field \"timestamp\": timestamp is not ISO 8601 (expected YYYY-MM-DD...) (got "
                  "\"soon ?ish?\")");
    expect_reject(f, "{\"timestamp\":1.7e12}",
                  "field \"timestamp\": timestamp is not ISO 8601 (expected YYYY-MM-DD...) (got "
                  "\"1.7e12\")");
    expect_reject(f, "{\"timestamp\":\"2025-06-11T12:00:00Zxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
                  "field \"timestamp\": timestamp has trailing characters (got "
                  "\"2025-06-11T12:00:00Zxxxxxxxxxxxxxxxxx...\")");
}

static void late_and_early_rejection(void **state)
{
    fx *f = *state;
    /* late = P1D, early = PT1H, now = 2025-06-11T12:00:00Z */
    expect_reject(f, "{\"timestamp\":\"2025-06-09T12:00:00Z\"}",
                  "timestamp 2025-06-09T12:00:00.000Z is older than the late rejection period "
                  "(P1D)");
    expect_reject(f, "{\"timestamp\":\"2025-06-10T11:59:59.999Z\"}",
                  "timestamp 2025-06-10T11:59:59.999Z is older than the late rejection period "
                  "(P1D)");
    expect_reject(f, "{\"timestamp\":\"2025-06-11T14:00:00Z\"}",
                  "timestamp 2025-06-11T14:00:00.000Z is further in the future than the early "
                  "rejection period (PT1H)");
    expect_reject(f, "{\"timestamp\":1749646800001}",
                  "timestamp 2025-06-11T13:00:00.001Z is further in the future than the early "
                  "rejection period (PT1H)");
    /* the bounds themselves are inside */
    run(f,
        "{\"timestamp\":\"2025-06-10T12:00:00Z\"}\n"
        "{\"timestamp\":\"2025-06-11T13:00:00Z\"}\n",
        2, 0);
    /* without windows anything goes */
    f->spec->late_reject_ms = 0;
    f->spec->early_reject_ms = 0;
    run(f, "{\"timestamp\":\"1970-01-01\"}\n{\"timestamp\":\"9999-01-01\"}\n", 2, 0);
    /* a period with every unit is spelled back in ISO 8601 */
    f->spec->late_reject_ms = 86400000LL + 3600000 + 60000 + 1500;
    expect_reject(f, "{\"timestamp\":\"2025-01-01\"}",
                  "timestamp 2025-01-01T00:00:00.000Z is older than the late rejection period "
                  "(P1DT1H1M1.500S)");
}

static void dimension_rejections(void **state)
{
    fx *f = *state;
    expect_reject(f, "{\"timestamp\":" TS ",\"page\":{\"a\":1}}",
                  "dimension \"page\" must be a string");
    expect_reject(f, "{\"timestamp\":" TS ",\"device\":[\"a\"]}",
                  "dimension \"device\" must be a string");
    expect_reject(f, "{\"timestamp\":" TS ",\"page\":\"0123456789abcdefg\"}",
                  "dimension \"page\" is 17 bytes, longer than max_string_length (16)");
    /* 9 two-byte characters: the limit counts unescaped UTF-8 bytes */
    expect_reject(f,
                  "{\"timestamp\":" TS ",\"country\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                  "\\u00e9\\u00e9\\u00e9\"}",
                  "dimension \"country\" is 18 bytes, longer than max_string_length (16)");
    /* exactly at the limit */
    run(f,
        "{\"timestamp\":" TS ",\"page\":\"0123456789abcdef\",\"country\":\"\\u00e9\\u00e9\\u00e9"
        "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
        1, 0);
    sl_event ev;
    only_event(f, &ev);
    assert_dim(ev.dims[DIM_PAGE], "0123456789abcdef");
    assert_int_equal(ev.dims[DIM_COUNTRY].len, 16);
}

static void dimension_numbers_and_booleans_kept_as_text(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":" TS ",\"event_type\":null,\"page\":404,\"device\":true,\"country\":1.50}",
        1, 0);
    sl_event ev;
    only_event(f, &ev);
    assert_dim(ev.dims[DIM_EVENT_TYPE], NULL);
    assert_dim(ev.dims[DIM_PAGE], "404");
    assert_dim(ev.dims[DIM_DEVICE], "true");
    assert_dim(ev.dims[DIM_COUNTRY], "1.50");
    run(f, "{\"timestamp\":" TS ",\"device\":false,\"page\":-2e3,\"country\":\"\"}", 1, 0);
    only_event(f, &ev);
    assert_dim(ev.dims[DIM_EVENT_TYPE], NULL); /* missing */
    assert_dim(ev.dims[DIM_PAGE], "-2e3");
    assert_dim(ev.dims[DIM_DEVICE], "false");
    assert_dim(ev.dims[DIM_COUNTRY], ""); /* empty is a value, not absent */
}

static void numeric_field_rejections(void **state)
{
    fx *f = *state;
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":\"87\"}",
                  "field \"latency_ms\" must be a number");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":true}",
                  "field \"latency_ms\" must be a number");
    expect_reject(f, "{\"timestamp\":" TS ",\"bytes\":{\"v\":1}}",
                  "field \"bytes\" must be a number");
    expect_reject(f, "{\"timestamp\":" TS ",\"bytes\":[1]}", "field \"bytes\" must be a number");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":1e999}",
                  "field \"latency_ms\" must be a finite number (got 1e999)");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":-1e400}",
                  "field \"latency_ms\" must be a finite number (got -1e400)");
    /* null is absent */
    run(f, "{\"timestamp\":" TS ",\"latency_ms\":null,\"bytes\":0}", 1, 0);
    sl_event ev;
    only_event(f, &ev);
    assert_false(ev.has_field[F_LATENCY]);
    assert_true(ev.has_field[F_BYTES]);
    assert_true(ev.fields[F_BYTES] == 0.0);
}

static void numeric_field_values(void **state)
{
    fx *f = *state;
    static const struct {
        const char *text;
        double want;
    } cases[] = {
        {"87", 87.0},
        {"-87", -87.0},
        {"0", 0.0},
        {"999999999999999", 999999999999999.0},
        {"1234567890123456789", 1234567890123456789.0},
        {"-0.25", -0.25},
        {"1e3", 1000.0},
        {"1.5E-3", 0.0015},
        {"3.141592653589793", 3.141592653589793},
        {"1e-400", 0.0}, /* underflow to zero is finite */
    };
    char body[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"timestamp\":" TS ",\"latency_ms\":%s}", cases[i].text);
        run(f, body, 1, 0);
        sl_event ev;
        only_event(f, &ev);
        assert_true(ev.has_field[F_LATENCY]);
        if (ev.fields[F_LATENCY] != cases[i].want) {
            fail_msg("%s parsed as %.17g", cases[i].text, ev.fields[F_LATENCY]);
        }
    }
}

static void partition_key_rejections(void **state)
{
    fx *f = *state;
    expect_reject(f, "{\"timestamp\":" TS ",\"user_id\":{\"id\":1}}",
                  "partition key \"user_id\" must be a string");
    expect_reject(f, "{\"timestamp\":" TS ",\"user_id\":[1]}",
                  "partition key \"user_id\" must be a string");
    expect_reject(f, "{\"timestamp\":" TS ",\"user_id\":\"a-very-long-user-id\"}",
                  "partition key \"user_id\" is 19 bytes, longer than max_string_length (16)");
}

/* One reason per event, checked in order: timestamp, dimensions, fields, key. */
static void first_failing_rule_is_reported(void **state)
{
    fx *f = *state;
    expect_reject(f, "{\"page\":{},\"latency_ms\":\"x\",\"user_id\":[]}",
                  "missing timestamp field \"timestamp\"");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":\"x\",\"page\":{},\"user_id\":[]}",
                  "dimension \"page\" must be a string");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":\"x\",\"user_id\":[]}",
                  "field \"latency_ms\" must be a number");
}

static void duplicate_keys_last_wins(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":\"garbage\",\"page\":{\"x\":1},\"page\":\"/a\",\"latency_ms\":\"s\","
        "\"latency_ms\":5,\"timestamp\":" TS ",\"user_id\":[],\"user_id\":\"u1234\"}",
        1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 6);
    assert_dim(ev.dims[DIM_PAGE], "/a");
    assert_true(ev.fields[F_LATENCY] == 5.0);
    assert_int_equal(ev.ts_ms, NOW);
    expect_reject(f, "{\"timestamp\":" TS ",\"page\":\"/a\",\"page\":{\"x\":1}}",
                  "dimension \"page\" must be a string");
    run(f, "{\"timestamp\":" TS ",\"page\":\"/a\",\"page\":null}", 1, 0);
    only_event(f, &ev);
    assert_dim(ev.dims[DIM_PAGE], NULL);
}

static void max_errors_caps_the_list_not_the_count(void **state)
{
    fx *f = *state;
    char body[2048];
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "{\"page\":\"/%d\"}\n{\"timestamp\":" TS "}\n", i);
    }
    f->max_errors = 3;
    run(f, body, 10, 10);
    assert_int_equal(f->p.nerrors, 3);
    expect_error(f, 0, 1, "missing timestamp field \"timestamp\"");
    expect_error(f, 1, 3, "missing timestamp field \"timestamp\"");
    expect_error(f, 2, 5, "missing timestamp field \"timestamp\"");
    f->max_errors = 0;
    run(f, body, 10, 10);
    assert_int_equal(f->p.nerrors, 0);
    /* a malformed line rolled back must not leave its listed entries behind */
    f->max_errors = 1;
    run(f, "{\"page\":\"/x\"} {\n{\"page\":\"/y\"}\n", 0, 2);
    expect_error(f, 0, 1, "malformed JSON: parse error: premature EOF at column 16");
}

/* ---- timestamps as numbers ----------------------------------------------------------- */

static void number_timestamps_by_format(void **state)
{
    fx *f = *state;
    static const struct {
        const char *format;
        const char *value;
        int64_t want; /* 0: rejected */
    } cases[] = {
        {"millis", "1749643200000", NOW},
        {"millis", "\"1749643200000\"", NOW},
        {"millis", "1749643200123.9", NOW + 123},
        {"millis", "1749643200", 0}, /* 1970-01-21, far outside the late window */
        {"seconds", "1749643200", NOW},
        {"seconds", "1749643200.5", NOW + 500},
        {"seconds", "\"1749643200\"", NOW},
        {"auto", "1749643200", NOW},
        {"auto", "1749643200000", NOW},
        {"auto", "1749643200.25", NOW + 250},
        {"auto", "\"2025-06-11T14:00:00+02:00\"", NOW},
        {"iso", TS, NOW},
        {"iso", "\"2025-06-11T12:00:00.5+00:00\"", NOW + 500},
        {"iso", "1749643200000", 0},
    };
    char body[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        use_spec(f, cases[i].format, 12, true);
        snprintf(body, sizeof(body), "{\"timestamp\":%s}", cases[i].value);
        if (cases[i].want == 0) {
            run(f, body, 0, 1);
            continue;
        }
        run(f, body, 1, 0);
        sl_event ev;
        only_event(f, &ev);
        if (ev.ts_ms != cases[i].want) {
            fail_msg("%s %s: got %lld", cases[i].format, cases[i].value, (long long)ev.ts_ms);
        }
    }
    use_spec(f, "iso", 12, true);
    expect_reject(f, "{\"timestamp\":1749643200000}",
                  "field \"timestamp\": timestamp is not ISO 8601 (expected YYYY-MM-DD...) (got "
                  "\"1749643200000\")");
    use_spec(f, "millis", 12, true);
    expect_reject(f, "{\"timestamp\":\"2025-06-11\"}",
                  "field \"timestamp\": timestamp number has trailing characters (got "
                  "\"2025-06-11\")");
}

/* ---- strings ---------------------------------------------------------------------- */

static void unicode_escapes_are_decoded(void **state)
{
    fx *f = *state;
    run(f,
        "{\"timestamp\":" TS ",\"page\":\"/caf\\u00e9\",\"device\":\"\\ud83d\\ude00\","
        "\"country\":\"\\\"q\\\"\\\\\\/\\t\",\"event_type\":\"caf\xc3\xa9\","
        "\"user_id\":\"u\\u00e9\"}",
        1, 0);
    sl_event ev;
    int part = only_event(f, &ev);
    assert_dim(ev.dims[DIM_PAGE], "/caf\xc3\xa9");
    assert_dim(ev.dims[DIM_DEVICE], "\xf0\x9f\x98\x80");
    assert_dim(ev.dims[DIM_COUNTRY], "\"q\"\\/\t");
    assert_dim(ev.dims[DIM_EVENT_TYPE], "caf\xc3\xa9");
    /* the key is hashed unescaped: XXH64("u\xc3\xa9") % 12 = 4 */
    assert_int_equal(part, 4);
    assert_int_equal(part, sl_partition_of("u\xc3\xa9", 3, 12));
}

static void escaped_keys_match_fields(void **state)
{
    fx *f = *state;
    run(f, "{\"time\\u0073tamp\":" TS ",\"p\\u0061ge\":\"/a\",\"user\\u005fid\":\"u1234\"}", 1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 6);
    assert_dim(ev.dims[DIM_PAGE], "/a");
}

static void nested_unknown_fields_ignored(void **state)
{
    fx *f = *state;
    run(f,
        "{\"meta\":{\"timestamp\":\"bad\",\"page\":{\"deep\":[1,{\"latency_ms\":\"x\"}]},"
        "\"user_id\":[]},\"tags\":[\"a\",{\"page\":[]},[[[]]]],\"extra\":null,\"n\":1e999,"
        "\"timestamp\":" TS ",\"page\":\"/top\",\"list\":[{\"timestamp\":{}}],\"ok\":true}",
        1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 9);
    assert_dim(ev.dims[DIM_PAGE], "/top");
    assert_false(ev.has_field[F_LATENCY]);
}

/* ---- partitions and the encoded events ----------------------------------------------- */

static void partition_assignment(void **state)
{
    fx *f = *state;
    static char body[128 * 210];
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "{\"timestamp\":" TS ",\"user_id\":\"user-%d\",\"page\":\"/%d\"}\n",
                              i, i);
    }
    /* missing, null, empty and numeric keys */
    n += (size_t)snprintf(body + n, sizeof(body) - n,
                          "{\"timestamp\":" TS ",\"page\":\"/missing\"}\n"
                          "{\"timestamp\":" TS ",\"page\":\"/null\",\"user_id\":null}\n"
                          "{\"timestamp\":" TS ",\"page\":\"/empty\",\"user_id\":\"\"}\n"
                          "{\"timestamp\":" TS ",\"page\":\"/num\",\"user_id\":42}\n");
    run(f, body, 204, 0);
    static sl_event evs[256];
    int parts[256];
    int got = collect(f, evs, parts, 256);
    assert_int_equal(got, 204);
    int used = 0;
    for (int i = 0; i < got; i++) {
        sl_str page = evs[i].dims[DIM_PAGE];
        char key[32];
        int want;
        if (sl_str_eq(page, "/missing") || sl_str_eq(page, "/null") || sl_str_eq(page, "/empty")) {
            want = 9;
        } else if (sl_str_eq(page, "/num")) {
            want = 5;
        } else {
            int len = snprintf(key, sizeof(key), "user-%.*s", (int)page.len - 1, page.p + 1);
            want = sl_partition_of(key, (size_t)len, 12);
        }
        assert_int_equal(parts[i], want);
        used |= 1 << parts[i];
    }
    assert_int_equal(used, 0xfff); /* 200 keys reach every partition */
}

static void no_partition_key_uses_partition_of_null(void **state)
{
    fx *f = *state;
    use_spec(f, "auto", 12, false);
    run(f, "{\"timestamp\":" TS ",\"user_id\":\"u1234\"}\n{\"timestamp\":" TS "}\n", 2, 0);
    assert_int_equal(f->p.counts[sl_partition_of(NULL, 0, 12)], 2);
    use_spec(f, "auto", 1, true);
    run(f, "{\"timestamp\":" TS ",\"user_id\":\"u1234\"}", 1, 0);
    assert_int_equal(f->p.nparts, 1);
    assert_int_equal(f->p.counts[0], 1);
}

static void decoded_events_equal_input(void **state)
{
    fx *f = *state;
    enum { N = 120 };
    static char body[N * 256];
    struct {
        int64_t ts;
        const char *event_type; /* NULL: absent */
        char device[16];
        bool has_lat, has_bytes;
        double lat, bytes;
    } in[N];
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        in[i].ts = NOW - (int64_t)i * 7001;
        char ts[40];
        switch (i % 3) {
        case 0:
            sl_time_format(in[i].ts, ts + 1, sizeof(ts) - 2);
            ts[0] = '"';
            strcat(ts, "\"");
            break;
        case 1:
            snprintf(ts, sizeof(ts), "%lld", (long long)in[i].ts);
            break;
        default: /* whole seconds as a string */
            in[i].ts = in[i].ts / 1000 * 1000;
            snprintf(ts, sizeof(ts), "\"%lld\"", (long long)(in[i].ts / 1000));
            break;
        }
        in[i].event_type = i % 4 == 0 ? NULL : i % 4 == 1 ? NULL : "view";
        snprintf(in[i].device, sizeof(in[i].device), "%s%d", i % 5 == 0 ? "" : "d", i);
        in[i].has_lat = i % 2 == 0;
        in[i].lat = i * 1.5;
        in[i].has_bytes = i % 3 != 2;
        in[i].bytes = i * 100.0;
        char et[32] = "";
        if (i % 4 == 1) {
            snprintf(et, sizeof(et), "\"event_type\":null,");
        } else if (i % 4 >= 2) {
            snprintf(et, sizeof(et), "\"event_type\":\"view\",");
        }
        char dev[32];
        if (i % 5 == 0) {
            snprintf(dev, sizeof(dev), "%d", i); /* a number: kept as its text */
        } else {
            snprintf(dev, sizeof(dev), "\"d%d\"", i);
        }
        char lat[40] = "";
        if (in[i].has_lat) {
            snprintf(lat, sizeof(lat), ",\"latency_ms\":%.1f", in[i].lat);
        }
        char bytes[40] = "";
        if (in[i].has_bytes) {
            snprintf(bytes, sizeof(bytes), ",\"bytes\":%d", i * 100);
        }
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "{%s\"timestamp\":%s,\"user_id\":\"user-%d\",\"page\":\"/p/%d\","
                              "\"device\":%s,\"ignored\":{\"x\":[%d]}%s%s}\n",
                              et, ts, i, i, dev, i, lat, bytes);
    }
    run(f, body, N, 0);
    static sl_event evs[N + 1];
    int parts[N + 1];
    assert_int_equal(collect(f, evs, parts, N + 1), N);
    bool seen[N] = {false};
    int last_in_part[12];
    for (int i = 0; i < 12; i++) {
        last_in_part[i] = -1;
    }
    for (int k = 0; k < N; k++) {
        const sl_event *ev = &evs[k];
        sl_str page = ev->dims[DIM_PAGE];
        assert_true(page.len > 3 && memcmp(page.p, "/p/", 3) == 0);
        int i = 0;
        for (size_t c = 3; c < page.len; c++) {
            i = i * 10 + (page.p[c] - '0');
        }
        assert_true(i >= 0 && i < N && !seen[i]);
        seen[i] = true;
        /* events keep their input order within a partition */
        assert_true(i > last_in_part[parts[k]]);
        last_in_part[parts[k]] = i;
        char key[32];
        int klen = snprintf(key, sizeof(key), "user-%d", i);
        assert_int_equal(parts[k], sl_partition_of(key, (size_t)klen, 12));
        assert_int_equal(ev->ts_ms, in[i].ts);
        assert_int_equal(ev->ndims, 4);
        assert_dim(ev->dims[DIM_EVENT_TYPE], in[i].event_type);
        assert_dim(ev->dims[DIM_DEVICE], in[i].device);
        assert_dim(ev->dims[DIM_COUNTRY], NULL);
        assert_int_equal(ev->nfields, 2);
        assert_int_equal(ev->has_field[F_LATENCY], in[i].has_lat);
        if (in[i].has_lat) {
            assert_true(ev->fields[F_LATENCY] == in[i].lat);
        }
        assert_int_equal(ev->has_field[F_BYTES], in[i].has_bytes);
        if (in[i].has_bytes) {
            assert_true(ev->fields[F_BYTES] == in[i].bytes);
        }
    }
}

/* The parser keeps buffers between runs; nothing of an earlier run may leak into a
 * later one, also across specs with different partition counts. */
static void parser_reuse_across_specs(void **state)
{
    fx *f = *state;
    run(f, "{\"page\":\"/a\"}\n{\"timestamp\":" TS ",\"user_id\":\"u1234\"}", 1, 1);
    assert_int_equal(f->p.counts[6], 1);
    use_spec(f, "auto", 3, true);
    run(f, "{\"timestamp\":" TS ",\"user_id\":\"u1234\"}", 1, 0);
    assert_int_equal(f->p.nparts, 3);
    assert_int_equal(f->p.counts[0], 1); /* XXH64("u1234") % 3 = 0 */
    assert_int_equal(f->p.counts[1] + f->p.counts[2], 0);
    use_spec(f, "auto", 12, true);
    run(f, "{\"timestamp\":" TS "}", 1, 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(f->p.counts[i], i == 9 ? 1 : 0);
        assert_int_equal(f->p.parts[i].len == 0, i != 9);
    }
    /* fini then init gives a usable parser again */
    sl_parser_fini(&f->p);
    sl_parser_init(&f->p);
    run(f, seed_event, 1, 0);
}

/* The shipped datasource config parses the seed's event shape. */
static void seed_config_and_event(void **state)
{
    fx *f = *state;
    sl_spec_free(f->spec);
    f->spec = NULL;
    sl_err err = {0};
    if (sl_spec_load(SL_SOURCE_DIR "/configs/datasources/page_events.json", &f->spec, &err) != 0) {
        fail_msg("page_events.json: %s", err.msg);
    }
    run(f, seed_event, 1, 0);
    sl_event ev;
    assert_int_equal(only_event(f, &ev), 6);
    assert_int_equal(ev.ndims, f->spec->ndims);
    for (int i = 0; i < ev.ndims; i++) {
        static const struct {
            const char *dim, *value;
        } want[] = {{"event_type", "page_view"},
                    {"page", "/pricing"},
                    {"device", "mobile"},
                    {"country", "US"}};
        for (size_t j = 0; j < 4; j++) {
            if (strcmp(f->spec->dims[i], want[j].dim) == 0) {
                assert_dim(ev.dims[i], want[j].value);
            }
        }
    }
    assert_int_equal(ev.nfields, 1);
    assert_true(ev.has_field[0] && ev.fields[0] == 87.0);
    /* the "users" metric: the event carries XXH64("u1234") (hash_test.c's value) */
    assert_int_equal(ev.nhashes, 1);
    assert_true(ev.has_hash[0]);
    assert_true(ev.hashes[0] == 0x9314A49CC49A958EULL);
}

/* Fields of distinct metrics travel as the XXH64 of their text (values from hash_test.c,
 * computed independently); quantiles fields refuse negative numbers. */
static void distinct_and_quantiles_fields(void **state)
{
    fx *f = *state;
    sl_spec_free(f->spec);
    const char *j = "{\"name\":\"t\",\"dimensions\":[\"page\"],\"metrics\":["
                    "{\"name\":\"users\",\"type\":\"distinct\",\"field\":\"user_id\"},"
                    "{\"name\":\"lat\",\"type\":\"quantiles\",\"field\":\"latency_ms\"},"
                    "{\"name\":\"tags\",\"type\":\"distinct\",\"field\":\"tag\"},"
                    "{\"name\":\"pages\",\"type\":\"distinct\",\"field\":\"page\"}],"
                    "\"partitions\":{\"count\":12,\"key\":\"user_id\"}}";
    sl_err err = {0};
    if (sl_spec_parse(j, strlen(j), "t", &f->spec, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(f->spec->nhfields, 3); /* user_id, tag, page */
    static const struct {
        const char *body;
        int part;
        bool has[3];
        uint64_t hash[3];
    } cases[] = {
        {"{\"timestamp\":" TS ",\"user_id\":\"u1234\",\"tag\":\"abc\",\"page\":\"a\","
         "\"latency_ms\":5}",
         6,
         {true, true, true},
         {0x9314A49CC49A958EULL, 0x44BC2CF5AD770999ULL, 0xD24EC4F1A98C6E5BULL}},
        /* escapes are decoded before hashing; "" is a value, unlike a missing field */
        {"{\"timestamp\":" TS ",\"user_id\":\"\",\"tag\":\"\\u0061bc\"}",
         9,
         {true, true, false},
         {0xEF46DB3751D8E999ULL, 0x44BC2CF5AD770999ULL, 0}},
        /* missing and null: no hash; the partition is that of no key */
        {"{\"timestamp\":" TS ",\"tag\":null,\"latency_ms\":-0}", 9, {false, false, false}, {0}},
        /* a number counts as its JSON text, like a dimension */
        {"{\"timestamp\":" TS ",\"user_id\":42,\"tag\":true}", 5, {true, true, false}, {0, 0, 0}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        run(f, cases[c].body, 1, 0);
        sl_event ev;
        assert_int_equal(only_event(f, &ev), cases[c].part);
        assert_int_equal(ev.nhashes, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(ev.has_hash[i], cases[c].has[i]);
            if (c == 3 && i < 2) {
                assert_true(ev.hashes[i] == sl_hash64(i == 0 ? "42" : "true", i == 0 ? 2 : 4));
            } else if (cases[c].has[i]) {
                assert_true(ev.hashes[i] == cases[c].hash[i]);
            }
        }
    }
    expect_reject(f, "{\"timestamp\":" TS ",\"tag\":{\"a\":1}}",
                  "field \"tag\" must be a string, a number or a boolean (its distinct values "
                  "are counted)");
    expect_reject(f, "{\"timestamp\":" TS ",\"user_id\":[1]}",
                  "field \"user_id\" must be a string, a number or a boolean (its distinct "
                  "values are counted)");
    expect_reject(f, "{\"timestamp\":" TS ",\"latency_ms\":-0.5}",
                  "field \"latency_ms\" must not be negative (got -0.5): the quantiles metric "
                  "\"lat\" keeps values >= 0");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(single_object, setup, teardown),
    cmocka_unit_test_setup_teardown(single_object_with_surrounding_whitespace_and_bom, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(pretty_printed_object, setup, teardown),
    cmocka_unit_test_setup_teardown(pretty_printed_objects_keep_their_start_line, setup, teardown),
    cmocka_unit_test_setup_teardown(broken_pretty_printed_object_rejects_each_line, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(truncated_first_line_then_good_lines, setup, teardown),
    cmocka_unit_test_setup_teardown(array_body, setup, teardown),
    cmocka_unit_test_setup_teardown(empty_bodies, setup, teardown),
    cmocka_unit_test_setup_teardown(array_non_object_elements_rejected_individually, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(array_syntax_error_rejects_whole_body, setup, teardown),
    cmocka_unit_test_setup_teardown(ndjson_crlf_and_blank_lines, setup, teardown),
    cmocka_unit_test_setup_teardown(ndjson_bad_lines_mixed_with_good, setup, teardown),
    cmocka_unit_test_setup_teardown(ndjson_invalid_utf8_rejects_the_line, setup, teardown),
    cmocka_unit_test_setup_teardown(ndjson_many_values_on_one_line_rolled_back, setup, teardown),
    cmocka_unit_test_setup_teardown(top_level_non_objects_in_ndjson, setup, teardown),
    cmocka_unit_test_setup_teardown(timestamp_rejections, setup, teardown),
    cmocka_unit_test_setup_teardown(late_and_early_rejection, setup, teardown),
    cmocka_unit_test_setup_teardown(dimension_rejections, setup, teardown),
    cmocka_unit_test_setup_teardown(dimension_numbers_and_booleans_kept_as_text, setup, teardown),
    cmocka_unit_test_setup_teardown(numeric_field_rejections, setup, teardown),
    cmocka_unit_test_setup_teardown(numeric_field_values, setup, teardown),
    cmocka_unit_test_setup_teardown(partition_key_rejections, setup, teardown),
    cmocka_unit_test_setup_teardown(first_failing_rule_is_reported, setup, teardown),
    cmocka_unit_test_setup_teardown(duplicate_keys_last_wins, setup, teardown),
    cmocka_unit_test_setup_teardown(max_errors_caps_the_list_not_the_count, setup, teardown),
    cmocka_unit_test_setup_teardown(number_timestamps_by_format, setup, teardown),
    cmocka_unit_test_setup_teardown(unicode_escapes_are_decoded, setup, teardown),
    cmocka_unit_test_setup_teardown(escaped_keys_match_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(nested_unknown_fields_ignored, setup, teardown),
    cmocka_unit_test_setup_teardown(partition_assignment, setup, teardown),
    cmocka_unit_test_setup_teardown(no_partition_key_uses_partition_of_null, setup, teardown),
    cmocka_unit_test_setup_teardown(decoded_events_equal_input, setup, teardown),
    cmocka_unit_test_setup_teardown(parser_reuse_across_specs, setup, teardown),
    cmocka_unit_test_setup_teardown(seed_config_and_event, setup, teardown),
    cmocka_unit_test_setup_teardown(distinct_and_quantiles_fields, setup, teardown),
};

SL_TEST_MAIN(tests)
