-- wecom.store.common: what the token stores share — the checks of the
-- store interface's arguments (notes/CONTRACTS.md, "Token stores") and the
-- "<expires_at>\n<value>" record of the file and Redis stores.

local string_format = string.format
local tonumber = tonumber
local type = type

local errors = require "wecom.errors"

local _M = {}

-- checks(name) -> argument checks raising "wecom.store.<name>:<method>: ...",
-- pointed at the caller of the store method.  Each is called directly by
-- that method (depth 1: the check itself stands in between).
function _M.checks(name)
    local prefix = "wecom.store." .. name .. ":"
    local function usage(method, msg, depth)
        errors.usage(prefix .. method, msg, 3 + depth)
    end
    local check = {}

    function check.key(method, key)
        if type(key) ~= "string" or key == "" then
            usage(method, "key must be a non-empty string", 1)
        end
    end

    function check.value(value)
        if type(value) ~= "string" then
            usage("set", "value must be a string", 1)
        end
    end

    -- a number, NaN excluded (it would never compare as expired)
    function check.expires_at(expires_at)
        if type(expires_at) ~= "number" or expires_at ~= expires_at then
            usage("set", "expires_at must be a number", 1)
        end
    end

    function check.only_if_value(v)
        if v ~= nil and type(v) ~= "string" then
            usage("delete", "only_if_value must be a string", 1)
        end
    end

    function check.lease(lease_seconds)
        if type(lease_seconds) ~= "number" or lease_seconds ~= lease_seconds or lease_seconds <= 0 then
            usage("lock", "lease_seconds must be a positive number", 1)
        end
    end

    return check
end

-- record(expires_at, value) -> "<expires_at>\n<value>" (%.17g: the number
-- reads back exactly)
function _M.record(expires_at, value)
    return string_format("%.17g\n", expires_at) .. value
end

-- split_record(data) -> number, rest for "<number>\n<rest>"; nil when data
-- is nil or not in that shape
function _M.split_record(data)
    if not data then
        return nil
    end
    local nl = data:find("\n", 1, true)
    local num = nl and tonumber(data:sub(1, nl - 1))
    if not num then
        return nil
    end
    return num, data:sub(nl + 1)
end

return _M
