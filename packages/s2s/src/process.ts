/**
 * The s2s process: a trusted component on every router under the name the
 * routers' `remoteRoute` names (`s2s`), serving every domain the farm does
 * not; listening for remote servers on 5269 (and direct TLS when set).
 * Several run side by side: the routers spread remote domains over them by
 * the rendezvous rule, and any of them takes incoming streams.
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, Gauge } from "prom-client";
import { Component, logLinkEvents, resendWhenOneLeaves } from "@jabberfarm/component";
import { watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { loadS2sTls } from "./certs.js";
import { s2sConfigSchema, type S2sConfig, type S2sConfigInput } from "./config.js";
import { S2sService } from "./service.js";

export interface S2sProcessOptions {
  logger: Logger;
  metrics?: Metrics;
}

export interface S2sProcess {
  config: S2sConfig;
  service: S2sService;
  component: Component;
  /** Where remote servers connect (STARTTLS), and direct TLS when configured. */
  address: AddressInfo;
  directTls: AddressInfo | undefined;
  ready(): boolean;
  stop(): Promise<void>;
}

export async function startS2s(input: S2sConfigInput | S2sConfig, opts: S2sProcessOptions): Promise<S2sProcess> {
  const config = s2sConfigSchema.parse(input);
  const log = opts.logger;
  const tls = await loadS2sTls(config, log);
  const component = new Component({ name: config.name, secret: config.secret, instance: config.instance, routers: config.routers });
  const service = new S2sService(config, tls, component, log);
  component.on("stanza", (el, raw) => service.fromRouter(el, typeof raw === "string" ? raw : raw.toString("utf8")));
  logLinkEvents(component, log);
  // What a lost link carried may be lost with it; an SM that left had not acknowledged what it held.
  component.on("down", () => service.confirmed.linkLost());
  for (const domain of config.domains) resendWhenOneLeaves(component, domain, () => service.confirmed.linkLost());
  if (opts.metrics) registerMetrics(opts.metrics, service, component);
  // Linked first, listening second: a stream accepted before any router
  // link is up would have nowhere to pass its stanzas on (a restarted s2s on
  // its old port must refuse, so the remote server tries another of ours).
  await component.start();
  const { starttls, directTls } = await service.listen();
  log.info({ instance: config.instance, domains: config.domains, listen: `${starttls.address}:${starttls.port}`, directTls: directTls?.port, tls: tls.configured ? "configured" : "self-signed" }, "s2s serving");
  let stopping: Promise<void> | undefined;
  return {
    config, service, component, address: starttls, directTls,
    ready: () => stopping === undefined && component.isUp,
    stop() {
      stopping ??= (async () => {
        await service.stop();
        // Acknowledgements still owed go out before the links close.
        await new Promise((r) => setTimeout(r, 50));
        await component.stop();
        log.info("s2s stopped");
      })();
      return stopping;
    },
  };
}

function registerMetrics(m: Metrics, service: S2sService, component: Component): void {
  watchRouterLinks(m, component);
  new Gauge({
    name: "jabberfarm_s2s_streams", help: "Server-to-server streams open now, by direction (in, out) and authentication (external, dialback, pending).",
    labelNames: ["direction", "auth"], registers: [m.registry],
    collect() {
      this.reset();
      for (const c of service.streamCounts()) this.set({ direction: c.direction, auth: c.auth }, c.n);
    },
  });
  new Gauge({
    name: "jabberfarm_s2s_queued", help: "Stanzas held while their outgoing stream is being set up.", registers: [m.registry],
    collect() {
      this.set(service.queued);
    },
  });
  const established = new Counter({
    name: "jabberfarm_s2s_streams_established_total", help: "Server-to-server streams authenticated, by direction and method.",
    labelNames: ["direction", "auth"], registers: [m.registry],
  });
  const failures = new Counter({
    name: "jabberfarm_s2s_failures_total", help: "Stanzas bounced and stream errors sent, by condition.", labelNames: ["condition"], registers: [m.registry],
  });
  service.counters = {
    streams: (direction, auth) => established.inc({ direction, auth }),
    failure: (condition) => failures.inc({ condition }),
  };
  m.connections("s2s-in", () => service.incoming.size);
  m.confirmation(() => ({ unconfirmed: service.confirmed.size, resent: service.confirmed.resent, duplicates: service.receiver.duplicates }));
}
