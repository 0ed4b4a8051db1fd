/* The partition log: the durable, append-only record of every accepted ingest
 * request, the embedded equivalent of a Kafka topic. The partitioner is its only
 * writer; windowers read it to replay what the storer has not committed.
 *
 * A log is a directory of segment files <seq>.seg (seq = 20 digits, increasing).
 * Each record is a 16-byte header — magic "SLG1", payload length (u32 LE),
 * CRC-32 of the payload (u32 LE), reserved — followed by the payload. A record
 * is written with one write() and made durable by sl_plog_sync (fdatasync), so
 * many records share one sync (group commit). On open, a torn or corrupt tail
 * of the last segment (power loss mid-append) is detected by length and CRC
 * and truncated, never read as data. */
#ifndef SL_PLOG_H
#define SL_PLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

typedef struct sl_plog sl_plog;
typedef struct sl_plog_reader sl_plog_reader;

/* Called for every valid record found while opening (payload valid during the call);
 * seg is the record's segment. */
typedef void (*sl_plog_scan_cb)(void *arg, uint64_t seg, const void *payload, size_t len);

/* Opens (creating) the log in dir, scanning every record through cb (may be NULL)
 * and truncating a torn tail. segment_bytes: roll to a new segment beyond this.
 * truncated (may be NULL) gets the number of bytes cut from the tail. */
int sl_plog_open(sl_plog **out, const char *dir, int64_t segment_bytes, sl_plog_scan_cb cb,
                 void *arg, int64_t *truncated, sl_err *err);
void sl_plog_close(sl_plog *log);

/* Appends one record (not yet durable); *seg gets the segment it went to. */
int sl_plog_append(sl_plog *log, const void *payload, size_t len, uint64_t *seg, sl_err *err);
/* Makes every appended record durable. SL_ENOSPC when the disk is full: the
 * records since the last sync are then cut off again and must be refused. */
int sl_plog_sync(sl_plog *log, sl_err *err);
/* Current segment sequence number. */
uint64_t sl_plog_current(const sl_plog *log);
/* Deletes whole segments with seq < before (never the current one). */
int sl_plog_drop_before(sl_plog *log, uint64_t before, sl_err *err);
/* Bytes in all segments. */
int64_t sl_plog_bytes(const sl_plog *log);

/* A reader from the oldest segment on. Reading past the durable end is safe: a
 * record not completely written yet reads as "no more for now". */
int sl_plog_reader_open(sl_plog_reader **out, const char *dir, sl_err *err);
void sl_plog_reader_close(sl_plog_reader *r);
/* Next record into payload (reset first); 1, 0 when there is nothing more yet,
 * or <0. *seg gets its segment. */
int sl_plog_reader_next(sl_plog_reader *r, sl_buf *payload, uint64_t *seg, sl_err *err);

#endif
