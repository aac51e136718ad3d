-- Emulator state shared by every nginx worker, kept in lua_shared_dict zones:
--   wecom_emu        tokens, codes, tickets, faults, options, clock offset,
--                    locks and the mutable collections (chain corps, rules, jobs)
--   wecom_emu_stats  call counters by path
--   wecom_emu_meta   the reset epoch and the control version (never flushed,
--                    so workers notice resets and new control values)
-- Read-modify-write goes through a small add()-based lock; nothing blocks the
-- worker (waiting is ngx.sleep).

local json = require "wecom.json"

local ngx = ngx
local type = type
local pairs = pairs
local error = error
local tostring = tostring
local random = math.random
local floor = math.floor
local concat = table.concat
local sub = string.sub

local _M = {}

local dict, stats, meta

function _M.init_worker()
    dict = ngx.shared.wecom_emu
    stats = ngx.shared.wecom_emu_stats
    meta = ngx.shared.wecom_emu_meta
    if not (dict and stats and meta) then
        error("wecom emulator: lua_shared_dict wecom_emu, wecom_emu_stats and wecom_emu_meta are required")
    end
    -- distinct random streams per worker, for tokens and ids
    math.randomseed(floor(ngx.now() * 1000) + ngx.worker.pid() * 7919)
end

local function zones()
    if not dict then
        _M.init_worker()
    end
    return dict
end

-- Control values: read by every request, written only by the control API
-- (the latency, the clock offset, options "opt:*", queued faults
-- "fault:*").  The big zone is a deep tree of cold nodes, so each worker
-- keeps what it read, for as long as the control version in the small
-- meta zone has not moved; every write of a control value (and a reset)
-- moves it.  Control values have no expiry.
local MISSING = {}
local control_cache, control_seen = {}, nil

local function is_control(key)
    return key == "latency_ms" or key == "clock_offset" or sub(key, 1, 4) == "opt:" or sub(key, 1, 6) == "fault:"
end

local function control_changed()
    meta:incr("control", 1, 0)
end

local function control_get(key)
    zones()
    local version = meta:get("control") or 0
    if version ~= control_seen then
        control_cache, control_seen = {}, version
    end
    local v = control_cache[key]
    if v == nil then
        v = dict:get(key)
        if v == nil then
            v = MISSING
        end
        control_cache[key] = v
    end
    if v == MISSING then
        return nil
    end
    return v
end

-- The emulator clock: real time plus the offset moved by /__emulator/clock.
function _M.now()
    return ngx.now() + (control_get("clock_offset") or 0)
end

function _M.clock_offset()
    return control_get("clock_offset") or 0
end

function _M.advance(seconds)
    local v, err = zones():incr("clock_offset", seconds, 0)
    control_changed()
    return v, err
end

-- Lock with a lease, so a crashed holder cannot wedge the key.
function _M.lock(name)
    local key = "lock:" .. name
    local d = zones()
    for _ = 1, 5000 do
        if d:add(key, true, 5) then
            return true
        end
        ngx.sleep(0.001)
    end
    return error("wecom emulator: lock " .. name .. " timed out")
end

function _M.unlock(name)
    zones():delete("lock:" .. name)
end

-- Runs fn under the named lock; the lock is released even if fn raises.
function _M.with_lock(name, fn, ...)
    _M.lock(name)
    local ok, a, b, c = pcall(fn, ...)
    _M.unlock(name)
    if not ok then
        error(a, 0)
    end
    return a, b, c
end

function _M.get(key)
    if is_control(key) then
        return control_get(key)
    end
    return zones():get(key)
end

function _M.set(key, value, ttl)
    local control = is_control(key)
    if control and ttl and ttl > 0 then
        error("wecom emulator: " .. key .. " is a control value: no expiry")
    end
    local ok, err = zones():set(key, value, ttl or 0)
    if not ok then
        error("wecom emulator: shared dict full (" .. tostring(err) .. ")")
    end
    if control then
        control_changed()
    end
