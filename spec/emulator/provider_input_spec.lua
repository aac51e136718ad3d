-- Bad input on every provider path: missing and wrong-typed fields get
-- WeCom's 40058 / 41xxx / 84xxx codes (reference §9), unknown values their
-- own codes, the control endpoints a 400 naming the field; nothing crashes
-- and nothing is used up by a refused request.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local cjson = require "cjson"

local S = pv.S

describe("emulator provider input", function()
    local fx, third, dk

    emu.hooks(function(f)
        fx = f
        third, dk = pv.suite(fx, false), pv.suite(fx, true)
    end)

    -- post(path, query, body | raw string) -> the JSON answer
    local function post(path, query, body)
        local opts = { query = query }
        if type(body) == "string" then
            opts.raw_body = body
            opts.headers = { ["Content-Type"] = "application/json" }
        else
            opts.body = body
        end
        local _, data = emu.request("POST", path, opts)
        return data
    end

    local function get(path, query)
        local _, data = emu.request("GET", path, { query = query })
        return data
    end

    local function expect(cases, call)
        for i, c in ipairs(cases) do
            local data = call(c)
            assert.is_table(data, "case " .. i)
            assert.equal(c.code, data.errcode, "case " .. i .. ": " .. cjson.encode(data))
            assert.matches(", hint: %[", data.errmsg)
        end
    end

    it("get_suite_token", function()
        local ticket = pv.ticket(third).suite_ticket
        local good = { suite_id = third.suite_id, suite_secret = third.suite_secret, suite_ticket = ticket }
        local function with(k, v)
            local b = {}
            for key, val in pairs(good) do b[key] = val end
            b[k] = v
            return b
        end
        expect({
            { body = "", code = 44002 },
            { body = "{\"suite_id\":", code = 47001 },
            { body = "[1,2]", code = 47001 },
            { body = {}, code = 41021 },
            { body = with("suite_id", 5), code = 40058 },
            { body = with("suite_id", "wwNOSUCHSUITE"), code = 40083 },
            { body = with("suite_secret", cjson.null), code = 41024 },
            { body = with("suite_secret", "wrong"), code = 40080 },
            { body = with("suite_secret", { "x" }), code = 40058 },
            { body = with("suite_ticket", cjson.null), code = 41023 },
            { body = with("suite_ticket", ""), code = 41023 },
            { body = with("suite_ticket", 5), code = 40058 },
            { body = with("suite_ticket", "nonsense"), code = 40085 },
            { body = with("suite_ticket", ("x"):rep(100000)), code = 40085 },
        }, function(c) return post(S .. "get_suite_token", nil, c.body) end)
        assert.equal(43002, get(S .. "get_suite_token", good).errcode)
        -- the good one still works
        assert.is_string(post(S .. "get_suite_token", nil, good).suite_access_token)
    end)

    it("get_provider_token", function()
        local P = fx.provider
        expect({
            { body = {}, code = 41002 },
            { body = { corpid = {}, provider_secret = P.provider_secret }, code = 40058 },
            { body = { corpid = "wwNOSUCH", provider_secret = P.provider_secret }, code = 40013 },
            { body = { corpid = P.corpid }, code = 41024 },
            { body = { corpid = P.corpid, provider_secret = "wrong" }, code = 40091 },
            { body = { corpid = P.corpid, provider_secret = 7 }, code = 40058 },
        }, function(c) return post(S .. "get_provider_token", nil, c.body) end)
    end)

    it("every suite-token path wants a suite_access_token", function()
        for _, route in ipairs {
            { "GET", "get_pre_auth_code" }, { "POST", "set_session_info" }, { "POST", "get_permanent_code" },
            { "POST", "v2/get_permanent_code" }, { "POST", "get_auth_info" }, { "POST", "v2/get_auth_info" },
            { "POST", "get_corp_token" }, { "POST", "get_admin_list" }, { "GET", "auth/getuserinfo3rd" },
            { "POST", "auth/getuserdetail3rd" }, { "GET", "miniprogram/jscode2session" },
        } do
            local data
            if route[1] == "GET" then
                data = get(S .. route[2], {})
            else
                data = post(S .. route[2], nil, {})
            end
            assert.equal(41022, data.errcode, route[2])
            -- the wrong method first
            local _, wrong = emu.request(route[1] == "GET" and "POST" or "GET", S .. route[2],
                { query = { suite_access_token = pv.suite_token(third) }, body = route[1] == "GET" and {} or nil })
            assert.equal(route[1] == "GET" and 43001 or 43002, wrong.errcode, route[2])
        end
        for _, name in ipairs { "get_customized_auth_url", "corpid_to_opencorpid" } do
            assert.equal(41001, post(S .. name, nil, {}).errcode, name)
        end
        assert.equal(41001, post("/cgi-bin/agent/get_admin_list", nil, "").errcode)
    end)

    it("set_session_info", function()
        local token = pv.suite_token(third)
        local q = { suite_access_token = token }
        local code = pv.service("GET", "get_pre_auth_code", token).pre_auth_code
        expect({
            { body = {}, code = 40058 },
            { body = { pre_auth_code = 5, session_info = { auth_type = 1 } }, code = 40058 },
            { body = { pre_auth_code = code }, code = 40058 },
            { body = { pre_auth_code = code, session_info = "test" }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { 1 } }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { auth_type = 2 } }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { auth_type = "1" } }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { auth_type = 0.5 } }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { appid = "1" } }, code = 40058 },
            { body = { pre_auth_code = code, session_info = { appid = { 1 } } }, code = 40086 },
            { body = { pre_auth_code = "nope", session_info = { auth_type = 1 } }, code = 40077 },
            { body = { pre_auth_code = ("n"):rep(5000), session_info = { auth_type = 1 } }, code = 40077 },
        }, function(c) return post(S .. "set_session_info", q, c.body) end)
        -- none of that touched the code; an empty appid list is all apps
        assert.equal(0, post(S .. "set_session_info", q,
            '{"pre_auth_code":"' .. code .. '","session_info":{"appid":[],"auth_type":1}}').errcode)
        -- a 代开发 template has no pre_auth_code (it installs by QR code)
        assert.equal(48002, pv.service("GET", "get_pre_auth_code", pv.suite_token(dk)).errcode)
    end)

    it("get_permanent_code (v1 and v2)", function()
        local token = pv.suite_token(third)
        for _, name in ipairs { "get_permanent_code", "v2/get_permanent_code" } do
            expect({
                { body = {}, code = 41008 },
                { body = { auth_code = 5 }, code = 40058 },
                { body = { auth_code = "nope" }, code = 40078 },
                { body = { auth_code = ("n"):rep(5000) }, code = 40078 },
            }, function(c) return post(S .. name, { suite_access_token = token }, c.body) end)
        end
    end)

    it("get_auth_info (v1 and v2), get_corp_token, get_admin_list", function()
        local inst = pv.install(third, "wwRETAILCORP01")
        local q = { suite_access_token = inst.token }
        for _, name in ipairs { "get_auth_info", "v2/get_auth_info", "get_corp_token" } do
            expect({
                { body = {}, code = 84054 },
                { body = { auth_corpid = 5, permanent_code = inst.permanent_code }, code = 40058 },
                { body = { auth_corpid = "wwRETAILCORP01" }, code = 41025 },
                { body = { auth_corpid = "wwRETAILCORP01", permanent_code = { "x" } }, code = 40058 },
                { body = { auth_corpid = "wwRETAILCORP02", permanent_code = inst.permanent_code }, code = 40082 },
                { body = { auth_corpid = "wwNOSUCHCORP", permanent_code = inst.permanent_code }, code = 40082 },
                { body = { auth_corpid = "wwRETAILCORP01", permanent_code = "wrong" }, code = 40084 },
            }, function(c) return post(S .. name, q, c.body) end)
        end
        expect({
            { body = {}, code = 84054 },
            { body = { auth_corpid = "wwRETAILCORP01" }, code = 41011 },
            { body = { auth_corpid = "wwRETAILCORP01", agentid = "x" }, code = 40058 },
            { body = { auth_corpid = "wwRETAILCORP02", agentid = inst.agentid }, code = 40082 },
        }, function(c) return post(S .. "get_admin_list", q, c.body) end)
    end)

    it("third-party identity: getuserinfo3rd, getuserdetail3rd, jscode2session", function()
        pv.install(third, "wwRETAILCORP01")
        local token = pv.suite_token(third)
        local js = pv.ok_control("js_code",
            { suite_id = third.suite_id, corpid = "wwRETAILCORP01", userid = "qianwei" })
        expect({
            { query = {}, code = 41008 },
            { query = { code = "nope" }, code = 40029 },
            -- a mini-program code is no OAuth code
            { query = { code = js.code }, code = 40029 },
        }, function(c)
            c.query.suite_access_token = token
            return get(S .. "auth/getuserinfo3rd", c.query)
        end)
        expect({
            { body = {}, code = 84090 },
            { body = { user_ticket = 5 }, code = 40058 },
            { body = { user_ticket = "nope" }, code = 84015 },
        }, function(c) return post(S .. "auth/getuserdetail3rd", { suite_access_token = token }, c.body) end)
        expect({
            { query = { grant_type = "authorization_code" }, code = 41008 },
            { query = { js_code = js.code }, code = 40058 },
            { query = { js_code = js.code, grant_type = "client_credential" }, code = 40058 },
            { query = { js_code = "nope", grant_type = "authorization_code" }, code = 40029 },
        }, function(c)
            c.query.suite_access_token = token
            return get(S .. "miniprogram/jscode2session", c.query)
        end)
        -- the code was not used up by the refusals
        local s = get(S .. "miniprogram/jscode2session",
            { suite_access_token = token, js_code = js.code, grant_type = "authorization_code" })
        assert.equal(0, s.errcode)
        assert.equal("qianwei", s.userid)
        -- a 代开发 template has no third-party identity calls
        local dk_token = pv.suite_token(dk)
        assert.equal(48002, get(S .. "auth/getuserinfo3rd", { suite_access_token = dk_token, code = "x" }).errcode)
    end)

    it("get_customized_auth_url, corpid_to_opencorpid", function()
        local q = { provider_access_token = pv.provider_token(fx) }
        local ten = {}
        for i = 1, 10 do ten[i] = dk.suite_id end
        expect({
            { body = {}, code = 84019 },
            { body = '{"templateid_list":[]}', code = 84019 },
            { body = { templateid_list = dk.suite_id }, code = 40058 },
            { body = { templateid_list = { third.suite_id } }, code = 84020 },
            { body = { templateid_list = { "dkNOSUCH" } }, code = 84020 },
            { body = { templateid_list = { 5 } }, code = 84020 },
            { body = { templateid_list = ten }, code = 40058 },
            { body = { templateid_list = { dk.suite_id }, state = "not ok!" }, code = 84025 },
            { body = { templateid_list = { dk.suite_id }, state = ("a"):rep(33) }, code = 84025 },
            { body = { templateid_list = { dk.suite_id }, state = 5 }, code = 40058 },
        }, function(c) return post(S .. "get_customized_auth_url", q, c.body) end)
        expect({
            { body = {}, code = 41002 },
            { body = { corpid = 5 }, code = 40058 },
            { body = { corpid = "wwNOSUCH" }, code = 40013 },
        }, function(c) return post(S .. "corpid_to_opencorpid", q, c.body) end)
    end)

    describe("control endpoints", function()
        local function refused(path, body, pattern)
            local status, data = pv.control(path, body)
            assert.equal(400, status, path .. " " .. cjson.encode(body))
            assert.is_string(data.error)
            if pattern then
                assert.matches(pattern, data.error)
            end
        end

        it("suite_ticket", function()
            refused("suite_ticket", {}, "suite_id")
            refused("suite_ticket", { suite_id = "wwNOSUCH" }, "suite_id")
            refused("suite_ticket", { suite_id = 5 }, "suite_id")
            refused("suite_ticket", { suite_id = third.suite_id, url = "ftp://x/y" }, "url")
            refused("suite_ticket", { suite_id = third.suite_id, url = 5 }, "url")
            local status = emu.request("POST", "/__emulator/suite_ticket", { raw_body = "[1]" })
            assert.equal(400, status)
            assert.equal(405, (emu.request("GET", "/__emulator/suite_ticket")))
        end)

        it("authorize", function()
            local base = { suite_id = third.suite_id, corpid = "wwRETAILCORP01", action = "create" }
            local function with(k, v)
                local b = {}
                for key, val in pairs(base) do b[key] = val end
                b[k] = v
                return b
            end
            refused("authorize", with("suite_id", cjson.null), "suite_id")
            refused("authorize", with("suite_id", "wwNOSUCH"), "suite_id")
            refused("authorize", with("corpid", cjson.null), "corpid")
            -- a corp of the fixture that is not one of provider.corps
            refused("authorize", with("corpid", "wwDOWNCORP05"), "provider.corps")
            refused("authorize", with("action", "delete"), "action")
            refused("authorize", with("action", cjson.null), "action")
            refused("authorize", with("state", "no spaces"), "state")
            refused("authorize", with("state", 5), "state")
            refused("authorize", with("userid", "nobody"), "userid")
            refused("authorize", with("url", "not a url"), "url")
            refused("authorize", with("privilege", { allow_user = { "dongxue" } }), "privilege")
            refused("authorize", with("action", "change"), "has not installed")
            refused("authorize", with("action", "cancel"), "has not installed")
            pv.ok_control("authorize", base)
            local change = with("action", "change")
            change.privilege = { allow_user = "dongxue" }
            refused("authorize", change, "privilege")
            change.privilege = { level = "high" }
            refused("authorize", change, "privilege")
            change.privilege = { nonsense = {} }
            refused("authorize", change, "privilege")
            change.privilege = { 1, 2 }
            refused("authorize", change, "privilege")
        end)

        it("oauth_code and js_code with suite_id", function()
            for _, path in ipairs { "oauth_code", "js_code" } do
                refused(path, { suite_id = "wwNOSUCH", corpid = "wwRETAILCORP01", userid = "qianwei" }, "suite_id")
                refused(path, { suite_id = dk.suite_id, corpid = "wwRETAILCORP01", userid = "qianwei" }, "代开发")
                refused(path, { suite_id = third.suite_id, userid = "qianwei" }, "corpid")
                refused(path, { suite_id = third.suite_id, corpid = "wwRETAILCORP01", userid = "nobody" }, "userid")
            end
            refused("oauth_code", { suite_id = third.suite_id, openid = "" }, "openid")
            refused("oauth_code", { suite_id = third.suite_id, corpid = "wwRETAILCORP01", userid = "qianwei",
                                    scope = "snsapi_all" }, "scope")
            -- without suite_id: the corp form as before
            refused("oauth_code", { agentid = 999 }, "agentid")
            assert.is_string(pv.ok_control("oauth_code", { userid = "zhangwei" }).code)
        end)
    end)

    it("is still up and answering after all that", function()
        local status, data = emu.request("GET", "/__emulator/ping")
        assert.equal(200, status)
        assert.is_true(data.ok)
        assert.is_string(pv.suite_token(third))
    end)
end)
