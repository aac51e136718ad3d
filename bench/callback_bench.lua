-- Callback benchmark, Lua side (bench/callback.sh drives it).
--
--   callback_bench.lua gen FILE N   write N signed, encrypted callback messages
--   callback_bench.lua run FILE [ROUNDS]
--                                   prints "<public> <core> <checksum>": messages
--                                   per second of cb:decrypt(query, body) (the
--                                   envelope, verify, decrypt, parse, event) and
--                                   of c:open + xml_decode on the four strings
--
-- FILE: line 1 is "token aes_key receive_id", then one message per line:
-- "msg_signature timestamp nonce encrypt".  The same file feeds the C loop
-- (bench/callback_loop.c) and node (bench/node_crypto_bench.js).
local core = require "wecom.core"
local callback = require "wecom.callback"

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

-- Inputs are prepared CHUNK messages at a time, outside the timed region:
-- a server holds its in-flight requests, not 20,000 parsed queries, and
-- 60,000 resident short strings would make every new string a cache miss
-- in Lua's string table (docs/performance.md, "The callback path").
local CHUNK = tonumber(os.getenv("CHUNK") or "") or 1000

-- The body WeCom POSTs: the envelope of reference §7 around Encrypt.
local function envelope(receive_id, encrypt)
  return "<xml><ToUserName><![CDATA[" .. receive_id .. "]]></ToUserName><AgentID><![CDATA[1000002]]>"
    .. "</AgentID><Encrypt><![CDATA[" .. encrypt .. "]]></Encrypt></xml>"
end

-- Runs ROUNDS timed rounds (after one warm-up round) of `work` over every
-- message; prepare(line, i) builds one message's inputs into `slot`.
-- Returns the best round's messages per second and the checksum.
local function measure(lines, rounds, prepare, work)
  local n = #lines
  local best, checksum = math.huge, 0
  for round = 0, rounds do
    local sum, elapsed = 0, 0
    for first = 1, n, CHUNK do
      local last = math.min(n, first + CHUNK - 1)
      local inputs = {}
      for i = first, last do
        inputs[i - first + 1] = prepare(lines[i])
      end
      local t0 = clock()
      sum = sum + work(inputs, last - first + 1, first)
      elapsed = elapsed + (clock() - t0)
    end
    if round > 0 and elapsed < best then
      best = elapsed
    end
    checksum = sum
  end
  return floor(n / best + 0.5), checksum
end

local function split(line)
  return line:match("^(%S+) (%S+) (%S+) (%S+)$")
end

-- The public path: cb:decrypt(query, body), as a server gets them.
local function public_path(lines, rounds, token, aes_key, receive_id)
  local cb = callback.new { token = token, aes_key = aes_key, receive_id = receive_id }
  local rate, checksum = measure(lines, rounds, function(line)
    local sig, ts, nonce, enc = split(line)
    return { { msg_signature = sig, timestamp = ts, nonce = nonce }, envelope(receive_id, enc) }
  end, function(inputs, count, first)
    local sum = 0
    for i = 1, count do
      local input = inputs[i]
      local event, err = cb:decrypt(input[1], input[2])
      if not event then
        error(format("message %d: %s", first + i - 1, tostring(err)))
      end
      sum = sum + #event.MsgType
    end
    return sum
  end)
  cb:close()
  return rate, checksum
end

-- The core path: c:open + xml_decode on the four strings.
local function core_path(lines, rounds, token, aes_key, receive_id)
  local c = assert(core.crypter(token, aes_key))
  local xml_decode = core.xml_decode
  local rate, checksum = measure(lines, rounds, function(line)
    return { split(line) }
  end, function(inputs, count, first)
    local sum = 0
    for i = 1, count do
      local input = inputs[i]
      local msg, rid = c:open(input[1], input[2], input[3], input[4])
      if not msg or rid ~= receive_id then
        error(format("message %d: %s", first + i - 1, tostring(rid)))
      end
      local event = xml_decode(msg)
      if not event then
        error(format("message %d: xml", first + i - 1))
      end
      sum = sum + #event.MsgType
    end
    return sum
  end)
  c:close()
  return rate, checksum
end

-- Prints "<public msg/s> <core msg/s> <checksum>"; both paths must agree.
local function run(path, rounds)
  local token, aes_key, receive_id, lines = load_messages(path)
  local public_rate, public_sum = public_path(lines, rounds, token, aes_key, receive_id)
  local core_rate, core_sum = core_path(lines, rounds, token, aes_key, receive_id)
  if public_sum ~= core_sum then
    error("public and core paths disagree on the parsed messages")
  end
  print(format("%d %d %d", public_rate, core_rate, public_sum))
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
