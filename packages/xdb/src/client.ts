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

  get inFlight(): number {
    return this.pending.size;
  }

  call<O extends XdbOp>(op: O, params: XdbParams<O>): Promise<XdbResult<O>> {
    const id = `x${(++this.counter).toString(36)}`;
    return new Promise<XdbResult<O>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.timing?.observe({ op }, this.timeoutMs / 1000);
        reject(new XdbRequestError(op, "remote-server-timeout", `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer, sentAt: performance.now() });
      const fail = (condition: string, text: string): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new XdbRequestError(op, condition, text));
      };
      try {
        if (!this.sendText(xdbRequest(id, op, this.from, this.to, params))) fail("service-unavailable", "no router reachable");
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

for (const op of Object.keys(XDB_OPS) as XdbOp[]) {
  Object.defineProperty(XdbClient.prototype, XDB_OPS[op].method, {
    value(this: XdbClient, ...args: unknown[]) {
      return this.call(op, xdbParamsFromArgs(op, args) as XdbParams<typeof op>);
    },
    writable: true,
    configurable: true,
  });
}
