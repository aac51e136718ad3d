-- wecom.api.idconvert without a server: batching, what comes back from odd
-- answers, the stored mass-call ticket, the paced iterator.  The client is
-- a stand-in that records what it is asked to send and answers as told
-- (the integration spec runs the same functions against the emulator).

local idconvert = require "wecom.api.idconvert"
local budget = require "wecom.budget"
local errors = require "wecom.errors"
local memory = require "wecom.store.memory"

local seq = 0

-- fake(answer) -> client; answer(method, path, body) -> data | nil, err
local function fake(answer)
    seq = seq + 1
    local c = { corpid = "wwUNIT" .. seq, base_url = "https://unit.example", store = memory.new(), sent = {} }
    function c.post(self, path, body, _, opts)
        self.sent[#self.sent + 1] = { method = "POST", path = path, body = body, opts = opts }
        return answer("POST", path, body)
    end
    function c.get(self, path)
        self.sent[#self.sent + 1] = { method = "GET", path = path }
        return answer("GET", path)
    end
    return c
end

local function api_error(code)
    return errors.new("api", "failed", { errcode = code })
end

describe("wecom.api.idconvert", function()
    describe("userid_to_openuserid", function()
        it("sends unique ids 1,000 at a time and merges the answers", function()
            local c = fake(function(_, _, body)
                local list, invalid = {}, {}
                for _, id in ipairs(body.userid_list) do
                    if id:sub(1, 1) == "x" then
                        invalid[#invalid + 1] = id
                    else
                        list[#list + 1] = { userid = id, open_userid = "wo" .. id:upper() }
                    end
                end
                return { open_userid_list = list, invalid_userid_list = invalid }
            end)
            local ids = {}
            for i = 1, 2001 do ids[i] = "u" .. i end
            ids[2002] = "u1"          -- a repeat is sent once
            ids[2003] = "x1"
            local map, invalid = idconvert.userid_to_openuserid(c, ids)
            assert.equal(3, #c.sent)
            assert.equal(1000, #c.sent[1].body.userid_list)
            assert.equal(1000, #c.sent[2].body.userid_list)
            assert.same({ "u2001", "x1" }, c.sent[3].body.userid_list)
            assert.equal("woU1", map.u1)
            assert.equal("woU2001", map.u2001)
            assert.same({ "x1" }, invalid)
            assert.is_true(c.sent[1].opts.idempotent)
        end)

        it("stops at a failing batch with err.done = the ids already converted", function()
            local n = 0
            local c = fake(function()
                n = n + 1
                if n == 2 then
                    return nil, api_error(45009)
                end
                return { open_userid_list = {} }
            end)
            local ids = {}
            for i = 1, 1500 do ids[i] = "u" .. i end
            local map, err = idconvert.userid_to_openuserid(c, ids)
            assert.is_nil(map)
            assert.equal(45009, err.errcode)
            assert.equal(1000, err.done)
        end)

        it("keeps only well-formed records; a list that is not one is a decode error", function()
            local c = fake(function()
                return { open_userid_list = { { userid = "a", open_userid = "woA" }, { userid = "b" }, "junk" },
                         invalid_userid_list = { "c", 7 } }
            end)
            local map, invalid = idconvert.userid_to_openuserid(c, { "a", "b", "c" })
            assert.same({ a = "woA" }, map)
            assert.same({ "c" }, invalid)
            local bad = fake(function() return { open_userid_list = "nope" } end)
            local none, err = idconvert.userid_to_openuserid(bad, { "a" })
            assert.is_nil(none)
            assert.equal("decode", err.kind)
        end)
    end)

    it("external_userid_to_pending_id sends 100 at a time; get_new 1,000", function()
        local c = fake(function(_, path, body)
            if path == idconvert.PATH.external_userid_to_pending_id then
                return { result = { { external_userid = body.external_userid[1], pending_id = "p1" } } }
            end
            return { items = {} }
        end)
        local ids = {}
        for i = 1, 250 do ids[i] = "wm" .. i end
        local map = idconvert.external_userid_to_pending_id(c, ids, { chat_id = "wrC" })
        assert.equal(3, #c.sent)
        assert.equal("wrC", c.sent[1].body.chat_id)
        assert.same({ wm1 = "p1", wm101 = "p1", wm201 = "p1" }, map)
        assert.same({}, idconvert.get_new_external_userid(c, ids))
        assert.equal(4, #c.sent)
        assert.equal(idconvert.PATH.get_new_external_userid, c.sent[4].path)
    end)

    describe("mass_call_ticket", function()
        it("keeps the answer 7 days under the corp's key; cached calls send nothing", function()
            local c = fake(function() return { mass_call_ticket = "TICKET" } end)
            local t, expires_at = idconvert.mass_call_ticket(c)
            assert.equal("TICKET", t)
            assert.near(os.time() + 7 * 86400, expires_at, 5)
            assert.equal("TICKET", (idconvert.mass_call_ticket(c)))
            assert.equal(1, #c.sent)
            assert.equal("TICKET", (idconvert.cached_mass_call_ticket(c)))
            -- unionid conversions carry it unless told otherwise
            c.post = function(self, path, body)
                self.sent[#self.sent + 1] = { path = path, body = body }
                return { pending_id = "p" }
            end
            idconvert.unionid_to_external_userid(c, { unionid = "u", openid = "o" })
            assert.equal("TICKET", c.sent[2].body.mass_call_ticket)
            assert.equal(0, c.sent[2].body.subject_type)
            idconvert.unionid_to_external_userid(c, { unionid = "u", openid = "o", mass_call_ticket = false })
            assert.is_nil(c.sent[3].body.mass_call_ticket)
            idconvert.unionid_to_external_userid(c, { unionid = "u", openid = "o", mass_call_ticket = "MINE" })
            assert.equal("MINE", c.sent[4].body.mass_call_ticket)
        end)

        it("names the corp exactly: corpids that differ in case do not share a ticket", function()
            local a = fake(function() return { mass_call_ticket = "A" } end)
            local b = fake(function() return { mass_call_ticket = "B" } end)
            a.corpid, b.corpid = "wpCaseSensitiveCorp", "wpcasesensitivecorp"
            assert.not_equal(idconvert.mass_call_key(a), idconvert.mass_call_key(b))
            assert.equal("A", (idconvert.mass_call_ticket(a)))
            assert.equal("B", (idconvert.mass_call_ticket(b)))
        end)

        it("does not cache a failure or an answer without a ticket", function()
            local answers = { { nil, api_error(48002) }, { { errcode = 0 } }, { { mass_call_ticket = "T" } } }
            local n = 0
            local c = fake(function()
                n = n + 1
                return answers[n][1], answers[n][2]
            end)
            local t, err = idconvert.mass_call_ticket(c)
            assert.is_nil(t)
            assert.equal(48002, err.errcode)
            t, err = idconvert.mass_call_ticket(c)
            assert.is_nil(t)
            assert.equal("decode", err.kind)
            assert.equal("T", (idconvert.mass_call_ticket(c)))
        end)

        it("uses a shorter expires_in from the answer, never a longer one", function()
            local c = fake(function() return { mass_call_ticket = "T", expires_in = 3600 } end)
            local _, expires_at = idconvert.mass_call_ticket(c)
            assert.near(os.time() + 3600, expires_at, 5)
            local d = fake(function() return { mass_call_ticket = "T", expires_in = 1e9 } end)
            _, expires_at = idconvert.mass_call_ticket(d)
            assert.near(os.time() + 7 * 86400, expires_at, 5)
        end)
    end)

    describe("each_unionid", function()
        local items = { { unionid = "u1", openid = "o1" }, { unionid = "u2", openid = "o2" },
                        { unionid = "u3", openid = "o3" } }

        it("takes one call from the budget per item and stops when it is spent (wait = false)", function()
            local c = fake(function(_, _, body) return { external_userid = "wm" .. body.unionid } end)
            local b = budget.new { limits = { { 3600, 2 } } }
            local got = {}
            local ok, err = pcall(function()
                for i, r in idconvert.each_unionid(c, items, { budget = b, wait = false }) do
                    got[i] = r.external_userid
                end
            end)
            assert.is_false(ok)
            assert.same({ "wmu1", "wmu2" }, got)
            assert.equal("rate_limit", err.kind)
            assert.equal(3, err.index)
            assert.equal(2, #c.sent)
        end)

        it("stops after max_api_errors api errors in a row; a success resets the count", function()
            local answers = { false, true, false, false, true }
            local n = 0
            local c = fake(function()
                n = n + 1
                if answers[n] then
                    return { pending_id = "p" }
                end
                return nil, api_error(40058)
            end)
            local five = {}
            for i = 1, 5 do five[i] = { unionid = "u" .. i, openid = "o" } end
            local results, err = idconvert.convert_unionids(c, five, { max_api_errors = 2 })
            assert.equal(40058, err.errcode)
            assert.equal(4, err.index)
            assert.equal(3, #results)
            assert.equal(40058, results[1].error.errcode)
            assert.equal("p", results[2].pending_id)
            assert.equal(40058, results[3].error.errcode)
        end)

        it("raises a failure that is not the item's and keeps raising it", function()
            local c = fake(function() return nil, errors.new("transport", "reset") end)
            local iter = idconvert.each_unionid(c, items)
            local ok, err = pcall(iter)
            assert.is_false(ok)
            assert.equal("transport", err.kind)
            assert.equal(1, err.index)
            local again_ok, again = pcall(iter)
            assert.is_false(again_ok)
            assert.equal(err, again)
        end)

        it("checks items and options before any call", function()
            local c = fake(function() error("no call expected") end)
            assert.has_error(function() idconvert.each_unionid(c, { { unionid = "u" } }) end,
                "wecom:each_unionid: items[1].openid must be a non-empty string (got nil)")
            assert.has_error(function() idconvert.each_unionid(c, items, { budget = {} }) end,
                "wecom:each_unionid: opts.budget must be a wecom.budget (got table)")
            assert.has_error(function() idconvert.convert_unionids(c, items, { on_item = 1 }) end,
                "wecom:convert_unionids: opts.on_item must be a function (got number 1)")
        end)
    end)
end)
