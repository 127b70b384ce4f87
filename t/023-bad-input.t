# Hostile and malformed input gets a clear JSON error and loses nothing:
# an endless chunked upload is cut at the limit, failed If-Match is a JSON
# 412, the location prefix is matched the way nginx matched it, the
# router's own paths and repeated arguments are refused, what nginx itself
# refuses (oversized headers and request lines, bad chunked framing,
# duplicate Content-Length, TRACE, a Transfer-Encoding but chunked, an
# HTTP version but 1.x) is JSON too, Prometheus label values are
# escaped, a value larger than the replica buffer is streamed (not a
# dropped connection), and `nginx -t` refuses configurations that could
# not serve their own values.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

# a version of now from a fresh origin, as a router would make it
sub now_version {
    my $ms = int(Time::HiRes::time() * 1000) - 1577836800000;
    return sprintf("%016x%016x", $ms << 16, 0x5eed0000 + int(rand(65536)));
}

our $Json = $SimplekvTest::Json;

# A replica location like conf/simplekv_proxy.conf's, with a 4k buffer
# (the comment keeps the suite from including simplekv_proxy.conf too).
our $SmallReplica = <<'_EOC_';
    # instead of simplekv_proxy.conf: a replica buffer of 4k
    location = /_simplekv/replica {
        internal;
        simplekv_replica_location;
        subrequest_output_buffer_size 4k;
    }
_EOC_

run_tests();

__DATA__

=== TEST 1: an endless chunked upload is cut at the limit: JSON 413, connection closed
--- config
    location / {
        simplekv;
        simplekv_max_value_size 1k;
    }
--- raw_request eval
"PUT /endless HTTP/1.1\r
Host: localhost\r
Transfer-Encoding: chunked\r
\r
800\r
" . ("x" x 2048) . "\r
800\r
" . ("y" x 2048) . "\r
"
--- timeout: 10
--- error_code: 413
--- response_headers
Content-Type: application/json
Connection: close
--- response_body_like eval
qr/"error": "value too large"/



=== TEST 2: a failed If-Match is a JSON 412, If-Match * passes
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /ifmatch\nvalue", "GET /ifmatch", "GET /ifmatch"]
--- more_headers eval
["", "If-Match: \"00000000000000000000000000000000\"", "If-Match: *"]
--- error_code eval
[201, 412, 200]
--- response_headers_like eval
["", "Content-Type: application/json", ""]
--- response_body_like eval
["^\$", qr/"error": "precondition failed"/, "^value\$"]



=== TEST 3: the location prefix is matched decoded, as nginx matched it: /k%76/a is the key "a" under /kv/
--- config
    location /kv/ {
        simplekv;
    }
--- request eval
["PUT /k%76/decoded\nfrom-k%76", "GET /kv/decoded"]
--- error_code eval
[201, 200]
--- response_body eval
["", "from-k%76"]



=== TEST 4: merged slashes in the prefix: //kv/b is the key "b" under /kv/
--- config
    location /kv/ {
        simplekv;
    }
--- request eval
["PUT //kv/merged\nfrom-double-slash", "GET /kv/merged"]
--- error_code eval
[201, 200]
--- response_body eval
["", "from-double-slash"]



=== TEST 5: a path that does not spell out the prefix (a .. segment) is refused, not misread
--- config
    location /kv/ {
        simplekv;
    }
--- request
PUT /x/../kv/dots
value
--- error_code: 400
--- response_body_like eval
qr/"error": "bad key".*\?key=/



