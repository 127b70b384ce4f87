# The status location (JSON) and the metrics location (Prometheus text):
# every node with up/down, successes, failures, timeouts and latency; client
# requests by method and status; counters that move with traffic and with
# a node going down.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();

# A block's "--- json_check eval" is a sub that gets the decoded status
# document; the body must be valid JSON for it to run.
add_response_body_check(sub {
    my ($block, $body) = @_;
    my $check = $block->json_check;
    return if ref $check ne 'CODE';
    my $data = eval { JSON::PP->new->decode($body) };
    Test::More::ok(defined $data, $block->name . " - body is valid JSON"
                   . ($@ ? ": $@" : ''));
    $check->($data, $block->name) if defined $data;
});

run_tests();

__DATA__

=== TEST 1: status lists every node, up, with its counters
--- config eval
$SimplekvTest::DefaultLocations
--- init
SimplekvTest::router_put('/statusWarmup', 'x');
SimplekvTest::wait_for_body('/_simplekv/status', qr/"PUT": \{[^}]*"201": [1-9]/);
--- request
GET /_simplekv/status
--- response_headers
Content-Type: application/json
--- json_check eval
sub {
    my ($data, $name) = @_;
    my @nodes = @{ $data->{nodes} || [] };
    Test::More::is_deeply([sort map { $_->{name} } @nodes], ['a', 'b', 'c'],
                          "$name - nodes a, b, c");
    for my $node (@nodes) {
        for my $field (qw(up successes failures timeouts latency_ms_sum latency_count weight upstream)) {
            Test::More::ok(exists $node->{$field}, "$name - node $node->{name} has $field");
        }
        Test::More::ok($node->{up}, "$name - node $node->{name} is up");
    }
    my $ok = grep { $_->{successes} > 0 } @nodes;
    Test::More::cmp_ok($ok, '>=', 2, "$name - the PUT counted successes on a quorum of nodes");
    Test::More::cmp_ok($data->{requests}{PUT}{201} // 0, '>=', 1, "$name - PUT 201 counted");
    Test::More::ok(exists $data->{read_repairs}, "$name - read_repairs present");
    Test::More::ok(exists $data->{write_retries}, "$name - write_retries present");
}
--- no_error_log
[error]



=== TEST 2: metrics are Prometheus text with the node and request series
--- config eval
$SimplekvTest::DefaultLocations
--- init
SimplekvTest::router_put('/metricsWarmup', 'x');
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_requests_total\{namespace="default",method="PUT",status="201"\} [1-9]/m);
--- request
GET /_simplekv/metrics
--- response_headers_like
Content-Type: text/plain.*
--- response_body_like eval
qr/^# HELP simplekv_node_up .*
^# TYPE simplekv_node_up gauge$
^simplekv_node_up\{node="a"\} 1$
^simplekv_node_up\{node="b"\} 1$
^simplekv_node_up\{node="c"\} 1$
.*^# TYPE simplekv_node_requests_total counter$
.*^simplekv_node_requests_total\{node="a",outcome="success"\} \d+$
.*^# TYPE simplekv_node_latency_seconds histogram$
.*^simplekv_node_latency_seconds_count\{node="c"\} \d+$
.*^simplekv_requests_total\{namespace="default",method="PUT",status="201"\} [1-9]\d*$
.*^simplekv_read_repairs_total \d+$
.*^simplekv_write_retries_total \d+$/ms
--- no_error_log
[error]



=== TEST 3: a killed node is reported down, with failures, after traffic
--- config eval
$SimplekvTest::DefaultLocations
--- init
SimplekvTest::kill_node('b');
SimplekvTest::router_put("/downKey$_", 'x') for 1 .. 3;
--- request
GET /_simplekv/status
--- json_check eval
sub {
    my ($data, $name) = @_;
    my %node = map { $_->{name} => $_ } @{ $data->{nodes} || [] };
    Test::More::ok(!$node{b}{up}, "$name - node b is down");
    Test::More::cmp_ok($node{b}{failures}, '>=', 1, "$name - node b has failures");
    Test::More::ok($node{a}{up} && $node{c}{up}, "$name - nodes a and c are up");
}



=== TEST 4: request counters count GET 404 and DELETE 204 too
--- config eval
$SimplekvTest::DefaultLocations
--- init
my $get = SimplekvTest::router_request('GET', '/neverThereMetric');
my $del = SimplekvTest::router_request('DELETE', '/neverThereMetric');
Test::More::is("$get->{status} $del->{status}", "404 204", $block->name . " - GET 404, DELETE 204");
SimplekvTest::wait_for_body('/_simplekv/metrics', qr/^simplekv_requests_total\{namespace="default",method="DELETE",status="204"\} [1-9]/m);
--- request
GET /_simplekv/metrics
--- response_body_like eval
qr/(?=.*^simplekv_requests_total\{namespace="default",method="GET",status="404"\} [1-9]\d*$)(?=.*^simplekv_requests_total\{namespace="default",method="DELETE",status="204"\} [1-9]\d*$)/ms
