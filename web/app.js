/* The Sluice dashboard.
 *
 * Everything shown comes from the gateway's public API, like any other client:
 * Druid native queries on POST /v1/query, GET /v1/datasources, GET /metrics and
 * GET /v1/alerts. GET /v1/live (Server-Sent Events) says when data changed; the page
 * then queries again. A lost hint only delays: the page also polls, slowly.
 *
 * State (datasource, time range, filters) lives in the URL's hash, so a view can be
 * shared and the back button works. Each refresh is a generation: results of an
 * older generation are dropped, so a slow reply never overwrites a newer view.
 *
 * Every panel carries data-state (loading | ok | empty | error | unavailable) and,
 * once rendered, data-interval ("<start ISO>/<end ISO>") and data-filter (the Druid
 * filter JSON, "null" for none): exactly what its numbers cover. Stats carry
 * data-value; list rows data-key and data-value. The browser test reads these. */
"use strict";

// ---- query shapes: every query the page sends is built here ------------------------
//
// The sketch metrics (distinct users, latency quantiles) use Druid's aggregator
// shapes. Which stored metric they read is found in the datasource spec (a metric
// whose type is one of `types`), else `fallback` (the names the default page_events
// spec gives them). Until the query API supports them, their panels say "not
// available" with the server's own error text.
const SHAPES = {
    count: () => ({type: "count", name: "events"}),
    users: {
        types: ["distinct", "hll", "HLLSketch", "HLLSketchBuild", "hyperUnique", "cardinality"],
        fallback: "users",
        aggregation: (field) => ({type: "HLLSketchMerge", name: "users", fieldName: field}),
    },
    latency: {
        types: ["quantiles", "quantilesDoublesSketch", "ddsketch", "DDSketch"],
        fallback: "latency",
        aggregation: (field) => ({type: "quantilesDoublesSketch", name: "lat", fieldName: field}),
        quantiles: [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]],
        postAggregation: (name, fraction) => ({
            type: "quantilesDoublesSketchToQuantile", name,
            field: {type: "fieldAccess", fieldName: "lat"}, fraction,
        }),
    },
    selector: (dim, value) => ({type: "selector", dimension: dim, value}),
};

// Prometheus series the ingestion-health panel reads from GET /metrics.
// (Series with a datasource label count only for the selected datasource.)
const PROM = {
    accepted: /^sluice_events_accepted_total$/,
    rejected: /^sluice_events_rejected_total$/, // label reason
    backpressure: /^sluice_\w*backpressure\w*_total$/, // 429/503/507 replies
    httpRequests: /^sluice_http_requests_total$/, // fallback: its 429/503/507 statuses
    lagEvents: /^sluice_log_lag_events$/, // per partition: the largest is shown
    lagSeconds: /^sluice_log_lag_seconds$/,
    backlog: /^sluice_log_backlog_bytes$/,
};

const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;
// Each preset's bucket keeps a panel at most ~170 points: first render stays fast
// whatever the amount of data (a query's cost is the rows it scans, the page's the
// points it draws).
const RANGES = {
    "15m": {ms: 15 * MIN, label: "15 minutes", gran: "minute"},
    "1h": {ms: HOUR, label: "1 hour", gran: "minute"},
    "6h": {ms: 6 * HOUR, label: "6 hours", gran: "five_minute"},
    "24h": {ms: DAY, label: "24 hours", gran: "fifteen_minute"},
    "7d": {ms: 7 * DAY, label: "7 days", gran: "hour"},
};
const DEFAULT_RANGE = "1h";
const GRANS = [
    ["minute", MIN, "minute"], ["five_minute", 5 * MIN, "5 minutes"],
    ["fifteen_minute", 15 * MIN, "15 minutes"], ["thirty_minute", 30 * MIN, "30 minutes"],
    ["hour", HOUR, "hour"], ["day", DAY, "day"],
];
const MAX_BUCKETS = 200;
const TOP_N = 10;
const MAX_TYPES = 8; // series in the events chart; the rest are summed as "other"
const POLL_MS = 30e3; // fallback when hints are lost
const RETRY_MS = 2e3; // while the gateway is unreachable
const METRICS_MS = 5e3; // ingestion-health sampling
const MIN_GAP_MS = 250; // between two hint-driven refreshes
const NULL_TOKEN = "(null)"; // a missing dimension value, in the URL
const COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#d53f8c", "#805ad5", "#319795", "#d69e2e",
    "#718096", "#e53e3e"];

const $ = (sel, root = document) => root.querySelector(sel);
const loadId = Math.random().toString(36).slice(2);

// ---- state and the URL ----------------------------------------------------------------

const state = {ds: null, range: DEFAULT_RANGE, from: null, to: null, filters: []};
let datasources = []; // from /v1/datasources

function readUrl() {
    const p = new URLSearchParams(location.hash.slice(1));
    state.ds = p.get("ds");
    state.range = RANGES[p.get("range")] || p.get("range") === "custom" ? p.get("range") :
        DEFAULT_RANGE;
    state.from = parseTime(p.get("from"));
    state.to = parseTime(p.get("to"));
    if (state.range === "custom" && (state.from == null || state.to == null ||
                                     state.to <= state.from)) {
        state.range = DEFAULT_RANGE;
    }
    state.filters = [];
    for (const [k, v] of p) {
        if (k.startsWith("f.") && k.length > 2) {
            state.filters.push({dim: k.slice(2), value: v === NULL_TOKEN ? null : v});
        }
    }
}

