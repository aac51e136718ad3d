-- What the Lua benches share: a client of the emulator's control API.
--
--   local util = dofile(arg[0]:match("^(.-)[^/]*$") .. "bench_util.lua")
--   local control = util.control(base_url, ca_file, timeout)
--   local fixture = control("GET", "fixture")
--   control("POST", "latency", { ms = 20 })
--
-- control(method, name [, body]) -> the decoded answer of /__emulator/<name>;
-- raises unless it answered 200 (a bench on a broken setup stops there).

local core = require "wecom.core"
local cjson = require "cjson"

local assert = assert
local tostring = tostring

local _M = {}

function _M.control(base_url, ca_file, timeout)
    local session = core.http_session { ca_file = ca_file, timeout = timeout }
    return function(method, name, body)
        local res, err = session:request {
            method = method, url = base_url .. "/__emulator/" .. name,
            headers = { ["Content-Type"] = "application/json" },
            body = body and cjson.encode(body) or nil,
        }
        assert(res, name .. ": " .. tostring(err and err.message))
        assert(res.status == 200, name .. ": HTTP " .. res.status .. " " .. res.body)
        return cjson.decode(res.body)
    end
end

return _M
