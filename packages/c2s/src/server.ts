/**
 * The c2s process's core: the listeners, every client connection, the
 * sessions by sid, and the envelopes from the routers (docs/envelope.md,
 * the c2s side).
 */
import { createHash, randomBytes } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import {
  ConfirmedReceiver, ConfirmedSender, ENVELOPE_NS, EnvelopeError, readAck, readRoute, readSession, routedStanzaBytes, sessionEnvelope,
} from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import type { Metrics } from "@jabberfarm/metrics";
import { NS, StreamError, canBounce, parseTrusted, readError, stanzaCondition, stanzaErrorReply, type Element } from "@jabberfarm/xml";
import { Admission } from "./admission.js";
import type { SaslOptions } from "./auth.js";
import { AuthBans } from "./bans.js";
import { ClientListeners, type C2sPorts } from "./client-listeners.js";
import type { ClientStream } from "./client-stream.js";
import type { ClientContext, Outlet } from "./client-context.js";
import type { ClientTransport } from "./client-transport.js";
import type { C2sConfig } from "./config.js";
import type { C2sLoad } from "./load-board.js";
import { SlidingWindow, TokenBucket } from "./limits.js";

export interface C2sServerDeps {
  log: Logger;
  outlet: Outlet;
  storage: ClientContext["storage"];
  tls: { cert: string; key: string };
  metrics?: Metrics | undefined;
}

export type { C2sPorts };
// How long stop() waits for clients to answer our </stream:stream>.
const STOP_GRACE_MS = 2500;

export class C2sServer implements ClientContext {
  readonly config: C2sConfig;
  readonly domain: string;
  readonly address: string;
  readonly outlet: Outlet;
  readonly storage: ClientContext["storage"];
  readonly sasl: SaslOptions;
  readonly secureContext: SecureContext;
  readonly bans: AuthBans;
  /** Who gets a stream: bans, per-address and total limits, readiness (admission.ts). */
  readonly admission: Admission;
  readonly registrations: SlidingWindow;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  /** What this c2s routes to SMs, held until they confirm it. */
  readonly confirmed: ConfirmedSender;
  /** What SMs route to our sessions: duplicates dropped, handled ones acknowledged. */
  readonly receiver: ConfirmedReceiver;

  private readonly clients = new Set<ClientStream>();
  private readonly sessions = new Map<string, ClientStream>();
  private readonly listeners: ClientListeners;
  private readonly boot = randomBytes(3).toString("hex");
  private sidCounter = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private accepting = false;

  constructor(config: C2sConfig, deps: C2sServerDeps) {
    this.config = config;
    this.domain = Jid.parse(config.domain).domain;
    this.address = `c2s/${config.instance}`;
    this.log = deps.log;
    this.outlet = deps.outlet;
    this.storage = deps.storage;
    this.metrics = deps.metrics;
    this.secureContext = createSecureContext({ ...deps.tls, minVersion: "TLSv1.2" });
    // Every c2s of a farm shares the component secret, so they derive the same
    // fake salts for unknown users and cannot be told apart by them.
    const scramSecret = createHash("sha256").update("jabberfarm scram decoy\0").update(config.secret).digest();
    const { limits } = config;
    this.bans = new AuthBans({
      ...config.authBans, exempt: limits.exemptAddresses,
      onBan: (kind, key, banMs) => {
        this.metrics?.authBans.inc({ kind });
        this.log.warn({ [kind]: key, banMs }, kind === "address" ? "address banned after failed authentications" : "account locked after failed authentications");
      },
    });
    // PLAIN checks cost a PBKDF2 derivation each (in the thread pool, off the event loop): at most this many a second.
    const pbkdf2 = new TokenBucket(limits.plainChecksPerSecond, limits.plainChecksPerSecond);
    this.sasl = {
      domain: this.domain, storage: deps.storage, scramSecret,
      accountBannedFor: (account) => this.bans.accountBannedFor(account),
      takePbkdf2: () => pbkdf2.tryTake(1),
    };
    this.admission = new Admission({ config, domain: this.domain, log: this.log, bans: this.bans, metrics: this.metrics, clientCount: () => this.clients.size });
    this.registrations = new SlidingWindow({ windowMs: config.registration.perIpWindowMs, maxPerKey: config.registration.perIpLimit });
    const out = (text: string): boolean => this.outlet.send(text);
    this.confirmed = new ConfirmedSender(out, {
      onGiveUp: (text, sends) => this.log.warn({ sends, stanza: text.slice(0, 200) }, "gave up routing a stanza: no SM confirmed it"),
      window: config.limits.maxUnconfirmedRoutes,
    });
    this.receiver = new ConfirmedReceiver(this.address, out);
    this.listeners = new ClientListeners({
      config, domain: this.domain, log: this.log, admission: this.admission, tlsMaterial: deps.tls, context: this,
      isAccepting: () => this.accepting,
      adopt: (client) => this.clients.add(client),
    });
  }

