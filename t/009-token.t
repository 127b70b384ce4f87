# The shared secret: storaged nodes that require a bearer token, and the
# router sending it from simplekv_token_file. Without the token, or with a
# wrong one, every replica refuses a request (a definite refusal: 500 with
# a JSON error that says so, not 503), and a client cannot supply the token
# itself: its Authorization header never reaches storaged.

use lib 't/lib';
use SimplekvTest 'token';
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

our $NoToken = $SimplekvTest::Upstreams . $SimplekvTest::NodeLines;

our $WrongTokenFile = "$SimplekvTest::DataRoot/wrong-token";
open my $out, '>', $WrongTokenFile or die "$WrongTokenFile: $!\n";
print $out "not-the-token\n";
close $out;

run_tests();

__DATA__

=== TEST 1: the nodes really require the token
--- config
    location / {
        simplekv;
    }
--- init
require HTTP::Tiny;
my $res = HTTP::Tiny->new(timeout => 5)->get(SimplekvTest::node_url('a') . '/v1/kv/someKey');
Test::More::is($res->{status}, 401, $block->name . " - storaged without the token answers 401");
--- request
GET /someKey
--- error_code: 404



=== TEST 2: with simplekv_token_file, requests work
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /tokenKey\nsecret-protected", "GET /tokenKey", "DELETE /tokenKey", "GET /tokenKey"]
--- error_code eval
[201, 200, 204, 404]
--- response_body eval
[qr/.*/s, "secret-protected", "", qr/.*/s]
--- no_error_log
[error]



=== TEST 3: without the token, every replica refuses: 500, not applied
--- http_config eval
$main::NoToken
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /noToken\nvalue", "GET /noToken"]
--- error_code eval
[500, 500]
--- response_body_like eval
['^\{"error": "storage refused the router", "detail": "[^"]*token[^"]*the write was not applied"',
 '^\{"error": "storage refused the router", "detail": "[^"]*token']



=== TEST 4: with a wrong token, every replica refuses: 500
--- http_config eval
$main::NoToken . "    simplekv_token_file $main::WrongTokenFile;\n"
--- config
    location / {
        simplekv;
    }
--- request
PUT /wrongToken
value
--- error_code: 500
--- response_body_like: "storage refused the router"



=== TEST 5: a client's own Authorization header is not passed to storaged
--- http_config eval
$main::NoToken
--- config
    location / {
        simplekv;
    }
--- more_headers eval
"Authorization: Bearer $SimplekvTest::Token"
--- request
PUT /clientToken
value
--- error_code: 500
--- response_body_like: "storage refused the router"



=== TEST 6: a token file that does not exist is refused at start-up
--- http_config eval
$main::NoToken . "    simplekv_token_file $SimplekvTest::DataRoot/no-such-token;\n"
--- config
    location / {
        simplekv;
    }
--- must_die
--- error_log
no-such-token
