/** Reading a farm process's /metrics (Prometheus text exposition) in the end-to-end tests. */
import assert from "node:assert/strict";

/** Samples of one scrape, by `name{labels}` with the labels as exposed, sorted. */
export type Scrape = Map<string, number>;

export function parseExposition(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => `${x[1]}=${x[2]}`).sort();
    out.set(`${m[1]}{${labels.join(",")}}`, Number(m[3]));
  }
  return out;
}

/** GET /metrics on 127.0.0.1:port, parsed. */
export async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

/** One sample's value, by name and every label it carries; throws naming what there is when absent. */
export function sample(s: Scrape, name: string, labels: Record<string, string>): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(",")}}`;
  const v = s.get(key);
  if (v === undefined) throw new Error(`no sample ${key}; have:\n${[...s.keys()].filter((k) => k.startsWith("jabberfarm_")).join("\n")}`);
  return v;
}
