"""skv's command line without a cluster: help, version, usage errors (exit
2, nothing sent) and an unreachable router (exit 3)."""

import os

from conftest import DOWN_PORT, clean_env, run_skv

DOWN_URL = "http://127.0.0.1:%d" % DOWN_PORT


def test_version():
    r = run_skv("--version")
    assert r.rc == 0, r
    assert r.out == b"skv (simplekv) 0.1.0\n"


def test_help_lists_every_command():
    r = run_skv("--help")
    assert r.rc == 0, r
    for word in (b"put KEY", b"get KEY", b"rm KEY", b"ls [PREFIX]",
                 b"status", b"--url", b"SIMPLEKV_URL", b"--hex",
                 b"--encoded", b"Exit status"):
        assert word in r.out


def test_no_command_is_usage_error():
    r = run_skv()
    assert r.rc == 2, r
    assert "usage: skv" in r.err


def one_line_error(r, *needles):
    assert r.out == b"", r
    assert r.err.endswith("\n") and r.err.count("\n") == 1, r
    assert r.err.startswith("skv: "), r
    for n in needles:
        assert n in r.err, r


def test_usage_errors_exit_2_without_contacting_the_router():
    # The router URL points nowhere: a request would give exit 3, not 2.
    cases = [
        (("frob",), "unknown command"),
        (("--bogus", "get", "k"), "unknown option --bogus"),
        (("get",), "exactly one KEY"),
        (("get", "a", "b"), "exactly one KEY"),
        (("rm",), "exactly one KEY"),
        (("put",), "put takes KEY"),
        (("put", "k", "f", "g"), "put takes KEY"),
        (("ls", "a", "b"), "at most one PREFIX"),
        (("status", "x"), "no operands"),
        (("get", ""), "empty key"),
        (("get", "k" * 1025), "key too long"),
        (("--hex", "get", "0g"), "not a hex byte"),
        (("--hex", "get", "abc"), "odd number"),
        (("--encoded", "get", "a%zz"), "bad percent-encoding"),
        (("--encoded", "get", "%41" * 1025), "key too long"),
        (("--hex", "--encoded", "get", "41"), "exclude each other"),
        (("-t", "text/plain", "get", "k"), "for put only"),
        (("-o", "/tmp/x", "put", "k"), "for get only"),
        (("--json", "ls"), "--json is for status, rebalance"),
        (("--page-size", "5", "get", "k"), "for ls only"),
        (("--page-size", "0", "ls"), "--page-size wants a number"),
        (("--page-size", "10001", "ls"), "--page-size wants a number"),
        (("--hex", "status"), "commands that take keys"),
        (("--url", "ftp://127.0.0.1/", "get", "k"), "not an http://"),
        (("get", "k", "--url"), "needs a value"),
    ]
    for args, needle in cases:
        r = run_skv(*args, url=None if "--url" in args else DOWN_URL)
        assert r.rc == 2, (args, r)
        one_line_error(r, needle)


def test_key_of_1024_bytes_is_accepted_locally():
    # Passes validation, so it reaches the (absent) router: exit 3.
    r = run_skv("get", "k" * 1024, url=DOWN_URL)
    assert r.rc == 3, r
    r = run_skv("--hex", "get", "00" * 1024, url=DOWN_URL)
    assert r.rc == 3, r


def test_router_down_is_exit_3_with_one_line():
    for args in (("get", "k"), ("put", "k", "/dev/null"), ("rm", "k"),
                 ("ls",), ("status",)):
        r = run_skv(*args, url=DOWN_URL)
        assert r.rc == 3, (args, r)
        one_line_error(r, DOWN_URL, "onnect")


def test_url_from_environment_and_flag_precedence():
    env = clean_env(SIMPLEKV_URL=DOWN_URL + "/")
    r = run_skv("get", "k", env=env)
    assert r.rc == 3
    assert DOWN_URL in r.err and DOWN_URL + "/" not in r.err, r

    other = "http://127.0.0.1:%d" % (DOWN_PORT - 1)
    r = run_skv("get", "k", url=other, env=env)
    assert r.rc == 3
    assert other in r.err and DOWN_URL not in r.err, r

    env = clean_env(SIMPLEKV_URL="localhost:1")
    r = run_skv("get", "k", env=env)
    assert r.rc == 2 and "SIMPLEKV_URL" in r.err, r


def test_put_of_a_missing_file_is_exit_3(tmp_path):
    r = run_skv("put", "k", str(tmp_path / "nope"), url=DOWN_URL)
    assert r.rc == 3, r
    one_line_error(r, "cannot open", "No such file")


def test_get_output_file_untouched_when_router_down(tmp_path):
    out = tmp_path / "value"
    out.write_bytes(b"previous")
    r = run_skv("get", "k", "-o", str(out), url=DOWN_URL)
    assert r.rc == 3, r
    assert out.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["value"]  # no temporary left behind
