// The browser half of tests/e2e/test_dashboard.py: a small JSON-lines RPC server that
// drives Debian's chromium through playwright-core. The test (Python) keeps all the
// logic and the API comparisons; this only does what it is told, one command per line
// on stdin, one reply per line on stdout:
//   {"id":1,"cmd":"open","url":"http://127.0.0.1:8080/#range=1h"}
//   {"id":1,"ok":true,"value":...,"ms":123}    or    {"id":1,"ok":false,"error":"..."}
// Commands: open (url), eval (js: an expression), wait (js, timeout_ms: polls the
// expression every 10 ms until it is truthy; value is its value),
// click (selector), screenshot (path), log (every console message, page error and
// request to another origin since the start), close.
//
// playwright-core is resolved from SLUICE_WEB_MODULES (the build's web/node_modules,
// installed by `npm ci` from web/package-lock.json); it never downloads a browser.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

const CHROMIUM = process.env.SLUICE_CHROMIUM || "/usr/bin/chromium";
const modules = process.env.SLUICE_WEB_MODULES;
if (!modules || !fs.existsSync(path.join(modules, "playwright-core"))) {
    console.error(`dashboard.mjs: playwright-core not found in SLUICE_WEB_MODULES=${modules}`);
    process.exit(2);
}
const require = createRequire(path.join(modules, "resolve.js"));
const { chromium } = require("playwright-core");

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
    viewport: { width: 1440, height: 1100 },
    timezoneId: "UTC",
});
const page = context.pages()[0] || await context.newPage();
const events = [];
let origin = null;
page.on("console", (m) => events.push({ kind: "console", type: m.type(), text: m.text() }));
page.on("pageerror", (e) => events.push({ kind: "pageerror", text: String(e) }));
page.on("request", (r) => {
    const u = new URL(r.url());
    if (origin && u.origin !== origin && !["data:", "blob:"].includes(u.protocol)) {
        events.push({ kind: "foreign-request", text: r.url() });
    }
});

async function run(msg) {
    switch (msg.cmd) {
    case "open":
        origin = new URL(msg.url).origin;
        await page.goto(msg.url, { waitUntil: "load", timeout: msg.timeout_ms || 30000 });
        return page.url();
    case "eval":
        return await page.evaluate(msg.js);
    case "wait": {
        // Polled from here: waitForFunction would eval() inside the page, which the
        // page's Content-Security-Policy (rightly) forbids.
        const deadline = performance.now() + (msg.timeout_ms || 10000);
        let last;
        for (;;) {
            try {
                last = await page.evaluate(msg.js);
            } catch (e) {
                last = `(threw: ${e.message})`; // e.g. during a navigation
            }
            if (last && !(typeof last === "string" && last.startsWith("(threw: "))) {
                return last;
            }
            if (performance.now() >= deadline) {
                throw new Error(`timed out after ${msg.timeout_ms || 10000} ms waiting for ` +
                                `${msg.js}; last value: ${JSON.stringify(last)}`);
            }
            await new Promise((r) => setTimeout(r, 10));
        }
    }
    case "click":
        await page.click(msg.selector, { timeout: msg.timeout_ms || 10000 });
        return true;
    case "screenshot":
        await page.screenshot({ path: msg.path, fullPage: msg.full_page !== false });
        return msg.path;
    case "log":
        return events;
    case "close":
        return true;
    default:
        throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
    }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
    if (!line.trim()) {
        continue;
    }
    let msg;
    try {
        msg = JSON.parse(line);
    } catch (e) {
        process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad command: ${e}` }) +
                             "\n");
        continue;
    }
    const t0 = performance.now();
    let reply;
    try {
        reply = { id: msg.id, ok: true, value: await run(msg) };
    } catch (e) {
        reply = { id: msg.id, ok: false, error: String(e && e.message ? e.message : e) };
    }
    reply.ms = Math.round(performance.now() - t0);
    process.stdout.write(JSON.stringify(reply === undefined ? null : reply) + "\n");
    if (msg.cmd === "close") {
        break;
    }
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
