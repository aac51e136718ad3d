-- Memory benchmark: RSS growth over many cb:decrypt calls (DESIGN.md: < 2 MB
-- over 1,000,000).  bench/callback.sh runs it on lua5.4 and luajit.
--
--   memory.lua [CALLS]   (default 1000000; env MEMORY_CALLS also sets it)
--
-- 1,000 distinct signed, encrypted events are decrypted round-robin.  RSS is
-- read from /proc/self/statm after a warm-up of 10,000 calls and a full
-- collection, and again after CALLS more calls and a full collection.
-- Prints "<growth in KiB> <calls> <resident KiB before>".
local callback = require "wecom.callback"

local format = string.format

local TOKEN = "benchToken42"
local AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
local RECEIVE_ID = "wwUPSTREAMCORP0001"
local DISTINCT = 1000
local WARMUP = 10000

local function page_size()
  local p = io.popen("getconf PAGESIZE 2>/dev/null")
  local size = p and tonumber(p:read("*l") or "")
  if p then
    p:close()
  end
  return size or 4096
end

local PAGE = page_size()

local function resident_bytes()
  local f = assert(io.open("/proc/self/statm", "r"))
  local line = f:read("*l")
  f:close()
  local resident = line:match("^%d+ (%d+)")
  return tonumber(resident) * PAGE
end

local function full_collect()
  collectgarbage("collect")
  collectgarbage("collect")
end

local function events(cb)
  local out = {}
  for i = 1, DISTINCT do
    local time = 1700000000 + i
    local xml = "<xml><ToUserName><![CDATA[" .. RECEIVE_ID .. "]]></ToUserName>\n"
      .. "<FromUserName><![CDATA[wo" .. format("%030d", i) .. "]]></FromUserName>\n"
      .. "<CreateTime>" .. time .. "</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n"
      .. "<Event><![CDATA[change_chain]]></Event>\n<ChangeType><![CDATA[create_chain]]></ChangeType>\n"
      .. "<ChainId><![CDATA[Chain" .. format("%024d", i) .. "]]></ChainId>\n"
      .. "<AgentID>1000002</AgentID>\n</xml>"
    local body, query = assert(cb:encrypt_event(xml, { timestamp = time, nonce = tostring(100000 + i) }))
    out[i] = { query, body }
  end
  return out
end

local function run(cb, inputs, calls)
  local n = #inputs
  for i = 1, calls do
    local input = inputs[(i - 1) % n + 1]
    local event, err = cb:decrypt(input[1], input[2])
    if not event then
      error(format("call %d: %s", i, tostring(err)))
    end
  end
end

local calls = tonumber(arg and arg[1] or "") or tonumber(os.getenv("MEMORY_CALLS") or "") or 1000000
local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = RECEIVE_ID }
local inputs = events(cb)

run(cb, inputs, WARMUP)
full_collect()
local before = resident_bytes()
run(cb, inputs, calls)
full_collect()
local after = resident_bytes()
cb:close()

print(format("%d %d %d", math.floor((after - before) / 1024), calls, math.floor(before / 1024)))
