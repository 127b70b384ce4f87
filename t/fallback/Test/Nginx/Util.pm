# Test::Nginx::Util - the nginx-managing half of simplekv's fallback for
# openresty's Test::Nginx (which is not packaged in Debian).
#
# It implements, with the same names and the same observable behaviour, the
# part of the real Test::Nginx::Util that simplekv's t/*.t files use: the
# global knobs (repeat_each, workers, log_level, ...), the server root
# t/servroot with the generated conf/nginx.conf, starting and stopping nginx
# for every block, `--- must_die`, `--- init`, and reading the error log.
# The request/response half lives in Test/Nginx/Socket.pm.
#
# This directory is put on @INC *after* everything else (t/lib/SimplekvTest.pm
# pushes it), so an installed Test::Nginx, or one named by PERL5LIB, always
# wins and these files are only used when there is none.

package Test::Nginx::Util;

use strict;
use warnings;

use base 'Exporter';

use Cwd ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use List::Util qw(shuffle);
use POSIX qw(SIGQUIT SIGKILL WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More ();

our $VERSION = '0.29-simplekv-fallback';

our @EXPORT = qw(
    env_to_nginx is_str no_long_string $NoLongString
    $ServerAddr server_addr $ServerName server_name
    parse_time verbose sleep_time bail_out add_cleanup_handler
    error_log_data setup_server_root write_config_file get_nginx_version
    trim show_all_chars parse_headers run_tests get_pid_from_pidfile
    $ServerPortForClient $ServerPort $NginxVersion $PidFile $ServRoot
    $ConfFile $RunTestHelper $CheckErrorLog $RepeatEach
    add_block_preprocessor timeout worker_connections workers master_on
    master_off config_preamble repeat_each master_process_enabled
    log_level no_shuffle no_root_location html_dir server_root
    server_port server_port_for_client check_accum_error_log
);

# Knobs, with the real module's names, defaults and environment variables.

our $Verbose            = $ENV{TEST_NGINX_VERBOSE};
our $Timeout            = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $RepeatEach         = 1;
our $Workers            = 1;
our $WorkerConnections  = 64;
our $LogLevel           = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled      = 'on';
our $ServerAddr         = '127.0.0.1';
our $ServerName         = 'localhost';
our $ServerPort         = $ENV{TEST_NGINX_SERVER_PORT}
                          || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoShuffle          = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoRootLocation     = 0;
our $NoLongString;
our $CheckAccumErrLog   = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $TestNginxSleep     = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ForceRestartOnTest = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                          ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $LoadModules        = $ENV{TEST_NGINX_LOAD_MODULES};
our $WorkerUser         = $ENV{TEST_NGINX_WORKER_USER};
our $ConfigPreamble     = '';
our $UseValgrind        = $ENV{TEST_NGINX_USE_VALGRIND};
our $NginxVersion;

our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;

# Filled in by Test::Nginx::Socket, as in the real module.
our $RunTestHelper;
our $CheckErrorLog;

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || find_nginx();

our $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
$ServRoot =~ s{/+$}{};
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

# As in the real module, nginx runs in the foreground under valgrind.
$DaemonEnabled = 'off' if $UseValgrind;

our $ErrLogFilePos = 0;
our $ValgrindChild;     # nginx under valgrind: our own child process
our $ValgrindBlock;     # the block it served, for the report
our $PrevConfigText;
our $Started;           # this process has started nginx at least once
our $OwnerPid = $$;     # END must not stop nginx from a forked child

sub find_nginx {
    for my $dir (split /:/, $ENV{PATH} || '') {
        return "$dir/nginx" if $dir ne '' && -x "$dir/nginx";
    }
    return '/usr/sbin/nginx';
}

# Setters and getters, each as in the real Test::Nginx::Util.

sub env_to_nginx (@) {
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub workers (@) { $Workers = shift if @_; return $Workers }
sub worker_connections (@) {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}
sub log_level (@) { $LogLevel = shift if @_; return $LogLevel }
sub timeout (@) { $Timeout = shift if @_; return $Timeout }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = shift() ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}
sub no_shuffle () { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub no_long_string () { $NoLongString = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub config_preamble ($) { $ConfigPreamble = shift }
sub server_addr (@) { $ServerAddr = shift if @_; return $ServerAddr }
sub server_name (@) { $ServerName = shift if @_; return $ServerName }
sub server_port (@) { $ServerPort = shift if @_; return $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}
sub server_root () { return $ServRoot }
sub html_dir () { return $HtmlDir }
sub verbose { return $Verbose }
sub sleep_time { return $TestNginxSleep }

sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return Test::More::is($got, $expected, $desc);
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# "500ms" -> 0.5, "2s" -> 2, "1.5" -> 1.5
sub parse_time ($) {
    my $tm = shift;
    return $tm if !defined $tm;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/gs;
    $s =~ s/\r/\\r/gs;
    $s =~ s/\t/\\t/gs;
    return $s;
}

# "Name: value" lines -> { Name => value }; "!Name" -> { Name => undef }
# (the header must be absent).
sub parse_headers ($) {
    my $s = shift;
    my %headers;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            $headers{$line} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            $headers{$key} = $val;
        }
    }
    return \%headers;
}

# Replace $TEST_NGINX_FOO in a config section with the environment's value;
# an unset variable is a mistake in the test, reported as such.
sub expand_env_in_text ($$) {
    my ($text, $name) = @_;
    return undef if !defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        defined $ENV{$1} ? $ENV{$1}
                         : bail_out("$name - No environment $1 defined.\n")
    }eg;
    return $text;
}

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of nginx \"$NginxBinary\": "
                 . ($out // ''));
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s) {
        return sprintf "%d.%03d%03d", $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub get_pid_from_pidfile ($) {
    my ($name) = @_;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef if !defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# A daemonized nginx is not our child: once it exits it stays a zombie
# until init reaps it, which some container inits do only every second or
# so. A zombie holds no port and no file, so it counts as gone.
sub is_running ($) {
    my $pid = shift;
    return 0 if !$pid || !kill(0, $pid);
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        close $in;
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;
    }
    return 1;
}

# The server root is rebuilt for every (re)start: a fresh conf/, logs/ and
# html/, so that one block's error log never leaks into the next.
sub setup_server_root () {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $LogDir, $HtmlDir, glob("$ServRoot/*_temp"));
    }
    make_path($ServRoot, $LogDir, $HtmlDir, $ConfDir);
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

