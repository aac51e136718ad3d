-- wecom.url: percent-encoding and query strings, for the client, identity
-- URLs, callbacks, the file store's names and the emulator.

local byte = string.byte
local char = string.char
local concat = table.concat
local error = error
local find = string.find
local format = string.format
local gmatch = string.gmatch
local gsub = string.gsub
local ipairs = ipairs
local math_floor = math.floor
local math_type = math.type     -- nil on LuaJIT
local next = next
local pairs = pairs
local sort = table.sort
local sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type

local _M = {}

local function escape_char(c)
    return format("%%%02X", byte(c))
end

-- escape(s) -> s with every byte but the RFC 3986 unreserved ones as %XX
-- (most of what goes into a URL, ids and tokens, needs none: find does not
-- build a copy as gsub would)
function _M.escape(s)
    if not find(s, "[^%w%-%._~]") then
        return s
    end
    return (gsub(s, "[^%w%-%._~]", escape_char))
end
local escape = _M.escape

local function unescape_char(hex)
    return char(tonumber(hex, 16))
end

-- unescape(s) -> s percent-decoded exactly once.  '+' stays '+': echostr and
-- Encrypt are base64, and turning '+' into a space would break a signature.
function _M.unescape(s)
    return (gsub(s, "%%(%x%x)", unescape_char))
end
local unescape = _M.unescape

-- A query value as it goes into a URL.  Integral numbers print without a
-- fraction or exponent (ids, timestamps).  where names the caller's function.
local function query_value(where, k, v, level)
    local tv = type(v)
    if tv == "string" then
        return v
    elseif tv == "number" then
        if v ~= v or v == 1 / 0 or v == -1 / 0 then
            error(where .. ": query." .. tostring(k) .. " must be a finite number (got "
                .. tostring(v) .. ")", level + 1)
        end
        if (math_type and math_type(v) == "integer")
            or (v == math_floor(v) and v > -2^53 and v < 2^53) then
            return format("%d", v)
        end
        return tostring(v)
    elseif tv == "boolean" then
        return v and "true" or "false"
    end
    error(where .. ": query." .. tostring(k) .. " must be a string, number or boolean (got "
        .. tv .. ")", level + 1)
end

-- encode_query(query [, where [, level]]) -> "a=1&b=x%2By", keys sorted so
-- URLs (and signatures over them) are stable.  A key that is not a string
-- or a value that cannot go into a URL raises, naming `where` (default
-- "wecom") and pointing `level` frames up (default: encode_query's caller's
-- caller).
function _M.encode_query(query, where, level)
    if query == nil then
        return ""
    end
    where = where or "wecom"
    level = (level or 2) + 1
    local first = next(query)
    if first == nil then
        return ""
    end
    if next(query, first) == nil and type(first) == "string" then
        -- one parameter (the common case): no lists to sort and join
        return escape(first) .. "=" .. escape(query_value(where, first, query[first], level))
    end
    local keys = {}
    for k in pairs(query) do
        if type(k) ~= "string" then
            error(where .. ": query keys must be strings (got " .. type(k) .. ")", level)
        end
        keys[#keys + 1] = k
    end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        parts[i] = escape(k) .. "=" .. escape(query_value(where, k, query[k], level))
    end
    return concat(parts, "&")
end

-- parse_query("a=1&b=%2B") -> { a = "1", b = "+" }; anything up to a '?' is
-- skipped.  A repeated key keeps its values in a list, in order.
function _M.parse_query(s)
    local query = {}
    local qpos = find(s, "?", 1, true)
    if qpos then
        s = sub(s, qpos + 1)
    end
    for pair in gmatch(s, "[^&]+") do
        local eq = find(pair, "=", 1, true)
        local key, value
        if eq then
            key, value = unescape(sub(pair, 1, eq - 1)), unescape(sub(pair, eq + 1))
        else
            key, value = unescape(pair), ""
        end
        local prev = query[key]
        if prev == nil then
            query[key] = value
        elseif type(prev) == "table" then
            prev[#prev + 1] = value
        else
            query[key] = { prev, value }
        end
    end
    return query
end

return _M
