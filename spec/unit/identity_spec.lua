-- wecom.api.identity: OAuth URL building and CorpId/userid splitting (pure
-- logic).  The calls against the server are in spec/integration/identity_spec.lua.

local identity = require "wecom.api.identity"

local app = { corpid = "wwUPSTREAMCORP", agentid = 1000002 }

-- parse the query of a URL (between '?' and '#') into a table, decoding %XX
local function query_of(url)
  local q = url:match("%?([^#]*)")
  local t = {}
  for k, v in q:gmatch("([^&=]+)=([^&]*)") do
    t[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return t
end


describe("wecom.api.identity", function()

  describe("split_userid()", function()
    it("splits CorpId/userid on the first slash", function()
      assert.same({ "wwDOWN", "zhangsan" }, { identity.split_userid("wwDOWN/zhangsan") })
    end)

    it("keeps later slashes in the userid", function()
      assert.same({ "wwDOWN", "a/b" }, { identity.split_userid("wwDOWN/a/b") })
    end)

    it("returns nil, err for a plain userid and for malformed ids", function()
      for _, s in ipairs({ "lisi", "", "/lisi", "wwDOWN/", "/" }) do
        local corpid, err = identity.split_userid(s)
        assert.is_nil(corpid, s)
        assert.equal("decode", err.kind, s)
        assert.matches("CorpId/userid", tostring(err), 1, true)
      end
    end)

    it("raises for a non-string", function()
      assert.has_error(function() identity.split_userid(42) end,
        "wecom.split_userid: userid must be a string (got number 42)")
    end)
  end)

  describe("oauth_url()", function()
    it("builds the authorize URL with the upstream corpid and the app's agentid", function()
      local url = identity.oauth_url(app, { redirect_uri = "https://app.example.com/cb?x=1&y=2", state = "abc123" })
      assert.equal("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wwUPSTREAMCORP"
        .. "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1%26y%3D2"
        .. "&response_type=code&scope=snsapi_base&state=abc123&agentid=1000002#wechat_redirect", url)
    end)

    it("round-trips the redirect_uri through percent-decoding", function()
      local redirect = "https://h.example/a b/ü?q=1&r=#frag"
      local q = query_of(identity.oauth_url(app, { redirect_uri = redirect }))
      assert.equal(redirect, q.redirect_uri)
      assert.is_nil(q.state)
    end)

    it("takes the scope and an explicit agentid", function()
      local q = query_of(identity.oauth_url(app, { redirect_uri = "https://h.example/", scope = "snsapi_privateinfo",
        agentid = 42 }))
      assert.equal("snsapi_privateinfo", q.scope)
      assert.equal("42", q.agentid)
    end)

    it("always ends with #wechat_redirect", function()
      assert.matches("#wechat_redirect$", identity.oauth_url(app, { redirect_uri = "https://h.example/" }))
    end)

    it("accepts a state of exactly 128 letters and digits", function()
      local state = string.rep("aZ9", 42) .. "xy"
      assert.equal(128, #state)
      local url = identity.oauth_url(app, { redirect_uri = "https://h.example/", state = state })
      assert.equal(state, query_of(url).state)
    end)

    it("rejects a bad state", function()
      for _, state in ipairs({ "a-b", "a b", "中", string.rep("a", 129), 5 }) do
        assert.has_error(function()
          identity.oauth_url(app, { redirect_uri = "https://h.example/", state = state })
        end, "wecom:oauth_url: opts.state must be at most 128 letters and digits (got "
          .. (type(state) == "number" and "number 5" or "string") .. ")")
      end
    end)

    it("rejects a missing or relative redirect_uri and an unknown scope", function()
      assert.has_error(function() identity.oauth_url(app, {}) end,
        "wecom:oauth_url: opts.redirect_uri is required (an absolute http(s) URL)")
      assert.has_error(function() identity.oauth_url(app, { redirect_uri = "/cb" }) end,
        "wecom:oauth_url: opts.redirect_uri must be an absolute http(s) URL (got string)")
      assert.has_error(function()
        identity.oauth_url(app, { redirect_uri = "https://h.example/", scope = "snsapi_userinfo" })
      end, "wecom:oauth_url: opts.scope must be snsapi_base or snsapi_privateinfo (got string)")
      assert.has_error(function() identity.oauth_url(app, "https://h.example/") end,
        "wecom:oauth_url: opts must be a table (got string)")
      assert.has_error(function() identity.oauth_url(app, { redirect_uri = "https://h.example/", agentid = -1 }) end,
        "wecom:oauth_url: opts.agentid must be an integer >= 0 (got number -1)")
    end)

    it("refuses snsapi_privateinfo without an agentid (WeCom would downgrade it)", function()
      assert.has_error(function()
        identity.oauth_url({ corpid = "ww1" }, { redirect_uri = "https://h.example/", scope = "snsapi_privateinfo" })
      end, "wecom:oauth_url: scope snsapi_privateinfo needs an agentid")
    end)
  end)
end)
