-- wecom.callback: the JSON variant (reference 8) gives the same event as the
-- XML form of the same message, down to the Lua number subtype: an id that
-- is an integer in one form is an integer in the other (lua5.4 would print a
-- float id as "1000002.0").

local callback = require "wecom.callback"

local TOKEN = "JsonVariantToken77"
local AES_KEY = "SlNPTnZhcmlhbnRLZXlGb3JTcGVjc09ubHkxMjM0NTY"
local UPSTREAM = "wwUPSTREAMCORP"

local math_type = math.type     -- nil on LuaJIT, where every number is a double

-- A deterministic dump that tells 1000002 from 1000002.0 on 5.3+.
local function dump(v)
  local tv = type(v)
  if tv == "number" then
    return (math_type and math_type(v) or "number") .. ":" .. string.format("%.17g", v)
  elseif tv == "string" then
    return string.format("%q", v)
  elseif tv ~= "table" then
    return tostring(v)
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The normalised fields every event carries, whatever its form.
local function normalised(event)
  return dump { type = event.type, corpid = event.corpid, userid = event.userid,
                agentid = event.agentid, time = event.time }
end

-- The same message in the XML and the JSON form of the two variants.
local MESSAGES = {
  {
    name = "app event",
    xml = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
      .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime>"
      .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[share_chain_change]]></Event>"
      .. "<AgentID>1000002</AgentID></xml>",
    json = '{"tousername":"wwDOWNSTREAMCORP","fromusername":"sys","createtime":1700000000,'
      .. '"msgtype":"event","event":"share_chain_change","agentid":1000002}',
  },
  {
    name = "text message",
    xml = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
      .. "<FromUserName><![CDATA[zhangwei]]></FromUserName><CreateTime>1700000001</CreateTime>"
      .. "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>"
      .. "<MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>",
    json = '{"tousername":"wwDOWNSTREAMCORP","fromusername":"zhangwei","createtime":1700000001,'
      .. '"msgtype":"text","content":"hello","msgid":"4561255354251345929","agentid":218}',
  },
  {
    name = "third-party command",
    xml = "<xml><SuiteId><![CDATA[wwSUITE]]></SuiteId><InfoType><![CDATA[share_chain_change]]></InfoType>"
      .. "<TimeStamp>1403610513</TimeStamp><CorpId><![CDATA[wwUPPER]]></CorpId><AgentId>11</AgentId></xml>",
    json = '{"suiteid":"wwSUITE","infotype":"share_chain_change","timestamp":1403610513,'
      .. '"corpid":"wwUPPER","agentid":11}',
  },
}

describe("wecom.callback JSON variant", function()
  local cb

  setup(function()
    cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
  end)

  teardown(function()
    cb:close()
  end)

  local function decrypt(plaintext, format)
    local body, query = cb:encrypt_event(plaintext, { format = format, agentid = 1000002 })
    return assert(cb:decrypt(query, body))
  end

  for _, m in ipairs(MESSAGES) do
    describe(m.name, function()
      it("gives the same normalised fields, integers included, in both forms and both envelopes", function()
        local from_xml = normalised(decrypt(m.xml, "xml"))
        assert.equal(from_xml, normalised(decrypt(m.xml, "json")))
        assert.equal(from_xml, normalised(decrypt(m.json, "json")))
        assert.equal(from_xml, normalised(decrypt(m.json, "xml")))
      end)

      it("gives the whole same event for the same plaintext in either envelope", function()
        assert.equal(dump(decrypt(m.xml, "xml")), dump(decrypt(m.xml, "json")))
        assert.equal(dump(decrypt(m.json, "xml")), dump(decrypt(m.json, "json")))
      end)
    end)
  end

  it("keeps the integers of a JSON event integers (agentid, time, and nested fields)", function()
    local event = decrypt('{"msgtype":"event","event":"batch_job_result","agentid":1000002,'
      .. '"createtime":1700000000,"batchjob":{"jobtype":"sync_user","errcode":0,"ids":[1,2]}}', "json")
    assert.equal(1000002, event.agentid)
    assert.equal(1700000000, event.time)
    assert.equal(0, event.batchjob.errcode)
    assert.equal("1000002", tostring(event.agentid))
    assert.equal("1700000000", tostring(event.time))
    assert.equal("0", tostring(event.batchjob.errcode))
    assert.equal("2", tostring(event.batchjob.ids[2]))
  end)

  it("refuses a JSON plaintext that is not one object (-40002)", function()
    for _, bad in ipairs { "[1,2]", '{"a":1} trailing', '{"a":1}\0{"b":2}', '{"a":' } do
      local body, query = cb:encrypt_event(bad, { format = "json" })
      local event, err = cb:decrypt(query, body)
      assert.is_nil(event, bad)
      assert.equal(-40002, err.code, bad)
    end
  end)
end)
