# Test::Nginx::Socket - the request/response half of simplekv's fallback for
# openresty's Test::Nginx (not packaged in Debian; see Util.pm beside it).
#
# Blocks are parsed by Test::Base, the library the real Test::Nginx is built
# on, so sections, filters (eval, chomp, ...) and block selection (ONLY,
# SKIP) behave identically. For each block this builds the raw request
# exactly as the real module does (request line defaults, Host and
# Connection headers, Content-Length over the trimmed body unless the test
# sends its own chunked body), sends it over loopback, reads the response
# with libwww-perl's Net::HTTP, and checks the sections we use: error_code,
# response_headers (with !Name for absent), response_headers_like,
# response_body, response_body_like/unlike, error_log, no_error_log, and
# arrays of requests with arrays of expectations.

package Test::Nginx::Socket;

use strict;
use warnings;

# -base (not -Base): inherit Test::Base without Spiffy's source filter.
use Test::Base -base;

use HTTP::Response ();
use Net::HTTP ();
use Time::HiRes qw(sleep time);

use Test::Nginx::Util;

our $VERSION = '0.29-simplekv-fallback';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout check_accum_error_log add_block_preprocessor bail_out
    add_cleanup_handler add_response_body_check
);

our @ResponseBodyChecks;

$RunTestHelper = \&run_test_helper;
$CheckErrorLog = \&check_error_log;

sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

# "Name: value" lines of --- more_headers -> (CRLF header text, chunked?)
sub parse_more_headers ($) {
    my ($in) = @_;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1
            if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# One --- request string -> { method, url, raw }: "METHOD [URL [VERSION]]"
# then the body. As in the real module the body loses surrounding
# whitespace and gets a Content-Length, unless the test sends its own
# Content-Length or a chunked body (which it then writes out itself).
sub build_request ($$$) {
    my ($name, $request, $more_headers) = @_;

    $request //= '';
    1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//gs;

    my ($first, $content) = split /\n/, $request, 2;
    if (!defined $first || $first !~ /\S/) {
        bail_out("$name - Request line should be non-empty");
    }
    my ($meth, $url, $ver) = split ' ', $first;
    $url //= '/';
    $ver //= 'HTTP/1.1';
    $content //= '';

    my ($hdr, $is_chunked) = parse_more_headers($more_headers);

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $hdr !~ /(?:^|\n)Content-Length:/)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = 'Content-Length: ' . length($content) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $hdr !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: close\r\n" if $hdr !~ /(?:^|\n)Connection/msi;
    $headers .= "$hdr$len_header\r\n";

    return {
        method => $meth,
        url    => $url,
        raw    => "$meth $url $ver\r\n$headers$content",
    };
}

sub get_req_from_block ($) {
    my ($block) = @_;
    my $name = $block->name;

    if (defined $block->raw_request) {
        my $raw = $block->raw_request;
        my ($meth, $url) = $raw =~ /^\s*(\S+)\s+(\S+)/;
        return [ { method => $meth // 'GET', url => $url // '/',
                   raw => $raw } ];
    }

    my $request;
    if (defined $block->request_eval) {
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
    }
    if (!defined $request) {
        bail_out("$name - request empty");
    }

    my $more_headers = $block->more_headers // '';
    my @requests = ref $request eq 'ARRAY' ? @$request : ($request);
    my @list;
    for my $i (0 .. $#requests) {
        my $hdr = $more_headers;
        if (ref $more_headers eq 'ARRAY') {
            $hdr = $more_headers->[$i];
            bail_out("$name - --- more_headers lacks data for request $i")
                if !defined $hdr;
        }
        if (ref $requests[$i]) {
            bail_out("$name - requests split into packets are not "
                     . "supported by the simplekv fallback runner");
        }
        push @list, build_request($name, $requests[$i], $hdr);
    }
    return \@list;
}

# Sends one raw request and reads the response. Returns (HTTP::Response,
# undef) or (undef, error message). Bounded by $timeout seconds overall.
sub send_request ($$$) {
    my ($req, $timeout, $block) = @_;

    my $sock;
    my $connect_deadline = time + 5;
    while (1) {
        $sock = Net::HTTP->new(PeerAddr => $ServerAddr,
                               PeerPort => $ServerPortForClient,
                               Timeout  => $timeout);
        last if $sock || time >= $connect_deadline;
        sleep 0.05;
    }
    if (!$sock) {
        return (undef, "Can't connect to $ServerAddr:$ServerPortForClient: "
                       . ($@ || $!));
    }

    # Net::HTTP learns the request method (so that a HEAD response is
    # read without a body) from format_request; the bytes on the wire are
    # our own raw request.
    $sock->format_request($req->{method}, $req->{url})
        if $req->{method} !~ /\s/ && $req->{url} !~ /\s/;

    my ($res, $err);
    local $SIG{PIPE} = 'IGNORE';
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval {
        Time::HiRes::alarm($timeout);

        my $raw = $req->{raw};
        my $off = 0;
        while ($off < length $raw) {
            my $n = syswrite($sock, $raw, length($raw) - $off, $off);
            # the server may answer (413, 400) and stop reading early:
            # what it sent is still to be read
            last if !defined $n;
            $off += $n;
        }

        my ($code, $msg, @headers) =
            $sock->read_response_headers(laxed => 1);
        my $body = '';
        if ($code !~ /^(?:1\d\d|204|304)$/) {
            while (1) {
                my $buf;
                my $n = $sock->read_entity_body($buf, 65536);
                die "read failed: $!\n" if !defined $n;
                last if $n == 0;
                $body .= $buf;
            }
        }
        Time::HiRes::alarm(0);
        $res = HTTP::Response->new($code, $msg, \@headers, $body);
    };
    Time::HiRes::alarm(0);
    if ($@) {
        $err = $@ eq "timeout\n" ? "timeout" : "HTTP exchange failed: $@";
        chomp $err;
    }
    close $sock;
    return ($res, $err);
}

sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$req_idx] if ref $value && ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return $value->[0] if ref $value && ref $value eq 'ARRAY';
    return $value;
}

sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    my $timeout = parse_time($block->timeout) // timeout();
    my $need_array = @$reqs > 1;

    my $res;
    for my $req_idx (0 .. $#$reqs) {
        my $err;
        ($res, $err) = send_request($reqs->[$req_idx], $timeout, $block);

        if (defined $err) {
            my $where = "req $req_idx, repeated req $repeated_req_idx";
            if (defined $block->abort) {
                # an expected cut-off
            } elsif ($err eq 'timeout') {
                # the real runner's wording, which tests may match
                Test::More::fail("ERROR: client socket timed out - $name "
                                 . "(after ${timeout}s, $where)");
            } else {
                Test::More::fail("$name - $err ($where)");
            }
        } elsif (!defined $block->ignore_response) {
            check_error_code($block, $res, $req_idx, $need_array);
            check_response_headers($block, $res, $req_idx, $need_array);
            check_response_body($block, $res, $req_idx, $repeated_req_idx,
                                $need_array);
        }

        if ($req_idx < $#$reqs) {
            sleep $block->wait if $block->wait;
            check_error_log($block, $res, $dry_run, $repeated_req_idx,
                            $need_array);
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
}

sub check_error_code ($$$$) {
    my ($block, $res, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';

    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like,
                                    $req_idx, $need_array);
        Test::More::like($code, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        my $val = get_indexed_value($name, $block->error_code, $req_idx,
                                    $need_array);
        Test::More::is($code, $val, "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

sub check_response_headers ($$$$) {
    my ($block, $res, $req_idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $headers = parse_headers(get_indexed_value(
            $name, $block->response_headers, $req_idx, $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key};
            if (!defined $val) {
                Test::More::ok(!defined $res->header($key),
                               "$name - header $key not present in the raw "
                               . "headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            Test::More::is($res->header($key) // '', $val,
                           "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $headers = parse_headers(get_indexed_value(
            $name, $block->response_headers_like, $req_idx, $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key} // '';
            Test::More::like($res->header($key) // '', qr/^$val$/,
                             "$name - header $key like ok");
        }
    }
}

sub check_response_body ($$$$$) {
    my ($block, $res, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if ($block->response_body_eval) {
            $expected = eval get_indexed_value($name,
                $block->response_body_eval, $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body,
                                          $req_idx, $need_array);
        }
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $desc = "$name - response_body - response is expected "
                   . "(repeated req $repeated_req_idx, req $req_idx)";
        if (ref $expected) {
            Test::More::like($content, $expected, $desc);
        } else {
            Test::More::is($content, $expected, $desc);
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my ($patterns, $type, $cmp) = defined $block->response_body_like
            ? ($block->response_body_like, 'like', \&Test::More::like)
            : ($block->response_body_unlike, 'unlike', \&Test::More::unlike);
        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content) // '';
        $summary = substr($summary, 0, 200) . '...' if length $summary > 200;
        $cmp->($content, qr/$pat/s,
               "$name - response_body_$type - response is expected "
               . "($summary)");
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_req_idx, 0);
    }
}

sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    return $str;
}

# A section value -> list of patterns: plain lines match as substrings,
# Regexp values (from "--- error_log eval") as regexes.
sub patterns_of ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [ split /\n+/, $pats ];
    }
    return [ $pats ] if ref $pats eq 'Regexp';
    return [ @$pats ];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : index($line, $pat) >= 0;
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;

    if (defined $block->error_log) {
        my $pats = patterns_of($block->error_log);
        $lines ||= error_log_data() || [];
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next if !defined $pat || !line_matches($line, $pat);
                Test::More::pass("$name - pattern \"$pat\" matches a line in "
                                 . "error.log (req $repeated_req_idx)");
                undef $pat;
            }
        }
        for my $pat (grep { defined } @$pats) {
            Test::More::fail("$name - pattern \"$pat\" should match a line "
                             . "in error.log (req $repeated_req_idx)");
        }
    }

    if (defined $block->no_error_log) {
        my $pats = patterns_of($block->no_error_log);
        my %found;
        $lines ||= error_log_data() || [];
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next if !defined $pat || $found{$pat}
                        || !line_matches($line, $pat);
                $found{$pat} = 1;
                Test::More::fail("$name - pattern \"" . fmt_str($pat)
                                 . "\" should not match any line in "
                                 . "error.log but matches line \""
                                 . fmt_str($line) . "\" (req "
                                 . "$repeated_req_idx)");
            }
        }
        for my $pat (grep { defined && !$found{$_} } @$pats) {
            Test::More::pass("$name - pattern \"" . fmt_str($pat) . "\" "
                             . "does not match a line in error.log (req "
                             . "$repeated_req_idx)");
        }
    }

    $lines ||= error_log_data() || [];
    for my $line (@$lines) {
        if ($line =~ /\[(?:alert|crit)\]/) {
            warn "WARNING: $name - " . fmt_str($line) . "\n";
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp $line;
            Test::More::fail("$name - $line");
        }
    }
}

1;
