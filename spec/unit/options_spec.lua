-- wecom.options: every client option declared once, checked, defaulted and
-- handed to the transport from that one table.
local options = require "wecom.options"
local errors = require "wecom.errors"

local OWN = { { "corpid", errors.string, required = true } }

describe("wecom.options", function()
    it("applies every default into a new table", function()
        local opts = { corpid = "ww" }
        local s = options.resolve("wecom.x", opts, OWN)
        assert.not_equal(opts, s)
        assert.equal("ww", s.corpid)
        assert.equal("https://qyapi.weixin.qq.com", s.base_url)
        assert.equal(5, s.timeout)
        assert.equal(2, s.retries)
        assert.equal(0.5, s.backoff)
        assert.equal(8 * 1024 * 1024, s.max_body)
        assert.matches("^wecom%-lua/%d", s.user_agent)
        assert.is_function(s.store.get)
        assert.is_nil(s.ca_file)
        assert.is_nil(opts.timeout)   -- the caller's table is left alone
    end)

    it("makes a fresh default store per client", function()
        assert.not_equal(options.resolve("w", { corpid = "a" }, OWN).store,
            options.resolve("w", { corpid = "a" }, OWN).store)
    end)

    it("drops trailing slashes of base_url", function()
        local s = options.resolve("w", { corpid = "a", base_url = "https://h:1/p//" }, OWN)
        assert.equal("https://h:1/p", s.base_url)
    end)

    it("raises naming where and the option", function()
        assert.has_error(function() options.resolve("wecom.x", {}, OWN) end,
            "wecom.x: opts.corpid is required (a non-empty string)")
        assert.has_error(function() options.resolve("wecom.x", { corpid = "a", max_body = 0 }, OWN) end,
            "wecom.x: opts.max_body must be a number of bytes from 1 to 1073741824 (got number 0)")
        assert.has_error(function() options.resolve("wecom.x", { corpid = "a", nope = 1 }, OWN) end,
            "wecom.x: unknown option 'nope'")
        assert.has_error(function() options.resolve("wecom.x", "x", OWN) end,
            "wecom.x: opts must be a table (got string)")
    end)

    it("refuses an option declared twice", function()
        assert.has_error(function() options.resolve("w", { corpid = "a" }, { { "timeout", errors.seconds } }) end)
    end)

    it("hands the transport exactly the transport options, from the same declarations", function()
        local s = options.resolve("w", { corpid = "a", ca_file = nil, proxy = "http://p:1", timeout = 3,
            connect_timeout = 1, noproxy = "x", user_agent = "ua", max_body = 4096, retries = 1 }, OWN)
        local t = options.transport(s)
        assert.same({ proxy = "http://p:1", timeout = 3, connect_timeout = 1, noproxy = "x",
            user_agent = "ua", max_body = 4096 }, t)
        local declared = {}
        for _, d in ipairs(options.CONNECTION) do
            declared[d[1]] = true
            -- every declaration is accepted by resolve with a valid value
            if d.transport and s[d[1]] ~= nil then
                assert.equal(s[d[1]], t[d[1]], d[1])
            end
        end
        for k in pairs(t) do
            assert.is_true(declared[k], k)
        end
    end)

    it("checks a call's options", function()
        assert.is_nil(options.request("wecom:get", nil))
        local o = { idempotent = true, timeout = 1 }
        assert.equal(o, options.request("wecom:get", o))
        assert.has_error(function() options.request("wecom:get", { timeout = 0 }) end,
            "wecom:get: opts.timeout must be a number of seconds in (0, 86400] (got number 0)")
        assert.has_error(function() options.request("wecom:get", { retries = 1 }) end,
            "wecom:get: unknown option 'retries'")
    end)
end)
