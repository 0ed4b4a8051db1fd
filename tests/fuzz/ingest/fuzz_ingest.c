/* libFuzzer target for the ingest body parser (actors/ingest/parse.c): any input must
 * parse without memory errors, and the parser's own accounting must agree with what
 * it produced (per-partition counts match the encoded events, rejected reasons are
 * well-formed, a whole-body parse error accepts nothing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static sl_spec *spec;
static sl_parser parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (spec == NULL) {
        sl_err e;
        if (sl_spec_load(SL_SOURCE_DIR "/configs/datasources/page_events.json", &spec, &e) != 0) {
            abort();
        }
        sl_parser_init(&parser);
    }
    sl_err err;
    int rc = sl_parser_run(&parser, spec, (const char *)data, size, 1749643200000LL, 5, &err);
    if (rc != 0 && rc != SL_EPARSE) {
        abort();
    }
    int64_t sum = 0;
    for (int i = 0; i < parser.nparts; i++) {
        sl_events_iter it;
        sl_event ev;
        int64_t n = 0;
        int r;
        sl_events_iter_init(&it, parser.parts[i].data, parser.parts[i].len);
        while ((r = sl_events_next(&it, &ev, &err)) == 1) {
            n++;
        }
        if (r < 0 || n != parser.counts[i]) {
            abort();
        }
        sum += n;
    }
    if (sum != parser.accepted || parser.nerrors > 5 || parser.nerrors > parser.rejected) {
        abort();
    }
    for (int i = 0; i < parser.nerrors; i++) {
        if (strlen(parser.errors[i].reason.p) != parser.errors[i].reason.len ||
            parser.errors[i].line < 1) {
            abort();
        }
    }
    if (rc == SL_EPARSE && (parser.accepted != 0 || parser.rejected != 0)) {
        abort();
    }
    return 0;
}
