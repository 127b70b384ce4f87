# Self-test of the Test::Nginx runner with stock nginx only (no simplekv
# module, no storaged): request building, the checks, must_die with the
# start-up error log, init, and $TEST_NGINX_* substitution. Passes under the
# real Test::Nginx too.

use lib 't/lib';
use SimplekvTest 'stock';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: plain body from return
--- skv_tests: 3
--- config
    location = /hello {
        return 200 "hello world\n";
    }
--- request
GET /hello
--- response_body
hello world
--- no_error_log
[error]



=== TEST 2: response headers: value, absent header, like
--- skv_tests: 5
--- config
    location = /h {
        add_header X-Runner yes;
        return 204;
    }
--- request
GET /h
--- error_code: 204
--- response_headers
X-Runner: yes
!X-Not-There
--- response_body chomp
--- no_error_log
[error]



=== TEST 3: response_headers_like and response_body_like
--- skv_tests: 4
--- config
    location = /v {
        add_header X-Version "v-$nginx_version";
        return 200 "status of $uri is fine";
    }
--- request
GET /v
--- response_headers_like
X-Version: v-\d+\.\d+\.\d+
Server: nginx.*
--- response_body_like: ^status of /v is fine$



=== TEST 4: 404 from the default root location, found in the error log
--- skv_tests: 3
--- config
--- request
GET /nonexistent.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory



=== TEST 5: request body is trimmed and gets a Content-Length
--- skv_tests: 2
--- config
    location = /len {
        return 200 "len=$http_content_length";
    }
--- request
PUT /len
hello world
--- response_body chomp
len=11



=== TEST 6: more_headers reach the server, Host is localhost
--- skv_tests: 2
--- config
    location = /hdr {
        return 200 "$http_x_foo|$host|$http_connection";
    }
--- more_headers
X-Foo: bar baz
--- request
GET /hdr
--- response_body chomp
bar baz|localhost|close



=== TEST 7: hand-written chunked request body is sent as it is
--- skv_tests: 2
--- config
    location = /te {
        return 200 "te=$http_transfer_encoding cl=$http_content_length";
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /te
5\r
hello\r
0\r
\r
"
--- response_body chomp
te=chunked cl=



=== TEST 8: chunked response body is decoded
--- skv_tests: 4
--- config
    location = /chunked {
        sub_filter 'a' 'bb';
        sub_filter_once off;
        sub_filter_types text/plain;
        return 200 "banana";
    }
--- request
GET /chunked
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body chomp
bbbnbbnbb



=== TEST 9: HEAD gets headers and no body
--- skv_tests: 3
--- config
    location = /head {
        return 200 "0123456789";
    }
--- request
HEAD /head
--- response_headers
Content-Length: 10
--- response_body chomp



=== TEST 10: several requests in one block, arrays of expectations
--- skv_tests: 4
--- config
    location = /one { return 200 "one"; }
    location = /two { return 201 "two"; }
--- request eval
["GET /one", "GET /two"]
--- error_code eval
[200, 201]
--- response_body eval
["one", "two"]



=== TEST 11: body over client_max_body_size gets 413 before it is read
--- skv_tests: 3
--- config
    location = /small {
        client_max_body_size 1k;
        return 200 "read";
    }
--- request eval
"PUT /small\n" . ("x" x 300000)
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large
--- error_log
client intended to send too large body



=== TEST 12: $TEST_NGINX_SERVER_PORT is substituted in the config
--- skv_tests: 2
--- config
    location = /port {
        return 200 "port $TEST_NGINX_SERVER_PORT";
    }
--- request
GET /port
--- response_body chomp
port $ServerPort



=== TEST 13: init runs before the request, with $block in scope
--- skv_tests: 2
--- config
    location = /init {
        return 200 "$http_x_from_init";
    }
--- init
$block->set_value('more_headers', "X-From-Init: set by init");
--- request
GET /init
--- response_body chomp
set by init



=== TEST 14: must_die: a bad directive stops nginx, message in error.log
--- skv_tests: 2
--- config
    location = /bad {
        no_such_directive_here on;
    }
--- must_die
--- error_log
unknown directive "no_such_directive_here"



=== TEST 15: http_config and main_config sections are used
--- skv_tests: 2
--- main_config
env SIMPLEKV_RUNNER_TEST;
--- http_config
    map $uri $runner_mapped {
        default "mapped";
    }
--- config
    location = /map {
        return 200 "$runner_mapped";
    }
--- request
GET /map
--- response_body chomp
mapped