function writeUrl(push) {
    const p = new URLSearchParams();
    if (state.ds) {
        p.set("ds", state.ds);
    }
    p.set("range", state.range);
    if (state.range === "custom") {
        p.set("from", iso(state.from));
        p.set("to", iso(state.to));
    }
    for (const f of state.filters) {
        p.append("f." + f.dim, f.value === null ? NULL_TOKEN : f.value);
    }
    const hash = "#" + p.toString();
    if (hash !== location.hash) {
        history[push ? "pushState" : "replaceState"](null, "", hash);
    }
}

function parseTime(s) {
    if (!s) {
        return null;
    }
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + "Z");
    return Number.isFinite(ms) ? ms : null;
}

const iso = (ms) => new Date(ms).toISOString();

// The view a refresh queries: the range aligned to its buckets. A preset range ends at
// the end of the current bucket, so the newest events are always in.
function makeView() {
    let ms, gran, granMs, granLabel, start, end;
    if (state.range === "custom") {
        [gran, granMs, granLabel] = pickGran(state.to - state.from);
        start = Math.floor(state.from / granMs) * granMs;
        end = Math.ceil(state.to / granMs) * granMs;
        ms = end - start;
    } else {
        const r = RANGES[state.range];
        [gran, granMs, granLabel] = GRANS.find((g) => g[0] === r.gran);
        ms = r.ms;
        end = Math.floor(Date.now() / granMs) * granMs + granMs;
        start = end - ms;
    }
    const filter = druidFilter(state.filters);
    const view = {
        ds: state.ds, start, end, ms, prevStart: start - ms, gran, granMs, granLabel, filter,
        interval: iso(start) + "/" + iso(end),
        prevInterval: iso(start - ms) + "/" + iso(start),
    };
    view.key = JSON.stringify([view.ds, view.interval, filter]);
    return view;
}

function pickGran(ms) {
    for (const g of GRANS) {
        if (ms / g[1] <= MAX_BUCKETS) {
            return g;
        }
    }
    const days = Math.ceil(ms / MAX_BUCKETS / DAY);
    return [{type: "duration", duration: days * DAY}, days * DAY, days + " days"];
}

function druidFilter(filters) {
    const fs = filters.map((f) => SHAPES.selector(f.dim, f.value));
    return fs.length === 0 ? null : fs.length === 1 ? fs[0] : {type: "and", fields: fs};
}

// ---- talking to the gateway ------------------------------------------------------------

class Unreachable extends Error {}

class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

async function api(path, body, signal) {
    let r;
    try {
        r = await fetch(path, body === undefined ? {signal, cache: "no-store"} : {
            method: "POST", signal, cache: "no-store",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
        });
    } catch (e) {
        if (e.name === "AbortError") {
            throw e;
        }
        throw new Unreachable(e.message || String(e));
    }
    const text = await r.text().catch((e) => {
        throw new Unreachable(e.message || String(e));
    });
    if (!r.ok) {
        let msg = text.trim() || r.statusText;
        try {
            const j = JSON.parse(text);
            msg = j.errorMessage || j.error || msg;
        } catch (_) {
            // not JSON: the text is the message
        }
        throw new ApiError(r.status, msg);
    }
    const type = r.headers.get("Content-Type") || "";
    if (!type.includes("json")) {
        return text;
    }
    try {
        return JSON.parse(text);
    } catch (e) {
        throw new ApiError(r.status, "reply is not JSON: " + e.message);
    }
}

function query(view, q) {
    return Object.assign({dataSource: view.ds, intervals: [view.interval]},
                         view.filter ? {filter: view.filter} : {}, q);
}

// ---- panels ------------------------------------------------------------------------------

function panel(id) {
    return document.getElementById(id);
}

// Sets a panel's state and message; ok panels hide the message.
function setState(p, st, msg) {
    p.dataset.state = st;
    p.classList.remove("updating");
    $(".msg", p).textContent = msg || "";
}

function stamp(p, view) {
    p.dataset.interval = view.interval;
    p.dataset.filter = JSON.stringify(view.filter);
    p.dataset.key = view.key;
}

function panelError(p, view, e, sketch) {
    if (e.name === "AbortError") {
        return; // a newer view replaced this one
    }
    stamp(p, view);
    if (e instanceof Unreachable) {
        unreachable = e;
        p.classList.add("stale");
        return; // the banner says it; the last data stays, marked stale
    }
    if (sketch && e instanceof ApiError && e.status >= 400 && e.status < 500) {
        setState(p, "unavailable", "Not available: " + e.message);
        return;
    }
    const what = e instanceof ApiError ? `Query error (HTTP ${e.status}): ` : "Error: ";
    setState(p, "error", what + e.message);
}

