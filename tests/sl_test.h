/* Shared main for cmocka unit tests: SL_TEST_FILTER (set per ctest entry by
 * sl_test() in cmake/SluiceHelpers.cmake) selects a single case, so each case is
 * its own ctest entry. */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define SL_TEST_MAIN(tests)                                                                        \
    int main(void)                                                                                 \
    {                                                                                              \
        const char *filter = getenv("SL_TEST_FILTER");                                             \
        if (filter != NULL) {                                                                      \
            cmocka_set_test_filter(filter);                                                        \
        }                                                                                          \
        return cmocka_run_group_tests(tests, NULL, NULL);                                          \
    }

#endif
