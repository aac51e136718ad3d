-- wecom.store.redis against a private redis-server (with a password):
-- store semantics, key layout, db and password options, Redis going away
-- and coming back.

local core = require "wecom.core"
local errors = require "wecom.errors"
local redis_store = require "wecom.store.redis"
local redis_server = require "helpers.redis"
local contract = require "helpers.store_contract"
local child = require "helpers.child"

local PASSWORD = "store-spec-pass"

describe("wecom.store.redis", function()
    local srv, direct

    local function new_store(opts)
        local o = { port = srv.port, password = PASSWORD, reconnect_delay = 0 }
        for k, v in pairs(opts or {}) do o[k] = v end
        return redis_store.new(o)
    end

    setup(function()
        srv = redis_server.start{ password = PASSWORD }
        direct = assert(srv:connect())
    end)

    teardown(function()
        if direct then direct:close() end
        if srv then srv:destroy() end
    end)

    before_each(function()
        if not direct:connected() then direct = assert(srv:connect()) end
        assert.equal("OK", direct:command("FLUSHALL"))
    end)

    contract.describe(function()
        return {
            name = "redis",
            new = new_store,
            raw = function(key, expires_text, value)
                assert.equal("OK", direct:command("SET", "wecom:" .. key, expires_text .. "\n" .. value))
                return true
            end,
            raw_text = function(key, text)
                assert.equal("OK", direct:command("SET", "wecom:" .. key, text))
            end,
            sleep = core.sleep,
            fill = 20,     -- Redis under maxmemory: "durable entries" below
        }
    end)

    describe("construction", function()
        it("is what wecom.store.redis builds, and does not connect yet", function()
            local wecom = require "wecom"
            local store = wecom.store.redis{ port = 1, password = PASSWORD }
            assert.equal("wecom.store.redis (127.0.0.1:1, db 0, prefix wecom:)", tostring(store))
        end)

        it("raises on options of the wrong type or range", function()
            assert.has_error(function() redis_store.new("localhost") end)
            assert.has_error(function() redis_store.new{ hostname = "x" } end)
            assert.has_error(function() redis_store.new{ port = "6379" } end)
            assert.has_error(function() redis_store.new{ port = 0 } end)
            assert.has_error(function() redis_store.new{ port = 6379.5 } end)
            assert.has_error(function() redis_store.new{ db = -1 } end)
            assert.has_error(function() redis_store.new{ timeout = 0 } end)
            assert.has_error(function() redis_store.new{ password = 123 } end)
            assert.has_error(function() redis_store.new{ prefix = false } end)
        end)
    end)

    describe("get and set", function()
        it("stores under the prefix with a Redis expiry matching expires_at", function()
            local store = new_store{ prefix = "app1:" }
            assert.is_true(store:set("wecom:token:x", "v", core.now() + 100))
            local pttl = direct:command("PTTL", "app1:wecom:token:x")
            assert.is_true(pttl > 98000 and pttl <= 100000, tostring(pttl))
            assert.matches("\nv$", direct:command("GET", "app1:wecom:token:x"))
            assert.is_nil((new_store{ prefix = "app2:" }:get("wecom:token:x")))
        end)

        it("drops an entry set with a past expiry", function()
            local store = new_store()
            assert.is_true(store:set("k", "v", core.now() + 60))
            assert.is_true(store:set("k", "late", core.now() - 1))
            assert.is_nil((store:get("k")))
            assert.equal(0, direct:command("EXISTS", "wecom:k"))
        end)

        it("does not return an entry whose expiry passed by this host's clock", function()
            direct:command("SET", "wecom:k", string.format("%.3f\nold", core.now() - 5))
            local v, err = new_store():get("k")
            assert.is_nil(v)
            assert.is_nil(err)
        end)

        it("reports a Redis error reply as a store error", function()
            direct:command("LPUSH", "wecom:k", "a list, not a string")
            local v, err = new_store():get("k")
            assert.is_nil(v)
            assert.is_true(errors.is_error(err))
            assert.equal("store", err.kind)
            assert.matches("WRONGTYPE", err.errmsg)
        end)

    end)

    describe("durable entries", function()
        local SUITE = "wecom:suite:wwSUITE:corp:"

        local function info(section, field)
            return tonumber(direct:command("INFO", section):match(field .. ":(%d+)"))
        end

        it("are SET without a TTL and listed in the sorted set <prefix>durable", function()
            local store = new_store{ prefix = "app1:" }
            assert.is_true(store:set_durable(SUITE .. "wwA", "{code}"))
            assert.is_true(store:set_durable("wecom:token:x:ticket:mass_call", "T", core.now() + 600))
            assert.is_true(store:set(SUITE .. "wwA:token", "tok", core.now() + 600))
            assert.equal(-1, direct:command("TTL", "app1:" .. SUITE .. "wwA"))
            assert.equal(-1, direct:command("TTL", "app1:wecom:token:x:ticket:mass_call"))
            assert.equal("-\n{code}", direct:command("GET", "app1:" .. SUITE .. "wwA"))
            assert.same({ "wecom:suite:wwSUITE:corp:wwA", "wecom:token:x:ticket:mass_call" },
                direct:command("ZRANGE", "app1:durable", 0, -1))
            assert.same({ SUITE .. "wwA" }, store:list_durable(SUITE))
            assert.same({}, new_store{ prefix = "app2:" }:list_durable(""))
            assert.is_true(store:delete(SUITE .. "wwA"))
            assert.same({ "wecom:token:x:ticket:mass_call" }, direct:command("ZRANGE", "app1:durable", 0, -1))
        end)

        it("are never evicted under maxmemory with a volatile-* policy, while expiring entries are", function()
            local store = new_store()
            assert.is_true(store:set_durable(SUITE .. "wwA", "permanent"))
            assert.equal("OK", direct:command("CONFIG", "RESETSTAT"))
            local used = info("memory", "used_memory")
            assert.equal("OK", direct:command("CONFIG", "SET", "maxmemory", tostring(used + 2 * 1024 * 1024)))
            assert.equal("OK", direct:command("CONFIG", "SET", "maxmemory-policy", "volatile-lru"))
            local ok, err = pcall(function()
                local big = string.rep("x", 16384)
                for i = 1, 400 do     -- 6.4 MB through 2 MB of room
                    assert.is_true(store:set("wecom:token:fill" .. i, big, core.now() + 600))
                end
                assert.is_true(info("stats", "evicted_keys") > 0, "Redis evicted nothing")
                assert.equal("permanent", (store:get(SUITE .. "wwA")))
                assert.same({ SUITE .. "wwA" }, store:list_durable(SUITE))
                assert.is_true(store:set_durable(SUITE .. "wwB", "second"))
                assert.equal("second", (store:get(SUITE .. "wwB")))
            end)
            direct:command("CONFIG", "SET", "maxmemory", "0")
            direct:command("CONFIG", "SET", "maxmemory-policy", "noeviction")
            assert(ok, err)
        end)

        it("with noeviction, a write past maxmemory fails with a store error and nothing goes", function()
            local store = new_store()
            assert.is_true(store:set_durable(SUITE .. "wwA", "permanent"))
            assert.equal("OK", direct:command("CONFIG", "RESETSTAT"))
            local used = info("memory", "used_memory")
            assert.equal("OK", direct:command("CONFIG", "SET", "maxmemory", tostring(used + 1024 * 1024)))
            local ok, err = pcall(function()
                local big, refused = string.rep("x", 16384), nil
                local written = 0
                for i = 1, 400 do
                    local done, serr = store:set("wecom:token:fill" .. i, big, core.now() + 600)
                    if not done then
                        refused = serr
                        break
                    end
                    written = i
                end
                assert.is_true(errors.is_error(refused), "no write was refused")
                assert.equal("store", refused.kind)
                assert.matches("OOM", refused.errmsg)
                assert.equal(0, info("stats", "evicted_keys"))
                assert.equal("permanent", (store:get(SUITE .. "wwA")))
                assert.equal(written, #direct:command("KEYS", "wecom:wecom:token:fill*"))
            end)
            direct:command("CONFIG", "SET", "maxmemory", "0")
            assert(ok, err)
        end)

        it("hold a mass-call ticket without a TTL for its 7 days; one stored with a TTL still reads", function()
            local idconvert = require "wecom.api.idconvert"
            local store, applied = new_store(), 0
            local function client(corpid)
                return { corpid = corpid, base_url = "https://unit.example", store = store,
                    get = function()
                        applied = applied + 1
                        return { mass_call_ticket = "MASS-" .. corpid }
                    end }
            end
            local c = client("wwMASS")
            local ticket, expires_at = idconvert.mass_call_ticket(c)
            assert.equal("MASS-wwMASS", ticket)
            assert.is_true(math.abs(expires_at - (core.now() + 7 * 86400)) < 5)
            local key = idconvert.mass_call_key(c)
            assert.equal(-1, direct:command("TTL", "wecom:" .. key))
            assert.same({ key }, store:list_durable(key))
            assert.equal("MASS-wwMASS", (idconvert.mass_call_ticket(client("wwMASS"))))
            assert.equal(1, applied)

            -- written by an earlier version: an expiring entry, read as it is
            local old = client("wwOLD")
            assert.is_true(store:set(idconvert.mass_call_key(old), "OLD-TICKET", core.now() + 3600))
            assert.equal("OLD-TICKET", (idconvert.mass_call_ticket(old)))
            assert.equal(1, applied)
        end)

        it("survive a reconnect, a new process, and a Redis restart that loads a snapshot", function()
            local store = new_store()
            assert.is_true(store:set_durable(SUITE .. "wwA", "permanent"))
            assert.is_true(direct:command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1)
            assert.equal("permanent", (store:get(SUITE .. "wwA")))     -- over a new connection
            local out = child.run([[
                local store = require("wecom.store.redis").new { port = tonumber(arg[1]), password = arg[2] }
                io.write(store:get(arg[3]), " ", table.concat(store:list_durable(arg[4]), ","))
            ]], { tostring(srv.port), PASSWORD, SUITE .. "wwA", SUITE })
            assert.equal("permanent " .. SUITE .. "wwA", out)

            -- what survives a restart of Redis is its persistence's business:
            -- the spec's server saves only when told (SAVE) and loads that
            assert.is_true(store:set("wecom:token:t", "tok", core.now() + 600))
            assert.equal("OK", direct:command("SAVE"))
            srv:restart()
            direct = assert(srv:connect())
            os.remove(srv.dir .. "/dump.rdb")
            assert.equal("permanent", (store:get(SUITE .. "wwA")))
            assert.same({ SUITE .. "wwA" }, store:list_durable(SUITE))
            assert.equal(-1, direct:command("TTL", "wecom:" .. SUITE .. "wwA"))
            assert.equal("tok", (store:get("wecom:token:t")))
        end)
    end)

    describe("lock", function()
        it("lets one holder in until it unlocks", function()
            local a, b = new_store(), new_store()
            assert.is_true(a:lock("k", 30))
            assert.is_false(b:lock("k", 30))
            assert.is_false(a:lock("k", 30))
            assert.is_true(b:lock("other", 30))
            local pttl = direct:command("PTTL", "wecom:lock:k")
            assert.is_true(pttl > 29000 and pttl <= 30000, tostring(pttl))
            assert.is_true(a:unlock("k"))
            assert.equal(0, direct:command("EXISTS", "wecom:lock:k"))
            assert.is_true(b:lock("k", 30))
        end)

        it("uses a different random owner per store object", function()
            local a, b = new_store(), new_store()
            assert.is_true(a:lock("k1", 30))
            assert.is_true(b:lock("k2", 30))
            local o1, o2 = direct:command("GET", "wecom:lock:k1"), direct:command("GET", "wecom:lock:k2")
            assert.is_true(#o1 >= 16)
            assert.not_equal(o1:match("^[^:]+"), o2:match("^[^:]+"))
            assert.is_true(b:unlock("k1"))    -- not b's: stays
            assert.equal(o1, direct:command("GET", "wecom:lock:k1"))
        end)

        it("after a fork, the child drops the parent's connection and lock ownership", function()
            local a, b = new_store(), new_store()
            assert.is_true(a:lock("k", 30))
            local parent_conn = a.conn
            a.pid = -1      -- as seen from a forked child: another pid
            assert.is_true(a:unlock("k"))
            assert.is_false(parent_conn:connected())
            assert.is_false(b:lock("k", 30))
            assert.is_false(a:lock("k", 30))
        end)

        it("gives the lock to exactly one of several processes", function()
            contract.lock_race('require("wecom.store.redis").new{ port = tonumber(arg[1]), password = arg[2] }',
                { srv.port, PASSWORD })
        end)
    end)

    describe("options", function()
        it("keeps databases apart", function()
            local store = new_store{ db = 2 }
            assert.is_true(store:set("k", "in-two", core.now() + 60))
            assert.equal(0, direct:command("EXISTS", "wecom:k"))
            local two = assert(srv:connect{ db = 2 })
            assert.equal(1, two:command("EXISTS", "wecom:k"))
            two:close()
            assert.equal("wecom.store.redis (127.0.0.1:" .. srv.port .. ", db 2, prefix wecom:)", tostring(store))
        end)

        it("fails every method with a store error on a wrong password, without showing it", function()
            local store = new_store{ password = "wrong-password-xyz" }
            for _, call in ipairs({
                function() return store:get("k") end,
                function() return store:set("k", "v", core.now() + 60) end,
                function() return store:delete("k", "v") end,
                function() return store:lock("k", 10) end,
            }) do
                local ok, err = call()
                assert.is_nil(ok)
                assert.equal("store", err.kind)
                assert.matches("AUTH failed", tostring(err))
                assert.is_nil(tostring(err):find("wrong-password-xyz", 1, true))
                assert.is_nil(tostring(err):find(PASSWORD, 1, true))
            end
        end)
    end)

    -- issue 10, item 9
    describe("the password", function()
        -- every string reachable through the fields (and metatables) of v
        local function strings(v, out, seen)
            out, seen = out or {}, seen or {}
            if type(v) == "table" and not seen[v] then
                seen[v] = true
                for k, x in pairs(v) do
                    strings(k, out, seen)
                    strings(x, out, seen)
                end
                strings(getmetatable(v), out, seen)
            elseif type(v) ~= "table" then
                out[#out + 1] = tostring(v)
            end
            return out
        end

        it("is in no field of the store, nor in tostring, before and after use", function()
            local store = new_store()
            local function assert_hidden()
                for _, s in ipairs(strings(store)) do
                    assert.is_nil(s:find(PASSWORD, 1, true), "a field shows the password")
                end
                assert.is_nil(tostring(store):find(PASSWORD, 1, true))
                assert.is_nil(store.password)
                assert.is_nil(store.connect_opts)
            end
            assert_hidden()
            assert.is_true(store:set("k", "v", core.now() + 60))
            assert.equal("v", (store:get("k")))
            assert_hidden()
        end)
    end)

    -- issue 10, item 4
    it("lets a cold token.get past a lock left by a killed process within its wait", function()
        contract.after_killed_holder('require("wecom.store.redis").new{ port = tonumber(arg[1]), password = arg[2] }',
            { srv.port, PASSWORD }, new_store())
    end)

    describe("when Redis is down", function()
        it("returns store errors naming host and port from every method", function()
            local store = redis_store.new{ port = 1, password = PASSWORD }
            for _, call in ipairs({
                function() return store:get("k") end,
                function() return store:set("k", "v", core.now() + 60) end,
                function() return store:delete("k") end,
                function() return store:delete("k", "v") end,
                function() return store:lock("k", 10) end,
            }) do
                local ok, err = call()
                assert.is_nil(ok)
                assert.equal("store", err.kind)
                assert.matches("127.0.0.1:1", tostring(err), 1, true)
                assert.is_nil(tostring(err):find(PASSWORD, 1, true))
            end
        end)

        it("recovers after a restart on the same port", function()
            local store = new_store()
            assert.is_true(store:set("k", "before", core.now() + 60))
            srv:stop()
            local v, err = store:get("k")
            assert.is_nil(v)
            assert.equal("store", err.kind)
            local ok, lerr = store:lock("k", 10)
            assert.is_nil(ok)
            assert.equal("store", lerr.kind)
            srv:launch()
            direct = assert(srv:connect())
            -- no persistence: the entry went with the old server
            assert.is_nil((store:get("k")))
            assert.is_true(store:set("k", "after", core.now() + 60))
            assert.equal("after", (store:get("k")))
        end)

        it("hides a restart between two calls behind one reconnect", function()
            local store = new_store()
            assert.is_true(store:set("k", "v", core.now() + 60))
            srv:restart()
            direct = assert(srv:connect())
            local v, err = store:get("k")   -- the old connection is dead; a new one answers
            assert.is_nil(v)
            assert.is_nil(err)
            assert.is_true(store:set("k", "v2", core.now() + 60))
            assert.equal("v2", (store:get("k")))
        end)

        it("does not retry connecting before reconnect_delay has passed", function()
            local store = new_store{ reconnect_delay = 3600 }
            srv:stop()
            local _, err = store:get("k")
            assert.equal("store", err.kind)
            srv:launch()
            direct = assert(srv:connect())
            local _, again = store:get("k")
            assert.equal("store", again.kind)
            assert.is_nil((new_store():get("k")))   -- the server itself is up
        end)
    end)
end)
