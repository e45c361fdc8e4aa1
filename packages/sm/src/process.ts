/**
 * The sm process: a SessionManager linked to every router, with storage
 * through xdb (or a Storage handed in, for tests and embedded use).
 */
import type { Logger } from "pino";
import { Component, logLinkEvents, rawText, resendWhenOneLeaves } from "@jabberfarm/component";
import { countedSend, kindOf, watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { XdbClient, resendReadsWhenAnXdbLeaves, type Storage } from "@jabberfarm/xdb";
import { NS, parseTrusted } from "@jabberfarm/xml";
import { smConfigSchema, type SmConfig, type SmConfigInput } from "./config.js";
import { BUILTIN_MODULES, loadModules } from "./modules/index.js";
import { SessionManager } from "./session-manager.js";
import { S2S_COMPONENT } from "./remote-domains.js";
import type { SmModule } from "./module-api.js";
import { SessionStore } from "./session-store.js";

export interface SmProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router. */
  storage?: Storage;
  /** Modules to load instead of `config.modules` / every built-in one. */
  modules?: SmModule[];
  /** Count stanzas and sessions, and time storage round trips there. */
  metrics?: Metrics;
}

export interface SmProcess {
  sm: SessionManager;
  component: Component;
  /** Serving: linked to at least one router, and not stopping. */
  ready(): boolean;
  stop(): Promise<void>;
}

/** How long a c2s must be missing from every router's list before its sessions end. */
const C2S_GONE_AFTER_MS = 1500;
/** How long after one of our router links came up before its lists are believed. */
const C2S_SETTLE_MS = 3000;

export async function startSm(input: SmConfigInput | SmConfig, opts: SmProcessOptions): Promise<SmProcess> {
  const config = smConfigSchema.parse(input);
  const log = opts.logger;
  const component = new Component({
    // Farm processes write well-formed XML (clients' is re-serialised at the
    // edge): read it with the splitter and the trusted reader, not saxes.
    splitter: true,
    name: config.domain, secret: config.secret, instance: config.instance, routers: config.routers,
  });
  const address = `${config.domain}/${config.instance}`;
  const m = opts.metrics;
  const stanzasIn = m?.stanzasIn;
  const send = countedSend(component, m);
  const xdb = opts.storage ? undefined : new XdbClient(send, address, { timeoutMs: config.xdb.timeoutMs, metrics: m });
  const storage = opts.storage ?? xdb!;
  const modules = opts.modules ?? loadModules(config.modules ?? Object.keys(BUILTIN_MODULES));
  const sm = new SessionManager(config, storage, { send }, log, modules);
  if (xdb) sm.onXdb = (el) => void xdb.handleResponse(el);
  component.on("stanza", (shallow, raw) => {
    const text = rawText(raw);
    let el = shallow;
    if (typeof raw !== "string") {
      try {
        el = parseTrusted(text, NS.COMPONENT);
      } catch (err) {
        // Not what a farm process writes: drop this element, keep the link.
        log.error({ err: (err as Error).message, element: shallow.name, from: shallow.attrs.from }, "unreadable element from the router; dropped");
        return;
      }
    }
    stanzasIn?.add(kindOf(el.name, text));
    sm.handle(el, text);
  });
  if (m) {
    watchRouterLinks(m, component);
    m.sessions(() => sm.sessions.size);
    m.confirmation(() => ({ unconfirmed: sm.confirmed.size, resent: sm.confirmed.resent, duplicates: sm.receiver.duplicates }));
  }
  const store = config.redisUrl === undefined ? undefined : new SessionStore({
    redisUrl: config.redisUrl, instance: config.instance, log, ttlSeconds: config.sessionTtlSeconds,
    users: () => sm.sessions.users(), sessions: () => sm.sessions.all(),
  });
  sm.store = store;
  // The SMs of our domain (who owns which user) and the c2s instances (whose
  // sessions are still held), as every router we are linked to sees them.
  let c2sKnown: ReadonlySet<string> | undefined;
  let c2sCheck: NodeJS.Timeout | undefined;
  const c2sAlive = (address: string): boolean =>
    c2sKnown === undefined || !address.startsWith("c2s/") || c2sKnown.has(address.slice(4));
  sm.c2sAlive = c2sAlive;
  // A router that just came (back) up does not know the c2s that have not
  // relinked yet: its lists are believed only once our links are settled.
  let lastLinkUp = 0;
  component.on("up", () => (lastLinkUp = Date.now()));
  const checkC2s = (delayMs: number): void => {
    clearTimeout(c2sCheck);
    c2sCheck = setTimeout(() => {
      const unsettled = C2S_SETTLE_MS - (Date.now() - lastLinkUp);
      if (!component.isUp) checkC2s(1000);
      else if (unsettled > 0) checkC2s(unsettled);
      else sm.c2sGone(c2sAlive);
    }, delayMs);
    c2sCheck.unref();
  };
  component.on("membership", (name, instances) => {
    sm.services.update(name, instances);
    sm.remoteDomains.update(name, instances);
    if (name === config.domain) sm.setMembers([...instances].sort());
    if (name === "c2s") {
      c2sKnown = new Set(instances);
      // A c2s may be only between two routers' notices: look again a moment later.
      checkC2s(C2S_GONE_AFTER_MS);
    }
  });
  logLinkEvents(component, log);
  // What that link carried may be lost with it: send what is unconfirmed again.
  component.on("down", () => sm.confirmed.linkLost());
  // Another SM (relays) or a c2s (routes to its sessions) left: resend what it had not handled.
  resendWhenOneLeaves(component, config.domain, () => sm.confirmed.linkLost());
  resendWhenOneLeaves(component, "c2s", () => sm.confirmed.linkLost());
  // An s2s (stanzas to other servers) left: the others take its remote domains over.
  resendWhenOneLeaves(component, S2S_COMPONENT, () => sm.confirmed.linkLost());
  resendReadsWhenAnXdbLeaves(component, xdb);
  // Join the routers once the sessions of users moving here can be read: a
  // stanza for one of them would otherwise find no session and be stored
  // offline although its recipient is online. Redis being away delays the
  // start a little, never prevents it (it costs takeover only).
  if (store && !(await store.whenReady(5000))) log.warn("Redis not reachable yet: joining the routers without the session registry");
  await component.start();
  log.info({ domain: config.domain, instance: config.instance, modules: modules.length, redis: store !== undefined }, "sm serving");
  let stopping: Promise<void> | undefined;
  return {
    sm,
    component,
    // With Redis configured, an SM that cannot write its sessions there could not hand them over.
    ready: () => stopping === undefined && component.isUp && (store?.ready ?? true),
    stop() {
      stopping ??= (async () => {
        // Hand-over: what we sent must be confirmed and what we were sent
        // acknowledged before we leave the routers; then the other SMs take
        // our users over from Redis, and senders resend anything unconfirmed.
        clearTimeout(c2sCheck);
        await sm.settle(2000);
        await component.stop();
        xdb?.abortAll("sm stopping");
        await store?.close();
        log.info("sm stopped");
      })();
      return stopping;
    },
  };
}
