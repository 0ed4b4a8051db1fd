/* Mergeable sketches (see sketch.h): HyperLogLog with an exact sparse form, and DDSketch.
 *
 * Both are written so that a sketch is a function of the multiset of values it saw, never
 * of the order of inserts and merges: the stored rows of one minute can be re-merged after
 * a crash and give the same bytes. For the HLL: it is sparse exactly while it has seen at
 * most SL_HLL_SPARSE_MAX distinct hashes (once a part is dense the union has more), and
 * registers are maxima. For the DDSketch: bins are integer counts; when the bins span more
 * than SL_DDS_MAX_BINS, every count below (top index - MAX_BINS + 1) moves to that index,
 * which is the same whether it happens in a part or in the whole; the sum is kept in fixed
 * point so that additions are associative.
 *
 * Serialized layouts, version 1 (after the 3 header bytes version, type, representation):
 *
 *   HLL repr 0 (sparse): varint n (0..SL_HLL_SPARSE_MAX), then if n > 0 the smallest hash
 *       as 8 bytes little-endian, then the n-1 gaps (hash[i] - hash[i-1] - 1) Golomb-Rice
 *       coded with k = 63 - floor(log2 n) low bits (unary quotient as 1-bits closed by a
 *       0-bit, then k remainder bits), bits packed LSB-first, zero-padded to a byte.
 *       Hashes are uniform, so a gap costs about 65.5 - log2 n bits: 12 bytes for a
 *       sketch of one value, ~7 bytes per value around a thousand.
 *   HLL repr 1 (dense): 16384 registers of 6 bits packed LSB-first (12288 bytes: register
 *       i is bits 6i..6i+5 of the body read as one little-endian number); each
 *       register is 0..51 (rank of the 50 hash bits after the 14 index bits).
 *   DDS repr 0: empty sketch, nothing follows.
 *   DDS repr 3 (single value, the most common rollup row): the value as an IEEE double
 *       little-endian; its bin, min, max and sum follow from it.
 *   DDS repr 1 (sparse bins) / 2 (dense bins), for two values or more: varint zero count,
 *       varint sum (unsigned 128-bit fixed point with 32 fraction bits; all ones =
 *       overflowed), min and max as IEEE doubles little-endian, then the bins. Sparse: varint
 * number of non-empty bins, then the first (zigzag varint index, varint count) and for the others
 * (varint index gap - 1, varint count). Dense: varint number of bins L, zigzag varint first index,
 * L varint counts (first and last non-zero). The encoder picks dense only when it is strictly
 * smaller; the decoder checks that choice, so every accepted input re-serializes to the same bytes.
 *
 * Varints are LEB128 and must be minimal. */
#include "sketch.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* ---- shared helpers -------------------------------------------------------------- */

typedef unsigned __int128 u128;
#define U128_MAX (~(u128)0)

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r = 0;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static u128 sat_add128(u128 a, u128 b)
{
    u128 r = a + b;
    return r < a ? U128_MAX : r;
}

