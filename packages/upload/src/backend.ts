/**
 * Where uploaded files are kept: a directory (dir-backend.ts) or an
 * S3-compatible object store (s3-backend.ts), behind one interface so the
 * HTTP side and the expiry sweep do not care which.
 */
import type { Readable } from "node:stream";

export interface FileMeta {
  /** The uploader's bare JID (for the quota ledger when the file expires). */
  owner: string;
  name: string;
  /** "" when the uploader named none. */
  type: string;
  size: number;
  /** ISO time of the upload. */
  created: string;
}

export interface StoredFile {
  meta: FileMeta;
  body: Readable;
}

export interface FileBackend {
  /**
   * Stores `body` (exactly `meta.size` bytes, or it fails) under `id`;
   * "exists" when a file has that id already: a slot is used once.
   */
  put(id: string, body: Readable, meta: FileMeta): Promise<"stored" | "exists">;
  /** The file and its metadata, or undefined. With `head`, the body is empty. */
  get(id: string, head?: boolean): Promise<StoredFile | undefined>;
  exists(id: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  /** Files stored before `before`, with their metadata. */
  olderThan(before: Date): AsyncIterable<{ id: string; meta: FileMeta | undefined }>;
}

/** Counts the bytes of a stream and fails it past `limit`. */
export class SizeError extends Error {
  constructor(readonly got: number, readonly wanted: number) {
    super(`the body has ${got > wanted ? "more" : "fewer"} bytes than announced (${wanted})`);
  }
}
