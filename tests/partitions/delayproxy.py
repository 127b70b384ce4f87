"""A TCP forwarder that delays every byte by a fixed time, both ways: a
slow link for the partition tests (the kernel here has no netem).

    python3 delayproxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT \
        DELAY_MS

Each chunk read from one side is written to the other DELAY_MS after it
was read, in order; end of stream is passed on the same way.  The delay
does not depend on throughput (no bandwidth limit), so a request and its
answer each take DELAY_MS more, like a link with that one-way latency.
The delay starts off: SIGUSR1 turns it on, SIGUSR2 off again (bytes
already queued keep their time).  Prints "ready" on stdout once
listening.  Runs until killed.
"""

import asyncio
import collections
import signal
import sys


DELAY = {"on": False, "seconds": 0.0}


class Direction:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.queue = collections.deque()
        self.ready = asyncio.Event()

    @staticmethod
    def delay():
        return DELAY["seconds"] if DELAY["on"] else 0.0

    async def read(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.reader.read(65536)
                self.queue.append((loop.time() + self.delay(), data))
                self.ready.set()
                if not data:
                    return
        except (ConnectionError, OSError):
            self.queue.append((loop.time() + self.delay(), None))
            self.ready.set()

    async def write(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                due, data = self.queue.popleft()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:          # reset: drop the other side
                    self.writer.transport.abort()
                    return
                if not data:              # end of stream
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.writer.transport.abort()


async def handle(creader, cwriter, target):
    try:
        sreader, swriter = await asyncio.wait_for(
            asyncio.open_connection(*target), 10)
    except (OSError, asyncio.TimeoutError):
        cwriter.transport.abort()
        return
    up = Direction(creader, swriter)
    down = Direction(sreader, cwriter)
    await asyncio.gather(up.read(), up.write(), down.read(), down.write(),
                         return_exceptions=True)
    for w in (cwriter, swriter):
        w.close()


async def main(argv):
    host, port, thost, tport, delay_ms = argv[1:6]
    DELAY["seconds"] = int(delay_ms) / 1000.0
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, DELAY.__setitem__, "on", True)
    loop.add_signal_handler(signal.SIGUSR2, DELAY.__setitem__, "on", False)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (thost, int(tport))),
        host, int(port), reuse_address=True, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
