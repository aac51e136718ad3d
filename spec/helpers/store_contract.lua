-- The contract every token store keeps (docs/stores.md, "What every store
-- guarantees" and "Writing your own store"), written once and run over every store kind: memory
-- (spec/unit/store_memory_spec.lua), file and Redis
-- (spec/integration/store_{file,redis}_spec.lua) and shdict inside nginx
-- (spec/openresty/redis_store_spec.lua).
--
-- Plain Lua without busted, so that the cases also run inside nginx.
--
--   local contract = require "helpers.store_contract"
--   contract.describe(make_ctx)      -- in a busted describe: one it() per case
--   contract.names()                 -- the case names, in order
--   contract.run(ctx, name)          -- runs one case; raises on a failure
--   contract.after_killed_holder(new_store_code, args, store)   -- busted only
--   contract.lock_race(new_store_code, args)                     -- busted only
--
-- ctx (what a store kind provides):
--   name            the kind: its messages start "wecom.store.<name>:"
--   new()           a new store object on the same shared data
--   raw(key, expires_text, value) -> true | false: writes an entry in the
--                   kind's own stored form, past the store (false: the kind
--                   cannot hold that form)
--   raw_text(key, text)   optional: writes text as key's stored form
--   sleep(seconds)
--   fill            how many expiring entries the pressure case writes at
--                   most: enough to fill a kind that has a limit (memory:
--                   its entry cap; shdict: its zone)
-- Keys in raw cases are plain [A-Za-z0-9]: every kind stores them as is.

local core = require "wecom.core"
local token = require "wecom.token"

local _M = {}

local cases, order = {}, {}

