-- wecom.parallel with real requests: one core session's multi interface,
-- the concurrency bound under latency, error isolation, single flight.
local wecom = require "wecom"
local emu = require "helpers.emulator"

local READ_PATH = "/cgi-bin/agent/get"

describe("wecom.parallel against the emulator", function()
    local env, fixture, app_def

    local function calls(path)
        return emu.stats()[path] or 0
    end

    local function fresh_app()
        local app = wecom.new(emu.app_options(env, fixture, app_def, { backoff = 0.01 }))
        app.store:delete(app.token_key)
        return app
    end

    emu.hooks(function(fx, _, _, info)
        env, fixture, app_def = info, fx, fx.upstream.apps[1]
    end)
    after_each(function() emu.latency(0) end)

    it("keeps at most `concurrency` requests in flight, and uses them all", function()
        local app = fresh_app()
        assert(app:token())
        emu.latency(60)
        local active, peak = 0, 0
        local tasks = {}
        for i = 1, 10 do
            tasks[i] = function()
                active = active + 1
                if active > peak then peak = active end
                local data, err = app:get(READ_PATH, { agentid = app.agentid })
                active = active - 1
                if not data then return nil, err end
                return i, data.agentid
            end
        end
        local results = wecom.parallel(tasks, { concurrency = 4 })
        assert.equal(4, peak)  -- 1 would mean the requests blocked instead of yielding
        for i = 1, 10 do
            assert.is_true(results[i].ok, tostring(results[i].err))
            assert.same({ ok = true, value = i, n = 2, i, app.agentid }, results[i])
        end
        assert.equal(10, calls(READ_PATH))
    end)

    it("isolates failing and raising tasks from the others", function()
        local app = fresh_app()
        assert(app:token())
        emu.fault { path = "/cgi-bin/user/get", errcode = 45033 }
        local results = wecom.parallel {
            function() return app:get(READ_PATH, { agentid = app.agentid }) end,
            function() return app:get("/cgi-bin/user/get", { userid = fixture.upstream.users[1].userid }) end,
            function() error("task bug") end,
            function() return app:get(READ_PATH, { agentid = app.agentid }) end,
        }
        assert.is_true(results[1].ok)
        assert.is_false(results[2].ok)
        assert.equal("rate_limit", results[2].err.kind)
        assert.is_false(results[3].ok)
        assert.matches("task bug", results[3].err, 1, true)
        assert.is_true(results[4].ok)
        assert.equal(app.agentid, results[4].value.agentid)
    end)

    it("fetches a cold token once for all tasks (single flight)", function()
        local app = fresh_app()
        emu.latency(50)
        local tasks = {}
        for i = 1, 8 do tasks[i] = function() return app:get(READ_PATH, { agentid = app.agentid }) end end
        local results = wecom.parallel(tasks, { concurrency = 8 })
        for i = 1, 8 do assert.is_true(results[i].ok, tostring(results[i].err)) end
        assert.equal(1, calls("/cgi-bin/gettoken"))
    end)

    it("retries and backs off inside the loop without stopping other tasks", function()
        local app = fresh_app()
        assert(app:token())
        emu.fault { path = "/cgi-bin/user/get", errcode = -1, count = 2 }
        local results = wecom.parallel {
            function() return app:get("/cgi-bin/user/get", { userid = fixture.upstream.users[1].userid }) end,
            function() return app:get(READ_PATH, { agentid = app.agentid }) end,
        }
        assert.is_true(results[1].ok, tostring(results[1].err))
        assert.is_true(results[2].ok, tostring(results[2].err))
        assert.equal(3, calls("/cgi-bin/user/get"))
    end)

    it("fans out to every shared corp: one upstream token, one downstream token each", function()
        local app = fresh_app()
        local corps = {}
        for corp in app:shared_corps { business_type = 1 } do corps[#corps + 1] = corp end
        assert.is_true(#corps >= 2)
        local tasks = {}
        for i, corp in ipairs(corps) do
            tasks[i] = function()
                local down = app:downstream { corpid = corp.corpid, agentid = corp.agentid, business_type = 1 }
                down.store:delete(down.token_key)
                local data, err = down:get(READ_PATH, { agentid = corp.agentid })
                if not data then return nil, err end
                return data.agentid
            end
        end
        local results = wecom.parallel(tasks, { concurrency = 16 })
        for i, corp in ipairs(corps) do
            assert.is_true(results[i].ok, tostring(results[i].err))
            assert.equal(corp.agentid, results[i].value)
        end
        assert.equal(1, calls("/cgi-bin/gettoken"))
        assert.equal(#corps, calls("/cgi-bin/corpgroup/corp/gettoken"))
    end)

    it("each_shared_corp calls fn with a downstream client for every corp", function()
        local app = fresh_app()
        local seen = {}
        local results = app:each_shared_corp(function(down, corp)
            seen[#seen + 1] = corp.corpid
            assert.equal(corp.corpid, down.corpid)
            local data, err = down:get(READ_PATH, { agentid = corp.agentid })
            if not data then return nil, err end
            return data.agentid
        end, { business_type = 1, concurrency = 4 })
        assert.is_true(#results >= 2)
        assert.equal(#results, #seen)
        for i = 1, #results do assert.is_true(results[i].ok, tostring(results[i].err)) end
    end)
end)
