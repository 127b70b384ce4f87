# Listing keys through the router: GET /<prefix>?list[&limit=N][&after=C]
# with 3 real nodes, N=3 W=2 R=2.  Keys in byte order, percent-encoded, each
# once, deleted keys left out, pages chained by the `next` cursor, binary
# keys round-trip, one node down still lists everything, two down is 503.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket;

plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: a prefix lists its keys in byte order, and only those
--- skv_tests: 20
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["PUT /lst/b\n2", "PUT /lst/a\n1", "PUT /lst/c\n3", "PUT /lsu\nx",
 "GET /lst/?list"]
--- error_code eval
[201, 201, 201, 201, 200]
--- response_headers_like eval
['ETag: "[0-9a-f]{32}"', 'ETag: "[0-9a-f]{32}"', 'ETag: "[0-9a-f]{32}"',
 'ETag: "[0-9a-f]{32}"', "Content-Type: application/json"]
--- response_body eval
[qr/.*/s, qr/.*/s, qr/.*/s, qr/.*/s,
 qq!{"keys": [\n  "lst%2Fa",\n  "lst%2Fb",\n  "lst%2Fc"\n ],\n "next": null}\n!]
--- no_error_log
[error]



=== TEST 2: pages follow the cursor until next is null
--- skv_tests: 24
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["PUT /pg/1\nv", "PUT /pg/2\nv", "PUT /pg/3\nv", "PUT /pg/4\nv",
 "PUT /pg/5\nv",
 "GET /pg/?list&limit=2", "GET /pg/?list&limit=2&after=pg%2F2",
 "GET /pg/?list&limit=2&after=pg%2F4"]
--- error_code eval
[201, 201, 201, 201, 201, 200, 200, 200]
--- response_body eval
[qr/.*/s, qr/.*/s, qr/.*/s, qr/.*/s, qr/.*/s,
 qq!{"keys": [\n  "pg%2F1",\n  "pg%2F2"\n ],\n "next": "pg%2F2"}\n!,
 qq!{"keys": [\n  "pg%2F3",\n  "pg%2F4"\n ],\n "next": "pg%2F4"}\n!,
 qq!{"keys": [\n  "pg%2F5"\n ],\n "next": null}\n!]
--- no_error_log
[error]



=== TEST 3: deleted keys are left out
--- skv_tests: 15
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["PUT /del/1\nv", "PUT /del/2\nv", "PUT /del/3\nv", "DELETE /del/2",
 "GET /del/?list"]
--- error_code eval
[201, 201, 201, 204, 200]
--- response_body eval
[qr/.*/s, qr/.*/s, qr/.*/s, "",
 qq!{"keys": [\n  "del%2F1",\n  "del%2F3"\n ],\n "next": null}\n!]
--- no_error_log
[error]



=== TEST 4: binary keys round-trip: listed percent-encoded, readable back
--- skv_tests: 9
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["PUT /bin/%01%FF%20x\nbinary", "GET /bin/?list", "GET /bin%2F%01%ff%20x"]
--- error_code eval
[201, 200, 200]
--- response_body eval
[qr/.*/s, qq!{"keys": [\n  "bin%2F%01%FF%20x"\n ],\n "next": null}\n!,
 "binary"]
--- no_error_log
[error]



=== TEST 5: no prefix lists from the first key; an empty range is empty
--- skv_tests: 8
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["PUT /all/1\nv", "PUT /all/2\nv",
 "GET /?list&limit=1", "GET /nothing-here/?list"]
--- error_code eval
[201, 201, 200, 200]
--- response_body_like eval
[qr/^$/, qr/^$/,
 qr/^\{"keys": \[\n  "[^"]+"\n \],\n "next": "[^"]+"\}\n$/,
 qr/^\{"keys": \[\],\n "next": null\}\n$/]



=== TEST 6: one node killed: the listing still has every key
--- skv_tests: 2
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::router_put("/one/$_", 'v') for 1 .. 6;
SimplekvTest::kill_node('b');
--- request
GET /one/?list
--- error_code: 200
--- response_body eval
qq!{"keys": [\n  "one%2F1",\n  "one%2F2",\n  "one%2F3",\n  "one%2F4",\n  "one%2F5",\n  "one%2F6"\n ],\n "next": null}\n!



=== TEST 7: two nodes killed: 503 JSON, it could miss acknowledged keys
--- skv_tests: 2
--- config eval
$SimplekvTest::QuorumLocation
--- init
SimplekvTest::router_put('/two/1', 'v');
SimplekvTest::kill_node('a');
SimplekvTest::kill_node('c');
--- request
GET /two/?list
--- error_code: 503
--- response_body_like eval
$SimplekvTest::Json
--- timeout: 4



=== TEST 8: bad limit and bad cursor are 400 JSON; HEAD has no body
--- skv_tests: 15
--- config eval
$SimplekvTest::QuorumLocation
--- request eval
["GET /?list&limit=0", "GET /?list&limit=10001", "GET /?list&limit=x",
 "GET /?list&after=%ZZ", "HEAD /?list"]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body eval
[qr/"bad limit"/, qr/"bad limit"/, qr/"bad limit"/, qr/"bad cursor"/, ""]
--- no_error_log
[error]
