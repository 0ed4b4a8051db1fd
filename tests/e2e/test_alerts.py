"""Alerts end to end: seeded page-view traffic, minute by minute, with an injected drop
(two minutes at 20% of normal) and then a spike (4x). Rules on the data clock judge
each minute once it is closed by the next minute's data, so the expected transitions
are known exactly: the drop rule (for = 1 minute) goes pending on the first low minute
and fires on the second, and resolves on the recovery; the spike rule (for = 0) fires
on the spiked minute and resolves on the next; a SQL threshold rule (views > 300) does
the same on the spike. A rule whose query fails (unknown datasource) shows the error
state, and nothing crashes.

A webhook receiver in the test (http.server on 127.0.0.1) gets each transition exactly
once, as history lists them; it refuses the first delivery of one of them with a 500,
which the alerter retries. Then the alerter is killed and restarted by the supervisor:
states are restored and nothing is sent again.
"""

import collections
import json
import os
import random
import signal
import tempfile
import threading
import http.server

import sluicetest as st

BASE_MS = st.parse_iso("2025-06-11T10:00:00Z")
MIN = 60000
# Page views per minute m0..m11: normal, a drop in m6-m7, a spike in m9; m12-m13 (a new
# drop) are posted at the end, while the webhook refuses deliveries.
VIEWS = [100, 100, 100, 100, 100, 100, 20, 20, 100, 400, 100, 100, 20, 20]
MAIN = 12  # minutes of the main sequence
CLICKS = 30  # other events each minute, which the rules' filter must leave out


def iso(ms):
    return st.iso_ms(ms)


class Receiver:
    """Webhook receiver: records every delivery it answered 200 to; answers 500 to the
    first delivery of the transition ids in fail_once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = []          # payloads answered 200
        self.attempts = collections.Counter()
        self.fail_once = set()
        self.refuse_all = False
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with recv.lock:
                    recv.attempts[body["id"]] += 1
                    fail = recv.refuse_all or ((body["rule"], body["to"]) in recv.fail_once and
                                               recv.attempts[body["id"]] == 1)
                    if not fail:
                        recv.ok.append(body)
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.ok)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def page_view_query(datasource=st.DATASOURCE):
    return {
        "queryType": "timeseries", "dataSource": datasource,
        "filter": {"type": "selector", "dimension": "event_type", "value": "page_view"},
        "aggregations": [{"type": "count", "name": "views"}],
    }


def write_rules(directory, hook):
    notify = {"webhook": hook, "on": ["ok", "pending", "firing", "resolved", "error"],
              "timeout": "PT2S", "retries": 8, "backoff": "PT0.2S"}
    rules = {
        "drop.json": {
            "name": "views_drop", "query": page_view_query(), "value": "views",
            "window": "PT1M", "clock": "data", "every": "PT1S", "for": "PT1M",
            "condition": {"type": "drop", "below_percent": 50, "baseline_windows": 5},
            "notify": notify, "labels": {"severity": "warning"},
        },
        "spike.json": {
            "name": "views_spike", "query": page_view_query(), "value": "views",
            "window": "PT1M", "clock": "data", "every": "PT1S", "for": "PT0S",
            "condition": {"type": "spike", "above_percent": 200, "baseline_windows": 5},
            "notify": notify,
        },
        "sql.json": {
            "name": "views_sql",
            "sql": "SELECT COUNT(*) AS value FROM page_events WHERE event_type = 'page_view' "
                   "AND __time >= ? AND __time < ?",
            "datasource": st.DATASOURCE, "window": "PT1M", "clock": "data", "every": "PT1S",
            "condition": {"type": "threshold", "above": 300}, "notify": notify,
        },
        "broken.json": {
            "name": "broken_query", "query": page_view_query("no_such_datasource"),
            "window": "PT1M", "clock": "wall", "every": "PT1S",
            "condition": {"type": "threshold", "above": 1}, "notify": notify,
        },
    }
    for name, rule in rules.items():
        with open(os.path.join(directory, name), "w") as f:
            json.dump(rule, f, indent=2)


def minute_events(rng, m):
    """NDJSON of minute m's events: VIEWS[m] page views and CLICKS clicks."""
    out = []
    start = BASE_MS + m * MIN
    for kind, n in (("page_view", VIEWS[m]), ("click", CLICKS)):
        for _ in range(n):
            ts = start + rng.randrange(MIN)
            out.append(json.dumps({"event_type": kind, "timestamp": ts,
                                   "user_id": f"u{rng.randrange(500)}", "page": "/",
                                   "device": "desktop", "country": "US"}))
    rng.shuffle(out)
    return "\n".join(out)


