#!/usr/bin/python3
"""Interoperability check of carbons (XEP-0280) and the message archive
(XEP-0313) with slixmpp's own plugins (Debian's python3-slixmpp): one user
with two resources (on two c2s addresses) enables carbons on both, a
contact writes to one resource and the user answers from the other; each
resource must see the other side's copy. Then the archive is paged through
with RSM (xep_0313 iterate, two per page) forwards and backwards.

    /usr/bin/python3 test/interop/slixmpp_carbons_mam.py PORT USER@localhost/PW/HOST1/HOST2 CONTACT@localhost/PW/HOST
"""
import asyncio
import logging
import sys

import slixmpp

TIMEOUT = 15


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for p in ("xep_0030", "xep_0059", "xep_0280", "xep_0297", "xep_0313", "xep_0359"):
            self.register_plugin(p)
        self.got = asyncio.Queue()
        self.add_event_handler("message", lambda m: self.got.put_nowait(("message", m)))
        self.add_event_handler("carbon_received", lambda m: self.got.put_nowait(("received", m)))
        self.add_event_handler("carbon_sent", lambda m: self.got.put_nowait(("sent", m)))


async def wait_for(client, kind, check=lambda m: True):
    while True:
        k, v = await asyncio.wait_for(client.got.get(), TIMEOUT)
        if k == kind and check(v):
            return v


async def start(spec, resource):
    jid, pw, host = spec
    c = Client(f"{jid}/{resource}", pw)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = 0  # the farm's certificate is self-signed
    c.connect((host, PORT))
    await c.wait_until("session_start", TIMEOUT)
    await c.get_roster()
    c.send_presence()
    return c


async def main(user, host1, host2, user_pw, contact, contact_pw, contact_host):
    phone = await start((user, user_pw, host1), "phone")
    laptop = await start((user, user_pw, host2), "laptop")
    other = await start((contact, contact_pw, contact_host), "pc")
    for c in (phone, laptop):
        await c["xep_0280"].enable(timeout=TIMEOUT)
    print("ok: carbons enabled on both resources")

    other.send_message(mto=phone.boundjid.full, mbody="to the phone", mtype="chat")
    m = await wait_for(phone, "message", lambda m: m["body"] == "to the phone")
    sid = m["stanza_id"]["id"]
    assert sid and m["stanza_id"]["by"] == user, m
    r = await wait_for(laptop, "received")
    assert r["carbon_received"]["body"] == "to the phone", r
    print("ok: a received carbon on the other resource; the message has a stanza id by the user")

    laptop.send_message(mto=contact, mbody="answered from the laptop", mtype="chat")
    await wait_for(other, "message", lambda m: m["body"] == "answered from the laptop")
    s = await wait_for(phone, "sent")
    assert s["carbon_sent"]["body"] == "answered from the laptop", s
    print("ok: a sent carbon on the other resource")

    for i in range(3):
        other.send_message(mto=user, mbody=f"more {i}", mtype="chat")
        await wait_for(phone, "message", lambda m, i=i: m["body"] == f"more {i}")

    # Forwards through the whole archive, two per page: five messages, each once, in order.
    bodies = []
    async for msg in phone["xep_0313"].iterate(rsm={"max": 2}):
        bodies.append(msg["mam_result"]["forwarded"]["stanza"]["body"])
    expected = ["to the phone", "answered from the laptop", "more 0", "more 1", "more 2"]
    assert bodies == expected, bodies
    print("ok: the archive paged forwards (RSM, 2 per page): " + ", ".join(bodies))
    # Backwards from the newest, with a filter on the contact.
    back = []
    async for msg in laptop["xep_0313"].iterate(rsm={"max": 2}, reverse=True, with_jid=slixmpp.JID(contact)):
        back.append(msg["mam_result"]["forwarded"]["stanza"]["body"])
    assert back == list(reversed(expected)), back
    print("ok: the archive paged backwards with a 'with' filter")
    # The stanza id the phone got is the archive id of that message.
    first = await phone["xep_0313"].retrieve(rsm={"max": 1}, timeout=TIMEOUT)
    ids = [r["mam_result"]["id"] for r in first["mam"]["results"]]
    assert ids == [sid], (ids, sid)
    print("ok: the stanza id is the archive id")
    for c in (phone, laptop, other):
        c.disconnect()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    PORT = int(sys.argv[1])
    u_jid, u_pw, u_h1, u_h2 = sys.argv[2].split("/")
    c_jid, c_pw, c_h = sys.argv[3].split("/")
    asyncio.run(main(u_jid, u_h1, u_h2, u_pw, c_jid, c_pw, c_h))