const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
const fmtNum = (n, d = 1) => n.toLocaleString("en-US", {maximumFractionDigits: d});
const fmtMs = (n) => n == null ? "–" : fmtNum(n, n < 10 ? 2 : 1) + " ms";
// y-axis ticks: milliseconds from 1000 up read as seconds ("2.5 s", not "2,500 ms")
const axisLabel = (v, unit) =>
    unit === " ms" && Math.abs(v) >= 1000 ? fmtNum(v / 1000, 2) + " s" : fmtNum(v, 1) + unit;
const fmtTime = (ms) => iso(ms).slice(0, 16).replace("T", " ");

function setStat(p, view, value, text, sub) {
    stamp(p, view);
    p.classList.remove("stale");
    p.dataset.value = String(value);
    $(".value", p).textContent = text;
    $(".sub", p).textContent = sub || "";
    setState(p, "ok");
}

function changeText(cur, prev, view) {
    const vs = "vs previous " + (view.label || "period");
    if (prev === 0) {
        return cur === 0 ? "no events in either period" : "no events in the previous period";
    }
    const pct = (cur - prev) / prev * 100;
    const arrow = pct > 0 ? "▲" : pct < 0 ? "▼" : "=";
    return `${arrow} ${fmtNum(Math.abs(pct), 1)}% ${vs}`;
}

// ---- the panels' queries and renderers ----------------------------------------------

function sketchField(kind) {
    const ds = datasources.find((d) => d.name === state.ds);
    const metrics = (ds && ds.spec && ds.spec.metrics) || [];
    const m = metrics.find((x) => SHAPES[kind].types.includes(x.type));
    return m ? m.name : SHAPES[kind].fallback;
}

const jobs = [
    // Total events, with the previous period of the same length.
    async (view, signal) => {
        const p = panel("p-total");
        try {
            const q = {queryType: "timeseries", granularity: "all", aggregations: [SHAPES.count()]};
            const [cur, prev] = await Promise.all([
                api("/v1/query", query(view, q), signal),
                api("/v1/query", Object.assign(query(view, q), {intervals: [view.prevInterval]}),
                    signal),
            ]);
            const n = cur.length ? cur[0].result.events : 0;
            const m = prev.length ? prev[0].result.events : 0;
            if (!live(view)) {
                return;
            }
            p.dataset.prev = String(m);
            p.dataset.prevInterval = view.prevInterval;
            setStat(p, view, n, fmtInt(n), changeText(n, m, view));
            if (n === 0) {
                setState(p, "empty", "No events in this range.");
            }
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e);
            }
        }
    },
    // Distinct users over the range.
    async (view, signal) => {
        const p = panel("p-users");
        try {
            const q = {queryType: "timeseries", granularity: "all",
                aggregations: [SHAPES.users.aggregation(sketchField("users"))]};
            const r = await api("/v1/query", query(view, q), signal);
            if (!live(view)) {
                return;
            }
            const v = r.length ? r[0].result.users : 0;
            setStat(p, view, v, fmtInt(v), "distinct users in the range");
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e, true);
            }
        }
    },
    // Latency quantiles over the range.
    async (view, signal) => {
        const p = panel("p-latency");
        try {
            const r = await api("/v1/query", query(view, latencyQuery("all")), signal);
            if (!live(view)) {
                return;
            }
            const res = r.length ? r[0].result : {};
            const v = res.p95 == null ? null : res.p95;
            setStat(p, view, v, fmtMs(v), `p50 ${fmtMs(res.p50)} · p99 ${fmtMs(res.p99)}`);
            if (v == null) {
                setState(p, "empty", "No latency values in this range.");
            }
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e, true);
            }
        }
    },
    // Events per bucket by event type; the event-type list is its totals.
    async (view, signal) => {
        const p = panel("p-events");
        const list = panel("p-types");
        try {
            const q = {queryType: "groupBy", granularity: view.gran, dimensions: ["event_type"],
                aggregations: [SHAPES.count()]};
            const rows = await api("/v1/query", query(view, q), signal);
            if (!live(view)) {
                return;
            }
            const totals = new Map();
            for (const r of rows) {
                const k = r.event.event_type;
                totals.set(k, (totals.get(k) || 0) + r.event.events);
            }
            const ranked = [...totals].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]));
            renderList(list, view, ranked.map(([key, value]) => ({key, value})));
            const shown = ranked.slice(0, MAX_TYPES).map((x) => x[0]);
            const series = shown.map((k) => ({label: k === null ? NULL_TOKEN : k, key: k}));
            if (ranked.length > MAX_TYPES) {
                series.push({label: "other", key: undefined});
            }
            const xs = buckets(view);
            const index = new Map(xs.map((x, i) => [x, i]));
            const ys = series.map(() => xs.map(() => 0));
            for (const r of rows) {
                const i = index.get(Date.parse(r.timestamp));
                const s = shown.indexOf(r.event.event_type);
                if (i !== undefined) {
                    ys[s >= 0 ? s : series.length - 1][i] += r.event.events;
                }
            }
            renderChart(p, view, xs, series, ys, {empty: rows.length === 0 ?
                "No events in this range." : null});
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e);
                panelError(list, view, e);
            }
        }
    },
    // Active users per bucket.
    async (view, signal) => {
        const p = panel("p-users-ts");
        try {
            const q = {queryType: "timeseries", granularity: view.gran,
                aggregations: [SHAPES.users.aggregation(sketchField("users"))]};
            const rows = await api("/v1/query", query(view, q), signal);
            if (!live(view)) {
                return;
            }
            const xs = buckets(view);
            const ys = [fill(view, xs, rows, (r) => r.users, 0)];
            renderChart(p, view, xs, [{label: "users"}], ys,
                        {empty: ys[0].every((v) => !v) ? "No users in this range." : null});
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e, true);
            }
        }
    },
    // Latency quantiles per bucket.
    async (view, signal) => {
        const p = panel("p-latency-ts");
        try {
            const rows = await api("/v1/query", query(view, latencyQuery(view.gran)), signal);
            if (!live(view)) {
                return;
            }
            const xs = buckets(view);
            const names = SHAPES.latency.quantiles.map((x) => x[0]);
            const ys = names.map((n) => fill(view, xs, rows, (r) => r[n], null));
            renderChart(p, view, xs, names.map((label) => ({label})), ys, {
                unit: " ms",
                empty: ys.every((s) => s.every((v) => v == null)) ?
                    "No latency values in this range." : null,
            });
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e, true);
            }
        }
    },
    ...["page", "country", "device"].map((dim) => async (view, signal) => {
        const p = panel({page: "p-pages", country: "p-countries", device: "p-devices"}[dim]);
        try {
            const q = {queryType: "topN", granularity: "all", dimension: dim, metric: "events",
                threshold: TOP_N, aggregations: [SHAPES.count()]};
            const r = await api("/v1/query", query(view, q), signal);
            if (!live(view)) {
                return;
            }
            const rows = r.length ? r[0].result : [];
            renderList(p, view, rows.map((x) => ({key: x[dim], value: x.events})));
        } catch (e) {
            if (live(view)) {
                panelError(p, view, e);
            }
        }
    }),
];

