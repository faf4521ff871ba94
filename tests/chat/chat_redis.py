"""`wsx chat --redis` end to end: its own redis-server on a free port of 127.0.0.1, then two and
three wsx chat nodes (each on its own port) with Python websockets clients on each. Checks that a
publish on any node reaches every subscriber on every node exactly once; that a node subscribes
to a topic's Redis channel only while it has local subscribers (PUBSUB NUMSUB and the node's
metrics); that when Redis is killed the nodes keep serving their own clients, count the dropped
publishes and log the loss; and that after Redis is restarted on the same port they reconnect,
resubscribe and carry publishes across nodes again. Then a Redis with a password: the password
in the URL or in WSX_REDIS_PASSWORD gets nodes in, a wrong or missing one is refused and logged.

Usage: chat_redis.py WSX   (exit 77 when redis-server is not installed)"""

import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop_support import SKIP, Checks, WsxProcess, require_websockets  # noqa: E402

websockets = require_websockets()

TIMEOUT = 5
CONNECT_TIMEOUT = 15  # reconnect backoff tops out at 5 s (RedisOptions::reconnect_max)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on 127.0.0.1, no persistence; stopped by its pid."""

    def __init__(self, binary, port, password=None):
        self.binary = binary
        self.port = port
        self.password = password
        self.proc = None

    def start(self):
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"] + auth,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(TIMEOUT)

    def command(self, *args):
        """One command in RESP (after AUTH when the server has a password); the reply as str,
        int or list of those."""
        commands = ([("AUTH", self.password)] if self.password else []) + [args]
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            request = b""
            for command in commands:
                request += f"*{len(command)}\r\n".encode()
                for arg in command:
                    data = str(arg).encode()
                    request += b"$%d\r\n%s\r\n" % (len(data), data)
            s.sendall(request)
            reader = s.makefile("rb")
            replies = [read_reply(reader) for _ in commands]
            return replies[-1]


def read_reply(reader):
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [read_reply(reader) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected reply {line!r}")


def metrics(node):
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/metrics", timeout=TIMEOUT) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = int(value)
    return values


async def wait_for(condition, what, checks, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return checks.check(True, what)
        await asyncio.sleep(0.05)
    return checks.check(condition(), what)


class Client:
    def __init__(self, ws, name):
        self.ws = ws
        self.name = name

    @classmethod
    async def open(cls, node, name):
        ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{node.port}/ws"), TIMEOUT)
        client = cls(ws, name)
        assert (await client.receive())["type"] == "welcome"
        await client.request({"type": "nick", "nick": name})
        return client

    async def receive(self):
        return json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))

    async def request(self, message):
        await self.ws.send(json.dumps(message))
        return await self.receive()

    async def subscribe(self, topic):
        return await self.request({"type": "subscribe", "topic": topic})

    async def publish(self, topic, data):
        await self.ws.send(json.dumps({"type": "publish", "topic": topic, "data": data}))

    async def messages(self, count):
        got = []
        for _ in range(count):
            message = await self.receive()
            got.append((message["topic"], message["data"], message["from"]))
        return got

    async def quiet(self, checks, what):
        """Nothing more is pending: a ping is answered by the very next message."""
        await asyncio.sleep(0.3)
        reply = await self.request({"type": "ping"})
        checks.equal(reply, {"type": "pong"}, what)

    async def close(self):
        await self.ws.close()


def numsub(redis, channel):
    reply = redis.command("PUBSUB", "NUMSUB", channel)
    return int(reply[1])


def start_node(wsx, url, node_id, env=None):
    return WsxProcess(wsx, ["chat", "--address", "127.0.0.1", "--port", "0", "--threads", "2",
                            "--redis", url, "--node-id", str(node_id)], env=env)


async def exactly_once(clients, senders, topic, tag, checks):
    """Each sender publishes one message; every client gets each exactly once."""
    sent = []
    for sender in senders:
        data = f"{tag} from {sender.name}"
        sent.append((topic, data, sender.name))
        await sender.publish(topic, data)
    for client in clients:
        got = await client.messages(len(sent))
        checks.equal(sorted(got), sorted(sent),
                     f"{tag}: {client.name} gets every publish of every node")
    for client in clients:
        await client.quiet(checks, f"{tag}: {client.name} gets each publish only once")


