/**
 * The operator's view of a running farm: `jabberfarm status`, `sessions`
 * and `kick`. The CLI links to every router as the trusted component `cli`
 * and asks with `<admin/>` envelopes (docs/envelope.md, "Operator
 * queries"); every wait is bounded, so a process that does not answer is
 * reported instead of hanging the command.
 */
import { Component, type RouterAddress, type RouterLink } from "@jabberfarm/component";
import {
  ENVELOPE_NS, ROUTER_ADDRESS, adminRequest, readAdminReply,
  type AdminOp, type AdminParams, type AdminReply, type ProcessStatus, type SessionInfo,
} from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import type { Element } from "@jabberfarm/xml";
import { accountJid } from "./admin.js";
import { COMPONENT_NAMES, type Doc } from "./farm-config.js";

/** How long the links to the routers may take to come up. */
const CONNECT_MS = 1500;
/** How long one question waits for its answer. */
const ANSWER_MS = 2000;

type RouterStatus = Extract<ProcessStatus, { process: "router" }>;

interface Pending {
  op: AdminOp;
  resolve(reply: AdminReply | undefined): void;
  timer: NodeJS.Timeout;
}

/** The CLI's links to the farm's routers, and its questions in flight. */
export class OperatorLink {
  private readonly pending = new Map<string, Pending>();
  private counter = 0;

  private constructor(private readonly component: Component, readonly address: string, readonly routers: RouterAddress[]) {
    component.on("stanza", (el) => this.onAnswer(el));
  }