static size_t varint_len(uint64_t v)
{
    /* 1 + floor(log2(v) / 7) bytes; v | 1 keeps clz defined */
    return (size_t)(((63 - __builtin_clzll(v | 1)) * 9 + 73) / 64);
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static size_t varint_len128(u128 v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put128(uint8_t *p, u128 v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* A bounded reader over outside bytes; every read checks the remaining length. */
typedef struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    const char *what; /* "distinct sketch" or "quantiles sketch", for messages */
    sl_err *err;
} rd;

static int rd_fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* SL_ECODEC with "<sketch>: <message> (at byte <off> of <len>)". */
static int rd_fail(rd *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sl_err_set(r->err, SL_ECODEC, "%s: %s (at byte %zu of %zu)", r->what, msg, r->off,
                      r->len);
}

/* Minimal LEB128 of at most max_bits bits. */
static int rd_varint(rd *r, unsigned max_bits, u128 *out, const char *field)
{
    if (r->off < r->len && r->p[r->off] < 0x80) {
        *out = r->p[r->off++];
        return 0;
    }
    u128 v = 0;
    unsigned shift = 0;
    size_t start = r->off;
    for (;;) {
        if (r->off >= r->len) {
            r->off = start;
            return rd_fail(r, "truncated varint for the %s", field);
        }
        uint8_t b = r->p[r->off++];
        u128 part = (u128)(b & 0x7f);
        if (shift >= max_bits || (shift > 0 && (part >> (max_bits - shift)) != 0)) {
            r->off = start;
            return rd_fail(r, "varint for the %s overflows %u bits", field, max_bits);
        }
        v |= part << shift;
        if ((b & 0x80) == 0) {
            if (b == 0 && shift > 0) {
                r->off = start;
                return rd_fail(r, "non-minimal varint for the %s", field);
            }
            break;
        }
        shift += 7;
    }
    *out = v;
    return 0;
}

/* Minimal LEB128 of at most 64 bits (the common case, without 128-bit arithmetic). */
static int rd_u64(rd *r, uint64_t *out, const char *field)
{
    size_t off = r->off;
    if (off < r->len && r->p[off] < 0x80) {
        *out = r->p[off];
        r->off = off + 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (off >= r->len) {
            return rd_fail(r, "truncated varint for the %s", field);
        }
        uint8_t b = r->p[off++];
        uint64_t part = b & 0x7f;
        if (shift == 63 ? part > 1 : shift > 63) {
            return rd_fail(r, "varint for the %s overflows 64 bits", field);
        }
        v |= part << shift;
        if ((b & 0x80) == 0) {
            if (b == 0 && shift > 0) {
                return rd_fail(r, "non-minimal varint for the %s", field);
            }
            break;
        }
    }
    *out = v;
    r->off = off;
    return 0;
}

static int rd_fixed64(rd *r, uint64_t *out, const char *field)
{
    if (r->len - r->off < 8) {
        return rd_fail(r, "truncated 8-byte %s", field);
    }
    *out = get_le64(r->p + r->off);
    r->off += 8;
    return 0;
}

/* Checks the 3 header bytes; returns the representation byte or SL_ECODEC. */
static int rd_header(rd *r, int type)
{
    if (r->len < 3) {
        return sl_err_set(r->err, SL_ECODEC, "%s: truncated header (%zu of 3 bytes)", r->what,
                          r->len);
    }
    if (r->p[0] != SL_SKETCH_VERSION) {
        return sl_err_set(r->err, SL_ECODEC,
                          "%s: unknown format version %u (this build reads version %d)", r->what,
                          r->p[0], SL_SKETCH_VERSION);
    }
    if (r->p[1] != type) {
        return sl_err_set(r->err, SL_ECODEC, "%s: type byte %u is not a %s (type %d)", r->what,
                          r->p[1], r->what, type);
    }
    r->off = 3;
    return r->p[2];
}

int sl_sketch_type(const void *data, size_t len, sl_err *err)
{
    const uint8_t *p = data;
    if (len < 3) {
        return sl_err_set(err, SL_ECODEC, "sketch: truncated header (%zu of 3 bytes)", len);
    }
    if (p[0] != SL_SKETCH_VERSION) {
        return sl_err_set(err, SL_ECODEC,
                          "sketch: unknown format version %u (this build reads version %d)", p[0],
                          SL_SKETCH_VERSION);
    }
    if (p[1] != SL_SKETCH_HLL && p[1] != SL_SKETCH_DDS) {
        return sl_err_set(err, SL_ECODEC, "sketch: unknown sketch type %u", p[1]);
    }
    return p[1];
}

/* ---- HyperLogLog ----------------------------------------------------------------- */

#define HLL_Q (64 - SL_HLL_P)    /* hash bits after the register index: 50 */
#define HLL_MAX_RANK (HLL_Q + 1) /* 51: all 50 bits zero */
#define HLL_DENSE_BODY (SL_HLL_DENSE_BYTES - 3)
enum { HLL_SPARSE = 0, HLL_DENSE = 1 };

struct sl_hll {
    uint8_t *regs;    /* SL_HLL_REGISTERS ranks when dense, NULL while sparse */
    uint64_t *hashes; /* sparse: strictly increasing hashes */
    uint32_t n;       /* hashes in use */
    uint32_t cap;
};

sl_hll *sl_hll_new(void)
{
    return sl_calloc(1, sizeof(sl_hll));
}

void sl_hll_free(sl_hll *h)
{
    if (h == NULL) {
        return;
    }
    free(h->regs);
    free(h->hashes);
    free(h);
}

void sl_hll_clear(sl_hll *h)
{
    free(h->regs);
    h->regs = NULL;
    h->n = 0;
}

bool sl_hll_is_sparse(const sl_hll *h)
{
    return h->regs == NULL;
}

static inline void dense_add(uint8_t *regs, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> HLL_Q);
    uint64_t w = hash << SL_HLL_P;
    uint8_t rank = w == 0 ? HLL_MAX_RANK : (uint8_t)(__builtin_clzll(w) + 1);
    if (regs[idx] < rank) {
        regs[idx] = rank;
    }
}

/* Turns a sparse sketch dense; the hash list is freed (a dense sketch never needs it). */
static void densify(sl_hll *h)
{
    h->regs = sl_calloc(SL_HLL_REGISTERS, 1);
    for (uint32_t i = 0; i < h->n; i++) {
        dense_add(h->regs, h->hashes[i]);
    }
    free(h->hashes);
    h->hashes = NULL;
    h->n = 0;
    h->cap = 0;
}

static void hashes_reserve(sl_hll *h, uint32_t need)
{
    if (need <= h->cap) {
        return;
    }
    uint32_t cap = h->cap == 0 ? 4 : h->cap;
    while (cap < need) {
        cap *= 2;
    }
    h->hashes = sl_realloc(h->hashes, (size_t)cap * sizeof(uint64_t));
    h->cap = cap;
}

/* First position whose hash is >= x (branch-free halving: the loads are unpredictable). */
static uint32_t lower_bound(const uint64_t *a, uint32_t n, uint64_t x)
{
    if (n == 0) {
        return 0;
    }
    const uint64_t *base = a;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base[half] < x ? base + half : base;
        n -= half;
    }
    return (uint32_t)(base - a) + (*base < x);
}

void sl_hll_add_hash(sl_hll *h, uint64_t hash)
{
    if (h->regs != NULL) {
        dense_add(h->regs, hash);
        return;
    }
    uint32_t i = lower_bound(h->hashes, h->n, hash);
    if (i < h->n && h->hashes[i] == hash) {
        return;
    }
    hashes_reserve(h, h->n + 1);
    memmove(h->hashes + i + 1, h->hashes + i, (size_t)(h->n - i) * sizeof(uint64_t));
    h->hashes[i] = hash;
    h->n++;
    if (h->n > SL_HLL_SPARSE_MAX) {
        densify(h);
    }
}

void sl_hll_add(sl_hll *h, const void *data, size_t len)
{
    sl_hll_add_hash(h, sl_hash64(data, len));
}

/* Adds m strictly increasing hashes (not aliasing h's list) to h. */
static void add_sorted(sl_hll *h, const uint64_t *src, uint32_t m)
{
    if (h->regs != NULL) {
        for (uint32_t j = 0; j < m; j++) {
            dense_add(h->regs, src[j]);
        }
        return;
    }
    if (m <= 8) {
        for (uint32_t j = 0; j < m; j++) {
            sl_hll_add_hash(h, src[j]);
        }
        return;
    }
    /* Merge from the back in place, then drop duplicates in one forward pass. */
    hashes_reserve(h, h->n + m);
    uint64_t *a = h->hashes;
    int64_t i = (int64_t)h->n - 1;
    int64_t j = (int64_t)m - 1;
    int64_t k = (int64_t)h->n + (int64_t)m - 1;
    while (j >= 0) {
        if (i >= 0 && a[i] > src[j]) {
            a[k--] = a[i--];
        } else {
            a[k--] = src[j--];
        }
    }
    uint32_t total = h->n + m;
    uint32_t w = 0;
    for (uint32_t r = 0; r < total; r++) {
        if (w == 0 || a[w - 1] != a[r]) {
            a[w++] = a[r];
        }
    }
    h->n = w;
    if (h->n > SL_HLL_SPARSE_MAX) {
        densify(h);
    }
}

