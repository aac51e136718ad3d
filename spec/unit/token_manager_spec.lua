-- wecom.token without HTTP: what a token endpoint's answer means
-- (credential_from), the single-flight bounds (flight_opts), and the token
-- manager's distrust of what stores and fetches hand back (issue 10, items
-- 3 to 6).
local token = require "wecom.token"
local parallel = require "wecom.parallel"
local core = require "wecom.core"
local errors = require "wecom.errors"

-- A store in plain Lua that hands back whatever its entries hold.
local table_store = require "helpers.table_store"
local unique = table_store.unique
local function raw_store()
    return table_store { raw = true }
end

describe("token.credential_from", function()
    local function from(data)
        return token.credential_from(data, "access_token", "GET", "/cgi-bin/gettoken", 200)
    end

    -- an answer with expires_in gives its token, kept for kept seconds from now
    local function assert_kept(expires_in, kept)
        local before = core.now()
        local v, exp = from { access_token = "T", expires_in = expires_in }
        assert.equal("T", v)
        assert.is_true(exp >= before + kept and exp <= core.now() + kept)
    end

    it("gives the value and now + expires_in", function()
        assert_kept(7200, 7200)
    end)

    -- issue 10, item 3: WeCom's expires_in is rounded down
    it("takes expires_in 0 as a token in its last second, kept for 1 s", function()
        assert_kept(0, 1)
    end)

    it("refuses answers that must not be cached, as decode errors naming the call", function()
        for _, data in ipairs {
            { expires_in = 7200 }, { access_token = "", expires_in = 7200 }, { access_token = 42, expires_in = 7200 },
            { access_token = "T" }, { access_token = "T", expires_in = "7200" },
            { access_token = "T", expires_in = -1 }, { access_token = "T", expires_in = 86401 },
            { access_token = "T", expires_in = 0 / 0 }, { access_token = "T", expires_in = 1 / 0 },
            { access_token = string.rep("x", 65537), expires_in = 7200 },
        } do
            local v, err = from(data)
            assert.is_nil(v)
            assert.is_true(errors.is_error(err))
            assert.equal("decode", err.kind)
            assert.equal("GET", err.method)
            assert.equal("/cgi-bin/gettoken", err.path)
            assert.equal(200, err.http_status)
            assert.matches("^access_token response ", err.errmsg)
        end
    end)
end)

describe("token.flight_opts", function()
    it("leases a fetch with all its retries twice, and waits one request timeout", function()
        assert.same({ lease = (5 + 8) * 3 * 2, wait = 5 }, token.flight_opts(5, 2, 8))
        assert.same({ lease = (1 + 8) * 1 * 2, wait = 1 }, token.flight_opts(1, 0, 8))
        -- within what a store's lock takes
        assert.equal(86400, token.flight_opts(86400, 10, 8).lease)
    end)
end)

describe("token.get distrusts what a store hands back", function()
    for what, entry in pairs {
        ["an empty value"] = { "", 600 },
        ["a number for a value"] = { 42, 600 },
        ["a table for a value"] = { {}, 600 },
        ["a value over 64 KiB"] = { string.rep("x", 65537), 600 },
        ["a NaN expiry"] = { "T", 0 / 0 },
        ["an infinite expiry"] = { "T", 1 / 0 },
        ["an expiry that is no number"] = { "T", "later" },
        ["an expiry in the past"] = { "T", -5 },
    } do
        it("reads " .. what .. " as a miss and replaces it", function()
            local store, key, calls = raw_store(), unique("k"), 0
            local exp = entry[2]
            if type(exp) == "number" and exp == exp and exp > -1e300 and exp < 1e300 then
                exp = core.now() + exp
            end
            store.data[key] = { value = entry[1], expires_at = exp }
            local v = token.get(store, key, function()
                calls = calls + 1
                return "FRESH", core.now() + 7200
            end)
            assert.equal("FRESH", v)
            assert.equal(1, calls)
            assert.equal("FRESH", store.data[key].value)
        end)
    end

    it("refuses a fetch that hands back no usable value, caching nothing", function()
        for _, bad in ipairs { { "" }, { 42, core.now() + 60 }, { "T", "soon" }, { "T", 0 / 0 } } do
            local store, key = raw_store(), unique("k")
            local v, err = token.get(store, key, function() return bad[1], bad[2] end)
            assert.is_nil(v)
            assert.equal("decode", err.kind)
            assert.equal(0, store.sets)
        end
    end)
end)