async def scenario(wsx, redis, prefix, checks):
    url = f"redis://127.0.0.1:{redis.port}/{prefix}"
    lobby = f"{prefix}:t:lobby"
    other = f"{prefix}:t:other"
    with start_node(wsx, url, 1) as node_a, start_node(wsx, url, 2) as node_b:
        nodes = [node_a, node_b]
        await wait_for(lambda: all(metrics(n).get("wsx_redis_connected") == 1 for n in nodes),
                       "two nodes connect to Redis", checks)
        checks.equal(numsub(redis, lobby), 0, "no node listens to a topic nobody joined")
        a1 = await Client.open(node_a, "a1")
        b1 = await Client.open(node_b, "b1")
        for client in (a1, b1):
            await client.subscribe("lobby")
        await wait_for(lambda: numsub(redis, lobby) == 2,
                       "each node subscribes the topic's channel once it has a subscriber", checks)
        await exactly_once([a1, b1], [a1, b1], "lobby", "two nodes", checks)

        with start_node(wsx, url, 3) as node_c:
            nodes.append(node_c)
            await wait_for(lambda: metrics(node_c).get("wsx_redis_connected") == 1,
                           "a third node connects", checks)
            c1 = await Client.open(node_c, "c1")
            c2 = await Client.open(node_c, "c2")
            await c1.subscribe("lobby")
            await c2.subscribe("other")
            await wait_for(lambda: numsub(redis, lobby) == 3, "three nodes listen to lobby",
                           checks)
            await exactly_once([a1, b1, c1], [a1, b1, c1], "lobby", "three nodes", checks)
            await c2.quiet(checks, "a client in another room gets nothing of lobby")

            # A topic only node C has subscribers for: only C listens, A and B get nothing.
            checks.equal(numsub(redis, other), 1, "only the node with subscribers listens")
            received_a = metrics(node_a)["wsx_redis_received_total"]
            await c2.publish("other", "just us")
            checks.equal(await c2.messages(1), [("other", "just us", "c2")],
                         "a publish reaches its own node")
            await asyncio.sleep(0.3)
            checks.equal(metrics(node_a)["wsx_redis_received_total"], received_a,
                         "a node without subscribers of a topic receives none of its messages")
            for client in (a1, b1, c1):
                await client.quiet(checks, f"{client.name} gets nothing of another room")

            # The last local subscriber leaves: the node unsubscribes its channel.
            checks.equal(await c1.request({"type": "unsubscribe", "topic": "lobby"}),
                         {"type": "unsubscribed", "topic": "lobby"}, "c1 leaves lobby")
            await wait_for(lambda: numsub(redis, lobby) == 2,
                           "a node unsubscribes the channel when its last subscriber leaves",
                           checks)
            await c1.close()
            await c2.close()
            # Under the sanitizers a report makes the exit status non-zero.
            checks.equal(node_c.stop(), 0, "the third node stops cleanly on SIGTERM")
        nodes.pop()

        # Redis goes away: local delivery goes on, cross-node publishes are dropped and counted.
        a2 = await Client.open(node_a, "a2")
        await a2.subscribe("lobby")
        redis.kill()
        await wait_for(lambda: all(metrics(n).get("wsx_redis_connected") == 0 for n in nodes),
                       "the nodes notice that Redis is gone", checks)
        await a1.publish("lobby", "during the outage")
        for client in (a1, a2):
            checks.equal(await client.messages(1), [("lobby", "during the outage", "a1")],
                         f"during the outage {client.name} still gets its node's publishes")
        await b1.quiet(checks, "during the outage nothing crosses nodes")
        dropped = metrics(node_a).get('wsx_redis_dropped_total{reason="disconnected"}', 0)
        checks.check(dropped >= 1, f"the dropped publish is counted: {dropped}")
        fresh = await Client.open(node_b, "b2")
        checks.equal(await fresh.subscribe("lobby"), {"type": "subscribed", "topic": "lobby"},
                     "during the outage a node accepts new clients and subscriptions")

        redis.start()
        await wait_for(lambda: all(metrics(n).get("wsx_redis_connected") == 1 for n in nodes),
                       "the nodes reconnect after Redis restarts", checks, CONNECT_TIMEOUT)
        checks.equal(numsub(redis, lobby), 2, "after reconnecting each node resubscribed lobby")
        checks.check(all(metrics(n)["wsx_redis_reconnects_total"] >= 1 for n in nodes),
                     "reconnects are counted")
        await exactly_once([a1, a2, b1, fresh], [a1, b1, fresh], "lobby", "after reconnect",
                           checks)
        for client in (a1, a2, b1, fresh):
            await client.close()
        for node in nodes:
            log = "\n".join(node.lines)
            checks.check(re.search(r"wsx redis: lost the connection to 127\.0\.0\.1", log),
                         f"the loss is logged: {log[-400:]!r}")
            checks.check(re.search(r"wsx redis: reconnected to .* after \d+ ms", log),
                         "the reconnect is logged with the gap")
            checks.equal(node.stop(), 0, "a node stops cleanly on SIGTERM")


