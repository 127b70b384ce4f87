-- kv.lua - wrk script for the simplekv benchmarks (bench/run.py drives it).
--
--   wrk -s bench/kv.lua URL -- MODE PREFIX VERSIONED NKEYS [close]
--
-- MODE       get | put | mixed (half GETs, half PUTs) | static (GET URL's
--            own path, for plain nginx serving a file)
-- PREFIX     path before the key: "/v1/kv/" for storaged, "/" for a router
-- VERSIONED  1: every PUT carries a fresh X-Simplekv-Version (storaged and
--            the plain proxy need one; the router makes its own), 0: none
-- NKEYS      keys are bench-00000 .. bench-<NKEYS-1>, chosen at random
-- close      send "Connection: close": a new connection per request (the
--            slow-replica rows use it to time the answer alone; on a
--            keep-alive connection nginx reads the next request only when
--            the previous one's straggler subrequests have ended)
--
-- At the end one line "BENCH-RESULT {json}" gives the figures bench/run.py
-- reads; wrk's own report is printed above it for people.

-- Each wrk thread has its own Lua state; setup() runs in the main one and
-- numbers them, so that every thread writes with its own version origin.
local thread_count = 0

-- The wall clock in ms, as the router's clock reads it (os.time() has only
-- 1 s resolution; LuaJIT's FFI reaches clock_gettime directly).
local ffi = require("ffi")
ffi.cdef[[
struct skv_bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct skv_bench_timespec *tp);
]]
local CLOCK_REALTIME = 0
local SKV_EPOCH_UNIX_S = 1577836800
local timespec = ffi.new("struct skv_bench_timespec")

local function now_ms()
    ffi.C.clock_gettime(CLOCK_REALTIME, timespec)
    return (tonumber(timespec.tv_sec) - SKV_EPOCH_UNIX_S) * 1000
           + math.floor(tonumber(timespec.tv_nsec) / 1000000)
end

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

local mode, prefix, versioned, nkeys
local value = string.rep("v", 100)
local value_headers = { ["Content-Type"] = "application/octet-stream" }
local get_headers = {}
local origin_hi
local last_ms, counter = 0, 0

function init(args)
    mode = args[1] or "get"
    prefix = args[2] or "/"
    versioned = args[3] == "1"
    nkeys = tonumber(args[4] or "10000")
    if args[5] == "close" then
        value_headers["Connection"] = "close"
        get_headers["Connection"] = "close"
    end
    -- thread ids are small; the high half of the origin is random per run
    -- so two runs (or two wrk processes) never share an origin.
    math.randomseed(now_ms() + thread_id)
    origin_hi = math.random(1, 0x7fffffff)
end

-- The next version of this thread: an HLC (48-bit ms since 2020-01-01,
-- 16-bit counter) then a 64-bit origin, as in core/skv_version.h.  LuaJIT
-- numbers are doubles, so the 48-bit ms is printed as two 24-bit halves.
-- Like skv_clock_next(): strictly increasing even if the clock steps back.
-- Two threads writing one key within the same ms may still be out of
-- order (storaged then answers 409, counted as a non-2xx response), as
-- with two real routers.
local function next_version()
    local now = now_ms()
    if now > last_ms then
        last_ms, counter = now, 0
    else
        counter = counter + 1
        if counter > 0xffff then
            last_ms, counter = last_ms + 1, 0
        end
    end
    return string.format("%06x%06x%04x%08x%08x",
                         math.floor(last_ms / 0x1000000),
                         last_ms % 0x1000000, counter, origin_hi, thread_id)
end

local function key_path()
    return string.format("%sbench-%05d", prefix, math.random(0, nkeys - 1))
end

local function put_request()
    if versioned then
        value_headers["X-Simplekv-Version"] = next_version()
    end
    return wrk.format("PUT", key_path(), value_headers, value)
end

function request()
    if mode == "static" then
        return wrk.format("GET", nil, get_headers)
    elseif mode == "put" then
        return put_request()
    elseif mode == "mixed" and math.random(0, 1) == 1 then
        return put_request()
    end
    return wrk.format("GET", key_path(), get_headers)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH-RESULT {"requests": %d, "duration_us": %d, ' ..
        '"p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
        '"errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
        '"errors_status": %d, "errors_timeout": %d}\n',
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
