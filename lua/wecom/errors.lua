-- wecom.errors: the SDK's one error convention.
--
-- Two kinds of failure, never mixed:
--   * a bad argument is the caller's bug: it raises a string naming the call
--     as users write it and the argument, pointing at the caller's line:
--       wecom.new: opts.timeout must be a number of seconds in (0, 86400] (got number -1)
--     (usage, need, opt, options below);
--   * a runtime failure (network, server, store, bad callback) returns
--     `nil, err` with err an error object (new below): a plain table that
--     tostring renders as one readable line.  Fields: kind, errcode, errmsg,
--     method, path, http_status, retryable, and code (callback errors).
--     Paths never carry the query string, so an access_token or secret
--     cannot leak through tostring.
--
-- `level` in the argument checks counts as error()'s does, from the function
-- that calls the check: 2 (the default) blames that function's caller, which
-- is right when a public function checks its own arguments; a local helper
-- in between adds one.

local error = error
local getmetatable = getmetatable
local math_floor = math.floor
local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local concat = table.concat
local type = type

local _M = {}

---------------------------------------------------------------------------
-- Runtime errors
---------------------------------------------------------------------------

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
        error("wecom.errors.new: unknown error kind '" .. tostring(kind) .. "'", 2)
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

---------------------------------------------------------------------------
-- Argument checks
---------------------------------------------------------------------------

-- describe(v) -> what a message says a wrong value was ("number -1", "nil")
local function describe(v)
    local tv = type(v)
    if tv == "string" then
        return v == "" and "empty string" or "string"
    elseif tv == "number" then
        return "number " .. tostring(v)
    end
    return tv
end
_M.describe = describe

-- usage(where, msg [, level]): raises "<where>: <msg>"
local function usage(where, msg, level)
    error(where .. ": " .. msg, (level or 2) + 1)
end
_M.usage = usage

local function is_integer(v, min, max)
    return type(v) == "number" and v == math_floor(v) and v >= min and v <= max
end
_M.is_integer = is_integer

-- kind(description, test) -> a check for need/opt/options
local function kind(description, test)
    return { description, test }
end
_M.kind = kind

local MAX_SECONDS = 86400

-- The checks every module shares; a module with a special range makes its
-- own with errors.kind.
_M.string = kind("a non-empty string", function(v) return type(v) == "string" and v ~= "" end)
_M.any_string = kind("a string", function(v) return type(v) == "string" end)
_M.integer = kind("an integer", function(v) return is_integer(v, -2^53, 2^53) end)
_M.id = kind("an integer >= 0", function(v) return is_integer(v, 0, 2^53 - 1) end)
_M.positive = kind("an integer >= 1", function(v) return is_integer(v, 1, 2^53 - 1) end)
_M.boolean = kind("a boolean", function(v) return type(v) == "boolean" end)
_M.table = kind("a table", function(v) return type(v) == "table" end)
_M.func = kind("a function", function(v) return type(v) == "function" end)
_M.seconds = kind("a number of seconds in (0, " .. MAX_SECONDS .. "]", function(v)
    return type(v) == "number" and v > 0 and v <= MAX_SECONDS
end)

-- need(where, name, v, kind [, level]) -> v, or raises
--   "<where>: <name> must be <kind> (got <describe(v)>)"
function _M.need(where, name, v, k, level)
    if not k[2](v) then
        usage(where, name .. " must be " .. k[1] .. " (got " .. describe(v) .. ")", (level or 2) + 1)
    end
    return v
end
local need = _M.need

-- opt(where, name, v, kind [, level]) -> v (nil allowed), or raises as need
function _M.opt(where, name, v, k, level)
    if v ~= nil then
        need(where, name, v, k, (level or 2) + 1)
    end
    return v
end

-- options(where, opts, spec [, required [, level]]) -> opts
--   spec: { name = kind, ... }; required: a list of names that must be set.
--   Raises for a non-table opts, an unknown option, a missing required one
--   or a wrong value: "<where>: opts.<name> must be ..."
function _M.options(where, opts, spec, required, level)
    level = (level or 2) + 1
    if type(opts) ~= "table" then
        usage(where, "opts must be a table (got " .. describe(opts) .. ")", level)
    end
    for k in pairs(opts) do
        if spec[k] == nil then
            usage(where, "unknown option '" .. tostring(k) .. "'", level)
        end
    end
    if required then
        for _, name in ipairs(required) do
            if opts[name] == nil then
                usage(where, "opts." .. name .. " is required (" .. spec[name][1] .. ")", level)
            end
        end
    end
    for name, k in pairs(spec) do
        local v = opts[name]
        if v ~= nil and not k[2](v) then
            usage(where, "opts." .. name .. " must be " .. k[1] .. " (got " .. describe(v) .. ")", level)
        end
    end
    return opts
end

return _M
