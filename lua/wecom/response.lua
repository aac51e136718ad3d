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

-- The same for a request's result (data | nil, err), given last so a call
-- goes straight in; a failed request's nil, err pass through:
--   return response.list_of("chains", PATH.list, client:get(PATH.list))
-- field_of(name, kind, path, data, err) -> data[name] | nil, err
function _M.field_of(name, kind, path, data, err)
    if not data then
        return nil, err
    end
    return _M.field(data, name, kind, path)
end

-- list_of(name, path, data, err) -> data[name] ({} when absent) | nil, err
function _M.list_of(name, path, data, err)
    if not data then
        return nil, err
    end
    return _M.list(data, name, path)
end

-- done(data, err) -> true | nil, err: a call whose answer says nothing more
function _M.done(data, err)
    if not data then
        return nil, err
    end
    return true
end

return _M
