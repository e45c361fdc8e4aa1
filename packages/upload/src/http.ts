/**
 * The HTTPS side of XEP-0363: PUT to a signed slot URL (checked: signature,
 * expiry, name, Content-Length against the slot's size, Content-Type
 * against its type, the slot unused), GET and HEAD of a file by its id,
 * with CORS for web clients (XEP-0363 §6) and headers that keep a browser
 * from running what someone uploaded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { SizeError, type FileBackend } from "./backend.js";
import { FILE_ID, verifySlot, type Slot } from "./slot-token.js";

export interface HttpDeps {
  secret: string;
  backend: FileBackend;
  /** Path prefix of the public URL (`/` or `/upload/`). */
  basePath: string;
  /** Files older than this many seconds are gone (0: never). */
  expireAfterSeconds: number;
  onStored(slot: Slot): Promise<void>;
  log: Logger;
}

/** Types a browser may show in place; everything else is offered as a download. */
const INLINE = /^(image\/(png|jpeg|gif|webp|avif)|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+|text\/plain)$/;

function cors(res: ServerResponse): void {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "Content-Type");
}

function finish(res: ServerResponse, status: number, text = ""): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function uploadHandler(d: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    cors(res);
    void route(d, req, res).catch((err: unknown) => {
      d.log.error({ err: (err as Error).message, method: req.method, url: req.url?.slice(0, 200) }, "upload request failed");
      finish(res, 500, "internal error\n");
    });
  };
}

async function route(d: HttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "https://x").pathname;
  if (!path.startsWith(d.basePath)) return finish(res, 404, "not found\n");
  const parts = path.slice(d.basePath.length).split("/");
  if (req.method === "OPTIONS") {
    res.writeHead(204);
    res.end();
    return;
  }
  if (parts.length !== 3) return finish(res, 404, "not found\n");
  const [kind, key, rawName] = parts as [string, string, string];
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch {
    return finish(res, 400, "bad file name\n");
  }
  if (kind === "u" && req.method === "PUT") return put(d, req, res, key, name);
  if (kind === "f" && (req.method === "GET" || req.method === "HEAD")) return get(d, req, res, key, name);
  if (kind === "u" || kind === "f") return finish(res, 405, "method not allowed\n");
  finish(res, 404, "not found\n");
}

async function put(d: HttpDeps, req: IncomingMessage, res: ServerResponse, token: string, name: string): Promise<void> {
  const slot = verifySlot(d.secret, token);
  if (slot === "invalid") return finish(res, 403, "not a valid upload URL\n");
  if (slot === "expired") return finish(res, 403, "this upload URL has expired\n");
  if (slot.name !== name) return finish(res, 403, "the file name does not match the slot\n");
  const length = req.headers["content-length"];
  if (length === undefined) return finish(res, 411, "Content-Length is required\n");
  const n = Number(length);
  if (n > slot.size) return finish(res, 413, `the slot is for ${slot.size} bytes\n`);
  if (n !== slot.size) return finish(res, 400, `the slot is for ${slot.size} bytes\n`);
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (slot.type !== "" && type !== slot.type) return finish(res, 415, `the slot is for ${slot.type}\n`);
  try {
    const r = await d.backend.put(slot.id, req, { owner: slot.owner, name: slot.name, type: slot.type || type, size: slot.size, created: new Date().toISOString() });
    if (r === "exists") return finish(res, 409, "this slot has been used\n");
  } catch (err) {
    if (err instanceof SizeError) return finish(res, 400, `${err.message}\n`);
    throw err;
  }
  await d.onStored(slot).catch((err: unknown) => d.log.warn({ err: (err as Error).message, id: slot.id }, "stored a file; its ledger entry not updated"));
  d.log.info({ id: slot.id, owner: slot.owner, size: slot.size }, "file uploaded");
  finish(res, 201, "");
}

async function get(d: HttpDeps, req: IncomingMessage, res: ServerResponse, id: string, name: string): Promise<void> {
  if (!FILE_ID.test(id)) return finish(res, 404, "not found\n");
  const file = await d.backend.get(id, req.method === "HEAD");
  const expired = file !== undefined && d.expireAfterSeconds > 0 && Date.parse(file.meta.created) + d.expireAfterSeconds * 1000 < Date.now();
  if (file === undefined || file.meta.name !== name || expired) {
    file?.body.destroy();
    return finish(res, 404, "not found\n");
  }
  const type = file.meta.type || "application/octet-stream";
  res.writeHead(200, {
    "Content-Type": type,
    "Content-Length": file.meta.size,
    "Content-Disposition": `${INLINE.test(type) ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(file.meta.name)}`,
    // What was uploaded is never run as a page of this origin.
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "public, max-age=604800, immutable",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  file.body.on("error", () => res.destroy());
  file.body.pipe(res);
}
