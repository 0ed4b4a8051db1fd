"""Helpers shared by the durability tests (backpressure, chaos, disk full, Kafka, torn
tail): keyed batches posted until acknowledged or until the store is full, the pids and
RSS of the actor processes, and the exact-results check."""

import json
import os
import time

import sluicetest as st


def batches(seed, n, size, bad_ratio=0.0, prefix="b"):
    gen = st.Generator(seed)
    out = []
    for b in range(n):
        lines = gen.lines(size, bad_ratio=bad_ratio)
        out.append((f"{prefix}-{seed}-{b}", lines, "\n".join(l.text for l in lines).encode()))
    return out


def post(s, batch, timeout=30):
    key, _, body = batch
    return st.http("POST", f"{s.url}/v1/events?datasource={st.DATASOURCE}", body,
                   {"Content-Type": "application/x-ndjson", "Idempotency-Key": key},
                   timeout=timeout)


def post_until_acked(s, batch, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = post(s, batch)
            if r.status == 200:
                return r
            st.check(r.status in (429, 503, 507), f"unexpected reply {r}")
        except OSError:
            pass
        st.check(time.monotonic() < deadline, f"batch {batch[0]} not acknowledged in time")
        time.sleep(0.1)


def post_all_acked(s, batches, timeout=120):
    """post_until_acked for each batch in turn."""
    for b in batches:
        post_until_acked(s, b, timeout)


def events_of(acked):
    return [l.event for _, lines, _ in acked for l in lines if l.event is not None]


def pid_of(s, actor, i=0):
    with open(os.path.join(s.data_dir, "run", f"{actor}.{i}.pid")) as f:
        return int(f.read())


def rss_mib(pid, field="VmRSS"):
    """A memory line of /proc/<pid>/status in MiB: VmRSS, or RssAnon (what memory_mb
    bounds)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def count(s, interval=st.INTERVAL):
    r = s.post("/v1/query", json.dumps({
        "queryType": "timeseries", "dataSource": st.DATASOURCE, "granularity": "all",
        "intervals": [interval], "aggregations": [{"type": "count", "name": "n"}]}))
    if r.status != 200:
        return None
    rows = r.json()
    return rows[0]["result"]["n"] if rows else 0


def check_results(s, events, interval=st.INTERVAL, countries=False):
    """Compares the per-minute results (and per-country ones, with countries) with what
    the events themselves add up to; returns the number of minutes."""
    want = st.aggregate(events, lambda e: e.ts - e.ts % 60000)
    got = {st.parse_iso(r["timestamp"]): r["result"] for r in s.query({
        "queryType": "timeseries", "dataSource": st.DATASOURCE, "granularity": "minute",
        "intervals": [interval], "aggregations": st.AGGREGATIONS,
        "context": {"skipEmptyBuckets": True}})}
    st.check(set(got) == set(want), f"minutes differ: {sorted(set(got) ^ set(want))[:5]}")
    for m, agg in want.items():
        st.same_values(got[m], agg.result(), f"minute {st.iso_ms(m)}")
    if not countries:
        return len(want)
    want_country = st.aggregate(events, lambda e: e.country)
    got = {r["event"]["country"]: r["event"] for r in s.query({
        "queryType": "groupBy", "dataSource": st.DATASOURCE, "granularity": "all",
        "intervals": [interval], "dimensions": ["country"], "aggregations": st.AGGREGATIONS})}
    st.check(set(got) == set(want_country), "countries differ")
    for c, agg in want_country.items():
        st.same_values(got[c], agg.result(), f"country {c}")
    st.log(f"exact: {len(want)} minutes and {len(want_country)} countries match")
    return len(want)


def check_exact(s, events, interval=st.INTERVAL, timeout=120, countries=False):
    """Waits until the total reaches len(events), then compares per-minute results (and
    per-country ones, with countries); returns the total counted."""
    n = st.wait_until(lambda: (lambda c: c if c is not None and c >= len(events) else None)(
        count(s, interval)), timeout=timeout, what=f"{len(events)} events counted")
    st.check(n == len(events), f"{n} events counted, {len(events)} acknowledged" +
             (" (double count)" if n > len(events) else ""))
    check_results(s, events, interval, countries)
    return n


def post_until_full(s, batches, after_ack=None):
    """Posts the batches in order until one is answered 507 (a 429 or 503 is skipped,
    anything else fails). Returns the acknowledged batches and the 507 reply (None when
    every batch was taken). after_ack(acked) runs after each acknowledged batch."""
    acked = []
    for b in batches:
        r = post(s, b)
        if r.status == 200:
            acked.append(b)
            if after_ack is not None:
                after_ack(acked)
        elif r.status == 507:
            return acked, r
        else:
            st.check(r.status in (429, 503), f"unexpected {r}")
    return acked, None
