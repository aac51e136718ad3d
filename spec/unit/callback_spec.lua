-- wecom.callback: options, the reference vectors (§7.7), round trips, and
-- every bad input of DESIGN.md "Bad input" that reaches a callback.

local callback = require "wecom.callback"
local core = require "wecom.core"
local errors = require "wecom.errors"

-- the reference vectors (§7.7)
local vectors = require "helpers.vectors"
local V1, V3 = vectors.V1, vectors.V3

-- Distinctive secrets, so a leak into an error string would be visible.
local TOKEN = "SecretTokenXyZ42"
local AES_KEY = "Qk9VTkRBUllrZXlGb3JTcGVjc09ubHkxMjM0NTY3ODk"
local UPSTREAM = "wwUPSTREAMCORP"

local function envelope(encrypt, agentid)
  return "<xml><ToUserName><![CDATA[" .. UPSTREAM .. "]]></ToUserName><Encrypt><![CDATA[" .. encrypt
    .. "]]></Encrypt><AgentID><![CDATA[" .. (agentid or "1000002") .. "]]></AgentID></xml>"
end

local EVENT = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
  .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime>"
  .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[share_chain_change]]></Event>"
  .. "<AgentID>1000002</AgentID></xml>"

-- Every error a spec sees goes through here: it must be a callback error
-- with the expected code whose text holds neither secret.
local seen_errors = {}

