-- wecom.suite against the emulator, for spec/integration/suite_*_spec.lua
-- and provider_*_spec.lua.
--
--   local sh = require "helpers.suite"
--   local suite, dir = sh.new(info, fx, false, { retries = 0 })  -- a fresh file store each time
--   sh.push(suite, "suite_ticket")                          -- the emulator mints, suite:receive keeps
--   local event = sh.push(suite, "authorize", { corpid = "wwRETAILCORP01", action = "create" })
--   sh.cleanup()                                            -- removes every store directory made
--   sh.hooks(function(info, fx, third) ... end)   -- a describe's emulator (helpers.emulator hooks),
--                                                 -- its third-party suite, cleanup after each test

local wecom = require "wecom"
local pv = require "helpers.provider"
local sh = require "helpers.sh"

local _M = {}

local dirs = {}

-- tmpdir() -> a new empty directory (removed by cleanup)
function _M.tmpdir()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. sh.quote(dir)))
    dirs[#dirs + 1] = dir
    return dir
end

-- hooks(on_start), inside a describe: the emulator's hooks (started,
-- reset before each test), on_start(info, fixture, the fixture's
-- third-party suite), and cleanup after each test
function _M.hooks(on_start)
    require("helpers.emulator").hooks(function(fx, _, _, info)
        on_start(info, fx, pv.suite(fx, false))
    end)
    require("busted").after_each(_M.cleanup)
end

function _M.cleanup()
    for _, dir in ipairs(dirs) do
        os.execute("rm -rf " .. sh.quote(dir))
    end
    dirs = {}
end

-- options(info, fx, customized, extra...) -> the options of wecom.suite for
-- the fixture's third-party suite (customized: the 代开发 template)
function _M.options(info, fx, customized, ...)
    local def = pv.suite(fx, customized)
    local opts = {
        suite_id = def.suite_id, suite_secret = def.suite_secret,
        token = def.callback.token, aes_key = def.callback.aes_key,
        provider_corpid = fx.provider.corpid,
        base_url = info.base_url, ca_file = info.ca_file, web_base_url = info.base_url,
    }
    for i = 1, select("#", ...) do
        for k, v in pairs(select(i, ...) or {}) do
            opts[k] = v
        end
    end
    if opts.store == nil then
        opts.store = wecom.store.file(_M.tmpdir())
    end
    return opts
end

function _M.new(info, fx, customized, ...)
    local opts = _M.options(info, fx, customized, ...)
    return wecom.suite(opts), opts
end

-- push(suite, control, body) -> event, reply | nil, err: what the emulator
-- would POST (suite_ticket or authorize), handed to suite:receive
function _M.push(suite, control, body)
    local b = { suite_id = suite.suite_id }
    for k, v in pairs(body or {}) do
        b[k] = v
    end
    local ev = pv.ok_control(control, b)
    local event, reply = suite:receive(ev.query, ev.body)
    return event, reply, ev
end

-- ready(suite) -> suite, after a ticket push
function _M.ready(suite)
    assert(_M.push(suite, "suite_ticket"))
    return suite
end

-- install(suite, corpid [, extra]) -> the create_auth event (event.auth)
function _M.install(suite, corpid, extra)
    local body = { corpid = corpid, action = "create" }
    for k, v in pairs(extra or {}) do
        body[k] = v
    end
    local event, reply = _M.push(suite, "authorize", body)
    assert(event, reply)
    assert(event.auth, "create_auth without auth")
    return event
end

return _M
