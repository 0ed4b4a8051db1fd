"""Bulk ingest and exact query results.

120k generated lines (about 1% bad, of every kind) are posted in batches as NDJSON
(plain, gzip-compressed, with blank lines and CRLF), as JSON arrays and as text/plain,
four requests at a time. Every reply's accepted/rejected counts and listed errors (line
numbers and reasons) are checked exactly. Then timeseries (minute and hour, with
filters), topN, groupBy (having, limitSpec) and latency sums/mins/maxes are compared
with values the test computes from the events it generated."""

import concurrent.futures
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

SEED = 20250611
N_LINES = 120000
MINUTE = 60000
HOUR = 3600000


# ---- batches ------------------------------------------------------------------------------

class Batch:
    def __init__(self, kind, lines, body, line_numbers):
        self.kind = kind
        self.lines = lines                # the Line items, in order
        self.body = body
        self.line_numbers = line_numbers  # reply line number of each item

    def post(self, s):
        ctype = {"array": "application/json", "text": "text/plain"}.get(self.kind,
                                                                         "application/x-ndjson")
        return s.post_events(self.body, content_type=ctype,
                             encoding="gzip" if self.kind == "gzip" else None)


def make_batches(gen, lines):
    kinds = ["ndjson", "gzip", "array", "text", "blank", "crlf"]
    batches, i, k = [], 0, 0
    while i < len(lines):
        size = gen.rng.randrange(2000, 6000)
        chunk, i = lines[i:i + size], i + size
        kind = kinds[k % len(kinds)]
        k += 1
        if kind == "array":
            # A syntax error inside an array rejects the whole body: keep those out.
            chunk = [gen.good() if ln.bad == "malformed" else ln for ln in chunk]
            body = "[\n" + ",\n".join(ln.text for ln in chunk) + "\n]"
            numbers = list(range(1, len(chunk) + 1))  # 1-based element index
        elif kind == "blank":
            texts, numbers = [], []
            for ln in chunk:
                while gen.rng.random() < 0.05:
                    texts.append("")
                texts.append(ln.text)
                numbers.append(len(texts))
            body = "\n".join(texts) + "\n"
        else:
            sep = "\r\n" if kind == "crlf" else "\n"
            body = sep.join(ln.text for ln in chunk) + sep
            numbers = list(range(1, len(chunk) + 1))
        batches.append(Batch(kind, chunk, body.encode(), numbers))
    return batches


def check_reply(b, r, max_listed):
    st.check(r.status == 200, f"{b.kind} batch: {r}")
    rep = r.json()
    st.check(set(rep) <= {"accepted", "rejected", "errors", "duplicate"}, f"reply keys: {sorted(rep)}")
    bad = [(n, ln) for n, ln in zip(b.line_numbers, b.lines) if ln.bad]
    st.check(rep["accepted"] == len(b.lines) - len(bad) and rep["rejected"] == len(bad),
             f"{b.kind} batch: accepted {rep['accepted']} rejected {rep['rejected']}, expected "
             f"{len(b.lines) - len(bad)} / {len(bad)}")
    want = bad[:max_listed]
    errs = rep["errors"]
    st.check(len(errs) == len(want), f"{b.kind} batch: {len(errs)} errors listed, expected {len(want)}")
    for e, (n, ln) in zip(errs, want):
        st.check(set(e) == {"line", "reason"}, f"error entry {e}")
        st.check(e["line"] == n, f"{b.kind} batch: error at line {e['line']}, expected {n} "
                                 f"({ln.bad}: {ln.text[:80]})")
        st.check(st.reason_ok(ln.bad, e["reason"]),
                 f"{b.kind} batch line {n} ({ln.bad}: {ln.text[:80]}): reason {e['reason']!r}")


# ---- query checks ---------------------------------------------------------------------------

def q(query_type, **kw):
    return {"queryType": query_type, "dataSource": "page_events", "aggregations": st.AGGREGATIONS,
            **kw}


def check_timeseries(s, events, name, period, interval, filt, pred):
    lo, hi = (st.parse_iso(x) for x in interval.split("/"))
    want = st.aggregate(events, lambda ev: ev.ts - ev.ts % period,
                        lambda ev: lo <= ev.ts < hi and (pred is None or pred(ev)))
    query = q("timeseries", granularity={MINUTE: "minute", HOUR: "hour"}[period],
              intervals=[interval])
    if filt:
        query["filter"] = filt
    got = s.query(query)
    # Zero-filled between the first and the last non-empty bucket.
    first, last = min(want), max(want)
    buckets = list(range(first, last + period, period))
    st.check([row["timestamp"] for row in got] == [st.iso_ms(b) for b in buckets],
             f"{name}: buckets {[row['timestamp'] for row in got][:5]}..., expected "
             f"{len(buckets)} from {st.iso_ms(first)} to {st.iso_ms(last)}")
    empty = st.Agg()
    for row, b in zip(got, buckets):
        st.same_values(row["result"], want.get(b, empty).result(), f"{name} {row['timestamp']}")
    st.log(f"{name}: {len(got)} buckets match "
           f"({sum(a.events for a in want.values())} events)")