/* d[i] = max(d[i], s[i]) over all registers; written to vectorize. */
static void regs_max(uint8_t *restrict d, const uint8_t *restrict s)
{
    for (uint32_t i = 0; i < SL_HLL_REGISTERS; i++) {
        d[i] = d[i] > s[i] ? d[i] : s[i];
    }
}

void sl_hll_merge(sl_hll *dst, const sl_hll *src)
{
    if (dst == src) {
        return;
    }
    if (src->regs == NULL) {
        add_sorted(dst, src->hashes, src->n);
        return;
    }
    if (dst->regs == NULL) {
        densify(dst);
    }
    regs_max(dst->regs, src->regs);
}

/* Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), the
 * improved raw estimator: unbiased over the whole range without empirical bias tables. */
static double ertl_sigma(double x)
{
    if (x == 1.0) {
        return INFINITY;
    }
    double y = 1.0;
    double z = x;
    double zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

static double ertl_tau(double x)
{
    if (x == 0.0 || x == 1.0) {
        return 0.0;
    }
    double y = 1.0;
    double z = 1.0 - x;
    double zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != zp);
    return z / 3.0;
}

double sl_hll_estimate(const sl_hll *h)
{
    if (h->regs == NULL) {
        return (double)h->n;
    }
    /* four histograms: neighbouring registers often hold the same rank, and one
     * counter would make every increment wait for the previous one */
    uint32_t c4[4][HLL_MAX_RANK + 1] = {{0}};
    for (uint32_t i = 0; i < SL_HLL_REGISTERS; i += 4) {
        c4[0][h->regs[i]]++;
        c4[1][h->regs[i + 1]]++;
        c4[2][h->regs[i + 2]]++;
        c4[3][h->regs[i + 3]]++;
    }
    uint32_t c[HLL_MAX_RANK + 1];
    for (int k = 0; k <= HLL_MAX_RANK; k++) {
        c[k] = c4[0][k] + c4[1][k] + c4[2][k] + c4[3][k];
    }
    const double m = SL_HLL_REGISTERS;
    double z = m * ertl_tau((m - c[HLL_MAX_RANK]) / m);
    for (int k = HLL_Q; k >= 1; k--) {
        z = 0.5 * (z + c[k]);
    }
    z += m * ertl_sigma(c[0] / m);
    /* z is 0 only when every register is saturated (a crafted sketch): answer the
     * largest count 64-bit hashes can tell apart rather than infinity */
    double est = (0.5 / M_LN2) * m * m / z;
    return est < 0x1p64 ? est : 0x1p64;
}

/* Golomb-Rice parameter for a list of n >= 2 uniform 64-bit hashes: the mean gap is
 * 2^64 / n, and k = 63 - floor(log2 n) puts it between 2^k and 2^(k+1). */
static unsigned rice_k(uint32_t n)
{
    return 63u - (31u - (unsigned)__builtin_clz(n));
}

typedef struct bitw {
    uint8_t *p;
    uint64_t acc;
    unsigned nacc;
} bitw;

/* Appends the low n bits of v (n <= 56, v < 2^n). */
static void bitw_put(bitw *w, uint64_t v, unsigned n)
{
    w->acc |= v << w->nacc;
    w->nacc += n;
    while (w->nacc >= 8) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->nacc -= 8;
    }
}

static void bitw_put_wide(bitw *w, uint64_t v, unsigned n)
{
    if (n > 32) {
        bitw_put(w, v & 0xffffffffu, 32);
        v >>= 32;
        n -= 32;
    }
    bitw_put(w, v, n);
}

static void bitw_flush(bitw *w)
{
    if (w->nacc > 0) {
        *w->p++ = (uint8_t)w->acc;
        w->acc = 0;
        w->nacc = 0;
    }
}

static size_t hll_sparse_size(const sl_hll *h)
{
    size_t size = 3 + varint_len(h->n);
    if (h->n == 0) {
        return size;
    }
    size += 8;
    if (h->n >= 2) {
        unsigned k = rice_k(h->n);
        uint64_t bits = 0;
        for (uint32_t i = 1; i < h->n; i++) {
            uint64_t d = h->hashes[i] - h->hashes[i - 1] - 1;
            bits += (d >> k) + 1 + k;
        }
        size += (size_t)((bits + 7) / 8);
    }
    return size;
}

size_t sl_hll_serialize(const sl_hll *h, sl_buf *out)
{
    size_t size = h->regs != NULL ? SL_HLL_DENSE_BYTES : hll_sparse_size(h);
    sl_buf_reserve(out, size);
    uint8_t *p = (uint8_t *)out->data + out->len;
    uint8_t *start = p;
    *p++ = SL_SKETCH_VERSION;
    *p++ = SL_SKETCH_HLL;
    if (h->regs != NULL) {
        *p++ = HLL_DENSE;
        const uint8_t *r = h->regs;
        for (uint32_t i = 0; i < SL_HLL_REGISTERS; i += 8, p += 6) {
            const uint8_t *q = r + i; /* unrolled: compilers at -O2 keep the loops */
            uint64_t w = (uint64_t)q[0] | (uint64_t)q[1] << 6 | (uint64_t)q[2] << 12 |
                         (uint64_t)q[3] << 18 | (uint64_t)q[4] << 24 | (uint64_t)q[5] << 30 |
                         (uint64_t)q[6] << 36 | (uint64_t)q[7] << 42;
            p[0] = (uint8_t)w;
            p[1] = (uint8_t)(w >> 8);
            p[2] = (uint8_t)(w >> 16);
            p[3] = (uint8_t)(w >> 24);
            p[4] = (uint8_t)(w >> 32);
            p[5] = (uint8_t)(w >> 40);
        }
    } else {
        *p++ = HLL_SPARSE;
        p = varint_put(p, h->n);
        if (h->n > 0) {
            put_le64(p, h->hashes[0]);
            p += 8;
        }
        if (h->n >= 2) {
            unsigned k = rice_k(h->n);
            bitw w = {p, 0, 0};
            for (uint32_t i = 1; i < h->n; i++) {
                uint64_t d = h->hashes[i] - h->hashes[i - 1] - 1;
                uint64_t q = d >> k;
                while (q >= 56) {
                    bitw_put(&w, (UINT64_C(1) << 56) - 1, 56);
                    q -= 56;
                }
                bitw_put(&w, (UINT64_C(1) << q) - 1, (unsigned)q + 1); /* q ones, a zero */
                bitw_put_wide(&w, d & ((UINT64_C(1) << k) - 1), k);
            }
            bitw_flush(&w);
            p = w.p;
        }
    }
    SL_ASSERT((size_t)(p - start) == size);
    out->len += size;
    return size;
}

