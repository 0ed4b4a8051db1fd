"""Helpers shared by the durability tests: keyed batches posted until acknowledged,
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


def events_of(acked):
    return [l.event for _, lines, _ in acked for l in lines if l.event is not None]


def pid_of(s, actor, i=0):
    with open(os.path.join(s.data_dir, "run", f"{actor}.{i}.pid")) as f:
        return int(f.read())


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
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


def check_exact(s, events, interval=st.INTERVAL, timeout=120):
    """Waits until the total reaches len(events), then compares per-minute results."""
    n = st.wait_until(lambda: (lambda c: c if c is not None and c >= len(events) else None)(
        count(s, interval)), timeout=timeout, what=f"{len(events)} events counted")
    st.check(n == len(events), f"{n} events counted, {len(events)} acknowledged")
    want = st.aggregate(events, lambda e: e.ts - e.ts % 60000)
    got = {st.parse_iso(r["timestamp"]): r["result"] for r in s.query({
        "queryType": "timeseries", "dataSource": st.DATASOURCE, "granularity": "minute",
        "intervals": [interval], "aggregations": st.AGGREGATIONS,
        "context": {"skipEmptyBuckets": True}})}
    st.check(set(got) == set(want), "minutes differ")
    for m, agg in want.items():
        st.same_values(got[m], agg.result(), f"minute {st.iso_ms(m)}")
    return n
