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
--     cannot leak through tostring.  Text that may come from a server (errmsg
--     above all) is kept to one bounded line: control characters escaped, cut
--     to MAX_TEXT bytes with a marker (line below), so a hostile errmsg can
--     neither forge a log line nor make a 4 MB error.
--
-- `level` in the argument checks counts as error()'s does, from the function
-- that calls the check: 2 (the default) blames that function's caller, which
-- is right when a public function checks its own arguments; a local helper
-- in between adds one.

local byte = string.byte
local error = error
local find = string.find
local format = string.format
local getmetatable = getmetatable
local gsub = string.gsub
local math_floor = math.floor
local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local sub = string.sub
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

-- Server text kept in an error or a log line: enough to read, never a flood.
local MAX_TEXT = 512
local TRUNCATED = "…[truncated]"
_M.MAX_TEXT = MAX_TEXT

local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape_char(c)
    return ESCAPES[c] or format("\\x%02x", byte(c))
end

-- s without a UTF-8 sequence cut short at its end
local function whole_chars(s)
    local n = #s
    for i = n, n > 3 and n - 3 or 1, -1 do
        local b = byte(s, i)
        if b < 0x80 then
            return s
        elseif b >= 0xC0 then
            local len = b >= 0xF0 and 4 or b >= 0xE0 and 3 or 2
            return n - i + 1 < len and sub(s, 1, i - 1) or s
        end
    end
    return s
end

-- line(s) -> s as one bounded line: control characters (CR, LF, NUL, ESC,
-- DEL...) escaped as \n, \r, \t, \xHH, and at most MAX_TEXT bytes before a
-- "…[truncated]" marker.  A string that is already such a line comes back
-- unchanged; anything but a string is returned as is.
local function line(s)
    if type(s) ~= "string" then
        return s
    end
    local cut = false
    if #s > MAX_TEXT then
        -- only what can be kept is escaped: a 4 MB text costs 512 bytes
        s, cut = sub(s, 1, MAX_TEXT), true
    end
    if find(s, "%c") then
        s = gsub(s, "%c", escape_char)
        if #s > MAX_TEXT then
            -- drop an escape cut in half (\, \x, \x1)
            s, cut = gsub(sub(s, 1, MAX_TEXT), "\\x?%x?$", ""), true
        end
    end
    if cut then
        return whole_chars(s) .. TRUNCATED
    end
    return s
end
_M.line = line

local mt = {}
mt.__index = mt

-- one line whatever was put in the fields after new()
function mt.__tostring(err)
    local parts = { "wecom ", line(tostring(err.kind)), " error" }
    if err.errcode ~= nil then
        parts[#parts + 1] = " " .. line(tostring(err.errcode))
    elseif err.code ~= nil then
        parts[#parts + 1] = " " .. line(tostring(err.code))
    end
    if err.errmsg and err.errmsg ~= "" then
        parts[#parts + 1] = ": " .. line(tostring(err.errmsg))
    end
    if err.method or err.path then
        parts[#parts + 1] = " (" .. line(tostring(err.method or "?")) .. " " .. line(tostring(err.path or "?"))
        if err.http_status then
            parts[#parts + 1] = ", HTTP " .. line(tostring(err.http_status))
        end
        parts[#parts + 1] = ")"
    elseif err.http_status then
        parts[#parts + 1] = " (HTTP " .. line(tostring(err.http_status)) .. ")"
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
    err.errmsg = line(errmsg)
    err.path = line(bare_path(err.path))
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
