/**
 * The muc process: a MucService linked to every router as the component
 * `conference.DOMAIN` (trusted: it reaches xdb through the envelope and
 * hears the routers' membership notices; docs/muc.md, "Trust"), with its
 * rooms in xdb and its occupant lists in Redis when one is configured.
 */
import type { Logger } from "pino";
import { Component, logLinkEvents, rawText } from "@jabberfarm/component";
import { countedSend, watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { XdbClient, resendReadsWhenAnXdbLeaves, type Storage } from "@jabberfarm/xdb";
import { NS, parseTrusted } from "@jabberfarm/xml";
import { mucConfigSchema, type MucConfig, type MucConfigInput } from "./config.js";
import { OccupantStore } from "./occupant-store.js";
import { RoomStore } from "./room-store.js";
import { MucService } from "./service.js";

const ENVELOPE_NS = "urn:jabberfarm:envelope:1";

export interface MucProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router (tests). */
  storage?: Storage;
  metrics?: Metrics;
}

export interface MucProcess {
  service: MucService;
  component: Component;
  ready(): boolean;
  stop(): Promise<void>;
  /** Drops every link at once, as kill -9 would (tests). */
  crash(): void;
}

export async function startMuc(input: MucConfigInput | MucConfig, opts: MucProcessOptions): Promise<MucProcess> {
  const config = mucConfigSchema.parse(input);
  const log = opts.logger;
  const component = new Component({
    // Farm processes write well-formed XML (clients' is re-serialised at the edge).
    splitter: true,
    name: config.service, secret: config.secret, instance: config.instance, routers: config.routers,
  });
  const address = `${config.service}/${config.instance}`;
  const send = countedSend(component, opts.metrics);
  const xdb = opts.storage ? undefined : new XdbClient(send, address, { timeoutMs: config.xdb.timeoutMs, metrics: opts.metrics });
  const storage = opts.storage ?? xdb!;
  resendReadsWhenAnXdbLeaves(component, xdb);
  const store = new RoomStore(storage, config, log);
  let service: MucService | undefined;
  const occupants = config.redisUrl === undefined
    ? undefined
    : new OccupantStore(config.redisUrl, config.occupantTtlSeconds, () => service?.occupiedRooms() ?? [], log);
  service = new MucService(config, store, occupants, { send, fits: (t) => component.fits(t) }, log);
  const svc = service;
  component.on("stanza", (shallow, raw) => {
    let el = shallow;
    if (typeof raw !== "string") {
      try {
        el = parseTrusted(rawText(raw), NS.COMPONENT);
      } catch (err) {
        log.error({ err: (err as Error).message, element: shallow.name, from: shallow.attrs.from }, "unreadable element from the router; dropped");
        return;
      }
    }
    if (el.ns === ENVELOPE_NS) {
      if (xdb && el.local === "xdb") void xdb.handleResponse(el);
      return;
    }
    svc.handle(el);
  });
  component.on("membership", (name, instances) => {
    if (name === config.service) svc.setMembers([...instances].sort(), config.instance);
  });
  logLinkEvents(component, log);
  if (opts.metrics) watchRouterLinks(opts.metrics, component);
  // Join the routers once the occupant lists can be read: a room taken over
  // now must find its occupants, not start empty while they are still in it.
  if (occupants && !(await occupants.whenReady(5000))) log.warn("Redis not reachable yet: serving without the occupant lists");
  await component.start();
  // The public room list's account row; xdb may still be starting, so retry a while.
  void (async () => {
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        await store.init();
        return;
      } catch (err) {
        if (attempt === 29) log.error({ err: (err as Error).message }, "could not prepare the public room list in storage");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  log.info({ service: config.service, instance: config.instance, redis: occupants !== undefined }, "muc serving");
  let stopping: Promise<void> | undefined;
  return {
    service: svc,
    component,
    ready: () => stopping === undefined && component.isUp && (occupants?.ready ?? true),
    stop() {
      stopping ??= (async () => {
        // Finish what each room was doing, write the marks, then leave: the
        // other muc processes take the rooms over from xdb and Redis.
        await Promise.race([svc.idle(), new Promise((r) => setTimeout(r, 3000).unref())]);
        occupants?.flush();
        await component.stop();
        xdb?.abortAll("muc stopping");
        await occupants?.close();
        log.info("muc stopped");
      })();
      return stopping;
    },
    crash() {
      component.crash();
      xdb?.abortAll("crashed");
      void occupants?.close();
    },
  };
}
