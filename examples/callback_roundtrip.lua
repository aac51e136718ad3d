-- Callback round trip, without a network: this script plays WeCom (it
-- encrypts events the way WeCom pushes them to an upstream app's callback
-- URL) and plays your server (URL check, decrypt, route, encrypted reply).
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
--     lua5.4 examples/callback_roundtrip.lua

-- --help before anything is loaded: it works without the module paths set
if arg and (arg[1] == "-h" or arg[1] == "--help") then
    io.write([=[
callback_roundtrip: encrypt an event as WeCom does, then verify, decrypt, route and reply to it (no network)

from a checkout (after make build):
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
    lua5.4 examples/callback_roundtrip.lua
with the rock installed (luarocks make): lua5.4 examples/callback_roundtrip.lua   (or luajit)
]=])
    os.exit(0)
end

local callback = require "wecom.callback"
local core = require "wecom.core"

-- Settings of the upstream app's 接收消息 page.  Real values come from the
-- admin console; a fresh Token and EncodingAESKey are made up for this run.
local UPSTREAM_CORPID = "wwUPSTREAMCORP"
local AGENTID = 1000002
local settings = {
  token = core.nonce(16),
  aes_key = core.nonce(43),
  receive_id = UPSTREAM_CORPID,
  max_skew = 300,
}

local cb = callback.new(settings)

local function say(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
end

local function excerpt(s, n)
  n = n or 72
  s = s:gsub("\n", "\\n")
  if #s > n then
    return s:sub(1, n) .. "... (" .. #s .. " bytes)"
  end
  return s
end

---------------------------------------------------------------------------
-- 1. URL check (GET), as WeCom sends it when the admin saves the URL
---------------------------------------------------------------------------
say("== URL verification")
local query, echo = cb:encrypt_echostr()
local url = "/wecom/callback?" .. callback.build_query(query)
say("GET %s", excerpt(url, 96))
local answer, err = cb:verify_url(url)      -- a raw query string works as well as a table
if not answer then
  error(tostring(err))
end
say("-> 200, body %q (WeCom expects %q)", answer, echo)

---------------------------------------------------------------------------
-- 2. The handlers of your app
---------------------------------------------------------------------------
local router = callback.router()

router:on("share_chain_change", function(event)
  -- no list of corps in the event: re-pull the share list (business_type 1)
  return string.format("app %d shared or unshared in 上下游: re-pull list_app_share_info{ business_type = 1 }",
                       event.agentid)
end)

router:on("change_chain.add_corp", function(event)
  return string.format("corp %s joined chain %s", event.CorpId, event.ChainId)
end)

router:on("change_chain", function(event)
  return string.format("chain %s changed (%s)", event.ChainId, event.ChangeType)
end)

router:on("batch_job_result", function(event)
  local job = event.BatchJob
  return string.format("job %s (%s) finished: errcode %s %s", job.JobId, job.JobType, job.ErrCode, job.ErrMsg)
end)

router:default(function(event)
  return "ignored event of type " .. tostring(event.type)
end)

---------------------------------------------------------------------------
-- 3. Events (POST), encrypted as WeCom would push them
---------------------------------------------------------------------------
local now = os.time()
local events = {
  string.format("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    .. "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[share_chain_change]]></Event><AgentID>%d</AgentID></xml>",
    UPSTREAM_CORPID, now, AGENTID),
  string.format("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    .. "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[change_chain]]></Event><ChangeType><![CDATA[add_corp]]></ChangeType>"
    .. "<ChainId><![CDATA[Chain_Suppliers]]></ChainId><CorpId><![CDATA[wwDOWNSTREAM01]]></CorpId></xml>",
    UPSTREAM_CORPID, now),
  string.format("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    .. "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[change_chain]]></Event><ChangeType><![CDATA[update_group]]></ChangeType>"
    .. "<ChainId><![CDATA[Chain_Suppliers]]></ChainId><GroupId>3</GroupId></xml>",
    UPSTREAM_CORPID, now),
  string.format("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    .. "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[batch_job_result]]></Event><BatchJob><JobId><![CDATA[jobid_demo42]]></JobId>"
    .. "<JobType><![CDATA[import_chain_contact]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg>"
    .. "</BatchJob></xml>",
    UPSTREAM_CORPID, now),
  -- a downstream member entering the shared app: ToUserName is the downstream corp
  string.format("<xml><ToUserName><![CDATA[wwDOWNSTREAM01]]></ToUserName>"
    .. "<FromUserName><![CDATA[woAJ2GCAAAd1asdkEncrypted]]></FromUserName><CreateTime>%d</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[enter_agent]]></Event>"
    .. "<EventKey><![CDATA[]]></EventKey><AgentID>%d</AgentID></xml>", now, AGENTID),
}

