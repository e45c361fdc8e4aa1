/**
 * Files in an S3-compatible object store, path-style
 * (`ENDPOINT/BUCKET/PREFIX+ID`), metadata in `x-amz-meta-*` headers. The
 * upload process streams PUTs and GETs through; clients never talk to the
 * store. A slot is used once: a PUT looks first whether the object exists
 * (two PUTs of one slot racing on two processes could both pass that
 * check; the second would replace the first with the same size and type).
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FileBackend, FileMeta, StoredFile } from "./backend.js";
import { countingLimit } from "./dir-backend.js";
import { signRequest, uriEncode, type Credentials } from "./sigv4.js";
import { FILE_ID } from "./slot-token.js";

export interface S3Options extends Credentials {
  endpoint: string;
  bucket: string;
  prefix: string;
}

export class S3Backend implements FileBackend {
  private readonly base: URL;

  constructor(private readonly o: S3Options) {
    this.base = new URL(o.endpoint);
  }

  private async send(method: string, key: string | undefined, opts: { query?: Record<string, string>; headers?: Record<string, string>; body?: Readable } = {}): Promise<IncomingMessage> {
    const path = `${this.base.pathname.replace(/\/$/, "")}/${uriEncode(this.o.bucket)}${key === undefined ? "/" : `/${uriEncode(key, true)}`}`;
    const query = opts.query ?? {};
    const headers: Record<string, string> = { host: this.base.host, ...(opts.headers ?? {}) };
    const signed = signRequest(this.o, method, path, query, headers);
    const qs = Object.keys(query).map((k) => `${uriEncode(k)}=${uriEncode(query[k]!)}`).join("&");
    const request = this.base.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request({
        method, host: this.base.hostname, port: this.base.port || undefined, path: qs ? `${path}?${qs}` : path,
        headers: { ...headers, ...signed },
      }, resolve);
      req.on("error", reject);
      if (opts.body) pipeline(opts.body, req).catch(reject);
      else req.end();
    });
  }

  private key(id: string): string {
    if (!FILE_ID.test(id)) throw new Error("not a file id");
    return this.o.prefix + id;
  }

  private async failed(res: IncomingMessage, what: string): Promise<never> {
    let text = "";
    for await (const c of res) text += String(c);
    throw new Error(`S3 ${what}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
  }

  async put(id: string, body: Readable, meta: FileMeta): Promise<"stored" | "exists"> {
    if (await this.exists(id)) return "exists";
    const res = await this.send("PUT", this.key(id), {
      body: body.pipe(countingLimit(meta.size)),
      headers: {
        "content-length": String(meta.size),
        "content-type": meta.type || "application/octet-stream",
        "x-amz-meta-owner": encodeURIComponent(meta.owner),
        "x-amz-meta-name": encodeURIComponent(meta.name),
        "x-amz-meta-type": encodeURIComponent(meta.type),
        "x-amz-meta-created": meta.created,
      },
    });
    if (res.statusCode !== 200) return this.failed(res, "PUT");
    res.resume();
    return "stored";
  }

  private metaOf(res: IncomingMessage): FileMeta {
    const h = (n: string): string => decodeURIComponent(String(res.headers[`x-amz-meta-${n}`] ?? ""));
    return { owner: h("owner"), name: h("name"), type: h("type"), size: Number(res.headers["content-length"] ?? 0), created: h("created") };
  }

  async get(id: string, head = false): Promise<StoredFile | undefined> {
    if (!FILE_ID.test(id)) return undefined;
    const res = await this.send(head ? "HEAD" : "GET", this.key(id));
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) return this.failed(res, head ? "HEAD" : "GET");
    const meta = this.metaOf(res);
    if (head) res.resume();
    return { meta, body: head ? Readable.from([]) : res };
  }

  async exists(id: string): Promise<boolean> {
    return (await this.get(id, true)) !== undefined;
  }

  async delete(id: string): Promise<void> {
    const res = await this.send("DELETE", this.key(id));
    res.resume();
    if (res.statusCode !== 204 && res.statusCode !== 200 && res.statusCode !== 404) await this.failed(res, "DELETE");
  }

  async *olderThan(before: Date): AsyncIterable<{ id: string; meta: FileMeta | undefined }> {
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const query: Record<string, string> = { "list-type": "2", prefix: this.o.prefix, "max-keys": "1000" };
      if (token !== undefined) query["continuation-token"] = token;
      const res = await this.send("GET", undefined, { query });
      if (res.statusCode !== 200) await this.failed(res, "list");
      let xml = "";
      for await (const c of res) xml += String(c);
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = /<Key>([^<]*)<\/Key>/.exec(m[1]!)?.[1] ?? "";
        const modified = Date.parse(/<LastModified>([^<]*)<\/LastModified>/.exec(m[1]!)?.[1] ?? "");
        const id = key.slice(this.o.prefix.length);
        if (!FILE_ID.test(id) || !(modified < before.getTime())) continue;
        yield { id, meta: (await this.get(id, true))?.meta };
      }
      token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
      if (token === undefined || !/<IsTruncated>true<\/IsTruncated>/.test(xml)) return;
    }
  }
}
