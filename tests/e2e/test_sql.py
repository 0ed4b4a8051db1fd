"""Druid SQL end to end: the seed's Flink query verbatim with exact per-minute counts, every
function and operator of the dialect against values computed here from the generated
events, each result format byte for byte on a small hand-made dataset, INFORMATION_SCHEMA,
the Druid metadata endpoints, request body kinds, and error codes and messages.

COUNT(DISTINCT ...), APPROX_COUNT_DISTINCT and APPROX_QUANTILE read the users and latency
sketches of the default spec; they are compared with exact values computed here (2% for
distinct counts, 1% for quantiles)."""

import collections
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

SEED_QUERY = """SELECT
TUMBLE_START(event_time, INTERVAL '1' MINUTE) AS window_start,
COUNT(*) AS page_views
FROM page_events
GROUP BY TUMBLE(event_time, INTERVAL '1' MINUTE);"""

MIN = 60000
HOUR = 3600000
N_EVENTS = 6000

# The small dataset for byte-exact formats: 2025-06-12, away from the generated hours.
SMALL = [
    {"event_type": "click", "timestamp": "2025-06-12T08:00:05Z", "user_id": "s1",
     "page": "/a,\"b\"", "device": "mobile", "country": "NZ", "latency_ms": 10},
    {"event_type": "click", "timestamp": "2025-06-12T08:00:40Z", "user_id": "s2",
     "page": "/a,\"b\"", "device": "mobile", "country": "NZ", "latency_ms": 2.5},
    {"event_type": "view", "timestamp": "2025-06-12T08:01:00Z", "user_id": "s3",
     "page": "/z", "country": "NZ", "latency_ms": 12345678},
]
SMALL_SQL = ("SELECT __time, page, device, \"count\" AS n, latency_ms_sum AS s FROM page_events "
             "WHERE __time >= TIMESTAMP '2025-06-12 00:00:00' ORDER BY __time, page")


def java_double(x):
    """Jackson's (Java's Double.toString) text of a double."""
    if x == 0:
        return "0.0"
    if 1e-3 <= abs(x) < 1e7:
        r = repr(float(x))
        return r if ("." in r or "e" in r) else r + ".0"
    m, e = f"{x:.17e}".split("e")
    for prec in range(1, 18):
        s = f"{x:.{prec - 1}e}"
        if float(s) == x:
            m, e = s.split("e")
            break
    m = m.rstrip("0").rstrip(".") if "." in m else m
    if "." not in m:
        m += ".0"
    return f"{m}E{int(e)}"


def iso(ms):
    return st.iso_ms(ms)


class Sql:
    def __init__(self, s):
        self.s = s

    def post(self, body, path="/druid/v2/sql", content_type="application/json"):
        if isinstance(body, dict):
            body = json.dumps(body)
        return self.s.post(path, body, content_type=content_type)

    def rows(self, query, params=None, **kw):
        body = {"query": query, **kw}
        if params is not None:
            body["parameters"] = params
        r = self.post(body)
        st.check(r.status == 200, f"SQL failed: {r}\nquery: {query}")
        return r.json()

    def one(self, query, params=None):
        rows = self.rows(query, params, resultFormat="array")
        st.check(len(rows) == 1, f"{query}: expected one row, got {rows}")
        return rows[0]

    def error(self, query, status, error, *needles):
        r = self.post({"query": query})
        st.check(r.status == status, f"{query}: expected {status}, got {r}")
        body = r.json()
        st.check(set(body) == {"error", "errorMessage", "errorClass", "host"},
                 f"{query}: error shape {body}")
        st.check(body["error"] == error, f"{query}: error {body['error']!r}, expected {error!r}")
        for n in needles:
            st.check(n in body["errorMessage"], f"{query}: {n!r} not in {body['errorMessage']!r}")
        return body


def minute(ms):
    return ms - ms % MIN


