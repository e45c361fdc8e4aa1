/**
 * The group chat service of one muc process: stanzas to the service and
 * to rooms, each room's work in order, rooms loaded from xdb (with their
 * occupants from Redis) when a stanza for one arrives, and dropped from
 * memory when the rendezvous rule gives them to another muc process
 * (docs/muc.md).
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { Jid } from "@jabberfarm/jid";
import { canBounce, stanzaErrorReply, xml, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import { fanOut } from "./broadcast.js";
import { userDomainsOf, type MucConfig } from "./config.js";
import type { MucContext } from "./context.js";
import { RoomIq } from "./iq.js";
import { onMessage } from "./messages.js";
import { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_PING } from "./ns.js";
import type { OccupantStore } from "./occupant-store.js";
import { onPresence } from "./presence.js";
import { defaultRoomConfig } from "./room-config.js";
import { Room } from "./room.js";
import type { RoomStore } from "./room-store.js";
import { SerialQueue } from "./serial-queue.js";
import { NS, parseTrusted } from "@jabberfarm/xml";
import type { ArchivedMessage } from "./room-store.js";

export interface MucOutlet {
  /** Sends one element's text; false when no router is reachable. */
  send(text: string): boolean;
  /** Whether the text fits the routers' links (packages/component `fits`). */
  fits(text: string): boolean;
}

/** Replayed after a takeover at most: what a dead owner archived and may not have broadcast. */
const MAX_REPLAY = 200;

export class MucService implements MucContext {
  readonly rooms = new Map<string, Room>();
  readonly queue = new SerialQueue();
  private readonly iq: RoomIq;
  private readonly userDomains: ReadonlySet<string>;
  private members: Array<{ rendezvousId: string; rendezvousSeed: number }> = [];
  /** Messages sent and dropped for their size, for the logs and metrics. */
  oversized = 0;

  constructor(
    readonly config: MucConfig,
    readonly store: RoomStore,
    readonly occupantStore: OccupantStore | undefined,
    private readonly outlet: MucOutlet,
    readonly log: Logger,
  ) {
    this.iq = new RoomIq(this);
    this.userDomains = new Set(userDomainsOf(config));
  }

  // ---- MucContext ----------------------------------------------------------

  send(el: Element): void {
    this.sendText(el.toString());
  }

  sendText(text: string): void {
    if (!this.outlet.fits(text)) {
      this.oversized++;
      this.log.warn({ bytes: Buffer.byteLength(text) }, "a stanza too large for the farm's links was not sent");
      return;
    }
    this.outlet.send(text);
  }

  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void {
    if (!canBounce(stanza)) return;
    const reply = stanzaErrorReply(stanza, condition, text === undefined ? {} : { text });
    delete reply.attrs.xmlns;
    this.send(reply);
  }

  mayCreate(bare: string): boolean {
    const how = this.config.createRooms;
    if (how === "anyone") return true;
    if (how === "nobody") return false;
    return this.userDomains.has(bare.slice(bare.indexOf("@") + 1));
  }

  async createRoom(jid: string, owner: string): Promise<Room> {
    const localpart = jid.slice(0, jid.indexOf("@"));
    const room = new Room(jid, defaultRoomConfig(this.config, localpart), new Map([[owner, { affiliation: "owner" }]]), null, true);
    await this.store.create(room, owner);
    this.rooms.set(jid, room);
    this.log.info({ room: jid, owner }, "room created");
    return room;
  }

  async destroyRoom(room: Room): Promise<void> {
    this.rooms.delete(room.jid);
    this.occupantStore?.drop(room.jid);
    await this.store.destroy(room);
    this.log.info({ room: room.jid }, "room destroyed");
  }

  newId(): string {
    return randomBytes(16).toString("base64url");
  }

  // ---- stanzas ---------------------------------------------------------------

  /** One stanza from the routers (not an envelope answer). */
  handle(el: Element): void {
    const to = el.attrs.to === undefined ? null : Jid.tryParse(el.attrs.to);
    const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
    if (to === null || from === null) {
      if (el.attrs.from !== undefined) this.error(el, "jid-malformed", "the address is not a JID");
      return;
    }
    if (to.local === "") {
      void this.serviceStanza(el, from).catch((err: unknown) => this.failed(el, err));
      return;
    }
    const roomJid = to.bareString();
    void this.queue.run(roomJid, () => this.roomStanza(roomJid, el, to.resource, from)).catch((err: unknown) => this.failed(el, err));
  }

  private async roomStanza(roomJid: string, el: Element, nick: string, from: Jid): Promise<void> {
    this.log.trace({ room: roomJid, element: el.name, id: el.attrs.id, from: el.attrs.from, held: this.rooms.has(roomJid) }, "room stanza");
    const room = this.rooms.get(roomJid) ?? (await this.load(roomJid));
    // Groupchat messages are broadcast as their archiving completes, in order
    // (messages.ts); everything else waits for those before it, so that what
    // occupants see keeps the order the room took things in.
    if (room !== undefined && room.committing > 0 && !(el.name === "message" && el.attrs.type === "groupchat" && nick === "")) await room.commits;
    switch (el.name) {
      case "presence":
        return onPresence(this, roomJid, room, el, nick, from);
      case "message":
        return onMessage(this, room, el, nick, from);
      case "iq":
        return this.iq.handle(room, el, nick, from.toString());
    }
  }