/* Reads bits LSB-first through a 64-bit accumulator holding nacc unread bits. */
typedef struct bitr {
    const uint8_t *p; /* next byte to load */
    const uint8_t *end;
    uint64_t acc;
    unsigned nacc;
} bitr;

static inline void bitr_refill(bitr *r)
{
    if (r->end - r->p >= 8) {
        r->acc |= get_le64(r->p) << r->nacc;
        r->p += (63 - r->nacc) >> 3;
        r->nacc |= 56;
        return;
    }
    while (r->nacc <= 56 && r->p < r->end) {
        r->acc |= (uint64_t)*r->p++ << r->nacc;
        r->nacc += 8;
    }
}

/* n <= 56 bits; false past the end. */
static inline bool bitr_get(bitr *r, unsigned n, uint64_t *v)
{
    if (r->nacc < n) {
        bitr_refill(r);
        if (r->nacc < n) {
            return false;
        }
    }
    *v = r->acc & ((UINT64_C(1) << n) - 1);
    r->acc = n == 64 ? 0 : r->acc >> n;
    r->nacc -= n;
    return true;
}

/* Counts 1-bits up to the closing 0-bit; 0 on success, 1 past the end, 2 over limit. */
static inline int bitr_unary(bitr *r, uint64_t limit, uint64_t *q)
{
    uint64_t ones = 0;
    for (;;) {
        if (r->nacc == 0) {
            bitr_refill(r);
            if (r->nacc == 0) {
                return 1;
            }
        }
        /* bits above nacc are 0 or the bits that follow in the stream: a run reaching
         * nacc only says that all the valid bits are ones */
        uint64_t inv = ~r->acc;
        unsigned run = inv == 0 ? 64 : (unsigned)__builtin_ctzll(inv);
        if (run < r->nacc) {
            ones += run;
            r->acc = run + 1 == 64 ? 0 : r->acc >> (run + 1);
            r->nacc -= run + 1;
            break;
        }
        ones += r->nacc;
        r->acc = 0;
        r->nacc = 0;
        if (ones > limit) {
            return 2;
        }
    }
    if (ones > limit) {
        return 2;
    }
    *q = ones;
    return 0;
}

/* Decodes a sparse body (after the header) into out[SL_HLL_SPARSE_MAX]. */
static int hll_decode_sparse(rd *r, uint64_t *out, uint32_t *nout)
{
    uint64_t n = 0;
    int rc = rd_u64(r, &n, "hash count");
    if (rc < 0) {
        return rc;
    }
    if (n > SL_HLL_SPARSE_MAX) {
        return sl_err_set(r->err, SL_ECODEC,
                          "%s: sparse list of %llu hashes exceeds the sparse limit %d", r->what,
                          (unsigned long long)n, SL_HLL_SPARSE_MAX);
    }
    if (n > 0) {
        if ((rc = rd_fixed64(r, &out[0], "first hash")) < 0) {
            return rc;
        }
    }
    if (n >= 2) {
        unsigned k = rice_k((uint32_t)n);
        const uint8_t *body = r->p + r->off;
        bitr b = {body, r->p + r->len, 0, 0};
        uint64_t qlimit = (UINT64_C(1) << (64 - k)) - 1; /* larger overflows 64 bits */
        for (uint32_t i = 1; i < n; i++) {
            uint64_t q = 0;
            uint64_t lo = 0;
            uint64_t hi = 0;
            int u = bitr_unary(&b, qlimit, &q);
            bool ok = u == 0 && (k > 32 ? bitr_get(&b, 32, &lo) && bitr_get(&b, k - 32, &hi)
                                        : bitr_get(&b, k, &lo));
            if (!ok) {
                r->off = (size_t)(b.p - r->p) - b.nacc / 8;
                return u == 2 ? rd_fail(r, "gap %u overflows 64 bits", i)
                              : rd_fail(r, "truncated gap list at hash %u of %llu", i,
                                        (unsigned long long)n);
            }
            uint64_t d = q << k | hi << 32 | lo;
            if (d >= UINT64_MAX - out[i - 1]) {
                r->off = (size_t)(b.p - r->p) - b.nacc / 8;
                return rd_fail(r, "hash %u runs past 2^64", i);
            }
            out[i] = out[i - 1] + d + 1;
        }
        /* what is left in the accumulator: the padding of the last byte (must be zero),
         * then whole bytes that are trailing garbage */
        r->off = (size_t)(b.p - r->p) - b.nacc / 8;
        if (b.nacc % 8 != 0 && (b.acc & ((UINT64_C(1) << (b.nacc % 8)) - 1)) != 0) {
            r->off--;
            return rd_fail(r, "non-zero padding bits after the gap list");
        }
    }
    if (r->off != r->len) {
        return rd_fail(r, "trailing bytes after the hash list");
    }
    *nout = (uint32_t)n;
    return 0;
}

