/**
 * Rooms in xdb, through the generic store operations (docs/storage.md) and
 * no table or operation of their own (docs/muc.md, "Storage"):
 *
 * - each room is a store "user": its bare JID has an account row (made with
 *   credentials nobody can log in with), because the stores write under
 *   that row's lock; destroying the room deletes the account and with it
 *   every store of the room;
 * - `muc.room` (keyed): `config` (JSON), `subject` (JSON), `state`
 *   (`locked` until its creator configured it);
 * - `muc.affiliations` (keyed): bare JID → `{affiliation, nick?, reason?}`;
 * - `muc.history` (archive): the room's messages as broadcast, id = the
 *   stanza id (XEP-0359), `with` = the sender's real bare JID; those older
 *   than `archive.expireAfterDays` are pruned now and then (`prune`);
 * - the service's public room list: `muc.directory` (keyed) of the
 *   pseudo-user `:rooms@SERVICE` (a localpart no room can have, RFC 7622
 *   forbids ':'), localpart → `{name}`.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { ArchiveStore, KeyedStore, ScramCredential, Storage } from "@jabberfarm/xdb";
import { ArchiveWriter, Stores } from "@jabberfarm/xdb";
import type { MucConfig } from "./config.js";
import { Room, type AffiliationEntry, type RoomConfig, type Subject } from "./room.js";

export interface ArchivedMessage {
  nick: string;
  /** The message as broadcast, without `to`. */
  xml: string;
}

/** SCRAM credentials no password derives (random keys): the room's account row exists only for the stores' lock. */
function unusableCredentials(): ScramCredential[] {
  const r = (): string => randomBytes(32).toString("base64");
  return [{ mechanism: "SCRAM-SHA-256", salt: randomBytes(16).toString("base64"), iterations: 4096, storedKey: r(), serverKey: r() }];
}

export class RoomStore {
  private readonly room: KeyedStore;
  private readonly affiliationStore: KeyedStore;
  readonly history: ArchiveStore;
  /**
   * The room messages' appends, batched: every room's messages written
   * while one batch is on its way go together in the next (one round trip
   * and one transaction), so a busy service does not pay one storage round
   * trip per message.
   */
  readonly historyWriter: ArchiveWriter;
  private readonly directory: KeyedStore;
  readonly directoryUser: string;
  private readonly expireAfterMs: number;

  constructor(private readonly storage: Storage, config: MucConfig, log: Logger) {
    const stores = new Stores(storage);
    this.room = stores.openStore("muc.room", { maxKeys: 10, maxValueBytes: 64 * 1024 });
    this.affiliationStore = stores.openStore("muc.affiliations", { maxKeys: config.maxAffiliations, maxValueBytes: 4096 });
    // Only the size of one item is checked at each append: a count limit would count the archive every time.
    this.history = stores.openArchive("muc.history", { maxItemBytes: config.archive.maxItemBytes });
    this.historyWriter = new ArchiveWriter(this.history, {
      // Well within the farm's link limit (1 MiB), as for the users' archive.
      batchMaxItems: 500, batchMaxBytes: 256 * 1024,
      // No count limit: rooms' archives are limited by age (prune), never counted at an append.
      maxItems: Number.MAX_SAFE_INTEGER, trimEvery: Number.POSITIVE_INFINITY,
      maxItemBytes: config.archive.maxItemBytes,
    }, log);
    this.expireAfterMs = config.archive.expireAfterDays * 24 * 3600 * 1000;
    this.directory = stores.openStore("muc.directory", { maxValueBytes: 1024 });
    this.directoryUser = `:rooms@${config.service}`;
  }

  /** Makes the directory's account row once (idempotent). */
  async init(): Promise<void> {
    await this.storage.createAccount(this.directoryUser, unusableCredentials());
  }

  /** The room as stored, or undefined when there is none (or only a half-made one). */
  async load(jid: string): Promise<Room | undefined> {
    const [configText, subjectText, state] = await Promise.all([
      this.room.get(jid, "config"), this.room.get(jid, "subject"), this.room.get(jid, "state"),
    ]);
    if (configText === null) return undefined;
    const affiliations = new Map<string, AffiliationEntry>();
    for await (const e of this.affiliationStore.entries(jid)) affiliations.set(e.key, JSON.parse(e.value) as AffiliationEntry);
    const subject = subjectText === null ? null : (JSON.parse(subjectText) as Subject);
    return new Room(jid, JSON.parse(configText) as RoomConfig, affiliations, subject, state === "locked");
  }

  /** A new room: its account row, configuration, lock and first owner. */
  async create(room: Room, owner: string): Promise<void> {
    await this.storage.createAccount(room.jid, unusableCredentials());
    await this.setAffiliation(room.jid, owner, room.affiliations.get(owner)!);
    await this.room.setMany(room.jid, [
      { key: "config", value: JSON.stringify(room.config) },
      { key: "state", value: room.locked ? "locked" : "open" },
    ]);
  }

  async saveConfig(room: Room): Promise<void> {
    await this.room.setMany(room.jid, [
      { key: "config", value: JSON.stringify(room.config) },
      { key: "state", value: room.locked ? "locked" : "open" },
    ]);
    await this.list(room);
  }

  async saveSubject(room: Room): Promise<void> {
    await this.room.set(room.jid, "subject", room.subject === null ? null : JSON.stringify(room.subject));
  }

  /** Sets (or with none, removes) one affiliation; false when the room holds too many. */
  async setAffiliation(room: string, bare: string, entry: AffiliationEntry | undefined): Promise<boolean> {
    const r = await this.affiliationStore.set(room, bare, entry === undefined ? null : JSON.stringify(entry));
    return r.ok;
  }

  /** The room and everything of it (its account row with every store). */
  async destroy(room: Room): Promise<void> {
    await this.storage.deleteAccount(room.jid);
    await this.directory.set(this.directoryUser, room.localpart, null);
  }

  /** Deletes the room's messages older than the retention; how many went. */
  async prune(room: string): Promise<number> {
    return this.history.delete(room, { before: new Date(Date.now() - this.expireAfterMs).toISOString() });
  }

  /** Keeps the public room list in step with the room's configuration. */
  async list(room: Room): Promise<void> {
    const listed = room.config.public && !room.locked;
    await this.directory.set(this.directoryUser, room.localpart, listed ? JSON.stringify({ name: room.config.name }) : null);
  }

  /** Public rooms, at most `max`. */
  async publicRooms(max: number): Promise<Array<{ localpart: string; name: string }>> {
    const out: Array<{ localpart: string; name: string }> = [];
    for await (const e of this.directory.entries(this.directoryUser)) {
      out.push({ localpart: e.key, name: (JSON.parse(e.value) as { name: string }).name });
      if (out.length >= max) break;
    }
    return out;
  }
}
