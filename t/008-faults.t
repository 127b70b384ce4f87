# Faults with 3 real nodes, N=3 W=2 R=2: one node killed (kill -9) changes
# nothing a client can see, also under concurrent load; two nodes down give
# 503 JSON, two frozen 504 JSON within the replica timeout, never a hang; a
# node that missed writes while down is repaired by a read, and then holds
# the newest version itself (checked directly against that storaged).

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket;

# --- skv_check eval: a sub run after each response (e.g. to look into one
# storaged directly once the router has answered).
add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;
    my $check = $block->skv_check;
    $check->($block->name, $body, $req_idx) if ref $check eq 'CODE';
});

# TESTs 3 and 4: concurrent clients with a fault injected (see run_load):
# every request gets its normal answer, with work on both sides of it.
sub load_with_fault {
    my ($name, %opt) = @_;
    my %r = SimplekvTest::run_load(clients => 4, %opt);
    Test::More::ok(!defined $r{stalled}, "$name - the clients kept going")
        or Test::More::diag($r{stalled});
    Test::More::cmp_ok($r{before}, '>=', $opt{before}, "$name - requests before the fault ($r{before})");
    Test::More::cmp_ok($r{after}, '>=', $opt{after}, "$name - requests after it ($r{after})");
    my @e = @{ $r{errors} };
    Test::More::is(scalar @e, 0, "$name - no client-visible errors ($r{total} requests)")
        or Test::More::diag(join "\n", @e[0 .. ($#e < 9 ? $#e : 9)]);
}

# The replica timeout of TESTs 8 and 9, whose bounds are fractions of it:
# time spent waiting for the frozen node shows against the time nginx
# takes to answer, also under valgrind.
our $FrozenTimeout = $SimplekvTest::Slowdown;

plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: one node killed: PUT, GET, HEAD, DELETE all still succeed
--- skv_tests: 10
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::kill_node('b');
--- request eval
["PUT /oneDown\nstill here", "GET /oneDown", "HEAD /oneDown", "DELETE /oneDown", "GET /oneDown"]
--- error_code eval
[201, 200, 200, 204, 404]
--- response_body eval
[qr/.*/s, "still here", "", "", qr/.*/s]
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 2: a value written before the kill is read after it
--- skv_tests: 2
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::router_put('/writtenBefore', 'survives');
SimplekvTest::kill_node('a');
--- request
GET /writtenBefore
--- response_body chomp
survives
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 3: kill -9 of a node during concurrent reads and writes: no errors
--- skv_tests: 5
--- config eval
$SimplekvTest::QuorumLocation
--- init
main::load_with_fault($block->name, before => 100, after => 300,
    during => sub { SimplekvTest::kill_node('c') });
--- request
GET /load0
--- error_code_like: ^(?:200|404)$
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 4: a node killed and restarted during concurrent load: no errors
--- skv_tests: 5
--- config eval
$SimplekvTest::QuorumLocation
--- init
# the restarted node is behind stale keep-alive connections in nginx's pool
main::load_with_fault($block->name, before => 100, after => 300,
    during => sub {
        my ($wait) = @_;
        SimplekvTest::kill_node('a');
        $wait->(150);                   # requests while a is down
        SimplekvTest::start_node('a');
    });
--- request
GET /load1
--- error_code_like: ^(?:200|404)$
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 5: two nodes killed: PUT and GET are 503 JSON, quickly
--- skv_tests: 9
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::router_put('/twoDown', 'unreachable now');
SimplekvTest::kill_node('a');
SimplekvTest::kill_node('b');
--- request eval
["PUT /twoDown\nno quorum", "GET /twoDown", "DELETE /twoDown"]
--- error_code eval
[503, 503, 503]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
[$SimplekvTest::Json, $SimplekvTest::Json, $SimplekvTest::Json]
--- timeout eval
3 * $SimplekvTest::Slowdown



=== TEST 6: the 503 for a write says how many replicas acknowledged
--- skv_tests: 2
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::kill_node('b');
SimplekvTest::kill_node('c');
--- request
PUT /ackCount
value
--- error_code: 503
--- response_body_like: \b[0-3] of 3 replicas (acknowledged|answered the version query)\b
--- timeout eval
3 * $SimplekvTest::Slowdown



=== TEST 7: two nodes frozen (SIGSTOP): 504 JSON within the replica timeout
--- skv_tests: 4
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::pause_node('a');
SimplekvTest::pause_node('c');
--- request eval
["PUT /frozen\nvalue", "GET /frozen"]
--- error_code eval
[504, 504]
--- response_body_like eval
['^\{"error": "[^"]+", "detail": "[^"]*\b[12] timed out\b', '^\{"error": "[^"]+", "detail": "[^"]*\b[12] timed out\b']
--- timeout eval
3 * $SimplekvTest::Slowdown



=== TEST 8: one node frozen: answers come from the other two, without waiting
--- skv_tests: 4
--- config eval
SimplekvTest::quorum_location("${main::FrozenTimeout}s")
--- init
SimplekvTest::pause_node('b');
my $t0 = Time::HiRes::time();
SimplekvTest::router_put('/oneFrozen', 'fast');
my $res = SimplekvTest::router_request('GET', '/oneFrozen');
my $elapsed = Time::HiRes::time() - $t0;
my $bound = 0.9 * $main::FrozenTimeout;
Test::More::is($res->{content}, 'fast', $block->name . " - read back");
Test::More::cmp_ok($elapsed, '<', $bound, $block->name . " - PUT and GET did not wait for the frozen node ($elapsed s, replica timeout ${main::FrozenTimeout}s)");
--- request
GET /oneFrozen
--- response_body chomp
fast
--- timeout eval
4 * $SimplekvTest::Slowdown



=== TEST 9: one node frozen: a keep-alive client is not held back for long
--- skv_tests: 11
--- config eval
SimplekvTest::quorum_location("${main::FrozenTimeout}s")
--- init
# Subrequests run on the client's connection, so a straggler to a frozen
# node would delay that connection's next request until the replica
# timeout; the router detaches stragglers whose request is sent, and
# after the first timeout the node is skipped (the module's circuit
# breaker), so at most the first couple of requests can be slow.
SimplekvTest::pause_node('b');
my $ua = HTTP::Tiny->new(timeout => 10 * $main::FrozenTimeout, keep_alive => 1);
my $url = SimplekvTest::router_url();
my ($slow, @log) = (0);
for my $i (1 .. 8) {
    my $m = $i % 2 ? 'PUT' : 'GET';
    my $t0 = Time::HiRes::time();
    my $res = $ua->request($m, "$url/keepAliveFrozen",
                           $m eq 'PUT' ? { content => "v$i" } : {});
    my $dt = Time::HiRes::time() - $t0;
    $slow++ if $dt > 0.5 * $main::FrozenTimeout;
    push @log, sprintf "%s -> %s in %.3fs", $m, $res->{status}, $dt;
    Test::More::is($res->{status}, $m eq 'PUT' ? 201 : 200, $block->name . " - $m $i succeeds");
}
Test::More::cmp_ok($slow, '<=', 2, $block->name . " - at most 2 of 8 requests waited for the frozen node")
    or Test::More::diag(join "\n", @log);
--- request
GET /keepAliveFrozen
--- response_body chomp
v7
--- timeout eval
4 * $SimplekvTest::Slowdown



=== TEST 10: read repair: a node that missed a write holds it after a read
--- skv_tests: 6
--- config eval
$SimplekvTest::QuorumLocation
--- init
my $name = $block->name;
SimplekvTest::router_put('/repairKey', 'old value');
SimplekvTest::kill_node('c');
$main::RepairEtag = SimplekvTest::router_put('/repairKey', 'new value');
SimplekvTest::start_node('c');
my $before = SimplekvTest::node_get('c', 'repairKey');
Test::More::is($before->{content}, 'old value', "$name - node c missed the write while down");
# with a down, a read quorum must include c
SimplekvTest::kill_node('a');
--- request
GET /repairKey
--- response_body chomp
new value
--- skv_check eval
sub {
    my ($name) = @_;
    my $got = SimplekvTest::node_get('c', 'repairKey');
    Test::More::is($got->{status}, 200, "$name - node c answers for the key");
    Test::More::is($got->{content}, 'new value', "$name - node c holds the newest value");
    Test::More::is(qq{"$got->{version}"}, $main::RepairEtag, "$name - node c holds the newest version");
}
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 11: read repair of a tombstone: a node that missed a DELETE gets it
--- skv_tests: 4
--- config eval
$SimplekvTest::QuorumLocation
--- init
my $name = $block->name;
SimplekvTest::router_put('/repairDeleted', 'to be deleted');
# the PUT is answered after two acknowledgements: let b's land too
for (1 .. 50) {
    last if SimplekvTest::node_get('b', 'repairDeleted')->{status} == 200;
    Time::HiRes::sleep(0.05);
}
SimplekvTest::kill_node('b');
my $res = SimplekvTest::router_request('DELETE', '/repairDeleted');
die "DELETE answered $res->{status}\n" if $res->{status} != 204;
SimplekvTest::start_node('b');
Test::More::is(SimplekvTest::node_get('b', 'repairDeleted')->{status}, 200, "$name - node b still holds the value");
SimplekvTest::kill_node('c');
--- request
GET /repairDeleted
--- error_code: 404
--- skv_check eval
sub {
    my ($name) = @_;
    my $got = SimplekvTest::node_get('b', 'repairDeleted');
    Test::More::is($got->{status}, 404, "$name - node b answers 404");
    Test::More::is($got->{tombstone}, 1, "$name - node b holds the tombstone");
}
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 12: read repairs are counted
--- skv_tests: 2
--- config eval
$SimplekvTest::QuorumLocation . "    location = /_simplekv/metrics { simplekv_metrics; }\n"
--- init
SimplekvTest::router_put('/repairCounted', 'old');
SimplekvTest::kill_node('c');
SimplekvTest::router_put('/repairCounted', 'new');
SimplekvTest::start_node('c');
SimplekvTest::kill_node('b');
my $res = SimplekvTest::router_request('GET', '/repairCounted');
die "GET answered $res->{status}\n" if $res->{status} != 200;
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_read_repairs_total [1-9]/m);
--- request
GET /_simplekv/metrics
--- response_body_like: (?m)^simplekv_read_repairs_total [1-9]\d*$



=== TEST 13: a frozen node is probed by the router itself, never by a client's read, and is asked again as soon as it answers
--- skv_tests: 6
--- config eval
# every read asks b (simplekv_read_fanout all), until b is suspect
SimplekvTest::quorum_location("${main::FrozenTimeout}s",
                              'simplekv_read_fanout all;')
    . $SimplekvTest::StatusLocations
--- init
# node b's "suspect" and "timeouts" in the status JSON
my $node_b = sub {
    my $res = SimplekvTest::router_request('GET', '/_simplekv/status');
    my ($line) = $res->{content} =~ /(\{"name": "b",[^\n]*)/;
    die "no node b in the status: $res->{content}\n" if !defined $line;
    my ($suspect) = $line =~ /"suspect": (true|false)/;
    my ($timeouts) = $line =~ /"timeouts": (\d+)/;
    return ($suspect eq 'true', $timeouts);
};
my $until = sub {
    my ($want, $seconds) = @_;
    my $deadline = Time::HiRes::time() + $seconds;
    while (Time::HiRes::time() < $deadline) {
        my ($suspect) = $node_b->();
        return 1 if $suspect == $want;
        Time::HiRes::sleep(0.05);
    }
    return 0;
};
# keep-alive, as in TEST 9: a client that closes its connection right
# after the answer may end b's subrequest (a client abort) before it can
# time out
my $ua = HTTP::Tiny->new(timeout => 10 * $main::FrozenTimeout, keep_alive => 1);
my $url = SimplekvTest::router_url();
SimplekvTest::router_put('/probeFrozen', 'v');
SimplekvTest::pause_node('b');
# a read that times out on b makes it suspect
my $suspect = 0;
for my $try (1 .. 5) {
    $ua->request('GET', "$url/probeFrozen");
    last if $suspect = $until->(1, 2 * $main::FrozenTimeout);
}
Test::More::ok($suspect, $block->name . " - b is suspect after a read timed out on it");
# requests sent to b before it was suspect (the PUT's, if b had not
# answered it yet when it froze, and those of the reads above) are
# detached after the answer and time out on their own: let them end
Time::HiRes::sleep(1.5 * $main::FrozenTimeout);
my (undef, $before) = $node_b->();
my $ok = 0;
for my $i (1 .. 12) {
    my $res = $ua->request('GET', "$url/probeFrozen");
    $ok++ if $res->{status} == 200 && $res->{content} eq 'v';
    Time::HiRes::sleep(0.1);
}
my ($still, $after) = $node_b->();
Test::More::is($ok, 12, $block->name . " - every read answers from a and c");
Test::More::is($after, $before, $block->name . " - no read was sent to the suspect node (its timeouts stay at $before)");
SimplekvTest::resume_node('b');
# no client request from here on: the router's own probe finds b back
Test::More::ok($until->(0, 2 + 2 * $SimplekvTest::Slowdown), $block->name . " - b is no longer suspect soon after it answers again, without a client's request");
--- request
GET /probeFrozen
--- response_body chomp
v
--- timeout eval
4 * $SimplekvTest::Slowdown



=== TEST 14: quorum reads (the default) hedge: a frozen replica among the first two costs a read simplekv_read_hedge, not the replica timeout
--- skv_tests: 24
--- config eval
SimplekvTest::quorum_location('3s', 'simplekv_read_hedge 20ms;')
    . $SimplekvTest::StatusLocations
--- init
my @keys = map { "/hedge$_" } 1 .. 10;
SimplekvTest::router_put($_, "v$_") for @keys;
SimplekvTest::pause_node('b');
# a fresh connection per read: b's straggler may hold its connection
my ($slow, @log) = (0);
for my $key (@keys) {
    my $t0 = Time::HiRes::time();
    my $res = SimplekvTest::router_request('GET', $key);
    my $dt = Time::HiRes::time() - $t0;
    $slow++ if $dt > 1.5 * $SimplekvTest::Slowdown;
    push @log, sprintf "%s -> %s in %.3fs", $key, $res->{status}, $dt;
    Test::More::is($res->{status}, 200, $block->name . " - GET $key");
    Test::More::is($res->{content}, "v$key", $block->name . " - value of $key");
}
# b is among the first two of about two keys in three; none may wait for
# the 3 s timeout (1.5 s is a bound with a wide margin for a loaded host)
Test::More::is($slow, 0, $block->name . " - no read waited for the frozen node")
    or Test::More::diag(join "\n", @log);
my $m = SimplekvTest::router_request('GET', '/_simplekv/metrics');
my ($hedges) = $m->{content} =~ /^simplekv_read_hedges_total (\d+)$/m;
Test::More::cmp_ok($hedges // 0, '>=', 1, $block->name . " - reads were hedged ($m->{content} has simplekv_read_hedges_total)");
SimplekvTest::resume_node('b');
--- request
GET /hedge1
--- response_body chomp
v/hedge1
--- timeout eval
10 * $SimplekvTest::Slowdown



=== TEST 15: simplekv_read_hedge 0 turns hedging off: such a read waits for the replica timeout, then asks the third replica
--- skv_tests: 5
--- config eval
SimplekvTest::quorum_location('1s', 'simplekv_read_hedge 0;')
    . $SimplekvTest::StatusLocations
--- init
my @keys = map { "/nohedge$_" } 1 .. 6;
SimplekvTest::router_put($_, "v$_") for @keys;
SimplekvTest::pause_node('b');
my ($waited, $ok, @log) = (0, 0);
for my $key (@keys) {
    my $t0 = Time::HiRes::time();
    my $res = SimplekvTest::router_request('GET', $key);
    my $dt = Time::HiRes::time() - $t0;
    push @log, sprintf "%s -> %s in %.3fs", $key, $res->{status}, $dt;
    $waited++ if $dt >= 0.9;
    $ok++ if $res->{status} == 200 && $res->{content} eq "v$key";
    # the first timeout makes b suspect: later reads leave it out
    last if $waited;
}
Test::More::ok($waited, $block->name . " - a read with b among its first two waited for the timeout")
    or Test::More::diag(join "\n", @log);
Test::More::ok($ok >= 1, $block->name . " - and still answered");
my $m = SimplekvTest::router_request('GET', '/_simplekv/metrics');
my ($hedges) = $m->{content} =~ /^simplekv_read_hedges_total (\d+)$/m;
Test::More::is($hedges, 0, $block->name . " - no read was hedged");
SimplekvTest::resume_node('b');
--- request
GET /nohedge1
--- response_body chomp
v/nohedge1
--- timeout eval
10 * $SimplekvTest::Slowdown
