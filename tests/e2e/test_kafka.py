"""Kafka ingestion, exactly once: a seeded set of keyed events is produced to a real
Kafka protocol endpoint (librdkafka's mock cluster, tests/kafka/) and consumed by both
ingest processes of one consumer group; query results must equal what the test computes
from the events it produced, although

  - the two ingest processes split the 12 partitions between them (checked in the
    consumer status of GET /v1/datasources),
  - ingest processes are SIGKILLed repeatedly while messages flow (the supervisor
    restarts them; they re-read from the committed offsets and the partitioner
    recognises what the log already has),
  - the producers use snappy (the seed's codec), lz4, zstd and gzip,
  - the broker goes down for a few seconds (ingest resumes by itself),
  - the partitioner is stopped while messages arrive (the lag shows in messages and
    seconds, then drains),
  - bad messages (invalid JSON, bad timestamps, ...) are rejected, counted by reason,
    and do not stall their partitions.
"""

import json
import os
import random
import signal
import subprocess
import threading
import time
import zlib

import durability as d
import sluicetest as st

SEED = 20251106
TOPIC = "user-events"
PARTITIONS = 12
N_EVENTS = 24000      # the main stream (about 1% bad lines)
KILLS = 4             # SIGKILLs of ingest processes while the stream flows
BROKER_DOWN_S = 4     # how long the broker is down (the fault's duration, not a wait)
SETTLED_S = 8         # an assignment that held this long has outlived any session timeout
TESTS_DIR = os.path.join(st.BUILD_DIR, "tests")


