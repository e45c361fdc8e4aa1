// Errors carry a stable `code` so the xdb service can map them onto stanza
// errors (invalid-argument -> bad-request, unknown-account and item-not-found
// -> item-not-found, the rest -> internal-server-error)
// without matching on message text.

export type XdbErrorCode = "unknown-account" | "invalid-argument" | "item-not-found" | "schema-too-new" | "data-dir-in-use";

export class XdbError extends Error {
  readonly code: XdbErrorCode;
  constructor(code: XdbErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class UnknownAccountError extends XdbError {
  readonly user: string;
  constructor(user: string, options?: ErrorOptions) {
    super("unknown-account", `no such account: ${user}`, options);
    this.user = user;
  }
}

export class InvalidArgumentError extends XdbError {
  constructor(message: string) {
    super("invalid-argument", message);
  }
}

/** A read named an item (an archive id to page from) that is not there. */
export class ItemNotFoundError extends XdbError {
  constructor(message: string) {
    super("item-not-found", message);
  }
}

export class SchemaTooNewError extends XdbError {
  readonly databaseVersion: number;
  readonly knownVersion: number;
  constructor(databaseVersion: number, knownVersion: number, detail: string) {
    super(
      "schema-too-new",
      `database schema is at migration ${databaseVersion} but this xdb only knows up to ${knownVersion} ` +
        `(${detail}); refusing to touch it, upgrade jabberfarm instead`,
    );
    this.databaseVersion = databaseVersion;
    this.knownVersion = knownVersion;
  }
}

export class DataDirInUseError extends XdbError {
  readonly dataDir: string;
  readonly pid: number;
  constructor(dataDir: string, pid: number) {
    super(
      "data-dir-in-use",
      `PGlite data directory ${dataDir} is already open in process ${pid}; ` +
        "PGlite is single-process, use PostgreSQL to run several xdb processes",
    );
    this.dataDir = dataDir;
    this.pid = pid;
  }
}
