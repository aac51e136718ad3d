-- wecom.token: access tokens and tickets, cached in a token store.
--
-- One refresh per key at a time, across everything that shares the store:
-- the refresher holds the store's lock (a lease, so a dead holder cannot
-- wedge the key) and re-reads the store after getting it; everyone else
-- waits for the new value, yielding to wecom.parallel when inside it.
-- A token is refreshed ahead of its expiry; if that refresh fails, the old
-- token is still used while it is valid.

local error = error
local math_max = math.max
local math_min = math.min
local pcall = pcall
local tostring = tostring
local type = type

local core = require "wecom.core"
local errors = require "wecom.errors"
local parallel = require "wecom.parallel"
local ngx = ngx  -- luacheck: ignore 113

local _M = {}

local DEFAULT_LIFETIME = 7200   -- what WeCom issues
local AHEAD_MIN = 300           -- refresh when 5 minutes ...
local AHEAD_FRACTION = 0.1      -- ... or 10 % of the lifetime is left, whichever is more
-- WeCom answers a repeated gettoken with the same token while it is valid,
-- so an early refresh may not extend the expiry; try at most this often.
local AHEAD_RETRY = 60
local DEFAULT_LEASE = 30
local WAIT_FIRST, WAIT_MAX = 0.005, 0.1

-- Per Lua state: the lifetime seen at the last fetch, the last early refresh.
local lifetimes = {}
local ahead_tried = {}
local failures = {}   -- key -> { at = monotonic time, err = err } of the last failed fetch

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
    local msg = "wecom: token store failed, using the in-process cache until it recovers: " .. tostring(err)
    if ngx and ngx.log then
        ngx.log(ngx.WARN, msg)
    else
        io.stderr:write(msg, "\n")
    end
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
        error("wecom.token.app_key: corpid and secret must be strings", 2)
    end
    return "wecom:token:" .. part(corpid) .. ":" .. part(agentid) .. ":"
        .. core.sha1_hex(secret):sub(1, 16) .. server_part(server)
end

-- downstream_key(upstream_corpid, upstream_agentid, corpid, agentid, business_type [, server]) -> key
function _M.downstream_key(up_corpid, up_agentid, corpid, agentid, business_type, server)
    if type(up_corpid) ~= "string" or type(corpid) ~= "string" then
        error("wecom.token.downstream_key: corpids must be strings", 2)
    end
    return "wecom:down:" .. part(up_corpid) .. ":" .. part(up_agentid) .. ":" .. part(corpid)
        .. ":" .. part(agentid) .. ":" .. part(business_type or 0) .. server_part(server)
end

-- ticket_key(token_key, kind) -> key  (tickets live under their token's key)
function _M.ticket_key(token_key, kind)
    if type(token_key) ~= "string" or type(kind) ~= "string" then
        error("wecom.token.ticket_key: token_key and kind must be strings", 2)
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

local function store_error(what, err)
    if errors.is_error(err) then
        return err
    end
    return errors.new("store", "store " .. what .. " failed: " .. tostring(err))
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

-- Runs fetch while holding the lock; releases it whatever happens.
local function refresh_locked(store, key, fetch, old_value, old_expires_at)
    -- someone may have refreshed between our read and our lock
    local value, expires_at = store:get(key)
    local newer = value ~= nil and type(expires_at) == "number"
        and (old_value == nil or value ~= old_value or expires_at > old_expires_at)
    if newer then
        store:unlock(key)
        return value, expires_at
    end
    -- the store refused our last value: use it again (and offer it again)
    value, expires_at = kept_in_process(key, old_value, old_expires_at)
    if value ~= nil then
        local ok, stored = pcall(store.set, store, key, value, expires_at)
        if ok and stored then
            unstored[key] = nil
        end
        store:unlock(key)
        return value, expires_at
    end

    local ok, new_value, new_expires_at = pcall(fetch)
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
        failures[key] = { at = core.monotonic(), err = new_expires_at }
        return nil, new_expires_at
    end
    failures[key] = nil

    lifetimes[key] = new_expires_at - core.now()
    local set_ok, stored, serr = pcall(store.set, store, key, new_value, new_expires_at)
    if not (set_ok and stored) then
        -- keep it in the process, or every call would fetch again (and
        -- soon hit 45009): a store that reads but refuses writes (Redis at
        -- maxmemory, a full disk) must not turn into a gettoken storm
        pcall(fallback().set, fallback(), key, new_value, new_expires_at)
        unstored[key] = true
        report_store_failure(store_error("set", set_ok and (serr or "not applied") or stored))
    end
    if set_ok and stored then
        unstored[key] = nil
    end
    store:unlock(key)
    return new_value, new_expires_at
end

-- get(store, key, fetch [, opts]) -> value, expires_at | nil, err
--   fetch() -> value, expires_at | nil, err   (expires_at: wall clock seconds)
--   opts.lease: seconds the refresh may take before another caller may try
function _M.get(store, key, fetch, opts)
    local lease = opts and opts.lease or DEFAULT_LEASE
    -- store:get -> value, expires_at | nil[, err]
    local value, expires_at = store:get(key)
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
            -- another caller is refreshing; ours is still good
            return value, expires_at
        end
        return refresh_locked(store, key, fetch, value, expires_at)
    end

    -- nothing usable: take the lock or wait for whoever holds it
    local delay = WAIT_FIRST
    local waiting_since = core.monotonic()
    local give_up = waiting_since + lease * 2 + 1
    while true do
        local locked, lerr = store:lock(key, lease)
        if locked == nil and lerr ~= nil then
            return _M.get_degraded(store, key, fetch, opts, store_error("lock", lerr))
        end
        if locked then
            return refresh_locked(store, key, fetch, nil, nil)
        end
        if store.wait then
            -- a store that can wake us when the holder unlocks (shdict)
            store:wait(key, delay)
        else
            parallel.sleep(delay)
        end
        delay = math_min(delay * 2, WAIT_MAX)
        local failed = failures[key]
        if failed and failed.at >= waiting_since then
            return nil, failed.err
        end
        value, expires_at = store:get(key)
        if value ~= nil then
            return value, expires_at
        elseif expires_at ~= nil then
            return _M.get_degraded(store, key, fetch, opts, store_error("get", expires_at))
        end
        if core.monotonic() > give_up then
            -- a lock that outlives its lease is a broken store; do not hang
            local new_value, new_expires_at = fetch()
            if new_value ~= nil then
                pcall(store.set, store, key, new_value, new_expires_at)
            end
            return new_value, new_expires_at
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
    local value = store:get(key)
    if value == nil and fallback_store then
        value = fallback_store:get(key)
    end
    if value ~= nil then
        _M.invalidate(store, key, value)
    end
    return _M.get(store, key, fetch, opts)
end

-- invalidate(store, key, value) -> boolean
-- Drops the cached value only if it is the one that was rejected, so a token
-- another caller has just refreshed survives.
function _M.invalidate(store, key, value)
    ahead_tried[key] = nil
    if fallback_store and fallback_store ~= store then
        fallback_store:delete(key, value)
    end
    local ok, removed = pcall(store.delete, store, key, value)
    return ok and removed == true
end

return _M
