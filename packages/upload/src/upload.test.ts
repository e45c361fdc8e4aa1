/**
 * HTTP upload end to end inside one process: a real router, Postgres
 * storage (a fresh schema) for the quota ledger, the upload process with
 * its HTTPS endpoint, and the users' side played by a trusted component
 * `localhost`; files on a directory, then on a local S3-compatible server
 * (s3rver, pure JavaScript from npm, which checks our SigV4 signatures).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { pino } from "pino";
import S3rver from "s3rver";
import { Component } from "@jabberfarm/component";
import { Router } from "@jabberfarm/router";
import { openPostgres } from "@jabberfarm/xdb";
import { NS, parseElement, parseTrusted, type Element } from "@jabberfarm/xml";
import { startUpload, type UploadProcess } from "./process.js";
import type { UploadConfigInput } from "./config.js";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SERVICE = "upload.localhost";
const NS_UPLOAD = "urn:xmpp:http:upload:0";

interface HttpAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

function http(method: string, url: string, ca: string, body?: Buffer, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    // The URL names `localhost`; connect to the loopback address the server listens on.
    const req = request({ method, host: "127.0.0.1", servername: u.hostname, port: u.port, path: u.pathname + u.search, ca, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

class Users {
  readonly got: Element[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly component: Component) {
    component.on("stanza", (el, raw) => {
      this.got.push(typeof raw === "string" ? el : parseTrusted(raw.toString("utf8"), NS.COMPONENT));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async ask(text: string, ms = 5000): Promise<Element> {
    const el = parseElement(text);
    this.component.send(el.toString());
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.got.findIndex((e) => e.attrs.id === el.attrs.id);
      if (i >= 0) return this.got.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no answer to ${el.attrs.id}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

let n = 0;
const slotRequest = (from: string, name: string, size: number, type = "image/png"): string =>
  `<iq type='get' id='r${++n}' from='${from}' to='${SERVICE}'><request xmlns='${NS_UPLOAD}' filename='${name}' size='${size}' content-type='${type}'/></iq>`;

for (const backend of ["dir", "s3"] as const) {
  describe(`upload with files on ${backend === "dir" ? "a directory" : "an S3-compatible store (s3rver)"}`, () => {
    let router: Router;
    let storage: Awaited<ReturnType<typeof openPostgres>>;
    let upload: UploadProcess;
    let users: Users;
    let strangers: Users;
    let ca: string;
    let s3: S3rver | undefined;
    const dir = mkdtempSync(join(tmpdir(), "jf-upload-"));
    const schema = `upload_test_${randomBytes(5).toString("hex")}`;

    before(async () => {
      router = new Router({
        host: "127.0.0.1", port: 0, domains: ["localhost"],
        components: {
          [SERVICE]: { secret: "upload-secret-1", trusted: true },
          localhost: { secret: "users-secret-1", trusted: true },
          // Another server's users, for what they may not do.
          "elsewhere.example": { secret: "users-secret-2", trusted: true },
        },
      }, { logger: pino({ level: "silent" }) });
      const { port } = await router.start();
      storage = await openPostgres(DATABASE_URL, { schema });
      const creds = [{ mechanism: "SCRAM-SHA-256" as const, salt: "c2FsdA==", iterations: 4096, storedKey: "a2V5", serverKey: "a2V5" }];
      for (const u of ["ann@localhost", "bob@localhost"]) await storage.createAccount(u, creds);
      let storageConfig: UploadConfigInput["storage"] = { kind: "dir", path: join(dir, "files") };
      if (backend === "s3") {
        s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: "uploads", configs: [] }] });
        const addr = await s3.run();
        storageConfig = { kind: "s3", endpoint: `http://127.0.0.1:${addr.port}`, bucket: "uploads", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
      }
      upload = await startUpload({
        service: SERVICE, secret: "upload-secret-1", routers: [{ host: "127.0.0.1", port }], urlSecret: "a-url-secret-of-some-length",
        http: { host: "127.0.0.1", port: 0, publicUrl: "https://localhost:1/files/" },
        tls: { dataDir: join(dir, "tls") },
        limits: { maxFileBytes: 1000, userQuotaBytes: 2500, expireAfterSeconds: 3600 },
        storage: storageConfig,
      }, { logger: pino({ level: "silent" }), storage });
      ca = readFileSync(upload.certPath, "utf8");
      users = new Users(new Component({ name: "localhost", secret: "users-secret-1", routers: [{ host: "127.0.0.1", port }], settleMs: 0 }));
      await users.component.start();
      strangers = new Users(new Component({ name: "elsewhere.example", secret: "users-secret-2", routers: [{ host: "127.0.0.1", port }], settleMs: 0 }));
      await strangers.component.start();
    });

    after(async () => {
      await users.component.stop();
      await strangers.component.stop();
      await upload.stop();
      await s3?.close();
      await storage.close();
      await router.stop();
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
      rmSync(dir, { recursive: true, force: true });
    });

    /** The slot's URLs, pointed at the port the test server really listens on. */
    const urls = (slot: Element): { put: string; get: string } => {
      const fix = (u: string): string => u.replace("https://localhost:1/", `https://localhost:${upload.address.port}/`);
      const s = slot.getChild("slot", NS_UPLOAD)!;
      return { put: fix(s.getChild("put")!.attrs.url!), get: fix(s.getChild("get")!.attrs.url!) };
    };

    test("disco#info names the service and its size limit", async () => {
      const info = await users.ask(`<iq type='get' id='i1' from='ann@localhost/a' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
      const text = info.toString();
      assert.ok(text.includes("category='store'") && text.includes(NS_UPLOAD));
      assert.match(text, /<field var='max-file-size'><value>1000<\/value><\/field>/);
    });

    test("a file is put once and fetched by anyone with the URL", async () => {
      const data = randomBytes(700);
      const slot = await users.ask(slotRequest("ann@localhost/a", "cat picture.png", data.length));
      assert.equal(slot.attrs.type, "result", slot.toString());
      const { put, get } = urls(slot);
      assert.ok(put.startsWith(`https://localhost:${upload.address.port}/files/u/`));
      // Wrong length, wrong type, a forged signature: refused, nothing stored.
      assert.equal((await http("PUT", put, ca, data.subarray(1), { "Content-Type": "image/png" })).status, 400);
      assert.equal((await http("PUT", put, ca, data, { "Content-Type": "text/html" })).status, 415);
      const forged = put.replace(/\/u\/([^.]+)\.([^/]+)\//, (_m, p: string, s: string) => `/u/${p}.${s.slice(0, -2)}AA/`);
      assert.equal((await http("PUT", forged, ca, data, { "Content-Type": "image/png" })).status, 403);
      assert.equal((await http("GET", get, ca)).status, 404, "nothing there before the PUT");
      assert.equal((await http("PUT", put, ca, data, { "Content-Type": "image/png" })).status, 201);
      assert.equal((await http("PUT", put, ca, data, { "Content-Type": "image/png" })).status, 409, "a slot is used once");
      const got = await http("GET", get, ca);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, data);
      assert.equal(got.headers["content-type"], "image/png");
      assert.equal(got.headers["x-content-type-options"], "nosniff");
      assert.equal(got.headers["access-control-allow-origin"], "*");
      // Another name on the same id, a path outside, an unknown id: nothing.
      assert.equal((await http("GET", get.replace(/[^/]+$/, "other.png"), ca)).status, 404);
      assert.equal((await http("GET", get.replace(/\/f\/.*$/, "/f/../../../etc/passwd"), ca)).status, 404);
      assert.equal((await http("GET", get.replace(/\/f\/[^/]+\//, `/f/${"A".repeat(22)}/`), ca)).status, 404);
    });

    test("too large a file and too much in all are refused with the XEP's errors", async () => {
      const big = await users.ask(slotRequest("ann@localhost/a", "big.png", 1001));
      assert.ok(big.getChild("error")?.getChild("not-acceptable"));
      assert.equal(big.getChild("error")?.getChild("file-too-large", NS_UPLOAD)?.getChildText("max-file-size"), "1000");
      // ann has 700 bytes stored; 2500 is her quota.
      const ok = await users.ask(slotRequest("ann@localhost/a", "b.png", 1000));
      assert.equal(ok.attrs.type, "result");
      const over = await users.ask(slotRequest("ann@localhost/a", "c.png", 900));
      assert.ok(over.getChild("error")?.getChild("resource-constraint"), over.toString());
      assert.match(over.getChild("error")!.getChildText("text") ?? "", /quota/);
      // bob's quota is his own; strangers get nothing.
      assert.equal((await users.ask(slotRequest("bob@localhost/b", "d.png", 900))).attrs.type, "result");
      assert.ok((await strangers.ask(slotRequest("eve@elsewhere.example/e", "e.png", 10))).getChild("error")?.getChild("not-allowed"));
      assert.ok((await users.ask(slotRequest("bob@localhost/b", "../../x", 10))).getChild("error")?.getChild("bad-request"));
    });

    test("expired files go, and their bytes no longer count", async () => {
      const removed = await upload.sweep();
      assert.equal(removed, 0, "nothing is old enough yet");
      // Age every file past the expiry by sweeping with a date in the future.
      const { sweepExpired } = await import("./sweeper.js");
      const future = await sweepExpired(upload.backend, upload.slots.ledger, 1e-6, pino({ level: "silent" }));
      assert.ok(future >= 1, "the stored file was swept");
      const used = await upload.slots.usage("ann@localhost");
      assert.equal(used, 1000, "only the live, unused slot still counts");
    });
  });
}
