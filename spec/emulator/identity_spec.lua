-- The emulator's 企业互联 linked-corp APIs (§4), identity (§5: OAuth codes,
-- jscode2session, transfer_session) and JSAPI tickets (§6).

local emu = require "helpers.emulator"

local L = "/cgi-bin/linkedcorp/"

describe("emulator linkedcorp, identity and tickets", function()
    local fx, system, sys_token, ord_token

    emu.app_hooks(function(f, s, _, st, ot) fx, system, sys_token, ord_token = f, s, st, ot end)

    local post = emu.post

    describe("linkedcorp", function()
        it("get_perm_list returns the app's linked range, also with an empty body", function()
            local d = post(sys_token, L .. "agent/get_perm_list", {})
            assert.equal(0, d.errcode)
            local perm = fx.linkedcorp.perm[string.format("%d", system.agentid)]
            assert.same(perm.userids, d.userids)
            assert.same(perm.department_ids, d.department_ids)
            local _, e = emu.request("POST", L .. "agent/get_perm_list",
                { query = { access_token = sys_token }, raw_body = "" })
            assert.equal(0, e.errcode)
        end)

        it("user/get takes CORPID/USERID and answers the bare userid with its corpid", function()
            local d = post(sys_token, L .. "user/get", { userid = "wwLINKEDA01/xuming" })
            assert.equal(0, d.errcode)
            assert.equal("xuming", d.user_info.userid)
            assert.equal("wwLINKEDA01", d.user_info.corpid)
            assert.same({ "LK4B0C1D2E/2" }, d.user_info.department)
            assert.equal(1, d.user_info.extattr.attrs[1].type)
            -- a text attribute has its value under text only, as the doc's shape
            local y = post(sys_token, L .. "user/get", { userid = "wwLINKEDA01/yangfan" })
            assert.same({ { type = 0, name = "工号", text = { value = "A0001" } } }, y.user_info.extattr.attrs)
            -- visible through perm.userids
            assert.equal(0, post(sys_token, L .. "user/get", { userid = "wwLINKEDB02/linxiao" }).errcode)
        end)

        it("user/get refuses users outside the range, unknown users and bare ids", function()
            assert.equal(60011, post(ord_token, L .. "user/get", { userid = "wwLINKEDA01/xuming" }).errcode)
            assert.equal(60111, post(sys_token, L .. "user/get", { userid = "wwLINKEDA01/nobody" }).errcode)
            assert.equal(40003, post(sys_token, L .. "user/get", { userid = "xuming" }).errcode)
            assert.equal(41009, post(sys_token, L .. "user/get", {}).errcode)
        end)

        it("simplelist and list, with and without fetch_child", function()
            local flat = post(sys_token, L .. "user/simplelist", { department_id = "LK4B0C1D2E/2" })
            assert.equal(0, flat.errcode)
            local names = {}
            for _, u in ipairs(flat.userlist) do names[#names + 1] = u.userid end
            assert.same({ "xuming", "gaojie" }, names)
            local deep = post(sys_token, L .. "user/simplelist", { department_id = "LK4B0C1D2E/2", fetch_child = 1 })
            assert.equal(3, #deep.userlist)
            local same = post(sys_token, L .. "user/simplelist", { department_id = "LK4B0C1D2E/2", fetch_child = true })
            assert.equal(3, #same.userlist)
            local full = post(sys_token, L .. "user/list", { department_id = "LK4B0C1D2E/1", fetch_child = 1 })
            assert.equal(4, #full.userlist)
            assert.is_string(full.userlist[1].mobile)
            assert.equal(60011, post(ord_token, L .. "user/list", { department_id = "LK4B0C1D2E/2" }).errcode)
            assert.equal(60123, post(sys_token, L .. "user/list", { department_id = "LK4B0C1D2E/77" }).errcode)
            assert.equal(60123, post(sys_token, L .. "user/list", { department_id = "2" }).errcode)
        end)

        it("department/list answers the subtree with bare string ids", function()
            local d = post(sys_token, L .. "department/list", { department_id = "LK4B0C1D2E/1" })
            assert.equal(3, #d.department_list)
            assert.same({ department_id = "1", department_name = "华夏联合物流", parentid = "0", order = 100000 },
                d.department_list[1])
            assert.equal("2", d.department_list[3].parentid)
            local o = post(ord_token, L .. "department/list", { department_id = "LK4B0C1D2E/3" })
            assert.equal(1, #o.department_list)
        end)

        it("message/send reports invalid recipients as arrays", function()
            local d = post(sys_token, L .. "message/send", {
                touser = { "wwLINKEDA01/xuming", "zhangwei", "wwLINKEDA01/ghost" },
                toparty = { "LK4B0C1D2E/3", "LK9F8E7D6C/4" }, totag = { "5" },
                msgtype = "text", agentid = system.agentid, text = { content = "发货通知" },
            })
            assert.equal(0, d.errcode)
            assert.same({ "wwLINKEDA01/ghost" }, d.invaliduser)
            assert.same({ "LK9F8E7D6C/4" }, d.invalidparty)
            assert.same({ "5" }, d.invalidtag)
            -- nothing invalid: empty arrays, not objects
            local _, ok, res = emu.api("POST", L .. "message/send", sys_token, { touser = { "zhangwei" },
                msgtype = "text", agentid = system.agentid, text = { content = "x" } })
            assert.equal(0, ok.errcode)
            assert.matches('"invaliduser":[]', res.body, 1, true)
            assert.matches('"invalidparty":[]', res.body, 1, true)
            assert.matches('"invalidtag":[]', res.body, 1, true)
        end)

        it("message/send validates its fields", function()
            local base = { touser = { "zhangwei" }, msgtype = "text", agentid = system.agentid,
                text = { content = "x" } }
            local function with(k, v)
                local t = {}
                for key, val in pairs(base) do t[key] = val end
                t[k] = v
                return t
            end
            assert.equal(40008, post(sys_token, L .. "message/send", with("msgtype", "fax")).errcode)
            assert.equal(41011, post(sys_token, L .. "message/send", with("agentid", nil)).errcode)
            assert.equal(40058, post(sys_token, L .. "message/send", with("text", nil)).errcode)
            local joined = post(sys_token, L .. "message/send", with("touser", "zhangwei|lisi"))
            assert.equal(40058, joined.errcode)
            assert.matches("touser must be an array", joined.errmsg, 1, true)
            assert.equal(81013, post(sys_token, L .. "message/send", with("touser", { "ghost" })).errcode)
        end)
    end)

    describe("OAuth codes", function()
        it("getuserinfo answers CorpId/<ciphertext> for a 上下游 downstream user, once", function()
            local userid = fx.downstream[3].users[1].userid
            local code = emu.oauth_code { corpid = "wwDOWNCORP03", userid = userid }
            local _, d = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = code })
            assert.equal(0, d.errcode)
            local corpid, shown = d.userid:match("^([^/]+)/(.+)$")
            assert.equal("wwDOWNCORP03", corpid)
            -- the account-ID upgrade: the upstream corp sees 上下游 ids encrypted
            assert.not_equal(userid, shown)
            assert.matches("^wo%w+$", shown)
            local _, again = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = code })
            assert.equal(40029, again.errcode)
        end)

        it("getuserinfo answers CorpId/userid in plain text for a 企业互联 member", function()
            local corp
            for _, c in ipairs(fx.downstream) do
                if c.agents[1].business_type == 0 then corp = c break end
            end
            local userid = corp.users[1].userid
            local code = emu.oauth_code { corpid = corp.corpid, userid = userid }
            local _, d = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = code })
            assert.equal(corp.corpid .. "/" .. userid, d.userid)
            local js = emu.js_code { corpid = corp.corpid, userid = userid }
            local _, s = emu.api("GET", "/cgi-bin/miniprogram/jscode2session", sys_token,
                { js_code = js, grant_type = "authorization_code" })
            assert.equal(userid, s.userid)
        end)

        it("answers a bare userid for the upstream corp's own users and openid for visitors", function()
            local code = emu.oauth_code { userid = "zhangwei" }
            local _, d = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = code })
            assert.equal("zhangwei", d.userid)
            local visitor = emu.oauth_code { openid = "oVisitor123" }
            local _, v = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = visitor })
            assert.equal("oVisitor123", v.openid)
            assert.is_nil(v.userid)
        end)

        it("expires codes after 5 minutes and binds them to the app", function()
            local code = emu.oauth_code { userid = "zhangwei" }
            emu.advance(301)
            local _, d = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, { code = code })
            assert.equal(40029, d.errcode)
            local bound = emu.oauth_code { userid = "zhangwei", agentid = system.agentid }
            local _, other = emu.api("GET", "/cgi-bin/auth/getuserinfo", ord_token, { code = bound })
            assert.equal(40029, other.errcode)
            local _, missing = emu.api("GET", "/cgi-bin/auth/getuserinfo", sys_token, {})
            assert.equal(41008, missing.errcode)
        end)

        it("refuses to mint codes for unknown users", function()
            local status = emu.request("POST", "/__emulator/oauth_code", { body = { userid = "ghost" } })
            assert.equal(400, status)
        end)
    end)

    describe("mini program sessions", function()
        it("jscode2session then transfer_session with the downstream token", function()
            local corp = fx.downstream[4]
            local user = corp.users[1]
            local code = emu.js_code { corpid = corp.corpid, userid = user.userid }
            local _, s = emu.api("GET", "/cgi-bin/miniprogram/jscode2session", sys_token,
                { js_code = code, grant_type = "authorization_code" })
            assert.equal(0, s.errcode)
            assert.equal(corp.corpid, s.corpid)
            assert.not_equal(user.userid, s.userid) -- hidden from the upstream corp
            assert.is_string(s.session_key)
            local down = emu.down_token(sys_token, corp.corpid, corp.agents[1].agentid, 1)
            local _, t = emu.api("POST", "/cgi-bin/miniprogram/transfer_session", down,
                { userid = s.userid, session_key = s.session_key })
            assert.equal(0, t.errcode)
            assert.equal(user.userid, t.userid)
            assert.not_equal(s.session_key, t.session_key)
        end)

        it("refuses a session of another corp, a wrong userid and bad codes", function()
            local code = emu.js_code { corpid = "wwDOWNCORP04", userid = fx.downstream[4].users[1].userid }
            local _, s = emu.api("GET", "/cgi-bin/miniprogram/jscode2session", sys_token,
                { js_code = code, grant_type = "authorization_code" })
            local other = emu.down_token(sys_token, "wwDOWNCORP05", 1000015, 1)
            local _, t1 = emu.api("POST", "/cgi-bin/miniprogram/transfer_session", other,
                { userid = s.userid, session_key = s.session_key })
            assert.equal(48002, t1.errcode)
            local down = emu.down_token(sys_token, "wwDOWNCORP04", 1000014, 1)
            local _, t2 = emu.api("POST", "/cgi-bin/miniprogram/transfer_session", down,
                { userid = "someone-else", session_key = s.session_key })
            assert.equal(40058, t2.errcode)
            local _, t3 = emu.api("POST", "/cgi-bin/miniprogram/transfer_session", down, { userid = s.userid })
            assert.equal(40058, t3.errcode)
            local _, bad = emu.api("GET", "/cgi-bin/miniprogram/jscode2session", sys_token,
                { js_code = "nope", grant_type = "authorization_code" })
            assert.equal(40029, bad.errcode)
            local _, grant = emu.api("GET", "/cgi-bin/miniprogram/jscode2session", sys_token, { js_code = "x" })
            assert.equal(40058, grant.errcode)
        end)
    end)

    describe("JSAPI tickets", function()
        it("issues corp and agent_config tickets per downstream corp, the same while valid", function()
            local down = emu.down_token(sys_token, "wwDOWNCORP01", 1000011, 1)
            local _, a = emu.api("GET", "/cgi-bin/get_jsapi_ticket", down)
            assert.equal(0, a.errcode)
            assert.equal(7200, a.expires_in)
            local _, b = emu.api("GET", "/cgi-bin/get_jsapi_ticket", down)
            assert.equal(a.ticket, b.ticket)
            local _, c = emu.api("GET", "/cgi-bin/ticket/get", down, { type = "agent_config" })
            assert.equal(0, c.errcode)
            assert.not_equal(a.ticket, c.ticket)
            local other = emu.down_token(sys_token, "wwDOWNCORP02", 1000012, 1)
            local _, d = emu.api("GET", "/cgi-bin/get_jsapi_ticket", other)
            assert.not_equal(a.ticket, d.ticket)
            emu.advance(7300)
            sys_token = emu.app_token(system.agentid)
            down = emu.down_token(sys_token, "wwDOWNCORP01", 1000011, 1)
            local _, e = emu.api("GET", "/cgi-bin/get_jsapi_ticket", down)
            assert.not_equal(a.ticket, e.ticket)
            local _, bad = emu.api("GET", "/cgi-bin/ticket/get", down, { type = "other" })
            assert.equal(40058, bad.errcode)
        end)
    end)
end)
