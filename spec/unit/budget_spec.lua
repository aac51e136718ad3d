-- wecom.budget: sliding-window call budgets on a clock the spec moves.

local budget = require "wecom.budget"

describe("wecom.budget", function()
    local now
    local function clock() return now end

    before_each(function()
        now = 1700000000
    end)

    it("allows up to the limit, then says how long until a call fits", function()
        local b = budget.new { limits = { { 60, 3 } }, clock = clock }
        assert.equal(3, b:remaining())
        for _ = 1, 3 do
            assert.is_true(b:take())
        end
        assert.equal(0, b:remaining())
        local ok, wait = b:take()
        assert.is_false(ok)
        assert.is_true(wait > 60 and wait <= 62)
        -- nothing was counted for the refused call: the three left together
        now = now + wait
        for _ = 1, 3 do
            assert.is_true(b:take())
        end
        assert.is_false((b:take()))
    end)

    it("never lets any window of the given length see more than the limit", function()
        local b = budget.new { limits = { { 100, 10 } }, clock = clock }
        local times = {}
        -- take as fast as allowed for a while, irregular steps
        for step = 1, 2000 do
            if b:take() then
                times[#times + 1] = now
            end
            now = now + (step % 7) * 0.37
        end
        assert.is_true(#times > 50)
        for i = 1, #times do
            local n = 0
            for j = i, #times do
                if times[j] - times[i] < 100 then
                    n = n + 1
                end
            end
            assert.is_true(n <= 10, "window from " .. times[i] .. " holds " .. n)
        end
    end)

    it("counts every window: the tightest decides", function()
        local b = budget.new { limits = { { 3600, 5 }, { 86400, 7 } }, clock = clock }
        for _ = 1, 5 do assert.is_true(b:take()) end
        local ok, wait = b:take()
        assert.is_false(ok)
        assert.is_true(wait <= 3600 + 60)
        now = now + wait
        assert.is_true(b:take())
        assert.is_true(b:take())
        ok, wait = b:take()
        assert.is_false(ok)
        assert.is_true(wait > 3600, "the day's limit is the one left")
    end)

    it("takes n at once or nothing; more than a limit never fits", function()
        local b = budget.new { limits = { { 10, 4 } }, clock = clock }
        assert.is_true(b:take(3))
        assert.is_false((b:take(2)))
        assert.equal(1, b:remaining())
        local ok, wait = b:take(5)
        assert.is_false(ok)
        assert.equal(math.huge, wait)
    end)

    it("has the documented quotas and one shared budget per key", function()
        assert.same({ { 3600, 100000 }, { 86400, 480000 }, { 31 * 86400, 7500000 } }, budget.IDCONVERT)
        local a = budget.shared("spec:a", { { 1, 1 } })
        assert.equal(a, budget.shared("spec:a", { { 1, 99 } }))
        assert.not_equal(a, budget.shared("spec:b", { { 1, 1 } }))
        assert.is_true(budget.is_budget(a))
        assert.is_false(budget.is_budget({}))
        assert.matches("wecom.budget%(1/1s%)", tostring(a))
    end)

    it("raises on bad arguments", function()
        assert.has_error(function() budget.new {} end,
            "wecom.budget.new: opts.limits is required (a non-empty list of { seconds > 0, calls >= 1 })")
        assert.has_error(function() budget.new { limits = { { 0, 1 } } } end,
            "wecom.budget.new: opts.limits must be a non-empty list of { seconds > 0, calls >= 1 } (got table)")
        assert.has_error(function() budget.new { limits = { { 1, 1.5 } } } end)
        assert.has_error(function() budget.new { limits = { { 0 / 0, 1 } } } end)
        local b = budget.new { limits = { { 1, 1 } } }
        assert.has_error(function() b:take(0) end, "wecom.budget:take: n must be an integer >= 1 (got number 0)")
    end)
end)
