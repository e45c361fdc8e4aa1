/**
 * The xdb process: the farm's only database connection, serving `<xdb/>`
 * requests from every router it is linked to.
 */
import type { Logger } from "pino";
import { Component, logLinkEvents } from "@jabberfarm/component";
import { ENVELOPE_NS, answerAdmin, processFacts } from "@jabberfarm/envelope";
import { ENVELOPE, cachedProbe, countedSend, kindOfName, watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { xdbConfigSchema, type XdbConfig, type XdbConfigInput } from "./config.js";
import { openStorage } from "./open.js";
import { XdbService } from "./service.js";
import type { Storage } from "./storage.js";

export interface XdbProcess {
  storage: Storage;
  component: Component;
  /** Serving: linked to a router, its storage answering, and not stopping. */
  ready(): Promise<boolean>;
  stop(): Promise<void>;
}

export interface XdbProcessOptions {
  logger: Logger;
  /** Count requests and answers, and time every storage operation there. */
  metrics?: Metrics;
}

// Valid for every backend, and never an account: accounts are bare JIDs.
const PROBE_USER = "readiness-probe@.invalid/";

export async function startXdb(input: XdbConfigInput | XdbConfig, opts: XdbProcessOptions): Promise<XdbProcess> {
  const config = xdbConfigSchema.parse(input);
  const log = opts.logger;
  const storage = await openStorage({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.poolSize });
  log.info({ backend: config.databaseUrl ? "postgres" : "pglite", dataDir: config.databaseUrl ? undefined : config.dataDir }, "storage open");
  // Requests are text-only elements (JSON): the splitter reads them whole
  // without a full XML parse (docs/performance.md).
  const component = new Component({ name: "xdb", secret: config.secret, instance: config.instance, routers: config.routers, splitter: true });
  const m = opts.metrics;
  const stanzasIn = m?.stanzasIn;
  const send = countedSend(component, m);
  const address = `xdb/${config.instance}`;
  const service = new XdbService(storage, send, address, log, m);
  if (m) watchRouterLinks(m, component);
  const admin = {
    status: () => ({
      process: "xdb" as const, address, instance: config.instance, ...processFacts(),
      backend: config.databaseUrl ? "postgres" as const : "pglite" as const,
    }),
  };
  component.on("stanza", (el) => {
    stanzasIn?.add(el.ns === ENVELOPE_NS ? ENVELOPE : kindOfName(el.name));
    if (el.ns === ENVELOPE_NS && el.local === "xdb") service.handle(el);
    else if (el.ns === ENVELOPE_NS && el.local === "admin") void answerAdmin(el, address, admin, (t) => void send(t));
    else log.debug({ element: el.name, from: el.attrs.from }, "ignored a stanza that is not a storage request");
  });
  logLinkEvents(component, log);
  await component.start();
  let stopping = false;
  const storageAnswers = cachedProbe(() => storage.accountExists(PROBE_USER), { timeoutMs: 1000, cacheMs: 1000 });
  return {
    storage,
    component,
    ready: async () => !stopping && component.isUp && (await storageAnswers()),
    async stop() {
      stopping = true;
      // Finish what is in flight before the database goes away.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([service.idle(), new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      await component.stop();
      await storage.close();
    },
  };
}
