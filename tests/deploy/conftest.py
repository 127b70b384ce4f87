"""pytest set-up for tests/deploy: tests/lib on sys.path, and a helper to
run commands with a bounded time and their output in the failure."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# podman runs rootful (util/containers-setup.sh configures it for root):
# through sudo when the tests do not run as root, as util/install-deps.sh
# uses sudo for apt-get.
SUDO = [] if os.geteuid() == 0 else ["sudo"]


def sh(args, timeout=600, check=True, env=None, cwd=TOP, input=None):
    """Run args (a list), return the CompletedProcess (text); with check,
    a non-zero exit fails with the command's output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if args[0] in ("podman", "podman-compose") and SUDO:
        # sudo drops the environment: pass what was asked for explicitly
        args = SUDO + ["env"] + ["%s=%s" % kv for kv in (env or {}).items()] \
            + list(args)
    r = subprocess.run(args, cwd=cwd, env=full_env, timeout=timeout,
                       capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\n--- stdout\n%s\n--- stderr\n%s"
                             % (" ".join(args), r.returncode, r.stdout[-4000:],
                                r.stderr[-4000:]))
    return r
