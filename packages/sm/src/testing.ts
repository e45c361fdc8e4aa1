/**
 * Test support for the SM and its modules: a real router on loopback, real
 * storage (Postgres in a fresh schema), a real SM process, and a
 * `SessionDriver` that plays the c2s side of the envelope, so a module test
 * can open sessions and exchange stanzas exactly as c2s would.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { Component, rawText } from "@jabberfarm/component";
import { ConfirmedReceiver, readRoute, readSession, routeEnvelope, sessionEnvelope, ENVELOPE_NS } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { Router } from "@jabberfarm/router";
import { deriveCredentials } from "@jabberfarm/sasl";
import { openPostgres, type Storage } from "@jabberfarm/xdb";
import { parseElement, type Element } from "@jabberfarm/xml";
import { startSm, type SmProcess } from "./process.js";
import type { SmConfigInput } from "./config.js";

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const DOMAIN = "localhost";
const SM_SECRET = "sm-test-secret";
const C2S_SECRET = "c2s-test-secret";

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One session as the driver sees it: what the SM routed to it, and a way to send. */
export class TestSession {
  readonly received: Element[] = [];
  readonly raws: string[] = [];
  private waiters: Array<() => void> = [];
  kicked: string | undefined;

  constructor(private readonly driver: SessionDriver, readonly sid: string, readonly jid: Jid) {}

  get full(): string {
    return this.jid.toString();
  }

  get bare(): string {
    return this.jid.bareString();
  }

  /** Sends a stanza as the client would; `from` is stamped as c2s does. */
  send(stanzaXml: string): void {
    const el = parseElement(stanzaXml, "jabber:client");
    el.attrs.from = this.full;
    el.attrs.xmlns = "jabber:client";
    this.driver.component.send(routeEnvelope(this.driver.address, this.bare, this.sid, el.toString()));
  }

  deliver(el: Element, raw: string): void {
    this.received.push(el);
    this.raws.push(raw);
    this.wake();
  }

  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first received stanza (not taken before) that satisfies `pred`; removes it. */
  async next(pred: (el: Element) => boolean = () => true, ms = 3000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) {
        this.raws.splice(i, 1);
        return this.received.splice(i, 1)[0]!;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.full}: no matching stanza within ${ms} ms; have: ${this.received.map((e) => e.toString()).join(" | ") || "nothing"}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends an iq and waits for its answer. */
  async iq(stanzaXml: string, ms = 3000): Promise<Element> {
    const el = parseElement(stanzaXml, "jabber:client");
    const id = el.attrs.id ?? `iq${randomBytes(4).toString("hex")}`;
    el.attrs.id = id;
    this.send(el.toString());
    return this.next((e) => e.name === "iq" && e.attrs.id === id && (e.attrs.type === "result" || e.attrs.type === "error"), ms);
  }

  /** Asserts that nothing matching arrives within `ms`. */
  async nothing(pred: (el: Element) => boolean = () => true, ms = 300): Promise<void> {
    await delay(ms);
    const hit = this.received.find(pred);
    if (hit) throw new Error(`${this.full}: unexpected ${hit.toString()}`);
  }

  /** The client goes away (cleanly or not: the SM hears the same `end`). */
  end(): void {
    this.driver.component.send(sessionEnvelope({ type: "end", from: this.driver.address, to: this.bare, sid: this.sid }));
    this.driver.forget(this.sid);
  }
}

/** Plays c2s: opens sessions on the SM and collects what is routed to them. */
export class SessionDriver {
  readonly component: Component;
  /** The `<ack/>`s the SM sent to this driver, for what it sent confirmed. */
  readonly acks: Element[] = [];
  readonly address: string;
  private readonly sessions = new Map<string, TestSession>();
  private readonly startWaiters = new Map<string, (ok: boolean, condition?: string) => void>();
  private counter = 0;
  /** When set, what the SM routes here is delivered but its acknowledgement kept here (a c2s that is behind). */
  heldAcks: Array<() => void> | undefined;
  /** Routes are confirmed as c2s confirms them (docs/envelope.md, "Confirmation"). */
  private readonly receiver: ConfirmedReceiver;

  constructor(routerPort: number | number[], readonly instance = "c2s-test") {
    this.address = `c2s/${instance}`;
    const ports = typeof routerPort === "number" ? [routerPort] : routerPort;
    this.component = new Component({ name: "c2s", secret: C2S_SECRET, instance, routers: ports.map((port) => ({ host: "127.0.0.1", port })) });
    this.component.on("stanza", (el, raw) => this.onStanza(el, rawText(raw)));
    this.receiver = new ConfirmedReceiver(this.address, (t) => this.component.send(t), { flushMs: 5 });
  }

