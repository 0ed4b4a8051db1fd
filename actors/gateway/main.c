/* sluice-gateway: the HTTP front door (see gateway.c). */
#include "actor.h"

int sl_gateway_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_GATEWAY, sl_gateway_run);
}
