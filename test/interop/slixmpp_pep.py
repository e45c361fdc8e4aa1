#!/usr/bin/python3
"""Interoperability check of PEP (XEP-0163) with slixmpp's own plugins
(Debian's python3-slixmpp: xep_0163, xep_0060, xep_0115, xep_0004): an
owner and a contact subscribe to each other (slixmpp's roster answers the
requests itself); the contact registers interest in the OMEMO device list
(xep_0163 add_interest: `+notify` in its caps, which the server must ask
for and verify); the owner publishes a device list and a bundle with
publish-options (access model open, as Conversations does). The contact
must be notified of the list, fetch the bundle, and see a conflicting
precondition refused.

    /usr/bin/python3 test/interop/slixmpp_pep.py PORT OWNER@localhost/PW/HOST CONTACT@localhost/PW/HOST
"""
import asyncio
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

TIMEOUT = 15
AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = f"{AXOLOTL}.devicelist"
PUBSUB = "http://jabber.org/protocol/pubsub"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for p in ("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163"):
            self.register_plugin(p)
        self.events = asyncio.Queue()
        self.add_event_handler("pubsub_publish", lambda m: self.events.put_nowait(m))


def device_list(*ids):
    el = ET.Element(f"{{{AXOLOTL}}}list")
    for i in ids:
        ET.SubElement(el, f"{{{AXOLOTL}}}device", {"id": str(i)})
    return el


def bundle(device):
    el = ET.Element(f"{{{AXOLOTL}}}bundle")
    spk = ET.SubElement(el, f"{{{AXOLOTL}}}signedPreKeyPublic", {"signedPreKeyId": "1"})
    spk.text = f"c3BrLXtkZXZpY2V9-{device}"
    ET.SubElement(el, f"{{{AXOLOTL}}}identityKey").text = "aWRlbnRpdHk="
    prekeys = ET.SubElement(el, f"{{{AXOLOTL}}}prekeys")
    ET.SubElement(prekeys, f"{{{AXOLOTL}}}preKeyPublic", {"preKeyId": "1"}).text = "cHJla2V5"
    return el


def options(client, access_model):
    form = client["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=f"{PUBSUB}#publish-options")
    form.add_field(var="pubsub#access_model", value=access_model)
    return form


async def start(spec, resource, interests=()):
    jid, pw, host = spec
    c = Client(f"{jid}/{resource}", pw)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = 0  # the farm's certificate is self-signed
    for ns in interests:
        c["xep_0030"].add_feature(f"{ns}+notify")
    c.connect((host, PORT))
    await c.wait_until("session_start", TIMEOUT)
    # The caps hash covers the +notify features before the first presence says it.
    await c["xep_0115"].update_caps(broadcast=False)
    await c.get_roster()
    c.send_presence()
    return c


async def until(what, check):
    for _ in range(TIMEOUT * 10):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def next_event(client, node):
    while True:
        m = await asyncio.wait_for(client.events.get(), TIMEOUT)
        if m["pubsub_event"]["items"]["node"] == node:
            return m


async def main(owner_spec, contact_spec):
    owner = await start(owner_spec, "phone", [DEVICELIST])
    contact = await start(contact_spec, "laptop", [DEVICELIST])
    owner_jid, contact_jid = owner_spec[0], contact_spec[0]
    owner.send_presence_subscription(pto=contact_jid)
    contact.send_presence_subscription(pto=owner_jid)
    await until("a mutual subscription", lambda: owner.client_roster[contact_jid]["subscription"] == "both"
                and contact.client_roster[owner_jid]["subscription"] == "both")
    await until("each seeing the other online", lambda: owner.client_roster[contact_jid].resources and contact.client_roster[owner_jid].resources)
    print("ok: owner and contact subscribed to each other")

    info = await owner["xep_0030"].get_info(jid=owner_jid, timeout=TIMEOUT)
    identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
    assert ("pubsub", "pep") in identities, identities
    assert f"{PUBSUB}#publish-options" in info["disco_info"]["features"], info
    print("ok: the account says it is a PEP service with publish-options")

    device = 1234
    await owner["xep_0060"].publish(None, f"{AXOLOTL}.bundles:{device}", id="current", payload=bundle(device),
                                    options=options(owner, "open"), timeout=TIMEOUT)
    await owner["xep_0060"].publish(None, DEVICELIST, id="current", payload=device_list(device),
                                    options=options(owner, "open"), timeout=TIMEOUT)
    m = await next_event(contact, DEVICELIST)
    assert m["from"].bare == owner_jid, m
    payload = m["pubsub_event"]["items"]["item"]["payload"]
    assert [d.get("id") for d in payload] == [str(device)], ET.tostring(payload)
    # The owner's own client asked for it too.
    await next_event(owner, DEVICELIST)
    print("ok: the device list was notified to the contact and to the owner")

    r = await contact["xep_0060"].get_items(owner_jid, f"{AXOLOTL}.bundles:{device}", timeout=TIMEOUT)
    items = list(r["pubsub"]["items"])
    assert len(items) == 1 and items[0]["id"] == "current", r
    assert items[0]["payload"].find(f"{{{AXOLOTL}}}signedPreKeyPublic").text == f"c3BrLXtkZXZpY2V9-{device}", r
    print("ok: the contact fetched the bundle")

    try:
        await owner["xep_0060"].publish(None, DEVICELIST, id="current", payload=device_list(device, 5678),
                                        options=options(owner, "presence"), timeout=TIMEOUT)
        raise AssertionError("a precondition the node does not meet was accepted")
    except IqError as e:
        err = e.iq["error"]
        assert err["condition"] == "conflict", e.iq
        assert err.xml.find(f"{{{PUBSUB}#errors}}precondition-not-met") is not None, e.iq
    print("ok: a mismatching publish-options precondition is refused with conflict / precondition-not-met")

    await owner["xep_0060"].publish(None, DEVICELIST, id="current", payload=device_list(device, 5678),
                                    options=options(owner, "open"), timeout=TIMEOUT)
    m = await next_event(contact, DEVICELIST)
    assert [d.get("id") for d in m["pubsub_event"]["items"]["item"]["payload"]] == [str(device), "5678"], m
    print("ok: the updated device list reached the contact")

    for c in (owner, contact):
        c.disconnect()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    PORT = int(sys.argv[1])
    o = sys.argv[2].split("/")
    k = sys.argv[3].split("/")
    try:
        asyncio.run(main((o[0], o[1], o[2]), (k[0], k[1], k[2])))
    except Exception as e:  # the test prints everything: say what went wrong
        print(f"failed: {type(e).__name__}: {e}")
        raise
