# Keys named in the query string (?key=, ?list&prefix=): the way to reach
# keys nginx refuses in a request path, such as one holding a NUL byte.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a key with a NUL byte: PUT, GET, list, DELETE through ?key=
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /?key=q%2F%00nul%FF\nwith a nul", "GET /?key=q%2F%00nul%FF",
 "GET /?list&prefix=q%2F%00", "DELETE /?key=q%2F%00nul%FF",
 "GET /?key=q%2F%00nul%FF"]
--- error_code eval
[201, 200, 200, 204, 404]
--- response_body eval
["", "with a nul", qq!{"keys": [\n  "q%2F%00nul%FF"\n ],\n "next": null}\n!,
 "", qr/"not found"/]
--- no_error_log
[error]



=== TEST 2: ?key= names the same key as the path
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /same%20key\nv1", "GET /?key=same%20key"]
--- error_code eval
[201, 200]
--- response_body eval
["", "v1"]



=== TEST 3: a key in both the path and ?key= is 400 JSON
--- config
    location / {
        simplekv;
    }
--- request
GET /path-key?key=other
--- error_code: 400
--- response_body_like eval
$SimplekvTest::Json
