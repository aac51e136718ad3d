-- wecom.url: percent-encoding and query strings.
local url = require "wecom.url"

describe("wecom.url", function()
    it("escapes all but the unreserved characters", function()
        assert.equal("a-b._~%20%2B%2F%3D%26%E4%BC%81", url.escape("a-b._~ +/=&企"))
    end)

    it("unescapes once and keeps '+'", function()
        assert.equal("a+b %2B", url.unescape("a+b%20%252B"))
    end)

    it("round-trips any bytes", function()
        local s = "\0\1 ?&=#%\255企业"
        assert.equal(s, url.unescape(url.escape(s)))
    end)

    it("encodes a query with sorted keys and integral numbers", function()
        assert.equal("a=1&b=x%2By&c=true&d=1.5", url.encode_query { b = "x+y", a = 1.0, c = true, d = 1.5 })
        assert.equal("", url.encode_query(nil))
        assert.equal("", url.encode_query({}))
    end)

    it("raises naming the caller for values that cannot go into a URL", function()
        assert.has_error(function() url.encode_query({ x = {} }, "wecom:get") end,
            "wecom:get: query.x must be a string, number or boolean (got table)")
        assert.has_error(function() url.encode_query({ x = 0 / 0 }, "wecom:get") end)
        assert.has_error(function() url.encode_query({ [1] = "a" }, "wecom:get") end,
            "wecom:get: query keys must be strings (got number)")
    end)

    it("parses a query, after any '?', keeping repeated keys in order", function()
        assert.same({ a = "1", b = "+", c = "", d = { "x", "y" } },
            url.parse_query("/cb?a=1&b=%2B&c&d=x&d=y"))
    end)
end)
