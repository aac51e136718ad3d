-- wecom.callback's opt-in dedupe (callback.new{ dedupe = store }): WeCom
-- resends a callback it saw no 200 for, and a resend must not be handled
-- twice.  cb:claim(event) is true once per message within dedupe_ttl, in
-- one process (memory store) and across processes (file, Redis stores).

local callback = require "wecom.callback"
local child = require "helpers.child"
local core = require "wecom.core"
local errors = require "wecom.errors"
local memory = require "wecom.store.memory"
local sh = require "helpers.sh"

local TOKEN = "DedupeSpecTokenK5"
local AES_KEY = "RGVkdXBlU3BlY0tleUZvclRoZUNhbGxiYWNrMTIzNDU"
local UPSTREAM = "wwUPSTREAMCORP"

local seq = 0
-- a message nobody has claimed yet in this process (the memory store is
-- process-wide, so every spec needs its own)
local function fresh_event_xml(event_type)
  seq = seq + 1
  return "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>" .. (1700000000 + seq) .. "</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" .. (event_type or "share_chain_change")
    .. "]]></Event><AgentID>1000002</AgentID><Run>" .. core.nonce(16) .. "</Run></xml>"
end

local function new_cb(opts)
  local o = { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
  for k, v in pairs(opts or {}) do o[k] = v end
  return callback.new(o)
end

-- What WeCom POSTs for xml, decrypted as a server would (each call encrypts
-- anew: fresh random, timestamp and nonce, as a resend may be).
local function deliver(cb, xml, opts)
  local body, query = cb:encrypt_event(xml, opts)
  return assert(cb:decrypt(query, body))
end

describe("wecom.callback dedupe", function()
  it("is off by default: claim is always true and settle/release do nothing", function()
    local cb = new_cb()
    local xml = fresh_event_xml()
    assert.is_true(cb:claim(deliver(cb, xml)))
    assert.is_true(cb:claim(deliver(cb, xml)))
    assert.is_true(cb:settle(deliver(cb, xml), "<xml>sealed</xml>"))
    assert.is_true(cb:release(deliver(cb, xml)))
  end)

  describe("with the memory store", function()
    local cb
    setup(function()
      cb = new_cb { dedupe = memory.new() }
    end)

    it("claims a message once, however it is re-encrypted or re-signed", function()
      local xml = fresh_event_xml()
      local event = deliver(cb, xml)
      assert.is_true(cb:claim(event))
      -- the same event table again, the same message in a new envelope, and
      -- in the JSON envelope
      for _, again in ipairs { event, deliver(cb, xml), deliver(cb, xml, { format = "json" }) } do
        local first, reply, pending = cb:claim(again)
        assert.is_false(first)
        assert.is_nil(reply)
        assert.is_true(pending)     -- the first delivery has not settled
      end
      -- another message is another claim
      assert.is_true(cb:claim(deliver(cb, fresh_event_xml())))
    end)

    it("hands a resend the reply settle recorded for the first delivery", function()
      local xml = fresh_event_xml("text")
      local event = deliver(cb, xml)
      assert.is_true(cb:claim(event))
      local sealed = assert(cb:reply("<xml><Content>hi</Content></xml>"))
      assert.is_true(cb:settle(event, sealed))
      local first, reply, pending = cb:claim(deliver(cb, xml))
      assert.is_false(first)
      assert.equal(sealed, reply)
      assert.is_nil(pending)
    end)

    it("calls a resend pending until the first delivery settles, with or without a reply", function()
      for _, no_reply in ipairs { false, "" } do
        local xml = fresh_event_xml()
        local event = deliver(cb, xml)
        assert.is_true(cb:claim(event))
        local first, reply, pending = cb:claim(deliver(cb, xml))
        assert.is_false(first)
        assert.is_nil(reply)
        assert.is_true(pending)
        -- handled, answered without a passive reply
        assert.is_true(cb:settle(event, no_reply or nil))
        first, reply, pending = cb:claim(deliver(cb, xml))
        assert.is_false(first)
        assert.is_nil(reply)
        assert.is_nil(pending)
      end
    end)

    it("forgets a released message: the next resend is claimed again", function()
      local xml = fresh_event_xml()
      local event = deliver(cb, xml)
      assert.is_true(cb:claim(event))
      assert.is_true(cb:release(event))
      assert.is_true(cb:claim(deliver(cb, xml)))
      assert.is_false(cb:claim(deliver(cb, xml)))
    end)

    it("is shared by every callback object and store object of the process", function()
      local xml = fresh_event_xml()
      assert.is_true(cb:claim(deliver(cb, xml)))
      local other = new_cb { dedupe = memory.new() }
      assert.is_false(other:claim(deliver(other, xml)))
    end)

    it("keeps apps apart: another token, the same plaintext, its own claim", function()
      local xml = fresh_event_xml()
      assert.is_true(cb:claim(deliver(cb, xml)))
      local app2 = callback.new { token = TOKEN .. "2", aes_key = AES_KEY, receive_id = UPSTREAM,
                                  dedupe = memory.new() }
      assert.is_true(app2:claim(deliver(app2, xml)))
    end)

    it("stores a keyed fingerprint: no plaintext, token or key in the store keys", function()
      local seen = {}
      local inner = memory.new()
      local spy = setmetatable({}, { __index = function(_, name)
        return function(_, key, ...)
          seen[#seen + 1] = key
          return inner[name](inner, key, ...)
        end
      end })
      local spied = new_cb { dedupe = spy }
      local event = deliver(spied, fresh_event_xml())
      assert.is_true(spied:claim(event))
      assert.is_true(spied:settle(event, "sealed"))
      assert.is_false(spied:claim(event))
      assert.is_true(#seen >= 3)
      for _, key in ipairs(seen) do
        assert.matches("^wecom:callback:%x+", key)
        assert.is_nil(key:find("share_chain_change", 1, true))
        assert.is_nil(key:find(TOKEN, 1, true))
      end
    end)

    it("claims a message again once dedupe_lease ends unsettled (its delivery died)", function()
      local leased = new_cb { dedupe = memory.new(), dedupe_lease = 0.3 }
      local xml = fresh_event_xml()
      -- claimed, then neither settled nor released: the process was killed
      assert.is_true(leased:claim(deliver(leased, xml)))
      local first, reply, pending = leased:claim(deliver(leased, xml))
      assert.is_false(first)
      assert.is_nil(reply)
      assert.is_true(pending)
      core.sleep(0.4)
      assert.is_true(leased:claim(deliver(leased, xml)))
    end)

    it("keeps answering a settled message after its lease, until dedupe_ttl", function()
      local leased = new_cb { dedupe = memory.new(), dedupe_lease = 0.2, dedupe_ttl = 30 }
      for _, sealed in ipairs { "<xml>sealed</xml>", false } do
        local xml = fresh_event_xml()
        local event = deliver(leased, xml)
        assert.is_true(leased:claim(event))
        assert.is_true(leased:settle(event, sealed or nil))
        core.sleep(0.3)
        for _ = 1, 2 do
          local first, reply, pending = leased:claim(deliver(leased, xml))
          assert.is_false(first)
          assert.equal(sealed or nil, reply)
          assert.is_nil(pending)
        end
      end
    end)

    it("gives up the claim when it settles, and keeps only the record", function()
      local ops, keys = {}, {}
      local inner = memory.new()
      local spy = setmetatable({}, { __index = function(_, name)
        return function(_, key, ...)
          ops[#ops + 1] = name
          keys[name] = key
          return inner[name](inner, key, ...)
        end
      end })
      local spied = new_cb { dedupe = spy }
      local xml = fresh_event_xml()
      local event = deliver(spied, xml)
      assert.is_true(spied:claim(event))
      assert.is_true(spied:settle(event, "<xml>sealed</xml>"))
      assert.same({ "lock", "get", "set", "unlock" }, ops)
      assert.equal(keys.lock, keys.unlock)
      assert.equal(keys.lock .. ":reply", keys.set)
      -- the claim is free (another store object takes it), the record answers
      local other = memory.new()
      assert.is_true(other:lock(keys.lock, 1))
      assert.is_true(other:unlock(keys.lock))
      ops = {}
      local first, reply = spied:claim(deliver(spied, xml))
      assert.is_false(first)
      assert.equal("<xml>sealed</xml>", reply)
      -- the claim a resend takes to look is given back at once
      assert.same({ "lock", "get", "unlock" }, ops)
      assert.is_true(other:lock(keys.lock, 1))
    end)

    it("leases a claim for 10 s by default, or dedupe_ttl when that is shorter", function()
      local leases = {}
      local inner = memory.new()
      local spy = setmetatable({
        lock = function(_, key, lease)
          leases[#leases + 1] = lease
          return inner:lock(key, lease)
        end,
      }, { __index = function(_, name)
        return function(_, ...) return inner[name](inner, ...) end
      end })
      for _, opts in ipairs { { dedupe = spy }, { dedupe = spy, dedupe_ttl = 4 },
                              { dedupe = spy, dedupe_ttl = 60, dedupe_lease = 25 } } do
        local c = new_cb(opts)
        assert.is_true(c:claim(deliver(c, fresh_event_xml())))
      end
      assert.same({ 10, 4, 25 }, leases)
    end)

    it("forgets a message after dedupe_ttl", function()
      local short = new_cb { dedupe = memory.new(), dedupe_ttl = 0.3 }
      local xml = fresh_event_xml()
      assert.is_true(short:claim(deliver(short, xml)))
      assert.is_false(short:claim(deliver(short, xml)))
      core.sleep(0.4)
      assert.is_true(short:claim(deliver(short, xml)))
    end)
  end)

  it("returns nil and a store error when the store fails", function()
    local broken = {
      lock = function() return nil, "connection refused" end,
      unlock = function() return nil, "connection refused" end,
      get = function() return nil end,
      set = function() return nil, "connection refused" end,
    }
    local cb = new_cb { dedupe = broken }
    local event = deliver(cb, fresh_event_xml())
    for _, call in ipairs {
      function() return cb:claim(event) end,
      function() return cb:settle(event, "sealed") end,
      function() return cb:release(event) end,
    } do
      local ok, err = call()
      assert.is_nil(ok)
      assert.is_true(errors.is_error(err))
      assert.equal("store", err.kind)
      assert.matches("connection refused", tostring(err), 1, true)
    end
  end)

  describe("programming mistakes raise", function()
    it("a dedupe that is not a store, a ttl that is not seconds", function()
      for _, bad in ipairs { 5, "memory", {}, { lock = true } } do
        local ok, err = pcall(new_cb, { dedupe = bad })
        assert.is_false(ok)
        assert.matches("wecom.callback.new: opts.dedupe must be a wecom store", err, 1, true)
      end
      for _, bad in ipairs { 0, -1, "300", 1e9 } do
        local ok, err = pcall(new_cb, { dedupe = memory.new(), dedupe_ttl = bad })
        assert.is_false(ok)
        assert.matches("wecom.callback.new: opts.dedupe_ttl must be a number of seconds", err, 1, true)
        ok, err = pcall(new_cb, { dedupe = memory.new(), dedupe_lease = bad })
        assert.is_false(ok)
        assert.matches("wecom.callback.new: opts.dedupe_lease must be a number of seconds", err, 1, true)
      end
      local ok, err = pcall(new_cb, { dedupe = memory.new(), dedupe_ttl = 60, dedupe_lease = 61 })
      assert.is_false(ok)
      assert.matches("wecom.callback.new: opts.dedupe_lease (61 s) must not exceed dedupe_ttl (60 s)", err, 1, true)
    end)

    it("claim, settle and release of something that is not a decrypted event", function()
      local cb = new_cb { dedupe = memory.new() }
      for _, method in ipairs { "claim", "settle", "release" } do
        local ok, err = pcall(cb[method], cb, nil)
        assert.is_false(ok)
        assert.matches("wecom.callback:" .. method .. ": event must be a table", err, 1, true)
        ok, err = pcall(cb[method], cb, { type = "x" })
        assert.is_false(ok)
        assert.matches("event must come from cb:decrypt", err, 1, true)
      end
      local ok, err = pcall(cb.settle, cb, deliver(cb, fresh_event_xml()), 42)
      assert.is_false(ok)
      assert.matches("wecom.callback:settle: reply must be a string", err, 1, true)
    end)
  end)

  describe("across processes", function()
    -- Each child decrypts the same delivery and claims it at the same moment;
    -- exactly one may win.
    local CHILD = [[
local callback = require "wecom.callback"
local core = require "wecom.core"
local kind, where, token, aes_key, receive_id, body_file, sig, ts, nonce, at = ...
local store
if kind == "file" then
  store = require("wecom.store.file").new(where)
else
  store = require("wecom.store.redis").new { host = "127.0.0.1", port = tonumber(where), prefix = "spec:" }
end
local cb = callback.new { token = token, aes_key = aes_key, receive_id = receive_id, dedupe = store }
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()
local event = assert(cb:decrypt({ msg_signature = sig, timestamp = ts, nonce = nonce }, body))
while core.now() < tonumber(at) do core.sleep(0.005) end
local first, err = cb:claim(event)
io.write(first == true and "first" or first == false and "resend" or ("error " .. tostring(err)), "\n")
]]

    local function replay(kind, where, processes)
      local cb = new_cb()
      local body, query = cb:encrypt_event(fresh_event_xml())
      local body_file = os.tmpname()
      sh.write_file(body_file, body)
      local at = string.format("%.3f", core.now() + 0.6)
      local children = {}
      for i = 1, processes do
        children[i] = child.spawn(CHILD, { kind, where, TOKEN, AES_KEY, UPSTREAM, body_file,
                                           query.msg_signature, query.timestamp, query.nonce, at })
      end
      local counts = {}
      for i = 1, processes do
        local out = children[i]:wait():gsub("%s+$", "")
        counts[out] = (counts[out] or 0) + 1
      end
      os.remove(body_file)
      return counts
    end

    it("file store: one of 4 processes claims the message, 3 see a resend", function()
      local dir = sh.tmpdir("wecom-dedupe-spec")
      local counts = replay("file", dir, 4)
      sh.run("rm -rf " .. sh.quote(dir))
      assert.same({ first = 1, resend = 3 }, counts)
    end)

    it("Redis store: one of 4 processes claims the message, 3 see a resend", function()
      local redis = require "helpers.redis"
      local srv = redis.start {}
      local ok, counts = pcall(replay, "redis", tostring(srv.port), 4)
      srv:destroy()
      assert(ok, counts)
      assert.same({ first = 1, resend = 3 }, counts)
    end)
  end)
end)
