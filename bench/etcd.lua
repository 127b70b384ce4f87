-- etcd.lua - wrk script for the benchmark's etcd rows (bench/run.py drives
-- it): the same keys and values as kv.lua, through etcd's v3 JSON gateway.
--
--   wrk -s bench/etcd.lua URL -- MODE NKEYS
--
-- MODE   put: POST /v3/kv/put {"key": b64, "value": b64 of 100 bytes}
--        get: POST /v3/kv/range {"key": b64} (linearizable, etcd's default)
-- NKEYS  keys are bench-00000 .. bench-<NKEYS-1>, chosen at random
--
-- At the end one line "BENCH-RESULT {json}" gives the figures bench/run.py
-- reads, in the form kv.lua prints them.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding, three bytes at a time.
local function base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local c1 = math.floor(n / 262144) % 64
        local c2 = math.floor(n / 4096) % 64
        local c3 = math.floor(n / 64) % 64
        local c4 = n % 64
        out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
            .. (b and B64:sub(c3 + 1, c3 + 1) or "=")
            .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
    end
    return table.concat(out)
end

-- setup() runs in wrk's main Lua state and numbers the threads, so that
-- each thread draws its own sequence of keys
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

local mode, nkeys
local bodies = {}
local headers = { ["Content-Type"] = "application/json" }
local path

function init(args)
    mode = args[1] or "get"
    nkeys = tonumber(args[2] or "10000")
    local value = base64(string.rep("v", 100))
    -- every request body made once, here, so that wrk's threads spend
    -- their time sending, as with kv.lua
    for i = 0, nkeys - 1 do
        local k = base64(string.format("bench-%05d", i))
        if mode == "put" then
            bodies[i] = '{"key":"' .. k .. '","value":"' .. value .. '"}'
        else
            bodies[i] = '{"key":"' .. k .. '"}'
        end
    end
    path = mode == "put" and "/v3/kv/put" or "/v3/kv/range"
    math.randomseed(os.time() * 100 + thread_id)
end

function request()
    return wrk.format("POST", path, headers, bodies[math.random(0, nkeys - 1)])
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
