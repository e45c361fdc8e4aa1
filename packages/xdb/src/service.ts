/**
 * The xdb process's work: answer `<xdb/>` requests from the router with a
 * `Storage` (the only database connection in the farm).
 */
import type { Logger } from "pino";
import {
  EnvelopeError, parseXdbParams, readXdbRequest, xdbResult, type XdbOp, type XdbRequest,
} from "@jabberfarm/envelope";
import type { Histogram, Metrics } from "@jabberfarm/metrics";
import { stanzaErrorReply, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import { XdbError } from "./errors.js";
import type { Storage } from "./storage.js";

type Operation = (s: Storage, p: never) => Promise<unknown>;

/** Each operation: validated parameters in, a JSON-able result out. */
const OPERATIONS: { [O in XdbOp]: (s: Storage, p: ReturnType<typeof parseXdbParams<O>>) => Promise<unknown> } = {
  "account.create": async (s, p) => ({ created: await s.createAccount(p.user, p.credentials) }),
  "account.delete": async (s, p) => ({ deleted: await s.deleteAccount(p.user) }),
  "account.exists": async (s, p) => ({ exists: await s.accountExists(p.user) }),
  "account.list": async (s, p) => ({ users: await s.listAccounts(p.domain) }),
  "credentials.get": async (s, p) => ({ credentials: await s.getCredentials(p.user) }),
  "credentials.set": async (s, p) => ({ updated: await s.setCredentials(p.user, p.credentials) }),
  "roster.get": async (s, p) => s.getRoster(p.user),
  "roster.getItem": async (s, p) => ({ item: await s.getRosterItem(p.user, p.jid) }),
  "roster.set": async (s, p) => ({ ver: await s.setRosterItem(p.user, p.item) }),
  "roster.remove": async (s, p) => ({ ver: await s.removeRosterItem(p.user, p.jid) }),
  "subscriptionRequest.add": async (s, p) => {
    await s.addSubscriptionRequest(p.user, p.from, p.stanza);
    return {};
  },
  "subscriptionRequest.remove": async (s, p) => ({ removed: await s.removeSubscriptionRequest(p.user, p.from) }),
  "subscriptionRequest.list": async (s, p) => ({ requests: await s.listSubscriptionRequests(p.user) }),
  "offline.store": async (s, p) => ({ stored: await s.storeOffline(p.user, p.stanza, p.limit) }),
  "offline.list": async (s, p) => ({
    messages: (await s.listOffline(p.user)).map((m) => ({ id: m.id, stanza: m.stanza, storedAt: m.storedAt.toISOString() })),
  }),
  "offline.ack": async (s, p) => ({ count: await s.ackOffline(p.user, p.upToId) }),
  "offline.count": async (s, p) => ({ count: await s.countOffline(p.user) }),
  "vcard.get": async (s, p) => ({ xml: await s.getVcard(p.user) }),
  "vcard.set": async (s, p) => {
    await s.setVcard(p.user, p.xml);
    return {};
  },
  "private.get": async (s, p) => ({ xml: await s.getPrivate(p.user, p.key) }),
  "private.set": async (s, p) => {
    await s.setPrivate(p.user, p.key, p.xml);
    return {};
  },
};

function conditionOf(err: unknown): StanzaErrorCondition {
  if (err instanceof EnvelopeError) return "bad-request";
  if (err instanceof XdbError) {
    if (err.code === "unknown-account") return "item-not-found";
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
      (result) => {
        try {
          this.send(xdbResult(req, this.address, result));
        } catch (err) {
          // An answer larger than the farm's links take (OversizeError) fails
          // this request alone; the operations that can grow are paged or
          // bounded by quotas so that it does not happen (docs/security.md).
          if ((err as Error).name !== "OversizeError") throw err;
          this.log.warn({ op: req.op, from: req.from, err: (err as Error).message }, "storage answer too large");
          this.reject(el, "resource-constraint", "the answer is too large");
        }
      },
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

  private async run(req: XdbRequest): Promise<unknown> {
    const params = parseXdbParams(req.op, req.params);
    return (OPERATIONS[req.op] as Operation)(this.storage, params as never);
  }

  private reject(el: Element, condition: StanzaErrorCondition, text: string): void {
    const reply = stanzaErrorReply(el, condition, { text, includePayload: false });
    reply.attrs.from = this.address;
    this.send(reply.toString());
  }
}
