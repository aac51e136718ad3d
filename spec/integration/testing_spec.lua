-- wecom.testing, the test kit users' specs start the emulator with.

local testing = require "wecom.testing"
local receiver = require "helpers.receiver"
local sh = require "helpers.sh"

describe("wecom.testing", function()
    local emu

    setup(function()
        emu = testing.start { corps = 3 }
    end)
    teardown(function()
        emu:stop()
    end)
    before_each(function()
        emu:reset()
    end)

    it("starts a private emulator and says where", function()
        assert.matches("^https://localhost:%d+$", emu.base_url)
        assert.equal(tonumber(emu.base_url:match("%d+$")), emu.port)
        assert.equal(emu.dir .. "/ca.pem", emu.ca_file)
        assert.matches("^/tmp/wecom%-testing%.", emu.dir)
        assert.equal("wwUPSTREAMCORP", emu.fixture.upstream.corpid)
        assert.equal(3, #emu.fixture.downstream)
    end)

    it("gives clients for the fixture's apps", function()
        local app = emu:app()
        assert.equal(1000002, app.agentid)
        local shared = {}
        for corp in app:shared_corps { business_type = 1 } do
            shared[#shared + 1] = corp.corpid
        end
        assert.same({ "wwGEN000001", "wwGEN000002", "wwGEN000003" }, shared)
        assert.equal(1000003, emu:app(1000003).agentid)
        local ordinary = emu.fixture.upstream.apps[2]
        assert.equal(ordinary.agentid, emu:app(ordinary.name).agentid)
        assert.equal(0, emu:app(nil, { retries = 0 }).retries)
        assert.has_error(function() emu:app(42) end, "emu:app: no app 42 in the fixture")
    end)

    it("injects faults, moves the clock, counts calls, resets", function()
        local app = emu:app(nil, { retries = 0 })
        assert.is_string((app:token()))
        emu:fault { path = "/cgi-bin/corpgroup/corp/get_chain_list", errcode = 45009 }
        local list, err = app.chain:list()
        assert.is_nil(list)
        assert.equal("rate_limit", err.kind)
        assert.is_table((app.chain:list()))
        assert.same({ ["/cgi-bin/gettoken"] = 1, ["/cgi-bin/corpgroup/corp/get_chain_list"] = 2 }, emu:stats())
        emu:clock(7200)
        assert.is_table((app.chain:list()))
        assert.equal(2, emu:stats()["/cgi-bin/gettoken"])
        emu:reset()
        assert.same({}, emu:stats())
        assert.equal(20, emu:latency(20).ms)
    end)

    it("pushes an encrypted event to a URL", function()
        local r = receiver.start()
        local answer = emu:push { url = r.url, event = "share_chain_change" }
        local raw = r:wait()
        assert.equal(200, answer.status)
        assert.equal("success", answer.body)
        local info = emu:app_info()
        local cb = require("wecom").callback.new { token = info.callback.token, aes_key = info.callback.aes_key,
                                                    receive_id = emu.fixture.upstream.corpid }
        local target, body = raw:match("^POST (%S+) HTTP/1%.%d\r\n.-\r\n\r\n(.*)$")
        local event = assert(cb:decrypt(target:match("%?(.*)$"), body))
        assert.equal("share_chain_change", event.type)
    end)

    it("mints OAuth codes", function()
        local code = emu:oauth_code { userid = emu.fixture.upstream.users[1].userid }
        local who = assert(emu:app():user_by_code(code))
        assert.equal(emu.fixture.upstream.users[1].userid, who.userid)
    end)

    it("raises when a control call is refused", function()
        assert.has_error(function() emu:fault { path = "/x", count = -1 } end)
        assert.has_error(function() emu:clock("soon") end, "emu:clock: seconds must be a number (got string)")
    end)
end)

describe("wecom.testing.start", function()
    it("takes a fixture as a table, and stop is harmless twice", function()
        local fx = require("wecom.json").decode(sh.capture("lua5.4 bin/wecom-emulator fixture"))
        fx.upstream.corp_name = "测试集团"
        local emu = testing.start { fixture = fx }
        assert.equal("测试集团", emu.fixture.upstream.corp_name)
        local dir = emu.dir
        emu:stop()
        emu:stop()
        assert.is_nil(sh.read_file(dir .. "/ca.pem"))
        assert.has_error(function() emu:stats() end, "wecom.testing: the emulator was stopped")
    end)

    it("refuses bad options and says why it could not start", function()
        assert.has_error(function() testing.start { corps = 0 } end,
            "wecom.testing.start: opts.corps must be an integer >= 1 (got number 0)")
        assert.has_error(function() testing.start { fixtures = "x" } end,
            "wecom.testing.start: unknown option 'fixtures'")
        assert.has_error(function() testing.start { corps = 2, fixture = "f.json" } end,
            "wecom.testing.start: give opts.fixture or opts.corps, not both")
        local ok, err = pcall(testing.start, { nginx = "/nonexistent/nginx" })
        assert.is_false(ok)
        assert.matches("wecom.testing.start: the emulator did not start", err, 1, true)
    end)
end)
