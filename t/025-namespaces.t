# Namespaces: every simplekv location reads and writes one key space, and
# two locations share keys only when they name the same namespace.  The
# last blocks run the README's multi-tenant recipe as it is written there.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

# The README's recipe, part "http" or "server" (between its markers).
sub recipe {
    my $part = shift;
    my $file = "$SimplekvTest::Root/README.md";
    open my $fh, '<', $file or die "cannot read $file: $!\n";
    my $text = do { local $/; <$fh> };
    $text =~ /<!-- recipe:multi-tenant:\Q$part\E -->\s*```nginx\n(.*?)```/s
        or die "no multi-tenant recipe part \"$part\" in $file\n";
    return $1;
}

our $RecipeHttp = $SimplekvTest::HttpConfig . recipe('http');
our $RecipeServer = recipe('server') . $SimplekvTest::StatusLocations;
our $InternalAuth = "Authorization: Bearer internal-secret";

run_tests();

__DATA__

=== TEST 1: the same key name in two namespaces holds two values
--- config
    location / {
        simplekv;
    }
    location /tenant-b/ {
        simplekv;
        simplekv_namespace tenant-b;
    }
--- request eval
["PUT /ns1-secret\ntenant-a data", "GET /tenant-b/ns1-secret",
 "PUT /tenant-b/ns1-secret\ntenant-b data", "GET /ns1-secret",
 "GET /tenant-b/ns1-secret", "DELETE /tenant-b/ns1-secret",
 "GET /ns1-secret", "GET /tenant-b/ns1-secret"]
--- error_code eval
[201, 404, 201, 200, 200, 204, 200, 404]
--- response_body eval
["", qr/"not found"/, "", "tenant-a data", "tenant-b data", "",
 "tenant-a data", qr/"not found"/]
--- no_error_log
[error]



=== TEST 2: a listing never crosses namespaces
--- config
    location / {
        simplekv;
    }
    location /tenant-b/ {
        simplekv;
        simplekv_namespace tenant-b;
    }
--- request eval
["PUT /ns2-a\na", "PUT /tenant-b/ns2-b\nb", "PUT /tenant-b/ns2-c\nc",
 "GET /?list&prefix=ns2-", "GET /tenant-b/?list&prefix=ns2-"]
--- error_code eval
[201, 201, 201, 200, 200]
--- response_body eval
["", "", "",
 qq!{"keys": [\n  "ns2-a"\n ],\n "next": null}\n!,
 qq!{"keys": [\n  "ns2-b",\n  "ns2-c"\n ],\n "next": null}\n!]



=== TEST 3: locations that name the same namespace share its keys
--- config
    location /one/ {
        simplekv;
        simplekv_namespace shared;
    }
    location /two/ {
        simplekv;
        simplekv_namespace shared;
    }
--- request eval
["PUT /one/ns3-k\nshared value", "GET /two/ns3-k", "GET /two/?list&prefix=ns3-"]
--- error_code eval
[201, 200, 200]
--- response_body eval
["", "shared value", qq!{"keys": [\n  "ns3-k"\n ],\n "next": null}\n!]



=== TEST 4: a namespace named at the server level is inherited
--- config
    simplekv_namespace tenant-c;
    location /c/ {
        simplekv;
    }
    location /also-c/ {
        simplekv;
    }
    location /default-view/ {
        simplekv;
        simplekv_namespace default;
    }
--- request eval
["PUT /c/ns4-k\nc value", "GET /also-c/ns4-k", "GET /default-view/ns4-k"]
--- error_code eval
[201, 200, 404]
--- response_body eval
["", "c value", qr/"not found"/]



=== TEST 5: "default" named explicitly is the keys of a location that names none
--- config
    location / {
        simplekv;
    }
    location /d/ {
        simplekv;
        simplekv_namespace default;
    }
--- request eval
["PUT /ns5-k\nold keys", "GET /d/ns5-k"]
--- error_code eval
[201, 200]
--- response_body eval
["", "old keys"]



