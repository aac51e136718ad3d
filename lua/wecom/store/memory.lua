-- wecom.store.memory: the C core's process-wide token cache.
--
-- Shared by every Lua state in the process (threads included), guarded by a
-- mutex in C.  See notes/CONTRACTS.md "Token stores" for the interface every
-- store implements.

local setmetatable = setmetatable
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

-- get(key) -> value, expires_at | nil   (expired entries are never returned)
-- An empty value is a miss: no token is empty, so it is damage.
function _M.get(_, key)
    check_key("get", key)
    local value, expires_at = core.token_get(key)
    if value == "" then
        return nil
    end
    return value, expires_at
end

-- set(key, value, expires_at) -> true | nil, "token cache full"
function _M.set(_, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    return core.token_set(key, value, expires_at)
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