function latencyQuery(granularity) {
    const L = SHAPES.latency;
    return {
        queryType: "timeseries", granularity,
        aggregations: [L.aggregation(sketchField("latency"))],
        postAggregations: L.quantiles.map(([name, f]) => L.postAggregation(name, f)),
    };
}

const cmp = (a, b) => (a === null) - (b === null) || (a < b ? -1 : a > b ? 1 : 0);

// Bucket starts of the view, in ms.
function buckets(view) {
    const xs = [];
    for (let t = view.start; t < view.end; t += view.granMs) {
        xs.push(t);
    }
    return xs;
}

function fill(view, xs, rows, get, none) {
    const by = new Map(rows.map((r) => [Date.parse(r.timestamp), get(r.result)]));
    return xs.map((x) => (by.has(x) && by.get(x) != null ? by.get(x) : none));
}

function renderList(p, view, rows) {
    const dim = p.dataset.dim;
    const ol = $(".rows", p);
    const max = rows.reduce((m, r) => Math.max(m, r.value), 0);
    const active = state.filters.find((f) => f.dim === dim);
    ol.replaceChildren(...rows.map((r) => {
        const li = document.createElement("li");
        li.dataset.key = r.key === null ? NULL_TOKEN : r.key;
        li.dataset.value = String(r.value);
        const b = document.createElement("button");
        b.type = "button";
        b.className = "row";
        b.title = `Filter every panel by ${dim} = ${li.dataset.key}`;
        if (active && active.value === r.key) {
            b.classList.add("active");
        }
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = (max ? (100 * r.value / max) : 0).toFixed(1) + "%";
        const k = document.createElement("span");
        k.className = "k";
        k.textContent = r.key === null ? "(none)" : r.key;
        const v = document.createElement("span");
        v.className = "v";
        v.textContent = fmtInt(r.value);
        b.append(bar, k, v);
        b.addEventListener("click", () => addFilter(dim, r.key));
        li.append(b);
        return li;
    }));
    stamp(p, view);
    p.classList.remove("stale");
    if (rows.length === 0) {
        setState(p, "empty", "No events in this range.");
    } else {
        setState(p, "ok");
    }
}

// ---- charts (uPlot) ---------------------------------------------------------------------

const charts = new Map(); // panel id -> {u, sig}

function renderChart(p, view, xs, series, ys, opt) {
    stamp(p, view);
    p.classList.remove("stale");
    if (typeof uPlot === "undefined") {
        setState(p, "unavailable", "Not available: the chart library (uPlot) is not in this " +
                 "gateway build (npm was missing when it was built).");
        return;
    }
    // What is drawn, for tests and curious readers: points per series and their sums.
    p.dataset.points = String(xs.length);
    p.dataset.totals = JSON.stringify(series.map((s, i) => [s.label,
        ys[i].reduce((a, v) => a + (v || 0), 0)]));
    const el = $(".plot", p);
    const sig = JSON.stringify(series.map((s) => s.label)) + (opt.unit || "");
    let c = charts.get(p.id);
    const data = [xs.map((x) => x / 1000), ...ys];
    if (!c || c.sig !== sig) {
        if (c) {
            c.u.destroy();
        }
        const u = new uPlot({
            width: Math.max(el.clientWidth, 200), height: 220,
            tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
            cursor: {points: {size: 6}},
            legend: {live: true},
            scales: {x: {time: true}},
            axes: [{stroke: "#4a5568", grid: {stroke: "#edf2f7"}, values: timeTicks,
                space: (u, i, min, max) => (max - min > 1.5 * 86400 ? 110 : 60)},
                {stroke: "#4a5568", grid: {stroke: "#edf2f7"},
                    values: (u, vals) => vals.map((v) => axisLabel(v, opt.unit || "")),
                    // wide enough for the longest label (uPlot clips what does not fit)
                    size: (u, vals) => 18 + 7 * Math.max(3, ...(vals || []).map((v) => v.length))}],
            series: [{label: "UTC"}, ...series.map((s, i) => ({
                label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5,
                fill: series.length === 1 ? COLORS[0] + "22" : undefined,
                points: {show: false}, spanGaps: false,
                value: (u, v) => v == null ? "–" : fmtNum(v, 1) + (opt.unit || ""),
            }))],
        }, data, el);
        c = {u, sig};
        charts.set(p.id, c);
    } else {
        c.u.setData(data);
    }
    if (opt.empty) {
        setState(p, "empty", opt.empty);
    } else {
        setState(p, "ok");
    }
}

