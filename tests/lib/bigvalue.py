"""bigvalue - large values for tests, never whole in memory.

A value is generated as it is sent from a seed (Gen), and what comes back
is hashed as it arrives (get_stream): a test of a 1 GiB value holds about
1 MiB of it at a time.  Shared by tests/storaged/test_large.py (storaged
directly) and tests/large/ (through the router), which pass the request
path (/v1/kv/<key> for a node, /<key> for a router).

    gen = Gen(7, 100 << 20)
    status, hdrs, body = put_stream(port, "/k", gen)
    got = get_stream(port, "/k")
    assert got.complete and got.sha == gen.sha()
"""

import base64
import hashlib
import http.client
import random
import socket

MIB = 1 << 20


class Gen:
    """size bytes from seed, in blocks of 1 MiB: a random 1 MiB base per
    seed, each block starting with its number (so no two blocks of a value,
    nor two values of different seeds, are alike: the first bytes of a
    block are a marker found once in a node's files)."""

    def __init__(self, seed, size):
        self.seed, self.size = seed, size
        self.base = random.Random(seed).randbytes(MIB)
        self._sha = None

    def blocks(self):
        done, i = 0, 0
        while done < self.size:
            n = min(MIB, self.size - done)
            block = (i.to_bytes(8, "little") + self.base[8:])[:n]
            yield block
            done += n
            i += 1

    def at(self, off, n):
        """Bytes [off, off + n) of the value (n small)."""
        out = b""
        while n > 0:
            i, o = divmod(off, MIB)
            block = i.to_bytes(8, "little") + self.base[8:]
            k = min(n, MIB - o)
            out += block[o:o + k]
            off += k
            n -= k
        return out

    def sha(self):
        """Hex SHA-256 of the whole value (computed once)."""
        if self._sha is None:
            h = hashlib.sha256()
            for b in self.blocks():
                h.update(b)
            self._sha = h.hexdigest()
        return self._sha

    def range_sha(self, start, length):
        h = hashlib.sha256()
        pos = 0
        for b in self.blocks():
            lo, hi = max(start, pos), min(start + length, pos + len(b))
            if lo < hi:
                h.update(b[lo - pos:hi - pos])
            pos += len(b)
        return h.hexdigest()


def b64sha(hexdigest):
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def digest_header(hexdigest):
    """An RFC 9530 field value: sha-256=:<base64>:"""
    return "sha-256=:%s:" % b64sha(hexdigest)


def put_stream(port, path, gen, headers=None, chunked=False,
               stop_after=None, timeout=600, on_sent=None):
    """PUT gen's value to path, with Content-Length or chunked.
    stop_after: send only that many bytes, then return the open connection
    (for a kill -9 or a client going away).  on_sent(n) is called after
    each block.  Returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(gen.size))
    conn.endheaders()
    sent = 0
    try:
        for block in gen.blocks():
            if stop_after is not None and sent + len(block) > stop_after:
                block = block[:stop_after - sent]
            if chunked:
                conn.send(b"%x\r\n" % len(block) + block + b"\r\n")
            else:
                conn.send(block)
            sent += len(block)
            if on_sent is not None:
                on_sent(sent)
            if stop_after is not None and sent >= stop_after:
                return conn
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass        # answered (and closed) before the body: read it
    resp = conn.getresponse()
    body = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, hdrs, body


class Got:
    def __init__(self, status, headers, n, sha, complete, body):
        self.status, self.headers, self.n, self.sha = (status, headers, n,
                                                       sha)
        self.complete, self.body = complete, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<Got %d %d bytes complete=%s %r %r>" % (
            self.status, self.n, self.complete, self.headers,
            self.body[:200])


def get_stream(port, path, headers=None, method="GET", timeout=600):
    """GET path, hashing the body as it comes (a body of at most 64 KiB is
    also kept).  complete is False when the connection closed before
    Content-Length bytes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    h, n, complete, small = hashlib.sha256(), 0, True, b""
    try:
        while True:
            piece = resp.read(MIB)
            if not piece:
                break
            h.update(piece)
            if n < 65536:
                small += piece[:65536 - n]
            n += len(piece)
    except (http.client.IncompleteRead, ConnectionError, socket.timeout):
        complete = False
    if method == "GET" and "content-length" in hdrs \
            and n != int(hdrs["content-length"]):
        complete = False
    conn.close()
    return Got(resp.status, hdrs, n, h.hexdigest(), complete, small)
