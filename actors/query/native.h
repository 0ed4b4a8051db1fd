/* Druid native queries: the parsed plan and the parser that builds it.
 *
 * sl_native_parse turns the JSON body of a POST /druid/v2 request into an sl_native
 * plan bound to one datasource spec: names are resolved to dimension / metric indexes
 * once here, so execution (exec.c) only works with integers and dictionary ids.
 *
 * Supported: timeseries, topN, groupBy, timeBoundary; granularities all, none,
 * second..day, week and {"type":"period"|"duration"}; filters selector, equals, in,
 * bound, range, like, regex, search, null, true, false, and, or, not; aggregators count,
 * long/double/float Sum/Min/Max, the sketch aggregators hyperUnique, HLLSketchMerge and
 * quantilesDoublesSketch (over the spec's distinct / quantiles metrics), cardinality
 * (over dimensions) and filtered; post-aggregators arithmetic, fieldAccess,
 * finalizingFieldAccess, constant, double/long Greatest/Least, hyperUniqueCardinality,
 * HLLSketchEstimate, quantilesDoublesSketchToQuantile(s); groupBy having and limitSpec.
 * Anything else is rejected with a message naming the field.
 *
 * Error codes (sl_err.code) tell the caller which HTTP answer to give:
 *   SL_ECODEC  the body is not JSON (message has line and column)
 *   SL_EPARSE  the JSON is not a valid query (message names the field)
 *   SL_EINVAL  valid Druid, but asks for something Sluice does not support
 */
#ifndef SL_QUERY_NATIVE_H
#define SL_QUERY_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef enum sl_nq_type {
    SL_NQ_TIMESERIES,
    SL_NQ_TOPN,
    SL_NQ_GROUPBY,
    SL_NQ_TIMEBOUNDARY,
} sl_nq_type;

/* Half-open [start, end) in ms. */
typedef struct sl_interval {
    int64_t start;
    int64_t end;
} sl_interval;

/* Buckets are origin + k * period_ms; all = one bucket for everything. Periods below
 * the stored minute behave as the minute (the rollup cannot be split). */
typedef struct sl_gran {
    bool all;
    int64_t period_ms;
    int64_t origin_ms;
} sl_gran;

/* Start of the bucket holding t (not for all). */
static inline int64_t sl_gran_bucket(const sl_gran *g, int64_t t)
{
    int64_t r = (t - g->origin_ms) % g->period_ms;
    if (r < 0) {
        r += g->period_ms;
    }
    return t - r;
}

typedef enum sl_filter_type {
    SL_FILTER_TRUE,
    SL_FILTER_FALSE,
    SL_FILTER_VALUES, /* selector, equals, in, null: value in a set (NULL entry = null) */
    SL_FILTER_BOUND,  /* bound, range */
    SL_FILTER_LIKE,
    SL_FILTER_REGEX,
    SL_FILTER_SEARCH, /* contains / insensitive_contains */
    SL_FILTER_AND,
    SL_FILTER_OR,
    SL_FILTER_NOT,
    SL_FILTER_BITMAP, /* compiled by exec: a match bit per dictionary id of dim */
} sl_filter_type;

typedef struct sl_filter sl_filter;
struct sl_filter {
    sl_filter_type type;
    char *column; /* dimension name as written (leaves) */
    int dim;      /* index in spec->dims; -1: not a dimension, every row is null */

    int nvalues;
    char **values; /* VALUES: sorted, NULL means null (first when present) */

    char *lower, *upper; /* BOUND: NULL = unbounded */
    bool lower_strict, upper_strict;
    bool numeric;
    double lower_num, upper_num;

    char *pattern; /* LIKE (with its escape already applied), SEARCH needle */
    char escape;
    bool case_sensitive;
    void *regex; /* REGEX: compiled regex_t */

    int nkids;
    sl_filter **kids; /* AND / OR (n), NOT (1) */

    uint8_t *bits; /* BITMAP: nbits entries, 1 = match; ids >= nbits never match */
    uint32_t nbits;
};

/* Does a leaf filter (VALUES/BOUND/LIKE/REGEX/SEARCH/TRUE/FALSE/BITMAP-less) match the
 * string s[0..len) (s == NULL: the null value)? Composite nodes evaluate their kids. */
bool sl_filter_match_str(const sl_filter *f, const char *s, size_t len);

typedef enum sl_agg_op {
    SL_AGG_SUM,
    SL_AGG_MIN,
    SL_AGG_MAX,
    SL_AGG_HLL,  /* hyperUnique, HLLSketchMerge: merge of a distinct metric's sketches */
    SL_AGG_CARD, /* cardinality: HLL of dimension values, built at query time */
    SL_AGG_DDS,  /* quantilesDoublesSketch: merge of a quantiles metric's sketches */
} sl_agg_op;

/* Sketch aggregators (HLL, CARD, DDS) keep a sketch per group; their value is the
 * estimate (HLL, CARD) or the number of values (DDS). */
static inline bool sl_agg_is_sketch(sl_agg_op op)
{
    return op == SL_AGG_HLL || op == SL_AGG_CARD || op == SL_AGG_DDS;
}

typedef struct sl_agg {
    char *name;
    char *type; /* as written, for messages */
    sl_agg_op op;
    bool is_long;            /* output truncated toward zero (rounded for "round": true
                                estimates) and printed as an integer */
    int src;                 /* -1: the row's event count; else metric index (a distinct or
                                quantiles metric for HLL / DDS) */
    sl_filter *filter;       /* filtered aggregator; NULL otherwise */
    int sketch;              /* sketch aggregators: index among the query's sketches, else -1 */
    bool by_row;             /* CARD: distinct combinations of the fields, not values */
    int nfields;             /* CARD: dimensions read */
    int fields[SL_MAX_DIMS]; /* CARD: spec dimension index, -1: not a dimension (null) */
} sl_agg;

