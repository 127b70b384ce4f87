"""A TCP forwarder that can hold back one request, for fault tests.

Sits between the router and one storaged (127.0.0.1:port -> 127.0.0.1:
target) and copies bytes both ways.  hold(marker) makes it stop, once,
at the first chunk the router sends that contains `marker` (e.g. the
value of one PUT) until release(): that replica request then reaches the
node late, after requests the router sent later on other connections.
It does not parse HTTP; it only looks for the marker in the byte stream,
which is enough to pick one request whose body the test chose.
"""

import socket
import threading


class HoldProxy:
    def __init__(self, port, target):
        self.port = port
        self.target = target
        self._marker = None
        self.held = threading.Event()      # set when the chunk is held
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._listener = None
        self._socks = []
        self._closing = False

    def start(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def hold(self, marker):
        with self._lock:
            self._marker = marker
            self.held.clear()
            self._release.clear()

    def release(self):
        self._release.set()

    def stop(self):
        self._closing = True
        self._release.set()
        for s in [self._listener] + self._socks:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target),
                                                  timeout=5)
            except OSError:
                client.close()      # node down: the router sees a reset
                continue
            server.settimeout(None)
            self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src, dst, upstream):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and self._take(data):
                    # bounded, so a test that forgets release() cannot hang
                    self._release.wait(30)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _take(self, data):
        with self._lock:
            if self._marker is not None and self._marker in data:
                self._marker = None
                self.held.set()
                return True
        return False