describe("token.get near the end of a token's life", function()
    -- issue 10, item 3: the server hands back the token it still serves with
    -- its lifetime rounded down; that must not shorten our copy
    it("keeps the later expiry when an early refresh gets the same token back", function()
        local store, key = raw_store(), unique("k")
        local ours = core.now() + 100.75     -- inside the refresh margin
        store:set(key, "T", ours)
        local v, exp = token.get(store, key, function() return "T", core.now() + 100 end)
        assert.equal("T", v)
        assert.equal(ours, exp)
        assert.equal(ours, store.data[key].expires_at)
    end)

    it("serves a just-expiring fetch to the callers that waited for it", function()
        local store, key, calls = raw_store(), unique("k"), 0
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.05)
            -- what credential_from makes of expires_in 0
            return "LAST-SECOND", core.now() + 1
        end
        local results = table_store.callers(6, store, key, fetch)
        assert.equal(1, calls)
        for i = 1, 6 do assert.equal("LAST-SECOND", results[i].value) end
    end)
end)

describe("token.get with a lock nobody releases", function()
    -- issue 10, item 4
    it("fetches once per Lua state after the callers' wait, and stores it", function()
        local store, key, calls = raw_store(), unique("k"), 0
        store.locks[key] = true      -- a holder that died
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.05)
            return "BY-WAITER", core.now() + 7200
        end
        local started = core.monotonic()
        local results = table_store.callers(8, store, key, fetch, { lease = 600, wait = 0.2 })
        local took = core.monotonic() - started
        assert.equal(1, calls)
        for i = 1, 8 do assert.equal("BY-WAITER", results[i].value) end
        assert.is_true(took < 0.2 + 2, "took " .. took .. " s")
        assert.equal("BY-WAITER", store.data[key].value)
    end)

    it("shares the failure of that fetch with the callers of the same state", function()
        local store, key, calls = raw_store(), unique("k"), 0
        store.locks[key] = true
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.05)
            return nil, "wrong secret"
        end
        local results = table_store.callers(5, store, key, fetch, { wait = 0.1 })
        assert.equal(1, calls)
        for i = 1, 5 do assert.same({ ok = false, err = "wrong secret" }, results[i]) end
    end)
end)

describe("token.invalidate", function()
    -- issue 10, item 6
    it("drops only the fetch the failing call used, when given its expiry", function()
        local store, key = raw_store(), unique("k")
        local first = core.now() + 7200
        store:set(key, "T", first)
        store:set(key, "T", first + 0.5)     -- WeCom handed the same string out again
        assert.is_false(token.invalidate(store, key, "T", first))
        assert.equal("T", (store:get(key)))
        assert.is_true(token.invalidate(store, key, "T", first + 0.5))
        assert.is_nil(store:get(key))
    end)

    it("without an expiry, drops the value whatever fetch it came from", function()
        local store, key = raw_store(), unique("k")
        store:set(key, "T", core.now() + 7200)
        assert.is_false(token.invalidate(store, key, "OTHER"))
        assert.is_true(token.invalidate(store, key, "T"))
    end)

    it("makes one refetch for many callers rejected with the same fetch", function()
        local store, key, calls = raw_store(), unique("k"), 0
        local function fetch()
            calls = calls + 1
            return "SAME-STRING", core.now() + 7000 + calls   -- a new fetch, the same token
        end
        local v, exp = token.get(store, key, fetch)
        assert.equal(1, calls)
        for _ = 1, 20 do
            -- each caller was rejected with (v, exp) and refreshes
            token.invalidate(store, key, v, exp)
            assert.equal("SAME-STRING", (token.get(store, key, fetch)))
        end
        assert.equal(2, calls)
    end)
end)
