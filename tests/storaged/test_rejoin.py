"""Rejoining with stale data (docs/membership.md, "Rejoining"): with
--tombstone-grace, storaged refuses to serve a data directory that was
last served longer ago than the grace (a node down too long, a directory
restored from an old backup), unless --accept-stale-data; it records that
it serves its data while it runs, at start and at shutdown, so that a
node that was up, or briefly down, always rejoins."""

import time

import pytest

from conftest import Client, seq_version
from skvproc import StoragedError


def put_one(d):
    c = Client(d.port)
    assert c.put("k", b"value", seq_version(1)).status == 201
    c.close()


def read_one(d):
    c = Client(d.port)
    r = c.get("k")
    c.close()
    return r


def test_down_longer_than_the_grace_is_refused(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    put_one(d)
    assert d.stop() == 0
    time.sleep(2.5)
    with pytest.raises(StoragedError) as e:
        d.start()
    assert "exited with 1" in str(e.value)
    assert "longer than --tombstone-grace" in d.log_text()
    assert "--accept-stale-data" in d.log_text()
    # told that it may: it serves, and warns
    d.extra_args.append("--accept-stale-data")
    d.start()
    r = read_one(d)
    assert r.status == 200 and r.body == b"value"
    assert "warning: --accept-stale-data" in d.log_text()
    # that start was recorded: a quick restart no longer needs the flag
    assert d.stop() == 0
    d.extra_args.remove("--accept-stale-data")
    d.start()


def test_a_brief_restart_rejoins(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1h"])
    put_one(d)
    d.kill9()
    time.sleep(1.2)
    d.start()
    assert read_one(d).status == 200


def test_a_running_node_keeps_recording_that_it_serves(daemons):
    """With a 2 s grace the mark is renewed every second: a node that ran
    for longer than the grace and then crashed rejoins at once (only the
    mark at start would be too old by then)."""
    d = daemons.start(extra_args=["--tombstone-grace", "2"])
    put_one(d)
    time.sleep(4)
    d.kill9()
    d.start()
    assert read_one(d).status == 200


def test_without_a_grace_nothing_is_refused(daemons):
    d = daemons.start()
    put_one(d)
    assert d.stop() == 0
    time.sleep(1.5)
    # purging off: nothing can have been purged elsewhere on its account
    d.start()
    assert read_one(d).status == 200


def test_a_new_directory_starts(daemons, tmp_path):
    d = daemons.start(extra_args=["--tombstone-grace", "1"],
                      data_dir=str(tmp_path / "fresh"))
    assert read_one(d).status == 404
