"""HTTP edge cases of the gateway: unknown datasource, empty and oversized bodies (also
after gzip inflation), bad queries with Druid's errorMessage, unknown paths and methods,
/healthz listing every actor instance, and /v1/datasources counting what was ingested.
Runs with a config whose gateway.max_body_bytes is small."""

import gzip
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

MAX_BODY = 4096


def expect(r, status, what, field="error"):
    st.check(r.status == status, f"{what}: expected {status}, got {r}")
    body = r.json()
    st.check(isinstance(body, dict) and isinstance(body.get(field), str) and body[field],
             f"{what}: no {field!r} message in {body}")
    return body


def test_http_errors():
    cfg_dir = tempfile.mkdtemp(prefix="sluice-cfg-")
    try:
        run(st.write_config(cfg_dir, gateway={"max_body_bytes": MAX_BODY}))
    finally:
        shutil.rmtree(cfg_dir, ignore_errors=True)


def run(config):
    cfg = st.load_config(config)
    with st.Sluice("http", config=config) as s:
        s.up()
        good = st.Generator(7).good().text

        # -- events endpoint --
        b = expect(s.post_events(good, datasource="nope"), 404, "unknown datasource")
        st.check("nope" in b["error"], f"404 should name the datasource: {b}")
        expect(s.post("/v1/events", good), 400, "missing datasource parameter")
        b = expect(s.post_events(b""), 400, "empty body")
        st.log(f"empty body: {b['error']}")
        big = "\n".join([good] * (MAX_BODY // len(good) + 2))
        st.check(len(big) > MAX_BODY, "body not over the limit")
        expect(s.post_events(big), 413, "body over max_body_bytes")
        # Small on the wire, too big once inflated.
        bomb = "\n".join([good] * 200)
        st.check(len(gzip.compress(bomb.encode())) < MAX_BODY < len(bomb), "gzip sizes")
        expect(s.post_events(bomb, encoding="gzip"), 413, "gzip body inflating over the limit")
        expect(s.post("/v1/events?datasource=page_events", b"not gzip at all",
                      headers={"Content-Encoding": "gzip"}), 400, "invalid gzip body")
        expect(s.post_events(good, content_type="image/png"), 415, "unsupported content type")
        # Just under the limit is fine.
        fits = "\n".join([good] * (MAX_BODY // (len(good) + 1)))
        r = s.post_events(fits)
        st.check(r.status == 200 and r.json()["accepted"] == fits.count("\n") + 1,
                 f"body under the limit: {r}")

        # -- query endpoint --
        base = {"queryType": "timeseries", "dataSource": "page_events", "granularity": "minute",
                "intervals": [st.INTERVAL], "aggregations": [{"type": "count", "name": "n"}]}
        cases = [
            ("not JSON", b"{not json"),
            ("unknown queryType", dict(base, queryType="scanEverything")),
            ("bad interval", dict(base, intervals=["yesterday/today"])),
            ("unknown datasource", dict(base, dataSource="nope")),
            ("unknown aggregator field", dict(base, aggregations=[
                {"type": "longSum", "name": "x", "fieldName": "no_such_metric"}])),
            ("misspelled key", dict(base, filters={"type": "true"})),
        ]
        for what, body in cases:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            b = expect(s.post("/v1/query", raw), 400, f"query: {what}", field="errorMessage")
            st.check(b.get("error"), f"query {what}: no error category: {b}")
            st.log(f"query {what}: 400 {b['errorMessage']}")
        st.check("nope" in s.post("/v1/query", json.dumps(dict(base, dataSource="nope")))
                 .json()["errorMessage"], "unknown datasource not named")
        expect(s.post("/v1/query", b""), 400, "empty query body")

        # -- routing --
        r = s.get("/no/such/path")
        st.check(r.status == 404, f"unknown path: {r}")
        r = s.get("/v1/query")
        st.check(r.status == 405 and "POST" in r.headers.get("Allow", ""), f"GET /v1/query: {r}")

        # -- healthz: every instance of the config, each up with its pid --
        r = s.healthz()
        st.check(r.status == 200, f"healthz: {r}")
        h = r.json()
        st.check(h["status"] == "ok", f"healthz status: {h}")
        listed = {(a["actor"], a["instance"]): a for a in h["actors"]}
        want = set(st.instance_keys(cfg))
        st.check(set(listed) == want and len(h["actors"]) == len(want),
                 f"healthz lists {sorted(listed)}, expected {sorted(want)}")
        status = s.status()
        for key, a in listed.items():
            st.check(a["up"] is True and a["pid"] == status[key]["pid"],
                     f"healthz {key}: {a} vs status {status[key]}")

        # -- datasources: counts after a known ingest --
        gen = st.Generator(11)
        lines = [gen.good() for _ in range(300)]
        events = [ln.event for ln in lines]
        for i in range(0, len(lines), 20):  # small bodies: the limit is 4 KiB
            chunk = "\n".join(ln.text for ln in lines[i:i + 20])
            r = s.post_events(chunk)
            st.check(r.status == 200 and r.json()["accepted"] == len(lines[i:i + 20]),
                     f"ingest: {r}")
        total = len(events) + fits.count("\n") + 1

        def listing():
            r = s.get("/v1/datasources")
            st.check(r.status == 200, f"datasources: {r}")
            ds = {d["name"]: d for d in r.json()}
            return ds if ds.get("page_events", {}).get("events") == total else None

        ds = st.wait_until(listing, timeout=60, what=f"page_events with {total} events")
        pe = ds["page_events"]
        st.check(set(ds) == {"page_events"}, f"datasources: {sorted(ds)}")
        # The `fits` body repeated one event (the same as Generator(7)'s first).
        allev = events + [st.Generator(7).good().event]
        rows = {(ev.ts - ev.ts % 60000, ev.event_type, ev.page, ev.device, ev.country)
                for ev in allev}
        hours = {ev.ts - ev.ts % 3600000 for ev in allev}
        lo = min(ev.ts for ev in allev)
        hi = max(ev.ts for ev in allev)
        st.check(pe["rows"] == len(rows), f"rows {pe['rows']}, expected {len(rows)}")
        st.check(pe["segments"] == len(hours), f"segments {pe['segments']}, expected {len(hours)}")
        st.check(pe["minTime"] == st.iso_ms(lo - lo % 60000) and
                 pe["maxTime"] == st.iso_ms(hi - hi % 60000),
                 f"minTime/maxTime {pe['minTime']} / {pe['maxTime']}")
        st.log(f"datasources: {json.dumps({k: v for k, v in pe.items() if k != 'spec'})}")


if __name__ == "__main__":
    st.main(test_http_errors)
