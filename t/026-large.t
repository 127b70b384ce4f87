# Large values: a value over simplekv_stream_threshold (1k here, so that
# modest sizes exercise it) is decided on the replicas' metadata and
# streamed from one replica that holds the newest version; one that needs
# a read repair goes through a temp file first.  Range (a-b, a-, -n),
# 416, If-Range with the ETag, HEAD, Repr-Digest on answers, a PUT's
# Content-Digest/Repr-Digest checked by the nodes (400, nothing stored),
# and 413 from the router or from the nodes, for small and streamed values
# alike.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64);

# a version of now from a fresh origin, as a router would make it
sub now_version {
    my $ms = int(Time::HiRes::time() * 1000) - 1577836800000;
    return sprintf("%016x%016x", $ms << 16, 0x5eed0000 + int(rand(65536)));
}

sub digest_of {
    my ($value) = @_;
    return 'sha-256=:' . encode_base64(sha256($value), '') . ':';
}

our $Big = join '', map { chr(33 + ($_ * 7919) % 90) } 0 .. 4999;   # 5000 B
our $Small = 'hello world';
our $BigDigest = digest_of($Big);
our $SmallDigest = digest_of($Small);
our $Json = $SimplekvTest::Json;

our $Location = <<'_EOC_';
    location / {
        simplekv;
        simplekv_stream_threshold 1k;
    }
_EOC_

add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;
    my $check = $block->skv_check;
    $check->($block->name, $body, $req_idx) if ref $check eq 'CODE';
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a streamed value round-trips with its headers and digest
--- config eval
$main::Location
--- request eval
["PUT /big\n$main::Big", "GET /big", "HEAD /big"]
--- more_headers eval
["Content-Type: text/x-big", "", ""]
--- error_code eval
[201, 200, 200]
--- response_headers eval
["", "Content-Type: text/x-big\nContent-Length: 5000\nAccept-Ranges: bytes\nRepr-Digest: $main::BigDigest", "Content-Type: text/x-big\nContent-Length: 5000\nRepr-Digest: $main::BigDigest"]
--- response_headers_like eval
["ETag: \"[0-9a-f]{32}\"", "ETag: \"[0-9a-f]{32}\"", "ETag: \"[0-9a-f]{32}\""]
--- response_body eval
["", $main::Big, ""]
--- no_error_log
[error]



=== TEST 1b: the GET streams it from one replica; a HEAD does not
--- config eval
$main::Location
--- init
SimplekvTest::router_put('/bigStreamed', $main::Big);
--- request
GET /bigStreamed
--- response_body eval
$main::Big
--- error_log
for "/bigStreamed"
--- log_level: debug



=== TEST 1c: a HEAD answers the metadata, nothing streams
--- config eval
$main::Location
--- init
SimplekvTest::router_put('/bigHead', $main::Big);
--- request
HEAD /bigHead
--- response_headers
Content-Length: 5000
--- response_body eval
""
--- no_error_log
for "/bigHead"
--- log_level: debug



=== TEST 2: ranges of a streamed value: a-b, a-, -n, b past the end, a suffix longer than the value
--- config eval
$main::Location
--- init
SimplekvTest::router_put('/bigRange', $main::Big);
--- request eval
["GET /bigRange", "GET /bigRange", "GET /bigRange", "GET /bigRange", "GET /bigRange"]
--- more_headers eval
["Range: bytes=10-19", "Range: bytes=4990-", "Range: bytes=-7", "Range: bytes=4995-9999", "Range: bytes=-99999"]
--- error_code eval
[206, 206, 206, 206, 206]
--- response_headers eval
["Content-Range: bytes 10-19/5000\nContent-Length: 10\nRepr-Digest: $main::BigDigest", "Content-Range: bytes 4990-4999/5000\nContent-Length: 10", "Content-Range: bytes 4993-4999/5000\nContent-Length: 7", "Content-Range: bytes 4995-4999/5000\nContent-Length: 5", "Content-Range: bytes 0-4999/5000\nContent-Length: 5000"]
--- response_body eval
[substr($main::Big, 10, 10), substr($main::Big, 4990), substr($main::Big, -7), substr($main::Big, 4995), $main::Big]
--- no_error_log
[error]



