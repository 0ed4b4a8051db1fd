/* Route matching and the gateway's route table. Adding an endpoint is one line in
 * sl_api_routes plus its handler in the file of its family. */
#include "routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "dashboard.h"

/* clang-format off */
const sl_route sl_api_routes[] = {
    /* method   path                check                     handle */
    {"POST",    "/v1/events",       sl_api_events_check,      sl_api_events_post},
    {"POST",    "/v1/query",        sl_api_query_check,       sl_api_query_post},
    {"GET",     "/v1/datasources",  NULL,                     sl_api_datasources_get},
    {"GET",     "/healthz",         NULL,                     sl_api_healthz_get},
    {"GET",     "/metrics",         NULL,                     sl_api_metrics_get},
    {"GET",     "/v1/alerts",       NULL,                     sl_api_alerts_get},
    {"GET",     "/v1/alerts/history", NULL,                   sl_api_alerts_history_get},
    {"POST",    "/v1/sql",          sl_api_sql_check,         sl_api_sql_post},
    {"POST",    "/druid/v2/sql",    sl_api_sql_check,         sl_api_sql_post},
    {"POST",    "/druid/v2/sql/",   sl_api_sql_check,         sl_api_sql_post},
    {"POST",    "/druid/v2",        sl_api_query_check,       sl_api_query_post},
    {"POST",    "/druid/v2/",       sl_api_query_check,       sl_api_query_post},
    {"GET",     "/druid/v2/datasources", NULL,                sl_api_druid_datasources_get},
    {"GET",     "/druid/v2/datasources/*", NULL,              sl_api_druid_datasource_get},
    {"GET",     "/status",          NULL,                     sl_api_status_get},
    {"GET",     "/status/health",   NULL,                     sl_api_status_health_get},
    {"GET",     "/v1/live",         NULL,                     sl_api_live_get},
    {"GET",     "/",                NULL,                     sl_api_static_get},
    {"GET",     "/index.html",      NULL,                     sl_api_static_get},
    {"GET",     "/ui/*",            NULL,                     sl_api_static_get},
    {NULL,      NULL,               NULL,                     NULL},
};
/* clang-format on */

static bool path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') {
        return strncmp(pattern, path, n - 1) == 0;
    }
    return strcmp(pattern, path) == 0;
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0) {
        return true;
    }
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* Appends ", name" (or "name" first) to allow unless it is already listed. */
static void allow_add(char *allow, size_t size, const char *name)
{
    size_t len = strlen(allow);
    size_t n = strlen(name);
    const char *p = allow;

    while ((p = strstr(p, name)) != NULL) {
        bool start = p == allow || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ',';
        if (start && end) {
            return;
        }
        p += n;
    }
    snprintf(allow + len, size - len, "%s%s", len > 0 ? ", " : "", name);
}

const sl_route *sl_route_match(const sl_route *table, const char *method, const char *path,
                               int *status, char *allow, size_t size)
{
    char list[128] = "";
    bool path_known = false;

    for (const sl_route *r = table; r->method != NULL; r++) {
        if (!path_matches(r->path, path)) {
            continue;
        }
        if (method_matches(r->method, method)) {
            return r;
        }
        path_known = true;
        allow_add(list, sizeof(list), r->method);
        if (strcmp(r->method, "GET") == 0) {
            allow_add(list, sizeof(list), "HEAD");
        }
    }
    if (!path_known) {
        *status = 404;
        return NULL;
    }
    allow_add(list, sizeof(list), "OPTIONS");
    *status = 405;
    if (allow != NULL && size > 0) {
        snprintf(allow, size, "%s", list);
    }
    return NULL;
}
