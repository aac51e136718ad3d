-- wecom.store.file: store semantics on a real directory, shared between
-- store objects and between processes.

local core = require "wecom.core"
local errors = require "wecom.errors"
local file_store = require "wecom.store.file"
local token = require "wecom.token"
local child = require "helpers.child"
local contract = require "helpers.store_contract"
local sh = require "helpers.sh"

-- Runs code in a child process that is killed after `seconds`: a store that
-- hangs or reads without end must fail the spec, not wedge it.
-- -> output, exited normally
local function run_bounded(seconds, code, args)
    local script = os.tmpname()
    sh.write_file(script, code)
    -- a memory cap too, but not under ASan (its shadow memory needs the room)
    local cap = os.getenv("WECOM_SPEC_LUA") and "" or "ulimit -v 1000000; "
    local pipe = assert(io.popen(cap .. "timeout -s KILL " .. seconds .. " sh -c "
        .. sh.quote(child.command(script, args)) .. " 2>&1; echo \"exit=$?\""))
    local out = pipe:read("*a")
    pipe:close()
    os.remove(script)
    local body, status = out:match("^(.-)exit=(%d+)%s*$")
    return body, status == "0"
end

-- What a store operation gave, in a child: "<result> | <err kind> | <err>";
-- op "serve": what token.get serves (the fetch gives "SERVED")
local PROBE = [[
    local core = require "wecom.core"
    local store = require("wecom.store.file").new(arg[1])
    local op, key = arg[2], arg[3]
    local ok, err
    if op == "serve" then
        ok, err = require("wecom.token").get(store, key, function()
            return "SERVED", core.now() + 7200
        end, { wait = 1 })
    elseif op == "get" then
        ok, err = store:get(key)
    elseif op == "set" then
        ok, err = store:set(key, "T", require("wecom.core").now() + 60)
    else
        ok, err = store:lock(key, 30)
    end
    io.write(tostring(ok), " | ", type(err) == "table" and err.kind or "-", " | ", tostring(err))
]]

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

    contract.describe(function()
        return {
            name = "file",
            new = function() return file_store.new(dir, { fsync = false }) end,
            raw = function(key, expires_text, value)
                file_store.new(dir)
                sh.write_file(dir .. "/" .. key .. ".tok", expires_text .. "\n" .. value)
                return true
            end,
            raw_text = function(key, text)
                file_store.new(dir)
                sh.write_file(dir .. "/" .. key .. ".tok", text)
            end,
            sleep = core.sleep,
            fill = 20,     -- a directory holds what the disk holds
        }
    end)

    describe("files", function()
        it("writes readable names and owner-only files", function()
            local store = file_store.new(dir)
            assert.is_true(store:set("wecom:token:wwCORP:1000002", "v", core.now() + 60))
            -- (a key with capitals also gets its hash: case-insensitive file systems)
            local path = dir .. "/wecom%3Atoken%3AwwCORP%3A1000002="
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
    end)

    describe("durable entries", function()
        local SUITE = "wecom:suite:wwSUITE:corp:"

        it("are .keep files without an expiry, listed and read after a restart (new process)", function()
            local store = file_store.new(dir, { fsync = false })
            assert.is_true(store:set_durable(SUITE .. "wwA", "{code}"))
            assert.is_true(store:set(SUITE .. "wwA:token", "tok", core.now() + 60))
            local path = dir .. "/wecom%3Asuite%3AwwSUITE%3Acorp%3AwwA="
                .. core.sha1_hex(SUITE .. "wwA"):sub(1, 16) .. ".keep"
            assert.equal("-\n{code}", sh.read_file(path))
            assert.equal("600", sh.mode(path))
            local out = child.run([[
                local store = require("wecom.store.file").new(arg[1])
                io.write(store:get(arg[2] .. "wwA"), " ", table.concat(store:list_durable(arg[2]), ","))
                assert(store:set_durable(arg[2] .. "wwB", "from-child"))
            ]], { dir, SUITE })
            assert.equal("{code} " .. SUITE .. "wwA", out)
            store = file_store.new(dir)
            assert.same({ SUITE .. "wwA", SUITE .. "wwB" }, store:list_durable(SUITE))
            assert.equal("from-child", (store:get(SUITE .. "wwB")))
        end)

        it("lists .keep files only, not a write's temporary file nor other files", function()
            local store = file_store.new(dir)
            assert.is_true(store:set_durable("k1", "v"))
            sh.write_file(dir .. "/k2.keep.AbC123", "-\nhalf-written")
            sh.write_file(dir .. "/k3.tok", "-\nnot durable")
            sh.write_file(dir .. "/.keep", "-\nno name")
            assert.same({ "k1" }, store:list_durable(""))
        end)

        it("refuses a durable key that would not fit a file name, with a store error", function()
            local store = file_store.new(dir)
            local key = SUITE .. string.rep(":", 60)
            local ok, err = store:set_durable(key, "v")
            assert.is_nil(ok)
            assert.equal("store", err.kind)
            assert.matches("a durable key must fit a file name", err.errmsg, 1, true)
            assert.is_nil((store:get(key)))
            assert.is_true(store:set_durable(SUITE .. string.rep("w", 150), "v"))
        end)

        it("returns a store error from list_durable when the directory goes away", function()
            local store = file_store.new(dir)
            os.execute("rm -rf " .. child.quote(dir))
            local keys, err = store:list_durable("")
            assert.is_nil(keys)
            assert.equal("store", err.kind)
        end)
    end)

    describe("lock", function()
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
            contract.lock_race('require("wecom.store.file").new(arg[1])', { dir })
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

    -- issue 10, item 7: every refusal is a store error naming what is wrong,
    -- and the token manager still serves the call (from the process cache)
    describe("trusts nothing in its directory", function()
        local function served_anyway(store, key)
            local fetched = 0
            local v = token.get(store, key, function()
                fetched = fetched + 1
                return "SERVED", core.now() + 7200
            end, { wait = 1 })
            assert.equal("SERVED", v)
            assert.equal(1, fetched)
            core.token_delete(key)   -- the in-process fallback kept it
        end

        local function store_error(res, text)
            assert.is_nil(res[1])
            assert.is_true(errors.is_error(res[2]), tostring(res[2]))
            assert.equal("store", res[2].kind)
            assert.truthy(tostring(res[2]):find(text, 1, true), tostring(res[2]))
        end

        it("refuses a directory writable by group or others, in every operation", function()
            local store = file_store.new(dir)
            assert.is_true(store:set("k", "v", core.now() + 60))
            assert(os.execute("chmod 1777 " .. sh.quote(dir)))
            for _, call in ipairs {
                function() return store:get("k") end,
                function() return store:set("k", "v", core.now() + 60) end,
                function() return store:delete("k") end,
                function() return store:lock("k", 30) end,
            } do
                store_error({ call() }, "refusing " .. dir .. ": it is writable by group or others (mode 1777)")
            end
            served_anyway(store, "spec:file:open-dir:" .. core.nonce(8))
            assert(os.execute("chmod 0770 " .. sh.quote(dir)))
            store_error({ store:get("k") }, "(mode 0770)")
            assert(os.execute("chmod 0700 " .. sh.quote(dir)))
            assert.equal("v", (store:get("k")))
        end)

        it("refuses a directory owned by another user", function()
            if not sh.capture("id -u"):match("^0%s*$") then
                pending("needs root, to give the directory away")
                return
            end
            local store = file_store.new(dir)
            assert(os.execute("chown nobody " .. sh.quote(dir)))
            store_error({ store:get("k") }, "refusing " .. dir .. ": it is owned by uid ")
            store_error({ store:set("k", "v", core.now() + 60) }, "not by this process' user")
            served_anyway(store, "spec:file:foreign-dir:" .. core.nonce(8))
        end)

        it("refuses a FIFO in place of an entry, without blocking", function()
            file_store.new(dir)
            assert(os.execute("mkfifo " .. sh.quote(dir .. "/k.tok")))
            local out, exited = run_bounded(10, PROBE, { dir, "get", "k" })
            assert.is_true(exited, "the read blocked: " .. tostring(out))
            assert.equal("nil | store | wecom store error: refusing " .. dir .. "/k.tok: it is not a regular file",
                out)
            out, exited = run_bounded(10, PROBE, { dir, "serve", "k" })
            assert.is_true(exited, "blocked: " .. tostring(out))
            assert.truthy(out:find("SERVED | - | ", 1, true), out)
        end)

        it("refuses a symbolic link in place of an entry (to /dev/zero: no endless read)", function()
            file_store.new(dir)
            assert(os.execute("ln -s /dev/zero " .. sh.quote(dir .. "/k.tok")))
            local out, exited = run_bounded(10, PROBE, { dir, "get", "k" })
            assert.is_true(exited, "the read did not end: " .. tostring(out))
            assert.equal("nil | store | wecom store error: refusing " .. dir .. "/k.tok: it is a symbolic link", out)
            -- also to a file with a valid entry in it
            sh.write_file(root .. "/elsewhere", string.format("%.17g\nPLANTED", core.now() + 600))
            os.remove(dir .. "/k.tok")
            assert(os.execute("ln -s " .. sh.quote(root .. "/elsewhere") .. " " .. sh.quote(dir .. "/k.tok")))
            local store = file_store.new(dir)
            store_error({ store:get("k") }, "it is a symbolic link")
            served_anyway(store, "k")
        end)

        it("refuses an entry over the size cap", function()
            local store = file_store.new(dir)
            sh.write_file(dir .. "/k.tok", string.format("%.17g\n", core.now() + 600) .. string.rep("x", 70000))
            store_error({ store:get("k") }, "refusing " .. dir .. "/k.tok: it is larger than")
            store_error({ store:set("k", string.rep("y", 70000), core.now() + 60) }, "over the file store's 65536")
            -- an entry of the cap's size is fine
            assert.is_true(store:set("k", string.rep("y", 60000), core.now() + 60))
            assert.equal(60000, #store:get("k"))
        end)

        it("does not follow a dangling .lock symbolic link (nor create its target)", function()
            local target = root .. "/created-by-the-store"
            assert(os.execute("mkdir -p " .. sh.quote(dir) .. " && chmod 700 " .. sh.quote(dir)
                .. " && ln -s " .. sh.quote(target) .. " " .. sh.quote(dir .. "/.lock")))
            local store = file_store.new(dir)
            for _, call in ipairs {
                function() return store:set("k", "v", core.now() + 60) end,
                function() return store:lock("k", 30) end,
                function() return store:delete("k") end,
            } do
                store_error({ call() }, "refusing " .. dir .. "/.lock: it is a symbolic link")
            end
            assert.is_nil(sh.read_file(target))
            served_anyway(store, "spec:file:lock-link:" .. core.nonce(8))
        end)

        it("refuses a FIFO as the lock file or a lease, without blocking", function()
            file_store.new(dir)
            assert(os.execute("mkfifo " .. sh.quote(dir .. "/.lock")))
            local out, exited = run_bounded(10, PROBE, { dir, "set", "k" })
            assert.is_true(exited, "blocked: " .. tostring(out))
            assert.equal("nil | store | wecom store error: refusing " .. dir .. "/.lock: it is not a regular file", out)
            os.remove(dir .. "/.lock")
            assert(os.execute("mkfifo " .. sh.quote(dir .. "/k.lease")))
            out, exited = run_bounded(10, PROBE, { dir, "lock", "k" })
            assert.is_true(exited, "blocked: " .. tostring(out))
            assert.equal("nil | store | wecom store error: refusing " .. dir .. "/k.lease: it is not a regular file",
                out)
        end)
    end)

    -- issue 10, item 4
    it("lets a cold token.get past a lease left by a killed process within its wait", function()
        contract.after_killed_holder('require("wecom.store.file").new(arg[1])', { dir }, file_store.new(dir))
    end)
end)
