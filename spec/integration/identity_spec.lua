-- Identity against the emulator: OAuth codes -> users, mini-program
-- sessions.  Codes are minted through the emulator's control API, the way
-- WeCom would hand them to a redirect or to wx.qy.login.

local emu = require "helpers.emulator"

local fx

-- a downstream corp shared with the app (business_type 1: 上下游, 0: 企业互联)
-- and one of its users
local function downstream_user(agentid, business_type)
  for _, c in ipairs(fx.downstream) do
    for _, a in ipairs(c.agents or {}) do
      if a.shared_from == agentid and (a.business_type or 0) == business_type and c.users and c.users[1] then
        return c.corpid, c.users[1].userid
      end
    end
  end
end


describe("identity (emulator)", function()
  local app

  emu.hooks(function(f)
    fx = f
    app = emu.client(true)
  end, { reset = false })

  describe("app:user_by_code()", function()
    it("splits a 企业互联 member's CorpId/userid", function()
      local corpid, userid = downstream_user(app.agentid, 0)
      local code = emu.oauth_code{ corpid = corpid, userid = userid, agentid = app.agentid }
      local who = assert(app:user_by_code(code))
      assert.equal(corpid, who.corpid)
      assert.equal(userid, who.userid)
      assert.equal(corpid .. "/" .. userid, who.raw.userid)
    end)

    it("splits a 上下游 member's CorpId/userid, the userid encrypted (account-ID upgrade)", function()
      local corpid, userid = downstream_user(app.agentid, 1)
      local code = emu.oauth_code{ corpid = corpid, userid = userid, agentid = app.agentid }
      local who = assert(app:user_by_code(code))
      assert.equal(corpid, who.corpid)
      assert.not_equal(userid, who.userid)
      assert.equal(corpid .. "/" .. who.userid, who.raw.userid)
    end)

    it("gives an upstream member the app's corpid", function()
      local userid = fx.upstream.users[1].userid
      local who = assert(app:user_by_code(emu.oauth_code{ userid = userid, agentid = app.agentid }))
      assert.equal(fx.upstream.corpid, who.corpid)
      assert.equal(userid, who.userid)
      assert.equal(userid, who.raw.userid)
    end)

    it("gives a visitor who is not a member an openid", function()
      local who = assert(app:user_by_code(emu.oauth_code{ openid = "oVisitor123", agentid = app.agentid }))
      assert.equal("oVisitor123", who.openid)
      assert.is_nil(who.userid)
      assert.is_nil(who.corpid)
    end)

    it("refuses a code twice, an expired code, and another app's code", function()
      local userid = fx.upstream.users[1].userid
      local code = emu.oauth_code{ userid = userid, agentid = app.agentid }
      assert(app:user_by_code(code))
      local who, err = app:user_by_code(code)
      assert.is_nil(who)
      assert.equal("api", err.kind)
      assert.equal(40029, err.errcode)

      code = emu.oauth_code{ userid = userid, agentid = app.agentid }
      emu.advance(301)
      who, err = app:user_by_code(code)
      assert.is_nil(who)
      assert.equal(40029, err.errcode)

      code = emu.oauth_code{ userid = userid, agentid = emu.fixture_app(fx, false).agentid }
      who, err = app:user_by_code(code)
      assert.is_nil(who)
      assert.equal(40029, err.errcode)
    end)

    it("never puts the code into an error", function()
      local _, err = app:user_by_code("SecretCodeValue123")
      assert.is_nil(tostring(err):find("SecretCodeValue123", 1, true))
    end)

    it("raises for a missing code", function()
      assert.has_error(function() app:user_by_code() end,
        "wecom:user_by_code: code must be a non-empty string (got nil)")
    end)
  end)

  describe("app:jscode2session()", function()
    it("returns the upstream member's session", function()
      local userid = fx.upstream.users[1].userid
      local s = assert(app:jscode2session(emu.js_code{ userid = userid, agentid = app.agentid }))
      assert.equal(fx.upstream.corpid, s.corpid)
      assert.equal(userid, s.userid)
      assert.is_string(s.session_key)
    end)

    it("returns the API error for a bad code", function()
      local s, err = app:jscode2session("nope")
      assert.is_nil(s)
      assert.equal(40029, err.errcode)
    end)
  end)

  describe("app:oauth_url()", function()
    it("names the upstream corp and the app, for downstream users too", function()
      local app_fixture = emu.fixture_app(fx, true)
      local redirect = "https://" .. (app_fixture.redirect_domain or "app.example.com") .. "/login?next=/home"
      local url = app:oauth_url{ redirect_uri = redirect, state = "st4te" }
      assert.truthy(url:find("appid=" .. fx.upstream.corpid .. "&", 1, true))
      assert.truthy(url:find(string.format("&agentid=%d#", app.agentid), 1, true))
      assert.truthy(url:find("redirect_uri=" .. emu.urlencode(redirect) .. "&", 1, true))
      assert.truthy(url:find("&state=st4te&", 1, true))
    end)
  end)
end)
