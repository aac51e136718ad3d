-- The token manager (wecom.token), without HTTP, over a store in plain Lua
-- (the stores themselves keep spec/helpers/store_contract.lua).
local token = require "wecom.token"
local parallel = require "wecom.parallel"
local core = require "wecom.core"
local errors = require "wecom.errors"

-- A store in plain Lua that records what is asked of it.
local table_store = require "helpers.table_store"
local unique = table_store.unique

describe("token keys", function()
    it("isolate corp, app and secret", function()
        local k = token.app_key("wwA", 1, "s1")
        assert.not_equal(k, token.app_key("wwB", 1, "s1"))
        assert.not_equal(k, token.app_key("wwA", 2, "s1"))
        assert.not_equal(k, token.app_key("wwA", 1, "s2"))
        assert.equal(k, token.app_key("wwA", 1, "s1"))
        assert.not_equal(token.app_key("wwA", nil, "s1"), k)
        -- another server (an emulator) never shares WeCom's tokens
        assert.equal(k, token.app_key("wwA", 1, "s1", "https://qyapi.weixin.qq.com"))
        assert.not_equal(k, token.app_key("wwA", 1, "s1", "https://127.0.0.1:8443"))
        assert.not_equal(token.downstream_key("wwUP", 1, "wwD", 5, 1),
            token.downstream_key("wwUP", 1, "wwD", 5, 1, "https://127.0.0.1:8443"))
    end)

    it("never contain the secret", function()
        local secret = "plain-secret-text"
        assert.not_matches(secret, token.app_key("wwA", 1, secret), 1, true)
    end)

    it("isolate every part of a downstream token", function()
        local k = token.downstream_key("wwUP", 1, "wwD", 5, 1)
        for _, other in ipairs {
            token.downstream_key("wwUP2", 1, "wwD", 5, 1), token.downstream_key("wwUP", 2, "wwD", 5, 1),
            token.downstream_key("wwUP", 1, "wwD2", 5, 1), token.downstream_key("wwUP", 1, "wwD", 6, 1),
            token.downstream_key("wwUP", 1, "wwD", 5, 0), token.app_key("wwUP", 1, "x"),
        } do
            assert.not_equal(k, other)
        end
        -- a separator inside a part cannot make two keys collide
        assert.not_equal(token.downstream_key("a:b", 1, "c", 1, 0), token.downstream_key("a", "b:1", "c", 1, 0))
    end)

    it("put tickets under their token's key, one per kind", function()
        local k = token.app_key("wwA", 1, "s")
        local j, a = token.ticket_key(k, "jsapi"), token.ticket_key(k, "agent_config")
        assert.not_equal(j, a)
        assert.equal(k, j:sub(1, #k))
    end)
end)

describe("refresh ahead", function()
    it("is due with 10 % or 5 minutes left, whichever is more", function()
        assert.is_false(token.refresh_due(1000 + 721, 1000, 7200))
        assert.is_true(token.refresh_due(1000 + 719, 1000, 7200))
        assert.is_true(token.refresh_due(1000 + 299, 1000, 600))
        assert.is_false(token.refresh_due(1000 + 301, 1000, 600))
        -- a short-lived token is not refreshed on every call
        assert.is_false(token.refresh_due(1000 + 60, 1000, 100))
    end)
end)

describe("token.get", function()
    it("fetches once and then serves from the store", function()
        local store, key, calls = table_store(), unique("k"), 0
        local function fetch() calls = calls + 1; return "T" .. calls, core.now() + 7200 end
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal(1, calls)
    end)

    it("returns the fetch error and caches nothing", function()
        local store, key = table_store(), unique("k")
        local v, err = token.get(store, key, function() return nil, "no luck" end)
        assert.is_nil(v)
        assert.equal("no luck", err)
        assert.equal(0, store.sets)
        assert.is_nil(store.locks[key])  -- the lock is released
    end)

    it("releases the lock when fetch raises", function()
        local store, key = table_store(), unique("k")
        assert.has_error(function() token.get(store, key, function() error("bug") end) end)
        assert.is_nil(store.locks[key])
    end)

    it("keeps a still-valid token when the early refresh fails", function()
        local store, key = table_store(), unique("k")
        store:set(key, "OLD", core.now() + 100)  -- inside the refresh margin
        local tried = 0
        local v, exp = token.get(store, key, function() tried = tried + 1; return nil, "down" end)
        assert.equal(1, tried)
        assert.equal("OLD", v)
        assert.is_true(exp > core.now())
    end)

    it("refreshes early when due, at most once a minute per key", function()
        local store, key, calls = table_store(), unique("k"), 0
        store:set(key, "OLD", core.now() + 100)
        local function fetch() calls = calls + 1; return "OLD", core.now() + 100 end  -- same token back
        token.get(store, key, fetch)
        token.get(store, key, fetch)
        assert.equal(1, calls)
    end)

    it("does not refresh early while another caller holds the lock", function()
        local store, key = table_store(), unique("k")
        store:set(key, "OLD", core.now() + 100)
        store:lock(key)
        local v = token.get(store, key, function() error("must not fetch") end)
        assert.equal("OLD", v)
    end)

    it("fetches directly when the store fails, once per process", function()
        local store, key, calls = table_store(), unique("k"), 0
        function store.get() return nil, "connection refused" end
        local function fetch() calls = calls + 1; return "T" .. calls, core.now() + 7200 end
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal(1, calls)
        -- a rejected token is dropped from the in-process fallback too
        token.invalidate(store, key, "T1")
        assert.equal("T2", (token.get(store, key, fetch)))
    end)

    it("keeps one fetch per key while the store is down, across concurrent callers", function()
        local store, key, calls = table_store(), unique("k"), 0
        function store.get() return nil, "connection refused" end
        function store.lock() return nil, "connection refused" end
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.03)
            return "T" .. calls, core.now() + 7200
        end
        local results = table_store.callers(6, store, key, fetch)
        assert.equal(1, calls)
        for i = 1, 6 do assert.equal("T1", results[i].value) end
    end)

    it("goes back to the store once it recovers", function()
        local store, key, calls = table_store(), unique("k"), 0
        local down = true
        local real_get = store.get
        store.get = function(self, k)
            if down then return nil, "connection refused" end
            return real_get(self, k)
        end
        local function fetch() calls = calls + 1; return "T" .. calls, core.now() + 7200 end
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal("T1", (token.get(store, key, fetch)))
        assert.equal(1, calls)
        down = false
        -- the store is empty again: one fetch, stored there, then served from it
        assert.equal("T2", (token.get(store, key, fetch)))
        assert.equal("T2", (store:get(key)))
        assert.equal("T2", (token.get(store, key, fetch)))
        assert.equal(2, calls)
        -- the store is what counts now: a token another process wrote wins
        store:set(key, "FROM-STORE", core.now() + 7200)
        assert.equal("FROM-STORE", (token.get(store, key, fetch)))
        assert.equal(2, calls)
    end)

    it("does not fetch per call when the store reads but cannot write", function()
        local store, key, calls = table_store(), unique("k"), 0
        local full = true
        local real_set = store.set
        store.set = function(self, ...)
            if full then return nil, "OOM command not allowed when used memory > 'maxmemory'" end
            return real_set(self, ...)
        end
        local function fetch() calls = calls + 1; return "T" .. calls, core.now() + 7200 end
        for _ = 1, 5 do
            assert.equal("T1", (token.get(store, key, fetch)))
        end
        assert.equal(1, calls)
        -- a rejected token still goes
        token.invalidate(store, key, "T1")
        assert.equal("T2", (token.get(store, key, fetch)))
        -- once the store takes writes again, the kept token lands there
        full = false
        assert.equal("T2", (token.get(store, key, fetch)))
        assert.equal("T2", (store:get(key)))
        assert.equal(2, calls)
    end)

    it("does not fetch per call when the store's set raises", function()
        local store, key, calls = table_store(), unique("k"), 0
        function store.set() error("disk full") end
        local function fetch() calls = calls + 1; return "T" .. calls, core.now() + 7200 end
        for _ = 1, 3 do
            assert.equal("T1", (token.get(store, key, fetch)))
        end
        assert.equal(1, calls)
    end)

    it("passes the fetch failure on when the store fails too", function()
        local store = table_store()
        function store.lock() return nil, "connection refused" end
        local v, err = token.get(store, unique("k"), function()
            return nil, errors.new("token", "invalid credential")
        end)
        assert.is_nil(v)
        assert.equal("token", err.kind)
    end)

    it("fetches once for many concurrent callers (single flight)", function()
        local store, key, calls = table_store(), unique("k"), 0
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.05)  -- the others arrive while this fetch is in flight
            return "T" .. calls, core.now() + 7200
        end
        local results = table_store.callers(8, store, key, fetch)
        assert.equal(1, calls)
        for i = 1, 8 do
            assert.is_true(results[i].ok)
            assert.equal("T1", results[i].value)
        end
    end)

    it("shares one failed fetch with the callers that waited for it", function()
        local store, key, calls = table_store(), unique("k"), 0
        local function fetch()
            calls = calls + 1
            parallel.sleep(0.05)
            return nil, "wrong secret"
        end
        local results = table_store.callers(5, store, key, fetch)
        assert.equal(1, calls)
        for i = 1, 5 do
            assert.same({ ok = false, err = "wrong secret" }, results[i])
        end
        -- a later caller tries again
        token.get(store, key, fetch)
        assert.equal(2, calls)
    end)

    it("re-checks the store after taking the lock", function()
        local store, key = table_store(), unique("k")
        -- someone else stores a token between our read and our lock
        local real_lock = store.lock
        store.lock = function(self, k)
            store:set(k, "FROM-ELSEWHERE", core.now() + 7200)
            return real_lock(self, k)
        end
        local v = token.get(store, key, function() error("must not fetch") end)
        assert.equal("FROM-ELSEWHERE", v)
    end)
end)

describe("token.invalidate", function()
    it("drops only the token that was rejected", function()
        local store, key = table_store(), unique("k")
        store:set(key, "NEW", core.now() + 7200)
        assert.is_false(token.invalidate(store, key, "OLD"))
        assert.equal("NEW", (store:get(key)))
        assert.is_true(token.invalidate(store, key, "NEW"))
        assert.is_nil((store:get(key)))
    end)
end)

