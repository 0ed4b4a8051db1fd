"""Disk full. (1) The LMDB map reaches storer.max_map_size_mb: ingest answers 507
with a message saying the store is full, nothing acknowledged is lost, and once the
limit is raised (config edited, storer restarted) everything acknowledged is counted
and ingest resumes. (2) The file system of the data dir fills up (a small tmpfs): the
log append fails, ingest answers 507, and once space is freed ingest resumes with
every acknowledged event counted exactly."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

import durability as d
import sluicetest as st


def unique_pages(seed, n, size):
    """Batches whose events all have distinct pages: every event is a new row."""
    out = []
    for b, (key, lines, _) in enumerate(d.batches(seed, n, size, prefix="full")):
        for j, l in enumerate(lines):
            l.obj["page"] = f"/unique/{seed}/{b}/{j}/" + "x" * 40
            l.event.page = l.obj["page"]
            l.text = json.dumps(l.obj, separators=(",", ":"))
        out.append((key, lines, "\n".join(l.text for l in lines).encode()))
    return out


def resume(s, batches, acked):
    """Once space is back: the next 5 batches are acknowledged, and every acknowledged
    event is counted exactly; returns the count."""
    rest = batches[len(acked):len(acked) + 5]
    d.post_all_acked(s, rest, timeout=180)
    return d.check_exact(s, d.events_of(acked + rest), timeout=180)


def map_full():
    cfg_dir = tempfile.mkdtemp(prefix="sluice-full-cfg-")
    cfg = st.write_config(cfg_dir, storer={"map_size_mb": 1, "max_map_size_mb": 2})
    batches = unique_pages(21, 200, 200)
    with st.Sluice("mapfull", config=cfg) as s:
        s.up()

        def caught_up(acked):
            # give the storer time to hit the limit before the backlog does
            if len(acked) % 10 == 0:
                st.wait_until(lambda: os.path.exists(os.path.join(s.data_dir, "state", "store_full"))
                              or d.count(s) == len(d.events_of(acked)), timeout=60,
                              what="storer caught up or full")

        acked, full = d.post_until_full(s, batches, caught_up)
        st.check(full is not None, f"{len(acked)} batches accepted and no 507")
        st.check("full" in full.body.decode(), f"507 does not say the store is full: {full}")
        st.check(full.headers.get("Retry-After"), "no Retry-After on 507")
        st.log(f"507 after {len(acked)} batches: {full.body[:200]!r}")
        # Free space: raise the limit and restart the storer (the supervisor does).
        st.write_config(cfg_dir, storer={"map_size_mb": 1, "max_map_size_mb": 256})
        os.kill(d.pid_of(s, "storer"), signal.SIGKILL)
        n = resume(s, batches, acked)
        st.log(f"map limit raised: {n} events counted exactly, ingest resumed")


def fs_full():
    mnt = tempfile.mkdtemp(prefix="sluice-tmpfs-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt],
                       capture_output=True, text=True)
    st.check(p.returncode == 0, f"cannot mount a tmpfs for the disk-full test: {p.stderr}")
    try:
        data = os.path.join(mnt, "d")
        cfg = st.write_config(tempfile.mkdtemp(prefix="sluice-fs-cfg-"),
                              storer={"map_size_mb": 8, "max_map_size_mb": 16})
        batches = d.batches(31, 400, 500, prefix="fs")
        with st.Sluice("fsfull", config=cfg, data_dir=data) as s:
            s.up()
            filler = os.path.join(mnt, "filler")
            st_ = os.statvfs(mnt)
            free = st_.f_bavail * st_.f_frsize
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, free - 3 * 1024 * 1024))
            acked, full = d.post_until_full(s, batches)
            st.check(full is not None, f"{len(acked)} batches accepted on a full disk, no 507")
            st.log(f"507 after {len(acked)} batches on a full file system: {full.body[:200]!r}")
            os.unlink(filler)
            n = resume(s, batches, acked)
            st.log(f"space freed: {n} events counted exactly, ingest resumed")
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def test_disk_full():
    map_full()
    fs_full()


if __name__ == "__main__":
    st.main(test_disk_full)
