"""Memory bounds (memory_mb.<actor>): an instance with small bounds takes a bulk load
that would take its windowers and storer far above them, and no process goes above its
bound while every acknowledged event is counted exactly; the bound is seen to act
(sluice_memory_actions_total), not just to be far away. The gateway refuses a body that
does not fit in its share with 503 + Retry-After naming the setting, and a query whose
answer does not fit in its share of the gateway's bound gets 400 "Resource limit exceeded";
both leave the instance working.

Memory is the anonymous resident memory (RssAnon in /proc/<pid>/status), read here
independently of the processes' own measurement, every 20 ms while the load runs."""

import concurrent.futures
import json
import socket
import re
import tempfile
import threading
import time

import durability as d
import sluicetest as st

BOUNDS = {"gateway": 48, "ingest": 64, "partitioner": 64, "windower": 128, "storer": 96,
          "query": 96, "alerter": 64}


class Sampler(threading.Thread):
    """Peak RssAnon per actor instance until stopped."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.pids = {f"{a}.{i}": d.pid_of(s, a, i) for a, i in st.instance_keys()}
        self.peak = {k: 0.0 for k in self.pids}
        self.samples = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for k, pid in self.pids.items():
                try:
                    self.peak[k] = max(self.peak[k], d.rss_mib(pid, "RssAnon"))
                except OSError:
                    pass  # restarted: the check of restarts below fails the test
            self.samples += 1
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.join()


def headers_only(s, length):
    """POSTs the headers of an NDJSON body of length bytes without the body; returns the
    reply's status, headers (lower-case names) and body."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
        c.sendall((f"POST /v1/events?datasource={st.DATASOURCE} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n"
                   f"Content-Length: {length}\r\n\r\n").encode())
        reply = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def memory_actions(s):
    text = s.get("/metrics").body.decode()
    out = {}
    for m in re.finditer(r'^sluice_memory_actions_total\{actor="(\w+)",actor_instance="\d+",'
                         r'action="(\w+)"\} (\S+)$', text, re.M):
        key = (m.group(1), m.group(2))
        out[key] = out.get(key, 0) + float(m.group(3))
    return out


def test_memory():
    cfg = st.write_config(tempfile.mkdtemp(prefix="sluice-mem-cfg-"), memory_mb=BOUNDS,
                          gateway={"max_body_bytes": 32 << 20})
    batches = d.batches(11, 60, 4000, prefix="mem")
    with st.Sluice("memory", config=cfg) as s:
        s.up()
        pids_before = {k: v["pid"] for k, v in s.status().items()}
        sampler = Sampler(s)
        sampler.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda b: d.post_until_acked(s, b), batches))
            events = d.events_of(batches)
            d.check_exact(s, events, countries=True)

            # The gateway: a body larger than its share (40% of 48 MiB) but under
            # gateway.max_body_bytes (32 MiB here) is refused before it is read.
            # The reply comes on the headers: send them alone, as a client would with
            # Expect: 100-continue, and read it.
            status, headers, body = headers_only(s, 24 << 20)
            st.check(status == 503, f"a 24 MiB body under a 48 MiB gateway bound: {status}")
            st.check(headers.get("retry-after") == "1", f"no Retry-After: {headers}")
            st.check("memory_mb.gateway" in json.loads(body)["error"], f"not named: {body}")
            st.log(f"large body refused: {json.loads(body)['error'][:160]}")

            # A query whose answer does not fit: every minute by all four dimensions, about
            # 20 MiB of JSON against 3 MiB per answer (half of memory_mb.gateway shared
            # by the 8 HTTP threads).
            r = st.http("POST", f"{s.url}/v1/query", json.dumps({
                "queryType": "groupBy", "dataSource": st.DATASOURCE, "granularity": "minute",
                "intervals": [st.INTERVAL],
                "dimensions": ["page", "country", "device", "event_type"],
                "aggregations": [{"type": "count", "name": "n"}]}).encode(),
                {"Content-Type": "application/json"})
            st.check(r.status == 400, f"an answer of ~{len(events) * 150 >> 20} MiB: {r}")
            err = r.json()
            st.check(err.get("error") == "Resource limit exceeded", f"wrong error: {err}")
            st.check("memory_mb" in err.get("errorMessage", ""), f"does not name it: {err}")
            st.log(f"large query refused: {err['errorMessage'][:160]}")
        finally:
            sampler.stop()

        # Still answering, nothing lost or counted twice by the refusals.
        d.check_exact(s, events)
        pids_after = {k: v["pid"] for k, v in s.status().items()}
        st.check(pids_after == pids_before, f"processes restarted: {pids_before} -> {pids_after}")
        st.log(f"{sampler.samples} samples; peak RssAnon MiB (bound): " + ", ".join(
            f"{k}={v:.0f} ({BOUNDS[k.split('.')[0]]})" for k, v in sorted(sampler.peak.items())))
        for k, v in sampler.peak.items():
            bound = BOUNDS[k.split(".")[0]]
            st.check(v <= bound, f"{k} peaked at {v:.1f} MiB, above its bound of {bound} MiB")
        acts = memory_actions(s)
        st.log(f"memory actions: {acts}")
        for key in (("windower", "flush"), ("storer", "commit"), ("gateway", "refuse"),
                    ("query", "refuse")):
            st.check(acts.get(key, 0) > 0, f"no {key[1]} by the {key[0]}: the bound never acted")


if __name__ == "__main__":
    st.main(test_memory)
