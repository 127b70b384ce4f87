# Two worker processes under a master: requests work whichever worker takes
# them, and the status/metrics counters are shared (a shared memory zone),
# so the worker that answers the metrics request reports every request.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);

run_tests();

__DATA__

=== TEST 1: 20 PUTs on fresh connections are all counted by either worker
--- config eval
$SimplekvTest::DefaultLocations
--- init
for my $i (1 .. 20) {
    SimplekvTest::router_put("/workerKey$i", "v$i");
}
for my $i (1 .. 10) {
    my $res = SimplekvTest::router_request('GET', "/workerKey$i");
    Test::More::is($res->{content}, "v$i", $block->name . " - GET $i through any worker");
}
# a PUT is counted when its last replica request has ended, which may be
# after later GETs were answered: wait for both counts
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_requests_total\{namespace="default",method="PUT",status="201"\} 20$/m);
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_requests_total\{namespace="default",method="GET",status="200"\} 10$/m);
--- request eval
["GET /_simplekv/metrics", "GET /_simplekv/metrics"]
--- response_body_like eval
['(?m)^simplekv_requests_total\{namespace="default",method="PUT",status="201"\} 20$', '(?m)^simplekv_requests_total\{namespace="default",method="GET",status="200"\} 10$']
--- no_error_log
[alert]
[emerg]



=== TEST 2: the status document agrees
--- config eval
$SimplekvTest::DefaultLocations
--- init
SimplekvTest::router_put("/statusWorker$_", 'x') for 1 .. 6;
SimplekvTest::wait_for_body('/_simplekv/status', qr/"PUT": \{[^}]*"201": 6\b/);
--- request
GET /_simplekv/status
--- response_body_like: "PUT": \{[^}]*"201": 6\b
