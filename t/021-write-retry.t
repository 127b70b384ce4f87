# Versions and 409 retries: a write refused everywhere because a newer
# version is stored (here planted directly on the storaged nodes, as a
# router with a clock far ahead would leave it) is retried with a version
# newer than the one seen, and wins; the retry is counted.  A write that
# one replica applied while two others certainly never held it (409 with
# X-Simplekv-Held: no) can never be read and is retried too.  A write that
# may have been read is never retried (the value could take effect
# twice): with the newer version on one replica, the write applied on
# another and the third not answering, it is 504, "may or may not have
# been applied".

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket;

# Writes $key through the router, then plants the value "planted" with a
# version 5 s ahead of that write's (origin 1) directly on @nodes;
# returns the planted version.
sub plant_ahead {
    my ($key, @nodes) = @_;
    my $etag = SimplekvTest::router_put("/$key", 'first');
    no warnings 'portable';   # 64-bit hex: this perl has 64-bit integers
    $etag =~ s/"//g;
    my $ahead = sprintf('%016x%016x',
                        hex(substr($etag, 0, 16)) + (5000 << 16), 1);
    SimplekvTest::node_put($_, $key, 'planted', $ahead) for @nodes;
    return $ahead;
}

plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: a newer version on every replica: the PUT is retried and wins
--- skv_tests: 9
--- config eval
$SimplekvTest::QuorumLocation . $SimplekvTest::StatusLocations
--- init
main::plant_ahead('retried', qw(a b c));
--- request eval
["PUT /retried\nmine", "GET /retried", "GET /_simplekv/status"]
--- error_code eval
[201, 200, 200]
--- response_body_like eval
# retried after the 409s; or, when the router still counts a node down or
# suspect from an earlier file's faults (the real Test::Nginx may reload
# the same nginx, keeping the shared zone), the versions were asked first
[qr/^$/, qr/^mine$/, qr/"write_retries": [1-9]|"write_version_queries": [1-9]/]
--- no_error_log
[error]



=== TEST 2: the same for a DELETE: retried, and the key reads as deleted
--- skv_tests: 4
--- config eval
$SimplekvTest::QuorumLocation . $SimplekvTest::StatusLocations
--- init
main::plant_ahead('retriedDel', qw(a b c));
--- request eval
["DELETE /retriedDel", "GET /retriedDel"]
--- error_code eval
[204, 404]
--- no_error_log
[error]



=== TEST 3: the version returned after a retry is newer than the planted one
--- skv_tests: 3
--- config eval
$SimplekvTest::QuorumLocation . $SimplekvTest::StatusLocations
--- init
my $planted = main::plant_ahead('newer', qw(a b c));
# the PUT's ETag must be a version above the planted one
$block->set_value('response_headers_like',
    'ETag: "' . SimplekvTest::version_above_re($planted) . '"');
--- request
PUT /newer
mine
--- error_code: 201
--- response_headers_like
ETag: "set by init"
--- response_body_like: ^$



=== TEST 4: a newer version on two replicas that never held the write, applied on the third: it can never be read, so it is retried and wins
--- skv_tests: 4
--- config eval
$SimplekvTest::QuorumLocation . $SimplekvTest::StatusLocations
--- init
main::plant_ahead('partly', qw(a b));
--- request eval
["PUT /partly\nmine", "GET /partly"]
--- error_code eval
[201, 200]
--- response_body_like eval
[qr/^$/, qr/^mine$/]



=== TEST 5: a newer version on one replica, the write applied on another, the third not answering: it may have been read, so 504 ("may or may not have been applied"), never retried
--- skv_tests: 4
--- config eval
$SimplekvTest::QuorumLocation . $SimplekvTest::StatusLocations
--- init
main::plant_ahead('ambiguous', qw(a));
# frozen, not killed: a killed node's refused connection would prove the
# write never reached it (then it is retried and wins), while its
# keep-alive connection, if the router has not yet seen it close, fails
# after the request was sent (unknown): a race.  A frozen node times out,
# which is always "may have been applied".
SimplekvTest::pause_node('c');
--- request eval
["PUT /ambiguous\nmine", "GET /ambiguous"]
--- error_code eval
[504, 200]
--- response_body_like eval
[qr/may or may not have been applied/, qr/^planted$/]
