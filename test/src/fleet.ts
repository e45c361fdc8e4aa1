/**
 * What the fault and rolling-restart tests share about their farm:
 * `jabberfarm up --routers 2 --sm 2 --c2s 3` with metrics on, the users
 * (spread over both SMs and all three c2s), their subscriptions, and the
 * waits on the supervisor and the processes' /readyz.
 */
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { Chatter } from "./chatter.js";
import { waitUntil, type Farm } from "./farm.js";
import { xml } from "./clients.js";
import type { Ledger } from "./ledger.js";

export const HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"] as const;
export const SM_IDS = ["sm-1", "sm-2"] as const;
export const TOPOLOGY = ["--routers", "2", "--sm", "2", "--c2s", "3"];
/** The supervisor's children in start order (packages/farm/src/up-command.ts, farmChildren). */
export const CHILDREN = ["router-1", "router-2", "xdb", "sm-1", "sm-2", "c2s-1", "c2s-2", "c2s-3"] as const;
export type ChildId = (typeof CHILDREN)[number];
/** Components each router should have once every process linked to it: xdb, 2 sm, 3 c2s. */
export const COMPONENTS = 6;

const SMS = SM_IDS.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
/** The SM that owns a user, by the routers' rule. */
export const ownerOf = (bare: string): string => rendezvousPick(SMS, bare)!.rendezvousId;

/** The first name `${prefix}N` whose owner is `sm`. */
export function nameOn(prefix: string, sm: string): string {
  for (let k = 0; ; k++) if (ownerOf(`${prefix}${k}@localhost`) === sm) return `${prefix}${k}`;
}

export function password(user: string): string {
  return `pw-${user}`;
}

/**
 * Six users in a ring in which neighbours are on different c2s: each (c2s,
 * SM) pair has one. `ring[i]` starts on HOSTS[home(i)].
 */
export function ringUsers(prefix: string): Array<{ user: string; home: string }> {
  const slots: Array<[number, number]> = [[0, 0], [1, 1], [2, 0], [0, 1], [1, 0], [2, 1]];
  return slots.map(([c, s]) => ({ user: nameOn(`${prefix}${c + 1}s${s + 1}x`, SM_IDS[s]!), home: HOSTS[c]! }));
}

export async function addUsers(farm: Farm, users: readonly string[], parallel = 3): Promise<void> {
  const queue = [...users];
  await Promise.all(Array.from({ length: parallel }, async () => {
    for (let u = queue.shift(); u !== undefined; u = queue.shift()) await farm.addUser(`${u}@localhost`, password(u));
  }));
}

export function makeChatter(farm: Farm, ledger: Ledger, user: string, reconnect = true): Chatter {
  return new Chatter({ port: farm.ports.c2s, user, password: password(user), ledger, hosts: HOSTS, reconnect });
}

/** Mutual subscriptions between ring neighbours; resolves when each sees the other online. */
export async function subscribeRing(ring: readonly Chatter[], ms = 30_000): Promise<void> {
  for (let i = 0; i < ring.length; i++) {
    const a = ring[i]!;
    const b = ring[(i + 1) % ring.length]!;
    await a.send(xml("presence", { to: b.bare, type: "subscribe" }));
    await b.send(xml("presence", { to: a.bare, type: "subscribe" }));
  }
  await waitUntil("ring neighbours see each other online", ms, () =>
    ring.every((a, i) => {
      const b = ring[(i + 1) % ring.length]!;
      return a.sawAvailable(b.full) && b.sawAvailable(a.full);
    }), 100);
}

export function neighbours<T>(ring: readonly T[], x: T): T[] {
  const i = ring.indexOf(x);
  return [ring[(i + ring.length - 1) % ring.length]!, ring[(i + 1) % ring.length]!];
}

/** /readyz of a child: its HTTP status, or 0 when nothing answers. */
export async function readyz(farm: Farm, id: ChildId): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${farm.metricsPort(id)}/readyz`, { signal: AbortSignal.timeout(3000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

export async function waitReady(farm: Farm, id: ChildId, ms = 30_000): Promise<void> {
  await waitUntil(`${id} answers /readyz with 200`, ms, async () => (await readyz(farm, id)) === 200, 100);
}

/** How many components a router has (jabberfarm_connections{kind="component"}). */
export async function routerComponents(farm: Farm, id: "router-1" | "router-2"): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${farm.metricsPort(id)}/metrics`, { signal: AbortSignal.timeout(3000) });
    const m = /^jabberfarm_connections\{[^}]*kind="component"[^}]*\} (\d+)/m.exec(await res.text());
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A router that is back: ready, and every component linked to it again. */
export async function waitRouterFull(farm: Farm, id: "router-1" | "router-2", ms = 30_000): Promise<void> {
  await waitReady(farm, id, ms);
  await waitUntil(`every component linked to ${id} again`, ms, async () => (await routerComponents(farm, id)) >= COMPONENTS, 200);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