// Tick labels in UTC, 24-hour: "14:05", with the date when the range spans days.
function timeTicks(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map((s) => {
        const t = iso(s * 1000);
        return span > 1.5 * 86400 ? t.slice(5, 10) + " " + t.slice(11, 16) : t.slice(11, 16);
    });
}

const resizer = new ResizeObserver(() => {
    for (const [id, c] of charts) {
        const el = $(".plot", panel(id));
        if (el.clientWidth > 0 && el.clientWidth !== c.u.width) {
            c.u.setSize({width: el.clientWidth, height: 220});
        }
    }
});

// ---- alerts, ingestion health, datasources ------------------------------------------

async function refreshAlerts(view, signal) {
    const p = panel("p-alerts");
    try {
        const r = await api("/v1/alerts", undefined, signal);
        const rules = Array.isArray(r) ? r : (r && (r.rules || r.alerts)) || [];
        const firing = rules.filter((a) => /firing/i.test(a.state || a.status || ""));
        p.dataset.value = String(firing.length);
        $(".value", p).textContent = firing.length ? `${firing.length} firing` : "none firing";
        const pending = rules.filter((a) => /pending/i.test(a.state || a.status || "")).length;
        const n = `${rules.length} rule${rules.length === 1 ? "" : "s"}`;
        $(".sub", p).textContent = firing.length ?
            firing.map((a) => a.name + (a.value != null ? ` (${fmtNum(+a.value, 2)})` : ""))
                .join(", ") : pending ? `${n}, ${pending} pending` : `${n}, none firing`;
        p.classList.toggle("firing", firing.length > 0);
        setState(p, "ok");
    } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
            p.dataset.value = "";
            $(".value", p).textContent = "";
            $(".sub", p).textContent = "";
            setState(p, "unavailable", "Alerts not configured (this gateway has no /v1/alerts).");
        } else if (!(e instanceof Unreachable) && e.name !== "AbortError") {
            setState(p, "error", `Alerts: ${e.message}`);
        }
    }
}

let lastSample = null; // {t, accepted, rejected, reasons, backpressure}

function parseProm(text) {
    const out = [];
    for (const line of text.split("\n")) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
        if (!m || line.startsWith("#")) {
            continue;
        }
        const labels = {};
        for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
            labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        }
        out.push({name: m[1], labels, value: parseFloat(m[3])});
    }
    return out;
}

function sample(series, ds) {
    const mine = (s) => !s.labels.datasource || s.labels.datasource === ds;
    const sum = (re, pred = () => true) => {
        const xs = series.filter((s) => re.test(s.name) && mine(s) && pred(s));
        return xs.length ? xs.reduce((a, s) => a + s.value, 0) : null;
    };
    const reasons = new Map();
    for (const s of series) {
        if (PROM.rejected.test(s.name) && mine(s)) {
            const r = s.labels.reason || "(no reason label)";
            reasons.set(r, (reasons.get(r) || 0) + s.value);
        }
    }
    const bpHttp = sum(PROM.httpRequests, (s) => /^(429|503|507)$/.test(s.labels.status ||
                                                                          s.labels.code || ""));
    const bp = sum(PROM.backpressure);
    const max = (re) => {
        const xs = series.filter((s) => re.test(s.name) && mine(s));
        return xs.length ? Math.max(...xs.map((s) => s.value)) : null;
    };
    return {
        t: performance.now(), accepted: sum(PROM.accepted), rejected: sum(PROM.rejected), reasons,
        backpressure: bp != null ? bp : bpHttp, lagEvents: max(PROM.lagEvents),
        lagSeconds: max(PROM.lagSeconds), backlog: max(PROM.backlog),
    };
}

