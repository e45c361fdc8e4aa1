/**
 * Storage operations carried by `<xdb/>` envelopes (docs/envelope.md): one
 * zod schema for the parameters and one for the result of each operation,
 * checked by the asking side and by xdb.
 */
import { z } from "zod";
import { escapeAttr, escapeText, type Element } from "@jabberfarm/xml";
import { ENVELOPE_NS, EnvelopeError } from "./envelope.js";

const bareJid = z.string().min(3).max(3071).regex(/^[^@/]+@[^@/]+$/, "a bare JID local@domain");
const jid = z.string().min(1).max(3071);

export const scramCredentialSchema = z.object({
  mechanism: z.enum(["SCRAM-SHA-1", "SCRAM-SHA-256"]),
  salt: z.string().min(1),
  iterations: z.number().int().min(4096),
  storedKey: z.string().min(1),
  serverKey: z.string().min(1),
});

export const rosterItemSchema = z.object({
  jid,
  name: z.string().max(1024).optional(),
  subscription: z.enum(["none", "to", "from", "both"]),
  ask: z.literal("subscribe").optional(),
  approved: z.boolean().optional(),
  groups: z.array(z.string().max(1024)).max(100),
});

const user = { user: bareJid };

/** Every operation: its parameters, its result, and whether it writes. */
export const XDB_OPS = {
  "account.create": { write: true, params: z.object({ ...user, credentials: z.array(scramCredentialSchema).min(1) }), result: z.object({ created: z.boolean() }) },
  "account.delete": { write: true, params: z.object(user), result: z.object({ deleted: z.boolean() }) },
  "account.exists": { write: false, params: z.object(user), result: z.object({ exists: z.boolean() }) },
  "account.list": { write: false, params: z.object({ domain: z.string().min(1) }), result: z.object({ users: z.array(z.string()) }) },
  "credentials.get": { write: false, params: z.object(user), result: z.object({ credentials: z.array(scramCredentialSchema).nullable() }) },
  "credentials.set": { write: true, params: z.object({ ...user, credentials: z.array(scramCredentialSchema).min(1) }), result: z.object({ updated: z.boolean() }) },
  "roster.get": { write: false, params: z.object(user), result: z.object({ ver: z.string(), items: z.array(rosterItemSchema) }) },
  "roster.getItem": { write: false, params: z.object({ ...user, jid }), result: z.object({ item: rosterItemSchema.nullable() }) },
  "roster.set": { write: true, params: z.object({ ...user, item: rosterItemSchema }), result: z.object({ ver: z.string() }) },
  "roster.remove": { write: true, params: z.object({ ...user, jid }), result: z.object({ ver: z.string().nullable() }) },
  "subscriptionRequest.add": { write: true, params: z.object({ ...user, from: jid, stanza: z.string() }), result: z.object({}) },
  "subscriptionRequest.remove": { write: true, params: z.object({ ...user, from: jid }), result: z.object({ removed: z.boolean() }) },
  "subscriptionRequest.list": { write: false, params: z.object(user), result: z.object({ requests: z.array(z.object({ from: z.string(), stanza: z.string() })) }) },
  "offline.store": { write: true, params: z.object({ ...user, stanza: z.string(), limit: z.number().int().positive() }), result: z.object({ stored: z.boolean() }) },
  "offline.list": { write: false, params: z.object(user), result: z.object({ messages: z.array(z.object({ id: z.string(), stanza: z.string(), storedAt: z.string() })) }) },
  "offline.ack": { write: true, params: z.object({ ...user, upToId: z.string().regex(/^\d+$/) }), result: z.object({ count: z.number().int() }) },
  "offline.count": { write: false, params: z.object(user), result: z.object({ count: z.number().int() }) },
  "vcard.get": { write: false, params: z.object(user), result: z.object({ xml: z.string().nullable() }) },
  "vcard.set": { write: true, params: z.object({ ...user, xml: z.string() }), result: z.object({}) },
  "private.get": { write: false, params: z.object({ ...user, key: z.string().min(1) }), result: z.object({ xml: z.string().nullable() }) },
  "private.set": { write: true, params: z.object({ ...user, key: z.string().min(1), xml: z.string() }), result: z.object({}) },
} as const;

export type XdbOp = keyof typeof XDB_OPS;
export type XdbParams<O extends XdbOp> = z.input<(typeof XDB_OPS)[O]["params"]>;
export type XdbResult<O extends XdbOp> = z.output<(typeof XDB_OPS)[O]["result"]>;

export function isXdbOp(op: string): op is XdbOp {
  return Object.hasOwn(XDB_OPS, op);
}

export interface XdbRequest {
  id: string;
  op: XdbOp;
  from: string;
  to: string;
  params: unknown;
}

export function xdbRequest(id: string, op: XdbOp, from: string, to: string, params: unknown): string {
  return `<xdb xmlns='${ENVELOPE_NS}' type='${XDB_OPS[op].write ? "set" : "get"}' id='${escapeAttr(id)}' op='${op}' from='${escapeAttr(from)}' to='${escapeAttr(to)}'>${escapeText(JSON.stringify(params))}</xdb>`;
}

export function xdbResult(req: XdbRequest, from: string, result: unknown): string {
  return `<xdb xmlns='${ENVELOPE_NS}' type='result' id='${escapeAttr(req.id)}' op='${req.op}' from='${escapeAttr(from)}' to='${escapeAttr(req.from)}'>${escapeText(JSON.stringify(result))}</xdb>`;
}

/** Reads a request as xdb receives it; the parameters are validated by `parseXdbParams`. */
export function readXdbRequest(el: Element): XdbRequest {
  const a = el.attrs;
  if (el.local !== "xdb" || el.ns !== ENVELOPE_NS) throw new EnvelopeError(`not an xdb envelope: <${el.name}/>`);
  if (a.type !== "get" && a.type !== "set") throw new EnvelopeError(`xdb: bad request type '${a.type ?? ""}'`);
  if (!a.id || !a.from || !a.to) throw new EnvelopeError("xdb: id, from and to are required");
  if (!a.op || !isXdbOp(a.op)) throw new EnvelopeError(`xdb: unknown op '${a.op ?? ""}'`);
  let params: unknown;
  try {
    params = JSON.parse(el.text());
  } catch {
    throw new EnvelopeError(`xdb ${a.op}: the parameters are not JSON`);
  }
  return { id: a.id, op: a.op, from: a.from, to: a.to, params };
}

export function parseXdbParams<O extends XdbOp>(op: O, params: unknown): z.output<(typeof XDB_OPS)[O]["params"]> {
  const r = XDB_OPS[op].params.safeParse(params);
  if (!r.success) throw new EnvelopeError(`xdb ${op}: ${r.error.issues.map((i) => `${i.path.join(".") || "params"}: ${i.message}`).join("; ")}`);
  return r.data as z.output<(typeof XDB_OPS)[O]["params"]>;
}

export function parseXdbResult<O extends XdbOp>(op: O, el: Element): XdbResult<O> {
  let json: unknown;
  try {
    json = JSON.parse(el.text());
  } catch {
    throw new EnvelopeError(`xdb ${op}: the result is not JSON`);
  }
  const r = XDB_OPS[op].result.safeParse(json);
  if (!r.success) throw new EnvelopeError(`xdb ${op}: bad result: ${r.error.issues.map((i) => i.message).join("; ")}`);
  return r.data as XdbResult<O>;
}
