"""storaged's command line: --help, --version, and clear start-up errors."""

import subprocess

import pytest

from conftest import Client, next_port, seq_version
from skvproc import default_binary


def run(*args, timeout=20):
    return subprocess.run([default_binary()] + list(args), timeout=timeout,
                          capture_output=True, text=True)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == "simplekv storaged 0.1.0"


def test_help_lists_every_option():
    r = run("--help")
    assert r.returncode == 0
    for opt in ("--listen", "--data", "--durability", "--threads",
                "--cache-size", "--token-file", "--max-value-size",
                "--tombstone-grace", "--max-clock-skew", "--max-connections",
                "--idle-timeout", "--first-request-timeout", "--insecure",
                "--help", "--version"):
        assert opt in r.stdout
    # Purging on age alone is not safe by itself: the help says what else
    # it takes (the repair watermark, no epoch transition).
    assert "default:\n" in r.stdout and "never" in r.stdout
    assert "repair watermark" in r.stdout and "none set: no purge" in \
        r.stdout and "epoch transition" in r.stdout


@pytest.mark.parametrize("args,message", [
    ([], "--listen"),
    (["--listen", "127.0.0.1:1"], "--data"),
    (["--listen", "127.0.0.1:99999", "--data", "d"], "bad port"),
    (["--listen", "[::1:5", "--data", "d"], "[ADDR]:PORT"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--durability", "maybe"],
     "durability"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--threads", "0"],
     "threads"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--cache-size", "12q"],
     "cache-size"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--max-value-size", "0"],
     "max-value-size"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--tombstone-grace", "-1"],
     "tombstone-grace"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--tombstone-grace", "1y"],
     "tombstone-grace"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--max-clock-skew", "5x"],
     "max-clock-skew"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--max-clock-skew", "s"],
     "max-clock-skew"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--max-connections", "0"],
     "max-connections"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--idle-timeout", "0"],
     "idle-timeout"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--idle-timeout", "2w"],
     "idle-timeout"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--first-request-timeout",
      "-1"], "first-request-timeout"),
    (["--listen", "127.0.0.1:1", "--data", "d", "--token-file",
      "/nonexistent/token"], "/nonexistent/token"),
    (["--bogus"], "--bogus"),
    (["--listen", "127.0.0.1:1", "--data", "d", "extra"], "extra"),
])
def test_bad_command_lines(tmp_path, args, message):
    args = [a if a != "d" else str(tmp_path / "d") for a in args]
    r = run(*args)
    assert r.returncode == 2, r
    assert message in r.stderr
    assert r.stderr.startswith("storaged: ")


def test_empty_token_file_is_refused(tmp_path):
    tf = tmp_path / "token"
    tf.write_text("\n")
    r = run("--listen", "127.0.0.1:%d" % next_port(), "--data",
            str(tmp_path / "d"), "--token-file", str(tf))
    assert r.returncode == 2 and "empty" in r.stderr


def test_second_daemon_on_same_directory_is_refused(daemons, tmp_path):
    d = daemons.start()
    r = run("--listen", "127.0.0.1:%d" % next_port(), "--data", d.data_dir)
    assert r.returncode == 1
    assert "in use by another storaged" in r.stderr
    assert Client(d.port).put("still", b"ok", seq_version(1)).status == 201


def test_port_in_use_is_a_clear_error(daemons, tmp_path):
    d = daemons.start()
    r = run("--listen", "127.0.0.1:%d" % d.port, "--data",
            str(tmp_path / "other"))
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1:%d" % d.port in r.stderr


def test_sigint_is_a_clean_stop(daemons):
    import signal
    d = daemons.start()
    Client(d.port).put("k", b"v", seq_version(1))
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(20) == 0


def test_tuning_options_and_bare_port(daemons, tmp_path):
    """--threads, --cache-size and a bare --listen PORT (loopback) work."""
    port = next_port()
    d = daemons.start(port=port, extra_args=["--threads", "1",
                                             "--cache-size", "256k"])
    c = Client(d.port)
    for i in range(200):
        assert c.put("k%d" % i, b"v" * 500, seq_version(i + 1)).status == 201
    assert c.get("k7").body == b"v" * 500
    c.close()
    d.stop()
    other = next_port()
    r = subprocess.Popen([default_binary(), "--listen", str(other), "--data",
                          str(tmp_path / "bare")], stderr=subprocess.PIPE,
                         text=True)
    try:
        line = r.stderr.readline()
        assert "on %d" % other in line, line
        assert Client(other).request("GET", "/v1/health").status == 200
    finally:
        r.terminate()
        assert r.wait(20) == 0


