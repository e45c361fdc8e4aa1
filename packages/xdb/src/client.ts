/**
 * Storage over the router: every `Storage` call becomes an `<xdb/>` request
 * to the xdb process (docs/envelope.md) and resolves with its validated
 * answer. Processes other than xdb (sm, c2s, the CLI) hold one of these
 * instead of a database connection.
 *
 * Its storage methods are not written here: each is made from its entry in
 * the envelope's operation table (XDB_OPS), below the class.
 */
import {
  parseXdbResult, xdbParamsFromArgs, xdbRequest, ENVELOPE_NS, XDB_OPS, type XdbMethods, type XdbOp, type XdbParams, type XdbResult,
} from "@jabberfarm/envelope";
import { resendWhenOneLeaves, stringHash, type Component } from "@jabberfarm/component";
import type { Histogram, Metrics } from "@jabberfarm/metrics";
import { readError, type Element } from "@jabberfarm/xml";
import type { Storage } from "./storage.js";

/** A request that failed: the stanza error condition xdb (or the router) answered with. */
export class XdbRequestError extends Error {
  constructor(readonly op: string, readonly condition: string, text?: string) {
    super(`xdb ${op}: ${condition}${text ? ` (${text})` : ""}`);
    this.name = "XdbRequestError";
  }
}

interface Pending {
  op: XdbOp;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  /** performance.now() when sent. */
  sentAt: number;
  /** The request as sent, for reads: sent again when an xdb leaves (`resendReads`). */
  text: string | undefined;
}

export interface XdbClientOptions {
  /** Where requests go; `xdb` unless a deployment names it otherwise. */
  to?: string;
  timeoutMs?: number;
  /** Time every round trip there (jabberfarm_storage_seconds{op}). */
  metrics?: Metrics | undefined;
}

// The table's methods, which the loop after the class puts on its prototype.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging -- typed by merging: the methods come from the operations table
export interface XdbClient extends XdbMethods {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class XdbClient implements Storage {
  private readonly pending = new Map<string, Pending>();
  private readonly to: string;
  private readonly timeoutMs: number;
  private readonly timing: Histogram<"op"> | undefined;
  private counter = 0;

  /**
   * `send` writes to the router (false when no router is reachable); `from`
   * is the asking process's own address, where answers come back.
   */
  constructor(private readonly sendText: (text: string) => boolean, private readonly from: string, opts: XdbClientOptions = {}) {
    this.to = opts.to ?? "xdb";
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.timing = opts.metrics?.storageSeconds;
  }

  /** Feed every `<xdb/>` element that arrives; true when it answered one of our requests. */
  handleResponse(el: Element): boolean {
    if (el.local !== "xdb" || el.ns !== ENVELOPE_NS) return false;
    const id = el.attrs.id;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id!);
    clearTimeout(p.timer);
    this.timing?.observe({ op: p.op }, (performance.now() - p.sentAt) / 1000);
    if (el.attrs.type === "result") {
      try {
        p.resolve(parseXdbResult(p.op, el));
      } catch (e) {
        p.reject(new XdbRequestError(p.op, "bad-request", (e as Error).message));
      }
      return true;
    }
    const { condition = "undefined-condition", text } = readError(el.getChild("error"));
    p.reject(new XdbRequestError(p.op, condition, text));
    return true;
  }

  /** Fail every request in flight (the process is stopping). */
  abortAll(reason = "aborted"): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new XdbRequestError(p.op, "remote-server-timeout", reason));
      this.pending.delete(id);
    }
  }

  /**
   * An xdb process left (it died or stopped; component membership): the
   * reads in flight may have gone to it and would wait for their timeout.
   * Reads change nothing, so they are sent again now (the routers pick a
   * live xdb); the first answer settles each, a later copy is ignored.
   * Writes are not repeated: they wait for their answer or timeout.
   */
  resendReads(): number {
    let n = 0;
    for (const p of this.pending.values()) {
      if (p.text !== undefined && this.sendText(p.text)) n++;
    }
    return n;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  call<O extends XdbOp>(op: O, params: XdbParams<O>): Promise<XdbResult<O>> {
    const id = `x${(++this.counter).toString(36)}`;
    const user = (params as { user?: unknown }).user;
    const to = addressFor(this.to, typeof user === "string" ? user : this.from);
    return new Promise<XdbResult<O>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.timing?.observe({ op }, this.timeoutMs / 1000);
        reject(new XdbRequestError(op, "remote-server-timeout", `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const text = xdbRequest(id, op, this.from, to, params);
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer, sentAt: performance.now(), text: XDB_OPS[op].type === "get" ? text : undefined });
      const fail = (condition: string, text: string): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new XdbRequestError(op, condition, text));
      };
      try {
        if (!this.sendText(text)) fail("service-unavailable", "no router reachable");
      } catch (err) {
        // Larger than the farm's links take (OversizeError): this request fails, the link stays.
        if ((err as Error).name !== "OversizeError") throw err;
        fail("resource-constraint", (err as Error).message);
      }
    });
  }

  async close(): Promise<void> {
    this.abortAll("closed");
  }
}

/**
 * Where one request goes. With several xdb processes (on PostgreSQL), the
 * routers pick one per request by rendezvous hashing of the bare `to`
 * (docs/router.md); a request is addressed to `u<hash of key>@xdb`, the key
 * being the user it is about, so each user's requests go to one xdb, in
 * order, and the users spread over all of them; a request about no single
 * user (a batch of archive writes, bulk accounts) is keyed by the asking
 * process, so each process's batches keep their order too. With one xdb
 * every address reaches it.
 */
export function addressFor(to: string, key: string): string {
  return `u${stringHash(key).toString(36)}@${to}`;
}

/**
 * An xdb that left (died or stopped) took the requests it had not answered:
 * from then on, reads in flight go again, to a live one (`resendReads`).
 */
export function resendReadsWhenAnXdbLeaves(component: Component, xdb: XdbClient | undefined): void {
  if (xdb) resendWhenOneLeaves(component, "xdb", () => xdb.resendReads());
}

for (const op of Object.keys(XDB_OPS) as XdbOp[]) {
  Object.defineProperty(XdbClient.prototype, XDB_OPS[op].method, {
    value(this: XdbClient, ...args: unknown[]) {
      return this.call(op, xdbParamsFromArgs(op, args) as XdbParams<typeof op>);
    },
    writable: true,
    configurable: true,
  });
}
