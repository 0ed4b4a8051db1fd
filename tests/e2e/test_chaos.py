"""Chaos: every acknowledged event is counted exactly once although random actors
(the gateway included) are SIGKILLed every few hundred ms while clients post.

A seeded generator makes batches with known contents; loader threads post each
batch with its own Idempotency-Key and retry (same key) until it is acknowledged;
a killer SIGKILLs a random actor instance every 200-600 ms for at least 20 s, and
the supervisor restarts them. When all batches are acknowledged and the system has
settled, per-minute and per-country results must equal what the test computes from
the batches itself: nothing lost, nothing counted twice."""

import os
import random
import signal
import threading
import time

import durability as d
import sluicetest as st

SEED = 20251103
BATCHES = 240
BATCH_SIZE = 200
THREADS = 4
KILL_SECONDS = 22


def post_until_acked(s, body, key, stop_at):
    """Posts until a 200 (returns the reply and the number of attempts)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            r = st.http("POST", f"{s.url}/v1/events?datasource={st.DATASOURCE}", body,
                        {"Content-Type": "application/x-ndjson", "Idempotency-Key": key},
                        timeout=20)
            if r.status == 200:
                return r, attempts
            st.check(r.status in (429, 502, 503, 504, 507),
                     f"batch {key}: unexpected reply {r}")
        except OSError:
            pass  # the gateway is being restarted
        st.check(time.monotonic() < stop_at, f"batch {key} not acknowledged in time")
        time.sleep(0.05 + random.random() * 0.1)


def test_chaos():
    batches = d.batches(SEED, BATCHES, BATCH_SIZE, bad_ratio=0.01, prefix="chaos")
    events = d.events_of(batches)

    with st.Sluice("chaos") as s:
        s.up()
        keys = st.instance_keys()
        stop_kill = threading.Event()
        kills = []
        acked = []
        lock = threading.Lock()
        errors = []
        next_batch = [0]

        def killer():
            rng = random.Random(SEED)
            t_end = time.monotonic() + KILL_SECONDS
            while time.monotonic() < t_end and not stop_kill.is_set():
                actor, i = rng.choice(keys)
                try:
                    os.kill(d.pid_of(s, actor, i), signal.SIGKILL)
                    kills.append(f"{actor}.{i}")
                except (OSError, ValueError):
                    pass  # between restarts
                time.sleep(rng.uniform(0.2, 0.6))

        t_start = time.monotonic()

        def loader():
            stop_at = time.monotonic() + 300
            try:
                while True:
                    with lock:
                        b = next_batch[0]
                        if b >= len(batches):
                            return
                        next_batch[0] += 1
                    # Paced so the batches span the whole kill window.
                    due = t_start + b * KILL_SECONDS / len(batches)
                    if due > time.monotonic():
                        time.sleep(due - time.monotonic())
                    key, lines, body = batches[b]
                    r, attempts = post_until_acked(s, body, key, stop_at)
                    rep = r.json()
                    good = sum(1 for l in lines if l.event is not None)
                    st.check(rep["accepted"] == good and rep["rejected"] == len(lines) - good,
                             f"batch {key}: {rep}, expected {good} accepted")
                    with lock:
                        acked.append((key, attempts, bool(rep.get("duplicate"))))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        t_kill = threading.Thread(target=killer)
        t_kill.start()
        loaders = [threading.Thread(target=loader) for _ in range(THREADS)]
        for t in loaders:
            t.start()
        for t in loaders:
            t.join()
        t_kill.join()
        if errors:
            raise errors[0]
        retried = sum(1 for _, a, _ in acked if a > 1)
        dups = sum(1 for _, _, dup in acked if dup)
        st.log(f"kills: {len(kills)} ({', '.join(sorted(set(kills)))})")
        st.log(f"acknowledged: {len(acked)} batches, {len(events)} events; "
               f"{retried} batches needed retries, {dups} acknowledged as duplicates")
        st.check(len(kills) >= 20, f"only {len(kills)} kills")

        # Settle: every actor back, then results converge to the exact values.
        st.wait_until(lambda: s.healthz().status == 200, timeout=120, what="healthy again")
        t0 = time.monotonic()
        n = d.check_exact(s, events, timeout=180, countries=True)
        st.log(f"settled and checked {time.monotonic() - t0:.1f}s after the load: "
               f"{n} events counted")


if __name__ == "__main__":
    st.main(test_chaos)