def count_minute(s, m):
    r = s.query({"queryType": "timeseries", "dataSource": st.DATASOURCE, "granularity": "all",
                 "intervals": [f"{iso(BASE_MS + m * MIN)}/{iso(BASE_MS + (m + 1) * MIN)}"],
                 "aggregations": [{"type": "count", "name": "n"}]})
    return r[0]["result"]["n"] if r else 0


def post_minute(s, rng, m):
    r = s.post_events(minute_events(rng, m))
    st.check(r.status == 200 and r.json()["accepted"] == VIEWS[m] + CLICKS, f"post m{m}: {r}")
    st.wait_until(lambda: count_minute(s, m) == VIEWS[m] + CLICKS, timeout=30,
                  what=f"minute {m} stored")
    # Minute m's data closes window m-1 on the data clock: wait until the rules on it
    # have judged that window.
    end = iso(BASE_MS + m * MIN)
    st.wait_until(lambda: all((x["window"] or {}).get("end") == end
                              for n, x in rules_by_name(s).items() if n != "broken_query"),
                  timeout=30, what=f"window ending {end} evaluated")


def rules_by_name(s):
    r = s.get("/v1/alerts")
    st.check(r.status == 200, f"/v1/alerts: {r}")
    return {x["name"]: x for x in r.json()["rules"]}


def history(s, query=""):
    r = s.get("/v1/alerts/history" + query)
    st.check(r.status == 200, f"/v1/alerts/history: {r}")
    return r.json()["history"]


def test_alerts():
    rng = random.Random(8)
    recv = Receiver()
    tmp = tempfile.mkdtemp(prefix="sluice-alerts-cfg-")
    rules_dir = os.path.join(tmp, "alerts")
    os.mkdir(rules_dir)
    write_rules(rules_dir, recv.url)
    cfg = st.write_config(tmp, alerter={"rules": rules_dir})
    try:
        with st.Sluice("alerts", config=cfg) as s:
            s.up()
            run(s, rng, recv)
    finally:
        recv.close()


