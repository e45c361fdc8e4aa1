/**
 * Test support: a farm on loopback (router, Postgres storage in a fresh
 * schema, a real SM, optionally a real xdb) that c2s processes join, and a
 * raw client that speaks the client protocol by hand, for what a client
 * library would never send.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { pino, type Logger } from "pino";
import { Router } from "@jabberfarm/router";
import { ScramClient, deriveCredentials, type ScramCredential, type ScramMechanism } from "@jabberfarm/sasl";
import { loadModules, startSm, type SmConfigInput, type SmProcess } from "@jabberfarm/sm";
import { SqlStorage, openPostgres, startXdb, type Storage, type XdbProcess } from "@jabberfarm/xdb";
import { NS, StreamParser, type Element, type StreamHeader } from "@jabberfarm/xml";
import type { C2sConfigInput } from "./config.js";
import { startC2s, type C2sProcess, type C2sProcessOptions } from "./process.js";

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const DOMAIN = "localhost";
export const SECRETS = { sm: "sm-test-secret", c2s: "c2s-test-secret", xdb: "xdb-test-secret", fake: "fake-sm-secret" };
/** A domain whose "SM" is a bare component a test drives by hand. */
export const FAKE_SM_DOMAIN = "fake.test";

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
}

export interface C2sTestFarm {
  router: Router;
  routerPort: number;
  storage: Storage;
  sm: SmProcess;
  xdb: XdbProcess | undefined;
  logger: Logger;
  tlsDir: string;
  /** Creates an account; returns its bare JID. */
  addUser(local: string, password?: string, domain?: string): Promise<string>;
  /** Starts a c2s on free ports with test-friendly defaults; stopped with the farm. */
  startC2s(over?: Partial<C2sConfigInput>, useXdb?: boolean, logger?: Logger, extra?: Partial<C2sProcessOptions>): Promise<C2sProcess>;
  stop(): Promise<void>;
}

// One derivation for every test account: PBKDF2 per account would dominate the run.
const credentialCache = new Map<string, ScramCredential[]>();
function credentialsFor(password: string): ScramCredential[] {
  let c = credentialCache.get(password);
  if (!c) {
    c = deriveCredentials(password, { iterations: 4096 });
    credentialCache.set(password, c);
  }
  return c;
}

/**
 * Router + storage + SM (the core, with the roster and subscription
 * modules) and, when `withXdb`, an xdb process on the same schema so that c2s
 * can reach storage through the router as in production.
 */
