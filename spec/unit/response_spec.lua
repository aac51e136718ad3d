-- wecom.response: typed fields of a decoded answer; a wrong type is a
-- "decode" error naming the field and the path.
local response = require "wecom.response"
local errors = require "wecom.errors"

describe("wecom.response", function()
    describe("field", function()
        it("returns a field of the asked type", function()
            assert.equal("J1", response.field({ jobid = "J1" }, "jobid", "string", "/p"))
            assert.equal(0, response.field({ status = 0 }, "status", "number", "/p"))
        end)

        it("is nil, a decode error when the field is missing or of another type", function()
            for _, data in ipairs { {}, { jobid = 12 } } do
                local v, err = response.field(data, "jobid", "string", "/cgi-bin/x")
                assert.is_nil(v)
                assert.is_true(errors.is_error(err))
                assert.equal("decode", err.kind)
                assert.equal("response has no string field 'jobid'", err.errmsg)
                assert.equal("/cgi-bin/x", err.path)
            end
        end)
    end)

    describe("list", function()
        it("returns the list, and a new empty one for a missing field", function()
            local l = { 1, 2 }
            assert.equal(l, response.list({ ids = l }, "ids", "/p"))
            assert.same({}, response.list({}, "ids", "/p"))
        end)

        it("is nil, a decode error for a field that is not a table", function()
            local v, err = response.list({ ids = "a,b" }, "ids", "/cgi-bin/y")
            assert.is_nil(v)
            assert.equal("decode", err.kind)
            assert.equal("response field 'ids' is not a list", err.errmsg)
            assert.equal("/cgi-bin/y", err.path)
        end)
    end)
end)