  /** Links to every router of the farm; rejects when none answers. */
  static async open(cli: Doc): Promise<OperatorLink> {
    const routers = cli.routers as RouterAddress[];
    const secret = cli.secret as string | undefined;
    if (!secret) throw new Error("the farm config has no secret for the component 'cli' (router.components.cli)");
    const instance = `cli-${process.pid}`;
    const component = new Component({ name: COMPONENT_NAMES.cli, secret, instance, routers, backoff: { initialMs: 100, maxMs: 500 } });
    const link = new OperatorLink(component, `${COMPONENT_NAMES.cli}/${instance}`, routers);
    const deadline = Date.now() + CONNECT_MS;
    try {
      await component.start(CONNECT_MS);
    } catch {
      component.crash();
      throw new Error(`no router answered at ${routers.map(label).join(", ")}: is the farm running?`);
    }
    // The first link is up; give the others the same moment.
    while (component.liveLinks.length < routers.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return link;
  }

  /** The live link to `router`, if any. */
  linkTo(router: RouterAddress): RouterLink | undefined {
    return this.component.liveLinks.find((l) => l.label === label(router));
  }

  /**
   * Asks `to` and resolves with the answer, or undefined when none came in
   * time. `via` pins the router the question goes through (a router's own
   * status); otherwise any live one carries it.
   */
  ask<O extends AdminOp>(op: O, to: string, params: AdminParams<O>, via?: RouterLink): Promise<AdminReply<O> | undefined> {
    const id = `op${++this.counter}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, ANSWER_MS);
      this.pending.set(id, { op, resolve: resolve as Pending["resolve"], timer });
      const text = adminRequest(id, op, this.address, to, params as never);
      if (via) via.send(text);
      else if (!this.component.send(text)) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(undefined);
      }
    });
  }

  private onAnswer(el: Element): void {
    if (el.local !== "admin" || el.ns !== ENVELOPE_NS) return;
    const p = el.attrs.id === undefined ? undefined : this.pending.get(el.attrs.id);
    if (!p) return;
    this.pending.delete(el.attrs.id!);
    clearTimeout(p.timer);
    try {
      p.resolve(readAdminReply(p.op, el));
    } catch (err) {
      p.resolve({ type: "error", id: el.attrs.id!, from: el.attrs.from ?? "", condition: "undefined-condition", text: (err as Error).message });
    }
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    await this.component.stop();
  }
}

function label(r: RouterAddress): string {
  return `${r.host}:${r.port}`;
}

function failure(reply: AdminReply | undefined): string {
  if (!reply) return "no answer";
  if (reply.type === "result") return "";
  return reply.text ? `${reply.condition}: ${reply.text}` : reply.condition;
}

// ---- status ------------------------------------------------------------------

export interface RouterEntry {
  /** Where the CLI reached it (from the farm config). */
  router: string;
  status?: RouterStatus;
  /** Why there is no status: "not reachable", "no answer", or the error. */
  problem?: string;
}

export interface ProcessEntry {
  address: string;
  kind: "c2s" | "sm" | "xdb" | "s2s";
  /** Instances of the routers this process is linked to. */
  routers: string[];
  status?: ProcessStatus;
  problem?: string;
}

export interface FarmStatus {
  routers: RouterEntry[];
  processes: ProcessEntry[];
}

/**
 * Asks every router for itself and its connections, then every farm process
 * the routers know of (deduplicated: each is linked to every router).
 */
export async function farmStatus(link: OperatorLink): Promise<FarmStatus> {
  const routers = await Promise.all(link.routers.map(async (r): Promise<RouterEntry> => {
    const via = link.linkTo(r);
    if (!via) return { router: label(r), problem: "not reachable" };
    const reply = await link.ask("status", ROUTER_ADDRESS, {}, via);
    if (reply?.type === "result" && reply.result.process === "router") return { router: label(r), status: reply.result };
    return { router: label(r), problem: failure(reply) || "not a router's status" };
  }));
  const found = new Map<string, ProcessEntry>();
  for (const r of routers) {
    if (!r.status) continue;
    const domains = new Set(r.status.domains);
    for (const c of r.status.connections) {
      if (!c.trusted) continue;
      const kind = c.name === COMPONENT_NAMES.c2s ? "c2s" : c.name === COMPONENT_NAMES.xdb ? "xdb" : c.name === COMPONENT_NAMES.s2s ? "s2s"
        : domains.has(c.name) ? "sm" : undefined;
      if (!kind) continue;
      const address = `${c.name}/${c.instance}`;
      const entry = found.get(address) ?? { address, kind, routers: [] };
      entry.routers.push(r.status.instance);
      found.set(address, entry);
    }
  }
  const order = { c2s: 0, sm: 1, xdb: 2, s2s: 3 };
  const processes = [...found.values()].sort((a, b) => order[a.kind] - order[b.kind] || a.address.localeCompare(b.address));
  await Promise.all(processes.map(async (p) => {
    const reply = await link.ask("status", p.address, {});
    // A process gone since the routers listed it: the router hands the question to another instance of the name.
    if (reply?.type === "result" && reply.result.address === p.address) p.status = reply.result;
    else p.problem = reply?.type === "result" ? "no answer (gone)" : failure(reply);
  }));
  return { routers, processes };
}

/** Everything answered. */
export function statusComplete(s: FarmStatus): boolean {
  return s.routers.every((r) => r.status) && s.processes.every((p) => p.status);
}

export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${String(h).padStart(2, "0")}h`;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  return `${m}m${String(s % 60).padStart(2, "0")}s`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => "  " + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

function load(s: ProcessStatus): string {
  switch (s.process) {
    case "c2s": return `${plural(s.clients, "client")}, ${plural(s.sessions, "session")}`;
    case "sm": return `${plural(s.sessions, "session")}, ${plural(s.users, "user")}`;
    case "s2s": return `${s.incoming} in, ${s.outgoing} out, ${s.queued} queued`;
    default: return "-";
  }
}

function detail(s: ProcessStatus): string {
  switch (s.process) {
    case "c2s": return s.listeners.map((l) => `${l.host}:${l.port} ${l.kind}`).join(", ");
    case "sm": return `domain ${s.domain}`;
    case "xdb": return `storage ${s.backend}`;
    case "s2s": return `${s.listen.host}:${s.listen.port} server-to-server`;
    default: return "";
  }
}

export function formatStatus(s: FarmStatus): string {
  const routerRows = [["ROUTER", "LISTEN", "PID", "UPTIME", "RSS", "COMPONENTS"]];
  for (const r of s.routers) {
    const st = r.status;
    routerRows.push(st
      ? [st.instance, `${st.listen.host}:${st.listen.port}`, String(st.pid), formatUptime(st.uptimeS), mib(st.rssBytes), String(st.connections.length)]
      : ["?", r.router, r.problem ?? "no answer"]);
  }
  const liveRouters = s.routers.filter((r) => r.status).length;
  const processRows = [["PROCESS", "PID", "UPTIME", "RSS", "LOAD", "ROUTERS", "WHERE"]];
  for (const p of s.processes) {
    const st = p.status;
    const links = `${p.routers.length}/${liveRouters}`;
    processRows.push(st
      ? [p.address, String(st.pid), formatUptime(st.uptimeS), mib(st.rssBytes), load(st), links, detail(st)]
      : [p.address, p.problem ?? "no answer"]);
  }
  return table(routerRows) + "\n" + (s.processes.length > 0 ? table(processRows) : "  no farm process is linked to the routers\n");
}

// ---- sessions and kick -----------------------------------------------------------

/** The sessions of one user, as the SM that owns the user knows them. */
export async function userSessions(link: OperatorLink, arg: string | undefined, domain: string): Promise<{ user: string; sessions: SessionInfo[] }> {
  const user = accountJid(arg, domain);
  const reply = await link.ask("sessions", user, { user });
  if (reply?.type !== "result") throw new Error(`sessions of ${user}: ${failure(reply)}`);
  return { user, sessions: reply.result.sessions };
}

export function formatSessions(user: string, sessions: SessionInfo[]): string {
  if (sessions.length === 0) return `${user} has no session\n`;
  const rows = [["JID", "SESSION", "C2S", "SM", "AVAILABLE", "PRIORITY", "SINCE"]];
  for (const s of sessions) rows.push([s.jid, s.sid, s.c2s, s.sm, s.available ? "yes" : "no", String(s.priority), s.since]);
  return table(rows);
}

/** Ends one session; throws when there is none with that full JID. */
export async function kickSession(link: OperatorLink, arg: string | undefined): Promise<SessionInfo> {
  if (!arg) throw new Error("give the session as USER@DOMAIN/RESOURCE");
  const jid = Jid.tryParse(arg);
  if (!jid || jid.local === "" || jid.resource === "") throw new Error(`'${arg}' is not a full JID (USER@DOMAIN/RESOURCE)`);
  const full = jid.toString();
  const reply = await link.ask("kick", jid.bareString(), { jid: full });
  if (reply?.type === "result") return reply.result.kicked;
  if (reply?.type === "error" && reply.condition === "item-not-found") throw new Error(`no session ${full}`);
  throw new Error(`kick ${full}: ${failure(reply)}`);
}
