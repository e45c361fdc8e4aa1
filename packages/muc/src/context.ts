/**
 * What the room handlers (presence, messages, admin, owner, archive,
 * disco) share: the service's config, its stores, and ways out.
 */
import type { Logger } from "pino";
import type { Element, StanzaErrorCondition } from "@jabberfarm/xml";
import type { MucConfig } from "./config.js";
import type { OccupantStore } from "./occupant-store.js";
import type { Room } from "./room.js";
import type { RoomStore } from "./room-store.js";

export interface MucContext {
  readonly config: MucConfig;
  readonly log: Logger;
  readonly store: RoomStore;
  /** Occupant lists in Redis; undefined without Redis. */
  readonly occupantStore: OccupantStore | undefined;
  /** Sends a stanza; one too large for the farm's links is dropped with a log line. */
  send(el: Element): void;
  /** Sends a stanza already serialised (fan-out), with the same size check. */
  sendText(text: string): void;
  /** Answers a stanza with an error (never an error with an error). */
  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void;
  /** Whether `bare` may create rooms (config `createRooms`). */
  mayCreate(bare: string): boolean;
  /** A new room, locked, `owner` its first owner (XEP-0045 §10.1); stored before it is used. */
  createRoom(jid: string, owner: string): Promise<Room>;
  /** Destroys a room: storage, Redis and memory. */
  destroyRoom(room: Room): Promise<void>;
  /** A fresh unguessable id (stanza ids, proxied iq ids). */
  newId(): string;
}
