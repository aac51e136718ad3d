-- JSON for the emulator: cjson decodes; encoding is done here because the
-- lua-cjson shipped with Debian cannot tell an empty array from an empty
-- object, and WeCom answers `[]` for empty lists.

local cjson = require "cjson.safe"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local concat = table.concat
local sort = table.sort
local format = string.format
local floor = math.floor
local huge = math.huge

local _M = {}

local ARRAY = { __name = "json.array" }
local OBJECT = { __name = "json.object" }

-- Marks a table as a JSON array (so that an empty one encodes as []).
function _M.array(t)
    return setmetatable(t or {}, ARRAY)
end

-- Marks a table as a JSON object (so that an empty one encodes as {}).
function _M.object(t)
    return setmetatable(t or {}, OBJECT)
end

_M.null = cjson.null

-- decode(s) -> value | nil, err. Arrays come back marked as arrays.
local function mark_arrays(v)
    if type(v) ~= "table" then
        return v
    end
    local n = #v
    for k, child in pairs(v) do
        v[k] = mark_arrays(child)
    end
    if n > 0 then
        setmetatable(v, ARRAY)
    end
    return v
end

function _M.decode(s)
    local value, err = cjson.decode(s)
    if value == nil then
        return nil, err
    end
    return mark_arrays(value)
end

local encode_string = require("wecom.json").string

local function is_array(t)
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

local encode_value

local function encode_table(t, out, depth)
    if depth > 64 then
        error("json: nesting too deep", 0)
    end
    if is_array(t) then
        out[#out + 1] = "["
        for i, v in ipairs(t) do
            if i > 1 then
                out[#out + 1] = ","
            end
            encode_value(v, out, depth + 1)
        end
        out[#out + 1] = "]"
        return
    end
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = tostring(k)
    end
    -- sorted keys: stable output, easy to read in tests and logs
    sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
        if i > 1 then
            out[#out + 1] = ","
        end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        local v = t[k]
        if v == nil then
            v = t[tonumber(k)]
        end
        encode_value(v, out, depth + 1)
    end
    out[#out + 1] = "}"
end

encode_value = function(v, out, depth)
    local tv = type(v)
    if tv == "string" then
        out[#out + 1] = encode_string(v)
    elseif tv == "number" then
        if v ~= v or v == huge or v == -huge then
            error("json: cannot encode " .. tostring(v), 0)
        end
        if floor(v) == v and v > -1e15 and v < 1e15 then
            out[#out + 1] = format("%d", v)
        else
            out[#out + 1] = format("%.14g", v)
        end
    elseif tv == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif v == nil or v == cjson.null then
        out[#out + 1] = "null"
    elseif tv == "table" then
        encode_table(v, out, depth)
    else
        error("json: cannot encode a " .. tv, 0)
    end
end

function _M.encode(v)
    local out = {}
    encode_value(v, out, 0)
    return concat(out)
end

-- Deep copy that keeps the array/object marks.
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
