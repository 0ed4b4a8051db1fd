/* Response bodies of the query actor: Druid's result JSON, Druid's error JSON and the
 * datasource listing, written with yajl_gen straight into an sl_buf.
 *
 * Numbers follow Druid's printing: long aggregators as integers, doubles in their
 * shortest round-trip form with a ".0" when integral, non-finite values as null. */
#ifndef SL_QUERY_RESULT_H
#define SL_QUERY_RESULT_H

#include <stdbool.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "config.h"
#include "msg.h"
#include "native.h"
#include "store.h"

/* A finished value column (aggregator or post-aggregator) of one result row. An array
 * column (sl_native_column_is_array) has arr: its post-aggregator's nfractions values
 * (NaN written as null), borrowed from the row's scratch; v and null are unused then. */
typedef struct sl_qval {
    double v;
    bool null;
    const double *arr;
} sl_qval;

/* A generator whose output is appended to out (which must outlive it). */
yajl_gen sl_res_gen(sl_buf *out);
/* Frees the generator; out keeps what was written. */
void sl_res_gen_free(yajl_gen g);

void sl_res_time(yajl_gen g, int64_t ms);
void sl_res_double(yajl_gen g, double v);
/* A value: null, an integer (is_long, truncated toward zero) or a double. */
void sl_res_value(yajl_gen g, double v, bool null, bool is_long);
void sl_res_cstr(yajl_gen g, const char *s);
/* A string view; p == NULL writes null. */
void sl_res_str(yajl_gen g, sl_str s);
/* Writes "name": value for every value column of q (inside an open map); array columns
 * as JSON arrays of doubles. */
void sl_res_columns(yajl_gen g, const sl_native *q, const sl_qval *vals);

/* Replaces out's content with Druid's error object for an sl_err code and message and
 * returns the HTTP status to answer with:
 *   SL_ECODEC, SL_EPARSE 400 "Invalid query"; SL_EINVAL 400 "Unsupported operation";
 *   SL_ETOOBIG 400 "Resource limit exceeded"; SL_ETIMEDOUT 504 "Query timeout";
 *   anything else 500 "Unknown exception". */
int sl_res_error(sl_buf *out, int code, const char *msg);

/* Writes the datasource listing (GET /druid/v2/datasources, see query.c) into out and
 * returns the HTTP status. st may be NULL (no store yet: every datasource empty). */
int sl_res_datasources(const sl_config *cfg, sl_store *st, sl_buf *out);

#endif
