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

describe("wecom.errors: one bounded line", function()
    it("escapes CR, LF and every other control character in every field", function()
        local err = errors.new("api", "bad field\r\nFORGED LOG LINE\0\27[31m\127", {
            errcode = 40003, method = "GET\n", path = "/cgi-bin/x\r\ny", http_status = 200 })
        local line = tostring(err)
        assert.not_matches("[%c\127]", line)
        assert.matches("bad field\\r\\nFORGED LOG LINE", line, 1, true)
        assert.matches("/cgi-bin/x\\r\\ny", line, 1, true)
        -- the field itself is clean too: a handler logging err.errmsg forges nothing
        assert.not_matches("[%c\127]", err.errmsg)
        -- an already escaped message is not escaped again
        assert.equal(err.errmsg, errors.new("api", err.errmsg).errmsg)
    end)

    it("cuts a huge server text to 512 bytes with a marker, in errmsg itself", function()
        local huge = string.rep("x", 4 * 1024 * 1024)
        local err = errors.new("api", huge, { errcode = 1 })
        assert.is_true(#err.errmsg < 600, #err.errmsg)
        assert.equal(string.rep("x", 512), err.errmsg:sub(1, 512))
        assert.matches("[truncated", err.errmsg, 1, true)
        assert.is_true(#tostring(err) < 700)
        -- short text is untouched
        assert.equal("short", errors.new("api", "short").errmsg)
        assert.equal(string.rep("y", 512), errors.new("api", string.rep("y", 512)).errmsg)
    end)

    it("bounds a text that is long after escaping, and never splits a UTF-8 character", function()
        local err = errors.new("api", string.rep("\n", 4000))
        assert.is_true(#err.errmsg < 600, #err.errmsg)
        assert.not_matches("%c", err.errmsg)
        -- 511 ASCII bytes, then a 3-byte character across the 512th byte
        err = errors.new("api", string.rep("a", 511) .. "企业微信")
        local kept = err.errmsg:match("^(.-)…") or err.errmsg
        assert.equal(string.rep("a", 511), kept)
    end)

    it("bounds fields set after the error was made when it renders", function()
        local err = errors.new("transport", "x", { method = "GET", path = "/p" })
        err.errmsg = "late\r\n" .. string.rep("z", 100000)
        local line = tostring(err)
        assert.not_matches("[%c]", line)
        assert.is_true(#line < 700, #line)
    end)
end)