/* Unpacks and checks a dense body into regs[SL_HLL_REGISTERS]. */
static int hll_unpack_dense(rd *r, uint8_t *regs)
{
    if (r->len - r->off != HLL_DENSE_BODY) {
        return sl_err_set(r->err, SL_ECODEC,
                          "%s: dense body is %zu bytes, expected %d (16384 6-bit registers)",
                          r->what, r->len - r->off, HLL_DENSE_BODY);
    }
    /* 8 registers in every 6 bytes */
    const uint8_t *p = r->p + r->off;
    for (uint32_t i = 0; i < SL_HLL_REGISTERS; i += 8, p += 6) {
        uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40;
        uint8_t *q = regs + i;
        q[0] = (uint8_t)(w & 63);
        q[1] = (uint8_t)(w >> 6 & 63);
        q[2] = (uint8_t)(w >> 12 & 63);
        q[3] = (uint8_t)(w >> 18 & 63);
        q[4] = (uint8_t)(w >> 24 & 63);
        q[5] = (uint8_t)(w >> 30 & 63);
        q[6] = (uint8_t)(w >> 36 & 63);
        q[7] = (uint8_t)(w >> 42 & 63);
    }
    uint8_t top = 0;
    for (uint32_t i = 0; i < SL_HLL_REGISTERS; i++) {
        top = top > regs[i] ? top : regs[i];
    }
    if (top > HLL_MAX_RANK) {
        for (uint32_t i = 0; i < SL_HLL_REGISTERS; i++) {
            if (regs[i] > HLL_MAX_RANK) {
                return sl_err_set(r->err, SL_ECODEC,
                                  "%s: register %u holds rank %u, the maximum is %d", r->what, i,
                                  regs[i], HLL_MAX_RANK);
            }
        }
    }
    return 0;
}

int sl_hll_merge_bytes(sl_hll *dst, const void *data, size_t len, sl_err *err)
{
    rd r = {data, len, 0, "distinct sketch", err};
    int repr = rd_header(&r, SL_SKETCH_HLL);
    if (repr < 0) {
        return repr;
    }
    if (repr == HLL_SPARSE) {
        uint64_t tmp[SL_HLL_SPARSE_MAX];
        uint32_t n = 0;
        int rc = hll_decode_sparse(&r, tmp, &n);
        if (rc < 0) {
            return rc;
        }
        add_sorted(dst, tmp, n);
        return 0;
    }
    if (repr != HLL_DENSE) {
        return sl_err_set(err, SL_ECODEC, "distinct sketch: unknown representation %d", repr);
    }
    uint8_t regs[SL_HLL_REGISTERS];
    int rc = hll_unpack_dense(&r, regs);
    if (rc < 0) {
        return rc;
    }
    if (dst->regs == NULL) {
        densify(dst);
    }
    regs_max(dst->regs, regs);
    return 0;
}

int sl_hll_deserialize(const void *data, size_t len, sl_hll **out, sl_err *err)
{
    sl_hll *h = sl_hll_new();
    int rc = sl_hll_merge_bytes(h, data, len, err);
    if (rc < 0) {
        sl_hll_free(h);
        h = NULL;
    }
    *out = h;
    return rc;
}

/* ---- DDSketch -------------------------------------------------------------------- */

/* gamma = (1 + alpha) / (1 - alpha); a positive value v goes to bin ceil(ln v / ln gamma),
 * which covers (gamma^(i-1), gamma^i], and bin i reads as 2 gamma^i / (gamma + 1): within
 * alpha of every value in it. The constants are literals so every build maps alike. */
#define DDS_GAMMA 1.0100502512562815
#define DDS_LN_GAMMA 0.010000083334583356
#define DDS_INV_LN_GAMMA 99.99916666111103
/* Indexes of all finite positive doubles (down to subnormals) lie within +-74444. */
#define DDS_MAX_ABS_INDEX 75000
#define DDS_SUM_FRAC_BITS 32
enum { DDS_EMPTY = 0, DDS_SPARSE = 1, DDS_DENSE = 2, DDS_SINGLE = 3 };

struct sl_dds {
    uint64_t count; /* all values, zeros included (saturating) */
    uint64_t zeros;
    u128 sum; /* fixed point, DDS_SUM_FRAC_BITS fraction bits, saturating at U128_MAX */
    double min;
    double max;
    int32_t lo;     /* index of bins[0] */
    uint32_t nbins; /* bins in use; when > 0, bins[0] and bins[nbins - 1] are non-zero */
    uint32_t cap;
    uint64_t *bins;
};

sl_dds *sl_dds_new(void)
{
    sl_dds *s = sl_calloc(1, sizeof(sl_dds));
    sl_dds_clear(s);
    return s;
}

void sl_dds_free(sl_dds *s)
{
    if (s == NULL) {
        return;
    }
    free(s->bins);
    free(s);
}

void sl_dds_clear(sl_dds *s)
{
    s->count = 0;
    s->zeros = 0;
    s->sum = 0;
    s->min = NAN;
    s->max = NAN;
    s->lo = 0;
    s->nbins = 0;
}

static int32_t dds_index(double v)
{
    return (int32_t)ceil(log(v) * DDS_INV_LN_GAMMA);
}

static double dds_value(int32_t i)
{
    return 2.0 * exp((double)i * DDS_LN_GAMMA) / (DDS_GAMMA + 1.0);
}

static void bins_reserve(sl_dds *s, uint32_t need)
{
    if (need <= s->cap) {
        return;
    }
    uint32_t cap = s->cap == 0 ? 8 : s->cap;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > SL_DDS_MAX_BINS) {
        cap = SL_DDS_MAX_BINS;
    }
    s->bins = sl_realloc(s->bins, (size_t)cap * sizeof(uint64_t));
    s->cap = cap;
}

/* Makes the bins cover [ilo, ihi] (indexes of non-empty bins about to receive counts). If
 * that spans more than SL_DDS_MAX_BINS, the range becomes [top - MAX_BINS + 1, top] and the
 * counts below it move into its lowest bin; callers clamp new indexes to s->lo. */
