# Keys are bytes, percent-encoded in the URL: slashes, control and high
# bytes and UTF-8 work, different spellings of the same bytes are the same
# key, and storaged receives exactly the decoded bytes. The one exception is
# NUL: nginx itself refuses "%00" in a URI, so such a key cannot be named
# through the router; that must be a 400 JSON error like any bad key.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(2);

run_tests();

__DATA__

=== TEST 1: a binary key (slash, 0x01, 0xff) round-trips
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /a%2Fb%01%FF\nbinary key", "GET /a%2Fb%01%FF", "GET /a%2Fb%01%FE"]
--- error_code eval
[201, 200, 404]
--- response_body eval
[qr/.*/s, "binary key", qr/.*/s]
--- no_error_log
[error]



=== TEST 2: storaged holds exactly the decoded bytes
--- config
    location / {
        simplekv;
    }
--- init
SimplekvTest::router_put('/raw%2Fkey%01%FF%20x', 'decoded');
my $holding = 0;
for my $node (@SimplekvTest::NodeNames) {
    my $got = SimplekvTest::node_get($node, "raw/key\x01\xff x");
    $holding++ if $got->{status} == 200 && $got->{content} eq 'decoded';
}
Test::More::cmp_ok($holding, '>=', 2, $block->name . " - a write quorum of nodes holds the decoded key");
--- request
GET /raw%2Fkey%01%FF%20x
--- response_body chomp
decoded



=== TEST 3: different spellings of the same bytes are one key
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /%61%62c\nspelled", "GET /abc", "GET /a%62%63", "GET /ABC"]
--- error_code eval
[201, 200, 200, 404]
--- response_body eval
[qr/.*/s, "spelled", "spelled", qr/.*/s]



=== TEST 4: UTF-8 and a literal slash inside the path are part of the key
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /users/%C3%A9t%C3%A9/profile\nnested", "GET /users/%C3%A9t%C3%A9/profile", "GET /users/%C3%A9t%C3%A9"]
--- error_code eval
[201, 200, 404]
--- response_body eval
[qr/.*/s, "nested", qr/.*/s]



=== TEST 5: a NUL byte in a key is refused as a bad key (nginx refuses %00)
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /%00\nnul", "GET /a%00b"]
--- error_code eval
[400, 400]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
['^\{\s*"error"', '^\{\s*"error"']