# The generated nginx.conf follows the real Test::Nginx's layout (the same
# directives in the same places), so a block that works here works there.
# Two additions: the server listens on loopback only, and the temp paths
# point inside the server root, because Debian's nginx has /var/lib/nginx
# compiled in.
sub config_text ($$;$) {
    my ($block, $config, $daemon) = @_;
    my $name = $block->name;
    $daemon //= $DaemonEnabled;

    my $http_config = expand_env_in_text($block->http_config, $name) // '';
    my $main_config = expand_env_in_text($block->main_config, $name) // '';
    my $post_main_config =
        expand_env_in_text($block->post_main_config, $name) // '';
    $config //= '';

    if ($LoadModules) {
        $main_config .= join ' ', map { "load_module $_;" }
                                  grep { $_ } split /\s+/, $LoadModules;
    }

    my $log_level = $block->log_level || $LogLevel;
    my $server_name = $block->server_name // $ServerName;
    (my $quoted_name = $server_name) =~ s/(['\\])/\\$1/g;

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" }
                       @EnvToNginx;

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $user = "user root;\n";
    }

    return <<_EOC_;
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $log_level;
pid       $PidFile;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
$env
$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

    client_body_temp_path $ServRoot/client_body_temp;
    proxy_temp_path       $ServRoot/proxy_temp;
    fastcgi_temp_path     $ServRoot/fastcgi_temp;
    uwsgi_temp_path       $ServRoot/uwsgi_temp;
    scgi_temp_path        $ServRoot/scgi_temp;

$http_config

    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$quoted_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
env ASAN_OPTIONS;
$user
_EOC_
}

sub write_config_file ($$) {
    my ($block, $text) = @_;
    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $text;
    close $out;
}

# Runs the nginx command line once; returns the wait status (-1: not run).
sub run_nginx_command () {
    my $cmd = "$NginxBinary -p $ServRoot/ -c $ConfFile > /dev/null";
    warn "starting nginx: $cmd\n" if $Verbose;
    system($cmd);
    return $?;
}

# Stops the nginx started for the previous block: QUIT (graceful), then
# KILL once the timeout has passed, so that a wedged nginx never hangs the
# suite.
sub stop_nginx () {
    return stop_valgrind_nginx() if defined $ValgrindChild;

    my $pid = get_pid_from_pidfile('stop');
    return if !is_running($pid);

    kill SIGQUIT, $pid;
    my $deadline = time + $Timeout;
    while (is_running($pid) && time < $deadline) {
        waitpid($pid, WNOHANG);
        sleep 0.02;
    }
    if (is_running($pid)) {
        warn "WARNING: nginx $pid did not exit after SIGQUIT within "
             . "${Timeout}s; killing it\n";
        kill SIGKILL, $pid;
        $deadline = time + $Timeout;
        while (is_running($pid) && time < $deadline) {
            waitpid($pid, WNOHANG);
            sleep 0.02;
        }
    }
    unlink $PidFile;
}

# --- TEST_NGINX_USE_VALGRIND=1 -----------------------------------------
# nginx runs in the foreground as our child under memcheck (tracing through
# the TEST_NGINX_BINARY wrapper script to nginx itself), with the real
# module's options; ./valgrind.suppress is used when present, as there, and
# so is t/valgrind.suppress.
# Unlike the real module, which only prints valgrind's findings, a finding
# is reported as a failed test "valgrind reports no errors", so that a leak
# or an invalid access fails the suite.

sub valgrind_logs () {
    return glob("$ServRoot/valgrind.*.log");
}

sub start_valgrind_nginx ($) {
    my ($name) = @_;
    unlink valgrind_logs();

    my @cmd = ('valgrind', '-q', '--tool=memcheck', '--leak-check=full',
               '--show-possibly-lost=no', '--num-callers=50',
               '--trace-children=yes', '--child-silent-after-fork=yes',
               "--log-file=$ServRoot/valgrind.%p.log");
    push @cmd, map { "--suppressions=$_" }
               grep { -f } 'valgrind.suppress', 't/valgrind.suppress';
    push @cmd, $NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile;
    warn "starting nginx: @cmd\n" if $Verbose;

    my $pid = fork();
    return -1 if !defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    $ValgrindChild = $pid;
    $ValgrindBlock = $name;

    # memcheck takes seconds to start nginx: wait for the pid file, or
    # for the child to give up (a configuration error)
    my $deadline = time + 60;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $status = $?;
            undef $ValgrindChild;
            return $status || 1 << 8;
        }
        return 0 if -s $PidFile;
        sleep 0.05;
    }
    return 1 << 8;
}

