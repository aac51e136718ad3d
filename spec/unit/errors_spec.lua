-- wecom.errors: runtime error objects and the argument checks.
local errors = require "wecom.errors"

describe("wecom.errors argument checks", function()
    local function public(v) return errors.need("wecom.x", "opts.timeout", v, errors.seconds) end

    it("raise naming the call and the argument, at the caller's line", function()
        local ok, err = pcall(public, -1)
        assert.is_false(ok)
        assert.equal("wecom.x: opts.timeout must be a number of seconds in (0, 86400] (got number -1)",
            err:gsub("^[^:]+:%d+: ", ""))
        assert.matches("errors_spec.lua:%d+:", err)
        assert.equal(5, public(5))
    end)

    it("opt lets nil through", function()
        assert.is_nil(errors.opt("w", "n", nil, errors.string))
        assert.has_error(function() errors.opt("w", "n", "", errors.string) end,
            "w: n must be a non-empty string (got empty string)")
    end)

    it("options refuses unknown, missing and wrong options", function()
        local spec = { corpid = errors.string, retries = errors.id }
        assert.has_error(function() errors.options("wecom.new", nil, spec) end,
            "wecom.new: opts must be a table (got nil)")
        assert.has_error(function() errors.options("wecom.new", { x = 1 }, spec) end,
            "wecom.new: unknown option 'x'")
        assert.has_error(function() errors.options("wecom.new", {}, spec, { "corpid" }) end,
            "wecom.new: opts.corpid is required (a non-empty string)")
        assert.has_error(function() errors.options("wecom.new", { corpid = "c", retries = 1.5 }, spec) end,
            "wecom.new: opts.retries must be an integer >= 0 (got number 1.5)")
        local opts = { corpid = "c" }
        assert.equal(opts, errors.options("wecom.new", opts, spec, { "corpid" }))
    end)
end)

describe("wecom.errors objects", function()
    it("render as one line without the query string", function()
        local err = errors.new("api", "bad", { errcode = 40003, method = "GET",
            path = "/cgi-bin/x?access_token=SECRET", http_status = 200 })
        assert.equal("wecom api error 40003: bad (GET /cgi-bin/x, HTTP 200)", tostring(err))
        assert.is_true(errors.is_error(err))
        assert.is_false(errors.is_error({}))
    end)

    it("refuse an unknown kind", function()
        assert.has_error(function() errors.new("nope", "x") end,
            "wecom.errors.new: unknown error kind 'nope'")
    end)
end)
