-- The account-ID upgrade on the emulator, at the HTTP level (reference/
-- wecom-provider-api.md §6.2, §7): userid <-> open_userid, the external_userid
-- forms, unionid -> external_userid | pending_id with its quota, the
-- mass-call ticket, and the suite/provider-token conversions.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"

describe("emulator account-ID conversions", function()
    local fx, third, dk

    emu.hooks(function(f)
        fx = f
        third, dk = pv.suite(fx, false), pv.suite(fx, true)
    end)

    -- the token of suite's app installed in corpid (and its agentid)
    local function installed(suite, corpid)
        local inst = pv.install(suite, corpid)
        return pv.corp_token(suite, inst.token, corpid, inst.permanent_code), inst.agentid, inst
    end

    local function post(path, token, body)
        return emu.post(token, path, body)
    end

    local function customer(body)
        local status, data = emu.request("POST", "/__emulator/customer", { body = body })
        return status, data
    end

    local function flip_case(s)
        return (s:gsub("%a", function(c)
            return c == c:upper() and c:lower() or c:upper()
        end))
    end

    describe("userid_to_openuserid", function()
        it("converts members to the provider's open_userid, the same for every app of the provider", function()
            local tok3 = installed(third, "wwRETAILCORP01")
            local d = post("/cgi-bin/batch/userid_to_openuserid", tok3,
                { userid_list = { "qianwei", "ghost", "dongxue" } })
            assert.equal(0, d.errcode)
            assert.equal(2, #d.open_userid_list)
            assert.same({ "ghost" }, d.invalid_userid_list)
            local open = {}
            for _, rec in ipairs(d.open_userid_list) do
                open[rec.userid] = rec.open_userid
            end
            assert.matches("^wo%w+$", open.qianwei)
            assert.not_equal(open.qianwei, open.dongxue)
            -- encrypted ids mix cases (and are case-sensitive)
            assert.not_equal(open.qianwei:lower(), open.qianwei)
            local tokdk = installed(dk, "wwRETAILCORP01")
            local d2 = post("/cgi-bin/batch/userid_to_openuserid", tokdk, { userid_list = { "qianwei" } })
            assert.equal(open.qianwei, d2.open_userid_list[1].open_userid)
        end)

        it("refuses a self-built app, more than 1,000 ids and what is not a list of strings", function()
            local up = emu.app_token()
            assert.equal(48002, post("/cgi-bin/batch/userid_to_openuserid", up,
                { userid_list = { "zhangwei" } }).errcode)
            local tok3 = installed(third, "wwRETAILCORP01")
            local many = {}
            for i = 1, 1001 do many[i] = "u" .. i end
            assert.equal(40058, post("/cgi-bin/batch/userid_to_openuserid", tok3, { userid_list = many }).errcode)
            assert.equal(40058, post("/cgi-bin/batch/userid_to_openuserid", tok3, {}).errcode)
            assert.equal(40058, post("/cgi-bin/batch/userid_to_openuserid", tok3, { userid_list = "qianwei" }).errcode)
            assert.equal(40058, post("/cgi-bin/batch/userid_to_openuserid", tok3, { userid_list = { 1 } }).errcode)
        end)
    end)

    describe("openuserid_to_userid", function()
        it("turns a third-party app's open_userids back into userids for a self-built app, exactly", function()
            local tok3, agentid = installed(third, "wwUPSTREAMCORP")
            local d = post("/cgi-bin/batch/userid_to_openuserid", tok3, { userid_list = { "zhangwei", "liuyang" } })
            local opens = {}
            for i, rec in ipairs(d.open_userid_list) do opens[i] = rec.open_userid end
            local up = emu.app_token()
            local back = post("/cgi-bin/batch/openuserid_to_userid", up,
                { open_userid_list = { opens[1], opens[2], flip_case(opens[1]) }, source_agentid = agentid })
            assert.equal(0, back.errcode)
            local users = {}
            for _, rec in ipairs(back.userid_list) do users[rec.open_userid] = rec.userid end
            assert.same({ [opens[1]] = d.open_userid_list[1].userid, [opens[2]] = d.open_userid_list[2].userid }, users)
            -- another case is another (unknown) id
            assert.same({ flip_case(opens[1]) }, back.invalid_open_userid_list)
        end)

        it("needs a self-built token and the agentid of an installed third-party or 代开发 app", function()
            local tok3, agentid = installed(third, "wwUPSTREAMCORP")
            local up = emu.app_token()
            assert.equal(48002, post("/cgi-bin/batch/openuserid_to_userid", tok3,
                { open_userid_list = { "wo1" }, source_agentid = agentid }).errcode)
            assert.equal(41011, post("/cgi-bin/batch/openuserid_to_userid", up,
                { open_userid_list = { "wo1" } }).errcode)
            assert.equal(40056, post("/cgi-bin/batch/openuserid_to_userid", up,
                { open_userid_list = { "wo1" }, source_agentid = 1000003 }).errcode)
            assert.equal(40058, post("/cgi-bin/batch/openuserid_to_userid", up,
                { open_userid_list = "wo1", source_agentid = agentid }).errcode)
        end)
    end)

    describe("external_userid forms", function()
        it("get_new_external_userid: own id -> the provider's; a new one stays; unknown ones are left out", function()
            local tok3 = installed(third, "wwDOWNCORP01")
            local d = post("/cgi-bin/externalcontact/get_new_external_userid", tok3,
                { external_userid_list = { "wmDOWN01ext000001", "wmNOBODY" } })
            assert.equal(0, d.errcode)
            assert.equal(1, #d.items)
            assert.equal("wmDOWN01ext000001", d.items[1].external_userid)
            local new = d.items[1].new_external_userid
            assert.matches("^wm%w+$", new)
            assert.not_equal("wmDOWN01ext000001", new)
            local again = post("/cgi-bin/externalcontact/get_new_external_userid", tok3,
                { external_userid_list = { new } })
            assert.equal(new, again.items[1].new_external_userid)
            -- the customer group form
            local chat = post("/cgi-bin/externalcontact/groupchat/get_new_external_userid", tok3,
                { chat_id = "wrCHAT01", external_userid_list = { "wmDOWN01ext000001" } })
            assert.equal(new, chat.items[1].new_external_userid)
            assert.equal(40050, post("/cgi-bin/externalcontact/groupchat/get_new_external_userid", tok3,
                { chat_id = "nochat", external_userid_list = {} }).errcode)
            assert.equal(40058, post("/cgi-bin/externalcontact/groupchat/get_new_external_userid", tok3,
                { external_userid_list = {} }).errcode)
            assert.equal(48002, post("/cgi-bin/externalcontact/get_new_external_userid", emu.app_token(),
                { external_userid_list = {} }).errcode)
        end)

        it("to_service (代开发) and from_service (self-built) convert between the two forms", function()
            local c_status, c = customer { unionid = "oUnion_up_1", openid = "oMini_up_1", corpid = "wwUPSTREAMCORP" }
            assert.equal(200, c_status)
            local tokdk, dk_agentid = installed(dk, "wwUPSTREAMCORP")
            local to = post("/cgi-bin/externalcontact/to_service_external_userid", tokdk,
                { external_userid = c.external_userid })
            assert.equal(0, to.errcode)
            assert.equal(c.open_external_userid, to.external_userid)
            local up = emu.app_token()
            local from = post("/cgi-bin/externalcontact/from_service_external_userid", up,
                { external_userid = to.external_userid, source_agentid = dk_agentid })
            assert.equal(c.external_userid, from.external_userid)

            assert.equal(40096, post("/cgi-bin/externalcontact/to_service_external_userid", tokdk,
                { external_userid = "wmNOBODY" }).errcode)
            assert.equal(40096, post("/cgi-bin/externalcontact/from_service_external_userid", up,
                { external_userid = flip_case(to.external_userid), source_agentid = dk_agentid }).errcode)
            assert.equal(40056, post("/cgi-bin/externalcontact/from_service_external_userid", up,
                { external_userid = to.external_userid, source_agentid = 1000002 }).errcode)
            local tok3 = installed(third, "wwUPSTREAMCORP")
            assert.equal(48002, post("/cgi-bin/externalcontact/to_service_external_userid", tok3,
                { external_userid = c.external_userid }).errcode)
            assert.equal(48002, post("/cgi-bin/externalcontact/from_service_external_userid", tok3,
                { external_userid = to.external_userid, source_agentid = dk_agentid }).errcode)
        end)
    end)

    describe("idconvert/unionid_to_external_userid", function()
        local P = "/cgi-bin/idconvert/unionid_to_external_userid"

        it("gives a customer's external_userid, else a pending_id that maps back once they join", function()
            local tok3 = installed(third, "wwDOWNCORP01")
            local d = post(P, tok3, { unionid = "oUnion_wx_000001", openid = "oMini_000001", subject_type = 0 })
            assert.equal(0, d.errcode)
            local new = post("/cgi-bin/externalcontact/get_new_external_userid", tok3,
                { external_userid_list = { "wmDOWN01ext000001" } }).items[1].new_external_userid
            assert.equal(new, d.external_userid)
            assert.is_nil(d.pending_id)

            local p1 = post(P, tok3, { unionid = "oUnion_wx_000003", openid = "oMini_000003" })
            assert.is_nil(p1.external_userid)
            assert.matches("^p%w+$", p1.pending_id)
            local p2 = post(P, tok3, { unionid = "oUnion_wx_000003", openid = "oMini_000003" })
            assert.equal(p1.pending_id, p2.pending_id)

            local _, c = customer { unionid = "oUnion_wx_000003", openid = "oMini_000003", corpid = "wwDOWNCORP01" }
            local now = post(P, tok3, { unionid = "oUnion_wx_000003", openid = "oMini_000003" })
            assert.equal(c.open_external_userid, now.external_userid)
            local map = post("/cgi-bin/idconvert/batch/external_userid_to_pending_id", tok3,
                { external_userid = { now.external_userid, new } })
            assert.same({ { external_userid = now.external_userid, pending_id = p1.pending_id } }, map.result)
        end)

        it("validates its fields and the caller", function()
            local tok3 = installed(third, "wwDOWNCORP01")
            assert.equal(40058, post(P, tok3, { unionid = "oUnion_wx_000001", openid = "oMini_000002" }).errcode)
            assert.equal(40058, post(P, tok3, { unionid = "oUnion_wx_000001", openid = "oMini_000001",
                subject_type = 2 }).errcode)
            assert.equal(40058, post(P, tok3, { openid = "oMini_000001" }).errcode)
            assert.equal(48002, post(P, emu.app_token(), { unionid = "u", openid = "o" }).errcode)
            local many = {}
            for i = 1, 101 do many[i] = "wm" .. i end
            assert.equal(40058, post("/cgi-bin/idconvert/batch/external_userid_to_pending_id", tok3,
                { external_userid = many }).errcode)
        end)

        it("counts calls against the hourly and daily quota: 45009 when spent", function()
            emu.options { idconvert_hour_limit = 2, idconvert_day_limit = 3, token_ttl = 30 * 86400 }
            -- to 00:00:10 Beijing time, a whole day (WeCom's, UTC+8) ahead
            local now = emu.control.advance(0).now
            emu.advance(86400 - (now + 8 * 3600) % 86400 + 10)
            local tok3 = installed(third, "wwDOWNCORP01")
            local body = { unionid = "oUnion_wx_000001", openid = "oMini_000001" }
            assert.equal(0, post(P, tok3, body).errcode)
            assert.equal(0, post(P, tok3, body).errcode)
            assert.equal(45009, post(P, tok3, body).errcode)
            emu.advance(3600)
            assert.equal(0, post(P, tok3, body).errcode)
            -- the day's 3 are spent (a refused call does not count)
            emu.advance(3600)
            assert.equal(45009, post(P, tok3, body).errcode)
            emu.advance(86400)
            assert.equal(0, post(P, tok3, body).errcode)
        end)

        it("counts calls against the monthly quota, by Beijing calendar month", function()
            emu.options { idconvert_month_limit = 2, token_ttl = 400 * 86400 }
            -- a day at a time, to the 1st of the next month (Beijing time)
            local function beijing_month()
                return os.date("!%Y-%m", math.floor(emu.control.advance(0).now + 8 * 3600))
            end
            local month = beijing_month()
            repeat
                emu.advance(86400)
            until beijing_month() ~= month
            local tok3 = installed(third, "wwDOWNCORP01")
            local body = { unionid = "oUnion_wx_000003", openid = "oMini_000003" }
            assert.equal(0, post(P, tok3, body).errcode)
            emu.advance(2 * 86400)
            assert.equal(0, post(P, tok3, body).errcode)
            emu.advance(20 * 86400)
            assert.equal(45009, post(P, tok3, body).errcode)
            -- the next month: a fresh quota
            emu.advance(15 * 86400)
            assert.equal(0, post(P, tok3, body).errcode)
        end)

        it("subject_type 0 counts per corp, 1 per provider", function()
            emu.options { idconvert_hour_limit = 1 }
            local a = installed(third, "wwDOWNCORP01")
            local b = installed(third, "wwDOWNCORP02")
            local body = { unionid = "oUnion_wx_000002", openid = "oMini_000002" }
            assert.equal(0, post(P, a, body).errcode)
            assert.equal(0, post(P, b, body).errcode)
            body.subject_type = 1
            assert.equal(0, post(P, a, body).errcode)
            assert.equal(45009, post(P, b, body).errcode)
        end)
    end)

    describe("the mass-call ticket", function()
        local P = "/cgi-bin/idconvert/unionid_to_external_userid"

        it("is given once per corp and lifts the quota for 7 days", function()
            emu.options { idconvert_hour_limit = 1 }
            local tok3, _, inst = installed(third, "wwDOWNCORP01")
            local _, d = emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", tok3)
            assert.equal(0, d.errcode)
            local ticket = d.mass_call_ticket
            assert.is_string(ticket)
            local _, again = emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", tok3)
            assert.equal(48002, again.errcode)
            -- once per corp: not for the corp's other apps either
            local tokdk = installed(dk, "wwDOWNCORP01")
            assert.equal(48002, select(2, emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", tokdk)).errcode)

            local body = { unionid = "oUnion_wx_000001", openid = "oMini_000001", mass_call_ticket = ticket }
            for _ = 1, 3 do
                assert.equal(0, post(P, tok3, body).errcode)
            end
            body.mass_call_ticket = nil
            assert.equal(0, post(P, tok3, body).errcode)
            assert.equal(45009, post(P, tok3, body).errcode)
            -- another corp's ticket is no ticket
            local other = installed(third, "wwDOWNCORP02")
            assert.equal(40058, post(P, other, { unionid = "oUnion_wx_000002", openid = "oMini_000002",
                mass_call_ticket = ticket }).errcode)
            emu.advance(7 * 86400)
            tok3 = pv.corp_token(third, pv.suite_token(third), "wwDOWNCORP01", inst.permanent_code)
            body.mass_call_ticket = ticket
            assert.equal(40058, post(P, tok3, body).errcode)
        end)

        it("is given only in the three months after the install", function()
            local _, _, inst = installed(dk, "wwRETAILCORP01")
            emu.advance(91 * 86400)
            local tokdk = pv.corp_token(dk, nil, "wwRETAILCORP01", inst.permanent_code)
            local _, late = emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", tokdk)
            assert.equal(48002, late.errcode)
            local tok3 = installed(third, "wwDOWNCORP02")   -- a fresh install can
            local _, fresh = emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", tok3)
            assert.equal(0, fresh.errcode)
        end)

        it("an upstream 上下游 app gets one for corpgroup/unionid_to_external_userid; a downstream token none", function()
            emu.options { idconvert_hour_limit = 1 }
            local up = emu.app_token()
            local down = emu.down_token(up, "wwDOWNCORP01", 1000011, 1)
            assert.equal(48002, select(2, emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", down)).errcode)
            local _, d = emu.api("GET", "/cgi-bin/corp/apply_mass_call_ticket", up)
            assert.equal(0, d.errcode)
            local G = "/cgi-bin/corpgroup/unionid_to_external_userid"
            local body = { unionid = "oUnion_wx_000001", openid = "oMini_000001" }
            assert.equal(0, post(G, up, body).errcode)
            assert.equal(45009, post(G, up, body).errcode)
            body.mass_call_ticket = d.mass_call_ticket
            assert.equal(0, post(G, up, body).errcode)
            body.mass_call_ticket = "not-a-ticket"
            assert.equal(40058, post(G, up, body).errcode)
            -- unionid_to_pending_id has a quota of its own, no ticket
            local pending = { unionid = "oUnion_wx_000003", openid = "oMini_000003" }
            assert.equal(0, post("/cgi-bin/corpgroup/unionid_to_pending_id", up, pending).errcode)
            assert.equal(45009, post("/cgi-bin/corpgroup/unionid_to_pending_id", up, pending).errcode)
        end)
    end)

    describe("suite and provider tokens", function()
        it("unionid_to_external_userid_3rd lists the customer in the corps that installed the suite", function()
            local tok1, _, inst = installed(third, "wwDOWNCORP01")
            local suite_token = inst.token
            local d = pv.service("POST", "externalcontact/unionid_to_external_userid_3rd", suite_token,
                { unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            assert.equal(0, d.errcode)
            local new = post("/cgi-bin/externalcontact/get_new_external_userid", tok1,
                { external_userid_list = { "wmDOWN01ext000001" } }).items[1].new_external_userid
            -- wwDOWNCORP05 has the customer too, but not the suite
            assert.same({ { corpid = "wwDOWNCORP01", external_userid = new } }, d.external_userid_info)
            local none = pv.service("POST", "externalcontact/unionid_to_external_userid_3rd", suite_token,
                { unionid = "oUnion_wx_000001", openid = "oMini_000001", corpid = "wwDOWNCORP02" })
            assert.same({}, none.external_userid_info)
            assert.equal(40058, pv.service("POST", "externalcontact/unionid_to_external_userid_3rd", suite_token,
                { unionid = "oUnion_wx_000001", openid = "wrong" }).errcode)
            assert.equal(40082, pv.service("POST", "externalcontact/unionid_to_external_userid_3rd", tok1,
                { unionid = "oUnion_wx_000001", openid = "oMini_000001" }).errcode)
            local dk_token = pv.suite_token(dk)
            assert.equal(48002, pv.service("POST", "externalcontact/unionid_to_external_userid_3rd", dk_token,
                { unionid = "oUnion_wx_000001", openid = "oMini_000001" }).errcode)
        end)

        it("finish_external_userid_migration takes an authorized corp with the provider token", function()
            installed(third, "wwRETAILCORP01")
            local token = pv.provider_token(fx)
            local function finish(body, t)
                return pv.service("POST", "externalcontact/finish_external_userid_migration", t or token, body,
                    "provider_access_token")
            end
            assert.equal(0, finish { corpid = "wwRETAILCORP01" }.errcode)
            assert.equal(40013, finish { corpid = "wwRETAILCORP02" }.errcode)
            assert.equal(41002, finish({}).errcode)
            assert.equal(40082, finish({ corpid = "wwRETAILCORP01" }, pv.suite_token(third)).errcode)
        end)
    end)

    describe("POST /__emulator/customer", function()
        it("refuses what is not a new customer of a fixture corp", function()
            assert.equal(400, customer { unionid = "u", openid = "o" })
            assert.equal(400, customer { unionid = "u", openid = "o", corpid = "wwNOSUCH" })
            assert.equal(400, customer { unionid = "oUnion_wx_000001", openid = "other", corpid = "wwDOWNCORP03" })
            local known = { unionid = "oUnion_wx_000001", openid = "oMini_000001", corpid = "wwDOWNCORP01" }
            assert.equal(400, customer(known))
            known.corpid = "wwDOWNCORP03"
            assert.equal(200, customer(known))
        end)
    end)
end)
