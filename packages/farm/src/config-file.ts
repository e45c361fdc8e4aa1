/**
 * One way in for configuration: a YAML (or JSON) file with a section per
 * process, each section validated by that process's zod schema. A mistake
 * is reported with its key path, the value found and what was expected.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError([`cannot read config file ${path}: ${(e as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError([`${path}: not valid YAML: ${(e as Error).message}`]);
  }
  if (doc === null || doc === undefined) return applyEnvOverrides({});
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError([`${path}: the top level must be a mapping of sections`]);
  return applyEnvOverrides(doc as Record<string, unknown>);
}

export const ENV_PREFIX = "JABBERFARM__";

/** `MAX_STANZA_BYTES` → `maxStanzaBytes`. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * The key at this level that an environment segment names: an existing one
 * (any case, underscores and dots ignored, so `CONFERENCE_LOCALHOST` names
 * the component `conference.localhost`), else its camelCase.
 */
function keyFor(level: Record<string, unknown>, segment: string): string {
  const squashed = segment.replace(/_/g, "").toLowerCase();
  for (const k of Object.keys(level)) if (k.replace(/[_.]/g, "").toLowerCase() === squashed) return k;
  return camel(segment);
}

/**
 * Every value of the farm file can be set from the environment, as Docker
 * and Kubernetes deployments do: `JABBERFARM__C2S__LIMITS__MAX_STANZA_BYTES=
 * 65536` sets `c2s.limits.maxStanzaBytes` (`__` between levels; the value is
 * read as YAML, so numbers, booleans and lists work). A last segment ending
 * in `_FILE` reads the value from that file instead, for secrets mounted as
 * files: `JABBERFARM__ROUTER__COMPONENTS__C2S__SECRET_FILE=/run/secrets/c2s`.
 * The environment wins over the file.
 */
export function applyEnvOverrides(doc: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const problems: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const raw = env[name]!;
    const segments = name.slice(ENV_PREFIX.length).split("__").filter((x) => x.length > 0);
    if (segments.length === 0) continue;
    let last = segments[segments.length - 1]!;
    let value: unknown;
    if (last.endsWith("_FILE")) {
      last = last.slice(0, -"_FILE".length);
      try {
        value = readFileSync(raw, "utf8").replace(/\r?\n$/, "");
      } catch (e) {
        problems.push(`${name}: cannot read ${raw}: ${(e as Error).message}`);
        continue;
      }
    } else {
      try {
        value = parseYaml(raw);
      } catch {
        value = raw;
      }
    }
    let level = doc;
    for (const seg of segments.slice(0, -1)) {
      const k = keyFor(level, seg);
      const next = level[k];
      if (next === undefined || next === null || typeof next !== "object" || Array.isArray(next)) level[k] = {};
      level = level[k] as Record<string, unknown>;
    }
    level[keyFor(level, last)] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return doc;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

/** Validates one section's object (already completed with shared values); `section` names it in errors. */
export function validateSection<S extends z.ZodType>(raw: unknown, section: string, schema: S): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.flatMap((issue) => describe(issue, [], raw, section)));
}

type Issue = z.core.$ZodIssue;

/** One line per problem; a union's mistake is told by its closest alternative, not as "Invalid input". */
function describe(issue: Issue, prefix: PropertyKey[], raw: unknown, section: string): string[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => `${[section, ...path, k].join(".")}: unknown key (value ${show(valueAt(raw, [...path, k]))})`);
  }
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    // The alternative that got furthest into the value is the one meant.
    const depth = (list: Issue[]): number => Math.max(...list.map((i) => i.path.length));
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    if (depth(best) > 0) return best.flatMap((i) => describe(i, path, raw, section));
  }
  return [`${[section, ...path].join(".")}: got ${show(valueAt(raw, path))}; ${issue.message}`];
}
