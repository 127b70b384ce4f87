# Faults with 3 real nodes, N=3 W=2 R=2: one node killed (kill -9) changes
# nothing a client can see, also under concurrent load; two nodes down give
# 503 JSON, two frozen 504 JSON within the replica timeout, never a hang; a
# node that missed writes while down is repaired by a read, and then holds
# the newest version itself (checked directly against that storaged).

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

our $Json = qr/^\{\s*"error"\s*:\s*"[^"]+"\s*,\s*"detail"\s*:\s*".*"\s*\}\s*$/s;

# --- skv_check eval: a sub run after each response (e.g. to look into one
# storaged directly once the router has answered).
add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;
    my $check = $block->skv_check;
    $check->($block->name, $body, $req_idx) if ref $check eq 'CODE';
});

our $Location = <<'_EOC_';
    location / {
        simplekv;
        simplekv_replicas 3;
        simplekv_write_quorum 2;
        simplekv_read_quorum 2;
        simplekv_replica_timeout 1s;
    }
_EOC_

run_tests();

__DATA__

=== TEST 1: one node killed: PUT, GET, HEAD, DELETE all still succeed
--- config eval
$main::Location
--- init
SimplekvTest::kill_node('b');
--- request eval
["PUT /oneDown\nstill here", "GET /oneDown", "HEAD /oneDown", "DELETE /oneDown", "GET /oneDown"]
--- error_code eval
[201, 200, 200, 204, 404]
--- response_body eval
[qr/.*/s, "still here", "", "", qr/.*/s]
--- timeout: 5



=== TEST 2: a value written before the kill is read after it
--- config eval
$main::Location
--- init
SimplekvTest::router_put('/writtenBefore', 'survives');
SimplekvTest::kill_node('a');
--- request
GET /writtenBefore
--- response_body chomp
survives
--- timeout: 5



=== TEST 3: kill -9 of a node during concurrent reads and writes: no errors
--- config eval
$main::Location
--- init
my %r = SimplekvTest::run_load(clients => 4, seconds => 3, after => 1,
                               during => sub { SimplekvTest::kill_node('c') });
Test::More::cmp_ok($r{total}, '>', 20, $block->name . " - the clients made requests ($r{total})");
Test::More::is(scalar @{ $r{errors} }, 0, $block->name . " - no client-visible errors")
    or Test::More::diag(join "\n", @{ $r{errors} }[0 .. ($#{ $r{errors} } < 9 ? $#{ $r{errors} } : 9)]);
--- request
GET /load0
--- error_code_like: ^(?:200|404)$
--- timeout: 5



=== TEST 4: a node killed and restarted during concurrent load: no errors
--- config eval
$main::Location
--- init
# the restarted node is behind stale keep-alive connections in nginx's pool
my %r = SimplekvTest::run_load(clients => 4, seconds => 4, after => 1,
                               during => sub {
                                   SimplekvTest::kill_node('a');
                                   Time::HiRes::sleep(1);
                                   SimplekvTest::start_node('a');
                               });
Test::More::cmp_ok($r{total}, '>', 20, $block->name . " - the clients made requests ($r{total})");
Test::More::is(scalar @{ $r{errors} }, 0, $block->name . " - no client-visible errors")
    or Test::More::diag(join "\n", @{ $r{errors} }[0 .. ($#{ $r{errors} } < 9 ? $#{ $r{errors} } : 9)]);
--- request
GET /load1
--- error_code_like: ^(?:200|404)$
--- timeout: 5



=== TEST 5: two nodes killed: PUT and GET are 503 JSON, quickly
--- config eval
$main::Location
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
[$main::Json, $main::Json, $main::Json]
--- timeout: 3



=== TEST 6: the 503 for a write says how many replicas acknowledged
--- config eval
$main::Location
--- init
SimplekvTest::kill_node('b');
SimplekvTest::kill_node('c');
--- request
PUT /ackCount
value
--- error_code: 503
--- response_body_like: \b[0-3] of 3 replicas acknowledged\b
--- timeout: 3



=== TEST 7: two nodes frozen (SIGSTOP): 504 JSON within the replica timeout
--- config eval
$main::Location
--- init
SimplekvTest::pause_node('a');
SimplekvTest::pause_node('c');
--- request eval
["PUT /frozen\nvalue", "GET /frozen"]
--- error_code eval
[504, 504]
--- response_body_like eval
['^\{"error": "[^"]+", "detail": "[^"]*\b[12] timed out\b', '^\{"error": "[^"]+", "detail": "[^"]*\b[12] timed out\b']
--- timeout: 3



=== TEST 8: one node frozen: answers come from the other two, without waiting
--- config eval
$main::Location
--- init
SimplekvTest::pause_node('b');
my $t0 = Time::HiRes::time();
SimplekvTest::router_put('/oneFrozen', 'fast');
my $res = SimplekvTest::router_request('GET', '/oneFrozen');
my $elapsed = Time::HiRes::time() - $t0;
Test::More::is($res->{content}, 'fast', $block->name . " - read back");
Test::More::cmp_ok($elapsed, '<', 0.9, $block->name . " - PUT and GET did not wait for the frozen node ($elapsed s)");
--- request
GET /oneFrozen
--- response_body chomp
fast
--- timeout: 4



=== TEST 9: one node frozen: a keep-alive client is not held back for long
--- config eval
$main::Location
--- init
# Subrequests run on the client's connection, so a straggler to a frozen
# node delays that connection's next request until the replica timeout;
# after the first timeout the node must be skipped (the module's circuit
# breaker), so at most the first couple of requests can be slow.
SimplekvTest::pause_node('b');
my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
my $url = SimplekvTest::router_url();
my ($slow, @log) = (0);
for my $i (1 .. 8) {
    my $m = $i % 2 ? 'PUT' : 'GET';
    my $t0 = Time::HiRes::time();
    my $res = $ua->request($m, "$url/keepAliveFrozen",
                           $m eq 'PUT' ? { content => "v$i" } : {});
    my $dt = Time::HiRes::time() - $t0;
    $slow++ if $dt > 0.5;
    push @log, sprintf "%s -> %s in %.3fs", $m, $res->{status}, $dt;
    Test::More::is($res->{status}, $m eq 'PUT' ? 201 : 200, $block->name . " - $m $i succeeds");
}
Test::More::cmp_ok($slow, '<=', 2, $block->name . " - at most 2 of 8 requests waited for the frozen node")
    or Test::More::diag(join "\n", @log);
--- request
GET /keepAliveFrozen
--- response_body chomp
v7
--- timeout: 4



=== TEST 10: read repair: a node that missed a write holds it after a read
--- config eval
$main::Location
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
--- timeout: 5



=== TEST 11: read repair of a tombstone: a node that missed a DELETE gets it
--- config eval
$main::Location
--- init
my $name = $block->name;
SimplekvTest::router_put('/repairDeleted', 'to be deleted');
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
--- timeout: 5



=== TEST 12: read repairs are counted
--- config eval
$main::Location . "    location = /_simplekv/metrics { simplekv_metrics; }\n"
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
