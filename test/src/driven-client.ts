/**
 * slixmpp clients (Debian's python3-slixmpp) driven step by step from a
 * test: test/interop/slixmpp_driven.py reads one JSON command a line and
 * answers each with one "ok: ..." or "fail: ..." line.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT } from "./farm.js";
import { PYTHON } from "./interop.js";

export class DrivenClients {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly answers: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  /** Everything the driver printed, for a failure's message. */
  transcript = "";

  constructor() {
    this.proc = spawn(PYTHON, [join(ROOT, "test/interop/slixmpp_driven.py")], { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr.setEncoding("utf8").on("data", (d: string) => (this.transcript += d));
    createInterface({ input: this.proc.stdout }).on("line", (line) => {
      this.transcript += `${line}\n`;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      } else this.answers.push(line);
    });
    this.proc.once("close", (code) => this.waiting?.(`fail: the driver exited (${code})`));
  }

  /** Sends one command; resolves with its "ok: " line, throws with its "fail: " line. */
  async step(cmd: Record<string, unknown>): Promise<string> {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const line = this.answers.shift() ?? (await new Promise<string>((resolve) => (this.waiting = resolve)));
    if (!line.startsWith("ok: ")) throw new Error(`${JSON.stringify(cmd)}: ${line}\n--- driver output:\n${this.transcript.slice(-4000)}`);
    return line;
  }

  login(as: string, password: string, at: { host: string; port: number }, timeout = 30): Promise<string> {
    return this.step({ op: "login", as, jid: `${as}@localhost`, password, host: at.host, port: at.port, timeout });
  }

  send(as: string, to: string, body: string): Promise<string> {
    return this.step({ op: "send", as, to: `${to}@localhost`, body });
  }

  expect(as: string, body: string, timeout = 30): Promise<string> {
    return this.step({ op: "expect", as, body, timeout });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.proc.stdin.end(`${JSON.stringify({ op: "quit" })}\n`);
    await new Promise((r) => {
      const t = setTimeout(() => this.proc.kill(), 10_000);
      this.proc.once("close", () => r(clearTimeout(t)));
    });
  }
}
