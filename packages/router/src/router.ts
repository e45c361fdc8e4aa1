/**
 * The router: accepts components (XEP-0114), keeps the table of who serves
 * which name, and forwards each stanza's received text to the connection
 * that serves its `to`. It never re-serialises a stanza it forwards; it
 * parses only the top-level element (shallowly) to read `to` and `from`.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import {
  AcceptedComponent, ENVELOPE_ROOM, FARM_LINK_MAX_BYTES, FARM_ROUTER_NS, LEAVING_NOTICE, membersElement, oversize, rawText, type CloseReason,
} from "@jabberfarm/component";
import { ENVELOPE_NS, ROUTER_ADDRESS, answerAdmin, processFacts, type ProcessStatus } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { OTHER, kindOf, linkCloseLabel, type Histogram, type KindCounter, type Metrics } from "@jabberfarm/metrics";
import {
  NS, StreamError, canBounce, parseTrusted, stanzaErrorReply,
  type Element, type StanzaErrorCondition,
} from "@jabberfarm/xml";
import { routerConfigSchema, type RouterConfig, type RouterConfigInput } from "./config.js";
import { Route, RoutingTable, type RoutingRule } from "./routing-table.js";

export interface RouterOptions {
  logger: Logger;
  /** Replace the routing rule per name; the default is rendezvous hashing on the bare `to`. */
  ruleFor?: (name: string) => RoutingRule;
  /** Count stanzas, time routing and expose the routing table's size there. */
  metrics?: Metrics;
}

const STANZA_NAMES: ReadonlySet<string> = new Set(["message", "presence", "iq"]);

// One stanza in this many has its routing time measured: a clock read per
// stanza would cost more than the routing it measures.
const ROUTING_SAMPLE_MASK = 63;

/** The router's hot-path metrics, resolved once. */
interface RouterStats {
  in: KindCounter;
  out: KindCounter;
  routing: Histogram;
  seq: number;
}

export class Router {
  readonly config: RouterConfig;
  readonly table: RoutingTable;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly pending = new Set<AcceptedComponent>();
  private readonly routes = new Map<AcceptedComponent, Route>();
  private readonly localDomains: Set<string>;
  private readonly stats: RouterStats | undefined;
  private readonly metrics: Metrics | undefined;
  private readonly maxInternalBytes: number;
  private stopping: Promise<void> | undefined;
  /** The drain is over and every stream is being closed: nobody is left to tell anything. */
  private closingAll = false;

