-- wecom.token: access tokens and tickets, cached in a token store.
--
-- Single flight: one refresh per key at a time across everything that
-- shares the store.  The refresher holds the store's lock (a lease, so a
-- dead holder cannot wedge the key) and re-reads the store after getting
-- it; everyone else waits for the new value, yielding to wecom.parallel
-- when inside it.  A waiter waits at most `wait` seconds (the client passes
-- its request timeout) and then fetches by itself: single flight saves
-- gettoken calls, it is never a reason to stall a call.
--
-- A token is refreshed ahead of its expiry; if that refresh fails, the old
-- token is still used while it is valid.
--
-- Generations: a cached entry is (value, expires_at), and every fetch gives
-- a new expires_at, so the pair names one fetch.  WeCom hands out the same
-- token string again while it is valid, so a rejected token is dropped only
-- if the entry is still the very fetch the failing call used (invalidate).
--
-- Whatever a store hands back is data: an empty or oversized value, or an
-- expiry that is not a finite time ahead, is a miss, and the fetch that
-- follows replaces it.

local error = error
local math_huge = math.huge
local math_max = math.max
local math_min = math.min
local pcall = pcall
local str_format = string.format
local tostring = tostring
local type = type

local core = require "wecom.core"
local env = require "wecom.env"
local errors = require "wecom.errors"
local parallel = require "wecom.parallel"

local _M = {}

local DEFAULT_LIFETIME = 7200   -- what WeCom issues
-- expires_in outside [0, MAX_LIFETIME] is a broken answer, never cached: a
-- huge value would keep a token long after WeCom dropped it
local MAX_LIFETIME = 86400
-- WeCom rounds the remaining lifetime down: expires_in 0 is a token in its
-- last second, still served.  It is kept this long, so the callers of that
-- second share it instead of asking for it again and again.
local MIN_KEEP = 1
local AHEAD_MIN = 300           -- refresh when 5 minutes ...
local AHEAD_FRACTION = 0.1      -- ... or 10 % of the lifetime is left, whichever is more
-- WeCom answers a repeated gettoken with the same token while it is valid,
-- so an early refresh may not extend the expiry; try at most this often.
local AHEAD_RETRY = 60
local DEFAULT_LEASE = 30
local DEFAULT_WAIT = 5
local WAIT_FIRST, WAIT_MAX = 0.005, 0.1
-- the largest value taken from a store (tokens and tickets are < 1 KiB)
local MAX_VALUE = 65536

-- Per Lua state: the lifetime seen at the last fetch, the last early refresh,
-- the outcome of the last fetch, the keys fetched outside the lock right now.
local lifetimes = {}
local ahead_tried = {}
local outcomes = {}   -- key -> { at = monotonic, value =, expires_at = } | { at =, err = }
local fetching_unlocked = {}

-- While a shared store (file, Redis) fails, tokens are fetched directly and
-- kept in the process-wide memory store, so API calls go on without a
-- gettoken per call; the failure is logged, at most once a minute.
local REPORT_EVERY = 60
local fallback_store
local last_report = -REPORT_EVERY

local function report_store_failure(err)
    local now = core.monotonic()
    if now - last_report < REPORT_EVERY then
        return
    end
    last_report = now
    env.log("warn", "wecom: token store failed, using the in-process cache until it recovers: ",
        tostring(err))
end

local function fallback()
    if not fallback_store then
        fallback_store = require("wecom.store.memory").new()
    end
    return fallback_store
end

-- ":" separates key parts, so it is escaped inside a part.
local tointeger = math.tointeger

local function part(v)
    if v == nil then
        return "-"
    end
    if tointeger and type(v) == "number" then
        v = tointeger(v) or v   -- 7.0 and 7 name the same agent
    end
    return (tostring(v):gsub("[%%:]", function(c) return c == "%" and "%25" or "%3A" end))
end

-- Tokens are issued by one server: a client pointed at another base_url
-- (an emulator, a proxy) must not be handed them.
local DEFAULT_SERVER = "https://qyapi.weixin.qq.com"

local function server_part(server)
    if server == nil or server == DEFAULT_SERVER then
        return ""
    end
    return "@" .. core.sha1_hex(server):sub(1, 12)
end

