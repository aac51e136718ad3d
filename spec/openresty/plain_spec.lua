-- The OpenResty modules seen from plain Lua (no nginx): what must not be
-- picked, and the clear errors when they are used outside nginx.

describe("outside nginx", function()
    it("the transport is libcurl's", function()
        assert.equal("curl", require("wecom.transport").name)
    end)

    it("wecom.store.shdict says it needs nginx", function()
        local wecom = require "wecom"
        local ok, err = pcall(wecom.store.shdict, "wecom_tokens")
        assert.is_false(ok)
        assert.truthy(tostring(err):find("needs nginx with lua%-nginx%-module"))
    end)

    it("wecom.parallel does not hand tasks to ngx.thread", function()
        assert.is_false(require("wecom.ngx.parallel").available())
        local results = require("wecom").parallel({ function() return 1 end })
        assert.same({ ok = true, value = 1, n = 1, 1 }, results[1])
    end)
end)

describe("wecom.transport.ngx.split_url", function()
    local split = require("wecom.transport.ngx").split_url

    it("splits host, port and target", function()
        assert.same({ "qyapi.weixin.qq.com", 443, "/cgi-bin/gettoken?corpid=x" },
            { split("https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=x") })
        assert.same({ "localhost", 8443, "/" }, { split("https://localhost:8443") })
        assert.same({ "localhost", 8443, "/?a=b" }, { split("https://localhost:8443?a=b") })
        assert.same({ "::1", 9000, "/x" }, { split("https://[::1]:9000/x#fragment") })
    end)

    it("refuses what it cannot send", function()
        assert.is_nil(split("http://localhost/x"))
        assert.is_nil(split("https://"))
        assert.is_nil(split("https://host:port/x"))
        assert.is_nil(split("ftp://host/x"))
    end)
end)
