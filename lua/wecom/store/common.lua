-- wecom.store.common: what the token stores share — the checks of the
-- store interface's arguments (docs/stores.md, "Writing your own store")
-- and the record of the file, Redis and shared-dict stores:
-- "<expires_at>\n<value>", or "-\n<value>" for a durable entry without
-- expiry (the shared dict writes "|" where the others write "\n").

local math_huge = math.huge
local string_format = string.format
local tonumber = tonumber
local type = type

local errors = require "wecom.errors"

local _M = {}

local usage = errors.usage

-- checks(name) -> argument checks raising
--   "wecom.store.<name>:<method>: <argument> must be ... (got ...)",
-- pointed at the caller of the store method.  Each check is called directly
-- by that method.
function _M.checks(name)
    local prefix = "wecom.store." .. name .. ":"
    local check = {}

    local function fail(method, what, v)
        usage(prefix .. method, what .. " (got " .. errors.describe(v) .. ")", 4)   -- fail, check, method, caller
    end

    function check.key(method, key)
        if type(key) ~= "string" or key == "" then
            fail(method, "key must be a non-empty string", key)
        end
    end

    function check.value(value)
        if type(value) ~= "string" then
            fail("set", "value must be a string", value)
        end
    end

    -- set_durable(key, value [, expires_at]): an empty value would read
    -- back as a miss, so it is refused here
    function check.durable(value, expires_at)
        if type(value) ~= "string" or value == "" then
            fail("set_durable", "value must be a non-empty string", value)
        end
        if expires_at ~= nil and (type(expires_at) ~= "number" or _M.expiry(expires_at) == nil) then
            fail("set_durable", "expires_at must be a finite number or nil", expires_at)
        end
    end

    function check.prefix(key_prefix)
        if type(key_prefix) ~= "string" then
            fail("list_durable", "prefix must be a string", key_prefix)
        end
    end

    -- a finite number: NaN would never compare as expired, infinity never expire
    function check.expires_at(expires_at)
        if _M.expiry(expires_at) == nil or type(expires_at) ~= "number" then
            fail("set", "expires_at must be a finite number", expires_at)
        end
    end

    function check.only_if_value(v)
        if v ~= nil and type(v) ~= "string" then
            fail("delete", "only_if_value must be a string", v)
        end
    end

    -- an expiry names one fetch of a value: it comes with only_if_value
    function check.only_if_expires_at(v, only_if_value)
        if v ~= nil and (type(v) ~= "number" or v ~= v or only_if_value == nil) then
            fail("delete", "only_if_expires_at must be a number, given with only_if_value", v)
        end
    end

    function check.lease(lease_seconds)
        if type(lease_seconds) ~= "number" or lease_seconds ~= lease_seconds or lease_seconds <= 0 then
            fail("lock", "lease_seconds must be a positive number", lease_seconds)
        end
    end

    return check
end

-- record(expires_at, value [, sep]) -> "<expires_at>\n<value>" (%.17g: the
-- number reads back exactly, so it can name the fetch it came from);
-- expires_at nil (a durable entry that never expires) -> "-\n<value>"; sep:
-- another separator than "\n"
local NO_EXPIRY = "-"

function _M.record(expires_at, value, sep)
    if expires_at == nil then
        return NO_EXPIRY .. (sep or "\n") .. value
    elseif sep then
        return string_format("%.17g", expires_at) .. sep .. value
    end
    return string_format("%.17g\n", expires_at) .. value
end

-- expiry(text) -> the finite number text spells | nil
function _M.expiry(text)
    local n = tonumber(text)
    if n == nil or n ~= n or n == math_huge or n == -math_huge then
        return nil
    end
    return n
end

-- split_record(data [, sep]) -> value, expires_at for "<number>\n<value>",
-- value alone for "-\n<value>" (no expiry); nil when data is nil or in
-- another shape: neither a finite number nor "-", or an empty value (a store
-- never keeps an empty value, so it is damage, read as a miss).  sep: as
-- record's.
function _M.split_record(data, sep)
    if type(data) ~= "string" then
        return nil
    end
    local nl = data:find(sep or "\n", 1, true)
    if not nl or nl == #data then
        return nil
    end
    local head = data:sub(1, nl - 1)
    if head == NO_EXPIRY then
        return data:sub(nl + 1)
    end
    local num = _M.expiry(head)
    if not num then
        return nil
    end
    return data:sub(nl + 1), num
end

-- live(value, expires_at, now) -> value, expires_at while the entry lasts
-- (no expiry, or one after now); nothing otherwise
function _M.live(value, expires_at, now)
    if value == nil or (expires_at ~= nil and expires_at <= now) then
        return nil
    end
    return value, expires_at
end

-- live_record(data, now [, sep]) -> value, expires_at of a record while it
-- lasts; nothing for an expired record or one in another shape (a miss)
function _M.live_record(data, now, sep)
    local value, expires_at = _M.split_record(data, sep)
    return _M.live(value, expires_at, now)
end

-- matches(expires_at, value, only_if_value, only_if_expires_at) -> whether
-- an entry is the one a compare-and-delete names
function _M.matches(expires_at, value, only_if_value, only_if_expires_at)
    return (only_if_value == nil or value == only_if_value)
        and (only_if_expires_at == nil or expires_at == only_if_expires_at)
end

return _M