-- app_key(corpid, agentid, secret [, server]) -> key
-- Different secrets of one corp/app (rotation, typos) never share a token;
-- the secret itself is not in the key, only a prefix of its SHA-1.
function _M.app_key(corpid, agentid, secret, server)
    if type(corpid) ~= "string" or type(secret) ~= "string" then
        errors.usage("wecom.token.app_key", "corpid and secret must be strings")
    end
    return "wecom:token:" .. part(corpid) .. ":" .. part(agentid) .. ":"
        .. core.sha1_hex(secret):sub(1, 16) .. server_part(server)
end

-- downstream_key(upstream_corpid, upstream_agentid, corpid, agentid, business_type [, server]) -> key
function _M.downstream_key(up_corpid, up_agentid, corpid, agentid, business_type, server)
    if type(up_corpid) ~= "string" or type(corpid) ~= "string" then
        errors.usage("wecom.token.downstream_key", "corpids must be strings")
    end
    return "wecom:down:" .. part(up_corpid) .. ":" .. part(up_agentid) .. ":" .. part(corpid)
        .. ":" .. part(agentid) .. ":" .. part(business_type or 0) .. server_part(server)
end

-- ticket_key(token_key, kind) -> key  (tickets live under their token's key)
function _M.ticket_key(token_key, kind)
    if type(token_key) ~= "string" or type(kind) ~= "string" then
        errors.usage("wecom.token.ticket_key", "token_key and kind must be strings")
    end
    return token_key .. ":ticket:" .. part(kind)
end

-- ahead_margin(lifetime) -> seconds before expiry when a refresh is due
function _M.ahead_margin(lifetime)
    lifetime = lifetime or DEFAULT_LIFETIME
    return math_min(math_max(AHEAD_MIN, lifetime * AHEAD_FRACTION), lifetime / 2)
end

-- refresh_due(expires_at, now, lifetime) -> boolean
function _M.refresh_due(expires_at, now, lifetime)
    return expires_at - now < _M.ahead_margin(lifetime)
end

-- flight_opts(timeout, retries, max_backoff) -> { lease =, wait = }, the
-- opts of get and refresh for a client with these settings:
--   lease: how long a refresher keeps a key before another caller may take
--          it over: a fetch with all its retries and backoffs, twice (a
--          downstream fetch may first fetch the upstream token);
--   wait:  how long a caller waits for someone else's refresh before it
--          fetches by itself: its own request timeout.
function _M.flight_opts(timeout, retries, max_backoff)
    local lease = math_min((timeout + max_backoff) * (retries + 1) * 2, MAX_LIFETIME)
    return { lease = lease, wait = timeout }
end

-- credential_from(data, field, method, path, http_status) -> value, expires_at | nil, err
-- Turns a token or ticket endpoint's answer (decoded JSON) into (value,
-- expires_at).  expires_in is the server's remaining lifetime rounded down,
-- so 0 is a credential in its last second: usable, kept MIN_KEEP seconds.
function _M.credential_from(data, field, method, path, http_status)
    local value, expires_in = data[field], data.expires_in
    local problem
    if type(value) ~= "string" or value == "" then
        problem = "without a " .. field
    elseif #value > MAX_VALUE then
        problem = "with a " .. field .. " over " .. MAX_VALUE .. " bytes"
    elseif type(expires_in) ~= "number" then
        problem = "without a numeric expires_in"
    elseif not (expires_in >= 0 and expires_in <= MAX_LIFETIME) then
        problem = "with expires_in out of range (" .. str_format("%.0f", expires_in) .. ")"
    end
    if problem then
        return nil, errors.new("decode", field .. " response " .. problem,
            { method = method, path = path, http_status = http_status })
    end
    return value, core.now() + math_max(expires_in, MIN_KEEP)
end

local function store_error(what, err)
    if errors.is_error(err) then
        return err
    end
    return errors.new("store", "store " .. what .. " failed: " .. tostring(err))
end

-- usable(value, expires_at, now) -> whether a store's entry can be handed out
local function usable(value, expires_at, now)
    return type(value) == "string" and value ~= "" and #value <= MAX_VALUE
        and type(expires_at) == "number" and expires_at > now and expires_at < math_huge
end

-- read(store, key) -> value, expires_at | nil (a miss) | nil, err (the store failed)
local function read(store, key)
    local value, expires_at = store:get(key)
    if value == nil then
        return nil, expires_at
    end
    if usable(value, expires_at, core.now()) then
        return value, expires_at
    end
    return nil
end

local function record_outcome(key, value, expires_at, err)
    outcomes[key] = { at = core.monotonic(), value = value, expires_at = expires_at, err = err }
end

