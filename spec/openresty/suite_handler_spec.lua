-- wecom.ngx.callback_handler{ suite = suite, router = router } in a real
-- nginx with 2 workers and a shdict store: the emulator posts the ticket and
-- the installs to it as WeCom does; the handler answers "success" at once,
-- the bookkeeping and the router run after; both workers then use the one
-- suite token and the one corp token.  spec/openresty/suite_site.lua is the
-- nginx side.

local cjson = require "cjson"
local callback = require "wecom.callback"
local core = require "wecom.core"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"
local pv = require "helpers.provider"

local CONF = nginx.conf {
    workers = 2,
    env = { "SPEC_BASE_URL", "SPEC_SUITE_ID", "SPEC_SUITE_SECRET", "SPEC_SUITE_TOKEN", "SPEC_SUITE_AES_KEY",
            "SPEC_PROVIDER_CORPID" },
    dicts = { wecom = "4m", results = "1m" },
    trusted = "${emu_dir}/trusted.pem",
    http = [[
    init_by_lua_block {
        require("suite_site").init()
    }
]],
    servers = { { text = [[
        location = /suite {
            content_by_lua_block { require("suite_site").handle() }
        }
        location = /corp {
            content_by_lua_block { require("suite_site").corp() }
        }
        location = /seen {
            content_by_lua_block { require("suite_site").seen() }
        }
]] } },
}

describe("wecom.ngx.callback_handler for a suite", function()
    local emu, fx, def, site

    local function control(path, body)
        local status, data = emu:request("POST", "/__emulator/" .. path, { body = body })
        assert.equal(200, status, cjson.encode(data))
        return data
    end

    local function seen()
        local status, body = site:request("GET", "/seen")
        assert.equal(200, status)
        return cjson.decode(body)
    end

    -- the bookkeeping runs after the answer: wait for the router to see it
    local function wait_seen(key, n)
        for _ = 1, 500 do
            local s = seen()
            if (s[key] or 0) >= n then
                return s
            end
            core.sleep(0.01)
        end
        error("the router never saw " .. key .. " " .. n .. " times; error.log:\n" .. site:log())
    end

    setup(function()
        emu = emulator.new {}
        fx = emu:fixture()
        def = pv.suite(fx, false)
        site = nginx.start {
            conf = (CONF:gsub("%${emu_dir}", emu.dir)),
            env = {
                SPEC_BASE_URL = "https://localhost:" .. emu.port,
                SPEC_SUITE_ID = def.suite_id, SPEC_SUITE_SECRET = def.suite_secret,
                SPEC_SUITE_TOKEN = def.callback.token, SPEC_SUITE_AES_KEY = def.callback.aes_key,
                SPEC_PROVIDER_CORPID = fx.provider.corpid,
            },
        }
    end)

    teardown(function()
        if site then site:stop() end
        if emu then emu:stop() end
    end)

    it("keeps the ticket and the installs; both workers share one suite token and one corp token", function()
        local url = site:url("/suite")
        local ticket = control("suite_ticket", { suite_id = def.suite_id, url = url })
        assert.equal(200, ticket.status)
        assert.equal("success", ticket.reply)
        wait_seen("n:suite_ticket", 1)

        local install = control("authorize", { suite_id = def.suite_id, corpid = "wwRETAILCORP01",
            action = "create", url = url })
        assert.equal(200, install.status)
        assert.equal("success", install.reply)
        local s = wait_seen("n:create_auth", 1)
        assert.same({ corpid = "wwRETAILCORP01", agentid = install.agentid, has_code = true },
            s["last:create_auth"])

        -- both workers, many requests: one suite token, one corp token
        local results = site:parallel_get("/corp?corpid=wwRETAILCORP01", 40)
        assert.equal(40, #results)
        for _, r in ipairs(results) do
            assert.equal(200, r.status, r.body)
            assert.equal(install.agentid, cjson.decode(r.body).agentid)
        end
        local stats = emu:stats()
        assert.equal(1, stats["/cgi-bin/service/get_suite_token"])
        assert.equal(1, stats["/cgi-bin/service/get_corp_token"])
        assert.equal(1, stats["/cgi-bin/service/v2/get_permanent_code"])

        -- an uninstall: the corp is forgotten in both workers
        local cancel = control("authorize", { suite_id = def.suite_id, corpid = "wwRETAILCORP01",
            action = "cancel", url = url })
        assert.equal("success", cancel.reply)
        wait_seen("n:cancel_auth", 1)
        local status, body = site:request("GET", "/corp?corpid=wwRETAILCORP01")
        assert.equal(404, status)
        assert.equal("token", cjson.decode(body).kind)

        -- nothing secret in error.log
        local log = site:log()
        for _, secret in ipairs { def.suite_secret, ticket.suite_ticket } do
            assert.is_nil(log:find(secret, 1, true))
        end
        assert.same({}, site:error_lines())
    end)

    it("answers the URL check with the provider's corpid, and refuses bad POSTs", function()
        local cb = callback.new { token = def.callback.token, aes_key = def.callback.aes_key,
            receive_id = fx.provider.corpid }
        local query, echo = cb:encrypt_echostr()
        local status, body = site:request("GET", "/suite?" .. callback.build_query(query))
        assert.equal(200, status)
        assert.equal(echo, body)

        -- a message for a corp that never installed the suite
        local stranger = callback.new { token = def.callback.token, aes_key = def.callback.aes_key,
            receive_id = "wwSTRANGER" }
        local sbody, squery = stranger:encrypt_event("<xml><MsgType>text</MsgType></xml>")
        status = site:request("POST", "/suite?" .. callback.build_query(squery), { body = sbody })
        assert.equal(403, status)
        -- a bad signature
        squery.msg_signature = ("0"):rep(40)
        status = site:request("POST", "/suite?" .. callback.build_query(squery), { body = sbody })
        assert.equal(403, status)
    end)
end)
