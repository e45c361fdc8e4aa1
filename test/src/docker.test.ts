/**
 * `docker compose up` for real (issue 18): the image built from
 * deploy/Dockerfile, docker-compose.yml run with three c2s replicas, slixmpp
 * clients from the host through the published ports (127.0.0.1 only).
 * Two users on different replicas chat; a c2s told to stop sends its client
 * to another replica (see-other-host naming an address the host reaches);
 * an SM killed loses no message; after `down` and `up` the accounts and an
 * offline message are still there.
 *
 * Runs when JF_DOCKER=1 asks for it (`pnpm test:docker`), and then needs a
 * Docker engine (a daemon that answers, or dockerd installed; it is started
 * when needed) with docker-compose, or it fails saying so; base images come
 * from deploy/standins/ where no registry can be reached. Otherwise it is
 * skipped with a message: it takes 2.5–4 minutes with the images built and
 * 6 from nothing, and its 16 containers load two cores to a load average of
 * 20–27, which the rest of `pnpm test` must not share inside CI's 15 minutes
 * (deploy/README.md).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ComposeProject, DOCKER, ensureDaemon, missingEngine, must, type ServiceContainer } from "./docker-engine.js";
import { DrivenClients } from "./driven-client.js";
import { ROOT } from "./farm.js";

const asked = process.env.JF_DOCKER === "1";
const missing = asked ? missingEngine() : "not asked for (JF_DOCKER=1 or `pnpm test:docker` runs it)";
const PASSWORD = "compose-pw-1";

if (missing !== undefined && asked) {
  test("docker compose farm (JF_DOCKER=1)", () => assert.fail(`JF_DOCKER=1 asks for the Docker test, but ${missing}`));
}

/**
 * The override a deployment would write: real secrets instead of the
 * shipped placeholders, host ports the OS picks (still on 127.0.0.1), and
 * health checks every second (as patient as the shipped ones) so the farm
 * is up sooner.
 */
function writeOverride(dir: string): string {
  const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
    services: Record<string, { image?: string; environment?: Record<string, string>; healthcheck?: { test: string[] } }>;
  };
  const services: Record<string, unknown> = {};
  // One value per variable, the same in every service (a router and its components share each).
  const real = new Map<string, string>();
  const secretOf = (k: string) => real.get(k) ?? real.set(k, randomBytes(24).toString("hex")).get(k)!;
  for (const [name, svc] of Object.entries(compose.services)) {
    const secrets = Object.fromEntries(Object.keys(svc.environment ?? {}).filter((k) => /SECRET$/.test(k)).map((k) => [k, secretOf(k)]));
    services[name] = {
      ...(Object.keys(secrets).length > 0 ? { environment: secrets } : {}),
      ...(svc.healthcheck && svc.healthcheck.test[0] !== "NONE" ? { healthcheck: { interval: "1s", retries: 90 } } : {}),
    };
  }
  const file = join(dir, "docker-compose.test.yml");
  writeFileSync(file, JSON.stringify({ version: "2.4", services }, null, 1));
  return file;
}

