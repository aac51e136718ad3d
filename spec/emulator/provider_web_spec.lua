-- The two web pages at their real paths: the install page a provider's site
-- sends an admin to, and the OAuth page. Each is fetched, its form read out
-- of the HTML and submitted as a browser would, and the redirect followed
-- into the APIs; bad links get WeCom's error page.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local wurl = require "wecom.url"

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', ["#39"] = "'" }

local function unhtml(s)
    return (s:gsub("&(#?%w+);", function(e) return ENTITIES[e] end))
end

-- form(html) -> { action, method, hidden = { name = value }, select = name, options = { values } }
local function read_form(html)
    local f = { hidden = {}, options = {} }
    f.method, f.action = html:match('<form method="(%w+)" action="([^"]*)">')
    for name, value in html:gmatch('<input type="hidden" name="([^"]*)" value="([^"]*)">') do
        f.hidden[unhtml(name)] = unhtml(value)
    end
    f.select = html:match('<select name="([^"]*)">')
    for value in html:gmatch('<option value="([^"]*)"') do
        f.options[#f.options + 1] = unhtml(value)
    end
    return f
end

-- submit(form, choice) -> status, location: the form POSTed as a browser does
local function submit(f, choice)
    local fields = {}
    for k, v in pairs(f.hidden) do fields[k] = v end
    fields[f.select] = choice
    local status, _, res = emu.request("POST", f.action, { raw_body = wurl.encode_query(fields),
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    return status, res.headers.location, res
end

local function page(path, query)
    local status, _, res = emu.request("GET", path, { query = query })
    return status, res.body, res
end

local function error_code(html)
    return tonumber(html:match('<span id="errcode">(%d+)</span>'))
end

-- variant(good)(k, v) -> a copy of the link good with k set to v (nil: left out)
local function variant(good)
    return function(k, v)
        local q = {}
        for key, val in pairs(good) do q[key] = val end
        q[k] = v
        return q
    end
end

-- each case { query, errcode }: WeCom's error page with that code, no redirect
local function error_pages(path, cases)
    for _, c in ipairs(cases) do
        local status, html, res = page(path, c[1])
        assert.equal(200, status)
        assert.is_nil(res.headers.location)
        assert.equal(c[2], error_code(html))
    end
end

local function contains(list, v)
    for _, x in ipairs(list) do
        if x == v then return true end
    end
    return false
end

describe("emulator web pages", function()
    local fx, third, dk

    pv.hooks(function(f, t, d)
        fx, third, dk = f, t, d
    end)

    describe("the install page /3rdapp/install", function()
        local function link(token, extra)
            local pre = pv.service("GET", "get_pre_auth_code", token).pre_auth_code
            local q = { suite_id = third.suite_id, pre_auth_code = pre,
                        redirect_uri = "https://" .. third.install_domain .. "/wecom/installed", state = "st42" }
            for k, v in pairs(extra or {}) do q[k] = v end
            return q
        end

        it("ticket, suite token, pre_auth_code, test session, the page, confirm, permanent code, API call", function()
            local token = pv.suite_token(third)
            local q = link(token)
            assert.equal(0, pv.service("POST", "set_session_info", token,
                { pre_auth_code = q.pre_auth_code, session_info = { auth_type = 1 } }).errcode)

            local status, html, res = page("/3rdapp/install", q)
            assert.equal(200, status)
            assert.matches("^text/html", res.headers["content-type"])
            assert.truthy(html:find(third.name, 1, true))
            assert.truthy(html:find('data-auth-type="1"', 1, true))
            assert.truthy(html:find("测试安装", 1, true))
            local f = read_form(html)
            assert.equal("post", f.method)
            assert.equal("/3rdapp/install", f.action)
            assert.equal(q.pre_auth_code, f.hidden.pre_auth_code)
            assert.equal(q.redirect_uri, f.hidden.redirect_uri)
            assert.equal("corpid", f.select)
            assert.is_true(contains(f.options, "wwRETAILCORP01"))
            assert.is_true(contains(f.options, "wwUPSTREAMCORP"))

            local st, location = submit(f, "wwRETAILCORP01")
            assert.equal(302, st)
            assert.equal(q.redirect_uri .. "?", location:sub(1, #q.redirect_uri + 1))
            local back = wurl.parse_query(location)
            assert.equal("600", back.expires_in)
            assert.equal("st42", back.state)
            assert.is_string(back.auth_code)

            local data = pv.service("POST", "get_permanent_code", token, { auth_code = back.auth_code })
            assert.equal(0, data.errcode)
            assert.equal("wwRETAILCORP01", data.auth_corp_info.corpid)
            assert.equal("qianwei", data.auth_user_info.userid)
            assert.equal("st42", data.state)
            local corp_token = pv.corp_token(third, token, "wwRETAILCORP01", data.permanent_code)
            local _, user = emu.api("GET", "/cgi-bin/user/get", corp_token, { userid = "dongxue" })
            assert.equal(0, user.errcode)

            -- the corp has it now: the next link does not offer it; the code is used up
            local _, html2 = page("/3rdapp/install", link(token))
            assert.is_false(contains(read_form(html2).options, "wwRETAILCORP01"))
            local again, _, res2 = submit(f, "wwRETAILCORP02")
            assert.equal(200, again)
            assert.equal(40077, error_code(res2.body))
        end)

        it("a formal install by default; a GET with confirm=1 does what the form does", function()
            local token = pv.suite_token(third)
            local q = link(token, { redirect_uri = "https://" .. third.install_domain .. "/cb?x=1#done" })
            local _, html = page("/3rdapp/install", q)
            assert.truthy(html:find('data-auth-type="0"', 1, true))
            q.confirm, q.corpid, q.userid = "1", "wwRETAILCORP01", "dongxue"
            local status, _, res = emu.request("GET", "/3rdapp/install", { query = q })
            assert.equal(302, status)
            local location = res.headers.location
            -- the query goes before the fragment, after the one already there
            assert.matches("^https://www%.yunfan%.example%.com/cb%?x=1&", location)
            assert.matches("#done$", location)
            local back = wurl.parse_query(location:match("^[^#]*"))
            assert.equal("1", back.x)
            local data = pv.service("POST", "get_permanent_code", token, { auth_code = back.auth_code })
            assert.equal("dongxue", data.auth_user_info.userid)
        end)

        it("escapes what it shows", function()
            local token = pv.suite_token(third)
            local q = link(token,
                { redirect_uri = "https://" .. third.install_domain .. '/x"><script>alert(1)</script>' })
            local status, html = page("/3rdapp/install", q)
            assert.equal(200, status)
            assert.is_nil(html:find("<script>", 1, true))
            assert.equal(q.redirect_uri, read_form(html).hidden.redirect_uri)
        end)

        it("answers a bad link with WeCom's error page", function()
            local token = pv.suite_token(third)
            local good = link(token)
            local with = variant(good)
            error_pages("/3rdapp/install", {
                { with("suite_id", "wwNOSUCH"), 40083 },
                { with("suite_id", dk.suite_id), 40083 },
                { with("pre_auth_code", "nope"), 40077 },
                { with("redirect_uri", "https://evil.example.com/x"), 50001 },
                { with("redirect_uri", "javascript:alert(1)"), 50001 },
                { with("state", "has space"), 84025 },
            })
            local q = with("pre_auth_code", nil)
            assert.equal(40077, error_code(select(2, page("/3rdapp/install", q))))
            q = with("redirect_uri", nil)
            assert.equal(50001, error_code(select(2, page("/3rdapp/install", q))))
            -- confirming for a corp that cannot install, or an admin who is not there
            for _, c in ipairs {
                { corpid = "wwDOWNCORP05" }, { corpid = "wwRETAILCORP01", userid = "nobody" }, {},
            } do
                local f = with("confirm", "1")
                for k, v in pairs(c) do f[k] = v end
                local status, html, res = page("/3rdapp/install", f)
                assert.equal(200, status)
                assert.is_nil(res.headers.location)
                assert.is_number(error_code(html))
            end
            -- the refusals did not use the code up
            local f = with("confirm", "1")
            f.corpid = "wwRETAILCORP02"
            assert.equal(302, (emu.request("GET", "/3rdapp/install", { query = f })))
            assert.equal(405, (emu.request("PUT", "/3rdapp/install", { query = good, raw_body = "" })))
        end)
    end)

    describe("the OAuth page /connect/oauth2/authorize", function()
        local function oauth_link(appid, domain, extra)
            local q = { appid = appid, redirect_uri = "https://" .. domain .. "/oauth/back",
                        response_type = "code", scope = "snsapi_base", state = "o1" }
            for k, v in pairs(extra or {}) do q[k] = v end
            return q
        end

        it("a third-party app: appid = suite_id, members of the corps that installed it", function()
            local inst = pv.install(third, "wwRETAILCORP01")
            local q = oauth_link(third.suite_id, third.redirect_domain, { scope = "snsapi_privateinfo" })
            local status, html = page("/connect/oauth2/authorize", q)
            assert.equal(200, status)
            local f = read_form(html)
            assert.equal("user", f.select)
            assert.is_true(contains(f.options, "wwRETAILCORP01/qianwei"))
            assert.is_false(contains(f.options, "wwRETAILCORP02/fengtao"))
            assert.is_true(contains(f.options, "visitor"))

            local st, location = submit(f, "wwRETAILCORP01/qianwei")
            assert.equal(302, st)
            local back = wurl.parse_query(location)
            assert.equal("o1", back.state)
            local who = pv.service("GET", "auth/getuserinfo3rd", inst.token, { code = back.code })
            assert.equal(0, who.errcode)
            assert.equal("wwRETAILCORP01", who.corpid)
            assert.equal("qianwei", who.userid)
            assert.equal(inst.answer.auth_user_info.open_userid, who.open_userid)
            assert.is_string(who.user_ticket)
            local detail = pv.service("POST", "auth/getuserdetail3rd", inst.token, { user_ticket = who.user_ticket })
            assert.equal(0, detail.errcode)
            assert.equal("qianwei", detail.userid)
            -- apps of today get the userid for a name
            assert.equal("qianwei", detail.name)
            -- the code is the suite's, and single use
            assert.equal(40029, pv.service("GET", "auth/getuserinfo3rd", inst.token, { code = back.code }).errcode)

            -- a visitor who is no member: an openid
            local _, visitor = submit(f, "visitor")
            local v = pv.service("GET", "auth/getuserinfo3rd", inst.token,
                { code = wurl.parse_query(visitor).code })
            assert.is_string(v.openid)
            assert.is_nil(v.userid)
            -- a member not on the page is refused
            local refused, _, res = submit(f, "wwRETAILCORP02/fengtao")
            assert.equal(200, refused)
            assert.equal(60011, error_code(res.body))
        end)

        it("a self-built app: appid = corpid and agentid; a downstream member is CorpId/userid", function()
            local system = emu.fixture_app(fx, true)
            local q = oauth_link(fx.upstream.corpid, system.redirect_domain, { agentid = system.agentid })
            local _, html = page("/connect/oauth2/authorize", q)
            local f = read_form(html)
            assert.equal(system.agentid, tonumber(f.hidden.agentid))
            assert.is_true(contains(f.options, "wwUPSTREAMCORP/zhangwei"))
            assert.is_true(contains(f.options, "wwDOWNCORP01/lina"))
            local _, location = submit(f, "wwDOWNCORP01/lina")
            local code = wurl.parse_query(location).code
            local _, who = emu.api("GET", "/cgi-bin/auth/getuserinfo", emu.app_token(), { code = code })
            assert.equal(0, who.errcode)
            -- a 上下游 member's userid is encrypted (the account-ID upgrade)
            assert.matches("^wwDOWNCORP01/wo%w+$", who.userid)
            -- issued for that app only
            local _, loc2 = submit(f, "wwUPSTREAMCORP/zhangwei")
            local _, other = emu.api("GET", "/cgi-bin/auth/getuserinfo",
                emu.app_token(emu.fixture_app(fx, false).agentid), { code = wurl.parse_query(loc2).code })
            assert.equal(40029, other.errcode)
        end)

        it("a 代开发 app: appid = the corp, agentid = the app's there", function()
            local inst = pv.install(dk, "wwUPSTREAMCORP")
            local app_token = pv.corp_token(dk, inst.token, "wwUPSTREAMCORP", inst.permanent_code)
            local q = oauth_link("wwUPSTREAMCORP", dk.redirect_domain, { agentid = inst.agentid })
            local _, html = page("/connect/oauth2/authorize", q)
            local f = read_form(html)
            assert.is_false(contains(f.options, "wwDOWNCORP01/lina"))
            local _, location = submit(f, "wwUPSTREAMCORP/zhangwei")
            local _, who = emu.api("GET", "/cgi-bin/auth/getuserinfo", app_token,
                { code = wurl.parse_query(location).code })
            assert.equal(0, who.errcode)
            assert.equal("zhangwei", who.userid)
        end)

        it("answers a bad link with WeCom's error page", function()
            local system = emu.fixture_app(fx, true)
            local with = variant(oauth_link(third.suite_id, third.redirect_domain))
            error_pages("/connect/oauth2/authorize", {
                { with("appid", "wwNOSUCH"), 40013 },
                { with("appid", nil), 40013 },
                { with("appid", dk.suite_id), 40013 },
                { with("redirect_uri", "https://" .. third.install_domain .. "/x"), 50001 },
                { with("redirect_uri", nil), 50001 },
                { with("response_type", "token"), 40058 },
                { with("scope", "snsapi_all"), 40058 },
                { with("scope", nil), 40058 },
                { with("state", "a-b"), 84025 },
                { oauth_link(fx.upstream.corpid, system.redirect_domain, { agentid = "12x" }), 40056 },
                { oauth_link(fx.upstream.corpid, system.redirect_domain, { agentid = 424242 }), 40056 },
                { oauth_link(fx.upstream.corpid, "evil.example.com", { agentid = system.agentid }), 50001 },
            })
        end)
    end)

    describe("third-party codes from the control API", function()
        it("a member of a corp without the app gets a ciphertext userid and no user ticket", function()
            local token = pv.suite_token(third)
            local code = pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP02",
                userid = "fengtao", scope = "snsapi_privateinfo" }).code
            local who = pv.service("GET", "auth/getuserinfo3rd", token, { code = code })
            assert.equal(0, who.errcode)
            assert.equal("wwRETAILCORP02", who.corpid)
            assert.not_equal("fengtao", who.userid)
            assert.equal(who.open_userid, who.userid)
            assert.is_nil(who.user_ticket)
            -- an openid for a visitor; js_code for the mini program
            local v = pv.ok_control("oauth_code", { suite_id = third.suite_id, openid = "oVISITOR1" }).code
            assert.equal("oVISITOR1", pv.service("GET", "auth/getuserinfo3rd", token, { code = v }).openid)
            pv.install(third, "wwRETAILCORP01", token)
            local js = pv.ok_control("js_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01",
                userid = "qianwei" }).code
            local s = pv.service("GET", "miniprogram/jscode2session", token,
                { js_code = js, grant_type = "authorization_code" })
            assert.equal(0, s.errcode)
            assert.equal("qianwei", s.userid)
            assert.matches("^wo", s.open_userid)
            assert.is_string(s.session_key)
            -- a suite code is no code of an upstream app
            local other = pv.ok_control("oauth_code", { suite_id = third.suite_id, corpid = "wwUPSTREAMCORP",
                userid = "zhangwei" }).code
            local _, up = emu.api("GET", "/cgi-bin/auth/getuserinfo", emu.app_token(), { code = other })
            assert.equal(40029, up.errcode)
        end)
    end)
end)
