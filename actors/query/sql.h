/* Druid SQL: the request, the parser, the planner onto native queries, and the result.
 *
 * One execution path: a SELECT on a datasource is planned into a Druid native query
 * (JSON), which goes through sl_native_parse and sl_native_exec exactly like a POST to
 * /druid/v2. The native result is then read back into rows of "slots" (time bucket,
 * grouping dimensions, aggregator columns) and the SQL layer does only what the native
 * engine has no words for: HOP windows (each stored bucket added to every window that
 * contains it), projections and expressions over aggregates (AVG = SUM / COUNT),
 * HAVING, and an ORDER BY / LIMIT the native query could not take. INFORMATION_SCHEMA
 * tables are answered from the configuration with the same row pipeline.
 *
 * Errors (sl_err.code) say which HTTP answer to give (see sl_sql_error):
 *   SL_ECODEC     the request body is not a valid SQL request (bad JSON, no "query")
 *   SL_EPARSE     SQL syntax error: the message names line and column
 *   SL_EINVAL     a valid statement that cannot be planned: unknown column or table
 *                 (named, with the datasource), a column rollup did not keep, a
 *                 function used wrongly, an unsupported construct
 *   SL_ENOTFOUND  the native engine refused the plan (an aggregator it does not have)
 *   SL_ETOOBIG, SL_ETIMEDOUT, SL_EBUSY from execution. */
#ifndef SL_QUERY_SQL_H
#define SL_QUERY_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "msg.h"
#include "store.h"

/* SQL column types, with Druid's names (sl_sql_type_name) and native type strings. */
typedef enum sl_sql_type {
    SL_SQL_VARCHAR,
    SL_SQL_BIGINT,
    SL_SQL_DOUBLE,
    SL_SQL_FLOAT,
    SL_SQL_TIMESTAMP,
    SL_SQL_BOOLEAN,
    SL_SQL_OTHER,
} sl_sql_type;

/* "VARCHAR", "BIGINT", ... (the sqlType of a header, INFORMATION_SCHEMA's DATA_TYPE). */
const char *sl_sql_type_name(sl_sql_type t);
/* Druid's native type of a column of that SQL type: "STRING", "LONG", "DOUBLE", ... */
const char *sl_sql_native_type(sl_sql_type t);

/* A value. TIME and INTERVAL hold milliseconds in i; STR points at s[0..n) (owned by
 * whatever produced it: the statement, the result or the native reply). */
typedef enum sl_sql_vkind {
    SL_SQLV_NULL,
    SL_SQLV_BOOL,
    SL_SQLV_LONG,
    SL_SQLV_DOUBLE,
    SL_SQLV_STR,
    SL_SQLV_TIME,
    SL_SQLV_INTERVAL,
} sl_sql_vkind;

typedef struct sl_sql_value {
    sl_sql_vkind kind;
    int64_t i;
    double d;
    const char *s;
    size_t n;
} sl_sql_value;

/* Result formats of the SQL API. */
typedef enum sl_sql_format {
    SL_SQL_OBJECT,
    SL_SQL_ARRAY,
    SL_SQL_OBJECTLINES,
    SL_SQL_ARRAYLINES,
    SL_SQL_CSV,
} sl_sql_format;

/* The format named name (case-insensitive, as Druid), or -1. */
int sl_sql_format_parse(const char *name);
/* Content-Type of a successful reply in that format. */
const char *sl_sql_content_type(sl_sql_format f);

/* The request as POSTed to /druid/v2/sql (the gateway forwards a JSON body; it turns
 * text/plain and form bodies into {"query": ...} first). */
typedef struct sl_sql_request {
    char *query;
    sl_sql_format format;
    bool header, types_header, sql_types_header;
    int64_t timeout_ms; /* context.timeout; 0: none */
    int nparams;
    sl_sql_value *params; /* strings owned by the request */
} sl_sql_request;

/* Parses body[0..len). On success *out is owned by the caller (sl_sql_request_free).
 * Errors: SL_ECODEC with a message naming the field. */
int sl_sql_request_parse(const char *body, size_t len, sl_sql_request **out, sl_err *err);
void sl_sql_request_free(sl_sql_request *r);

/* A finished result: ncols named, typed columns and nrows rows of values (row-major). */
typedef struct sl_sql_result sl_sql_result;

int sl_sql_result_ncols(const sl_sql_result *r);
size_t sl_sql_result_nrows(const sl_sql_result *r);
const char *sl_sql_result_name(const sl_sql_result *r, int col);
sl_sql_type sl_sql_result_type(const sl_sql_result *r, int col);
const sl_sql_value *sl_sql_result_cell(const sl_sql_result *r, size_t row, int col);
void sl_sql_result_free(sl_sql_result *r);

/* Options of one statement. now_ms is CURRENT_TIMESTAMP (fixed for the statement). */
typedef struct sl_sql_opts {
    const sl_sql_value *params;
    int nparams;
    int64_t now_ms;
    int64_t timeout_ms; /* 0: none */
} sl_sql_opts;

/* Parses, plans and runs sql against cfg's datasources in st (NULL: no store yet, every
 * datasource is empty). On success *out is a new result owned by the caller. */
int sl_sql_run(const sl_config *cfg, sl_store *st, const char *sql, const sl_sql_opts *opts,
               sl_sql_result **out, sl_err *err);

/* Parses and plans sql without running it: native receives the native query JSON
 * (empty for INFORMATION_SCHEMA statements, which need none). For tests and EXPLAIN. */
int sl_sql_plan_native(const sl_config *cfg, const char *sql, const sl_sql_opts *opts,
                       sl_buf *native, sl_err *err);

/* Only parses sql (the fuzz target's entry point): 0 or SL_EPARSE / SL_EINVAL. */
int sl_sql_parse_only(const char *sql, size_t len, const sl_sql_opts *opts, sl_err *err);

/* ---- sql_result.c ------------------------------------------------------------------------ */

/* Writes r in format f (with the header rows Druid adds for header / typesHeader /
 * sqlTypesHeader) into out (reset first). */
void sl_sql_result_write(const sl_sql_result *r, sl_sql_format f, bool header, bool types,
                         bool sql_types, sl_buf *out);

/* Replaces out's content with Druid's SQL error object for an sl_err code and message
 * and returns the HTTP status (400 for request, syntax and planning errors, 429 for
 * SL_EBUSY, 504 for SL_ETIMEDOUT, 500 otherwise). */
int sl_sql_error(sl_buf *out, int code, const char *msg);

/* The query actor's entry: parses the request body, runs it and writes the response body
 * (result or error JSON) into out; returns the HTTP status. */
int sl_query_sql(const sl_config *cfg, sl_store *st, const char *body, size_t len,
                 int64_t default_timeout_ms, sl_buf *out);

#endif
