/* sluice-alerter: evaluates the alert rules and sends their notifications (alerter.c). */
#include "actor.h"

int sl_alerter_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_ALERTER, sl_alerter_run);
}
