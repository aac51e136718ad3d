-- wecom.store.memory: the C core's process-wide token cache.
--
-- Shared by every Lua state in the process (threads included), guarded by a
-- mutex in C.  See notes/CONTRACTS.md "Token stores" for the interface every
-- store implements.

local setmetatable = setmetatable

local core = require "wecom.core"
local common = require "wecom.store.common"

local _M = { name = "memory" }

local mt = { __index = _M }

function mt.__tostring()
    return "wecom.store.memory"
end

local check = common.checks("memory")
local check_key = check.key

-- get(key) -> value, expires_at | nil   (expired entries are never returned)
function _M.get(_, key)
    check_key("get", key)
    return core.token_get(key)
end

-- set(key, value, expires_at) -> true | nil, "token cache full"
function _M.set(_, key, value, expires_at)
    check_key("set", key)
    check.value(value)
    check.expires_at(expires_at)
    return core.token_set(key, value, expires_at)
end

-- delete(key [, only_if_value]) -> boolean (whether an entry was removed)
function _M.delete(_, key, only_if_value)
    check_key("delete", key)
    return core.token_delete(key, only_if_value)
end

-- lock(key, lease_seconds) -> boolean; never blocks
function _M.lock(_, key, lease_seconds)
    check_key("lock", key)
    return core.token_lock(key, lease_seconds)
end

function _M.unlock(_, key)
    check_key("unlock", key)
    core.token_unlock(key)
    return true
end

-- memory() -> store.  Every instance views the same process-wide cache.
function _M.new()
    return setmetatable({}, mt)
end

return _M
