/**
 * The deployment files, checked by reading them (docker.test.ts runs them
 * where a Docker engine is available): every process command
 * they run exists in the CLI, every JABBERFARM__ variable names a real key,
 * and each process's configuration (the image's farm file plus the
 * environment the file gives it) passes that process's zod schema, with
 * ports and health checks matching the configuration.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { c2sConfigSchema } from "@jabberfarm/c2s";
import { ConfigError, TOP_LEVEL_KEYS, readConfigFile, sectionFor, validateSection } from "@jabberfarm/farm";
import { routerConfigSchema } from "@jabberfarm/router";
import { mucConfigSchema } from "@jabberfarm/muc";
import { smConfigSchema } from "@jabberfarm/sm";
import { uploadConfigSchema } from "@jabberfarm/upload";
import { s2sConfigSchema } from "@jabberfarm/s2s";
import { xdbConfigSchema } from "@jabberfarm/xdb";
import { ROOT } from "./farm.js";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";

const SCHEMAS = {
  router: routerConfigSchema, xdb: xdbConfigSchema, sm: smConfigSchema, c2s: c2sConfigSchema, muc: mucConfigSchema, upload: uploadConfigSchema,
  s2s: s2sConfigSchema,
} as const;
type Kind = keyof typeof SCHEMAS;
const IMAGE_CONFIG = "/etc/jabberfarm/farm.yaml";
const dockerfile = readFileSync(join(ROOT, "deploy/Dockerfile"), "utf8");

/** The repository file the image holds at `path` (from the Dockerfile's COPY lines). */
function imageFile(path: string): string {
  const m = new RegExp(`^COPY\\s+(\\S+)\\s+${path.replace(/[/.]/g, "\\$&")}\\s*$`, "m").exec(dockerfile);
  assert.ok(m, `the Dockerfile copies something to ${path}`);
  return join(ROOT, m[1]!);
}

/** A compose port entry with its `${VAR:-default}` parts as shipped (the defaults). */
const shippedPort = (entry: string): string => entry.replace(/\$\{\w+:-([^}]*)\}/g, "$1");

/** A shipped placeholder (docker-compose.yml, the k8s Secret), as an operator replaces it. */
const realSecret = (placeholder: string): string => `real-${placeholder.replace(/^change-me-/, "")}-0123456789abcdef`;

/**
 * Validates one process as the image would run it: command line and
 * environment. The deploy files ship placeholder secrets, which every
 * process refuses: `env` as shipped must fail on them, naming the key; then
 * `realEnv` (the same with real secrets) must pass.
 */