-- The outcome of a fetch that ended after `since`, for the callers that
-- waited for it: value, expires_at | nil, err | nothing
local function outcome_since(key, since)
    local o = outcomes[key]
    if not o or o.at < since then
        return false
    end
    if o.err ~= nil then
        return true, nil, o.err
    end
    if o.expires_at > core.now() then
        return true, o.value, o.expires_at
    end
    return false
end

-- fetch_checked(fetch) -> value, expires_at | nil, err; raises what fetch raises
local function fetch_checked(fetch)
    local value, expires_at = fetch()
    if value == nil then
        return nil, expires_at
    end
    if type(value) ~= "string" or value == "" or type(expires_at) ~= "number"
        or expires_at ~= expires_at then
        return nil, errors.new("decode", "token fetch gave no usable value")
    end
    return value, expires_at
end

-- keys whose last fetched value the store refused to keep (per Lua state)
local unstored = {}

-- The token this process fetched but the store refused to keep: still good,
-- not due, and not the one being replaced.
local function kept_in_process(key, old_value, old_expires_at)
    if not unstored[key] or not fallback_store then
        return nil
    end
    local value, expires_at = fallback_store:get(key)
    if value == nil or _M.refresh_due(expires_at, core.now(), lifetimes[key])
        or (old_value ~= nil and value == old_value and expires_at <= old_expires_at) then
        return nil
    end
    return value, expires_at
end

-- the store's write for a key: set, or set_durable for a value that must
-- not be evicted before its expiry (opts.durable; a store without
-- set_durable gets set)
local function writer(store, durable)
    return durable and store.set_durable or store.set
end

-- Keeps a fetched value in the store, or in the process when the store
-- refuses it: a store that reads but refuses writes (Redis at maxmemory, a
-- full disk) must not turn into a gettoken per call (and soon 45009).
local function keep(store, key, value, expires_at, durable)
    lifetimes[key] = expires_at - core.now()
    local set_ok, stored, serr = pcall(writer(store, durable), store, key, value, expires_at)
    if set_ok and stored then
        unstored[key] = nil
        return
    end
    if store ~= fallback() then
        pcall(fallback().set, fallback(), key, value, expires_at)
        unstored[key] = true
    end
    report_store_failure(store_error("set", set_ok and (serr or "not applied") or stored))
end

