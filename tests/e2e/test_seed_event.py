"""The seed's example event, end to end: its exact ingest reply, then its visibility in a
per-minute timeseries, polled from the moment the POST returned (target: under 1 s)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

SEED_EVENT = ('{"event_type":"page_view","timestamp":"2025-06-11T12:00:00Z","user_id":"u1234",'
              '"page":"/pricing","device":"mobile","country":"US"}')

QUERY = {
    "queryType": "timeseries",
    "dataSource": "page_events",
    "granularity": "minute",
    "intervals": ["2025-06-11T12:00:00Z/2025-06-11T12:05:00Z"],
    "aggregations": [{"type": "count", "name": "events"}],
}


def minutes(result):
    """[(timestamp, events)] of a timeseries result."""
    return [(row["timestamp"], row["result"]["events"]) for row in result]


def test_seed_event():
    with st.Sluice("seed") as s:
        s.up()
        # Nothing stored yet: no bucket has events.
        before = s.query(QUERY)
        st.check(all(n == 0 for _, n in minutes(before)), f"empty store answered {before}")

        t0 = time.monotonic()
        r = s.post_events(SEED_EVENT, content_type="application/json")
        st.check(r.status == 200, f"POST /v1/events: {r}")
        if s.retries == 0:
            st.check(r.body == b'{"accepted":1,"rejected":0,"errors":[]}', f"reply body {r.body!r}")
        else:  # sent again after a 429/503: the resend may be acknowledged as a duplicate
            st.check({k: v for k, v in r.json().items() if k != "duplicate"} ==
                     {"accepted": 1, "rejected": 0, "errors": []}, f"reply body {r.body!r}")

        want = [("2025-06-11T12:00:00.000Z", 1)]
        got = st.wait_until(lambda: (lambda m: m if m == want else None)(minutes(s.query(QUERY))),
                            timeout=30, interval=0.005, what="the seed event in the 12:00 bucket")
        took = time.monotonic() - t0
        st.log(f"seed event visible to queries {took * 1000:.0f} ms after the POST returned "
               f"(target < 1000 ms): {got}")

        # A second event three minutes later: the minutes between are zero-filled.
        r = s.post_events(SEED_EVENT.replace("12:00:00Z", "12:03:30Z").replace("u1234", "u77"))
        st.check({k: v for k, v in r.json().items() if k != "duplicate"} ==
                 {"accepted": 1, "rejected": 0, "errors": []}, f"second event: {r}")
        want = [("2025-06-11T12:00:00.000Z", 1), ("2025-06-11T12:01:00.000Z", 0),
                ("2025-06-11T12:02:00.000Z", 0), ("2025-06-11T12:03:00.000Z", 1)]
        st.wait_until(lambda: minutes(s.query(QUERY)) == want, timeout=30,
                      what=f"timeseries {want}")
        full = s.query(QUERY)
        st.check(all(set(row) == {"timestamp", "result"} and set(row["result"]) == {"events"}
                     for row in full), f"timeseries row shape: {full}")
        st.check(isinstance(full[0]["result"]["events"], int), f"count is not an integer: {full}")

        # Same data, other shapes of the same question.
        hour = dict(QUERY, granularity="hour",
                    intervals=["2025-06-11T11:00:00Z/2025-06-11T14:00:00Z"])
        st.check(minutes(s.query(hour)) == [("2025-06-11T12:00:00.000Z", 2)],
                 f"hourly: {s.query(hour)}")
        total = dict(QUERY, granularity="all")
        st.check(minutes(s.query(total)) == [("2025-06-11T12:00:00.000Z", 2)],
                 f"all: {s.query(total)}")
        other = dict(QUERY, filter={"type": "selector", "dimension": "country", "value": "FR"})
        st.check(all(n == 0 for _, n in minutes(s.query(other))), "filter FR matched")


if __name__ == "__main__":
    st.main(test_seed_event)
