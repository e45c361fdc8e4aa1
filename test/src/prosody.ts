/**
 * A real Prosody (Debian's `prosody` package, 0.12) for the federation
 * tests: started from the test as a plain process (not the system
 * service) with a config written to a temp dir, listening on loopback
 * ports picked by the test, resolving domains through the test's DNS zone
 * (lua-unbound, forwarding to it).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitUntil } from "./farm.js";

export const PROSODY = "/usr/bin/prosody";
export const PROSODYCTL = "/usr/bin/prosodyctl";

export interface ProsodyOptions {
  domain: string;
  /** The test zone's DNS server, host:port. */
  dns: { host: string; port: number };
  cert: string;
  key: string;
  /** CA file for verifying the other side; with it, `s2s_secure_auth` is on (certificates must be valid). */
  cafile?: string;
  users: Array<{ user: string; password: string }>;
}

export class Prosody {
  readonly dir = mkdtempSync(join(tmpdir(), "jf-prosody-"));
  c2sPort = 0;
  s2sPort = 0;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor(private readonly o: ProsodyOptions) {}

  get configPath(): string {
    return join(this.dir, "prosody.cfg.lua");
  }

  get log(): string {
    const p = join(this.dir, "prosody.log");
    return existsSync(p) ? readFileSync(p, "utf8") : "";
  }

  private config(): string {
    const q = (s: string): string => JSON.stringify(s);
    const o = this.o;
    const ssl = `{ certificate = ${q(o.cert)}; key = ${q(o.key)};${o.cafile ? ` cafile = ${q(o.cafile)};` : ""} }`;
    return `-- written by test/src/prosody.ts
run_as_root = true
daemonize = false
pidfile = ${q(join(this.dir, "prosody.pid"))}
data_path = ${q(join(this.dir, "data"))}
admin_socket = ${q(join(this.dir, "prosody.sock"))}
log = { debug = ${q(join(this.dir, "prosody.log"))} }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${this.c2sPort} }
s2s_ports = { ${this.s2sPort} }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence"; "message"; "iq"; "offline"; "posix"; "smacks" }
modules_disabled = { "s2s_bidi"; "carbons"; "pep"; "vcard_legacy"; "bookmarks"; "http"; "admin_shell" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = ${o.cafile ? "true" : "false"}
s2s_timeout = 20
certificates = ${q(join(this.dir, "certs"))}
ssl = ${ssl}
unbound = { resolvconf = false; hoststxt = false; forward = ${q(`${o.dns.host}@${o.dns.port}`)}; options = { ["do-not-query-localhost:"] = "no" } }
VirtualHost ${q(o.domain)}
  ssl = ${ssl}
`;
  }

  /** Writes the config, registers the users, starts Prosody; resolves once its c2s and s2s ports answer. */
  async start(): Promise<void> {
    this.c2sPort = await freePort();
    this.s2sPort = await freePort();
    mkdirSync(join(this.dir, "data"), { recursive: true });
    mkdirSync(join(this.dir, "certs"), { recursive: true });
    writeFileSync(this.configPath, this.config());
    for (const u of this.o.users) {
      execFileSync(PROSODYCTL, ["--config", this.configPath, "register", u.user, this.o.domain, u.password], { stdio: "pipe" });
    }
    const proc = spawn(PROSODY, ["-F", "--config", this.configPath], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    const answers = (port: number): Promise<boolean> => new Promise((resolve) => {
      const s = connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    await waitUntil(`prosody listening (output: ${out}; log: ${this.log.slice(-2000)})`, 20_000, async () => {
      if (proc.exitCode !== null) throw new Error(`prosody exited ${proc.exitCode}: ${out}\n${this.log.slice(-3000)}`);
      return (await answers(this.c2sPort)) && (await answers(this.s2sPort));
    }, 100);
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

/** A certificate made by openssl, self-signed for `domain` (no CA will vouch for it). */
export function selfSigned(dir: string, domain: string): { cert: string; key: string } {
  const cert = join(dir, `${domain}.selfsigned.crt`);
  const key = join(dir, `${domain}.selfsigned.key`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
    "-subj", `/CN=${domain}`, "-addext", `subjectAltName=DNS:${domain}`, "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key };
}