class MockCluster:
    """tests/kafka/kafka-mock-cluster: its bootstrap address and its commands."""

    def __init__(self):
        self.p = subprocess.Popen([os.path.join(TESTS_DIR, "kafka-mock-cluster"), "--brokers", "1",
                                   "--topic", f"{TOPIC}:{PARTITIONS}"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.bootstrap = self.p.stdout.readline().strip()
        st.check(self.bootstrap.startswith("127.0.0.1:"), f"mock cluster said {self.bootstrap!r}")

    def command(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline().strip()
        st.check(answer == "ok", f"mock cluster: {line!r} -> {answer!r}")

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def produce(mock, lines, codec):
    """Produces (partition, key, value) lines with kafka-produce; returns once all are
    acknowledged by the broker."""
    body = "".join(f"{p}\t{k}\t{v}\n" for p, k, v in lines)
    r = subprocess.run([os.path.join(TESTS_DIR, "kafka-produce"), "--bootstrap", mock.bootstrap,
                        "--topic", TOPIC, "--compression", codec],
                       input=body, capture_output=True, text=True, timeout=120)
    st.check(r.returncode == 0 and r.stdout.strip() == f"delivered {len(lines)}",
             f"kafka-produce ({codec}) exited {r.returncode}: {r.stdout} {r.stderr}")


def keyed(line):
    """A generator Line as (partition, key, value): keyed by user_id, partitioned by the
    key's CRC32 like Kafka's own key partitioners (so a user's events stay in order)."""
    key = line.obj.get("user_id", "") if isinstance(line.obj, dict) else ""
    key = key if isinstance(key, str) and key else "nokey"
    return zlib.crc32(key.encode()) % PARTITIONS, key, line.text


def write_kafka_config(directory, bootstrap):
    src = os.path.join(st.ROOT, "configs", "datasources", "page_events.json")
    with open(src) as f:
        spec = json.loads(st.strip_comments(f.read()))
    spec["kafka"].update({"enabled": True, "bootstrap_servers": bootstrap, "topics": [TOPIC],
                          "group_id": "sluice-test", "start": "earliest"})
    # Offsets are committed rarely (and the mock refuses commits during a rebalance), so
    # every restart and rebalance re-reads a long stretch that the log already has
    # (partly): the exactly-once path is exercised hard.
    spec["kafka"]["properties"].update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                        "auto.commit.interval.ms": 60000})
    path = os.path.join(directory, "page_events-kafka.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    return st.write_config(directory, datasources=[path], processes={"ingest": 2})


def kafka_status(s):
    r = s.get("/v1/datasources")
    st.check(r.status == 200, f"datasources: {r}")
    ds = {x["name"]: x for x in r.json()}
    return ds[st.DATASOURCE]["kafka"]


def wait_counted(s, n, timeout, what):
    def ok():
        c = d.count(s)
        st.check(c is None or c <= n, f"{c} events counted, only {n} produced: counted twice")
        return c == n
    st.wait_until(ok, timeout=timeout, interval=0.2, what=what)


def split_between_both(s):
    """Every partition assigned, to ingest.0 or ingest.1, both having some."""
    k = kafka_status(s)
    owners = {(p["topic"], p["partition"]): p["consumer"] for p in k.get("partitions", [])}
    if sorted(owners) != [(TOPIC, i) for i in range(PARTITIONS)]:
        return None
    if set(owners.values()) != {"ingest.0", "ingest.1"}:
        return None
    return owners


def test_kafka():
    t_start = time.monotonic()
    gen = st.Generator(SEED)
    main = gen.lines(N_EVENTS, bad_ratio=0.01)
    events = [l.event for l in main if l.event is not None]
    produced = 0
    mock = MockCluster()
    st.log(f"mock cluster on {mock.bootstrap}")
    try:
        with st.Sluice("kafka") as s:
            s.config = write_kafka_config(s.data_dir, mock.bootstrap)
            # -- a first third before Sluice starts, snappy like the seed's producers --
            first = N_EVENTS // 3
            produce(mock, [keyed(l) for l in main[:first]], "snappy")
            produced += first
            s.up()
            owners = st.wait_until(lambda: split_between_both(s), timeout=60, interval=0.5,
                                   what="both ingest processes sharing the 12 partitions")
            mine = {c: sorted(p for (_, p), o in owners.items() if o == c) for c in set(owners.values())}
            st.log(f"assignment: {mine} ({time.monotonic() - t_start:.1f}s)")

            # -- the rest while ingest processes are killed; other codecs --
            rng = random.Random(SEED)
            kills = []
            errors = []

            def producer():
                try:
                    rest = main[first:]
                    codecs = ["lz4", "zstd", "gzip", "snappy"]
                    slices = 12
                    for i in range(slices):
                        part = rest[i * len(rest) // slices:(i + 1) * len(rest) // slices]
                        produce(mock, [keyed(l) for l in part], codecs[i % len(codecs)])
                        time.sleep(0.5)  # pacing: the stream spans the kills
                except Exception as e:  # noqa: BLE001
                    errors.append(e)

            t = threading.Thread(target=producer)
            t.start()
            for _ in range(KILLS):
                time.sleep(rng.uniform(1.0, 2.0))  # pacing of the kills
                i = rng.randrange(2)
                try:
                    os.kill(d.pid_of(s, "ingest", i), signal.SIGKILL)
                    kills.append(i)
                except (OSError, ValueError):
                    pass  # being restarted
            t.join()
            if errors:
                raise errors[0]
            produced = N_EVENTS
            st.check(len(kills) >= KILLS - 1, f"only {len(kills)} kills")
            st.log(f"killed ingest {kills}; stream produced ({time.monotonic() - t_start:.1f}s)")
            wait_counted(s, len(events), 150, f"{len(events)} events counted after the kills")
            st.log(f"all {len(events)} good events counted ({time.monotonic() - t_start:.1f}s)")
            d.check_results(s, events, countries=True)

            # -- broker down for a few seconds: ingest resumes by itself --
            mock.command("down -1")
            time.sleep(BROKER_DOWN_S)  # the outage lasts this long
            mock.command("up -1")
            extra = [gen.good() for _ in range(600)]
            produce(mock, [keyed(l) for l in extra], "snappy")
            produced += len(extra)
            events += [l.event for l in extra]
            t0 = time.monotonic()
            wait_counted(s, len(events), 90, "events produced after the broker came back")
            st.log(f"broker outage of {BROKER_DOWN_S}s: new events counted "
                   f"{time.monotonic() - t0:.1f}s after it ended")

            # -- the partitioner stops: the lag shows, then drains --
            # The outage may have timed the group sessions out (session.timeout.ms is 6 s,
            # counted from the last heartbeat before it): the revoke and rejoin can come a
            # few seconds after the events are counted. So the same assignment, every
            # partition caught up, must hold for SETTLED_S in a row before the stall.
            settled = {"owners": None, "since": None}

            def caught_up():
                owners = split_between_both(s)
                ps = kafka_status(s)["partitions"]
                ok = (owners and len(ps) == PARTITIONS and
                      all(p["lag_messages"] == 0 for p in ps))
                now = time.monotonic()
                if not ok or owners != settled["owners"]:
                    settled.update(owners=owners if ok else None, since=now if ok else None)
                    return None
                return owners if now - settled["since"] >= SETTLED_S else None
            st.wait_until(caught_up, timeout=90, interval=0.5,
                          what=f"the group settled again, every partition caught up for {SETTLED_S}s")
            ppid = d.pid_of(s, "partitioner")
            os.kill(ppid, signal.SIGSTOP)
            try:
                held = [gen.good() for _ in range(480)]
                produce(mock, [keyed(l) for l in held], "snappy")
                produced += len(held)
                events += [l.event for l in held]

                def lagging():
                    k = kafka_status(s)
                    return k if k["lag_messages"] == len(held) and k["lag_seconds"] > 0 else None
                k = st.wait_until(lagging, timeout=60, interval=0.5,
                                  what=f"lag of {len(held)} messages in the status")
                st.log(f"stalled: lag_messages={k['lag_messages']} lag_seconds={k['lag_seconds']}")
                per_part = {p["partition"]: p["lag_messages"] for p in k["partitions"]}
                want = {}
                for l in held:
                    want[keyed(l)[0]] = want.get(keyed(l)[0], 0) + 1
                st.check(all(per_part.get(p, 0) == want.get(p, 0) for p in range(PARTITIONS)),
                         f"per-partition lag {per_part}, expected {want}")
            finally:
                os.kill(ppid, signal.SIGCONT)
            wait_counted(s, len(events), 60, "the held events after the partitioner resumed")
            st.wait_until(lambda: kafka_status(s)["lag_messages"] == 0, timeout=30, interval=0.5,
                          what="lag back to 0")

            # -- bad messages: rejected, counted by reason, never stalling --
            def totals():
                k = kafka_status(s)
                out = {"rejected": 0, "reasons": {}}
                for c in k.get("consumers", []):
                    out["rejected"] += c["rejected"]
                    for r, n in c.get("rejected_by_reason", {}).items():
                        out["reasons"][r] = out["reasons"].get(r, 0) + n
                return out
            before = totals()
            bad = ([gen.bad("malformed") for _ in range(3)] + [gen.bad("no_timestamp") for _ in range(2)] +
                   [gen.bad("bad_timestamp") for _ in range(2)] + [gen.bad("latency_string") for _ in range(2)] +
                   [st.Line(json.dumps(42), bad="not_object"), st.Line('"hello"', bad="not_object")])
            want_reasons = {"malformed_json": 3, "missing_timestamp": 2, "bad_timestamp": 2,
                            "bad_number": 2, "not_object": 2, "empty_message": 1}
            good = [gen.good() for _ in range(200)]
            mixed = good[:100] + bad + good[100:]
            rows = [keyed(l) for l in mixed]
            rows.append((5, "empty", "\\N"))  # a message without a value
            # All bad ones in one partition too: it must still advance.
            rows += [(7, "bad", l.text) for l in bad]
            want_reasons = {r: n * 2 if r != "empty_message" else n for r, n in want_reasons.items()}
            produce(mock, rows, "snappy")
            produced += len(rows)
            events += [l.event for l in good]
            wait_counted(s, len(events), 60, "the good events around the bad messages")

            def rejected_all():
                t = totals()
                got = {r: t["reasons"].get(r, 0) - before["reasons"].get(r, 0) for r in want_reasons}
                return got if got == want_reasons else None
            got = st.wait_until(rejected_all, timeout=30, interval=0.5,
                                what=f"rejections counted by reason {want_reasons}")
            st.log(f"bad messages rejected by reason: {got}")
            k = st.wait_until(lambda: (lambda k: k if k["lag_messages"] == 0 else None)(kafka_status(s)),
                              timeout=30, interval=0.5, what="no lag after the bad messages")
            hw = sum(p["high_watermark"] for p in k["partitions"])
            st.check(hw == produced, f"high watermarks sum to {hw}, {produced} messages produced")
            st.check(all(p["position"] == p["high_watermark"] for p in k["partitions"]),
                     f"positions behind: {k['partitions']}")
            with open(os.path.join(s.data_dir, "log", "ingest.0.log")) as f0, \
                    open(os.path.join(s.data_dir, "log", "ingest.1.log")) as f1:
                logs = f0.read() + f1.read()
            st.check("event=kafka_message_rejected" in logs, "no rejection was logged")

            d.check_results(s, events, countries=True)
            s.down()
            with open(os.path.join(s.data_dir, "log", "partitioner.0.log")) as f:
                stopped = [l for l in f if "event=partitioner_stopped" in l]
            st.check(stopped, "partitioner_stopped not logged")
            st.log(f"partitioner: {stopped[-1].split('event=partitioner_stopped')[1].strip()}")
            dups = sum(int(x.split("=")[1]) for x in stopped[-1].split()
                       if x.startswith("source_duplicates=") or x.startswith("source_overlaps="))
            st.check(dups > 0, "no message was read twice: the exactly-once path was not exercised")
            st.log(f"{produced} messages, {len(events)} good events; total {time.monotonic() - t_start:.1f}s")
    finally:
        mock.stop()


if __name__ == "__main__":
    st.main(test_kafka)
