-- wecom.callback.router and the event shapes of reference §9, decrypted
-- through the public API (encrypt_event -> decrypt).

local callback = require "wecom.callback"

local TOKEN = "RouterSpecToken"
local AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
local UPSTREAM = "wwUPSTREAMCORP"

-- Plaintexts as WeCom sends them (reference §9).
local FIXTURES = {
  subscribe = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1348831860</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
    .. "<AgentID>1</AgentID></xml>",
  unsubscribe = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1348831861</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>"
    .. "<AgentID>1</AgentID></xml>",
  enter_agent = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA]]></FromUserName>"
    .. "<CreateTime>1408091189</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>"
    .. "<AgentID>1000002</AgentID></xml>",
  share_agent_change = "<xml><ToUserName><![CDATA[wwUPSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1527838022</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[share_agent_change]]></Event>"
    .. "<AgentID>1</AgentID></xml>",
  share_chain_change = "<xml><ToUserName><![CDATA[wwUPSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1527838023</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[share_chain_change]]></Event>"
    .. "<AgentID>1000002</AgentID></xml>",
  batch_job_result = "<xml><ToUserName><![CDATA[wwUPSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1425284517</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[batch_job_result]]></Event>"
    .. "<BatchJob><JobId><![CDATA[jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4]]></JobId>"
    .. "<JobType><![CDATA[import_chain_contact]]></JobType><ErrCode>0</ErrCode>"
    .. "<ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob></xml>",
  -- third-party command callbacks (InfoType forms, reference §9.4)
  suite_share_agent_change = "<xml><SuiteId><![CDATA[wwSUITEID]]></SuiteId>"
    .. "<InfoType><![CDATA[share_agent_change]]></InfoType><TimeStamp>1403610513</TimeStamp>"
    .. "<AppId>11</AppId><CorpId><![CDATA[wwUPPERCORP]]></CorpId><AgentId>11</AgentId></xml>",
  suite_share_chain_change = "<xml><SuiteId><![CDATA[wwSUITEID]]></SuiteId>"
    .. "<InfoType><![CDATA[share_chain_change]]></InfoType><TimeStamp>1403610514</TimeStamp>"
    .. "<AppId>12</AppId><CorpId><![CDATA[wwUPPERCORP]]></CorpId><AgentId>12</AgentId></xml>",
  text = "<xml><ToUserName><![CDATA[wwDOWNSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[wangwu]]></FromUserName><CreateTime>1409659813</CreateTime>"
    .. "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 <world> & co]]></Content>"
    .. "<MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>",
}

-- change_chain: every ChangeType of reference §9.5.  The group and corp
-- events carry GroupId / CorpId (field names are the reference's best guess).
local CHANGE_TYPES = {
  create_chain = "", update_chain = "", delete_chain = "",
  create_group = "<GroupId>2</GroupId>", update_group = "<GroupId>2</GroupId>",
  delete_group = "<GroupId>2</GroupId>",
  add_corp = "<CorpId><![CDATA[wwDOWNSTREAMCORP]]></CorpId>",
  update_corp = "<CorpId><![CDATA[wwDOWNSTREAMCORP]]></CorpId>",
  remove_corp = "<CorpId><![CDATA[wwDOWNSTREAMCORP]]></CorpId>",
}

local function change_chain_xml(change_type)
  return "<xml><ToUserName><![CDATA[wwUPSTREAMCORP]]></ToUserName>"
    .. "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>"
    .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_chain]]></Event>"
    .. "<ChangeType><![CDATA[" .. change_type .. "]]></ChangeType>"
    .. "<ChainId><![CDATA[Chain_7GvqbXN]]></ChainId>" .. CHANGE_TYPES[change_type] .. "</xml>"
end

