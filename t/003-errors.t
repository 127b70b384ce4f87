# Client errors are JSON ({"error": "...", "detail": "..."}) with the right
# status: 400 bad key, 414 key too long, 405 with Allow, 413 value too
# large (declared or chunked), and a client's own X-Simplekv-Version header
# never reaches storaged.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

run_tests();

__DATA__

=== TEST 1: bad percent-encoding in the key is 400 JSON
--- config
    location / {
        simplekv;
    }
--- request
GET /bad%zzkey
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like eval
$SimplekvTest::Json
--- no_error_log
[alert]



=== TEST 2: a truncated escape at the end of the key is 400 JSON
--- config
    location / {
        simplekv;
    }
--- request
PUT /truncated%4
value
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like eval
$SimplekvTest::Json



=== TEST 3: the empty key is 400 JSON, for every method
--- config
    location / {
        simplekv;
    }
--- request eval
["GET /", "PUT /\nvalue", "DELETE /", "HEAD /"]
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
[$SimplekvTest::Json, $SimplekvTest::Json, $SimplekvTest::Json, "^\$"]



=== TEST 4: a key of 1024 bytes is fine, 1025 bytes is 414 JSON
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /" . ("k" x 1024) . "\nlongest key", "GET /" . ("k" x 1024), "GET /" . ("k" x 1025), "PUT /" . ("k" x 1025) . "\nvalue"]
--- error_code eval
[201, 200, 414, 414]
--- response_body_like eval
["", "^longest key\$", $SimplekvTest::Json, $SimplekvTest::Json]



=== TEST 5: the key length counts decoded bytes: 1025 x %41 is 414
--- config
    location / {
        simplekv;
    }
--- request eval
["GET /" . ("%41" x 1024), "GET /" . ("%41" x 1025)]
--- error_code eval
[404, 414]



=== TEST 6: POST and other methods are 405 JSON with Allow
--- config
    location / {
        simplekv;
    }
--- request eval
["POST /someKey\nvalue", "PATCH /someKey\nvalue", "OPTIONS /someKey"]
--- error_code eval
[405, 405, 405]
--- response_headers_like eval
["Allow: GET, HEAD, PUT, DELETE", "Allow: GET, HEAD, PUT, DELETE", "Allow: GET, HEAD, PUT, DELETE"]
--- response_body_like eval
[$SimplekvTest::Json, $SimplekvTest::Json, $SimplekvTest::Json]



=== TEST 7: a value over simplekv_max_value_size is 413 JSON (Content-Length)
--- config
    location / {
        simplekv;
        simplekv_max_value_size 1k;
    }
--- request eval
["PUT /bigValue\n" . ("x" x 1025), "PUT /bigValue\n" . ("x" x 1024), "GET /bigValue"]
--- error_code eval
[413, 201, 200]
--- response_body_like eval
[$SimplekvTest::Json, "", "^x{1024}\$"]



=== TEST 8: a large declared body is refused before it is all sent
--- config
    location / {
        simplekv;
        simplekv_max_value_size 1k;
    }
--- request eval
"PUT /hugeValue\n" . ("y" x (3 * 1024 * 1024))
--- error_code: 413
--- response_body_like eval
$SimplekvTest::Json
--- no_error_log
a client request body is buffered to a temporary file



=== TEST 9: a chunked value over the limit is 413 JSON too
--- config
    location / {
        simplekv;
        simplekv_max_value_size 1k;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"PUT /bigChunked\n" . CORE::join("", map { "200\r\n" . ("z" x 512) . "\r\n" } 1 .. 4) . "0\r\n\r\n"
--- error_code: 413
--- response_body_like eval
$SimplekvTest::Json



=== TEST 10: a large chunked value is refused before it is all buffered
--- config
    location / {
        simplekv;
        simplekv_max_value_size 1k;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"PUT /hugeChunked\n" . CORE::join("", map { "4000\r\n" . ("h" x 16384) . "\r\n" } 1 .. 192) . "0\r\n\r\n"
--- error_code: 413
--- response_body_like eval
$SimplekvTest::Json
--- no_error_log
a client request body is buffered to a temporary file
[alert]



=== TEST 11: the default limit is 1g: a value over 1m round-trips
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /defaultLimit\n" . ("d" x (1024 * 1024 + 1)), "GET /defaultLimit"]
--- error_code eval
[201, 200]
--- response_body eval
[qr/.*/s, "d" x (1024 * 1024 + 1)]



=== TEST 11b: ... and a Content-Length over 1g is refused before the body is read
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"PUT /overDefaultLimit HTTP/1.1\r
Host: localhost\r
Content-Length: 1073741825\r
Connection: close\r
\r
"
--- error_code: 413
--- response_body_like eval
qr/^\{"error": "value too large", "detail": "the value is larger than simplekv_max_value_size"\}\n\z/



=== TEST 12: a client's X-Simplekv-Version header is ignored
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["X-Simplekv-Version: ffffffffffffffffffffffffffffffff", "", ""]
--- request eval
["PUT /clientVersion\nclient tried to pick the version", "PUT /clientVersion\nlater write", "GET /clientVersion"]
--- error_code eval
[201, 201, 200]
--- response_headers_like eval
["ETag: \"[0-9a-f]{32}\"", "ETag: \"[0-9a-f]{32}\"", "ETag: \"[0-9a-f]{32}\""]
--- response_body eval
[qr/.*/s, qr/.*/s, "later write"]
--- no_error_log
[error]



=== TEST 13: the version storaged holds is the router's, not the client's
--- config
    location / {
        simplekv;
    }
--- init
my $res = SimplekvTest::router_request('PUT', '/clientVersion2', 'v', {
    'X-Simplekv-Version' => 'ffffffffffffffffffffffffffffffff',
    'X-Simplekv-Tombstone' => '1',
});
die "PUT answered $res->{status}\n" if $res->{status} != 201;
my $holding = 0;
for my $node (@SimplekvTest::NodeNames) {
    my $got = SimplekvTest::node_get($node, 'clientVersion2');
    $holding++ if $got->{status} == 200;
    Test::More::isnt($got->{version} // '', 'ffffffffffffffffffffffffffffffff',
                     $block->name . " - node $node does not hold the client's version");
}
Test::More::cmp_ok($holding, '>=', 2, $block->name . " - a write quorum of nodes holds the value");
--- request
GET /clientVersion2
--- response_body chomp
v
