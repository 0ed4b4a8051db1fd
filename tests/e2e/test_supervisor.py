"""The supervisor: status, restart of a killed actor, graceful down/up keeping every
accepted event (including a batch posted right before `down`), refusing a second `up`
on a running data dir, and two instances side by side."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

QUERIES = [
    {"queryType": "timeseries", "dataSource": "page_events", "granularity": "minute",
     "intervals": [st.INTERVAL], "aggregations": st.AGGREGATIONS},
    {"queryType": "topN", "dataSource": "page_events", "granularity": "all",
     "intervals": [st.INTERVAL], "dimension": "page", "metric": "events", "threshold": 20,
     "aggregations": st.AGGREGATIONS},
    {"queryType": "groupBy", "dataSource": "page_events", "granularity": "hour",
     "intervals": [st.INTERVAL], "dimensions": ["country", "device"],
     "aggregations": st.AGGREGATIONS,
     "limitSpec": {"type": "default", "columns": [
         {"dimension": "country", "direction": "ascending"},
         {"dimension": "device", "direction": "ascending"}]}},
]
TOTAL = {"queryType": "timeseries", "dataSource": "page_events", "granularity": "all",
         "intervals": [st.INTERVAL], "aggregations": [{"type": "count", "name": "events"}]}


def stored(s):
    r = s.query(TOTAL)
    return r[0]["result"]["events"] if r else 0


def ingest(s, lines, batch=2000):
    n = 0
    for i in range(0, len(lines), batch):
        body = "\n".join(ln.text for ln in lines[i:i + batch])
        r = s.post_events(body)
        st.check(r.status == 200, f"ingest: {r}")
        n += r.json()["accepted"]
    return n


def wait_stored(s, n):
    st.wait_until(lambda: stored(s) == n, timeout=60, interval=0.05, what=f"{n} events stored")


def test_supervisor():
    gen = st.Generator(4242)
    cfg = st.load_config()
    keys = st.instance_keys(cfg)
    with st.Sluice("sup-a") as a:
        a.up()

        # status: every instance up with a live pid, no restarts yet.
        status = a.status()
        st.check(set(status) == set(keys), f"status lists {sorted(status)}, expected {sorted(keys)}")
        for key, row in status.items():
            st.check(row["state"] == "up" and row["pid"] and row["restarts"] == 0,
                     f"status {key}: {row}")
            os.kill(row["pid"], 0)
        refused = a.sluice("up", "--http", f"127.0.0.1:{st.free_port()}", check=False)
        st.check(refused.returncode != 0 and "already running" in refused.stderr,
                 f"second up on a running data dir: {refused.returncode} {refused.stderr}")

        total = ingest(a, gen.lines(20000, bad_ratio=0))
        wait_stored(a, total)

        # kill -9 a windower: the supervisor restarts it and health comes back.
        victim = ("windower", cfg.get("processes", {}).get("windower", 1) - 1)
        old = status[victim]["pid"]
        os.kill(old, signal.SIGKILL)
        row = st.wait_until(lambda: (lambda r: r if r["restarts"] >= 1 and r["state"] == "up"
                                     and r["pid"] != old else None)(a.status()[victim]),
                            timeout=30, what=f"{victim} restarted")
        st.log(f"{victim} restarted: pid {old} -> {row['pid']}, restarts {row['restarts']}")
        health = []  # the replies seen, for the message on timeout
        try:
            st.wait_until(lambda: health.append(a.healthz()) or health[-1].status == 200,
                          timeout=30, what="healthz 200 again")
        except AssertionError as e:
            raise AssertionError(f"{e}; last reply {health[-1] if health else None}; "
                                 f"status {a.status()}") from None
        others = {k: r for k, r in a.status().items() if k != victim}
        st.check(all(r["restarts"] == 0 and r["pid"] == status[k]["pid"] for k, r in others.items()),
                 f"other instances changed: {others}")

        # The pipeline works after the restart.
        total += ingest(a, gen.lines(5000, bad_ratio=0))
        wait_stored(a, total)
        before = [a.query(q) for q in QUERIES]
        a.down()
        st.check(a.status() is None, "status after down should say not running")
        st.check(a.sluice("status", check=False).returncode != 0, "status exit code after down")
        a.up()
        after = [a.query(q) for q in QUERIES]
        st.check(after == before, "query results differ across down/up")

        # Posted right before down, not waited for: down must drain it into the store.
        total += ingest(a, gen.lines(3000, bad_ratio=0), batch=1000)
        a.down()
        a.up()
        st.check(stored(a) == total, f"after down/up: {stored(a)} events stored, {total} accepted")

        # A second instance beside it: its own data dir, port and data.
        with st.Sluice("sup-b") as b:
            b.up()
            st.check(b.port != a.port, "same port")
            nb = ingest(b, st.Generator(99).lines(1000, bad_ratio=0))
            wait_stored(b, nb)
            st.check(stored(a) == total, f"instance A changed: {stored(a)} != {total}")
            sa, sb = a.status(), b.status()
            st.check(set(sa) == set(sb) == set(keys), "status of the two instances")
            pids_a = {r["pid"] for r in sa.values()}
            pids_b = {r["pid"] for r in sb.values()}
            st.check(not pids_a & pids_b, "the instances share processes")
            b.down()
            st.check(a.healthz().status == 200 and stored(a) == total,
                     "instance A affected by stopping B")


if __name__ == "__main__":
    st.main(test_supervisor)
