# SimplekvTest - shared set-up for simplekv's Test::Nginx suite (t/*.t).
#
# A test file starts with
#
#     use lib 't/lib';
#     use SimplekvTest;          # or 'stock' (no module, no storaged),
#                                # or 'token' (nodes require a token)
#     use Test::Nginx::Socket 'no_plan';
#
# Loading this module
#   * waits until no other run of the suite is going on (a lock file), as
#     ports and directories are fixed ('nolock' skips that);
#   * puts t/fallback (our small Test::Nginx::Socket) at the END of @INC, so
#     a real Test::Nginx (installed, or named by PERL5LIB) is used when
#     there is one;
#   * runs nginx through t/util/nginx-with-startup-log, so configuration
#     errors reach t/servroot/logs/error.log (see that script);
#   * unless 'stock' is given: starts three real storaged nodes a, b, c on
#     127.0.0.1:18501-18503 (SIMPLEKV_T_NODE_PORT moves them) with fresh
#     data under t/servroot-storaged/ (with 'token': requiring a bearer
#     token, which the router is then configured to send), stops them when
#     the test file ends (also on failure or Ctrl-C), and adds a block
#     preprocessor that gives every block, unless it sets its own:
#     --- main_config loading build/ngx_http_simplekv_module.so,
#     --- http_config with the three upstreams and simplekv_node lines, and
#     the include of conf/simplekv_proxy.conf in --- config. Before each
#     block it restarts any node a previous block killed.
#
# Helpers for "--- init" (which the real Test::Nginx evaluates in its own
# package, so call them fully qualified, e.g. SimplekvTest::kill_node('b')):
# kill_node, stop_node, start_node, pause_node, resume_node, node_alive,
# node_get, node_put, router_request, router_put, wait_for_body, run_load.

package SimplekvTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use URI::Escape qw(uri_escape);

our $Root;
our $RealNginx;

BEGIN {
    $Root = abs_path(dirname(__FILE__) . '/../..');
    push @INC, "$Root/t/fallback";

    # Both Test::Nginx implementations read TEST_NGINX_BINARY when they are
    # loaded, which happens after this.
    $RealNginx = $ENV{SIMPLEKV_NGINX} || $ENV{TEST_NGINX_BINARY};
    if (!$RealNginx) {
        ($RealNginx) = grep { -x } map { "$_/nginx" }
                       grep { $_ ne '' } split /:/, $ENV{PATH} || '';
        $RealNginx ||= '/usr/sbin/nginx';
    }
    $ENV{SIMPLEKV_NGINX} = $RealNginx;
    $ENV{TEST_NGINX_BINARY} = "$Root/t/util/nginx-with-startup-log";
}

our $Module = $ENV{SKV_NGINX_MODULE}
              || "$Root/build/ngx_http_simplekv_module.so";
our $Storaged = $ENV{SKV_STORAGED} || "$Root/build/storaged";
our $ProxyConf = "$Root/conf/simplekv_proxy.conf";
# Nodes a, b, c listen on SIMPLEKV_T_NODE_PORT (default 18501) and the two
# ports above it; with TEST_NGINX_PORT and TEST_NGINX_SERVROOT that lets a
# second copy of the suite run beside the first.
our $NodePort = $ENV{SIMPLEKV_T_NODE_PORT} || 18501;
# nginx's port and server root as both runners read them
our $Port = $ENV{TEST_NGINX_PORT} || 1984;
our $ServRoot = $ENV{TEST_NGINX_SERVROOT};
# The nodes' data and logs, and the suite's lock file: beside a moved
# server root (<servroot>-storaged), else under t/ (per node port, so a
# copy with only SIMPLEKV_T_NODE_PORT moved does not share them);
# SIMPLEKV_T_DATA_ROOT names it outright.
our $DataRoot = $ENV{SIMPLEKV_T_DATA_ROOT}
    || ($ServRoot ? File::Spec->rel2abs($ServRoot) . '-storaged'
        : $NodePort == 18501 ? "$Root/t/servroot-storaged"
        : "$Root/t/servroot-storaged-$NodePort");

