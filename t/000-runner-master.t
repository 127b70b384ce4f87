# Self-test of the runner's global knobs with stock nginx: master_on with
# two workers, log_level, env_to_nginx.

use lib 't/lib';
use SimplekvTest 'stock';
use Test::Nginx::Socket;

$ENV{SIMPLEKV_RUNNER_ENV} = 'passed through';
env_to_nginx('SIMPLEKV_RUNNER_ENV');
master_on();
workers(2);
log_level('warn');

plan tests => SimplekvTest::planned_tests();

run_tests();

__DATA__

=== TEST 1: a master with two workers serves
--- skv_tests: 4
--- config
    location = /pid {
        return 200 "worker $pid\n";
    }
--- init
my $master = Test::Nginx::Util::get_pid_from_pidfile($block->name);
my $workers = 0;
for (1 .. 50) {
    $workers = 0;
    for my $file (glob '/proc/[0-9]*/stat') {
        open my $in, '<', $file or next;
        my $stat = <$in> // '';
        $workers++ if $stat =~ /^\d+ \(.*\) \S+ (\d+) / && $1 == $master;
    }
    last if $workers == 2;
    select undef, undef, undef, 0.02;
}
Test::More::is($workers, 2, $block->name . " - the master $master has two workers");
--- request
GET /pid
--- response_body_like: ^worker \d+$
--- no_error_log
[debug]



=== TEST 2: the warn level hides info messages but keeps warnings
--- skv_tests: 5
--- config
    location = /warned {
        client_body_buffer_size 1k;
        client_body_in_file_only off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
    }
    location = /sink {
        return 200 "sunk";
    }
--- request eval
"POST /warned\n" . ("w" x 5000)
--- response_body chomp
sunk
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[info]
[debug]
