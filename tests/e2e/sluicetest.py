"""Shared helpers of the end-to-end tests: a real Sluice instance per test.

Each test starts its own instance with `./sluice up` on a free port and a fresh temp
data dir, talks HTTP to it with urllib, and stops it with `./sluice down`. After the
stop (leaks are reported at process exit) it fails if any ASan/UBSan report was
written to <data>/log. Every wait is a poll with a deadline, never a fixed sleep.

Environment (set by tests/CMakeLists.txt under ctest):
  SLUICE_BUILD_DIR  build dir whose bin/ holds the actors (default: <root>/build)
  SLUICE_ROOT       the repository (default: two levels above this file)
  SLUICE_E2E_KEEP=1 keep the data dirs of passing tests too

The event generator is deterministic (random.Random(seed)) and knows exactly which
lines are bad and why, so tests compare replies and query results with values they
compute themselves.
"""

import bisect
import datetime
import glob
import gzip
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid

ROOT = os.environ.get("SLUICE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("SLUICE_BUILD_DIR") or os.path.join(ROOT, "build")
SLUICE = os.path.join(ROOT, "sluice")
# A sanitizer report's first line (ASan, LSan, UBSan's "file:line:col: runtime error:").
SANITIZER_MARK = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                            r"^\S+:\d+:\d+: runtime error: |UndefinedBehaviorSanitizer")
ACTORS = ["gateway", "ingest", "partitioner", "windower", "storer", "query", "alerter"]
DATASOURCE = "page_events"


def log(msg):
    print(msg, flush=True)


# ---- polling ---------------------------------------------------------------------------

def wait_until(pred, timeout=30.0, interval=0.02, what="condition"):
    """Calls pred() until it returns a truthy value, which is returned. Raises
    AssertionError naming `what` (and the last value or exception) at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last one
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"[:2000])
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- configs -----------------------------------------------------------------------------

def strip_comments(text):
    """JSON with // and /* */ comments -> JSON (markers inside strings are kept)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment")
            out.append(" ")
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_config(path=None):
    path = path or os.path.join(ROOT, "configs", "sluice.json")
    with open(path) as f:
        return json.loads(strip_comments(f.read()))


