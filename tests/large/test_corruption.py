"""A flipped byte in one replica's stored value is detected and repaired.

Node c is stopped, one byte inside a chunk of its Berkeley DB file
(chunks.db) is flipped (found by a marker: the first bytes of one of the
generator's 1 MiB blocks, unique in the file), and c is started again.
Then c never serves the damaged bytes (it drops its copy as soon as a
read finds the damage: docs/protocol.md, "Large values"), a GET through
the router returns the right value, and afterwards, after that GET's read
repair or else after `skv repair`, c holds a correct copy again."""

import os

from bigvalue import Gen, digest_header, get_stream, put_stream
from conftest import CS, MIB, holds, wait_held_everywhere

VICTIM = "c"


def flip_in_file(path, marker):
    with open(path, "r+b") as f:
        data = f.read()
        at = data.find(marker)
        assert at >= 0, "marker not found in %s" % path
        assert data.find(marker, at + 1) < 0, "marker found twice"
        f.seek(at + len(marker) // 2)
        f.write(bytes([data[at + len(marker) // 2] ^ 0x01]))


def router_get_ok(cluster, path, gen):
    g = get_stream(cluster.port, path)
    assert g.status == 200 and g.complete, g
    assert g.sha == gen.sha()
    assert g.header("Repr-Digest") == digest_header(gen.sha())


def repaired(cluster, path, gen):
    """Whether the victim holds gen whole again; if the router's read
    repair did not write it back, `skv repair` must."""
    node = cluster.nodes[VICTIM]
    if not holds(node, path, gen):
        rc, out, err = cluster.skv("repair")
        assert rc == 0, (out, err)
    g = get_stream(node.port, "/v1/kv" + path)
    return g.status == 200 and g.complete and g.sha == gen.sha()


def test_flipped_byte_detected_and_repaired(cluster):
    size = 3 * MIB + 1234
    first = Gen(400, size)      # damaged in chunk 0: found before headers
    later = Gen(401, size)      # damaged in chunk 8: found mid-stream
    for path, gen in (("/dmg-first", first), ("/dmg-later", later)):
        assert put_stream(cluster.port, path, gen)[0] == 201
        wait_held_everywhere(cluster, path, gen)
    node = cluster.nodes[VICTIM]
    node.stop()
    chunks_db = os.path.join(node.data_dir, "chunks.db")
    flip_in_file(chunks_db, first.at(0, 64))
    flip_in_file(chunks_db, later.at(2 * MIB, 64))
    assert (2 * MIB) // CS == 8
    node.start()
    assert cluster.stats(VICTIM)["corrupt_values"] == 0

    # Found before the headers: c answers as a node without the key.
    g = get_stream(node.port, "/v1/kv/dmg-first")
    assert g.status == 404, g
    assert cluster.stats(VICTIM)["corrupt_values"] == 1
    router_get_ok(cluster, "/dmg-first", first)
    assert repaired(cluster, "/dmg-first", first)

    # Found mid-stream.  Through the router first, a few times (which
    # holder streams a GET is the router's choice), until c met the
    # damage or the router never asked it: every answer is the whole,
    # right value.
    for _ in range(6):
        g = get_stream(cluster.port, "/dmg-later")
        assert g.complete, (
            "the router's answer was cut short after %d bytes: it streamed "
            "from the damaged replica, which closed the connection at the "
            "damaged chunk; the router must not leave its client with that "
            "(e.g. go on from another holder of the version with a Range "
            "and X-Simplekv-If-Version): %r" % (g.n, g))
        router_get_ok(cluster, "/dmg-later", later)
        if cluster.stats(VICTIM)["corrupt_values"] == 2:
            break
    g = get_stream(node.port, "/v1/kv/dmg-later")
    # c never serves the damaged bytes: a short body, a 404 once dropped,
    # or the right value once repaired.
    if g.status == 200 and g.complete:
        assert g.sha == later.sha()
    else:
        assert g.status in (200, 404), g
        assert g.n <= 8 * CS
    assert cluster.stats(VICTIM)["corrupt_values"] == 2
    router_get_ok(cluster, "/dmg-later", later)
    assert repaired(cluster, "/dmg-later", later)
    # The dropped copies' chunks are collected: c keeps exactly those of
    # the two good copies.
    cluster.wait_stats(VICTIM, lambda s: s["chunk_uploads_pending"] == 0
                       and s["chunks"] == cluster.stats("a")["chunks"],
                       what="chunks as many as node a's")


def test_damage_found_mid_stream_is_continued_from_another_holder(cluster):
    """Several values, each damaged on c in a later chunk: every GET
    through the router answers the whole, right value.  Whenever the
    router streamed one from c (which holder streams is the router's
    choice: about one in three), c dropped its copy and closed the
    connection at the damaged chunk, and the router went on from another
    holder with a Range (docs/router.md, "Large values") instead of
    cutting its client's answer short."""
    size = 3 * MIB + 1234
    gens = {"/dmg-mid%d" % i: Gen(410 + i, size) for i in range(8)}
    for path, gen in gens.items():
        assert put_stream(cluster.port, path, gen)[0] == 201
        wait_held_everywhere(cluster, path, gen)
    node = cluster.nodes[VICTIM]
    node.stop()
    for gen in gens.values():
        flip_in_file(os.path.join(node.data_dir, "chunks.db"),
                     gen.at(2 * MIB, 64))
    node.start()
    for path, gen in gens.items():
        log = cluster.router.error_log_text()
        stopped = log.count('node "%s" stopped after' % VICTIM)
        resumed = log.count("simplekv: continuing a value")
        g = get_stream(cluster.port, path)
        assert g.complete, (
            "the router's answer was cut short after %d bytes: %r"
            % (g.n, g))
        assert g.status == 200 and g.sha == gen.sha(), g
        # each stream c cut short at its damaged chunk was continued
        log = cluster.router.error_log_text()
        assert (log.count("simplekv: continuing a value") - resumed
                >= log.count('node "%s" stopped after' % VICTIM) - stopped)
        assert "closing the client's connection" not in log
