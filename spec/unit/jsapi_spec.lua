-- wecom.api.jsapi: wx.config / wx.agentConfig parameters, checked against the
-- signature vectors of reference §6.  The client here is a stand-in that
-- hands out a fixed ticket; the emulator-backed flow is in
-- spec/integration/downstream_spec.lua.

local jsapi = require "wecom.api.jsapi"
local errors = require "wecom.errors"

local JSAPI = require("helpers.vectors").JSAPI
local TICKET, NONCE, TIMESTAMP = JSAPI.ticket, JSAPI.noncestr, JSAPI.timestamp
local URL, BARE_URL = JSAPI.url, JSAPI.bare_url

-- a downstream client stand-in: records which ticket kinds were asked for
local function fake_down(tickets)
  local down = { corpid = "wwDOWNSTREAM", agentid = 2000001, asked = {} }
  function down:ticket(kind)
    self.asked[#self.asked + 1] = kind
    local t = tickets[kind]
    if t == nil then
      return nil, errors.new("api", "api forbidden", { errcode = 48002, path = "/cgi-bin/ticket/get" })
    end
    return t
  end
  return down
end


describe("wecom.api.jsapi", function()

  describe("sign()", function()
    it("matches WeCom's documented vector", function()
      assert.equal(JSAPI.signature, jsapi.sign(TICKET, NONCE, TIMESTAMP, URL))
    end)

    it("matches the JS-SDK vector without a query", function()
      assert.equal(JSAPI.bare_signature, jsapi.sign(TICKET, NONCE, TIMESTAMP, BARE_URL))
    end)

    it("ignores the fragment of the url", function()
      assert.equal(JSAPI.signature, jsapi.sign(TICKET, NONCE, TIMESTAMP, URL .. "#/page/2"))
    end)
  end)

  describe("config()", function()
    it("signs with the corp's jsapi ticket and names the corp as appId", function()
      local down = fake_down({ jsapi = TICKET, agent_config = "other" })
      local cfg = assert(jsapi.config(down, URL, { timestamp = TIMESTAMP, nonce = NONCE }))
      assert.same({
        appId = "wwDOWNSTREAM",
        timestamp = TIMESTAMP,
        nonceStr = NONCE,
        signature = JSAPI.signature,
      }, cfg)
      assert.same({ "jsapi" }, down.asked)
    end)

    it("uses a fresh nonce and the current time by default", function()
      local down = fake_down({ jsapi = TICKET })
      local before = os.time()
      local a = assert(jsapi.config(down, "https://h.example/page"))
      local b = assert(jsapi.config(down, "https://h.example/page"))
      assert.matches("^[A-Za-z0-9]+$", a.nonceStr)
      assert.equal(16, #a.nonceStr)
      assert.not_equal(a.nonceStr, b.nonceStr)
      assert.is_true(a.timestamp >= before and a.timestamp <= os.time())
      assert.equal(jsapi.sign(TICKET, a.nonceStr, a.timestamp, "https://h.example/page"), a.signature)
    end)

    it("returns the ticket error unchanged", function()
      local cfg, err = jsapi.config(fake_down({}), "https://h.example/")
      assert.is_nil(cfg)
      assert.equal(48002, err.errcode)
    end)

    it("rejects a url that is not absolute http(s) and bad pinned values", function()
      local down = fake_down({ jsapi = TICKET })
      assert.has_error(function() jsapi.config(down, "/relative") end,
        "wecom:jsapi_config: url must be the page's absolute http(s) URL (got string)")
      assert.has_error(function() jsapi.config(down, nil) end,
        "wecom:jsapi_config: url must be the page's absolute http(s) URL (got nil)")
      assert.has_error(function() jsapi.config(down, "https://h.example/", { nonce = "a b" }) end,
        "wecom:jsapi_config: opts.nonce must be a non-empty string of letters and digits (got string)")
      assert.has_error(function() jsapi.agent_config(down, "https://h.example/", { timestamp = 1.5 }) end,
        "wecom:agent_config: opts.timestamp must be an integer >= 0 (got number 1.5)")
      assert.same({}, down.asked)   -- no ticket fetched for a bad call
    end)
  end)

  describe("agent_config()", function()
    it("signs with the agent_config ticket and names the downstream corp and agent", function()
      local down = fake_down({ jsapi = "other", agent_config = TICKET })
      local cfg = assert(jsapi.agent_config(down, BARE_URL, { timestamp = TIMESTAMP, nonce = NONCE }))
      assert.same({
        corpid = "wwDOWNSTREAM",
        agentid = 2000001,
        timestamp = TIMESTAMP,
        nonceStr = NONCE,
        signature = JSAPI.bare_signature,
      }, cfg)
      assert.same({ "agent_config" }, down.asked)
    end)
  end)
end)
