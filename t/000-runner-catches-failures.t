# The runner must be able to fail: runs a Test::Nginx file whose blocks have
# wrong expectations (stock nginx only) in a child perl, on its own port and
# server root, and checks that each wrong expectation is reported "not ok",
# that a correct block still passes, and that a server that never answers
# is cut off by the block's --- timeout.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use IPC::Run ();
use Test::More tests => 14;
use Time::HiRes qw(time);

use lib 't/lib';
require SimplekvTest;

# one run of the suite at a time (the child below does not lock: we hold it)
SimplekvTest::lock_suite();

# beside the suite's server root, on the two ports above the suite's, so
# that a copy of the suite with moved ports and server root moves this too
my $dir = ($SimplekvTest::ServRoot
           ? File::Spec->rel2abs($SimplekvTest::ServRoot) : 't/servroot')
          . '-meta';
my $child_port = $SimplekvTest::Port + 1;
my $silent_port = $SimplekvTest::Port + 2;
remove_tree($dir);
make_path($dir);

# a peer that accepts connections and never answers
my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $silent_port,
                                   Listen => 5, ReuseAddr => 1)
    or die "cannot listen on 127.0.0.1:$silent_port: $!\n";

# not *.t: "prove -r t/" must not pick it up
my $file = "$dir/wrong-expectations.pl";
open my $out, '>', $file or die "$file: $!\n";
my $child = <<'_EOT_';
use lib 't/lib';
use SimplekvTest 'stock', 'nolock';
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: right
--- config
    location = /a { add_header X-A one; return 200 "body a"; }
--- request
GET /a
--- response_headers
X-A: one
--- response_body chomp
body a

=== TEST 2: wrong status
--- config
    location = /a { return 200 "body a"; }
--- request
GET /a
--- error_code: 404

=== TEST 3: wrong body
--- config
    location = /a { return 200 "body a"; }
--- request
GET /a
--- response_body chomp
body b

=== TEST 4: wrong header value
--- config
    location = /a { add_header X-A one; return 200; }
--- request
GET /a
--- response_headers
X-A: two

=== TEST 5: header present that must be absent
--- config
    location = /a { add_header X-A one; return 200; }
--- request
GET /a
--- response_headers
!X-A

=== TEST 6: body not like
--- config
    location = /a { return 200 "body a"; }
--- request
GET /a
--- response_body_like: ^nothing like it$

=== TEST 7: expected log line missing
--- config
    location = /a { return 200; }
--- request
GET /a
--- error_log
this line is never logged

=== TEST 8: forbidden log line present
--- config
--- request
GET /no-such-file
--- error_code: 404
--- no_error_log
No such file or directory

=== TEST 9: must_die on a valid config
--- config
    location = /a { return 200; }
--- must_die

=== TEST 10: a silent upstream is cut off by the timeout
--- config
    location = /a { proxy_pass http://127.0.0.1:SILENT_PORT; proxy_read_timeout 30s; }
--- request
GET /a
--- timeout: 1
_EOT_
$child =~ s/SILENT_PORT/$silent_port/g;
print $out $child;
close $out;

local $ENV{TEST_NGINX_PORT} = $child_port;
local $ENV{TEST_NGINX_SERVROOT} = File::Spec->rel2abs("$dir/servroot");

my ($stdout, $stderr) = ('', '');
my $t0 = time;
my $ran = eval {
    IPC::Run::run([$^X, $file], \undef, \$stdout, \$stderr,
                  IPC::Run::timeout(60));
    1;
};
my $elapsed = time - $t0;
ok($ran || $@ !~ /timeout/, 'the child test finished within 60s') or diag $@;
cmp_ok($elapsed, '<', 30, "and quickly (${elapsed}s)");

my @expect_fail = (
    [qr/TEST 2: wrong status - status code ok/, 'wrong status'],
    [qr/TEST 3: wrong body - response_body/, 'wrong body'],
    [qr/TEST 4: wrong header value - header X-A ok/, 'wrong header value'],
    [qr/TEST 5: header present that must be absent - header X-A not present/,
     'header that must be absent'],
    [qr/TEST 6: body not like - response_body_like/, 'body not like'],
    [qr/TEST 7: .* should match a line in error.log/, 'missing log line'],
    [qr/TEST 8: .* should not match any line in error.log/,
     'forbidden log line'],
    [qr/TEST 9: must_die on a valid config - die as expected/,
     'must_die on a valid config'],
    # both runners word it so, with the name after it
    [qr/ERROR: client socket timed out - \S+ TEST 10: a silent upstream /,
     'silent server'],
);
for my $case (@expect_fail) {
    my ($re, $what) = @$case;
    like($stdout, qr/^not ok \d+ - .*$re/m, "reported as failure: $what");
}
like($stdout, qr/^ok \d+ - .*TEST 1: right - status code ok/m,
     'a correct block passes');
like($stdout, qr/^ok \d+ - .*TEST 1: right - header X-A ok/m,
     'its header check passes');
unlike($stdout, qr/^not ok \d+ - .*TEST 1: right/m,
       'nothing of the correct block fails');

close $silent;
