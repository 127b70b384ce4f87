#!/usr/bin/python3
"""chroot-build.py - run a Dockerfile's stages in Debian chroots, on a
machine without a Docker engine.

    docker/chroot-build.py BASE_ROOT WORK_DIR docker/Dockerfile.storaged

BASE_ROOT is a Debian 12 tree made with
`debootstrap --variant=minbase bookworm BASE_ROOT` (close to debian:12-slim;
the script adds the bookworm-updates and bookworm-security sources the
Docker images have).  Each stage (`FROM ... AS name`) gets a fresh copy of
it under WORK_DIR/<stage>; RUN commands run there with chroot(8), as root
or as the `USER` of the stage, with the stage's ENV and WORKDIR; COPY reads
the build context (the top of the repository, as docker-compose.yml says)
or, with --from, another stage's tree.  ARG defaults are substituted.
HEALTHCHECK, CMD, ENTRYPOINT, EXPOSE, VOLUME and STOPSIGNAL are recorded,
not run.

It is an approximation for validating what can be validated here - that
every RUN succeeds on Debian 12 in the order written and that the files
land where the later instructions expect them - not a replacement for
`docker build`: no layers, no user namespaces, and of
<Dockerfile>.dockerignore only plain paths and "**/name" patterns.  Needs
root.
"""

import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def instructions(path):
    """(KEYWORD, argument text) pairs, continuation lines joined."""
    text = open(path).read()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def substitute(text, env):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)",
                  lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
                  text)


class Stage:
    def __init__(self, name, root):
        self.name = name
        self.root = root
        self.env = {}
        self.workdir = "/"
        self.user = "root"

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def run(self, command):
        exports = "".join("export %s=%s; " % (k, shlex.quote(v))
                          for k, v in self.env.items())
        script = "%scd %s && %s" % (exports, shlex.quote(self.workdir),
                                    command)
        argv = ["chroot"]
        if self.user != "root":
            argv.append("--userspec=%s" % self.user)
        argv += [self.root, "/bin/sh", "-c", script]
        print("[%s] RUN %s" % (self.name, command), flush=True)
        subprocess.run(argv, check=True)

    def copy(self, srcs, dest, base, ignore=()):
        dest = self.path(dest if dest.startswith("/")
                         else os.path.join(self.workdir, dest))
        many = len(srcs) > 1 or dest.endswith("/")
        for src in srcs:
            for s in sorted(glob.glob(os.path.join(base, src.lstrip("/")))):
                if os.path.isdir(s):
                    shutil.copytree(s, dest, symlinks=True,
                                    dirs_exist_ok=True,
                                    ignore=ignorer(base, ignore))
                else:
                    target = (os.path.join(dest, os.path.basename(s))
                              if many or os.path.isdir(dest) else dest)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(s, target)


def ignore_patterns(dockerfile):
    path = dockerfile + ".dockerignore"
    if not os.path.exists(path):
        return ()
    return [l.strip() for l in open(path)
            if l.strip() and not l.startswith("#")]


def ignorer(base, patterns):
    def ignore(directory, names):
        rel = os.path.relpath(directory, base)
        out = set()
        for n in names:
            p = os.path.normpath(os.path.join(rel, n))
            for pat in patterns:
                if fnmatch.fnmatch(p, pat) or (
                        pat.startswith("**/") and fnmatch.fnmatch(n, pat[3:])):
                    out.add(n)
        return out
    return ignore


def mount(root):
    for what, where, kind in (("proc", "proc", "proc"),
                              ("/dev", "dev", None)):
        target = os.path.join(root, where)
        if kind:
            subprocess.run(["mount", "-t", kind, what, target], check=True)
        else:
            subprocess.run(["mount", "--bind", what, target], check=True)
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))


def umount(root):
    for where in ("dev", "proc"):
        subprocess.run(["umount", "-l", os.path.join(root, where)])


def build(base_root, work, dockerfile):
    args, stages, current = {}, {}, None
    patterns = ignore_patterns(dockerfile)
    try:
        for word, rest in instructions(dockerfile):
            if word == "ARG":
                k, _, v = rest.partition("=")
                args[k] = v
            elif word == "FROM":
                words = substitute(rest, args).split()
                name = words[2] if len(words) > 2 else "final"
                root = os.path.join(work, name)
                if os.path.exists(root):
                    shutil.rmtree(root)
                print("== stage %s (%s), fresh copy of %s" % (
                    name, words[0], base_root), flush=True)
                os.makedirs(work, exist_ok=True)
                subprocess.run(["cp", "-a", base_root, root], check=True)
                with open(os.path.join(root, "etc/apt/sources.list.d",
                                       "debian.sources"), "w") as f:
                    f.write(SOURCES)
                # As in the Docker debian images: packages must not start
                # services (nginx's would listen on the host's port 80).
                with open(os.path.join(root, "usr/sbin/policy-rc.d"),
                          "w") as f:
                    f.write("#!/bin/sh\nexit 101\n")
                os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
                if os.path.exists(os.path.join(root, "etc/apt/sources.list")):
                    os.unlink(os.path.join(root, "etc/apt/sources.list"))
                mount(root)
                current = stages[name] = Stage(name, root)
            elif word == "RUN":
                current.run(substitute(rest, args))
            elif word == "COPY":
                parts = shlex.split(substitute(rest, {**args,
                                                      **current.env}))
                src_base, ignore = TOP, patterns
                if parts[0].startswith("--from="):
                    src_base = stages[parts.pop(0)[7:]].root
                    ignore = ()
                current.copy(parts[:-1], parts[-1], src_base, ignore)
            elif word == "ENV":
                for pair in shlex.split(rest):
                    k, _, v = pair.partition("=")
                    current.env[k] = substitute(v, current.env)
            elif word == "WORKDIR":
                current.workdir = rest
                os.makedirs(current.path(rest), exist_ok=True)
            elif word == "USER":
                current.user = rest
            else:
                print("[%s] (not run) %s %s" % (current.name, word, rest))
    finally:
        for s in stages.values():
            umount(s.root)
    return stages


def main():
    if len(sys.argv) != 4 or os.geteuid() != 0:
        sys.exit("usage (as root): %s BASE_ROOT WORK_DIR DOCKERFILE"
                 % sys.argv[0])
    build(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]),
          os.path.abspath(sys.argv[3]))


if __name__ == "__main__":
    main()
