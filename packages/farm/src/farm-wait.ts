/**
 * Account commands run while a farm starts (`jabberfarm up` in one
 * terminal, `adduser` in the next): instead of failing with "nothing serves
 * 'xdb' right now", they wait a bounded time for what they need, and say so.
 */
import type { Component } from "@jabberfarm/component";
import type { Doc } from "./farm-config.js";

/** Where waiting is reported (stderr in the CLI). */
export type Say = (line: string) => void;

/** Until this long has passed without any membership notice, the CLI may be an untrusted component that never gets one. */
const NOTICES_WITHIN_MS = 1000;

function routerPortsKnown(cli: Doc): boolean {
  const routers = cli.routers as Array<{ port: number }> | undefined;
  return Array.isArray(routers) && routers.every((r) => r.port > 0);
}

/**
 * The `cli` section once every router's port is known: `up` with port 0
 * writes the routers' ports when they have bound them. `read` reads the
 * section again; waits at most `ms`.
 */
export async function routersKnown(read: () => Doc, ms: number, say: Say): Promise<Doc> {
  let cli = read();
  if (routerPortsKnown(cli)) return cli;
  say(`waiting up to ${Math.round(ms / 1000)} s for the farm's routers to start...`);
  const deadline = Date.now() + ms;
  while (!routerPortsKnown(cli)) {
    if (Date.now() > deadline) throw new Error("the farm's routers did not start in time (their ports are still unknown): is `jabberfarm up` running?");
    await new Promise((r) => setTimeout(r, 100));
    cli = read();
  }
  return cli;
}

/**
 * Resolves once the routers list an xdb (their membership notices), or at
 * once when no notice comes at all (a CLI that is not a trusted component
 * gets none; its request then fails or succeeds on its own). Rejects after
 * `ms` without an xdb.
 */
export async function xdbServed(component: Component, ms: number, say: Say): Promise<void> {
  if (component.instancesOf("xdb").size > 0) return;
  const start = Date.now();
  // Trusted, the CLI is in the routers' list of its own name once a notice came.
  let noticed = component.instancesOf(component.name).size > 0;
  let said = false;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      clearInterval(timer);
      component.off("members", onMembers);
      component.off("membership", onMembers);
      if (err) reject(err);
      else resolve();
    };
    const onMembers = (): void => {
      noticed = true;
      if (component.instancesOf("xdb").size > 0) done();
    };
    const timer = setInterval(() => {
      const waited = Date.now() - start;
      if (!noticed && waited >= NOTICES_WITHIN_MS) return done();
      if (noticed && !said) {
        said = true;
        say(`waiting up to ${Math.round(ms / 1000)} s for the farm's storage (xdb) to be served...`);
      }
      if (waited >= ms) done(new Error(`no xdb was served within ${Math.round(ms / 1000)} s: is the farm's xdb running? (jabberfarm status)`));
    }, 50);
    component.on("members", onMembers);
    component.on("membership", onMembers);
  });
}
