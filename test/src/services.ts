/**
 * A private PostgreSQL server for the fault tests, which stop and start it:
 * the shared one on 5432 serves other tests at the same time and must not
 * be touched (redis-server.ts is the same for Redis). It runs on a free
 * loopback port (another one if that was taken before it bound it) with its
 * data in a temporary directory, gone after
 * `destroy()`. And `redis-cli`, to look into a farm's Redis.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startOnFreePort } from "./farm.js";

const run = promisify(execFile);

/** `redis-cli` against `url` (redis://host:port/db); resolves with its raw output. */
export async function redisCli(url: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-u", url, "--raw", ...args], { timeout: 5000 });
  return stdout;
}

function postgresBin(name: string): string {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", name))).sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], "bin", name);
  }
  return name; // on the PATH, or the spawn fails and says so
}

/**
 * A PostgreSQL cluster of our own (initdb + pg_ctl, trust authentication on
 * loopback, fsync off: its data only has to survive a clean restart).
 * PostgreSQL refuses to run as root; as root it runs as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(readonly dir: string, private portNumber: number) {}

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private static asOwner(cmd: string, args: string[]): [string, string[]] {
    return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  }

  private async pg(name: string, args: string[], timeoutMs = 60_000): Promise<void> {
    const [cmd, a] = PrivatePostgres.asOwner(postgresBin(name), args);
    try {
      await run(cmd, a, { timeout: timeoutMs });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${name} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "jf-pg-"));
    if (userInfo().uid === 0) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    const p = new PrivatePostgres(dir, 0);
    await p.pg("initdb", ["-D", join(dir, "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
    // PostgreSQL cannot bind port 0 and say which it got: a free port, another if it was taken meanwhile.
    await startOnFreePort(async (port) => {
      p.portNumber = port;
      await p.start();
    });
    return p;
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await this.pg("pg_ctl", ["-D", join(this.dir, "data"), "-l", join(this.dir, "log"), "-w", "-t", "60", "-o", opts, "start"]);
  }

  /** `pg_ctl stop` (fast: every session is ended, as in a restart). */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.pg("pg_ctl", ["-D", join(this.dir, "data"), "-m", mode, "-w", "-t", "60", "stop"]);
  }

  async destroy(): Promise<void> {
    await this.stop("immediate").catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
