/* A scratch directory for the storage/ unit tests: /tmp/sl-<name>-test-<pid>, emptied
 * before each test and removed after it (cmocka setup/teardown). Test-only: static
 * functions, included by the tests. */
#ifndef SL_TESTDIR_H
#define SL_TESTDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[256];

/* Sets dir for name and removes anything left there; 0 or -1. */
static int testdir_reset(const char *name)
{
    snprintf(dir, sizeof(dir), "/tmp/sl-%s-test-%d", name, (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Removes dir; 0 or -1. */
static int testdir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
