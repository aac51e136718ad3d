-- Many callers rejected with 40014/42001 at once (issue 10, item 6).  WeCom
-- hands out the same token string again while it is valid, so a caller
-- whose rejection arrives after another caller's refetch must not drop that
-- fresh copy: a rejected token goes only if the cache still holds the very
-- fetch the failing request used.
local wecom = require "wecom"
local core = require "wecom.core"
local emu = require "helpers.emulator"
local sh = require "helpers.sh"
local staggered = require "helpers.staggered"

local READ_PATH = "/cgi-bin/agent/get"
local GETTOKEN = "/cgi-bin/gettoken"
local CALLERS = 50

describe("a storm of rejected tokens", function()
    local env, fixture, app_def, root

    local function calls(path)
        return emu.stats()[path] or 0
    end

    emu.hooks(function(fx, _, _, info)
        env, fixture, app_def = info, fx, fx.upstream.apps[1]
    end)

    before_each(function() root = sh.tmpdir("wecom-storm") end)
    after_each(function() os.execute("rm -rf " .. sh.quote(root)) end)

    -- rejections of READ_PATH handed back late, one by one (helpers.staggered)
    local function staggering(app, errcode)
        app.transport = staggered.wrap(app.transport, READ_PATH, errcode)
        return app
    end

    -- 50 callers send a request at once, all with the same fetch of the
    -- token; every one is rejected.  -> the gettoken calls it took
    local function storm(app, errcode)
        assert(app:token())
        local before = calls(GETTOKEN)
        emu.fault { path = READ_PATH, errcode = errcode, count = CALLERS }
        local tasks = {}
        for i = 1, CALLERS do
            tasks[i] = function()
                return app:get(READ_PATH, { agentid = app.agentid })
            end
        end
        local results = wecom.parallel(tasks, { concurrency = CALLERS })
        for i = 1, CALLERS do
            assert.is_true(results[i].ok, tostring(results[i].err))
            assert.equal(app.agentid, results[i].value.agentid)
        end
        -- each first request rejected, each resent once
        assert.equal(2 * CALLERS, calls(READ_PATH))
        return calls(GETTOKEN) - before
    end

    for _, errcode in ipairs { 40014, 42001 } do
        it(errcode .. " on 50 callers: one refetch (memory store)", function()
            local app = staggering(wecom.new(emu.app_options(env, fixture, app_def, { retries = 0 })),
                errcode)
            core.token_delete(app.token_key)
            assert.equal(1, storm(app, errcode))
        end)
    end

    it("40014 on 50 callers: one refetch (file store)", function()
        local app = staggering(wecom.new(emu.app_options(env, fixture, app_def,
            { retries = 0, store = wecom.store.file(root .. "/tokens") })), 40014)
        assert.equal(1, storm(app, 40014))
    end)
end)