for _, xml in ipairs(events) do
  local body, q = cb:encrypt_event(xml, { agentid = AGENTID })
  say("\n== POST /wecom/callback?%s", excerpt(callback.build_query(q), 80))
  say("   body %s", excerpt(body))

  local event, decrypt_err = cb:decrypt(q, body)
  if not event then
    error(tostring(decrypt_err))
  end
  say("   event type=%s corpid=%s userid=%s agentid=%s time=%s",
      event.type, event.corpid, tostring(event.userid), tostring(event.agentid), tostring(event.time))

  local result = router:dispatch(event)
  say("   handler: %s", result)

  -- an encrypted passive reply; WeCom decrypts it like any other message
  local reply = assert(cb:reply("<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA["
                                .. result .. "]]></Content></xml>"))
  say("   reply %s", excerpt(reply))
  local fields = assert(core.xml_decode(reply))
  local echoed = assert(cb:decrypt({ msg_signature = fields.MsgSignature, timestamp = fields.TimeStamp,
                                     nonce = fields.Nonce }, reply))
  say("   reply decrypts to Content %q", echoed.Content)
end

---------------------------------------------------------------------------
-- 4. What an attacker gets
---------------------------------------------------------------------------
say("\n== Forged and malformed requests")
local body, q = cb:encrypt_event(events[1])
q.msg_signature = string.rep("0", 40)
local _, forged = cb:decrypt(q, body)
say("forged signature   -> 403, %s", tostring(forged))

local _, html = cb:decrypt(q, "<html><body>502 Bad Gateway</body></html>")
say("HTML page          -> 400, %s", tostring(html))

local replayed_body, replayed_q = cb:encrypt_event(events[1], { timestamp = now - 3600 })
local _, replayed = cb:decrypt(replayed_q, replayed_body)
say("replayed (1 h old) -> 403, %s", tostring(replayed))

-- encrypted for another corp: the signature holds (same Token), the receive id does not
local foreign_body, foreign_q = cb:encrypt_event(events[1], { receive_id = "wwSOMEONEELSE" })
local _, foreign = cb:decrypt(foreign_q, foreign_body)
say("other receive id   -> 403, %s", tostring(foreign))

---------------------------------------------------------------------------
-- 5. Resends: WeCom pushes an event again when it saw no 200 within 5 s
---------------------------------------------------------------------------
say("\n== Resends, with dedupe = a store (memory here; shdict or redis across workers and hosts)")
local deduping = callback.new {
  token = settings.token, aes_key = settings.aes_key, receive_id = settings.receive_id,
  dedupe = require("wecom.store.memory").new(),     -- dedupe_ttl = 300 s by default
}
for attempt = 1, 3 do
  -- each resend is encrypted and signed anew; the message inside is the same
  local resend_body, resend_q = deduping:encrypt_event(events[1], { agentid = AGENTID })
  local event = assert(deduping:decrypt(resend_q, resend_body))
  local first, _, pending = deduping:claim(event)
  if first then
    say("delivery %d         -> handled: %s", attempt, router:dispatch(event))
    deduping:settle(event)      -- handled (no passive reply): a resend gets the same answer
  elseif pending then
    say("delivery %d         -> the first delivery still runs: 503, WeCom sends it again", attempt)
  else
    say("delivery %d         -> a resend: 200 again, the router does not run", attempt)
  end
end
