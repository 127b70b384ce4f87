"""pytest set-up for the cluster suite: puts tests/lib on sys.path so the
tests import the shared helpers (skvproc, router, linearizability)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
