/**
 * A room as the muc process holds it while it owns it: configuration,
 * affiliations and subject (kept in xdb), occupants (kept in Redis when
 * there is one), and the rules of XEP-0045 that follow from them: which
 * role an affiliation gives, who may see real JIDs, who may change whom.
 * Nothing here sends or stores; the handlers do.
 */
export type Affiliation = "owner" | "admin" | "member" | "outcast" | "none";
export type Role = "moderator" | "participant" | "visitor" | "none";

export const AFFILIATIONS: readonly Affiliation[] = ["owner", "admin", "member", "outcast", "none"];
export const ROLES: readonly Role[] = ["moderator", "participant", "visitor", "none"];

export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** "" when the room has no password. */
  password: string;
  /** Who sees occupants' real JIDs: semi-anonymous (`moderators`) or non-anonymous (`anyone`). */
  whois: "moderators" | "anyone";
  changeSubject: boolean;
  allowInvites: boolean;
  allowPm: "anyone" | "participants" | "moderators" | "none";
  maxUsers: number;
}

export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, "none">;
  /** A nick the member reserved (XEP-0045 §7.12). */
  nick?: string;
  reason?: string;
}

export interface Occupant {
  nick: string;
  /** The real full JID. */
  jid: string;
  role: Role;
  /** The occupant's last presence, without `to`, `from` and MUC payload (text of its children). */
  presence: string;
  /** ms since the epoch. */
  since: number;
}

export interface Subject {
  text: string;
  nick: string;
  at: string;
}

const RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export const affiliationRank = (a: Affiliation): number => RANK[a];
export const roleRank = (r: Role): number => ROLE_RANK[r];

export class Room {
  readonly occupants = new Map<string, Occupant>();
  /** Real full JID → nick. */
  readonly byJid = new Map<string, string>();
  /** Messages archived since the archive was last pruned of expired ones. */
  appendsSincePrune = 0;
  /**
   * Groupchat messages whose archiving is under way, each broadcast once it
   * is archived and the one before it broadcast (messages.ts): a room does
   * not wait for one storage round trip before taking the next message.
   */
  commits: Promise<void> = Promise.resolve();
  committing = 0;

  constructor(
    /** The room's bare JID. */
    readonly jid: string,
    public config: RoomConfig,
    readonly affiliations: Map<string, AffiliationEntry>,
    public subject: Subject | null,
    /** Created and not yet configured by its owner (XEP-0045 §10.1.1): nobody else may enter. */
    public locked: boolean,
  ) {}

  get localpart(): string {
    return this.jid.slice(0, this.jid.indexOf("@"));
  }

  affiliationOf(bare: string): Affiliation {
    return this.affiliations.get(bare)?.affiliation ?? "none";
  }

  /** The role an affiliation gives on entering (XEP-0045 §5.1.2). */
  defaultRole(a: Affiliation): Role {
    if (a === "owner" || a === "admin") return "moderator";
    if (a === "outcast") return "none";
    if (a === "member") return "participant";
    return this.config.moderated ? "visitor" : "participant";
  }

  occupantByJid(fullJid: string): Occupant | undefined {
    const nick = this.byJid.get(fullJid);
    return nick === undefined ? undefined : this.occupants.get(nick);
  }

  add(o: Occupant): void {
    this.occupants.set(o.nick, o);
    this.byJid.set(o.jid, o.nick);
  }

  remove(o: Occupant): void {
    this.occupants.delete(o.nick);
    if (this.byJid.get(o.jid) === o.nick) this.byJid.delete(o.jid);
  }

  /** Whether `viewer` is shown occupants' real JIDs. */
  seesRealJids(viewer: Occupant): boolean {
    return this.config.whois === "anyone" || viewer.role === "moderator";
  }

  /** The owners (at least one must remain). */
  owners(): string[] {
    const out: string[] = [];
    for (const [jid, e] of this.affiliations) if (e.affiliation === "owner") out.push(jid);
    return out;
  }

  /** Who holds a nick reserved by a member, if someone other than `bare` does. */
  nickReservedByOther(nick: string, bare: string): boolean {
    for (const [jid, e] of this.affiliations) if (e.nick === nick && jid !== bare) return true;
    return false;
  }

  /** Occupants sharing one real bare JID (several resources may join under one nick's owner). */
  occupantsOf(bare: string): Occupant[] {
    const out: Occupant[] = [];
    for (const o of this.occupants.values()) if (bareOf(o.jid) === bare) out.push(o);
    return out;
  }
}

export function bareOf(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}

/**
 * Whether an occupant with `actor` role and affiliation may give `target`
 * (its current role and affiliation) the role `to` (XEP-0045 §8.2, §8.4,
 * §9.6, §9.7 and the table in §5.1.3).
 */
export function mayChangeRole(
  actor: { role: Role; affiliation: Affiliation },
  target: { role: Role; affiliation: Affiliation },
  to: Role,
): boolean {
  if (actor.role !== "moderator") return false;
  // Nobody changes the role of an admin or owner but themselves through their affiliation.
  if (affiliationRank(target.affiliation) >= RANK.admin && to !== "moderator") return false;
  if (to === "moderator" || target.role === "moderator") {
    return affiliationRank(actor.affiliation) >= RANK.admin && affiliationRank(actor.affiliation) >= affiliationRank(target.affiliation);
  }
  return true;
}

/** Whether `actor` may change an affiliation from `from` to `to` (XEP-0045 §9, §10.3–10.8). */
export function mayChangeAffiliation(actor: Affiliation, from: Affiliation, to: Affiliation): boolean {
  if (actor === "owner") return true;
  if (actor !== "admin") return false;
  // Admins manage members and outcasts, never admins or owners.
  return affiliationRank(from) < RANK.admin && affiliationRank(to) < RANK.admin;
}
