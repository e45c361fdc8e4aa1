/**
 * A private redis-server for one test file, on a free loopback port, that
 * the test may kill and start again (the shared Redis on 6379 serves other
 * tests and must not be restarted under them).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { startOnFreePort } from "./farm.js";

export class PrivateRedis {
  private proc: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** redis-server cannot bind port 0 and say which it got: a free port, another if it was taken meanwhile. */
  static async start(): Promise<PrivateRedis> {
    return startOnFreePort(async (port) => {
      const r = new PrivateRedis(port);
      await r.restart();
      return r;
    });
  }

  /** Starts it (again) on the same port, empty, as a restarted Redis without persistence is. */
  async restart(): Promise<void> {
    const proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    this.proc = proc;
    const deadline = Date.now() + 10_000;
    // Ours answering, not another server on the port: it must still be running.
    while (!(proc.exitCode === null && (await answers(this.port)) && proc.exitCode === null)) {
      if (proc.exitCode !== null) throw new Error(`redis-server on ${this.port} exited with ${proc.exitCode} (port taken?)`);
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`redis-server on ${this.port} did not start`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** kill -9: gone at once, with everything it held. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.setTimeout(500);
    s.once("connect", () => s.write("PING\r\n"));
    s.once("data", (d) => {
      s.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}
