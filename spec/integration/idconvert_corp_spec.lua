-- The account-ID conversions and the mass-call ticket on corp clients,
-- against the emulator: a 代开发 app's client (wecom.new with the permanent
-- code as its secret) and the upstream corp's self-built apps.

local emu = require "helpers.emulator"
local pv = require "helpers.provider"
local sh = require "helpers.sh"
local wecom = require "wecom"
local budget = require "wecom.budget"

local info, fx, dir

local function fresh_store()
    -- a store per test: the memory store is process-wide, and each test starts
    -- with a reset emulator that knows no ticket
    local path = dir .. "/" .. tostring(math.random(1, 1e9))
    assert(sh.run("mkdir -m 700 -p " .. sh.quote(path)))
    return wecom.store.file(path)
end

-- a client of the 代开发 template installed in corpid
local function customized(corpid, store)
    local dk = pv.suite(fx, true)
    local inst = pv.install(dk, corpid)
    return wecom.new { corpid = corpid, secret = inst.permanent_code, agentid = inst.agentid,
                       base_url = info.base_url, ca_file = info.ca_file, retries = 0, store = store },
        inst
end

local function flip_case(s)
    return (s:gsub("%a", function(c) return c == c:upper() and c:lower() or c:upper() end))
end

describe("account-ID conversions (emulator)", function()
    local store

    emu.hooks(function(f, _, _, i)
        info, fx = i, f
        dir = sh.tmpdir("wecom-idconvert")
    end)

    teardown(function()
        sh.run("rm -rf " .. sh.quote(dir))
    end)

    before_each(function()
        store = fresh_store()
    end)

    describe("client:userid_to_openuserid()", function()
        it("maps userids to open_userids and lists the invalid ones", function()
            local c = customized("wwRETAILCORP01", store)
            local map, invalid = assert(c:userid_to_openuserid { "qianwei", "nobody", "dongxue", "qianwei" })
            assert.matches("^wo%w+$", map.qianwei)
            assert.matches("^wo%w+$", map.dongxue)
            assert.is_nil(map.nobody)
            assert.same({ "nobody" }, invalid)
        end)

        it("sends 1,000 ids a call, however many there are", function()
            local c = customized("wwRETAILCORP01", store)
            local ids = {}
            for i = 1, 2500 do ids[i] = "u" .. i end
            ids[1200] = "qianwei"
            local before = emu.calls("/cgi-bin/batch/userid_to_openuserid")
            local map, invalid = assert(c:userid_to_openuserid(ids))
            assert.equal(3, emu.calls("/cgi-bin/batch/userid_to_openuserid") - before)
            assert.is_string(map.qianwei)
            assert.equal(2499, #invalid)
            assert.same({}, select(2, assert(c:userid_to_openuserid {})))
        end)

        it("returns the API's error with err.done; raises on bad arguments", function()
            local c = customized("wwRETAILCORP01", store)
            emu.fault { path = "/cgi-bin/batch/userid_to_openuserid", count = 1, errcode = 48002 }
            local map, err = c:userid_to_openuserid { "qianwei" }
            assert.is_nil(map)
            assert.equal("api", err.kind)
            assert.equal(48002, err.errcode)
            assert.equal(0, err.done)
            assert.has_error(function() c:userid_to_openuserid("qianwei") end,
                "wecom:userid_to_openuserid: userids must be a table (got string)")
            assert.has_error(function() c:userid_to_openuserid { "a", "" } end,
                "wecom:userid_to_openuserid: userids[2] must be a non-empty string (got empty string)")
            -- a self-built app may not call it
            local _, e2 = emu.client(true, { store = store }):userid_to_openuserid { "zhangwei" }
            assert.equal(48002, e2.errcode)
        end)
    end)

    describe("client:openuserid_to_userid()", function()
        it("turns a provider app's open_userids into the corp's userids, case-sensitively", function()
            local c, inst = customized("wwUPSTREAMCORP", store)
            local opens = assert(c:userid_to_openuserid { "zhangwei", "liuyang" })
            local app = emu.client(true, { store = store })
            local map, invalid = assert(app:openuserid_to_userid(
                { opens.zhangwei, opens.liuyang, flip_case(opens.zhangwei) }, inst.agentid))
            assert.same({ [opens.zhangwei] = "zhangwei", [opens.liuyang] = "liuyang" }, map)
            assert.same({ flip_case(opens.zhangwei) }, invalid)
            local none, err = app:openuserid_to_userid({ opens.zhangwei }, 1000003)
            assert.is_nil(none)
            assert.equal(40056, err.errcode)
            assert.has_error(function() app:openuserid_to_userid({ "x" }) end,
                "wecom:openuserid_to_userid: source_agentid must be an integer >= 0 (got nil)")
        end)
    end)

    describe("external_userid forms", function()
        it("get_new_external_userid, to_service and from_service", function()
            local status, added = emu.request("POST", "/__emulator/customer", { body = {
                unionid = "oUnion_up_9", openid = "oMini_up_9", corpid = "wwUPSTREAMCORP" } })
            assert.equal(200, status)
            local c, inst = customized("wwUPSTREAMCORP", store)
            local map = assert(c:get_new_external_userid { added.external_userid, "wmNOBODY" })
            assert.same({ [added.external_userid] = added.open_external_userid }, map)
            local chat = assert(c:get_new_external_userid({ added.external_userid }, { chat_id = "wrGROUP1" }))
            assert.same(map, chat)
            assert.equal(added.open_external_userid, assert(c:to_service_external_userid(added.external_userid)))
            local app = emu.client(true, { store = store })
            assert.equal(added.external_userid,
                assert(app:from_service_external_userid(added.open_external_userid, inst.agentid)))
            local none, err = c:to_service_external_userid("wmNOBODY")
            assert.is_nil(none)
            assert.equal(40096, err.errcode)
            assert.has_error(function() c:get_new_external_userid({ "x" }, { chatid = "wr" }) end,
                "wecom:get_new_external_userid: unknown option 'chatid'")
        end)
    end)

    describe("client:unionid_to_external_userid()", function()
        it("gives an external_userid or a pending_id, which external_userid_to_pending_id maps back", function()
            local c = customized("wwDOWNCORP01", store)
            local known = assert(c:unionid_to_external_userid {
                unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            assert.equal(assert(c:get_new_external_userid { "wmDOWN01ext000001" })["wmDOWN01ext000001"],
                known.external_userid)
            local later = assert(c:unionid_to_external_userid {
                unionid = "oUnion_wx_000003", openid = "oMini_000003", subject_type = 1 })
            assert.is_string(later.pending_id)
            assert.is_nil(later.external_userid)
            local _, added = emu.request("POST", "/__emulator/customer", { body = {
                unionid = "oUnion_wx_000003", openid = "oMini_000003", corpid = "wwDOWNCORP01" } })
            local map = assert(c:external_userid_to_pending_id { added.open_external_userid, known.external_userid })
            assert.same({ [added.open_external_userid] = later.pending_id }, map)
            assert.has_error(function()
                c:unionid_to_external_userid { unionid = "u", openid = "o", subject_type = 2 }
            end,
                "wecom:unionid_to_external_userid: opts.subject_type must be 0 (the corp's own mini program or "
                .. "official account) or 1 (the provider's) (got number 2)")
        end)
    end)

    describe("client:mass_call_ticket()", function()
        it("applies once, keeps the ticket in the store and sends it with the conversions", function()
            emu.options { idconvert_hour_limit = 1 }
            local c = customized("wwDOWNCORP01", store)
            local ticket, expires_at = assert(c:mass_call_ticket())
            assert.is_string(ticket)
            assert.near(os.time() + 7 * 86400, expires_at, 60)
            assert.equal(ticket, assert(c:mass_call_ticket()))
            assert.equal(1, emu.calls("/cgi-bin/corp/apply_mass_call_ticket"))
            -- the quota is lifted for calls that carry it, which is every call now
            for _ = 1, 3 do
                assert(c:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            end
            assert(c:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001",
                mass_call_ticket = false })
            local _, err = c:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001",
                mass_call_ticket = false }
            assert.equal("rate_limit", err.kind)
            assert.equal(45009, err.errcode)
        end)

        it("survives a token error, a new client, another secret of the corp and a restart", function()
            local c = customized("wwDOWNCORP01", store)
            local ticket = assert(c:mass_call_ticket())
            emu.fault { path = "/cgi-bin/batch/userid_to_openuserid", count = 1, errcode = 40014 }
            assert(c:userid_to_openuserid { "lina" })
            -- the same corp through another client, its own secret, a store opened afresh
            local again = wecom.new { corpid = "wwDOWNCORP01", secret = "another secret", base_url = info.base_url,
                                      ca_file = info.ca_file, store = wecom.store.file(store.dir) }
            assert.equal(ticket, assert(again:mass_call_ticket()))
            assert.equal(1, emu.calls("/cgi-bin/corp/apply_mass_call_ticket"))
        end)

        it("is never fetched twice when the first application fails, nor cached then", function()
            local c = customized("wwDOWNCORP01", store)
            emu.fault { path = "/cgi-bin/corp/apply_mass_call_ticket", count = 1, errcode = 48002 }
            local t, err = c:mass_call_ticket()
            assert.is_nil(t)
            assert.equal(48002, err.errcode)
            assert.is_nil(store:get(require("wecom.api.idconvert").mass_call_key(c)))
            assert(c:mass_call_ticket())
        end)

        it("an upstream 上下游 app's ticket goes with chain:unionid_to_external_userid", function()
            emu.options { idconvert_hour_limit = 1 }
            local app = emu.client(true, { store = store })
            assert(app:mass_call_ticket())
            for _ = 1, 3 do
                assert(app.chain:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001" })
            end
            assert(app.chain:unionid_to_external_userid { unionid = "oUnion_wx_000001", openid = "oMini_000001",
                mass_call_ticket = false })
            local _, err = app.chain:unionid_to_external_userid { unionid = "oUnion_wx_000001",
                openid = "oMini_000001", mass_call_ticket = false }
            assert.equal(45009, err.errcode)
        end)
    end)

    describe("client:each_unionid() / convert_unionids()", function()
        local items = {
            { unionid = "oUnion_wx_000001", openid = "oMini_000001" },
            { unionid = "oUnion_wx_000002", openid = "wrong" },
            { unionid = "oUnion_wx_000003", openid = "oMini_000003" },
            { unionid = "oUnion_wx_000004", openid = "oMini_000004" },
        }

        it("converts item by item, reporting each item's API error and going on", function()
            local c = customized("wwDOWNCORP01", store)
            local seen = {}
            for i, result, err in c:each_unionid(items) do
                seen[i] = result or err
            end
            assert.is_string(seen[1].external_userid)
            assert.equal(40058, seen[2].errcode)
            assert.is_string(seen[3].pending_id)
            assert.is_string(seen[4].pending_id)
        end)

        it("stops before the budget is spent, at the item to resume from, without a 45009", function()
            local c = customized("wwDOWNCORP01", store)
            local b = budget.new { limits = { { 3600, 2 } } }
            local results, err = c:convert_unionids(items, { budget = b, wait = false })
            assert.equal(2, #results)
            assert.equal("rate_limit", err.kind)
            assert.is_nil(err.errcode)
            assert.equal(3, err.index)
            assert.is_true(err.retry_after > 0 and err.retry_after <= 3600 + 60)
            assert.equal(2, emu.calls("/cgi-bin/idconvert/unionid_to_external_userid"))
        end)

        it("waits for the budget when allowed, telling on_wait", function()
            local c = customized("wwDOWNCORP01", store)
            local b = budget.new { limits = { { 0.5, 2 } } }
            local waits, progress = {}, {}
            local results, err = c:convert_unionids(items, { budget = b, on_wait = function(s, i)
                waits[#waits + 1] = { s, i }
            end, on_item = function(i) progress[#progress + 1] = i end })
            assert.is_nil(err)
            assert.equal(4, #results)
            assert.equal(40058, results[2].error.errcode)
            assert.same({ 1, 2, 3, 4 }, progress)
            assert.equal(3, waits[1][2])
            assert.is_true(waits[1][1] > 0 and waits[1][1] <= 0.6)
        end)

        it("stops at the server's 45009 and on a token failure, raising from the iterator", function()
            emu.options { idconvert_hour_limit = 2 }
            local c = customized("wwDOWNCORP01", store)
            local results, err = c:convert_unionids(items)
            -- (item 2's bad openid was refused before it counted)
            assert.equal(3, #results)
            assert.equal(45009, err.errcode)
            assert.equal(4, err.index)
            local fresh = wecom.new { corpid = "wwDOWNCORP01", secret = "not the secret", base_url = info.base_url,
                                      ca_file = info.ca_file, retries = 0, store = fresh_store() }
            local ok, raised = pcall(function()
                for _ in fresh:each_unionid(items) do end
            end)
            assert.is_false(ok)
            assert.equal("token", raised.kind)
            assert.equal(1, raised.index)
            assert.has_error(function() c:each_unionid { { unionid = "u" } } end,
                "wecom:each_unionid: items[1].openid must be a non-empty string (got nil)")
        end)
    end)
end)
