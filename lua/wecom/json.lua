-- wecom.json: a Lua string as a JSON string literal, for the JSON the SDK
-- (callback envelopes) and the emulator build by hand.  Control characters,
-- '"' and '\' are escaped; other bytes (UTF-8 included) pass unchanged.

local byte = string.byte
local format = string.format
local gsub = string.gsub

local _M = { _VERSION = "0.1.0" }

local ESCAPES = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_one(c)
    return ESCAPES[c] or format("\\u%04x", byte(c))
end

-- string(s) -> "\"...\"" with s escaped
function _M.string(s)
    return '"' .. gsub(s, '[%c"\\]', escape_one) .. '"'
end

return _M