  routeToSm(build: (confirmAttrs: string) => string): number {
    return this.confirmed.send(build);
  }

  get routesWindow(): Pick<ConfirmedSender, "full" | "whenOpen"> {
    return this.confirmed;
  }

  isConfirmed(n: number): boolean {
    return !this.confirmed.isPending(n);
  }

  /** Set by the process when redirection is configured. */
  loadBoard: { redirectPeer(usable?: (peer: C2sLoad) => boolean): C2sLoad | undefined; readonly peers: readonly C2sLoad[] } | undefined;

  redirectTarget(via: ClientTransport): string | undefined {
    const peer = this.loadBoard?.redirectPeer((p) => via.redirectAddress(p) !== undefined);
    return peer && via.redirectAddress(peer);
  }

  /**
   * Where other c2s send WebSocket clients to reach this one (RFC 7395
   * see-other-host): the advertised host (redirect.advertise) on the
   * WebSocket port, else the listener's own URL; undefined without one.
   */
  websocketUrl(advertise: string | undefined, port: number | undefined): string | undefined {
    const own = this.listeners.websocketUrl;
    if (own === undefined || port === undefined) return undefined;
    if (advertise === undefined) return own;
    const host = advertise.slice(0, advertise.lastIndexOf(":"));
    return `${this.config.websocket.tls ? "wss" : "ws"}://${host}:${port}${this.config.websocket.path}`;
  }

  get connectionCount(): number {
    return this.clients.size;
  }

  get sessionCount(): number {
    let n = 0;
    for (const c of this.clients) if (c.session) n++;
    return n;
  }

  /** Bytes written to clients that their sockets have not sent yet. */
  get queuedBytes(): number {
    let n = 0;
    for (const c of this.clients) n += c.conn.queuedBytes;
    return n;
  }

  /** Connections, for tests and admin tools. */
  connections(): IterableIterator<ClientStream> {
    return this.clients.values();
  }

  // ---- ClientContext ----------------------------------------------------------

  /** What every session id of this process (this run of it) begins with. */
  get sidPrefix(): string {
    return `${this.config.instance}.${this.boot}`;
  }

  newSid(): string {
    return `${this.config.instance}.${this.boot}${(++this.sidCounter).toString(36)}`;
  }

  track(sid: string, client: ClientStream): void {
    this.sessions.set(sid, client);
  }

  untrack(sid: string, client: ClientStream): void {
    if (this.sessions.get(sid) === client) this.sessions.delete(sid);
  }

  closed(client: ClientStream): void {
    this.clients.delete(client);
  }

  // ---- listening ---------------------------------------------------------------

