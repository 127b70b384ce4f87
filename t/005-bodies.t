# Request bodies: chunked transfer encoding, and values large enough to be
# buffered in a temporary file (client_body_buffer_size smaller than the
# value), both stored and returned byte for byte.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

our $Big = join "\n", map { sprintf "%07d", $_ } 1 .. 50000;    # 399999 bytes
our $Huge = $Big x 6;                                            # 2399994 bytes

run_tests();

__DATA__

=== TEST 1: a chunked PUT is stored whole
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["Transfer-Encoding: chunked\nContent-Type: text/plain", ""]
--- request eval
["PUT /chunkedValue\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "GET /chunkedValue"]
--- error_code eval
[201, 200]
--- response_headers eval
["", "Content-Type: text/plain\nContent-Length: 11"]
--- response_body eval
[qr/.*/s, "hello world"]
--- no_error_log
[error]



=== TEST 2: a value buffered to a temporary file is accepted
--- config
    location / {
        client_body_buffer_size 1k;
        simplekv;
    }
--- request eval
"PUT /bigValue\n$main::Big"
--- error_code: 201
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 3: ... and stored whole
--- config
    location / {
        simplekv;
    }
--- request
GET /bigValue
--- response_headers
Content-Length: 399999
--- response_body eval
$main::Big



=== TEST 4: a chunked value buffered to a temporary file is accepted
--- config
    location / {
        client_body_buffer_size 1k;
        simplekv;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"PUT /bigChunked\n" . CORE::join("", map { sprintf("%x\r\n", length $_) . "$_\r\n" } unpack("(a4096)*", $main::Big)) . "0\r\n\r\n"
--- error_code: 201
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 5: ... and stored whole
--- config
    location / {
        simplekv;
    }
--- request
GET /bigChunked
--- response_headers
Content-Length: 399999
--- response_body eval
$main::Big



=== TEST 6: a binary value with every byte value round-trips
--- config
    location / {
        simplekv;
    }
--- more_headers eval
["Content-Type: application/octet-stream\nContent-Length: 256", ""]
--- request eval
["PUT /allBytes\n" . CORE::join("", map { chr } 0 .. 255), "GET /allBytes"]
--- error_code eval
[201, 200]
--- response_headers eval
["", "Content-Type: application/octet-stream\nContent-Length: 256"]
--- response_body eval
[qr/.*/s, CORE::join("", map { chr } 0 .. 255)]



=== TEST 7: a value over nginx's default client_max_body_size (1m) is stored when simplekv_max_value_size allows it
--- config
    location / {
        simplekv;
        simplekv_max_value_size 3m;
    }
--- request eval
["PUT /hugeValue\n$main::Huge", "GET /hugeValue"]
--- error_code eval
[201, 200]
--- response_body eval
["", $main::Huge]
--- no_error_log
[error]
