/* libFuzzer target for the sketch decoders in runtime/sketch.c: sl_sketch_type,
 * sl_hll_deserialize / sl_hll_merge_bytes and sl_dds_deserialize / sl_dds_merge_bytes on
 * arbitrary bytes. Beyond the sanitizers it checks the decoders' contract: an input is
 * either rejected with SL_ECODEC and a message, leaving the merge destination unchanged,
 * or accepted, and then it re-serializes to exactly the same bytes (the format is
 * canonical) and reads give sane answers. Seeds: tests/fuzz/sketch/corpus/ (written by
 * make_corpus.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

static void check(int cond)
{
    if (!cond) {
        abort();
    }
}

static void same_bytes(const sl_buf *a, const void *data, size_t len)
{
    check(a->len == len && (len == 0 || memcmp(a->data, data, len) == 0));
}

static void fuzz_hll(const uint8_t *data, size_t size, sl_hll *dst, const sl_buf *dst_before)
{
    sl_err err = {0};
    sl_hll *h = NULL;
    int rc = sl_hll_deserialize(data, size, &h, &err);
    sl_buf b;
    sl_buf_init(&b);
    if (rc != 0) {
        check(rc == SL_ECODEC && h == NULL && err.code == SL_ECODEC && err.msg[0] != '\0');
        check(sl_hll_merge_bytes(dst, data, size, NULL) == SL_ECODEC);
        sl_hll_serialize(dst, &b);
        same_bytes(&b, dst_before->data, dst_before->len);
        sl_buf_fini(&b);
        return;
    }
    sl_hll_serialize(h, &b);
    same_bytes(&b, data, size);
    double e = sl_hll_estimate(h);
    check(e >= 0 && isfinite(e));
    /* merging into a non-empty sketch succeeds, and merging the same bytes again changes
     * nothing (a union) */
    check(sl_hll_merge_bytes(dst, data, size, NULL) == 0);
    b.len = 0;
    sl_hll_serialize(dst, &b);
    check(sl_hll_merge_bytes(dst, data, size, NULL) == 0);
    sl_buf again;
    sl_buf_init(&again);
    sl_hll_serialize(dst, &again);
    same_bytes(&again, b.data, b.len);
    sl_buf_fini(&again);
    sl_buf_fini(&b);
    sl_hll_free(h);
}

static void fuzz_dds(const uint8_t *data, size_t size, sl_dds *dst, const sl_buf *dst_before)
{
    sl_err err = {0};
    sl_dds *s = NULL;
    int rc = sl_dds_deserialize(data, size, &s, &err);
    sl_buf b;
    sl_buf_init(&b);
    if (rc != 0) {
        check(rc == SL_ECODEC && s == NULL && err.code == SL_ECODEC && err.msg[0] != '\0');
        check(sl_dds_merge_bytes(dst, data, size, NULL) == SL_ECODEC);
        sl_dds_serialize(dst, &b);
        same_bytes(&b, dst_before->data, dst_before->len);
        sl_buf_fini(&b);
        return;
    }
    sl_dds_serialize(s, &b);
    same_bytes(&b, data, size);
    if (sl_dds_count(s) > 0) {
        double lo = sl_dds_min(s);
        double hi = sl_dds_max(s);
        for (double q = 0; q <= 1.0; q += 0.125) {
            double v = sl_dds_quantile(s, q);
            check(v >= lo && v <= hi);
        }
        check(sl_dds_quantile(s, 0) == lo && sl_dds_quantile(s, 1) == hi);
    } else {
        check(isnan(sl_dds_quantile(s, 0.5)));
    }
    check(sl_dds_merge_bytes(dst, data, size, NULL) == 0);
    sl_buf_fini(&b);
    sl_dds_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int type = sl_sketch_type(data, size, NULL);
    check(type == SL_SKETCH_HLL || type == SL_SKETCH_DDS || type == SL_ECODEC);

    /* destinations with some content, so merges meet both sparse and dense states */
    sl_hll *h = sl_hll_new();
    for (uint64_t i = 0; i < 20; i++) {
        sl_hll_add(h, &i, sizeof(i));
    }
    sl_dds *s = sl_dds_new();
    sl_dds_add(s, 0.0, NULL);
    sl_dds_add(s, 12.5, NULL);
    sl_dds_add(s, 1e6, NULL);
    sl_buf hb;
    sl_buf db;
    sl_buf_init(&hb);
    sl_buf_init(&db);
    sl_hll_serialize(h, &hb);
    sl_dds_serialize(s, &db);

    fuzz_hll(data, size, h, &hb);
    fuzz_dds(data, size, s, &db);

    sl_buf_fini(&hb);
    sl_buf_fini(&db);
    sl_hll_free(h);
    sl_dds_free(s);
    return 0;
}
