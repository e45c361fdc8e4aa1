#!/usr/bin/python3
"""slixmpp clients driven line by line from standard input, for tests that
act on the farm between client steps (test/src/docker.test.ts stops a c2s
container, kills an SM, recreates the farm). One JSON command a line; each
answers one line, "ok: ..." or "fail: ...":

    {"op": "login", "as": "ann", "jid": "ann@localhost", "password": "pw", "host": "127.0.0.1", "port": 5222}
    {"op": "send", "as": "ann", "to": "ben@localhost", "body": "hi"}
    {"op": "expect", "as": "ben", "body": "hi", "timeout": 20}
    {"op": "expect_redirect", "as": "ann", "timeout": 30}   # see-other-host, then a new session
    {"op": "logout", "as": "ann"}
    {"op": "quit"}

The farm's certificate is self-signed: it is not checked. Messages that
arrive before an `expect` are kept, so none is missed between commands.
"""
import asyncio
import json
import logging
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.bodies = []
        self.arrived = asyncio.Event()
        self.sessions = 0
        self.redirects = []
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("session_start", self.on_session)
        self.add_event_handler("stream_error", self.on_stream_error)

    def on_message(self, m):
        if m["body"]:
            self.bodies.append(m["body"])
            self.arrived.set()

    async def on_session(self, _):
        await self.get_roster()
        self.send_presence()
        self.sessions += 1
        self.arrived.set()

    def on_stream_error(self, error):
        # Followed here, not by slixmpp: its own handler (1.8.3) reconnects
        # through connect() without an address, i.e. to the JID's domain on
        # 5222, not to the host the server named.
        if error["condition"] == "see-other-host":
            host, _, port = error["see_other_host"].rpartition(":")
            self.redirects.append(error["see_other_host"])
            self.add_event_handler("disconnected", lambda _: self.connect((host.strip("[]"), int(port or 5222))), disposable=True)


async def until(client, ok, timeout):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not ok():
        left = end - loop.time()
        if left <= 0:
            return False
        client.arrived.clear()
        try:
            await asyncio.wait_for(client.arrived.wait(), left)
        except asyncio.TimeoutError:
            pass
    return True


async def run(cmd, clients):
    op = cmd["op"]
    timeout = cmd.get("timeout", 20)
    if op == "login":
        c = Client(cmd["jid"], cmd["password"])
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = 0
        c.max_redirects = -1  # slixmpp's own redirect handling off: on_stream_error follows see-other-host
        clients[cmd["as"]] = c
        c.connect((cmd["host"], cmd["port"]))
        if not await until(c, lambda: c.sessions > 0, timeout):
            return f"fail: {cmd['as']} got no session on {cmd['host']}:{cmd['port']}"
        return f"ok: {cmd['as']} logged in on {cmd['host']}:{cmd['port']}"
    c = clients[cmd["as"]]
    if op == "send":
        c.send_message(mto=cmd["to"], mbody=cmd["body"], mtype="chat")
        return f"ok: {cmd['as']} sent {cmd['body']!r}"
    if op == "expect":
        if not await until(c, lambda: cmd["body"] in c.bodies, timeout):
            return f"fail: {cmd['as']} did not get {cmd['body']!r} (got {c.bodies})"
        c.bodies.remove(cmd["body"])
        return f"ok: {cmd['as']} got {cmd['body']!r}"
    if op == "expect_redirect":
        before = c.sessions
        if not await until(c, lambda: c.redirects and c.sessions > before, timeout):
            return f"fail: {cmd['as']} was not redirected to a new session (redirects {c.redirects})"
        return f"ok: {cmd['as']} followed see-other-host to {c.redirects[-1]} " + json.dumps({"to": c.redirects[-1]})
    if op == "logout":
        c.disconnect()
        await c.disconnected
        del clients[cmd["as"]]
        return f"ok: {cmd['as']} logged out"
    return f"fail: unknown op {op}"


async def main():
    clients = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            answer = await run(cmd, clients)
        except Exception as e:  # the test reads the failure; the driver keeps going
            answer = f"fail: {cmd['op']}: {e!r}"
        print(answer, flush=True)
    for c in clients.values():
        c.disconnect()
    print("ok: quit", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
