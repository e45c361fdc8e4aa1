#!/usr/bin/python3
"""Group chat (XEP-0045) and HTTP upload (XEP-0363) with slixmpp (Debian's
python3-slixmpp) and its xep_0045 and xep_0363 plugins, against a running
farm. Driven by test/src/muc-upload.test.ts; prints one "ok: STEP" line per
step and exits non-zero at the first failure.

    /usr/bin/python3 test/interop/slixmpp_muc_upload.py PORT ROOM \
        ann@localhost/PW/127.0.0.1 bob@localhost/PW/127.0.0.2 carol@localhost/PW/127.0.0.1

SSL_CERT_FILE must name the upload service's certificate (aiohttp checks
it); the XMPP streams accept the farm's self-signed certificate unchecked.
"""
import asyncio
import io
import logging
import os
import sys

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError, PresenceError


def step(name):
    print(f"ok: {name}", flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for p in ("xep_0030", "xep_0045", "xep_0128", "xep_0363", "xep_0199", "xep_0249"):
            self.register_plugin(p)
        self.events = asyncio.Queue()
        for ev in ("groupchat_message", "groupchat_subject", "groupchat_config_status", "message", "groupchat_presence"):
            self.add_event_handler(ev, lambda s, ev=ev: self.events.put_nowait((ev, s)))

    async def expect(self, kind, pred=lambda s: True, timeout=15):
        end = asyncio.get_running_loop().time() + timeout
        while True:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{self.boundjid}: no {kind} within {timeout} s")
            k, s = await asyncio.wait_for(self.events.get(), left)
            if k == kind and pred(s):
                return s


def codes(p):
    return {s for s in p['muc']['status_codes']} if 'muc' in p.keys() else set()


async def main(port, room, specs):
    clients = []
    for spec in specs:
        jid, pw, host = spec.split("/")
        c = Client(jid, pw)
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = 0  # the farm's XMPP certificate is self-signed
        c.connect((host, port))
        clients.append(c)
    ann, bob, carol = clients
    await asyncio.gather(*(c.wait_until("session_start", 20) for c in clients))
    for c in clients:
        c.send_presence()
    step("three clients logged in over two c2s")
    muc = lambda c: c.plugin["xep_0045"]

    # The owner creates the room (201), configures it (persistent, a name) and thereby unlocks it.
    pres, _subject, _occ, _hist = await muc(ann).join_muc_wait(room, "ann", timeout=15)
    assert 201 in codes(pres) and 110 in codes(pres), pres
    form = await muc(ann).get_room_config(room, timeout=15)
    values = {"muc#roomconfig_persistentroom": True, "muc#roomconfig_roomname": "Interop lounge"}
    for var, value in values.items():
        form.field[var]["value"] = value
    await muc(ann).set_room_config(room, form, timeout=15)
    step("room created and configured by its owner")

    await muc(bob).join_muc_wait(room, "bob", timeout=15)
    ann.send_message(mto=room, mbody="hello from ann", mtype="groupchat")
    got = await bob.expect("groupchat_message", lambda m: m["body"] == "hello from ann")
    assert got["from"] == f"{room}/ann", got
    await ann.expect("groupchat_message", lambda m: m["body"] == "hello from ann")  # reflected: accepted
    step("messages reach every occupant and come back to the sender")

    muc(ann).set_subject(room, "interop subject")
    await bob.expect("groupchat_subject", lambda m: m["subject"] == "interop subject")
    step("subject set by the owner reaches the room")

    # carol comes later: history (with delay from the room), then the subject.
    _pres, subject, _occ, history = await muc(carol).join_muc_wait(room, "carol", maxstanzas=10, timeout=15)
    assert any(m["body"] == "hello from ann" for m in history), [str(m) for m in history]
    assert subject["subject"] == "interop subject", subject
    step("history and subject on joining")

    bob.send_message(mto=f"{room}/carol", mbody="just between us", mtype="chat")
    pm = await carol.expect("message", lambda m: m["body"] == "just between us")
    assert pm["from"] == f"{room}/bob", pm
    step("private message inside the room")

    # A configuration change is announced with status 104.
    form = await muc(ann).get_room_config(room, timeout=15)
    form.field["muc#roomconfig_roomdesc"]["value"] = "where the interop happens"
    await muc(ann).set_room_config(room, form, timeout=15)
    await bob.expect("groupchat_config_status", lambda m: "104" in str(m))
    step("configuration change announced (status 104)")

    await muc(ann).set_role(room, "carol", "none", reason="interop kick", timeout=15)
    kicked = await carol.expect("groupchat_presence", lambda p: p["type"] == "unavailable" and 307 in codes(p))
    assert 110 in codes(kicked), kicked
    step("kick (307)")

    await muc(ann).set_affiliation(room, "outcast", jid=slixmpp.JID(bob.boundjid.bare), reason="interop ban", timeout=15)
    await bob.expect("groupchat_presence", lambda p: p["type"] == "unavailable" and 301 in codes(p))
    try:
        await muc(bob).join_muc_wait(room, "bob-again", timeout=15)
        raise AssertionError("a banned user got back in")
    except PresenceError as e:
        assert e.condition == "forbidden", e.condition
    step("ban (301), and the banned user cannot come back")

    # HTTP upload: found through the server's disco#items, put by ann, fetched by bob.
    # (slixmpp 1.8's own find_upload_service passes coroutines to asyncio.wait,
    # which Debian's Python refuses; the same walk, one query at a time:)
    items = await ann.plugin["xep_0030"].get_items(jid=ann.boundjid.domain, timeout=15)
    service = None
    for jid, _node, _name in items["disco_items"]["items"]:
        info = await ann.plugin["xep_0030"].get_info(jid=jid, timeout=15)
        if ("store", "file") in [(i[0], i[1]) for i in info["disco_info"]["identities"]]:
            service = jid
            for form in info["disco_info"].iterables:
                if form["values"].get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                    ann.plugin["xep_0363"].max_file_size = int(form["values"]["max-file-size"])
    assert service is not None, items
    ann.plugin["xep_0363"].upload_service = service
    step(f"upload service {service} found in the server's disco#items")
    data = os.urandom(1500)
    url = await ann.plugin["xep_0363"].upload_file("picture.png", size=len(data), content_type="image/png",
                                                     input_file=io.BytesIO(data), domain=slixmpp.JID(ann.boundjid.domain), timeout=15)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            assert r.status == 200, r.status
            assert await r.read() == data
            assert r.headers["Content-Type"] == "image/png", r.headers
    step(f"file uploaded by one user and downloaded by another ({url.split('/')[2]})")
    try:
        await ann.plugin["xep_0363"].upload_file("second.png", size=len(data), content_type="image/png",
                                                  input_file=io.BytesIO(data), domain=slixmpp.JID(ann.boundjid.domain), timeout=15)
        raise AssertionError("an upload over the quota was accepted")
    except IqError as e:
        assert e.condition == "resource-constraint", e.condition
    step("an upload over the user's quota is refused (resource-constraint)")

    for c in clients:
        c.disconnect()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    try:
        asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:6]))
    except Exception as e:  # one line the test can show
        print(f"FAILED: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