def run(s, rng, recv):
    # The failing rule shows the error state with the query's complaint, and the alerter
    # keeps running (healthz counts it).
    broken = st.wait_until(lambda: (lambda b: b if b["state"] == "error" else None)(
        rules_by_name(s)["broken_query"]), timeout=30, what="broken_query in error")
    st.check("no_such_datasource" in (broken["error"] or ""), f"error text: {broken}")
    recv.fail_once.add(("views_drop", "firing"))

    for m in range(MAIN):
        post_minute(s, rng, m)
    st.check(s.healthz().status == 200, "healthz with a failing rule")

    rules = rules_by_name(s)
    st.check(rules["views_drop"]["state"] == "resolved", f"drop: {rules['views_drop']}")
    st.check(rules["views_spike"]["state"] == "resolved", f"spike: {rules['views_spike']}")
    st.check(rules["views_sql"]["state"] == "resolved", f"sql: {rules['views_sql']}")
    st.check(rules["broken_query"]["state"] == "error", f"broken: {rules['broken_query']}")

    # Each rule's transitions, oldest first, with the windows, values and baselines that
    # caused them (baselines: the mean of the 5 minutes before, worked out from VIEWS).
    # Across rules the order depends on which was evaluated first: compared per rule.
    hist = list(reversed(history(s, "?limit=100")))
    got = sorted(((h["rule"], h["from"], h["to"], h["window"]["start"] if h["window"] else None,
                   h["value"], h["baseline"]) for h in hist), key=lambda t: t[0])

    def w(m):
        return iso(BASE_MS + m * MIN)

    def mean(a, b):
        return sum(VIEWS[a:b]) / (b - a)
    want = [
        ("broken_query", "ok", "error", None, None, None),
        ("views_drop", "ok", "pending", w(6), 20, mean(1, 6)),
        ("views_drop", "pending", "firing", w(7), 20, mean(2, 7)),
        ("views_drop", "firing", "resolved", w(8), 100, mean(3, 8)),
        ("views_spike", "ok", "firing", w(9), 400, mean(4, 9)),
        ("views_spike", "firing", "resolved", w(10), 100, mean(5, 10)),
        ("views_sql", "ok", "firing", w(9), 400, None),
        ("views_sql", "firing", "resolved", w(10), 100, None),
    ]
    st.check(got == want, "transitions:\n  got  " + "\n       ".join(map(str, got)) +
             "\n  want " + "\n       ".join(map(str, want)))
    ids = [h["id"] for h in hist]
    st.check(len(set(ids)) == len(ids), f"duplicate transition ids {ids}")
    only_drop = history(s, "?rule=views_drop&limit=2")
    st.check([h["to"] for h in only_drop] == ["resolved", "firing"], f"filtered: {only_drop}")
    for bad, why in (("?limit=0", "limit must be"), ("?limit=x", "limit must be"),
                     ("?rule=%zz", "malformed query parameter")):
        r = s.get("/v1/alerts/history" + bad)
        st.check(r.status == 400 and why in r.json()["error"], f"history{bad}: {r}")

    # Each transition reached the webhook exactly once; the refused one on its retry.
    st.wait_until(lambda: len(recv.received()) >= len(hist), timeout=30,
                  what="every transition delivered")
    delivered = recv.received()
    st.check(sorted(p["id"] for p in delivered) == sorted(ids),
             f"delivered ids {sorted(p['id'] for p in delivered)}, history {sorted(ids)}")
    firing = next(h for h in hist if h["rule"] == "views_drop" and h["to"] == "firing")
    st.check(recv.attempts[firing["id"]] == 2, f"attempts of the refused one: {recv.attempts}")
    for p in delivered:
        st.check(p == next(h for h in hist if h["id"] == p["id"]), f"payload {p} != history")

    # Restart the alerter: states come back, nothing is sent again.
    before = rules_by_name(s)
    old = s.status()[("alerter", 0)]["pid"]
    os.kill(old, signal.SIGKILL)
    st.wait_until(lambda: (lambda r: r if r["restarts"] == 1 and r["state"] == "up" and
                           r["pid"] != old else None)(s.status()[("alerter", 0)]),
                  timeout=30, what="alerter restarted")

    def evaluated_again():
        now = rules_by_name(s)
        return all(now[n]["evaluations"] >= before[n]["evaluations"] + 3 for n in now)
    st.wait_until(evaluated_again, timeout=60, what="rules evaluated after the restart")
    after = rules_by_name(s)
    for n in after:
        st.check(after[n]["state"] == before[n]["state"] and after[n]["since"] ==
                 before[n]["since"], f"{n} changed across the restart: {before[n]} -> {after[n]}")
    st.check([h["id"] for h in history(s, "?limit=100")] == list(reversed(ids)),
             "history changed across the restart")
    st.check(len(recv.received()) == len(delivered),
             f"re-sent after the restart: {recv.received()[len(delivered):]}")
    # The alerter's own metrics agree.
    text = s.get("/metrics").body.decode()
    line = f'sluice_alert_state{{actor="alerter",actor_instance="0",rule="broken_query",' \
           f'state="error"}} 1'
    st.check(line in text, "sluice_alert_state of the broken rule")

    # A transition whose delivery has not succeeded when the alerter dies is delivered by
    # the next alerter process, once.
    recv.refuse_all = True
    post_minute(s, rng, MAIN)
    post_minute(s, rng, MAIN + 1)
    new = history(s, "?limit=1")[0]
    st.check((new["rule"], new["from"], new["to"], new["window"]["start"], new["value"]) ==
             ("views_drop", "resolved", "pending", w(MAIN), 20), f"new transition {new}")
    st.wait_until(lambda: recv.attempts[new["id"]] >= 1, timeout=30, what="a refused delivery")
    old = s.status()[("alerter", 0)]["pid"]
    os.kill(old, signal.SIGKILL)
    st.wait_until(lambda: (lambda r: r if r["restarts"] == 2 and r["state"] == "up" and
                           r["pid"] != old else None)(s.status()[("alerter", 0)]),
                  timeout=30, what="alerter restarted again")
    recv.refuse_all = False
    st.wait_until(lambda: any(p["id"] == new["id"] for p in recv.received()), timeout=30,
                  what="the pending delivery made after the restart")
    got_ids = sorted(p["id"] for p in recv.received())
    st.check(got_ids == sorted(ids + [new["id"]]), f"deliveries {got_ids}")
    st.check(rules_by_name(s)["views_drop"]["state"] == "pending", "drop state after restart")


if __name__ == "__main__":
    st.main(test_alerts)
