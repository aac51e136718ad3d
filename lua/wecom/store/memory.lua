-- wecom.store.memory: the C core's process-wide token cache.
--
-- Shared by every Lua state in the process (threads included), guarded by a
-- mutex in C.  See docs/stores.md "Writing your own store" for the
-- interface every store implements.  Durable entries (set_durable) live in
-- a table of their own in C: no cap, no purge; they last as long as the
-- process.

local setmetatable = setmetatable
local table_sort = table.sort
local tostring = tostring

local core = require "wecom.core"
local errors = require "wecom.errors"
local common = require "wecom.store.common"

local _M = { name = "memory" }

local mt = { __index = _M }

function mt.__tostring()
    return "wecom.store.memory"
end

local check = common.checks("memory")
local check_key = check.key

-- the C cache's limit on a value (src/token.c)
local MAX_VALUE = 8192
_M.MAX_VALUE = MAX_VALUE

local function too_big(value)
    return nil, errors.new("store", "a value of " .. #value .. " bytes is over the memory store's limit of "
        .. MAX_VALUE .. " bytes")
end

-- get(key) -> value, expires_at | value (durable, no expiry) | nil
-- (expired entries are never returned).  An empty value is a miss: no
-- token is empty, so it is damage.
function _M.get(_, key)
    check_key("get", key)
    local value, expires_at = core.token_get(key)
    if value == "" then
        return nil
    end
    return value, expires_at
end

-- set(key, value, expires_at) -> true | nil, err ("token cache full": its
-- 100,000 entries hold live tokens; a value over MAX_VALUE bytes)
function _M.set(_, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    if #value > MAX_VALUE then
        return too_big(value)
    end
    local ok, err = core.token_set(key, value, expires_at)
    if not ok then
        return nil, errors.new("store", tostring(err))
    end
    return true
end

-- set_durable(key, value [, expires_at]) -> true | nil, err (a value over
-- MAX_VALUE bytes).  Never purged nor refused for room: the entry goes
-- with delete, at its expiry if it has one, or with the process.
function _M.set_durable(_, key, value, expires_at)
    check_key("set_durable", key)
    check.durable(value, expires_at)
    if #value > MAX_VALUE then
        return too_big(value)
    end
    return core.token_set_durable(key, value, expires_at)
end

-- list_durable(prefix) -> { key, ... }: the durable keys that start with
-- prefix, sorted
function _M.list_durable(_, prefix)
    check.prefix(prefix)
    local keys = core.token_list_durable(prefix)
    table_sort(keys)
    return keys
end

-- delete(key [, only_if_value [, only_if_expires_at]]) -> boolean (whether
-- an entry was removed).  The expiry compare and the delete are two steps:
-- between them another thread of this process can only replace the entry,
-- and at worst its fresh copy goes too (one more fetch).
function _M.delete(_, key, only_if_value, only_if_expires_at)
    check_key("delete", key)
    check.only_if_value(only_if_value)
    check.only_if_expires_at(only_if_expires_at, only_if_value)
    if only_if_expires_at ~= nil then
        local _, expires_at = core.token_get(key)
        if expires_at ~= only_if_expires_at then
            return false
        end
    end
    return core.token_delete(key, only_if_value)
end

-- lock(key, lease_seconds) -> true | false | nil, err; never blocks
function _M.lock(self, key, lease_seconds)
    check_key("lock", key)
    check.lease(lease_seconds)
    local ok, owner = core.token_lock(key, lease_seconds)
    if ok then
        self.held[key] = owner
        return true
    end
    if ok == nil then
        return nil, errors.new("store", tostring(owner))
    end
    return false
end

-- unlock(key) -> true.  Only releases a lock this store object took and
-- that nobody has taken over since its lease ran out.
function _M.unlock(self, key)
    check_key("unlock", key)
    local owner = self.held[key]
    if owner ~= nil then
        self.held[key] = nil
        core.token_unlock(key, owner)
    end
    return true
end

-- memory() -> store.  Every instance views the same process-wide cache.
function _M.new()
    return setmetatable({ held = {} }, mt)
end

return _M
