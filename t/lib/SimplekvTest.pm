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

# With "use SimplekvTest 'token';" the nodes require a bearer token (the
# first line of $TokenFile) and the default http_config names that file in
# simplekv_token_file.
our $TokenFile = "$DataRoot/token";
our $Token;

our $OwnerPid = $$;
our %Stale;             # a node's data dir was wiped already this run

my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 0);

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
sub pause_node {
    my $name = shift;
    my $pid = $Nodes{$name}{pid} or return;
    kill 'STOP', $pid;
    $Nodes{$name}{paused} = 1;
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
# router for $opt{seconds}; $opt{during}->() runs in this process after
# $opt{after} seconds (e.g. to kill a node). Returns a hash: total => n,
# errors => [ "METHOD key -> status detail", ... ] for every answer that is
# not a success (201 PUT, 200/404 GET, 204 DELETE).
sub run_load {
    my %opt = (clients => 4, seconds => 3, after => 1, keys => 5, @_);
    my @kids;
    for my $c (1 .. $opt{clients}) {
        pipe my $r, my $w or die "pipe: $!\n";
        my $pid = fork();
        die "fork: $!\n" if !defined $pid;
        if ($pid == 0) {
            close $r;
            srand($$ ^ time);
            my $ua = HTTP::Tiny->new(timeout => 5, keep_alive => 1);
            my $end = time + $opt{seconds};
            my %ok = (PUT => qr/^201$/, GET => qr/^(?:200|404)$/,
                      DELETE => qr/^204$/);
            my ($n, @err) = (0);
            while (time < $end) {
                my $key = 'load' . int(rand $opt{keys});
                my $m = (qw(PUT PUT GET GET GET DELETE))[int rand 6];
                my $res = $ua->request($m, router_url() . "/$key",
                                       $m eq 'PUT' ? { content => "v$c-$n" }
                                                   : {});
                $n++;
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

    sleep $opt{after};
    $opt{during}->() if $opt{during};

    my %result = (total => 0, errors => []);
    for my $kid (@kids) {
        my ($pid, $r) = @$kid;
        my @lines = <$r>;
        close $r;
        waitpid $pid, 0;
        chomp @lines;
        $result{total} += shift(@lines) // 0;
        push @{ $result{errors} }, @lines;
    }
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