sub stop_valgrind_nginx () {
    my $pid = $ValgrindChild;
    undef $ValgrindChild;

    kill SIGQUIT, $pid;
    my $deadline = time + 60;   # the leak check runs at exit
    my $gone;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) != 0) {
            $gone = 1;
            last;
        }
        sleep 0.05;
    }
    if (!$gone) {
        warn "WARNING: nginx under valgrind ($pid) did not exit within 60s "
             . "of SIGQUIT; killing it\n";
        kill SIGKILL, $pid;
        waitpid $pid, 0;
    }
    unlink $PidFile;

    my $report = '';
    for my $log (valgrind_logs()) {
        open my $in, '<', $log or next;
        $report .= do { local $/; <$in> } // '';
        close $in;
    }
    unlink valgrind_logs();
    # a clean report adds no test, so that a file's test count (and its
    # plan) is the same with or without valgrind, and under the real
    # runner; a finding is an extra, failing test, which fails the file
    # whatever its plan
    if ($report eq '') {
        Test::More::note("$ValgrindBlock - valgrind reports no errors and no "
                         . "definite leaks");
    } else {
        Test::More::is($report, '', "$ValgrindBlock - valgrind reports no "
                                    . "errors and no definite leaks");
    }
}

sub cleanup () {
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
    stop_nginx() if $Started && $$ == $OwnerPid;
}

END {
    cleanup() if $$ == $OwnerPid;
}