# name -> { port, pid }
our %Nodes = (
    a => { port => $NodePort },
    b => { port => $NodePort + 1 },
    c => { port => $NodePort + 2 },
);
our @NodeNames = sort keys %Nodes;

# The upstream blocks alone (for blocks that write their own simplekv_node
# lines, e.g. configuration errors) and the default http_config.
our $Upstreams = join '', map {
    "    upstream skv_$_ { server 127.0.0.1:$Nodes{$_}{port}; keepalive 32; }\n"
} @NodeNames;
our $NodeLines = join '', map { "    simplekv_node $_ skv_$_;\n" } @NodeNames;
our $HttpConfig = $Upstreams . $NodeLines;
our $LoadModule = "load_module $Module;";

# --- pieces of configuration and expectations shared by the .t files ---
# (use them as $SimplekvTest::Json etc.: the names are not exported)

# a JSON error body: {"error": "...", "detail": "..."}
our $Json = qr/^\{\s*"error"\s*:\s*"[^"]+"\s*,\s*"detail"\s*:\s*".*"\s*\}\s*$/s;

# --- config: the client API at "/" with N=3, W=2, R=2 and a replica
# timeout of $timeout (default 1s, the module's default)
sub quorum_location {
    my ($timeout, $extra) = @_;
    $timeout //= '1s';
    $extra //= '';
    return <<"_EOC_";
    location / {
        simplekv;
        simplekv_replicas 3;
        simplekv_write_quorum 2;
        simplekv_read_quorum 2;
        simplekv_replica_timeout $timeout;
        $extra
    }
_EOC_
}
our $QuorumLocation = quorum_location();

# the router's own status (JSON) and metrics (Prometheus) locations
our $StatusLocations = <<'_EOC_';
    location = /_simplekv/status {
        simplekv_status;
    }
    location = /_simplekv/metrics {
        simplekv_metrics;
    }
_EOC_

# the client API with every default, and status and metrics
our $DefaultLocations = <<'_EOC_' . $StatusLocations;
    location / {
        simplekv;
    }
_EOC_

# With "use SimplekvTest 'token';" the nodes require a bearer token (the
# first line of $TokenFile) and the default http_config names that file in
# simplekv_token_file.
our $TokenFile = "$DataRoot/token";
our $Token;

# nginx under valgrind (TEST_NGINX_USE_VALGRIND) answers many times more
# slowly: client timeouts and deadlines are multiplied by this, and timing
# bounds that must stay meaningful are derived from it.
our $Slowdown = $ENV{TEST_NGINX_USE_VALGRIND} ? 10 : 1;

our $OwnerPid = $$;
our %Stale;             # a node's data dir was wiped already this run

my $http = HTTP::Tiny->new(timeout => 5 * $Slowdown, keep_alive => 0);

# The suite's ports and directories are fixed, so two runs at once (two
# engineers, or make test beside a prove) would trample each other: a test
# file holds this lock for its whole life, and a second run waits for it.
our $LockFh;

sub lock_suite {
    make_path($DataRoot);
    my $file = "$DataRoot/.suite.lock";
    open $LockFh, '>>', $file or die "SimplekvTest: cannot open $file: $!\n";
    return if flock($LockFh, LOCK_EX | LOCK_NB);

    warn "SimplekvTest: another run of the t/ suite holds $file; "
         . "waiting for it (up to 15 minutes)\n";
    my $deadline = time + 900;
    until (flock($LockFh, LOCK_EX | LOCK_NB)) {
        die "SimplekvTest: gave up waiting for $file\n" if time > $deadline;
        sleep 0.5;
    }
}

