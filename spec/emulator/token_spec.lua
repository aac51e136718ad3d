-- The emulator's token rules (reference §1, §10), the corp's own agent/user
-- APIs, request validation and the shape of errors.

local emu = require "helpers.emulator"

describe("emulator tokens", function()
    local fx, system, ordinary

    emu.hooks(function(f, s, o) fx, system, ordinary = f, s, o end)

    local function gettoken(query)
        return emu.request("GET", "/cgi-bin/gettoken", { query = query })
    end

    describe("gettoken", function()
        it("issues a token with expires_in", function()
            local status, data = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            assert.equal(200, status)
            assert.equal(0, data.errcode)
            assert.equal("ok", data.errmsg)
            assert.is_string(data.access_token)
            assert.is_true(#data.access_token >= 32 and #data.access_token <= 512)
            assert.equal(7200, data.expires_in)
        end)

        it("returns the same token while it is valid, with the remaining lifetime", function()
            local _, a = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            emu.advance(1000)
            local _, b = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            assert.equal(a.access_token, b.access_token)
            assert.is_true(b.expires_in <= 6200 and b.expires_in > 6100)
        end)

        it("keeps tokens of different apps apart", function()
            local _, a = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            local _, b = gettoken { corpid = fx.upstream.corpid, corpsecret = ordinary.secret }
            assert.not_equal(a.access_token, b.access_token)
        end)

        it("issues a new token after expiry on the emulator clock", function()
            local _, a = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            emu.advance(7201)
            local _, b = gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            assert.equal(0, b.errcode)
            assert.not_equal(a.access_token, b.access_token)
        end)

        it("answers 40001 for a wrong secret, 40013 for an unknown corp", function()
            local _, d1 = gettoken { corpid = fx.upstream.corpid, corpsecret = "wrong" }
            assert.equal(40001, d1.errcode)
            local _, d2 = gettoken { corpid = "wwNOSUCHCORP", corpsecret = system.secret }
            assert.equal(40013, d2.errcode)
        end)

        it("answers 41002 / 41004 for missing parameters", function()
            local _, d1 = gettoken { corpsecret = system.secret }
            assert.equal(41002, d1.errcode)
            local _, d2 = gettoken { corpid = fx.upstream.corpid }
            assert.equal(41004, d2.errcode)
        end)

        it("answers 40091 for a secret of another corp", function()
            -- a downstream corp exists, the secret belongs to the upstream corp
            local _, d = gettoken { corpid = fx.downstream[1].corpid, corpsecret = system.secret }
            assert.equal(40091, d.errcode)
        end)

        it("shapes errmsg like the live server and never echoes the secret", function()
            local _, d = gettoken { corpid = fx.upstream.corpid, corpsecret = "sEcReT-value-123" }
            assert.matches("^invalid credential, hint: %[[%w_]+%], from ip: [%d%.]+, more info at "
                .. "https://open%.work%.weixin%.qq%.com/devtool/query%?e=40001$", d.errmsg)
            assert.is_nil(d.errmsg:find("sEcReT", 1, true))
        end)
    end)

    describe("token checks", function()
        it("answers 41001 without a token, 40014 for an unknown one", function()
            local _, d1 = emu.request("GET", "/cgi-bin/agent/get", { query = { agentid = system.agentid } })
            assert.equal(41001, d1.errcode)
            local _, d2 = emu.api("GET", "/cgi-bin/agent/get", "not-a-token", { agentid = system.agentid })
            assert.equal(40014, d2.errcode)
        end)

        it("answers 42001 for an expired token, or 40014 when configured so", function()
            local token = emu.app_token()
            emu.advance(7300)
            local _, d1 = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = system.agentid })
            assert.equal(42001, d1.errcode)
            emu.options { expired_errcode = 40014 }
            local _, d2 = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = system.agentid })
            assert.equal(40014, d2.errcode)
        end)

        it("forgets every token on reset", function()
            local token = emu.app_token()
            emu.reset()
            local _, d = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = system.agentid })
            assert.equal(40014, d.errcode)
        end)

        it("refuses an upstream app token on downstream-only endpoints (40014)", function()
            local token = emu.app_token()
            local _, d = emu.api("POST", "/cgi-bin/miniprogram/transfer_session", token,
                { userid = "x", session_key = "y" })
            assert.equal(40014, d.errcode)
        end)

        it("refuses a downstream token on corpgroup endpoints (40014)", function()
            local up = emu.app_token()
            local corp = fx.downstream[1]
            local down = emu.down_token(up, corp.corpid, corp.agents[1].agentid, 1)
            local _, d = emu.api("GET", "/cgi-bin/corpgroup/corp/get_chain_list", down)
            assert.equal(40014, d.errcode)
        end)
    end)

    describe("agent/get and user/get", function()
        it("describes the token's own app", function()
            local token = emu.app_token()
            local _, d = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = system.agentid })
            assert.equal(0, d.errcode)
            assert.equal(system.agentid, d.agentid)
            assert.equal(system.name, d.name)
            assert.is_table(d.allow_userinfos.user)
        end)

        it("refuses another app's agentid and needs agentid", function()
            local token = emu.app_token()
            local _, d1 = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = ordinary.agentid })
            assert.equal(301002, d1.errcode)
            local _, d2 = emu.api("GET", "/cgi-bin/agent/get", token, {})
            assert.equal(41011, d2.errcode)
            local _, d3 = emu.api("GET", "/cgi-bin/agent/get", token, { agentid = "abc" })
            assert.equal(40058, d3.errcode)
            assert.matches("agentid", d3.errmsg)
        end)

        it("serves the downstream corp's agent and users with a downstream token", function()
            local up = emu.app_token()
            local corp = fx.downstream[2]
            local agent = corp.agents[1]
            local down = emu.down_token(up, corp.corpid, agent.agentid, agent.business_type)
            local _, a = emu.api("GET", "/cgi-bin/agent/get", down, { agentid = agent.agentid })
            assert.equal(0, a.errcode)
            assert.equal(agent.agentid, a.agentid)
            local user = corp.users[1]
            local _, u = emu.api("GET", "/cgi-bin/user/get", down, { userid = user.userid })
            assert.equal(0, u.errcode)
            assert.equal(user.userid, u.userid)
            assert.equal(user.name, u.name)
            -- the upstream corp's users are not the downstream corp's
            local _, other = emu.api("GET", "/cgi-bin/user/get", down, { userid = fx.upstream.users[1].userid })
            assert.equal(60111, other.errcode)
        end)

        it("answers 41009 without userid", function()
            local _, d = emu.api("GET", "/cgi-bin/user/get", emu.app_token(), {})
            assert.equal(41009, d.errcode)
        end)
    end)

    describe("request validation", function()
        it("answers 47001 for invalid JSON and 44002 for an empty body", function()
            local token = emu.app_token()
            local _, d1 = emu.request("POST", "/cgi-bin/corpgroup/corp/list_app_share_info",
                { query = { access_token = token }, raw_body = "{agentid:", headers = {} })
            assert.equal(47001, d1.errcode)
            assert.matches("Warning: wrong json format.", d1.errmsg, 1, true)
            local _, d3 = emu.request("POST", "/cgi-bin/corpgroup/corp/list_app_share_info",
                { query = { access_token = token }, raw_body = "[1, 2]" })
            assert.equal(47001, d3.errcode)
            local _, d2 = emu.request("POST", "/cgi-bin/corpgroup/corp/list_app_share_info",
                { query = { access_token = token }, raw_body = "" })
            assert.equal(44002, d2.errcode)
        end)

        it("refuses the wrong HTTP method", function()
            local token = emu.app_token()
            local _, d1 = emu.request("GET", "/cgi-bin/corpgroup/corp/list_app_share_info",
                { query = { access_token = token } })
            assert.equal(43002, d1.errcode)
            local _, d2 = emu.request("POST", "/cgi-bin/gettoken", { body = {} })
            assert.equal(43001, d2.errcode)
        end)

        it("answers HTTP 404 with errcode 48001 for unknown paths", function()
            local status, d = emu.request("GET", "/cgi-bin/no/such/api")
            assert.equal(404, status)
            assert.equal(48001, d.errcode)
        end)

        -- every endpoint of reference §1-§6: its method, and one required
        -- field (with a valid request around it) that must be named when
        -- missing and when wrongly typed
        local C = "/cgi-bin/corpgroup/"
        local ENDPOINTS = {
            { "GET", "/cgi-bin/gettoken" },
            { "POST", C .. "corp/list_app_share_info", "agentid", {}, 41011 },
            { "POST", C .. "corp/gettoken", "corpid", { agentid = 1000011, business_type = 1 } },
            { "POST", "/cgi-bin/miniprogram/transfer_session", "session_key", { userid = "x" }, nil, "down" },
            { "GET", C .. "corp/get_chain_list" },
            { "POST", C .. "corp/get_chain_group", "chain_id", {} },
            { "POST", C .. "corp/get_chain_corpinfo_list", "chain_id", {} },
            { "POST", C .. "corp/get_chain_corpinfo", "chain_id", { corpid = "wwDOWNCORP01" } },
            { "POST", C .. "corp/remove_corp", "chain_id", { corpid = "wwDOWNCORP01" } },
            { "POST", C .. "corp/get_chain_user_custom_id", "corpid", { chain_id = "ChDISTRIB01", userid = "wuting" } },
            { "POST", C .. "get_corp_shared_chain_list", "corpid", {} },
            { "POST", C .. "import_chain_contact", "chain_id", { contact_list = {} } },
            { "GET", C .. "getresult", "jobid", {} },
            { "POST", C .. "rule/list_ids", "chain_id", {} },
            { "POST", C .. "rule/get_rule_info", "rule_id", { chain_id = "ChDISTRIB01" } },
            { "POST", C .. "rule/add_rule", "rule_info", { chain_id = "ChDISTRIB01" } },
            { "POST", C .. "rule/modify_rule", "rule_id", { chain_id = "ChDISTRIB01", rule_info = {} } },
            { "POST", C .. "rule/delete_rule", "rule_id", { chain_id = "ChDISTRIB01" } },
            { "POST", C .. "unionid_to_external_userid", "openid", { unionid = "oUnion_wx_000001" } },
            { "POST", C .. "unionid_to_pending_id", "unionid", { openid = "oMini_000001" } },
            { "POST", C .. "batch/external_userid_to_pending_id", "external_userid", {} },
            { "POST", "/cgi-bin/linkedcorp/agent/get_perm_list" },
            { "POST", "/cgi-bin/linkedcorp/user/get", "userid", {}, 41009 },
            { "POST", "/cgi-bin/linkedcorp/user/simplelist", "department_id", {} },
            { "POST", "/cgi-bin/linkedcorp/user/list", "department_id", {} },
            { "POST", "/cgi-bin/linkedcorp/department/list", "department_id", {} },
            { "POST", "/cgi-bin/linkedcorp/message/send", "msgtype", { touser = { "zhangwei" } } },
            { "GET", "/cgi-bin/auth/getuserinfo", "code", {}, 41008 },
            { "GET", "/cgi-bin/miniprogram/jscode2session", "grant_type", { js_code = "x" } },
            { "GET", "/cgi-bin/get_jsapi_ticket" },
            { "GET", "/cgi-bin/ticket/get", "type", {} },
            { "GET", "/cgi-bin/agent/get", "agentid", {}, 41011 },
            { "GET", "/cgi-bin/user/get", "userid", {}, 41009 },
        }

        it("serves every endpoint of §1-§6 and refuses the other HTTP method", function()
            local token = emu.app_token()
            for _, e in ipairs(ENDPOINTS) do
                local method, path = e[1], e[2]
                local other = method == "GET" and "POST" or "GET"
                local status, d = emu.request(other, path, { query = { access_token = token },
                    body = other == "POST" and {} or nil })
                assert.equal(200, status, path)
                assert.equal(method == "GET" and 43001 or 43002, d.errcode, path)
            end
        end)

        it("names a required field when it is missing and when it has the wrong type, on every endpoint", function()
            local up = emu.app_token()
            local down = emu.down_token(up, "wwDOWNCORP01", 1000011, 1)
            for _, e in ipairs(ENDPOINTS) do
                local method, path, field, base, missing_code = e[1], e[2], e[3], e[4], e[5]
                if field then
                    local token = e[6] == "down" and down or up
                    local params = {}
                    for k, v in pairs(base) do params[k] = v end
                    local _, d = emu.api(method, path, token, params)
                    assert.equal(missing_code or 40058, d.errcode, path .. " without " .. field)
                    if not missing_code then
                        assert.matches(field, d.errmsg, 1, true)
                    end
                    -- a JSON object where a string, an integer or an array belongs (a string for
                    -- an object); in a query, a repeated parameter
                    if method == "POST" then
                        params[field] = field == "rule_info" and "text" or { wrong = true }
                        _, d = emu.api(method, path, token, params)
                    else
                        local query = { access_token = token }
                        for k, v in pairs(params) do query[k] = v end
                        query[field] = "1"
                        local qs = emu.query_string(query) .. "&" .. field .. "=2"
                        _, d = emu.request("GET", path .. qs)
                    end
                    assert.equal(40058, d.errcode, path .. " with a wrongly typed " .. field)
                    assert.matches(field .. " must be", d.errmsg, 1, true)
                end
            end
        end)

        it("names a wrongly typed field", function()
            local token = emu.app_token()
            local _, d = emu.api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", token,
                { agentid = system.agentid, business_type = "one" })
            assert.equal(40058, d.errcode)
            assert.matches("business_type must be an integer", d.errmsg, 1, true)
        end)
    end)

    describe("stats", function()
        it("counts every API call by path, failed ones included", function()
            gettoken { corpid = fx.upstream.corpid, corpsecret = system.secret }
            gettoken { corpid = fx.upstream.corpid, corpsecret = "bad" }
            emu.request("GET", "/cgi-bin/agent/get")
            local calls = emu.stats()
            assert.equal(2, calls["/cgi-bin/gettoken"])
            assert.equal(1, calls["/cgi-bin/agent/get"])
            emu.reset()
            assert.same({}, emu.stats())
        end)
    end)
end)
