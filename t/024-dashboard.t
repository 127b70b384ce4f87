# simplekv_dashboard: the router's status page.  The page, its script
# (?js), its style sheet (?css) and its icon (?icon) are served from memory with their
# Content-Type, Cache-Control: no-cache, a Content-Security-Policy that
# allows the page's own origin only, and an ETag (If-None-Match: 304);
# HEAD works, other methods are a JSON 405 with Allow, other arguments a
# JSON 404; the status URI the page polls is the directive's argument;
# `nginx -t` refuses a bad status URI, a second handler in the location
# and the directive outside a location.  (The page itself is driven in a
# browser by tests/dashboard.)

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket;

our $Dashboard = $SimplekvTest::DefaultLocations . <<'_EOC_';
    location = /_simplekv/dashboard {
        simplekv_dashboard;
    }
_EOC_

our $Csp = "default-src 'none'; script-src 'self'; style-src 'self'; "
         . "connect-src 'self'; img-src 'self'; base-uri 'none'; "
         . "form-action 'none'; frame-ancestors 'none'";

our $Json = $SimplekvTest::Json;

# (after the variables: counting the blocks evaluates their sections)
plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: the page: HTML with its headers, polling the default status URI, nothing from elsewhere
--- skv_tests: 8
--- config eval
$::Dashboard
--- request
GET /_simplekv/dashboard
--- error_code: 200
--- response_headers eval
"Content-Type: text/html; charset=utf-8
Cache-Control: no-cache
Content-Security-Policy: $::Csp
X-Content-Type-Options: nosniff
Referrer-Policy: no-referrer"
--- response_headers_like
ETag: "[0-9a-f]{8}-\d+"
--- response_body_like eval
qr{\A(?!.*(?:https?:|//cdn|\bsrc="/|\bhref="/))(?=.*<meta name="simplekv-status" content="/_simplekv/status">)(?=.*<script src="\?js" defer></script>)(?=.*<link rel="stylesheet" href="\?css">)(?=.*<link rel="icon" href="\?icon").*</html>\s*\z}s
--- no_error_log
[error]



=== TEST 2: the script: JavaScript, polls with fetch, draws on canvas, no URL of elsewhere
--- skv_tests: 6
--- config eval
$::Dashboard
--- request
GET /_simplekv/dashboard?js
--- error_code: 200
--- response_headers eval
"Content-Type: text/javascript; charset=utf-8
Cache-Control: no-cache
Content-Security-Policy: $::Csp
X-Content-Type-Options: nosniff"
--- response_body_like eval
qr{\A(?!.*https?:)(?=.*fetch\(statusUri)(?=.*getContext\('2d'\)).*\}\(\)\);\s*\z}s



=== TEST 3: the style sheet
--- skv_tests: 4
--- config eval
$::Dashboard
--- request
GET /_simplekv/dashboard?css
--- error_code: 200
--- response_headers eval
"Content-Type: text/css; charset=utf-8
Content-Security-Policy: $::Csp"
--- response_body_like eval
qr{\A/\* The simplekv router's dashboard.*\}\s*\z}s



=== TEST 4: the icon (the page names it, so the browser asks no key for /favicon.ico)
--- skv_tests: 4
--- config eval
$::Dashboard
--- request
GET /_simplekv/dashboard?icon
--- error_code: 200
--- response_headers eval
"Content-Type: image/svg+xml
Content-Security-Policy: $::Csp"
--- response_body_like eval
qr{\A<svg xmlns="http://www.w3.org/2000/svg" .*</svg>\s*\z}s



=== TEST 5: HEAD: the same headers and length, no body
--- skv_tests: 6
--- config eval
$::Dashboard
--- init
my $res = SimplekvTest::router_request('GET', '/_simplekv/dashboard');
my $len = length($res->{content} // '');
$block->set_value('response_headers', "Content-Type: text/html; charset=utf-8
Content-Length: $len
Cache-Control: no-cache
Content-Security-Policy: $::Csp");
--- request
HEAD /_simplekv/dashboard
--- error_code: 200
--- response_body chomp



=== TEST 6: If-None-Match with the page's ETag is 304
--- skv_tests: 3
--- config eval
$::Dashboard
--- init
my $res = SimplekvTest::router_request('GET', '/_simplekv/dashboard');
$block->set_value('more_headers', "If-None-Match: $res->{headers}{etag}");
$block->set_value('response_headers', "ETag: $res->{headers}{etag}");
--- request
GET /_simplekv/dashboard
--- error_code: 304
--- response_body chomp



=== TEST 7: POST is a JSON 405 with Allow: GET, HEAD
--- skv_tests: 5
--- config eval
$::Dashboard
--- request
POST /_simplekv/dashboard
some body
--- error_code: 405
--- response_headers
Allow: GET, HEAD
Content-Type: application/json
!Content-Security-Policy
--- response_body_like eval
qr/^\{"error": "method not allowed", "detail": "the dashboard is read with GET or HEAD"\}$/



=== TEST 8: DELETE is refused too
--- skv_tests: 3
--- config eval
$::Dashboard
--- request
DELETE /_simplekv/dashboard
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_body_like eval
$::Json



=== TEST 9: an argument other than js, css or icon is a JSON 404
--- skv_tests: 3
--- config eval
$::Dashboard
--- request
GET /_simplekv/dashboard?status
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{"error": "not found", "detail": "the dashboard serves its page, \?js, \?css and \?icon"\}$/



=== TEST 10: the status URI is the directive's argument, and the page's status answers
--- skv_tests: 4
--- config
    location = /ops/kv-status {
        simplekv_status;
    }
    location /ops/ {
        simplekv_dashboard /ops/kv-status;
    }
--- init
my $res = SimplekvTest::router_request('GET', '/ops/kv-status');
Test::More::like($res->{content} // '', qr/"nodes": \[/,
                 $block->name . " - the status URI answers the status JSON");
--- request
GET /ops/dashboard
--- error_code: 200
--- response_body_like eval
qr{<meta name="simplekv-status" content="/ops/kv-status">}
--- no_error_log
[error]



=== TEST 11: nginx -t refuses a status URI that is not a path on this server
--- skv_tests: 2
--- config
    location = /_simplekv/dashboard {
        simplekv_dashboard http://elsewhere/status;
    }
--- must_die
--- error_log
must be a path on this server



=== TEST 12: nginx -t refuses characters that do not belong in the page
--- skv_tests: 2
--- config
    location = /_simplekv/dashboard {
        simplekv_dashboard '/status"><script>';
    }
--- must_die
--- error_log
may hold letters, digits and / _ - . ~ % only



=== TEST 13: nginx -t refuses the dashboard in a location that already has a handler
--- skv_tests: 2
--- config
    location = /_simplekv/status {
        simplekv_status;
        simplekv_dashboard;
    }
--- must_die
--- error_log
"simplekv_dashboard" cannot share a location with another handler



=== TEST 14: nginx -t refuses the dashboard outside a location
--- skv_tests: 2
--- config
    simplekv_dashboard;
    location = /_simplekv/status {
        simplekv_status;
    }
--- must_die
--- error_log
"simplekv_dashboard" directive is not allowed here



=== TEST 15: nginx -t refuses the directive twice in a location
--- skv_tests: 2
--- config
    location = /_simplekv/dashboard {
        simplekv_dashboard;
        simplekv_dashboard /_simplekv/status;
    }
--- must_die
--- error_log
"simplekv_dashboard" directive is duplicate