  async listen(): Promise<C2sPorts> {
    this.accepting = true;
    const ports = await this.listeners.listen();
    const { limits } = this.config;
    const shortest = Math.min(limits.idleTimeoutMs, limits.keepaliveIntervalMs, limits.authTimeoutMs, limits.releaseParserAfterMs, limits.unreadyHoldMs || Infinity);
    const period = Math.max(50, Math.min(5000, Math.floor(shortest / 4)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
    return ports;
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.clients) c.tick(now);
    this.bans.sweep(now);
    this.admission.sweep(now);
    this.registrations.sweep(now);
  }

  // ---- from the routers ------------------------------------------------------------

  /** One element from a router link. Never throws. */
  handleRouterStanza(el: Element, raw: string | Buffer): void {
    try {
      if (typeof raw !== "string") {
        // The hot path: a stanza for a session, read by the splitter. Its
        // bytes go to the client as they are, never decoded.
        if (el.local === "route" && el.ns === ENVELOPE_NS && el.attrs.type !== "error") {
          const { sid, from } = el.attrs;
          if (!sid || !from) throw new EnvelopeError("route: from, to and sid are required");
          const bytes = raw;
          this.routed(el, raw, sid, from, () => routedStanzaBytes(bytes));
          return;
        }
        if (el.local === "ack" && el.ns === ENVELOPE_NS) {
          this.confirmed.acknowledge(readAck(el, this.confirmed.epoch));
          return;
        }
        // A storage answer is text only (JSON), which the splitter keeps.
        if (el.local === "xdb" && el.ns === ENVELOPE_NS && el.attrs.type === "result") {
          this.handleEnvelope(el, "");
          return;
        }
        // Anything else is rare enough to be parsed whole.
        const text = raw.toString("utf8");
        el = parseTrusted(text, NS.COMPONENT);
        raw = text;
      }
      if (el.ns === ENVELOPE_NS) this.handleEnvelope(el, raw);
      else this.handleStanza(el);
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof EnvelopeError) this.log.warn({ err: message, from: el.attrs.from, element: el.name }, "invalid envelope");
      else this.log.error({ err, from: el.attrs.from, element: el.name }, "failed to handle an envelope");
      if (el.attrs.type !== "error" && el.attrs.from) {
        this.outlet.send(stanzaErrorReply(el, err instanceof EnvelopeError ? "bad-request" : "internal-server-error", { text: message, includePayload: false }).toString());
      }
    }
  }

  /**
   * A route an SM sent to session `sid` (`stanza` gives the carried stanza's
   * bytes from the splitter, or its text). Written to the client and
   * acknowledged; or, when the session is gone here (the client left, its
   * stream is closing, or this c2s is not the one that held it: the router
   * sends a route for a dead c2s to a live one), bounced with its `seq`, so
   * that the SM ends the session and sends the stanza where one for the user
   * goes now (another resource, offline storage) instead of counting it
   * delivered.
   */
  private routed(el: Element, raw: string | Buffer, sid: string, from: string, stanza: () => string | Buffer): void {
    const client = this.sessions.get(sid);
    const bound = client?.session?.sid === sid;
    if (client === undefined || (bound && !client.isOpen)) {
      this.log.debug({ sid, from }, "route for a session that is gone here; bounced");
      const route = parseTrusted(typeof raw === "string" ? raw : raw.toString("utf8"), NS.COMPONENT);
      this.outlet.send(stanzaErrorReply(route, "recipient-unavailable", { text: "no such session" }).toString());
      return;
    }
    const r = this.receiver.receive(from, el.attrs.seq, el.attrs.low);
    if (r?.receipt === "duplicate") return;
    // The SM sends `started` before anything else for a session; this is out of order, not stale.
    if (bound) client.deliver(stanza());
    else this.log.warn({ sid, from }, "route for a session still binding; dropped");
    if (r) this.receiver.handled(r.ticket);
  }

  private handleEnvelope(el: Element, raw: string): void {
    switch (el.local) {
      case "route": {
        if (el.attrs.type === "error") {
          this.bouncedRoute(el);
          return;
        }
        const r = readRoute(el, raw);
        this.routed(el, raw, r.sid, r.from, () => r.stanzaRaw);
        return;
      }
      case "ack":
        this.confirmed.acknowledge(readAck(el, this.confirmed.epoch));
        return;
      case "session": {
        const s = readSession(el);
        const client = this.sessions.get(s.sid);
        switch (s.type) {
          case "started":
            if (!client?.bindStarted(s.sid)) {
              // Too late (bind timed out or the client left): end what the SM just registered.
              this.outlet.send(sessionEnvelope({ type: "end", from: this.address, to: s.from, sid: s.sid, reason: "no such session" }));
            }
            return;
          case "error":
            // An answer to a bind, a resumption or an sm-enable of this client.
            // A session limit is a wait error (RFC 6120 §7.6.2.1): the client may try again once one of its sessions ends.
            client?.bindFailed(s.sid, s.condition, s.condition === "resource-constraint" ? "wait" : undefined, s.reason);
            client?.sm.resumeFailed(s.sid, s.condition, s.h);
            if (client?.session?.sid === s.sid) client.sm.refusedBySm(s.condition);
            return;
          case "sm-enabled":
            client?.sm.enabledBySm(s);
            return;
          case "resumed":
            if (!client?.sm.resumedBySm(s)) {
              // The client left while it was resuming: the SM keeps the session for another try.
              this.outlet.send(sessionEnvelope({ type: "detach", from: this.address, to: s.from, sid: s.sid, reason: "left while resuming" }));
            }
            return;
          case "kick":
            client?.kick(s.condition, s.reason);
            return;
          default:
            throw new EnvelopeError(`session type '${s.type}' is not for c2s`);
        }
      }
      case "xdb":
        if (!this.onXdb?.(el)) this.log.debug({ id: el.attrs.id }, "xdb answer for no pending request");
        return;
      case "features":
        // The SMs' modules' stream features (docs/envelope.md, `<features/>`).
        if (el.attrs.type !== "result") throw new EnvelopeError("features: only answers come to a c2s");
        this.smStreamFeatures = el.getChildren().map((c) => c.toString()).join("");
        this.featuresKnown = true;
        this.onFeatures?.();
        return;
      case "admin":
        if (!this.onAdmin) throw new EnvelopeError("this c2s answers no operator queries");
        this.onAdmin(el);
        return;
      default:
        throw new EnvelopeError(`unknown envelope <${el.local}/>`);
    }
  }