async function refreshHealth(signal) {
    const p = panel("p-health");
    const figs = [];
    const notes = [];
    const ds = datasources.find((d) => d.name === state.ds);
    let metrics = null;
    try {
        const text = await api("/metrics", undefined, signal);
        metrics = sample(parseProm(typeof text === "string" ? text : ""), state.ds);
    } catch (e) {
        if (e.name === "AbortError") {
            return;
        }
        if (e instanceof Unreachable) {
            unreachable = e;
            p.classList.add("stale");
            return;
        }
        notes.push(`Accepted/rejected per second, rejection reasons, lag and backpressure ` +
                   `come from GET /metrics, which is not available yet (HTTP ${e.status}: ` +
                   `${e.message}).`);
    }
    const rate = (k) => {
        if (!metrics || metrics[k] == null) {
            return null;
        }
        if (!lastSample || lastSample[k] == null || metrics.t <= lastSample.t) {
            return undefined; // measuring
        }
        return Math.max(0, (metrics[k] - lastSample[k]) / ((metrics.t - lastSample.t) / 1000));
    };
    const show = (v, f) => v === null ? "not exported" : v === undefined ? "measuring…" : f(v);
    if (metrics) {
        figs.push(["Accepted / s", show(rate("accepted"), (v) => fmtNum(v, 1)), "accepted"]);
        figs.push(["Rejected / s", show(rate("rejected"), (v) => fmtNum(v, 1)), "rejected"]);
        figs.push(["Backpressure replies / s", show(rate("backpressure"), (v) => fmtNum(v, 2)),
            "backpressure"]);
        figs.push(["Log backlog", metrics.backlog == null ? "not exported" :
            fmtNum(metrics.backlog / 1048576, 1) + " MiB", "backlog"]);
        figs.push(["Log lag", metrics.lagEvents == null && metrics.lagSeconds == null ?
            "not exported" : [metrics.lagEvents != null ? fmtInt(metrics.lagEvents) + " events" :
                null, metrics.lagSeconds != null ? fmtNum(metrics.lagSeconds, 1) + " s" : null]
            .filter(Boolean).join(" · "), "lag"]);
        const reasons = [...metrics.reasons].sort((a, b) => b[1] - a[1]).slice(0, 5);
        figs.push(["Rejection reasons", reasons.length ? reasons.map(([r, n]) =>
            `${r}: ${fmtInt(n)}`).join("; ") : metrics.rejected == null ? "not exported" : "none",
            "reasons"]);
        lastSample = metrics;
    } else {
        for (const [label, key] of [["Accepted / s", "accepted"], ["Rejected / s", "rejected"],
            ["Backpressure replies / s", "backpressure"], ["Log lag", "lag"]]) {
            figs.push([label, "not available", key]);
        }
    }
    if (ds) {
        figs.push(["Events stored", fmtInt(ds.events), "stored"]);
        figs.push(["Newest stored minute", ds.maxTime ? fmtTime(Date.parse(ds.maxTime)) + " UTC" +
            ` (${ago(Date.parse(ds.maxTime))})` : "none yet", "newest"]);
        figs.push(["Rows · hourly segments", `${fmtInt(ds.rows)} · ${fmtInt(ds.segments)}`,
            "rows"]);
    }
    $(".figures", p).replaceChildren(...figs.map(([label, value, key]) => {
        const d = document.createElement("div");
        d.className = "fig";
        d.dataset.key = key;
        d.classList.toggle("na", /^not /.test(value));
        const l = document.createElement("div");
        l.className = "label";
        l.textContent = label;
        const v = document.createElement("div");
        v.className = "figv";
        v.textContent = value;
        d.append(l, v);
        return d;
    }));
    p.classList.remove("stale");
    setState(p, "ok", notes.join(" "));
    p.dataset.metrics = metrics ? "yes" : "no";
}

