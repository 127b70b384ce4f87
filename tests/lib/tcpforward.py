"""A TCP forwarder for tests: 127.0.0.1:port -> 127.0.0.1:target, bytes
copied both ways, one thread per direction and connection.  Subclasses see
every chunk sent towards the target before it goes on (upstream_data):
tests/cluster/holdproxy.py holds one back, tests/hostile keeps a copy.  It
does not parse HTTP."""

import socket
import threading


class Forwarder:
    backlog = 64

    def __init__(self, port, target):
        self.port = port
        self.target = target
        self._listener = None
        self._socks = []
        self._closing = False

    def start(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(self.backlog)
        self._listener = ls
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._closing = True
        for s in [self._listener] + self._socks:
            try:
                s.close()
            except OSError:
                pass

    def upstream_data(self, data):
        """Called with each chunk sent towards the target, before it is
        sent on."""

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
                client.close()      # target down: the client sees a reset
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
                if upstream:
                    self.upstream_data(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
