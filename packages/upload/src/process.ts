/**
 * The upload process: the component `upload.DOMAIN` on every router
 * (trusted, for its quota ledger in xdb and the membership notices;
 * docs/upload.md) and the HTTPS endpoint for PUT and GET. Any number may
 * run side by side on one directory or one bucket.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { loadTlsMaterial } from "@jabberfarm/c2s";
import { Component, logLinkEvents, rawText, rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { countedSend, watchRouterLinks, type Metrics } from "@jabberfarm/metrics";
import { Stores, XdbClient, resendReadsWhenAnXdbLeaves, type Storage } from "@jabberfarm/xdb";
import { NS, parseTrusted, type Element } from "@jabberfarm/xml";
import type { FileBackend } from "./backend.js";
import { publicUrlOf, uploadConfigSchema, type UploadConfig, type UploadConfigInput } from "./config.js";
import { DirBackend } from "./dir-backend.js";
import { uploadHandler } from "./http.js";
import { S3Backend } from "./s3-backend.js";
import { SlotService } from "./slots.js";
import { sweepExpired } from "./sweeper.js";

const ENVELOPE_NS = "urn:jabberfarm:envelope:1";

export interface UploadProcessOptions {
  logger: Logger;
  /** Use this storage instead of asking xdb through the router (tests). */
  storage?: Storage;
  metrics?: Metrics;
}

export interface UploadProcess {
  component: Component;
  slots: SlotService;
  backend: FileBackend;
  /** Where the HTTPS endpoint listens. */
  address: AddressInfo;
  /** The certificate it presents (PEM), for clients that must trust a self-signed one. */
  certPath: string;
  /** Deletes expired files now (the sweep also runs every `sweepSeconds`). */
  sweep(): Promise<number>;
  ready(): boolean;
  stop(): Promise<void>;
}

export function backendFor(config: UploadConfig): FileBackend {
  const s = config.storage;
  return s.kind === "dir" ? new DirBackend(s.path) : new S3Backend(s);
}

export async function startUpload(input: UploadConfigInput | UploadConfig, opts: UploadProcessOptions): Promise<UploadProcess> {
  const config = uploadConfigSchema.parse(input);
  const log = opts.logger;
  const base = publicUrlOf(config);
  const tls = await loadTlsMaterial(config.tls, base.hostname, log);
  const backend = backendFor(config);
  const component = new Component({
    splitter: true, name: config.service, secret: config.secret, instance: config.instance, routers: config.routers,
  });
  const send = countedSend(component, opts.metrics);
  const xdb = opts.storage ? undefined : new XdbClient(send, `${config.service}/${config.instance}`, { timeoutMs: config.xdb.timeoutMs, metrics: opts.metrics });
  resendReadsWhenAnXdbLeaves(component, xdb);
  const ledger = new Stores(opts.storage ?? xdb!).openStore("upload.files", { maxKeys: config.limits.userMaxFiles, maxValueBytes: 2048 });
  const sendElement = (el: Element): void => {
    const text = el.toString();
    if (component.fits(text)) send(text);
  };
  // Listening comes first: with port 0 (tests) the URLs of the slots carry the port the kernel gave.
  let slots: SlotService | undefined;
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, uploadHandler({
    secret: config.urlSecret, backend, basePath: base.pathname, expireAfterSeconds: config.limits.expireAfterSeconds,
    onStored: async (slot) => slots?.stored(slot), log,
  }));
  // A slow or stalled client must not hold a socket for ever.
  server.requestTimeout = 10 * 60_000;
  server.headersTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.http.port, config.http.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  if (config.http.port === 0) config.http.port = address.port;
  const slotService = new SlotService(config, ledger, backend, sendElement, log);
  slots = slotService;
  component.on("stanza", (shallow, raw) => {
    let el = shallow;
    if (typeof raw !== "string") {
      try {
        el = parseTrusted(rawText(raw), NS.COMPONENT);
      } catch (err) {
        log.error({ err: (err as Error).message, element: shallow.name }, "unreadable element from the router; dropped");
        return;
      }
    }
    if (el.ns === ENVELOPE_NS) {
      if (xdb && el.local === "xdb") void xdb.handleResponse(el);
      return;
    }
    slotService.handle(el);
  });
  let sweeper = true;
  component.on("membership", (name, instances) => {
    if (name !== config.service || instances.size === 0) return;
    const pick = rendezvousPick([...instances].map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) })), config.service);
    sweeper = pick?.rendezvousId === config.instance;
  });
  logLinkEvents(component, log);
  if (opts.metrics) watchRouterLinks(opts.metrics, component);

  await component.start();
  const sweep = (): Promise<number> => sweepExpired(backend, ledger, config.limits.expireAfterSeconds, log);
  const timer = setInterval(() => {
    if (sweeper) sweep().catch((err: unknown) => log.warn({ err: (err as Error).message }, "expiry sweep failed"));
  }, config.limits.sweepSeconds * 1000);
  timer.unref();
  log.info({ service: config.service, instance: config.instance, listen: `${address.address}:${address.port}`, url: base.toString(), storage: config.storage.kind }, "upload serving");
  let stopping: Promise<void> | undefined;
  return {
    component, slots: slotService, backend, address, certPath: tls.certPath, sweep,
    ready: () => stopping === undefined && component.isUp && server.listening,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        // Uploads in progress may finish; no new connection is taken.
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          setTimeout(() => {
            server.closeAllConnections();
            resolve();
          }, 5000).unref();
        });
        await component.stop();
        xdb?.abortAll("upload stopping");
        log.info("upload stopped");
      })();
      return stopping;
    },
  };
}
