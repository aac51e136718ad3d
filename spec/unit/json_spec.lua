-- wecom.json.string: JSON string literals that any JSON parser reads back.
local cjson = require "cjson"
local json = require "wecom.json"

describe("wecom.json.string", function()
    it("escapes quotes, backslashes and control characters", function()
        assert.equal([["a\"b\\c\n\r\t\b\f\u0000\u001f\u007f"]],
            json.string('a"b\\c\n\r\t\b\f\0\31\127'))
    end)

    it("passes UTF-8 and '/' unchanged", function()
        assert.equal('"企业微信/上下游"', json.string("企业微信/上下游"))
    end)

    it("reads back through cjson as the same string", function()
        local s = "x\0y\"z\\\1\127 é"
        assert.equal(s, cjson.decode(json.string(s)))
    end)
end)