static void bins_cover(sl_dds *s, int64_t ilo, int64_t ihi)
{
    int64_t lo = s->lo;
    int64_t hi = lo + (int64_t)s->nbins - 1;
    int64_t nlo = ilo;
    int64_t nhi = ihi;
    if (s->nbins > 0) {
        if (ilo >= lo && ihi <= hi) {
            return;
        }
        nlo = lo < ilo ? lo : ilo;
        nhi = hi > ihi ? hi : ihi;
    }
    if (nhi - nlo + 1 > SL_DDS_MAX_BINS) {
        nlo = nhi - SL_DDS_MAX_BINS + 1;
    }
    uint32_t len = (uint32_t)(nhi - nlo + 1);
    bins_reserve(s, len);
    uint64_t *b = s->bins;
    uint32_t n = s->nbins;
    if (n == 0) {
        memset(b, 0, (size_t)len * sizeof(uint64_t));
    } else if (nlo > lo) {
        /* collapse: bins below nlo fold into nlo */
        uint64_t carry = 0;
        uint32_t drop = (uint64_t)(nlo - lo) < n ? (uint32_t)(nlo - lo) : n;
        for (uint32_t i = 0; i < drop; i++) {
            carry = sat_add(carry, b[i]);
        }
        memmove(b, b + drop, (size_t)(n - drop) * sizeof(uint64_t));
        memset(b + (n - drop), 0, (size_t)(len - (n - drop)) * sizeof(uint64_t));
        b[0] = sat_add(b[0], carry);
    } else {
        uint32_t shift = (uint32_t)(lo - nlo);
        memmove(b + shift, b, (size_t)n * sizeof(uint64_t));
        memset(b, 0, (size_t)shift * sizeof(uint64_t));
        memset(b + shift + n, 0, (size_t)(len - shift - n) * sizeof(uint64_t));
    }
    s->lo = (int32_t)nlo;
    s->nbins = len;
}

static void bins_add(sl_dds *s, int32_t idx, uint64_t c)
{
    if (idx < s->lo) {
        idx = s->lo;
    }
    uint64_t *slot = &s->bins[idx - s->lo];
    *slot = sat_add(*slot, c);
}

static u128 dds_fixed(double v)
{
    double f = ldexp(v, DDS_SUM_FRAC_BITS);
    if (!(f < 0x1p128)) {
        return U128_MAX;
    }
    f = rint(f);
    return f < 0x1p64 ? (u128)(uint64_t)f : (u128)f;
}

static void dds_minmax(sl_dds *s, double lo, double hi)
{
    if (isnan(s->min) || lo < s->min) {
        s->min = lo;
    }
    if (isnan(s->max) || hi > s->max) {
        s->max = hi;
    }
}

/* v is finite and >= 0. */
static void dds_add_value(sl_dds *s, double v)
{
    if (v == 0.0) {
        v = 0.0; /* -0.0 too */
        s->zeros = sat_add(s->zeros, 1);
    } else {
        int32_t idx = dds_index(v);
        bins_cover(s, idx, idx);
        bins_add(s, idx, 1);
    }
    s->count = sat_add(s->count, 1);
    s->sum = sat_add128(s->sum, dds_fixed(v));
    dds_minmax(s, v, v);
}

int sl_dds_add(sl_dds *s, double v, sl_err *err)
{
    if (!(v >= 0.0) || isinf(v)) {
        return sl_err_set(err, SL_EINVAL,
                          "quantiles sketch: value %g rejected (must be finite and >= 0)", v);
    }
    dds_add_value(s, v);
    return 0;
}

void sl_dds_merge(sl_dds *dst, const sl_dds *src)
{
    if (dst == src || src->count == 0) {
        return;
    }
    if (src->nbins > 0) {
        bins_cover(dst, src->lo, (int64_t)src->lo + src->nbins - 1);
        for (uint32_t i = 0; i < src->nbins; i++) {
            if (src->bins[i] != 0) {
                bins_add(dst, src->lo + (int32_t)i, src->bins[i]);
            }
        }
    }
    dst->count = sat_add(dst->count, src->count);
    dst->zeros = sat_add(dst->zeros, src->zeros);
    dst->sum = sat_add128(dst->sum, src->sum);
    dds_minmax(dst, src->min, src->max);
}

double sl_dds_quantile(const sl_dds *s, double q)
{
    if (s->count == 0 || !(q >= 0.0 && q <= 1.0)) {
        return NAN;
    }
    /* rank of the answer, 0-based; past 2^53 values the double product is inexact, so
     * clamp it rather than trust the conversion */
    uint64_t last = s->count - 1;
    double r = floor(q * (double)last);
    uint64_t rank = q >= 1.0 || r >= (double)last ? last : (uint64_t)r;
    /* the first and the last value are known exactly */
    if (rank == 0) {
        return s->min;
    }
    if (rank == last) {
        return s->max;
    }
    double v = s->max;
    if (rank < s->zeros) {
        v = 0.0;
    } else {
        uint64_t cum = s->zeros;
        for (uint32_t i = 0; i < s->nbins; i++) {
            cum = sat_add(cum, s->bins[i]);
            if (cum > rank) {
                v = dds_value(s->lo + (int32_t)i);
                break;
            }
        }
    }
    if (v < s->min) {
        v = s->min;
    }
    if (v > s->max) {
        v = s->max;
    }
    return v;
}

uint64_t sl_dds_count(const sl_dds *s)
{
    return s->count;
}

double sl_dds_sum(const sl_dds *s)
{
    if (s->sum == U128_MAX) {
        return INFINITY;
    }
    return ldexp((double)s->sum, -DDS_SUM_FRAC_BITS);
}

double sl_dds_min(const sl_dds *s)
{
    return s->min;
}

double sl_dds_max(const sl_dds *s)
{
    return s->max;
}

static uint64_t double_bits(double d)
{
    uint64_t u = 0;
    memcpy(&u, &d, sizeof(u));
    return u;
}