def check_topn(s, events, name, dim, metric, threshold, filt, pred):
    want = st.aggregate(events, lambda ev: getattr(ev, dim), pred)
    query = q("topN", granularity="all", intervals=[st.INTERVAL], dimension=dim,
              metric=metric, threshold=threshold)
    if filt:
        query["filter"] = filt
    got = s.query(query)
    st.check(len(got) == 1 and got[0]["timestamp"] == st.iso_ms(st.START_MS),
             f"{name}: {str(got)[:300]}")
    rows = got[0]["result"]
    ranked = sorted((a.result()[metric] for a in want.values()), reverse=True)[:threshold]
    st.check([r[metric] for r in rows] == ranked,
             f"{name}: {metric} values {[r[metric] for r in rows]}, expected {ranked}")
    st.check(len({r[dim] for r in rows}) == len(rows), f"{name}: repeated values {rows}")
    for r in rows:
        st.check(r[dim] in want, f"{name}: unknown {dim} {r[dim]!r}")
        st.same_values(r, {dim: r[dim], **want[r[dim]].result()}, f"{name} {r[dim]}")
    st.log(f"{name}: top {len(rows)} match: {[(r[dim], r[metric]) for r in rows[:5]]}...")


def null_first(v):
    return (0, "") if v is None else (1, v)


def check_groupby(s, events):
    # device x event_type, events > 500, by events descending then the dimensions.
    want = st.aggregate(events, lambda ev: (ev.device, ev.event_type))
    rows = [{"device": k[0], "event_type": k[1], **a.result()} for k, a in want.items()
            if a.events > 500]
    rows.sort(key=lambda r: (-r["events"], null_first(r["device"]), null_first(r["event_type"])))
    rows = rows[:10]
    got = s.query(q("groupBy", granularity="all", intervals=[st.INTERVAL],
                    dimensions=["device", "event_type"],
                    having={"type": "greaterThan", "aggregation": "events", "value": 500},
                    limitSpec={"type": "default", "limit": 10, "columns": [
                        {"dimension": "events", "direction": "descending",
                         "dimensionOrder": "numeric"},
                        {"dimension": "device", "direction": "ascending"},
                        {"dimension": "event_type", "direction": "ascending"}]}))
    st.check(len(got) == len(rows), f"groupBy: {len(got)} rows, expected {len(rows)}: {got}")
    for g, w in zip(got, rows):
        st.check(g.get("version") == "v1" and g.get("timestamp") == st.iso_ms(st.START_MS),
                 f"groupBy row {g}")
        st.check(set(g["event"]) == set(w), f"groupBy columns {sorted(g['event'])}")
        st.same_values(g["event"], w, "groupBy device x event_type")
    st.log(f"groupBy device x event_type: {len(got)} rows match")

    # country by hour for three countries: every (hour, country) group, in any order.
    countries = ["US", "IN", "GB"]
    want = st.aggregate(events, lambda ev: (ev.ts - ev.ts % HOUR, ev.country),
                        lambda ev: ev.country in countries)
    got = s.query(q("groupBy", granularity="hour", intervals=[st.INTERVAL],
                    dimensions=["country"],
                    filter={"type": "in", "dimension": "country", "values": countries}))
    st.check(len(got) == len(want), f"groupBy hour x country: {len(got)} rows, want {len(want)}")
    seen = set()
    for g in got:
        key = (st.parse_iso(g["timestamp"]), g["event"]["country"])
        st.check(key in want and key not in seen, f"groupBy hour x country: row {g}")
        seen.add(key)
        st.same_values(g["event"], want[key].result(), f"groupBy {key}")
    st.log(f"groupBy hour x country: {len(got)} rows match")


# ---- the test -------------------------------------------------------------------------------

def test_bulk():
    gen = st.Generator(SEED)
    batches = make_batches(gen, gen.lines(N_LINES))
    events = [ln.event for b in batches for ln in b.lines if ln.event]
    nbad = sum(1 for b in batches for ln in b.lines if ln.bad)
    st.log(f"{len(batches)} batches, {len(events)} good events, {nbad} bad lines")
    max_listed = st.load_config().get("ingest", {}).get("max_errors_listed", 100)

    with st.Sluice("bulk") as s:
        s.up()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda b: b.post(s), batches))
        for b, r in zip(batches, replies):
            check_reply(b, r, max_listed)
        st.log(f"all {len(batches)} replies match ({s.retries} resent after 429/503)")

        total = q("timeseries", granularity="all", intervals=[st.INTERVAL])
        st.wait_until(lambda: s.query(total)[0]["result"]["events"] == len(events), timeout=120,
                      interval=0.1, what=f"{len(events)} events stored")
        st.same_values(s.query(total)[0]["result"], st.aggregate(events, lambda ev: 0)[0].result(),
                       "all events")

        check_timeseries(s, events, "timeseries minute country=US", MINUTE,
                         "2025-06-11T10:30:00Z/2025-06-11T11:45:00Z",
                         {"type": "selector", "dimension": "country", "value": "US"},
                         lambda ev: ev.country == "US")
        check_timeseries(s, events, "timeseries minute unfiltered", MINUTE, st.INTERVAL, None, None)
        check_timeseries(s, events, "timeseries hour device in (mobile, tablet), not click", HOUR,
                         st.INTERVAL,
                         {"type": "and", "fields": [
                             {"type": "in", "dimension": "device", "values": ["mobile", "tablet"]},
                             {"type": "not", "field": {"type": "selector",
                                                       "dimension": "event_type",
                                                       "value": "click"}}]},
                         lambda ev: ev.device in ("mobile", "tablet") and ev.event_type != "click")
        check_topn(s, events, "topN country by events", "country", "events", 10, None, None)
        check_topn(s, events, "topN page by latency sum (page_view)", "page", "lat_sum", 10,
                   {"type": "selector", "dimension": "event_type", "value": "page_view"},
                   lambda ev: ev.event_type == "page_view")
        check_groupby(s, events)


if __name__ == "__main__":
    st.main(test_bulk)
