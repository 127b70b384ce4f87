# ETag and If-None-Match: the ETag of GET is the version PUT answered; a
# matching If-None-Match (also in a list, weak, or *) gives 304 without a
# body, for GET and HEAD; a new PUT changes it.
# The ETag is only known at run time, so --- init writes the key through
# the router and fills in the block's headers.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

run_tests();

__DATA__

=== TEST 1: GET answers with the ETag that PUT returned
--- config
    location / {
        simplekv;
    }
--- init
my $etag = SimplekvTest::router_put('/etagKey', 'tagged');
$block->set_value('response_headers', "ETag: $etag");
--- request
GET /etagKey
--- response_body chomp
tagged
--- no_error_log
[error]



=== TEST 2: If-None-Match with the current ETag gives 304 and no body
--- config
    location / {
        simplekv;
    }
--- init
my $etag = SimplekvTest::router_put('/inmKey', 'cached');
$block->set_value('more_headers', "If-None-Match: $etag");
$block->set_value('response_headers', "ETag: $etag");
--- request
GET /inmKey
--- error_code: 304
--- response_body chomp
--- no_error_log
[error]



=== TEST 3: If-None-Match with an older ETag gives 200 and the new value
--- config
    location / {
        simplekv;
    }
--- init
my $old = SimplekvTest::router_put('/inmChanged', 'version one');
my $new = SimplekvTest::router_put('/inmChanged', 'version two');
Test::More::isnt($new, $old, $block->name . " - a new PUT gives a new ETag");
$block->set_value('more_headers', "If-None-Match: $old");
$block->set_value('response_headers', "ETag: $new");
--- request
GET /inmChanged
--- error_code: 200
--- response_body chomp
version two
--- no_error_log
[error]



=== TEST 4: If-None-Match on a deleted key is still 404
--- config
    location / {
        simplekv;
    }
--- init
my $etag = SimplekvTest::router_put('/inmDeleted', 'gone soon');
my $res = SimplekvTest::router_request('DELETE', '/inmDeleted');
die "DELETE answered $res->{status}\n" if $res->{status} != 204;
$block->set_value('more_headers', "If-None-Match: $etag");
--- request
GET /inmDeleted
--- error_code: 404
--- no_error_log
[error]



=== TEST 5: If-None-Match with a list, a weak tag, or * matches too
--- config
    location / {
        simplekv;
    }
--- init
my $etag = SimplekvTest::router_put('/inmForms', 'forms');
$block->set_value('more_headers', [
    qq{If-None-Match: "00000000000000000000000000000000", $etag},
    "If-None-Match: W/$etag",
    "If-None-Match: *",
    qq{If-None-Match: "00000000000000000000000000000000"},
]);
--- request eval
["GET /inmForms", "GET /inmForms", "GET /inmForms", "GET /inmForms"]
--- error_code eval
[304, 304, 304, 200]
--- response_body eval
["", "", "", "forms"]



=== TEST 6: HEAD with a matching If-None-Match is 304 too
--- config
    location / {
        simplekv;
    }
--- init
my $etag = SimplekvTest::router_put('/inmHead', 'head');
$block->set_value('more_headers', "If-None-Match: $etag");
--- request
HEAD /inmHead
--- error_code: 304
--- response_body chomp



=== TEST 7: versions are 32 lowercase hex digits and grow with each PUT
--- config
    location / {
        simplekv;
    }
--- init
my @tags = map { SimplekvTest::router_put('/growing', "v$_") } 1 .. 5;
for my $i (0 .. $#tags) {
    Test::More::like($tags[$i], qr/^"[0-9a-f]{32}"$/,
                     $block->name . " - ETag $i is a quoted version");
    next if !$i;
    Test::More::cmp_ok($tags[$i], 'gt', $tags[$i - 1],
                       $block->name . " - ETag $i is newer than ETag "
                       . ($i - 1));
}
--- request
GET /growing
--- response_body chomp
v5
