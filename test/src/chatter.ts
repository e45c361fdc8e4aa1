/**
 * A user of the fault tests: an @xmpp/client session (LibraryClient) that
 * sends chat messages with unique ids to other users' bare JIDs, writes
 * everything into a Ledger, accepts subscription requests, remembers the
 * presence it sees, and reconnects by itself when the server ends its
 * connection: to the address a `<see-other-host/>` named, else to the next
 * c2s address of the farm. Reconnecting is the test's doing (the library's
 * own reconnect is off); each connection binds a new resource, so the
 * contacts can tell the old session's end from the new one's start.
 */
import type { XmppElement } from "@xmpp/client";
import { LibraryClient, xml } from "./clients.js";
import type { Ledger } from "./ledger.js";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_DELAY = "urn:xmpp:delay";

export interface Outage {
  /** When the server ended the connection. */
  from: number;
  /** When the client was online again (bound, initial presence sent). */
  to?: number;
  /** The c2s address it was on. */
  host: string;
  /** Where `<see-other-host/>` told it to go, if it did. */
  told?: string;
  /** Where it is online again. */
  reconnectedTo?: string;
  /** Connections tried until a login worked (1: the first one did); `path` has their addresses. */
  attempts: number;
  path: string[];
  /** How many of those attempts a c2s answered with <see-other-host/> at the stream's start. */
  redirected: number;
  /** Set when it gave up. */
  failure?: string;
}

export interface ChatterOptions {
  port: number;
  user: string;
  password: string;
  ledger: Ledger;
  /** Every c2s address of the farm, in order. */
  hosts: readonly string[];
  /** Where to go after `failed` went away without naming another address (default: the next in `hosts`). */
  nextHost?: (failed: string) => string;
  domain?: string;
  /** Reconnect when the server ends the connection (default true); without, it stays offline until `connect()`. */
  reconnect?: boolean;
}

class Redirected extends Error {
  constructor(readonly to: string) {
    super(`see-other-host ${to}`);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))),
  ]);
}

export class Chatter {
  readonly user: string;
  readonly bare: string;
  /** The c2s address of the current (or last) connection. */
  host = "";
  /** The current (or last) full JID; `fullJids` has them all. */
  full = "";
  readonly fullJids: string[] = [];
  online = false;
  /** The current connection's key in the ledger (`user#n`). */
  conn = "";
  readonly outages: Outage[] = [];
  readonly presences: Array<{ from: string; type: string | undefined; at: number }> = [];
  /** How long the first login took (a yardstick for "one reconnect" on this machine). */
  firstLoginMs = 0;
  private client: LibraryClient | undefined;
  private conns = 0;
  private counter = 0;
  private stopped = false;
  private sendTimer: NodeJS.Timeout | undefined;
  private readonly domain: string;

  constructor(private readonly o: ChatterOptions) {
    this.user = o.user;
    this.domain = o.domain ?? "localhost";
    this.bare = `${o.user}@${this.domain}`;
  }

  /** First login on `host` (following a redirect if the farm sends one); resolves once online. */
  async connect(host: string, timeoutMs = 30_000): Promise<void> {
    const started = Date.now();
    let target = host;
    const deadline = started + timeoutMs;
    for (let hops = 0; ; hops++) {
      try {
        await this.login(target);
        this.firstLoginMs = Date.now() - started;
        return;
      } catch (err) {
        if (!(err instanceof Redirected) || hops >= 3 || Date.now() > deadline) throw err;
        target = err.to.split(":")[0]!;
      }
    }
  }

  /** Sends one chat message to `to` (a bare JID) in `step`; its id, or undefined when offline. */
  sendTo(to: string, step: string): string | undefined {
    const c = this.client;
    if (c === undefined || !this.online) return undefined;
    const id = `${step}.${this.user}.${++this.counter}`;
    this.o.ledger.send({ id, step, from: this.bare, to, conn: this.conn });
    c.xmpp.send(xml("message", { to, type: "chat", id }, xml("body", {}, `message ${id}`))).catch(() => this.o.ledger.sendFailed(id));
    return id;
  }

  /** Sends to a random one of `targets` every `everyMs` (with jitter) until `stopSending`. */
  startSending(step: string, targets: readonly string[], everyMs: number): void {
    this.stopSending();
    const tick = (): void => {
      const to = targets[Math.floor(Math.random() * targets.length)];
      if (to !== undefined) this.sendTo(to, step);
      this.sendTimer = setTimeout(tick, everyMs * (0.5 + Math.random()));
    };
    this.sendTimer = setTimeout(tick, Math.random() * everyMs);
  }

