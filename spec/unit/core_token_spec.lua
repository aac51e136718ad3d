-- wecom.core token cache (process-wide, mutex-guarded) and clock functions.
local core = require "wecom.core"

-- The cache is shared by everything in the process; keep each test's keys apart.
local prefix = "spec:token:" .. core.nonce(8) .. ":"
local serial = 0
local function fresh_key()
    serial = serial + 1
    return prefix .. serial
end

describe("core clocks", function()
    it("now() is wall-clock seconds with a fraction", function()
        local now = core.now()
        assert.is_number(now)
        assert.is_true(math.abs(now - os.time()) <= 2)
    end)

    it("monotonic() never goes backwards and sleep() advances it", function()
        local a = core.monotonic()
        core.sleep(0.05)
        local b = core.monotonic()
        assert.is_true(b - a >= 0.045)
    end)

    it("sleep(0) returns and bad durations raise", function()
        core.sleep(0)
        assert.has_error(function() core.sleep(-1) end)
        assert.has_error(function() core.sleep("soon") end)
    end)
end)

describe("core.token_get / token_set", function()
    it("returns the value and its expiry", function()
        local key, expires = fresh_key(), core.now() + 60
        assert.is_true(core.token_set(key, "tok-1", expires))
        local value, expires_at = core.token_get(key)
        assert.equal("tok-1", value)
        assert.equal(expires, expires_at)
    end)

    it("returns nil for unknown keys", function()
        assert.is_nil(core.token_get(fresh_key()))
    end)

    it("overwrites an existing value", function()
        local key = fresh_key()
        core.token_set(key, "old", core.now() + 60)
        core.token_set(key, "new", core.now() + 120)
        assert.equal("new", (core.token_get(key)))
    end)

    it("ignores entries whose expiry has passed", function()
        local past, soon = fresh_key(), fresh_key()
        core.token_set(past, "stale", core.now() - 1)
        core.token_set(soon, "short", core.now() + 0.05)
        assert.is_nil(core.token_get(past))
        assert.equal("short", (core.token_get(soon)))
        core.sleep(0.1)
        assert.is_nil(core.token_get(soon))
    end)

    it("keeps binary values intact", function()
        local key, value = fresh_key(), "a\0b\255\n"
        core.token_set(key, value, core.now() + 60)
        assert.equal(value, (core.token_get(key)))
    end)

    it("accepts the size caps and raises beyond them", function()
        local long_key = prefix .. string.rep("k", 1024 - #prefix)
        assert.is_true(core.token_set(long_key, string.rep("v", 8192), core.now() + 60))
        assert.equal(8192, #core.token_get(long_key))
        assert.has_error(function() core.token_set(long_key .. "k", "v", core.now() + 60) end)
        assert.has_error(function() core.token_set(fresh_key(), string.rep("v", 8193), core.now() + 60) end)
        assert.has_error(function() core.token_get("") end)
    end)

    it("raises on bad argument types", function()
        assert.has_error(function() core.token_get(nil) end)
        assert.has_error(function() core.token_get({}) end)
        assert.has_error(function() core.token_set(fresh_key(), nil, 1) end)
        assert.has_error(function() core.token_set(fresh_key(), "v", "later") end)
        assert.has_error(function() core.token_set(fresh_key(), "v", 0 / 0) end)
        assert.has_error(function() core.token_set(fresh_key(), "v", math.huge) end)
    end)

    it("holds many keys at once", function()
        local base = fresh_key()
        for i = 1, 3000 do
            core.token_set(base .. ":" .. i, "v" .. i, core.now() + 60)
        end
        for i = 1, 3000 do
            assert.equal("v" .. i, (core.token_get(base .. ":" .. i)))
        end
        for i = 1, 3000 do
            assert.is_true(core.token_delete(base .. ":" .. i))
        end
        assert.is_nil(core.token_get(base .. ":1"))
    end)
end)

describe("core.token_delete", function()
    it("deletes unconditionally and reports whether a value was there", function()
        local key = fresh_key()
        core.token_set(key, "tok", core.now() + 60)
        assert.is_true(core.token_delete(key))
        assert.is_nil(core.token_get(key))
        assert.is_false(core.token_delete(key))
    end)

    it("compare-and-delete only removes the value it was given", function()
        local key = fresh_key()
        core.token_set(key, "current", core.now() + 60)
        assert.is_false(core.token_delete(key, "rejected-old-token"))
        assert.equal("current", (core.token_get(key)))
        assert.is_true(core.token_delete(key, "current"))
        assert.is_nil(core.token_get(key))
    end)

    it("does not count an expired value as deleted", function()
        local key = fresh_key()
        core.token_set(key, "stale", core.now() - 1)
        assert.is_false(core.token_delete(key, "stale"))
    end)
end)

describe("core.token_set_durable / token_list_durable", function()
    it("keeps a value without expiry, lists it by prefix, and set and delete replace it", function()
        local base = fresh_key() .. ":"
        assert.is_true(core.token_set_durable(base .. "b", "code-b"))
        assert.is_true(core.token_set_durable(base .. "a", "code-a", core.now() + 60))
        core.token_set(base .. "c", "expiring", core.now() + 60)
        assert.equal(1, select("#", core.token_get(base .. "b")))     -- no expiry
        assert.equal("code-b", core.token_get(base .. "b"))
        local keys = core.token_list_durable(base)
        table.sort(keys)
        assert.same({ base .. "a", base .. "b" }, keys)
        core.token_set(base .. "b", "now expiring", core.now() + 60)
        assert.same({ base .. "a" }, core.token_list_durable(base))
        assert.is_false(core.token_delete(base .. "a", "other"))
        assert.is_true(core.token_delete(base .. "a", "code-a"))
        assert.same({}, core.token_list_durable(base))
        assert.is_true(core.token_delete(base .. "b"))
        assert.is_true(core.token_delete(base .. "c"))
    end)

    it("drops a durable value at the expiry it was given, and lists it no more", function()
        local key = fresh_key()
        assert.is_true(core.token_set_durable(key, "ticket", core.now() + 0.05))
        assert.same({ key }, core.token_list_durable(key))
        core.sleep(0.1)
        assert.is_nil(core.token_get(key))
        assert.same({}, core.token_list_durable(key))
    end)

    it("is exempt from the 100,000-entry cap and from the purge of a full cache", function()
        local base = fresh_key() .. ":"
        assert.is_true(core.token_set_durable(base .. "durable", "permanent"))
        local n = 0
        while true do
            n = n + 1
            local ok, err = core.token_set(base .. n, "v", core.now() + 60)
            if not ok then
                assert.equal("token cache full", err)
                break
            end
            assert.is_true(n <= 100000, "the cache took more than 100,000 entries")
        end
        -- full of live tokens: a durable value still goes in, and stays
        assert.is_true(core.token_set_durable(base .. "durable2", "another"))
        assert.equal("permanent", core.token_get(base .. "durable"))
        assert.equal("another", core.token_get(base .. "durable2"))
        for i = 1, n - 1 do core.token_delete(base .. i) end
        assert.is_true(core.token_delete(base .. "durable"))
        assert.is_true(core.token_delete(base .. "durable2"))
    end)

    it("lets a lock and a durable value of one key live side by side", function()
        local key = fresh_key()
        assert.is_true((core.token_lock(key, 30)))
        assert.is_true(core.token_set_durable(key, "code"))
        assert.is_false(core.token_lock(key, 30))
        assert.is_true(core.token_unlock(key))
        assert.equal("code", core.token_get(key))
        assert.is_true(core.token_delete(key))
    end)

    it("raises on bad arguments", function()
        assert.has_error(function() core.token_set_durable(fresh_key(), nil) end)
        assert.has_error(function() core.token_set_durable(fresh_key(), "v", "later") end)
        assert.has_error(function() core.token_set_durable(fresh_key(), "v", 0 / 0) end)
        assert.has_error(function() core.token_set_durable(fresh_key(), "v", math.huge) end)
        assert.has_error(function() core.token_set_durable(fresh_key(), string.rep("v", 8193)) end)
        assert.has_error(function() core.token_set_durable("", "v") end)
        assert.has_error(function() core.token_list_durable(nil) end)
        assert.has_error(function() core.token_list_durable(5) end)
    end)
end)

describe("core.token_lock / token_unlock", function()
    it("is a try-lock", function()
        local key = fresh_key()
        local ok, owner = core.token_lock(key, 30)
        assert.is_true(ok)
        assert.is_number(owner)
        assert.is_false(core.token_lock(key, 30))
        assert.is_true(core.token_unlock(key))
        assert.is_false(core.token_unlock(key))
        assert.is_true((core.token_lock(key, 30)))
        core.token_unlock(key)
    end)

    it("gives every acquisition a different owner", function()
        local key = fresh_key()
        local _, first = core.token_lock(key, 30)
        core.token_unlock(key)
        local _, second = core.token_lock(key, 30)
        core.token_unlock(key)
        assert.are_not.equal(first, second)
    end)

    it("lets the lease run out so a dead holder cannot wedge the key", function()
        local key = fresh_key()
        assert.is_true((core.token_lock(key, 0.05)))
        assert.is_false(core.token_lock(key, 0.05))
        core.sleep(0.1)
        assert.is_true((core.token_lock(key, 30)))
        core.token_unlock(key)
    end)

    it("with an owner, only releases that holder's lock", function()
        local key = fresh_key()
        local _, stale_owner = core.token_lock(key, 0.05)
        core.sleep(0.1)
        local ok, owner = core.token_lock(key, 30)
        assert.is_true(ok)
        assert.is_false(core.token_unlock(key, stale_owner))
        assert.is_false(core.token_lock(key, 30))
        assert.is_true(core.token_unlock(key, owner))
    end)

    it("keeps locks and values independent", function()
        local key = fresh_key()
        core.token_set(key, "tok", core.now() + 60)
        assert.is_true((core.token_lock(key, 30)))
        assert.is_true(core.token_delete(key))
        assert.is_false(core.token_lock(key, 30))
        core.token_set(key, "tok2", core.now() + 60)
        assert.is_true(core.token_unlock(key))
        assert.equal("tok2", (core.token_get(key)))
    end)

    it("raises on bad leases and keys", function()
        assert.has_error(function() core.token_lock(fresh_key(), 0) end)
        assert.has_error(function() core.token_lock(fresh_key(), -5) end)
        assert.has_error(function() core.token_lock(fresh_key(), "long") end)
        assert.has_error(function() core.token_lock(fresh_key()) end)
        assert.has_error(function() core.token_unlock(fresh_key(), "owner") end)
        assert.has_error(function() core.token_lock(string.rep("k", 1025), 1) end)
    end)
end)

-- Two lua_States in two threads of one process: a small C program.
describe("the token cache across lua_States", function()
    local sh = require "helpers.sh"
    local run = sh.run

    local function slurp(path)
        return assert(sh.read_file(path))
    end

    it("is shared by two states in two threads, and so is the lock", function()
        local core_path = assert(package.searchpath("wecom.core", package.cpath))
        local cpath = core_path:gsub("wecom/core%.so$", "?.so")
        local child = require "helpers.child"
        local inc, lib = child.lua_include, child.lua_lib
        local exe, out = os.tmpname(), os.tmpname()
        -- the compiler must not run with a sanitizer runtime preloaded
        local compile = ("cc -std=c99 -D_GNU_SOURCE -O1 %s -I%s -o %s spec/unit/token_threads.c %s"
            .. " -lpthread > %s 2>&1"):format(child.cflags, inc, exe, lib, out)
        assert(run(compile), "compiling token_threads.c failed: " .. slurp(out))
        local ok = run(("%s '%s' '%s' > %s 2>&1"):format(exe, cpath, fresh_key(), out))
        local output = slurp(out)
        os.remove(exe)
        os.remove(out)
        assert.is_true(ok, output)
        assert.matches("ok phases", output, 1, true)
        assert.matches("ok mutex 4000", output, 1, true)
    end)
end)