def started_line(tmp_path, name, *args, cpus=None):
    """storaged's first stderr line when started with args (on the given
    CPUs only, with taskset), then stopped."""
    port = next_port()
    cmd = [default_binary(), "--listen", "127.0.0.1:%d" % port, "--data",
           str(tmp_path / name)] + list(args)
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        return p.stderr.readline()
    finally:
        p.terminate()
        assert p.wait(20) == 0


def test_default_threads_follow_the_cpus(tmp_path):
    """--threads defaults to one per CPU storaged may run on, at least 2
    (4 with --durability fsync); an explicit --threads wins."""
    import os
    cpus = len(os.sched_getaffinity(0))
    line = started_line(tmp_path, "all")
    assert "(durability process, %d threads)" % max(2, cpus) in line, line
    line = started_line(tmp_path, "one", cpus="0")
    assert "(durability process, 2 threads)" in line, line
    line = started_line(tmp_path, "fsync", "--durability", "fsync", cpus="0")
    assert "(durability fsync, 4 threads)" in line, line
    line = started_line(tmp_path, "three", "--threads", "3", cpus="0")
    assert "(durability process, 3 threads)" in line, line


@pytest.mark.parametrize("listen", ["0.0.0.0:%d", "[::]:%d",
                                    "192.0.2.2:%d"])
def test_non_loopback_needs_a_token(tmp_path, listen):
    r = run("--listen", listen % next_port(), "--data", str(tmp_path / "d"))
    assert r.returncode == 2, r
    assert "refusing to listen" in r.stderr
    assert "--token-file" in r.stderr and "--insecure" in r.stderr


def test_non_loopback_with_insecure_or_token(daemons, tmp_path):
    d = daemons.start(host="0.0.0.0", extra_args=["--insecure"])
    assert "warning: --insecure" in d.log_text()
    c = Client(d.port)  # reaches 0.0.0.0 through 127.0.0.1
    assert c.put("open", b"v", seq_version(1)).status == 201
    c.close()
    tf = tmp_path / "token"
    tf.write_text("t0ken\n")
    d = daemons.start(host="0.0.0.0", extra_args=["--token-file", str(tf)],
                      token="t0ken")
    assert "warning" not in d.log_text()
    assert Client(d.port).request("GET", "/v1/kv/open").status == 401
    assert Client(d.port, token="t0ken").put(
        "t", b"v", seq_version(1)).status == 201


def test_any_loopback_address_needs_no_token(daemons):
    d = daemons.start(host="127.0.0.2")
    c = Client(d.port, host="127.0.0.2")
    assert c.put("lo", b"v", seq_version(1)).status == 201
    assert "warning" not in d.log_text()


def test_token_file_is_trimmed_at_both_ends(daemons, tmp_path):
    """The router and storaged read a token file the same way
    (core/skv_token.h): white space around the first line is not part of
    the token."""
    tf = tmp_path / "token"
    tf.write_text(" \t s3cret \r\nsecond line\n")
    d = daemons.start(extra_args=["--token-file", str(tf)], token="s3cret")
    assert Client(d.port, token="s3cret").put(
        "k", b"v", seq_version(1)).status == 201
    assert Client(d.port, token=" \t s3cret").request(
        "GET", "/v1/kv/k").status == 401


@pytest.mark.parametrize("text,message", [
    ("two words\n", "inner space"), ("tab\there\n", "inner space"),
    ("  \r\n", "empty"), ("\nlater\n", "empty"),
])
def test_bad_token_files_are_refused(tmp_path, text, message):
    tf = tmp_path / "token"
    tf.write_text(text)
    r = run("--listen", "127.0.0.1:%d" % next_port(), "--data",
            str(tmp_path / "d"), "--token-file", str(tf))
    assert r.returncode == 2, r
    assert message in r.stderr and str(tf) in r.stderr