  stopSending(): void {
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
  }

  async send(el: XmppElement): Promise<void> {
    if (!this.client) throw new Error(`${this.bare} is not connected`);
    await this.client.send(el);
  }

  /** Whether an available presence from `full` arrived (at or after `since`). */
  sawAvailable(full: string, since = 0): boolean {
    return this.presences.some((p) => p.from === full && p.type === undefined && p.at >= since);
  }

  /** When unavailable presence from `full` arrived at or after `since`, if it did. */
  sawUnavailableAt(full: string, since: number): number | undefined {
    return this.presences.find((p) => p.from === full && p.type === "unavailable" && p.at >= since)?.at;
  }

  /** Logs out (a clean close by the client: nothing it sent is in doubt). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSending();
    this.online = false;
    await this.client?.stop();
  }

  // ---- connections ---------------------------------------------------------------

  private async login(host: string): Promise<void> {
    const n = ++this.conns;
    // PLAIN over TLS: the library's SCRAM costs ~0.4 s of a core per login, which a reconnect should not measure.
    const c = new LibraryClient(this.o.port, this.o.user, this.o.password, `r${n}`, this.domain, host, { plain: true });
    let told: string | undefined;
    // The library would follow <see-other-host/> by itself; the test does it
    // instead, so it knows where it was sent and how long it took.
    const conn = c.xmpp as unknown as { _onSeeOtherHost(e: { element: XmppElement }): void; emit(ev: string, ...a: unknown[]): boolean };
    conn._onSeeOtherHost = (e) => {
      told = e.element.getChildText("see-other-host") ?? undefined;
      conn.emit("error", e);
    };
    const key = `${this.o.user}#${n}`;
    c.xmpp.on("stanza", (el: XmppElement) => this.onStanza(el));
    try {
      await withTimeout(c.xmpp.start(), 20_000, `login of ${this.bare} on ${host}`);
    } catch (err) {
      void c.stop();
      if (told !== undefined) throw new Redirected(told);
      throw err;
    }
    this.client = c;
    this.host = host;
    this.conn = key;
    this.full = c.xmpp.jid!.toString();
    this.fullJids.push(this.full);
    c.xmpp.on("disconnect", () => {
      if (this.client !== c || this.stopped) return;
      this.online = false;
      this.o.ledger.connectionEnded(key);
      if (this.o.reconnect === false) this.outages.push({ from: Date.now(), host, attempts: 0, path: [], redirected: 0, ...(told ? { told } : {}) });
      else void this.reconnect(host, told);
    });
    this.online = true;
    // Initial presence: the session becomes available, and stored messages come now.
    await c.send(xml("presence"));
  }

  private async reconnect(failed: string, told: string | undefined): Promise<void> {
    const outage: Outage = { from: Date.now(), host: failed, attempts: 0, path: [], redirected: 0, ...(told ? { told } : {}) };
    this.outages.push(outage);
    const next = this.o.nextHost ?? ((h: string) => this.o.hosts[(this.o.hosts.indexOf(h) + 1) % this.o.hosts.length]!);
    let host = told !== undefined ? told.split(":")[0]! : next(failed);
    const deadline = Date.now() + 60_000;
    while (!this.stopped) {
      outage.attempts++;
      outage.path.push(host);
      try {
        await this.login(host);
        outage.to = Date.now();
        outage.reconnectedTo = host;
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          outage.failure = (err as Error).message;
          return;
        }
        if (err instanceof Redirected) outage.redirected++;
        host = err instanceof Redirected ? err.to.split(":")[0]! : next(host);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private onStanza(el: XmppElement): void {
    const now = Date.now();
    if (el.name === "presence") {
      const from = el.attrs.from ?? "";
      this.presences.push({ from, type: el.attrs.type, at: now });
      if (el.attrs.type === "subscribe") void this.client?.send(xml("presence", { to: from.split("/")[0], type: "subscribed" })).catch(() => {});
      return;
    }
    if (el.name !== "message" || el.attrs.id === undefined) return;
    if (el.attrs.type === "error") {
      const error = el.getChild("error");
      const condition = error?.children.find((c): c is XmppElement => typeof c !== "string" && c.attrs.xmlns === NS_STANZAS)?.name ?? "unknown";
      this.o.ledger.bounce(el.attrs.id, condition, now);
      return;
    }
    const offline = el.getChild("delay", NS_DELAY)?.attrs.from === this.domain;
    this.o.ledger.receive(el.attrs.id, this.bare, offline ? "offline" : "live", now);
  }
}