local function check_error(err, code)
  assert.is_true(errors.is_error(err), "not a wecom error: " .. tostring(err))
  assert.equal("callback", err.kind)
  assert.equal(code, err.code, tostring(err))
  assert.is_string(err.errmsg)
  local text = tostring(err)
  assert.matches(tostring(code), text, 1, true)
  seen_errors[#seen_errors + 1] = text
end

-- Calls fn (which must not raise) and checks it returned nil + an error.
local function expect_code(code, fn, ...)
  local ok, value, err = pcall(fn, ...)
  assert.is_true(ok, "raised: " .. tostring(value))
  assert.is_nil(value)
  check_error(err, code)
  return err
end

describe("wecom.callback.new", function()
  local function new_error(opts)
    local ok, err = pcall(callback.new, opts)
    assert.is_false(ok)
    assert.is_string(err)
    return err
  end

  local good = { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
  local function with(changes)
    local opts = {}
    for k, v in pairs(good) do opts[k] = v end
    for k, v in pairs(changes) do
      if v == "nil" then opts[k] = nil else opts[k] = v end
    end
    return opts
  end

  it("accepts a string, a list or false as receive_id", function()
    assert.is_table(callback.new(good))
    assert.is_table(callback.new(with { receive_id = { UPSTREAM, "wwOTHER" } }))
    assert.is_table(callback.new(with { receive_id = false }))
    assert.is_table(callback.new(with { max_skew = 300 }))
  end)

  it("raises without an options table", function()
    assert.matches("options table", new_error(nil))
    assert.matches("options table", new_error("token"))
  end)

  it("raises naming token when it is missing, empty or not a string", function()
    assert.matches("token", new_error(with { token = "nil" }))
    assert.matches("token", new_error(with { token = "" }))
    assert.matches("token", new_error(with { token = 123456 }))
  end)

  it("raises naming aes_key when it is missing or not a string", function()
    assert.matches("aes_key", new_error(with { aes_key = "nil" }))
    assert.matches("aes_key", new_error(with { aes_key = 42 }))
  end)

  it("raises on an invalid EncodingAESKey without echoing it", function()
    local bad_keys = {
      AES_KEY:sub(1, 42),                 -- too short
      AES_KEY .. "A",                     -- too long
      AES_KEY:sub(1, 42) .. "+",          -- base64 but outside [A-Za-z0-9]
      AES_KEY:sub(1, 42) .. "=",
      AES_KEY:sub(1, 20) .. " " .. AES_KEY:sub(22),
    }
    for _, key in ipairs(bad_keys) do
      local err = new_error(with { aes_key = key })
      assert.matches("aes_key", err)
      assert.is_nil(err:find(key, 1, true), "key leaked: " .. err)
      assert.is_nil(err:find(TOKEN, 1, true))
    end
  end)

  it("raises naming receive_id when it is missing or of the wrong type", function()
    assert.matches("receive_id", new_error(with { receive_id = "nil" }))
    assert.matches("receive_id", new_error(with { receive_id = 1 }))
    assert.matches("receive_id", new_error(with { receive_id = true }))
    assert.matches("receive_id", new_error(with { receive_id = {} }))
    assert.matches("receive_id", new_error(with { receive_id = { UPSTREAM, 2 } }))
  end)

  it("raises naming max_skew when it is not a non-negative number", function()
    assert.matches("max_skew", new_error(with { max_skew = "300" }))
    assert.matches("max_skew", new_error(with { max_skew = -1 }))
    assert.matches("max_skew", new_error(with { max_skew = 0 / 0 }))
  end)

  it("keeps neither the token nor the key in the object or its tostring", function()
    local cb = callback.new(good)
    local text = tostring(cb)
    assert.is_nil(text:find(TOKEN, 1, true))
    assert.is_nil(text:find(AES_KEY, 1, true))
    for k, v in pairs(cb) do
      if type(v) == "string" then
        assert.is_nil(v:find(TOKEN, 1, true), k)
        assert.is_nil(v:find(AES_KEY, 1, true), k)
      end
      assert.is_nil(tostring(v):find(AES_KEY, 1, true), k)
    end
  end)
end)

describe("reference vectors", function()
  -- a callback object for the vector v
  local function vector_cb(v)
    return callback.new { token = v.token, aes_key = v.aes_key, receive_id = v.receive_id }
  end

  -- V1's URL check as a raw query string, with echostr as given
  local function v1_query(echostr)
    return "msg_signature=" .. V1.verify.msg_signature .. "&timestamp=" .. V1.verify.timestamp
      .. "&nonce=" .. V1.verify.nonce .. "&echostr=" .. echostr
  end

  describe("V1 (official sample)", function()
    local cb
    setup(function() cb = vector_cb(V1) end)

    it("verify_url decrypts echostr from a query table", function()
      assert.equal(V1.echo, cb:verify_url(V1.verify))
    end)

    it("verify_url accepts the raw, percent-encoded query string", function()
      local q = v1_query(V1.echostr_encoded)
      assert.equal(V1.echo, cb:verify_url(q))
      assert.equal(V1.echo, cb:verify_url("/wecom/callback?" .. q))
    end)

    it("verify_url keeps '+' as '+' in a raw query string (never a space)", function()
      local q = v1_query(V1.verify.echostr)
      assert.truthy(V1.verify.echostr:find("+", 1, true))
      assert.equal(V1.echo, cb:verify_url(q))
    end)

    it("decrypts the POST into an event", function()
      local event = assert(cb:decrypt(V1.post, envelope(V1.encrypt, "218")))
      assert.equal(V1.plaintext, event.xml)
      assert.equal("text", event.type)
      assert.equal("wx5823bf96d3bd56c7", event.corpid)
      assert.equal("mycreate", event.userid)
      assert.equal(218, event.agentid)
      assert.equal(1409659813, event.time)
      assert.equal("hello", event.Content)
      assert.equal("4561255354251345929", event.MsgId)
      assert.equal("218", event.AgentID)
    end)

    it("finds Encrypt whatever the element order of the envelope", function()
      local bodies = {
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><AgentID><![CDATA[218]]></AgentID>"
          .. "<Encrypt><![CDATA[" .. V1.encrypt .. "]]></Encrypt></xml>",
        "<xml><Encrypt><![CDATA[" .. V1.encrypt .. "]]></Encrypt>"
          .. "<ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><AgentID>218</AgentID></xml>",
        "\n  <xml>\n <Encrypt>" .. V1.encrypt .. "</Encrypt>\n</xml>\n",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><xml><Encrypt><![CDATA[" .. V1.encrypt
          .. "]]></Encrypt></xml>",
      }
      for _, body in ipairs(bodies) do
        local event, err = cb:decrypt(V1.post, body)
        assert.is_nil(err)
        assert.equal(V1.plaintext, event.xml)
      end
    end)
  end)

  describe("V3 (wechatpy)", function()
    local cb
    setup(function() cb = vector_cb(V3) end)

    it("verify_url decrypts echostr", function()
      assert.equal(V3.echo, cb:verify_url(V3.verify))
    end)

    it("verify_url rejects nonce 437374424 with -40001", function()
      local q = {}
      for k, v in pairs(V3.verify) do q[k] = v end
      q.nonce = "437374424"
      expect_code(-40001, cb.verify_url, cb, q)
    end)

    it("decrypts the POST (padding of 1 byte)", function()
      local event = assert(cb:decrypt(V3.post, envelope(V3.encrypt, "1")))
      assert.equal(V3.plaintext, event.xml)
      assert.equal("messense", event.userid)
      assert.equal(1, event.agentid)
      assert.equal("test", event.Content)
    end)

    it("reproduces the reply XML byte for byte", function()
      local reply = cb:reply(V3.reply.plaintext, {
        timestamp = 1411525903, nonce = "461056294", random16 = "1234567890123456",
      })
      assert.equal(V3.reply.xml, reply)
      reply = cb:reply(V3.reply.plaintext, {
        timestamp = "1411525903", nonce = 461056294, random16 = "1234567890123456",
      })
      assert.equal(V3.reply.xml, reply)
    end)
  end)
end)

describe("round trips", function()
  local cb

  setup(function()
    cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
  end)

  it("encrypt_event -> decrypt -> reply -> decrypt the reply", function()
    local body, query = cb:encrypt_event(EVENT, { agentid = 1000002 })
    assert.matches("^<xml><ToUserName><!%[CDATA%[wwUPSTREAMCORP%]%]></ToUserName>", body)
    assert.matches("<AgentID><!%[CDATA%[1000002%]%]></AgentID>", body)
    assert.matches("^%x+$", query.msg_signature)
    assert.equal(40, #query.msg_signature)
    local event = assert(cb:decrypt(query, body))
    assert.equal("share_chain_change", event.type)
    assert.equal("wwDOWNSTREAMCORP", event.corpid)
    assert.equal(EVENT, event.xml)

    local answer = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到 ]]]]><![CDATA[>]]></Content></xml>"
    local reply = assert(cb:reply(answer))
    local fields = assert(core.xml_decode(reply))
    local back = assert(cb:decrypt({
      msg_signature = fields.MsgSignature, timestamp = fields.TimeStamp, nonce = fields.Nonce,
    }, reply))
    assert.equal(answer, back.xml)
    assert.equal("收到 ]]>", back.Content)
  end)

  it("makes event.xml / event.json when first read, on every path, and keeps it then", function()
    local skewed = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM, max_skew = 2 ^ 40 }
    local json_event = '{"ToUserName":"wwDOWNSTREAMCORP","MsgType":"event","Event":"x","CreateTime":1}'
    local cases = {}
    for _, form in ipairs({ "xml", "json" }) do
      local body, query = cb:encrypt_event(EVENT, { format = form })
      cases[#cases + 1] = { "xml", EVENT, cb, query, body }
      cases[#cases + 1] = { "xml", EVENT, cb, callback.build_query(query), body }
      cases[#cases + 1] = { "xml", EVENT, skewed, query, body }
      body, query = cb:encrypt_event(json_event, { format = form })
      cases[#cases + 1] = { "json", json_event, cb, query, body }
      cases[#cases + 1] = { "json", json_event, skewed, callback.build_query(query), body }
    end
    for i, case in ipairs(cases) do
      local field, plaintext, obj, query, body = case[1], case[2], case[3], case[4], case[5]
      local event = assert(obj:decrypt(query, body))
      local listed = {}
      for k in pairs(event) do
        listed[k] = true
      end
      -- not made yet; every other field is there
      assert.is_nil(rawget(event, field), i)
      assert.is_nil(listed[field], i)
      assert.equal("wwDOWNSTREAMCORP", event.corpid)
      assert.is_nil(event.Missing)
      assert.is_nil(event[field == "xml" and "json" or "xml"], i)
      -- made on the first read, then a plain field
      assert.equal(plaintext, event[field], i)
      assert.equal(plaintext, rawget(event, field), i)
      assert.equal(plaintext, event[field], i)
      event[field] = nil
      assert.is_nil(event[field], i)
    end
  end)

  it("lets a handler set event.xml before it was read, and forgets the plaintext with the event", function()
    local body, query = cb:encrypt_event(EVENT)
    local event = assert(cb:decrypt(query, body))
    event.xml = "mine"
    assert.equal("mine", event.xml)
    -- events that were never read are collected with their plaintexts
    local weak = setmetatable({}, { __mode = "k" })
    for _ = 1, 20 do
      weak[assert(cb:decrypt(query, body))] = true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("reply follows the template of reference §7.6 with fresh nonce, timestamp and random", function()
    local before = os.time()
    local a = cb:reply("<xml><Content>a</Content></xml>")
    local b = cb:reply("<xml><Content>a</Content></xml>")
    local pattern = "^<xml>\n<Encrypt><!%[CDATA%[([%w+/=]+)%]%]></Encrypt>\n"
      .. "<MsgSignature><!%[CDATA%[(%x+)%]%]></MsgSignature>\n<TimeStamp>(%d+)</TimeStamp>\n"
      .. "<Nonce><!%[CDATA%[(%w+)%]%]></Nonce>\n</xml>$"
    local enc_a, sig_a, ts_a, nonce_a = a:match(pattern)
    local enc_b, _, _, nonce_b = b:match(pattern)
    assert.is_string(enc_a)
    assert.is_string(enc_b)
    assert.equal(40, #sig_a)
    assert.is_true(tonumber(ts_a) >= before and tonumber(ts_a) <= os.time())
    assert.are_not.equal(enc_a, enc_b)      -- fresh random16
    assert.are_not.equal(nonce_a, nonce_b)  -- fresh nonce
  end)

  it("encrypt_echostr -> verify_url, as a table and as a percent-encoded query string", function()
    local query, echo = cb:encrypt_echostr()
    assert.matches("^%w+$", echo)
    assert.equal(echo, cb:verify_url(query))
    assert.equal(echo, cb:verify_url(callback.build_query(query)))
    local q2, echo2 = cb:encrypt_echostr("8291751024", { timestamp = 1700000000, nonce = "42" })
    assert.equal("8291751024", echo2)
    assert.equal("1700000000", q2.timestamp)
    assert.equal("42", q2.nonce)
    assert.equal("8291751024", cb:verify_url(q2))
  end)

  it("JSON variant: JSON envelope, JSON plaintext, JSON reply", function()
    local msg = '{"tousername":"wwDOWNSTREAMCORP","msgtype":"event","event":"share_chain_change","agentid":7}'
    local body, query = cb:encrypt_event(msg, { format = "json", agentid = 7 })
    local envelope_fields = require("cjson").decode(body)
    assert.equal(UPSTREAM, envelope_fields.tousername)
    assert.equal("7", envelope_fields.agentid)
    local event = assert(cb:decrypt(query, body))
    assert.equal(msg, event.json)
    assert.equal("share_chain_change", event.type)
    assert.equal(7, event.agentid)

    local reply = assert(cb:reply_json('{"msgtype":"text"}', { timestamp = 1700000000, nonce = "n1" }))
    local r = require("cjson").decode(reply)
    assert.equal("1700000000", r.timestamp)
    assert.equal("n1", r.nonce)
    local back = assert(cb:decrypt({ msg_signature = r.msgsignature, timestamp = r.timestamp, nonce = r.nonce },
                                   reply))
    assert.equal('{"msgtype":"text"}', back.json)
    assert.equal("text", back.type)
  end)

  it("JSON envelope around an XML event", function()
    local body, query = cb:encrypt_event(EVENT, { format = "json" })
    local event = assert(cb:decrypt(query, body))
    assert.equal("share_chain_change", event.type)
    assert.equal(EVENT, event.xml)
  end)

  it("accepts any id of a receive_id list, and any id with receive_id = false", function()
    local listed = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = { "wwA", "wwB" } }
    local open = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = false }
    for _, id in ipairs { "wwA", "wwB" } do
      local body, query = cb:encrypt_event(EVENT, { receive_id = id })
      assert.is_table(listed:decrypt(query, body))
      assert.is_table(open:decrypt(query, body))
    end
    local body, query = cb:encrypt_event(EVENT, { receive_id = "" })
    assert.is_table(open:decrypt(query, body))
    expect_code(-40005, listed.decrypt, listed, query, body)
  end)

  it("asks a receive_id function about each decrypted receive id (POST and URL check)", function()
    local asked = {}
    local picky = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = function(id)
      asked[#asked + 1] = id
      return id == "wwA"
    end }
    local body, query = cb:encrypt_event(EVENT, { receive_id = "wwA" })
    assert.is_table(picky:decrypt(query, body))
    body, query = cb:encrypt_event(EVENT, { receive_id = "wwB" })
    local err = expect_code(-40005, picky.decrypt, picky, query, body)
    assert.matches('"wwB" is not accepted', err.errmsg)
    local q = cb:encrypt_echostr(nil, { receive_id = "wwB" })
    expect_code(-40005, picky.verify_url, picky, q)
    assert.same({ "wwA", "wwB", "wwB" }, asked)
  end)

  it("decrypts a large event (600 KB) below the 1 MiB limit", function()
    local big = "<xml><Event>big</Event><Data>" .. string.rep("0123456789", 60000) .. "</Data></xml>"
    local body, query = cb:encrypt_event(big)
    assert.is_true(#body < 1024 * 1024)
    local event = assert(cb:decrypt(query, body))
    assert.equal(600000, #event.Data)
  end)

  it("max_skew accepts a current timestamp", function()
    local strict = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM, max_skew = 300 }
    local body, query = strict:encrypt_event(EVENT)
    assert.is_table(strict:decrypt(query, body))
    local q, echo = strict:encrypt_echostr()
    assert.equal(echo, strict:verify_url(q))
  end)
end)

describe("programming mistakes raise", function()
  local cb
  setup(function()
    cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
  end)

  it("query of the wrong type, body of the wrong type", function()
    assert.has_error(function() cb:verify_url(nil) end)
    assert.has_error(function() cb:verify_url(42) end)
    assert.has_error(function() cb:decrypt(nil, "<xml/>") end)
    assert.has_error(function() cb:decrypt({}, 42) end)
    assert.has_error(function() cb:decrypt({}, {}) end)
  end)

  it("reply with a non-string message or bad options", function()
    assert.has_error(function() cb:reply(nil) end)
    assert.has_error(function() cb:reply({}) end)
    assert.has_error(function() cb:reply("<xml/>", "opts") end)
    assert.has_error(function() cb:reply("<xml/>", { timestamp = "yesterday" }) end)
    assert.has_error(function() cb:reply("<xml/>", { timestamp = 1.5 }) end)
    assert.has_error(function() cb:reply("<xml/>", { nonce = "" }) end)
    assert.has_error(function() cb:reply("<xml/>", { nonce = 'a"b' }) end)
    assert.has_error(function() cb:reply("<xml/>", { random16 = "short" }) end)
    assert.has_error(function() cb:encrypt_event("<xml/>", { format = "yaml" }) end)
    assert.has_error(function() cb:encrypt_event("<xml/>", { agentid = {} }) end)
  end)
end)

describe("bad input returns nil and a callback error", function()
  local cb, crypter

  setup(function()
    cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
    -- a second crypter with the same settings signs hand-made ciphertexts
    crypter = assert(core.crypter(TOKEN, AES_KEY))
  end)

  -- A correctly signed POST of an arbitrary Encrypt value.
  local function signed(encrypt)
    local query = { timestamp = "1700000000", nonce = "1234567" }
    query.msg_signature = crypter:signature(query.timestamp, query.nonce, encrypt)
    return query, envelope(encrypt)
  end

  local function raw(encrypt)
    return assert(core.base64_decode(encrypt))
  end

  describe("-40001 ValidateSignature", function()
    it("wrong signature", function()
      local body, query = cb:encrypt_event(EVENT)
      query.msg_signature = string.rep("0", 40)
      expect_code(-40001, cb.decrypt, cb, query, body)
      local q = cb:encrypt_echostr()
      q.msg_signature = q.msg_signature:upper()
      expect_code(-40001, cb.verify_url, cb, q)
    end)

    it("a signature from another token", function()
      local other = callback.new { token = "AnotherToken", aes_key = AES_KEY, receive_id = UPSTREAM }
      local body, query = other:encrypt_event(EVENT)
      expect_code(-40001, cb.decrypt, cb, query, body)
    end)

    it("tampered ciphertext under the original signature", function()
      local body, query = cb:encrypt_event(EVENT)
      local tampered = body:gsub("<Encrypt><!%[CDATA%[(.)", function(c)
        return "<Encrypt><![CDATA[" .. (c == "A" and "B" or "A")
      end)
      assert.are_not.equal(body, tampered)
      expect_code(-40001, cb.decrypt, cb, query, tampered)
    end)

    it("a timestamp or nonce changed after signing", function()
      local body, query = cb:encrypt_event(EVENT)
      query.timestamp = tostring(tonumber(query.timestamp) + 1)
      expect_code(-40001, cb.decrypt, cb, query, body)
    end)

    it("missing or repeated query parameters", function()
      local body, query = cb:encrypt_event(EVENT)
      for _, name in ipairs { "msg_signature", "timestamp", "nonce" } do
        local q = {}
        for k, v in pairs(query) do q[k] = v end
        q[name] = nil
        local err = expect_code(-40001, cb.decrypt, cb, q, body)
        assert.matches(name, err.errmsg, 1, true)
        q[name] = { query[name], query[name] }    -- ngx.req.get_uri_args for a repeated key
        expect_code(-40001, cb.decrypt, cb, q, body)
      end
      local q = cb:encrypt_echostr()
      q.echostr = nil
      expect_code(-40001, cb.verify_url, cb, q)
      expect_code(-40001, cb.verify_url, cb, {})
      expect_code(-40001, cb.verify_url, cb, "")
      expect_code(-40001, cb.decrypt, cb, "msg_signature=abc&msg_signature=abc", body)
    end)

    it("a timestamp outside max_skew, or not a number, when max_skew is set", function()
      local strict = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM, max_skew = 300 }
      local body, query = strict:encrypt_event(EVENT, { timestamp = os.time() - 3600 })
      local err = expect_code(-40001, strict.decrypt, strict, query, body)
      assert.equal("timestamp outside max_skew", err.errmsg)
      body, query = strict:encrypt_event(EVENT, { timestamp = os.time() + 3600 })
      expect_code(-40001, strict.decrypt, strict, query, body)
      local q = strict:encrypt_echostr(nil, { timestamp = 1409659589 })
      expect_code(-40001, strict.verify_url, strict, q)
      q.timestamp = "soon"
      expect_code(-40001, strict.verify_url, strict, q)
      -- without max_skew the same old request is fine
      assert.is_string(cb:verify_url(cb:encrypt_echostr(nil, { timestamp = 1409659589 })))
    end)

    it("with max_skew, only decimal digits count as a timestamp (correctly signed or not)", function()
      local strict = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM, max_skew = 300 }
      local now = os.time()
      -- forms Lua's tonumber would read as the current time
      for _, ts in ipairs { string.format("0x%x", now), " " .. now, now .. ".0", now .. "e0", "+" .. now } do
        local q = strict:encrypt_echostr(nil, { timestamp = now })
        q.timestamp = ts
        q.msg_signature = crypter:signature(ts, q.nonce, q.echostr)
        local err = expect_code(-40001, strict.verify_url, strict, q)
        assert.equal("timestamp is not a number", err.errmsg, ts)
        -- the signature itself is fine: without max_skew it verifies
        assert.is_string(cb:verify_url(q))
      end
    end)
  end)

  describe("-40002 ParseXml / ParseJson", function()
    local query
    setup(function()
      local _
      _, query = cb:encrypt_event(EVENT)
    end)

    it("empty, missing or blank bodies", function()
      expect_code(-40002, cb.decrypt, cb, query, nil)
      expect_code(-40002, cb.decrypt, cb, query, "")
      expect_code(-40002, cb.decrypt, cb, query, " \r\n\t")
    end)

    it("bodies over 1 MiB", function()
      local huge = "<xml><Encrypt>" .. string.rep("A", 1024 * 1024) .. "</Encrypt></xml>"
      local err = expect_code(-40002, cb.decrypt, cb, query, huge)
      assert.matches("1 MiB", err.errmsg)
    end)

    it("HTML error pages and plain text", function()
      expect_code(-40002, cb.decrypt, cb, query,
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>")
      expect_code(-40002, cb.decrypt, cb, query,
        "<html><body><h1>404 Not Found</h1><hr><center>nginx</center></body></html>")
      expect_code(-40002, cb.decrypt, cb, query, "success")
      expect_code(-40002, cb.decrypt, cb, query, "\0\1\2binary")
    end)

    it("malformed XML and envelopes without Encrypt", function()
      local body = cb:encrypt_event(EVENT)
      expect_code(-40002, cb.decrypt, cb, query, body:sub(1, #body - 10))   -- truncated
      expect_code(-40002, cb.decrypt, cb, query, "<xml><Encrypt>abc</Encrpt></xml>")
      expect_code(-40002, cb.decrypt, cb, query, "<xml><ToUserName>ww</ToUserName></xml>")
      expect_code(-40002, cb.decrypt, cb, query, "<xml><Encrypt></Encrypt></xml>")
      expect_code(-40002, cb.decrypt, cb, query, "<xml><Encrypt><a>b</a></Encrypt></xml>")
      expect_code(-40002, cb.decrypt, cb, query, "<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>")
    end)

    it("DTDs, entities and deep nesting in the envelope", function()
      local encrypt = assert(cb:encrypt_event(EVENT)):match("<!%[CDATA%[([%w+/=]+)%]%]></Encrypt>")
      assert.is_string(encrypt)
      expect_code(-40002, cb.decrypt, cb, query,
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "' .. encrypt .. '">]><xml><Encrypt>&e;</Encrypt></xml>')
      expect_code(-40002, cb.decrypt, cb, query,
        '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>' .. encrypt .. '</Encrypt></xml>')
      expect_code(-40002, cb.decrypt, cb, query, "<xml><Encrypt>&undefined;</Encrypt></xml>")
      expect_code(-40002, cb.decrypt, cb, query,
        "<xml>" .. string.rep("<a>", 200) .. string.rep("</a>", 200) .. "<Encrypt>" .. encrypt .. "</Encrypt></xml>")
    end)

    it("truncated or wrong JSON envelopes", function()
      local body = cb:encrypt_event(EVENT, { format = "json" })
      expect_code(-40002, cb.decrypt, cb, query, body:sub(1, #body - 5))
      expect_code(-40002, cb.decrypt, cb, query, '{"tousername":"ww"}')
      expect_code(-40002, cb.decrypt, cb, query, '{"encrypt":42}')
      expect_code(-40002, cb.decrypt, cb, query, '{"encrypt":""}')
      expect_code(-40002, cb.decrypt, cb, query, "{")
    end)

    it("DTDs, entities, deep nesting or garbage in the (signed) plaintext", function()
      local plaintexts = {
        '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Event>&b;</Event></xml>',
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1/evil.dtd"><xml><Event>subscribe</Event></xml>',
        "<xml><Event>&lol;</Event></xml>",
        "<xml>" .. string.rep("<a>", 100) .. string.rep("</a>", 100) .. "</xml>",
        "<xml><Event>subscribe</Event>",
        "<xml><Event>subscribe</Event></xml><xml/>",
        "hello, not xml",
        "",
      }
      for _, plaintext in ipairs(plaintexts) do
        local body, q = cb:encrypt_event(plaintext)
        expect_code(-40002, cb.decrypt, cb, q, body)
      end
      local body, q = cb:encrypt_event("{not json", { format = "json" })
      expect_code(-40002, cb.decrypt, cb, q, body)
    end)
  end)

  describe("-40005 ValidateCorpid", function()
    it("a receive id other than the configured one", function()
      local other = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = "wwSOMEONEELSE" }
      local body, query = other:encrypt_event(EVENT)
      local err = expect_code(-40005, cb.decrypt, cb, query, body)
      assert.matches("wwSOMEONEELSE", err.errmsg, 1, true)
      local q = other:encrypt_echostr()
      expect_code(-40005, cb.verify_url, cb, q)
    end)

    it("a receive id that only shares a prefix", function()
      local body, query = cb:encrypt_event(EVENT, { receive_id = UPSTREAM .. "X" })
      expect_code(-40005, cb.decrypt, cb, query, body)
      body, query = cb:encrypt_event(EVENT, { receive_id = UPSTREAM:sub(1, -2) })
      expect_code(-40005, cb.decrypt, cb, query, body)
    end)
  end)

  describe("-40006 EncryptAES", function()
    it("a reply over 1 MiB", function()
      local huge = string.rep("x", 1024 * 1024 + 1)
      expect_code(-40006, cb.reply, cb, huge)
      expect_code(-40006, cb.reply_json, cb, huge)
      expect_code(-40006, cb.encrypt_event, cb, huge)
    end)
  end)

  describe("-40007 DecryptAES", function()
    it("a ciphertext whose length is not a multiple of 16", function()
      local body = cb:encrypt_event(EVENT)
      local bytes = raw(body:match("<!%[CDATA%[([%w+/=]+)%]%]></Encrypt>"))
      for _, cut in ipairs { 1, 15, 17 } do
        local query, env = signed(core.base64_encode(bytes:sub(1, #bytes - cut)))
        expect_code(-40007, cb.decrypt, cb, query, env)
      end
    end)
  end)

  describe("-40008 IllegalBuffer", function()
    -- 20-byte header + 44 bytes of message and id = 64: the padding is a whole
    -- 32-byte block, and dropping it leaves the id's last byte as "padding".
    local function unpadded(receive_id)
      local msg = string.rep("m", 44 - #receive_id)
      local bytes = raw(crypter:encrypt(msg, receive_id, "0123456789abcdef"))
      assert.equal(96, #bytes)
      return core.base64_encode(bytes:sub(1, 64))
    end

    it("padding byte 0", function()
      local query, body = signed(unpadded("wwX\0"))
      local err = expect_code(-40008, cb.decrypt, cb, query, body)
      assert.matches("padding", err.errmsg)
    end)

    it("padding byte over 32", function()
      local query, body = signed(unpadded("wwX!"))   -- '!' = 33
      expect_code(-40008, cb.decrypt, cb, query, body)
      query, body = signed(unpadded("ww\255"))
      expect_code(-40008, cb.decrypt, cb, query, body)
    end)

    it("a length field past the end of the buffer", function()
      -- byte 64 of the plaintext (message byte 44) is 1: cut there, it reads
      -- as 1 byte of padding and the declared 200-byte message is missing
      local msg = string.rep("m", 43) .. "\1" .. string.rep("m", 156)
      local bytes = raw(crypter:encrypt(msg, UPSTREAM, "0123456789abcdef"))
      local query, body = signed(core.base64_encode(bytes:sub(1, 64)))
      local err = expect_code(-40008, cb.decrypt, cb, query, body)
      assert.matches("length", err.errmsg)
    end)

    it("a tampered length field under a valid signature", function()
      local bytes = raw(crypter:encrypt(EVENT, UPSTREAM))
      -- flipping ciphertext byte 1 flips plaintext byte 17: the length's top byte
      local first = bytes:byte(1)
      local flipped = string.char(first >= 128 and first - 128 or first + 128) .. bytes:sub(2)
      local query, body = signed(core.base64_encode(flipped))
      expect_code(-40008, cb.decrypt, cb, query, body)
    end)

    it("a plaintext shorter than its 20-byte header", function()
      local bytes = raw(crypter:encrypt("", "", "0123456789abcde\1"))
      local query, body = signed(core.base64_encode(bytes:sub(1, 16)))
      expect_code(-40008, cb.decrypt, cb, query, body)
    end)
  end)

  describe("-40010 DecodeBase64", function()
    it("an Encrypt value that is not base64", function()
      for _, bad in ipairs { "!!!!", "QUJD*EVG", "QUJDREVG\n", "QUJ", "====" } do
        local query, body = signed(bad)
        expect_code(-40010, cb.decrypt, cb, query, body)
      end
      local q = cb:encrypt_echostr()
      q.echostr = "not base64 at all"
      q.msg_signature = crypter:signature(q.timestamp, q.nonce, q.echostr)
      expect_code(-40010, cb.verify_url, cb, q)
    end)
  end)

  it("no error text contains the token or the aes_key", function()
    assert.is_true(#seen_errors > 40)
    for _, text in ipairs(seen_errors) do
      assert.is_nil(text:find(TOKEN, 1, true), text)
      assert.is_nil(text:find(AES_KEY, 1, true), text)
      assert.is_nil(text:find(AES_KEY:sub(1, 16), 1, true), text)
    end
  end)
end)