  constructor(config: RouterConfigInput | RouterConfig, opts: RouterOptions) {
    this.config = routerConfigSchema.parse(config);
    this.log = opts.logger;
    this.table = new RoutingTable(opts.ruleFor);
    this.localDomains = new Set([...this.config.domains, ...Object.keys(this.config.components)].map((d) => d.toLowerCase()));
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (e) => this.log.error({ err: e }, "listener error"));
    this.maxInternalBytes = this.config.limits.maxInternalBytes ?? FARM_LINK_MAX_BYTES;
    const m = opts.metrics;
    this.metrics = m;
    if (m) {
      this.stats = { in: m.stanzasIn, out: m.stanzasOut, routing: m.routingSeconds, seq: 0 };
      m.connections("component", () => this.routes.size);
      m.connections("pending", () => this.pending.size);
      m.queueBytes(() => {
        let n = 0;
        for (const c of this.routes.keys()) n += c.conn.queuedBytes;
        for (const c of this.pending) n += c.conn.queuedBytes;
        return n;
      });
    }
  }

  /** Listening for components (readiness). */
  get listening(): boolean {
    return this.server.listening;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  start(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once("error", onError);
      this.server.listen({ host: this.config.host, port: this.config.port }, () => {
        this.server.off("error", onError);
        const addr = this.server.address() as AddressInfo;
        this.log.info({ host: addr.address, port: addr.port }, "router listening for components");
        resolve(addr);
      });
    });
  }

  get address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /** The configured instance id, else where it listens. */
  get instance(): string {
    const addr = this.address;
    return this.config.instance ?? `${addr?.address ?? this.config.host}:${addr?.port ?? this.config.port}`;
  }

  /** This router and its component connections, for `jabberfarm status` (docs/envelope.md, operator queries). */
  status(): ProcessStatus {
    const addr = this.address;
    return {
      process: "router", address: ROUTER_ADDRESS, instance: this.instance, ...processFacts(),
      listen: { host: addr?.address ?? this.config.host, port: addr?.port ?? this.config.port },
      domains: this.config.domains,
      connections: [...this.routes.values()].map((r) => {
        const { remoteAddress, remotePort } = r.component.conn.socket;
        return { name: r.name, instance: r.rendezvousId, remote: `${remoteAddress ?? "?"}:${remotePort ?? "?"}`, since: r.since.toISOString(), trusted: r.trusted };
      }),
      pending: this.pending.size,
    };
  }

  /**
   * Stop accepting; tell the farm's processes the router is leaving and keep
   * routing for `drainMs` while they move their traffic to the other routers;
   * then close every stream with system-shutdown. Resolves once the last
   * connection is gone. Calling it again returns the same promise.
   */
  stop(): Promise<void> {
    this.stopping ??= this.drainAndClose();
    return this.stopping;
  }

  private async drainAndClose(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // One still in its handshake would only arrive to be told to leave.
    for (const c of this.pending) c.close(new StreamError("system-shutdown", "router stopping"));
    const trusted = [...this.routes.values()].filter((r) => r.trusted);
    const { drainMs } = this.config;
    if (drainMs > 0 && trusted.length > 0) {
      this.log.info({ drainMs, components: trusted.length }, "router draining");
      for (const r of trusted) this.sendNotice(r, LEAVING_NOTICE);
      await new Promise((resolve) => setTimeout(resolve, drainMs));
    }
    this.closingAll = true;
    for (const c of [...this.pending, ...this.routes.keys()]) c.close(new StreamError("system-shutdown", "router stopping"));
    await closed;
    this.log.info("router stopped");
  }

  private accept(socket: Socket): void {
    const { limits } = this.config;
    const stats = this.stats;
    const component: AcceptedComponent = new AcceptedComponent(socket, {
      secretFor: (name) => this.config.components[name]?.secret,
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      maxStanzaBytes: limits.maxStanzaBytes,
      maxDepth: limits.maxDepth,
      maxAttributes: limits.maxAttributes,
      maxHeaderBytes: limits.maxHeaderBytes,
      highWaterMark: limits.highWaterMark,
      // An external component's stanzas are parsed whole into canonical
      // elements and forwarded re-serialised (docs/security.md): the farm's
      // processes then read exactly what this parser read.
      shallow: false,
      canonical: true,
      // Farm processes are trusted to send well-formed XML (they parsed it at
      // the edge or built it); their streams skip the full parse.
      splitterFor: (name) => this.config.components[name]?.trusted === true,
      maxTrustedStanzaBytes: this.maxInternalBytes,
    }, {
      onAuthenticated: (c) => this.onAuthenticated(c),
      onStanza: stats === undefined
        ? (c, el, raw) => void this.onStanza(c, el, raw)
        : (c, el, raw) => this.onStanzaCounted(stats, c, el, raw),
      onClose: (c, reason) => this.onClose(c, reason),
      onRejected: (c, err) => this.log.warn({
        conn: c.id, component: c.name || undefined, remote: socket.remoteAddress, condition: err.condition, reason: err.text,
      }, "component rejected"),
    });
    this.pending.add(component);
  }

  private onAuthenticated(c: AcceptedComponent): void {
    this.pending.delete(c);
    const route = new Route(c, this.config.components[c.name]?.trusted ?? false);
    this.routes.set(c, route);
    this.table.add(route);
    this.log.info({ conn: c.id, component: c.name, instance: c.instance }, "component connected");
    this.announceMembers(c.name);
    // A newcomer learns the others' lists now, not at their next change.
    if (route.trusted) {
      for (const name of this.table.names()) if (name !== c.name) this.sendNotice(route, this.membersNotice(name));
    }
  }

  /**
   * Tell every trusted connection which instances serve `name` now, an empty
   * list once nobody does (docs/router.md, membership notices).
   */
  private announceMembers(name: string): void {
    if (this.closingAll) return;
    const notice = this.membersNotice(name);
    // Only farm processes know the notice; an external component would not.
    for (const r of this.routes.values()) if (r.trusted) this.sendNotice(r, notice);
  }

  private membersNotice(name: string): string {
    return membersElement(name, [...new Set(this.table.candidates(name).map((r) => r.rendezvousId))].sort());
  }

  private sendNotice(route: Route, notice: string): void {
    route.component.send(notice);
    this.stats?.out.add(OTHER);
  }

  private onClose(c: AcceptedComponent, reason: CloseReason): void {
    this.pending.delete(c);
    const route = this.routes.get(c);
    if (!route) return;
    this.routes.delete(c);
    this.table.remove(route);
    this.announceMembers(route.name);
    if (route.trusted && this.stopping === undefined) this.metrics?.linkClosed.inc({ reason: linkCloseLabel(reason) });
    this.log.info({
      conn: c.id, component: c.name, instance: c.instance,
      condition: reason.error?.condition, by: reason.error ? (reason.remote ? "component" : "router") : undefined,
      socketError: reason.socketError,
    }, "component disconnected");
  }

  /**
   * onStanza with metrics, kept apart so that a router without them runs the
   * routing code as it was. A stanza forwarded or answered counts out as the
   * kind it came in as.
   */
  private onStanzaCounted(stats: RouterStats, src: AcceptedComponent, el: Element, raw: string | Buffer): void {
    const kind = kindOf(el.name, raw);
    stats.in.add(kind);
    if (!this.onStanza(src, el, raw)) return;
    stats.out.add(kind);
    if ((++stats.seq & ROUTING_SAMPLE_MASK) === 0) stats.routing.observe((performance.now() - src.conn.readAt) / 1000);
  }

  /** Routes one stanza; true when it was forwarded or answered with an error. */
  private onStanza(src: AcceptedComponent, el: Element, raw: string | Buffer): boolean {
    const route = this.routes.get(src);
    if (!route) return false;
    if (el.uri === NS.STREAMS || el.name === "handshake") {
      src.close(new StreamError("unsupported-stanza-type", `<${el.name}/> is not routable`));
      return false;
    }
    if (!route.trusted && el.ns === ENVELOPE_NS) {
      // The envelope is the farm's own protocol: from an external component, a
      // <session type='kick'/> or an <admin op='kick'/> would end users' sessions.
      return this.bounce(src, el, raw, "forbidden", "the envelope is for the farm's own processes");
    }
    if (!route.trusted) {
      // An external component sends stanzas, nothing else: no envelope, no
      // notice, in its stream's namespace (checked on the canonical element,
      // which is what goes on: see accept() and docs/security.md).
      if (el.ns !== NS.COMPONENT || !STANZA_NAMES.has(el.local)) {
        this.log.warn({ conn: src.id, component: src.name, element: el.local, ns: el.ns }, "an external component sent something that is not a stanza; closing it");
        src.close(new StreamError("unsupported-stanza-type", "only message, presence and iq in jabber:component:accept may be sent"));
        return false;
      }
      // Its namespace is the links' default, as an external component's stanzas always were.
      delete el.attrs.xmlns;
      raw = el.toString();
    }
    if (el.ns === FARM_ROUTER_NS) {
      // Membership and leaving notices come from routers only; one from a
      // component would make the farm's processes misjudge who is alive.
      this.log.warn({ conn: src.id, component: src.name, element: el.local }, "a farm process sent a router notice; dropped");
      return false;
    }
    const from = el.attrs.from;
    if (from === undefined) {
      src.close(new StreamError("improper-addressing", "every stanza needs a 'from'"));
      return false;
    }
    if (!route.trusted && !this.mayUseFrom(route.name, from)) {
      this.log.warn({ conn: src.id, component: src.name, from }, "spoofed from; closing the component");
      src.close(new StreamError("invalid-from", `'${from}' is not within '${route.name}'`));
      return false;
    }
    // Re-serialised, a stanza can outgrow what the farm's links take (CDATA
    // becomes escaped text): it fails alone instead of closing a link.
    if (!route.trusted && oversize(raw, this.maxInternalBytes - ENVELOPE_ROOM) > 0) {
      return this.bounce(src, el, raw, "policy-violation", "the stanza is too large");
    }
    const to = el.attrs.to;
    if (to === undefined) return this.bounce(src, el, raw, "service-unavailable", "the router itself offers no service");
    if (to === ROUTER_ADDRESS && el.local === "admin" && el.ns === ENVELOPE_NS) {
      // Answered on the asker's own connection: the question is about this router.
      void answerAdmin(el, ROUTER_ADDRESS, { status: () => this.status() }, (text) => src.send(text));
      return true;
    }
    const toJid = Jid.tryParse(to);
    if (toJid === null) return this.bounce(src, el, raw, "jid-malformed", `'${to}' is not a valid JID`);
    // `name/instance` addresses one process among those serving a name (a
    // reply to the SM that asked, a stanza for the c2s holding a session).
    // When no live process has that instance id, the name's rule decides.
    const dst = (toJid.local === "" && toJid.resource !== "" ? this.table.byInstance(toJid.domain, toJid.resource) : undefined) ??
      this.table.select(toJid.domain, toJid.bareString());
    if (dst === undefined) {
      if (this.isLocal(toJid.domain)) return this.bounce(src, el, raw, "service-unavailable", `nothing serves '${toJid.domain}' right now`);
      // Every other domain is remote: the default route (the s2s processes), one of them per remote domain.
      const remote = this.config.remoteRoute === undefined ? undefined : this.table.select(this.config.remoteRoute, toJid.domain);
      if (remote === undefined) return this.bounce(src, el, raw, "remote-server-not-found", `'${toJid.domain}' is not served by this farm`);
      return this.forward(src, remote, raw);
    }
    return this.forward(src, dst, raw);
  }

  /** Writes a stanza's text to the connection that serves it, pausing the sender when that one reads slowly. */
  private forward(src: AcceptedComponent, dst: Route, raw: string | Buffer): boolean {
    const out = dst.component;
    out.send(raw);
    if (!out.conn.congested) return true;
    if (!dst.trusted) {
      // An external component that stops reading is cut off: pausing its
      // senders would freeze every farm process that talks to it.
      this.log.warn({ conn: out.id, component: out.name, queued: out.conn.queuedBytes }, "an external component reads too slowly; closing it");
      out.close(new StreamError("resource-constraint", "too much data waiting for you to read it"));
    } else if (!src.conn.socket.isPaused()) {
      // Backpressure: stop reading from the sender until the slow receiver catches up,
      // rather than queueing without bound in the router.
      src.conn.socket.pause();
      out.conn.onceDrained(() => src.conn.socket.resume());
    }
    return true;
  }

  private mayUseFrom(name: string, from: string): boolean {
    const jid = Jid.tryParse(from);
    if (jid === null) return false;
    return jid.domain === name || jid.domain.endsWith("." + name);
  }

  private isLocal(domain: string): boolean {
    if (this.localDomains.has(domain)) return true;
    for (const d of this.localDomains) if (domain.endsWith("." + d)) return true;
    return false;
  }

  /** Answers an undeliverable stanza with a stanza error; false when it is an error itself and is dropped. */
  private bounce(src: AcceptedComponent, el: Element, raw: string | Buffer, condition: StanzaErrorCondition, text: string): boolean {
    if (!canBounce(el)) {
      this.log.debug({ conn: src.id, condition }, "dropped an undeliverable error stanza");
      return false;
    }
    let full = el;
    if (typeof raw !== "string") {
      // A farm process's stanza was read by the splitter: the reply carries the original payload (when small).
      try {
        full = parseTrusted(rawText(raw), NS.COMPONENT);
      } catch {
        full = el;
      }
    }
    src.send(stanzaErrorReply(full, condition, { text }).toString());
    return true;
  }
}
