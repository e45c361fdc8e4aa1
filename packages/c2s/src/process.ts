/**
 * The c2s process: client listeners, linked to every router as the
 * component `c2s` with its instance id, with credentials and registrations
 * going to xdb (or to a Storage handed in, for tests and embedded use).
 */
import type { Logger } from "pino";
import { Component, logLinkEvents, resendWhenOneLeaves } from "@jabberfarm/component";
import { answerAdmin, processFacts, type ProcessStatus } from "@jabberfarm/envelope";
import { kindOf, kindOfText, watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { XdbClient, resendReadsWhenAnXdbLeaves, type Storage } from "@jabberfarm/xdb";
import { sessionEnvelope } from "@jabberfarm/envelope";
import { c2sConfigSchema, type C2sConfig, type C2sConfigInput } from "./config.js";
import type { Outlet } from "./client-context.js";
import { C2sServer, type C2sPorts } from "./server.js";
import { LoadBoard } from "./load-board.js";
import { loadTlsMaterial, type TlsMaterial } from "./tls.js";

export interface C2sProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router. */
  storage?: Pick<Storage, "getCredentials" | "createAccount">;
  /** How long to wait for the first router link (default 10 s). */
  routerTimeoutMs?: number;
  /** Count stanzas, sessions, connections and authentication failures there. */
  metrics?: Metrics;
  /**
   * Listen only once the routers list an SM for the domain (and an xdb, when
   * storage goes through xdb), and hold new clients while they are gone
   * (default). False: serve without them (tests of what a client sees then).
   */
  awaitServices?: boolean;
  /** Gives up (rejects) a start still waiting for the routers or the farm, e.g. on SIGTERM. */
  signal?: AbortSignal;
}

export interface C2sProcess {
  /** The bound ports of the listeners that are on (port 0 in the config picks one). */
  ports: C2sPorts;
  config: C2sConfig;
  server: C2sServer;
  component: Component;
  tls: TlsMaterial;
  /** Serving: linked to a router that lists an SM for the domain and an xdb (see awaitServices), and not stopping. */
  ready(): boolean;
  /** Stop accepting, end every client stream with system-shutdown (sessions end at their SM), then leave the routers. */
  stop(): Promise<void>;
}