sub import {
    my ($class, @opts) = @_;
    my %opt = map { $_ => 1 } @opts;

    lock_suite() if !$opt{nolock};

    require Test::Nginx::Socket;

    # Blocks run in file order: easier to read and to debug than the real
    # module's default shuffle.
    &Test::Nginx::Socket::no_shuffle();

    return if $opt{stock};

    # the client API owns "location /"
    &Test::Nginx::Socket::no_root_location();

    for my $file ($Module, $ProxyConf) {
        warn "SimplekvTest: $file does not exist (not built yet?); the "
             . "blocks that need it will fail\n" if !-e $file;
    }

    if ($opt{token}) {
        make_path($DataRoot);
        $Token = join '', map { sprintf '%02x', int rand 256 } 1 .. 24;
        open my $out, '>', $TokenFile
            or die "SimplekvTest: cannot write $TokenFile: $!\n";
        print $out "$Token\n";
        close $out;
        $HttpConfig .= "    simplekv_token_file $TokenFile;\n";
    }

    start_cluster();
    &Test::Nginx::Socket::add_block_preprocessor(\&preprocess);
}

# The plan of a file whose blocks make different numbers of checks: each
# block states its own in "--- skv_tests: N" (every check of one run of the
# block: each request's status, body, header and error-log checks, and
# those in --- init or a response check), and
#
#     plan tests => SimplekvTest::planned_tests();
#
# sums them times repeat_each(). Only the blocks that run count (a block
# marked --- ONLY, or a file cut down to one block), so every block can
# still run alone; a block that stops checking, or checks twice, fails the
# plan.
sub planned_tests {
    my $sum = 0;
    for my $block (Test::Nginx::Socket::blocks()) {
        my $n = eval { $block->skv_tests };
        die "SimplekvTest: " . $block->name . " has no --- skv_tests\n"
            if !defined $n || $n !~ /^\s*(\d+)\s*$/;
        $sum += $1;
    }
    return Test::Nginx::Socket::repeat_each() * $sum;
}

sub preprocess {
    my $block = shift;

    ensure_all_up();

    $block->set_value('main_config', $LoadModule)
        if !defined $block->main_config;
    $block->set_value('http_config', $HttpConfig)
        if !defined $block->http_config;

    my $config = $block->config // '';
    if ($config !~ /simplekv_proxy\.conf/) {
        $block->set_value('config', "    include $ProxyConf;\n$config");
    }
}

# --- storaged nodes ---------------------------------------------------

sub node_url {
    my $name = shift;
    die "SimplekvTest: unknown node \"$name\"\n" if !$Nodes{$name};
    return "http://127.0.0.1:$Nodes{$name}{port}";
}

sub node_alive {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return 0;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return kill 0, $pid;
}

sub start_node {
    my $name = shift;
    my $node = $Nodes{$name} or die "SimplekvTest: unknown node \"$name\"\n";
    return 1 if node_alive($name);

    die "SimplekvTest: $Storaged is missing: run make first\n"
        if !-x $Storaged;

    # a leftover process on our port would silently serve this test
    my $probe = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $node->{port},
                                      Timeout => 1);
    if ($probe) {
        close $probe;
        die "SimplekvTest: 127.0.0.1:$node->{port} is already in use (a "
            . "storaged left over from an earlier run?); it must be free "
            . "for node $name\n";
    }

    my $dir = "$DataRoot/$name";
    if (!$Stale{$name}++) {
        remove_tree($dir);
    }
    make_path($dir);

    my $pid = fork();
    die "SimplekvTest: fork failed: $!\n" if !defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$DataRoot/$name.log";
        open STDERR, '>&', \*STDOUT;
        # storaged's own limit sits above any simplekv_max_value_size the
        # tests use, so the router's limit is the one under test
        exec $Storaged, '--listen', "127.0.0.1:$node->{port}",
             '--data', $dir, '--max-value-size', '8m', (defined $Token ? ('--token-file', $TokenFile)
                                              : ())
            or POSIX::_exit(127);
    }
    $node->{pid} = $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (!node_alive($name)) {
            die "SimplekvTest: storaged $name exited during start-up; see "
                . "$DataRoot/$name.log\n";
        }
        my $res = $http->get(node_url($name) . '/v1/health',
                             { headers => auth_headers() });
        return 1 if $res->{status} == 200;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    die "SimplekvTest: storaged $name did not answer /v1/health with 200 "
        . "within 10s; see $DataRoot/$name.log\n";
}