=== TEST 6: one namespace with different N, W or R is refused
--- config
    location /x/ {
        simplekv;
        simplekv_namespace same;
    }
    location /y/ {
        simplekv;
        simplekv_namespace same;
        simplekv_replicas 2;
        simplekv_write_quorum 2;
        simplekv_read_quorum 1;
    }
--- must_die
--- error_log
simplekv namespace "same" has N=3 W=2 R=2 in location "/x/" but N=2 W=2 R=1 in location "/y/"



=== TEST 7: two locations sharing "default" without naming it are refused
--- config
    location /x/ {
        simplekv;
    }
    location /y/ {
        simplekv;
    }
--- must_die
--- error_log
simplekv locations "/x/" and "/y/" would share the keys of the namespace "default" without naming it



=== TEST 8: a bad namespace name is refused
--- config
    location / {
        simplekv;
        simplekv_namespace a/b;
    }
--- must_die
--- error_log
invalid namespace "a/b"



=== TEST 9: a namespace name over 64 characters is refused
--- config
    location / {
        simplekv;
        simplekv_namespace aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;
    }
--- must_die
--- error_log
"simplekv_namespace" directive needs a name of 1 to 64 characters



=== TEST 10: status lists the namespaces with their quorums; metrics count per namespace
--- config
    location / {
        simplekv;
    }
    location /two/ {
        simplekv;
        simplekv_namespace two;
        simplekv_replicas 2;
        simplekv_write_quorum 2;
        simplekv_read_quorum 1;
    }
    location = /_simplekv/status {
        simplekv_status;
    }
    location = /_simplekv/metrics {
        simplekv_metrics;
    }
--- init
SimplekvTest::router_request('PUT', '/two/ns10-k', 'v');
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_requests_total\{namespace="two",method="PUT",status="201"\} [1-9]/m);
--- request eval
["GET /_simplekv/status", "GET /_simplekv/metrics"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/"namespaces": \[\n  \{"name": "default", "replicas": 3, "write_quorum": 2, "read_quorum": 2,\n   "requests": \{.*\},\n  \{"name": "two", "replicas": 2, "write_quorum": 2, "read_quorum": 1,\n   "requests": \{.*"PUT": \{"201": [1-9]/s,
 qr/^simplekv_requests_total\{namespace="two",method="PUT",status="201"\} [1-9]\d*$/m]



=== TEST 11: the README's multi-tenant recipe: internal needs the auth check
--- http_config eval
$main::RecipeHttp
--- config eval
$main::RecipeServer
--- request eval
["PUT /internal/ns11-k\nno auth", "PUT /internal/ns11-k\ninternal value",
 "GET /internal/ns11-k", "GET /internal/ns11-k", "GET /public/ns11-k",
 "PUT /public/ns11-k\npublic value", "GET /internal/ns11-k",
 "GET /public/ns11-k"]
--- more_headers eval
["", $main::InternalAuth, $main::InternalAuth, "", "", "",
 $main::InternalAuth, ""]
--- error_code eval
[401, 201, 200, 401, 404, 201, 200, 200]
--- response_body_like eval
[qr//, qr/^$/, qr/^internal value$/, qr//, qr/"not found"/, qr/^$/,
 qr/^internal value$/, qr/^public value$/]



=== TEST 12: the README's multi-tenant recipe: each namespace has its own N
--- http_config eval
$main::RecipeHttp
--- config eval
$main::RecipeServer
--- request
GET /_simplekv/status
--- error_code: 200
--- response_body_like eval
qr/\{"name": "internal", "replicas": 3, "write_quorum": 2, "read_quorum": 2,.*\{"name": "public", "replicas": 2, "write_quorum": 2, "read_quorum": 1,/s



=== TEST 13: the README's multi-tenant recipe: public is rate-limited with 429
--- http_config eval
$main::RecipeHttp
--- config eval
$main::RecipeServer
--- init
# a burst past the recipe's 5 r/s + 5: the block's own request is refused
SimplekvTest::router_request('GET', "/public/ns13-$_") for 1 .. 20;
--- request
GET /public/ns13-last
--- error_code: 429