=== TEST 6: paths under /_simplekv/ are the router's own; such keys go in ?key=
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /_simplekv/mine\nvalue", "GET /?key=_simplekv%2Fnever-written"]
--- error_code eval
[400, 404]
--- response_body_like eval
[qr/"error": "bad key".*router's own/, $main::Json]



=== TEST 7: a repeated ?key= or listing argument is refused, not silently ignored
--- config
    location / {
        simplekv;
    }
--- request eval
["GET /?key=one&key=two", "GET /?list&limit=1&limit=2", "GET /?list&after=a&after=b"]
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[qr/"error": "bad key".*more than once/, qr/"error": "bad limit".*more than once/, qr/"error": "bad cursor".*more than once/]



=== TEST 8: a header too large for nginx's buffers is a JSON 431
--- config
    large_client_header_buffers 2 1k;
    location / {
        simplekv;
    }
--- more_headers eval
"X-Big: " . ("b" x 2000)
--- request
GET /big-header
--- error_code: 431
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "request header too large"/



=== TEST 9: a request line too long for nginx's buffers is a JSON 414
--- config
    large_client_header_buffers 2 1k;
    location / {
        simplekv;
    }
--- request eval
"GET /" . ("k" x 3000)
--- error_code: 414
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "key too long"/



=== TEST 10: malformed chunk framing is a JSON 400 that says so
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"PUT /badchunk HTTP/1.1\r
Host: localhost\r
Transfer-Encoding: chunked\r
\r
zz\r
abc\r
0\r
\r
"
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "bad request".*chunked/



=== TEST 11: two Content-Length headers are a JSON 400 that names the possibility
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"PUT /twolengths HTTP/1.1\r
Host: localhost\r
Content-Length: 3\r
Content-Length: 4\r
\r
abc"
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "bad request".*Content-Length/



=== TEST 11b: TRACE, refused by nginx before any location, is a JSON 405 with Allow
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"TRACE /trace HTTP/1.1\r
Host: localhost\r
\r
"
--- error_code: 405
--- response_headers
Content-Type: application/json
Allow: GET, HEAD, PUT, DELETE
--- response_body_like eval
qr/"error": "method not allowed"/



=== TEST 11c: a Transfer-Encoding other than chunked is a JSON 501
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"PUT /gzipped HTTP/1.1\r
Host: localhost\r
Transfer-Encoding: gzip, chunked\r
\r
3\r
abc\r
0\r
\r
"
--- error_code: 501
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "not implemented".*chunked/



=== TEST 11d: an HTTP version other than 1.x is a JSON 505
--- config
    location / {
        simplekv;
    }
--- raw_request eval
"GET /v2 HTTP/2.0\r
Host: localhost\r
\r
"
--- error_code: 505
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/"error": "http version not supported"/



=== TEST 12: Prometheus label values are escaped (node names may hold quotes and backslashes)
--- http_config eval
$SimplekvTest::Upstreams . <<'_EOC_'
    simplekv_node "a\"q" skv_a;
    simplekv_node "b\\z" skv_b;
    simplekv_node c skv_c;
_EOC_
--- config eval
$SimplekvTest::DefaultLocations
--- request
GET /_simplekv/metrics
--- error_code: 200
--- response_body_like eval
qr/simplekv_node_up\{node="a\\"q"\} 1\n.*simplekv_node_up\{node="b\\\\z"\} 1\n/s



=== TEST 13: a stored value larger than the replica buffer (and the stream threshold) is streamed whole, not a dropped connection
--- init
my $v = main::now_version();
SimplekvTest::node_put($_, 'huge', 'h' x 8192, $v) for qw(a b c);
--- config eval
$main::SmallReplica . <<'_EOC_'
    location / {
        simplekv;
        simplekv_stream_threshold 4k;
    }
_EOC_
--- request
GET /huge
--- error_code: 200
--- response_headers
Content-Length: 8192
--- response_body eval
"h" x 8192
--- no_error_log
too big subrequest response



=== TEST 14: nginx -t refuses a simplekv_stream_threshold the replica buffer cannot hold
--- config
    location / {
        simplekv;
        simplekv_stream_threshold 32m;
    }
--- must_die
--- error_log
is larger than the subrequest_output_buffer_size



=== TEST 14b: a simplekv_max_value_size far above the replica buffer is accepted (values above the threshold stream)
--- config
    location / {
        simplekv;
        simplekv_max_value_size 64g;
    }
--- request
GET /never-written-14b
--- error_code: 404



=== TEST 15: nginx -t refuses a simplekv location in a server without the replica location
--- config
    # this server does not include simplekv_proxy.conf
    location / {
        simplekv;
    }
--- must_die
--- error_log
include conf/simplekv_proxy.conf in that server