def near(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def run_checks(s, events, users, small_events):
    sql = Sql(s)
    by_min = collections.Counter(minute(e.ts) for e in events)

    # ---- the seed's query, verbatim --------------------------------------------------------
    want = [{"window_start": iso(m), "page_views": by_min[m]} for m in sorted(by_min)]
    want += [{"window_start": iso(m), "page_views": n}
             for m, n in sorted(collections.Counter(minute(e) for e in small_events).items())]
    for path in ("/druid/v2/sql", "/druid/v2/sql/", "/v1/sql"):
        r = sql.post({"query": SEED_QUERY}, path=path)
        st.check(r.status == 200, f"seed query on {path}: {r}")
        st.check(r.headers.get("Content-Type") == "application/json", f"content type {r.headers}")
        st.check(r.json() == want, f"seed query on {path}: got {r.json()[:5]}..., want {want[:5]}...")
        qid = r.headers.get("X-Druid-SQL-Query-Id", "")
        st.check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                              qid), f"generated query id {qid!r}")
    st.log(f"seed query: {len(want)} minutes, {sum(by_min.values())} events, exact")
    # the same query as text/plain and as a form body
    r = sql.post(SEED_QUERY, content_type="text/plain")
    st.check(r.status == 200 and r.json() == want, f"text/plain: {r}")
    r = sql.post(urllib.parse.quote_plus(SEED_QUERY), content_type="application/x-www-form-urlencoded")
    st.check(r.status == 200 and r.json() == want, f"form body: {r}")
    r = sql.post({"query": "SELECT 1 AS x FROM page_events LIMIT 1", "context": {"sqlQueryId": "my-q-1"}})
    st.check(r.headers.get("X-Druid-SQL-Query-Id") == "my-q-1", f"sqlQueryId: {r.headers}")

    gen = [e for e in events]  # only the generated hours below
    gen_where = "__time < TIMESTAMP '2025-06-12 00:00:00'"

    # ---- time buckets ------------------------------------------------------------------------
    def bucket_rows(width, origin=0):
        c = collections.Counter(origin + (e.ts - origin) // width * width for e in gen)
        return [[iso(t), n] for t, n in sorted(c.items())]

    for q, width in [
        (f"SELECT TIME_FLOOR(__time, 'PT15M') AS t, COUNT(*) FROM page_events WHERE {gen_where} GROUP BY 1", 15 * MIN),
        (f"SELECT FLOOR(__time TO HOUR), COUNT(*) FROM page_events WHERE {gen_where} GROUP BY FLOOR(__time TO HOUR)", HOUR),
        (f"SELECT DATE_TRUNC('hour', event_time) AS h, COUNT(*) FROM page_events WHERE {gen_where} GROUP BY h", HOUR),
        (f"SELECT TUMBLE_START(event_time, INTERVAL '5' MINUTE), COUNT(*) FROM page_events WHERE {gen_where} GROUP BY TUMBLE(event_time, INTERVAL '5' MINUTE)", 5 * MIN),
        (f"SELECT __time, COUNT(*) FROM page_events WHERE {gen_where} GROUP BY __time", MIN),
    ]:
        got = sql.rows(q, resultFormat="array")
        st.check(got == bucket_rows(width), f"{q}: got {got[:3]}, want {bucket_rows(width)[:3]}")
    got = sql.rows(f"SELECT TUMBLE_END(__time, INTERVAL '10' MINUTE) AS e, COUNT(*) FROM page_events "
                   f"WHERE {gen_where} GROUP BY TUMBLE(__time, INTERVAL '10' MINUTE)", resultFormat="array")
    st.check(got == [[iso(st.parse_iso(t) + 10 * MIN), n] for t, n in bucket_rows(10 * MIN)],
             f"TUMBLE_END: {got[:3]}")

    # HOP: slide 2 minutes, size 5 minutes; every minute bucket counts in each window holding it
    slide, size = 2 * MIN, 5 * MIN
    hop = collections.defaultdict(lambda: [0, 0.0, None, None])
    for e in gen:
        m = minute(e.ts)
        k = (m - size) // slide + 1
        while k * slide <= m:
            w = hop[k * slide]
            w[0] += 1
            if e.latency is not None:
                v = float(e.latency)
                w[1] += v
                w[2] = v if w[2] is None else min(w[2], v)
                w[3] = v if w[3] is None else max(w[3], v)
            k += 1
    got = sql.rows(f"SELECT HOP_START(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE) AS s, "
                   f"HOP_END(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE) AS e, COUNT(*) AS n, "
                   f"SUM(latency_ms) AS total, MIN(latency_ms) AS lo, MAX(latency_ms) AS hi "
                   f"FROM page_events WHERE {gen_where} "
                   f"GROUP BY HOP(event_time, INTERVAL '2' MINUTE, INTERVAL '5' MINUTE)", resultFormat="array")
    want = [[iso(t), iso(t + size), w[0], w[1], w[2], w[3]] for t, w in sorted(hop.items())]
    st.check(len(got) == len(want), f"HOP: {len(got)} windows, want {len(want)}")
    for g, w in zip(got, want):
        st.check(g[:3] == w[:3] and near(g[3], w[3]) and g[4] == w[4] and g[5] == w[5],
                 f"HOP window {g} != {w}")
    st.log(f"HOP: {len(want)} sliding windows exact")

    # ---- aggregates ------------------------------------------------------------------------------
    lat = [float(e.latency) for e in gen if e.latency is not None]
    n, lsum = len(gen), sum(lat)
    got = sql.one(f"SELECT COUNT(*), SUM(latency_ms), MIN(latency_ms), MAX(latency_ms), AVG(latency_ms), "
                  f"SUM(latency_ms_sum), SUM(\"count\"), COUNT(device) "
                  f"FROM page_events WHERE {gen_where}")
    with_dev = sum(1 for e in gen if e.device is not None)
    st.check(got[0] == n and near(got[1], lsum) and got[2] == min(lat) and got[3] == max(lat)
             and near(got[4], lsum / n) and near(got[5], lsum) and got[6] == n and got[7] == with_dev,
             f"aggregates {got} != {[n, lsum, min(lat), max(lat), lsum / n, lsum, n, with_dev]}")
    got = sql.one(f"SELECT SUM(latency_ms) / COUNT(*), COUNT(*) * 2 + 1, COUNT(*) / 7, COUNT(*) % 7, "
                  f"COUNT(*) - 1, CAST(COUNT(*) AS DOUBLE) / 4 FROM page_events WHERE {gen_where}")
    st.check(near(got[0], lsum / n) and got[1:5] == [n * 2 + 1, n // 7, n % 7, n - 1]
             and near(got[5], n / 4), f"arithmetic {got}")
    got = sql.one("SELECT MIN(__time), MAX(__time) FROM page_events")
    all_ms = [e.ts for e in gen] + small_events
    st.check(got == [iso(minute(min(all_ms))), iso(minute(max(all_ms)))], f"MIN/MAX(__time) {got}")

    # ---- filters -------------------------------------------------------------------------------
    def count(where, params=None):
        return sql.one(f"SELECT COUNT(*) FROM page_events WHERE {gen_where} AND ({where})", params)[0]

    cases = [
        ("country = 'US'", lambda e: e.country == "US"),
        ("country <> 'US'", lambda e: e.country is not None and e.country != "US"),
        ("NOT country = 'US'", lambda e: e.country != "US"),
        ("page IN ('/', '/pricing', '/docs')", lambda e: e.page in ("/", "/pricing", "/docs")),
        ("page NOT IN ('/', '/pricing')", lambda e: e.page not in ("/", "/pricing")),
        ("page LIKE '/blog/post-1%'", lambda e: e.page.startswith("/blog/post-1")),
        ("page NOT LIKE '%post%'", lambda e: "post" not in e.page),
        ("page LIKE '/_ricing'", lambda e: e.page == "/pricing"),
        ("device IS NULL", lambda e: e.device is None),
        ("device IS NOT NULL", lambda e: e.device is not None),
        ("device <> 'mobile'", lambda e: e.device is not None and e.device != "mobile"),
        ("country BETWEEN 'DE' AND 'IN'", lambda e: "DE" <= e.country <= "IN"),
        ("country NOT BETWEEN 'DE' AND 'IN'", lambda e: not ("DE" <= e.country <= "IN")),
        ("country < 'CA'", lambda e: e.country < "CA"),
        ("country >= 'US'", lambda e: e.country >= "US"),
        ("country = 'US' AND device = 'mobile'", lambda e: e.country == "US" and e.device == "mobile"),
        ("country = 'US' OR event_type = 'signup'", lambda e: e.country == "US" or e.event_type == "signup"),
        ("NOT (device = 'mobile' OR country = 'US')",
         lambda e: e.country != "US" and e.device is not None and e.device != "mobile"),
        ("__time >= TIMESTAMP '2025-06-11 11:00:00' AND __time < TIMESTAMP '2025-06-11 11:30:00'",
         lambda e: st.parse_iso("2025-06-11T11:00:00Z") <= minute(e.ts) < st.parse_iso("2025-06-11T11:30:00Z")),
        ("event_time BETWEEN TIME_PARSE('2025-06-11T10:10:00Z') AND '2025-06-11 10:20:00'",
         lambda e: st.parse_iso("2025-06-11T10:10:00Z") <= minute(e.ts) <= st.parse_iso("2025-06-11T10:20:00Z")),
        ("__time = TIMESTAMP '2025-06-11 12:00:00'", lambda e: minute(e.ts) == st.parse_iso("2025-06-11T12:00:00Z")),
        ("__time < CURRENT_TIMESTAMP", lambda e: True),
        ("__time >= CURRENT_TIMESTAMP - INTERVAL '1' HOUR", lambda e: False),
        ("(__time < TIMESTAMP '2025-06-11 10:30:00' OR __time >= TIMESTAMP '2025-06-11 12:30:00') AND country = 'DE'",
         lambda e: (minute(e.ts) < st.parse_iso("2025-06-11T10:30:00Z")
                    or minute(e.ts) >= st.parse_iso("2025-06-11T12:30:00Z")) and e.country == "DE"),
    ]
    for where, pred in cases:
        want = sum(1 for e in gen if pred(e))
        got = count(where)
        st.check(got == want, f"WHERE {where}: {got}, expected {want}")
    # ? parameters
    params = [{"type": "VARCHAR", "value": "US"}, {"type": "TIMESTAMP", "value": "2025-06-11 12:00:00"}]
    want = sum(1 for e in gen if e.country == "US" and minute(e.ts) >= st.parse_iso("2025-06-11T12:00:00Z"))
    st.check(count("country = ? AND __time >= ?", params) == want, "parameters")
    st.log(f"{len(cases) + 1} filters exact")

    # ---- GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET --------------------------------------------
    by_country = collections.Counter(e.country for e in gen)
    ranked = sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))
    got = sql.rows(f"SELECT country, COUNT(*) AS n FROM page_events WHERE {gen_where} GROUP BY country "
                   f"ORDER BY n DESC, country LIMIT 5 OFFSET 1", resultFormat="array")
    st.check(got == [list(kv) for kv in ranked[1:6]], f"ORDER BY/LIMIT/OFFSET: {got} != {ranked[1:6]}")
    got = sql.rows(f"SELECT country, COUNT(*) FROM page_events WHERE {gen_where} GROUP BY 1 "
                   f"HAVING COUNT(*) > 100 ORDER BY 1", resultFormat="array")
    st.check(got == [[c, k] for c, k in sorted(by_country.items()) if k > 100], f"HAVING: {got}")
    dev_avg = collections.defaultdict(lambda: [0, 0.0])
    for e in gen:
        d = dev_avg[e.device]
        d[0] += 1
        d[1] += float(e.latency) if e.latency is not None else 0.0
    got = sql.rows(f"SELECT device, AVG(latency_ms) AS a FROM page_events WHERE {gen_where} "
                   f"GROUP BY device ORDER BY a DESC", resultFormat="array")
    want = sorted(([d, v[1] / v[0]] for d, v in dev_avg.items()), key=lambda r: -r[1])
    st.check([g[0] for g in got] == [w[0] for w in want] and all(near(g[1], w[1]) for g, w in zip(got, want)),
             f"AVG by device: {got} != {want}")
    got = sql.rows(f"SELECT DISTINCT device FROM page_events WHERE {gen_where} ORDER BY device",
                   resultFormat="array")
    st.check(got == [[None]] + [[d] for d in sorted(d for d in dev_avg if d is not None)], f"DISTINCT {got}")
    got = sql.rows("SELECT TIME_FLOOR(__time, 'PT1H') AS h, event_type, COUNT(*) AS n FROM page_events "
                   f"WHERE {gen_where} AND event_type IN ('click', 'signup') GROUP BY 1, 2 ORDER BY h, n DESC",
                   resultFormat="array")
    c = collections.Counter((e.ts // HOUR * HOUR, e.event_type) for e in gen if e.event_type in ("click", "signup"))
    want = sorted(([iso(h), t, k] for (h, t), k in c.items()), key=lambda r: (r[0], -r[2], r[1]))
    st.check(got == want, f"hour x event_type: {got} != {want}")
    explain = sql.one(f"EXPLAIN PLAN FOR {SEED_QUERY.rstrip(';')}")
    plan = json.loads(explain[0])
    st.check(plan[0]["query"]["queryType"] == "timeseries"
             and plan[0]["query"]["granularity"] == {"type": "duration", "duration": 60000}, f"EXPLAIN {plan}")

    # ---- sketches: COUNT(DISTINCT) from the users HLL, APPROX_QUANTILE from the latency DDSketch -
    # Bounds of issue 4: distinct counts within 2%, quantiles within 1% of the value of rank
    # floor(q * (n - 1)) of the sorted values (the rank the sketch documents).
    def rank_value(q):
        v = sorted(lat)
        return v[int(q * (len(v) - 1))]

    gen_users = {e.obj["user_id"] for e in gen if "user_id" in e.obj}
    checks = [
        (f"SELECT COUNT(DISTINCT user_id) FROM page_events WHERE {gen_where}", len(gen_users), 0.02),
        (f"SELECT APPROX_COUNT_DISTINCT(user_id) FROM page_events WHERE {gen_where}", len(gen_users), 0.02),
        (f"SELECT APPROX_COUNT_DISTINCT(page) FROM page_events WHERE {gen_where}", len({e.page for e in gen}), 0.02),
    ]
    checks += [(f"SELECT APPROX_QUANTILE(latency_ms, {q}) FROM page_events WHERE {gen_where}", rank_value(q), 0.01)
               for q in (0.5, 0.95, 0.99)]
    for q, exact, tol in checks:
        r = sql.post({"query": q, "resultFormat": "array"})
        st.check(r.status == 200, f"{q}: {r}")
        got = r.json()[0][0]
        st.check(abs(got - exact) <= tol * exact, f"{q}: {got}, exact {exact} (tolerance {tol:.0%})")
        st.log(f"{q[:60]}...: {got} vs exact {exact}")
    # per device, against the test's own distinct users per device
    per_dev = collections.defaultdict(set)
    for e in gen:
        if "user_id" in e.obj:
            per_dev[e.device].add(e.obj["user_id"])
    got = dict(sql.rows(f"SELECT device, COUNT(DISTINCT user_id) FROM page_events WHERE {gen_where} "
                        f"GROUP BY device", resultFormat="array"))
    st.check(set(got) == set(per_dev), f"devices {sorted(got, key=str)} != {sorted(per_dev, key=str)}")
    for d, us in per_dev.items():
        st.check(abs(got[d] - len(us)) <= 0.02 * len(us), f"distinct users on {d}: {got[d]}, exact {len(us)}")

    # ---- result formats, byte for byte ------------------------------------------------------------
    rows = sorted(small_events_rows(), key=lambda r: (r[0], r[1]))

    def jv(v):
        if v is None:
            return "null"
        if isinstance(v, float):
            return java_double(v)
        return json.dumps(v, separators=(",", ":"))

    cols = ["__time", "page", "device", "n", "s"]
    types = ["LONG", "STRING", "STRING", "LONG", "DOUBLE"]
    sqltypes = ["TIMESTAMP", "VARCHAR", "VARCHAR", "BIGINT", "DOUBLE"]
    obj = ["{" + ",".join(f"{json.dumps(c)}:{jv(v)}" for c, v in zip(cols, r)) + "}" for r in rows]
    arr = ["[" + ",".join(jv(v) for v in r) + "]" for r in rows]

    def csvf(v):
        t = "" if v is None else java_double(v) if isinstance(v, float) else str(v)
        return '"' + t.replace('"', '""') + '"' if any(ch in t for ch in ',"\n\r') else t

    csv = [",".join(csvf(v) for v in r) for r in rows]
    hdr_obj = "{" + ",".join(f'{json.dumps(c)}:{{"type":"{t}","sqlType":"{q}"}}'
                             for c, t, q in zip(cols, types, sqltypes)) + "}"
    hdr_arr = [json.dumps(cols, separators=(",", ":")), json.dumps(types, separators=(",", ":")),
               json.dumps(sqltypes, separators=(",", ":"))]
    expect = {
        ("object", False): ("application/json", "[" + ",".join(obj) + "]\n"),
        ("array", False): ("application/json", "[" + ",".join(arr) + "]\n"),
        ("objectLines", False): ("text/plain", "\n".join(obj) + "\n\n"),
        ("arrayLines", False): ("text/plain", "\n".join(arr) + "\n\n"),
        ("csv", False): ("text/csv", "\n".join(csv) + "\n\n"),
        ("object", True): ("application/json", "[" + ",".join([hdr_obj] + obj) + "]\n"),
        ("array", True): ("application/json", "[" + ",".join(hdr_arr + arr) + "]\n"),
        ("objectLines", True): ("text/plain", "\n".join([hdr_obj] + obj) + "\n\n"),
        ("arrayLines", True): ("text/plain", "\n".join(hdr_arr + arr) + "\n\n"),
        ("csv", True): ("text/csv", "\n".join(["__time,page,device,n,s", ",".join(types), ",".join(sqltypes)] + csv) + "\n\n"),
    }
    for (fmt, header), (ctype, body) in expect.items():
        req = {"query": SMALL_SQL, "resultFormat": fmt}
        if header:
            req.update(header=True, typesHeader=True, sqlTypesHeader=True)
        r = sql.post(req)
        st.check(r.status == 200 and r.headers.get("Content-Type") == ctype,
                 f"{fmt}: {r} {r.headers.get('Content-Type')}")
        st.check(r.body.decode() == body, f"{fmt} header={header}:\n got {r.body!r}\nwant {body.encode()!r}")
    r = sql.post({"query": SMALL_SQL, "resultFormat": "object", "header": True})
    st.check(r.body.decode() == "[" + ",".join(['{"__time":null,"page":null,"device":null,"n":null,"s":null}'] + obj) + "]\n",
             f"object header without types: {r.body!r}")
    st.log("result formats byte-exact: object, array, objectLines, arrayLines, csv (with and without headers)")

    # ---- INFORMATION_SCHEMA -----------------------------------------------------------------------
    st.check(sql.rows("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA ORDER BY SCHEMA_NAME",
                      resultFormat="array") == [["INFORMATION_SCHEMA"], ["druid"]], "SCHEMATA")
    st.check(sql.rows("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES "
                      "WHERE TABLE_SCHEMA = 'druid'", resultFormat="array")
             == [["druid", "page_events", "TABLE"]], "TABLES")
    got = sql.rows("SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS "
                   "WHERE TABLE_SCHEMA = 'druid' AND TABLE_NAME = 'page_events' ORDER BY ORDINAL_POSITION",
                   resultFormat="array")
    want = [["__time", "TIMESTAMP", 1, "NO"], ["event_type", "VARCHAR", 2, "YES"], ["page", "VARCHAR", 3, "YES"],
            ["device", "VARCHAR", 4, "YES"], ["country", "VARCHAR", 5, "YES"], ["count", "BIGINT", 6, "NO"],
            ["latency_ms_sum", "DOUBLE", 7, "NO"], ["latency_ms_min", "DOUBLE", 8, "NO"],
            ["latency_ms_max", "DOUBLE", 9, "NO"], ["users", "OTHER", 10, "YES"],
            ["latency", "OTHER", 11, "YES"]]
    st.check(got == want, f"COLUMNS: {got}")
    types_seen = {r[0] for r in sql.rows("SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS", resultFormat="array")}
    st.check(types_seen <= {"VARCHAR", "BIGINT", "DOUBLE", "FLOAT", "TIMESTAMP", "BOOLEAN", "OTHER"},
             f"DATA_TYPE values outside Druid's set: {types_seen}")

    # ---- errors -------------------------------------------------------------------------------------
    sql.error("SELECT FROM page_events", 400, "SQL parse failed",
              'Encountered "FROM" at line 1, column 8')
    sql.error("SELECT page\nFROM page_events\nWHERE page = 'x' AND", 400, "SQL parse failed",
              "Encountered <EOF> at line 3, column 21")
    sql.error("SELECT nope FROM page_events", 400, "Plan validation failed",
              "Column 'nope' not found in table 'page_events'", "line 1, column 8")
    sql.error("SELECT user_id, COUNT(*) FROM page_events GROUP BY user_id", 400, "Plan validation failed",
              "column user_id (line 1, column ", "was not kept by rollup: page_events keeps dimensions "
              "event_type, page, device, country",
              "distinct counts of user_id are available as COUNT(DISTINCT user_id)")
    sql.error("SELECT COUNT(*) FROM nope", 400, "Plan validation failed", "Table 'nope' not found",
              "page_events")
    sql.error("SELECT page, COUNT(*) FROM page_events", 400, "Plan validation failed",
              "Expression 'page'", "not being grouped")
    sql.error("SELECT COUNT(*) FROM page_events WHERE latency_ms_sum > 3", 400, "Plan validation failed",
              "is a metric")
    r = sql.post("{not json")
    st.check(r.status == 400 and r.json()["error"] == "Malformed query", f"bad JSON: {r}")
    r = sql.post({"query": "SELECT 1 FROM page_events", "resultFormat": "yaml"})
    st.check(r.status == 400 and "resultFormat" in r.json()["errorMessage"], f"bad format: {r}")
    r = sql.post("SELECT 1", content_type="application/xml")
    st.check(r.status == 415, f"bad content type: {r}")
    r = s.get("/druid/v2/sql")
    st.check(r.status == 405, f"GET /druid/v2/sql: {r}")

    # ---- Druid metadata endpoints and native queries at /druid/v2 -------------------------------------
    r = s.get("/status")
    st.check(r.status == 200 and "version" in r.json(), f"/status: {r}")
    r = s.get("/status/health")
    st.check(r.status == 200 and r.body == b"true", f"/status/health: {r}")
    r = s.get("/druid/v2/datasources")
    st.check(r.status == 200 and r.json() == ["page_events"], f"/druid/v2/datasources: {r}")
    r = s.get("/druid/v2/datasources/page_events")
    st.check(r.status == 200 and r.json() == {
        "dimensions": ["event_type", "page", "device", "country"],
        "metrics": ["count", "latency_ms_sum", "latency_ms_min", "latency_ms_max", "users", "latency"]},
        f"datasource: {r}")
    st.check(s.get("/druid/v2/datasources/nope").status == 404, "unknown datasource")
    r = s.post("/druid/v2", json.dumps({"queryType": "timeseries", "dataSource": "page_events",
                                        "granularity": "all", "intervals": [st.INTERVAL],
                                        "aggregations": [{"type": "count", "name": "n"}]}))
    st.check(r.status == 200 and r.json()[0]["result"]["n"] == len(gen), f"POST /druid/v2: {r}")


SMALL_ROWS = []


def small_events_rows():
    return SMALL_ROWS


def build_small_rows():
    """The rollup rows of SMALL as SMALL_SQL returns them: (minute, page, device) groups."""
    groups = {}
    for ev in SMALL:
        t = minute(st.parse_iso(ev["timestamp"]))
        k = (t, ev["page"], ev.get("device"))
        g = groups.setdefault(k, [0, 0.0])
        g[0] += 1
        g[1] += float(ev.get("latency_ms", 0))
    return [[iso(t), p, d, g[0], g[1]] for (t, p, d), g in groups.items()]


def test_sql():
    with st.Sluice("sql") as s:
        s.up()
        g = st.Generator(505)
        lines = [g.good() for _ in range(N_EVENTS)]
        events = [ln.event for ln in lines]
        users = {ln.obj["user_id"] for ln in lines}
        for i in range(0, len(lines), 2000):
            r = s.post_events("\n".join(ln.text for ln in lines[i:i + 2000]))
            st.check(r.status == 200, f"ingest: {r}")
        r = s.post_events("\n".join(json.dumps(e) for e in SMALL))
        st.check(r.status == 200 and r.json()["accepted"] == len(SMALL), f"small ingest: {r}")
        SMALL_ROWS.extend(build_small_rows())
        total = len(events) + len(SMALL)
        sql = Sql(s)
        st.wait_until(lambda: sql.one("SELECT COUNT(*) FROM page_events")[0] == total, timeout=60,
                      what=f"{total} events visible to SQL")
        run_checks(s, events, users, [st.parse_iso(e["timestamp"]) for e in SMALL])


if __name__ == "__main__":
    st.main(test_sql)
