"""A TCP forwarder that can hold back one request, for fault tests.

Sits between the router and one storaged (127.0.0.1:port -> 127.0.0.1:
target) and copies bytes both ways.  hold(marker) makes it stop, once,
at the first chunk the router sends that contains `marker` (e.g. the
value of one PUT) until release(): that replica request then reaches the
node late, after requests the router sent later on other connections.
It does not parse HTTP; it only looks for the marker in the byte stream,
which is enough to pick one request whose body the test chose.
"""

import threading

from tcpforward import Forwarder


class HoldProxy(Forwarder):
    def __init__(self, port, target):
        super().__init__(port, target)
        self._marker = None
        self.held = threading.Event()      # set when the chunk is held
        self._release = threading.Event()
        self._lock = threading.Lock()

    def hold(self, marker):
        with self._lock:
            self._marker = marker
            self.held.clear()
            self._release.clear()

    def release(self):
        self._release.set()

    def stop(self):
        self._release.set()
        super().stop()

    def upstream_data(self, data):
        if self._take(data):
            # bounded, so a test that forgets release() cannot hang
            self._release.wait(30)

    def _take(self, data):
        with self._lock:
            if self._marker is not None and self._marker in data:
                self._marker = None
                self.held.set()
                return True
        return False