/* Sizes of the two bin encodings of s (which has nbins > 0). */
static void dds_bins_sizes(const sl_dds *s, size_t *sparse, size_t *dense)
{
    size_t sp = 0;
    size_t de = varint_len(s->nbins) + varint_len(zigzag(s->lo));
    uint32_t nonempty = 0;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < s->nbins; i++) {
        de += varint_len(s->bins[i]);
        if (s->bins[i] == 0) {
            continue;
        }
        sp += varint_len(s->bins[i]);
        sp += nonempty == 0 ? varint_len(zigzag(s->lo)) : varint_len(i - prev - 1);
        prev = i;
        nonempty++;
    }
    *sparse = sp + varint_len(nonempty);
    *dense = de;
}

size_t sl_dds_serialize(const sl_dds *s, sl_buf *out)
{
    if (s->count == 0) {
        uint8_t hdr[3] = {SL_SKETCH_VERSION, SL_SKETCH_DDS, DDS_EMPTY};
        sl_buf_append(out, hdr, 3);
        return 3;
    }
    if (s->count == 1) {
        /* the most common row: one value, which gives min, max, sum and its bin */
        uint8_t one[11] = {SL_SKETCH_VERSION, SL_SKETCH_DDS, DDS_SINGLE};
        put_le64(one + 3, double_bits(s->min));
        sl_buf_append(out, one, sizeof(one));
        return sizeof(one);
    }
    size_t sparse = 1;
    size_t dense = 2;
    if (s->nbins > 0) {
        dds_bins_sizes(s, &sparse, &dense);
    }
    bool use_dense = dense < sparse;
    size_t size =
        3 + varint_len(s->zeros) + varint_len128(s->sum) + 16 + (use_dense ? dense : sparse);
    sl_buf_reserve(out, size);
    uint8_t *p = (uint8_t *)out->data + out->len;
    uint8_t *start = p;
    *p++ = SL_SKETCH_VERSION;
    *p++ = SL_SKETCH_DDS;
    *p++ = use_dense ? DDS_DENSE : DDS_SPARSE;
    p = varint_put(p, s->zeros);
    p = varint_put128(p, s->sum);
    put_le64(p, double_bits(s->min));
    put_le64(p + 8, double_bits(s->max));
    p += 16;
    if (use_dense) {
        p = varint_put(p, s->nbins);
        p = varint_put(p, zigzag(s->lo));
        for (uint32_t i = 0; i < s->nbins; i++) {
            p = varint_put(p, s->bins[i]);
        }
    } else {
        uint32_t nonempty = 0;
        for (uint32_t i = 0; i < s->nbins; i++) {
            nonempty += s->bins[i] != 0;
        }
        p = varint_put(p, nonempty);
        uint32_t prev = 0;
        bool first = true;
        for (uint32_t i = 0; i < s->nbins; i++) {
            if (s->bins[i] == 0) {
                continue;
            }
            p = varint_put(p, first ? zigzag(s->lo) : (uint64_t)(i - prev - 1));
            p = varint_put(p, s->bins[i]);
            prev = i;
            first = false;
        }
    }
    SL_ASSERT((size_t)(p - start) == size);
    out->len += size;
    return size;
}

/* A validated serialized DDSketch: the header fields and where its bins start. */
typedef struct dds_view {
    int repr;
    uint64_t zeros;
    uint64_t count;
    u128 sum;
    double min;
    double max;
    int64_t lo; /* lowest and highest non-empty bin, when nbins > 0 */
    int64_t hi;
    uint64_t nbins; /* sparse: non-empty bins; dense: bins */
    size_t bins_off;
} dds_view;

