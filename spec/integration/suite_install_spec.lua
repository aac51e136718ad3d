-- wecom.suite against the emulator: the whole install story of a third-party
-- app (ticket push, suite token, pre_auth_code, test session, the install
-- page, the permanent code, the corp's client, an API call), installs
-- announced by create_auth, change_auth, cancel_auth and re-install, a
-- 代开发 app and the reset of its secret, and shares to downstream corps.

local emu = require "helpers.emulator"
local child = require "helpers.child"
local pv = require "helpers.provider"
local sh = require "helpers.suite"
local collect = require("wecom.pager").collect
local wurl = require "wecom.url"

-- every string an object shows: tostring and its string fields
local function shown(v)
    local parts = { tostring(v) }
    if type(v) == "table" then
        for k, x in pairs(v) do
            if type(x) == "string" and k ~= "permanent_code" then
                parts[#parts + 1] = x
            end
        end
    end
    return table.concat(parts, "\n")
end

local function corpids(suite)
    local ids = {}
    for corp in suite:corps() do
        ids[#ids + 1] = corp.corpid
    end
    table.sort(ids)
    return ids
end

describe("wecom.suite", function()
    local info, fx, third

    sh.hooks(function(...) info, fx, third = ... end)

    it("installs from the provider's site: ticket, token, pre_auth_code, test session, page, code, client, call",
        function()
        local suite = sh.new(info, fx, false)

        -- no ticket yet: a token error, and no request to WeCom
        local tok, err = suite:token()
        assert.is_nil(tok)
        assert.equal("token", err.kind)
        assert.equal(40085, err.errcode)
        assert.matches("no suite_ticket", err.errmsg)
        assert.is_nil(emu.stats()["/cgi-bin/service/get_suite_token"])

        -- WeCom pushes a ticket to the 指令回调 URL
        local event, reply = sh.push(suite, "suite_ticket")
        assert.equal("success", reply)
        assert.equal("suite_ticket", event.type)
        tok = assert(suite:token())
        assert.equal(tok, (suite:token()))
        assert.equal(1, emu.stats()["/cgi-bin/service/get_suite_token"])

        -- the install link of a test install
        local redirect = "https://" .. third.install_domain .. "/wecom/installed"
        local link, expires_at = assert(suite:install_url { redirect_uri = redirect, state = "st1", test = true })
        assert.is_number(expires_at)
        assert.equal(info.base_url .. "/3rdapp/install?", link:sub(1, #info.base_url + 16))
        local q = wurl.parse_query(link)
        assert.equal(third.suite_id, q.suite_id)
        assert.equal(redirect, q.redirect_uri)
        local path = link:sub(#info.base_url + 1)
        local status, _, res = emu.request("GET", path)
        assert.equal(200, status)
        assert.truthy(res.body:find('data-auth-type="1"', 1, true))

        -- the admin confirms; WeCom redirects back with the auth code
        q.confirm, q.corpid = "1", "wwRETAILCORP01"
        status, _, res = emu.request("GET", "/3rdapp/install", { query = q })
        assert.equal(302, status)
        local back = wurl.parse_query(res.headers.location)
        assert.equal("st1", back.state)

        local auth = assert(suite:authorize(back.auth_code))
        assert.is_nil(auth.error)
        assert.equal("wwRETAILCORP01", auth.corpid)
        assert.equal("st1", auth.state)
        assert.is_number(auth.agentid)
        assert.is_string(auth.corp_name)
        assert.equal("qianwei", auth.auth_user_info.userid)
        assert.is_string(auth.permanent_code)
        assert.equal(auth.agentid, auth.auth_info.agent[1].agentid)
        assert.is_nil(shown(auth):find(auth.permanent_code, 1, true))
        assert.equal("wecom.auth(suite_id=" .. third.suite_id .. ", corpid=wwRETAILCORP01, agentid="
            .. ("%d"):format(auth.agentid) .. ")", tostring(auth))
        local stats = emu.stats()
        assert.equal(1, stats["/cgi-bin/service/v2/get_permanent_code"])
        assert.equal(1, stats["/cgi-bin/service/get_auth_info"])

        -- the corp's client: its token from get_corp_token
        local corp = assert(suite:corp("wwRETAILCORP01"))
        assert.equal("corp", corp.kind)
        assert.equal(auth.agentid, corp.agentid)
        local app = assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert.equal(auth.agentid, app.agentid)
        local user = assert(corp:get("/cgi-bin/user/get", { userid = "dongxue" }))
        assert.equal("dongxue", user.userid)
        assert.equal(1, emu.stats()["/cgi-bin/service/get_corp_token"])
        assert.is_nil(shown(corp):find(auth.permanent_code, 1, true))
        assert.is_nil(shown(suite):find(auth.permanent_code, 1, true))

        assert.same({ "wwRETAILCORP01" }, corpids(suite))
        local listed = suite:corps()()
        assert.is_nil(listed.permanent_code)
        assert.equal(auth.agentid, listed.agentid)
        assert.equal("st1", listed.state)
    end)

    it("exchanges the AuthCode of create_auth in receive; an event sent again is not exchanged twice", function()
        local suite = sh.ready(sh.new(info, fx, false))
        local event, reply, posted = sh.push(suite, "authorize",
            { corpid = "wwRETAILCORP02", action = "create", state = "qr7" })
        assert.equal("success", reply)
        assert.equal("create_auth", event.type)
        assert.equal(third.suite_id, event.SuiteId)
        local auth = event.auth
        assert.equal("wwRETAILCORP02", auth.corpid)
        assert.equal("qr7", auth.state)
        assert.equal(posted.agentid, auth.agentid)
        assert.is_string(auth.permanent_code)

        -- WeCom saw no answer in time and posts it again
        local again = assert(suite:receive(posted.query, posted.body))
        assert.is_true(again.duplicate)
        assert.equal("wwRETAILCORP02", again.auth.corpid)
        assert.is_nil(again.auth.permanent_code)
        assert.equal(1, emu.stats()["/cgi-bin/service/v2/get_permanent_code"])

        local corp = assert(suite:corp("wwRETAILCORP02"))
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
    end)

    it("change_auth reads the auth info again", function()
        local suite = sh.ready(sh.new(info, fx, false))
        sh.install(suite, "wwRETAILCORP01")
        local event, reply = sh.push(suite, "authorize", { corpid = "wwRETAILCORP01", action = "change",
            privilege = { level = 2, allow_user = { "dongxue" } } })
        assert.equal("success", reply)
        assert.equal("change_auth", event.type)
        assert.equal("wwRETAILCORP01", event.corpid)
        assert.same({ "dongxue" }, event.auth_info.auth_info.agent[1].privilege.allow_user)
        assert.equal(2, emu.stats()["/cgi-bin/service/get_auth_info"])
    end)

    it("change_auth of a corp the store never saw passes through", function()
        local suite = sh.ready(sh.new(info, fx, false))
        local other = sh.ready(sh.new(info, fx, false))   -- another store
        sh.install(other, "wwRETAILCORP01")
        local event, reply = sh.push(suite, "authorize", { corpid = "wwRETAILCORP01", action = "change" })
        assert.equal("success", reply)
        assert.is_nil(event.auth_info)
        assert.same({}, corpids(suite))
    end)

    it("cancel_auth forgets the corp and its token; a re-install works with its new code", function()
        local suite = sh.ready(sh.new(info, fx, false))
        local first = sh.install(suite, "wwRETAILCORP01").auth
        local corp = assert(suite:corp("wwRETAILCORP01"))
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))

        local event, reply = sh.push(suite, "authorize", { corpid = "wwRETAILCORP01", action = "cancel" })
        assert.equal("success", reply)
        assert.equal("cancel_auth", event.type)
        assert.same({}, corpids(suite))
        local none, err = suite:corp("wwRETAILCORP01")
        assert.is_nil(none)
        assert.equal("token", err.kind)
        assert.matches("has not authorized", err.errmsg)
        -- a client made before: its token was dropped, and no code is left
        local data, cerr = corp:get("/cgi-bin/agent/get", { agentid = corp.agentid })
        assert.is_nil(data)
        assert.equal("token", cerr.kind)

        local second = sh.install(suite, "wwRETAILCORP01").auth
        assert.are_not.equal(first.permanent_code, second.permanent_code)
        assert.are_not.equal(first.agentid, second.agentid)
        local again = assert(suite:corp("wwRETAILCORP01"))
        local app = assert(again:get("/cgi-bin/agent/get", { agentid = again.agentid }))
        assert.equal(second.agentid, app.agentid)
        assert.equal(2, emu.stats()["/cgi-bin/service/get_corp_token"])
    end)

    it("代开发: the token from gettoken with the permanent code; reset_permanent_code rotates it", function()
        local suite = sh.ready(sh.new(info, fx, true))
        assert.is_true(suite.customized)
        local first = sh.install(suite, "wwRETAILCORP02").auth
        local corp = assert(suite:corp("wwRETAILCORP02"))
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        local stats = emu.stats()
        assert.equal(1, stats["/cgi-bin/gettoken"])
        assert.is_nil(stats["/cgi-bin/service/get_corp_token"])

        -- the provider clicks 重新获取secret
        local event, reply = sh.push(suite, "authorize", { corpid = "wwRETAILCORP02", action = "reset" })
        assert.equal("success", reply)
        assert.equal("reset_permanent_code", event.type)
        local second = event.auth
        assert.equal("wwRETAILCORP02", second.corpid)
        assert.are_not.equal(first.permanent_code, second.permanent_code)
        assert.is_nil(tostring(second):find(second.permanent_code, 1, true))
        -- the old secret is dead at WeCom; the client made before the reset
        -- reads the new one from the store
        local _, old = emu.request("GET", "/cgi-bin/gettoken",
            { query = { corpid = "wwRETAILCORP02", corpsecret = first.permanent_code } })
        assert.equal(40001, old.errcode)
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert.equal(3, emu.stats()["/cgi-bin/gettoken"])
    end)

    it("代开发: a secret reset right after suite:corp, before the client's first token", function()
        local suite = sh.ready(sh.new(info, fx, true))
        local first = sh.install(suite, "wwRETAILCORP02").auth
        local corp = assert(suite:corp("wwRETAILCORP02"))      -- the record as it was
        local event = sh.push(suite, "authorize", { corpid = "wwRETAILCORP02", action = "reset" })
        assert.are_not.equal(first.permanent_code, event.auth.permanent_code)
        -- the client gets its token with the new secret all the same
        assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        local tok = assert(corp:token())
        local _, app = emu.request("GET", "/cgi-bin/agent/get",
            { query = { access_token = tok, agentid = corp.agentid } })
        assert.equal(0, app.errcode)
    end)

    it("the install link is for third-party apps: a 代开发 template raises", function()
        local suite = sh.ready(sh.new(info, fx, true))
        assert.has_error(function()
            suite:install_url { redirect_uri = "https://x.example.com/" }
        end, "wecom.suite:install_url: a 代开发 template is installed from its QR code (provider:customized_auth_url)")
    end)

    it("a share installs the app in each downstream corp; the upstream's each_shared_corp reaches them", function()
        local suite = sh.ready(sh.new(info, fx, false))
        sh.install(suite, "wwUPSTREAMCORP")
        local res = pv.ok_control("share", { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP",
            to = { "wwDOWNCORP01", "wwDOWNCORP02" } })
        local types = {}
        for _, ev in ipairs(res.events) do
            local event, reply = suite:receive(ev.query, ev.body)
            assert.equal("success", reply, tostring(reply))
            types[#types + 1] = event.type
        end
        assert.same({ "create_auth", "create_auth", "share_chain_change" }, types)
        assert.same({ "wwDOWNCORP01", "wwDOWNCORP02", "wwUPSTREAMCORP" }, corpids(suite))

        local up = assert(suite:corp("wwUPSTREAMCORP"))
        local shares = collect(up:shared_corps { business_type = 1 })
        assert.equal(2, #shares)
        local results = up:each_shared_corp(function(down, corp)
            assert.equal("corp", down.kind)
            local app = assert(down:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
            return down.corpid .. ":" .. app.agentid
        end, { business_type = 1 })
        local seen = {}
        for i, r in ipairs(results) do
            assert.is_true(r.ok, tostring(r.err))
            seen[i] = r.value
        end
        table.sort(seen)
        assert.same({ "wwDOWNCORP01:" .. shares[1].agentid, "wwDOWNCORP02:" .. shares[2].agentid }, seen)
        -- one corp token each: the upstream and the two downstream corps
        assert.equal(3, emu.stats()["/cgi-bin/service/get_corp_token"])
        assert.is_nil(emu.stats()["/cgi-bin/corpgroup/corp/gettoken"])
    end)

    it("a corp client signs JSAPI pages with its corp's tickets", function()
        local suite = sh.ready(sh.new(info, fx, false))
        local auth = sh.install(suite, "wwRETAILCORP01").auth
        local corp = assert(suite:corp("wwRETAILCORP01"))
        local page = "https://" .. third.redirect_domain .. "/shop?x=1"
        local config = assert(corp:jsapi_config(page))
        assert.equal("wwRETAILCORP01", config.appId)
        local agent = assert(corp:agent_config(page))
        assert.equal("wwRETAILCORP01", agent.corpid)
        assert.equal(auth.agentid, agent.agentid)
        -- the signature is over the corp's ticket, as WeCom's JS-SDK computes it
        local corp_token = assert(corp:token())
        local _, ticket = emu.request("GET", "/cgi-bin/get_jsapi_ticket", { query = { access_token = corp_token } })
        local plain = "jsapi_ticket=" .. ticket.ticket .. "&noncestr=" .. config.nonceStr .. "&timestamp="
            .. config.timestamp .. "&url=" .. page
        assert.equal(require("wecom.core").sha1_hex(plain), config.signature)
        assert.equal(2, emu.stats()["/cgi-bin/get_jsapi_ticket"])   -- ours, and the one just above
    end)

    it("a 代开发 app in the upstream corp calls the 上下游 APIs", function()
        local suite = sh.ready(sh.new(info, fx, true))
        sh.install(suite, "wwUPSTREAMCORP")
        local corp = assert(suite:corp("wwUPSTREAMCORP"))
        local chains = assert(corp.chain:list())
        assert.is_table(chains)
        assert.same({}, collect(corp:shared_corps { business_type = 1 }))
    end)

    it("examples/provider_install.lua runs against the emulator", function()
        -- the spec's own interpreter (the sanitized one under make check-asan)
        local cmd = child.command("examples/provider_install.lua", {},
            { WECOM_BASE_URL = info.base_url, WECOM_CA_FILE = info.ca_file }) .. " 2>&1"
        local p = assert(io.popen(cmd))
        local out = p:read("*a")
        local ok = p:close()
        assert.is_true(ok, out)
        assert.matches("redirected back with auth_code", out)
        assert.matches("each_corp: 2 corps answered", out)
        assert.matches("reset_permanent_code: a new secret", out)
        assert.matches('suite:corp%("wwRETAILCORP02"%) %-> nil, wecom token error', out)
    end)

    it("each_corp walks every authorized corp with its client", function()
        local suite = sh.ready(sh.new(info, fx, false))
        for _, corpid in ipairs { "wwRETAILCORP01", "wwRETAILCORP02", "wwDOWNCORP01" } do
            sh.install(suite, corpid)
        end
        local results = suite:each_corp(function(client, corp)
            assert.equal(client.corpid, corp.corpid)
            local app = assert(client:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
            return corp.corpid, app.agentid
        end, { concurrency = 2 })
        assert.equal(3, #results)
        local ids = {}
        for _, r in ipairs(results) do
            assert.is_true(r.ok, tostring(r.err))
            ids[#ids + 1] = r.value
        end
        table.sort(ids)
        assert.same({ "wwDOWNCORP01", "wwRETAILCORP01", "wwRETAILCORP02" }, ids)
        assert.equal(3, emu.stats()["/cgi-bin/service/get_corp_token"])
    end)
end)
