// Who is whose contact in the presence scenario. Shared by the load
// generator (to know what to expect, and to make the subscriptions over
// XMPP when asked) and by the scripts that write rosters straight into a
// server's storage before it starts.
//
// Churners are accounts 1..U, observers U+1..U+M. Churner i (0-based) has
// the R observers (i + k) mod M, k = 0..R-1, as contacts; every link is a
// mutual "both" subscription. With M = U (the default) every user, churner
// or observer, has exactly R contacts.

/**
 * @param {{churners: number, observers?: number, roster: number, prefix?: string, domain: string}} p
 */
export function presencePlan({ churners, observers, roster, prefix = "user", domain }) {
  const U = churners;
  const M = observers ?? churners;
  const R = roster;
  if (!(U >= 1 && M >= 1 && R >= 1)) throw new Error("presence plan: churners, observers and roster must be >= 1");
  if (R > M) throw new Error(`presence plan: roster size ${R} is larger than the number of observers ${M}`);
  const churner = (i) => `${prefix}${i + 1}`;
  const observer = (j) => `${prefix}${U + j + 1}`;
  const contactsOfChurner = (i) => Array.from({ length: R }, (_, k) => (i + k) % M);
  const observerContacts = Array.from({ length: M }, () => []);
  for (let i = 0; i < U; i++) for (const j of contactsOfChurner(i)) observerContacts[j].push(i);
  return {
    U, M, R, domain,
    accountsNeeded: U + M,
    churner,
    observer,
    /** observer indexes */
    contactsOfChurner,
    /** churner indexes */
    contactsOfObserver: (j) => observerContacts[j],
    /** Every mutual link as [churner bare JID, observer bare JID]. */
    *links() {
      for (let i = 0; i < U; i++) for (const j of contactsOfChurner(i)) yield [`${churner(i)}@${domain}`, `${observer(j)}@${domain}`];
    },
  };
}