describe("wecom.callback.router", function()
  local router

  before_each(function()
    router = callback.router()
  end)

  describe(":on", function()
    it("raises on a missing, empty or non-string event type", function()
      local fn = function() end
      assert.has_error(function() router:on(nil, fn) end)
      assert.has_error(function() router:on("", fn) end)
      assert.has_error(function() router:on(42, fn) end)
    end)

    it("raises on a handler that is not callable", function()
      assert.has_error(function() router:on("subscribe") end)
      assert.has_error(function() router:on("subscribe", "handler") end)
      assert.has_error(function() router:on("subscribe", {}) end)
    end)

    it("names the problem in the error", function()
      local ok, err = pcall(router.on, router, "subscribe", 1)
      assert.is_false(ok)
      assert.matches("handler must be a function", err)
    end)

    it("returns the router so calls chain", function()
      assert.equal(router, router:on("subscribe", function() end))
      assert.equal(router, router:default(function() end))
    end)

    it("accepts a callable table", function()
      local seen
      local handler = setmetatable({}, { __call = function(_, event) seen = event.type; return "called" end })
      router:on("subscribe", handler)
      assert.equal("called", router:dispatch({ type = "subscribe" }))
      assert.equal("subscribe", seen)
    end)

    it("replaces a handler registered twice for one type", function()
      router:on("subscribe", function() return "first" end)
      router:on("subscribe", function() return "second" end)
      assert.equal("second", router:dispatch({ type = "subscribe" }))
    end)
  end)

  describe(":default", function()
    it("raises on a non-callable handler", function()
      assert.has_error(function() router:default() end)
      assert.has_error(function() router:default(true) end)
    end)
  end)

  describe(":dispatch", function()
    it("calls the handler of the event's type with the event and extra arguments", function()
      local got_event, got_ctx
      router:on("share_chain_change", function(event, ctx)
        got_event, got_ctx = event, ctx
      end)
      local event = { type = "share_chain_change", corpid = "wwUPSTREAMCORP" }
      router:dispatch(event, "ctx")
      assert.equal(event, got_event)
      assert.equal("ctx", got_ctx)
    end)

    it("returns every value the handler returns", function()
      router:on("subscribe", function() return 1, nil, "three" end)
      local n = select("#", router:dispatch({ type = "subscribe" }))
      local a, b, c = router:dispatch({ type = "subscribe" })
      assert.equal(3, n)
      assert.equal(1, a)
      assert.is_nil(b)
      assert.equal("three", c)
    end)

    it("sends unknown events to the default handler", function()
      router:on("subscribe", function() return "subscribe" end)
      router:default(function(event) return "default:" .. event.type end)
      assert.equal("default:brand_new_event", router:dispatch({ type = "brand_new_event" }))
    end)

    it("sends events without a type to the default handler", function()
      router:default(function(event) return event.ToUserName end)
      assert.equal("wwX", router:dispatch({ ToUserName = "wwX" }))
    end)

    it("ignores unknown events without raising when there is no default", function()
      router:on("subscribe", function() return "subscribe" end)
      local n = select("#", router:dispatch({ type = "brand_new_event" }))
      assert.equal(0, n)
      assert.equal(0, select("#", router:dispatch({})))
    end)

    it("raises when the event is not a table (a programming mistake)", function()
      assert.has_error(function() router:dispatch(nil) end)
      assert.has_error(function() router:dispatch("subscribe") end)
    end)

    it("lets a handler's error propagate", function()
      router:on("subscribe", function() error("handler failed") end)
      assert.has_error(function() router:dispatch({ type = "subscribe" }) end, nil)
      local ok, err = pcall(router.dispatch, router, { type = "subscribe" })
      assert.is_false(ok)
      assert.matches("handler failed", err)
    end)

    describe("change_chain", function()
      it("prefers change_chain.<ChangeType> over change_chain", function()
        router:on("change_chain", function() return "any" end)
        router:on("change_chain.create_chain", function() return "create" end)
        assert.equal("create", router:dispatch({ type = "change_chain", ChangeType = "create_chain" }))
        assert.equal("any", router:dispatch({ type = "change_chain", ChangeType = "delete_chain" }))
      end)

      it("falls back to the default when neither is registered", function()
        router:on("change_chain.create_chain", function() return "create" end)
        router:default(function() return "default" end)
        assert.equal("default", router:dispatch({ type = "change_chain", ChangeType = "add_corp" }))
        assert.equal("default", router:dispatch({ type = "change_chain" }))
      end)
    end)
  end)
end)

