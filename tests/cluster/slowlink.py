"""A slow link between the router and one storaged, for the cluster
suite: tests/partitions/delayproxy.py (127.0.0.1:port -> 127.0.0.1:target)
run as a child process, every chunk delayed by delay_ms in each direction
once on() is called (off at start, so that the cluster starts quickly)."""

import os
import signal
import subprocess
import sys

DELAYPROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          os.pardir, "partitions", "delayproxy.py")


class SlowLink:
    def __init__(self, port, target, delay_ms):
        self.port = port
        self.target = target
        self.delay_ms = delay_ms
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, DELAYPROXY, "127.0.0.1", str(self.port),
             "127.0.0.1", str(self.target), str(self.delay_ms)],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("delayproxy did not start: %r" % line)
        return self

    def on(self):
        self.proc.send_signal(signal.SIGUSR1)

    def off(self):
        self.proc.send_signal(signal.SIGUSR2)

    def release(self):
        """(HoldProxy's interface: nothing is held here.)"""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()