# New error-log lines since the last call (all of them with
# check_accum_error_log), as the real error_log_data.
sub error_log_data () {
    # lines logged in the log phase come after the response is sent
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return undef;
    if (!$CheckAccumErrLog && $ErrLogFilePos > 0) {
        seek $in, $ErrLogFilePos, 0;
    }
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) if !$CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub error_log_tail () {
    open my $in, '<', $ErrLogFile or return "(no $ErrLogFile)\n";
    my @lines = <$in>;
    close $in;
    @lines = @lines[-10 .. -1] if @lines > 10;
    return join '', @lines;
}

sub run_tests () {
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks if !$NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', $0 . ' ' . $block->name);
        run_test($block);
    }

    cleanup();
}

sub run_must_die ($$) {
    my ($block, $must_die) = @_;
    my $name = $block->name;

    for my $i (0 .. $RepeatEach - 1) {
        stop_nginx();
        setup_server_root();
        # daemon on even under valgrind: a config that does not die must
        # not keep system() waiting
        write_config_file($block,
                          config_text($block, $block->{_skv_config}, 'on'));
        $ErrLogFilePos = 0;
        $Started = 1;

        my $status = run_nginx_command();
        my $exit_code = $status >> 8;

        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command "
                             . "line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif ($must_die =~ /^\d+$/) {
            Test::More::is($exit_code, $must_die,
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        $CheckErrorLog->($block, undef, 0, $i, 0);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            # give it a moment to write its pid file, then stop it
            my $deadline = time + 5;
            sleep 0.01 until -s $PidFile || time >= $deadline;
            stop_nginx();
        }
    }
}

# Starts nginx for a block unless the running one has the same
# configuration and TEST_NGINX_FORCE_RESTART_ON_TEST=0 (the real module's
# reuse rule). Returns false, having reported a failure, if nginx does not
# come up.
sub start_nginx_for ($$) {
    my ($block, $text) = @_;
    my $name = $block->name;

    my $pid = get_pid_from_pidfile($name);
    if (!$ForceRestartOnTest && is_running($pid)
        && defined $PrevConfigText && $PrevConfigText eq $text)
    {
        return 1;
    }

    stop_nginx();
    setup_server_root();
    write_config_file($block, $text);
    $PrevConfigText = $text;
    $Started = 1;

    # A port still held by the previous nginx (or by a test of another
    # file) is released within moments: retry that, a bounded number of
    # times; any other start-up error is final.
    my $deadline = time + 5;
    my $status;
    while (1) {
        $status = $UseValgrind ? start_valgrind_nginx($name)
                               : run_nginx_command();
        last if $status == 0 || time >= $deadline
                || error_log_tail() !~ /Address already in use/;
        sleep 0.2;
    }

    if ($status != 0) {
        Test::More::fail("$name - cannot start nginx with \"$NginxBinary "
                         . "-p $ServRoot/ -c $ConfFile\" (status $status); "
                         . "last lines of $ErrLogFile:\n" . error_log_tail());
        $PrevConfigText = undef;
        return 0;
    }

    # nginx's parent process exits as soon as it has forked the daemon,
    # which writes the pid file a moment later: wait for it, so that the
    # next stop_nginx() cannot miss a running nginx.
    $deadline = time + 5;
    until (-s $PidFile) {
        if (time >= $deadline) {
            Test::More::fail("$name - nginx started but wrote no pid file "
                             . "$PidFile within 5s");
            return 0;
        }
        sleep 0.01;
    }

    sleep $TestNginxSleep;
    return 1;
}

sub run_test ($) {
    my $block = shift;
    my $name = $block->name;

    return if defined $block->SKIP;

    my $config = expand_env_in_text($block->config, $name);
    $block->{_skv_config} = $config;

    if (defined $block->must_die) {
        run_must_die($block, $block->must_die);
        return;
    }

    if (!defined $config && !defined $PrevConfigText) {
        bail_out("$name - No '--- config' section specified and could not "
                 . "get previous one.");
    }

    my $text = config_text($block, $config);
    return if !start_nginx_for($block, $text);

    if ($block->init) {
        # Evaluated with $block in scope, as in the real module, so an init
        # may adjust the block it belongs to.
        eval $block->init;
        if ($@) {
            Test::More::fail("$name - init failed: $@");
            return;
        }
    }

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        warn "Run the test block $name ...\n" if $Verbose;
        $RunTestHelper->($block, 0, $i);
    }
}

1;
