-- Interop with Tencent's own @wecom/crypto (npm, installed by `make
-- node-deps`): node encrypts -> we verify and decrypt; we encrypt -> node
-- decrypts and checks our signature.  Random keys, tokens, ids and messages;
-- each direction is one node process for the whole batch.

local callback = require "wecom.callback"
local core = require "wecom.core"
local cjson = require "cjson"

local CASES = 40
local HELPER = "spec/helpers/node_crypto.js"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs the node helper on a batch; returns the decoded result list.
local function node(mode, cases)
  local input = os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(cjson.encode(cases))
  f:close()
  local pipe = assert(io.popen("node " .. shell_quote(HELPER) .. " " .. mode .. " " .. shell_quote(input)
                               .. " 2>&1"))
  local out = pipe:read("*a")
  pipe:close()
  os.remove(input)
  local ok, results = pcall(cjson.decode, out)
  assert(ok and type(results) == "table", "node helper failed: " .. out:sub(1, 300))
  assert.equal(#cases, #results)
  return results
end

local CJK = { "上下游", "企业互联", "共享应用", "你好", "€", "🙂" }

-- A random UTF-8 text of about n bytes without "]]>", so it fits in CDATA.
local function random_text(n)
  local parts, len = {}, 0
  while len < n do
    local piece
    if math.random(4) == 1 then
      piece = CJK[math.random(#CJK)]
    else
      piece = core.nonce(math.random(1, 12))
    end
    parts[#parts + 1] = piece
    len = len + #piece
  end
  return table.concat(parts)
end

-- Message lengths that walk the 32-byte padding through all its values,
-- plus a few larger ones.
local function random_case(i)
  local key = core.nonce(43)          -- [A-Za-z0-9], like a real EncodingAESKey
  local token = core.nonce(math.random(3, 32))
  local receive_id = "ww" .. core.nonce(16)
  local body = random_text(i * 3 + (i % 5 == 0 and 4000 or 0))
  local msg = "<xml><ToUserName><![CDATA[" .. receive_id .. "]]></ToUserName>"
    .. "<CreateTime>" .. (1700000000 + i) .. "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[share_chain_change]]></Event><Content><![CDATA[" .. body .. "]]></Content></xml>"
  return {
    aes_key = key, token = token, receive_id = receive_id, message = msg, body = body,
    timestamp = tostring(1700000000 + math.random(0, 100000000)),
    nonce = tostring(math.random(1, 2147483647)),
  }
end

describe("interop with @wecom/crypto", function()
  local seed = os.time()

  setup(function()
    math.randomseed(seed)
  end)

  it("node encrypts and signs -> verify_url and decrypt recover the message", function()
    local cases, batch = {}, {}
    for i = 1, CASES do
      local c = random_case(i)
      c.echo = core.nonce(math.random(1, 40))
      cases[i] = c
      -- each case sent twice: as an event and as a URL-check echostr
      batch[#batch + 1] = { aes_key = c.aes_key, token = c.token, id_hex = hex(c.receive_id),
                            message_hex = hex(c.message), timestamp = c.timestamp, nonce = c.nonce }
      batch[#batch + 1] = { aes_key = c.aes_key, token = c.token, id_hex = hex(c.receive_id),
                            message_hex = hex(c.echo), timestamp = c.timestamp, nonce = c.nonce }
    end
    local results = node("encrypt", batch)
    for i, c in ipairs(cases) do
      local cb = callback.new { token = c.token, aes_key = c.aes_key, receive_id = c.receive_id }
      local sealed, echo = results[2 * i - 1], results[2 * i]
      local body = "<xml><ToUserName><![CDATA[" .. c.receive_id .. "]]></ToUserName><Encrypt><![CDATA["
        .. sealed.encrypt .. "]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
      local event, err = cb:decrypt({ msg_signature = sealed.signature, timestamp = c.timestamp,
                                      nonce = c.nonce }, body)
      assert.is_nil(err, "seed " .. seed .. " case " .. i)
      assert.equal(c.message, event.xml)
      assert.equal(c.body, event.Content)
      assert.equal("share_chain_change", event.type)

      local query = { msg_signature = echo.signature, timestamp = c.timestamp, nonce = c.nonce,
                      echostr = echo.encrypt }
      assert.equal(c.echo, cb:verify_url(query))
      assert.equal(c.echo, cb:verify_url(callback.build_query(query)))
    end
  end)

  it("reply and encrypt_event -> node decrypts and accepts our signature", function()
    local cases, batch = {}, {}
    for i = 1, CASES do
      local c = random_case(i)
      local cb = callback.new { token = c.token, aes_key = c.aes_key, receive_id = c.receive_id }
      local reply = assert(cb:reply(c.message))
      local enc, sig, ts, nonce = reply:match("<Encrypt><!%[CDATA%[(.-)%]%]></Encrypt>\n"
        .. "<MsgSignature><!%[CDATA%[(%x+)%]%]></MsgSignature>\n<TimeStamp>(%d+)</TimeStamp>\n"
        .. "<Nonce><!%[CDATA%[(.-)%]%]></Nonce>")
      assert.is_string(enc)
      local body, query = cb:encrypt_event(c.message, { timestamp = c.timestamp, nonce = c.nonce })
      local enc2 = body:match("<Encrypt><!%[CDATA%[(.-)%]%]></Encrypt>")
      cases[i] = c
      batch[#batch + 1] = { aes_key = c.aes_key, token = c.token, encrypt = enc, timestamp = ts,
                            nonce = nonce, signature = sig }
      batch[#batch + 1] = { aes_key = c.aes_key, token = c.token, encrypt = enc2,
                            timestamp = query.timestamp, nonce = query.nonce, signature = query.msg_signature }
    end
    local results = node("decrypt", batch)
    for i, c in ipairs(cases) do
      for j = 2 * i - 1, 2 * i do
        local r = results[j]
        assert.is_true(r.signature_ok, "seed " .. seed .. " case " .. i)
        assert.equal(c.message, unhex(r.message_hex))
        assert.equal(c.receive_id, unhex(r.id_hex))
      end
    end
  end)

  it("node's signature over a tampered message is rejected", function()
    local c = random_case(3)
    local r = node("encrypt", { { aes_key = c.aes_key, token = c.token, id_hex = hex(c.receive_id),
                                  message_hex = hex(c.message), timestamp = c.timestamp, nonce = c.nonce } })[1]
    local cb = callback.new { token = c.token, aes_key = c.aes_key, receive_id = c.receive_id }
    local body = "<xml><Encrypt><![CDATA[" .. r.encrypt .. "]]></Encrypt></xml>"
    local event, err = cb:decrypt({ msg_signature = r.signature, timestamp = c.timestamp,
                                    nonce = c.nonce .. "1" }, body)
    assert.is_nil(event)
    assert.equal(-40001, err.code)
  end)
end)
