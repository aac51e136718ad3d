-- Error objects shared by every part of the SDK.
--
-- An error is a plain table with a metatable that renders it as one readable
-- line.  Fields: kind, errcode, errmsg, method, path, http_status, retryable,
-- and code (callback errors).  Paths never carry the query string, so an
-- access_token or secret cannot leak through tostring.

local setmetatable = setmetatable
local getmetatable = getmetatable
local tostring = tostring
local concat = table.concat
local type = type

local _M = { _VERSION = "0.1.0" }

local KINDS = {
    api = true, token = true, transport = true, timeout = true, tls = true,
    rate_limit = true, busy = true, decode = true, callback = true, store = true,
}
_M.KINDS = KINDS

local mt = {}
mt.__index = mt

function mt.__tostring(err)
    local parts = { "wecom ", err.kind, " error" }
    if err.errcode ~= nil then
        parts[#parts + 1] = " " .. tostring(err.errcode)
    elseif err.code ~= nil then
        parts[#parts + 1] = " " .. tostring(err.code)
    end
    if err.errmsg and err.errmsg ~= "" then
        parts[#parts + 1] = ": " .. tostring(err.errmsg)
    end
    if err.method or err.path then
        parts[#parts + 1] = " (" .. (err.method or "?") .. " " .. (err.path or "?")
        if err.http_status then
            parts[#parts + 1] = ", HTTP " .. tostring(err.http_status)
        end
        parts[#parts + 1] = ")"
    elseif err.http_status then
        parts[#parts + 1] = " (HTTP " .. tostring(err.http_status) .. ")"
    end
    if err.retryable then
        parts[#parts + 1] = " [retryable]"
    end
    return concat(parts)
end

-- Strips the query string so credentials in it never reach an error.
local function bare_path(path)
    if type(path) ~= "string" then
        return path
    end
    return (path:gsub("[?#].*$", ""))
end
_M.bare_path = bare_path

-- new(kind, errmsg [, fields]) -> err
function _M.new(kind, errmsg, fields)
    if not KINDS[kind] then
        error("unknown error kind: " .. tostring(kind), 2)
    end
    local err = fields or {}
    err.kind = kind
    err.errmsg = errmsg
    err.path = bare_path(err.path)
    if err.retryable == nil then
        err.retryable = false
    end
    return setmetatable(err, mt)
end

function _M.is_error(value)
    return getmetatable(value) == mt
end

return _M
