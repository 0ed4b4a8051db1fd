/* sluice-ingest: parses and validates JSON event bodies from the gateway and pushes
 * them, split by partition, to the partitioner. */
#include "actor.h"

int sl_ingest_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_INGEST, sl_ingest_run);
}
