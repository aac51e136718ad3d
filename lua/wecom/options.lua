-- wecom.options: every option of a client, declared once.
--
-- A declaration is { name, kind [, default] [, transport = true] }: kind is
-- a wecom.errors check, default the value when the option is not given (a
-- function is called for a fresh one), transport = true hands the value to
-- the HTTP transport (wecom.transport.curl / .ngx) as it is.  A transport
-- option is one line in wecom.transport's OPTIONS (and DEFAULTS): it lands in
-- CONNECTION from there; a client option is one line in CONNECTION.  Either
-- way wecom.new checks it, applies its default and passes it on.
--
--   resolve(where, opts, own [, level]) -> settings
--       own: the declarations of the client kind (corpid, secret...) added to
--       CONNECTION.  Raises (errors.options) for a non-table, an unknown
--       option, a missing required one or a wrong value, naming `where`:
--         wecom.new: opts.timeout must be a number of seconds in (0, 86400] (got number -1)
--       settings: a new table with every declared option, defaults applied.
--   settings_into(into, from) -> into: the settings a client keeps as fields
--       (base_url, timeout, retries, backoff, store), copied from settings
--       or from another client
--   transport(settings) -> the options for wecom.transport's new()
--   request(where, opts [, level]) -> opts: checks a call's options
--       ({ idempotent =, timeout = }, of get and post)

local error = error
local io_open = io.open
local ipairs = ipairs
local math_floor = math.floor
local pairs = pairs
local sort = table.sort
local require = require
local setmetatable = setmetatable
local str_find = string.find
local str_gsub = string.gsub
local tostring = tostring
local type = type

local errors = require "wecom.errors"

local _M = {}

local MAX_RETRIES = 10          -- with the 8 s backoff cap, about a minute of retrying
local MAX_BACKOFF_BASE = 60

local function is_integer(v, min, max)
    return type(v) == "number" and v == math_floor(v) and v >= min and v <= max
end

-- scheme, host[:port], an optional path; no query, fragment, userinfo (a
-- password there would end up in logs) or blanks
local BASE_URL = errors.kind("an https:// URL without query, fragment, user info or blanks", function(v)
    return type(v) == "string" and str_find(v, "^https://[^/?#@%s%c]") ~= nil
        and str_find(v, "[?#@%s%c]") == nil
end)

local RETRIES = errors.kind("an integer from 0 to " .. MAX_RETRIES, function(v)
    return is_integer(v, 0, MAX_RETRIES)
end)

local BACKOFF = errors.kind("a number of seconds from 0 to " .. MAX_BACKOFF_BASE, function(v)
    return type(v) == "number" and v >= 0 and v <= MAX_BACKOFF_BASE
end)

local STORE_METHODS = { "get", "set", "delete", "lock", "unlock" }
local STORE = errors.kind("a store (an object with get, set, delete, lock and unlock methods)", function(v)
    if type(v) ~= "table" and type(v) ~= "userdata" then
        return false
    end
    for _, m in ipairs(STORE_METHODS) do
        if type(v[m]) ~= "function" then
            return false
        end
    end
    return true
end)

_M.BASE_URL, _M.RETRIES, _M.BACKOFF, _M.STORE = BASE_URL, RETRIES, BACKOFF, STORE

-- The connection settings every client kind shares: the client's own, then
-- every option of wecom.transport with its check and default, declared
-- there once and handed on as given.
local CONNECTION = {
    { "base_url", BASE_URL, "https://qyapi.weixin.qq.com" },
    { "retries", RETRIES, 2 },
    { "backoff", BACKOFF, 0.5 },       -- seconds before the first retry, doubled each time
    { "store", STORE, function() return require("wecom.store.memory").new() end },
}
local transport_module = require "wecom.transport"  -- picks curl or ngx
do
    local transport = transport_module
    local names = {}
    for name in pairs(transport.OPTIONS) do
        names[#names + 1] = name
    end
    sort(names)
    for _, name in ipairs(names) do
        CONNECTION[#CONNECTION + 1] = { name, transport.OPTIONS[name], transport.DEFAULTS[name], transport = true }
    end
end
_M.CONNECTION = CONNECTION

-- The settings a client object keeps as its own fields, which its request
-- path reads: every connection option that is not the transport's alone,
-- and the timeout, which both use.
local CLIENT_FIELDS = {}
for _, d in ipairs(CONNECTION) do
    if not d.transport or d[1] == "timeout" then
        CLIENT_FIELDS[#CLIENT_FIELDS + 1] = d[1]
    end
end

-- settings_into(into, from) -> into, with the client fields of settings
-- (or of another client) from copied into it
function _M.settings_into(into, from)
    for i = 1, #CLIENT_FIELDS do
        local name = CLIENT_FIELDS[i]
        into[name] = from[name]
    end
    return into
end

-- own -> { spec = { name = kind }, required = { names }, list = own .. CONNECTION }
local compiled = setmetatable({}, { __mode = "k" })

local function compile(own)
    local c = compiled[own]
    if c then
        return c
    end
    c = { spec = {}, required = {}, list = {} }
    for _, group in ipairs({ own, CONNECTION }) do
        for _, d in ipairs(group) do
            local name = d[1]
            if c.spec[name] ~= nil then
                error("wecom.options: option '" .. name .. "' declared twice", 3)
            end
            c.spec[name] = d[2]
            c.list[#c.list + 1] = d
            if d.required then
                c.required[#c.required + 1] = name
            end
        end
    end
    compiled[own] = c
    return c
end


function _M.resolve(where, opts, own, level)
    level = (level or 2) + 1
    local c = compile(own)
    errors.options(where, opts, c.spec, c.required, level)
    local settings = {}
    for _, d in ipairs(c.list) do
        local v = opts[d[1]]
        if v == nil then
            v = d[3]
            if type(v) == "function" then
                v = v()
            end
        end
        settings[d[1]] = v
    end
    settings.base_url = str_gsub(settings.base_url, "/+$", "")
    if opts.ca_file ~= nil then
        if transport_module.name == "curl" then
            -- a wrong path would otherwise surface as a "tls" error on the
            -- first call (inside nginx ca_file is ignored:
            -- lua_ssl_trusted_certificate)
            local f, ferr = io_open(opts.ca_file, "rb")
            if not f then
                errors.usage(where, "opts.ca_file cannot be read: " .. tostring(ferr), level)
            end
            f:close()
        end
    end
    return settings
end

function _M.transport(settings)
    local t = {}
    for _, d in ipairs(CONNECTION) do
        if d.transport then
            t[d[1]] = settings[d[1]]
        end
    end
    return t
end

-- new_transport(settings) -> the transport of a client
function _M.new_transport(settings)
    return transport_module.new(_M.transport(settings))
end

local REQUEST = { idempotent = errors.boolean, timeout = errors.seconds }

function _M.request(where, opts, level)
    if opts ~= nil then
        errors.options(where, opts, REQUEST, nil, (level or 2) + 1)
    end
    return opts
end

return _M