-- Runs fetch while holding the lock; releases it whatever happens.
local function refresh_locked(store, key, fetch, old_value, old_expires_at, durable)
    -- someone may have refreshed between our read and our lock
    local value, expires_at = read(store, key)
    if value ~= nil and (value ~= old_value or expires_at ~= old_expires_at) then
        store:unlock(key)
        return value, expires_at
    end
    -- the store refused our last value: use it again (and offer it again)
    value, expires_at = kept_in_process(key, old_value, old_expires_at)
    if value ~= nil then
        local ok, stored = pcall(writer(store, durable), store, key, value, expires_at)
        if ok and stored then
            unstored[key] = nil
        end
        store:unlock(key)
        return value, expires_at
    end

    local ok, new_value, new_expires_at = pcall(fetch_checked, fetch)
    if not ok then
        store:unlock(key)
        error(new_value, 0)
    end
    if new_value == nil then
        store:unlock(key)
        if old_value ~= nil and old_expires_at > core.now() then
            return old_value, old_expires_at
        end
        -- callers of this process waiting for this fetch share its failure
        -- instead of each trying again in turn
        record_outcome(key, nil, nil, new_expires_at)
        return nil, new_expires_at
    end
    if new_value == old_value and new_expires_at <= old_expires_at then
        -- the same token again, its lifetime rounded down: it must not
        -- shorten our copy (that would open a gap before the server's expiry)
        store:unlock(key)
        return old_value, old_expires_at
    end
    keep(store, key, new_value, new_expires_at, durable)
    record_outcome(key, new_value, new_expires_at)
    store:unlock(key)
    return new_value, new_expires_at
end

-- Past its wait, a caller fetches without the lock (its holder is slow or
-- dead).  Callers of one Lua state still share one such fetch.
local function fetch_unlocked(store, key, fetch, since, durable)
    while fetching_unlocked[key] do
        parallel.sleep(WAIT_MAX)    -- bounded by that fetch's own timeout
        local done, value, expires_at = outcome_since(key, since)
        if done then
            return value, expires_at
        end
    end
    fetching_unlocked[key] = true
    local ok, value, expires_at = pcall(fetch_checked, fetch)
    fetching_unlocked[key] = nil
    if not ok then
        error(value, 0)
    end
    if value == nil then
        record_outcome(key, nil, nil, expires_at)
        return nil, expires_at
    end
    keep(store, key, value, expires_at, durable)
    record_outcome(key, value, expires_at)
    return value, expires_at
end

-- get(store, key, fetch [, opts]) -> value, expires_at | nil, err
--   fetch() -> value, expires_at | nil, err   (expires_at: wall clock seconds)
--   opts.lease: seconds the refresh may take before another caller may try
--   opts.wait: seconds to wait for another caller's refresh before fetching
--   opts.durable: keep the value with the store's set_durable, so no cache
--                 policy drops it before its expiry (a mass-call ticket)
function _M.get(store, key, fetch, opts)
    local lease = opts and opts.lease or DEFAULT_LEASE
    local wait = opts and opts.wait or DEFAULT_WAIT
    local durable = opts and opts.durable
    local value, expires_at = read(store, key)
    if value == nil and expires_at ~= nil then
        return _M.get_degraded(store, key, fetch, opts, store_error("get", expires_at))
    end
    local now = core.now()

    if value ~= nil then
        if not _M.refresh_due(expires_at, now, lifetimes[key]) then
            return value, expires_at
        end
        local tried = ahead_tried[key]
        if tried and now - tried < AHEAD_RETRY then
            return value, expires_at
        end
        ahead_tried[key] = now
        local locked = store:lock(key, lease)
        if not locked then
            -- another caller is refreshing (or the store failed); ours is still good
            return value, expires_at
        end
        return refresh_locked(store, key, fetch, value, expires_at, durable)
    end

    -- nothing usable: take the lock or wait for whoever holds it
    local delay = WAIT_FIRST
    local waiting_since = core.monotonic()
    local deadline = waiting_since + wait
    while true do
        local locked, lerr = store:lock(key, lease)
        if locked == nil and lerr ~= nil then
            return _M.get_degraded(store, key, fetch, opts, store_error("lock", lerr))
        end
        if locked then
            return refresh_locked(store, key, fetch, nil, nil, durable)
        end
        local left = deadline - core.monotonic()
        if left <= 0 then
            return fetch_unlocked(store, key, fetch, waiting_since, durable)
        end
        if store.wait then
            -- a store that can wake us when the holder unlocks (shdict)
            store:wait(key, math_min(delay, left))
        else
            parallel.sleep(math_min(delay, left))
        end
        delay = math_min(delay * 2, WAIT_MAX)
        local done, shared, shared_at = outcome_since(key, waiting_since)
        if done then
            return shared, shared_at
        end
        value, expires_at = read(store, key)
        if value ~= nil then
            return value, expires_at
        elseif expires_at ~= nil then
            return _M.get_degraded(store, key, fetch, opts, store_error("get", expires_at))
        end
    end
end

-- get_degraded(store, key, fetch, opts, err): the store failed with err;
-- serve the key from the in-process fallback (one fetch per process).
function _M.get_degraded(store, key, fetch, opts, err)
    local memory = fallback()
    if store == memory then
        return nil, err   -- the memory store does not fail; never loop
    end
    report_store_failure(err)
    return _M.get(memory, key, fetch, opts)
end

-- refresh(store, key, fetch [, opts]) -> value, expires_at | nil, err
-- Drops what is cached under key (in the store or, while it fails, in the
-- in-process fallback), then gets it as get() does: one fetch per key still.
function _M.refresh(store, key, fetch, opts)
    local value, expires_at = read(store, key)
    if value == nil and fallback_store then
        value, expires_at = read(fallback_store, key)
    end
    if value ~= nil then
        _M.invalidate(store, key, value, expires_at)
    end
    return _M.get(store, key, fetch, opts)
end

-- invalidate(store, key, value [, expires_at]) -> boolean
-- Drops the cached entry only if it is the one that was rejected: the same
-- value and, when given, the same expires_at (the same fetch).  A token
-- another caller has fetched since survives, even when WeCom handed out
-- the same string again.
function _M.invalidate(store, key, value, expires_at)
    ahead_tried[key] = nil
    local o = outcomes[key]
    if o and o.value == value and (expires_at == nil or o.expires_at == expires_at) then
        outcomes[key] = nil
    end
    if fallback_store and fallback_store ~= store then
        pcall(fallback_store.delete, fallback_store, key, value, expires_at)
    end
    local ok, removed = pcall(store.delete, store, key, value, expires_at)
    return ok and removed == true
end

return _M
