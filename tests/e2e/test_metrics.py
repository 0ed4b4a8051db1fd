"""GET /metrics end to end: the page that covers every actor process passes
`promtool check metrics`, its numbers match what the test did (events accepted and
rejected by reason, HTTP requests, restarts of a killed actor, RSS of each process read
from /proc), and a real Prometheus server scraping it reports the number of events the
test posted through its query API.

Needs promtool and prometheus (Debian package `prometheus`, in ./sluice's package list).
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.parse

import sluicetest as st

# The generator's bad kinds -> Sluice's rejection reason labels (docs/metrics.md).
REASON = {
    "malformed": "malformed_json",
    "no_timestamp": "missing_timestamp",
    "bad_timestamp": "bad_timestamp",
    "latency_string": "bad_number",
    "not_object": "not_object",
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Prometheus text -> ({family: type}, [(name, {label: value}, float)])."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            st.check(name not in types, f"family {name} has two TYPE lines")
            types[name] = typ
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            st.check(m is not None, f"unparseable sample line: {line!r}")
            labels = dict(LABEL.findall(m.group(3) or ""))
            samples.append((m.group(1), labels, float(m.group(4))))
    return types, samples


def total(samples, name, **want):
    return sum(v for n, labels, v in samples
               if n == name and all(labels.get(k) == w for k, w in want.items()))


def scrape(s):
    r = s.get("/metrics")
    st.check(r.status == 200, f"/metrics: {r}")
    ctype = r.headers.get("Content-Type", "")
    st.check(ctype.startswith("text/plain; version=0.0.4"), f"Content-Type {ctype!r}")
    return r.body.decode()


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    st.check(p.returncode == 0, f"promtool check metrics failed ({p.returncode}):\n"
             f"{p.stdout}{p.stderr}")


def vmrss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def pid_of(s, actor, i):
    with open(os.path.join(s.data_dir, "run", f"{actor}.{i}.pid")) as f:
        return int(f.read())


def stored(s):
    r = s.query({"queryType": "timeseries", "dataSource": st.DATASOURCE, "granularity": "all",
                 "intervals": [st.INTERVAL], "aggregations": [{"type": "count", "name": "n"}]})
    return r[0]["result"]["n"] if r else 0


def check_page(s, text, keys):
    """Structure every page must have: one TYPE per family, consistent histograms, every
    instance up and labelled."""
    types, samples = parse(text)
    for name, typ in types.items():
        if typ == "counter":
            st.check(name.endswith("_total"), f"counter {name} lacks _total")
        if typ == "histogram":
            by_series = collections.defaultdict(dict)
            for n, labels, v in samples:
                base = {k: x for k, x in labels.items() if k != "le"}
                key = tuple(sorted(base.items()))
                if n == name + "_bucket" and labels.get("le") == "+Inf":
                    by_series[key]["inf"] = v
                elif n == name + "_count":
                    by_series[key]["count"] = v
            for key, d in by_series.items():
                st.check(d.get("inf") == d.get("count"), f"{name}{dict(key)}: +Inf bucket "
                         f"{d.get('inf')} != _count {d.get('count')}")
    for n, labels, _ in samples:
        st.check("actor" in labels and "actor_instance" in labels, f"{n} {labels} unlabelled")
    for actor, i in keys:
        up = total(samples, "sluice_actor_up", actor=actor, actor_instance=str(i))
        st.check(up == 1, f"{actor}.{i} not up in /metrics")
        st.check(total(samples, "sluice_process_resident_memory_bytes", actor=actor,
                       actor_instance=str(i)) > 0, f"no RSS for {actor}.{i}")
    return types, samples


def test_metrics():
    gen = st.Generator(20250611)
    lines = gen.lines(4000, bad_ratio=0.03)
    good = [ln for ln in lines if ln.event is not None]
    want_reasons = collections.Counter(REASON[ln.bad] for ln in lines if ln.bad)
    keys = st.instance_keys()
    with st.Sluice("metrics") as s:
        s.up()
        before = parse(scrape(s))[1]
        posts = 0
        accepted = 0
        for i in range(0, len(lines), 400):
            r = s.post_events("\n".join(ln.text for ln in lines[i:i + 400]))
            st.check(r.status == 200, f"post: {r}")
            accepted += r.json()["accepted"]
            posts += 1
        st.check(accepted == len(good), f"accepted {accepted}, expected {len(good)}")
        st.wait_until(lambda: stored(s) == len(good), timeout=60, what="events stored")

        # Lag drains to 0 once the storer has committed everything.
        def caught_up():
            smp = parse(scrape(s))[1]
            lag = total(smp, "sluice_log_lag_events")
            return smp if lag == 0 else None
        st.wait_until(caught_up, timeout=60, what="log lag back to 0")
        text = scrape(s)
        promtool_check(text)
        types, samples = check_page(s, text, keys)
        for fam in ("sluice_events_accepted_total", "sluice_http_request_duration_seconds",
                    "sluice_freshness_seconds", "sluice_log_lag_seconds",
                    "sluice_kafka_consumer_lag_messages", "sluice_lmdb_used_bytes",
                    "sluice_query_duration_seconds", "sluice_process_cpu_seconds_total",
                    "sluice_actor_restarts_total", "sluice_alert_state"):
            st.check(fam in types, f"family {fam} missing from /metrics")

        got = total(samples, "sluice_events_accepted_total", datasource=st.DATASOURCE)
        st.check(got == len(good), f"sluice_events_accepted_total = {got}, posted {len(good)}")
        got_reasons = collections.Counter()
        for n, labels, v in samples:
            if n == "sluice_events_rejected_total" and v:
                got_reasons[labels["reason"]] += int(v)
        st.check(got_reasons == want_reasons,
                 f"rejections by reason {dict(got_reasons)}, expected {dict(want_reasons)}")
        d_posts = (total(samples, "sluice_http_requests_total", method="POST", route="/v1/events",
                         status="200") -
                   total(before, "sluice_http_requests_total", method="POST", route="/v1/events",
                         status="200"))
        st.check(d_posts == posts, f"{d_posts} POST /v1/events 200 counted, {posts} sent")
        st.check(total(samples, "sluice_http_request_duration_seconds_count",
                       route="/v1/events") >= posts, "latency histogram misses requests")
        st.check(total(samples, "sluice_storer_rows_written_total") > 0, "no rows written")
        st.check(total(samples, "sluice_freshness_seconds_count") > 0, "no freshness samples")
        st.check(total(samples, "sluice_query_duration_seconds_count", type="timeseries") >= 1,
                 "query histogram empty")
        st.check(total(samples, "sluice_lmdb_map_size_bytes") >=
                 total(samples, "sluice_lmdb_used_bytes") > 0, "LMDB usage")
        for actor, i in keys:
            st.check(total(samples, "sluice_actor_restarts_total", actor=actor,
                           actor_instance=str(i)) == 0, f"{actor}.{i} restarted")
            # RSS against /proc read by the test (the process keeps running: a margin).
            rss = total(samples, "sluice_process_resident_memory_bytes", actor=actor,
                        actor_instance=str(i))
            real = vmrss_bytes(pid_of(s, actor, i))
            st.check(0.5 * real <= rss <= 2 * real, f"{actor}.{i} RSS {rss} vs VmRSS {real}")

        # A killed actor: down in the scrape while it is gone is allowed, and once the
        # supervisor restarted it its restart counter says 1.
        victim = ("query", 0)
        os.kill(pid_of(s, *victim), signal.SIGKILL)
        st.wait_until(lambda: (s.status() or {}).get(victim, {}).get("restarts") == 1 and
                      s.status()[victim]["state"] == "up", timeout=30, what="query.0 restarted")

        def restarted():
            smp = parse(scrape(s))[1]
            return (total(smp, "sluice_actor_restarts_total", actor="query",
                          actor_instance="0") == 1 and
                    total(smp, "sluice_actor_up", actor="query", actor_instance="0") == 1)
        st.wait_until(restarted, timeout=30, what="restart counted in /metrics")
        promtool_check(scrape(s))

        run_prometheus(s, len(good))


def run_prometheus(s, want):
    """A real Prometheus on loopback scraping this instance every second; its query API
    must report sum(sluice_events_accepted_total) == want."""
    tmp = tempfile.mkdtemp(prefix="sluice-prom-")
    port = st.free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{s.port}"]
""")
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    ok = False
    try:
        def query(q):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            r = st.http("GET", url, timeout=10)
            if r.status != 200:
                return None
            body = json.loads(r.body)
            res = body["data"]["result"]
            return float(res[0]["value"][1]) if res else None

        def scraped():
            st.check(proc.poll() is None, f"prometheus exited with {proc.returncode}")
            return query('up{job="sluice"}') == 1 and query("sum(sluice_events_accepted_total)")
        st.wait_until(scraped, timeout=90, interval=0.2, what="Prometheus scraped Sluice")
        got = query("sum(sluice_events_accepted_total)")
        st.check(got == want, f"Prometheus says {got} events accepted, the test posted {want}")
        n_up = query('count(sluice_actor_up{job="sluice"} == 1)')
        st.check(n_up == len(st.instance_keys()), f"Prometheus sees {n_up} actors up")
        st.log(f"Prometheus on 127.0.0.1:{port}: sum(sluice_events_accepted_total) = {got}")
        ok = True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if not ok:
            with open(os.path.join(tmp, "prometheus.log")) as f:
                st.log("==== prometheus.log\n" + f.read()[-5000:])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    st.main(test_metrics)
