-- Callback benchmark, Lua side (bench/callback.sh drives it).
--
--   callback_bench.lua gen FILE N   write N signed, encrypted callback messages
--   callback_bench.lua run FILE [ROUNDS]
--                                   verify + decrypt + xml_decode each one;
--                                   prints "<messages per second> <checksum>"
--
-- FILE: line 1 is "token aes_key receive_id", then one message per line:
-- "msg_signature timestamp nonce encrypt".  The same file feeds the C loop
-- (bench/callback_loop.c) and node (bench/node_crypto_bench.js).
local core = require "wecom.core"

local char, concat, floor, format = string.char, table.concat, math.floor, string.format
local clock = core.monotonic or os.clock

local TOKEN = "benchToken42"
local AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
local RECEIVE_ID = "wwUPSTREAMCORP0001"

-- Park-Miller: exact in doubles too, so lua5.4 and luajit generate alike.
local seed = 20240601
local function rand(n)
  seed = seed * 16807 % 2147483647
  return seed % n
end

local function rand_string(n, alphabet)
  local out = {}
  for i = 1, n do
    local k = rand(#alphabet) + 1
    out[i] = alphabet:sub(k, k)
  end
  return concat(out)
end

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local WORDS = { "上下游", "企业互联", "hello", "订单", "审批", "meeting", "客户", "report", "共享应用", "ok" }

local function downstream_corp()
  return "ww" .. rand_string(16, "0123456789abcdef")
end

local function chain_userid()   -- 上下游 users arrive as long encrypted ids
  return "wo" .. rand_string(30, ALNUM)
end

local function text_of(bytes)
  local out, n = {}, 0
  while n < bytes do
    local w = WORDS[rand(#WORDS) + 1]
    out[#out + 1] = w
    n = n + #w + 1
  end
  return concat(out, " ")
end

local function head(to, from, time, msgtype)
  return "<xml><ToUserName><![CDATA[" .. to .. "]]></ToUserName>\n<FromUserName><![CDATA[" .. from
    .. "]]></FromUserName>\n<CreateTime>" .. time .. "</CreateTime>\n<MsgType><![CDATA[" .. msgtype
    .. "]]></MsgType>\n"
end

-- Realistic plaintexts (reference §7.7, §9), about 300-600 bytes.
local templates = {
  function(time)
    return head(downstream_corp(), chain_userid(), time, "text")
      .. "<Content><![CDATA[" .. text_of(120 + rand(300)) .. "]]></Content>\n<MsgId>4"
      .. format("%09d%09d", rand(999999999), rand(999999999)) .. "</MsgId>\n<AgentID>1000002</AgentID>\n</xml>"
  end,
  function(time)
    return head(downstream_corp(), chain_userid(), time, "event")
      .. "<Event><![CDATA[" .. (rand(2) == 0 and "subscribe" or "unsubscribe")
      .. "]]></Event>\n<EventKey><![CDATA[]]></EventKey>\n<AgentID>1000002</AgentID>\n</xml>"
  end,
  function(time)
    return head(RECEIVE_ID, "sys", time, "event")
      .. "<Event><![CDATA[share_chain_change]]></Event>\n<AgentID>1000002</AgentID>\n</xml>"
  end,
  function(time)
    return head(RECEIVE_ID, "sys", time, "event")
      .. "<Event><![CDATA[change_chain]]></Event>\n<ChangeType><![CDATA[create_chain]]></ChangeType>\n"
      .. "<ChainId><![CDATA[Chain" .. rand_string(24, ALNUM) .. "]]></ChainId>\n</xml>"
  end,
  function(time)
    return head(RECEIVE_ID, "sys", time, "event")
      .. "<Event><![CDATA[batch_job_result]]></Event>\n<BatchJob><JobId><![CDATA[jobid_"
      .. rand_string(40, ALNUM) .. "]]></JobId><JobType><![CDATA[import_chain_contact]]></JobType>"
      .. "<ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob>\n</xml>"
  end,
  function(time)
    return head(downstream_corp(), chain_userid(), time, "event")
      .. "<Event><![CDATA[click]]></Event>\n<EventKey><![CDATA[menu_" .. rand_string(12, ALNUM)
      .. "]]></EventKey>\n<AgentID>1000002</AgentID>\n</xml>"
  end,
}

local function gen(path, n)
  local c = assert(core.crypter(TOKEN, AES_KEY))
  local f = assert(io.open(path, "wb"))
  f:write(TOKEN, " ", AES_KEY, " ", RECEIVE_ID, "\n")
  for i = 1, n do
    local time = tostring(1700000000 + i)
    local plain = templates[rand(#templates) + 1](time)
    local random16 = {}
    for k = 1, 16 do
      random16[k] = char(rand(256))
    end
    local encrypt = assert(c:encrypt(plain, RECEIVE_ID, concat(random16)))
    local nonce = tostring(100000000 + rand(899999999))
    f:write(c:signature(time, nonce, encrypt), " ", time, " ", nonce, " ", encrypt, "\n")
  end
  f:close()
  c:close()
end

local function load_messages(path)
  local f = assert(io.open(path, "rb"))
  local token, aes_key, receive_id = f:read("*l"):match("^(%S+) (%S+) (%S+)$")
  local lines = {}
  for line in f:lines() do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  f:close()
  return token, aes_key, receive_id, lines
end

-- Messages are split into argument strings CHUNK at a time, outside the
-- timed region: a server holds its in-flight requests, not 20,000 parsed
-- queries, and 60,000 resident short strings would make every new string
-- a cache miss in Lua's string table (see notes/readme-core-crypto.md).
local CHUNK = tonumber(os.getenv("CHUNK") or "") or 1000

local function run(path, rounds)
  local token, aes_key, receive_id, lines = load_messages(path)
  local c = assert(core.crypter(token, aes_key))
  local xml_decode = core.xml_decode
  local n = #lines
  local best, checksum = math.huge, 0

  for round = 0, rounds do            -- round 0 warms up (and the JIT)
    local sum, elapsed = 0, 0
    for first = 1, n, CHUNK do
      local last = math.min(n, first + CHUNK - 1)
      local sig, ts, nonce, enc = {}, {}, {}, {}
      for i = first, last do
        sig[i - first + 1], ts[i - first + 1], nonce[i - first + 1], enc[i - first + 1] =
          lines[i]:match("^(%S+) (%S+) (%S+) (%S+)$")
      end
      local t0 = clock()
      for i = 1, last - first + 1 do
        local msg, rid = c:open(sig[i], ts[i], nonce[i], enc[i])
        if not msg or rid ~= receive_id then
          error(format("message %d: %s", first + i - 1, tostring(rid)))
        end
        local event = xml_decode(msg)
        if not event then
          error(format("message %d: xml", first + i - 1))
        end
        sum = sum + #event.MsgType
      end
      elapsed = elapsed + (clock() - t0)
    end
    if round > 0 and elapsed < best then
      best = elapsed
    end
    checksum = sum
  end
  c:close()
  print(format("%d %d", floor(n / best + 0.5), checksum))
end

local mode, path, arg3 = ...
if mode == "gen" and path then
  gen(path, tonumber(arg3) or 20000)
elseif mode == "run" and path then
  run(path, tonumber(arg3) or 5)
else
  io.stderr:write("usage: callback_bench.lua gen FILE N | run FILE [ROUNDS]\n")
  os.exit(2)
end
