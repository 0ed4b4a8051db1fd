/* sluice-query: answers Druid native queries from the segment store. */
#include "actor.h"

int sl_query_run(sl_actor *a, sl_err *err);

int main(int argc, char **argv)
{
    return sl_actor_main(argc, argv, SL_ACTOR_QUERY, sl_query_run);
}
