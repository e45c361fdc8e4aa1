/**
 * Account administration from the command line, working while the farm
 * runs: through the router to xdb when a router answers, else straight on
 * the storage (a stopped embedded farm, or Postgres).
 */
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Logger } from "pino";
import { Component } from "@jabberfarm/component";
import { Jid } from "@jabberfarm/jid";
import { deriveCredentialsAsync } from "@jabberfarm/sasl";
import { openStorage, XdbClient, type Storage } from "@jabberfarm/xdb";
import type { Doc } from "./farm-config.js";
import { xdbServed, type Say } from "./farm-wait.js";

export interface AdminStorage {
  storage: Storage;
  via: "router" | "direct";
  close(): Promise<void>;
}

/**
 * Storage for an account command: through a router to xdb (waiting up to
 * `waitMs` for an xdb to be served, as while the farm starts), else directly.
 */
export async function openAdminStorage(cli: Doc, log: Logger, waitMs = 30_000, say: Say = () => {}): Promise<AdminStorage> {
  const routers = cli.routers as Array<{ host: string; port: number }>;
  const secret = cli.secret as string | undefined;
  if (secret) {
    const instance = `cli-${process.pid}`;
    const component = new Component({ name: "cli", secret, instance, routers, backoff: { initialMs: 100, maxMs: 500 } });
    const client = new XdbClient((t) => component.send(t), `cli/${instance}`, { timeoutMs: 10_000 });
    component.on("stanza", (el) => void client.handleResponse(el));
    try {
      await component.start(1500);
      await component.allLinked(1500);
    } catch {
      component.crash();
      log.debug("no router answered; opening the storage directly");
    }
    if (component.isUp) {
      try {
        await xdbServed(component, waitMs, say);
      } catch (err) {
        await component.stop();
        throw err;
      }
      return { storage: client, via: "router", close: () => component.stop() };
    }
  }
  const storage = await openStorage({
    databaseUrl: typeof cli.databaseUrl === "string" ? cli.databaseUrl : undefined,
    dataDir: `${typeof cli.dataDir === "string" ? cli.dataDir : "./.jabberfarm"}/db`,
  });
  return { storage, via: "direct", close: () => storage.close() };
}

/** The account's bare JID, normalised; throws with a readable message. */
export function accountJid(arg: string | undefined, domain: string): string {
  if (!arg) throw new Error("give the account as USER@DOMAIN");
  const jid = Jid.tryParse(arg.includes("@") ? arg : `${arg}@${domain}`);
  if (!jid || jid.local === "" || jid.resource !== "") throw new Error(`'${arg}' is not an account JID (USER@DOMAIN)`);
  return jid.bareString();
}

/** The password: the first line of stdin when it is not a terminal, else asked twice without echo. */
export async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    throw new Error("no password on standard input");
  }
  const ask = (q: string): Promise<string> => new Promise((resolve) => {
    let muted = false;
    const out = new Writable({
      write(chunk, _enc, cb) {
        if (!muted) process.stderr.write(chunk);
        cb();
      },
    });
    const rl = createInterface({ input: process.stdin, output: out, terminal: true });
    rl.question(q, (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    });
    muted = true;
  });
  const first = await ask(prompt);
  const again = await ask("again: ");
  if (first !== again) throw new Error("the passwords do not match");
  return first;
}

export async function addUser(storage: Storage, user: string, password: string): Promise<boolean> {
  if (password.length === 0) throw new Error("the password is empty");
  return storage.createAccount(user, await deriveCredentialsAsync(password));
}

export async function changePassword(storage: Storage, user: string, password: string): Promise<boolean> {
  if (password.length === 0) throw new Error("the password is empty");
  return storage.setCredentials(user, await deriveCredentialsAsync(password));
}
