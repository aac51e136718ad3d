-- wecom.core crypto: WXBizMsgCrypt crypter, base64, SHA-1, JSAPI signature,
-- CSPRNG and constant-time compare (reference §6, §7).
local core = require "wecom.core"

local byte, char, rep, sub = string.byte, string.char, string.rep, string.sub

-- Reference §7.7 V1 (Tencent's sample) and V3 (wechatpy, deterministic),
-- from spec/helpers/vectors.lua, as this file reads them: url (the GET
-- check), post and reply, each with its signature, payload and plaintext.
local vectors = require "helpers.vectors"

local function records(v)
  local r = v.reply
  return {
    token = v.token, aes_key = v.aes_key, receive_id = v.receive_id,
    url = { signature = v.verify.msg_signature, timestamp = v.verify.timestamp, nonce = v.verify.nonce,
            echostr = v.verify.echostr, plain = v.echo },
    post = { signature = v.post.msg_signature, timestamp = v.post.timestamp, nonce = v.post.nonce,
             encrypt = v.encrypt, plain = v.plaintext },
    reply = r and { random16 = r.random16, timestamp = r.timestamp, nonce = r.nonce, plain = r.plaintext,
                    encrypt = r.encrypt, signature = r.msg_signature },
  }
end

local V1, V3 = records(vectors.V1), records(vectors.V3)

local function crypter_for(v)
  return assert(core.crypter(v.token, v.aes_key))
end

-- Random bytes from a seeded generator, so a failure can be replayed.
local function pseudo_bytes(n, seed)
  local state = seed
  local out = {}
  for i = 1, n do
    state = (state * 1103515245 + 12345) % 2147483648
    out[i] = char(state % 256)
  end
  return table.concat(out)
end

local function random_key()
  return core.nonce(43)
end

-- The first `blocks` AES blocks of a ciphertext, re-encoded.  CBC decrypts
-- a prefix of the blocks to the same prefix of the plaintext, so this is how
-- the specs get a plaintext whose last byte (the padding) they choose.
local function first_blocks(b64, blocks)
  local raw = assert(core.base64_decode(b64))
  return core.base64_encode(sub(raw, 1, 16 * blocks))
end


describe("wecom.core crypto", function()

  describe("crypter()", function()
    it("accepts a 43-character EncodingAESKey", function()
      local c = core.crypter("token", V1.aes_key)
      assert.equal("userdata", type(c))
      c:close()
    end)

    -- a key that is no EncodingAESKey is a configuration bug: it raises,
    -- naming the call and the argument, never showing the key
    it("raises for a key of the wrong length", function()
      for _, key in ipairs({ "", sub(V1.aes_key, 1, 42), V1.aes_key .. "A", V1.aes_key .. "=" }) do
        assert.has_error(function() core.crypter("token", key) end,
                         "wecom.core.crypter: aes_key must be 43 characters of base64 (got " .. #key .. " bytes)")
      end
    end)

    it("raises for a key that is not base64", function()
      local bad = { sub(V1.aes_key, 1, 42) .. "!", "=" .. sub(V1.aes_key, 2),
                    sub(V1.aes_key, 1, 20) .. " " .. sub(V1.aes_key, 22) }
      for _, key in ipairs(bad) do
        assert.has_error(function() core.crypter("token", key) end,
                         "wecom.core.crypter: aes_key must be 43 characters of base64 "
                         .. "(got a character outside the base64 alphabet)")
      end
    end)

    it("never puts the key into its error message", function()
      local key = sub(V1.aes_key, 1, 42) .. "!"
      local _, message = pcall(core.crypter, "token", key)
      assert.is_nil(message:find(key, 1, true))
      assert.is_nil(message:find(sub(key, 1, 10), 1, true))
    end)

    it("raises when an argument is not a string", function()
      assert.has_error(function() core.crypter(nil, V1.aes_key) end,
                       "wecom.core.crypter: token must be a string (got nil)")
      assert.has_error(function() core.crypter("token", nil) end)
      assert.has_error(function() core.crypter({}, V1.aes_key) end)
      assert.has_error(function() core.crypter("token", true) end)
    end)
  end)


  describe("signature and verify", function()
    it("computes the V1 and V3 signatures", function()
      for _, v in ipairs({ V1, V3 }) do
        local c = crypter_for(v)
        assert.equal(v.url.signature, c:signature(v.url.timestamp, v.url.nonce, v.url.echostr))
        assert.equal(v.post.signature, c:signature(v.post.timestamp, v.post.nonce, v.post.encrypt))
        c:close()
      end
    end)

    it("equals sha1 over the four strings sorted bytewise", function()
      local c = assert(core.crypter("b", V1.aes_key))
      -- "a" < "ab" < "b" < "ba": a shorter prefix sorts first
      assert.equal(core.sha1_hex("aabbba"), c:signature("ba", "ab", "a"))
      c:close()
    end)

    it("verifies a correct signature", function()
      local c = crypter_for(V1)
      local u = V1.url
      assert.is_true(c:verify(u.signature, u.timestamp, u.nonce, u.echostr))
      c:close()
    end)

    it("rejects a wrong nonce, timestamp, payload or signature", function()
      local c = crypter_for(V3)
      local u = V3.url
      assert.is_false(c:verify(u.signature, u.timestamp, "437374424", u.echostr))
      assert.is_false(c:verify(u.signature, "1411443781", u.nonce, u.echostr))
      assert.is_false(c:verify(u.signature, u.timestamp, u.nonce, "A" .. sub(u.echostr, 2)))
      assert.is_false(c:verify(sub(u.signature, 1, 39) .. "0", u.timestamp, u.nonce, u.echostr))
      assert.is_false(c:verify(sub(u.signature, 1, 39), u.timestamp, u.nonce, u.echostr))
      assert.is_false(c:verify(u.signature .. "0", u.timestamp, u.nonce, u.echostr))
      assert.is_false(c:verify("", u.timestamp, u.nonce, u.echostr))
      assert.is_false(c:verify(u.signature:upper(), u.timestamp, u.nonce, u.echostr))
      c:close()
    end)

    it("depends on the token", function()
      local c = assert(core.crypter("other", V3.aes_key))
      local u = V3.url
      assert.is_false(c:verify(u.signature, u.timestamp, u.nonce, u.echostr))
      c:close()
    end)

    it("raises on non-string arguments", function()
      local c = crypter_for(V1)
      assert.has_error(function() c:signature(nil, "n", "e") end)
      assert.has_error(function() c:verify("s", "t", {}, "e") end)
      assert.has_error(function() c:verify("s", "t", "n") end)
      c:close()
    end)
  end)


  describe("decrypt", function()
    it("decrypts the V1 and V3 vectors to msg and receive_id", function()
      for _, v in ipairs({ V1, V3 }) do
        local c = crypter_for(v)
        local msg, rid = c:decrypt(v.url.echostr)
        assert.equal(v.url.plain, msg)
        assert.equal(v.receive_id, rid)
        msg, rid = c:decrypt(v.post.encrypt)
        assert.equal(v.post.plain, msg)
        assert.equal(v.receive_id, rid)
        c:close()
      end
    end)

    it("returns the trailing receive_id as found, without checking it", function()
      local c = crypter_for(V1)
      local enc = assert(c:encrypt("hello", "wwSOMEONEELSE"))
      local msg, rid = c:decrypt(enc)
      assert.equal("hello", msg)
      assert.equal("wwSOMEONEELSE", rid)
      c:close()
    end)

    it("returns -40010 for bad base64", function()
      local c = crypter_for(V1)
      for _, b64 in ipairs({ "abc", "ab!d", "====", "A===", "AB=C", sub(V1.post.encrypt, 2),
                             V1.post.encrypt .. "\n", " " .. sub(V1.post.encrypt, 2) }) do
        local msg, message, code = c:decrypt(b64)
        assert.is_nil(msg)
        assert.equal(-40010, code)
        assert.equal("string", type(message))
      end
      c:close()
    end)

    it("returns -40007 for an empty ciphertext or one that is not whole AES blocks", function()
      local c = crypter_for(V1)
      local raw = assert(core.base64_decode(V1.post.encrypt))
      for _, b64 in ipairs({ "", core.base64_encode(sub(raw, 1, #raw - 3)), core.base64_encode(sub(raw, 1, 15)),
                             core.base64_encode(raw .. "x") }) do
        local msg, _, code = c:decrypt(b64)
        assert.is_nil(msg)
        assert.equal(-40007, code)
      end
      c:close()
    end)

    it("returns -40008 for padding 0", function()
      local c = crypter_for(V1)
      -- plaintext byte 31 (the last of block 2) is msg byte 12
      local enc = assert(c:encrypt(rep("a", 11) .. "\0" .. rep("b", 40), "wx"))
      local msg, message, code = c:decrypt(first_blocks(enc, 2))
      assert.is_nil(msg)
      assert.equal(-40008, code)
      assert.matches("padding", message)
      c:close()
    end)

    it("returns -40008 for padding over 32", function()
      local c = crypter_for(V1)
      for _, pad in ipairs({ 33, 64, 255 }) do
        local enc = assert(c:encrypt(rep("a", 11) .. char(pad) .. rep("b", 40), "wx"))
        local msg, _, code = c:decrypt(first_blocks(enc, 2))
        assert.is_nil(msg)
        assert.equal(-40008, code)
      end
      c:close()
    end)

    it("returns -40008 for padding longer than the plaintext", function()
      local c = crypter_for(V1)
      -- one block: its last byte is random16's last byte
      local enc = assert(c:encrypt("x", "wx", rep("r", 15) .. char(20)))
      local msg, _, code = c:decrypt(first_blocks(enc, 1))
      assert.is_nil(msg)
      assert.equal(-40008, code)
      c:close()
    end)

    it("returns -40008 for a plaintext shorter than its 20-byte header", function()
      local c = crypter_for(V1)
      local enc = assert(c:encrypt("x", "wx", rep("r", 15) .. char(1)))
      local msg, _, code = c:decrypt(first_blocks(enc, 1))
      assert.is_nil(msg)
      assert.equal(-40008, code)
      c:close()
    end)

    it("returns -40008 for a length field past the buffer", function()
      local c = crypter_for(V1)
      -- 100-byte msg; keep 4 blocks whose last byte (msg byte 44) says pad 1
      local enc = assert(c:encrypt(rep("m", 43) .. char(1) .. rep("m", 56), "wx"))
      local msg, message, code = c:decrypt(first_blocks(enc, 4))
      assert.is_nil(msg)
      assert.equal(-40008, code)
      assert.matches("length", message)
      c:close()
    end)

    it("refuses a ciphertext over 1 MiB before decoding it", function()
      local c = crypter_for(V1)
      local msg, message, code = c:decrypt(rep("A", 1024 * 1024 + 4))
      assert.is_nil(msg)
      assert.equal(-40008, code)
      assert.matches("1 MiB", message)
      c:close()
    end)

    it("never returns the original for a tampered ciphertext, and never raises", function()
      local c = crypter_for(V1)
      local raw = assert(core.base64_decode(V1.post.encrypt))
      for i = 1, #raw, 3 do
        local tampered = sub(raw, 1, i - 1) .. char((byte(raw, i) + 1) % 256) .. sub(raw, i + 1)
        local ok, msg, rid = pcall(c.decrypt, c, core.base64_encode(tampered))
        assert.is_true(ok)
        -- CBC garbles the changed block: the damage lands in msg or receive_id
        assert.is_false(msg == V1.post.plain and rid == V1.receive_id, "byte " .. i)
      end
      c:close()
    end)

    it("decrypts with the key only: another key gets garbage or an error", function()
      local c = assert(core.crypter(V1.token, V3.aes_key))
      local msg = c:decrypt(V1.post.encrypt)
      assert.are_not.equal(V1.post.plain, msg)
      c:close()
    end)

    it("raises when the ciphertext is not a string", function()
      local c = crypter_for(V1)
      assert.has_error(function() c:decrypt(nil) end,
                       "wecom.core.crypter:decrypt: encrypt must be a string (got nil)")
      assert.has_error(function() c:decrypt({}) end)
      c:close()
    end)
  end)


  describe("open", function()
    it("verifies and decrypts the V1 and V3 POST vectors", function()
      for _, v in ipairs({ V1, V3 }) do
        local c = crypter_for(v)
        local p = v.post
        local msg, rid = c:open(p.signature, p.timestamp, p.nonce, p.encrypt)
        assert.equal(p.plain, msg)
        assert.equal(v.receive_id, rid)
        c:close()
      end
    end)

    it("returns -40001 on a signature mismatch without decrypting", function()
      local c = crypter_for(V3)
      local u = V3.url
      local msg, message, code = c:open(u.signature, u.timestamp, "437374424", u.echostr)
      assert.is_nil(msg)
      assert.equal(-40001, code)
      assert.matches("signature", message)
      -- a signed but undecodable payload passes the check and fails in decrypt
      local sig = c:signature("1", "2", "abc")
      msg, message, code = c:open(sig, "1", "2", "abc")
      assert.is_nil(msg)
      assert.equal(-40010, code)
      assert.equal("ciphertext is not valid base64", message)
      c:close()
    end)

    it("returns -40001 for a tampered ciphertext", function()
      local c = crypter_for(V1)
      local p = V1.post
      local tampered = sub(p.encrypt, 1, 10) .. (sub(p.encrypt, 11, 11) == "A" and "B" or "A") .. sub(p.encrypt, 12)
      local msg, _, code = c:open(p.signature, p.timestamp, p.nonce, tampered)
      assert.is_nil(msg)
      assert.equal(-40001, code)
      c:close()
    end)

    it("raises when an argument is missing", function()
      local c = crypter_for(V1)
      assert.has_error(function() c:open(V1.post.signature, V1.post.timestamp, V1.post.nonce) end)
      c:close()
    end)
  end)


  describe("encrypt", function()
    it("reproduces the V3 reply byte for byte with random16 fixed", function()
      local c = crypter_for(V3)
      local r = V3.reply
      local enc = c:encrypt(r.plain, V3.receive_id, r.random16)
      assert.equal(r.encrypt, enc)
      assert.equal(r.signature, c:signature(r.timestamp, r.nonce, enc))
      c:close()
    end)

    it("draws a fresh random16 when none is given", function()
      local c = crypter_for(V3)
      local a = c:encrypt("same", "id")
      local b = c:encrypt("same", "id")
      assert.are_not.equal(a, b)
      assert.equal("same", (c:decrypt(a)))
      assert.equal("same", (c:decrypt(b)))
      c:close()
    end)

    it("pads to a multiple of 32 bytes with 1..32 bytes of padding", function()
      local c = crypter_for(V1)
      for len = 0, 70 do
        local msg = rep("z", len)
        local raw = assert(core.base64_decode(c:encrypt(msg, "rid")))
        local body = 20 + len + 3
        local pad = #raw - body
        assert.equal(0, #raw % 32)
        assert.is_true(pad >= 1 and pad <= 32, "pad " .. pad .. " for length " .. len)
        assert.equal(msg, (c:decrypt(core.base64_encode(raw))))
      end
      c:close()
    end)

    it("round-trips many kinds of message on random keys", function()
      local messages = {
        "", "x", "企业微信 上下游 ✓", "\0\1\2\255\254", pseudo_bytes(5000, 7), pseudo_bytes(20000, 11),
        rep("<xml><Content><![CDATA[hello]]></Content></xml>", 100),
      }
      for round = 1, 4 do
        local token = core.nonce(8)
        local c = assert(core.crypter(token, random_key()))
        for i, msg in ipairs(messages) do
          local rid = i % 2 == 0 and "" or ("ww" .. core.nonce(16))
          local enc = assert(c:encrypt(msg, rid))
          local sig = c:signature("1700000000", tostring(round), enc)
          local got, got_rid = c:open(sig, "1700000000", tostring(round), enc)
          assert.equal(msg, got)
          assert.equal(rid, got_rid)
        end
        c:close()
      end
    end)

    it("decrypts nothing encrypted under another key", function()
      local a = assert(core.crypter("t", random_key()))
      local b = assert(core.crypter("t", random_key()))
      local enc = assert(a:encrypt(rep("q", 200), "wx"))
      assert.are_not.equal(rep("q", 200), (b:decrypt(enc)))
      a:close()
      b:close()
    end)

    it("raises on a random16 that is not 16 bytes and on non-string arguments", function()
      local c = crypter_for(V1)
      assert.has_error(function() c:encrypt("m", "id", "short") end,
                       "wecom.core.crypter:encrypt: random16 must be a string of 16 bytes (got string)")
      assert.has_error(function() c:encrypt("m", "id", rep("x", 17)) end)
      assert.has_error(function() c:encrypt(nil, "id") end)
      assert.has_error(function() c:encrypt("m", {}) end)
      c:close()
    end)

    it("refuses a message over 1 MiB", function()
      local c = crypter_for(V1)
      local enc, _, code = c:encrypt(rep("x", 1024 * 1024 + 1), "id")
      assert.is_nil(enc)
      assert.equal(-40006, code)
      c:close()
    end)
  end)


  describe("lifetime", function()
    it("close() is idempotent and later use raises", function()
      local c = crypter_for(V1)
      c:close()
      c:close()
      assert.has_error(function() c:decrypt(V1.post.encrypt) end,
                       "wecom.core.crypter:decrypt: attempt to use a closed crypter")
      assert.has_error(function() c:signature("a", "b", "c") end)
      assert.has_error(function() c:encrypt("a", "b") end)
    end)

    it("tostring shows neither token nor key", function()
      local c = crypter_for(V1)
      local s = tostring(c)
      assert.matches("^wecom%.core%.crypter", s)
      assert.is_nil(s:find(V1.token, 1, true))
      assert.is_nil(s:find(V1.aes_key, 1, true))
      c:close()
      assert.equal("wecom.core.crypter (closed)", tostring(c))
    end)

    it("methods raise when called on something else", function()
      local c = crypter_for(V1)
      assert.has_error(function() c.decrypt({}, V1.post.encrypt) end,
                       "wecom.core.crypter:decrypt: expected a wecom.core.crypter (got table)")
      assert.has_error(function() c.close("x") end,
                       "wecom.core.crypter:close: expected a wecom.core.crypter (got string)")
      c:close()
    end)

    it("is released by the garbage collector", function()
      for _ = 1, 200 do
        core.crypter("t", V1.aes_key)
      end
      collectgarbage()
      collectgarbage()
      local c = crypter_for(V1)
      assert.equal(V1.url.plain, (c:decrypt(V1.url.echostr)))
      c:close()
    end)

    if _VERSION == "Lua 5.4" then
      it("is closed by a to-be-closed variable", function()
        local chunk = assert(load([[
          local core, key = ...
          local kept
          do
            local c <close> = assert(core.crypter("t", key))
            kept = c
          end
          return kept
        ]]))
        local c = chunk(core, V1.aes_key)
        assert.equal("wecom.core.crypter (closed)", tostring(c))
      end)
    end
  end)


  describe("base64", function()
    local rfc4648 = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                      { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } }

    it("encodes and decodes the RFC 4648 vectors", function()
      for _, v in ipairs(rfc4648) do
        assert.equal(v[2], core.base64_encode(v[1]))
        assert.equal(v[1], core.base64_decode(v[2]))
      end
    end)

    it("uses the standard alphabet", function()
      assert.equal("+/8=", core.base64_encode("\251\255"))
      assert.equal("\251\255", core.base64_decode("+/8="))
    end)

    it("round-trips binary strings of every small length and a large one", function()
      for n = 0, 40 do
        local s = pseudo_bytes(n, n + 1)
        assert.equal(s, core.base64_decode(core.base64_encode(s)))
      end
      local big = pseudo_bytes(100000, 3)
      assert.equal(big, core.base64_decode(core.base64_encode(big)))
    end)

    it("returns nil, err for invalid input", function()
      for _, s in ipairs({ "Z", "Zg=", "Zg==Zg==", "Z===", "Zg=a", "Zm9v\n", "Zm 9", "Zm9-", "Zm9_", "=Zm9" }) do
        local r, err = core.base64_decode(s)
        assert.is_nil(r, s)
        assert.equal("invalid base64", err)
      end
    end)

    it("raises on non-string arguments", function()
      assert.has_error(function() core.base64_encode(nil) end)
      assert.has_error(function() core.base64_decode({}) end)
    end)

    -- A plain reference decoder for the check below.
    local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    local function reference_decode(s)
      local out = {}
      for q = 1, #s, 4 do
        local v = 0
        for k = q, q + 3 do
          v = v * 64 + (ALPHABET:find(s:sub(k, k), 1, true) - 1)
        end
        out[#out + 1] = char(math.floor(v / 65536) % 256, math.floor(v / 256) % 256, v % 256)
      end
      return table.concat(out)
    end

    it("takes exactly the alphabet at every position (and '=' only as padding)", function()
      local base = "QUJDREVGR0hJSktM"    -- "ABCDEFGHIJKL"
      for pos = 1, #base do
        for b = 0, 255 do
          local s = sub(base, 1, pos - 1) .. char(b) .. sub(base, pos + 1)
          local r = core.base64_decode(s)
          if b == 61 and pos == #base then   -- "=": padding (more in the cases above)
            assert.is_string(r, s)
          elseif ALPHABET:find(char(b), 1, true) then
            assert.equal(reference_decode(s), r, s)
          else
            assert.is_nil(r, s)
          end
        end
      end
    end)
  end)


  describe("sha1_hex", function()
    it("matches the FIPS 180 vectors", function()
      assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", core.sha1_hex(""))
      assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", core.sha1_hex("abc"))
      assert.equal("84983e441c3bd26ebaae4aa1f95129e5e54670f1",
                   core.sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    end)

    it("raises on a non-string", function()
      assert.has_error(function() core.sha1_hex(nil) end)
    end)
  end)


  describe("jsapi_signature", function()
    local J = vectors.JSAPI
    local ticket = J.ticket
    local timestamp = tostring(J.timestamp)

    it("matches both reference §6 vectors", function()
      assert.equal(J.signature, core.jsapi_signature(ticket, J.noncestr, timestamp, J.url))
      assert.equal(J.bare_signature, core.jsapi_signature(ticket, J.noncestr, timestamp, J.bare_url))
    end)

    it("cuts the url at '#'", function()
      assert.equal(J.signature, core.jsapi_signature(ticket, J.noncestr, timestamp, J.url .. "#/route?x=1"))
    end)

    it("accepts an integer timestamp", function()
      assert.equal(J.bare_signature, core.jsapi_signature(ticket, J.noncestr, J.timestamp, J.bare_url))
    end)

    it("raises on bad arguments", function()
      assert.has_error(function() core.jsapi_signature(nil, "n", "1", "u") end)
      assert.has_error(function() core.jsapi_signature(ticket, "n", 1.5, "u") end)
      assert.has_error(function() core.jsapi_signature(ticket, "n", -1, "u") end)
      assert.has_error(function() core.jsapi_signature(ticket, "n", "1") end)
    end)

    -- fuzzing (clang UBSan): these were converted to long long before the
    -- range check, which is undefined behaviour
    it("raises for numeric timestamps out of range or not a number", function()
      for _, ts in ipairs { 1e300, -1e300, math.huge, -math.huge, 0 / 0, 2 ^ 63 } do
        local ok, err = pcall(core.jsapi_signature, ticket, "n", ts, "u")
        assert.is_false(ok)
        assert.matches("wecom.core.jsapi_signature: timestamp must be an integer in [0, 9007199254740992]",
                       err, 1, true)
      end
      assert.equal(40, #core.jsapi_signature(ticket, "n", 2 ^ 53, "u"))
    end)
  end)


  describe("random_bytes and nonce", function()
    it("random_bytes returns n bytes that differ between calls", function()
      assert.equal("", core.random_bytes(0))
      assert.equal(32, #core.random_bytes(32))
      assert.equal(10000, #core.random_bytes(10000))
      assert.are_not.equal(core.random_bytes(32), core.random_bytes(32))
    end)

    it("random_bytes covers the whole byte range", function()
      local seen, distinct = {}, 0
      for c in core.random_bytes(8192):gmatch(".") do
        if not seen[c] then
          seen[c] = true
          distinct = distinct + 1
        end
      end
      assert.equal(256, distinct)
    end)

    it("nonce defaults to 16 alphanumerics and takes a length", function()
      local n = core.nonce()
      assert.equal(16, #n)
      assert.matches("^%w+$", n)
      assert.equal(1, #core.nonce(1))
      local long = core.nonce(1024)
      assert.equal(1024, #long)
      assert.matches("^[A-Za-z0-9]+$", long)
      assert.are_not.equal(core.nonce(), core.nonce())
    end)

    it("raise on out-of-range or non-number lengths", function()
      assert.has_error(function() core.random_bytes(-1) end)
      assert.has_error(function() core.random_bytes(1024 * 1024 + 1) end)
      assert.has_error(function() core.random_bytes("x") end,
                       "wecom.core.random_bytes: n must be an integer in [0, 1048576] (got string)")
      assert.has_error(function() core.nonce(0) end,
                       "wecom.core.nonce: n must be an integer in [1, 1024] (got number 0)")
      assert.has_error(function() core.nonce(1025) end)
      assert.has_error(function() core.nonce({}) end)
    end)
  end)


  describe("const_eq", function()
    it("compares strings", function()
      assert.is_true(core.const_eq("", ""))
      assert.is_true(core.const_eq("abc", "abc"))
      assert.is_false(core.const_eq("abc", "abd"))
      assert.is_false(core.const_eq("abc", "ab"))
      assert.is_false(core.const_eq("", "a"))
      assert.is_true(core.const_eq("a\0b", "a\0b"))
      assert.is_false(core.const_eq("a\0b", "a\0c"))
    end)

    it("raises on non-strings", function()
      assert.has_error(function() core.const_eq(nil, "a") end)
      assert.has_error(function() core.const_eq("a", {}) end)
    end)
  end)
end)
