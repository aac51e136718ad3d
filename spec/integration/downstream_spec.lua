-- Shared corps, downstream clients, transfer_session and JS-SDK signing
-- against the emulator.  Tickets are read back from the emulator with a
-- downstream token obtained without the SDK, and the signature recomputed
-- from them.

local emu = require "helpers.emulator"
local core = require "wecom.core"
local collect = require("wecom.pager").collect

local SHARE_PATH = "/cgi-bin/corpgroup/corp/list_app_share_info"

-- confirmed shares of an upstream app in the fixture, as corpid -> agentid
local function fixture_shares(fx, agentid, business_type)
  local shares = {}
  for _, corp in ipairs(fx.downstream or {}) do
    for _, agent in ipairs(corp.agents or {}) do
      if agent.shared_from == agentid and (agent.business_type or 0) == business_type
          and agent.confirmed ~= false then
        shares[corp.corpid] = agent.agentid
      end
    end
  end
  return shares
end

local function as_map(list)
  local map = {}
  for _, c in ipairs(list) do
    assert.is_nil(map[c.corpid], "corp listed twice: " .. c.corpid)
    map[c.corpid] = c.agentid
  end
  return map
end


describe("shared corps and downstream clients (emulator)", function()
  local inst, fx, sys, ord

  setup(function()
    inst = emu.new()
    fx = inst:fixture()
    sys = inst:client(true)
    ord = inst:client(false)
  end)

  teardown(function()
    inst:stop()
  end)

  describe("app:shared_corps{}", function()
    it("lists the corps the app is shared to, per business type", function()
      for _, app in ipairs({ sys, ord }) do
        for _, bt in ipairs({ 0, 1 }) do
          local got = as_map(collect(app:shared_corps{ business_type = bt, limit = 3 }))
          assert.same(fixture_shares(fx, app.agentid, bt), got)
        end
      end
    end)

    it("defaults to business type 0 and filters by corpid", function()
      assert.is_not_nil(next(fixture_shares(fx, sys.agentid, 0)), "the fixture should share for 企业互联 too")
      assert.same(fixture_shares(fx, sys.agentid, 0), as_map(collect(sys:shared_corps())))
      local corpid, agentid = next(fixture_shares(fx, sys.agentid, 1))
      local one = collect(sys:shared_corps{ business_type = 1, corpid = corpid })
      assert.equal(1, #one)
      assert.equal(corpid, one[1].corpid)
      assert.equal(agentid, one[1].agentid)
    end)

    it("raises the error object when a later page fails", function()
      local it = sys:shared_corps{ business_type = 1, limit = 2 }
      assert.is_table(it())
      assert.is_table(it())
      inst:fault{ path = SHARE_PATH, count = 1, errcode = 45009 }
      local ok, err = pcall(it)
      assert.is_false(ok)
      assert.equal("rate_limit", err.kind)
      assert.equal(45009, err.errcode)
    end)
  end)

  describe("paging over many corps", function()
    local big, bigfx

    setup(function()
      big = emu.new{ corps = 30 }
      bigfx = big:fixture()
    end)

    teardown(function()
      big:stop()
    end)

    it("pages lazily through 30 shared corps, 4 at a time", function()
      local app = big:client(true)
      local before = big:stats()[SHARE_PATH] or 0
      local it = app:shared_corps{ business_type = 1, limit = 4 }
      local first = it()
      assert.equal(before + 1, big:stats()[SHARE_PATH])
      local list = { first }
      for corp in it do list[#list + 1] = corp end
      assert.equal(30, #list)
      assert.same(fixture_shares(bigfx, app.agentid, 1), as_map(list))
      assert.equal(before + 8, big:stats()[SHARE_PATH])
    end)
  end)

  describe("downstream clients", function()
    it("get a token for every shared corp and call its APIs", function()
      for corp in sys:shared_corps{ business_type = 1 } do
        local down = sys:downstream{ corpid = corp.corpid, agentid = corp.agentid, business_type = 1 }
        assert.is_string((assert(down:token())))
        local agent = assert(down:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
        assert.equal(corp.agentid, agent.agentid)
      end
    end)

    it("get a token error for a corp the app is not shared to", function()
      local down = sys:downstream{ corpid = "wwNOSUCHCORP", agentid = 1, business_type = 1 }
      local tok, err = down:token()
      assert.is_nil(tok)
      assert.equal("token", err.kind)
    end)
  end)

  describe("down:jsapi_config() and down:agent_config()", function()
    local corpid, agentid, down, tickets

    setup(function()
      corpid, agentid = next(fixture_shares(fx, sys.agentid, 1))
      down = sys:downstream{ corpid = corpid, agentid = agentid, business_type = 1 }
      -- the downstream corp's tickets, fetched without the SDK
      local up_token = inst:app_token(sys.agentid)
      local down_token = inst:down_token(up_token, corpid, agentid, 1)
      local _, j = inst:api("GET", "/cgi-bin/get_jsapi_ticket", down_token)
      local _, a = inst:api("GET", "/cgi-bin/ticket/get", down_token, { type = "agent_config" })
      tickets = { jsapi = j.ticket, agent_config = a.ticket }
      assert.is_string(tickets.jsapi)
      assert.not_equal(tickets.jsapi, tickets.agent_config)
    end)

    local function expected(ticket, cfg, url)
      return core.sha1_hex("jsapi_ticket=" .. ticket .. "&noncestr=" .. cfg.nonceStr
        .. "&timestamp=" .. string.format("%d", cfg.timestamp) .. "&url=" .. url)
    end

    it("signs wx.config with the downstream corp's jsapi ticket", function()
      local url = "https://app.example.com/page?x=1&y=中"
      local cfg = assert(down:jsapi_config(url .. "#section"))
      assert.equal(corpid, cfg.appId)
      assert.equal(expected(tickets.jsapi, cfg, url), cfg.signature)
      assert.is_true(math.abs(cfg.timestamp - os.time()) <= 5)
    end)

    it("signs wx.agentConfig with the agent_config ticket and the downstream ids", function()
      local url = "https://app.example.com/page"
      local cfg = assert(down:agent_config(url))
      assert.equal(corpid, cfg.corpid)
      assert.equal(agentid, cfg.agentid)
      assert.equal(expected(tickets.agent_config, cfg, url), cfg.signature)
    end)

    it("caches the tickets", function()
      local path = "/cgi-bin/get_jsapi_ticket"
      assert(down:jsapi_config("https://app.example.com/a"))
      local before = inst:stats()[path]
      for _ = 1, 3 do assert(down:jsapi_config("https://app.example.com/b")) end
      assert.equal(before, inst:stats()[path])
    end)
  end)

  describe("down:transfer_session()", function()
    -- a mini-program session of corpid's first member, through the upstream
    -- system app: -> that member's userid, the session
    local function upstream_session(corpid)
      local user
      for _, c in ipairs(fx.downstream) do
        if c.corpid == corpid then user = c.users[1].userid end
      end
      local code = inst:js_code{ corpid = corpid, userid = user, agentid = sys.agentid }
      return user, assert(sys:jscode2session(code))
    end

    it("turns an upstream mini-program session into the downstream one", function()
      local corpid, agentid = next(fixture_shares(fx, sys.agentid, 1))
      local user, session = upstream_session(corpid)
      assert.equal(corpid, session.corpid)
      assert.not_equal(user, session.userid)   -- 上下游 hides the real id upstream

      local down = sys:downstream{ corpid = corpid, agentid = agentid, business_type = 1 }
      local moved = assert(down:transfer_session(session.userid, session.session_key))
      assert.equal(user, moved.userid)
      assert.is_string(moved.session_key)
      assert.not_equal(session.session_key, moved.session_key)
    end)

    it("is refused with another corp's downstream token", function()
      local shares = fixture_shares(fx, sys.agentid, 1)
      local corpid = next(shares)
      local other = next(shares, corpid)
      local _, session = upstream_session(corpid)
      local down = sys:downstream{ corpid = other, agentid = shares[other], business_type = 1 }
      local moved, err = down:transfer_session(session.userid, session.session_key)
      assert.is_nil(moved)
      assert.equal("api", err.kind)
    end)

    it("validates its arguments", function()
      local down = sys:downstream{ corpid = "wwX", agentid = 1, business_type = 1 }
      assert.has_error(function() down:transfer_session("u") end,
        "wecom:transfer_session: session_key must be a non-empty string (got nil)")
    end)
  end)
end)
