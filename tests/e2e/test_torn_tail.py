"""Torn tail: a partial record at the end of the partition log (power loss in the
middle of an append that was never acknowledged) is detected by its checksum and cut
off on start, never read as data; acknowledged events are counted exactly once and
new appends continue after it."""

import glob
import os
import struct
import zlib

import durability as d
import sluicetest as st


def test_torn_tail():
    first = d.batches(11, 20, 300, prefix="torn-a")
    second = d.batches(12, 10, 300, prefix="torn-b")
    with st.Sluice("torn") as s:
        s.up()
        d.post_all_acked(s, first)
        d.check_exact(s, d.events_of(first))
        s.down()
        segs = sorted(glob.glob(os.path.join(s.data_dir, "wal", "*.seg")))
        st.check(segs, "no log segment found")
        last = segs[-1]
        size = os.path.getsize(last)
        # A record whose header promises more payload than was written, with a valid
        # CRC of the full payload: only the length check can catch it.
        payload = b"\x95\x0d" + b"x" * 4000
        torn = struct.pack("<IIII", 0x31474C53, len(payload), zlib.crc32(payload), 0)
        torn += payload[:1000]
        with open(last, "ab") as f:
            f.write(torn)
        # And garbage after it would not be read either.
        st.log(f"appended a torn record of {len(torn)} bytes to {last} ({size} bytes)")
        s.up()
        plog = open(s.log_path("partitioner")).read()
        st.check("log_tail_truncated" in plog, "partitioner did not report the torn tail")
        st.check(os.path.getsize(last) >= size, "acknowledged records were cut")
        d.check_exact(s, d.events_of(first))
        d.post_all_acked(s, second)
        n = d.check_exact(s, d.events_of(first + second))
        st.log(f"recovered: {n} events counted exactly after the torn tail was cut")


if __name__ == "__main__":
    st.main(test_torn_tail)
