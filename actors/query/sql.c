/* Druid SQL: lexer, recursive-descent parser, planner onto native queries, and the
 * row pipeline that finishes what native queries cannot say (see sql.h).
 *
 * Everything a statement allocates lives in one arena freed when the statement is done,
 * so the parser and planner can bail out anywhere without cleanup paths.
 *
 * Identifiers are case-sensitive (as in Druid); keywords and function names are not.
 * Column references are resolved against the table once, right after parsing, so the
 * planner compares resolved columns (event_time and __time are the same column). */
#define _GNU_SOURCE /* qsort_r */
#include "sql.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "clock.h"
#include "exec.h"
#include "native.h"
#include "result.h"

/* Time bounds of "no time condition": what sl_time_format / sl_time_parse can write
 * and read back (years 0000..9999). */
#define TMIN_MS (-62167219200000LL)
#define TMAX_MS 253402300799999LL
#define MAX_DEPTH 200
#define MAX_IN_VALUES 10000
#define MAX_INTERVALS 10000
#define MAX_HOP_ROWS 4000000

/* ---- arena ------------------------------------------------------------------------------ */

typedef struct ablk {
    struct ablk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} ablk;

typedef struct arena {
    ablk *head;
} arena;

static void *amalloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (a->head == NULL || a->head->used + n > a->head->cap) {
        size_t cap = n > 16384 ? n : 16384;
        ablk *b = sl_malloc(sizeof(ablk) + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *astrndup(arena *a, const char *s, size_t n)
{
    char *p = amalloc(a, n + 1);
    if (n > 0) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

static char *astrdup(arena *a, const char *s)
{
    return astrndup(a, s, strlen(s));
}

static char *aprintf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *aprintf(arena *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return astrdup(a, buf);
}

static void arena_free(arena *a)
{
    ablk *b = a->head;
    while (b != NULL) {
        ablk *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* A growable array of pointers in the arena. */
typedef struct vec {
    void **p;
    int n, cap;
} vec;

static void vpush(arena *a, vec *v, void *x)
{
    if (v->n == v->cap) {
        int cap = v->cap == 0 ? 8 : v->cap * 2;
        void **np = amalloc(a, sizeof(void *) * (size_t)cap);
        if (v->n > 0) {
            memcpy(np, v->p, sizeof(void *) * (size_t)v->n);
        }
        v->p = np;
        v->cap = cap;
    }
    v->p[v->n++] = x;
}

/* ---- types ------------------------------------------------------------------------------- */

const char *sl_sql_type_name(sl_sql_type t)
{
    switch (t) {
    case SL_SQL_VARCHAR:
        return "VARCHAR";
    case SL_SQL_BIGINT:
        return "BIGINT";
    case SL_SQL_DOUBLE:
        return "DOUBLE";
    case SL_SQL_FLOAT:
        return "FLOAT";
    case SL_SQL_TIMESTAMP:
        return "TIMESTAMP";
    case SL_SQL_BOOLEAN:
        return "BOOLEAN";
    case SL_SQL_OTHER:
        return "OTHER";
    }
    return "OTHER";
}

const char *sl_sql_native_type(sl_sql_type t)
{
    switch (t) {
    case SL_SQL_VARCHAR:
        return "STRING";
    case SL_SQL_BIGINT:
    case SL_SQL_TIMESTAMP:
    case SL_SQL_BOOLEAN:
        return "LONG";
    case SL_SQL_DOUBLE:
        return "DOUBLE";
    case SL_SQL_FLOAT:
        return "FLOAT";
    case SL_SQL_OTHER:
        return "COMPLEX";
    }
    return "COMPLEX";
}

static sl_sql_value v_null(void)
{
    sl_sql_value v = {SL_SQLV_NULL, 0, 0, NULL, 0};
    return v;
}

static sl_sql_value v_long(int64_t i)
{
    sl_sql_value v = {SL_SQLV_LONG, i, 0, NULL, 0};
    return v;
}

static sl_sql_value v_double(double d)
{
    sl_sql_value v = {SL_SQLV_DOUBLE, 0, d, NULL, 0};
    return v;
}

static sl_sql_value v_bool(bool b)
{
    sl_sql_value v = {SL_SQLV_BOOL, b ? 1 : 0, 0, NULL, 0};
    return v;
}

static sl_sql_value v_time(int64_t ms)
{
    sl_sql_value v = {SL_SQLV_TIME, ms, 0, NULL, 0};
    return v;
}

static sl_sql_value v_ivl(int64_t ms)
{
    sl_sql_value v = {SL_SQLV_INTERVAL, ms, 0, NULL, 0};
    return v;
}

static sl_sql_value v_str(const char *s, size_t n)
{
    sl_sql_value v = {SL_SQLV_STR, 0, 0, s, n};
    return v;
}

/* ---- lexer ------------------------------------------------------------------------------- */

typedef enum tok_t {
    T_EOF,
    T_IDENT,
    T_QIDENT,
    T_STRING,
    T_INT,
    T_NUM,
    T_PARAM,
    T_LP,
    T_RP,
    T_COMMA,
    T_DOT,
    T_STAR,
    T_PLUS,
    T_MINUS,
    T_SLASH,
    T_PCT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_CONCAT,
    T_SEMI,
    /* binary operators that are keywords */
    T_AND,
    T_OR,
} tok_t;

typedef struct token {
    tok_t t;
    const char *p; /* source text */
    size_t n;
    char *text; /* T_STRING / T_QIDENT: the decoded value; T_IDENT: the text */
    size_t tlen;
    int line, col;
} token;

typedef struct lexer {
    arena *a;
    const char *s, *end, *p;
    int line, col;
    sl_err *err;
} lexer;

static void lx_adv(lexer *lx)
{
    if (*lx->p == '\n') {
        lx->line++;
        lx->col = 1;
    } else if (((unsigned char)*lx->p & 0xc0) != 0x80) {
        lx->col++;
    }
    lx->p++;
}

static int lex_all(arena *a, const char *s, size_t len, token **out, int *ntok, sl_err *err)
{
    lexer lx = {a, s, s + len, s, 1, 1, err};
    vec toks = {0};
    for (;;) {
        /* whitespace and comments */
        while (lx.p < lx.end) {
            char c = *lx.p;
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                lx_adv(&lx);
            } else if (c == '-' && lx.p + 1 < lx.end && lx.p[1] == '-') {
                while (lx.p < lx.end && *lx.p != '\n') {
                    lx_adv(&lx);
                }
            } else if (c == '/' && lx.p + 1 < lx.end && lx.p[1] == '*') {
                int l = lx.line, co = lx.col;
                lx_adv(&lx);
                lx_adv(&lx);
                while (lx.p < lx.end && !(*lx.p == '*' && lx.p + 1 < lx.end && lx.p[1] == '/')) {
                    lx_adv(&lx);
                }
                if (lx.p >= lx.end) {
                    return sl_err_set(err, SL_EPARSE,
                                      "Lexical error at line %d, column %d: comment is not closed "
                                      "(missing */)",
                                      l, co);
                }
                lx_adv(&lx);
                lx_adv(&lx);
            } else {
                break;
            }
        }
        token *t = amalloc(a, sizeof(token));
        t->p = lx.p;
        t->line = lx.line;
        t->col = lx.col;
        vpush(a, &toks, t);
        if (lx.p >= lx.end) {
            t->t = T_EOF;
            break;
        }
        unsigned char c = (unsigned char)*lx.p;
        if (isalpha(c) || c == '_' || c == '$') {
            while (lx.p < lx.end &&
                   (isalnum((unsigned char)*lx.p) || *lx.p == '_' || *lx.p == '$')) {
                lx_adv(&lx);
            }
            t->t = T_IDENT;
            t->n = (size_t)(lx.p - t->p);
            t->text = astrndup(a, t->p, t->n);
            t->tlen = t->n;
        } else if (isdigit(c) ||
                   (c == '.' && lx.p + 1 < lx.end && isdigit((unsigned char)lx.p[1]))) {
            bool real = false;
            while (lx.p < lx.end && isdigit((unsigned char)*lx.p)) {
                lx_adv(&lx);
            }
            if (lx.p < lx.end && *lx.p == '.') {
                real = true;
                lx_adv(&lx);
                while (lx.p < lx.end && isdigit((unsigned char)*lx.p)) {
                    lx_adv(&lx);
                }
            }
            if (lx.p < lx.end && (*lx.p == 'e' || *lx.p == 'E')) {
                const char *q = lx.p + 1;
                if (q < lx.end && (*q == '+' || *q == '-')) {
                    q++;
                }
                if (q < lx.end && isdigit((unsigned char)*q)) {
                    real = true;
                    while (lx.p < q) {
                        lx_adv(&lx);
                    }
                    while (lx.p < lx.end && isdigit((unsigned char)*lx.p)) {
                        lx_adv(&lx);
                    }
                }
            }
            t->t = real ? T_NUM : T_INT;
            t->n = (size_t)(lx.p - t->p);
            t->text = astrndup(a, t->p, t->n);
            t->tlen = t->n;
        } else if (c == '\'' || c == '"') {
            /* 'string' or "identifier"; a doubled quote stands for itself. */
            char q = (char)c;
            sl_buf b;
            sl_buf_init(&b);
            lx_adv(&lx);
            bool closed = false;
            while (lx.p < lx.end) {
                if (*lx.p == q) {
                    if (lx.p + 1 < lx.end && lx.p[1] == q) {
                        sl_buf_append(&b, &q, 1);
                        lx_adv(&lx);
                        lx_adv(&lx);
                        continue;
                    }
                    lx_adv(&lx);
                    closed = true;
                    break;
                }
                sl_buf_append(&b, lx.p, 1);
                lx_adv(&lx);
            }
            if (!closed) {
                sl_buf_fini(&b);
                return sl_err_set(err, SL_EPARSE,
                                  "Lexical error at line %d, column %d: %s is not closed (missing "
                                  "%c)",
                                  t->line, t->col,
                                  q == '\'' ? "string literal" : "quoted identifier", q);
            }
            t->t = q == '\'' ? T_STRING : T_QIDENT;
            t->n = (size_t)(lx.p - t->p);
            t->text = astrndup(a, b.data != NULL ? b.data : "", b.len);
            t->tlen = b.len;
            sl_buf_fini(&b);
            if (t->t == T_QIDENT && t->tlen == 0) {
                return sl_err_set(err, SL_EPARSE,
                                  "Lexical error at line %d, column %d: empty quoted identifier",
                                  t->line, t->col);
            }
        } else {
            const char *p = lx.p;
            char d = p + 1 < lx.end ? p[1] : '\0';
            int n = 1;
            switch (c) {
            case '(':
                t->t = T_LP;
                break;
            case ')':
                t->t = T_RP;
                break;
            case ',':
                t->t = T_COMMA;
                break;
            case '.':
                t->t = T_DOT;
                break;
            case '*':
                t->t = T_STAR;
                break;
            case '+':
                t->t = T_PLUS;
                break;
            case '-':
                t->t = T_MINUS;
                break;
            case '/':
                t->t = T_SLASH;
                break;
            case '%':
                t->t = T_PCT;
                break;
            case '=':
                t->t = T_EQ;
                break;
            case ';':
                t->t = T_SEMI;
                break;
            case '?':
                t->t = T_PARAM;
                break;
            case '<':
                t->t = d == '=' ? T_LE : d == '>' ? T_NE : T_LT;
                n = d == '=' || d == '>' ? 2 : 1;
                break;
            case '>':
                t->t = d == '=' ? T_GE : T_GT;
                n = d == '=' ? 2 : 1;
                break;
            case '!':
                if (d != '=') {
                    goto bad;
                }
                t->t = T_NE;
                n = 2;
                break;
            case '|':
                if (d != '|') {
                    goto bad;
                }
                t->t = T_CONCAT;
                n = 2;
                break;
            default:
                goto bad;
            }
            for (int i = 0; i < n; i++) {
                lx_adv(&lx);
            }
            t->n = (size_t)n;
            continue;
        bad:
            if (c < 0x20 || c >= 0x7f) {
                return sl_err_set(err, SL_EPARSE,
                                  "Lexical error at line %d, column %d: unexpected byte 0x%02x",
                                  t->line, t->col, c);
            }
            return sl_err_set(err, SL_EPARSE,
                              "Lexical error at line %d, column %d: unexpected character '%c'",
                              t->line, t->col, c);
        }
    }
    *out = amalloc(a, sizeof(token) * (size_t)toks.n);
    for (int i = 0; i < toks.n; i++) {
        (*out)[i] = *(token *)toks.p[i];
    }
    *ntok = toks.n;
    return 0;
}

/* ---- syntax tree ------------------------------------------------------------------------- */

typedef enum nkind {
    N_LIT,
    N_COL,
    N_STAR, /* COUNT(*) */
    N_FUNC,
    N_BIN,
    N_NOT,
    N_NEG,
    N_ISNULL,
    N_IN,
    N_BETWEEN,
    N_LIKE,
    N_CAST,
    N_SLOT, /* bound: a value of the planner's row */
} nkind;

/* Resolved columns of a datasource (node->col for N_COL). */
enum {
    COL_UNRESOLVED = -100,
    COL_TIME = -1,    /* __time and the spec's time column */
    COL_RAW = -2,     /* an input field rollup did not keep (name in node->name) */
    COL_ALIAS = -3,   /* a SELECT alias (GROUP BY / ORDER BY), see node->alias_of */
    COL_COUNT = 1000, /* the count column; metrics are COL_COUNT + 1 + i; dims are 0..n-1 */
};

typedef struct node node;
struct node {
    nkind k;
    int op; /* N_BIN: T_*; N_FUNC: 1 for FLOOR(x TO unit) */
    bool neg, distinct;
    int line, col;
    sl_sql_value v;   /* N_LIT */
    const char *name; /* N_COL: column as written; N_FUNC: upper-case name */
    const char *qual; /* N_COL: table qualifier */
    int nargs;
    node **args;
    int slot;         /* N_SLOT */
    int rcol;         /* N_COL: resolved column (see above) */
    sl_sql_type cast; /* N_CAST */
    int alias_of;     /* COL_ALIAS: select item index */
};

typedef struct sel_item {
    node *e;
    const char *alias;
} sel_item;

typedef struct order_item {
    node *e;
    bool desc;
} order_item;

typedef struct stmt {
    bool explain;
    bool distinct;
    bool star;
    int star_line, star_col;
    int nitems;
    sel_item *items;
    const char *schema, *table, *talias;
    int tline, tcol;
    node *where;
    int ngroup;
    node **group;
    node *having;
    int norder;
    order_item *order;
    int64_t limit; /* -1: none */
    int64_t offset;
} stmt;

/* ---- parser ------------------------------------------------------------------------------ */

typedef struct parser {
    arena *a;
    token *toks;
    int ntok, pos;
    sl_err *err;
    const sl_sql_opts *opts;
    int nparam;
    int depth;
} parser;

static const char *const reserved[] = {
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "BETWEEN",
    "DISTINCT",
    "TRUE",
    "FALSE",
    "INTERVAL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "JOIN",
    "UNION",
    "ON",
    "ASC",
    "DESC",
    "ESCAPE",
    "ALL",
    "EXPLAIN",
    "WITH",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "EXCEPT",
    "INTERSECT",
    "FETCH",
    "USING",
    "NATURAL",
    "CURRENT_TIMESTAMP",
    "CAST",
    "OUTER",
    "WINDOW",
    "OVER",
    "ROWS",
    "UNNEST",
    NULL,
};

static bool is_reserved(const token *t)
{
    if (t->t != T_IDENT) {
        return false;
    }
    for (int i = 0; reserved[i] != NULL; i++) {
        if (strcasecmp(t->text, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

static token *cur(parser *ps)
{
    return &ps->toks[ps->pos];
}

static token *peek(parser *ps, int k)
{
    int i = ps->pos + k;
    return &ps->toks[i < ps->ntok ? i : ps->ntok - 1];
}

static bool is_kw(const token *t, const char *kw)
{
    return t->t == T_IDENT && strcasecmp(t->text, kw) == 0;
}

static bool accept_kw(parser *ps, const char *kw)
{
    if (is_kw(cur(ps), kw)) {
        ps->pos++;
        return true;
    }
    return false;
}

static bool accept(parser *ps, tok_t t)
{
    if (cur(ps)->t == t) {
        ps->pos++;
        return true;
    }
    return false;
}

/* "Encountered "X" at line L, column C; expected ..." (Calcite's wording). */
static int syntax(parser *ps, const token *t, const char *expected)
{
    char what[80];
    if (t->t == T_EOF) {
        snprintf(what, sizeof(what), "<EOF>");
    } else {
        int n = t->n > 40 ? 40 : (int)t->n;
        snprintf(what, sizeof(what), "\"%.*s\"", n, t->p);
    }
    return sl_err_set(ps->err, SL_EPARSE, "Encountered %s at line %d, column %d; expected %s", what,
                      t->line, t->col, expected);
}

static int expect(parser *ps, tok_t t, const char *expected)
{
    if (!accept(ps, t)) {
        return syntax(ps, cur(ps), expected);
    }
    return 0;
}

static int expect_kw(parser *ps, const char *kw)
{
    if (!accept_kw(ps, kw)) {
        return syntax(ps, cur(ps), kw);
    }
    return 0;
}

static node *mk(parser *ps, nkind k, const token *at)
{
    node *n = amalloc(ps->a, sizeof(node));
    n->k = k;
    n->line = at->line;
    n->col = at->col;
    n->rcol = COL_UNRESOLVED;
    return n;
}

static void set_args(parser *ps, node *n, int nargs, node **args)
{
    n->nargs = nargs;
    n->args = amalloc(ps->a, sizeof(node *) * (size_t)(nargs > 0 ? nargs : 1));
    for (int i = 0; i < nargs; i++) {
        n->args[i] = args[i];
    }
}

static int parse_expr(parser *ps, node **out);

/* Time units of INTERVAL, FLOOR(x TO unit) and DATE_TRUNC, in ms; 0: calendar unit. */
static int unit_ms(const char *name, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {
        {"MILLISECOND", 1}, {"SECOND", 1000},  {"MINUTE", 60000},
        {"HOUR", 3600000},  {"DAY", 86400000}, {"WEEK", 7 * 86400000LL},
        {"MONTH", 0},       {"QUARTER", 0},    {"YEAR", 0},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t un = strlen(units[i].name);
        /* singular, or plural with an S */
        if (strncasecmp(name, units[i].name, un) == 0 &&
            (n == un || (n == un + 1 && (name[un] == 's' || name[un] == 'S')))) {
            *ms = units[i].ms;
            return 0;
        }
    }
    return -1;
}

static int parse_time_literal(parser *ps, const token *t, const char *text, int64_t *ms)
{
    sl_err e;
    if (sl_time_parse(text, strlen(text), SL_TS_ISO, ms, &e) != 0) {
        return sl_err_set(ps->err, SL_EPARSE,
                          "Illegal TIMESTAMP literal '%s' at line %d, column %d: %s", text, t->line,
                          t->col, e.msg);
    }
    return 0;
}

static int parse_param(parser *ps, const token *t, node **out)
{
    node *n = mk(ps, N_LIT, t);
    int i = ps->nparam++;
    if (ps->opts == NULL || i >= ps->opts->nparams) {
        return sl_err_set(ps->err, SL_EINVAL,
                          "Parameter %d at line %d, column %d has no value: the request gives %d "
                          "parameters",
                          i + 1, t->line, t->col, ps->opts != NULL ? ps->opts->nparams : 0);
    }
    n->v = ps->opts->params[i];
    *out = n;
    return 0;
}

/* INTERVAL '5' MINUTE (the value may be a number or a ? too). */
static int parse_interval(parser *ps, const token *at, node **out)
{
    token *v = cur(ps);
    double amount;
    bool neg = false;
    if (accept(ps, T_MINUS)) {
        neg = true;
        v = cur(ps);
    }
    if (v->t == T_STRING || v->t == T_INT || v->t == T_NUM) {
        char *end;
        const char *s = v->text;
        while (*s == ' ') {
            s++;
        }
        amount = strtod(s, &end);
        while (*end == ' ') {
            end++;
        }
        if (end == s || *end != '\0' || !isfinite(amount)) {
            return sl_err_set(ps->err, SL_EPARSE,
                              "Illegal INTERVAL literal '%s' at line %d, column %d: expected a "
                              "number such as INTERVAL '5' MINUTE",
                              v->text, v->line, v->col);
        }
        ps->pos++;
    } else {
        return syntax(ps, v, "an interval value such as '1' after INTERVAL");
    }
    token *u = cur(ps);
    int64_t ms;
    if (u->t != T_IDENT || unit_ms(u->text, &ms) != 0) {
        return syntax(ps, u, "a time unit (SECOND, MINUTE, HOUR, DAY, WEEK)");
    }
    if (ms == 0) {
        return sl_err_set(ps->err, SL_EINVAL,
                          "INTERVAL in %s at line %d, column %d: calendar units (MONTH, QUARTER, "
                          "YEAR) are not supported; use DAY or WEEK",
                          u->text, u->line, u->col);
    }
    ps->pos++;
    double total = amount * (double)ms;
    if (fabs(total) > 1e15) {
        return sl_err_set(ps->err, SL_EINVAL, "INTERVAL at line %d, column %d is too long",
                          at->line, at->col);
    }
    node *n = mk(ps, N_LIT, at);
    n->v = v_ivl((int64_t)llround(neg ? -total : total));
    *out = n;
    return 0;
}

static int parse_type(parser *ps, sl_sql_type *out)
{
    token *t = cur(ps);
    static const struct {
        const char *name;
        sl_sql_type type;
    } types[] = {
        {"VARCHAR", SL_SQL_VARCHAR},     {"CHAR", SL_SQL_VARCHAR},    {"STRING", SL_SQL_VARCHAR},
        {"BIGINT", SL_SQL_BIGINT},       {"INTEGER", SL_SQL_BIGINT},  {"INT", SL_SQL_BIGINT},
        {"SMALLINT", SL_SQL_BIGINT},     {"TINYINT", SL_SQL_BIGINT},  {"DOUBLE", SL_SQL_DOUBLE},
        {"FLOAT", SL_SQL_FLOAT},         {"REAL", SL_SQL_FLOAT},      {"DECIMAL", SL_SQL_DOUBLE},
        {"TIMESTAMP", SL_SQL_TIMESTAMP}, {"BOOLEAN", SL_SQL_BOOLEAN},
    };
    if (t->t == T_IDENT) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcasecmp(t->text, types[i].name) == 0) {
                ps->pos++;
                *out = types[i].type;
                /* VARCHAR(20), DECIMAL(10, 2): the size is accepted and ignored */
                if (accept(ps, T_LP)) {
                    while (cur(ps)->t == T_INT || cur(ps)->t == T_COMMA) {
                        ps->pos++;
                    }
                    return expect(ps, T_RP, ")");
                }
                if (types[i].type == SL_SQL_DOUBLE && accept_kw(ps, "PRECISION")) {
                    return 0;
                }
                return 0;
            }
        }
    }
    return syntax(ps, t, "a type (VARCHAR, BIGINT, DOUBLE, FLOAT, TIMESTAMP, BOOLEAN)");
}

/* name '(' [DISTINCT] args ')' where the name token is already consumed. */
static int parse_call(parser *ps, const token *nt, node **out)
{
    node *n = mk(ps, N_FUNC, nt);
    char up[64];
    size_t len = nt->tlen < sizeof(up) - 1 ? nt->tlen : sizeof(up) - 1;
    for (size_t i = 0; i < len; i++) {
        up[i] = (char)toupper((unsigned char)nt->text[i]);
    }
    up[len] = '\0';
    n->name = astrdup(ps->a, up);
    node *args[16];
    int nargs = 0, rc;
    if (accept_kw(ps, "DISTINCT")) {
        n->distinct = true;
    } else {
        accept_kw(ps, "ALL");
    }
    if (cur(ps)->t == T_STAR && peek(ps, 1)->t == T_RP) {
        args[nargs++] = mk(ps, N_STAR, cur(ps));
        ps->pos++;
    } else if (cur(ps)->t != T_RP) {
        for (;;) {
            if (nargs == 16) {
                return sl_err_set(ps->err, SL_EPARSE,
                                  "Too many arguments for %s at line %d, column %d", n->name,
                                  nt->line, nt->col);
            }
            if ((rc = parse_expr(ps, &args[nargs])) != 0) {
                return rc;
            }
            nargs++;
            /* FLOOR(x TO unit) */
            if (nargs == 1 && strcmp(n->name, "FLOOR") == 0 && accept_kw(ps, "TO")) {
                token *u = cur(ps);
                int64_t ms;
                if (u->t != T_IDENT || unit_ms(u->text, &ms) != 0) {
                    return syntax(ps, u, "a time unit (SECOND, MINUTE, HOUR, DAY, WEEK)");
                }
                node *un = mk(ps, N_LIT, u);
                un->v = v_str(u->text, u->tlen);
                args[nargs++] = un;
                n->op = 1;
                ps->pos++;
                break;
            }
            if (!accept(ps, T_COMMA)) {
                break;
            }
        }
    }
    if ((rc = expect(ps, T_RP, "\")\" or \",\"")) != 0) {
        return rc;
    }
    if (is_kw(cur(ps), "OVER")) {
        return sl_err_set(ps->err, SL_EINVAL,
                          "Window functions (OVER) at line %d, column %d are not supported",
                          cur(ps)->line, cur(ps)->col);
    }
    set_args(ps, n, nargs, args);
    *out = n;
    return 0;
}

static int parse_primary(parser *ps, node **out)
{
    token *t = cur(ps);
    int rc;
    switch (t->t) {
    case T_INT:
    case T_NUM: {
        node *n = mk(ps, N_LIT, t);
        ps->pos++;
        char *end;
        if (t->t == T_INT) {
            long long v = strtoll(t->text, &end, 10);
            if (v != LLONG_MAX && *end == '\0') {
                n->v = v_long(v);
                *out = n;
                return 0;
            }
        }
        n->v = v_double(strtod(t->text, &end));
        *out = n;
        return 0;
    }
    case T_STRING: {
        node *n = mk(ps, N_LIT, t);
        ps->pos++;
        n->v = v_str(t->text, t->tlen);
        /* 'a' 'b': adjacent literals concatenate */
        while (cur(ps)->t == T_STRING) {
            token *u = cur(ps);
            char *s = amalloc(ps->a, n->v.n + u->tlen + 1);
            memcpy(s, n->v.s, n->v.n);
            memcpy(s + n->v.n, u->text, u->tlen);
            n->v = v_str(s, n->v.n + u->tlen);
            ps->pos++;
        }
        *out = n;
        return 0;
    }
    case T_PARAM:
        ps->pos++;
        return parse_param(ps, t, out);
    case T_LP:
        ps->pos++;
        if (is_kw(cur(ps), "SELECT")) {
            return sl_err_set(ps->err, SL_EINVAL,
                              "Subqueries (line %d, column %d) are not supported", cur(ps)->line,
                              cur(ps)->col);
        }
        if ((rc = parse_expr(ps, out)) != 0) {
            return rc;
        }
        return expect(ps, T_RP, "\")\"");
    case T_QIDENT: {
        node *n = mk(ps, N_COL, t);
        ps->pos++;
        n->name = t->text;
        if (accept(ps, T_DOT)) {
            token *c = cur(ps);
            if (c->t != T_QIDENT && (c->t != T_IDENT || is_reserved(c))) {
                return syntax(ps, c, "a column name");
            }
            ps->pos++;
            n->qual = n->name;
            n->name = c->text;
        }
        *out = n;
        return 0;
    }
    case T_IDENT:
        break;
    default:
        return syntax(ps, t, "an expression");
    }
    /* keywords that start an expression */
    if (is_kw(t, "NULL") || is_kw(t, "TRUE") || is_kw(t, "FALSE")) {
        node *n = mk(ps, N_LIT, t);
        ps->pos++;
        n->v = is_kw(t, "NULL") ? v_null() : v_bool(is_kw(t, "TRUE"));
        *out = n;
        return 0;
    }
    if (is_kw(t, "INTERVAL")) {
        ps->pos++;
        return parse_interval(ps, t, out);
    }
    if ((is_kw(t, "TIMESTAMP") || is_kw(t, "DATE")) && peek(ps, 1)->t == T_STRING) {
        token *s = peek(ps, 1);
        node *n = mk(ps, N_LIT, t);
        int64_t ms;
        ps->pos += 2;
        if ((rc = parse_time_literal(ps, s, s->text, &ms)) != 0) {
            return rc;
        }
        n->v = v_time(ms);
        *out = n;
        return 0;
    }
    if (is_kw(t, "CURRENT_TIMESTAMP")) {
        node *n = mk(ps, N_LIT, t);
        ps->pos++;
        if (cur(ps)->t == T_LP && peek(ps, 1)->t == T_RP) {
            ps->pos += 2;
        }
        n->v = v_time(ps->opts != NULL ? ps->opts->now_ms : 0);
        *out = n;
        return 0;
    }
    if (is_kw(t, "CAST")) {
        node *n = mk(ps, N_CAST, t), *e;
        ps->pos++;
        if ((rc = expect(ps, T_LP, "\"(\" after CAST")) != 0 || (rc = parse_expr(ps, &e)) != 0 ||
            (rc = expect_kw(ps, "AS")) != 0 || (rc = parse_type(ps, &n->cast)) != 0 ||
            (rc = expect(ps, T_RP, "\")\"")) != 0) {
            return rc;
        }
        set_args(ps, n, 1, &e);
        *out = n;
        return 0;
    }
    if (is_kw(t, "CASE")) {
        return sl_err_set(ps->err, SL_EINVAL, "CASE at line %d, column %d is not supported",
                          t->line, t->col);
    }
    if (is_reserved(t)) {
        return syntax(ps, t, "an expression");
    }
    ps->pos++;
    if (cur(ps)->t == T_LP) {
        ps->pos++;
        return parse_call(ps, t, out);
    }
    node *n = mk(ps, N_COL, t);
    n->name = t->text;
    if (accept(ps, T_DOT)) {
        token *c = cur(ps);
        if (c->t == T_STAR) {
            return sl_err_set(ps->err, SL_EINVAL,
                              "%s.* at line %d, column %d is not supported; use *", t->text,
                              t->line, t->col);
        }
        if (c->t != T_QIDENT && (c->t != T_IDENT || is_reserved(c))) {
            return syntax(ps, c, "a column name");
        }
        ps->pos++;
        n->qual = n->name;
        n->name = c->text;
    }
    *out = n;
    return 0;
}

static int parse_unary(parser *ps, node **out)
{
    token *t = cur(ps);
    int rc;
    if (t->t == T_MINUS || t->t == T_PLUS) {
        ps->pos++;
        if (++ps->depth > MAX_DEPTH) {
            return sl_err_set(ps->err, SL_EPARSE,
                              "Expression nested too deeply at line %d, column %d", t->line,
                              t->col);
        }
        node *e;
        rc = parse_unary(ps, &e);
        ps->depth--;
        if (rc != 0) {
            return rc;
        }
        if (t->t == T_PLUS) {
            *out = e;
            return 0;
        }
        /* fold -literal so -9223372036854775808 and -1.5 stay literals */
        if (e->k == N_LIT && (e->v.kind == SL_SQLV_LONG || e->v.kind == SL_SQLV_DOUBLE ||
                              e->v.kind == SL_SQLV_INTERVAL)) {
            if (e->v.kind == SL_SQLV_DOUBLE) {
                e->v.d = -e->v.d;
            } else if (e->v.i != INT64_MIN) {
                e->v.i = -e->v.i;
            }
            e->line = t->line;
            e->col = t->col;
            *out = e;
            return 0;
        }
        node *n = mk(ps, N_NEG, t);
        set_args(ps, n, 1, &e);
        *out = n;
        return 0;
    }
    return parse_primary(ps, out);
}

static int parse_binary_level(parser *ps, int level, node **out);

/* Levels: 0 OR, 1 AND, 2 NOT, 3 predicates, 4 + - ||, 5 * / %, 6 unary. */
static int parse_pred(parser *ps, node **out)
{
    node *l;
    int rc = parse_binary_level(ps, 4, &l);
    if (rc != 0) {
        return rc;
    }
    for (;;) {
        token *t = cur(ps);
        if (t->t == T_EQ || t->t == T_NE || t->t == T_LT || t->t == T_LE || t->t == T_GT ||
            t->t == T_GE) {
            node *r;
            ps->pos++;
            if ((rc = parse_binary_level(ps, 4, &r)) != 0) {
                return rc;
            }
            node *n = mk(ps, N_BIN, t);
            n->op = t->t;
            node *args[2] = {l, r};
            set_args(ps, n, 2, args);
            l = n;
            continue;
        }
        if (is_kw(t, "IS")) {
            ps->pos++;
            node *n = mk(ps, N_ISNULL, t);
            n->neg = accept_kw(ps, "NOT");
            if ((rc = expect_kw(ps, "NULL")) != 0) {
                return rc;
            }
            set_args(ps, n, 1, &l);
            l = n;
            continue;
        }
        bool neg = false;
        if (is_kw(t, "NOT") && (is_kw(peek(ps, 1), "IN") || is_kw(peek(ps, 1), "LIKE") ||
                                is_kw(peek(ps, 1), "BETWEEN"))) {
            neg = true;
            ps->pos++;
            t = cur(ps);
        }
        if (is_kw(t, "IN")) {
            ps->pos++;
            if ((rc = expect(ps, T_LP, "\"(\" after IN")) != 0) {
                return rc;
            }
            if (is_kw(cur(ps), "SELECT")) {
                return sl_err_set(ps->err, SL_EINVAL,
                                  "IN (SELECT ...) at line %d, column %d is not supported",
                                  cur(ps)->line, cur(ps)->col);
            }
            vec items = {0};
            vpush(ps->a, &items, l);
            for (;;) {
                node *e;
                if ((rc = parse_expr(ps, &e)) != 0) {
                    return rc;
                }
                vpush(ps->a, &items, e);
                if (items.n > MAX_IN_VALUES) {
                    return sl_err_set(ps->err, SL_EINVAL,
                                      "IN list at line %d, column %d has more than %d values",
                                      t->line, t->col, MAX_IN_VALUES);
                }
                if (!accept(ps, T_COMMA)) {
                    break;
                }
            }
            if ((rc = expect(ps, T_RP, "\")\" or \",\"")) != 0) {
                return rc;
            }
            node *n = mk(ps, N_IN, t);
            n->neg = neg;
            set_args(ps, n, items.n, (node **)items.p);
            l = n;
            continue;
        }
        if (is_kw(t, "BETWEEN")) {
            node *lo, *hi;
            ps->pos++;
            if (!accept_kw(ps, "SYMMETRIC")) {
                accept_kw(ps, "ASYMMETRIC");
            }
            if ((rc = parse_binary_level(ps, 4, &lo)) != 0 || (rc = expect_kw(ps, "AND")) != 0 ||
                (rc = parse_binary_level(ps, 4, &hi)) != 0) {
                return rc;
            }
            node *n = mk(ps, N_BETWEEN, t);
            n->neg = neg;
            node *args[3] = {l, lo, hi};
            set_args(ps, n, 3, args);
            l = n;
            continue;
        }
        if (is_kw(t, "LIKE")) {
            node *pat, *esc = NULL;
            ps->pos++;
            if ((rc = parse_binary_level(ps, 4, &pat)) != 0) {
                return rc;
            }
            if (accept_kw(ps, "ESCAPE") && (rc = parse_binary_level(ps, 4, &esc)) != 0) {
                return rc;
            }
            node *n = mk(ps, N_LIKE, t);
            n->neg = neg;
            node *args[3] = {l, pat, esc};
            set_args(ps, n, esc != NULL ? 3 : 2, args);
            l = n;
            continue;
        }
        if (neg) {
            return syntax(ps, t, "IN, LIKE or BETWEEN after NOT");
        }
        break;
    }
    *out = l;
    return 0;
}

static int parse_binary_level(parser *ps, int level, node **out)
{
    int rc;
    token *t0 = cur(ps);
    if (++ps->depth > MAX_DEPTH) {
        return sl_err_set(ps->err, SL_EPARSE, "Expression nested too deeply at line %d, column %d",
                          t0->line, t0->col);
    }
    node *l = NULL;
    switch (level) {
    case 2:
        if (is_kw(cur(ps), "NOT")) {
            ps->pos++;
            node *e;
            if ((rc = parse_binary_level(ps, 2, &e)) != 0) {
                goto out;
            }
            l = mk(ps, N_NOT, t0);
            set_args(ps, l, 1, &e);
            rc = 0;
            goto out;
        }
        rc = parse_pred(ps, &l);
        goto out;
    case 3:
        rc = parse_pred(ps, &l);
        goto out;
    case 6:
        rc = parse_unary(ps, &l);
        goto out;
    default:
        break;
    }
    int next = level == 1 ? 2 : level + 1;
    if ((rc = parse_binary_level(ps, next, &l)) != 0) {
        goto out;
    }
    for (;;) {
        token *t = cur(ps);
        tok_t op;
        if (level == 0 && is_kw(t, "OR")) {
            op = T_OR;
        } else if (level == 1 && is_kw(t, "AND")) {
            op = T_AND;
        } else if (level == 4 && (t->t == T_PLUS || t->t == T_MINUS || t->t == T_CONCAT)) {
            op = t->t;
        } else if (level == 5 && (t->t == T_STAR || t->t == T_SLASH || t->t == T_PCT)) {
            op = t->t;
        } else {
            break;
        }
        ps->pos++;
        node *r;
        if ((rc = parse_binary_level(ps, next, &r)) != 0) {
            goto out;
        }
        node *n = mk(ps, N_BIN, t);
        n->op = op;
        node *args[2] = {l, r};
        set_args(ps, n, 2, args);
        l = n;
    }
    rc = 0;
out:
    ps->depth--;
    *out = l;
    return rc;
}

static int parse_expr(parser *ps, node **out)
{
    return parse_binary_level(ps, 0, out);
}

/* An alias after an expression or a table: AS name, or a bare non-reserved name. */
static int parse_alias(parser *ps, const char **alias)
{
    bool as = accept_kw(ps, "AS");
    token *t = cur(ps);
    if (t->t == T_QIDENT || (t->t == T_IDENT && !is_reserved(t))) {
        *alias = t->text;
        ps->pos++;
        return 0;
    }
    if (as) {
        return syntax(ps, t, "an alias after AS");
    }
    *alias = NULL;
    return 0;
}

static int parse_count(parser *ps, const char *what, int64_t *out)
{
    token *t = cur(ps);
    node *n;
    int rc;
    if (t->t == T_PARAM) {
        ps->pos++;
        if ((rc = parse_param(ps, t, &n)) != 0) {
            return rc;
        }
        if (n->v.kind != SL_SQLV_LONG || n->v.i < 0) {
            return sl_err_set(ps->err, SL_EINVAL,
                              "%s at line %d, column %d: the parameter must be a non-negative "
                              "integer",
                              what, t->line, t->col);
        }
        *out = n->v.i;
        return 0;
    }
    if (t->t != T_INT) {
        return syntax(ps, t, "a non-negative integer");
    }
    char *end;
    long long v = strtoll(t->text, &end, 10);
    if (*end != '\0' || v == LLONG_MAX) {
        return sl_err_set(ps->err, SL_EINVAL, "%s %s at line %d, column %d is too large", what,
                          t->text, t->line, t->col);
    }
    ps->pos++;
    *out = v;
    return 0;
}

static int parse_select(parser *ps, stmt *st)
{
    int rc;
    token *t;
    if ((rc = expect_kw(ps, "SELECT")) != 0) {
        return rc;
    }
    if (accept_kw(ps, "DISTINCT")) {
        st->distinct = true;
    } else {
        accept_kw(ps, "ALL");
    }
    vec items = {0};
    t = cur(ps);
    if (t->t == T_STAR) {
        st->star = true;
        st->star_line = t->line;
        st->star_col = t->col;
        ps->pos++;
        if (cur(ps)->t == T_COMMA) {
            return sl_err_set(ps->err, SL_EINVAL,
                              "SELECT * with other columns (line %d, column %d) is not supported",
                              cur(ps)->line, cur(ps)->col);
        }
    } else {
        for (;;) {
            sel_item *it = amalloc(ps->a, sizeof(sel_item));
            if ((rc = parse_expr(ps, &it->e)) != 0 || (rc = parse_alias(ps, &it->alias)) != 0) {
                return rc;
            }
            vpush(ps->a, &items, it);
            if (!accept(ps, T_COMMA)) {
                break;
            }
        }
    }
    st->nitems = items.n;
    st->items = amalloc(ps->a, sizeof(sel_item) * (size_t)(items.n + 1));
    for (int i = 0; i < items.n; i++) {
        st->items[i] = *(sel_item *)items.p[i];
    }
    if ((rc = expect_kw(ps, "FROM")) != 0) {
        return rc;
    }
    t = cur(ps);
    if (t->t == T_LP) {
        return sl_err_set(ps->err, SL_EINVAL,
                          "Subqueries in FROM (line %d, column %d) are not supported", t->line,
                          t->col);
    }
    if (t->t != T_QIDENT && (t->t != T_IDENT || is_reserved(t))) {
        return syntax(ps, t, "a table name");
    }
    st->tline = t->line;
    st->tcol = t->col;
    st->table = t->text;
    ps->pos++;
    if (accept(ps, T_DOT)) {
        token *u = cur(ps);
        if (u->t != T_QIDENT && (u->t != T_IDENT || is_reserved(u))) {
            return syntax(ps, u, "a table name");
        }
        st->schema = st->table;
        st->table = u->text;
        ps->pos++;
    }
    if ((rc = parse_alias(ps, &st->talias)) != 0) {
        return rc;
    }
    t = cur(ps);
    if (t->t == T_COMMA || is_kw(t, "JOIN") || is_kw(t, "INNER") || is_kw(t, "LEFT") ||
        is_kw(t, "RIGHT") || is_kw(t, "FULL") || is_kw(t, "CROSS") || is_kw(t, "NATURAL")) {
        return sl_err_set(ps->err, SL_EINVAL, "Joins (line %d, column %d) are not supported",
                          t->line, t->col);
    }
    if (accept_kw(ps, "WHERE") && (rc = parse_expr(ps, &st->where)) != 0) {
        return rc;
    }
    if (accept_kw(ps, "GROUP")) {
        if ((rc = expect_kw(ps, "BY")) != 0) {
            return rc;
        }
        vec g = {0};
        for (;;) {
            node *e;
            if ((rc = parse_expr(ps, &e)) != 0) {
                return rc;
            }
            vpush(ps->a, &g, e);
            if (!accept(ps, T_COMMA)) {
                break;
            }
        }
        st->ngroup = g.n;
        st->group = (node **)g.p;
    }
    if (accept_kw(ps, "HAVING") && (rc = parse_expr(ps, &st->having)) != 0) {
        return rc;
    }
    if (accept_kw(ps, "ORDER")) {
        if ((rc = expect_kw(ps, "BY")) != 0) {
            return rc;
        }
        vec o = {0};
        for (;;) {
            order_item *oi = amalloc(ps->a, sizeof(order_item));
            if ((rc = parse_expr(ps, &oi->e)) != 0) {
                return rc;
            }
            if (accept_kw(ps, "DESC")) {
                oi->desc = true;
            } else {
                accept_kw(ps, "ASC");
            }
            if (accept_kw(ps, "NULLS")) {
                token *nt = cur(ps);
                if (!(oi->desc ? accept_kw(ps, "LAST") : accept_kw(ps, "FIRST"))) {
                    if (is_kw(nt, "FIRST") || is_kw(nt, "LAST")) {
                        return sl_err_set(ps->err, SL_EINVAL,
                                          "NULLS %s at line %d, column %d is not supported: nulls "
                                          "sort first in ascending order and last in descending",
                                          nt->text, nt->line, nt->col);
                    }
                    return syntax(ps, nt, "FIRST or LAST");
                }
            }
            vpush(ps->a, &o, oi);
            if (!accept(ps, T_COMMA)) {
                break;
            }
        }
        st->norder = o.n;
        st->order = amalloc(ps->a, sizeof(order_item) * (size_t)(o.n + 1));
        for (int i = 0; i < o.n; i++) {
            st->order[i] = *(order_item *)o.p[i];
        }
    }
    st->limit = -1;
    if (accept_kw(ps, "LIMIT")) {
        if ((rc = parse_count(ps, "LIMIT", &st->limit)) != 0) {
            return rc;
        }
    }
    if (accept_kw(ps, "OFFSET")) {
        if ((rc = parse_count(ps, "OFFSET", &st->offset)) != 0) {
            return rc;
        }
        if (!accept_kw(ps, "ROWS")) {
            accept_kw(ps, "ROW");
        }
    }
    if (st->limit < 0 && accept_kw(ps, "FETCH")) {
        if (!accept_kw(ps, "FIRST") && (rc = expect_kw(ps, "NEXT")) != 0) {
            return rc;
        }
        if ((rc = parse_count(ps, "FETCH", &st->limit)) != 0) {
            return rc;
        }
        if (!accept_kw(ps, "ROWS") && (rc = expect_kw(ps, "ROW")) != 0) {
            return rc;
        }
        if ((rc = expect_kw(ps, "ONLY")) != 0) {
            return rc;
        }
    }
    return 0;
}

static int parse_stmt(arena *a, const char *sql, size_t len, const sl_sql_opts *opts, stmt **out,
                      sl_err *err)
{
    token *toks = NULL;
    int ntok = 0, rc;
    const char *nul = memchr(sql, '\0', len);
    if (nul != NULL) {
        return sl_err_set(err, SL_EPARSE, "The query contains a NUL byte at offset %zu",
                          (size_t)(nul - sql));
    }
    if ((rc = lex_all(a, sql, len, &toks, &ntok, err)) != 0) {
        return rc;
    }
    parser ps = {a, toks, ntok, 0, err, opts, 0, 0};
    stmt *st = amalloc(a, sizeof(stmt));
    if (accept_kw(&ps, "EXPLAIN")) {
        if ((rc = expect_kw(&ps, "PLAN")) != 0 || (rc = expect_kw(&ps, "FOR")) != 0) {
            return rc;
        }
        st->explain = true;
    }
    token *t = cur(&ps);
    if (is_kw(t, "WITH") || is_kw(t, "INSERT") || is_kw(t, "REPLACE") || is_kw(t, "UPDATE") ||
        is_kw(t, "DELETE") || is_kw(t, "SET")) {
        return sl_err_set(err, SL_EINVAL,
                          "%s statements (line %d, column %d) are not supported; "
                          "only SELECT",
                          t->text, t->line, t->col);
    }
    if ((rc = parse_select(&ps, st)) != 0) {
        return rc;
    }
    t = cur(&ps);
    if (is_kw(t, "UNION") || is_kw(t, "EXCEPT") || is_kw(t, "INTERSECT")) {
        return sl_err_set(err, SL_EINVAL, "%s (line %d, column %d) is not supported", t->text,
                          t->line, t->col);
    }
    accept(&ps, T_SEMI);
    if (cur(&ps)->t != T_EOF) {
        return syntax(&ps, cur(&ps), "the end of the statement");
    }
    if (opts != NULL && ps.nparam < opts->nparams) {
        return sl_err_set(err, SL_EINVAL,
                          "The request gives %d parameters but the query has %d ? placeholders",
                          opts->nparams, ps.nparam);
    }
    *out = st;
    return 0;
}

/* ---- planner state ------------------------------------------------------------------------ */

typedef enum tbl_kind { TBL_DS, TBL_SCHEMATA, TBL_TABLES, TBL_COLUMNS } tbl_kind;

typedef enum qtype { Q_INFO, Q_TIMESERIES, Q_GROUPBY, Q_SCAN, Q_TIMEBOUNDARY } qtype;

/* Where a slot's value comes from in a native result row. */
typedef enum slot_src { SRC_TIME, SRC_DIM, SRC_COL, SRC_MINTIME, SRC_MAXTIME, SRC_INFO } slot_src;

typedef enum merge_op { M_NONE, M_SUM, M_MIN, M_MAX } merge_op;

typedef struct slotdef {
    slot_src src;
    const char *native; /* SRC_DIM / SRC_COL: the native output name */
    sl_sql_type type;
    merge_op merge;
} slotdef;

typedef enum tk_kind { TK_NONE, TK_FLOOR, TK_TUMBLE, TK_HOP } tk_kind;

typedef struct tkey {
    tk_kind kind;
    int64_t size_ms;  /* TUMBLE / HOP size; FLOOR: the period (for messages) */
    int64_t slide_ms; /* HOP */
    char period[48];  /* FLOOR: ISO period of the native granularity */
    bool has_origin;
    int64_t origin_ms;
    node *expr;
} tkey;

typedef enum agg_kind {
    AG_COUNT,
    AG_COUNT_DIM,
    AG_SUM,
    AG_MIN,
    AG_MAX,
    AG_CARD,
    AG_HLL,
    AG_QUANT,
    AG_MINTIME,
    AG_MAXTIME,
} agg_kind;

typedef struct aggdef {
    const char *key;
    agg_kind kind;
    const char *field;
    bool is_long;
    double q;
    int slot;
    const char *what;
} aggdef;

typedef struct ivl {
    int64_t s, e;
} ivl;

typedef struct ivset {
    int n;
    ivl *v;
} ivset;

typedef struct plan {
    arena *a;
    const sl_config *cfg;
    const sl_sql_opts *opts;
    sl_err *err;
    stmt *st;
    tbl_kind table;
    const sl_spec *spec;
    const char *tname; /* table name for messages */
    qtype qt;
    bool aggmode;
    vec slots; /* slotdef* */
    tkey tk;
    int tslot;
    int ndk;
    int dk_slot[SL_MAX_DIMS];
    int dk_dim[SL_MAX_DIMS];
    node *dk_expr[SL_MAX_DIMS];
    vec aggs; /* aggdef* */
    int nout;
    node **out;
    const char **names;
    sl_sql_type *types;
    node *where_rows; /* INFORMATION_SCHEMA: WHERE evaluated on rows */
    node *having;
    int norder;
    node **order;
    bool *desc;
    ivset iv;
    bool time_cond;
    vec filters; /* node*: conjuncts that become the native filter */
    bool pushed; /* the native query sorts (and limits) as ORDER BY / LIMIT ask */
    int64_t limit, offset;
    sl_buf native;
} plan;

static int perr(plan *p, int code, const node *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An error; at (may be NULL) adds " (line L, column C)" where the text has "@@". */
static int perr(plan *p, int code, const node *at, const char *fmt, ...)
{
    char msg[480], where[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (at != NULL) {
        snprintf(where, sizeof(where), " (line %d, column %d)", at->line, at->col);
    }
    char *mark = strstr(msg, "@@");
    if (mark == NULL) {
        return sl_err_set(p->err, code, "%s%s", msg, where);
    }
    *mark = '\0';
    return sl_err_set(p->err, code, "%s%s%s", msg, where, mark + 2);
}

static int add_slot(plan *p, slot_src src, const char *native, sl_sql_type type, merge_op m)
{
    slotdef *s = amalloc(p->a, sizeof(slotdef));
    s->src = src;
    s->native = native;
    s->type = type;
    s->merge = m;
    vpush(p->a, &p->slots, s);
    return p->slots.n - 1;
}

static slotdef *slot_at(const plan *p, int i)
{
    return p->slots.p[i];
}

static node *mk_slot(plan *p, const node *at, int slot)
{
    node *n = amalloc(p->a, sizeof(node));
    n->k = N_SLOT;
    n->slot = slot;
    n->line = at != NULL ? at->line : 0;
    n->col = at != NULL ? at->col : 0;
    return n;
}

static node *mk_node(plan *p, nkind k, const node *at, int nargs)
{
    node *n = amalloc(p->a, sizeof(node));
    *n = (node){.k = k, .line = at->line, .col = at->col, .rcol = COL_UNRESOLVED};
    n->nargs = nargs;
    n->args = amalloc(p->a, sizeof(node *) * (size_t)(nargs > 0 ? nargs : 1));
    return n;
}

/* ---- catalog -------------------------------------------------------------------------------- */

typedef struct icol {
    const char *name;
    sl_sql_type type;
} icol;

static const icol schemata_cols[] = {
    {"CATALOG_NAME", SL_SQL_VARCHAR},
    {"SCHEMA_NAME", SL_SQL_VARCHAR},
    {"SCHEMA_OWNER", SL_SQL_VARCHAR},
    {"DEFAULT_CHARACTER_SET_CATALOG", SL_SQL_VARCHAR},
    {"DEFAULT_CHARACTER_SET_SCHEMA", SL_SQL_VARCHAR},
    {"DEFAULT_CHARACTER_SET_NAME", SL_SQL_VARCHAR},
    {"SQL_PATH", SL_SQL_VARCHAR},
    {NULL, 0},
};

static const icol tables_cols[] = {
    {"TABLE_CATALOG", SL_SQL_VARCHAR},
    {"TABLE_SCHEMA", SL_SQL_VARCHAR},
    {"TABLE_NAME", SL_SQL_VARCHAR},
    {"TABLE_TYPE", SL_SQL_VARCHAR},
    {"IS_JOINABLE", SL_SQL_VARCHAR},
    {"IS_BROADCAST", SL_SQL_VARCHAR},
    {NULL, 0},
};

static const icol columns_cols[] = {
    {"TABLE_CATALOG", SL_SQL_VARCHAR},
    {"TABLE_SCHEMA", SL_SQL_VARCHAR},
    {"TABLE_NAME", SL_SQL_VARCHAR},
    {"COLUMN_NAME", SL_SQL_VARCHAR},
    {"ORDINAL_POSITION", SL_SQL_BIGINT},
    {"COLUMN_DEFAULT", SL_SQL_VARCHAR},
    {"IS_NULLABLE", SL_SQL_VARCHAR},
    {"DATA_TYPE", SL_SQL_VARCHAR},
    {"CHARACTER_MAXIMUM_LENGTH", SL_SQL_BIGINT},
    {"CHARACTER_OCTET_LENGTH", SL_SQL_BIGINT},
    {"NUMERIC_PRECISION", SL_SQL_BIGINT},
    {"NUMERIC_PRECISION_RADIX", SL_SQL_BIGINT},
    {"NUMERIC_SCALE", SL_SQL_BIGINT},
    {"DATETIME_PRECISION", SL_SQL_BIGINT},
    {"CHARACTER_SET_NAME", SL_SQL_VARCHAR},
    {"COLLATION_NAME", SL_SQL_VARCHAR},
    {"JDBC_TYPE", SL_SQL_BIGINT},
    {NULL, 0},
};

static const icol *info_cols(tbl_kind t)
{
    return t == TBL_SCHEMATA ? schemata_cols : t == TBL_TABLES ? tables_cols : columns_cols;
}

static const char *const info_tables[] = {"SCHEMATA", "TABLES", "COLUMNS"};

/* Columns of a datasource as SQL sees them: __time, dimensions, count, metrics. */
static int ds_ncols(const sl_spec *s)
{
    return 2 + s->ndims + s->nmetrics;
}

static const char *ds_col_name(const sl_spec *s, int i)
{
    if (i == 0) {
        return "__time";
    }
    if (i <= s->ndims) {
        return s->dims[i - 1];
    }
    if (i == s->ndims + 1) {
        return s->count_name;
    }
    return s->metrics[i - s->ndims - 2].name;
}

/* Sketch metrics are Druid COMPLEX columns, which its SQL layer types OTHER (JDBC 1111):
 * they are read through APPROX_COUNT_DISTINCT / APPROX_QUANTILE, and SELECT * shows them
 * as null. */
static sl_sql_type ds_col_type(const sl_spec *s, int i)
{
    if (i == 0) {
        return SL_SQL_TIMESTAMP;
    }
    if (i <= s->ndims) {
        return SL_SQL_VARCHAR;
    }
    if (i == s->ndims + 1) {
        return SL_SQL_BIGINT;
    }
    sl_metric_kind k = s->metrics[i - s->ndims - 2].kind;
    return k == SL_METRIC_DISTINCT || k == SL_METRIC_QUANTILES ? SL_SQL_OTHER : SL_SQL_DOUBLE;
}

/* rcol of datasource column i (0-based in the order above). */
static int ds_rcol(const sl_spec *s, int i)
{
    if (i == 0) {
        return COL_TIME;
    }
    if (i <= s->ndims) {
        return i - 1;
    }
    return COL_COUNT + (i - s->ndims - 1);
}

static int rcol_index(const sl_spec *s, int rcol)
{
    if (rcol == COL_TIME) {
        return 0;
    }
    if (rcol >= 0 && rcol < COL_COUNT) {
        return rcol + 1;
    }
    return s->ndims + 1 + (rcol - COL_COUNT);
}

static bool is_basic_metric(sl_metric_kind k)
{
    return k == SL_METRIC_COUNT || k == SL_METRIC_SUM || k == SL_METRIC_MIN || k == SL_METRIC_MAX;
}

static const char *sketch_kind_name(sl_metric_kind k)
{
    return k == SL_METRIC_DISTINCT    ? "a distinct-count sketch (HyperLogLog)"
           : k == SL_METRIC_QUANTILES ? "a quantiles sketch (DDSketch)"
                                      : "a number";
}

/* An input field the datasource saw but did not keep as a column: the partition key,
 * the timestamp field and the fields of metrics. */
static bool raw_field(const sl_spec *s, const char *name)
{
    if ((s->partition_key != NULL && strcmp(s->partition_key, name) == 0) ||
        (s->ts_field != NULL && strcmp(s->ts_field, name) == 0)) {
        return true;
    }
    for (int i = 0; i < s->nmetrics; i++) {
        if (s->metrics[i].field != NULL && strcmp(s->metrics[i].field, name) == 0) {
            return true;
        }
    }
    return false;
}

/* The metric of kind k over field, or -1. */
static int metric_of(const sl_spec *s, sl_metric_kind k, const char *field)
{
    for (int i = 0; i < s->nmetrics; i++) {
        if (s->metrics[i].kind == k && s->metrics[i].field != NULL &&
            strcmp(s->metrics[i].field, field) == 0) {
            return i;
        }
    }
    return -1;
}

/* The sketch metric of kind k (SL_METRIC_DISTINCT or SL_METRIC_QUANTILES) kept for
 * input field, or -1. */
static int sketch_metric(const sl_spec *s, const char *field, sl_metric_kind k)
{
    return metric_of(s, k, field);
}

static void list_join(char *buf, size_t size, const char *item)
{
    size_t n = strlen(buf);
    if (n + 1 < size) {
        snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "", item);
    }
}

static void ds_col_list(const sl_spec *s, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < ds_ncols(s); i++) {
        list_join(buf, size, ds_col_name(s, i));
    }
    if (s->time_column != NULL && strcmp(s->time_column, "__time") != 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, " (%s is __time)", s->time_column);
    }
}

static int rollup_error(plan *p, const node *at, const char *name)
{
    const sl_spec *s = p->spec;
    char dims[200] = "", mets[300] = "", tail[300] = "";
    for (int i = 0; i < s->ndims; i++) {
        list_join(dims, sizeof(dims), s->dims[i]);
    }
    list_join(mets, sizeof(mets), s->count_name);
    for (int i = 0; i < s->nmetrics; i++) {
        list_join(mets, sizeof(mets), s->metrics[i].name);
    }
    bool basic = metric_of(s, SL_METRIC_SUM, name) >= 0 || metric_of(s, SL_METRIC_MIN, name) >= 0 ||
                 metric_of(s, SL_METRIC_MAX, name) >= 0;
    bool distinct = metric_of(s, SL_METRIC_DISTINCT, name) >= 0;
    bool quant = metric_of(s, SL_METRIC_QUANTILES, name) >= 0;
    if (s->ts_field != NULL && strcmp(s->ts_field, name) == 0) {
        snprintf(tail, sizeof(tail), "; the event time is the column __time (%s)",
                 s->time_column != NULL ? s->time_column : "__time");
    } else if (distinct) {
        snprintf(tail, sizeof(tail),
                 "; distinct counts of %s are available as COUNT(DISTINCT %s) and "
                 "APPROX_COUNT_DISTINCT(%s)",
                 name, name, name);
    } else if (basic || quant) {
        char ways[200] = "";
        if (basic) {
            snprintf(ways, sizeof(ways), "SUM(%s), MIN(%s), MAX(%s), AVG(%s)", name, name, name,
                     name);
        }
        if (quant) {
            size_t n = strlen(ways);
            snprintf(ways + n, sizeof(ways) - n, "%sAPPROX_QUANTILE(%s, q)", n > 0 ? ", " : "",
                     name);
        }
        snprintf(tail, sizeof(tail),
                 "; %s is available only through its aggregates (%s where the datasource keeps "
                 "them)",
                 name, ways);
    } else {
        snprintf(tail, sizeof(tail),
                 "; a raw field that is neither a dimension nor kept by a metric is gone after "
                 "rollup (a \"distinct\" metric of it would keep its distinct count)");
    }
    return perr(p, SL_EINVAL, at,
                "column %s@@ was not kept by rollup: %s keeps dimensions %s and metrics %s%s", name,
                s->name, dims[0] ? dims : "(none)", mets, tail);
}

/* ---- column resolution ---------------------------------------------------------------------- */

static int resolve(plan *p, node *e, int alias_mode);

/* alias_mode: 0 none, 1 GROUP BY (columns first), 2 ORDER BY (aliases first). */
static int alias_index(plan *p, const char *name)
{
    for (int i = 0; i < p->st->nitems; i++) {
        if (p->st->items[i].alias != NULL && strcmp(p->st->items[i].alias, name) == 0) {
            return i;
        }
    }
    return -1;
}

static int resolve_col(plan *p, node *e, int alias_mode)
{
    const char *name = e->name;
    if (e->qual != NULL) {
        bool ok = (p->st->talias != NULL && strcmp(e->qual, p->st->talias) == 0) ||
                  (p->st->talias == NULL && strcmp(e->qual, p->st->table) == 0);
        if (!ok) {
            return perr(p, SL_EINVAL, e, "Table '%s' not found@@ (qualifier of column '%s')",
                        e->qual, name);
        }
    }
    if (alias_mode == 2 && e->qual == NULL && alias_index(p, name) >= 0) {
        e->rcol = COL_ALIAS;
        e->alias_of = alias_index(p, name);
        return 0;
    }
    if (p->table != TBL_DS) {
        const icol *cols = info_cols(p->table);
        for (int i = 0; cols[i].name != NULL; i++) {
            if (strcasecmp(cols[i].name, name) == 0) {
                e->rcol = i;
                return 0;
            }
        }
        if (alias_mode != 0 && e->qual == NULL && alias_index(p, name) >= 0) {
            e->rcol = COL_ALIAS;
            e->alias_of = alias_index(p, name);
            return 0;
        }
        char list[600] = "";
        for (int i = 0; cols[i].name != NULL; i++) {
            list_join(list, sizeof(list), cols[i].name);
        }
        return perr(p, SL_EINVAL, e,
                    "Column '%s' not found in table 'INFORMATION_SCHEMA.%s'@@; its columns are %s",
                    name, p->tname, list);
    }
    const sl_spec *s = p->spec;
    if (strcmp(name, "__time") == 0 ||
        (s->time_column != NULL && strcmp(name, s->time_column) == 0)) {
        e->rcol = COL_TIME;
        return 0;
    }
    for (int i = 1; i < ds_ncols(s); i++) {
        if (strcmp(ds_col_name(s, i), name) == 0) {
            e->rcol = ds_rcol(s, i);
            return 0;
        }
    }
    if (alias_mode != 0 && e->qual == NULL && alias_index(p, name) >= 0) {
        e->rcol = COL_ALIAS;
        e->alias_of = alias_index(p, name);
        return 0;
    }
    if (raw_field(s, name)) {
        e->rcol = COL_RAW;
        return 0;
    }
    char list[600];
    ds_col_list(s, list, sizeof(list));
    return perr(p, SL_EINVAL, e, "Column '%s' not found in table '%s'@@; its columns are %s", name,
                s->name, list);
}

static int resolve(plan *p, node *e, int alias_mode)
{
    if (e == NULL) {
        return 0;
    }
    if (e->k == N_COL) {
        return resolve_col(p, e, alias_mode);
    }
    for (int i = 0; i < e->nargs; i++) {
        int rc = resolve(p, e->args[i], alias_mode);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- structural helpers --------------------------------------------------------------------- */

static bool value_eq(const sl_sql_value *a, const sl_sql_value *b)
{
    if (a->kind != b->kind) {
        return false;
    }
    switch (a->kind) {
    case SL_SQLV_NULL:
        return true;
    case SL_SQLV_DOUBLE:
        return a->d == b->d;
    case SL_SQLV_STR:
        return a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
    default:
        return a->i == b->i;
    }
}

static bool same(const node *a, const node *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL || a->k != b->k || a->nargs != b->nargs || a->op != b->op ||
        a->neg != b->neg || a->distinct != b->distinct) {
        return false;
    }
    switch (a->k) {
    case N_LIT:
        return value_eq(&a->v, &b->v);
    case N_COL:
        return a->rcol == b->rcol && (a->rcol != COL_RAW || strcmp(a->name, b->name) == 0);
    case N_FUNC:
        if (strcmp(a->name, b->name) != 0) {
            return false;
        }
        break;
    case N_CAST:
        if (a->cast != b->cast) {
            return false;
        }
        break;
    case N_SLOT:
        return a->slot == b->slot;
    default:
        break;
    }
    for (int i = 0; i < a->nargs; i++) {
        if (!same(a->args[i], b->args[i])) {
            return false;
        }
    }
    return true;
}

static bool is_agg_name(const char *n)
{
    static const char *const names[] = {"COUNT",
                                        "SUM",
                                        "MIN",
                                        "MAX",
                                        "AVG",
                                        "APPROX_COUNT_DISTINCT",
                                        "APPROX_QUANTILE",
                                        "APPROX_QUANTILE_DS",
                                        "APPROX_COUNT_DISTINCT_DS_HLL",
                                        NULL};
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(n, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool has_agg(const node *e)
{
    if (e == NULL) {
        return false;
    }
    if (e->k == N_FUNC && is_agg_name(e->name)) {
        return true;
    }
    for (int i = 0; i < e->nargs; i++) {
        if (has_agg(e->args[i])) {
            return true;
        }
    }
    return false;
}

/* Bits: 1 the time column, 2 any other column, 4 an aggregate. */
static int col_use(const node *e)
{
    if (e == NULL) {
        return 0;
    }
    if (e->k == N_COL) {
        return e->rcol == COL_TIME ? 1 : 2;
    }
    if (e->k == N_STAR) {
        return 2;
    }
    int m = e->k == N_FUNC && is_agg_name(e->name) ? 4 : 0;
    for (int i = 0; i < e->nargs; i++) {
        m |= col_use(e->args[i]);
    }
    return m;
}

/* Text of a node as written, for messages and default column names. */
static void node_text(const node *e, sl_buf *b);

static void text_value(const sl_sql_value *v, sl_buf *b)
{
    char buf[64];
    switch (v->kind) {
    case SL_SQLV_NULL:
        sl_buf_append(b, "NULL", 4);
        return;
    case SL_SQLV_BOOL:
        sl_buf_append(b, v->i ? "TRUE" : "FALSE", v->i ? 4 : 5);
        return;
    case SL_SQLV_LONG:
        snprintf(buf, sizeof(buf), "%" PRId64, v->i);
        break;
    case SL_SQLV_DOUBLE:
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*g", prec, v->d);
            if (strtod(buf, NULL) == v->d) {
                break;
            }
        }
        break;
    case SL_SQLV_STR:
        sl_buf_append(b, "'", 1);
        sl_buf_append(b, v->s, v->n);
        sl_buf_append(b, "'", 1);
        return;
    case SL_SQLV_TIME: {
        char t[40];
        snprintf(buf, sizeof(buf), "TIMESTAMP '%s'", sl_time_format(v->i, t, sizeof(t)));
        break;
    }
    case SL_SQLV_INTERVAL:
        snprintf(buf, sizeof(buf), "INTERVAL '%" PRId64 "' SECOND", v->i / 1000);
        break;
    }
    sl_buf_append(b, buf, strlen(buf));
}

static void node_text(const node *e, sl_buf *b)
{
    static const char *const ops[] = {
        [T_PLUS] = " + ",  [T_MINUS] = " - ", [T_STAR] = " * ", [T_SLASH] = " / ",
        [T_PCT] = " % ",   [T_EQ] = " = ",    [T_NE] = " <> ",  [T_LT] = " < ",
        [T_LE] = " <= ",   [T_GT] = " > ",    [T_GE] = " >= ",  [T_CONCAT] = " || ",
        [T_AND] = " AND ", [T_OR] = " OR "};
    if (b->len > 400) {
        return;
    }
    switch (e->k) {
    case N_LIT:
        text_value(&e->v, b);
        return;
    case N_COL:
        if (e->qual != NULL) {
            sl_buf_append(b, e->qual, strlen(e->qual));
            sl_buf_append(b, ".", 1);
        }
        sl_buf_append(b, e->name, strlen(e->name));
        return;
    case N_STAR:
        sl_buf_append(b, "*", 1);
        return;
    case N_FUNC:
        sl_buf_append(b, e->name, strlen(e->name));
        sl_buf_append(b, "(", 1);
        if (e->distinct) {
            sl_buf_append(b, "DISTINCT ", 9);
        }
        for (int i = 0; i < e->nargs; i++) {
            if (i > 0) {
                sl_buf_append(b, e->op == 1 ? " TO " : ", ", e->op == 1 ? 4 : 2);
            }
            if (e->op == 1 && i == 1) {
                sl_buf_append(b, e->args[i]->v.s, e->args[i]->v.n);
            } else {
                node_text(e->args[i], b);
            }
        }
        sl_buf_append(b, ")", 1);
        return;
    case N_BIN:
        node_text(e->args[0], b);
        sl_buf_append(b, ops[e->op], strlen(ops[e->op]));
        node_text(e->args[1], b);
        return;
    case N_NOT:
        sl_buf_append(b, "NOT ", 4);
        node_text(e->args[0], b);
        return;
    case N_NEG:
        sl_buf_append(b, "-", 1);
        node_text(e->args[0], b);
        return;
    case N_ISNULL:
        node_text(e->args[0], b);
        sl_buf_append(b, e->neg ? " IS NOT NULL" : " IS NULL", e->neg ? 12 : 8);
        return;
    case N_IN:
        node_text(e->args[0], b);
        sl_buf_append(b, e->neg ? " NOT IN (...)" : " IN (...)", e->neg ? 13 : 9);
        return;
    case N_BETWEEN:
        node_text(e->args[0], b);
        sl_buf_append(b, e->neg ? " NOT BETWEEN " : " BETWEEN ", e->neg ? 13 : 9);
        node_text(e->args[1], b);
        sl_buf_append(b, " AND ", 5);
        node_text(e->args[2], b);
        return;
    case N_LIKE:
        node_text(e->args[0], b);
        sl_buf_append(b, e->neg ? " NOT LIKE " : " LIKE ", e->neg ? 10 : 6);
        node_text(e->args[1], b);
        return;
    case N_CAST:
        sl_buf_append(b, "CAST(", 5);
        node_text(e->args[0], b);
        sl_buf_append(b, " AS ", 4);
        sl_buf_append(b, sl_sql_type_name(e->cast), strlen(sl_sql_type_name(e->cast)));
        sl_buf_append(b, ")", 1);
        return;
    case N_SLOT:
        sl_buf_append(b, "$slot", 5);
        return;
    }
}

static const char *ntext(plan *p, const node *e)
{
    sl_buf b;
    sl_buf_init(&b);
    node_text(e, &b);
    const char *s = astrndup(p->a, b.data != NULL ? b.data : "", b.len);
    sl_buf_fini(&b);
    return s;
}

/* ---- values and the evaluator ------------------------------------------------------------- */

static bool is_num(const sl_sql_value *v)
{
    return v->kind == SL_SQLV_LONG || v->kind == SL_SQLV_DOUBLE || v->kind == SL_SQLV_BOOL;
}

static double num(const sl_sql_value *v)
{
    return v->kind == SL_SQLV_DOUBLE ? v->d : (double)v->i;
}

/* Shortest text that reads back as d, with ".0" when integral (Druid's doubles). */
static void fmt_double(double d, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    if (strpbrk(buf, ".eEni") == NULL && strlen(buf) + 3 < size) {
        strcat(buf, ".0");
    }
}

/* A value as text (filters, CAST to VARCHAR, ||). Returns a view or writes into buf. */
static sl_sql_value to_text(const sl_sql_value *v, char *buf, size_t size)
{
    switch (v->kind) {
    case SL_SQLV_STR:
    case SL_SQLV_NULL:
        return *v;
    case SL_SQLV_BOOL:
        snprintf(buf, size, "%s", v->i ? "true" : "false");
        break;
    case SL_SQLV_LONG:
    case SL_SQLV_INTERVAL:
        snprintf(buf, size, "%" PRId64, v->i);
        break;
    case SL_SQLV_DOUBLE:
        fmt_double(v->d, buf, size);
        break;
    case SL_SQLV_TIME:
        sl_time_format(v->i, buf, size);
        break;
    }
    return v_str(buf, strlen(buf));
}

/* A string read as a timestamp (ISO 8601, a space allowed for T), as SQL coerces it. */
static bool str_time(const sl_sql_value *v, int64_t *ms)
{
    sl_err e;
    return v->kind == SL_SQLV_STR && sl_time_parse(v->s, v->n, SL_TS_ISO, ms, &e) == 0;
}

/* Total order used by comparisons and ORDER BY: null lowest; numbers by value; times
 * by instant (a string compared with a time is read as one); strings bytewise. */
static int cmp_values(const sl_sql_value *a, const sl_sql_value *b)
{
    if (a->kind == SL_SQLV_NULL || b->kind == SL_SQLV_NULL) {
        return a->kind == SL_SQLV_NULL ? (b->kind == SL_SQLV_NULL ? 0 : -1) : 1;
    }
    if (is_num(a) && is_num(b)) {
        if (a->kind != SL_SQLV_DOUBLE && b->kind != SL_SQLV_DOUBLE) {
            return a->i < b->i ? -1 : a->i > b->i;
        }
        double x = num(a), y = num(b);
        return x < y ? -1 : x > y;
    }
    int64_t x, y;
    bool at = a->kind == SL_SQLV_TIME || a->kind == SL_SQLV_INTERVAL;
    bool bt = b->kind == SL_SQLV_TIME || b->kind == SL_SQLV_INTERVAL;
    if (at || bt) {
        x = a->i;
        y = b->i;
        if (!at && !(a->kind == SL_SQLV_LONG ? (x = a->i, true) : str_time(a, &x))) {
            return -1;
        }
        if (!bt && !(b->kind == SL_SQLV_LONG ? (y = b->i, true) : str_time(b, &y))) {
            return 1;
        }
        return x < y ? -1 : x > y;
    }
    char ba[64], bb[64];
    sl_sql_value sa = to_text(a, ba, sizeof(ba)), sb = to_text(b, bb, sizeof(bb));
    if (a->kind == SL_SQLV_STR && is_num(b)) {
        char *end;
        char tmp[64];
        if (a->n < sizeof(tmp)) {
            memcpy(tmp, a->s, a->n);
            tmp[a->n] = '\0';
            double d = strtod(tmp, &end);
            if (end != tmp && *end == '\0') {
                double y2 = num(b);
                return d < y2 ? -1 : d > y2;
            }
        }
    } else if (b->kind == SL_SQLV_STR && is_num(a)) {
        return -cmp_values(b, a);
    }
    size_t n = sa.n < sb.n ? sa.n : sb.n;
    int r = n > 0 ? memcmp(sa.s, sb.s, n) : 0;
    if (r != 0) {
        return r < 0 ? -1 : 1;
    }
    return sa.n < sb.n ? -1 : sa.n > sb.n;
}

static bool truthy(const sl_sql_value *v)
{
    return v->kind == SL_SQLV_BOOL ? v->i != 0 : is_num(v) && num(v) != 0;
}

typedef struct evalctx {
    plan *p;
    const sl_sql_value *row;
    arena *a; /* where new strings go */
} evalctx;

static sl_sql_value eval(evalctx *c, const node *e);

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Floors t to period_ms buckets starting at origin (weeks start on Monday, as Druid's). */
static int64_t floor_time(int64_t t, int64_t period_ms, int64_t origin)
{
    return origin + floor_div(t - origin, period_ms) * period_ms;
}

static bool weeks_only(int64_t ms)
{
    return ms % (7 * 86400000LL) == 0;
}

#define MONDAY_ORIGIN (-3 * 86400000LL)

static int64_t default_origin(int64_t period_ms)
{
    return weeks_only(period_ms) ? MONDAY_ORIGIN : 0;
}

static sl_sql_value eval_arith(int op, sl_sql_value x, sl_sql_value y)
{
    if (x.kind == SL_SQLV_NULL || y.kind == SL_SQLV_NULL) {
        return v_null();
    }
    /* timestamp +- interval, interval + timestamp, timestamp - timestamp */
    if (x.kind == SL_SQLV_TIME || y.kind == SL_SQLV_TIME) {
        if (x.kind == SL_SQLV_TIME && y.kind == SL_SQLV_INTERVAL &&
            (op == T_PLUS || op == T_MINUS)) {
            return v_time(op == T_PLUS ? x.i + y.i : x.i - y.i);
        }
        if (x.kind == SL_SQLV_INTERVAL && y.kind == SL_SQLV_TIME && op == T_PLUS) {
            return v_time(x.i + y.i);
        }
        return v_null();
    }
    if (x.kind == SL_SQLV_INTERVAL && y.kind == SL_SQLV_INTERVAL &&
        (op == T_PLUS || op == T_MINUS)) {
        return v_ivl(op == T_PLUS ? x.i + y.i : x.i - y.i);
    }
    if (!is_num(&x) || !is_num(&y)) {
        return v_null();
    }
    if (x.kind != SL_SQLV_DOUBLE && y.kind != SL_SQLV_DOUBLE) {
        int64_t a = x.i, b = y.i, r;
        switch (op) {
        case T_PLUS:
            if (__builtin_add_overflow(a, b, &r)) {
                return v_double((double)a + (double)b);
            }
            return v_long(r);
        case T_MINUS:
            if (__builtin_sub_overflow(a, b, &r)) {
                return v_double((double)a - (double)b);
            }
            return v_long(r);
        case T_STAR:
            if (__builtin_mul_overflow(a, b, &r)) {
                return v_double((double)a * (double)b);
            }
            return v_long(r);
        case T_SLASH:
            if (b == 0 || (a == INT64_MIN && b == -1)) {
                return v_null();
            }
            return v_long(a / b);
        case T_PCT:
            if (b == 0 || (a == INT64_MIN && b == -1)) {
                return v_null();
            }
            return v_long(a % b);
        }
        return v_null();
    }
    double a = num(&x), b = num(&y), r = 0;
    switch (op) {
    case T_PLUS:
        r = a + b;
        break;
    case T_MINUS:
        r = a - b;
        break;
    case T_STAR:
        r = a * b;
        break;
    case T_SLASH:
        if (b == 0) {
            return v_null();
        }
        r = a / b;
        break;
    case T_PCT:
        if (b == 0) {
            return v_null();
        }
        r = fmod(a, b);
        break;
    }
    return isfinite(r) ? v_double(r) : v_null();
}

static bool like(const sl_sql_value *s, const sl_sql_value *pat, char esc)
{
    char tmp[64];
    sl_sql_value ps = to_text(pat, tmp, sizeof(tmp));
    char *p = sl_strndup(ps.s != NULL ? ps.s : "", ps.n);
    sl_filter f;
    memset(&f, 0, sizeof(f));
    f.type = SL_FILTER_LIKE;
    f.pattern = p;
    f.escape = esc;
    char tb[64];
    sl_sql_value ts = to_text(s, tb, sizeof(tb));
    bool r = sl_filter_match_str(&f, ts.s != NULL ? ts.s : "", ts.n);
    free(p);
    return r;
}

static sl_sql_value cast_value(evalctx *c, sl_sql_value v, sl_sql_type t)
{
    char buf[64];
    if (v.kind == SL_SQLV_NULL) {
        return v;
    }
    switch (t) {
    case SL_SQL_VARCHAR: {
        sl_sql_value s = to_text(&v, buf, sizeof(buf));
        if (s.s == buf) {
            s.s = astrndup(c->a, buf, s.n);
        }
        return s;
    }
    case SL_SQL_BIGINT:
        if (v.kind == SL_SQLV_DOUBLE) {
            return isfinite(v.d) && fabs(v.d) < 9.2e18 ? v_long((int64_t)v.d) : v_null();
        }
        if (v.kind == SL_SQLV_STR) {
            char tmp[64], *end;
            if (v.n == 0 || v.n >= sizeof(tmp)) {
                return v_null();
            }
            memcpy(tmp, v.s, v.n);
            tmp[v.n] = '\0';
            long long x = strtoll(tmp, &end, 10);
            if (*end == '\0') {
                return v_long(x);
            }
            double d = strtod(tmp, &end);
            return *end == '\0' && isfinite(d) && fabs(d) < 9.2e18 ? v_long((int64_t)d) : v_null();
        }
        return v_long(v.i);
    case SL_SQL_DOUBLE:
    case SL_SQL_FLOAT:
        if (v.kind == SL_SQLV_STR) {
            char tmp[64], *end;
            if (v.n == 0 || v.n >= sizeof(tmp)) {
                return v_null();
            }
            memcpy(tmp, v.s, v.n);
            tmp[v.n] = '\0';
            double d = strtod(tmp, &end);
            return *end == '\0' && isfinite(d) ? v_double(d) : v_null();
        }
        return v_double(v.kind == SL_SQLV_DOUBLE ? v.d : (double)v.i);
    case SL_SQL_TIMESTAMP: {
        int64_t ms;
        if (v.kind == SL_SQLV_TIME) {
            return v;
        }
        if (v.kind == SL_SQLV_LONG) {
            return v_time(v.i);
        }
        return str_time(&v, &ms) ? v_time(ms) : v_null();
    }
    case SL_SQL_BOOLEAN:
        if (v.kind == SL_SQLV_STR) {
            if (v.n == 4 && strncasecmp(v.s, "true", 4) == 0) {
                return v_bool(true);
            }
            if (v.n == 5 && strncasecmp(v.s, "false", 5) == 0) {
                return v_bool(false);
            }
            return v_null();
        }
        return v_bool(truthy(&v));
    case SL_SQL_OTHER:
        return v;
    }
    return v;
}

static sl_sql_value eval_func(evalctx *c, const node *e)
{
    const char *n = e->name;
    sl_sql_value a0 = e->nargs > 0 ? eval(c, e->args[0]) : v_null();
    if (strcmp(n, "TIME_FLOOR") == 0) {
        sl_sql_value per = eval(c, e->args[1]);
        int64_t ms, origin;
        sl_err er;
        char tmp[48];
        if (a0.kind != SL_SQLV_TIME || per.kind != SL_SQLV_STR || per.n >= sizeof(tmp)) {
            return v_null();
        }
        memcpy(tmp, per.s, per.n);
        tmp[per.n] = '\0';
        if (sl_period_parse(tmp, &ms, &er) != 0 || ms <= 0) {
            return v_null();
        }
        origin = default_origin(ms);
        if (e->nargs > 2) {
            sl_sql_value o = eval(c, e->args[2]);
            if (o.kind == SL_SQLV_TIME) {
                origin = o.i;
            }
        }
        return v_time(floor_time(a0.i, ms, origin));
    }
    if (strcmp(n, "FLOOR") == 0 && e->op == 1) {
        int64_t ms;
        if (a0.kind != SL_SQLV_TIME || unit_ms(e->args[1]->v.s, &ms) != 0 || ms == 0) {
            return v_null();
        }
        return v_time(floor_time(a0.i, ms, default_origin(ms)));
    }
    if (strcmp(n, "FLOOR") == 0 || strcmp(n, "CEIL") == 0) {
        if (a0.kind == SL_SQLV_DOUBLE) {
            return v_double(n[0] == 'F' ? floor(a0.d) : ceil(a0.d));
        }
        return a0.kind == SL_SQLV_LONG ? a0 : v_null();
    }
    if (strcmp(n, "DATE_TRUNC") == 0) {
        sl_sql_value t = eval(c, e->args[1]);
        int64_t ms;
        char unit[32];
        if (a0.kind != SL_SQLV_STR || a0.n >= sizeof(unit) || t.kind != SL_SQLV_TIME) {
            return v_null();
        }
        memcpy(unit, a0.s, a0.n);
        unit[a0.n] = '\0';
        if (unit_ms(unit, &ms) != 0 || ms == 0) {
            return v_null();
        }
        return v_time(floor_time(t.i, ms, default_origin(ms)));
    }
    if (strcmp(n, "TIME_PARSE") == 0) {
        int64_t ms;
        return str_time(&a0, &ms) ? v_time(ms) : v_null();
    }
    return v_null();
}

static sl_sql_value eval(evalctx *c, const node *e)
{
    switch (e->k) {
    case N_LIT:
        return e->v;
    case N_SLOT:
        return c->row != NULL ? c->row[e->slot] : v_null();
    case N_COL:
    case N_STAR:
        return v_null(); /* bound away before evaluation */
    case N_FUNC:
        return eval_func(c, e);
    case N_CAST:
        return cast_value(c, eval(c, e->args[0]), e->cast);
    case N_NEG: {
        sl_sql_value x = eval(c, e->args[0]);
        if (x.kind == SL_SQLV_LONG && x.i != INT64_MIN) {
            return v_long(-x.i);
        }
        if (x.kind == SL_SQLV_DOUBLE) {
            return v_double(-x.d);
        }
        if (x.kind == SL_SQLV_INTERVAL) {
            return v_ivl(-x.i);
        }
        return v_null();
    }
    case N_NOT: {
        sl_sql_value x = eval(c, e->args[0]);
        return x.kind == SL_SQLV_NULL ? x : v_bool(!truthy(&x));
    }
    case N_ISNULL: {
        sl_sql_value x = eval(c, e->args[0]);
        return v_bool((x.kind == SL_SQLV_NULL) != e->neg);
    }
    case N_IN: {
        sl_sql_value x = eval(c, e->args[0]);
        bool null_seen = x.kind == SL_SQLV_NULL, found = false;
        for (int i = 1; i < e->nargs && !found; i++) {
            sl_sql_value y = eval(c, e->args[i]);
            if (y.kind == SL_SQLV_NULL) {
                null_seen = true;
            } else if (x.kind != SL_SQLV_NULL && cmp_values(&x, &y) == 0) {
                found = true;
            }
        }
        if (found) {
            return v_bool(!e->neg);
        }
        return null_seen ? v_null() : v_bool(e->neg);
    }
    case N_BETWEEN: {
        sl_sql_value x = eval(c, e->args[0]), lo = eval(c, e->args[1]), hi = eval(c, e->args[2]);
        if (x.kind == SL_SQLV_NULL || lo.kind == SL_SQLV_NULL || hi.kind == SL_SQLV_NULL) {
            return v_null();
        }
        bool in = cmp_values(&x, &lo) >= 0 && cmp_values(&x, &hi) <= 0;
        return v_bool(in != e->neg);
    }
    case N_LIKE: {
        sl_sql_value x = eval(c, e->args[0]), pat = eval(c, e->args[1]);
        char esc = '\0';
        if (e->nargs > 2) {
            sl_sql_value ev = eval(c, e->args[2]);
            if (ev.kind == SL_SQLV_STR && ev.n == 1) {
                esc = ev.s[0];
            }
        }
        if (x.kind == SL_SQLV_NULL || pat.kind == SL_SQLV_NULL) {
            return v_null();
        }
        return v_bool(like(&x, &pat, esc) != e->neg);
    }
    case N_BIN:
        break;
    }
    if (e->op == T_AND || e->op == T_OR) {
        sl_sql_value x = eval(c, e->args[0]);
        bool want = e->op == T_OR; /* the value that decides */
        if (x.kind != SL_SQLV_NULL && truthy(&x) == want) {
            return v_bool(want);
        }
        sl_sql_value y = eval(c, e->args[1]);
        if (y.kind != SL_SQLV_NULL && truthy(&y) == want) {
            return v_bool(want);
        }
        if (x.kind == SL_SQLV_NULL || y.kind == SL_SQLV_NULL) {
            return v_null();
        }
        return v_bool(!want);
    }
    sl_sql_value x = eval(c, e->args[0]), y = eval(c, e->args[1]);
    switch (e->op) {
    case T_EQ:
    case T_NE:
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE: {
        if (x.kind == SL_SQLV_NULL || y.kind == SL_SQLV_NULL) {
            return v_null();
        }
        int r = cmp_values(&x, &y);
        bool b = e->op == T_EQ   ? r == 0
                 : e->op == T_NE ? r != 0
                 : e->op == T_LT ? r < 0
                 : e->op == T_LE ? r <= 0
                 : e->op == T_GT ? r > 0
                                 : r >= 0;
        return v_bool(b);
    }
    case T_CONCAT: {
        if (x.kind == SL_SQLV_NULL || y.kind == SL_SQLV_NULL) {
            return v_null();
        }
        char bx[64], by[64];
        sl_sql_value sx = to_text(&x, bx, sizeof(bx)), sy = to_text(&y, by, sizeof(by));
        char *s = amalloc(c->a, sx.n + sy.n + 1);
        if (sx.n > 0) {
            memcpy(s, sx.s, sx.n);
        }
        if (sy.n > 0) {
            memcpy(s + sx.n, sy.s, sy.n);
        }
        return v_str(s, sx.n + sy.n);
    }
    default:
        return eval_arith(e->op, x, y);
    }
}

/* Static type of a bound expression. */
static sl_sql_type infer(plan *p, const node *e)
{
    switch (e->k) {
    case N_SLOT:
        return slot_at(p, e->slot)->type;
    case N_LIT:
        switch (e->v.kind) {
        case SL_SQLV_BOOL:
            return SL_SQL_BOOLEAN;
        case SL_SQLV_LONG:
        case SL_SQLV_INTERVAL:
            return SL_SQL_BIGINT;
        case SL_SQLV_DOUBLE:
            return SL_SQL_DOUBLE;
        case SL_SQLV_TIME:
            return SL_SQL_TIMESTAMP;
        default:
            return SL_SQL_VARCHAR;
        }
    case N_CAST:
        return e->cast;
    case N_NEG:
        return infer(p, e->args[0]);
    case N_FUNC:
        if (strcmp(e->name, "FLOOR") == 0 && e->op != 1) {
            return infer(p, e->args[0]);
        }
        return SL_SQL_TIMESTAMP;
    case N_BIN:
        switch (e->op) {
        case T_PLUS:
        case T_MINUS:
        case T_STAR:
        case T_SLASH:
        case T_PCT: {
            sl_sql_type a = infer(p, e->args[0]), b = infer(p, e->args[1]);
            if (a == SL_SQL_TIMESTAMP || b == SL_SQL_TIMESTAMP) {
                return SL_SQL_TIMESTAMP;
            }
            if (a == SL_SQL_BIGINT && b == SL_SQL_BIGINT) {
                return SL_SQL_BIGINT;
            }
            return SL_SQL_DOUBLE;
        }
        case T_CONCAT:
            return SL_SQL_VARCHAR;
        default:
            return SL_SQL_BOOLEAN;
        }
    default:
        return SL_SQL_BOOLEAN;
    }
}

/* A constant expression (no column, no aggregate) evaluated at plan time. */
static sl_sql_value const_value(plan *p, const node *e)
{
    evalctx c = {p, NULL, p->a};
    return eval(&c, e);
}

/* ---- WHERE: time conditions become intervals, the rest native filters ---------------------- */

static ivset iv_all(void)
{
    static ivl all = {TMIN_MS, TMAX_MS};
    ivset s = {1, &all};
    return s;
}

static ivset iv_none(void)
{
    ivset s = {0, NULL};
    return s;
}

static ivset iv_one(plan *p, int64_t s, int64_t e)
{
    if (s < TMIN_MS) {
        s = TMIN_MS;
    }
    if (e > TMAX_MS) {
        e = TMAX_MS;
    }
    if (s >= e) {
        return iv_none();
    }
    ivset r = {1, amalloc(p->a, sizeof(ivl))};
    r.v[0].s = s;
    r.v[0].e = e;
    return r;
}

static ivset iv_and(plan *p, ivset a, ivset b)
{
    ivset r = {0, amalloc(p->a, sizeof(ivl) * (size_t)(a.n + b.n + 1))};
    int i = 0, j = 0;
    while (i < a.n && j < b.n) {
        int64_t s = a.v[i].s > b.v[j].s ? a.v[i].s : b.v[j].s;
        int64_t e = a.v[i].e < b.v[j].e ? a.v[i].e : b.v[j].e;
        if (s < e) {
            r.v[r.n++] = (ivl){s, e};
        }
        if (a.v[i].e < b.v[j].e) {
            i++;
        } else {
            j++;
        }
    }
    return r;
}

static ivset iv_not(plan *p, ivset a)
{
    ivset r = {0, amalloc(p->a, sizeof(ivl) * (size_t)(a.n + 2))};
    int64_t at = TMIN_MS;
    for (int i = 0; i < a.n; i++) {
        if (a.v[i].s > at) {
            r.v[r.n++] = (ivl){at, a.v[i].s};
        }
        at = a.v[i].e;
    }
    if (at < TMAX_MS) {
        r.v[r.n++] = (ivl){at, TMAX_MS};
    }
    return r;
}

static ivset iv_or(plan *p, ivset a, ivset b)
{
    return iv_not(p, iv_and(p, iv_not(p, a), iv_not(p, b)));
}

/* The time of a constant compared with __time: a TIMESTAMP, or a string read as one. */
static int time_const(plan *p, const node *e, bool *is_null, int64_t *ms)
{
    sl_sql_value v = const_value(p, e);
    *is_null = v.kind == SL_SQLV_NULL;
    if (*is_null) {
        return 0;
    }
    if (v.kind == SL_SQLV_TIME) {
        *ms = v.i;
        return 0;
    }
    if (v.kind == SL_SQLV_STR && str_time(&v, ms)) {
        return 0;
    }
    return perr(p, SL_EINVAL, e,
                "Cannot compare __time with %s@@: use a TIMESTAMP such as TIMESTAMP "
                "'2025-06-11 12:00:00', TIME_PARSE('...') or CURRENT_TIMESTAMP - INTERVAL '1' HOUR",
                ntext(p, e));
}

static bool is_time_col(const node *e)
{
    return e->k == N_COL && e->rcol == COL_TIME;
}

/* The times where e is TRUE (want) or FALSE (!want); e uses only __time and constants. */
static int time_set(plan *p, const node *e, bool want, ivset *out)
{
    int rc;
    ivset a, b;
    if (p->iv.n > MAX_INTERVALS) {
        return perr(p, SL_EINVAL, e, "Too many time intervals in WHERE");
    }
    switch (e->k) {
    case N_NOT:
        return time_set(p, e->args[0], !want, out);
    case N_BIN:
        if (e->op == T_AND || e->op == T_OR) {
            if ((rc = time_set(p, e->args[0], want, &a)) != 0 ||
                (rc = time_set(p, e->args[1], want, &b)) != 0) {
                return rc;
            }
            bool conj = (e->op == T_AND) == want;
            *out = conj ? iv_and(p, a, b) : iv_or(p, a, b);
            return 0;
        }
        if (e->op >= T_EQ && e->op <= T_GE &&
            (is_time_col(e->args[0]) || is_time_col(e->args[1]))) {
            bool left = is_time_col(e->args[0]);
            const node *k = left ? e->args[1] : e->args[0];
            int op = e->op;
            if (!left) { /* 5 > __time is __time < 5 */
                op = op == T_LT   ? T_GT
                     : op == T_LE ? T_GE
                     : op == T_GT ? T_LT
                     : op == T_GE ? T_LE
                                  : op;
            }
            bool isnull;
            int64_t t;
            if ((rc = time_const(p, k, &isnull, &t)) != 0) {
                return rc;
            }
            if (isnull) {
                *out = iv_none();
                return 0;
            }
            ivset s;
            switch (op) {
            case T_EQ:
                s = iv_one(p, t, t + 1);
                break;
            case T_NE:
                s = iv_not(p, iv_one(p, t, t + 1));
                break;
            case T_LT:
                s = iv_one(p, TMIN_MS, t);
                break;
            case T_LE:
                s = iv_one(p, TMIN_MS, t + 1);
                break;
            case T_GT:
                s = iv_one(p, t + 1, TMAX_MS);
                break;
            default:
                s = iv_one(p, t, TMAX_MS);
                break;
            }
            *out = want ? s : iv_not(p, s);
            return 0;
        }
        break;
    case N_BETWEEN:
        if (is_time_col(e->args[0])) {
            bool n1, n2;
            int64_t lo = 0, hi = 0;
            if ((rc = time_const(p, e->args[1], &n1, &lo)) != 0 ||
                (rc = time_const(p, e->args[2], &n2, &hi)) != 0) {
                return rc;
            }
            if (n1 || n2) {
                *out = iv_none();
                return 0;
            }
            ivset s = iv_one(p, lo, hi + 1);
            *out = want != e->neg ? s : iv_not(p, s);
            return 0;
        }
        break;
    case N_IN:
        if (is_time_col(e->args[0])) {
            ivset s = iv_none();
            bool any_null = false;
            for (int i = 1; i < e->nargs; i++) {
                bool isnull;
                int64_t t;
                if ((rc = time_const(p, e->args[i], &isnull, &t)) != 0) {
                    return rc;
                }
                any_null = any_null || isnull;
                if (!isnull) {
                    s = iv_or(p, s, iv_one(p, t, t + 1));
                }
            }
            if (want != e->neg) {
                *out = s;
            } else {
                *out = any_null ? iv_none() : iv_not(p, s);
            }
            return 0;
        }
        break;
    case N_ISNULL:
        if (is_time_col(e->args[0])) {
            *out = (want != e->neg) ? iv_none() : iv_all(); /* __time is never null */
            return 0;
        }
        break;
    case N_LIT: {
        bool t = e->v.kind != SL_SQLV_NULL && truthy(&e->v);
        bool f = e->v.kind != SL_SQLV_NULL && !truthy(&e->v);
        *out = (want ? t : f) ? iv_all() : iv_none();
        return 0;
    }
    default:
        break;
    }
    if ((col_use(e) & 1) == 0) {
        sl_sql_value v = const_value(p, e);
        bool t = v.kind != SL_SQLV_NULL && truthy(&v);
        bool f = v.kind != SL_SQLV_NULL && !truthy(&v);
        *out = (want ? t : f) ? iv_all() : iv_none();
        return 0;
    }
    return perr(p, SL_EINVAL, e,
                "Unsupported condition on __time@@: %s; compare __time itself with a TIMESTAMP "
                "(=, <>, <, <=, >, >=, BETWEEN, IN)",
                ntext(p, e));
}

/* ---- native filters ------------------------------------------------------------------------ */

static void gs(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gsn(yajl_gen g, const char *s, size_t n)
{
    yajl_gen_string(g, (const unsigned char *)(s != NULL ? s : ""), n);
}

static void gkv(yajl_gen g, const char *k, const char *v)
{
    gs(g, k);
    gs(g, v);
}

static void gen_const_filter(yajl_gen g, bool b)
{
    yajl_gen_map_open(g);
    gkv(g, "type", b ? "true" : "false");
    yajl_gen_map_close(g);
}

static void gen_null_filter(yajl_gen g, const char *dim, bool negate)
{
    yajl_gen_map_open(g);
    if (negate) {
        gkv(g, "type", "not");
        gs(g, "field");
        yajl_gen_map_open(g);
    }
    gkv(g, "type", "null");
    gkv(g, "column", dim);
    if (negate) {
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
}

/* Opens and(not(<T>), not(null)): the FALSE side of a predicate on a nullable column is
 * "not true, and not null" (SQL's three-valued logic). close_false closes it. */
static void open_false(yajl_gen g)
{
    yajl_gen_map_open(g);
    gkv(g, "type", "and");
    gs(g, "fields");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    gkv(g, "type", "not");
    gs(g, "field");
}

static void close_false(yajl_gen g, const char *dim)
{
    yajl_gen_map_close(g);
    gen_null_filter(g, dim, true);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

static const char *dim_of(plan *p, const node *e)
{
    return e->k == N_COL && e->rcol >= 0 && e->rcol < COL_COUNT ? p->spec->dims[e->rcol] : NULL;
}

/* The operand compared with a dimension must be a constant: its text. */
static int dim_operand(plan *p, const node *e, sl_sql_value *out, char *buf, size_t size)
{
    if (col_use(e) != 0) {
        return perr(p, SL_EINVAL, e,
                    "Unsupported condition in WHERE@@: a dimension can only be compared with a "
                    "constant, not with %s",
                    ntext(p, e));
    }
    sl_sql_value v = const_value(p, e);
    bool numeric = is_num(&v) && v.kind != SL_SQLV_BOOL;
    *out = to_text(&v, buf, size);
    out->i = numeric; /* remembered for bound ordering */
    return 0;
}

static int bad_filter_column(plan *p, const node *e)
{
    int use = col_use(e);
    if (use & 4) {
        return perr(p, SL_EINVAL, e, "Aggregate in WHERE@@: %s; filter aggregates with HAVING",
                    ntext(p, e));
    }
    /* find the offending column */
    if (e->k == N_COL) {
        if (e->rcol == COL_RAW) {
            return rollup_error(p, e, e->name);
        }
        if (e->rcol == COL_TIME) {
            return perr(p, SL_EINVAL, e,
                        "A condition on __time@@ must be ANDed with the rest of WHERE (it "
                        "becomes the query's time intervals); it cannot sit under OR with other "
                        "columns");
        }
        if (e->rcol >= COL_COUNT) {
            return perr(p, SL_EINVAL, e,
                        "WHERE can only filter dimensions and __time; '%s'@@ is a metric (filter "
                        "its aggregate with HAVING)",
                        e->name);
        }
    }
    for (int i = 0; i < e->nargs; i++) {
        if (e->args[i]->k == N_COL && dim_of(p, e->args[i]) == NULL) {
            return bad_filter_column(p, e->args[i]);
        }
    }
    return perr(p, SL_EINVAL, e,
                "Unsupported condition in WHERE@@: %s; use =, <>, <, <=, >, >=, IN, LIKE, BETWEEN, "
                "IS [NOT] NULL on dimensions, combined with AND, OR, NOT",
                ntext(p, e));
}

static int gen_filter(plan *p, yajl_gen g, const node *e, bool want);

static int gen_bound(plan *p, yajl_gen g, const char *dim, const sl_sql_value *lo, bool lo_strict,
                     const sl_sql_value *hi, bool hi_strict)
{
    bool numeric = (lo != NULL && lo->i) || (hi != NULL && hi->i);
    yajl_gen_map_open(g);
    gkv(g, "type", "bound");
    gkv(g, "dimension", dim);
    if (lo != NULL) {
        gs(g, "lower");
        gsn(g, lo->s, lo->n);
        gs(g, "lowerStrict");
        yajl_gen_bool(g, lo_strict);
    }
    if (hi != NULL) {
        gs(g, "upper");
        gsn(g, hi->s, hi->n);
        gs(g, "upperStrict");
        yajl_gen_bool(g, hi_strict);
    }
    gkv(g, "ordering", numeric ? "numeric" : "lexicographic");
    yajl_gen_map_close(g);
    (void)p;
    return 0;
}

static int gen_filter(plan *p, yajl_gen g, const node *e, bool want)
{
    int rc;
    char b1[64], b2[64];
    sl_sql_value v1, v2;
    if ((col_use(e) & 3) == 0) {
        if (col_use(e) & 4) {
            return bad_filter_column(p, e);
        }
        sl_sql_value v = const_value(p, e);
        bool t = v.kind != SL_SQLV_NULL && truthy(&v);
        bool f = v.kind != SL_SQLV_NULL && !truthy(&v);
        gen_const_filter(g, want ? t : f);
        return 0;
    }
    switch (e->k) {
    case N_NOT:
        return gen_filter(p, g, e->args[0], !want);
    case N_BIN:
        if (e->op == T_AND || e->op == T_OR) {
            bool conj = (e->op == T_AND) == want;
            yajl_gen_map_open(g);
            gkv(g, "type", conj ? "and" : "or");
            gs(g, "fields");
            yajl_gen_array_open(g);
            if ((rc = gen_filter(p, g, e->args[0], want)) != 0 ||
                (rc = gen_filter(p, g, e->args[1], want)) != 0) {
                return rc;
            }
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
            return 0;
        }
        if (e->op >= T_EQ && e->op <= T_GE) {
            bool left = dim_of(p, e->args[0]) != NULL;
            const node *col = left ? e->args[0] : e->args[1], *k = left ? e->args[1] : e->args[0];
            const char *dim = dim_of(p, col);
            if (dim == NULL) {
                return bad_filter_column(p, col->k == N_COL ? col : e);
            }
            int op = e->op;
            if (!left) {
                op = op == T_LT   ? T_GT
                     : op == T_LE ? T_GE
                     : op == T_GT ? T_LT
                     : op == T_GE ? T_LE
                                  : op;
            }
            if ((rc = dim_operand(p, k, &v1, b1, sizeof(b1))) != 0) {
                return rc;
            }
            if (v1.kind == SL_SQLV_NULL) {
                gen_const_filter(g, false);
                return 0;
            }
            /* <> is "not =": flip what we want and emit = */
            bool w = want;
            if (op == T_NE) {
                op = T_EQ;
                w = !want;
            }
            if (!w) {
                open_false(g);
            }
            if (op == T_EQ) {
                yajl_gen_map_open(g);
                gkv(g, "type", "selector");
                gkv(g, "dimension", dim);
                gs(g, "value");
                gsn(g, v1.s, v1.n);
                yajl_gen_map_close(g);
            } else if (op == T_LT || op == T_LE) {
                gen_bound(p, g, dim, NULL, false, &v1, op == T_LT);
            } else {
                gen_bound(p, g, dim, &v1, op == T_GT, NULL, false);
            }
            if (!w) {
                close_false(g, dim);
            }
            return 0;
        }
        break;
    case N_ISNULL: {
        const char *dim = dim_of(p, e->args[0]);
        if (dim == NULL) {
            if (e->args[0]->k == N_COL && e->args[0]->rcol >= COL_COUNT) {
                gen_const_filter(g, (want != e->neg) ? false : true); /* metrics are never null */
                return 0;
            }
            return bad_filter_column(p, e->args[0]->k == N_COL ? e->args[0] : e);
        }
        gen_null_filter(g, dim, want == e->neg);
        return 0;
    }
    case N_IN: {
        const char *dim = dim_of(p, e->args[0]);
        if (dim == NULL) {
            return bad_filter_column(p, e->args[0]->k == N_COL ? e->args[0] : e);
        }
        bool any_null = false;
        yajl_gen_map_open(g);
        bool w = want != e->neg;
        if (!w) {
            /* NOT IN with a NULL in the list is never true */
            for (int i = 1; i < e->nargs; i++) {
                if ((rc = dim_operand(p, e->args[i], &v1, b1, sizeof(b1))) != 0) {
                    return rc;
                }
                any_null = any_null || v1.kind == SL_SQLV_NULL;
            }
            if (any_null) {
                gkv(g, "type", "false");
                yajl_gen_map_close(g);
                return 0;
            }
            gkv(g, "type", "and");
            gs(g, "fields");
            yajl_gen_array_open(g);
            yajl_gen_map_open(g);
            gkv(g, "type", "not");
            gs(g, "field");
            yajl_gen_map_open(g);
        }
        gkv(g, "type", "in");
        gkv(g, "dimension", dim);
        gs(g, "values");
        yajl_gen_array_open(g);
        for (int i = 1; i < e->nargs; i++) {
            if ((rc = dim_operand(p, e->args[i], &v1, b1, sizeof(b1))) != 0) {
                return rc;
            }
            if (v1.kind != SL_SQLV_NULL) {
                gsn(g, v1.s, v1.n);
            }
        }
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        if (!w) {
            yajl_gen_map_close(g);
            gen_null_filter(g, dim, true);
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
        }
        return 0;
    }
    case N_BETWEEN: {
        const char *dim = dim_of(p, e->args[0]);
        if (dim == NULL) {
            return bad_filter_column(p, e->args[0]->k == N_COL ? e->args[0] : e);
        }
        if ((rc = dim_operand(p, e->args[1], &v1, b1, sizeof(b1))) != 0 ||
            (rc = dim_operand(p, e->args[2], &v2, b2, sizeof(b2))) != 0) {
            return rc;
        }
        if (v1.kind == SL_SQLV_NULL || v2.kind == SL_SQLV_NULL) {
            gen_const_filter(g, false);
            return 0;
        }
        bool w = want != e->neg;
        if (!w) {
            open_false(g);
        }
        gen_bound(p, g, dim, &v1, false, &v2, false);
        if (!w) {
            close_false(g, dim);
        }
        return 0;
    }
    case N_LIKE: {
        const char *dim = dim_of(p, e->args[0]);
        if (dim == NULL) {
            return bad_filter_column(p, e->args[0]->k == N_COL ? e->args[0] : e);
        }
        if ((rc = dim_operand(p, e->args[1], &v1, b1, sizeof(b1))) != 0) {
            return rc;
        }
        char esc[2] = "";
        if (e->nargs > 2) {
            if ((rc = dim_operand(p, e->args[2], &v2, b2, sizeof(b2))) != 0) {
                return rc;
            }
            if (v2.kind != SL_SQLV_STR || v2.n != 1) {
                return perr(p, SL_EINVAL, e->args[2], "LIKE ... ESCAPE@@ needs a single character");
            }
            esc[0] = v2.s[0];
        }
        if (v1.kind == SL_SQLV_NULL) {
            gen_const_filter(g, false);
            return 0;
        }
        bool w = want != e->neg;
        if (!w) {
            open_false(g);
        }
        yajl_gen_map_open(g);
        gkv(g, "type", "like");
        gkv(g, "dimension", dim);
        gs(g, "pattern");
        gsn(g, v1.s, v1.n);
        if (esc[0] != '\0') {
            gkv(g, "escape", esc);
        }
        yajl_gen_map_close(g);
        if (!w) {
            close_false(g, dim);
        }
        return 0;
    }
    case N_COL:
        if (dim_of(p, e) != NULL) {
            return perr(p, SL_EINVAL, e,
                        "WHERE %s@@ is not a condition; compare the dimension with a value",
                        e->name);
        }
        return bad_filter_column(p, e);
    default:
        break;
    }
    return bad_filter_column(p, e);
}

/* Splits WHERE into conjuncts: time-only ones narrow the intervals, constant ones are
 * decided now, the others become the native filter. */
static int plan_where(plan *p, node *e)
{
    int rc;
    if (e == NULL) {
        return 0;
    }
    if (e->k == N_BIN && e->op == T_AND) {
        if ((rc = plan_where(p, e->args[0])) != 0) {
            return rc;
        }
        return plan_where(p, e->args[1]);
    }
    int use = col_use(e);
    if (use & 4) {
        return perr(p, SL_EINVAL, e, "Aggregate in WHERE@@: %s; filter aggregates with HAVING",
                    ntext(p, e));
    }
    if (use == 1 || use == 0) {
        ivset s;
        if ((rc = time_set(p, e, true, &s)) != 0) {
            return rc;
        }
        p->iv = iv_and(p, p->iv, s);
        p->time_cond = true;
        return 0;
    }
    vpush(p->a, &p->filters, e);
    return 0;
}

/* ---- aggregates ----------------------------------------------------------------------------- */

static int add_agg(plan *p, agg_kind kind, const char *field, bool is_long, double q,
                   const char *what)
{
    char key[300];
    snprintf(key, sizeof(key), "%d:%s:%d:%.17g", (int)kind, field != NULL ? field : "", is_long, q);
    for (int i = 0; i < p->aggs.n; i++) {
        aggdef *a = p->aggs.p[i];
        if (strcmp(a->key, key) == 0) {
            return a->slot;
        }
    }
    aggdef *a = amalloc(p->a, sizeof(aggdef));
    a->key = astrdup(p->a, key);
    a->kind = kind;
    a->field = field;
    a->is_long = is_long;
    a->q = q;
    a->what = what;
    int idx = p->aggs.n;
    const char *name = aprintf(p->a, "a%d", idx);
    sl_sql_type t = SL_SQL_BIGINT;
    merge_op m = M_SUM;
    slot_src src = SRC_COL;
    switch (kind) {
    case AG_COUNT:
    case AG_COUNT_DIM:
        break;
    case AG_SUM:
        t = is_long ? SL_SQL_BIGINT : SL_SQL_DOUBLE;
        break;
    case AG_MIN:
        t = is_long ? SL_SQL_BIGINT : SL_SQL_DOUBLE;
        m = M_MIN;
        break;
    case AG_MAX:
        t = is_long ? SL_SQL_BIGINT : SL_SQL_DOUBLE;
        m = M_MAX;
        break;
    case AG_CARD:
    case AG_HLL:
        m = M_NONE;
        break;
    case AG_QUANT:
        t = SL_SQL_DOUBLE;
        m = M_NONE;
        break;
    case AG_MINTIME:
        t = SL_SQL_TIMESTAMP;
        m = M_MIN;
        src = SRC_MINTIME;
        break;
    case AG_MAXTIME:
        t = SL_SQL_TIMESTAMP;
        m = M_MAX;
        src = SRC_MAXTIME;
        break;
    }
    a->slot = add_slot(p, src, name, t, m);
    vpush(p->a, &p->aggs, a);
    return a->slot;
}

/* The value column aggregated by SUM / MIN / MAX / AVG of column c. */
static int agg_source(plan *p, const node *call, const node *c, sl_metric_kind want,
                      const char **field, bool *is_long)
{
    const sl_spec *s = p->spec;
    if (c->k != N_COL) {
        return perr(p, SL_EINVAL, call,
                    "%s@@ of an expression is not supported; aggregate a column", call->name);
    }
    if (c->rcol == COL_COUNT) {
        *field = s->count_name;
        *is_long = true;
        return 0;
    }
    if (c->rcol > COL_COUNT) {
        const sl_metric_spec *m = &s->metrics[c->rcol - COL_COUNT - 1];
        if (!is_basic_metric(m->kind)) {
            return perr(p, SL_EINVAL, call, "%s(%s)@@ is not supported: %s holds %s; use %s(%s)",
                        call->name, c->name, c->name, sketch_kind_name(m->kind),
                        m->kind == SL_METRIC_DISTINCT ? "APPROX_COUNT_DISTINCT" : "APPROX_QUANTILE",
                        m->kind == SL_METRIC_DISTINCT ? c->name : "x, 0.5");
        }
        *field = m->name;
        *is_long = false;
        return 0;
    }
    if (c->rcol == COL_RAW) {
        int m = metric_of(s, want, c->name);
        if (m >= 0) {
            *field = s->metrics[m].name;
            *is_long = false;
            return 0;
        }
        char mets[300] = "";
        for (int i = 0; i < s->nmetrics; i++) {
            if (s->metrics[i].field != NULL && strcmp(s->metrics[i].field, c->name) == 0) {
                list_join(mets, sizeof(mets), s->metrics[i].name);
            }
        }
        static const char *const kinds[] = {"count", "sum", "min", "max"};
        return perr(p, SL_EINVAL, call,
                    "%s(%s)@@ needs a %s metric of %s, which rollup did not keep: %s keeps %s%s",
                    call->name, c->name, kinds[want], c->name, s->name,
                    mets[0] ? mets : "no metric of it",
                    mets[0] ? "" : " (a raw field that is not a dimension is gone after rollup)");
    }
    if (c->rcol == COL_TIME) {
        return perr(p, SL_EINVAL, call, "%s(__time)@@ is not supported", call->name);
    }
    return perr(p, SL_EINVAL, call,
                "%s(%s)@@: %s is a VARCHAR dimension; %s needs a numeric column (%s or a metric)",
                call->name, c->name, c->name, call->name, s->count_name);
}

static int agg_call(plan *p, node *e, node **out)
{
    const sl_spec *s = p->spec;
    const char *n = e->name;
    const char *what = ntext(p, e);
    node *a0 = e->nargs > 0 ? e->args[0] : NULL;
    for (int i = 0; i < e->nargs; i++) {
        if (has_agg(e->args[i])) {
            return perr(p, SL_EINVAL, e, "Aggregates cannot be nested@@: %s", what);
        }
    }
    bool distinct = e->distinct || strncmp(n, "APPROX_COUNT_DISTINCT", 21) == 0;
    if (strcmp(n, "COUNT") == 0 && !distinct) {
        if (e->nargs != 1) {
            return perr(p, SL_EINVAL, e, "COUNT@@ takes one argument or *");
        }
        if (a0->k == N_STAR ||
            (a0->k == N_COL && (a0->rcol == COL_TIME || a0->rcol >= COL_COUNT)) ||
            (a0->k == N_LIT && a0->v.kind != SL_SQLV_NULL)) {
            *out = mk_slot(p, e, add_agg(p, AG_COUNT, NULL, true, 0, what));
            return 0;
        }
        if (a0->k == N_COL && a0->rcol >= 0 && a0->rcol < COL_COUNT) {
            *out = mk_slot(p, e, add_agg(p, AG_COUNT_DIM, s->dims[a0->rcol], true, 0, what));
            return 0;
        }
        if (a0->k == N_COL && a0->rcol == COL_RAW) {
            return rollup_error(p, a0, a0->name);
        }
        return perr(p, SL_EINVAL, e, "COUNT@@ of an expression is not supported: %s", what);
    }
    if (strcmp(n, "COUNT") == 0 || strncmp(n, "APPROX_COUNT_DISTINCT", 21) == 0) {
        if (e->nargs != 1 || a0->k == N_STAR) {
            return perr(p, SL_EINVAL, e, "%s@@ takes one column", what);
        }
        if (a0->k != N_COL) {
            return perr(p, SL_EINVAL, e, "%s@@: distinct counts of expressions are not supported",
                        what);
        }
        if (a0->rcol >= 0 && a0->rcol < COL_COUNT) {
            *out = mk_slot(p, e, add_agg(p, AG_CARD, s->dims[a0->rcol], true, 0, what));
            return 0;
        }
        if (a0->rcol == COL_RAW) {
            int m = sketch_metric(s, a0->name, SL_METRIC_DISTINCT);
            if (m < 0) {
                return rollup_error(p, a0, a0->name);
            }
            *out = mk_slot(p, e, add_agg(p, AG_HLL, s->metrics[m].name, true, 0, what));
            return 0;
        }
        if (a0->rcol > COL_COUNT &&
            s->metrics[a0->rcol - COL_COUNT - 1].kind == SL_METRIC_DISTINCT) {
            *out = mk_slot(p, e, add_agg(p, AG_HLL, a0->name, true, 0, what));
            return 0;
        }
        if (a0->rcol > COL_COUNT &&
            s->metrics[a0->rcol - COL_COUNT - 1].kind == SL_METRIC_QUANTILES) {
            return perr(p, SL_EINVAL, e,
                        "%s@@ is not supported: %s is a quantiles sketch; distinct counts need a "
                        "dimension or a distinct-count metric",
                        what, a0->name);
        }
        return perr(p, SL_EINVAL, e,
                    "%s@@ is not supported: %s is %s; distinct counts need a dimension or a field "
                    "with a distinct-count sketch",
                    what, a0->name,
                    a0->rcol == COL_TIME ? "the time column" : "a rolled-up metric");
    }
    if (e->distinct) {
        return perr(p, SL_EINVAL, e, "%s(DISTINCT ...)@@ is not supported", n);
    }
    if (strcmp(n, "SUM") == 0 || strcmp(n, "MIN") == 0 || strcmp(n, "MAX") == 0 ||
        strcmp(n, "AVG") == 0) {
        if (e->nargs != 1 || a0->k == N_STAR) {
            return perr(p, SL_EINVAL, e, "%s@@ takes one column", n);
        }
        if ((n[1] == 'I' || n[1] == 'A') && a0->k == N_COL && a0->rcol == COL_TIME) {
            *out = mk_slot(p, e,
                           add_agg(p, n[1] == 'I' ? AG_MINTIME : AG_MAXTIME, NULL, true, 0, what));
            return 0;
        }
        sl_metric_kind want = n[0] == 'S' || n[0] == 'A' ? SL_METRIC_SUM
                              : n[1] == 'I'              ? SL_METRIC_MIN
                                                         : SL_METRIC_MAX;
        const char *field = NULL;
        bool is_long = false;
        int rc = agg_source(p, e, a0, want, &field, &is_long);
        if (rc != 0) {
            return rc;
        }
        agg_kind k = want == SL_METRIC_SUM ? AG_SUM : want == SL_METRIC_MIN ? AG_MIN : AG_MAX;
        int slot = add_agg(p, k, field, is_long, 0, what);
        if (n[0] != 'A') {
            *out = mk_slot(p, e, slot);
            return 0;
        }
        /* AVG = SUM / COUNT(*) of the events (null when there are none) */
        int cnt = add_agg(p, AG_COUNT, NULL, true, 0, "COUNT(*)");
        node *div = mk_node(p, N_BIN, e, 2);
        div->op = T_SLASH;
        div->args[0] = mk_slot(p, e, slot);
        div->args[1] = mk_slot(p, e, cnt);
        *out = div;
        return 0;
    }
    if (strncmp(n, "APPROX_QUANTILE", 15) == 0) {
        if (e->nargs != 2 || a0->k != N_COL) {
            return perr(p, SL_EINVAL, e, "%s@@ takes a column and a fraction: %s(x, 0.95)", n, n);
        }
        sl_sql_value q = col_use(e->args[1]) == 0 ? const_value(p, e->args[1]) : v_null();
        if (!is_num(&q) || num(&q) < 0 || num(&q) > 1) {
            return perr(p, SL_EINVAL, e->args[1],
                        "%s@@: the fraction must be a number between 0 and 1", what);
        }
        const char *f;
        char qs[300] = "";
        for (int i = 0; i < s->nmetrics; i++) {
            if (s->metrics[i].kind == SL_METRIC_QUANTILES) {
                list_join(qs, sizeof(qs), s->metrics[i].field);
                list_join(qs, sizeof(qs), s->metrics[i].name);
            }
        }
        if (a0->rcol == COL_RAW) {
            int m = sketch_metric(s, a0->name, SL_METRIC_QUANTILES);
            if (m < 0) {
                return perr(p, SL_EINVAL, a0,
                            "%s@@ needs a quantiles sketch of %s, which %s does not keep "
                            "(quantiles are kept for: %s)",
                            what, a0->name, s->name, qs[0] ? qs : "no field");
            }
            f = s->metrics[m].name;
        } else if (a0->rcol > COL_COUNT &&
                   s->metrics[a0->rcol - COL_COUNT - 1].kind == SL_METRIC_QUANTILES) {
            f = s->metrics[a0->rcol - COL_COUNT - 1].name;
        } else if (a0->rcol >= COL_COUNT) {
            return perr(p, SL_EINVAL, a0,
                        "%s@@ needs a quantiles sketch: %s is %s, from which quantiles cannot be "
                        "recovered after rollup (quantiles are kept for: %s)",
                        what, a0->name,
                        a0->rcol == COL_COUNT ? "the event count"
                        : s->metrics[a0->rcol - COL_COUNT - 1].kind == SL_METRIC_DISTINCT
                            ? "a distinct-count sketch"
                            : "a rolled-up sum, min or max",
                        qs[0] ? qs : "no field");
        } else {
            return perr(p, SL_EINVAL, e, "%s@@: %s is not a numeric field", what, a0->name);
        }
        *out = mk_slot(p, e, add_agg(p, AG_QUANT, f, false, num(&q), what));
        return 0;
    }
    return perr(p, SL_EINVAL, e, "Aggregate %s@@ is not supported", n);
}

/* ---- binding expressions to slots -------------------------------------------------------------
 */

static const char *const scalar_funcs[] = {"TIME_FLOOR", "FLOOR",      "CEIL",
                                           "DATE_TRUNC", "TIME_PARSE", NULL};

static bool is_window_fn(const char *n)
{
    return strcmp(n, "TUMBLE") == 0 || strcmp(n, "HOP") == 0 || strcmp(n, "TUMBLE_START") == 0 ||
           strcmp(n, "TUMBLE_END") == 0 || strcmp(n, "HOP_START") == 0 || strcmp(n, "HOP_END") == 0;
}

static int check_scalar(plan *p, node *e)
{
    for (int i = 0; scalar_funcs[i] != NULL; i++) {
        if (strcmp(e->name, scalar_funcs[i]) == 0) {
            int want = strcmp(e->name, "TIME_FLOOR") == 0            ? 2
                       : strcmp(e->name, "DATE_TRUNC") == 0          ? 2
                       : strcmp(e->name, "FLOOR") == 0 && e->op == 1 ? 2
                                                                     : 1;
            int max = strcmp(e->name, "TIME_FLOOR") == 0   ? 4
                      : strcmp(e->name, "TIME_PARSE") == 0 ? 3
                                                           : want;
            if (e->nargs < want || e->nargs > max) {
                return perr(p, SL_EINVAL, e, "%s@@ takes %d argument%s, got %d", e->name, want,
                            want == 1 ? "" : "s", e->nargs);
            }
            return 0;
        }
    }
    if (is_window_fn(e->name)) {
        return perr(p, SL_EINVAL, e, "%s@@ needs a matching GROUP BY %s(...) window", e->name,
                    strncmp(e->name, "HOP", 3) == 0 ? "HOP" : "TUMBLE");
    }
    return perr(p, SL_EINVAL, e,
                "Function %s@@ is not supported; supported: TUMBLE, TUMBLE_START, TUMBLE_END, HOP, "
                "HOP_START, HOP_END, TIME_FLOOR, FLOOR(... TO unit), DATE_TRUNC, TIME_PARSE, CAST, "
                "COUNT, SUM, MIN, MAX, AVG, APPROX_COUNT_DISTINCT, APPROX_QUANTILE",
                e->name);
}

static node *copy_shallow(plan *p, const node *e)
{
    node *n = amalloc(p->a, sizeof(node));
    *n = *e;
    if (e->nargs > 0) {
        n->args = amalloc(p->a, sizeof(node *) * (size_t)e->nargs);
    }
    return n;
}

/* Window auxiliaries: TUMBLE_START(t, size) etc. must name the GROUP BY window. */
static int window_aux(plan *p, node *e, node **out)
{
    bool hop = strncmp(e->name, "HOP", 3) == 0;
    bool end = strstr(e->name, "_END") != NULL;
    const node *k = p->tk.expr;
    bool ok = k != NULL && p->tk.kind == (hop ? TK_HOP : TK_TUMBLE) && k->nargs == e->nargs;
    for (int i = 0; ok && i < e->nargs; i++) {
        ok = same(k->args[i], e->args[i]);
    }
    if (!ok) {
        return perr(p, SL_EINVAL, e,
                    "%s@@ does not match a GROUP BY %s(...) with the same arguments", e->name,
                    hop ? "HOP" : "TUMBLE");
    }
    node *s = mk_slot(p, e, p->tslot);
    if (!end) {
        *out = s;
        return 0;
    }
    node *plus = mk_node(p, N_BIN, e, 2);
    plus->op = T_PLUS;
    plus->args[0] = s;
    plus->args[1] = mk_node(p, N_LIT, e, 0);
    plus->args[1]->v = v_ivl(p->tk.size_ms);
    *out = plus;
    return 0;
}

/* Rewrites e over the planner's slots: grouping keys and aggregates become slot
 * references, columns outside them are an error (aggregate mode); in row mode columns
 * map to their slots directly. */
static int bind(plan *p, node *e, node **out)
{
    int rc;
    if (p->aggmode) {
        if (p->tk.kind != TK_NONE && same(e, p->tk.expr)) {
            *out = mk_slot(p, e, p->tslot);
            return 0;
        }
        for (int i = 0; i < p->ndk; i++) {
            if (same(e, p->dk_expr[i])) {
                *out = mk_slot(p, e, p->dk_slot[i]);
                return 0;
            }
        }
    }
    switch (e->k) {
    case N_LIT:
        *out = e;
        return 0;
    case N_STAR:
        return perr(p, SL_EINVAL, e, "* is only allowed in COUNT(*)@@");
    case N_COL:
        if (e->rcol == COL_RAW) {
            return rollup_error(p, e, e->name);
        }
        if (p->aggmode) {
            return perr(p, SL_EINVAL, e,
                        "Expression '%s'@@ is not being grouped; add it to GROUP BY or use it "
                        "inside an aggregate",
                        e->name);
        }
        if (p->table != TBL_DS) {
            *out = mk_slot(p, e, e->rcol);
            return 0;
        }
        *out = mk_slot(p, e, rcol_index(p->spec, e->rcol));
        return 0;
    case N_FUNC:
        if (is_agg_name(e->name)) {
            if (!p->aggmode || p->table != TBL_DS) {
                return perr(p, SL_EINVAL, e, "Aggregate %s@@ is not allowed here", e->name);
            }
            return agg_call(p, e, out);
        }
        if (strcmp(e->name, "TUMBLE_START") == 0 || strcmp(e->name, "TUMBLE_END") == 0 ||
            strcmp(e->name, "HOP_START") == 0 || strcmp(e->name, "HOP_END") == 0) {
            return window_aux(p, e, out);
        }
        if ((rc = check_scalar(p, e)) != 0) {
            return rc;
        }
        break;
    default:
        break;
    }
    node *n = copy_shallow(p, e);
    for (int i = 0; i < e->nargs; i++) {
        if ((rc = bind(p, e->args[i], &n->args[i])) != 0) {
            return rc;
        }
    }
    *out = n;
    return 0;
}

/* ---- GROUP BY keys ------------------------------------------------------------------------- */

static int need_time_arg(plan *p, node *e, int i)
{
    if (e->nargs <= i || !is_time_col(e->args[i])) {
        const node *at = e->nargs > i ? e->args[i] : e;
        return perr(p, SL_EINVAL, at, "%s@@ needs the time column (__time or %s) as argument %d",
                    e->name, p->spec->time_column != NULL ? p->spec->time_column : "__time", i + 1);
    }
    return 0;
}

static int interval_arg(plan *p, node *e, int i, int64_t *ms)
{
    if (e->nargs <= i || col_use(e->args[i]) != 0) {
        return perr(p, SL_EINVAL, e, "%s@@ needs an INTERVAL as argument %d", e->name, i + 1);
    }
    sl_sql_value v = const_value(p, e->args[i]);
    if (v.kind != SL_SQLV_INTERVAL || v.i <= 0) {
        return perr(p, SL_EINVAL, e->args[i],
                    "%s@@: argument %d must be a positive INTERVAL such as INTERVAL '1' MINUTE",
                    e->name, i + 1);
    }
    *ms = v.i;
    return 0;
}

static void period_text(int64_t ms, char *buf, size_t size)
{
    if (ms % (7 * 86400000LL) == 0) {
        snprintf(buf, size, "P%lldW", (long long)(ms / (7 * 86400000LL)));
    } else if (ms % 86400000 == 0) {
        snprintf(buf, size, "P%lldD", (long long)(ms / 86400000));
    } else if (ms % 3600000 == 0) {
        snprintf(buf, size, "PT%lldH", (long long)(ms / 3600000));
    } else if (ms % 60000 == 0) {
        snprintf(buf, size, "PT%lldM", (long long)(ms / 60000));
    } else if (ms % 1000 == 0) {
        snprintf(buf, size, "PT%lldS", (long long)(ms / 1000));
    } else {
        snprintf(buf, size, "PT%lld.%03lldS", (long long)(ms / 1000), (long long)(ms % 1000));
    }
}

/* Is e a time-bucket key? 1 yes (p->tk filled), 0 no, or an error. */
static int time_key(plan *p, node *e)
{
    tkey k;
    memset(&k, 0, sizeof(k));
    k.expr = e;
    int rc;
    if (is_time_col(e)) {
        k.kind = TK_FLOOR;
        k.size_ms = p->spec->query_ms;
        period_text(k.size_ms, k.period, sizeof(k.period));
    } else if (e->k == N_FUNC && strcmp(e->name, "TUMBLE") == 0) {
        if (e->nargs != 2) {
            return perr(p, SL_EINVAL, e, "TUMBLE@@ takes (time column, INTERVAL)");
        }
        if ((rc = need_time_arg(p, e, 0)) != 0 || (rc = interval_arg(p, e, 1, &k.size_ms)) != 0) {
            return rc;
        }
        k.kind = TK_TUMBLE;
    } else if (e->k == N_FUNC && strcmp(e->name, "HOP") == 0) {
        if (e->nargs != 3) {
            return perr(p, SL_EINVAL, e,
                        "HOP@@ takes (time column, slide INTERVAL, size INTERVAL)");
        }
        if ((rc = need_time_arg(p, e, 0)) != 0 || (rc = interval_arg(p, e, 1, &k.slide_ms)) != 0 ||
            (rc = interval_arg(p, e, 2, &k.size_ms)) != 0) {
            return rc;
        }
        if (k.size_ms / k.slide_ms > 10000) {
            return perr(p, SL_EINVAL, e, "HOP@@: a window may span at most 10000 slides");
        }
        k.kind = TK_HOP;
    } else if (e->k == N_FUNC && strcmp(e->name, "TIME_FLOOR") == 0) {
        if (e->nargs < 2 || e->nargs > 4) {
            return perr(p, SL_EINVAL, e,
                        "TIME_FLOOR@@ takes (__time, 'period' [, origin [, zone]])");
        }
        if ((rc = need_time_arg(p, e, 0)) != 0) {
            return rc;
        }
        sl_sql_value v = col_use(e->args[1]) == 0 ? const_value(p, e->args[1]) : v_null();
        sl_err pe;
        if (v.kind != SL_SQLV_STR || v.n >= sizeof(k.period)) {
            return perr(p, SL_EINVAL, e->args[1],
                        "TIME_FLOOR@@ needs an ISO period such as 'PT5M'");
        }
        memcpy(k.period, v.s, v.n);
        k.period[v.n] = '\0';
        if (sl_period_parse(k.period, &k.size_ms, &pe) != 0 || k.size_ms <= 0) {
            return perr(p, SL_EINVAL, e->args[1], "TIME_FLOOR@@: %s",
                        k.size_ms <= 0 && pe.msg[0] == '\0' ? "period must be positive" : pe.msg);
        }
        if (e->nargs >= 3) {
            sl_sql_value o = col_use(e->args[2]) == 0 ? const_value(p, e->args[2]) : v_null();
            if (o.kind == SL_SQLV_STR && str_time(&o, &k.origin_ms)) {
                k.has_origin = true;
            } else if (o.kind == SL_SQLV_TIME) {
                k.origin_ms = o.i;
                k.has_origin = true;
            } else if (o.kind != SL_SQLV_NULL) {
                return perr(p, SL_EINVAL, e->args[2],
                            "TIME_FLOOR@@: the origin must be a TIMESTAMP");
            }
        }
        if (e->nargs == 4) {
            sl_sql_value z = col_use(e->args[3]) == 0 ? const_value(p, e->args[3]) : v_null();
            if (z.kind != SL_SQLV_NULL &&
                !(z.kind == SL_SQLV_STR && ((z.n == 3 && memcmp(z.s, "UTC", 3) == 0) ||
                                            (z.n == 7 && memcmp(z.s, "Etc/UTC", 7) == 0)))) {
                return perr(p, SL_EINVAL, e->args[3],
                            "TIME_FLOOR@@: only the UTC time zone is supported");
            }
        }
        k.kind = TK_FLOOR;
    } else if (e->k == N_FUNC && ((strcmp(e->name, "FLOOR") == 0 && e->op == 1) ||
                                  strcmp(e->name, "DATE_TRUNC") == 0)) {
        bool trunc = e->name[0] == 'D';
        if (e->nargs != 2) {
            return perr(p, SL_EINVAL, e, "DATE_TRUNC@@ takes ('unit', __time)");
        }
        if ((rc = need_time_arg(p, e, trunc ? 1 : 0)) != 0) {
            return rc;
        }
        const node *u = e->args[trunc ? 0 : 1];
        sl_sql_value v = col_use(u) == 0 ? const_value(p, u) : v_null();
        char unit[32];
        if (v.kind != SL_SQLV_STR || v.n >= sizeof(unit)) {
            return perr(p, SL_EINVAL, u, "DATE_TRUNC@@ needs a unit such as 'hour'");
        }
        memcpy(unit, v.s, v.n);
        unit[v.n] = '\0';
        if (unit_ms(unit, &k.size_ms) != 0) {
            return perr(p, SL_EINVAL, u,
                        "%s@@: unknown unit '%s'; use second, minute, hour, day or week", e->name,
                        unit);
        }
        if (k.size_ms == 0) {
            return perr(p, SL_EINVAL, u,
                        "%s@@: calendar unit '%s' is not supported; use second, minute, hour, day "
                        "or week",
                        e->name, unit);
        }
        period_text(k.size_ms, k.period, sizeof(k.period));
        k.kind = TK_FLOOR;
    } else {
        return 0;
    }
    if (p->tk.kind != TK_NONE) {
        return perr(p, SL_EINVAL, e, "GROUP BY@@ may have only one time bucket (%s and %s)",
                    ntext(p, p->tk.expr), ntext(p, e));
    }
    p->tk = k;
    return 1;
}

static int plan_group(plan *p)
{
    stmt *st = p->st;
    int rc;
    for (int i = 0; i < st->ngroup; i++) {
        node *e = st->group[i];
        if ((rc = time_key(p, e)) < 0) {
            return rc;
        }
        if (rc == 1) {
            p->tslot = add_slot(p, SRC_TIME, NULL, SL_SQL_TIMESTAMP, M_NONE);
            continue;
        }
        if (e->k == N_COL && e->rcol >= 0 && e->rcol < COL_COUNT) {
            bool dup = false;
            for (int j = 0; j < p->ndk; j++) {
                dup = dup || p->dk_dim[j] == e->rcol;
            }
            if (dup) {
                continue;
            }
            if (p->ndk == SL_MAX_DIMS) {
                return perr(p, SL_EINVAL, e, "Too many GROUP BY columns@@");
            }
            p->dk_dim[p->ndk] = e->rcol;
            p->dk_expr[p->ndk] = e;
            p->dk_slot[p->ndk] =
                add_slot(p, SRC_DIM, aprintf(p->a, "d%d", p->ndk), SL_SQL_VARCHAR, M_NONE);
            p->ndk++;
            continue;
        }
        if (e->k == N_COL && e->rcol == COL_RAW) {
            return rollup_error(p, e, e->name);
        }
        if (e->k == N_COL && e->rcol >= COL_COUNT) {
            return perr(p, SL_EINVAL, e,
                        "GROUP BY %s@@: %s is a metric; group by dimensions or a time bucket",
                        e->name, e->name);
        }
        if (has_agg(e)) {
            return perr(p, SL_EINVAL, e, "Aggregate in GROUP BY@@: %s", ntext(p, e));
        }
        if (col_use(e) == 0) {
            continue; /* a constant groups nothing */
        }
        if (e->k == N_FUNC && is_window_fn(e->name)) {
            return perr(p, SL_EINVAL, e, "%s@@ is not a grouping window; use TUMBLE or HOP",
                        e->name);
        }
        return perr(p, SL_EINVAL, e,
                    "GROUP BY %s@@ is not supported; group by dimensions and one time bucket "
                    "(TUMBLE, HOP, TIME_FLOOR, FLOOR(__time TO unit), DATE_TRUNC or __time)",
                    ntext(p, e));
    }
    return 0;
}

/* ---- the statement ----------------------------------------------------------------------------
 */

static node *col_node(plan *p, const char *name, int rcol, int line, int col)
{
    node *n = amalloc(p->a, sizeof(node));
    n->k = N_COL;
    n->name = name;
    n->rcol = rcol;
    n->line = line;
    n->col = col;
    return n;
}

static int find_table(plan *p)
{
    stmt *st = p->st;
    const char *schema = st->schema, *name = st->table;
    node at = {.line = st->tline, .col = st->tcol};
    if (schema != NULL && strcasecmp(schema, "INFORMATION_SCHEMA") == 0) {
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(name, info_tables[i]) == 0) {
                p->table = (tbl_kind)(TBL_SCHEMATA + i);
                p->tname = info_tables[i];
                return 0;
            }
        }
        return perr(p, SL_EINVAL, &at,
                    "Table 'INFORMATION_SCHEMA.%s' not found@@; INFORMATION_SCHEMA has SCHEMATA, "
                    "TABLES and COLUMNS",
                    name);
    }
    if (schema == NULL || strcmp(schema, "druid") == 0) {
        p->spec = sl_config_find(p->cfg, name);
        if (p->spec != NULL) {
            p->table = TBL_DS;
            p->tname = p->spec->name;
            return 0;
        }
    }
    if (schema != NULL && strcmp(schema, "druid") != 0) {
        return perr(p, SL_EINVAL, &at,
                    "Schema '%s' not found@@; schemas are druid (the datasources) and "
                    "INFORMATION_SCHEMA",
                    schema);
    }
    char list[400] = "";
    for (int i = 0; i < p->cfg->ndatasources; i++) {
        list_join(list, sizeof(list), p->cfg->datasources[i]->name);
    }
    return perr(p, SL_EINVAL, &at, "Table '%s' not found@@; datasources: %s", name,
                list[0] ? list : "(none)");
}

static int plan_stmt(plan *p)
{
    stmt *st = p->st;
    int rc;
    p->tslot = -1;
    p->iv = iv_all();
    p->limit = st->limit;
    p->offset = st->offset;
    if ((rc = find_table(p)) != 0) {
        return rc;
    }
    /* SELECT * */
    if (st->star) {
        int n = p->table == TBL_DS ? ds_ncols(p->spec) : 0;
        const icol *ic = p->table == TBL_DS ? NULL : info_cols(p->table);
        if (ic != NULL) {
            while (ic[n].name != NULL) {
                n++;
            }
        }
        st->nitems = n;
        st->items = amalloc(p->a, sizeof(sel_item) * (size_t)n);
        for (int i = 0; i < n; i++) {
            const char *name = ic != NULL ? ic[i].name : ds_col_name(p->spec, i);
            int rcol = ic != NULL ? i : ds_rcol(p->spec, i);
            st->items[i].e = col_node(p, name, rcol, st->star_line, st->star_col);
            st->items[i].alias = name;
        }
    }
    for (int i = 0; i < st->nitems; i++) {
        if ((rc = resolve(p, st->items[i].e, 0)) != 0) {
            return rc;
        }
    }
    if ((rc = resolve(p, st->where, 0)) != 0 || (rc = resolve(p, st->having, 0)) != 0) {
        return rc;
    }
    /* GROUP BY: ordinals and aliases name select items */
    for (int i = 0; i < st->ngroup; i++) {
        node *g = st->group[i];
        if (g->k == N_LIT && g->v.kind == SL_SQLV_LONG) {
            if (g->v.i < 1 || g->v.i > st->nitems) {
                return perr(p, SL_EINVAL, g, "GROUP BY %" PRId64 "@@: there are %d select items",
                            g->v.i, st->nitems);
            }
            st->group[i] = st->items[g->v.i - 1].e;
            continue;
        }
        if ((rc = resolve(p, g, 1)) != 0) {
            return rc;
        }
        if (g->k == N_COL && g->rcol == COL_ALIAS) {
            st->group[i] = st->items[g->alias_of].e;
        }
    }
    /* ORDER BY: ordinals and aliases name select items too */
    for (int i = 0; i < st->norder; i++) {
        node *o = st->order[i].e;
        if (o->k == N_LIT && o->v.kind == SL_SQLV_LONG) {
            if (o->v.i < 1 || o->v.i > st->nitems) {
                return perr(p, SL_EINVAL, o, "ORDER BY %" PRId64 "@@: there are %d select items",
                            o->v.i, st->nitems);
            }
            st->order[i].e = st->items[o->v.i - 1].e;
            continue;
        }
        if ((rc = resolve(p, o, 2)) != 0) {
            return rc;
        }
        if (o->k == N_COL && o->rcol == COL_ALIAS) {
            st->order[i].e = st->items[o->alias_of].e;
        }
    }
    bool anyagg = st->having != NULL;
    for (int i = 0; i < st->nitems; i++) {
        anyagg = anyagg || has_agg(st->items[i].e);
    }
    for (int i = 0; i < st->norder; i++) {
        anyagg = anyagg || has_agg(st->order[i].e);
    }
    if (st->distinct) {
        if (st->ngroup > 0 || anyagg) {
            return perr(p, SL_EINVAL, NULL,
                        "SELECT DISTINCT with GROUP BY or aggregates is not supported");
        }
        st->ngroup = st->nitems;
        st->group = amalloc(p->a, sizeof(node *) * (size_t)(st->nitems + 1));
        for (int i = 0; i < st->nitems; i++) {
            st->group[i] = st->items[i].e;
        }
    }
    p->aggmode = st->ngroup > 0 || anyagg;

    if (p->table != TBL_DS) {
        if (p->aggmode) {
            return perr(p, SL_EINVAL, NULL,
                        "GROUP BY, HAVING and aggregates over INFORMATION_SCHEMA are not "
                        "supported");
        }
        const icol *ic = info_cols(p->table);
        for (int i = 0; ic[i].name != NULL; i++) {
            add_slot(p, SRC_INFO, ic[i].name, ic[i].type, M_NONE);
        }
        p->qt = Q_INFO;
        if (st->where != NULL && (rc = bind(p, st->where, &p->where_rows)) != 0) {
            return rc;
        }
    } else {
        if ((rc = plan_where(p, st->where)) != 0) {
            return rc;
        }
        if (p->aggmode) {
            if ((rc = plan_group(p)) != 0) {
                return rc;
            }
        } else {
            const sl_spec *s = p->spec;
            for (int i = 0; i < ds_ncols(s); i++) {
                sl_sql_type t = ds_col_type(s, i);
                if (i == 0) {
                    add_slot(p, SRC_TIME, NULL, t, M_NONE);
                } else if (i <= s->ndims) {
                    add_slot(p, SRC_DIM, aprintf(p->a, "d%d", i - 1), t, M_NONE);
                } else {
                    add_slot(p, SRC_COL, aprintf(p->a, "a%d", i - s->ndims - 1), t, M_NONE);
                }
            }
            p->qt = Q_SCAN;
        }
    }
    /* bind select items, HAVING, ORDER BY */
    p->nout = st->nitems;
    p->out = amalloc(p->a, sizeof(node *) * (size_t)(st->nitems + 1));
    p->names = amalloc(p->a, sizeof(char *) * (size_t)(st->nitems + 1));
    p->types = amalloc(p->a, sizeof(sl_sql_type) * (size_t)(st->nitems + 1));
    for (int i = 0; i < st->nitems; i++) {
        sel_item *it = &st->items[i];
        if ((rc = bind(p, it->e, &p->out[i])) != 0) {
            return rc;
        }
        p->names[i] = it->alias != NULL   ? it->alias
                      : it->e->k == N_COL ? it->e->name
                                          : aprintf(p->a, "EXPR$%d", i);
        p->types[i] = infer(p, p->out[i]);
    }
    if (st->having != NULL && (rc = bind(p, st->having, &p->having)) != 0) {
        return rc;
    }
    p->norder = st->norder;
    p->order = amalloc(p->a, sizeof(node *) * (size_t)(st->norder + 1));
    p->desc = amalloc(p->a, sizeof(bool) * (size_t)(st->norder + 1));
    for (int i = 0; i < st->norder; i++) {
        if ((rc = bind(p, st->order[i].e, &p->order[i])) != 0) {
            return rc;
        }
        p->desc[i] = st->order[i].desc;
    }
    if (p->table != TBL_DS) {
        return 0;
    }
    /* native query type */
    if (p->aggmode) {
        int ntime = 0;
        for (int i = 0; i < p->aggs.n; i++) {
            aggdef *a = p->aggs.p[i];
            ntime += a->kind == AG_MINTIME || a->kind == AG_MAXTIME;
        }
        if (ntime > 0 && (ntime < p->aggs.n || st->ngroup > 0)) {
            return perr(p, SL_EINVAL, NULL,
                        "MIN(__time) and MAX(__time) cannot be combined with GROUP BY or other "
                        "aggregates");
        }
        p->qt = ntime > 0 ? Q_TIMEBOUNDARY : p->ndk > 0 ? Q_GROUPBY : Q_TIMESERIES;
        if (p->tk.kind == TK_HOP && p->tk.slide_ms != p->tk.size_ms) {
            for (int i = 0; i < p->aggs.n; i++) {
                aggdef *a = p->aggs.p[i];
                if (slot_at(p, a->slot)->merge == M_NONE) {
                    return perr(p, SL_EINVAL, p->tk.expr,
                                "%s cannot be used with overlapping HOP windows@@: its buckets "
                                "cannot be added up; use TUMBLE",
                                a->what);
                }
            }
        }
    }
    /* can the native query sort and limit? */
    bool can = p->having == NULL && p->tk.kind != TK_HOP && p->qt != Q_TIMEBOUNDARY;
    bool bucketed = p->qt == Q_SCAN || p->tk.kind != TK_NONE;
    for (int i = 0; can && i < p->norder; i++) {
        node *o = p->order[i];
        if (o->k != N_SLOT) {
            can = false;
            break;
        }
        slotdef *s = slot_at(p, o->slot);
        if (p->qt == Q_TIMESERIES) {
            can = p->norder == 1 && s->src == SRC_TIME;
        } else if (s->src == SRC_TIME) {
            can = i == 0 && !p->desc[i];
        } else if (i == 0 && bucketed) {
            can = false;
        }
    }
    p->pushed = can;
    return 0;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void gen_interval(yajl_gen g, int64_t s, int64_t e)
{
    char a[40], b[40], buf[90];
    snprintf(buf, sizeof(buf), "%s/%s", sl_time_format(s, a, sizeof(a)),
             sl_time_format(e, b, sizeof(b)));
    gs(g, buf);
}

static void gen_agg(plan *p, yajl_gen g, const aggdef *a, const char *name)
{
    yajl_gen_map_open(g);
    switch (a->kind) {
    case AG_COUNT:
        gkv(g, "type", "count");
        gkv(g, "name", name);
        break;
    case AG_COUNT_DIM:
        gkv(g, "type", "filtered");
        gkv(g, "name", name);
        gs(g, "filter");
        gen_null_filter(g, a->field, true);
        gs(g, "aggregator");
        yajl_gen_map_open(g);
        gkv(g, "type", "count");
        gkv(g, "name", name);
        yajl_gen_map_close(g);
        break;
    case AG_SUM:
    case AG_MIN:
    case AG_MAX: {
        static const char *const names[2][3] = {{"doubleSum", "doubleMin", "doubleMax"},
                                                {"longSum", "longMin", "longMax"}};
        gkv(g, "type", names[a->is_long][a->kind - AG_SUM]);
        gkv(g, "name", name);
        gkv(g, "fieldName", a->field);
        break;
    }
    case AG_CARD:
        gkv(g, "type", "cardinality");
        gkv(g, "name", name);
        gs(g, "fields");
        yajl_gen_array_open(g);
        gs(g, a->field);
        yajl_gen_array_close(g);
        gs(g, "round");
        yajl_gen_bool(g, true);
        break;
    case AG_HLL:
        gkv(g, "type", "HLLSketchMerge");
        gkv(g, "name", name);
        gkv(g, "fieldName", a->field);
        gs(g, "round");
        yajl_gen_bool(g, true);
        break;
    case AG_QUANT:
        gkv(g, "type", "quantilesDoublesSketch");
        gkv(g, "name", aprintf(p->a, "%s:agg", name));
        gkv(g, "fieldName", a->field);
        break;
    case AG_MINTIME:
    case AG_MAXTIME:
        break;
    }
    yajl_gen_map_close(g);
}

static int gen_native(plan *p)
{
    const sl_spec *s = p->spec;
    int rc = 0;
    sl_buf_reset(&p->native);
    yajl_gen g = sl_res_gen(&p->native);
    yajl_gen_map_open(g);
    gkv(g, "queryType",
        p->qt == Q_TIMESERIES     ? "timeseries"
        : p->qt == Q_TIMEBOUNDARY ? "timeBoundary"
                                  : "groupBy");
    gkv(g, "dataSource", s->name);
    if (p->qt != Q_TIMEBOUNDARY || p->time_cond) {
        gs(g, "intervals");
        yajl_gen_array_open(g);
        if (p->iv.n == 0) {
            gen_interval(g, TMIN_MS, TMIN_MS); /* nothing: an empty interval */
        }
        for (int i = 0; i < p->iv.n; i++) {
            gen_interval(g, p->iv.v[i].s, p->iv.v[i].e);
        }
        yajl_gen_array_close(g);
    }
    if (p->qt == Q_TIMEBOUNDARY) {
        bool mn = false, mx = false;
        for (int i = 0; i < p->aggs.n; i++) {
            aggdef *a = p->aggs.p[i];
            mn = mn || a->kind == AG_MINTIME;
            mx = mx || a->kind == AG_MAXTIME;
        }
        if (mn != mx) {
            gkv(g, "bound", mn ? "minTime" : "maxTime");
        }
    } else {
        gs(g, "granularity");
        if (p->qt == Q_SCAN) {
            yajl_gen_map_open(g);
            gkv(g, "type", "duration");
            gs(g, "duration");
            yajl_gen_integer(g, s->query_ms);
            yajl_gen_map_close(g);
        } else if (p->tk.kind == TK_NONE) {
            gs(g, "all");
        } else if (p->tk.kind == TK_FLOOR) {
            yajl_gen_map_open(g);
            gkv(g, "type", "period");
            gkv(g, "period", p->tk.period);
            if (p->tk.has_origin) {
                char t[40];
                gkv(g, "origin", sl_time_format(p->tk.origin_ms, t, sizeof(t)));
            }
            yajl_gen_map_close(g);
        } else {
            int64_t d = p->tk.size_ms;
            if (p->tk.kind == TK_HOP) {
                d = gcd64(p->tk.slide_ms, p->tk.size_ms);
                if (d < s->query_ms) {
                    d = s->query_ms;
                }
            }
            yajl_gen_map_open(g);
            gkv(g, "type", "duration");
            gs(g, "duration");
            yajl_gen_integer(g, d);
            yajl_gen_map_close(g);
        }
    }
    if (p->filters.n > 0) {
        gs(g, "filter");
        if (p->filters.n > 1) {
            yajl_gen_map_open(g);
            gkv(g, "type", "and");
            gs(g, "fields");
            yajl_gen_array_open(g);
        }
        for (int i = 0; i < p->filters.n && rc == 0; i++) {
            rc = gen_filter(p, g, p->filters.p[i], true);
        }
        if (rc != 0) {
            goto out;
        }
        if (p->filters.n > 1) {
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
        }
    }
    if (p->qt == Q_TIMEBOUNDARY) {
        goto close;
    }
    if (p->qt == Q_GROUPBY || p->qt == Q_SCAN) {
        gs(g, "dimensions");
        yajl_gen_array_open(g);
        int nd = p->qt == Q_SCAN ? s->ndims : p->ndk;
        for (int i = 0; i < nd; i++) {
            yajl_gen_map_open(g);
            gkv(g, "type", "default");
            gkv(g, "dimension", s->dims[p->qt == Q_SCAN ? i : p->dk_dim[i]]);
            gkv(g, "outputName", aprintf(p->a, "d%d", i));
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
    gs(g, "aggregations");
    yajl_gen_array_open(g);
    if (p->qt == Q_SCAN) {
        aggdef cnt = {.kind = AG_COUNT};
        gen_agg(p, g, &cnt, "a0");
        for (int i = 0; i < s->nmetrics; i++) {
            sl_metric_kind k = s->metrics[i].kind;
            if (k != SL_METRIC_SUM && k != SL_METRIC_MIN && k != SL_METRIC_MAX) {
                continue;
            }
            aggdef m = {.kind = k == SL_METRIC_SUM   ? AG_SUM
                                : k == SL_METRIC_MIN ? AG_MIN
                                                     : AG_MAX,
                        .field = s->metrics[i].name};
            gen_agg(p, g, &m, aprintf(p->a, "a%d", i + 1));
        }
    }
    for (int i = 0; i < p->aggs.n; i++) {
        aggdef *a = p->aggs.p[i];
        gen_agg(p, g, a, slot_at(p, a->slot)->native);
    }
    yajl_gen_array_close(g);
    bool any_post = false;
    for (int i = 0; i < p->aggs.n; i++) {
        aggdef *a = p->aggs.p[i];
        if (a->kind != AG_QUANT) {
            continue;
        }
        if (!any_post) {
            gs(g, "postAggregations");
            yajl_gen_array_open(g);
            any_post = true;
        }
        const char *name = slot_at(p, a->slot)->native;
        yajl_gen_map_open(g);
        gkv(g, "type", "quantilesDoublesSketchToQuantile");
        gkv(g, "name", name);
        gs(g, "field");
        yajl_gen_map_open(g);
        gkv(g, "type", "fieldAccess");
        gkv(g, "fieldName", aprintf(p->a, "%s:agg", name));
        yajl_gen_map_close(g);
        gs(g, "fraction");
        yajl_gen_double(g, a->q);
        yajl_gen_map_close(g);
    }
    if (any_post) {
        yajl_gen_array_close(g);
    }
    int64_t lim = -1;
    if (p->pushed && p->limit > 0) {
        lim = p->offset > INT64_MAX / 2 || p->limit > INT64_MAX / 2 ? INT64_MAX / 2
                                                                    : p->limit + p->offset;
    }
    if (p->qt == Q_TIMESERIES) {
        if (p->pushed && p->norder == 1 && p->desc[0]) {
            gs(g, "descending");
            yajl_gen_bool(g, true);
        }
        if (lim > 0) {
            gs(g, "limit");
            yajl_gen_integer(g, lim);
        }
        if (p->tk.kind != TK_NONE) {
            gs(g, "context");
            yajl_gen_map_open(g);
            gs(g, "skipEmptyBuckets");
            yajl_gen_bool(g, true);
            yajl_gen_map_close(g);
        }
    } else if (p->pushed && (lim > 0 || p->norder > 0)) {
        int first = 0;
        if (p->norder > 0 && slot_at(p, p->order[0]->slot)->src == SRC_TIME) {
            first = 1; /* the native groupBy sorts by time bucket first anyway */
        }
        if (lim > 0 || first < p->norder) {
            gs(g, "limitSpec");
            yajl_gen_map_open(g);
            gkv(g, "type", "default");
            if (lim > 0) {
                gs(g, "limit");
                yajl_gen_integer(g, lim);
            }
            gs(g, "columns");
            yajl_gen_array_open(g);
            for (int i = first; i < p->norder; i++) {
                slotdef *sd = slot_at(p, p->order[i]->slot);
                yajl_gen_map_open(g);
                gkv(g, "dimension", sd->native);
                gkv(g, "direction", p->desc[i] ? "descending" : "ascending");
                gkv(g, "dimensionOrder", sd->src == SRC_DIM ? "lexicographic" : "numeric");
                yajl_gen_map_close(g);
            }
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
        }
    }
close:
    yajl_gen_map_close(g);
out:
    sl_res_gen_free(g);
    return rc;
}

/* ---- rows -------------------------------------------------------------------------------------
 */

typedef struct rowset {
    int w; /* slots per row */
    size_t n, cap;
    sl_sql_value *v;
} rowset;

static sl_sql_value *row_add(rowset *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap == 0 ? 64 : r->cap * 2;
        r->v = sl_realloc(r->v, r->cap * (size_t)(r->w > 0 ? r->w : 1) * sizeof(sl_sql_value));
    }
    sl_sql_value *row = r->v + r->n * (size_t)r->w;
    for (int i = 0; i < r->w; i++) {
        row[i] = v_null();
    }
    r->n++;
    return row;
}

static sl_sql_value *row_at(const rowset *r, size_t i)
{
    return r->v + i * (size_t)r->w;
}

/* ---- INFORMATION_SCHEMA ------------------------------------------------------------------------
 */

static sl_sql_value sv(const char *s)
{
    return s != NULL ? v_str(s, strlen(s)) : v_null();
}

static void info_column(rowset *r, const char *schema, const char *table, const char *col, int pos,
                        sl_sql_type t, bool nullable)
{
    static const int jdbc[] = {
        [SL_SQL_VARCHAR] = 12,   [SL_SQL_BIGINT] = -5,  [SL_SQL_DOUBLE] = 8,  [SL_SQL_FLOAT] = 6,
        [SL_SQL_TIMESTAMP] = 93, [SL_SQL_BOOLEAN] = 16, [SL_SQL_OTHER] = 1111};
    sl_sql_value *row = row_add(r);
    row[0] = sv("druid");
    row[1] = sv(schema);
    row[2] = sv(table);
    row[3] = sv(col);
    row[4] = v_long(pos);
    row[5] = v_null();
    row[6] = sv(nullable ? "YES" : "NO");
    row[7] = sv(sl_sql_type_name(t));
    if (t == SL_SQL_BIGINT) {
        row[10] = v_long(19);
        row[11] = v_long(10);
        row[12] = v_long(0);
    } else if (t == SL_SQL_DOUBLE || t == SL_SQL_FLOAT) {
        row[10] = v_long(t == SL_SQL_DOUBLE ? 15 : 7);
        row[11] = v_long(10);
    } else if (t == SL_SQL_TIMESTAMP) {
        row[13] = v_long(3);
    } else if (t == SL_SQL_VARCHAR) {
        row[14] = sv("UTF-16LE");
        row[15] = sv("UTF-16LE$en_US$primary");
    }
    row[16] = v_long(jdbc[t]);
}

static void info_rows(plan *p, rowset *r)
{
    const sl_config *cfg = p->cfg;
    if (p->table == TBL_SCHEMATA) {
        static const char *const schemas[] = {"druid", "INFORMATION_SCHEMA"};
        for (int i = 0; i < 2; i++) {
            sl_sql_value *row = row_add(r);
            row[0] = sv("druid");
            row[1] = sv(schemas[i]);
        }
        return;
    }
    if (p->table == TBL_TABLES) {
        for (int i = 0; i < cfg->ndatasources; i++) {
            sl_sql_value *row = row_add(r);
            row[0] = sv("druid");
            row[1] = sv("druid");
            row[2] = sv(cfg->datasources[i]->name);
            row[3] = sv("TABLE");
            row[4] = sv("NO");
            row[5] = sv("NO");
        }
        for (int i = 0; i < 3; i++) {
            sl_sql_value *row = row_add(r);
            row[0] = sv("druid");
            row[1] = sv("INFORMATION_SCHEMA");
            row[2] = sv(info_tables[i]);
            row[3] = sv("SYSTEM_TABLE");
            row[4] = sv("NO");
            row[5] = sv("NO");
        }
        return;
    }
    for (int i = 0; i < cfg->ndatasources; i++) {
        const sl_spec *s = cfg->datasources[i];
        for (int c = 0; c < ds_ncols(s); c++) {
            sl_sql_type t = ds_col_type(s, c);
            info_column(r, "druid", s->name, ds_col_name(s, c), c + 1, t,
                        t == SL_SQL_VARCHAR || t == SL_SQL_OTHER);
        }
    }
    for (int i = 0; i < 3; i++) {
        const icol *ic = info_cols((tbl_kind)(TBL_SCHEMATA + i));
        for (int c = 0; ic[c].name != NULL; c++) {
            info_column(r, "INFORMATION_SCHEMA", info_tables[i], ic[c].name, c + 1, ic[c].type,
                        true);
        }
    }
}

/* ---- running the native query -------------------------------------------------------------------
 */

static yajl_val jget(yajl_val obj, const char *key)
{
    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }
    return NULL;
}

static sl_sql_value jvalue(yajl_val v, sl_sql_type t)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        return v_null();
    }
    if (YAJL_IS_STRING(v)) {
        const char *s = v->u.string;
        if (t == SL_SQL_TIMESTAMP) {
            int64_t ms;
            sl_err e;
            return sl_time_parse(s, strlen(s), SL_TS_ISO, &ms, &e) == 0 ? v_time(ms) : v_null();
        }
        return v_str(s, strlen(s));
    }
    if (YAJL_IS_INTEGER(v)) {
        return t == SL_SQL_DOUBLE || t == SL_SQL_FLOAT ? v_double((double)v->u.number.i)
                                                       : v_long(v->u.number.i);
    }
    if (YAJL_IS_DOUBLE(v)) {
        return v_double(v->u.number.d);
    }
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        return v_bool(YAJL_IS_TRUE(v));
    }
    return v_null();
}

/* The native engine refused the plan: name the SQL that needed what it lacks. */
static int native_refused(plan *p, const sl_err *e)
{
    const char *at = strstr(e->msg, "aggregations[");
    if (at != NULL && strstr(e->msg, "is not supported") != NULL) {
        int i = atoi(at + 13);
        if (i >= 0 && i < p->aggs.n) {
            aggdef *a = p->aggs.p[i];
            return sl_err_set(p->err, SL_ENOTFOUND,
                              "%s is not supported yet: it needs a native aggregator this engine "
                              "does not have (native engine: %s)",
                              a->what, e->msg);
        }
    }
    return sl_err_set(p->err, SL_ENOTFOUND, "The native engine cannot run this query: %s", e->msg);
}

static int run_native(plan *p, sl_store *st, rowset *r)
{
    sl_native *q = NULL;
    sl_err e = {0, ""};
    sl_buf out;
    yajl_val tree = NULL;
    int rc;
    sl_buf_init(&out);
    if ((rc = sl_native_parse(p->cfg, p->native.data, p->native.len, &q, &e)) != 0) {
        rc = native_refused(p, &e);
        goto out;
    }
    if ((rc = sl_native_exec(q, st, p->opts->timeout_ms, &out, &e)) != 0) {
        rc = sl_err_set(p->err, rc, "%s", e.msg);
        goto out;
    }
    char ebuf[200];
    sl_buf_append(&out, "", 1);
    tree = yajl_tree_parse(out.data, ebuf, sizeof(ebuf));
    if (tree == NULL || !YAJL_IS_ARRAY(tree)) {
        rc = sl_err_set(p->err, SL_EIO, "unreadable native result: %s", ebuf);
        goto out;
    }
    size_t n = tree->u.array.len;
    if (p->qt == Q_TIMEBOUNDARY && n == 0) {
        row_add(r); /* MIN / MAX of nothing: one row of nulls */
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val obj = tree->u.array.values[i];
        yajl_val ts = jget(obj, "timestamp");
        yajl_val body = p->qt == Q_TIMESERIES || p->qt == Q_TIMEBOUNDARY ? jget(obj, "result")
                                                                         : jget(obj, "event");
        sl_sql_value *row = row_add(r);
        for (int k = 0; k < p->slots.n; k++) {
            slotdef *s = slot_at(p, k);
            switch (s->src) {
            case SRC_TIME:
                row[k] = jvalue(ts, SL_SQL_TIMESTAMP);
                break;
            case SRC_DIM:
            case SRC_COL:
                row[k] = jvalue(jget(body, s->native), s->type);
                break;
            case SRC_MINTIME:
                row[k] = jvalue(jget(body, "minTime"), SL_SQL_TIMESTAMP);
                break;
            case SRC_MAXTIME:
                row[k] = jvalue(jget(body, "maxTime"), SL_SQL_TIMESTAMP);
                break;
            case SRC_INFO:
                break;
            }
            /* strings point into the tree: keep them in the arena */
            if (row[k].kind == SL_SQLV_STR) {
                row[k].s = astrndup(p->a, row[k].s, row[k].n);
            }
        }
    }
out:
    yajl_tree_free(tree);
    sl_native_free(q);
    sl_buf_fini(&out);
    return rc;
}

/* ---- HOP windows
 * ---------------------------------------------------------------------------------- */

typedef struct hop_ctx {
    const plan *p;
    const rowset *r;
} hop_ctx;

static int cmp_hop(const void *x, const void *y, void *arg)
{
    const hop_ctx *c = arg;
    const sl_sql_value *a = row_at(c->r, *(const size_t *)x), *b = row_at(c->r, *(const size_t *)y);
    int r = cmp_values(&a[c->p->tslot], &b[c->p->tslot]);
    for (int i = 0; r == 0 && i < c->p->ndk; i++) {
        r = cmp_values(&a[c->p->dk_slot[i]], &b[c->p->dk_slot[i]]);
    }
    return r;
}

static void merge_value(merge_op m, sl_sql_value *into, const sl_sql_value *v)
{
    if (v->kind == SL_SQLV_NULL) {
        return;
    }
    if (into->kind == SL_SQLV_NULL) {
        *into = *v;
        return;
    }
    switch (m) {
    case M_SUM:
        if (into->kind == SL_SQLV_LONG && v->kind == SL_SQLV_LONG) {
            into->i += v->i;
        } else {
            *into = v_double(num(into) + num(v));
        }
        break;
    case M_MIN:
        if (cmp_values(v, into) < 0) {
            *into = *v;
        }
        break;
    case M_MAX:
        if (cmp_values(v, into) > 0) {
            *into = *v;
        }
        break;
    case M_NONE:
        break;
    }
}

/* Every stored bucket b contributes to each window [k*slide, k*slide + size) holding it. */
static int hop_expand(plan *p, rowset *r)
{
    int64_t slide = p->tk.slide_ms, size = p->tk.size_ms;
    rowset x = {.w = r->w};
    int rc = 0;
    for (size_t i = 0; i < r->n; i++) {
        const sl_sql_value *row = row_at(r, i);
        int64_t b = row[p->tslot].i;
        int64_t k0 = floor_div(b - size, slide) + 1, k1 = floor_div(b, slide);
        for (int64_t k = k0; k <= k1; k++) {
            if (x.n >= MAX_HOP_ROWS) {
                rc = sl_err_set(p->err, SL_ETOOBIG,
                                "HOP windows would make more than %d rows; narrow the time range "
                                "or use a longer slide",
                                MAX_HOP_ROWS);
                goto out;
            }
            sl_sql_value *nr = row_add(&x);
            memcpy(nr, row_at(r, i), sizeof(sl_sql_value) * (size_t)r->w);
            nr[p->tslot] = v_time(k * slide);
        }
    }
    size_t *idx = sl_malloc((x.n + 1) * sizeof(size_t));
    for (size_t i = 0; i < x.n; i++) {
        idx[i] = i;
    }
    hop_ctx c = {p, &x};
    qsort_r(idx, x.n, sizeof(size_t), cmp_hop, &c);
    r->n = 0;
    for (size_t i = 0; i < x.n;) {
        size_t j = i + 1;
        sl_sql_value *out = row_add(r);
        memcpy(out, row_at(&x, idx[i]), sizeof(sl_sql_value) * (size_t)r->w);
        while (j < x.n && cmp_hop(&idx[i], &idx[j], &c) == 0) {
            const sl_sql_value *v = row_at(&x, idx[j]);
            for (int k = 0; k < r->w; k++) {
                merge_value(slot_at(p, k)->merge, &out[k], &v[k]);
            }
            j++;
        }
        i = j;
    }
    free(idx);
out:
    free(x.v);
    return rc;
}

/* ---- results
 * ------------------------------------------------------------------------------------- */

struct sl_sql_result {
    arena a;
    int ncols;
    const char **names;
    sl_sql_type *types;
    size_t nrows;
    sl_sql_value *cells;
};

int sl_sql_result_ncols(const sl_sql_result *r)
{
    return r->ncols;
}

size_t sl_sql_result_nrows(const sl_sql_result *r)
{
    return r->nrows;
}

const char *sl_sql_result_name(const sl_sql_result *r, int col)
{
    return r->names[col];
}

sl_sql_type sl_sql_result_type(const sl_sql_result *r, int col)
{
    return r->types[col];
}

const sl_sql_value *sl_sql_result_cell(const sl_sql_result *r, size_t row, int col)
{
    return &r->cells[row * (size_t)r->ncols + (size_t)col];
}

void sl_sql_result_free(sl_sql_result *r)
{
    if (r == NULL) {
        return;
    }
    arena_free(&r->a);
    free(r->cells);
    free(r);
}

static sl_sql_result *result_new(int ncols)
{
    sl_sql_result *r = sl_calloc(1, sizeof(*r));
    r->ncols = ncols;
    r->names = amalloc(&r->a, sizeof(char *) * (size_t)(ncols + 1));
    r->types = amalloc(&r->a, sizeof(sl_sql_type) * (size_t)(ncols + 1));
    return r;
}

typedef struct sort_ctx {
    const plan *p;
    const sl_sql_value *keys; /* norder per row */
} sort_ctx;

static int cmp_rows(const void *x, const void *y, void *arg)
{
    const sort_ctx *c = arg;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    int n = c->p->norder;
    for (int k = 0; k < n; k++) {
        int r =
            cmp_values(&c->keys[i * (size_t)n + (size_t)k], &c->keys[j * (size_t)n + (size_t)k]);
        if (r != 0) {
            return c->p->desc[k] ? -r : r;
        }
    }
    return i < j ? -1 : i > j; /* stable */
}

/* HAVING, projection, ORDER BY, OFFSET / LIMIT over the slot rows. */
static int finish(plan *p, rowset *r, sl_sql_result **out)
{
    int no = p->nout, nk = p->norder;
    sl_sql_result *res = result_new(no);
    for (int i = 0; i < no; i++) {
        res->names[i] = astrdup(&res->a, p->names[i]);
        res->types[i] = p->types[i];
    }
    sl_sql_value *vals = sl_malloc((r->n + 1) * (size_t)(no + 1) * sizeof(sl_sql_value));
    sl_sql_value *keys = sl_malloc((r->n + 1) * (size_t)(nk + 1) * sizeof(sl_sql_value));
    size_t *idx = sl_malloc((r->n + 1) * sizeof(size_t));
    size_t m = 0;
    evalctx c = {p, NULL, p->a};
    for (size_t i = 0; i < r->n; i++) {
        c.row = row_at(r, i);
        if (p->where_rows != NULL) {
            sl_sql_value w = eval(&c, p->where_rows);
            if (w.kind == SL_SQLV_NULL || !truthy(&w)) {
                continue;
            }
        }
        if (p->having != NULL) {
            sl_sql_value h = eval(&c, p->having);
            if (h.kind == SL_SQLV_NULL || !truthy(&h)) {
                continue;
            }
        }
        for (int k = 0; k < no; k++) {
            vals[m * (size_t)no + (size_t)k] = eval(&c, p->out[k]);
        }
        for (int k = 0; k < nk; k++) {
            keys[m * (size_t)nk + (size_t)k] = eval(&c, p->order[k]);
        }
        idx[m] = m;
        m++;
    }
    if (nk > 0 && !p->pushed) {
        sort_ctx sc = {p, keys};
        qsort_r(idx, m, sizeof(size_t), cmp_rows, &sc);
    }
    size_t from = (uint64_t)p->offset < m ? (size_t)p->offset : m, to = m;
    if (p->limit >= 0 && (uint64_t)p->limit < to - from) {
        to = from + (size_t)p->limit;
    }
    res->nrows = to - from;
    res->cells = sl_calloc(res->nrows * (size_t)no + 1, sizeof(sl_sql_value));
    for (size_t i = from; i < to; i++) {
        for (int k = 0; k < no; k++) {
            sl_sql_value v = vals[idx[i] * (size_t)no + (size_t)k];
            if (v.kind == SL_SQLV_STR) {
                v.s = astrndup(&res->a, v.s, v.n);
            } else if (v.kind == SL_SQLV_LONG &&
                       (res->types[k] == SL_SQL_DOUBLE || res->types[k] == SL_SQL_FLOAT)) {
                v = v_double((double)v.i);
            } else if (v.kind == SL_SQLV_INTERVAL) {
                v = v_long(v.i);
            }
            res->cells[(i - from) * (size_t)no + (size_t)k] = v;
        }
    }
    free(vals);
    free(keys);
    free(idx);
    *out = res;
    return 0;
}

static sl_sql_result *explain_result(plan *p)
{
    sl_sql_result *res = result_new(3);
    static const char *const names[] = {"PLAN", "RESOURCES", "ATTRIBUTES"};
    for (int i = 0; i < 3; i++) {
        res->names[i] = names[i];
        res->types[i] = SL_SQL_VARCHAR;
    }
    sl_buf b;
    sl_buf_init(&b);
    if (p->table == TBL_DS) {
        sl_buf_append(&b, "[{\"query\":", 10);
        sl_buf_append(&b, p->native.data, p->native.len);
        sl_buf_append(&b, "}]", 2);
    } else {
        const char *t = "[{\"query\":\"INFORMATION_SCHEMA, answered from the configuration\"}]";
        sl_buf_append(&b, t, strlen(t));
    }
    res->nrows = 1;
    res->cells = sl_calloc(3, sizeof(sl_sql_value));
    char *plan_text = astrndup(&res->a, b.data, b.len);
    res->cells[0] = v_str(plan_text, b.len);
    const char *r = aprintf(&res->a, "[{\"name\":\"%s\",\"type\":\"%s\"}]", p->tname,
                            p->table == TBL_DS ? "DATASOURCE" : "TABLE");
    res->cells[1] = sv(r);
    res->cells[2] = sv("{\"statementType\":\"SELECT\"}");
    sl_buf_fini(&b);
    return res;
}

/* ---- entry points
 * ---------------------------------------------------------------------------------- */

static int prepare(plan *p, arena *a, const sl_config *cfg, const char *sql, size_t len,
                   const sl_sql_opts *opts, sl_err *err)
{
    static const sl_sql_opts none = {0};
    memset(p, 0, sizeof(*p));
    p->a = a;
    p->cfg = cfg;
    p->opts = opts != NULL ? opts : &none;
    p->err = err;
    sl_buf_init(&p->native);
    int rc = parse_stmt(a, sql, len, p->opts, &p->st, err);
    if (rc == 0) {
        rc = plan_stmt(p);
    }
    if (rc == 0 && p->table == TBL_DS) {
        rc = gen_native(p);
    }
    return rc;
}

int sl_sql_run(const sl_config *cfg, sl_store *st, const char *sql, const sl_sql_opts *opts,
               sl_sql_result **out, sl_err *err)
{
    arena a = {0};
    plan p;
    rowset r = {0};
    *out = NULL;
    int rc = prepare(&p, &a, cfg, sql, strlen(sql), opts, err);
    if (rc != 0) {
        goto out;
    }
    if (p.st->explain) {
        *out = explain_result(&p);
        goto out;
    }
    r.w = p.slots.n;
    if (p.table != TBL_DS) {
        info_rows(&p, &r);
    } else {
        if ((rc = run_native(&p, st, &r)) != 0) {
            goto out;
        }
        if (p.tk.kind == TK_HOP && (rc = hop_expand(&p, &r)) != 0) {
            goto out;
        }
    }
    rc = finish(&p, &r, out);
out:
    free(r.v);
    sl_buf_fini(&p.native);
    arena_free(&a);
    return rc;
}

int sl_sql_plan_native(const sl_config *cfg, const char *sql, const sl_sql_opts *opts,
                       sl_buf *native, sl_err *err)
{
    arena a = {0};
    plan p;
    int rc = prepare(&p, &a, cfg, sql, strlen(sql), opts, err);
    sl_buf_reset(native);
    if (rc == 0 && p.native.len > 0) {
        sl_buf_append(native, p.native.data, p.native.len);
    }
    sl_buf_fini(&p.native);
    arena_free(&a);
    return rc;
}

int sl_sql_parse_only(const char *sql, size_t len, const sl_sql_opts *opts, sl_err *err)
{
    arena a = {0};
    stmt *st;
    int rc = parse_stmt(&a, sql, len, opts, &st, err);
    arena_free(&a);
    return rc;
}
