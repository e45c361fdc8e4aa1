/**
 * Storage operations carried by `<xdb/>` envelopes (docs/envelope.md): one
 * zod schema for the parameters and one for the result of each operation,
 * checked by the asking side and by xdb. The accounts, credentials and
 * rosters have operations of their own (they are the core's); everything a
 * module stores goes through `store.read` and `store.write` (xdb-store.ts).
 */
import { z } from "zod";
import { escapeAttr, escapeText, type Element } from "@jabberfarm/xml";
import { ENVELOPE_NS, EnvelopeError } from "./envelope.js";
import {
  accountsExportResultSchema, accountsExportSchema, accountsImportResultSchema, accountsImportSchema, bareJidSchema, rosterItemSchema, scramCredentialSchema,
} from "./xdb-accounts.js";
import { storeReadResultSchema, storeReadSchema, storeWriteResultSchema, storeWriteSchema } from "./xdb-store.js";

const bareJid = bareJidSchema;
const jid = z.string().min(1).max(3071);

const user = { user: bareJid };
const credentials = z.array(scramCredentialSchema).min(1);

/** Written when a roster set was refused because the roster holds `maxItems` items already. */
const rosterSetResult = z.discriminatedUnion("ok", [
  z.strictObject({ ok: z.literal(true), ver: z.string() }),
  z.strictObject({ ok: z.literal(false), reason: z.literal("quota"), limit: z.literal("maxItems") }),
]);

/**
 * One entry per operation, the only place an operation is written: its
 * request `type`, the `Storage` method that carries it out, how that
 * method's arguments map to the parameters' fields (`args`, in order; a
 * trailing `?` marks an optional one; `null`: the parameters object is the
 * one argument), and the zod schemas of the parameters and of the result
 * (the method's return value, as JSON). XdbClient's methods and the xdb
 * service's dispatch are both derived from it.
 */
function op<const M extends string, const A extends readonly string[] | null, P extends z.ZodType, R extends z.ZodType>(
  type: "get" | "set", method: M, args: A, params: P, result: R,
): { type: "get" | "set"; method: M; args: A; params: P; result: R } {
  return { type, method, args, params, result };
}

export const XDB_OPS = {
  "account.create": op("set", "createAccount", ["user", "credentials"], z.object({ ...user, credentials }), z.boolean()),
  "account.delete": op("set", "deleteAccount", ["user"], z.object(user), z.boolean()),
  "account.exists": op("get", "accountExists", ["user"], z.object(user), z.boolean()),
  "credentials.get": op("get", "getCredentials", ["user"], z.object(user), z.array(scramCredentialSchema).nullable()),
  "credentials.set": op("set", "setCredentials", ["user", "credentials"], z.object({ ...user, credentials }), z.boolean()),
  "roster.get": op("get", "getRoster", ["user"], z.object(user), z.object({ ver: z.string(), items: z.array(rosterItemSchema) })),
  "roster.set": op("set", "setRosterItem", ["user", "item", "quota?"],
    z.object({ ...user, item: rosterItemSchema, quota: z.strictObject({ maxItems: z.number().int().min(0).optional() }).optional() }), rosterSetResult),
  "roster.remove": op("set", "removeRosterItem", ["user", "jid"], z.object({ ...user, jid }), z.string().nullable()),
  "store.read": op("get", "storeRead", null, storeReadSchema, storeReadResultSchema),
  "store.write": op("set", "storeWrite", null, storeWriteSchema, storeWriteResultSchema),
  "accounts.import": op("set", "importAccounts", ["accounts"], accountsImportSchema, accountsImportResultSchema),
  "accounts.export": op("get", "exportAccounts", null, accountsExportSchema, accountsExportResultSchema),
} as const;

type Ops = typeof XDB_OPS;
export type XdbOp = keyof Ops;
export type XdbParams<O extends XdbOp> = z.input<Ops[O]["params"]>;
export type XdbResult<O extends XdbOp> = z.output<Ops[O]["result"]>;

/** The argument list `args` describes, typed from the parameters' schema. */
type ArgList<A, P> = A extends readonly [infer H extends string, ...infer T]
  ? H extends `${infer K}?` ? [P[K & keyof P]?, ...ArgList<T, P>] : [P[H & keyof P], ...ArgList<T, P>]
  : [];
type MethodArgs<O extends XdbOp> = Ops[O]["args"] extends readonly string[]
  ? ArgList<Ops[O]["args"], XdbParams<O>>
  : [params: XdbParams<O>];

/** The storage methods the table describes, by name: what `Storage` is made of. */
export type XdbMethods = {
  [O in XdbOp as Ops[O]["method"]]: (...args: MethodArgs<O>) => Promise<XdbResult<O>>;
};

/** The parameters object for a method call (XdbClient's side of the mapping). */
export function xdbParamsFromArgs(op: XdbOp, args: readonly unknown[]): unknown {
  const names = XDB_OPS[op].args;
  if (names === null) return args[0];
  const params: Record<string, unknown> = {};
  names.forEach((name, i) => {
    if (args[i] !== undefined) params[name.replace(/\?$/, "")] = args[i];
  });
  return params;
}

/** The argument list for a method call from validated parameters (the xdb service's side). */
export function xdbArgsFromParams(op: XdbOp, params: unknown): unknown[] {
  const names = XDB_OPS[op].args;
  if (names === null) return [params];
  const p = params as Record<string, unknown>;
  return names.map((name) => p[name.replace(/\?$/, "")]);
}

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
  return `<xdb xmlns='${ENVELOPE_NS}' type='${XDB_OPS[op].type}' id='${escapeAttr(id)}' op='${op}' from='${escapeAttr(from)}' to='${escapeAttr(to)}'>${escapeText(JSON.stringify(params))}</xdb>`;
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
  if (a.type !== XDB_OPS[a.op].type) throw new EnvelopeError(`xdb ${a.op}: a '${XDB_OPS[a.op].type}' request, not '${a.type}'`);
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