function ago(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` :
        s < 129600 ? `${fmtNum(s / 3600, 1)} h ago` : `${fmtNum(s / 86400, 1)} days ago`;
}

async function loadDatasources(signal) {
    const r = await api("/v1/datasources", undefined, signal);
    datasources = Array.isArray(r) ? r : [];
    const sel = $("#datasource");
    const names = datasources.map((d) => d.name);
    if (sel.dataset.names !== names.join("\n")) {
        sel.replaceChildren(...names.map((n) => new Option(n, n)));
        sel.dataset.names = names.join("\n");
    }
    if (!state.ds || !names.includes(state.ds)) {
        if (state.ds && names.length) {
            showBanner("notice", `Unknown datasource "${state.ds}": showing "${names[0]}".`);
        }
        state.ds = names[0] || null;
        writeUrl(false);
    }
    sel.value = state.ds || "";
}

// ---- the refresh cycle -------------------------------------------------------------------

let generation = 0;
let current = null; // the latest refresh: {view (null until known), gen, controller}
let running = null; // the refresh in flight
let again = false; // another was asked for meanwhile
let wantFull = false; // the next refresh reloads the datasource list
let delayTimer = null; // a refresh waiting out MIN_GAP_MS
let lastStart = 0;
let lastOk = null; // when the gateway last answered
let unreachable = null; // the latest refresh could not reach the gateway
let firstRenderMs = null;
let pollTimer = null;
const timings = [];

const live = (view) => current && current.view === view;

// Asks for a refresh: now if none is running, else right after the running one.
// force: the view changed (range, filter, datasource): drop what is running.
// full: also reload the datasource list (not needed for a "data changed" hint).
function requestRefresh(force, full = true) {
    if (force && running) {
        clearTimeout(delayTimer); // one still waiting never starts
        if (current) {
            current.controller.abort();
        }
        running = null;
    }
    wantFull = wantFull || full;
    if (running) {
        again = true;
        return;
    }
    const wait = force ? 0 : Math.max(0, lastStart + MIN_GAP_MS - performance.now());
    running = new Promise((resolve) => {
        delayTimer = setTimeout(resolve, wait);
    }).then(() => {
        const f = wantFull || !datasources.length;
        wantFull = false;
        return refresh(f);
    });
    const mine = running;
    running.finally(() => {
        if (running !== mine) {
            return;
        }
        running = null;
        if (again) {
            again = false;
            requestRefresh(false, false);
        }
    });
}

async function refresh(full) {
    lastStart = performance.now();
    const controller = new AbortController();
    const gen = ++generation;
    document.body.dataset.gen = String(gen);
    const signal = controller.signal;
    current = {view: null, gen, controller}; // results for older views are dropped from here
    unreachable = null;
    timings.length = 0; // the latest refresh's only
    try {
        if (full) {
            await loadDatasources(signal);
            gatewayOk();
        }
    } catch (e) {
        if (e.name !== "AbortError") {
            gatewayFailed(e);
        }
        return;
    }
    if (!state.ds) {
        document.body.dataset.state = "empty";
        showBanner("notice", "The gateway has no datasources: add one to the config.");
        return;
    }
    if (current.gen !== gen) {
        return;
    }
    const view = makeView();
    view.label = state.range === "custom" ? "period" : RANGES[state.range].label;
    current.view = view;
    document.body.dataset.key = view.key;
    renderHeader(view);
    for (const p of document.querySelectorAll(".panel")) {
        if (p.dataset.key !== view.key) {
            p.classList.add("updating");
        }
    }
    const tq = performance.now();
    const side = Promise.all([refreshAlerts(view, signal), refreshHealthOnce(signal)]);
    await Promise.all(jobs.map((j) => j(view, signal).then(() => {
        timings.push([j.name || "job", Math.round(performance.now() - tq)]);
    })));
    // First render: every data panel drawn (alerts and ingestion health do not depend on
    // the amount of data and are not counted).
    if (firstRenderMs === null && current.gen === gen && !unreachable) {
        firstRenderMs = Math.round(performance.now());
        document.body.dataset.firstRenderMs = String(firstRenderMs);
    }
    await side;
    timings.push(["all", Math.round(performance.now() - tq), Math.round(tq - lastStart)]);
    if (current.gen !== gen) {
        return;
    }
    if (unreachable) {
        gatewayFailed(unreachable);
        return;
    }
    gatewayOk();
    document.body.dataset.settled = String(gen);
    document.body.dataset.state = "ok";
    const failed = document.querySelectorAll('.panel.stale').length;
    $("#footer").textContent = `Updated ${fmtTime(Date.now())}:${iso(Date.now()).slice(17, 19)} ` +
        `UTC · first render ${firstRenderMs} ms after navigation (data panels)` +
        (failed ? ` · ${failed} panels stale` : "") + ` · page ${loadId}`;
}

let healthInFlight = null;

function refreshHealthOnce(signal) {
    // /metrics is also sampled on its own timer; one request at a time.
    if (!healthInFlight) {
        healthInFlight = refreshHealth(signal).finally(() => {
            healthInFlight = null;
        });
    }
    return healthInFlight;
}

function renderHeader(view) {
    for (const b of document.querySelectorAll("#ranges button")) {
        b.classList.toggle("active", b.dataset.range === state.range);
        b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    }
    $("#custom").hidden = state.range !== "custom";
    if (state.range === "custom") {
        $("#custom-from").value = iso(state.from).slice(0, 16);
        $("#custom-to").value = iso(state.to).slice(0, 16);
    }
    const rl = $("#range-label");
    rl.textContent = `${fmtTime(view.start)} – ${fmtTime(view.end)} UTC · ` +
        `bucket ${view.granLabel}`;
    rl.dataset.interval = view.interval;
    for (const b of document.querySelectorAll(".panel .bucket")) {
        b.textContent = view.granLabel;
    }
    renderFilters();
}

function renderFilters() {
    const box = $("#filters");
    if (state.filters.length === 0) {
        box.replaceChildren(Object.assign(document.createElement("span"), {
            className: "muted",
            textContent: "Click a country, device, page or event type to filter every panel.",
        }));
        return;
    }
    box.replaceChildren(...state.filters.map((f) => {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.dataset.dim = f.dim;
        chip.dataset.value = f.value === null ? NULL_TOKEN : f.value;
        chip.textContent = `${f.dim} = ${f.value === null ? "(none)" : f.value}`;
        const x = document.createElement("button");
        x.type = "button";
        x.className = "remove";
        x.title = `Remove the filter ${f.dim} = ${chip.dataset.value}`;
        x.setAttribute("aria-label", x.title);
        x.textContent = "×";
        x.addEventListener("click", () => removeFilter(f.dim));
        chip.append(x);
        return chip;
    }), Object.assign(document.createElement("button"), {
        type: "button", className: "clear", textContent: "Clear all",
        onclick: () => {
            state.filters = [];
            changed();
        },
    }));
}

function addFilter(dim, value) {
    state.filters = state.filters.filter((f) => f.dim !== dim).concat([{dim, value}]);
    changed();
}

function removeFilter(dim) {
    state.filters = state.filters.filter((f) => f.dim !== dim);
    changed();
}

// The view changed by the user: into the URL (a history entry), then query.
function changed() {
    writeUrl(true);
    renderFilters();
    requestRefresh(true);
}

// ---- gateway reachability, live updates, polling ----------------------------------------

function showBanner(kind, text) {
    const b = $("#banner");
    b.dataset.kind = kind;
    b.textContent = text;
    b.hidden = false;
}

function hideBanner(kind) {
    const b = $("#banner");
    if (!b.hidden && (!kind || b.dataset.kind === kind)) {
        b.hidden = true;
        b.dataset.kind = "";
    }
}

function gatewayFailed(e) {
    if (e instanceof Unreachable) {
        document.body.dataset.state = "unreachable";
        const since = lastOk ? `Showing what was received up to ${fmtTime(lastOk)}:` +
            `${iso(lastOk).slice(17, 19)} UTC. ` : "";
        showBanner("unreachable", `Gateway unreachable: ${location.origin} does not answer ` +
                   `(${e.message}). ${since}Retrying every ${RETRY_MS / 1000} s.`);
        for (const p of document.querySelectorAll(".panel")) {
            p.classList.add("stale");
            if (p.dataset.state === "loading") {
                setState(p, "error", "Gateway unreachable.");
            }
        }
        schedulePoll(RETRY_MS);
    } else {
        document.body.dataset.state = "error";
        showBanner("error", `The gateway answered with an error: ${e.message}` +
                   (e.status ? ` (HTTP ${e.status})` : ""));
        schedulePoll(RETRY_MS);
    }
}

function gatewayOk() {
    lastOk = Date.now();
    hideBanner("unreachable");
    hideBanner("error");
    if (document.body.dataset.state !== "ok") {
        schedulePoll(POLL_MS);
    }
}

function schedulePoll(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => {
        schedulePoll(POLL_MS);
        requestRefresh(false);
    }, ms);
}

let source = null;
let liveLost = false; // the stream was down for a while: changes may have been missed

function connectLive() {
    const el = $("#live");
    const set = (st, text) => {
        el.dataset.state = st;
        el.textContent = text;
    };
    set("connecting", "connecting…");
    source = new EventSource("/v1/live");
    source.addEventListener("hello", () => {
        set("open", "live");
        if (liveLost) {
            liveLost = false;
            requestRefresh(false);
        }
    });
    source.addEventListener("change", (ev) => {
        let c;
        try {
            c = JSON.parse(ev.data);
        } catch (_) {
            return;
        }
        document.body.dataset.hints = String(+(document.body.dataset.hints || 0) + 1);
        const v = current && current.view;
        // Only what the view (or its previous period) covers; a hint for another
        // datasource or time is not a reason to query.
        if (!v || (c.datasource === v.ds && c.max_ms >= v.prevStart && c.min_ms < v.end) ||
            (state.range !== "custom" && c.datasource === v.ds && c.max_ms >= v.end)) {
            requestRefresh(false, false);
        }
    });
    source.onerror = () => {
        liveLost = true;
        if (source.readyState === EventSource.CLOSED) {
            // The browser gave up (e.g. a 503: too many clients): poll, and try again later.
            set("down", "not live: polling");
            setTimeout(connectLive, POLL_MS);
        } else {
            set("connecting", "reconnecting…");
        }
        requestRefresh(false); // also tells "unreachable" from "stream ended"
    };
}

// ---- wiring ---------------------------------------------------------------------------

function init() {
    window.sluiceDashboard = {loadId, state, timings, refresh: () => requestRefresh(true)};
    readUrl();
    for (const b of document.querySelectorAll("#ranges button")) {
        b.addEventListener("click", () => {
            if (b.dataset.range === "custom") {
                if (state.range !== "custom") {
                    const v = current ? current.view : makeView();
                    state.from = v.start;
                    state.to = v.end;
                }
            } else {
                state.from = state.to = null;
            }
            state.range = b.dataset.range;
            changed();
        });
    }
    $("#custom").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const from = parseTime($("#custom-from").value);
        const to = parseTime($("#custom-to").value);
        if (from == null || to == null || to <= from) {
            showBanner("notice", "Custom range: the end must be after the start.");
            return;
        }
        hideBanner("notice");
        Object.assign(state, {range: "custom", from, to});
        changed();
    });
    $("#datasource").addEventListener("change", (ev) => {
        state.ds = ev.target.value;
        state.filters = [];
        changed();
    });
    const onUrl = () => {
        readUrl();
        renderFilters();
        requestRefresh(true);
    };
    window.addEventListener("popstate", onUrl);
    window.addEventListener("hashchange", onUrl);
    for (const p of document.querySelectorAll(".panel.chart .plot")) {
        resizer.observe(p);
    }
    setInterval(() => {
        if (current && document.visibilityState === "visible") {
            refreshHealthOnce(current.controller.signal);
        }
    }, METRICS_MS);
    document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") {
            requestRefresh(false);
        }
    });
    renderFilters();
    requestRefresh(true);
    schedulePoll(POLL_MS);
    connectLive();
}

init();
