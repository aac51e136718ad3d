-- The end of a token's life against the emulator (issue 10, item 3): WeCom
-- hands back the token it is still serving with its remaining lifetime
-- rounded down, so a gettoken in a token's last second answers
-- `expires_in: 0`.  No call may fail because of it.
local wecom = require "wecom"
local parallel = require "wecom.parallel"
local core = require "wecom.core"
local emu = require "helpers.emulator"

local READ_PATH = "/cgi-bin/agent/get"
local GETTOKEN = "/cgi-bin/gettoken"

describe("a token near the end of its life", function()
    local env, fixture, app_def

    local function fresh_app(extra)
        local app = wecom.new(emu.app_options(env, fixture, app_def, { backoff = 0.01, retries = 1 }, extra))
        core.token_delete(app.token_key)
        return app
    end

    local function read(app)
        return app:get(READ_PATH, { agentid = app.agentid })
    end

    emu.hooks(function(fx, _, _, info)
        env, fixture, app_def = info, fx, fx.upstream.apps[1]
    end)

    it("uses a token served with expires_in 0 for the call, then gets a new one", function()
        local app = fresh_app()
        local first = assert(app:token())
        -- the emulator's copy now has half a second left; ours many hours
        emu.advance(7200 - 0.5)
        -- a refresh now gets the same token back with expires_in 0
        local tok, expires_at = app:token { force = true }
        assert.equal(first, tok)
        assert.is_true(expires_at >= core.now())
        assert.equal(2, emu.calls(GETTOKEN))
        -- the call that needed it goes through
        local data, err = read(app)
        assert.is_nil(err)
        assert.equal(app.agentid, data.agentid)
        -- once the emulator's copy has expired, the next call ends up with
        -- a new token (the expired one is refused and replaced)
        emu.advance(2)
        data, err = read(app)
        assert.is_nil(err)
        assert.equal(app.agentid, data.agentid)
        assert.not_equal(first, (app:token()))
        assert.is_true(emu.calls(GETTOKEN) <= 4, emu.calls(GETTOKEN) .. " gettoken calls")
    end)

    it("fails no call of many concurrent callers across several 3 s lifetimes", function()
        emu.options { token_ttl = 3 }
        local app = fresh_app()
        local failures, done = {}, 0
        local stop_at = core.monotonic() + 7.5
        local tasks = {}
        for i = 1, 8 do
            tasks[i] = function()
                while core.monotonic() < stop_at do
                    local data, err = read(app)
                    if data then
                        done = done + 1
                    else
                        failures[#failures + 1] = tostring(err)
                    end
                    parallel.sleep(0.01)
                end
            end
        end
        for i, r in ipairs(wecom.parallel(tasks)) do
            assert.is_true(r.ok, "task " .. i .. ": " .. tostring(r.err))
        end
        assert.same({}, failures)
        assert.is_true(done > 100, done .. " calls")
        -- a token per lifetime, a few refreshes ahead and at the end of each:
        -- nowhere near a gettoken per call
        assert.is_true(emu.calls(GETTOKEN) <= 20, emu.calls(GETTOKEN) .. " gettoken calls")
    end)
end)
