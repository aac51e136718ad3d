-- wecom.json: the one JSON module of the SDK and the emulator.
--
--   encode(value)  -> string; keys sorted (stable output), integers exact,
--                     tables marked with array() encode as [] even when empty
--   decode(s)      -> value | nil, err; integral numbers come back as Lua
--                     integers on 5.3+ (Debian's cjson decodes every number as
--                     a float, so ids would print as "1000002.0"), arrays come
--                     back marked, so decode -> encode keeps "[]"
--   string(s)      -> s as a JSON string literal
--   array(t), object(t), null, copy(v)
--
-- Debian's lua-cjson (mpx 2.1.0) has no array_mt and cannot tell an empty
-- array from an empty object, hence the encoder here; decoding is cjson's.

local byte = string.byte
local concat = table.concat
local error = error
local format = string.format
local getmetatable = getmetatable
local gsub = string.gsub
local huge = math.huge
local math_type = math.type          -- nil on LuaJIT
local next = next
local pairs = pairs
local pcall = pcall
local find = string.find
local setmetatable = setmetatable
local sort = table.sort
local tointeger = math.tointeger     -- nil on LuaJIT, where nothing is needed
local tostring = tostring
local type = type

local cjson = require("cjson.safe").new()   -- private config: never touch the user's

local _M = {}

local MAX_DEPTH = 64

local ARRAY = { __name = "wecom.json.array" }
local OBJECT = { __name = "wecom.json.object" }

_M.null = cjson.null

-- array([t]) -> t marked as a JSON array (an empty one encodes as [])
function _M.array(t)
    if t == nil then
        t = {}
    elseif type(t) ~= "table" then
        error("wecom.json_array: argument must be a table (got " .. type(t) .. ")", 2)
    end
    return setmetatable(t, ARRAY)
end

-- object([t]) -> t marked as a JSON object (a sequence still encodes as {})
function _M.object(t)
    return setmetatable(t or {}, OBJECT)
end

function _M.is_array(t)
    return getmetatable(t) == ARRAY
end

local ESCAPES = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_one(c)
    return ESCAPES[c] or format("\\u%04x", byte(c))
end

-- string(s) -> "\"...\"": control characters, '"' and '\' escaped; other
-- bytes (UTF-8 included) pass unchanged
local function encode_string(s)
    if not find(s, '[%c"\\]') then
        return '"' .. s .. '"'
    end
    return '"' .. gsub(s, '[%c"\\]', escape_one) .. '"'
end
_M.string = encode_string

local function is_sequence(t)
    local mt = getmetatable(t)
    if mt == ARRAY then
        return true
    elseif mt == OBJECT then
        return false
    end
    local n = #t
    if n == 0 then
        return false
    end
    local count = 0
    for _ in pairs(t) do
        count = count + 1
    end
    return count == n
end

local function encode_number(v)
    if math_type and math_type(v) == "integer" then
        return format("%d", v)
    end
    if v ~= v or v == huge or v == -huge then
        error("cannot encode " .. tostring(v), 0)
    end
    if v == (v - v % 1) and v > -2^53 and v < 2^53 then
        return format("%.0f", v)
    end
    return format("%.17g", v)
end

-- '"key":' for the keys seen so far (object keys are mostly the same few
-- field names), up to KEYS_KEPT of them
local KEYS_KEPT = 1024
local key_prefix, key_count = {}, 0

local function key_text(k)
    local text = key_prefix[k]
    if text == nil then
        text = encode_string(k) .. ":"
        if key_count < KEYS_KEPT then
            key_count = key_count + 1
            key_prefix[k] = text
        end
    end
    return text
end

-- The encoder appends the pieces of the text to out (n: how many it holds)
-- and returns the new count; one concat makes the text.
local encode_value