end

function _M.add(key, value, ttl)
    local ok, err = zones():add(key, value, ttl or 0)
    if ok and is_control(key) then
        control_changed()
    end
    return ok, err
end

function _M.delete(key)
    zones():delete(key)
    if is_control(key) then
        control_changed()
    end
end

function _M.incr(key, n, init)
    local v, err = zones():incr(key, n or 1, init or 0)
    if is_control(key) then
        control_changed()
    end
    return v, err
end

function _M.get_json(key)
    local raw = zones():get(key)
    if raw == nil then
        return nil
    end
    return json.decode(raw)
end

function _M.set_json(key, value, ttl)
    local text, err = json.encode(value)
    if not text then
        error("wecom emulator: " .. key .. ": " .. err)
    end
    _M.set(key, text, ttl)
end

-- Collections: mutable documents seeded from the fixture. Readers get a
-- per-worker cached copy that is refreshed when the version or the reset
-- epoch changes; they must not modify it.
local cache = {}

local function epoch()
    zones()
    return meta:get("epoch") or 0
end

function _M.read(name, seed)
    local version = zones():get("ver:" .. name) or 0
    local ep = epoch()
    local hit = cache[name]
    if hit and hit.version == version and hit.epoch == ep then
        return hit.value
    end
    local value = _M.get_json("col:" .. name)
    if value == nil then
        value = json.copy(seed())
    end
    cache[name] = { version = version, epoch = ep, value = value }
    return value
end

-- update(name, seed, fn): fn(doc) modifies a private copy under the lock;
-- its results are returned. The copy is stored only when fn succeeds.
function _M.update(name, seed, fn)
    return _M.with_lock("col:" .. name, function()
        local doc = _M.get_json("col:" .. name)
        if doc == nil then
            doc = json.copy(seed())
        end
        local a, b, c = fn(doc)
        _M.set_json("col:" .. name, doc)
        dict:incr("ver:" .. name, 1, 0)
        return a, b, c
    end)
end

-- Stats: one counter per API path.
function _M.count_call(path)
    zones()
    stats:incr(path, 1, 0)
end

function _M.stats()
    zones()
    local calls = {}
    for _, key in pairs(stats:get_keys(0)) do
        local n = stats:get(key)
        if n then
            calls[key] = n
        end
    end
    return calls
end

-- Back to the loaded fixture: every token, code, job, fault, option, the
-- clock and the counters go.
function _M.reset()
    zones()
    dict:flush_all()
    dict:flush_expired()
    stats:flush_all()
    stats:flush_expired()
    meta:incr("epoch", 1, 0)
    control_changed()
    cache = {}
end

-- Random identifiers (not secrets: the emulator only needs uniqueness).
local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

-- alphabet -> its characters as one-character strings (the alphabets are
-- the few constants of the callers); buf: the pieces of the string being
-- made (nothing yields in between)
local alphabet_chars = {}
local buf = {}

function _M.random_string(n, alphabet)
    alphabet = alphabet or ALNUM
    local chars = alphabet_chars[alphabet]
    if chars == nil then
        chars = {}
        for i = 1, #alphabet do
            chars[i] = alphabet:sub(i, i)
        end
        alphabet_chars[alphabet] = chars
    end
    local len = #chars
    for i = 1, n do
        buf[i] = chars[random(len)]
    end
    return concat(buf, "", 1, n)
end

-- A unique id: a shared counter plus randomness.
function _M.unique(prefix, n)
    local seq = _M.incr("seq", 1, 0)
    return (prefix or "") .. tostring(seq) .. _M.random_string(n or 16)
end

function _M.option(name, default)
    local v = control_get("opt:" .. name)
    if v == nil then
        return default
    end
    return v
end

function _M.set_option(name, value)
    if type(value) == "boolean" or type(value) == "number" or type(value) == "string" then
        _M.set("opt:" .. name, value)
    end
end

return _M