async def password_scenario(wsx, binary, checks):
    """A Redis with requirepass: the password from the URL (percent-encoded) or from
    WSX_REDIS_PASSWORD gets nodes in; a wrong or missing one is refused, logged and retried."""
    password = "p@ss:w/rd"
    redis = RedisServer(binary, free_port(), password)
    redis.start()
    try:
        base = f"127.0.0.1:{redis.port}/secret"
        with_env = dict(os.environ, WSX_REDIS_PASSWORD=password)
        with start_node(wsx, f"redis://:p%40ss%3Aw%2Frd@{base}", 11) as node_a, \
                start_node(wsx, f"redis://{base}", 12, env=with_env) as node_b, \
                start_node(wsx, f"redis://:wrong@{base}", 13) as wrong, \
                start_node(wsx, f"redis://{base}", 14) as missing:
            nodes = [node_a, node_b]
            await wait_for(lambda: all(metrics(n).get("wsx_redis_connected") == 1 for n in nodes),
                           "nodes with the password (URL, environment) connect", checks)
            a = await Client.open(node_a, "a")
            b = await Client.open(node_b, "b")
            for client in (a, b):
                await client.subscribe("vault")
            await wait_for(lambda: numsub(redis, "secret:t:vault") == 2,
                           "both subscribe through the password-protected Redis", checks)
            await a.publish("vault", "across")
            checks.equal(await b.messages(1), [("vault", "across", "a")],
                         "a message crosses nodes on a password-protected Redis")
            await wait_for(lambda: any("AUTH refused" in line for line in wrong.lines),
                           "a wrong password is refused and logged", checks)
            # hiredis ends a subscriber connection whose SUBSCRIBE gets an error reply.
            await wait_for(lambda: any("NOAUTH" in line for line in missing.lines),
                           "a missing password is reported with Redis' NOAUTH", checks)
            for node in (wrong, missing):
                checks.equal(metrics(node).get("wsx_redis_connected"), 0,
                             "a node refused by Redis does not call itself connected")
            for client in (a, b):
                await client.close()
    finally:
        redis.kill()


async def main(wsx):
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        print("redis-server is not installed")
        sys.exit(SKIP)
    checks = Checks("chat_redis")
    result = subprocess.run([wsx, "chat", "--redis", "redis://user@127.0.0.1"],
                            capture_output=True, timeout=TIMEOUT)
    checks.equal(result.returncode, 2, "a bad --redis URL exits 2")
    checks.check(b"the password is missing" in result.stderr,
                 f"... and says why: {result.stderr[:120]!r}")
    redis = RedisServer(binary, free_port())
    redis.start()
    try:
        await asyncio.wait_for(scenario(wsx, redis, f"wsxtest{random.randrange(1 << 30)}",
                                        checks), 50)
    finally:
        redis.kill()
    await asyncio.wait_for(password_scenario(wsx, binary, checks), 30)
    checks.finish()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