static int dds_parse(rd *r, dds_view *v)
{
    int rc;
    v->zeros = 0;
    v->count = 0;
    v->sum = 0;
    v->lo = 0;
    v->hi = 0;
    v->nbins = 0;
    v->repr = rd_header(r, SL_SKETCH_DDS);
    if (v->repr < 0) {
        return v->repr;
    }
    if (v->repr == DDS_EMPTY) {
        if (r->len != 3) {
            return rd_fail(r, "trailing bytes after an empty sketch");
        }
        return 0;
    }
    if (v->repr == DDS_SINGLE) {
        uint64_t bits = 0;
        if ((rc = rd_fixed64(r, &bits, "value")) < 0) {
            return rc;
        }
        if (r->off != r->len) {
            return rd_fail(r, "trailing bytes after a single value");
        }
        memcpy(&v->min, &bits, sizeof(double));
        if (!isfinite(v->min) || signbit(v->min)) {
            return sl_err_set(r->err, SL_ECODEC,
                              "%s: bad single value %g: must be finite and >= +0", r->what, v->min);
        }
        v->max = v->min;
        v->count = 1;
        return 0;
    }
    if (v->repr != DDS_SPARSE && v->repr != DDS_DENSE) {
        return sl_err_set(r->err, SL_ECODEC, "%s: unknown representation %d", r->what, v->repr);
    }
    uint64_t minb = 0;
    uint64_t maxb = 0;
    if ((rc = rd_u64(r, &v->zeros, "zero count")) < 0 ||
        (rc = rd_varint(r, 128, &v->sum, "sum")) < 0 || (rc = rd_fixed64(r, &minb, "min")) < 0 ||
        (rc = rd_fixed64(r, &maxb, "max")) < 0 || (rc = rd_u64(r, &v->nbins, "bin count")) < 0) {
        return rc;
    }
    memcpy(&v->min, &minb, sizeof(double));
    memcpy(&v->max, &maxb, sizeof(double));
    if (!isfinite(v->min) || !isfinite(v->max) || signbit(v->min) || v->min > v->max) {
        return sl_err_set(r->err, SL_ECODEC,
                          "%s: bad min/max (%g, %g): must be finite, >= +0 and min <= max", r->what,
                          v->min, v->max);
    }
    if (v->nbins > SL_DDS_MAX_BINS) {
        return sl_err_set(r->err, SL_ECODEC, "%s: %llu bins exceed the limit %d", r->what,
                          (unsigned long long)v->nbins, SL_DDS_MAX_BINS);
    }
    if (v->repr == DDS_DENSE && v->nbins == 0) {
        return rd_fail(r, "dense encoding without bins");
    }
    v->bins_off = r->off;
    uint64_t count = v->zeros;
    size_t sparse_size = varint_len(v->nbins);
    size_t dense_size = varint_len(v->nbins);
    uint64_t nonempty = 0;
    int64_t idx = 0;
    int64_t prev = 0;
    for (uint64_t i = 0; i < v->nbins; i++) {
        uint64_t x = 0;
        uint64_t c = 0;
        size_t at = r->off;
        x = 0; /* dense bins after the first carry no index */
        if ((i == 0 || v->repr == DDS_SPARSE) &&
            (rc = rd_u64(r, &x, i == 0 ? "first bin index" : "bin index gap")) < 0) {
            return rc;
        }
        size_t xlen = r->off - at;
        if ((rc = rd_u64(r, &c, "bin count")) < 0) {
            return rc;
        }
        if (i == 0) {
            idx = unzigzag(x);
            if (idx < -DDS_MAX_ABS_INDEX || idx > DDS_MAX_ABS_INDEX) {
                return sl_err_set(r->err, SL_ECODEC, "%s: bin index %lld out of range", r->what,
                                  (long long)idx);
            }
            v->lo = idx;
        } else {
            if (x > (uint64_t)(2 * DDS_MAX_ABS_INDEX)) {
                return sl_err_set(r->err, SL_ECODEC, "%s: bin index gap %llu out of range", r->what,
                                  (unsigned long long)x);
            }
            idx += (int64_t)x + 1;
            if (idx > DDS_MAX_ABS_INDEX || idx - v->lo + 1 > SL_DDS_MAX_BINS) {
                return sl_err_set(r->err, SL_ECODEC,
                                  "%s: bins span more than %d indexes or run out of range", r->what,
                                  SL_DDS_MAX_BINS);
            }
        }
        bool last = i + 1 == v->nbins;
        if (c == 0 && (v->repr == DDS_SPARSE || i == 0 || last)) {
            return sl_err_set(r->err, SL_ECODEC, "%s: empty bin %lld stored", r->what,
                              (long long)idx);
        }
        if (__builtin_add_overflow(count, c, &count)) {
            return rd_fail(r, "total count overflows 64 bits");
        }
        /* both encodings' sizes, to check the encoder's choice */
        size_t clen = varint_len(c);
        if (v->repr == DDS_DENSE) {
            dense_size += (i == 0 ? xlen : 0) + clen;
            if (c != 0) {
                sparse_size +=
                    clen + (nonempty == 0 ? xlen : varint_len((uint64_t)(idx - prev - 1)));
            }
        } else {
            sparse_size += xlen + clen;
            dense_size += (i == 0 ? xlen : 0) + clen;
            if (i > 0) {
                dense_size += (size_t)x; /* each skipped empty bin is one 0 byte */
            }
        }
        if (c != 0) {
            nonempty++;
            prev = idx;
        }
        v->hi = idx;
    }
    if (v->repr == DDS_DENSE) {
        sparse_size += varint_len(nonempty) - varint_len(v->nbins);
    } else if (v->nbins > 0) {
        dense_size += varint_len((uint64_t)(v->hi - v->lo + 1)) - varint_len(v->nbins);
    }
    if (r->off != r->len) {
        return rd_fail(r, "trailing bytes after the bins");
    }
    if (count < 2) {
        return rd_fail(r, "bins encoding with a count below 2 (empty or single-value sketch)");
    }
    if (v->nbins > 0 && (v->repr == DDS_DENSE) != (dense_size < sparse_size)) {
        return sl_err_set(r->err, SL_ECODEC,
                          "%s: non-canonical bin encoding (sparse %zu bytes, dense %zu bytes)",
                          r->what, sparse_size, dense_size);
    }
    if ((v->zeros > 0) != (v->min == 0.0) || (v->nbins > 0) != (v->max > 0.0)) {
        return sl_err_set(
            r->err, SL_ECODEC, "%s: min %g / max %g disagree with %llu zeros and %llu bins",
            r->what, v->min, v->max, (unsigned long long)v->zeros, (unsigned long long)v->nbins);
    }
    v->count = count;
    return 0;
}

/* Applies a validated view to dst. */
static void dds_apply(sl_dds *dst, const uint8_t *p, const dds_view *v)
{
    if (v->repr == DDS_EMPTY) {
        return;
    }
    if (v->repr == DDS_SINGLE) {
        dds_add_value(dst, v->min);
        return;
    }
    if (v->nbins > 0) {
        bins_cover(dst, v->lo, v->hi);
        rd r = {p, SIZE_MAX, v->bins_off, "", NULL}; /* validated: reads stay in bounds */
        int64_t idx = v->lo;
        for (uint64_t i = 0; i < v->nbins; i++) {
            uint64_t x = 0;
            uint64_t c = 0;
            if (i == 0 || v->repr == DDS_SPARSE) {
                (void)rd_u64(&r, &x, "");
            }
            (void)rd_u64(&r, &c, "");
            if (i > 0) {
                idx += (int64_t)x + 1;
            }
            if (c != 0) {
                bins_add(dst, (int32_t)idx, c);
            }
        }
    }
    dst->count = sat_add(dst->count, v->count);
    dst->zeros = sat_add(dst->zeros, v->zeros);
    dst->sum = sat_add128(dst->sum, v->sum);
    dds_minmax(dst, v->min, v->max);
}

int sl_dds_merge_bytes(sl_dds *dst, const void *data, size_t len, sl_err *err)
{
    rd r = {data, len, 0, "quantiles sketch", err};
    dds_view v;
    int rc = dds_parse(&r, &v);
    if (rc < 0) {
        return rc;
    }
    dds_apply(dst, data, &v);
    return 0;
}

int sl_dds_deserialize(const void *data, size_t len, sl_dds **out, sl_err *err)
{
    sl_dds *s = sl_dds_new();
    int rc = sl_dds_merge_bytes(s, data, len, err);
    if (rc < 0) {
        sl_dds_free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}
