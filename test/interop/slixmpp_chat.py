#!/usr/bin/python3
"""Interoperability check with slixmpp (Debian's python3-slixmpp), a client
library this project does not test with in CI: log in two accounts over
STARTTLS, subscribe both ways, exchange a message, and report.

    apt-get install python3-slixmpp
    /usr/bin/python3 test/interop/slixmpp_chat.py ann@localhost pw1 ben@localhost pw2 [port]
"""
import asyncio
import logging
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.got = asyncio.Queue()
        self.add_event_handler("message", lambda m: self.got.put_nowait(("message", m)))
        self.add_event_handler("presence_subscribe", lambda p: self.got.put_nowait(("subscribe", p)))
        self.add_event_handler("presence_available", lambda p: self.got.put_nowait(("available", p)))
        self.add_event_handler("roster_update", lambda r: self.got.put_nowait(("roster", r)))
        self.auto_authorize = True
        self.auto_subscribe = True


async def wait_for(client, kind, timeout=8):
    while True:
        k, v = await asyncio.wait_for(client.got.get(), timeout)
        if k == kind:
            return v


async def main(a_jid, a_pw, b_jid, b_pw, port):
    a, b = Client(a_jid, a_pw), Client(b_jid, b_pw)
    for c in (a, b):
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = 0  # the farm's certificate is self-signed
        c.connect(("127.0.0.1", port))
    await asyncio.gather(a.wait_until("session_start", 10), b.wait_until("session_start", 10))
    for c in (a, b):
        await c.get_roster()
        c.send_presence()
    a.send_presence(pto=b.boundjid.bare, ptype="subscribe")
    await wait_for(a, "available")  # b auto-accepts and subscribes back; b's presence arrives
    a.send_message(mto=b.boundjid.full, mbody="hello from slixmpp", mtype="chat")
    m = await wait_for(b, "message")
    assert m["body"] == "hello from slixmpp", m
    b.send_message(mto=m["from"], mbody="and back", mtype="chat")
    r = await wait_for(a, "message")
    assert r["body"] == "and back", r
    roster = "none"
    for _ in range(50):  # roster pushes may still be on their way
        roster = a.client_roster[b.boundjid.bare]["subscription"]
        if roster == "both":
            break
        await asyncio.sleep(0.1)
    print(f"ok: login, roster, subscription ({roster}), presence and messages both ways with slixmpp {slixmpp.__version__}")
    for c in (a, b):
        c.disconnect()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    port = int(sys.argv[5]) if len(sys.argv) > 5 else 5222
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], port))
