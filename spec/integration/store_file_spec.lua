-- wecom.store.file: store semantics on a real directory, shared between
-- store objects and between processes.

local core = require "wecom.core"
local errors = require "wecom.errors"
local file_store = require "wecom.store.file"
local child = require "helpers.child"
local sh = require "helpers.sh"

describe("wecom.store.file", function()
    local root, dir

    before_each(function()
        root = sh.tmpdir("wecom-fstore")
        dir = root .. "/tokens"
    end)
    after_each(function() os.execute("rm -rf " .. child.quote(root)) end)

    describe("construction", function()
        it("is what wecom.store.file builds", function()
            local wecom = require "wecom"
            local store = wecom.store.file(dir)
            assert.equal("wecom.store.file (" .. dir .. ")", tostring(store))
            assert.is_true(store:set("k", "v", core.now() + 60))
            assert.equal("v", (file_store.new(dir):get("k")))
        end)

        it("creates the directory 0700 and accepts a trailing slash", function()
            file_store.new(dir .. "/")
            assert.equal("700", sh.mode(dir))
        end)

        it("raises naming the path when it cannot be used", function()
            local ok, err = pcall(file_store.new, root .. "/no/such/parent")
            assert.is_false(ok)
            assert.matches(root .. "/no/such/parent", err, 1, true)
            assert.matches("No such file", err)

            local f = assert(io.open(root .. "/plain", "w"))
            f:close()
            ok, err = pcall(file_store.new, root .. "/plain")
            assert.is_false(ok)
            assert.matches("Not a directory", err)
        end)

        it("raises on arguments of the wrong type", function()
            assert.has_error(function() file_store.new() end)
            assert.has_error(function() file_store.new("") end)
            assert.has_error(function() file_store.new(dir, "fsync") end)
            assert.has_error(function() file_store.new(dir, { mutex_timeout = -1 }) end)
        end)
    end)

    describe("get and set", function()
        it("misses on an empty store", function()
            local v, err = file_store.new(dir):get("wecom:token:x")
            assert.is_nil(v)
            assert.is_nil(err)
        end)

        it("round-trips binary values and the exact expiry", function()
            local store = file_store.new(dir)
            local value = "tok\0en\n" .. string.rep("x", 600)
            local expires_at = core.now() + 7200.123456
            assert.is_true(store:set("wecom:token:a", value, expires_at))
            local v, e = store:get("wecom:token:a")
            assert.equal(value, v)
            assert.equal(expires_at, e)
            assert.is_true(store:set("wecom:token:a", "second", expires_at + 1))
            assert.equal("second", (store:get("wecom:token:a")))
        end)

        it("does not return an expired entry", function()
            local store = file_store.new(dir)
            assert.is_true(store:set("k", "old", core.now() - 1))
            assert.is_nil((store:get("k")))
        end)

        it("keeps keys apart that differ only in escaped characters, and long keys", function()
            local store = file_store.new(dir)
            local exp = core.now() + 60
            local long1, long2 = string.rep("k", 300) .. "1", string.rep("k", 300) .. "2"
            local keys = { "a:b", "a%3Ab", "a/b", "a_b", "A:B", long1, long2 }
            for i, k in ipairs(keys) do assert.is_true(store:set(k, "v" .. i, exp)) end
            for i, k in ipairs(keys) do assert.equal("v" .. i, (store:get(k))) end
        end)

        it("writes readable names and owner-only files", function()
            local store = file_store.new(dir)
            assert.is_true(store:set("wecom:token:wwCORP:1000002", "v", core.now() + 60))
            -- (a key with capitals also gets its hash: case-insensitive file systems)
            local path = dir .. "/wecom%3Atoken%3AwwCORP%3A1000002~"
                .. core.sha1_hex("wecom:token:wwCORP:1000002"):sub(1, 16) .. ".tok"
            assert.equal("600", sh.mode(path))
        end)

        it("shares entries between store objects and survives a restart (new process)", function()
            local store = file_store.new(dir, { fsync = false })
            local expires_at = core.now() + 100
            assert.is_true(store:set("wecom:token:shared", "from-parent", expires_at))
            local out = child.run([[
                local store = require("wecom.store.file").new(arg[1])
                local v, e = store:get("wecom:token:shared")
                io.write(v, " ", string.format("%.3f", e))
                assert(store:set("wecom:token:back", "from-child", e))
            ]], { dir })
            assert.equal("from-parent " .. string.format("%.3f", expires_at), out)
            assert.equal("from-child", (file_store.new(dir):get("wecom:token:back")))
        end)

        it("raises on arguments of the wrong type", function()
            local store = file_store.new(dir)
            assert.has_error(function() store:get() end)
            assert.has_error(function() store:get("") end)
            assert.has_error(function() store:set("k", 1, core.now()) end)
            assert.has_error(function() store:set("k", "v", "soon") end)
            assert.has_error(function() store:delete("k", 5) end)
            assert.has_error(function() store:lock("k", 0) end)
            assert.has_error(function() store:lock("k", "10") end)
        end)
    end)

    describe("delete", function()
        it("deletes, and compares before deleting when given a value", function()
            local store = file_store.new(dir)
            local exp = core.now() + 60
            assert.is_true(store:set("k", "current", exp))
            assert.is_false(store:delete("k", "rejected-old-token"))
            assert.equal("current", (store:get("k")))
            assert.is_true(store:delete("k", "current"))
            assert.is_nil((store:get("k")))
            assert.is_false(store:delete("k", "current"))
            assert.is_true(store:set("k", "again", exp))
            assert.is_true(store:delete("k"))
            assert.is_false(store:delete("k"))
        end)
    end)

    describe("lock", function()
        it("lets one holder in until it unlocks", function()
            local a, b = file_store.new(dir), file_store.new(dir)
            assert.is_true(a:lock("k", 30))
            assert.is_false(b:lock("k", 30))
            assert.is_false(a:lock("k", 30))
            assert.is_true(b:lock("other", 30))
            assert.is_true(a:unlock("k"))
            assert.is_true(b:lock("k", 30))
        end)

        it("ends with the lease, and a late unlock leaves the new holder alone", function()
            local a, b, c = file_store.new(dir), file_store.new(dir), file_store.new(dir)
            assert.is_true(a:lock("k", 0.1))
            assert.is_false(b:lock("k", 30))
            core.sleep(0.15)
            assert.is_true(b:lock("k", 30))
            assert.is_true(a:unlock("k"))      -- a's lease is gone; b keeps it
            assert.is_false(c:lock("k", 30))
            assert.is_true(b:unlock("k"))
            assert.is_true(c:lock("k", 30))
        end)

        it("ignores unlock from a store that does not hold the lock", function()
            local a, b = file_store.new(dir), file_store.new(dir)
            assert.is_true(a:lock("k", 30))
            assert.is_true(b:unlock("k"))
            assert.is_false(b:lock("k", 30))
        end)

        it("after a fork, the child neither shares the mutex nor releases the parent's lease", function()
            local a, b = file_store.new(dir), file_store.new(dir)
            assert.is_true(a:lock("k", 30))
            local parent_mutex = a.mutex
            a.pid = -1      -- as seen from a forked child: another pid
            assert.is_true(a:unlock("k"))
            assert.are_not.equal(parent_mutex, a.mutex)
            assert.matches("closed", tostring(parent_mutex))
            assert.is_false(b:lock("k", 30))
            assert.is_false(a:lock("k", 30))
        end)

        it("gives the lock to exactly one of several processes", function()
            local go = root .. "/go"
            local code = [[
                local core = require "wecom.core"
                local store = require("wecom.store.file").new(arg[1])
                while not io.open(arg[2]) do core.sleep(0.002) end
                io.write(tostring(store:lock("wecom:token:race", 30)))
            ]]
            local kids = {}
            for i = 1, 6 do kids[i] = child.spawn(code, { dir, go }) end
            local f = assert(io.open(go, "w"))
            f:close()
            local winners = 0
            for i = 1, 6 do
                local out = kids[i]:wait()
                assert.is_truthy(out == "true" or out == "false", out)
                if out == "true" then winners = winners + 1 end
            end
            assert.equal(1, winners)
        end)
    end)

    describe("runtime failures", function()
        it("returns store errors when the directory goes away", function()
            local store = file_store.new(dir)
            assert.is_true(store:set("k", "secret-token-value", core.now() + 60))
            os.execute("rm -rf " .. child.quote(dir))
            assert.is_nil((store:get("k")))    -- nothing there: a miss
            for _, call in ipairs({
                function() return store:set("k", "secret-token-value", core.now() + 60) end,
                function() return store:lock("k", 30) end,
            }) do
                local ok, err = call()
                assert.is_nil(ok)
                assert.is_true(errors.is_error(err))
                assert.equal("store", err.kind)
                assert.matches(dir, tostring(err), 1, true)
                assert.is_nil(tostring(err):find("secret-token-value", 1, true))
            end
        end)

        it("returns a store error when an entry cannot be read", function()
            local store = file_store.new(dir)
            os.execute("mkdir " .. child.quote(dir .. "/k.tok"))
            local v, err = store:get("k")
            assert.is_nil(v)
            assert.equal("store", err.kind)
        end)

        it("treats a file in the wrong shape as a miss", function()
            local store = file_store.new(dir)
            local f = assert(io.open(dir .. "/k.tok", "w"))
            f:write("garbage without a header")
            f:close()
            local v, err = store:get("k")
            assert.is_nil(v)
            assert.is_nil(err)
        end)
    end)
end)
