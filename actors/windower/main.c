/* sluice-windower: folds partition batches into minute rollup rows. */
#include "actor.h"

int sl_windower_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_WINDOWER, sl_windower_run);
}
