/* sluice-partitioner: assigns per-partition offsets and routes batches to windowers. */
#include "actor.h"

int sl_partitioner_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_PARTITIONER, sl_partitioner_run);
}
