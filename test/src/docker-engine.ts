/**
 * A Docker engine for the tests, and docker-compose.yml run as a project.
 *
 * The engine: Debian's docker.io (daemon and CLI of the same version,
 * /usr/bin/docker) with Compose v1 (Debian's docker-compose). When no daemon
 * answers but `dockerd` is installed, it is started the way deploy/README.md
 * describes (no iptables, published ports on 127.0.0.1 by default), with its
 * data root in a fixed directory so images and build caches outlive the run.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { ROOT, waitUntil } from "./farm.js";

/** Debian's CLI matches Debian's daemon (20.10); a newer one elsewhere on PATH may not speak to it. */
export const DOCKER = existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";
export const COMPOSE = "docker-compose";
/** Images, layers and build caches live here between runs (JF_DOCKER_ROOT to move it). */
export const DOCKER_ROOT = process.env.JF_DOCKER_ROOT ?? "/var/lib/jabberfarm-docker";

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a command to its end; never throws (the caller reads `code`). */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    p.once("error", (e) => resolve({ code: -1, out, err: `${err}${e.message}` }));
    p.once("close", (code) => resolve({ code, out, err }));
    p.stdin.end(opts.input ?? "");
  });
}

/** Like `run`, but a non-zero exit throws with the command and its output. */
export async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}\n${r.err || r.out}`.slice(0, 8000));
  return r.out;
}

const installed = (name: string): boolean => spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
const answers = (): boolean => spawnSync(DOCKER, ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore", timeout: 20_000 }).status === 0;

/**
 * Why this machine has no usable engine, or undefined when it has one
 * (a daemon answers, or `dockerd` is installed and can be started).
 */
export function missingEngine(): string | undefined {
  if (!answers() && !installed("dockerd")) return "no Docker engine: `docker info` does not answer and dockerd is not installed (apt-get install docker.io docker-compose debootstrap)";
  if (!installed(COMPOSE)) return "a Docker engine but no docker-compose (apt-get install docker-compose)";
  return undefined;
}

/** Makes sure a daemon answers, starting dockerd (detached, it stays for the next run) when none does. */
export async function ensureDaemon(): Promise<void> {
  if (answers()) return;
  mkdirSync(DOCKER_ROOT, { recursive: true });
  const log = openSync(join(DOCKER_ROOT, "dockerd.log"), "a");
  const d = spawn("dockerd", [
    "--iptables=false", "--ip-forward=false", "--ip=127.0.0.1", "--storage-driver=overlay2",
    `--data-root=${join(DOCKER_ROOT, "data")}`, "--exec-root=/var/run/jabberfarm-docker", "--pidfile=/var/run/jabberfarm-docker.pid",
  ], { detached: true, stdio: ["ignore", log, log] });
  d.unref();
  await waitUntil(`dockerd answers (log: ${join(DOCKER_ROOT, "dockerd.log")})`, 60_000, () => answers(), 500);
}

export interface ServiceContainer {
  id: string;
  name: string;
  service: string;
  number: number;
  health: string;
  state: string;
}

/** One `docker-compose -p NAME -f docker-compose.yml -f OVERRIDE` project. */
export class ComposeProject {
  constructor(readonly name: string, readonly files: string[], readonly env: NodeJS.ProcessEnv) {}

  compose(args: string[], input?: string): Promise<string> {
    return must(COMPOSE, ["--ansi", "never", "-p", this.name, ...this.files.flatMap((f) => ["-f", f]), ...args], { env: this.env, input });
  }

  /** Every container of the project (stopped ones too), from Docker's labels. */
  async containers(): Promise<ServiceContainer[]> {
    const ids = (await must(DOCKER, ["ps", "-aq", "--filter", `label=com.docker.compose.project=${this.name}`])).split("\n").filter(Boolean);
    if (ids.length === 0) return [];
    // Docker's JSON, not a template: a container without a health check has no State.Health at all.
    const all = JSON.parse(await must(DOCKER, ["inspect", ...ids])) as Array<{
      Id: string; Name: string; Config: { Labels: Record<string, string> }; State: { Status: string; Health?: { Status: string } };
    }>;
    return all.map((c) => ({
      id: c.Id, name: c.Name.replace(/^\//, ""), service: c.Config.Labels["com.docker.compose.service"]!,
      number: Number(c.Config.Labels["com.docker.compose.container-number"]), state: c.State.Status, health: c.State.Health?.Status ?? "none",
    }));
  }

  async container(service: string, number = 1): Promise<ServiceContainer> {
    const c = (await this.containers()).find((x) => x.service === service && x.number === number);
    if (!c) throw new Error(`no container ${service} #${number} in ${this.name}`);
    return c;
  }

  /** Waits until every running container with a health check is healthy and the one-shots have exited 0. */
  async healthy(ms: number): Promise<ServiceContainer[]> {
    return waitUntil(`every container of ${this.name} healthy`, ms, async () => {
      const all = await this.containers();
      const broken = all.find((c) => c.state === "exited" && c.service !== "certificate");
      if (broken) throw new Error(`${broken.name} exited:\n${(await run(DOCKER, ["logs", "--tail", "30", broken.id])).err}`);
      return all.length > 0 && all.every((c) => c.health === "healthy" || (c.health === "none" && c.service === "certificate" && c.state === "exited")) && all;
    }, 1000);
  }

  /** The host address a container's port is published on ("127.0.0.1:PORT"). */
  async published(service: string, port: number, number = 1): Promise<{ host: string; port: number }> {
    const out = (await this.compose(["port", `--index=${number}`, service, String(port)])).trim();
    const m = /^(.+):(\d+)$/.exec(out);
    if (!m) throw new Error(`${service} #${number} does not publish ${port}: '${out}'`);
    return { host: m[1]!, port: Number(m[2]) };
  }

  /** The farm CLI inside a running container (`jabberfarm ARGS --config /etc/jabberfarm/farm.yaml`). */
  cli(container: ServiceContainer, args: string[], input?: string): Promise<string> {
    return must(DOCKER, ["exec", "-i", container.id, "node", "/app/packages/farm/dist/cli.js", ...args, "--config", "/etc/jabberfarm/farm.yaml"], { input });
  }
}
