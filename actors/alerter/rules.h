/* Alert rules: the rule files (the JSON files of configs/alerts/, see docs/alerts.md),
 * the queries a rule sends, how their results become one value per window, the
 * conditions, and the state machine ok -> pending -> firing -> resolved (plus error).
 *
 * Everything here is pure (no I/O besides reading rule files), so the alerter actor
 * (alerter.c) only schedules evaluations, runs the queries over HTTP, persists states
 * and delivers notifications.
 *
 * Time: a rule looks at tumbling windows of `window` ms aligned to the epoch. Its
 * clock says which window is the latest complete one: "wall" -- the last window that
 * ended at least `delay` before now; "data" -- the last window that ended at least
 * `delay` before the start of the newest stored minute of the datasource (event time:
 * a window closes when later data arrives; for backfills, replays and tests). The
 * `for` duration is measured on the same clock. */
#ifndef SL_ALERTER_RULES_H
#define SL_ALERTER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

#define SL_ALERT_STATES(X)                                                                         \
    X(OK, "ok")                                                                                    \
    X(PENDING, "pending")                                                                          \
    X(FIRING, "firing")                                                                            \
    X(RESOLVED, "resolved")                                                                        \
    X(ERROR, "error")

typedef enum sl_alert_state {
#define SL_ALERT_STATE_ENUM(e, name) SL_ALERT_##e,
    SL_ALERT_STATES(SL_ALERT_STATE_ENUM)
#undef SL_ALERT_STATE_ENUM
        SL_ALERT_NSTATES
} sl_alert_state;

const char *sl_alert_state_name(int state);
/* The state named name, or -1. */
int sl_alert_state_parse(const char *name);

typedef enum sl_alert_cond_type {
    SL_COND_THRESHOLD,
    SL_COND_DROP,
    SL_COND_SPIKE,
    SL_COND_NO_DATA,
} sl_alert_cond_type;

typedef struct sl_alert_cond {
    sl_alert_cond_type type;
    bool has_above, has_below; /* threshold */
    double above, below;
    int baseline_windows; /* drop / spike: N previous windows */
    bool zscore_mode;     /* drop / spike: z-score instead of percent */
    double percent;       /* drop: below this % of the baseline; spike: above it */
    double zscore;        /* drop / spike: |z| over this */
    double min_baseline;  /* no verdict while the baseline mean is below this */
    int min_windows;      /* baseline windows that must have data */
    int64_t no_data_ms;   /* no_data: how long without any data */
} sl_alert_cond;

typedef struct sl_alert_rule {
    char *name;
    char *source; /* the file, for messages */
    char *description;
    char *query_prefix; /* native: the query object as JSON without its closing brace and
                           without intervals/granularity (the alerter adds them) */
    char *sql;          /* or SQL with two ? placeholders: window start and end */
    char *datasource;   /* native: dataSource; sql: the "datasource" key (data clock) */
    char *value;        /* the result field holding the value */
    int64_t window_ms, every_ms, delay_ms, for_ms;
    bool data_clock;
    bool missing_zero; /* a window without data counts as 0 (else: no data) */
    sl_alert_cond cond;
    char *webhook;          /* NULL: log only */
    unsigned notify_states; /* bit per sl_alert_state */
    int64_t notify_timeout_ms, notify_backoff_ms;
    int notify_retries;
    char *labels_json; /* "labels" object as JSON ("{}" when absent) */
} sl_alert_rule;

/* Parses one rule from JSON text (comments allowed); source names it in messages.
 * Errors (SL_ECONFIG) name the source, the key and the reason. *out is owned by the
 * caller (sl_alert_rule_free; NULL is a no-op). */
int sl_alert_rule_parse(const char *json, size_t len, const char *source, sl_alert_rule **out,
                        sl_err *err);
void sl_alert_rule_free(sl_alert_rule *r);

/* Loads every *.json file of dir (sorted by name). A missing directory gives no rules;
 * rule names must be unique. *rules (an array of *n) is owned by the caller
 * (sl_alert_rules_free). */
int sl_alert_rules_load(const char *dir, sl_alert_rule ***rules, int *n, sl_err *err);
void sl_alert_rules_free(sl_alert_rule **rules, int n);

/* How many consecutive windows one evaluation looks at (the current one last). */
int sl_alert_nwindows(const sl_alert_rule *r);

/* The request body of a native rule for the windows [from_ms, to_ms) (a timeseries
 * with granularity = window); appended to out. */
void sl_alert_native_body(const sl_alert_rule *r, int64_t from_ms, int64_t to_ms, sl_buf *out);
/* The body of a SQL rule for the one window [from_ms, to_ms). */
void sl_alert_sql_body(const sl_alert_rule *r, int64_t from_ms, int64_t to_ms, sl_buf *out);
/* The body of the timeBoundary query that finds a datasource's newest minute. */
void sl_alert_boundary_body(const char *datasource, sl_buf *out);

/* JSON writing, shared with the alerter's replies (alerter.c). sl_alert_json_str
 * appends s as a quoted, escaped JSON string (null when s is NULL); sl_alert_json_fmt
 * appends printf-formatted text verbatim (numbers, punctuation), of any length. */
void sl_alert_json_str(sl_buf *out, const char *s);
void sl_alert_json_fmt(sl_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a native timeseries result into values[0..n) for the windows starting at
 * from_ms, one per window_ms: NAN where the result has no row (or a null value).
 * SL_EPARSE (err says what) for anything but the expected shape. */
int sl_alert_parse_series(const sl_alert_rule *r, const char *body, size_t len, int64_t from_ms,
                          int n, double *values, sl_err *err);
/* Reads a SQL result (an array of objects): the value column of the first row, NAN
 * when there is no row or it is null. */
int sl_alert_parse_sql(const sl_alert_rule *r, const char *body, size_t len, double *value,
                       sl_err *err);
/* Reads a timeBoundary result: *max_ms = the newest stored minute, or returns
 * SL_ENOTFOUND when the datasource is empty. */
int sl_alert_parse_boundary(const char *body, size_t len, int64_t *max_ms, sl_err *err);

/* The verdict of one evaluation. */
typedef struct sl_alert_eval {
    bool known;      /* false: not enough data for a verdict (the state is kept) */
    bool cond;       /* the condition holds */
    double value;    /* the current window's value (NAN: none) */
    double baseline; /* drop / spike: mean of the baseline windows (NAN: none) */
    char detail[256];
} sl_alert_eval;

/* Applies r's condition to windows[0..n) (n = sl_alert_nwindows(r); the current window
 * last; NAN = no data). */
void sl_alert_condition(const sl_alert_rule *r, const double *windows, int n, sl_alert_eval *out);

/* What a rule remembers between evaluations (persisted by the alerter). */
typedef struct sl_alert_status {
    int state;
    int before_error;      /* the state an error interrupted */
    int64_t since_ms;      /* clock time the state was entered */
    int64_t pending_since; /* clock time the condition started to hold */
} sl_alert_status;

/* A state change. */
typedef struct sl_alert_change {
    bool changed;
    int from, to;
    bool notify; /* worth a notification (not a return from error to the same state) */
} sl_alert_change;

/* Advances st by one evaluation at clock_ms: failed (the query failed) or ev's verdict.
 * Returns the change (changed false when the state stays). */
sl_alert_change sl_alert_step(const sl_alert_rule *r, sl_alert_status *st, bool failed,
                              const sl_alert_eval *ev, int64_t clock_ms);

/* A one-line description of the condition ("value below 50% of the mean of the previous
 * 10 windows", ...), into buf. */
const char *sl_alert_describe(const sl_alert_rule *r, char *buf, size_t size);

#endif