=== TEST 3: unsatisfiable and ignored ranges of a streamed value
--- config eval
$main::Location
--- init
SimplekvTest::router_put('/bigBad', $main::Big);
--- request eval
["GET /bigBad", "GET /bigBad", "GET /bigBad", "GET /bigBad"]
--- more_headers eval
["Range: bytes=5000-", "Range: bytes=-0", "Range: bytes=0-1,5-6", "Range: items=0-1"]
--- error_code eval
[416, 416, 200, 200]
--- response_headers eval
["Content-Range: bytes */5000\nContent-Type: application/json", "Content-Range: bytes */5000", "Content-Length: 5000\n!Content-Range", "Content-Length: 5000"]
--- response_body_like eval
[qr/^\{"error": "range not satisfiable"/, qr/^\{"error": "range not satisfiable"/, qr/^\Q$main::Big\E\z/, qr/^\Q$main::Big\E\z/]
--- no_error_log
[error]



=== TEST 4: If-Range with the ETag gives the range, another tag the whole value (streamed)
--- config eval
$main::Location
--- init
$main::V4 = main::now_version();
SimplekvTest::node_put($_, 'bigIfRange', $main::Big, $main::V4) for qw(a b c);
$block->set_value('more_headers', ["Range: bytes=0-4\nIf-Range: \"$main::V4\"", "Range: bytes=0-4\nIf-Range: \"00000000000000000000000000000001\"", "Range: bytes=0-4\nIf-Range: W/\"$main::V4\""]);
--- request eval
["GET /bigIfRange", "GET /bigIfRange", "GET /bigIfRange"]
--- error_code eval
[206, 200, 200]
--- response_body eval
[substr($main::Big, 0, 5), $main::Big, $main::Big]
--- no_error_log
[error]



=== TEST 5: the same for a small value held in memory: ranges, 416, If-Range, HEAD
--- config eval
$main::Location
--- init
$main::V5 = main::now_version();
SimplekvTest::node_put($_, 'small', $main::Small, $main::V5, 'text/plain') for qw(a b c);
$block->set_value('more_headers', ["Range: bytes=0-4", "Range: bytes=6-", "Range: bytes=-5", "Range: bytes=11-", "Range: bytes=0-4\nIf-Range: \"$main::V5\"", "Range: bytes=0-4\nIf-Range: \"00000000000000000000000000000001\"", "Range: bytes=0-4", ""]);
--- request eval
["GET /small", "GET /small", "GET /small", "GET /small", "GET /small", "GET /small", "HEAD /small", "GET /small"]
--- error_code eval
[206, 206, 206, 416, 206, 200, 200, 200]
--- response_headers eval
["Content-Range: bytes 0-4/11\nContent-Length: 5\nRepr-Digest: $main::SmallDigest\nAccept-Ranges: bytes", "Content-Range: bytes 6-10/11", "Content-Range: bytes 6-10/11", "Content-Range: bytes */11", "Content-Range: bytes 0-4/11", "!Content-Range", "Content-Length: 11\n!Content-Range", "Repr-Digest: $main::SmallDigest\nContent-Type: text/plain"]
--- response_body_like eval
[qr/^hello\z/, qr/^world\z/, qr/^world\z/, qr/^\{"error": "range not satisfiable"/, qr/^hello\z/, qr/^hello world\z/, qr/^\z/, qr/^hello world\z/]
--- no_error_log
[error]



=== TEST 6: If-None-Match and If-Match on a streamed value: 304 and a JSON 412, nothing streamed
--- config eval
$main::Location
--- init
$main::V6 = main::now_version();
SimplekvTest::node_put($_, 'bigCond', $main::Big, $main::V6) for qw(a b c);
$block->set_value('more_headers', ["If-None-Match: \"$main::V6\"", "If-Match: \"00000000000000000000000000000001\"", "If-Match: \"$main::V6\"\nRange: bytes=1-2"]);
--- request eval
["GET /bigCond", "GET /bigCond", "GET /bigCond"]
--- error_code eval
[304, 412, 206]
--- response_body_like eval
[qr/^\z/, qr/^\{"error": "precondition failed"/, qr/^\Q${\ substr($main::Big, 1, 2)}\E\z/]
--- no_error_log
[error]



=== TEST 7: a PUT whose Content-Digest does not match is a JSON 400 and stores nothing (streamed size)
--- config eval
$main::Location
--- request eval
["PUT /bigBadDigest\n$main::Big", "GET /bigBadDigest", "PUT /bigGoodDigest\n$main::Big", "GET /bigGoodDigest"]
--- more_headers eval
["Content-Digest: $main::SmallDigest", "", "Content-Digest: $main::BigDigest", ""]
--- error_code eval
[400, 404, 201, 200]
--- response_body_like eval
[qr/^\{"error": "digest mismatch", "detail": "storage nodes refused the value.*the write was not applied"\}\n\z/, qr/"not found"/, qr/^\z/, qr/^\Q$main::Big\E\z/]
--- skv_check eval
sub {
    my ($name, $body, $idx) = @_;
    return if $idx != 1;
    for my $n (qw(a b c)) {
        Test::More::is(SimplekvTest::node_get($n, 'bigBadDigest')->{status}, 404, "$name - node $n stored nothing");
    }
}



=== TEST 8: a small value's Repr-Digest is checked the same way
--- config eval
$main::Location
--- request eval
["PUT /smallBadDigest\nhello", "GET /smallBadDigest", "PUT /smallGoodDigest\n$main::Small", "GET /smallGoodDigest"]
--- more_headers eval
["Repr-Digest: $main::SmallDigest", "", "Repr-Digest: $main::SmallDigest", ""]
--- error_code eval
[400, 404, 201, 200]
--- response_headers eval
["Content-Type: application/json", "", "", "Repr-Digest: $main::SmallDigest"]
--- response_body_like eval
[qr/"digest mismatch"/, qr/"not found"/, qr/^\z/, qr/^hello world\z/]



=== TEST 9: 413 from the router (simplekv_max_value_size) and from the nodes (their --max-value-size, 8m), both JSON
--- config
    location /limited/ {
        simplekv;
        simplekv_namespace limited;
        simplekv_stream_threshold 1k;
        simplekv_max_value_size 4k;
    }
    location / {
        simplekv;
        simplekv_stream_threshold 1k;
    }
--- request eval
["PUT /limited/x\n$main::Big", "PUT /overNodes\n" . ("n" x (8 * 1024 * 1024 + 1)), "GET /overNodes"]
--- error_code eval
[413, 413, 404]
--- response_body_like eval
[qr/^\{"error": "value too large", "detail": "the value is larger than simplekv_max_value_size"\}/, qr/^\{"error": "value too large", "detail": "storage nodes refuse values this large.*the write was not applied"\}/, qr/"not found"/]



=== TEST 10: read repair of a streamed value: node b holds an older version, c is down; the read writes the newest back to b through a temp file and answers it
--- config eval
$main::Location
--- init
my $name = $block->name;
my $old = main::now_version();
SimplekvTest::node_put('b', 'bigRepair', 'old value', $old);
Time::HiRes::sleep(0.01);
$main::V10 = main::now_version();
SimplekvTest::node_put('a', 'bigRepair', $main::Big, $main::V10, 'text/x-big');
Test::More::is(SimplekvTest::node_get('b', 'bigRepair')->{content}, 'old value', "$name - node b holds the older value");
SimplekvTest::kill_node('c');
--- request
GET /bigRepair
--- more_headers
Range: bytes=100-199
--- error_code: 206
--- response_headers eval
"Content-Range: bytes 100-199/5000\nContent-Type: text/x-big\nRepr-Digest: $main::BigDigest"
--- response_body eval
substr($main::Big, 100, 100)
--- skv_check eval
sub {
    my ($name) = @_;
    my $got = SimplekvTest::node_get('b', 'bigRepair');
    Test::More::is($got->{status}, 200, "$name - node b answers for the key");
    Test::More::ok($got->{content} eq $main::Big, "$name - node b holds the whole value");
    Test::More::is($got->{version}, $main::V10, "$name - node b holds the newest version");
    Test::More::is($got->{content_type}, 'text/x-big', "$name - node b holds its type");
}
--- error_log
simplekv spool from replica 0 for "/bigRepair"
--- log_level: debug
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 11: both versions streamed-size: node c holds the newest, b an older one, a is down; the newest is repaired onto b and answered
--- config eval
$main::Location
--- init
my $old = main::now_version();
SimplekvTest::node_put($_, 'bigNewer', 'x' x 3000, $old) for qw(a b);
Time::HiRes::sleep(0.01);
$main::V11 = main::now_version();
SimplekvTest::node_put('c', 'bigNewer', $main::Big, $main::V11);
SimplekvTest::kill_node('a');
--- request eval
["GET /bigNewer", "GET /bigNewer"]
--- error_code eval
[200, 200]
--- response_body eval
[$main::Big, $main::Big]
--- skv_check eval
sub {
    my ($name, $body, $idx) = @_;
    return if $idx != 0;
    my $got = SimplekvTest::node_get('b', 'bigNewer');
    Test::More::is($got->{version}, $main::V11, "$name - node b holds the newest version after the read");
    Test::More::ok($got->{content} eq $main::Big, "$name - node b holds the newest value");
}
--- timeout eval
5 * $SimplekvTest::Slowdown



=== TEST 12: a value exactly at the threshold stays in memory
--- config
    location / {
        simplekv;
        simplekv_stream_threshold 5000;
    }
--- request eval
["PUT /atThreshold\n$main::Big", "GET /atThreshold"]
--- error_code eval
[201, 200]
--- response_body eval
["", $main::Big]
--- no_error_log
for "/atThreshold"
--- log_level: debug



=== TEST 13: one byte more streams
--- config
    location / {
        simplekv;
        simplekv_stream_threshold 5000;
    }
--- init
SimplekvTest::router_put('/overThreshold', "${main::Big}x");
--- request
GET /overThreshold
--- response_body eval
"${main::Big}x"
--- error_log
for "/overThreshold"
--- log_level: debug
