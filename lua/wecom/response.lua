-- wecom.response: fields of a decoded WeCom answer, checked for their type.
-- A field of the wrong type is the server's fault: `nil, err` of kind
-- "decode" naming the field and the API path (never a raised error).

local type = type

local errors = require "wecom.errors"

local _M = {}

-- field(data, name, kind, path) -> data[name] when it is of type kind
function _M.field(data, name, kind, path)
    local v = data[name]
    if type(v) ~= kind then
        return nil, errors.new("decode", "response has no " .. kind .. " field '" .. name .. "'",
            { path = path })
    end
    return v
end

-- list(data, name, path) -> data[name], {} when absent (WeCom omits empty arrays)
function _M.list(data, name, path)
    local v = data[name]
    if v == nil then
        return {}
    end
    if type(v) ~= "table" then
        return nil, errors.new("decode", "response field '" .. name .. "' is not a list", { path = path })
    end
    return v
end

return _M