sub wait_exit {
    my ($pid, $seconds) = @_;
    my $deadline = time + $seconds;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid || $r == -1;
        sleep 0.02;
    }
    return 0;
}

# crash-stop: SIGKILL, no chance to clean up
sub kill_node {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    delete $Nodes{$name}{pid};
}

# graceful: SIGTERM, SIGKILL after 10 s
sub stop_node {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return;
    kill 'TERM', $pid;
    if (!wait_exit($pid, 10)) {
        warn "SimplekvTest: storaged $name ignored SIGTERM for 10s\n";
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    delete $Nodes{$name}{pid};
}

# freeze (SIGSTOP) / thaw (SIGCONT): a node that accepts connections but
# never answers, to show that timeouts bound every request
# SIGSTOP, and wait until every thread of the node has stopped: the signal
# only starts the stop, and a thread busy on another CPU may still answer a
# request sent right after it (seen with a node just started: a frozen
# node acknowledged a write, about 1 time in 15).
sub pause_node {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return;
    kill 'STOP', $pid;
    $Nodes{$name}{paused} = 1;
    my $deadline = time + 5;
    while (time < $deadline) {
        my $running = 0;
        for my $stat (glob "/proc/$pid/task/*/stat") {
            open my $fh, '<', $stat or next;
            my $line = <$fh> // '';
            close $fh;
            my ($state) = $line =~ /\)\s+(\S)/;
            $running++ if defined $state && $state !~ /^[Tt]$/;
        }
        return if !$running;
        sleep 0.005;
    }
    die "SimplekvTest: storaged $name did not stop within 5s\n";
}

sub resume_node {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return;
    kill 'CONT', $pid;
    delete $Nodes{$name}{paused};
}

sub start_cluster {
    make_path($DataRoot);
    start_node($_) for @NodeNames;
}

sub ensure_all_up {
    for my $name (@NodeNames) {
        resume_node($name) if $Nodes{$name}{paused};
        start_node($name) if !node_alive($name);
    }
}

sub stop_cluster {
    for my $name (grep { $Nodes{$_}{pid} } @NodeNames) {
        resume_node($name) if $Nodes{$name}{paused};
        stop_node($name);
    }
}

# Ctrl-C or a kill of prove must still stop the nodes (END runs on exit).
# If prove dies, our TAP output goes nowhere: finish the file (every wait
# is bounded) and clean up, rather than die of SIGPIPE and leave nginx and
# storaged running.
$SIG{INT} = $SIG{TERM} = sub { exit 1 };
$SIG{PIPE} = 'IGNORE';

END {
    # also after a failed start-up: stop whatever nodes did start
    if ($$ == $OwnerPid) {
        my $status = $?;
        stop_cluster();
        $? = $status;
    }
}

# --- direct access, for checks the router cannot show ------------------

sub auth_headers {
    return defined $Token ? { Authorization => "Bearer $Token" } : {};
}

sub pct_key {
    my $key = shift;
    return uri_escape($key, '^A-Za-z0-9\-._~');
}

