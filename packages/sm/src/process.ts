/**
 * The sm process: a SessionManager linked to every router, with storage
 * through xdb (or a Storage handed in, for tests and embedded use).
 */
import type { Logger } from "pino";
import { Component, logLinkEvents, rawText } from "@jabberfarm/component";
import { XdbClient, type Storage } from "@jabberfarm/xdb";
import { smConfigSchema, type SmConfig, type SmConfigInput } from "./config.js";
import { BUILTIN_MODULES, loadModules } from "./modules/index.js";
import { SessionManager, type SmModule } from "./sm.js";

export interface SmProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router. */
  storage?: Storage;
  /** Modules to load instead of `config.modules` / every built-in one. */
  modules?: SmModule[];
}

export interface SmProcess {
  sm: SessionManager;
  component: Component;
  stop(): Promise<void>;
}

export async function startSm(input: SmConfigInput | SmConfig, opts: SmProcessOptions): Promise<SmProcess> {
  const config = smConfigSchema.parse(input);
  const log = opts.logger;
  const component = new Component({
    name: config.domain, secret: config.secret, instance: config.instance, routers: config.routers,
  });
  const address = `${config.domain}/${config.instance}`;
  const xdb = opts.storage ? undefined : new XdbClient((t) => component.send(t), address, { timeoutMs: config.xdb.timeoutMs });
  const storage = opts.storage ?? xdb!;
  const modules = opts.modules ?? loadModules(config.modules ?? Object.keys(BUILTIN_MODULES));
  const sm = new SessionManager(config, storage, { send: (t) => component.send(t) }, log, modules);
  if (xdb) sm.onXdb = (el) => void xdb.handleResponse(el);
  component.on("stanza", (el, raw) => sm.handle(el, rawText(raw)));
  component.on("members", (name, instances) => {
    if (name === config.domain) sm.setMembers(instances);
  });
  logLinkEvents(component, log);
  await component.start();
  log.info({ domain: config.domain, instance: config.instance, modules: modules.length }, "sm serving");
  return {
    sm,
    component,
    async stop() {
      await component.stop();
      xdb?.abortAll("sm stopping");
    },
  };
}
