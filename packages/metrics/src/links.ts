import { kindOfText } from "./kinds.js";
import type { Metrics } from "./metrics.js";

/** What a farm process's Component offers (packages/component), structurally. */
export interface RouterLinkSource {
  readonly liveLinks: readonly unknown[];
  /** Bytes queued on its router links. */
  readonly queuedBytes: number;
  on(event: "up", listener: (link: { readonly label: string }) => void): unknown;
  on(event: "down", listener: (link: unknown, reason: LinkCloseReason) => void): unknown;
  /** True once the process asked its links to close (stopping): those closes are not counted. */
  readonly stopping?: boolean;
}

/** Why a link closed (packages/component CloseReason, structurally). */
export interface LinkCloseReason {
  error?: { condition: string } | undefined;
  socketError?: string | undefined;
}

/** The `reason` label of jabberfarm_link_closed_total for a close. */
export function linkCloseLabel(r: LinkCloseReason): string {
  return r.error?.condition ?? (r.socketError !== undefined ? "socket" : "closed");
}

/**
 * The metrics of a process's links to its routers: connections{kind="router"},
 * their queued bytes, and router_reconnects_total. Call it before the
 * component starts, so the first link of each router is not taken for a
 * reconnect.
 */
export function watchRouterLinks(metrics: Metrics, links: RouterLinkSource): void {
  const reconnects = metrics.routerReconnects;
  const seen = new Set<string>();
  links.on("up", (link) => {
    if (seen.has(link.label)) reconnects.inc();
    else seen.add(link.label);
  });
  links.on("down", (_link, reason) => {
    if (!links.stopping) metrics.linkClosed.inc({ reason: linkCloseLabel(reason) });
  });
  metrics.connections("router", () => links.liveLinks.length);
  metrics.queueBytes(() => links.queuedBytes);
}

export interface ProbeOptions {
  /** A check slower than this counts as failed (default 1 s). */
  timeoutMs?: number;
  /** How long an answer is reused (default 1 s), so probes from several scrapers cost one check. */
  cacheMs?: number;
}

/**
 * Wraps a dependency check for a readiness endpoint: true when `check`
 * settles without throwing within the timeout. Answers are cached, and
 * callers arriving while a check runs share it.
 */
export function cachedProbe(check: () => Promise<unknown>, o: ProbeOptions = {}): () => Promise<boolean> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const cacheMs = o.cacheMs ?? 1000;
  let last: { ok: boolean; at: number } | undefined;
  let running: Promise<boolean> | undefined;
  const run = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const ok = await Promise.race([
        check().then(() => true, () => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
          timer.unref();
        }),
      ]);
      last = { ok, at: performance.now() };
      return ok;
    } finally {
      clearTimeout(timer);
      running = undefined;
    }
  };
  return () => {
    if (last !== undefined && performance.now() - last.at < cacheMs) return Promise.resolve(last.ok);
    return (running ??= run());
  };
}

/**
 * A component's `send`, counting what leaves by kind when metrics are on
 * (and exactly the plain `send` when they are off: nothing on the hot path).
 */
export function countedSend(component: { send(text: string): boolean }, metrics: Metrics | undefined): (text: string) => boolean {
  const out = metrics?.stanzasOut;
  if (out === undefined) return (t) => component.send(t);
  return (t) => {
    out.add(kindOfText(t));
    return component.send(t);
  };
}
