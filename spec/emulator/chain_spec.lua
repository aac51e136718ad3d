-- The emulator's corpgroup APIs: shares (§2), 上下游 chains (§3), paging,
-- visibility of the system app vs an ordinary app, import jobs, rules and
-- the unionid / pending_id mappings.

local emu = require "helpers.emulator"

local P = "/cgi-bin/corpgroup/"

describe("emulator corpgroup", function()
    local fx, system, ordinary, sys_token, ord_token

    emu.app_hooks(function(...) fx, system, ordinary, sys_token, ord_token = ... end)

    local function call(token, path, body)
        return emu.post(token, P .. path, body)
    end

    -- the sorted values of one field over a list of records
    local function sorted(list, field)
        local values = {}
        for i, item in ipairs(list) do values[i] = item[field] end
        table.sort(values)
        return values
    end

    -- expected shares of an app from the fixture itself
    local function fixture_shares(agentid, bt)
        local list = {}
        for _, corp in ipairs(fx.downstream) do
            for _, agent in ipairs(corp.agents) do
                if agent.shared_from == agentid and (agent.business_type or 0) == bt and agent.confirmed ~= false then
                    list[#list + 1] = { corpid = corp.corpid, agentid = agent.agentid }
                end
            end
        end
        return list
    end

    describe("list_app_share_info", function()
        it("pages with limit and cursor until ending = 1", function()
            local expected = fixture_shares(system.agentid, 1)
            assert.is_true(#expected > 5)
            local seen, pages, cursor = {}, 0, nil
            repeat
                local d = call(sys_token, "corp/list_app_share_info",
                    { agentid = system.agentid, business_type = 1, limit = 5, cursor = cursor })
                assert.equal(0, d.errcode)
                assert.is_true(#d.corp_list <= 5)
                for _, c in ipairs(d.corp_list) do
                    seen[#seen + 1] = { corpid = c.corpid, agentid = c.agentid }
                    assert.is_string(c.corp_name)
                end
                pages = pages + 1
                cursor = d.next_cursor
                if d.ending == 0 then
                    assert.not_equal("", cursor)
                end
            until d.ending == 1
            assert.equal("", cursor)
            assert.equal(math.ceil(#expected / 5), pages)
            assert.same(expected, seen)
        end)

        it("returns everything without limit, and hides unconfirmed shares", function()
            local d = call(sys_token, "corp/list_app_share_info", { agentid = system.agentid, business_type = 1 })
            assert.equal(1, d.ending)
            assert.equal(#fixture_shares(system.agentid, 1), #d.corp_list)
            for _, c in ipairs(d.corp_list) do
                assert.not_equal("wwDOWNCORP12", c.corpid) -- its share is not confirmed yet
            end
        end)

        it("separates business_type 0 and 1 and filters by corpid", function()
            local d0 = call(sys_token, "corp/list_app_share_info", { agentid = system.agentid })
            assert.equal(#fixture_shares(system.agentid, 0), #d0.corp_list)
            assert.is_true(#d0.corp_list > 0)
            local one = call(sys_token, "corp/list_app_share_info",
                { agentid = system.agentid, business_type = 1, corpid = "wwDOWNCORP03" })
            assert.equal(1, #one.corp_list)
            assert.equal("wwDOWNCORP03", one.corp_list[1].corpid)
        end)

        it("validates agentid, limit and cursor", function()
            assert.equal(41011, call(sys_token, "corp/list_app_share_info", {}).errcode)
            assert.equal(301002, call(sys_token, "corp/list_app_share_info", { agentid = ordinary.agentid }).errcode)
            assert.equal(40058, call(sys_token, "corp/list_app_share_info",
                { agentid = system.agentid, limit = 101 }).errcode)
            assert.equal(40058, call(sys_token, "corp/list_app_share_info",
                { agentid = system.agentid, cursor = "bogus" }).errcode)
        end)
    end)

    describe("corp/gettoken", function()
        local DOWN01 = { corpid = "wwDOWNCORP01", agentid = 1000011, business_type = 1 }

        it("issues a downstream token for a shared (corpid, agentid, business_type), the same while valid", function()
            local a = call(sys_token, "corp/gettoken", DOWN01)
            assert.equal(0, a.errcode)
            assert.equal(7200, a.expires_in)
            local b = call(sys_token, "corp/gettoken", DOWN01)
            assert.equal(a.access_token, b.access_token)
            emu.advance(7300)
            local c = call(sys_token, "corp/gettoken", DOWN01)
            assert.not_equal(a.access_token, c.access_token)
        end)

        it("refuses what is not shared", function()
            -- wrong agentid, wrong business_type, another app's share, unconfirmed share
            assert.equal(60011, call(sys_token, "corp/gettoken", { corpid = "wwDOWNCORP01", agentid = 1000099,
                business_type = 1 }).errcode)
            assert.equal(60011, call(sys_token, "corp/gettoken", { corpid = "wwDOWNCORP01", agentid = 1000011,
                business_type = 0 }).errcode)
            assert.equal(60011, call(ord_token, "corp/gettoken", { corpid = "wwDOWNCORP01", agentid = 1000011,
                business_type = 1 }).errcode)
            assert.equal(60011, call(sys_token, "corp/gettoken", { corpid = "wwDOWNCORP12", agentid = 1000022,
                business_type = 1 }).errcode)
            assert.equal(40013, call(sys_token, "corp/gettoken", { corpid = "wwNOPE", agentid = 1,
                business_type = 1 }).errcode)
            assert.equal(41011, call(sys_token, "corp/gettoken", { corpid = "wwDOWNCORP01" }).errcode)
            local missing = call(sys_token, "corp/gettoken", { agentid = 1000011 })
            assert.equal(40058, missing.errcode)
            assert.matches("corpid", missing.errmsg)
        end)
    end)

    describe("chains and groups", function()
        it("lists every chain for the system app, the visible ones for an ordinary app", function()
            local _, all = emu.api("GET", P .. "corp/get_chain_list", sys_token)
            assert.equal(#fx.chains, #all.chains)
            local _, some = emu.api("GET", P .. "corp/get_chain_list", ord_token)
            local ids = sorted(some.chains, "chain_id")
            assert.same({ "ChDISTRIB01", "ChSUPPLIER02" }, ids)
        end)

        it("lists groups, all or every group below one (doc 96876's example)", function()
            local all = call(sys_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01" })
            assert.equal(6, #all.groups)
            local root = call(sys_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01", groupid = 1 })
            assert.same(all.groups, root.groups)
            -- 华北区 (2) -> 北京市 (3) -> 海淀区 (4): the child and the grandchild
            local below = call(sys_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01", groupid = 2 })
            assert.same({
                { groupid = 3, group_name = "北京市", parentid = 2, order = 200 },
                { groupid = 4, group_name = "海淀区", parentid = 3, order = 100 },
            }, below.groups)
            local leaf = call(sys_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01", groupid = 4 })
            assert.same({}, leaf.groups)
        end)

        it("limits an ordinary app to its groups", function()
            local d = call(ord_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01" })
            local ids = sorted(d.groups, "groupid")
            assert.same({ 2, 3, 4 }, ids)
            assert.equal(60011, call(ord_token, "corp/get_chain_group",
                { chain_id = "ChSERVICE03" }).errcode)
            assert.equal(60011, call(ord_token, "corp/get_chain_corpinfo_list",
                { chain_id = "ChDISTRIB01", groupid = 5 }).errcode)
        end)

        it("validates chain_id and groupid", function()
            assert.equal(40058, call(sys_token, "corp/get_chain_group", {}).errcode)
            assert.equal(40058, call(sys_token, "corp/get_chain_group", { chain_id = "ChNOPE" }).errcode)
            assert.equal(40058, call(sys_token, "corp/get_chain_group", { chain_id = 5 }).errcode)
            assert.equal(40058, call(sys_token, "corp/get_chain_group",
                { chain_id = "ChDISTRIB01", groupid = 99 }).errcode)
        end)
    end)

    describe("get_chain_corpinfo_list", function()
        local function fixture_corps(chain_id, gid, pending)
            local n = 0
            for _, chain in ipairs(fx.chains) do
                if chain.chain_id == chain_id then
                    for _, c in ipairs(chain.corps) do
                        if c.groupid == gid and (c.corpid or pending) then n = n + 1 end
                    end
                end
            end
            return n
        end

        it("pages through the root group with need_pending", function()
            local total = fixture_corps("ChDISTRIB01", 1, true)
            assert.is_true(total >= 25)
            local seen, pages, cursor, joined = {}, 0, nil, 0
            repeat
                local d = call(sys_token, "corp/get_chain_corpinfo_list",
                    { chain_id = "ChDISTRIB01", need_pending = true, limit = 10, cursor = cursor })
                assert.equal(0, d.errcode)
                for _, c in ipairs(d.group_corps) do
                    local id = c.corpid or c.pending_corpid
                    assert.is_nil(seen[id])
                    seen[id] = true
                    assert.equal(1, c.groupid)
                    if c.is_joined == 1 then
                        joined = joined + 1
                        assert.is_string(c.corpid)
                    else
                        assert.is_string(c.pending_corpid)
                    end
                end
                pages = pages + 1
                cursor = d.next_cursor
            until not d.has_more
            assert.equal(math.ceil(total / 10), pages)
            assert.equal(fixture_corps("ChDISTRIB01", 1, false), joined)
            local n = 0
            for _ in pairs(seen) do n = n + 1 end
            assert.equal(total, n)
        end)

        it("lists only joined corps by default, per group, not recursively", function()
            local d = call(sys_token, "corp/get_chain_corpinfo_list", { chain_id = "ChDISTRIB01" })
            assert.equal(fixture_corps("ChDISTRIB01", 1, false), #d.group_corps)
            assert.is_false(d.has_more)
            local g4 = call(sys_token, "corp/get_chain_corpinfo_list",
                { chain_id = "ChDISTRIB01", groupid = 4, need_pending = true })
            assert.equal(fixture_corps("ChDISTRIB01", 4, true), #g4.group_corps)
        end)

        it("shows invite_userid to the system app only", function()
            local sys = call(sys_token, "corp/get_chain_corpinfo_list", { chain_id = "ChDISTRIB01", groupid = 3 })
            assert.equal("zhangwei", sys.group_corps[1].invite_userid)
            local ord = call(ord_token, "corp/get_chain_corpinfo_list", { chain_id = "ChDISTRIB01", groupid = 3 })
            assert.equal(sys.group_corps[1].corpid, ord.group_corps[1].corpid)
            assert.is_nil(ord.group_corps[1].invite_userid)
        end)
    end)

    describe("single corps", function()
        it("get_chain_corpinfo for joined and pending corps", function()
            local j = call(sys_token, "corp/get_chain_corpinfo", { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" })
            assert.equal(0, j.errcode)
            assert.is_true(j.is_joined)
            assert.equal(3, j.groupid)
            assert.equal(3, j.qualification_status)
            local p = call(sys_token, "corp/get_chain_corpinfo",
                { chain_id = "ChDISTRIB01", pending_corpid = "pdbj0001hd" })
            assert.is_false(p.is_joined)
            -- the doc's example is a corp that has not joined, and it has one
            assert.equal(1, p.qualification_status)
            assert.equal(40058, call(sys_token, "corp/get_chain_corpinfo", { chain_id = "ChDISTRIB01" }).errcode)
            assert.equal(40013, call(sys_token, "corp/get_chain_corpinfo",
                { chain_id = "ChDISTRIB01", corpid = "wwNOPE" }).errcode)
        end)

        it("remove_corp removes (system app only) and reset brings it back", function()
            assert.equal(48002, call(ord_token, "corp/remove_corp",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" }).errcode)
            assert.equal(0, call(sys_token, "corp/remove_corp",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" }).errcode)
            assert.equal(40013, call(sys_token, "corp/get_chain_corpinfo",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" }).errcode)
            assert.equal(40013, call(sys_token, "corp/remove_corp",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" }).errcode)
            emu.reset()
            sys_token = emu.app_token(system.agentid)
            assert.equal(0, call(sys_token, "corp/get_chain_corpinfo",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" }).errcode)
        end)

        it("get_chain_user_custom_id", function()
            local d = call(sys_token, "corp/get_chain_user_custom_id",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP05", userid = "wuting" })
            assert.equal(0, d.errcode)
            assert.equal("880005", d.user_custom_id)
            assert.equal(60111, call(sys_token, "corp/get_chain_user_custom_id",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP05", userid = "nobody" }).errcode)
            assert.equal(41009, call(sys_token, "corp/get_chain_user_custom_id",
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP05" }).errcode)
        end)

        it("get_corp_shared_chain_list", function()
            local d = call(sys_token, "get_corp_shared_chain_list", { corpid = "wwDOWNCORP08" })
            local ids = sorted(d.chains, "chain_id")
            assert.same({ "ChDISTRIB01", "ChSERVICE03", "ChSUPPLIER02" }, ids)
            local o = call(ord_token, "get_corp_shared_chain_list", { corpid = "wwDOWNCORP08" })
            assert.equal(1, #o.chains)
            assert.equal("ChSUPPLIER02", o.chains[1].chain_id)
        end)
    end)

    describe("import_chain_contact", function()
        local good = {
            corp_name = "石家庄新华测试商贸", group_path = "华北区/河北省", custom_id = "HB001",
            contact_info_list = { { name = "赵六", identity_type = 2, mobile = "13912345678",
                user_custom_id = "123456" } },
        }
        local bad = {
            corp_name = "坏数据公司",
            contact_info_list = { { name = "钱七", identity_type = 9, mobile = "13912345679" } },
        }

        it("runs as a job through statuses 1 -> 2 -> 3, with per-contact failures", function()
            emu.options { job_seconds = 50 }
            local d = call(sys_token, "import_chain_contact",
                { chain_id = "ChDISTRIB01", contact_list = { good, bad } })
            assert.equal(0, d.errcode)
            assert.is_string(d.jobid)
            local _, r1 = emu.api("GET", P .. "getresult", sys_token, { jobid = d.jobid })
            assert.equal(1, r1.status)
            assert.is_nil(r1.result)
            -- one job at a time
            assert.equal(45033, call(sys_token, "import_chain_contact",
                { chain_id = "ChDISTRIB01", contact_list = { good } }).errcode)
            emu.advance(20)
            local _, r2 = emu.api("GET", P .. "getresult", sys_token, { jobid = d.jobid })
            assert.equal(2, r2.status)
            emu.advance(40)
            local _, r3 = emu.api("GET", P .. "getresult", sys_token, { jobid = d.jobid })
            assert.equal(3, r3.status)
            assert.equal("ChDISTRIB01", r3.result.chain_id)
            assert.equal(2, r3.result.import_status)
            assert.equal(1, #r3.result.fail_list)
            local f = r3.result.fail_list[1]
            assert.equal("坏数据公司", f.corp_name)
            assert.equal(670016, f.contact_info_list[1].errcode)
            assert.equal("13912345679", f.contact_info_list[1].mobile)
            -- the good corp joined as pending in a group created from group_path
            local groups = call(sys_token, "corp/get_chain_group", { chain_id = "ChDISTRIB01", groupid = 2 })
            local hebei
            for _, g in ipairs(groups.groups) do
                if g.group_name == "河北省" then hebei = g.groupid end
            end
            assert.is_number(hebei)
            local list = call(sys_token, "corp/get_chain_corpinfo_list",
                { chain_id = "ChDISTRIB01", groupid = hebei, need_pending = true })
            assert.equal(1, #list.group_corps)
            assert.equal("石家庄新华测试商贸", list.group_corps[1].corp_name)
            assert.equal("HB001", list.group_corps[1].custom_id)
            -- the slot is free again
            assert.equal(0, call(sys_token, "import_chain_contact",
                { chain_id = "ChDISTRIB01", contact_list = { good } }).errcode)
        end)

        it("validates the request and the caller", function()
            assert.equal(48002, call(ord_token, "import_chain_contact",
                { chain_id = "ChSUPPLIER02", contact_list = { good } }).errcode)
            assert.equal(40058, call(sys_token, "import_chain_contact", { chain_id = "ChDISTRIB01" }).errcode)
            local d = call(sys_token, "import_chain_contact",
                { chain_id = "ChDISTRIB01", contact_list = { { contact_info_list = good.contact_info_list } } })
            assert.equal(40058, d.errcode)
            assert.matches("corp_name", d.errmsg)
            assert.equal(40058, (emu.api("GET", P .. "getresult", sys_token, { jobid = "nope" })) and
                select(2, emu.api("GET", P .. "getresult", sys_token, { jobid = "nope" })).errcode)
        end)

        it("reports all-failed imports with import_status 3", function()
            emu.options { job_seconds = 0 }
            local d = call(sys_token, "import_chain_contact", { chain_id = "ChDISTRIB01", contact_list = { bad } })
            local _, r = emu.api("GET", P .. "getresult", sys_token, { jobid = d.jobid })
            assert.equal(3, r.status)
            assert.equal(3, r.result.import_status)
        end)
    end)

    describe("rules", function()
        local info = {
            owner_corp_range = { departmentids = { 3 }, userids = {} },
            member_corp_range = { groupids = { 7 }, corpids = { "wwDOWNCORP07" } },
        }

        it("supports list, get, add, modify and delete", function()
            local ids = call(sys_token, "rule/list_ids", { chain_id = "ChDISTRIB01" }).rule_ids
            assert.same({ 1, 2 }, ids)
            local added = call(sys_token, "rule/add_rule", { chain_id = "ChDISTRIB01", rule_info = info })
            assert.equal(0, added.errcode)
            assert.equal(3, added.rule_id)
            local got = call(sys_token, "rule/get_rule_info", { chain_id = "ChDISTRIB01", rule_id = 3 })
            assert.same(info, got.rule_info)
            local changed = { owner_corp_range = { userids = { "liuyang" } }, member_corp_range = { groupids = { 2 } } }
            assert.equal(0, call(sys_token, "rule/modify_rule",
                { chain_id = "ChDISTRIB01", rule_id = 3, rule_info = changed }).errcode)
            got = call(sys_token, "rule/get_rule_info", { chain_id = "ChDISTRIB01", rule_id = 3 })
            assert.same({ "liuyang" }, got.rule_info.owner_corp_range.userids)
            assert.equal(0, call(sys_token, "rule/delete_rule", { chain_id = "ChDISTRIB01", rule_id = 1 }).errcode)
            assert.same({ 2, 3 }, call(sys_token, "rule/list_ids", { chain_id = "ChDISTRIB01" }).rule_ids)
            assert.equal(40058, call(sys_token, "rule/get_rule_info",
                { chain_id = "ChDISTRIB01", rule_id = 1 }).errcode)
        end)

        it("needs the system app and the chain's creator corp, and a complete rule_info", function()
            assert.equal(48002, call(ord_token, "rule/list_ids", { chain_id = "ChSUPPLIER02" }).errcode)
            assert.equal(48002, call(sys_token, "rule/list_ids", { chain_id = "ChSERVICE03" }).errcode)
            assert.equal(40058, call(sys_token, "rule/add_rule", { chain_id = "ChDISTRIB01" }).errcode)
            local d = call(sys_token, "rule/add_rule", { chain_id = "ChDISTRIB01",
                rule_info = { owner_corp_range = { userids = { "x" } }, member_corp_range = {} } })
            assert.equal(40058, d.errcode)
            assert.matches("member_corp_range", d.errmsg)
        end)
    end)

    describe("unionid mappings", function()
        local CUSTOMER1 = { unionid = "oUnion_wx_000001", openid = "oMini_000001" }
        local CUSTOMER2 = { unionid = "oUnion_wx_000002", openid = "oMini_000002" }

        it("maps a unionid to external_userids in the app's shared corps", function()
            local d = call(sys_token, "unionid_to_external_userid", CUSTOMER1)
            assert.equal(0, d.errcode)
            assert.equal(2, #d.external_userid_info)
            local o = call(ord_token, "unionid_to_external_userid", CUSTOMER1)
            assert.same({ { corpid = "wwDOWNCORP01", external_userid = "wmDOWN01ext000001" } }, o.external_userid_info)
            local one = call(sys_token, "unionid_to_external_userid",
                { unionid = "oUnion_wx_000001", openid = "oMini_000001", corpid = "wwDOWNCORP05" })
            assert.equal(1, #one.external_userid_info)
            assert.equal(40058, call(sys_token, "unionid_to_external_userid",
                { unionid = "oUnion_wx_000001", openid = "oMini_000002" }).errcode)
            assert.equal(40058, call(sys_token, "unionid_to_external_userid", { unionid = "oUnion_wx_000001" }).errcode)
        end)

        it("issues stable pending_ids and converts external_userids to them", function()
            local a = call(sys_token, "unionid_to_pending_id", CUSTOMER2)
            assert.equal(0, a.errcode)
            local b = call(sys_token, "unionid_to_pending_id", CUSTOMER2)
            assert.equal(a.pending_id, b.pending_id)
            local r = call(sys_token, "batch/external_userid_to_pending_id",
                { external_userid = { "wmDOWN02ext000002", "wmDOWN01ext000001", "unknown" } })
            assert.same({ { external_userid = "wmDOWN02ext000002", pending_id = a.pending_id } }, r.result)
            -- a pending_id lives 90 days on the emulator clock
            emu.advance(90 * 86400 + 1)
            sys_token = emu.app_token(system.agentid)
            local expired = call(sys_token, "batch/external_userid_to_pending_id",
                { external_userid = { "wmDOWN02ext000002" } })
            assert.equal(0, expired.errcode)
            assert.same({}, expired.result)
            local too_many = {}
            for i = 1, 101 do too_many[i] = "x" .. i end
            assert.equal(40058, call(sys_token, "batch/external_userid_to_pending_id",
                { external_userid = too_many }).errcode)
        end)
    end)
end)