local function case(name, fn)
    cases[name] = fn
    order[#order + 1] = name
end

---------------------------------------------------------------------------
-- Assertions (busted's are not there inside nginx)
---------------------------------------------------------------------------

local function show(v)
    if type(v) == "string" then
        return #v > 60 and string.format("%q...", v:sub(1, 60)) or string.format("%q", v)
    end
    return type(v) .. " " .. tostring(v)
end

local function eq(want, got, what)
    if want ~= got then
        error((what or "value") .. ": expected " .. show(want) .. ", got " .. show(got), 2)
    end
end

local function check(cond, what)
    if not cond then
        error(what, 2)
    end
end

-- raises(fn, text): fn raises an error whose message contains text
local function raises(fn, text)
    local ok, err = pcall(fn)
    if ok then
        error("expected an error containing " .. show(text), 2)
    end
    if not tostring(err):find(text, 1, true) then
        error("expected an error containing " .. show(text) .. ", got " .. show(tostring(err)), 2)
    end
end

-- a miss: nil and no error
local function miss(store, key, what)
    local v, err = store:get(key)
    eq(nil, v, what or ("get " .. key))
    eq(nil, err, (what or ("get " .. key)) .. " (error)")
end

local serial = 0
local run_id = core.nonce(8):gsub("[^%w]", "x")

-- a key no earlier case (nor earlier run on a shared store) used
local function fresh(tag)
    serial = serial + 1
    return "c" .. run_id .. tag .. serial
end

---------------------------------------------------------------------------
-- get / set
---------------------------------------------------------------------------

case("misses on a key never set", function(ctx)
    miss(ctx.new(), fresh("miss"))
end)

case("round-trips binary values and the exact expiry", function(ctx)
    local store, key = ctx.new(), "wecom:token:" .. fresh("rt")
    local value = "tok\0en\n|x:" .. string.rep("x", 600)
    local expires_at = core.now() + 7200.123456
    eq(true, store:set(key, value, expires_at), "set")
    local v, e = store:get(key)
    eq(value, v, "value")
    eq(expires_at, e, "expires_at")
    eq(true, ctx.new():set(key, "second", expires_at + 1), "set again")
    eq("second", (store:get(key)), "value after a second set")
end)

case("does not return an entry set with a past expiry", function(ctx)
    local store, key = ctx.new(), fresh("past")
    eq(true, store:set(key, "v", core.now() + 60), "set")
    eq(true, store:set(key, "late", core.now() - 1), "set a past expiry")
    miss(store, key)
end)

case("lets an entry expire", function(ctx)
    local store, key = ctx.new(), fresh("exp")
    eq(true, store:set(key, "brief", core.now() + 0.2), "set")
    eq("brief", (store:get(key)), "before the expiry")
    ctx.sleep(0.3)
    miss(store, key, "after the expiry")
end)

case("keeps keys apart that differ in characters a store may escape, and long keys", function(ctx)
    local store, exp = ctx.new(), core.now() + 60
    local p = fresh("apart")
    local keys = { p .. "a:b", p .. "a%3Ab", p .. "a/b", p .. "a_b", p .. "A:B", p .. "a|b", p .. "a=b",
        p .. string.rep("k", 300) .. "1", p .. string.rep("k", 300) .. "2" }
    for i, k in ipairs(keys) do eq(true, store:set(k, "v" .. i, exp), "set " .. i) end
    for i, k in ipairs(keys) do eq("v" .. i, (store:get(k)), "get " .. i) end
end)

case("shares entries between store objects", function(ctx)
    local key = fresh("share")
    eq(true, ctx.new():set(key, "shared", core.now() + 60), "set")
    eq("shared", (ctx.new():get(key)), "get from another object")
end)

---------------------------------------------------------------------------
-- delete
---------------------------------------------------------------------------

case("deletes, and compares the value before deleting when given one", function(ctx)
    local store, key, exp = ctx.new(), fresh("del"), core.now() + 60
    eq(true, store:set(key, "current", exp), "set")
    eq(false, store:delete(key, "rejected-old-token"), "delete another value")
    eq("current", (store:get(key)), "kept")
    eq(false, store:delete(key, "current\n"), "delete a value that only starts the same")
    eq(true, store:delete(key, "current"), "delete the value")
    miss(store, key)
    eq(false, store:delete(key, "current"), "delete it again")
    eq(true, store:set(key, "again", exp), "set again")
    eq(true, store:delete(key), "delete any value")
    eq(false, store:delete(key), "delete a missing key")
end)

case("compares value and expiry (the fetch) when given both", function(ctx)
    local store, key, exp = ctx.new(), fresh("gen"), core.now() + 60.25
    eq(true, store:set(key, "T", exp), "set")
    eq(false, store:delete(key, "T", exp - 1), "delete another fetch of the same value")
    eq(false, store:delete(key, "U", exp), "delete another value with the same expiry")
    eq("T", (store:get(key)), "kept")
    local _, read_exp = store:get(key)
    eq(true, store:delete(key, "T", read_exp), "delete the fetch that was read")
    miss(store, key)
end)

---------------------------------------------------------------------------
-- lock
---------------------------------------------------------------------------

case("lets one holder in until it unlocks", function(ctx)
    local a, b, key = ctx.new(), ctx.new(), fresh("lock")
    eq(true, a:lock(key, 30), "a locks")
    eq(false, b:lock(key, 30), "b while a holds it")
    eq(false, a:lock(key, 30), "a again while it holds it")
    eq(true, b:lock(key .. "other", 30), "b locks another key")
    eq(true, a:unlock(key), "a unlocks")
    eq(true, b:lock(key, 30), "b after a unlocked")
    b:unlock(key)
    b:unlock(key .. "other")
end)

case("ends a lock with its lease; a late unlock leaves the new holder alone", function(ctx)
    local a, b, c, key = ctx.new(), ctx.new(), ctx.new(), fresh("lease")
    eq(true, a:lock(key, 0.1), "a locks for 0.1 s")
    eq(false, b:lock(key, 30), "b within the lease")
    ctx.sleep(0.2)
    eq(true, b:lock(key, 30), "b after the lease")
    eq(true, a:unlock(key), "a's late unlock")
    eq(false, c:lock(key, 30), "c while b holds it")
    eq(true, b:unlock(key), "b unlocks")
    eq(true, c:lock(key, 30), "c after b unlocked")
    c:unlock(key)
end)

case("ignores an unlock from a store object that does not hold the lock", function(ctx)
    local a, b, key = ctx.new(), ctx.new(), fresh("foreign")
    eq(true, a:lock(key, 30), "a locks")
    eq(true, b:unlock(key), "b's unlock is harmless")
    eq(false, b:lock(key, 30), "a still holds it")
    a:unlock(key)
end)

case("keeps the lock and the value of a key apart", function(ctx)
    local store, key = ctx.new(), fresh("indep")
    eq(true, store:lock(key, 30), "lock")
    miss(store, key, "a lock is no value")
    eq(true, store:set(key, "v", core.now() + 60), "set while locked")
    eq("v", (store:get(key)), "get while locked")
    eq(true, store:unlock(key), "unlock")
    eq("v", (store:get(key)), "the value outlives the lock")
end)

---------------------------------------------------------------------------
-- durable entries: set_durable and list_durable
---------------------------------------------------------------------------

-- the sorted list_durable(prefix) as one string, for messages
local function listed(store, prefix)
    local keys, err = store:list_durable(prefix)
    check(keys, "list_durable failed: " .. tostring(err))
    for i = 2, #keys do
        check(keys[i - 1] < keys[i], "list_durable is not sorted: " .. show(keys[i - 1]) .. " before "
            .. show(keys[i]))
    end
    return table.concat(keys, ",")
end

case("keeps a durable entry without an expiry, and lists it by prefix", function(ctx)
    local store, p = ctx.new(), "wecom:suite:" .. fresh("dur") .. ":corp:"
    local value = "{\"permanent_code\":\"P\0\n|x\"}" .. string.rep("v", 600)
    eq(true, store:set_durable(p .. "wwB", value), "set_durable")
    eq(true, store:set_durable(p .. "wwA", "A"), "set_durable another")
    eq(true, store:set(p .. "wwA:token", "T", core.now() + 60), "an expiring entry under the prefix")
    eq(true, store:set_durable(p:sub(1, -2) .. "s:wwC", "C"), "a durable entry beside the prefix")
    local v, e = store:get(p .. "wwB")
    eq(value, v, "value")
    eq(nil, e, "expires_at of a durable entry without one")
    eq("A", (ctx.new():get(p .. "wwA")), "from another store object")
    eq(p .. "wwA," .. p .. "wwB", listed(store, p), "list_durable")
    eq(p .. "wwA," .. p .. "wwB", listed(ctx.new(), p), "list_durable from another store object")
    eq(p .. "wwA," .. p .. "wwB," .. p:sub(1, -2) .. "s:wwC", listed(store, p:sub(1, -2)), "a shorter prefix")
    eq("", listed(store, p .. "wwZ"), "a prefix nothing starts with")
    check(listed(store, ""):find(p .. "wwA", 1, true), "the empty prefix lists every durable key")
end)

case("lists keys with the characters a store escapes exactly as they were set", function(ctx)
    local store, p = ctx.new(), fresh("esc") .. ":"
    local keys = { p .. "a:b", p .. "a%3Ab", p .. "a/b", p .. "A=B", p .. "a|b", p .. "a b", p .. "wpAbC", p .. "wpabc",
        p .. "\255x", p .. "\255\255" }
    table.sort(keys)
    for i, k in ipairs(keys) do eq(true, store:set_durable(k, "v" .. i), "set_durable " .. show(k)) end
    eq(table.concat(keys, ","), listed(store, p), "list_durable")
    for i, k in ipairs(keys) do eq("v" .. i, (store:get(k)), "get " .. show(k)) end
    eq(p .. "\255x," .. p .. "\255\255", listed(store, p .. "\255"), "a prefix ending in byte 255")
    eq(p .. "\255\255", listed(store, p .. "\255\255"), "a prefix of bytes 255")
end)

case("ends a durable entry at the expiry it was given", function(ctx)
    local store, key = ctx.new(), fresh("durexp")
    local expires_at = core.now() + 0.2
    eq(true, store:set_durable(key, "ticket", expires_at), "set_durable with an expiry")
    local v, e = store:get(key)
    eq("ticket", v, "before the expiry")
    eq(expires_at, e, "its expiry")
    ctx.sleep(0.3)
    miss(store, key, "after the expiry")
    eq(true, store:set_durable(key, "late", core.now() - 1), "set_durable with a past expiry")
    miss(store, key, "an entry set with a past expiry")
end)

case("lets set and set_durable replace each other under one key", function(ctx)
    local store, p = ctx.new(), fresh("switch") .. ":"
    local key, exp = p .. "k", core.now() + 60
    eq(true, store:set(key, "expiring", exp), "set")
    eq(true, store:set_durable(key, "durable"), "set_durable over it")
    local v, e = store:get(key)
    eq("durable", v, "the durable value")
    eq(nil, e, "no expiry")
    eq(key, listed(store, p), "listed")
    eq(true, store:set(key, "expiring again", exp), "set over the durable entry")
    v, e = store:get(key)
    eq("expiring again", v, "the expiring value")
    eq(exp, e, "its expiry")
    eq("", listed(store, p), "no longer listed")
    eq(true, store:delete(key), "delete")
    miss(store, key)
end)

case("deletes a durable entry, comparing the value when given one", function(ctx)
    local store, p = ctx.new(), fresh("durdel") .. ":"
    local key = p .. "k"
    eq(true, store:set_durable(key, "code-1"), "set_durable")
    eq(false, store:delete(key, "code-0"), "delete another value")
    eq(false, store:delete(key, "code-1", core.now() + 60), "delete with an expiry it does not have")
    eq("code-1", (store:get(key)), "kept")
    eq(true, store:delete(key, "code-1"), "delete the value")
    miss(store, key)
    eq("", listed(store, p), "no longer listed")
    eq(false, store:delete(key), "delete it again")
    eq(true, store:set_durable(key, "code-2", core.now() + 60), "set_durable with an expiry")
    local _, e = store:get(key)
    eq(true, ctx.new():delete(key, "code-2", e), "delete that fetch from another store object")
    eq("", listed(store, p), "not listed after that")
end)

case("never evicts: under pressure a write fails rather than drop what is there", function(ctx)
    local store, p = ctx.new(), fresh("press") .. ":"
    local durable = p .. "durable"
    eq(true, store:set_durable(durable, "permanent"), "set_durable")
    local written, refused = {}, nil
    local filler = string.rep("f", 200)
    for i = 1, ctx.fill do
        local key = p .. "fill" .. i
        local ok, err = store:set(key, filler, core.now() + 30)
        if not ok then
            refused = err
            break
        end
        written[#written + 1] = key
    end
    local function cleanup()
        for _, key in ipairs(written) do store:delete(key) end
    end
    local ok, err = pcall(function()
        if refused ~= nil then
            eq("store", type(refused) == "table" and refused.kind or refused, "a refused write's error")
        end
        eq("permanent", (store:get(durable)), "the durable entry after " .. #written .. " writes")
        eq(durable, listed(store, p), "still listed")
        for _, key in ipairs(written) do
            check(store:get(key) == filler, "an expiring entry was evicted: " .. key .. " of " .. #written)
        end
        -- one more durable write: kept, or refused with a store error (a
        -- full shdict), never at the cost of another entry
        local more, merr = store:set_durable(p .. "more", "another")
        if more then
            eq("another", (store:get(p .. "more")), "the second durable entry")
        else
            eq("store", type(merr) == "table" and merr.kind or merr, "a refused durable write's error")
        end
        eq("permanent", (store:get(durable)), "the first durable entry at the end")
    end)
    cleanup()
    store:delete(durable)
    store:delete(p .. "more")
    if not ok then error(err, 0) end
end)

---------------------------------------------------------------------------
-- arguments
---------------------------------------------------------------------------

case("raises on arguments of the wrong type, naming the call", function(ctx)
    local store = ctx.new()
    local where = "wecom.store." .. ctx.name .. ":"
    raises(function() store:get() end, where .. "get: key must be a non-empty string (got nil)")
    raises(function() store:get("") end, where .. "get: key must be a non-empty string (got empty string)")
    raises(function() store:set("k", 1, core.now()) end, where .. "set: value must be a string (got number 1)")
    raises(function() store:set("k", "v", "soon") end, where .. "set: expires_at must be a finite number")
    raises(function() store:set("k", "v") end, where .. "set: expires_at must be a finite number (got nil)")
    raises(function() store:set("k", "v", 1 / 0) end, where .. "set: expires_at must be a finite number")
    raises(function() store:delete("k", 5) end, where .. "delete: only_if_value must be a string")
    raises(function() store:delete("k", nil, 5) end, where .. "delete: only_if_expires_at must be")
    raises(function() store:lock("k", 0) end, where .. "lock: lease_seconds must be a positive number")
    raises(function() store:lock("k", "10") end, where .. "lock: lease_seconds must be a positive number")
    raises(function() store:unlock(nil) end, where .. "unlock: key must be a non-empty string")
    raises(function() store:set_durable("", "v") end, where .. "set_durable: key must be a non-empty string")
    raises(function() store:set_durable("k", "") end,
        where .. "set_durable: value must be a non-empty string (got empty string)")
    raises(function() store:set_durable("k", 5) end, where .. "set_durable: value must be a non-empty string")
    raises(function() store:set_durable("k", "v", "soon") end,
        where .. "set_durable: expires_at must be a finite number or nil")
    raises(function() store:set_durable("k", "v", 0 / 0) end, where .. "set_durable: expires_at must be")
    raises(function() store:set_durable("k", "v", 1 / 0) end, where .. "set_durable: expires_at must be")
    raises(function() store:list_durable(nil) end, where .. "list_durable: prefix must be a string (got nil)")
    raises(function() store:list_durable(5) end, where .. "list_durable: prefix must be a string")
end)

case("names its kind in tostring", function(ctx)
    local s = tostring(ctx.new())
    eq("wecom.store." .. ctx.name, s:sub(1, #("wecom.store." .. ctx.name)), "tostring")
end)

---------------------------------------------------------------------------
-- what a store holds is data (issue 10, item 5)
---------------------------------------------------------------------------

case("reads an empty value as a miss, and the token manager replaces it", function(ctx)
    local store, key = ctx.new(), fresh("empty")
    check(ctx.raw(key, string.format("%.17g", core.now() + 600), ""), "the kind can hold an empty value")
    miss(store, key, "an empty value")
    local fetched = 0
    local v = token.get(store, key, function()
        fetched = fetched + 1
        return "FRESH", core.now() + 7200
    end)
    eq("FRESH", v, "token.get")
    eq(1, fetched, "fetches")
    eq("FRESH", (store:get(key)), "the entry after token.get")
end)

case("reads a damaged entry as a miss", function(ctx)
    local store = ctx.new()
    local forms = {
        { "inf", "T" }, { "nan", "T" }, { "1e999", "T" }, { "-inf", "T" }, { "soon", "T" }, { "", "T" },
    }
    for i, form in ipairs(forms) do
        local key = fresh("dmg")
        if ctx.raw(key, form[1], form[2]) then
            miss(store, key, "entry " .. i .. " (expiry " .. show(form[1]) .. ")")
        end
    end
    if ctx.raw_text then
        for i, text in ipairs { "garbage without a header", "", "\n", "1e999" } do
            local key = fresh("txt")
            ctx.raw_text(key, text)
            miss(store, key, "text " .. i)
        end
    end
end)

---------------------------------------------------------------------------
-- the token manager on this store (issue 10, items 4 and 6)
---------------------------------------------------------------------------

case("a lock left by a dead holder delays a cold token.get by its wait only", function(ctx)
    local store, key = ctx.new(), fresh("dead")
    eq(true, ctx.new():lock(key, 600), "the holder that never unlocks")
    local fetched = 0
    local started = core.monotonic()
    local v, exp = token.get(store, key, function()
        fetched = fetched + 1
        return "BY-WAITER", core.now() + 7200
    end, { lease = 600, wait = 0.3 })
    local took = core.monotonic() - started
    eq("BY-WAITER", v, "token.get")
    check(exp > core.now(), "a future expiry")
    eq(1, fetched, "fetches")
    check(took >= 0.25 and took < 2.3, "token.get took " .. took .. " s (wait 0.3 s)")
    -- kept in the store: the next caller does not wait at all
    started = core.monotonic()
    eq("BY-WAITER", (token.get(store, key, function() error("must not fetch") end, { wait = 0.3 })),
        "the next caller")
    check(core.monotonic() - started < 0.25, "the next caller waited")
end)

case("token.invalidate drops only the fetch a call used", function(ctx)
    local store, key = ctx.new(), fresh("inv")
    local first = core.now() + 100.5
    eq(true, store:set(key, "T", first), "set")
    local _, used = store:get(key)
    -- WeCom handed out the same string again: another fetch, the same value
    eq(true, store:set(key, "T", first + 0.25), "a refetch of the same token")
    eq(false, token.invalidate(store, key, "T", used), "invalidate the earlier fetch")
    eq("T", (store:get(key)), "the refetch survives")
    local _, now_exp = store:get(key)
    eq(true, token.invalidate(store, key, "T", now_exp), "invalidate the fetch that was used")
    miss(store, key)
end)

---------------------------------------------------------------------------

function _M.names()
    return order
end

function _M.run(ctx, name)
    local fn = cases[name]
    if not fn then
        error("no store contract case " .. show(name), 2)
    end
    return fn(ctx)
end

-- after_killed_holder(new_store_code, args, store): a child process builds
-- its store with new_store_code (a Lua expression; arg[1..] = args), takes
-- the lock of a key for 600 s and is killed (SIGKILL) holding it; then a
-- cold token.get on store, with the bounds of a client whose timeout is
-- 1 s, must get past that lock within its wait (issue 10, item 4).
function _M.after_killed_holder(new_store_code, args, store)
    local child = require "helpers.child"
    local key = "wecom:token:dead:" .. run_id
    local child_args = {}
    for i, a in ipairs(args) do child_args[i] = a end
    child_args[#child_args + 1] = key
    local out = child.run("local store = " .. new_store_code .. "\n" .. [[
        assert(store:lock(arg[#arg], 600))
        io.write("locked")
        io.stdout:flush()
        os.execute("kill -9 " .. require("wecom.core").getpid())
    ]], child_args)
    eq("locked", out, "the child")
    eq(false, store:lock(key, 1), "the dead holder's lock")
    local started = core.monotonic()
    local v = token.get(store, key, function()
        return "AFTER-DEAD-HOLDER", core.now() + 7200
    end, token.flight_opts(1, 2, 8))
    local took = core.monotonic() - started
    eq("AFTER-DEAD-HOLDER", v, "token.get")
    check(took < 1 + 2, "token.get took " .. took .. " s (timeout 1 s)")
    eq("AFTER-DEAD-HOLDER", (store:get(key)), "the entry after token.get")
end

-- lock_race(new_store_code, args): six child processes build their store
-- with new_store_code (a Lua expression; arg[1..] = args), each reads once
-- (connected, or its directory checked, before the race), then all try the
-- lock of one key at the same moment: exactly one gets it.
function _M.lock_race(new_store_code, args)
    local child = require "helpers.child"
    local go = os.tmpname()
    os.remove(go)
    local child_args = {}
    for i, a in ipairs(args) do child_args[i] = a end
    child_args[#child_args + 1] = go
    child_args[#child_args + 1] = "wecom:token:" .. fresh("race")
    local code = "local store = " .. new_store_code .. "\n" .. [[
        local core = require "wecom.core"
        assert(store:get("warm-up") == nil)
        while not io.open(arg[#arg - 1]) do core.sleep(0.002) end
        io.write(tostring(store:lock(arg[#arg], 30)))
    ]]
    local kids = {}
    for i = 1, 6 do
        kids[i] = child.spawn(code, child_args)
    end
    local f = assert(io.open(go, "w"))
    f:close()
    local winners = 0
    for i = 1, 6 do
        local out = kids[i]:wait()
        check(out == "true" or out == "false", "child " .. i .. ": " .. show(out))
        if out == "true" then
            winners = winners + 1
        end
    end
    os.remove(go)
    eq(1, winners, "processes that got the lock")
end

-- describe(make_ctx): an it() per case, inside the caller's describe;
-- make_ctx() is called in each case, after the describe's setup ran
function _M.describe(make_ctx)
    local busted = require "busted"
    for _, name in ipairs(order) do
        busted.it("keeps the store contract: " .. name, function()
            _M.run(make_ctx(), name)
        end)
    end
end

return _M