typedef enum sl_post_type {
    SL_POST_ARITH,
    SL_POST_FIELD,
    SL_POST_CONST,
    SL_POST_GREATEST,
    SL_POST_LEAST,
    SL_POST_ESTIMATE,  /* hyperUniqueCardinality, HLLSketchEstimate */
    SL_POST_QUANTILE,  /* quantilesDoublesSketchToQuantile */
    SL_POST_QUANTILES, /* quantilesDoublesSketchToQuantiles: an array value */
} sl_post_type;

typedef struct sl_post sl_post;
struct sl_post {
    sl_post_type type;
    char *name;
    char fn;       /* ARITH: + - * / and q (quotient) */
    int ref;       /* FIELD: column index (aggregators, then earlier post-aggregators);
                      ESTIMATE / QUANTILE(S): index of the sketch aggregator read */
    double value;  /* CONST; QUANTILE: the fraction */
    bool is_long;  /* output printed as an integer */
    bool is_array; /* the value is an array (QUANTILES, or a FIELD of one) */
    int nfields;
    sl_post **fields;
    int nfractions;    /* QUANTILES */
    double *fractions; /* QUANTILES */
    int arr_off;       /* QUANTILES: offset of its values in a row's array scratch */
};

/* A dimension as output: name in the spec (dim = -1 when unknown: all null). */
typedef struct sl_dimspec {
    char *name;
    char *output;
    int dim;
} sl_dimspec;

typedef enum sl_order { SL_ORDER_LEXICOGRAPHIC, SL_ORDER_NUMERIC } sl_order;

typedef enum sl_topn_kind { SL_TOPN_NUMERIC, SL_TOPN_DIMENSION } sl_topn_kind;

typedef struct sl_topn_metric {
    sl_topn_kind kind;
    int col;       /* NUMERIC: column index */
    bool inverted; /* ascending numeric / descending dimension */
    sl_order order;
    char *previous_stop; /* DIMENSION: only values after this one */
} sl_topn_metric;

typedef enum sl_having_type {
    SL_HAVING_GT,
    SL_HAVING_LT,
    SL_HAVING_EQ,
    SL_HAVING_AND,
    SL_HAVING_OR,
    SL_HAVING_NOT,
    SL_HAVING_DIM,    /* dimSelector */
    SL_HAVING_FILTER, /* a filter evaluated on the output row */
} sl_having_type;

typedef struct sl_having sl_having;
struct sl_having {
    sl_having_type type;
    int col;      /* GT/LT/EQ: column index */
    double value; /* GT/LT/EQ */
    int dim;      /* DIM: index in the query's dimensions */
    char *str;    /* DIM: value (NULL = null) */
    sl_filter *filter;
    int nkids;
    sl_having **kids;
};

/* A limitSpec ordering column: a query dimension or a value column. */
typedef struct sl_order_col {
    bool is_dim;
    int index; /* query dimension index, or column index */
    bool descending;
    sl_order order;
} sl_order_col;

typedef enum sl_bound { SL_BOUND_BOTH, SL_BOUND_MIN, SL_BOUND_MAX } sl_bound;

typedef struct sl_native {
    sl_nq_type type;
    const sl_spec *spec; /* borrowed from the config */

    int nintervals;
    sl_interval *intervals; /* sorted, merged; at least one except for timeBoundary */
    bool has_intervals;
    sl_gran gran;
    sl_filter *filter; /* NULL: every row */

    int naggs;
    sl_agg *aggs;
    int npost;
    sl_post **post;
    int ncols;   /* naggs + npost: the value columns, in output order */
    int nsketch; /* sketch aggregators (sl_agg.sketch is 0..nsketch-1) */
    int narr;    /* doubles of array values per result row (sum of QUANTILES sizes) */

    bool descending;
    bool skip_empty;
    bool grand_total;
    int64_t limit;      /* timeseries limit; -1: none */
    int64_t timeout_ms; /* 0: none given */

    int ndims; /* topN: 1; groupBy: any */
    sl_dimspec *dims;

    int64_t threshold; /* topN */
    sl_topn_metric metric;

    sl_having *having; /* groupBy; NULL: none */
    int64_t offset;    /* groupBy limitSpec */
    int norder;
    sl_order_col *orderby;

    sl_bound bound; /* timeBoundary */
} sl_native;

/* Parses body[0..len) (no terminator needed) against the datasources of cfg.
 * On success *out is a new plan owned by the caller (sl_native_free); it borrows the
 * spec from cfg, which must outlive it. On error returns SL_ECODEC / SL_EPARSE /
 * SL_EINVAL with the message in err (see above). */
int sl_native_parse(const sl_config *cfg, const char *body, size_t len, sl_native **out,
                    sl_err *err);
void sl_native_free(sl_native *q);

/* Index of the value column called name (aggregator or post-aggregator), or -1. */
int sl_native_column(const sl_native *q, const char *name);
/* Name of value column i. */
const char *sl_native_column_name(const sl_native *q, int i);
/* True when value column i is an array (quantilesDoublesSketchToQuantiles). */
bool sl_native_column_is_array(const sl_native *q, int i);

/* Filters are freed with this (also used by exec when it compiles them). */
void sl_filter_free(sl_filter *f);

#endif