describe("callback event shapes (reference §9)", function()
  local cb, skewed, router
  local fast_calls, fast_events = 0, 0

  setup(function()
    -- count what the one-call C path (core.callback_open) decodes: a fresh
    -- copy of wecom.callback picks up the counting wrapper (busted's
    -- insulation restores both afterwards)
    local core = require "wecom.core"
    local real = core.callback_open
    core.callback_open = function(...)
      fast_calls = fast_calls + 1
      local msg, rid, event, err = real(...)
      if event then
        fast_events = fast_events + 1
      end
      return msg, rid, event, err
    end
    package.loaded["wecom.callback"] = nil
    local fresh = require "wecom.callback"
    core.callback_open = real
    cb = fresh.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM }
    -- max_skew takes decrypt's general path, a raw query string callback_open_query
    skewed = fresh.new { token = TOKEN, aes_key = AES_KEY, receive_id = UPSTREAM, max_skew = 3600 }
  end)

  before_each(function()
    router = callback.router()
  end)

  -- Decrypts the way WeCom pushes it, on the one-call path and on the
  -- general path (a query string; max_skew); all three must agree.
  local function receive(xml)
    local body, query = cb:encrypt_event(xml, { agentid = 1000002 })
    assert.is_string(body)
    local before = fast_events
    local event, err = cb:decrypt(query, body)
    assert.is_nil(err)
    assert.is_table(event)
    assert.equal(before + 1, fast_events, "the one-call path did not decode this event")
    assert.equal(xml, event.xml)
    local calls = fast_calls
    assert.same(event, (cb:decrypt(callback.build_query(query), body)))
    assert.same(event, (skewed:decrypt(query, body)))
    assert.equal(calls, fast_calls, "the general path went through core.callback_open")
    return event
  end

  it("subscribe / unsubscribe: downstream corp and user", function()
    for _, name in ipairs { "subscribe", "unsubscribe" } do
      local event = receive(FIXTURES[name])
      assert.equal(name, event.type)
      assert.equal("event", event.MsgType)
      assert.equal(name, event.Event)
      assert.equal("wwDOWNSTREAMCORP", event.corpid)
      assert.equal(1, event.agentid)
      assert.is_number(event.time)
    end
    assert.equal("zhangsan", receive(FIXTURES.subscribe).userid)
    assert.equal(1348831861, receive(FIXTURES.unsubscribe).time)
  end)

  it("enter_agent: empty EventKey is an empty string", function()
    local event = receive(FIXTURES.enter_agent)
    assert.equal("enter_agent", event.type)
    assert.equal("", event.EventKey)
    assert.equal(1000002, event.agentid)
    assert.equal("woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA", event.userid)
  end)

  it("share_agent_change and share_chain_change (self-built app events)", function()
    local agent = receive(FIXTURES.share_agent_change)
    assert.equal("share_agent_change", agent.type)
    assert.equal("wwUPSTREAMCORP", agent.corpid)
    assert.equal("sys", agent.userid)
    assert.equal(1, agent.agentid)
    assert.equal(1527838022, agent.time)

    local chain = receive(FIXTURES.share_chain_change)
    assert.equal("share_chain_change", chain.type)
    assert.equal(1000002, chain.agentid)
    assert.equal(1527838023, chain.time)
  end)

  it("third-party InfoType forms: corpid from CorpId, agentid from AgentId, time from TimeStamp", function()
    local agent = receive(FIXTURES.suite_share_agent_change)
    assert.equal("share_agent_change", agent.type)
    assert.equal("wwSUITEID", agent.SuiteId)
    assert.equal("wwUPPERCORP", agent.corpid)
    assert.equal(11, agent.agentid)
    assert.equal(1403610513, agent.time)
    assert.is_nil(agent.userid)

    local chain = receive(FIXTURES.suite_share_chain_change)
    assert.equal("share_chain_change", chain.type)
    assert.equal(12, chain.agentid)
    assert.equal("12", chain.AppId)
  end)

  it("batch_job_result: BatchJob is a nested table", function()
    local event = receive(FIXTURES.batch_job_result)
    assert.equal("batch_job_result", event.type)
    assert.same({
      JobId = "jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4",
      JobType = "import_chain_contact",
      ErrCode = "0",
      ErrMsg = "ok",
    }, event.BatchJob)
    assert.is_nil(event.agentid)
  end)

  it("messages: type is MsgType, CDATA text kept verbatim", function()
    local event = receive(FIXTURES.text)
    assert.equal("text", event.type)
    assert.equal("你好 <world> & co", event.Content)
    assert.equal("4561255354251345929", event.MsgId)
    assert.equal(218, event.agentid)
  end)

  it("change_chain: every ChangeType reaches its own handler", function()
    local seen = {}
    for change_type in pairs(CHANGE_TYPES) do
      router:on("change_chain." .. change_type, function(event)
        seen[change_type] = event
        return change_type
      end)
    end
    for change_type in pairs(CHANGE_TYPES) do
      local event = receive(change_chain_xml(change_type))
      assert.equal("change_chain", event.type)
      assert.equal(change_type, event.ChangeType)
      assert.equal("Chain_7GvqbXN", event.ChainId)
      assert.equal(change_type, router:dispatch(event))
    end
    for change_type in pairs(CHANGE_TYPES) do
      assert.is_table(seen[change_type], change_type)
    end
  end)

  it("change_chain: group and corp events carry their ids", function()
    assert.equal("2", receive(change_chain_xml("create_group")).GroupId)
    local event = receive(change_chain_xml("add_corp"))
    assert.equal("wwDOWNSTREAMCORP", event.CorpId)
    -- ToUserName wins over CorpId for app events
    assert.equal("wwUPSTREAMCORP", event.corpid)
  end)

  it("change_chain: one change_chain handler sees every ChangeType", function()
    local count = 0
    router:on("change_chain", function(event)
      count = count + 1
      return event.ChangeType
    end)
    for change_type in pairs(CHANGE_TYPES) do
      assert.equal(change_type, router:dispatch(receive(change_chain_xml(change_type))))
    end
    local n = 0
    for _ in pairs(CHANGE_TYPES) do n = n + 1 end
    assert.equal(n, count)
  end)

  it("routes every fixture by its type, and unknown ones to the default", function()
    local routed = {}
    for _, t in ipairs { "subscribe", "unsubscribe", "enter_agent", "share_agent_change",
                         "share_chain_change", "batch_job_result" } do
      router:on(t, function(event) routed[#routed + 1] = event.type; return t end)
    end
    router:default(function(event) return "default:" .. tostring(event.type) end)
    for name, xml in pairs(FIXTURES) do
      local result = router:dispatch(receive(xml))
      if name == "text" then
        assert.equal("default:text", result)
      elseif name:find("^suite_") then
        assert.equal(name:sub(7), result)
      else
        assert.equal(name, result)
      end
    end
    assert.equal(8, #routed)
  end)
end)