describe("docker-compose.yml with three c2s replicas", { skip: missing === undefined ? false : asked ? `${missing}: the failure above` : `skipped: ${missing}`, timeout: 30 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "jf-compose-"));
  const project = new ComposeProject(`jftest${process.pid}${randomBytes(3).toString("hex")}`, [join(ROOT, "docker-compose.yml")], {
    ...process.env,
    // Host ports from the OS, on 127.0.0.1 (docker-compose.yml's defaults are 5222..., 5443, 5269).
    JF_C2S_STARTTLS_PORTS: "127.0.0.1:",
    JF_UPLOAD_PORT: "127.0.0.1:",
    JF_S2S_PORT: "127.0.0.1:",
    C2S_ADVERTISE_HOST: "",
  });
  let clients: DrivenClients | undefined;
  const replica = (n: number) => project.published("c2s", 5222, n);
  const up = async () => {
    try {
      await project.compose(["up", "-d", "--no-build", "--scale", "c2s=3"]);
      return await project.healthy(240_000);
    } catch (e) {
      const ps = await project.compose(["ps"]).catch(() => "");
      const logs = await project.compose(["logs", "--no-color", "--tail", "15"]).catch(() => "");
      throw new Error(`${(e as Error).message}\n${ps}\n${logs.slice(-12_000)}`);
    }
  };

  before(async () => {
    await ensureDaemon();
    await must(join(ROOT, "deploy/standins/build.sh"), [], { env: { ...process.env, DOCKER } });
    await must(DOCKER, ["build", "--network=host", "-q", "-f", "deploy/Dockerfile", "-t", "jabberfarm:latest", "."]);
    project.files.push(writeOverride(dir));
    await up();
  });

  after(async () => {
    await clients?.close();
    // Volumes too: the next run starts from nothing.
    await project.compose(["down", "-v", "--remove-orphans", "--timeout", "5"]).catch((e: Error) => console.error(e.message));
    rmSync(dir, { recursive: true, force: true });
  });

  test("everything is published on 127.0.0.1 only, each router names itself, one certificate for all", async () => {
    const ports = await must(DOCKER, ["ps", "--filter", `label=com.docker.compose.project=${project.name}`, "--format", "{{.Ports}}"]);
    const bindings = ports.split(/[\n,]/).map((s) => s.trim()).filter((s) => s.includes("->"));
    assert.ok(bindings.length >= 3 * 3 + 3, `c2s x3 (STARTTLS, TLS, WebSocket), upload, s2s x2 published: ${bindings.join(" ")}`);
    for (const b of bindings) assert.match(b, /^127\.0\.0\.1:\d+->/, `published on loopback only: ${b}`);
    const status = await project.cli(await project.container("xdb"), ["status", "--json"]);
    assert.match(status, /"router-1"/);
    assert.match(status, /"router-2"/);
    assert.doesNotMatch(status, /0\.0\.0\.0:5347/);
    // One certificate for the domain, made by the one-shot service: no c2s or s2s makes its own.
    const logs = await project.compose(["logs", "--no-color", "c2s", "s2s1", "s2s2"]);
    assert.doesNotMatch(logs, /generated a self-signed certificate/);
  });

  test("accounts made with the CLI in a container; two users on different c2s replicas chat", async () => {
    const xdb = await project.container("xdb");
    for (const user of ["ann", "ben", "carl"]) await project.cli(xdb, ["adduser", `${user}@localhost`], `${PASSWORD}\n`);
    clients = new DrivenClients();
    await clients.login("ann", PASSWORD, await replica(1));
    await clients.login("ben", PASSWORD, await replica(2));
    await clients.send("ann", "ben", "hello from replica 1");
    await clients.expect("ben", "hello from replica 1");
    await clients.send("ben", "ann", "and back from replica 2");
    await clients.expect("ann", "and back from replica 2");
  });

  test("a c2s stopped with SIGTERM sends its client to another replica, at an address the host reaches", async () => {
    const first = await project.container("c2s", 1);
    const others = await Promise.all([2, 3].map((n) => project.container("c2s", n)));
    const addresses = await Promise.all(others.map(async (c) => (await must(DOCKER, ["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.id])).trim()));
    const redirected = clients!.step({ op: "expect_redirect", as: "ann", timeout: 60 });
    await must(DOCKER, ["stop", "--time", "30", first.id]); // SIGTERM, then the grace period
    const line = await redirected;
    const to = (JSON.parse(line.slice(line.indexOf("{"))) as { to: string }).to;
    assert.ok(addresses.some((a) => to === `${a}:5222`), `redirected to another replica's own address (${to}; replicas ${addresses.join(", ")})`);
    await clients!.send("ann", "ben", "after the redirect");
    await clients!.expect("ben", "after the redirect");
    await clients!.send("ben", "ann", "seen after the redirect");
    await clients!.expect("ann", "seen after the redirect");
  });

  test("an SM killed loses no message", async () => {
    const sessions = JSON.parse(await project.cli(await project.container("xdb"), ["sessions", "ben@localhost", "--json"])) as { sessions: Array<{ sm: string }> };
    const n = /sm-(\d)/.exec(sessions.sessions[0]?.sm ?? "")?.[1] ?? "1";
    const sm: ServiceContainer = await project.container(`sm${n}`);
    await must(DOCKER, ["kill", "--signal", "KILL", sm.id]);
    const bodies = [1, 2, 3, 4, 5].map((i) => `while sm${n} is gone ${i}`);
    for (const b of bodies) await clients!.send("ann", "ben", b);
    for (const b of bodies) await clients!.expect("ben", b, 60);
    await clients!.send("ben", "ann", "after the SM died");
    await clients!.expect("ann", "after the SM died", 60);
  });

  test("down and up again: the accounts and an offline message are still there", async () => {
    await clients!.send("ann", "carl", "kept while the farm was down");
    // The message is stored once the sender's SM has it; a later stanza on the same stream follows it.
    await clients!.send("ann", "ben", "sent after the offline one");
    await clients!.expect("ben", "sent after the offline one");
    await clients!.close();
    clients = undefined;
    await project.compose(["down", "--timeout", "20"]);
    assert.deepEqual(await project.containers(), [], "down removed every container (not the volumes)");
    await up();
    assert.match(await project.compose(["logs", "--no-color", "certificate"]), /reused certificate/, "the domain's certificate outlived the containers");
    clients = new DrivenClients();
    await clients.login("carl", PASSWORD, await replica(3));
    await clients.expect("carl", "kept while the farm was down");
    await clients.login("ann", PASSWORD, await replica(1));
    await clients.send("carl", "ann", "the accounts survived");
    await clients.expect("ann", "the accounts survived");
  });
});
