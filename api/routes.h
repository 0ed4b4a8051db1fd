/* Route tables: which handler serves a method + path, and what to answer when none
 * does (404 for an unknown path, 405 with an Allow list for a known path asked with
 * another method). The HTTP layer calls sl_route_match for every request; the
 * gateway's table is sl_api_routes in routes.c. */
#ifndef SL_ROUTES_H
#define SL_ROUTES_H

#include <stddef.h>

#include "http.h"

/* Finds the route in table (ended by a NULL method) for method and path: exact paths
 * match exactly, paths ending in '*' match any path starting with what precedes the
 * '*'; the first matching entry wins. HEAD is served by GET routes. Returns the route
 * (borrowed from table), or NULL with *status 404 when no route has this path, or 405
 * when some do but not for this method; allow (when not NULL) then receives the
 * methods the path does take, e.g. "GET, HEAD, OPTIONS" (truncated to size). */
const sl_route *sl_route_match(const sl_route *table, const char *method, const char *path,
                               int *status, char *allow, size_t size);

#endif
