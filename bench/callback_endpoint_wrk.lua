-- wrk script of bench/callback_endpoint.lua: POSTs the messages that
-- `callback_bench.lua gen` wrote, in turn, each as WeCom sends it (the
-- signed query, the XML envelope), and prints one machine-readable line.
--
--   wrk -s bench/callback_endpoint_wrk.lua URL -- MESSAGES_FILE
--
-- Every reply must be a 200: any other status is counted and reported.
-- luacheck: globals wrk init request response done

local requests, n, next_index = {}, 0, 0
local bad = 0

local function envelope(receive_id, encrypt)
  return "<xml><ToUserName><![CDATA[" .. receive_id .. "]]></ToUserName><AgentID><![CDATA[1000002]]>"
    .. "</AgentID><Encrypt><![CDATA[" .. encrypt .. "]]></Encrypt></xml>"
end

local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local receive_id = f:read("*l"):match("^%S+ %S+ (%S+)$")
  local headers = { ["Content-Type"] = "text/xml" }
  for line in f:lines() do
    local sig, ts, nonce, encrypt = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    if sig then
      local path = wrk.path .. "?msg_signature=" .. sig .. "&timestamp=" .. ts .. "&nonce=" .. escape(nonce)
      n = n + 1
      requests[n] = wrk.format("POST", path, headers, envelope(receive_id, encrypt))
    end
  end
  f:close()
end

function request()
  next_index = next_index % n + 1
  return requests[next_index]
end

function response(status)
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d\n", summary.requests / (summary.duration / 1e6),
    e.status, e.connect + e.read + e.write + e.timeout, summary.requests))
end
