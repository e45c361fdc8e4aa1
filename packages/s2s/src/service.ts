/**
 * The s2s service (docs/s2s.md): between the farm's routers and other
 * servers. From the routers come stanzas for remote domains, mostly in
 * confirmed relay routes from the SMs: each is acknowledged once written to
 * the remote server's socket, or once bounced, so that an s2s that dies
 * with it loses nothing (the SM sends it again to the s2s that takes the
 * domain over). From remote servers come checked stanzas, which go to the
 * SM of their recipient in confirmed relay routes too.
 */
import { createServer as createTcpServer, type AddressInfo, type Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { Logger } from "pino";
import type { Component } from "@jabberfarm/component";
import {
  ConfirmedReceiver, ConfirmedSender, ENVELOPE_NS, answerAdmin, processFacts, readAck, readRelay, relayEnvelope, type ProcessStatus, type Ticket,
} from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { Element, NS, StreamError, canBounce, stanzaErrorReply, type StanzaErrorCondition } from "@jabberfarm/xml";
import type { S2sTls } from "./certs.js";
import { domainIn, mayFederate, type S2sConfig } from "./config.js";
import { IncomingStream } from "./incoming.js";
import { NegotiationFailed, negotiate, type AuthMethod } from "./negotiate.js";
import { OutgoingStream, type FailCondition, type OutItem } from "./outgoing.js";
import { DomainResolver } from "./resolve.js";

const noop = (): void => {};

/** How often an item lost with a live stream is tried again on a new one before it bounces. */
const MAX_ATTEMPTS = 3;

export interface S2sCounters {
  /** Streams set up, by direction and method. */
  streams(direction: "in" | "out", auth: AuthMethod): void;
  /** Failures by condition (bounces and stream errors we sent). */
  failure(condition: string): void;
}

export class S2sService {
  readonly address: string;
  readonly confirmed: ConfirmedSender;
  readonly receiver: ConfirmedReceiver;
  readonly resolver: DomainResolver;
  private readonly outgoing = new Map<string, OutgoingStream>();
  readonly incoming = new Set<IncomingStream>();
  private readonly servers: Server[] = [];
  private stopping = false;
  private listening: { host: string; port: number } | undefined;
  /** Stanzas from remote servers read while no router link was up: passed on when one is. */
  private readonly waitingForRouter: Array<{ el: Element; handled: () => void }> = [];
  /** Routes into the farm whose acknowledgement a remote server waits for (XEP-0198), by number. */
  private readonly onSmAck = new Map<number, () => void>();
  counters: S2sCounters | undefined;

  constructor(
    readonly config: S2sConfig,
    private readonly tls: S2sTls,
    private readonly component: Component,
    private readonly log: Logger,
  ) {
    this.address = `${config.name}/${config.instance}`;
    const out = (text: string): boolean => component.send(text);
    this.confirmed = new ConfirmedSender(out, {
      onGiveUp: (text, sends) => log.warn({ sends, stanza: text.slice(0, 200) }, "gave up a stanza from a remote server: no SM confirmed it"),
      onSettled: (n) => {
        const handled = this.onSmAck.get(n);
        if (handled === undefined) return;
        this.onSmAck.delete(n);
        handled();
      },
    });
    this.receiver = new ConfirmedReceiver(this.address, out);
    this.resolver = new DomainResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeoutMs });
    // No router, nowhere to put what remote servers send: stop reading them until one is back.
    component.on("down", () => {
      if (!component.isUp) for (const s of this.incoming) s.conn.socket.pause();
    });
    component.on("up", () => {
      for (const w of this.waitingForRouter.splice(0)) this.intoFarm(w.el, true, w.handled);
      for (const s of this.incoming) s.conn.socket.resume();
    });
  }

  /** Listens for remote servers; resolves with the bound addresses (port 0 picks one). */
  async listen(): Promise<{ starttls: AddressInfo; directTls: AddressInfo | undefined }> {
    const accept = (directTls: boolean) => (socket: import("node:net").Socket): void => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      this.accept(socket, directTls);
    };
    const plain = createTcpServer(accept(false));
    const starttls = await listenOn(plain, this.config.listen.host, this.config.listen.port);
    this.listening = { host: starttls.address, port: starttls.port };
    this.servers.push(plain);
    let directTls: AddressInfo | undefined;
    if (this.config.directTls) {
      // The material itself, not `secureContext`: tls.Server builds its own context from these options.
      const tlsServer = createTlsServer({
        cert: this.tls.cert, key: this.tls.key, ...(this.tls.ca ? { ca: this.tls.ca } : {}),
        requestCert: true, rejectUnauthorized: false, ALPNProtocols: ["xmpp-server"],
      });
      tlsServer.on("secureConnection", accept(true));
      tlsServer.on("tlsClientError", (err) => this.log.debug({ err: err.message }, "direct TLS handshake failed"));
      directTls = await listenOn(tlsServer, this.config.directTls.host, this.config.directTls.port);
      this.servers.push(tlsServer);
    }
    return { starttls, directTls };
  }

  get queued(): number {
    let n = 0;
    for (const s of this.outgoing.values()) n += s.queued;
    return n;
  }

  /** This process for `jabberfarm status` (docs/envelope.md, operator queries). */
  status(): ProcessStatus {
    return {
      process: "s2s", address: this.address, instance: this.config.instance, ...processFacts(),
      listen: this.listening ?? { host: this.config.listen.host, port: this.config.listen.port },
      incoming: this.incoming.size, outgoing: this.outgoing.size, queued: this.queued,
    };
  }

  /** The outgoing streams now: remote domain, method, XEP-0198 on or not. */
  outgoingStreams(): Array<{ local: string; remote: string; auth: string | undefined; sm: boolean; directTls: boolean }> {
    return [...this.outgoing.values()].map((s) => ({ local: s.local, remote: s.remote, auth: s.auth, sm: s.sm, directTls: s.directTls }));
  }

  /** Streams now, by direction and method, for the metrics. */
  streamCounts(): Array<{ direction: "in" | "out"; auth: string; n: number }> {
    const counts = new Map<string, number>();
    const add = (k: string): void => void counts.set(k, (counts.get(k) ?? 0) + 1);
    for (const s of this.outgoing.values()) add(`out ${s.auth ?? "pending"}`);
    for (const s of this.incoming) {
      const method = s.authenticated.values().next().value;
      add(`in ${method ?? "pending"}`);
    }
    return [...counts].map(([k, n]) => {
      const [direction, auth] = k.split(" ") as ["in" | "out", string];
      return { direction, auth, n };
    });
  }

  // ---- from the routers ------------------------------------------------------------

  /** One element from a router link. */
  fromRouter(el: Element, raw: string): void {
    if (el.ns === ENVELOPE_NS) {
      if (el.local === "admin") void answerAdmin(el, this.address, { status: () => this.status() }, (t) => void this.component.send(t));
      else if (el.local === "ack") this.confirmed.acknowledge(readAck(el, this.confirmed.epoch));
      else if (el.local === "route" && el.attrs.type === "error") this.confirmed.settleBounce(el.attrs.seq);
      else if (el.local === "route") this.relayed(el, raw);
      else this.log.debug({ element: el.local }, "ignored an envelope element");
      return;
    }
    if (el.local !== "message" && el.local !== "presence" && el.local !== "iq") return;
    // A plain stanza: from a farm service or an external component; nothing to confirm.
    this.toRemote(el, undefined);
  }

  private relayed(el: Element, raw: string): void {
    let stanza: Element;
    try {
      stanza = readRelay(el, raw).stanza;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "unreadable route; dropped");
      return;
    }
    const c = this.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
    if (c?.receipt === "duplicate") return;
    this.toRemote(stanza, c?.ticket);
  }

  private settle(ticket: Ticket | undefined): void {
    if (ticket !== undefined) this.receiver.handled(ticket);
  }

  /** Sends a stanza to its remote domain, or bounces it; `ticket` is acknowledged either way once settled. */
  private toRemote(stanza: Element, ticket: Ticket | undefined): void {
    const from = stanza.attrs.from === undefined ? null : Jid.tryParse(stanza.attrs.from);
    const to = stanza.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
    if (from === null || to === null || !domainIn(from.domain, this.config.domains)) {
      this.log.warn({ from: stanza.attrs.from, to: stanza.attrs.to }, "a stanza for a remote server not from one of our domains; dropped");
      this.settle(ticket);
      return;
    }
    if (domainIn(to.domain, this.config.domains)) {
      this.bounce(stanza, "service-unavailable", "a local domain reached the s2s");
      this.settle(ticket);
      return;
    }
    if (!mayFederate(this.config, to.domain)) {
      this.bounce(stanza, "remote-server-not-found", `this server does not federate with '${to.domain}'`);
      this.settle(ticket);
      return;
    }
    // In the server stream's namespace: the stanza's default namespace goes, its children follow the stream's.
    const copy = new Element(stanza.name, { ...stanza.attrs }, stanza.children, undefined);
    delete copy.attrs.xmlns;
    const item: OutItem = { text: copy.toString(), stanza, attempts: 0, done: () => this.settle(ticket) };
    this.enqueue(from.domain, to.domain, item);
  }

  private enqueue(local: string, remote: string, item: OutItem): void {
    const key = `${local} ${remote}`;
    let stream = this.outgoing.get(key);
    if (stream === undefined || stream.state === "closed") {
      stream = new OutgoingStream(local, remote, {
        config: this.config, tls: this.tls, resolver: this.resolver, log: this.log,
        onReady: (s) => this.counters?.streams("out", s.auth!),
        onFailed: (s, items, condition, why) => this.streamFailed(s, items, condition, why),
        onClosed: (s, items) => this.streamClosed(s, items),
      });
      this.outgoing.set(key, stream);
      stream.start();
    }
    if (!stream.enqueue(item)) {
      this.bounce(item.stanza, "resource-constraint", `too many stanzas waiting for '${remote}'`);
      item.done();
    }
  }

  private streamFailed(s: OutgoingStream, items: OutItem[], condition: FailCondition, why: string): void {
    if (this.outgoing.get(s.key) === s) this.outgoing.delete(s.key);
    this.log.warn({ local: s.local, remote: s.remote, condition, why, bounced: items.length }, "no stream to the remote server");
    for (const item of items) {
      this.bounce(item.stanza, condition, why);
      item.done();
    }
  }

  /** A live stream closed with items not known to be written: they go again on a new stream, a few times. */
  private streamClosed(s: OutgoingStream, items: OutItem[]): void {
    if (this.outgoing.get(s.key) === s) this.outgoing.delete(s.key);
    this.log.info({ local: s.local, remote: s.remote, retried: items.length }, "outgoing stream closed");
    for (const item of items) {
      if (this.stopping) continue; // unacknowledged: the SM sends it to another s2s
      if (++item.attempts >= MAX_ATTEMPTS) {
        this.bounce(item.stanza, "remote-server-timeout", "the stream to the remote server kept failing");
        item.done();
      } else {
        this.enqueue(s.local, s.remote, item);
      }
    }
  }

  /** Answers an undeliverable stanza with an error from the remote address (never an error to an error). */
  private bounce(stanza: Element, condition: StanzaErrorCondition, text: string): void {
    this.counters?.failure(condition);
    if (!canBounce(stanza)) return;
    const reply = stanzaErrorReply(stanza, condition, { text });
    reply.attrs.xmlns = NS.CLIENT;
    this.intoFarm(reply, false);
  }

  // ---- from remote servers ------------------------------------------------------------

  private accept(socket: import("node:net").Socket, directTls: boolean): void {
    const stream = new IncomingStream(socket, directTls, {
      config: this.config, tls: this.tls, log: this.log,
      streamsFrom: (domain) => {
        let n = 0;
        for (const s of this.incoming) if (s.from === domain) n++;
        return n;
      },
      verifyDialback: (receiving, originating, id, key) => this.verifyDialback(receiving, originating, id, key),
      onStanza: (_s, el, _domain, handled) => {
        el.attrs.xmlns = NS.CLIENT;
        this.intoFarm(el, true, handled);
      },
      onAuthenticated: (s, domain, method) => {
        this.counters?.streams("in", method);
        this.log.info({ remote: domain, auth: method, local: s.to }, "incoming stream authenticated");
      },
      onClosed: (s) => this.incoming.delete(s),
      onError: (condition) => this.counters?.failure(condition),
    });
    this.incoming.add(stream);
    if (!this.component.isUp) socket.pause();
  }

  /**
   * A stanza for the farm (from a remote server, or one of our bounces): to
   * a user of one of our domains it travels confirmed to their SM; to a
   * service of ours (a subdomain) plainly.
   */
  private intoFarm(el: Element, fromRemote: boolean, handled: () => void = noop): void {
    const to = Jid.tryParse(el.attrs.to ?? "");
    if (to === null) {
      handled();
      return;
    }
    const text = el.toString();
    if (this.config.domains.includes(to.domain)) {
      const n = this.confirmed.send((c) => relayEnvelope(this.address, to.toString(), text, c));
      if (n !== 0) {
        if (handled !== noop) this.onSmAck.set(n, handled);
        return;
      }
    } else {
      delete el.attrs.xmlns;
      if (this.component.send(el.toString())) {
        handled();
        return;
      }
    }
    // No router now: held until one is back (reading has paused meanwhile), answered when too many wait.
    if (fromRemote && this.waitingForRouter.length < this.config.limits.maxQueued) {
      el.attrs.xmlns = NS.CLIENT;
      this.waitingForRouter.push({ el, handled });
      return;
    }
    this.log.warn({ to: el.attrs.to }, "no router link; a stanza for the farm could not be passed on");
    if (fromRemote) this.bounce(el, "service-unavailable", "the server is restarting");
    handled();
  }

  /** XEP-0220 §2.2: ask the authoritative server of `originating` (over a new connection) whether the key is right. */
  private async verifyDialback(receiving: string, originating: string, id: string, key: string): Promise<boolean | "error"> {
    const deadline = Date.now() + this.config.timeouts.setupMs;
    let endpoints;
    try {
      endpoints = await this.resolver.endpoints(originating);
    } catch {
      return "error";
    }
    for (const ep of endpoints) {
      try {
        return await negotiate(ep, {
          local: receiving, remote: originating, tls: this.tls, requireTls: this.config.tls.required,
          dialbackSecret: this.config.dialbackSecret, maxStanzaBytes: this.config.limits.maxStanzaBytes, deadline,
        }, { id, key });
      } catch (err) {
        this.log.info({ originating, endpoint: `${ep.host}:${ep.port}`, err: (err as Error).message }, "dialback verification attempt failed");
        if (err instanceof NegotiationFailed && err.condition === "policy-violation") return "error";
      }
    }
    return "error";
  }

  /** Stop taking streams, close the ones open (what was not written stays unacknowledged, for another s2s). */
  async stop(): Promise<void> {
    this.stopping = true;
    // A listener's close waits for its connections, so the streams are closed first.
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const s of this.outgoing.values()) s.close();
    for (const s of this.incoming) s.conn.close(new StreamError("system-shutdown", "this s2s is stopping"));
    await closed;
    this.receiver.stop();
    this.confirmed.stop();
  }
}

function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
