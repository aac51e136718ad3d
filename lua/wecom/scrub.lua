-- wecom.scrub: credentials out of any text that goes into an error.
--
-- A server or libcurl may quote the request back (a URL with its
-- access_token, a gettoken URL with corpsecret=, a JSON body), and a hostile
-- or buggy server may echo anything it was sent.  Every text the client puts
-- into an error passes a scrubber first:
--
--   scrub.value(s, credential) -> s with every copy of credential as "***"
--   scrub.new([secret]) -> scrubber
--   scrubber(s [, credential...]) -> s without the secret, without the given
--       credentials (a token, the upstream token), each raw or URL-escaped,
--       and without anything that looks like a credential whoever's it is
--       (access_token=..., corpsecret=..., ticket=..., permanent_code=...,
--       and the same names as JSON fields: "access_token":"...")
--
-- The secret lives only in the scrubber's closure, never in a field.

local ipairs = ipairs
local select = select
local str_find = string.find
local str_gsub = string.gsub
local str_sub = string.sub
local concat = table.concat
local type = type

local url = require "wecom.url"

local _M = {}

local MASK = "***"

-- URL parameters and JSON fields that carry a credential, by name: the value
-- is masked whatever it is.  "secret=" covers corpsecret=, suite_secret=...,
-- "token=" every *_token=, "ticket=" every *_ticket=.
local PATTERNS = {
    "(token=)[^&%s\"'<>]+",
    "(secret=)[^&%s\"'<>]+",
    "(ticket=)[^&%s\"'<>]+",
    "(permanent_code=)[^&%s\"'<>]+",
    "(\"[%w_]*token\"%s*:%s*\")[^\"]*",
    "(\"[%w_]*secret\"%s*:%s*\")[^\"]*",
    "(\"[%w_]*ticket\"%s*:%s*\")[^\"]*",
    "(\"permanent_code\"%s*:%s*\")[^\"]*",
}

-- value(s, credential) -> s with every copy of credential replaced
local function value(s, credential)
    if type(s) ~= "string" or type(credential) ~= "string" or credential == "" then
        return s
    end
    local pos, parts = 1, nil
    while true do
        local i, j = str_find(s, credential, pos, true)
        if not i then
            break
        end
        parts = parts or {}
        parts[#parts + 1] = str_sub(s, pos, i - 1)
        parts[#parts + 1] = MASK
        pos = j + 1
    end
    if not parts then
        return s
    end
    parts[#parts + 1] = str_sub(s, pos)
    return concat(parts)
end
_M.value = value

local function known(s, credential)
    if type(credential) == "string" and credential ~= "" then
        s = value(s, credential)
        local escaped = url.escape(credential)
        if escaped ~= credential then
            s = value(s, escaped)
        end
    end
    return s
end

function _M.new(secret)
    return function(s, ...)
        if type(s) ~= "string" then
            return s
        end
        s = known(s, secret)
        for i = 1, select("#", ...) do
            s = known(s, (select(i, ...)))
        end
        for _, pattern in ipairs(PATTERNS) do
            s = str_gsub(s, pattern, "%1" .. MASK)
        end
        return s
    end
end

return _M