  /** The room as stored and as its previous owner left it; sends what that owner archived and may not have broadcast. */
  private async load(jid: string): Promise<Room | undefined> {
    const room = await this.store.load(jid);
    if (room === undefined) return undefined;
    this.rooms.set(jid, room);
    await this.store.prune(jid).catch((err: unknown) => this.log.warn({ room: jid, err: (err as Error).message }, "expired messages not pruned"));
    if (this.occupantStore === undefined) return room;
    const left = await this.occupantStore.load(jid);
    for (const o of left.occupants) room.add(o);
    if (left.occupants.length > 0) this.log.info({ room: jid, occupants: left.occupants.length }, "room taken over with its occupants");
    await this.replay(room, left.sent);
    return room;
  }

  private async replay(room: Room, sent: string | undefined): Promise<void> {
    try {
      if (sent === undefined) {
        // No mark yet: start one at the newest message, so that from now on nothing archived goes unsent.
        const last = await this.store.history.query(room.jid, { reverse: true, limit: 1 });
        if (last.items[0] !== undefined) this.occupantStore?.markSent(room.jid, last.items[0].id);
        return;
      }
      if (room.occupants.size === 0) return;
      const page = await this.store.history.query(room.jid, { after: sent, limit: MAX_REPLAY });
      for (const item of page.items) {
        const m = JSON.parse(item.value) as ArchivedMessage;
        fanOut(this, room, parseTrusted(m.xml, NS.COMPONENT));
        this.occupantStore?.markSent(room.jid, item.id);
      }
      if (page.items.length > 0) this.log.info({ room: room.jid, messages: page.items.length }, "sent what the previous owner archived and had not sent");
    } catch (err) {
      this.log.warn({ room: room.jid, err: (err as Error).message }, "could not look for unsent messages after a takeover");
    }
  }

  /** Stanzas to the service itself: its disco and pings. */
  private async serviceStanza(el: Element, from: Jid): Promise<void> {
    if (el.name !== "iq") {
      if (el.name === "message") this.error(el, "service-unavailable", "the service takes messages for rooms only");
      return;
    }
    const type = el.attrs.type;
    if (type === "result" || type === "error") return;
    const query = el.firstElement();
    const reply = (payload?: Element): void => this.send(xml("iq", { type: "result", id: el.attrs.id, from: this.config.service, to: from.toString() }, payload));
    if (type === "get" && query?.ns === NS_DISCO_INFO && !query.attrs.node) {
      return reply(xml("query", { xmlns: NS_DISCO_INFO },
        xml("identity", { category: "conference", type: "text", name: "Chatrooms" }),
        ...[NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_PING].map((f) => xml("feature", { var: f }))));
    }
    if (type === "get" && query?.ns === NS_DISCO_ITEMS && !query.attrs.node) {
      const rooms = await this.store.publicRooms(this.config.maxListedRooms);
      return reply(xml("query", { xmlns: NS_DISCO_ITEMS },
        ...rooms.map((r) => xml("item", { jid: `${r.localpart}@${this.config.service}`, name: r.name }))));
    }
    if (type === "get" && query?.ns === NS_PING) return reply();
    this.error(el, "service-unavailable");
  }

  private failed(el: Element, err: unknown): void {
    this.log.error({ err: (err as Error).message, stack: (err as Error).stack, to: el.attrs.to, from: el.attrs.from, element: el.name }, "a stanza to the group chat service failed");
    this.error(el, "internal-server-error");
  }

  // ---- rooms moving between muc processes ------------------------------------

  /**
   * The muc processes now serving the service: rooms the rendezvous rule
   * gives to another are dropped from memory once their queued work is done
   * (their state is in xdb and Redis for the new owner).
   */
  setMembers(instances: readonly string[], self: string): void {
    // (A room's pending broadcasts finish before it is dropped: the drop runs in its queue after them.)
    this.members = instances.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
    if (this.members.length === 0) return;
    for (const jid of [...this.rooms.keys()]) {
      if (rendezvousPick(this.members, jid)?.rendezvousId === self) continue;
      void this.queue.run(jid, async () => {
        await this.rooms.get(jid)?.commits;
        if (rendezvousPick(this.members, jid)?.rendezvousId !== self) {
          this.rooms.delete(jid);
          this.log.debug({ room: jid }, "room moved to another muc process");
        }
      });
    }
  }

  /** Resolves once every queued stanza is handled and every message being archived is broadcast. */
  async idle(): Promise<void> {
    await this.queue.idle();
    await Promise.all([...this.rooms.values()].map((r) => r.commits));
  }

  /** Rooms with occupants (for the heartbeat in Redis and the status). */
  *occupiedRooms(): Iterable<string> {
    for (const [jid, r] of this.rooms) if (r.occupants.size > 0) yield jid;
  }

  get occupantCount(): number {
    let n = 0;
    for (const r of this.rooms.values()) n += r.occupants.size;
    return n;
  }
}
