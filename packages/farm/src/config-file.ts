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
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError([`${path}: the top level must be a mapping of sections`]);
  return doc as Record<string, unknown>;
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

/** Validates `doc[section]` with `schema`; throws ConfigError listing every problem. */
export function configSection<S extends z.ZodType>(doc: Record<string, unknown>, section: string, schema: S): z.output<S> {
  return validateSection(doc[section] ?? {}, section, schema);
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
