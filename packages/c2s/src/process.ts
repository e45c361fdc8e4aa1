/**
 * The c2s process: client listeners, linked to every router as the
 * component `c2s` with its instance id, with credentials and registrations
 * going to xdb (or to a Storage handed in, for tests and embedded use).
 */
import type { Logger } from "pino";
import { Component, logLinkEvents } from "@jabberfarm/component";
import { XdbClient, type Storage } from "@jabberfarm/xdb";
import { c2sConfigSchema, type C2sConfig, type C2sConfigInput } from "./config.js";
import { C2sServer, type C2sPorts } from "./server.js";
import { loadTlsMaterial, type TlsMaterial } from "./tls.js";

export interface C2sProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router. */
  storage?: Pick<Storage, "getCredentials" | "createAccount">;
  /** How long to wait for the first router link (default 10 s). */
  routerTimeoutMs?: number;
}

export interface C2sProcess {
  /** The bound ports of the listeners that are on (port 0 in the config picks one). */
  ports: C2sPorts;
  config: C2sConfig;
  server: C2sServer;
  component: Component;
  tls: TlsMaterial;
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
  const xdb = opts.storage ? undefined : new XdbClient((t) => component.send(t), address, { timeoutMs: config.xdb.timeoutMs });
  const storage = opts.storage ?? xdb!;
  const server = new C2sServer(config, { log, outlet: component, storage, tls });
  if (xdb) server.onXdb = (el) => xdb.handleResponse(el);
  component.on("stanza", (el, raw) => server.handleRouterStanza(el, raw));
  logLinkEvents(component, log);
  try {
    await component.start(opts.routerTimeoutMs);
  } catch (err) {
    // Its links would keep retrying and hold the process open.
    await component.stop();
    throw err;
  }

  let ports: C2sPorts;
  try {
    ports = await server.listen();
  } catch (err) {
    await server.stop();
    await component.stop();
    throw err;
  }
  log.info({ domain: config.domain, instance: config.instance, ...ports }, "c2s serving");
  let stopping: Promise<void> | undefined;
  return {
    ports,
    config,
    server,
    component,
    tls,
    stop() {
      stopping ??= (async () => {
        await server.stop();
        await component.stop();
        xdb?.abortAll("c2s stopping");
        log.info("c2s stopped");
      })();
      return stopping;
    },
  };
}
