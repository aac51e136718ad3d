-- wecom.transport's options: one declaration, the same names and defaults
-- for the curl and the cosocket transport.

local transport = require "wecom.transport"

describe("wecom.transport options", function()
    it("fills in the defaults", function()
        assert.same({
            timeout = 5, connect_timeout = 5, max_body = 8 * 1024 * 1024,
            user_agent = "wecom-lua/" .. require("wecom.version"),
        }, transport.options("x.new", {}))
    end)

    it("keeps connect_timeout within timeout", function()
        assert.equal(2, transport.options("x.new", { timeout = 2 }).connect_timeout)
        assert.equal(2, transport.options("x.new", { timeout = 2, connect_timeout = 9 }).connect_timeout)
        assert.equal(0.5, transport.options("x.new", { timeout = 2, connect_timeout = 0.5 }).connect_timeout)
    end)

    it("passes every option through, in a new table", function()
        local opts = { timeout = 3, connect_timeout = 1, max_body = 100, user_agent = "ua",
            ca_file = "/ca.pem", proxy = "http://proxy:3128", noproxy = "" }
        local o = transport.options("x.new", opts)
        assert.same(opts, o)
        assert.are_not.equal(opts, o)
    end)

    it("raises naming the call and the option", function()
        local function raised(opts)
            local ok, err = pcall(transport.options, "wecom.transport.curl.new", opts)
            assert.is_false(ok)
            return err
        end
        assert.matches("wecom.transport.curl.new: opts must be a table %(got nil%)", raised(nil))
        assert.matches("wecom.transport.curl.new: unknown option 'retries'", raised { retries = 1 })
        assert.matches("wecom.transport.curl.new: opts.timeout must be a number of seconds"
            .. " in %(0, 86400%] %(got number %-1%)", raised { timeout = -1 })
        assert.matches("opts.max_body must be a number of bytes from 1 to 1073741824 %(got number 1.5%)",
            raised { max_body = 1.5 })
        assert.matches("opts.user_agent must be a non%-empty string", raised { user_agent = "" })
    end)

    it("is what the curl transport checks", function()
        local curl = require "wecom.transport.curl"
        local ok, err = pcall(function()
            local t = curl.new { max_body = 0 }   -- the error points at this line
            return t
        end)
        assert.is_false(ok)
        assert.matches("^[^:]*transport_options_spec.lua:%d+: wecom.transport.curl.new: opts.max_body must be", err)
    end)

    it("outside nginx picks libcurl", function()
        assert.equal("curl", transport.name)
        assert.equal(require("wecom.transport.curl").new, transport.new)
    end)
end)