local function encode_table(t, out, n, depth)
    if depth > MAX_DEPTH then
        error("nesting deeper than " .. MAX_DEPTH, 0)
    end
    if is_sequence(t) then
        n = n + 1
        out[n] = "["
        for i = 1, #t do
            if i > 1 then
                n = n + 1
                out[n] = ","
            end
            n = encode_value(t[i], out, n, depth + 1)
        end
        n = n + 1
        out[n] = "]"
        return n
    end
    -- the keys sorted as the strings they encode to; values is needed only
    -- when a key is a number (its name is not the key)
    local keys, values = {}, nil
    local count = 0
    for k, v in pairs(t) do
        local tk = type(k)
        if tk == "number" then
            local name = encode_number(k)
            values = values or {}
            values[name] = v
            k = name
        elseif tk ~= "string" then
            error("cannot encode a " .. tk .. " key", 0)
        end
        count = count + 1
        keys[count] = k
    end
    if count > 1 then
        sort(keys)
    end
    n = n + 1
    out[n] = "{"
    for i = 1, count do
        local k = keys[i]
        if i > 1 then
            n = n + 1
            out[n] = ","
        end
        n = n + 1
        out[n] = key_text(k)
        local v
        if values and values[k] ~= nil then
            v = values[k]
        else
            v = t[k]
        end
        n = encode_value(v, out, n, depth + 1)
    end
    n = n + 1
    out[n] = "}"
    return n
end

encode_value = function(v, out, n, depth)
    local tv = type(v)
    if tv == "string" then
        if not find(v, '[%c"\\]') then
            out[n + 1], out[n + 2], out[n + 3] = '"', v, '"'
            return n + 3
        end
        out[n + 1] = encode_string(v)
    elseif tv == "number" then
        out[n + 1] = encode_number(v)
    elseif tv == "boolean" then
        out[n + 1] = v and "true" or "false"
    elseif v == nil or v == cjson.null then
        out[n + 1] = "null"
    elseif tv == "table" then
        return encode_table(v, out, n, depth)
    else
        error("cannot encode a " .. tv, 0)
    end
    return n + 1
end

-- encode(value) -> string | nil, err (a function, a cycle, NaN...)
function _M.encode(value)
    local out = {}
    local ok, err = pcall(encode_value, value, out, 0, 0)
    if not ok then
        return nil, "cannot encode as JSON: " .. tostring(err)
    end
    return concat(out)
end

local function fix_up(v, depth)
    if depth > MAX_DEPTH then
        return
    end
    for k, child in pairs(v) do
        local tc = type(child)
        if tc == "number" then
            if tointeger then
                local i = tointeger(child)
                if i then
                    v[k] = i
                end
            end
        elseif tc == "table" then
            fix_up(child, depth + 1)
        end
    end
    if v[1] ~= nil then
        setmetatable(v, ARRAY)
    end
end

-- decode(s) -> value | nil, err
function _M.decode(s)
    if type(s) ~= "string" then
        return nil, "cannot decode a " .. type(s)
    end
    -- cjson stops at a NUL byte and ignores what follows; JSON text never
    -- holds one (inside strings control characters are escaped)
    if find(s, "\0", 1, true) then
        return nil, "NUL byte in JSON text"
    end
    local value, err = cjson.decode(s)
    if value == nil then
        return nil, err
    end
    -- (without integers to fix, only arrays need the walk: none without a '[')
    if type(value) == "table" and (tointeger or find(s, "[", 1, true)) then
        fix_up(value, 0)
    elseif tointeger and type(value) == "number" then
        value = tointeger(value) or value
    end
    return value
end

-- decode_object(s) -> table | nil, err: exactly one JSON object ("[]", a
-- number or a string are not what any WeCom endpoint answers)
function _M.decode_object(s)
    local value, err = _M.decode(s)
    if value == nil then
        return nil, err
    end
    if type(value) ~= "table" or getmetatable(value) == ARRAY
        or (next(value) == nil and not s:find("^%s*{")) then
        return nil, "not a JSON object"
    end
    return value
end

-- copy(v) -> a deep copy that keeps the array/object marks
local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local t = {}
    for k, child in pairs(v) do
        t[k] = copy(child)
    end
    return setmetatable(t, getmetatable(v))
end
_M.copy = copy

return _M
