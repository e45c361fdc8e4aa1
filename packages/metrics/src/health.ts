/**
 * The HTTP side of a farm process for its operators: Prometheus scrapes
 * /metrics, an orchestrator probes /healthz (the process runs) and /readyz
 * (it can do its work). Plain node:http, loopback unless told otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics.js";

export interface HealthServerOptions {
  /** Default 127.0.0.1: the endpoints tell more about the farm than clients should know. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  metrics: Metrics;
  /** Whether the process can serve now; a throw or a hang counts as not ready. */
  ready: () => boolean | Promise<boolean>;
  /** How long /readyz waits for `ready()` (default 2 s). */
  readyTimeoutMs?: number;
}

export interface HealthServer {
  readonly host: string;
  readonly port: number;
  /** Stops listening and drops open keep-alive connections. */
  close(): Promise<void>;
}

const PATHS = new Set(["/metrics", "/healthz", "/readyz"]);

export async function startHealthServer(o: HealthServerOptions): Promise<HealthServer> {
  const readyTimeoutMs = o.readyTimeoutMs ?? 2000;

  const isReady = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(o.ready),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), readyTimeoutMs))),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  };

  const answer = (res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void => {
    res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
    res.end(res.req.method === "HEAD" ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    if (!PATHS.has(path)) return answer(res, 404, "not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return answer(res, 405, "method not allowed\n");
    }
    switch (path) {
      case "/healthz":
        return answer(res, 200, "ok\n");
      case "/readyz":
        return (await isReady()) ? answer(res, 200, "ready\n") : answer(res, 503, "not ready\n");
      default:
        return answer(res, 200, await o.metrics.exposition(), o.metrics.contentType);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) answer(res, 500, `${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  // A scraper's idle keep-alive connection must not hold up a stopping process.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: o.host ?? "127.0.0.1", port: o.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    host: addr.address,
    port: addr.port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
