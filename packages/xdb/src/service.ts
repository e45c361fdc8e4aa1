/**
 * The xdb process's work: answer `<xdb/>` requests from the router with a
 * `Storage` (the only database connection in the farm).
 */
import type { Logger } from "pino";
import {
  EnvelopeError, XDB_OPS, parseXdbParams, readXdbRequest, xdbArgsFromParams, xdbResult, type XdbRequest,
} from "@jabberfarm/envelope";
import type { Histogram, Metrics } from "@jabberfarm/metrics";
import { stanzaErrorReply, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import { XdbError } from "./errors.js";
import type { Storage } from "./storage.js";

function conditionOf(err: unknown): StanzaErrorCondition {
  if (err instanceof EnvelopeError) return "bad-request";
  if (err instanceof XdbError) {
    if (err.code === "unknown-account" || err.code === "item-not-found") return "item-not-found";
    if (err.code === "invalid-argument") return "bad-request";
  }
  return "internal-server-error";
}

export class XdbService {
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly timing: Histogram<"op"> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly send: (text: string) => boolean,
    /** This process's address (`xdb/INSTANCE`), the `from` of every answer. */
    private readonly address: string,
    private readonly log: Logger,
    /** Time every operation there (jabberfarm_storage_seconds{op}). */
    metrics?: Metrics,
  ) {
    this.timing = metrics?.storageSeconds;
  }

  /** Requests being worked on; a draining process waits for zero. */
  get busy(): number {
    return this.inFlight;
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  handle(el: Element): void {
    if (el.attrs.type === "error" || el.attrs.type === "result") return; // never answer an answer
    let req: XdbRequest;
    try {
      req = readXdbRequest(el);
    } catch (err) {
      this.reject(el, "bad-request", (err as Error).message);
      return;
    }
    this.inFlight++;
    const started = performance.now();
    this.run(req).finally(() => this.timing?.observe({ op: req.op }, (performance.now() - started) / 1000)).then(
      (result) => this.answer(el, req, result),
      (err: unknown) => {
        const condition = conditionOf(err);
        if (condition === "internal-server-error") this.log.error({ err, op: req.op, from: req.from }, "storage operation failed");
        else this.log.warn({ op: req.op, from: req.from, reason: (err as Error).message }, "storage request refused");
        this.reject(el, condition, condition === "internal-server-error" ? "storage failure" : (err as Error).message);
      },
    ).finally(() => {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Calls the storage method the operation table names, with the arguments it lists. */
  private async run(req: XdbRequest): Promise<unknown> {
    const params = parseXdbParams(req.op, req.params);
    const method = this.storage[XDB_OPS[req.op].method] as (...args: unknown[]) => Promise<unknown>;
    return method.apply(this.storage, xdbArgsFromParams(req.op, params));
  }

  private answer(el: Element, req: XdbRequest, result: unknown): void {
    for (;;) {
      try {
        this.send(xdbResult(req, this.address, result));
        return;
      } catch (err) {
        if ((err as Error).name !== "OversizeError") throw err;
        // A page whose values escape to more than the links take (the
        // storage cut it by raw bytes): half of it, marked incomplete, so
        // that the asker reads on from there.
        const page = result as { items?: unknown[]; complete?: boolean };
        if (Array.isArray(page.items) && page.items.length > 1 && typeof page.complete === "boolean") {
          result = { ...page, items: page.items.slice(0, Math.ceil(page.items.length / 2)), complete: false };
          continue;
        }
        // Anything else larger than the links take fails this request alone;
        // what can grow is paged or bounded by quotas so that it does not
        // happen (docs/security.md).
        this.log.warn({ op: req.op, from: req.from, err: (err as Error).message }, "storage answer too large");
        this.reject(el, "resource-constraint", "the answer is too large");
        return;
      }
    }
  }

  private reject(el: Element, condition: StanzaErrorCondition, text: string): void {
    const reply = stanzaErrorReply(el, condition, { text, includePayload: false });
    reply.attrs.from = this.address;
    this.send(reply.toString());
  }
}
