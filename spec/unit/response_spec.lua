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

    -- a request's result (data | nil, err) given last
    describe("field_of, list_of, done", function()
        local failed = errors.new("api", "no privilege", { errcode = 60011 })

        it("pass a failed request's nil, err through as they are", function()
            for _, call in ipairs {
                function() return response.field_of("jobid", "string", "/p", nil, failed) end,
                function() return response.list_of("ids", "/p", nil, failed) end,
                function() return response.done(nil, failed) end,
            } do
                local v, err = call()
                assert.is_nil(v)
                assert.equal(failed, err)
            end
        end)

        it("check the answer's field as field and list do", function()
            assert.equal("J1", response.field_of("jobid", "string", "/p", { jobid = "J1" }))
            local v, err = response.field_of("jobid", "string", "/cgi-bin/x", { jobid = 1 })
            assert.is_nil(v)
            assert.equal("decode", err.kind)
            assert.equal("/cgi-bin/x", err.path)
            assert.same({ "a" }, response.list_of("ids", "/p", { ids = { "a" } }))
            assert.same({}, response.list_of("ids", "/p", {}))
            v, err = response.list_of("ids", "/cgi-bin/y", { ids = "a" })
            assert.is_nil(v)
            assert.equal("response field 'ids' is not a list", err.errmsg)
        end)

        it("done is true for any answer", function()
            assert.is_true(response.done({ errcode = 0 }))
        end)
    end)
end)
