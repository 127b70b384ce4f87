# nginx refuses, at start-up, every configuration that cannot keep the
# consistency promise: W + R <= N, N larger than the node count, W or R
# larger than N, a quorum of 0, an unknown upstream, a duplicate node name,
# no node at all. Valid edge cases (N=2, W=2, R=1; weights) start.

use lib 't/lib';
use SimplekvTest;
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: W + R <= N is refused
--- config
    location / {
        simplekv;
        simplekv_replicas 3;
        simplekv_write_quorum 2;
        simplekv_read_quorum 1;
    }
--- must_die
--- error_log
simplekv_write_quorum 2 + simplekv_read_quorum 1 must be larger than simplekv_replicas 3



=== TEST 2: W + R <= N is refused when the quorums come from the server level
--- config
    simplekv_write_quorum 1;
    simplekv_read_quorum 1;
    location / {
        simplekv;
        simplekv_replicas 2;
    }
--- must_die
--- error_log
must be larger than simplekv_replicas 2



=== TEST 3: N larger than the number of nodes is refused
--- config
    location / {
        simplekv;
        simplekv_replicas 4;
        simplekv_write_quorum 3;
        simplekv_read_quorum 2;
    }
--- must_die
--- error_log
simplekv_replicas 4 is larger than the 3 configured simplekv_node(s)



=== TEST 4: W larger than N is refused
--- config
    location / {
        simplekv;
        simplekv_replicas 2;
        simplekv_write_quorum 3;
        simplekv_read_quorum 1;
    }
--- must_die
--- error_log
simplekv_write_quorum 3 is larger than simplekv_replicas 2



=== TEST 5: R larger than N is refused
--- config
    location / {
        simplekv;
        simplekv_replicas 2;
        simplekv_write_quorum 1;
        simplekv_read_quorum 3;
    }
--- must_die
--- error_log
simplekv_read_quorum 3 is larger than simplekv_replicas 2



=== TEST 6: a write quorum of 0 is refused
--- config
    location / {
        simplekv;
        simplekv_write_quorum 0;
    }
--- must_die
--- error_log
"simplekv_write_quorum" directive



=== TEST 7: a read quorum of 0 is refused
--- config
    location / {
        simplekv;
        simplekv_read_quorum 0;
    }
--- must_die
--- error_log
"simplekv_read_quorum" directive



=== TEST 8: 0 replicas is refused
--- config
    location / {
        simplekv;
        simplekv_replicas 0;
    }
--- must_die
--- error_log
"simplekv_replicas" directive



=== TEST 9: a node naming an upstream that does not exist is refused
--- http_config eval
$SimplekvTest::Upstreams . $SimplekvTest::NodeLines
. "    simplekv_node d skv_nowhere;\n"
--- config
    location / {
        simplekv;
    }
--- must_die
--- error_log
simplekv_node "d" names upstream "skv_nowhere", but there is no "upstream skv_nowhere { ... }" block



=== TEST 10: two nodes with the same name are refused
--- http_config eval
$SimplekvTest::Upstreams . $SimplekvTest::NodeLines
. "    simplekv_node a skv_b;\n"
--- config
    location / {
        simplekv;
    }
--- must_die
--- error_log
duplicate simplekv_node name "a"



=== TEST 11: simplekv without any simplekv_node is refused
--- http_config eval
$SimplekvTest::Upstreams
--- config
    location / {
        simplekv;
    }
--- must_die
--- error_log
"simplekv" needs at least one "simplekv_node"



=== TEST 12: a bad weight is refused
--- http_config eval
$SimplekvTest::Upstreams
. "    simplekv_node a skv_a weight=0;\n"
. "    simplekv_node b skv_b;\n"
. "    simplekv_node c skv_c;\n"
--- config
    location / {
        simplekv;
    }
--- must_die
--- error_log
invalid weight "weight=0" in "simplekv_node" directive



=== TEST 13: N=2, W=2, R=1 (the seed's weaker set-up) starts and serves
--- config
    location / {
        simplekv;
        simplekv_replicas 2;
        simplekv_write_quorum 2;
        simplekv_read_quorum 1;
    }
--- request eval
["PUT /n2key\nn2 value", "GET /n2key"]
--- error_code eval
[201, 200]
--- response_body eval
[qr/.*/s, "n2 value"]
--- no_error_log
[emerg]



=== TEST 14: weighted nodes start and serve
--- http_config eval
$SimplekvTest::Upstreams
. "    simplekv_node a skv_a weight=3;\n"
. "    simplekv_node b skv_b weight=1;\n"
. "    simplekv_node c skv_c weight=2;\n"
--- config
    location / {
        simplekv;
    }
--- request eval
["PUT /weighted\nheavy", "GET /weighted"]
--- error_code eval
[201, 200]
--- response_body eval
[qr/.*/s, "heavy"]



=== TEST 15: an unknown simplekv_read_fanout is refused
--- config
    location / {
        simplekv;
        simplekv_read_fanout some;
    }
--- must_die
--- error_log
invalid value "some"



=== TEST 16: a write quorum of half the replicas or less is refused, even with W + R > N
--- config
    location / {
        simplekv;
        simplekv_replicas 3;
        simplekv_write_quorum 1;
        simplekv_read_quorum 3;
    }
--- must_die
--- error_log
simplekv_write_quorum 1 must be more than half of simplekv_replicas 3



=== TEST 17: a replica location with proxy_pass after simplekv_replica_location (the snippet of earlier versions) is refused
--- config
    # instead of simplekv_proxy.conf: the old replica location
    location = /_simplekv/replica {
        internal;
        simplekv_replica_location;
        proxy_pass http://skv_a/v1/kv/;
    }
    location / {
        simplekv;
    }
--- must_die
--- error_log
has another handler (proxy_pass?): simplekv_replica_location now sends replica requests itself



=== TEST 18: a replica location with proxy_pass before simplekv_replica_location is refused
--- config
    # instead of simplekv_proxy.conf: the old replica location
    location = /_simplekv/replica {
        internal;
        proxy_pass http://skv_a/v1/kv/;
        simplekv_replica_location;
    }
    location / {
        simplekv;
    }
--- must_die
--- error_log
"simplekv_replica_location" directive cannot share a location with another handler (proxy_pass?)



=== TEST 19: simplekv_replica_location twice is refused
--- config
    # instead of simplekv_proxy.conf
    location = /_simplekv/replica {
        internal;
        simplekv_replica_location;
        simplekv_replica_location;
    }
    location / {
        simplekv;
    }
--- must_die
--- error_log
"simplekv_replica_location" directive is duplicate



=== TEST 20: the storage timeouts and buffer size are accepted in the replica location
--- config
    # instead of simplekv_proxy.conf
    location = /_simplekv/replica {
        internal;
        simplekv_replica_location;
        simplekv_storage_connect_timeout 2s;
        simplekv_storage_send_timeout 3s;
        simplekv_storage_read_timeout 3s;
        simplekv_storage_buffer_size 16k;
        subrequest_output_buffer_size 16m;
    }
    location / {
        simplekv;
    }
--- request
GET /never-written-config-20
--- error_code: 404