export async function startFarm(opts: { withXdb?: boolean; extraDomains?: string[]; sm?: Partial<SmConfigInput> } = {}): Promise<C2sTestFarm> {
  const logger = testLogger();
  const router = new Router({
    host: "127.0.0.1", port: 0, domains: [DOMAIN, FAKE_SM_DOMAIN, ...(opts.extraDomains ?? [])],
    components: {
      [DOMAIN]: { secret: SECRETS.sm, trusted: true },
      [FAKE_SM_DOMAIN]: { secret: SECRETS.fake, trusted: true },
      c2s: { secret: SECRETS.c2s, trusted: true },
      xdb: { secret: SECRETS.xdb, trusted: true },
    },
  }, { logger });
  const { port } = await router.start();
  const routers = [{ host: "127.0.0.1", port }];
  const schema = `c2s_test_${randomBytes(6).toString("hex")}`;
  const storage = await openPostgres(DATABASE_URL, { schema, poolSize: 4 });
  // The core routes between full JIDs; roster and subscription bring the
  // stream features c2s asks the SMs for (roster versioning, pre-approval).
  const sm = await startSm({ domain: DOMAIN, instance: "sm-1", secret: SECRETS.sm, routers, ...opts.sm }, { logger, storage, modules: loadModules(["roster", "subscription"]) });
  let xdb: XdbProcess | undefined;
  if (opts.withXdb) {
    // The schema exists and is migrated; xdb selects it through the URL.
    const url = `${DATABASE_URL}${DATABASE_URL.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    xdb = await startXdb({ secret: SECRETS.xdb, routers, databaseUrl: url, poolSize: 2 }, { logger });
  }
  const tlsDir = mkdtempSync(join(tmpdir(), "c2s-test-tls-"));
  const started: C2sProcess[] = [];
  let instances = 0;
  return {
    router, routerPort: port, storage, sm, xdb, logger, tlsDir,
    async addUser(local, password = "pw", domain = DOMAIN) {
      const user = `${local}@${domain}`;
      await storage.createAccount(user, credentialsFor(password));
      return user;
    },
    async startC2s(over = {}, useXdb = false, log = logger, extra = {}) {
      const c2s = await startC2s({
        domain: DOMAIN,
        instance: `c2s-t${++instances}`,
        secret: SECRETS.c2s,
        routers,
        listeners: { starttls: { host: "127.0.0.1", port: 0 }, directTls: { host: "127.0.0.1", port: 0 } },
        tls: { dataDir: tlsDir },
        ...over,
        limits: { authFailureDelayMs: 10, ...over.limits },
      }, { logger: log, ...(useXdb ? {} : { storage }), ...extra });
      started.push(c2s);
      return c2s;
    },
    async stop() {
      for (const c of started) await c.stop();
      await sm.stop();
      if (xdb) {
        // Not xdb.stop(): its drain timer is not unref'd and would hold the test process for 5 s.
        await xdb.component.stop();
        await xdb.storage.close();
      }
      await router.stop();
      if (storage instanceof SqlStorage) await storage.db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await storage.close();
      rmSync(tlsDir, { recursive: true, force: true });
    },
  };
}

/** A pino logger whose lines are kept, to assert on what was logged. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "debug" }, {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}

/** A client socket with a stream parser, for driving c2s by hand. */
export class RawClient {
  socket: Socket;
  /** Everything received, for assertions on bytes (keepalives) and for failure messages. */
  text = "";
  header: StreamHeader | undefined;
  closed = false;
  parseError: string | undefined;
  private readonly received: Element[] = [];
  private parser: StreamParser;
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.parser = this.newParser();
    this.attach(socket);
  }

  static connect(port: number, opts: { directTls?: boolean; alpn?: string[] } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      if (opts.directTls) {
        const s = tlsConnect({ host: "127.0.0.1", port, servername: DOMAIN, rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ["xmpp-client"] }, () => resolve(new RawClient(s)));
        s.once("error", reject);
      } else {
        const s = netConnect({ host: "127.0.0.1", port }, () => resolve(new RawClient(s)));
        s.once("error", reject);
      }
    });
  }

  private newParser(): StreamParser {
    return new StreamParser({
      onStreamStart: (h) => {
        this.header = h;
        this.wake();
      },
      onElement: (el) => {
        this.received.push(el);
        this.wake();
      },
      onStreamEnd: () => this.wake(),
      onError: (err) => {
        this.parseError = err.message;
        this.wake();
      },
    });
  }

  private readonly onData = (d: Buffer): void => {
    this.text += d.toString("utf8");
    this.parser.write(d);
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.wake();
  };

  private attach(s: Socket): void {
    s.on("data", this.onData);
    s.on("close", this.onClose);
    s.on("error", () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until(pred: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(this.text.slice(-600))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(s: string): void {
    this.socket.write(s);
  }

  /** The next received element (not taken before) that satisfies `pred`. */
  async next(pred: (el: Element) => boolean = () => true, ms = 3000): Promise<Element> {
    let i = -1;
    await this.until(() => (i = this.received.findIndex(pred)) >= 0, "a matching element", ms);
    return this.received.splice(i, 1)[0]!;
  }

  /** Elements received and not taken. */
  get pending(): readonly Element[] {
    return this.received;
  }

  /** Sends a stream header and resolves with the features that answer it. */
  async open(attrs = `to='${DOMAIN}' version='1.0'`): Promise<Element> {
    this.header = undefined;
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' ${attrs}>`);
    await this.until(() => this.header !== undefined, "the stream header", 3000);
    return this.next((el) => el.local === "features" && el.ns === NS.STREAMS);
  }

  /** STARTTLS, then the new stream's features. */
  async starttls(): Promise<Element> {
    this.write(`<starttls xmlns='${NS.TLS}'/>`);
    const answer = await this.next((el) => el.ns === NS.TLS);
    if (answer.local !== "proceed") throw new Error(`STARTTLS refused: ${answer.toString()}`);
    const plain = this.socket;
    plain.off("data", this.onData);
    plain.off("close", this.onClose);
    this.parser = this.newParser();
    const secure: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: DOMAIN, rejectUnauthorized: false }, () => resolve(s));
      s.once("error", reject);
    });
    this.socket = secure;
    this.attach(secure);
    return this.open();
  }

  private restart(): void {
    this.parser = this.newParser();
  }

  /** SCRAM with the sasl package's client; resolves with the final `<success/>` or `<failure/>`. */
  async authScram(username: string, password: string, mechanism: ScramMechanism = "SCRAM-SHA-256", authzid?: string): Promise<Element> {
    const scram = new ScramClient(mechanism, username, password, authzid === undefined ? {} : { authzid });
    this.write(`<auth xmlns='${NS.SASL}' mechanism='${mechanism}'>${Buffer.from(scram.first()).toString("base64")}</auth>`);
    const challenge = await this.next((el) => el.ns === NS.SASL);
    if (challenge.local !== "challenge") return challenge;
    const final = await scram.finalAsync(Buffer.from(challenge.text(), "base64"));
    this.write(`<response xmlns='${NS.SASL}'>${Buffer.from(final).toString("base64")}</response>`);
    const result = await this.next((el) => el.ns === NS.SASL);
    if (result.local === "success") {
      scram.verify(Buffer.from(result.text(), "base64"));
      this.restart();
    }
    return result;
  }

  async authPlain(username: string, password: string, authzid = ""): Promise<Element> {
    this.write(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${Buffer.from(`${authzid}\0${username}\0${password}`).toString("base64")}</auth>`);
    const result = await this.next((el) => el.ns === NS.SASL);
    if (result.local === "success") this.restart();
    return result;
  }

  /** Resource binding; resolves with the bound full JID. */
  async bind(resource?: string): Promise<string> {
    const id = `bind-${randomBytes(3).toString("hex")}`;
    this.write(`<iq type='set' id='${id}'><bind xmlns='${NS.BIND}'>${resource === undefined ? "" : `<resource>${resource}</resource>`}</bind></iq>`);
    const answer = await this.next((el) => el.local === "iq" && el.attrs.id === id);
    const jid = answer.getChild("bind", NS.BIND)?.getChildText("jid");
    if (answer.attrs.type !== "result" || !jid) throw new Error(`bind failed: ${answer.toString()}`);
    return jid;
  }

  /** Header, STARTTLS (unless direct TLS), SCRAM-SHA-256, restart, bind. */
  async login(user: string, password = "pw", resource?: string, opts: { directTls?: boolean } = {}): Promise<string> {
    if (opts.directTls) await this.open();
    else {
      await this.open();
      await this.starttls();
    }
    const r = await this.authScram(user, password);
    if (r.local !== "success") throw new Error(`authentication failed: ${r.toString()}`);
    await this.open();
    return this.bind(resource);
  }

  /** Waits for a stream error and returns its condition. */
  async streamError(ms = 3000): Promise<string> {
    const el = await this.next((e) => e.local === "error" && e.ns === NS.STREAMS, ms);
    return el.getChildren().find((c) => c.local !== "text")?.local ?? "none";
  }

  async waitClosed(ms = 3000): Promise<void> {
    await this.until(() => this.closed, "the connection to close", ms);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The condition of a stanza error. */
export function errorCondition(el: Element): string | undefined {
  const err = el.getChild("error");
  return err?.getChildren().find((c) => c.local !== "text")?.local;
}
