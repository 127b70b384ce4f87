"""--token-file is repeatable: a node accepts any of its tokens, which is
how the cluster's token is rotated without downtime (docs/deploying.md):
nodes restarted one at a time with the old and the new token, routers
switched to the new one and reloaded, nodes restarted with the new one
only.  Ports from the suite's range (conftest.next_port)."""

import subprocess

import pytest

from conftest import Client, next_port, seq_version
from skvproc import default_binary


def token_file(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text + "\n")
    return str(f)


def status(p, token, method="GET", path="/v1/kv/k"):
    c = Client(p, token=token)
    try:
        return c.request(method, path).status
    finally:
        c.close()


def test_two_token_files_accept_either_and_nothing_else(daemons, tmp_path):
    old = token_file(tmp_path, "old", "old-t0ken")
    new = token_file(tmp_path, "new", "new-t0ken-longer")
    d = daemons.start(port=next_port(), token="new-t0ken-longer",
                      extra_args=["--token-file", old, "--token-file", new])
    assert Client(d.port, token="old-t0ken").put(
        "k", b"v1", seq_version(1)).status == 201
    assert Client(d.port, token="new-t0ken-longer").put(
        "k", b"v2", seq_version(2)).status == 201
    assert status(d.port, "old-t0ken") == 200
    assert status(d.port, "new-t0ken-longer") == 200
    # neither token, none, a prefix or an extension of one: refused
    for bad in ("other", "old-t0ke", "old-t0ken-", "new-t0ken",
                "old-t0kennew-t0ken-longer", ""):
        assert status(d.port, bad) == 401, bad
    assert status(d.port, None) == 401
    assert status(d.port, None, path="/v1/health") == 401


def test_rotation_by_restarts_keeps_the_data(daemons, tmp_path):
    """The documented procedure on one node: old only, old + new, new only;
    each step a restart on the same data directory."""
    old = token_file(tmp_path, "old", "0ld")
    new = token_file(tmp_path, "new", "n3w")
    p = next_port()
    data = str(tmp_path / "data")
    d = daemons.start(port=p, data_dir=data, token="0ld",
                      extra_args=["--token-file", old])
    assert Client(p, token="0ld").put("k", b"v", seq_version(1)).status == 201
    assert status(p, "n3w") == 401
    d.stop()

    d = daemons.start(port=p, data_dir=data, token="n3w",
                      extra_args=["--token-file", old, "--token-file", new])
    assert status(p, "0ld") == 200 and status(p, "n3w") == 200
    d.stop()

    d = daemons.start(port=p, data_dir=data, token="n3w",
                      extra_args=["--token-file", new])
    assert status(p, "0ld") == 401
    r = Client(p, token="n3w").get("k")
    assert r.status == 200 and r.body == b"v"


def test_non_loopback_with_two_tokens_needs_no_insecure(daemons, tmp_path):
    a = token_file(tmp_path, "a", "aaa")
    b = token_file(tmp_path, "b", "bbb")
    d = daemons.start(port=next_port(), host="0.0.0.0", token="aaa",
                      extra_args=["--token-file", a, "--token-file", b])
    assert "warning" not in d.log_text()
    assert status(d.port, "bbb", path="/v1/health") == 200
    assert status(d.port, None, path="/v1/health") == 401


def run(*args):
    return subprocess.run([default_binary()] + list(args), timeout=20,
                          capture_output=True, text=True)


def test_at_most_four_token_files(tmp_path):
    files = [token_file(tmp_path, "t%d" % i, "tok%d" % i) for i in range(5)]
    args = ["--listen", "127.0.0.1:%d" % next_port(), "--data",
            str(tmp_path / "d")]
    r = run(*(args + [x for f in files for x in ("--token-file", f)]))
    assert r.returncode == 2, r
    assert "at most 4 token files" in r.stderr and files[4] in r.stderr


@pytest.mark.parametrize("text,message", [("two words", "inner space"),
                                          ("", "empty")])
def test_a_bad_second_token_file_is_refused(tmp_path, text, message):
    good = token_file(tmp_path, "good", "g00d")
    bad = token_file(tmp_path, "bad", text)
    r = run("--listen", "127.0.0.1:%d" % next_port(), "--data",
            str(tmp_path / "d"), "--token-file", good, "--token-file", bad)
    assert r.returncode == 2, r
    assert message in r.stderr and bad in r.stderr


def test_help_says_token_file_is_repeatable():
    r = run("--help")
    assert r.returncode == 0
    assert "Repeatable" in r.stdout and "rotated" in r.stdout
