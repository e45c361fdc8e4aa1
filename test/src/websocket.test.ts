/**
 * The farm on the web, end to end: `jabberfarm up` (two c2s, loads in Redis
 * for redirection) and Debian's headless Chromium driven by puppeteer-core.
 * The page (web-page.ts) uses @xmpp/client's browser build: it discovers
 * the WebSocket endpoint through host-meta on the c2s (across origins, so
 * through CORS), logs in, and exchanges messages and presence with a TCP
 * client (@xmpp/client in Node) on the other c2s. A screenshot of the page
 * is kept (TEST_ARTIFACTS_DIR, default test/artifacts). Then the c2s the
 * browser is on gets SIGTERM: it sends the browser to the other one with
 * `<close see-other-host/>`, and the page reconnects there.
 *
 * Chromium missing is a failure, not a skip: .ci/run installs it.
 * WS_TEST_DEBUG=1 prints the c2s and sm logs and every WebSocket frame the page sends or gets.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { LibraryClient, xml } from "./clients.js";
import { Farm, ROOT, waitUntil } from "./farm.js";
import { sample, scrape } from "./prometheus.js";
import { startPageServer } from "./web-page.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = process.env.TEST_ARTIFACTS_DIR ?? join(ROOT, "test/artifacts");

describe("a browser on the farm over WebSocket", () => {
  let farm: Farm;
  let browser: Browser;
  let page: Page;
  let pages: { origin: string; server: Server };
  let bob: LibraryClient | undefined;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is needed at ${CHROMIUM} (Debian's chromium package; CHROMIUM_PATH to point elsewhere)`);
    pages = await startPageServer();
    farm = await Farm.start({
      upArgs: ["--c2s", "2", "--ws-origin", pages.origin, ...(process.env.WS_TEST_DEBUG ? ["--log-level", "debug"] : [])],
      // Redirection needs the c2s loads in Redis; the drain test needs it.
      metrics: true,
      env: { JABBERFARM__C2S__REDIRECT__REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/6" },
    });
    await farm.addUser("alice@localhost", "alice-pw");
    await farm.addUser("bob@localhost", "bob-pw");
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      acceptInsecureCerts: true,
      // Root in a container has no user namespaces for the sandbox; the farm's certificate is self-signed.
      args: ["--no-sandbox", "--ignore-certificate-errors", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage();
    page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
    await page.goto(`${pages.origin}/${process.env.WS_TEST_DEBUG ? "#trace" : ""}`);
  });

  after(async () => {
    if (process.env.WS_TEST_DEBUG) for (const l of farm?.logs ?? []) if (/c2s|sm/.test(String(l.process ?? l.child))) process.stderr.write(JSON.stringify(l) + "\n");
    await bob?.stop();
    await browser?.close();
    pages?.server.close();
    if (farm) assert.equal(await farm.stop(), 0);
  });

  test("discovers the endpoint through host-meta, logs in, exchanges messages and presence with a TCP client on the other c2s", async () => {
    const ws1 = farm.websocketPort(0);
    const hostMetaOrigin = `https://127.0.0.1:${ws1}`;
    const online = await page.evaluate((o) => (globalThis as any).connect(o), { hostMetaOrigin, username: "alice", password: "alice-pw", resource: "browser" });
    assert.equal(online.jid, "alice@localhost/browser");
    assert.equal(online.url, `wss://127.0.0.1:${ws1}/xmpp-websocket`, "the URL host-meta gave");
    // The WebSocket session counts like any other in c2s-1's metrics.
    const scraped = await scrape(farm.metricsPort("c2s-1"));
    assert.equal(sample(scraped, "jabberfarm_sessions", { process: "c2s", instance: "c2s-1" }), 1);
    assert.equal(sample(scraped, "jabberfarm_connections", { process: "c2s", instance: "c2s-1", kind: "client" }), 1);

    // Bob on the second c2s, over TCP with STARTTLS.
    const second = farm.farmPorts!.c2s[1]!;
    bob = await LibraryClient.login(second.starttls!, "bob", "bob-pw", "desk", second.host);
    assert.equal(second.host, "127.0.0.2");
    // Available, so that messages to his bare JID reach this session (RFC 6121 §8.5.2.1).
    await bob.send(xml("presence"));

    // Presence both ways (directed, no roster needed), then messages both ways.
    await bob.send(xml("presence", { to: "alice@localhost/browser" }));
    await page.waitForFunction(() => (globalThis as any).received.some((s: string) => s.startsWith("<presence") && s.includes("bob@localhost/desk")), { timeout: 10_000 });
    await page.evaluate(() => (globalThis as any).sendPresence("bob@localhost/desk"));
    const p = await bob.next((el) => el.local === "presence" && el.attrs.from === "alice@localhost/browser");
    assert.equal(p.attrs.type, undefined, "available");

    await page.evaluate(() => (globalThis as any).sendMessage("bob@localhost", "hello from the browser"));
    const m = await bob.next((el) => el.local === "message" && el.getChildText("body") === "hello from the browser");
    assert.equal(m.attrs.from, "alice@localhost/browser");
    await bob.send(xml("message", { to: "alice@localhost/browser", type: "chat" }, xml("body", {}, "hello from TCP")));
    await page.waitForFunction(() => (globalThis as any).received.some((s: string) => s.includes("hello from TCP")), { timeout: 10_000 });

    const inBrowser = await page.evaluate(() => (globalThis as any).document.getElementById("log").textContent ?? "");
    assert.match(inBrowser, /bob@localhost\/desk: hello from TCP/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "websocket-exchange.png") });
  });

  test("a page from an origin not on the allow-list cannot open a WebSocket; host-meta stays readable to it", async () => {
    // The same page server, reached as localhost: another origin than the allowed http://127.0.0.1:PORT.
    const other = await browser.newPage();
    try {
      await other.goto(pages.origin.replace("127.0.0.1", "localhost") + "/");
      const hostMetaOrigin = `https://127.0.0.1:${farm.websocketPort(0)}`;
      const from = farm.logs.length;
      const outcome = await other.evaluate(async (o) => {
        try {
          await (globalThis as any).connect(o);
          return "connected";
        } catch (err) {
          return `refused: ${(err as Error).message}`;
        }
      }, { hostMetaOrigin, username: "alice", password: "alice-pw", resource: "elsewhere" });
      assert.match(outcome, /^refused/);
      const line = await farm.waitLog("the upgrade refused for its origin", (l) => l.msg === "WebSocket upgrade refused" && String(l.origin).startsWith("http://localhost:"), 10_000, from);
      assert.equal(line.status, "403 Forbidden");
    } finally {
      await other.close();
    }
  });

  test("the c2s the browser is on drains with SIGTERM: the page is sent to the other c2s and goes on there", async () => {
    const ws = farm.websocketPort(0);
    const pid = farm.childPidById("c2s-1");
    assert.ok(pid, "c2s-1's pid");
    process.kill(pid, "SIGTERM");
    const target = await page.waitForFunction(() => (globalThis as any).redirects[0], { timeout: 15_000 }).then((h) => h.jsonValue());
    // Both c2s listen on the same port, each on its own address (up --c2s 2).
    assert.equal(target, `wss://127.0.0.2:${ws}/xmpp-websocket`);
    await page.waitForFunction(() => (globalThis as any).disconnects > 0, { timeout: 10_000 });
    const again = await page.evaluate((service) => (globalThis as any).connect({ service, username: "alice", password: "alice-pw", resource: "browser" }), target as string);
    assert.equal(again.url, target);
    assert.equal(again.jid, "alice@localhost/browser");

    await bob!.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "after the move")));
    await page.waitForFunction(() => (globalThis as any).received.some((s: string) => s.includes("after the move")), { timeout: 10_000 });
    // The supervisor starts c2s-1 again; the farm is whole for the next test file's like.
    await farm.restarted("c2s-1", pid);
    await waitUntil("the page logged the move", 5000, () => page.evaluate(() => (globalThis as any).document.getElementById("log").textContent?.includes("after the move")));
    await page.screenshot({ path: join(ARTIFACTS, "websocket-after-drain.png") });
  });
});