  /** Storage answers, when storage goes through xdb. */
  onXdb: ((el: Element) => boolean) | undefined;

  /** The operator's queries (docs/envelope.md), answered by the process, which knows its ports. */
  onAdmin: ((el: Element) => void) | undefined;

  /**
   * The stream features the SMs' modules offer after authentication, as the
   * last answer to `requestStreamFeatures` gave them (empty until then).
   */
  smStreamFeatures = "";
  featuresKnown = false;
  /** Called when an answer to `requestStreamFeatures` came. */
  onFeatures: (() => void) | undefined;
  private featuresAsked = 0;

  /** Asks an SM of our domain which stream features its modules offer (each SM of a farm loads the same). */
  requestStreamFeatures(): void {
    this.outlet.send(`<features xmlns='${ENVELOPE_NS}' type='get' id='f${++this.featuresAsked}' from='${this.address}' to='${this.domain}'/>`);
  }

  /** The router could not deliver a stanza of a session (no SM serves the domain): tell the client. */
  private bouncedRoute(el: Element): void {
    // Answered, if by the router: nothing to resend.
    this.confirmed.settleBounce(el.attrs.seq);
    const sid = el.attrs.sid;
    const client = sid === undefined ? undefined : this.sessions.get(sid);
    const stanza = el.getChildren().find((c) => c.local !== "error");
    const { condition } = readError(el.getChild("error"));
    this.log.info({ sid, condition }, "a session's stanza was bounced by the router");
    if (client && stanza) client.undeliverable(stanza, stanzaCondition(condition));
  }

  /** Nothing but envelopes is addressed to c2s. */
  private handleStanza(el: Element): void {
    if ((el.local === "iq" || el.local === "message") && canBounce(el) && el.attrs.from) {
      this.outlet.send(stanzaErrorReply(el, "service-unavailable", { includePayload: false }).toString());
    }
  }

  // ---- stopping -----------------------------------------------------------------

  /**
   * Stops accepting, ends every client stream with system-shutdown (each
   * bound session's SM hears `end`), and resolves once the clients are gone
   * or the grace period is over.
   */
  async stop(): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    this.admission.stop();
    const listenersClosed = this.listeners.close();
    const n = this.clients.size;
    // Drain: with other c2s known, each client is told where to reconnect
    // (RFC 6120 §4.9.3.19), spread over them; otherwise system-shutdown.
    const others = this.loadBoard?.peers ?? [];
    let k = 0;
    for (const c of [...this.clients]) {
      // Each transport names a peer its own way (host:port, or a WebSocket URL).
      const targets = others.map((p) => c.conn.redirectAddress(p)).filter((t) => t !== undefined);
      if (targets.length > 0) {
        this.metrics?.redirects.inc();
        c.fail(new StreamError("see-other-host", "this server is stopping", targets[k++ % targets.length]));
      } else {
        c.fail(new StreamError("system-shutdown", "the server is stopping"));
      }
    }
    if (n > 0) this.log.info({ clients: n, redirectedTo: others.length > 0 ? others.map((p) => p.address) : undefined }, "closed every client stream");
    await Promise.race([listenersClosed, new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
  }

  /** Waits (at most `ms`) until the SMs confirmed what we routed, and sends our last acknowledgements. */
  async settle(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.confirmed.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.receiver.stop();
    this.confirmed.stop();
  }
}
