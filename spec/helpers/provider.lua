-- The provider side of the emulator, step by step over HTTPS, for the
-- spec/emulator/provider_*_spec.lua specs (helpers.emulator runs the
-- emulator; these are the calls a provider makes, written out).
--
--   local pv = require "helpers.provider"
--   local suite = pv.suite(fx, false)              -- the fixture's third-party suite (true: 代开发)
--   local ev = pv.ticket(suite)                    -- POST /__emulator/suite_ticket
--   local token = pv.suite_token(suite)            -- a fresh ticket, get_suite_token
--   local inst = pv.install(suite, "wwRETAILCORP01")  -- authorize create + get_permanent_code
--   pv.decrypt(suite, ev)                          -- the event's plaintext, checked by wecom.callback
--   pv.hooks(function(fx, third, dk) end)          -- in a describe: emu.hooks and the two suites
--   local ev = pv.authorize(suite, corpid, "create", extra)   -- an admin's authorize step

local emu = require "helpers.emulator"
local callback = require "wecom.callback"

local _M = {}

local S = "/cgi-bin/service/"
_M.S = S

-- The fixture's suite: customized = true for the 代开发 template.
function _M.suite(fx, customized)
    for _, s in ipairs(fx.provider.suites) do
        if (s.customized == true) == (customized == true) then
            return s
        end
    end
    error("no such suite in the fixture")
end

-- control(path, body) -> status, data (no raise: specs look at 400s too)
function _M.control(path, body)
    local status, data = emu.request("POST", "/__emulator/" .. path, { body = body })
    return status, data
end

-- ok_control(path, body) -> data; raises unless 200
function _M.ok_control(path, body)
    local status, data, res = emu.request("POST", "/__emulator/" .. path, { body = body })
    if status ~= 200 then
        error("control " .. path .. ": HTTP " .. status .. " " .. tostring(res.body), 2)
    end
    return data
end

-- hooks(on_start), inside a describe: emu.hooks (a reset before each test),
-- then on_start(fixture, its third-party suite, its 代开发 template)
function _M.hooks(on_start)
    emu.hooks(function(fx)
        on_start(fx, _M.suite(fx, false), _M.suite(fx, true))
    end)
end

-- authorize(suite, corpid, action[, extra]) -> the event of an admin's
-- create, change, cancel or reset (raises unless the emulator took it)
function _M.authorize(suite, corpid, action, extra)
    local body = { suite_id = suite.suite_id, corpid = corpid, action = action }
    for k, v in pairs(extra or {}) do
        body[k] = v
    end
    return _M.ok_control("authorize", body)
end

function _M.ticket(suite, extra)
    local body = { suite_id = suite.suite_id }
    for k, v in pairs(extra or {}) do
        body[k] = v
    end
    return _M.ok_control("suite_ticket", body)
end

-- service(method, name, token, params) -> data (the JSON answer); params go
-- in the query for GET, in the body for POST; token is the suite token
-- unless params say otherwise.
function _M.service(method, name, token, params, token_name)
    local query = { [token_name or "suite_access_token"] = token }
    if method == "GET" then
        for k, v in pairs(params or {}) do
            query[k] = v
        end
        local _, data = emu.request("GET", S .. name, { query = query })
        return data
    end
    local _, data = emu.request("POST", S .. name, { query = token and query or nil, body = params or {} })
    return data
end

function _M.suite_token(suite, ticket)
    ticket = ticket or _M.ticket(suite).suite_ticket
    local data = _M.service("POST", "get_suite_token", nil, {
        suite_id = suite.suite_id, suite_secret = suite.suite_secret, suite_ticket = ticket,
    })
    assert(data.suite_access_token, "get_suite_token failed: " .. tostring(data.errcode))
    return data.suite_access_token, data
end

function _M.provider_token(fx)
    local data = _M.service("POST", "get_provider_token", nil, {
        corpid = fx.provider.corpid, provider_secret = fx.provider.provider_secret,
    })
    assert(data.provider_access_token, "get_provider_token failed: " .. tostring(data.errcode))
    return data.provider_access_token
end

-- install(suite, corpid[, token[, extra]]) -> { token, auth_code, event,
-- permanent_code, answer (get_permanent_code's), agentid }: an admin's
-- install announced by create_auth, exchanged at once.
function _M.install(suite, corpid, token, extra)
    token = token or _M.suite_token(suite)
    local event = _M.authorize(suite, corpid, "create", extra)
    local answer = _M.service("POST", "get_permanent_code", token, { auth_code = event.auth_code })
    assert(answer.errcode == 0, "get_permanent_code failed: " .. tostring(answer.errcode))
    return { token = token, auth_code = event.auth_code, event = event, answer = answer,
             permanent_code = answer.permanent_code, agentid = answer.auth_info.agent[1].agentid }
end

-- corp_token(suite, token, corpid, permanent_code) -> access_token of the
-- authorized corp (get_corp_token, or gettoken for a 代开发 app)
function _M.corp_token(suite, token, corpid, permanent_code)
    if suite.customized then
        local _, data = emu.request("GET", "/cgi-bin/gettoken", {
            query = { corpid = corpid, corpsecret = permanent_code } })
        assert(data.access_token, "gettoken failed: " .. tostring(data.errcode))
        return data.access_token
    end
    local data = _M.service("POST", "get_corp_token", token, { auth_corpid = corpid, permanent_code = permanent_code })
    assert(data.access_token, "get_corp_token failed: " .. tostring(data.errcode))
    return data.access_token
end

-- decrypt(suite, event[, receive_id]) -> the event wecom.callback reads out
-- of what the emulator would POST (receive id: the suite_id by default)
function _M.decrypt(suite, event, receive_id)
    local cb = callback.new { token = suite.callback.token, aes_key = suite.callback.aes_key,
                              receive_id = receive_id or suite.suite_id }
    return cb:decrypt(event.query, event.body)
end

return _M