  start(): Promise<void> {
    return this.component.start();
  }

  private onStanza(el: Element, raw: string): void {
    if (el.ns !== ENVELOPE_NS) return;
    if (el.local === "ack") {
      this.acks.push(el);
      return;
    }
    if (el.local === "route") {
      const c = this.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
      if (c?.receipt === "duplicate") return;
      const r = readRoute(el, raw);
      this.sessions.get(r.sid)?.deliver(r.stanza, r.stanzaRaw);
      if (c) {
        const ack = (): void => this.receiver.handled(c.ticket);
        if (this.heldAcks !== undefined) this.heldAcks.push(ack);
        else ack();
      }
    } else if (el.local === "session") {
      const s = readSession(el);
      if (s.type === "started" || s.type === "error") this.startWaiters.get(s.sid)?.(s.type === "started", s.condition);
      if (s.type === "kick") {
        const t = this.sessions.get(s.sid);
        if (t) {
          t.kicked = s.condition ?? "undefined-condition";
          t.wake();
        }
        this.sessions.delete(s.sid);
      }
    }
  }

  forget(sid: string): void {
    this.sessions.delete(sid);
  }

  /** A session the SM already knows under `sid` (one it resumed onto this c2s): collect what is routed to it. */
  attach(sid: string, jid: Jid): TestSession {
    const session = new TestSession(this, sid, jid);
    this.sessions.set(sid, session);
    return session;
  }

  /** Opens a session for `fullJid` and resolves once the SM answered `started`. */
  async open(fullJid: string): Promise<TestSession> {
    const jid = Jid.parse(fullJid);
    const sid = `${this.instance}.${++this.counter}`;
    const session = new TestSession(this, sid, jid);
    this.sessions.set(sid, session);
    const started = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no session answer for ${fullJid}`)), 5000);
      this.startWaiters.set(sid, (ok, condition) => {
        clearTimeout(t);
        this.startWaiters.delete(sid);
        if (ok) resolve();
        else reject(new Error(`session refused: ${condition}`));
      });
    });
    this.component.send(sessionEnvelope({ type: "start", id: `s${this.counter}`, from: this.address, to: jid.bareString(), sid, jid: jid.toString() }));
    await started;
    return session;
  }

  /** Opens a session and sends initial presence, after fetching the roster (as most clients do). */
  async online(fullJid: string, presence = "<presence/>"): Promise<TestSession> {
    const s = await this.open(fullJid);
    await s.iq("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
    s.send(presence);
    return s;
  }

  stop(): Promise<void> {
    this.receiver.stop();
    return this.component.stop();
  }
}

/** Drops a test's Postgres schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

export interface SmTestFarm {
  router: Router;
  port: number;
  storage: Storage;
  sm: SmProcess;
  driver: SessionDriver;
  /** Creates an account (password "pw"). */
  addUser(local: string): Promise<string>;
  stop(): Promise<void>;
}

/** Router + Postgres storage in a fresh schema + SM + a c2s driver. */
export async function startSmFarm(smOverrides: Partial<SmConfigInput> = {}): Promise<SmTestFarm> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const router = new Router({
    host: "127.0.0.1", port: 0, domains: [DOMAIN],
    components: { [DOMAIN]: { secret: SM_SECRET, trusted: true }, c2s: { secret: C2S_SECRET, trusted: true } },
  }, { logger });
  const { port } = await router.start();
  const schema = `sm_test_${randomBytes(6).toString("hex")}`;
  const storage = await openPostgres(DATABASE_URL, { schema });
  const sm = await startSm({ domain: DOMAIN, instance: "sm-1", secret: SM_SECRET, routers: [{ host: "127.0.0.1", port }], ...smOverrides }, { logger, storage });
  const driver = new SessionDriver(port);
  await driver.start();
  const creds = deriveCredentials("pw", { iterations: 4096 });
  return {
    router, port, storage, sm, driver,
    async addUser(local: string) {
      const user = `${local}@${DOMAIN}`;
      await storage.createAccount(user, creds);
      return user;
    },
    async stop() {
      await driver.stop();
      await sm.stop();
      await router.stop();
      await storage.close();
      await dropSchema(schema);
    },
  };
}