def write_config(directory, **overrides):
    """Writes a copy of configs/sluice.json into directory with the given top-level
    sections merged in (e.g. gateway={"max_body_bytes": 4096}); datasource paths are
    made absolute since they are relative to the config file. Returns its path."""
    src_dir = os.path.join(ROOT, "configs")
    cfg = load_config()
    cfg["datasources"] = [os.path.join(src_dir, p) if not os.path.isabs(p) else p
                          for p in cfg.get("datasources", [])]
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = os.path.join(directory, "sluice-test.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def instance_keys(cfg=None):
    cfg = cfg or load_config()
    procs = cfg.get("processes", {})
    return [(a, i) for a in ACTORS for i in range(procs.get(a, 1))]


# ---- HTTP ------------------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"reply is not JSON ({e}): {self.body[:500]!r}") from None

    def __repr__(self):
        return f"<{self.status} {self.body[:1500]!r}>"


def http(method, url, body=None, headers=None, timeout=120):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


# ---- an instance -------------------------------------------------------------------------

class Sluice:
    """One Sluice instance on a temp data dir and a free port. Use as a context
    manager: it is stopped on exit, and then the sanitizer logs are checked."""

    def __init__(self, name, config=None, data_dir=None):
        self.name = name
        self.data_dir = data_dir or tempfile.mkdtemp(prefix=f"sluice-{name}-")
        self.config = config
        self.port = None
        self.running = False
        self.retries = 0

    # -- lifecycle --
    def env(self):
        env = dict(os.environ)
        env["SLUICE_BUILD_DIR"] = BUILD_DIR
        env["SLUICE_NO_BUILD"] = "1"  # ctest (or the developer) built BUILD_DIR already
        env.setdefault("SLUICE_UP_TIMEOUT", "90")
        return env

    def sluice(self, *args, check=True, timeout=300):
        cmd = [SLUICE, *args, "--data-dir", self.data_dir]
        if self.config:
            cmd += ["--config", self.config]
        p = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def up(self, port=None):
        """Starts the instance (on port, or a free one); returns seconds it took."""
        for attempt in range(3):
            self.port = port or free_port()
            t0 = time.monotonic()
            p = self.sluice("up", "--http", f"127.0.0.1:{self.port}", check=False)
            if p.returncode == 0:
                self.running = True
                took = time.monotonic() - t0
                log(f"[{self.name}] up on 127.0.0.1:{self.port} in {took:.2f}s, data {self.data_dir}")
                return took
            # Someone took the free port between our probe and the gateway's bind.
            if port is None and "already in use" in p.stderr and attempt < 2:
                continue
            raise AssertionError(f"./sluice up failed ({p.returncode})\nstdout: {p.stdout}\n"
                                 f"stderr: {p.stderr}")

    def down(self):
        t0 = time.monotonic()
        p = self.sluice("down")
        self.running = False
        log(f"[{self.name}] down in {time.monotonic() - t0:.2f}s: {p.stdout.strip()}")

    def status(self):
        """Parses `./sluice status` into {(actor, instance): {pid, state, restarts}}
        (None when it reports not running)."""
        p = self.sluice("status", check=False)
        rows = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) == 6 and f[0] in ACTORS:
                rows[(f[0], int(f[1]))] = {
                    "pid": int(f[2]) if f[2].isdigit() else None,
                    "state": f[3],
                    "uptime": f[4],
                    "restarts": int(f[5]),
                }
        return rows if p.returncode == 0 or rows else None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None
        try:
            if self.running:
                self.down()
        except Exception:  # noqa: BLE001
            failed = True
            traceback.print_exc()
        reports = self.sanitizer_reports()
        if failed or reports:
            self.print_logs()
        if reports:
            for path, text in reports:
                log(f"==== sanitizer report in {path}")
                log(text[:20000])
            if not failed:
                raise AssertionError(f"sanitizer reports: {[p for p, _ in reports]}")
        if not failed and os.environ.get("SLUICE_E2E_KEEP") != "1":
            shutil.rmtree(self.data_dir, ignore_errors=True)
        elif failed:
            log(f"[{self.name}] data dir kept: {self.data_dir}")
        return False

    # -- files --
    def log_path(self, actor, i=0):
        return os.path.join(self.data_dir, "log", f"{actor}.{i}.log")

    def sanitizer_reports(self):
        """[(path, text)] of every sanitizer report: the files ASan writes to
        <data>/log/asan.PID (ASAN_OPTIONS log_path), and reports found in the actor logs
        (with GCC, UBSan inside an ASan build ignores log_path and writes to stderr)."""
        logdir = os.path.join(self.data_dir, "log")
        found = []
        for path in sorted(glob.glob(os.path.join(logdir, "asan*")) +
                           glob.glob(os.path.join(logdir, "ubsan*"))):
            with open(path, errors="replace") as f:
                found.append((path, f.read()))
        for path in sorted(glob.glob(os.path.join(logdir, "*.log"))):
            with open(path, errors="replace") as f:
                lines = f.readlines()
            for i, line in enumerate(lines):
                if SANITIZER_MARK.search(line):
                    found.append((path, "".join(lines[i:i + 40])))
                    break
        return found

    def print_logs(self, lines=40):
        for path in sorted(glob.glob(os.path.join(self.data_dir, "log", "*.log"))):
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
            log(f"==== {path} (last {len(tail)} lines)")
            sys.stdout.write("".join(tail))
        sys.stdout.flush()

    # -- HTTP --
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def get(self, path):
        return http("GET", self.url + path)

    def post(self, path, body, content_type="application/json", encoding=None, headers=None):
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": content_type} if content_type else {}
        if encoding == "gzip":
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return http("POST", self.url + path, body, h)

    def post_events(self, body, content_type="application/x-ndjson", encoding=None,
                    datasource=DATASOURCE, retry=True, timeout=120):
        """POSTs events. With retry, the body carries an Idempotency-Key and is sent
        again with the same key while the reply is 429 or 503 (Retry-After), as a client
        should: a retry that the pipeline already took is acknowledged as a duplicate and
        not counted twice. self.retries counts the resends."""
        path = f"/v1/events?datasource={datasource}"
        if not retry:
            return self.post(path, body, content_type, encoding)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + timeout
        while True:
            r = self.post(path, body, content_type, encoding, headers=headers)
            if r.status not in (429, 503) or time.monotonic() >= deadline:
                return r
            self.retries += 1
            log(f"[{self.name}] {r.status} {r.body[:200]!r}: retrying with the same Idempotency-Key")
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0))

    def query(self, q):
        """POSTs a native query; returns the parsed result, failing unless 200."""
        r = self.post("/v1/query", json.dumps(q))
        if r.status != 200:
            raise AssertionError(f"query failed: {r}\nquery: {json.dumps(q)}")
        return r.json()

    def healthz(self):
        return self.get("/healthz")


# ---- time ---------------------------------------------------------------------------------

