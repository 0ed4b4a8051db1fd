/* Mergeable sketches for rollup metrics: a HyperLogLog for distinct counts (sl_hll) and a
 * DDSketch for quantiles (sl_dds). Rollup rows keep one serialized sketch per metric; the
 * query engine merges them across partitions, minutes and filters. Both sketches are
 * exactly mergeable: a sketch is a function of the multiset of values it saw, so the same
 * values split into any sub-sketches and merged in any order serialize to the same bytes.
 *
 * Serialized form (all multi-byte integers little-endian or LEB128 varints):
 *   byte 0  format version (SL_SKETCH_VERSION = 1; a decoder rejects any other)
 *   byte 1  type (SL_SKETCH_HLL or SL_SKETCH_DDS)
 *   byte 2  representation (per type, see sketch.c)
 * Version 1 fixes the parameters: HLL with xxHash64 (seed 0) hashes, precision 14, exact
 * sparse list up to SL_HLL_SPARSE_MAX hashes; DDSketch with relative accuracy 0.005,
 * logarithmic mapping and at most SL_DDS_MAX_BINS bins. A later format gets a new version
 * byte and this decoder keeps reading version 1.
 *
 * Decoders (_deserialize, _merge_bytes, sl_sketch_type) take outside bytes: they never read
 * out of bounds, never allocate more than one sketch's bound whatever a length field says,
 * and reject truncated, corrupt, non-canonical or unknown-version input with SL_ECODEC and
 * a message naming what is wrong. On error the destination sketch is unchanged. */
#ifndef SL_SKETCH_H
#define SL_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

enum {
    SL_SKETCH_VERSION = 1,
    SL_SKETCH_HLL = 1, /* type byte of a distinct-count sketch */
    SL_SKETCH_DDS = 2, /* type byte of a quantiles sketch */
};

/* Type byte of a serialized sketch (SL_SKETCH_HLL or SL_SKETCH_DDS) after checking the
 * version; SL_ECODEC if data is too short, of another version or of an unknown type. Does
 * not validate the body. */
int sl_sketch_type(const void *data, size_t len, sl_err *err);

/* ---- HyperLogLog ----------------------------------------------------------------- */

#define SL_HLL_P 14                       /* precision: 2^14 registers, ~0.81% std error */
#define SL_HLL_REGISTERS (1u << SL_HLL_P) /* 16384 */
/* A sketch holds the exact sorted hashes while it has seen at most this many distinct
 * hashes (its sparse form, serialized smaller than the dense form up to here) and turns
 * dense beyond. Part of format version 1. */
#define SL_HLL_SPARSE_MAX 1792
/* Serialized size of a dense sketch: 3 header bytes + 16384 six-bit registers. */
#define SL_HLL_DENSE_BYTES (3 + SL_HLL_REGISTERS * 6 / 8)

typedef struct sl_hll sl_hll;

/* New empty sketch (sparse, a few dozen bytes). Never NULL (out of memory aborts). The
 * caller owns it and frees it with sl_hll_free. */
sl_hll *sl_hll_new(void);
/* Frees h; NULL is a no-op. */
void sl_hll_free(sl_hll *h);
/* Empties h (back to sparse), keeping its allocation for reuse. */
void sl_hll_clear(sl_hll *h);

/* Adds a 64-bit hash, which must be uniformly distributed (use sl_hll_add for raw bytes).
 * Adding the same hash twice has no effect. */
void sl_hll_add_hash(sl_hll *h, uint64_t hash);
/* Adds the value whose bytes are data[0..len): sl_hash64 (xxHash64, seed 0) of them. data
 * is borrowed for the call; NULL hashes as "". */
void sl_hll_add(sl_hll *h, const void *data, size_t len);
/* dst becomes the union of dst and src; src is unchanged. */
void sl_hll_merge(sl_hll *dst, const sl_hll *src);
/* Estimated number of distinct values: exact while sparse, else Ertl's improved
 * estimator over the registers (at most 2^64). 0 for an empty sketch. */
double sl_hll_estimate(const sl_hll *h);
/* True while h holds exact hashes (at most SL_HLL_SPARSE_MAX distinct values seen). */
bool sl_hll_is_sparse(const sl_hll *h);

/* Appends the serialized sketch to out (deterministic: a function of the set of hashes
 * seen) and returns the number of bytes appended. */
size_t sl_hll_serialize(const sl_hll *h, sl_buf *out);
/* Decodes data[0..len) into a new sketch stored in *out (the caller owns it). Returns 0,
 * or SL_ECODEC with err filled and *out set to NULL. data is borrowed for the call. */
int sl_hll_deserialize(const void *data, size_t len, sl_hll **out, sl_err *err);
/* Merges a serialized sketch into dst without building a temporary sketch (for merging
 * many stored rows). Returns 0, or SL_ECODEC with err filled and dst unchanged. */
int sl_hll_merge_bytes(sl_hll *dst, const void *data, size_t len, sl_err *err);

/* ---- DDSketch -------------------------------------------------------------------- */

#define SL_DDS_ALPHA 0.005   /* relative accuracy of a quantile's value */
#define SL_DDS_MAX_BINS 2048 /* bins kept; lower bins collapse into the lowest kept one */

typedef struct sl_dds sl_dds;

/* New empty sketch. Never NULL. The caller owns it and frees it with sl_dds_free. */
sl_dds *sl_dds_new(void);
/* Frees s; NULL is a no-op. */
void sl_dds_free(sl_dds *s);
/* Empties s, keeping its allocation for reuse. */
void sl_dds_clear(sl_dds *s);

/* Adds a value. Values must be finite and >= 0 (latencies, sizes): a negative, NaN or
 * infinite value is rejected with SL_EINVAL and s is unchanged. 0 and -0.0 count as 0. */
int sl_dds_add(sl_dds *s, double v, sl_err *err);
/* dst accumulates src; src is unchanged. */
void sl_dds_merge(sl_dds *dst, const sl_dds *src);

/* The q-quantile (0 <= q <= 1): within SL_DDS_ALPHA relative error of the value of rank
 * floor(q * (count - 1)) (0-based) among the sorted values, clamped to [min, max], so
 * q = 0 gives min and q = 1 gives max exactly. NaN if s is empty or q is outside [0, 1]
 * or NaN. Exact for values in the range kept (the lowest values lose accuracy only once
 * the values span more than SL_DDS_MAX_BINS bins, a ratio of about 7.8e8). */
double sl_dds_quantile(const sl_dds *s, double q);
/* Exact number of values added. */
uint64_t sl_dds_count(const sl_dds *s);
/* Sum of the values, each rounded to a multiple of 2^-32 (fixed point, so that merging is
 * exact and order-independent); +inf if the sum exceeds about 7.9e28. 0 when empty. */
double sl_dds_sum(const sl_dds *s);
/* Exact smallest and largest value added; NaN when empty. */
double sl_dds_min(const sl_dds *s);
double sl_dds_max(const sl_dds *s);

/* Appends the serialized sketch to out (deterministic) and returns the bytes appended. */
size_t sl_dds_serialize(const sl_dds *s, sl_buf *out);
/* Decodes data[0..len) into a new sketch in *out (caller owns it). Returns 0, or
 * SL_ECODEC with err filled and *out set to NULL. */
int sl_dds_deserialize(const void *data, size_t len, sl_dds **out, sl_err *err);
/* Merges a serialized sketch into dst. Returns 0, or SL_ECODEC with err filled and dst
 * unchanged. */
int sl_dds_merge_bytes(sl_dds *dst, const void *data, size_t len, sl_err *err);

#endif
