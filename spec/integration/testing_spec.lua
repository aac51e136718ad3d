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

describe("wecom.testing, a service provider's side", function()
    local url = require "wecom.url"
    local core = require "wecom.core"
    local emu, http

    setup(function()
        emu = testing.start {}     -- the bundled fixture: a provider with a third-party app and a template
        http = core.http_session { ca_file = emu.ca_file, timeout = 10 }
    end)
    teardown(function()
        http:close()
        emu:stop()
    end)
    before_each(function()
        emu:reset()
    end)

    -- a person confirming one of the emulator's pages: link + the form's fields
    local function confirm(link, fields)
        local page = link:gsub("#.*$", "")
        local extra = { confirm = "1" }
        for k, v in pairs(fields) do
            extra[k] = v
        end
        local res = assert(http:request { method = "GET", url = page .. "&" .. url.encode_query(extra) })
        assert.equal(302, res.status, res.body)
        return url.parse_query(res.headers.location:match("%?(.*)$"))
    end

    it("gives a suite whose ticket is kept, so it gets its token at once", function()
        local suite = emu:suite()
        local def = emu:suite_info()
        assert.equal("wwSUITEORDERS01", suite.suite_id)
        assert.equal(def.suite_id, suite.suite_id)
        assert.is_false(def.customized)
        assert.is_string((suite:token()))
        assert.equal(1, emu:stats()["/cgi-bin/service/get_suite_token"])
        assert.equal(emu.base_url, suite.web_base_url)
        -- the secret is in no field and not in tostring
        for _, v in pairs(suite) do
            assert.is_not.equal(def.suite_secret, v)
        end
        assert.is_nil(tostring(suite):find(def.suite_secret, 1, true))
    end)

    it("gives a suite whose install link is the emulator's page, through to an authorized corp", function()
        local suite = emu:suite()
        local link = assert(suite:install_url { redirect_uri = "https://www.yunfan.example.com/installed",
                                                state = "s1", test = true })
        assert.equal(emu.base_url .. "/3rdapp/install?", link:sub(1, #emu.base_url + 16))
        local back = confirm(link, { corpid = "wwRETAILCORP01" })
        assert.equal("s1", back.state)
        local auth = assert(suite:authorize(back.auth_code))
        assert.equal("wwRETAILCORP01", auth.corpid)
        local corps = {}
        for c in suite:corps() do
            corps[#corps + 1] = c.corpid
        end
        assert.same({ "wwRETAILCORP01" }, corps)
        assert.is_table((assert(suite:corp("wwRETAILCORP01")):get("/cgi-bin/agent/get",
            { agentid = auth.agentid })))
    end)

    it("gives the 代开发 template by id or name; an unknown suite raises", function()
        local dk = emu:suite("dkSTOREPATROL01")
        assert.is_true(dk.customized)
        assert.equal("dkSTOREPATROL01", emu:suite(emu:suite_info("dkSTOREPATROL01").name).suite_id)
        assert.is_string((dk:token()))
        assert.has_error(function() emu:suite("wwNOSUCHSUITE") end,
            "emu:suite: no suite wwNOSUCHSUITE in the fixture")
    end)

    it("takes wecom.suite options on top", function()
        local dir = sh.tmpdir("wecom-testing-suite")
        local store = require("wecom").store.file(dir)
        local suite = emu:suite(nil, { store = store, retries = 0 })
        assert.equal(store, suite.store)
        assert.equal(0, suite.retries)
        -- the ticket went to that store: a second suite on it needs no push
        local again = require("wecom").suite { suite_id = suite.suite_id, suite_secret = emu:suite_info().suite_secret,
            base_url = emu.base_url, ca_file = emu.ca_file, store = store }
        assert.is_string((again:token()))
        os.execute("rm -rf " .. sh.quote(dir))
    end)

    it("forgets the ticket with emu:reset(), like the emulator", function()
        local suite = emu:suite()
        assert.is_string((suite:token()))
        emu:reset()
        local token, err = suite:token()
        assert.is_nil(token)
        assert.equal("token", err.kind)
        assert.is_string((emu:suite():token()))
    end)

    it("runs the provider example of docs/emulator.md in a project of its own", function()
        local doc = assert(sh.read_file("docs/emulator.md"))
        local example = doc:match("## Testing your code.-```lua\n(%-%- spec/provider_install_spec%.lua.-)```")
        assert.is_string(example, "the provider example is gone from docs/emulator.md")
        local project = sh.tmpdir("wecom-testing-project")
        assert(sh.run("mkdir -p " .. sh.quote(project .. "/spec")))
        sh.write_file(project .. "/spec/provider_install_spec.lua", example)
        local child = require "helpers.child"
        local root = sh.capture("pwd"):gsub("%s+$", "")
        local out = sh.capture("cd " .. sh.quote(project) .. " && LUA_PATH=" .. sh.quote(root .. "/lua/?.lua;" .. root
            .. "/lua/?/init.lua;;") .. " LUA_CPATH=" .. sh.quote((package.cpath:gsub("build/", root .. "/build/")))
            .. " " .. child.interpreter .. " /usr/bin/busted -o TAP 2>&1")
        os.execute("rm -rf " .. sh.quote(project))
        assert.matches("\n1%.%.2\n", "\n" .. out)
        assert.not_matches("not ok", out)
        assert.matches("ok 2 ", out)
    end)

    it("gives apps whose OAuth link is the emulator's page", function()
        local app = emu:app()
        local link = app:oauth_url { redirect_uri = "https://app.example.com/login", state = "x9" }
        assert.equal(emu.base_url .. "/connect/oauth2/authorize?", link:sub(1, #emu.base_url + 26))
        local user = emu.fixture.upstream.users[1]
        local back = confirm(link, { user = emu.fixture.upstream.corpid .. "/" .. user.userid })
        assert.equal("x9", back.state)
        local who = assert(app:user_by_code(back.code))
        assert.equal(user.userid, who.userid)
        assert.equal(emu.fixture.upstream.corpid, who.corpid)
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
