-- app:each_shared_corp over 1,000 generated downstream corps with emulator
-- latency: every corp gets its result or its own error, the concurrency
-- bound holds, and each token is fetched once.

local wecom = require "wecom"
local emulator = require "helpers.emulator"

local READ_PATH = "/cgi-bin/agent/get"

describe("fan-out over 1,000 shared corps", function()
    local inst, fx, app_def

    setup(function()
        inst = emulator.new { corps = 1000 }
        fx = inst:fixture()
        app_def = emulator.fixture_app(fx, true)
    end)
    teardown(function() if inst then inst:stop() end end)

    it("reaches every corp once, within the bound, and isolates failures", function()
        local app = wecom.new(emulator.app_options(inst, fx, app_def, { retries = 0 }))
        assert(app:token())
        inst:latency(20)
        -- five corps' calls fail with an error that is not retried
        inst:fault { path = READ_PATH, count = 5, errcode = 60011 }
        local in_flight, max_in_flight = 0, 0
        local results = app:each_shared_corp(function(down, corp)
            assert(down:token())
            in_flight = in_flight + 1
            if in_flight > max_in_flight then max_in_flight = in_flight end
            local data, err = down:get(READ_PATH, { agentid = corp.agentid })
            in_flight = in_flight - 1
            if not data then return nil, err end
            return corp.corpid
        end, { business_type = 1, concurrency = 32 })
        inst:latency(0)

        assert.equal(1000, #results)
        local ok, failed, seen = 0, 0, {}
        for _, r in ipairs(results) do
            if r.ok then
                ok = ok + 1
                assert.is_nil(seen[r.value], "corp reached twice: " .. tostring(r.value))
                seen[r.value] = true
            else
                failed = failed + 1
                assert.equal("api", r.err.kind)
                assert.equal(60011, r.err.errcode)
            end
        end
        assert.equal(995, ok)
        assert.equal(5, failed)
        -- the bound holds, and it is used: how close to 32 the peak gets
        -- between two tasks' token and get depends on the machine's load
        assert.is_true(max_in_flight <= 32, "peak " .. max_in_flight)
        assert.is_true(max_in_flight >= 8, "peak " .. max_in_flight)
        local stats = inst:stats()
        assert.equal(1, stats["/cgi-bin/gettoken"])
        assert.equal(1000, stats["/cgi-bin/corpgroup/corp/gettoken"])
        assert.equal(1000, stats[READ_PATH])
    end)
end)