# GET /v1/kv/<key> on one node, bypassing the router. Returns
# { status, version (or undef), tombstone (0/1), content, content_type }.
sub node_get {
    my ($name, $key) = @_;
    my $res = $http->get(node_url($name) . '/v1/kv/' . pct_key($key),
                         { headers => auth_headers() });
    return {
        status       => $res->{status},
        version      => $res->{headers}{'x-simplekv-version'},
        tombstone    => ($res->{headers}{'x-simplekv-tombstone'} // '') eq '1'
                        ? 1 : 0,
        content      => $res->{content},
        content_type => $res->{headers}{'content-type'},
    };
}

# PUT a value with an explicit version on one node (to plant old data).
sub node_put {
    my ($name, $key, $value, $version, $type) = @_;
    my $res = $http->put(node_url($name) . '/v1/kv/' . pct_key($key), {
        content => $value,
        headers => { 'X-Simplekv-Version' => $version,
                     'Content-Type' => $type // 'application/octet-stream',
                     %{ auth_headers() } },
    });
    return $res->{status};
}

# --- the router (nginx started by the test module for this block) -------

# Concurrent clients doing random PUT/GET/DELETE on a few keys through the
# router, with a fault injected while they run. By count (the default):
# once the clients have completed $opt{before} requests (default 20),
# $opt{during}->($wait) runs in this process (e.g. to kill a node; it may
# call $wait->(n) to let n more requests complete, e.g. before restarting
# the node), then the clients go on until $opt{after} more requests
# (default 20) have completed, and stop. Each wait is bounded by
# $opt{deadline} seconds (default 30, times $Slowdown), so a router that
# stops answering fails the test instead of hanging it. By time (the old
# form, when $opt{seconds} is given): during runs after $opt{after}
# seconds, the clients stop after $opt{seconds}.
#
# Returns a hash: total => n, before => requests completed when during
# started, after => completed after it returned, stalled => a wait that
# hit its deadline (its message, or undef), errors => [ "METHOD key ->
# status detail", ... ] for every answer that is not a success (201 PUT,
# 200/404 GET, 204 DELETE).
sub run_load {
    my %opt = (clients => 4, keys => 5, deadline => 30 * $Slowdown, @_);
    my $timed = defined $opt{seconds};
    if (!$timed) {
        $opt{before} //= 20;
        $opt{after} //= 20;
    }

    # the parent asks the clients to stop by creating this file
    my $stop = "$DataRoot/load-stop.$$";
    unlink $stop;
    # each client writes one byte here per completed request
    pipe my $progress_r, my $progress_w or die "pipe: $!\n";

    my @kids;
    for my $c (1 .. $opt{clients}) {
        pipe my $r, my $w or die "pipe: $!\n";
        my $pid = fork();
        die "fork: $!\n" if !defined $pid;
        if ($pid == 0) {
            close $r;
            close $progress_r;
            srand($$ ^ time);
            my $ua = HTTP::Tiny->new(timeout => 5 * $Slowdown,
                                     keep_alive => 1);
            my $end = $timed ? time + $opt{seconds} : time + 3600;
            my %ok = (PUT => qr/^201$/, GET => qr/^(?:200|404)$/,
                      DELETE => qr/^204$/);
            my ($n, @err) = (0);
            while (time < $end && !-e $stop) {
                my $key = 'load' . int(rand $opt{keys});
                my $m = (qw(PUT PUT GET GET GET DELETE))[int rand 6];
                my $res = $ua->request($m, router_url() . "/$key",
                                       $m eq 'PUT' ? { content => "v$c-$n" }
                                                   : {});
                $n++;
                syswrite $progress_w, '.';
                push @err, "$m /$key -> $res->{status} "
                           . substr($res->{content} // '', 0, 200)
                    if $res->{status} !~ $ok{$m};
            }
            print $w "$n\n", map { s/\n/ /gr . "\n" } @err;
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    close $progress_w;

    my $done = 0;
    my $stalled;
    # read progress until $cond holds (true) or $until passes (false)
    my $pump = sub {
        my ($cond, $until) = @_;
        until ($cond->()) {
            return 0 if time >= $until;
            my $bits = '';
            vec($bits, fileno $progress_r, 1) = 1;
            next if !select($bits, undef, undef, 0.05);
            my $n = sysread $progress_r, my $buf, 65536;
            return 0 if !$n;            # every client has gone
            $done += $n;
        }
        return 1;
    };
    my $wait = sub {
        my $goal = $done + shift;
        return 1 if $pump->(sub { $done >= $goal }, time + $opt{deadline});
        $stalled //= "$done requests completed, waited for $goal within "
                     . "$opt{deadline}s";
        return 0;
    };

    my $t0 = time;
    if ($timed) {
        $pump->(sub { 0 }, $t0 + ($opt{after} // 1));
    } else {
        $wait->($opt{before});
    }
    my $before = $done;
    $opt{during}->($wait) if $opt{during};
    my $mark = $done;
    if ($timed) {
        $pump->(sub { 0 }, $t0 + $opt{seconds});
    } else {
        $wait->($opt{after});
    }
    open my $touch, '>', $stop or die "SimplekvTest: cannot create $stop: $!\n";
    close $touch;

    my %result = (total => 0, errors => [], before => $before,
                  stalled => $stalled);
    for my $kid (@kids) {
        my ($pid, $r) = @$kid;
        my @lines = <$r>;
        close $r;
        waitpid $pid, 0;
        chomp @lines;
        $result{total} += shift(@lines) // 0;
        push @{ $result{errors} }, @lines;
    }
    close $progress_r;
    unlink $stop;
    $result{after} = $result{total} - $mark;
    return %result;
}

sub router_url {
    no warnings 'once';
    my $port = $Test::Nginx::Util::ServerPortForClient
               || $ENV{TEST_NGINX_PORT} || 1984;
    return "http://127.0.0.1:$port";
}

# Returns the HTTP::Tiny response hash.
sub router_request {
    my ($method, $path, $body, $headers) = @_;
    my %opt = (headers => $headers || {});
    $opt{content} = $body if defined $body;
    return $http->request($method, router_url() . $path, \%opt);
}

# Requests are counted in nginx's log phase, which for the router comes
# after its last (background) replica subrequest has finished, i.e. a
# moment after the client has its answer. Polls $path on the router until
# its body matches $re (at most $seconds); returns whether it did.
sub wait_for_body {
    my ($path, $re, $seconds) = @_;
    my $deadline = time + ($seconds // 3);
    while (1) {
        my $res = router_request('GET', $path);
        return 1 if ($res->{content} // '') =~ $re;
        return 0 if time >= $deadline;
        sleep 0.05;
    }
}

# A regular expression (as a string, for --- response_headers_like)
# matching exactly the versions greater than $version: 32 lower-case hex
# digits, as the router and storaged write them. Versions compare as
# 128-bit numbers, which for a fixed width is the order of the text, so
# the pattern is: the same first i digits, a greater digit at i, anything
# after.
sub version_above_re {
    my ($version) = @_;
    (my $v = lc $version) =~ s/"//g;
    die "SimplekvTest: \"$version\" is not a version\n"
        if $v !~ /^[0-9a-f]{32}$/;
    my $digits = '0123456789abcdef';
    my @alternatives;
    for my $i (0 .. 31) {
        my $greater = substr $digits, index($digits, substr($v, $i, 1)) + 1;
        next if $greater eq '';
        my $rest = 31 - $i;
        push @alternatives, substr($v, 0, $i) . "[$greater]"
                            . ($rest ? "[0-9a-f]{$rest}" : '');
    }
    # nothing is above ffff...f
    return @alternatives ? '(?:' . join('|', @alternatives) . ')' : '(?!)';
}

# PUT through the router; dies unless 201; returns the ETag.
sub router_put {
    my ($path, $body, $type) = @_;
    my $res = router_request('PUT', $path, $body,
                             { 'Content-Type' => $type // 'text/plain' });
    die "SimplekvTest: PUT $path through the router answered "
        . "$res->{status}: $res->{content}\n" if $res->{status} != 201;
    return $res->{headers}{etag};
}

1;