def iso_ms(ms):
    """Sluice's (and Druid's) result timestamp format: 2025-06-11T12:00:00.000Z."""
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(s):
    """ISO 8601 UTC ('...Z', optional fraction) -> epoch ms."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?Z", s)
    if not m:
        raise ValueError(f"not an ISO timestamp: {s!r}")
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    frac = int((m.group(7) or "0").ljust(3, "0"))
    dt = datetime.datetime(y, mo, d, h, mi, sec, tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + frac


# ---- the event generator --------------------------------------------------------------------

EVENT_TYPES = ["page_view", "click", "scroll", "signup", "purchase"]
DEVICES = ["mobile", "desktop", "tablet"]
COUNTRIES = ["US", "IN", "GB", "DE", "BR", "FR", "CA", "JP", "AU", "MX", "ES", "IT", "NL",
             "SE", "PL", "KR", "ID", "TR", "AR", "ZA", "NG", "EG", "PH", "VN", "TH", "MY",
             "SG", "NZ", "IE", "BE", "CH", "AT", "DK", "NO", "FI", "PT", "CZ", "RO", "HU",
             "GR", "IL", "AE", "SA", "CL", "CO", "PE", "UA", "KE", "PK", "BD"]
PAGES = ["/", "/pricing", "/signup", "/login", "/docs"] + [f"/blog/post-{i}" for i in range(195)]
N_USERS = 50000

# The generated events fall in [START_MS, END_MS): three hours of 2025-06-11.
START_MS = parse_iso("2025-06-11T10:00:00Z")
END_MS = parse_iso("2025-06-11T13:00:00Z")
INTERVAL = "2025-06-11T10:00:00Z/2025-06-11T13:00:00Z"


def zipf_cum(n, s=1.1):
    cum, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank ** s
        cum.append(total)
    return cum


class Event:
    """A good event: what was sent (obj) and what Sluice should make of it."""
    __slots__ = ("obj", "ts", "event_type", "page", "device", "country", "latency")

    def __init__(self, obj, ts):
        self.obj = obj
        self.ts = ts
        self.event_type = obj.get("event_type")
        self.page = obj.get("page")
        self.device = obj.get("device")
        self.country = obj.get("country")
        self.latency = obj.get("latency_ms")


class Line:
    """One input item: its JSON text, the Event when good, else why it is bad.
    bad is one of None, 'malformed', 'no_timestamp', 'bad_timestamp', 'latency_string',
    'not_object'."""
    __slots__ = ("text", "event", "bad", "obj")

    def __init__(self, text, event=None, bad=None, obj=None):
        self.text = text
        self.event = event
        self.bad = bad
        self.obj = obj


# Expected rejection reasons: exact text, or a prefix (the rest names parser details).
REASONS = {
    "no_timestamp": ("exact", 'missing timestamp field "timestamp"'),
    "latency_string": ("exact", 'field "latency_ms" must be a number'),
    "not_object": ("exact", "event is not a JSON object"),
    "bad_timestamp": ("prefix", 'field "timestamp": '),
    "malformed": ("prefix", "malformed JSON: "),
}


def reason_ok(bad, reason):
    kind, text = REASONS[bad]
    return reason == text if kind == "exact" else reason.startswith(text)


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.page_cum = zipf_cum(len(PAGES))
        self.country_cum = zipf_cum(len(COUNTRIES), 1.3)
        self.type_cum = zipf_cum(len(EVENT_TYPES), 1.5)
        self.device_cum = [0.55, 0.9, 1.0]
        self.user_cum = zipf_cum(N_USERS, 0.8)

    def pick(self, items, cum):
        return items[bisect.bisect_left(cum, self.rng.random() * cum[-1])]

    def timestamp(self):
        """A time in [START_MS, END_MS), rendered in one of the accepted forms."""
        rng = self.rng
        ms = START_MS + rng.randrange(END_MS - START_MS)
        form = rng.random()
        if form < 0.7:  # seconds precision ISO
            ms -= ms % 1000
            return ms, iso_ms(ms)[:-5] + "Z"
        if form < 0.9:  # millisecond ISO
            return ms, iso_ms(ms)
        return ms, ms  # epoch millis number

    def event_obj(self):
        rng = self.rng
        ts, tsv = self.timestamp()
        obj = {
            "event_type": self.pick(EVENT_TYPES, self.type_cum),
            "timestamp": tsv,
            "user_id": "u%d" % self.pick(range(N_USERS), self.user_cum),
            "page": self.pick(PAGES, self.page_cum),
            "device": self.pick(DEVICES, self.device_cum),
            "country": self.pick(COUNTRIES, self.country_cum),
        }
        if rng.random() < 0.005:
            del obj["device"]  # a missing dimension is null
        r = rng.random()
        if r < 0.7:
            obj["latency_ms"] = rng.randrange(1, 3000)
        elif r < 0.8:
            obj["latency_ms"] = rng.randrange(1, 3000) + 0.5  # exact in binary
        return obj, ts

    def good(self):
        obj, ts = self.event_obj()
        return Line(json.dumps(obj, separators=(",", ":")), Event(obj, ts), obj=obj)

    def bad(self, kind=None):
        rng = self.rng
        kind = kind or rng.choice(list(REASONS))
        obj, _ = self.event_obj()
        if kind == "malformed":
            text = rng.choice([
                "this is not json",
                '{"event_type":"click","page":/pricing}',
                '{"event_type":"click" "page":"/x"}',
                json.dumps(obj) + "}",
            ])
            return Line(text, bad=kind)
        if kind == "no_timestamp":
            del obj["timestamp"]
        elif kind == "bad_timestamp":
            obj["timestamp"] = rng.choice(["yesterday", "2025-13-01T00:00:00Z", "2025-06-11 noon",
                                           "2025-02-30T10:00:00Z"])
        elif kind == "latency_string":
            obj["latency_ms"] = str(rng.randrange(1, 3000))
        elif kind == "not_object":
            value = rng.choice([42, "hello", [1, 2, 3], True])
            return Line(json.dumps(value), bad=kind, obj=value)
        return Line(json.dumps(obj, separators=(",", ":")), bad=kind, obj=obj)

    def lines(self, n, bad_ratio=0.01):
        """n lines, about bad_ratio of them bad (of every kind)."""
        return [self.bad() if self.rng.random() < bad_ratio else self.good() for _ in range(n)]


# ---- expected results ----------------------------------------------------------------------

class Agg:
    """What the standard aggregations of the tests should give over a set of events."""
    __slots__ = ("events", "lat_sum", "lat_min", "lat_max")

    def __init__(self):
        self.events = 0
        self.lat_sum = 0.0
        self.lat_min = None
        self.lat_max = None

    def add(self, ev):
        self.events += 1
        if ev.latency is not None:
            v = float(ev.latency)
            self.lat_sum += v
            self.lat_min = v if self.lat_min is None else min(self.lat_min, v)
            self.lat_max = v if self.lat_max is None else max(self.lat_max, v)

    def result(self):
        """As Sluice prints the aggregations of AGGREGATIONS (long sums truncated toward
        zero; min/max of no value is null)."""
        return {
            "events": self.events,
            "count_sum": self.events,
            "lat_sum": int(self.lat_sum),
            "lat_dsum": self.lat_sum,
            "lat_min": self.lat_min,
            "lat_max": self.lat_max,
        }


AGGREGATIONS = [
    {"type": "count", "name": "events"},
    {"type": "longSum", "name": "count_sum", "fieldName": "count"},
    {"type": "longSum", "name": "lat_sum", "fieldName": "latency_ms_sum"},
    {"type": "doubleSum", "name": "lat_dsum", "fieldName": "latency_ms_sum"},
    {"type": "doubleMin", "name": "lat_min", "fieldName": "latency_ms_min"},
    {"type": "doubleMax", "name": "lat_max", "fieldName": "latency_ms_max"},
]


def aggregate(events, key, pred=None):
    """{key(ev): Agg} over the events matching pred."""
    out = {}
    for ev in events:
        if pred is None or pred(ev):
            k = key(ev)
            a = out.get(k)
            if a is None:
                a = out[k] = Agg()
            a.add(ev)
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def same_values(got, want, what):
    """Compares result dicts field by field (numbers by value: 87 == 87.0)."""
    for k, w in want.items():
        g = got.get(k, "<missing>")
        if w is None or g is None or isinstance(g, str):
            ok = g == w
        elif isinstance(w, float) or isinstance(g, float):
            ok = isinstance(g, (int, float)) and not isinstance(g, bool) and abs(g - w) <= 1e-9 * max(1.0, abs(w))
        else:
            ok = g == w and type(g) is type(w)
        check(ok, f"{what}: {k} = {g!r}, expected {w!r} (row {got})")


# ---- running a test file ------------------------------------------------------------------

def main(fn):
    """Runs one test function as a program: exit 0 on success, 1 on failure."""
    t0 = time.monotonic()
    try:
        fn()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        log(f"FAILED {fn.__name__} after {time.monotonic() - t0:.1f}s")
        sys.exit(1)
    log(f"PASSED {fn.__name__} in {time.monotonic() - t0:.1f}s")
