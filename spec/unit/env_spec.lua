-- wecom.env outside nginx: no ngx, blocking sleep, logs to stderr.
local env = require "wecom.env"

describe("wecom.env outside nginx", function()
    it("knows it is not inside nginx", function()
        assert.is_false(env.in_nginx)
        assert.is_nil(env.ngx)
        assert.is_nil(env.phase())
        assert.is_false(env.can_yield())
    end)

    it("has one phase table with every phase cosockets work in", function()
        for _, phase in ipairs({ "rewrite", "server_rewrite", "access", "content", "timer",
            "ssl_cert", "ssl_session_fetch", "ssl_client_hello" }) do
            assert.is_true(env.YIELDING_PHASES[phase], phase)
        end
        for _, phase in ipairs({ "init", "init_worker", "log", "header_filter", "body_filter" }) do
            assert.is_nil(env.YIELDING_PHASES[phase], phase)
        end
    end)

    it("sleeps by blocking", function()
        local core = require "wecom.core"
        local t0 = core.monotonic()
        env.sleep(0.02)
        assert.is_true(core.monotonic() - t0 >= 0.015)
    end)
end)