function checkProcess(where: string, argv: string[], env: Record<string, string>, realEnv: Record<string, string> = env): Record<string, unknown> {
  const [kind] = argv;
  try {
    validateProcess(where, argv, env);
    assert.fail(`${where}: starts with the shipped placeholder secrets`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assert.ok(e.problems.length > 0 && e.problems.every((p) => /[sS]ecret: got "[^"]*"; a placeholder from the example files/.test(p)),
      `${where}: refused for its placeholder secrets only:\n${e.problems.join("\n")}`);
    assert.ok(e.problems.some((p) => p.startsWith(kind === "router" ? "router.components." : `${kind}.secret`)), `${where}: names the key`);
  }
  return validateProcess(where, argv, realEnv);
}

function validateProcess(where: string, argv: string[], env: Record<string, string>): Record<string, unknown> {
  const [kind, flag, file] = argv;
  assert.ok(kind !== undefined && kind in SCHEMAS, `${where}: '${kind}' is a process command of the CLI`);
  assert.equal(flag, "--config", `${where}: runs with --config`);
  assert.equal(file, IMAGE_CONFIG, `${where}: reads the image's farm file`);
  for (const name of Object.keys(env)) {
    if (!name.startsWith("JABBERFARM__")) continue;
    const top = name.slice("JABBERFARM__".length).split("__")[0]!.replace(/_FILE$/, "").replace(/_/g, "").toLowerCase();
    assert.ok([...TOP_LEVEL_KEYS].some((k) => k.toLowerCase() === top), `${where}: ${name} names a farm key`);
  }
  const saved = { ...process.env };
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith("JABBERFARM__")) delete process.env[k];
    Object.assign(process.env, env);
    const doc = readConfigFile(imageFile(IMAGE_CONFIG));
    return validateSection(sectionFor(doc, kind as Kind), kind!, SCHEMAS[kind as Kind]) as Record<string, unknown>;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe("deploy files", () => {
  test("the Dockerfile copies only what exists, and its entry point is the built CLI", () => {
    for (const m of dockerfile.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+\s*$/gm)) {
      for (const src of m[1]!.trim().split(/\s+/)) assert.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists`);
    }
    const entry = /^ENTRYPOINT \["node", "\/app\/(.+)"\]/m.exec(dockerfile);
    assert.ok(entry && existsSync(join(ROOT, entry[1]!)), "ENTRYPOINT runs a file the build produces");
    assert.ok(existsSync(join(ROOT, ".dockerignore")));
  });

  test("docker-compose.yml: every farm service's command, environment, ports and health check", () => {
    const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
      services: Record<string, { image?: string; command?: string[]; entrypoint?: string[]; environment?: Record<string, string>; ports?: string[]; volumes?: string[]; healthcheck?: { test: string[] } }>;
    };
    const kinds = new Map<string, number>();
    const routerInstances: string[] = [];
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const p of svc.ports ?? []) assert.match(shippedPort(p), /^127\.0\.0\.1:[\d-]*:\d+$/, `${name}: publishes ${p} on 127.0.0.1 only`);
      if (svc.image !== "jabberfarm:latest") continue;
      const env: Record<string, string> = { ...(svc.environment ?? {}) };
      let argv = svc.command ?? [];
      if (argv[0] === "certificate") {
        // The one-shot that makes the domain's certificate in the volume every c2s replica mounts.
        assert.deepEqual(argv.slice(1), ["--config", IMAGE_CONFIG]);
        assert.ok(svc.volumes?.includes("tls:/var/lib/jabberfarm/tls") && compose.services.c2s?.volumes?.includes("tls:/var/lib/jabberfarm/tls"), "certificate and c2s share the tls volume");
        const realEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, /SECRET$/.test(k) ? realSecret(v) : v]));
        const c2s = checkProcess(`compose service ${name}`, ["c2s", ...argv.slice(1)], env, realEnv);
        assert.equal((c2s.tls as { dataDir: string }).dataDir, "/var/lib/jabberfarm/tls");
        continue;
      }
      if (svc.entrypoint?.[0] === "sh") {
        // `VAR=value exec node .../cli.js c2s --config ...`: the variables it sets, then the CLI's arguments.
        const line = svc.entrypoint[2]!.replace(/\$\$HOSTNAME/g, "a1b2c3d4e5f6").replace(/\$\$\{C2S_ADVERTISE_HOST:-\$\$\(hostname -i\)\}/g, "172.18.0.7");
        for (const m of line.matchAll(/(JABBERFARM__\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
        argv = line.slice(line.indexOf("cli.js") + "cli.js".length).trim().split(/\s+/);
      }
      const realEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, /SECRET$/.test(k) ? realSecret(v) : v]));
      const config = checkProcess(`compose service ${name}`, argv, env, realEnv);
      kinds.set(argv[0]!, (kinds.get(argv[0]!) ?? 0) + 1);
      const metrics = config.metrics as { port: number } | undefined;
      assert.ok(metrics, `${name}: serves /readyz for its health check`);
      assert.match(svc.healthcheck?.test.join(" ") ?? "", new RegExp(`/dev/tcp/127\\.0\\.0\\.1/${metrics.port} .*GET /readyz`), `${name}: the health check asks the metrics port`);
      if (argv[0] === "c2s") {
        const listeners = config.listeners as { starttls: { port: number }; directTls: { port: number }; websocket: { port: number } };
        assert.ok(listeners.websocket, "the WebSocket listener is on");
        assert.deepEqual(svc.ports?.map((p) => p.split(":").pop()), [String(listeners.starttls.port), String(listeners.directTls.port), String(listeners.websocket.port)], "c2s publishes its listener ports");
        // The first replica on the standard port, the others next to it (README: point a client at localhost).
        assert.equal(shippedPort(svc.ports![0]!), "127.0.0.1:5222-5231:5222");
        assert.match((config.redirect as { advertise: string }).advertise, /^172\.18\.0\.7:5222$/, "a redirect names the replica's own address");
        assert.ok(svc.volumes?.includes("tls:/var/lib/jabberfarm/tls"), "c2s keeps its certificate in the shared volume");
      }
      if (argv[0] === "upload") {
        assert.deepEqual(svc.ports?.map((p) => p.split(":").pop()), [String((config.http as { port: number }).port)], "upload publishes its HTTPS port");
      }
      if (argv[0] === "router") routerInstances.push(String(config.instance));
      if (argv[0] === "s2s") {
        const port = String((config.listen as { port: number }).port);
        assert.ok(svc.ports?.some((p) => p.split(":").pop() === port), "s2s publishes its server-to-server port");
        assert.equal((config.tls as { dataDir: string }).dataDir, "/var/lib/jabberfarm/tls", "s2s presents the domain's one certificate");
        assert.ok(svc.volumes?.includes("tls:/var/lib/jabberfarm/tls"), "s2s mounts the tls volume");
      }
      if (argv[0] !== "router") {
        assert.equal((config.routers as unknown[]).length, 2, `${name}: linked to both routers`);
      }
    }
    assert.deepEqual(Object.fromEntries(kinds), { router: 2, xdb: 1, sm: 2, c2s: 1, muc: 2, upload: 1, s2s: 2 },
      "two routers, one xdb, two SMs, a scalable c2s, two muc processes, an upload service, two s2s");
    assert.ok(compose.services.postgres && compose.services.redis);
    assert.deepEqual(routerInstances, ["router-1", "router-2"], "each router names itself");
  });

  test("deploy/k8s: every object passes the Kubernetes API's schema (kubernetes-models: types and required fields, not unknown keys)", () => {
    const models: Record<string, new (data: any) => { validate(): void }> = { Secret, ConfigMap, Service, Deployment, StatefulSet };
    const docs = parseAllDocuments(readFileSync(join(ROOT, "deploy/k8s/jabberfarm.yaml"), "utf8")).map((d) => d.toJS() as Record<string, any>);
    for (const d of docs) {
      const Model = models[d.kind];
      assert.ok(Model, `${d.kind} ${d.metadata?.name}: a kind this test knows`);
      assert.doesNotThrow(() => new Model(d).validate(), `${d.kind} ${d.metadata?.name} is valid`);
    }
  });

  test("deploy/k8s: every container's args, environment (ConfigMap, Secret files, pod name) and ports", () => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, "deploy/k8s/jabberfarm.yaml"), "utf8")).map((d) => d.toJS() as Record<string, any>);
    const configMap = docs.find((d) => d.kind === "ConfigMap")!.data as Record<string, string>;
    const secret = docs.find((d) => d.kind === "Secret")!.stringData as Record<string, string>;
    // The Secret, mounted as files, for the *_FILE variables.
    const mount = mkdtempSync(join(tmpdir(), "jf-k8s-secrets-"));
    const realMount = mkdtempSync(join(tmpdir(), "jf-k8s-real-secrets-"));
    for (const [k, v] of Object.entries(secret)) {
      writeFileSync(join(mount, k), v);
      writeFileSync(join(realMount, k), k === "database-url" ? v : realSecret(v));
    }
    const kinds: string[] = [];
    for (const d of docs.filter((x) => x.kind === "Deployment" || x.kind === "StatefulSet")) {
      for (const c of d.spec.template.spec.containers as Array<Record<string, any>>) {
        const envWith = (dir: string): Record<string, string> => {
          const env: Record<string, string> = {};
          for (const [k, v] of Object.entries(configMap)) env[k] = v.replace("/run/secrets/jabberfarm", dir);
          for (const e of (c.env ?? []) as Array<{ name: string; value?: string; valueFrom?: unknown }>) env[e.name] = e.value ?? `${d.metadata.name}-0`;
          return env;
        };
        const config = checkProcess(`k8s ${d.kind} ${d.metadata.name}`, c.args as string[], envWith(mount), envWith(realMount));
        kinds.push(c.args[0]);
        const ports = (c.ports as Array<{ containerPort: number }>).map((p) => p.containerPort);
        assert.ok(ports.includes((config.metrics as { port: number }).port), `${d.metadata.name}: exposes its metrics port`);
        assert.equal(c.readinessProbe.httpGet.port, (config.metrics as { port: number }).port);
        if (c.args[0] === "c2s") {
          const l = config.listeners as { starttls: { port: number }; directTls: { port: number }; websocket: { port: number } };
          assert.ok(ports.includes(l.starttls.port) && ports.includes(l.directTls.port) && ports.includes(l.websocket.port), "c2s exposes its listeners");
          // Every pod presents the domain's one certificate, from the TLS Secret.
          const tls = config.tls as { cert?: string; key?: string };
          const mountOf = (path: string | undefined) => (c.volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => path?.startsWith(`${m.mountPath}/`));
          const volume = (d.spec.template.spec.volumes as Array<{ name: string; secret?: { secretName: string } }>).find((v) => v.name === mountOf(tls.cert)?.name);
          assert.equal(volume?.secret?.secretName, "jabberfarm-tls");
          assert.ok(tls.cert?.endsWith("/tls.crt") && tls.key?.endsWith("/tls.key") && mountOf(tls.key)?.name === volume?.name);
        }
        if (c.args[0] === "router") {
          assert.ok(ports.includes(config.port as number), "router exposes its component port");
          assert.equal(config.instance, `${d.metadata.name}-0`, "each router names itself: its pod name");
        }
        if (c.args[0] === "upload") assert.ok(ports.includes((config.http as { port: number }).port), "upload exposes its HTTPS port");
        if (c.args[0] === "s2s") {
          assert.ok(ports.includes((config.listen as { port: number }).port), "s2s exposes its server-to-server port");
          assert.deepEqual([(config.tls as { cert?: string }).cert, (config.tls as { key?: string }).key], ["/run/secrets/jabberfarm-tls/tls.crt", "/run/secrets/jabberfarm-tls/tls.key"]);
        }
      }
    }
    assert.deepEqual(kinds.sort(), ["c2s", "muc", "router", "s2s", "sm", "upload", "xdb"]);
  });
});
