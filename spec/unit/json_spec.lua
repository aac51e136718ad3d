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

describe("wecom.json.encode", function()
    it("sorts keys and prints integers without a fraction", function()
        assert.equal('{"a":1,"b":[1,2],"c":"x"}', json.encode { c = "x", b = { 1, 2 }, a = 1.0 })
        assert.equal('{"id":9007199254740991}', json.encode { id = 2^53 - 1 })
    end)

    it("encodes a marked empty list as [] and an unmarked empty table as {}", function()
        assert.equal('{"a":[],"b":{}}', json.encode { a = json.array(), b = {} })
        assert.equal('[]', json.encode(json.array {}))
        assert.equal('{}', json.encode(json.object {}))
    end)

    it("encodes the numbers of a sparse or mixed table as keys, sorted as text", function()
        assert.equal('{"1":"a","3":"b"}', json.encode { [1] = "a", [3] = "b" })
        assert.equal('{"10":true,"2":"x","a":{"k\\n":1}}', json.encode { [2] = "x", [10] = true, a = { ["k\n"] = 1 } })
    end)

    it("encodes null and booleans", function()
        assert.equal('[null,true,false]', json.encode { json.null, true, false })
    end)

    it("returns nil, err for what JSON cannot hold", function()
        for _, bad in ipairs({ { f = print }, { x = 0 / 0 }, { x = math.huge } }) do
            local s, err = json.encode(bad)
            assert.is_nil(s)
            assert.matches("cannot encode", err)
        end
        local deep = {}
        local t = deep
        for _ = 1, 100 do t.x = {}; t = t.x end
        assert.is_nil((json.encode(deep)))
    end)

    it("raises for a non-table given to array", function()
        assert.has_error(function() json.array("x") end,
            "wecom.json_array: argument must be a table (got string)")
    end)
end)

describe("wecom.json.decode", function()
    it("gives integers for integral numbers on every runtime", function()
        local v = json.decode('{"agentid":1000002,"x":1.5,"l":[3]}')
        assert.equal("1000002", tostring(v.agentid))
        assert.equal(1.5, v.x)
        assert.equal("3", tostring(v.l[1]))
        if math.type then
            assert.equal("integer", math.type(v.agentid))
        end
    end)

    it("marks arrays, so decode then encode keeps lists", function()
        local s = '{"a":[1,2],"b":{"c":"d"}}'
        assert.equal(s, json.encode(json.decode(s)))
        assert.is_true(json.is_array(json.decode(s).a))
    end)

    it("refuses a NUL byte and what follows it", function()
        local v, err = json.decode('{"errcode":0}\0garbage')
        assert.is_nil(v)
        assert.matches("NUL", err)
    end)

    it("decode_object takes only one JSON object", function()
        assert.same({ errcode = 0 }, json.decode_object('{"errcode":0}'))
        assert.same({}, json.decode_object(' {}'))
        for _, bad in ipairs({ "[]", "[1]", "1", '"x"', "", "{", "null" }) do
            local v, err = json.decode_object(bad)
            assert.is_nil(v, bad)
            assert.is_string(err)
        end
    end)

    it("copy keeps the marks", function()
        local c = json.copy(json.decode('{"a":[]}'))
        c.l = json.copy(json.array())
        assert.equal('{"a":{},"l":[]}', json.encode(c))
    end)
end)
