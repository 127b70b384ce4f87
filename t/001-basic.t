# The client API's basic requests through the router, 3 storaged nodes,
# N=3 W=2 R=2: PUT, GET, HEAD, DELETE, tombstones, overwrite, empty value.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

run_tests();

__DATA__

=== TEST 1: the seed's example: PUT text/plain 'hello world', then GET it
--- config
    location / {
        simplekv;
        simplekv_replicas 3;
        simplekv_write_quorum 2;
        simplekv_read_quorum 2;
    }
--- more_headers
Content-Type: text/plain
--- request eval
["PUT /exampleKey\nhello world", "GET /exampleKey"]
--- error_code eval
[201, 200]
--- response_headers_like eval
['ETag: "[0-9a-f]{32}"', "ETag: \"[0-9a-f]{32}\"\nContent-Type: text/plain\nContent-Length: 11"]
--- response_body eval
[qr/.*/s, "hello world"]
--- no_error_log
[error]



=== TEST 2: HEAD gives the headers of GET and no body
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["Content-Type: text/plain", ""]
--- request eval
["PUT /headKey\n0123456789", "HEAD /headKey"]
--- error_code eval
[201, 200]
--- response_headers_like eval
['ETag: "[0-9a-f]{32}"', "ETag: \"[0-9a-f]{32}\"\nContent-Type: text/plain\nContent-Length: 10"]
--- response_body eval
[qr/.*/s, ""]
--- no_error_log
[error]



=== TEST 3: GET of a key never written is 404
--- config
    location / {
        simplekv;
    }
--- request
GET /never-written-key
--- error_code: 404
--- response_headers
!ETag
--- no_error_log
[error]



=== TEST 4: DELETE writes a tombstone: 204, then GET and HEAD are 404
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /deletedKey\nsoon gone", "DELETE /deletedKey", "GET /deletedKey", "HEAD /deletedKey"]
--- error_code eval
[201, 204, 404, 404]
--- response_body eval
[qr/.*/s, "", qr/.*/s, ""]
--- no_error_log
[error]



=== TEST 5: DELETE is idempotent, also for a key never written
--- config
    location / {
        simplekv;
    }
--- request eval
["DELETE /never-there", "DELETE /never-there", "GET /never-there"]
--- error_code eval
[204, 204, 404]
--- no_error_log
[error]



=== TEST 6: a PUT after a DELETE brings the key back
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /phoenix\nfirst", "DELETE /phoenix", "PUT /phoenix\nsecond", "GET /phoenix"]
--- error_code eval
[201, 204, 201, 200]
--- response_body eval
[qr/.*/s, "", qr/.*/s, "second"]
--- no_error_log
[error]



=== TEST 7: the newest PUT wins, with its own Content-Type
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["Content-Type: text/plain", "Content-Type: application/json", ""]
--- request eval
["PUT /overwritten\nold", "PUT /overwritten\n{\"new\": true}", "GET /overwritten"]
--- error_code eval
[201, 201, 200]
--- response_headers eval
["", "", "Content-Type: application/json"]
--- response_body eval
[qr/.*/s, qr/.*/s, '{"new": true}']
--- no_error_log
[error]



=== TEST 8: an empty value is a value: GET gives 200 and Content-Length 0
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["Content-Length: 0", ""]
--- request eval
["PUT /emptyValue", "GET /emptyValue"]
--- error_code eval
[201, 200]
--- response_headers eval
["", "Content-Length: 0"]
--- response_body eval
[qr/.*/s, ""]
--- no_error_log
[error]



=== TEST 9: without a Content-Type, the value is application/octet-stream
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /noContentType\nuntyped", "GET /noContentType"]
--- error_code eval
[201, 200]
--- response_headers eval
["", "Content-Type: application/octet-stream"]
--- response_body eval
[qr/.*/s, "untyped"]



=== TEST 10: with simplekv_read_fanout quorum, reads answer from two of three replicas
--- config
    location / {
        simplekv;
        simplekv_read_fanout quorum;
    }
--- more_headers eval
["Content-Type: text/plain", ""]
--- request eval
["PUT /fanoutKey\nasked by quorum", "GET /fanoutKey"]
--- error_code eval
[201, 200]
--- response_body eval
[qr/.*/s, "asked by quorum"]
--- no_error_log
[error]
