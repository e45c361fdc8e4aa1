/**
 * Operator queries carried by `<admin/>` envelopes (docs/envelope.md,
 * "Operator queries"): one zod schema for the parameters and one for the
 * result of each operation, the builders of requests and answers, and
 * `answerAdmin`, which every process uses to serve the operations it knows.
 */
import { z } from "zod";
import { Jid } from "@jabberfarm/jid";
import { errorElement, escapeAttr, escapeText, readError, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import { ENVELOPE_NS, EnvelopeError } from "./envelope.js";

/** The router answers operator queries addressed to this name itself. */
export const ROUTER_ADDRESS = "router";

const jidOf = (kind: "bare" | "full") => z.string().min(3).max(3071).refine((s) => {
  const j = Jid.tryParse(s);
  return j !== null && j.local !== "" && (kind === "bare" ? j.resource === "" : j.resource !== "");
}, kind === "bare" ? "a bare JID local@domain" : "a full JID local@domain/resource");

const count = z.number().int().min(0);

/** What every process tells about itself. */
const processFields = {
  /** Its address on the routers (`c2s/c2s-1`, `localhost/sm-1`, `xdb/xdb`, `router`). */
  address: z.string().min(1),
  instance: z.string().min(1),
  pid: z.number().int().positive(),
  uptimeS: z.number().min(0),
  rssBytes: count,
};

const hostPort = z.object({ host: z.string(), port: z.number().int().min(0).max(65535) });

export const componentConnectionSchema = z.object({
  name: z.string(),
  instance: z.string(),
  /** The component's end of the socket, `host:port`. */
  remote: z.string(),
  /** ISO 8601 time of the successful handshake. */
  since: z.string(),
  trusted: z.boolean(),
});

export const processStatusSchema = z.discriminatedUnion("process", [
  z.object({
    process: z.literal("router"), ...processFields,
    listen: hostPort,
    /** The farm's domains: a connection under one of these names is an SM. */
    domains: z.array(z.string()),
    connections: z.array(componentConnectionSchema),
    /** Connections still in their handshake. */
    pending: count,
  }),
  z.object({
    process: z.literal("c2s"), ...processFields,
    listeners: z.array(hostPort.extend({ kind: z.enum(["starttls", "directTls", "websocket"]) })),
    /** Client connections, bound or not. */
    clients: count,
    sessions: count,
  }),
  z.object({ process: z.literal("sm"), ...processFields, domain: z.string(), sessions: count, users: count }),
  z.object({ process: z.literal("xdb"), ...processFields, backend: z.enum(["pglite", "postgres"]) }),
  z.object({
    process: z.literal("s2s"), ...processFields,
    listen: hostPort,
    /** Server-to-server streams open now, each way. */
    incoming: count,
    outgoing: count,
    /** Stanzas waiting for an outgoing stream being set up. */
    queued: count,
  }),
]);

export const sessionInfoSchema = z.object({
  jid: z.string(),
  sid: z.string(),
  /** The c2s holding the client's socket, `c2s/INSTANCE`. */
  c2s: z.string(),
  /** The SM owning the user, `DOMAIN/INSTANCE`. */
  sm: z.string(),
  available: z.boolean(),
  priority: z.number().int(),
  /** ISO 8601 time the session started. */
  since: z.string(),
});

/** Every operation: its request type, parameters and result. */
export const ADMIN_OPS = {
  status: { type: "get", params: z.object({}).strict(), result: processStatusSchema },
  sessions: { type: "get", params: z.object({ user: jidOf("bare") }).strict(), result: z.object({ sessions: z.array(sessionInfoSchema) }) },
  kick: { type: "set", params: z.object({ jid: jidOf("full") }).strict(), result: z.object({ kicked: sessionInfoSchema }) },
} as const;

export type AdminOp = keyof typeof ADMIN_OPS;
export type AdminParams<O extends AdminOp> = z.output<(typeof ADMIN_OPS)[O]["params"]>;
export type AdminResult<O extends AdminOp> = z.output<(typeof ADMIN_OPS)[O]["result"]>;
export type ProcessStatus = z.output<typeof processStatusSchema>;
export type SessionInfo = z.output<typeof sessionInfoSchema>;

function isAdminOp(op: string): op is AdminOp {
  return Object.hasOwn(ADMIN_OPS, op);
}

export interface AdminRequest<O extends AdminOp = AdminOp> {
  id: string;
  op: O;
  from: string;
  to: string;
  params: AdminParams<O>;
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "value"}: ${i.message}`).join("; ");
}

function json(el: Element, what: string): unknown {
  try {
    return JSON.parse(el.text());
  } catch {
    throw new EnvelopeError(`admin: the ${what} is not JSON`);
  }
}

export function adminRequest<O extends AdminOp>(id: string, op: O, from: string, to: string, params: z.input<(typeof ADMIN_OPS)[O]["params"]>): string {
  return `<admin xmlns='${ENVELOPE_NS}' type='${ADMIN_OPS[op].type}' op='${op}' id='${escapeAttr(id)}' from='${escapeAttr(from)}' to='${escapeAttr(to)}'>${escapeText(JSON.stringify(params))}</admin>`;
}

/** Validates a received request (element, type for its op, addresses, parameters); throws EnvelopeError. */
export function readAdminRequest(el: Element): AdminRequest {
  const a = el.attrs;
  if (el.local !== "admin" || el.ns !== ENVELOPE_NS) throw new EnvelopeError(`not an admin envelope: <${el.name}/>`);
  if (!a.id || !a.from || !a.to) throw new EnvelopeError("admin: id, from and to are required");
  if (!a.op || !isAdminOp(a.op)) throw new EnvelopeError(`admin: unknown op '${a.op ?? ""}'`);
  if (a.type !== ADMIN_OPS[a.op].type) throw new EnvelopeError(`admin ${a.op}: type must be '${ADMIN_OPS[a.op].type}'`);
  const r = ADMIN_OPS[a.op].params.safeParse(json(el, "parameters"));
  if (!r.success) throw new EnvelopeError(`admin ${a.op}: ${issues(r.error)}`);
  return { id: a.id, op: a.op, from: a.from, to: a.to, params: r.data as AdminParams<AdminOp> };
}

export function adminResult<O extends AdminOp>(req: AdminRequest<O>, from: string, result: AdminResult<O>): string {
  return `<admin xmlns='${ENVELOPE_NS}' type='result' op='${req.op}' id='${escapeAttr(req.id)}' from='${escapeAttr(from)}' to='${escapeAttr(req.from)}'>${escapeText(JSON.stringify(result))}</admin>`;
}

/** The error answer to a request; `req` needs only the attributes of what arrived. */
export function adminError(req: { id: string; op: string; from: string }, from: string, condition: StanzaErrorCondition, text?: string): string {
  return `<admin xmlns='${ENVELOPE_NS}' type='error' op='${escapeAttr(req.op)}' id='${escapeAttr(req.id)}' from='${escapeAttr(from)}' to='${escapeAttr(req.from)}'>${errorElement(condition, text === undefined ? {} : { text }).toString()}</admin>`;
}

export type AdminReply<O extends AdminOp = AdminOp> =
  | { type: "result"; id: string; from: string; result: AdminResult<O> }
  | { type: "error"; id: string; from: string; condition: string; text: string | undefined };

/** Reads an answer to a request for `op` (the result checked against its schema); throws EnvelopeError. */
export function readAdminReply<O extends AdminOp>(op: O, el: Element): AdminReply<O> {
  const a = el.attrs;
  if (el.local !== "admin" || el.ns !== ENVELOPE_NS) throw new EnvelopeError(`not an admin envelope: <${el.name}/>`);
  if (!a.id) throw new EnvelopeError("admin answer: id is required");
  const from = a.from ?? "";
  if (a.type === "error") {
    const { condition = "undefined-condition", text } = readError(el.getChild("error"));
    return { type: "error", id: a.id, from, condition, text };
  }
  if (a.type !== "result") throw new EnvelopeError(`admin answer: bad type '${a.type ?? ""}'`);
  const r = ADMIN_OPS[op].result.safeParse(json(el, "result"));
  if (!r.success) throw new EnvelopeError(`admin ${op}: bad result: ${issues(r.error)}`);
  return { type: "result", id: a.id, from, result: r.data as AdminResult<O> };
}

/** A handler's way to answer with a stanza error condition (`item-not-found`...). */
export class AdminFailure extends Error {
  constructor(readonly condition: StanzaErrorCondition, message: string) {
    super(message);
    this.name = "AdminFailure";
  }
}

export type AdminHandlers = {
  [O in AdminOp]?: (params: AdminParams<O>, req: AdminRequest<O>) => AdminResult<O> | Promise<AdminResult<O>>;
};

/**
 * Serves one `<admin/>` that arrived at the process whose address is `self`:
 * the answer (result or error) goes to `send`, addressed to the asker.
 * Invalid requests get `bad-request`, operations this process does not
 * serve `feature-not-implemented`; answers that arrive here are ignored.
 * Never rejects.
 */
export async function answerAdmin(el: Element, self: string, handlers: AdminHandlers, send: (text: string) => void): Promise<void> {
  const a = el.attrs;
  if (a.type === "result" || a.type === "error" || !a.from) return;
  const asked = { id: a.id ?? "", op: a.op ?? "", from: a.from };
  let req: AdminRequest;
  try {
    req = readAdminRequest(el);
  } catch (err) {
    send(adminError(asked, self, "bad-request", (err as Error).message));
    return;
  }
  const handler = handlers[req.op] as ((p: unknown, r: AdminRequest) => unknown) | undefined;
  if (!handler) {
    send(adminError(asked, self, "feature-not-implemented", `${self} does not answer '${req.op}'`));
    return;
  }
  try {
    send(adminResult(req, self, (await handler(req.params, req)) as AdminResult<AdminOp>));
  } catch (err) {
    if (err instanceof AdminFailure) send(adminError(asked, self, err.condition, err.message));
    else send(adminError(asked, self, "internal-server-error", (err as Error).message));
  }
}

/** pid, uptime and memory: the part of a status every process answers the same way. */
export function processFacts(): { pid: number; uptimeS: number; rssBytes: number } {
  return { pid: process.pid, uptimeS: Math.round(process.uptime()), rssBytes: process.memoryUsage.rss() };
}
