-- wecom.parallel without HTTP: ordering, result shape, isolation of
-- failures, the concurrency bound and nesting, with the loop's own sleeps.
local wecom = require "wecom"
local parallel = require "wecom.parallel"

describe("wecom.parallel", function()
    it("returns results in task order with every returned value", function()
        local results = wecom.parallel {
            function() parallel.sleep(0.02); return "slow", 2 end,
            function() return "fast" end,
            function() return nil end,
            function() end,
        }
        assert.equal(4, #results)
        assert.same({ ok = true, value = "slow", n = 2, "slow", 2 }, results[1])
        assert.same({ ok = true, value = "fast", n = 1, "fast" }, results[2])
        assert.same({ ok = true, n = 1 }, results[3])
        assert.same({ ok = true, n = 0 }, results[4])
    end)

    it("isolates raising and failing tasks", function()
        local err_obj = wecom.errors.new("api", "nope", { errcode = 60011 })
        local results = wecom.parallel {
            function() error({ code = 1 }) end,
            function() return nil, err_obj end,
            function() error("plain", 0) end,
            function() parallel.sleep(0.01); return "still ran" end,
        }
        assert.same({ ok = false, err = { code = 1 } }, results[1])
        assert.is_false(results[2].ok)
        assert.equal(err_obj, results[2].err)
        assert.same({ ok = false, err = "plain" }, results[3])
        assert.equal("still ran", results[4].value)
    end)

    it("runs every task when there are more than the concurrency, whatever each one did", function()
        local tasks, ran = {}, {}
        for i = 1, 40 do
            tasks[i] = function()
                ran[#ran + 1] = i
                if i % 5 == 0 then error("task " .. i, 0) end
                if i % 3 == 0 then parallel.sleep(0.001) end
                if i % 7 == 0 then coroutine.yield("not the loop's") end   -- put back in the queue
                return i, i * 2
            end
        end
        local results = wecom.parallel(tasks, { concurrency = 3 })
        assert.equal(40, #results)
        assert.equal(40, #ran)
        for i = 1, 40 do
            if i % 5 == 0 then
                assert.same({ ok = false, err = "task " .. i }, results[i])
            else
                assert.same({ ok = true, value = i, n = 2, i, i * 2 }, results[i])
            end
        end
    end)

    it("never runs more than `concurrency` tasks at once, and reaches it", function()
        local active, peak = 0, 0
        local tasks = {}
        for i = 1, 12 do
            tasks[i] = function()
                active = active + 1
                if active > peak then peak = active end
                parallel.sleep(0.01)
                active = active - 1
                return i
            end
        end
        local results = wecom.parallel(tasks, { concurrency = 3 })
        assert.equal(3, peak)
        for i = 1, 12 do assert.equal(i, results[i].value) end
    end)

    it("interleaves sleeping tasks instead of running them one by one", function()
        local order = {}
        wecom.parallel {
            function() order[#order + 1] = "a1"; parallel.sleep(0.03); order[#order + 1] = "a2" end,
            function() order[#order + 1] = "b1"; parallel.sleep(0.01); order[#order + 1] = "b2" end,
        }
        assert.same({ "a1", "b1", "b2", "a2" }, order)
    end)

    it("runs nested parallel calls inside the same loop", function()
        local order = {}
        local results = wecom.parallel {
            function()
                local inner = wecom.parallel({
                    function() parallel.sleep(0.02); order[#order + 1] = "inner1"; return 1 end,
                    function() order[#order + 1] = "inner2"; return 2 end,
                }, { concurrency = 2 })
                return inner[1].value + inner[2].value
            end,
            function() parallel.sleep(0.01); order[#order + 1] = "outer"; return "o" end,
        }
        assert.equal(3, results[1].value)
        assert.equal("o", results[2].value)
        assert.same({ "inner2", "outer", "inner1" }, order)
    end)

    it("knows whether it runs inside the loop", function()
        assert.is_nil(parallel.current())
        local results = wecom.parallel { function() return parallel.current() ~= nil end }
        assert.is_true(results[1].value)
        -- a coroutine of the task's own is not a task: it must not yield to the loop
        results = wecom.parallel { function()
            return coroutine.wrap(function() return parallel.current() == nil end)()
        end }
        assert.is_true(results[1].value)
    end)

    it("handles an empty task list", function()
        assert.same({}, wecom.parallel({}))
    end)

    it("raises on bad arguments", function()
        assert.has_error(function() wecom.parallel("x") end)
        assert.has_error(function() wecom.parallel { 1 } end)
        assert.has_error(function() wecom.parallel { f = function() end } end)
        assert.has_error(function() wecom.parallel({}, { concurrency = 0 }) end)
        assert.has_error(function() wecom.parallel({}, { concurrency = 1.5 }) end)
        assert.has_error(function() wecom.parallel({}, { concurency = 2 }) end)
        assert.has_error(function() wecom.parallel({}, { concurrency = -3 }) end)
        assert.has_error(function() wecom.parallel({}, { concurrency = 0 / 0 }) end)
        assert.has_error(function() wecom.parallel({}, { concurrency = "4" }) end)
        assert.has_error(function() wecom.parallel({}, 4) end)
        -- callable tables are not functions: the loop calls tasks with pcall only
        local callable = setmetatable({}, { __call = function() return 1 end })
        assert.has_error(function() wecom.parallel { callable } end)
        assert.has_error(function() wecom.parallel { function() end, nil, function() end } end)
    end)

    it("points argument errors at the caller", function()
        for _, call in ipairs {
            function() local r = wecom.parallel({}, { concurrency = 0 }); return r end,
            function() local r = wecom.parallel { 42 }; return r end,
        } do
            local ok, err = pcall(call)
            assert.is_false(ok)
            assert.matches("parallel_spec.lua", err, 1, true)
        end
    end)

    it("keeps whatever a task raised, even nil or a table, and runs the rest", function()
        local raised = setmetatable({ what = "custom" }, { __tostring = function() return "custom error" end })
        local results = wecom.parallel {
            function() error(raised) end,
            function() error() end,
            function() error(42, 0) end,
            function() return false, "not an error: ok is true" end,
        }
        assert.is_false(results[1].ok)
        assert.equal(raised, results[1].err)
        assert.is_false(results[2].ok)
        assert.is_nil(results[2].err)
        assert.same({ ok = false, err = 42 }, results[3])
        assert.same({ ok = true, value = false, n = 2, false, "not an error: ok is true" }, results[4])
    end)
end)
