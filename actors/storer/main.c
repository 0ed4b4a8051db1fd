/* sluice-storer: applies rollup deltas to the LMDB segment store. */
#include "actor.h"

int sl_storer_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_STORER, sl_storer_run);
}
