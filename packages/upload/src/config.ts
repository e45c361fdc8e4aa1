import { z } from "zod";
import { secretSchema } from "@jabberfarm/component";
import { componentLinkFields } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";

const MiB = 1024 * 1024;

const dirBackend = z.object({
  kind: z.literal("dir"),
  /** Where files are kept; one directory shared by every upload process of the farm. */
  path: z.string().min(1).default("./.jabberfarm/uploads"),
}).strict();

const s3Backend = z.object({
  kind: z.literal("s3"),
  /** The object store's URL, `https://s3.eu-west-1.amazonaws.com` or a compatible server's. */
  endpoint: z.string().url(),
  region: z.string().min(1).default("us-east-1"),
  bucket: z.string().min(3).max(63).regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, "an S3 bucket name"),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  /** Keys start with this (default `files/`). */
  prefix: z.string().regex(/^[A-Za-z0-9._/-]*$/).default("files/"),
}).strict();

export const uploadConfigSchema = z.object({
  /** The service's domain, also its component name on the routers: `upload.DOMAIN`. */
  service: z.string().min(1).default("upload.localhost"),
  ...componentLinkFields("upload-1"),
  /** Whose users may ask for slots (default: the service's parent domain). */
  userDomains: z.array(z.string().min(1)).optional(),
  http: z.object({
    /** Where the HTTPS endpoint listens. */
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(5443),
    /**
     * The URL clients reach it by (a proxy or load balancer in front, or the
     * listener itself). Default `https://PARENT-DOMAIN:PORT`. For the
     * self-signed certificate its host must be a name, not an address.
     */
    publicUrl: z.string().url().optional(),
  }).strict().default({ host: "127.0.0.1", port: 5443 }),
  /** PEM files of the certificate; without them one is made for the public URL's host and kept in `dataDir`. */
  tls: z.object({
    cert: z.string().optional(),
    key: z.string().optional(),
    dataDir: z.string().default("./.jabberfarm/upload-tls"),
  }).strict().default({ dataDir: "./.jabberfarm/upload-tls" }),
  /** Signs the upload URLs (HMAC-SHA-256); the same for every upload process of the farm. */
  urlSecret: secretSchema,
  limits: z.object({
    /** Largest file (XEP-0363 max-file-size). */
    maxFileBytes: z.number().int().min(1).default(10 * MiB),
    /** What one user's files may take together until they expire. */
    userQuotaBytes: z.number().int().min(1).default(100 * MiB),
    /** Files one user may have at once (unexpired, and slots not yet used). */
    userMaxFiles: z.number().int().min(1).max(10_000).default(1000),
    /** How long a slot's PUT URL works. */
    slotSeconds: z.number().int().min(10).default(300),
    /** How long files are kept (30 days by default); 0 keeps them for ever. */
    expireAfterSeconds: z.number().int().min(0).default(30 * 24 * 3600),
    /** How often expired files are looked for. */
    sweepSeconds: z.number().int().min(1).default(3600),
  }).strict().default({
    maxFileBytes: 10 * MiB, userQuotaBytes: 100 * MiB, userMaxFiles: 1000, slotSeconds: 300, expireAfterSeconds: 30 * 24 * 3600, sweepSeconds: 3600,
  }),
  /** Where the files are: a directory (default) or an S3-compatible object store. */
  storage: z.discriminatedUnion("kind", [dirBackend, s3Backend]).default({ kind: "dir", path: "./.jabberfarm/uploads" }),
  xdb: z.object({ timeoutMs: z.number().int().positive().default(5000) }).strict().default({ timeoutMs: 5000 }),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type UploadConfigInput = z.input<typeof uploadConfigSchema>;
export type UploadConfig = z.output<typeof uploadConfigSchema>;

export function parentDomain(service: string): string {
  const dot = service.indexOf(".");
  return dot > 0 ? service.slice(dot + 1) : service;
}

export function publicUrlOf(c: UploadConfig): URL {
  const base = c.http.publicUrl ?? `https://${parentDomain(c.service)}:${c.http.port}`;
  const u = new URL(base);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  return u;
}
