"""Backpressure: with the storer stopped (SIGSTOP), ingest keeps accepting into the
partition log until its backlog passes log.max_backlog_mb, then answers 429 with
Retry-After instead of queueing without bound; every actor's RSS stays under the
memory bound meanwhile; after SIGCONT everything acknowledged is counted exactly and
ingest recovers by itself."""

import os
import signal
import tempfile

import durability as d
import sluicetest as st

RSS_BOUND_MIB = 256  # the documented per-actor bound (docs/architecture.md)


def test_backpressure():
    cfg = st.write_config(tempfile.mkdtemp(prefix="sluice-bp-cfg-"), log={"max_backlog_mb": 4})
    all_batches = d.batches(7, 400, 500, prefix="bp")
    with st.Sluice("backpressure", config=cfg) as s:
        s.up()
        storer = d.pid_of(s, "storer")
        os.kill(storer, signal.SIGSTOP)
        acked, pushed_back, peak = [], None, {}
        try:
            for b in all_batches:
                r = d.post(s, b)
                if r.status == 200:
                    acked.append(b)
                    continue
                st.check(r.status in (429, 503), f"expected 429/503 under pressure, got {r}")
                st.check(r.headers.get("Retry-After"), f"no Retry-After on {r.status}")
                pushed_back = r
                break
            st.check(pushed_back is not None,
                     f"{len(acked)} batches accepted with the storer stopped, never a 429/503")
            st.log(f"pushed back after {len(acked)} batches "
                   f"({len(d.events_of(acked))} events): {pushed_back}")
            # Keep pushing a little: still refused, nothing queues in memory.
            for b in all_batches[len(acked):len(acked) + 20]:
                st.check(d.post(s, b).status in (429, 503), "accepted past the backlog bound")
            for actor, i in st.instance_keys():
                pid = d.pid_of(s, actor, i)
                peak[f"{actor}.{i}"] = d.rss_mib(pid)
            st.log("RSS MiB under pressure: " +
                   ", ".join(f"{k}={v:.0f}" for k, v in sorted(peak.items())))
            for k, v in peak.items():
                st.check(v < RSS_BOUND_MIB, f"{k} RSS {v:.0f} MiB is over {RSS_BOUND_MIB} MiB")
        finally:
            os.kill(storer, signal.SIGCONT)
        # Recovery: what was acknowledged is counted, and ingest takes new data again.
        more = all_batches[len(acked) + 20:len(acked) + 30]
        d.post_all_acked(s, more)
        n = d.check_exact(s, d.events_of(acked + more))
        st.log(f"after SIGCONT: {n} events counted exactly; ingest accepts again")


if __name__ == "__main__":
    st.main(test_backpressure)
