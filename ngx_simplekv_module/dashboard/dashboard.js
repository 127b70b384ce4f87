/*
 * The simplekv router's dashboard: polls the status JSON every second
 * (docs/router.md, "Status"), keeps two minutes of samples in memory and
 * draws them (the time axis grows with the samples, from 30 s to 2 min).  No libraries: the charts are drawn on <canvas>.
 *
 * Node state: "suspect" while the router's circuit breaker holds the
 * node suspect (it timed out; reads leave it out), else "up" or "down"
 * from the node's last reply ("down": refused, failed or timed out).
 */
(function () {
    'use strict';

    var POLL_MS = 1000;
    var KEEP = 121;                   /* samples: two minutes */
    var RECENT = 10;                  /* seconds for the node latency */
    var MIN_SPAN = 30;                /* seconds: the shortest time axis */
    var COLORS = ['#2f6fde', '#1f9d55', '#d68910', '#8e44ad', '#16a0a0',
                  '#c0392b', '#7f8c8d', '#2c3e50'];
    var METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'other'];

    var meta = document.querySelector('meta[name="simplekv-status"]');
    var statusUri = meta && meta.content && meta.content.charAt(0) === '/'
                    ? meta.content : '/_simplekv/status';

    var samples = [];
    var last = null;
    var polls = 0;

    function $(id) { return document.getElementById(id); }

    function text(el, s) {
        if (el.textContent !== s) {
            el.textContent = s;
        }
    }

    function el(tag, cls, s) {
        var e = document.createElement(tag);
        if (cls) { e.className = cls; }
        if (s !== undefined) { e.textContent = s; }
        return e;
    }

    function fmt(n) {
        if (n === null || n === undefined || isNaN(n)) { return '\u2013'; }
        if (n >= 1e6) { return (n / 1e6).toFixed(1) + 'M'; }
        if (n >= 1e4) { return (n / 1e3).toFixed(1) + 'k'; }
        if (n >= 100 || n === Math.round(n)) { return String(Math.round(n)); }
        if (n >= 10) { return n.toFixed(1); }
        return n.toFixed(2);
    }

    function fmtMs(ms) {
        if (ms === null || isNaN(ms)) { return '\u2013'; }
        return (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) + ' ms';
    }

    /* ---- one sample of the counters we chart ---- */

    function sample(data, t) {
        var s = { t: t, total: 0, ok: 0, e4: 0, e5: 0, methods: {},
                  repairs: data.read_repairs || 0,
                  retries: data.write_retries || 0,
                  queries: data.write_version_queries || 0,
                  replicaFail: 0, replicaTimeout: 0, nodes: {} };
        var req = data.requests || {};
        METHODS.forEach(function (m) {
            var by = req[m] || {}, n = 0;
            Object.keys(by).forEach(function (code) {
                var c = by[code] || 0;
                n += c;
                if (code.charAt(0) === '5') {
                    s.e5 += c;
                } else if (code.charAt(0) === '4' && code !== '404') {
                    s.e4 += c;
                }
            });
            s.methods[m] = n;
            s.total += n;
        });
        s.ns = {};
        (data.namespaces || []).forEach(function (ns) {
            var t = { total: 0, e5: 0 };
            METHODS.forEach(function (m) {
                var by = (ns.requests || {})[m] || {};
                Object.keys(by).forEach(function (code) {
                    t.total += by[code] || 0;
                    if (code.charAt(0) === '5') { t.e5 += by[code] || 0; }
                });
            });
            s.ns[ns.name] = t;
        });
        (data.nodes || []).forEach(function (nd) {
            s.replicaFail += nd.failures || 0;
            s.replicaTimeout += nd.timeouts || 0;
            s.nodes[nd.name] = {
                calls: (nd.successes || 0) + (nd.failures || 0)
                       + (nd.timeouts || 0),
                latSum: nd.latency_ms_sum || 0,
                latCount: nd.latency_count || 0
            };
        });
        return s;
    }

    /* per-second rate of f between two samples (counters only grow; a
     * restart of the router resets them: no negative rates) */
    function rate(a, b, f) {
        var dt = (b.t - a.t) / 1000;
        if (dt <= 0) { return 0; }
        return Math.max(0, f(b) - f(a)) / dt;
    }

    function series(f) {
        var out = [];
        for (var i = 1; i < samples.length; i++) {
            out.push(f(samples[i - 1], samples[i]));
        }
        return out;
    }

    function nodeLatency(name, a, b) {
        var na = a.nodes[name], nb = b.nodes[name];
        if (!na || !nb || nb.latCount <= na.latCount) { return null; }
        return (nb.latSum - na.latSum) / (nb.latCount - na.latCount);
    }

    /* ---- charts ---- */

    function niceMax(v) {
        if (!(v > 0)) { return 1; }
        var p = Math.pow(10, Math.floor(Math.log(v) / Math.LN10));
        var steps = [1, 2, 2.5, 5, 10];
        for (var i = 0; i < steps.length; i++) {
            if (v <= steps[i] * p) { return steps[i] * p; }
        }
        return 10 * p;
    }

    function ago(seconds) {
        seconds = Math.round(seconds);
        return '-' + (seconds >= 60 && seconds % 60 === 0
                      ? seconds / 60 + ' min' : seconds + ' s');
    }

    function drawChart(canvas, lines) {
        var dpr = window.devicePixelRatio || 1;
        var w = canvas.clientWidth, h = canvas.clientHeight;
        if (!w || !h) { return; }
        if (canvas.width !== Math.round(w * dpr)) {
            canvas.width = Math.round(w * dpr);
            canvas.height = Math.round(h * dpr);
        }
        var ctx = canvas.getContext('2d');
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, w, h);

        var left = 44, right = 8, top = 8, bottom = 20;
        var pw = w - left - right, ph = h - top - bottom;
        var max = 0;
        lines.forEach(function (l) {
            l.values.forEach(function (v) {
                if (v !== null && v > max) { max = v; }
            });
        });
        max = niceMax(max);

        ctx.font = '11px system-ui, sans-serif';
        ctx.fillStyle = '#6b7686';
        ctx.strokeStyle = '#e1e6ee';
        ctx.lineWidth = 1;
        ctx.textAlign = 'right';
        ctx.textBaseline = 'middle';
        for (var g = 0; g <= 4; g++) {
            var y = Math.round(top + ph - ph * g / 4) + 0.5;
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + pw, y);
            ctx.stroke();
            ctx.fillText(fmt(max * g / 4), left - 6, y);
        }
        /* the time axis: the samples there are, at least 30 s, at most
         * the two minutes kept (one value a second) */
        var slots = Math.min(KEEP - 1, Math.max(MIN_SPAN, lines.length
                                                ? lines[0].values.length : 0));
        ctx.textBaseline = 'top';
        [[0, ago(slots), 'left'], [0.5, ago(slots / 2), 'center'],
         [1, 'now', 'right']].forEach(function (x) {
            ctx.textAlign = x[2];
            ctx.fillText(x[1], left + pw * x[0], top + ph + 5);
        });

        lines.forEach(function (l, k) {
            var n = l.values.length, started = false;
            var x0 = left + pw * (slots - n) / (slots - 1 || 1);
            ctx.beginPath();
            for (var i = 0; i < n; i++) {
                var v = l.values[i];
                if (v === null) { started = false; continue; }
                var x = x0 + pw * i / (slots - 1 || 1);
                var yy = top + ph - ph * Math.min(v, max) / max;
                if (started) { ctx.lineTo(x, yy); } else { ctx.moveTo(x, yy); }
                started = true;
            }
            ctx.strokeStyle = l.color;
            ctx.lineWidth = k === 0 ? 2 : 1.5;
            ctx.stroke();
        });
    }

    function legend(box, lines) {
        var key = lines.map(function (l) {
            return l.label + '=' + fmt(l.values.length
                                       ? l.values[l.values.length - 1] : null);
        }).join('|');
        if (box.getAttribute('data-key') === key) { return; }
        box.setAttribute('data-key', key);
        box.textContent = '';
        lines.forEach(function (l) {
            var item = el('span', 'item'), sw = el('span', 'swatch');
            sw.style.background = l.color;     /* CSSOM: allowed by the CSP */
            item.appendChild(sw);
            var now = l.values.length ? l.values[l.values.length - 1] : null;
            item.appendChild(document.createTextNode(
                l.label + ' ' + fmt(now) + (l.unit || '')));
            box.appendChild(item);
        });
    }

    function chart(name, lines) {
        drawChart($('chart-' + name), lines);
        legend($('legend-' + name), lines);
    }

    /* ---- the views ---- */

    function nodeState(nd) {
        if (nd.suspect) { return 'suspect'; }
        return nd.up ? 'up' : 'down';
    }

    var STATE_NOTE = {
        up: '',
        suspect: 'timed out: reads leave it out, one probe every 200 ms',
        down: 'its last request failed (refused, error or timeout)'
    };

    function renderNodes(data) {
        var tbody = $('nodes').tBodies[0];
        var nodes = data.nodes || [];
        var up = 0, suspect = 0, down = 0;
        var b = samples[samples.length - 1];
        var a = samples[Math.max(0, samples.length - 1 - RECENT)];
        var p = samples.length > 1 ? samples[samples.length - 2] : null;

        while (tbody.rows.length > nodes.length) {
            tbody.deleteRow(-1);
        }
        nodes.forEach(function (nd, i) {
            var row = tbody.rows[i];
            if (!row) {
                row = tbody.insertRow(-1);
                for (var c = 0; c < 11; c++) { row.insertCell(-1); }
                row.cells[0].className = 'name';
                row.cells[1].appendChild(el('span', 'state'));
                row.cells[1].appendChild(el('span', 'state-note'));
                [3, 4, 5, 6, 7, 8, 9].forEach(function (k) {
                    row.cells[k].className = 'num';
                });
                row.cells[10].className = 'dim';
            }
            var st = nodeState(nd);
            if (st === 'up') { up++; } else if (st === 'suspect') { suspect++; }
            else { down++; }
            row.setAttribute('data-node', nd.name);
            row.setAttribute('data-state', st);
            var badge = row.cells[1].firstChild;
            badge.setAttribute('data-state', st);
            text(badge, st);
            text(row.cells[1].lastChild, STATE_NOTE[st]);
            text(row.cells[0], nd.name);
            text(row.cells[2], nd.previous_weight !== undefined
                 && nd.previous_weight !== nd.weight
                 ? nd.previous_weight + ' \u2192 ' + nd.weight
                 : String(nd.weight));
            text(row.cells[3], fmtMs(a && b ? nodeLatency(nd.name, a, b)
                                            : null));
            text(row.cells[4], fmtMs(nd.latency_count
                                     ? nd.latency_ms_sum / nd.latency_count
                                     : null));
            text(row.cells[5], p ? fmt(rate(p, b, function (s) {
                return s.nodes[nd.name] ? s.nodes[nd.name].calls : 0;
            })) : '\u2013');
            text(row.cells[6], fmt(nd.successes));
            text(row.cells[7], fmt(nd.failures));
            text(row.cells[8], fmt(nd.timeouts));
            text(row.cells[9], fmt(nd.skipped));
            text(row.cells[10], nd.upstream + (nd.address
                                               ? ' (' + nd.address + ')' : ''));
        });

        var card = $('card-nodes');
        text(card, up + ' / ' + nodes.length);
        card.parentNode.className = 'card' + (down ? ' bad'
                                              : suspect ? ' warn' : '');
        text($('card-nodes-note'), (suspect ? suspect + ' suspect ' : '')
             + (down ? down + ' down' : '') || 'all answering');
    }

    function renderCards(data) {
        var n = samples.length, b = samples[n - 1], a = samples[n - 2];
        var r = a ? rate(a, b, function (s) { return s.total; }) : null;
        var e = a ? rate(a, b, function (s) { return s.e5; }) : null;
        text($('card-rate'), fmt(r));
        text($('card-rate-note'), fmt(b.total) + ' since start');
        text($('card-errors'), fmt(e));
        $('card-errors').parentNode.className = 'card' + (e > 0 ? ' bad' : '');
        text($('card-errors-note'), fmt(b.e5) + ' 5xx, ' + fmt(b.e4)
             + ' 4xx (not 404) since start');
        text($('card-repairs'), fmt(data.read_repairs));
        text($('card-repairs-note'), a ? fmt(rate(a, b, function (s) {
            return s.repairs;
        })) + ' / s' : '');
        text($('card-retries'), fmt(data.write_retries));
        text($('card-retries-note'), fmt(data.write_version_queries)
             + ' version queries, ' + fmt(data.versions_not_adopted)
             + ' versions not adopted');
        text($('card-epoch'), String(data.epoch));
        text($('card-epoch-note'), data.transition ? 'membership transition'
             : 'N = ' + (data.replicas || []).join(', '));
    }

    function renderMembership(data) {
        var epoch = data.epoch, live = data.live_epochs || {};
        var total = 0, current = 0, older = [];
        Object.keys(live).forEach(function (e) {
            total += live[e];
            if (Number(e) === epoch) { current += live[e]; }
            else if (Number(e) < epoch) { older.push(e + ' (' + live[e] + ')'); }
        });
        var barrier = older.length === 0;
        var state = data.transition ? 'transition'
                    : barrier ? 'stable' : 'reloading';
        var badge = $('transition-state');
        badge.setAttribute('data-state', state);
        text(badge, state === 'transition' ? 'transition to epoch ' + epoch
             : state === 'reloading' ? 'reload in progress'
             : 'stable');

        var joining = [], leaving = [], reweighted = [];
        (data.nodes || []).forEach(function (nd) {
            var pw = nd.previous_weight === undefined ? nd.weight
                     : nd.previous_weight;
            if (pw === 0 && nd.weight > 0) { joining.push(nd.name); }
            else if (nd.weight === 0) { leaving.push(nd.name); }
            else if (pw !== nd.weight) {
                reweighted.push(nd.name + ' ' + pw + '\u2192' + nd.weight);
            }
        });
        var what = [];
        if (joining.length) { what.push('joining: ' + joining.join(', ')); }
        if (leaving.length) { what.push('leaving: ' + leaving.join(', ')); }
        if (reweighted.length) { what.push('reweighted: ' + reweighted.join(', ')); }
        text($('transition-text'), data.transition
             ? what.join('; ') + ' (reads and writes need quorums of the old '
               + 'and of the new owners)'
             : 'epoch ' + epoch + ', ' + (data.nodes || []).length + ' nodes');

        var frac = total ? current / total : 1;
        var bar = $('barrier');
        bar.setAttribute('data-done', barrier ? 'true' : 'false');
        $('barrier-bar').style.width = Math.round(frac * 100) + '%';
        text($('barrier-text'), current + ' of ' + total
             + ' live workers on epoch ' + epoch
             + (older.length ? '; still on older epochs: ' + older.join(', ')
                : ' (barrier reached: no worker of an older epoch alive)'));

        var steps = $('steps');
        if (!data.transition) {
            steps.textContent = '';
            return;
        }
        var list = [
            ['every router loads the transition (epoch ' + epoch + ')',
             'done'],
            ['barrier: no worker of an older epoch alive'
             + (barrier ? '' : ' (' + current + ' of ' + total + ')'),
             barrier ? 'done' : 'now'],
            ['skv rebalance copies every key to its new owners '
             + '(its progress: skv rebalance --json)', barrier ? 'now' : ''],
            ['every router loads the final configuration (epoch '
             + (epoch + 1) + ')', ''],
            ['skv cleanup removes copies from nodes that no longer own them',
             '']
        ];
        var key = JSON.stringify(list);
        if (steps.getAttribute('data-key') === key) { return; }
        steps.setAttribute('data-key', key);
        steps.textContent = '';
        list.forEach(function (s) {
            var li = el('li', '', s[0]);
            if (s[1]) { li.setAttribute('data-state', s[1]); }
            steps.appendChild(li);
        });
    }

    function renderRequests(data) {
        var req = data.requests || {}, codes = {};
        METHODS.forEach(function (m) {
            Object.keys(req[m] || {}).forEach(function (c) { codes[c] = 1; });
        });
        var list = Object.keys(codes).sort();
        var table = $('requests');
        var key = list.join(',');
        if (table.getAttribute('data-key') !== key) {
            table.setAttribute('data-key', key);
            var head = table.tHead;
            head.textContent = '';
            var hr = head.insertRow(-1);
            hr.appendChild(el('th', '', 'method'));
            list.forEach(function (c) { hr.appendChild(el('th', 'num', c)); });
            hr.appendChild(el('th', 'num', 'total'));
            var body = table.tBodies[0];
            body.textContent = '';
            METHODS.forEach(function (m) {
                var row = body.insertRow(-1);
                row.appendChild(el('td', 'name', m));
                for (var i = 0; i <= list.length; i++) {
                    row.appendChild(el('td', 'num', ''));
                }
            });
        }
        METHODS.forEach(function (m, r) {
            var row = table.tBodies[0].rows[r], sum = 0;
            list.forEach(function (c, i) {
                var n = (req[m] || {})[c] || 0;
                sum += n;
                text(row.cells[i + 1], n ? fmt(n) : '');
            });
            text(row.cells[list.length + 1], fmt(sum));
        });
    }

    /* each namespace with its quorums and its own request rates */
    function renderNamespaces(data) {
        var list = data.namespaces || [], body = $('namespaces').tBodies[0];
        var a = samples.length > 1 ? samples[samples.length - 2] : null;
        var b = samples[samples.length - 1];
        body.textContent = '';
        list.forEach(function (ns) {
            var row = body.insertRow(-1), cur = b.ns[ns.name] || {};
            function nsRate(f) {
                return a && a.ns[ns.name] ? fmt(rate(a, b, function (s) {
                    return f(s.ns[ns.name] || {}) || 0;
                })) : '\u2013';
            }
            row.setAttribute('data-namespace', ns.name);
            row.appendChild(el('td', 'name', ns.name));
            row.appendChild(el('td', 'num', String(ns.replicas)));
            row.appendChild(el('td', 'num', String(ns.write_quorum)));
            row.appendChild(el('td', 'num', String(ns.read_quorum)));
            row.appendChild(el('td', 'num',
                               nsRate(function (t) { return t.total; })));
            row.appendChild(el('td', 'num',
                               nsRate(function (t) { return t.e5; })));
            row.appendChild(el('td', 'num', fmt(cur.total || 0)));
        });
    }

    function renderCharts(data) {
        chart('requests', [{ label: 'all', color: COLORS[0],
            values: series(function (a, b) {
                return rate(a, b, function (s) { return s.total; });
            }) }].concat(['GET', 'PUT', 'DELETE', 'HEAD'].map(function (m, i) {
            return { label: m, color: COLORS[i + 1], values: series(
                function (a, b) {
                    return rate(a, b, function (s) { return s.methods[m]; });
                }) };
        })));
        chart('errors', [
            { label: '5xx', color: '#d64545', values: series(function (a, b) {
                return rate(a, b, function (s) { return s.e5; }); }) },
            { label: '4xx (not 404)', color: '#d68910',
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.e4; }); }) },
            { label: 'replica failures', color: '#8e44ad',
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.replicaFail; }); }) },
            { label: 'replica timeouts', color: '#7f8c8d',
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.replicaTimeout; });
              }) }
        ]);
        chart('repairs', [
            { label: 'read repairs', color: COLORS[0],
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.repairs; }); }) },
            { label: 'write retries', color: COLORS[2],
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.retries; }); }) },
            { label: 'version queries', color: COLORS[4],
              values: series(function (a, b) {
                return rate(a, b, function (s) { return s.queries; }); }) }
        ]);
        chart('latency', (data.nodes || []).map(function (nd, i) {
            return { label: nd.name, color: COLORS[i % COLORS.length],
                     unit: ' ms', values: series(function (a, b) {
                         return nodeLatency(nd.name, a, b);
                     }) };
        }));
    }

    function render(data) {
        renderCards(data);
        renderMembership(data);
        renderNodes(data);
        renderNamespaces(data);
        renderRequests(data);
        renderCharts(data);
    }

    /* ---- polling ---- */

    function setConn(state, msg) {
        var c = $('conn');
        c.setAttribute('data-state', state);
        text(c, msg);
    }

    function poll() {
        var started = Date.now();
        fetch(statusUri, { cache: 'no-store', credentials: 'same-origin',
                           headers: { 'Accept': 'application/json' } })
            .then(function (res) {
                if (!res.ok) {
                    throw new Error('HTTP ' + res.status);
                }
                return res.json();
            })
            .then(function (data) {
                samples.push(sample(data, started));
                if (samples.length > KEEP) { samples.shift(); }
                last = data;
                render(data);
                polls++;
                document.body.setAttribute('data-polls', String(polls));
                setConn('ok', 'live \u00b7 ' + new Date().toLocaleTimeString());
            })
            .catch(function (err) {
                /* a gap in the charts rather than a misleading rate */
                samples = [];
                setConn('error', 'status unavailable: ' + err.message);
                document.body.setAttribute('data-poll-error', err.message);
            })
            .then(function () {
                setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
            });
    }

    window.addEventListener('resize', function () {
        if (last) { renderCharts(last); }
    });

    text($('status-uri'), statusUri);
    poll();
}());
