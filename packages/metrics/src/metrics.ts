/**
 * One process's metrics: its own prom-client registry with the Node.js
 * process metrics, `process` and `instance` on every sample, and the farm's
 * few metrics, each registered the first time a process asks for it (so a
 * process exposes only what it measures).
 *
 * Per-stanza counting never goes through prom-client: its `inc()` hashes the
 * label set on every call. Stanza counters are plain arrays indexed by kind,
 * and gauges are read from the process's own state; both are copied into
 * the registry only when it is scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { STANZA_KINDS, type KindIndex } from "./kinds.js";

export interface MetricsOptions {
  /** The process's role: router, c2s, sm, xdb. */
  process: string;
  /** Its instance id (c2s-1, sm-1...; the router's listen address). */
  instance: string;
  /** Node.js process metrics (CPU, memory, event loop lag...); default true. */
  processMetrics?: boolean;
}

/** Stanzas counted by kind; `add` is the whole cost on the hot path. */
export class KindCounter {
  readonly counts = new Float64Array(STANZA_KINDS.length);

  add(kind: KindIndex): void {
    this.counts[kind]! += 1;
  }

  get(kind: KindIndex): number {
    return this.counts[kind]!;
  }
}

// Routing inside one router takes microseconds unless it is overloaded.
const ROUTING_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
// A database round trip, or one through the routers to xdb and back.
const STORAGE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Metrics {
  readonly registry = new Registry();
  readonly process: string;
  readonly instance: string;
  private readonly connectionSources = new Map<string, () => number>();
  private readonly sessionSources: Array<() => number> = [];
  private readonly queueSources: Array<() => number> = [];
  private stanzasInCounter: KindCounter | undefined;
  private stanzasOutCounter: KindCounter | undefined;
  private authFailuresCounter: Counter<"reason"> | undefined;
  private redirectsCounter: Counter | undefined;
  private refusedCounter: Counter<"reason"> | undefined;
  private bansCounter: Counter<"kind"> | undefined;
  private reconnectsCounter: Counter | undefined;
  private linkClosedCounter: Counter<"reason"> | undefined;
  private routingHistogram: Histogram | undefined;
  private storageHistogram: Histogram<"op"> | undefined;

  constructor(o: MetricsOptions) {
    this.process = o.process;
    this.instance = o.instance;
    this.registry.setDefaultLabels({ process: o.process, instance: o.instance });
    if (o.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "jabberfarm_" });
  }

  /** The text exposition format, as GET /metrics serves it. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- counters ------------------------------------------------------------

  /** Top-level elements read, by kind: jabberfarm_stanzas_in_total{kind}. */
  get stanzasIn(): KindCounter {
    return (this.stanzasInCounter ??= this.kindCounter("jabberfarm_stanzas_in_total", "Stanzas read, by kind (a route envelope counts as the stanza it carries)."));
  }

  /** Top-level elements written, by kind: jabberfarm_stanzas_out_total{kind}. */
  get stanzasOut(): KindCounter {
    return (this.stanzasOutCounter ??= this.kindCounter("jabberfarm_stanzas_out_total", "Stanzas written, by kind (a route envelope counts as the stanza it carries)."));
  }

  /** Failed SASL authentications by condition: jabberfarm_auth_failures_total{reason}. */
  get authFailures(): Counter<"reason"> {
    return (this.authFailuresCounter ??= new Counter({
      name: "jabberfarm_auth_failures_total",
      help: "Failed SASL authentications, by SASL failure condition.",
      labelNames: ["reason"],
      registers: [this.registry],
    }));
  }

  /** Clients sent to another c2s with see-other-host: jabberfarm_redirects_total. */
  get redirects(): Counter {
    return (this.redirectsCounter ??= new Counter({
      name: "jabberfarm_redirects_total",
      help: "Client streams redirected to another c2s (see-other-host).",
      registers: [this.registry],
    }));
  }

  /** Client connections refused before their stream began, by reason: jabberfarm_refused_connections_total{reason}. */
  get refusedConnections(): Counter<"reason"> {
    return (this.refusedCounter ??= new Counter({
      name: "jabberfarm_refused_connections_total",
      help: "Client connections refused before their stream began (banned, per-address, max-connections, not-ready).",
      labelNames: ["reason"],
      registers: [this.registry],
    }));
  }

  /** Failed-authentication bans begun, by kind (address, account): jabberfarm_auth_bans_total{kind}. */
  get authBans(): Counter<"kind"> {
    return (this.bansCounter ??= new Counter({
      name: "jabberfarm_auth_bans_total",
      help: "Bans begun after too many failed authentications, by kind (address, account).",
      labelNames: ["kind"],
      registers: [this.registry],
    }));
  }

  /** Router links that came up again after going down: jabberfarm_router_reconnects_total. */
  get routerReconnects(): Counter {
    return (this.reconnectsCounter ??= new Counter({
      name: "jabberfarm_router_reconnects_total",
      help: "Links to a router that came up again after they had gone down.",
      registers: [this.registry],
    }));
  }

  /**
   * Links between farm processes (a process's link to a router, a router's
   * to a farm process) that closed while the process was not stopping, by
   * reason (a stream error condition, `socket` for a dropped connection,
   * `closed` for a clean close): jabberfarm_link_closed_total{reason}. Bad
   * input from a client or an external component must never move it.
   */
  get linkClosed(): Counter<"reason"> {
    return (this.linkClosedCounter ??= new Counter({
      name: "jabberfarm_link_closed_total",
      help: "Links between farm processes that closed while not stopping, by reason (stream error condition, socket, closed).",
      labelNames: ["reason"],
      registers: [this.registry],
    }));
  }

  // ---- histograms -------------------------------------------------------------

  /** Router: seconds from reading a stanza to queueing it for its receiver (sampled). */
  get routingSeconds(): Histogram {
    return (this.routingHistogram ??= new Histogram({
      name: "jabberfarm_routing_seconds",
      help: "Seconds from the read that brought a stanza to its forward (or error answer), for one stanza in 64.",
      buckets: ROUTING_BUCKETS,
      registers: [this.registry],
    }));
  }

  /** xdb: seconds per storage operation; elsewhere: the round trip to xdb. */
  get storageSeconds(): Histogram<"op"> {
    return (this.storageHistogram ??= new Histogram({
      name: "jabberfarm_storage_seconds",
      help: "Seconds per storage operation (in xdb: the database; elsewhere: the round trip to xdb).",
      labelNames: ["op"],
      buckets: STORAGE_BUCKETS,
      registers: [this.registry],
    }));
  }

  // ---- gauges, read at scrape time ----------------------------------------------

  /** jabberfarm_connections{kind}: `read` is called on every scrape. */
  connections(kind: string, read: () => number): void {
    if (this.connectionSources.size === 0) {
      const sources = this.connectionSources;
      new Gauge({
        name: "jabberfarm_connections",
        help: "Open connections, by kind (client: client streams on c2s; component, pending: components on a router; router: live links to routers).",
        labelNames: ["kind"],
        registers: [this.registry],
        collect() {
          for (const [k, fn] of sources) this.set({ kind: k }, fn());
        },
      });
    }
    this.connectionSources.set(kind, read);
  }

  /** jabberfarm_sessions: the sum of every source, read on every scrape. */
  sessions(read: () => number): void {
    if (this.sessionSources.length === 0) this.sumGauge("jabberfarm_sessions", "Sessions: bound client sessions on c2s, registered sessions on an sm.", this.sessionSources);
    this.sessionSources.push(read);
  }

  /** jabberfarm_queue_bytes: the sum of every source, read on every scrape. */
  queueBytes(read: () => number): void {
    if (this.queueSources.length === 0) this.sumGauge("jabberfarm_queue_bytes", "Bytes written by the process that its sockets have not sent yet.", this.queueSources);
    this.queueSources.push(read);
  }

  /**
   * Confirmed delivery (docs/envelope.md): jabberfarm_unconfirmed (held, not
   * yet acknowledged), jabberfarm_resent_total, jabberfarm_duplicates_dropped_total;
   * read on every scrape from the process's sender and receiver.
   */
  confirmation(read: () => { unconfirmed: number; resent: number; duplicates: number }): void {
    new Gauge({
      name: "jabberfarm_unconfirmed", help: "Routes sent and held until their receiver acknowledges them.", registers: [this.registry],
      collect() {
        this.set(read().unconfirmed);
      },
    });
    new Counter({
      name: "jabberfarm_resent_total", help: "Routes sent again because no acknowledgement came (a router or receiver went away).", registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read().resent);
      },
    });
    new Counter({
      name: "jabberfarm_duplicates_dropped_total", help: "Routes received a second time (a resend) and dropped.", registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read().duplicates);
      },
    });
  }

  private sumGauge(name: string, help: string, sources: Array<() => number>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        let sum = 0;
        for (const fn of sources) sum += fn();
        this.set(sum);
      },
    });
  }

  private kindCounter(name: string, help: string): KindCounter {
    const counter = new KindCounter();
    new Counter({
      name,
      help,
      labelNames: ["kind"],
      registers: [this.registry],
      collect() {
        // Every kind from the first scrape on, zeros included, so rate() has a start.
        this.reset();
        for (let k = 0; k < STANZA_KINDS.length; k++) this.inc({ kind: STANZA_KINDS[k]! }, counter.counts[k]!);
      },
    });
    return counter;
  }
}
