/* The process's memory bound (memory_mb.<actor> in the config) and what it is
 * measured against.
 *
 * What is bounded is the anonymous resident memory of the process (RssAnon: the heap,
 * every thread's stack and arena, the buffers of NNG and LMDB's dirty pages). Pages of
 * LMDB's file mapping are not counted: the kernel can drop them at any time, and they
 * are shared with every reader of the store.
 *
 * The bound is not a malloc limit: allocation never fails here (out of memory aborts in
 * one place, see err.h). Each actor keeps itself under it by acting before it gets
 * there, where it holds data that can move on or wait: the windower sends its open
 * windows early, the storer commits a smaller transaction, the gateway refuses request
 * bodies with 503, the query actor stops a query that needs more (400, "Resource limit
 * exceeded"). sl_mem_used is cheap enough (one read of /proc/self/statm, a few
 * microseconds) to call once per delta, batch or few thousand rows.
 *
 * The process calls sl_mem_init once, before it starts any thread. */
#ifndef SL_MEM_H
#define SL_MEM_H

#include <stdbool.h>
#include <stdint.h>

/* Sets this process's bound (bytes; 0: none) and limits glibc to two malloc arenas, so
 * that memory freed by one thread is reused by the others instead of staying parked in
 * an arena per thread (the gateway's HTTP threads, NNG's I/O threads). */
void sl_mem_init(int64_t bound_bytes);

/* The bound set by sl_mem_init (0: none). */
int64_t sl_mem_bound(void);

/* Anonymous resident memory of the process now, in bytes (-1 if /proc cannot be read). */
int64_t sl_mem_used(void);

/* True when a bound is set and the process uses at least fraction × bound. */
bool sl_mem_above(double fraction);

/* fraction × bound in bytes (INT64_MAX without a bound). */
int64_t sl_mem_budget(double fraction);

/* Returns free heap memory to the system (malloc_trim): after a large batch, window or
 * query was freed, so the next measurement sees what is really in use. Costs up to a
 * few milliseconds on a large heap: call it after freeing a lot, not per item. */
void sl_mem_release(void);

#endif