export async function startC2s(input: C2sConfigInput | C2sConfig, opts: C2sProcessOptions): Promise<C2sProcess> {
  const config = c2sConfigSchema.parse(input);
  const log = opts.logger;
  const tls = await loadTlsMaterial(config.tls, config.domain, log);
  if (tls.source !== "generated") log.info({ certPath: tls.certPath, source: tls.source, fingerprint256: tls.fingerprint256 }, "TLS certificate loaded");

  const component = new Component({
    name: "c2s", secret: config.secret, instance: config.instance, routers: config.routers,
    // What the routers accept, they may send us.
    maxStanzaBytes: config.limits.maxRoutedBytes,
    // The router is trusted to send well-formed XML: read it with the splitter
    // and pass stanzas to clients as bytes (docs/performance.md).
    splitter: true,
  });
  const address = `c2s/${config.instance}`;
  const m = opts.metrics;
  const stanzasOut = m?.stanzasOut;
  const outlet: Outlet = stanzasOut === undefined ? component : {
    send(text) {
      stanzasOut.add(kindOfText(text));
      return component.send(text);
    },
    get congested() {
      return component.congested;
    },
    get maxElementBytes() {
      return component.maxElementBytes;
    },
    onceDrained: (fn) => component.onceDrained(fn),
  };
  const xdb = opts.storage ? undefined : new XdbClient((t) => outlet.send(t), address, { timeoutMs: config.xdb.timeoutMs, metrics: m });
  const storage = opts.storage ?? xdb!;
  const server = new C2sServer(config, { log, outlet, storage, tls, metrics: m });
  if (xdb) server.onXdb = (el) => xdb.handleResponse(el);
  if (m) {
    const stanzasIn = m.stanzasIn;
    component.on("stanza", (el, raw) => {
      stanzasIn.add(kindOf(el.name, raw));
      server.handleRouterStanza(el, raw);
    });
    watchRouterLinks(m, component);
    m.connections("client", () => server.connectionCount);
    m.sessions(() => server.sessionCount);
    m.queueBytes(() => server.queuedBytes);
    m.confirmation(() => ({ unconfirmed: server.confirmed.size, resent: server.confirmed.resent, duplicates: server.receiver.duplicates }));
    // At zero from the start, so rate() and alerts work before the first failure.
    m.authFailures.inc({ reason: "not-authorized" }, 0);
    // At zero from the start too, before the first redirect.
    m.redirects.inc(0);
  } else {
    component.on("stanza", (el, raw) => server.handleRouterStanza(el, raw));
  }
  logLinkEvents(component, log);
  // A c2s that restarted under the same instance id is back in the routers'
  // lists before any SM notices it was gone: tell every SM which sessions are
  // ours now, so that those of our previous run end (docs/envelope.md, reset).
  const toldSms = new Set<string>();
  component.on("membership", (name, instances) => {
    if (name !== config.domain) return;
    // The SMs' modules decide the stream features after authentication; ask
    // whenever the SMs change (an upgrade may have changed their modules).
    if (instances.size > 0) server.requestStreamFeatures();
    for (const id of toldSms) if (!instances.has(id)) toldSms.delete(id);
    for (const id of instances) {
      if (toldSms.has(id)) continue;
      toldSms.add(id);
      outlet.send(sessionEnvelope({ type: "reset", from: address, to: `${config.domain}/${id}`, sid: server.sidPrefix }));
    }
  });
  // What that link carried may be lost with it: send what is unconfirmed again.
  component.on("down", () => server.confirmed.linkLost());
  // An SM that left (died or stopped) took what it had not handled: resend, the new owner gets it.
  resendWhenOneLeaves(component, config.domain, () => server.confirmed.linkLost());
  resendReadsWhenAnXdbLeaves(component, xdb);
  // A client is only worth accepting once it can log in and bind: the
  // c2s needs a router, an SM for its domain and (for credentials) an xdb.
  const needs = opts.awaitServices === false ? [] : [config.domain, ...(opts.storage ? [] : ["xdb"])];
  const missing = (): string[] => {
    if (!component.isUp) return ["a router"];
    const absent = needs.filter((n) => component.instancesOf(n).size === 0);
    // Without them clients would be offered too few features after authentication.
    if (absent.length === 0 && needs.length > 0 && !server.featuresKnown) absent.push("the SMs' stream features");
    return absent;
  };
  // An SM that does not answer (an older one) must not keep us waiting for ever.
  const featuresTimer = setInterval(() => {
    if (server.featuresKnown || component.instancesOf(config.domain).size === 0) return;
    if (++featureAsks > 5) {
      log.warn("no SM answered which stream features it offers; offering binding alone");
      server.featuresKnown = true;
      server.onFeatures?.();
      return;
    }
    server.requestStreamFeatures();
  }, 2000);
  featuresTimer.unref();
  let featureAsks = 0;
  const canServe = (): boolean => missing().length === 0;
  try {
    await component.start(opts.routerTimeoutMs);
    await servicesServed(component, missing, log, opts.signal);
  } catch (err) {
    // Its links would keep retrying and hold the process open.
    await component.stop();
    throw err;
  }
  // Losing them later holds new clients until they are back (admission.ts).
  const watch = (): void => {
    const before = server.admission.isServing;
    server.admission.setServing(canServe());
    if (before !== server.admission.isServing) {
      if (before) log.warn({ missing: missing() }, "cannot serve new clients; holding them until it can");
      else log.info("serving new clients again");
    }
  };
  component.on("membership", watch);
  server.onFeatures = watch;
  component.on("up", watch);
  component.on("down", watch);

  let ports: C2sPorts;
  let board: LoadBoard | undefined;
  try {
    ports = await server.listen();
    const { redirect } = config;
    if (redirect.redisUrl) {
      const starttls = config.listeners.starttls;
      const address = redirect.advertise ?? (starttls ? `${starttls.host}:${ports.starttls ?? starttls.port}` : undefined);
      if (address === undefined) throw new Error("c2s.redirect needs 'advertise' when the STARTTLS listener is off");
      board = new LoadBoard({ redisUrl: redirect.redisUrl, instance: config.instance, address, websocket: server.websocketUrl(redirect.advertise, ports.websocket), margin: redirect.margin, minConnections: redirect.minConnections, connections: () => server.connectionCount });
      server.loadBoard = board;
    }
  } catch (err) {
    await server.stop();
    await component.stop();
    throw err;
  }
  const listeners = (["starttls", "directTls", "websocket"] as const).flatMap((kind) => {
    const l = config.listeners[kind];
    const port = ports[kind];
    return l && port !== undefined ? [{ kind, host: l.host, port }] : [];
  });
  const status = (): ProcessStatus => ({
    process: "c2s", address, instance: config.instance, ...processFacts(),
    listeners, clients: server.connectionCount, sessions: server.sessionCount,
  });
  server.onAdmin = (el) => void answerAdmin(el, address, { status }, (t) => outlet.send(t));
  log.info({ domain: config.domain, instance: config.instance, ...ports }, "c2s serving");
  let stopping: Promise<void> | undefined;
  return {
    ports,
    config,
    server,
    component,
    tls,
    ready: () => stopping === undefined && canServe(),
    stop() {
      stopping ??= (async () => {
        clearInterval(featuresTimer);
        await board?.close();
        await server.stop();
        // What clients sent before the end must reach their SMs first.
        await server.settle(2000);
        await component.stop();
        xdb?.abortAll("c2s stopping");
        log.info("c2s stopped");
      })();
      return stopping;
    },
  };
}

/** Resolves once nothing is `missing` (the routers' membership lists show it), saying what it waits for meanwhile. */
async function servicesServed(component: Component, missing: () => string[], log: Logger, signal: AbortSignal | undefined): Promise<void> {
  if (missing().length === 0) return;
  signal?.throwIfAborted();
  log.info({ missing: missing() }, "waiting for the farm before accepting clients");
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      component.off("membership", check);
      component.off("up", check);
      signal?.removeEventListener("abort", aborted);
      clearInterval(reminder);
      clearInterval(poll);
    };
    const check = (): void => {
      if (missing().length > 0) return;
      done();
      resolve();
    };
    const aborted = (): void => {
      done();
      reject(new Error("stopped while waiting for the farm"));
    };
    const reminder = setInterval(() => log.info({ missing: missing() }, "still waiting for the farm before accepting clients"), 10_000);
    // What is missing may also come without an event of the component (the SMs' features given up on).
    const poll = setInterval(check, 250);
    component.on("membership", check);
    component.on("up", check);
    signal?.addEventListener("abort", aborted);
  });
}
