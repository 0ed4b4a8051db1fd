/* Partition hashing (see hash.h). */
#include "hash.h"

#include <xxhash.h>

uint64_t sl_hash64(const void *data, size_t len)
{
    return XXH64(data == NULL ? "" : data, data == NULL ? 0 : len, 0);
}

int sl_partition_of(const void *key, size_t len, int n)
{
    return (int)(sl_hash64(key, len) % (uint64_t)n);
}
