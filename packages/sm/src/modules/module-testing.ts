/**
 * Helpers for the module tests (not a module). Availability is the presence
 * module's business; these tests must not depend on whether it is loaded or
 * finished, so when no module marks a session available they do what it would:
 * set the flags and fire presence/initial in the user's queue.
 */
import type { RosterItem } from "@jabberfarm/xdb";
import { ModuleStores, type ArchiveStore, type KeyedStore } from "../module-store.js";
import { delay, type SmTestFarm, type TestSession } from "../testing.js";

const presenceWorks = new WeakMap<SmTestFarm, boolean>();

/** Opens a session, sends initial presence with `priority`, and returns once the SM has fully processed it. */
export async function availableSession(farm: SmTestFarm, fullJid: string, priority = 0): Promise<TestSession> {
  const presence = priority === 0 ? "<presence/>" : `<presence><priority>${priority}</priority></presence>`;
  const t = await farm.driver.online(fullJid, presence);
  const sm = farm.sm.sm;
  const session = sm.sessions.get(t.sid);
  if (!session) throw new Error(`${fullJid}: no session on the SM`);
  const known = presenceWorks.get(farm);
  const deadline = Date.now() + (known === undefined ? 1000 : known ? 3000 : 0);
  while (!session.available && Date.now() < deadline) await delay(5);
  if (session.available) {
    presenceWorks.set(farm, true);
    if (session.priority !== priority) throw new Error(`${fullJid}: priority ${session.priority}, expected ${priority}`);
  } else {
    if (known === true) throw new Error(`${fullJid}: the presence module did not make the session available`);
    presenceWorks.set(farm, false);
    await sm.serial(session.bare, async () => {
      session.available = true;
      session.priority = priority;
      await sm.initialPresence(session);
    });
  }
  // Everything queued for the user so far (presence/initial and its handlers) is done after this.
  await sm.serial(session.bare, async () => undefined);
  return t;
}

/** Polls until `check` holds (for effects that happen after a stanza was routed). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

export const isMessage = (e: { name: string }): boolean => e.name === "message";

/** A module's keyed store, read directly (as the module would, without a module). */
export function keyedStore(farm: SmTestFarm, name: string): KeyedStore {
  return new ModuleStores(farm.storage).openStore(name);
}

/** A module's archive, read directly. */
export function archiveStore(farm: SmTestFarm, name: string): ArchiveStore {
  return new ModuleStores(farm.storage).openArchive(name);
}

/** One item of a user's stored roster, or null. */
export async function storedRosterItem(farm: SmTestFarm, user: string, jid: string): Promise<RosterItem | null> {
  return (await farm.storage.getRoster(user)).items.find((i) => i.jid === jid) ?? null;
}
