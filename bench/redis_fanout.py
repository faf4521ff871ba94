#!/usr/bin/python3
"""Cross-node fan-out through Redis vs. one node: `wsx chat` servers with Python websockets
clients (one process, one clock). A publisher on node A sends MESSAGES chat messages to a room as
fast as a window of WINDOW unacknowledged messages allows (its own copy is the acknowledgement);
SUBSCRIBERS clients in the room receive them. Runs twice: every subscriber on one node without
Redis, then the subscribers split between node A and node B linked by a throwaway redis-server.
Prints deliveries/s and publish-to-receive latency (p50, p99) for subscribers on the publisher's
node and on the other node. The clients are Python, so absolute rates are the client's limit;
the latency difference between local and remote subscribers is the cost of the Redis hop.

Usage: bench/redis_fanout.py [-b BUILD_DIR] [-n SUBSCRIBERS] [-m MESSAGES] [-w WINDOW]"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "chat"))
from interop_support import WsxProcess, require_websockets  # noqa: E402
from chat_redis import RedisServer, free_port  # noqa: E402

websockets = require_websockets()


async def client(port, topic):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None)
    await ws.recv()  # welcome
    await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
    await ws.recv()  # subscribed
    return ws


async def receiver(ws, count, latencies):
    for _ in range(count):
        message = json.loads(await ws.recv())
        latencies.append(time.perf_counter() - message["data"]["t"])


async def run(ports, subscribers, messages, window, settle):
    topic = "bench"
    subs = [await client(ports[i % len(ports)], topic) for i in range(subscribers)]
    publisher = await client(ports[0], topic)
    await asyncio.sleep(settle)  # every node's SUBSCRIBE is in
    local, remote = [], []
    tasks = [asyncio.create_task(receiver(ws, messages, local if i % len(ports) == 0 else remote))
             for i, ws in enumerate(subs)]
    start = time.perf_counter()
    sent = acked = 0
    while acked < messages:
        while sent < messages and sent - acked < window:
            data = {"i": sent, "t": time.perf_counter()}
            await publisher.send(json.dumps({"type": "publish", "topic": topic, "data": data}))
            sent += 1
        await publisher.recv()
        acked += 1
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    elapsed = time.perf_counter() - start
    for ws in subs + [publisher]:
        await ws.close()
    return subscribers * messages / elapsed, local, remote


def describe(name, values):
    if not values:
        return f"{name}: -"
    values = sorted(values)
    p50 = values[len(values) // 2] * 1000
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
    return f"{name} p50 {p50:.2f} ms p99 {p99:.2f} ms (mean {statistics.mean(values) * 1000:.2f})"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-b", default="build")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("-m", type=int, default=1000)
    parser.add_argument("-w", type=int, default=16)
    args = parser.parse_args()
    wsx = os.path.join(args.b, "apps", "wsx")
    server = ["chat", "--address", "127.0.0.1", "--port", "0", "--threads", "1"]

    with WsxProcess(wsx, server) as single:
        rate, local, _ = await run([single.port], args.n, args.m, args.w, 0.1)
    print(f"one node:  {args.n} subscribers x {args.m} messages: {rate:.0f} deliveries/s; "
          + describe("latency", local))

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    redis = RedisServer(binary, free_port())
    redis.start()
    try:
        url = f"redis://127.0.0.1:{redis.port}/bench"
        with WsxProcess(wsx, server + ["--redis", url]) as a, \
                WsxProcess(wsx, server + ["--redis", url]) as b:
            rate, local, remote = await run([a.port, b.port], args.n, args.m, args.w, 0.5)
    finally:
        redis.kill()
    print(f"two nodes: {args.n} subscribers x {args.m} messages: {rate:.0f} deliveries/s; "
          + describe("same node", local) + "; " + describe("other node", remote))


if __name__ == "__main__":
    asyncio.run(main())
