/* Partition hashing: xxHash64 (libxxhash) of the partition key's bytes, seed 0.
 * Stable across versions and machines, since offsets on disk are per partition. */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t sl_hash64(const void *data, size_t len);

/* Partition of a key among n partitions. A missing key (NULL) hashes as "". */
int sl_partition_of(const void *key, size_t len, int n);

#endif
