-- wecom.api.share: the shared-corp listing over a stand-in app (pure logic;
-- the real endpoint is in spec/integration).

local share = require "wecom.api.share"
local pager = require "wecom.pager"
local errors = require "wecom.errors"

describe("wecom.api.share: app:shared_corps", function()
  -- a stand-in app whose post() serves list_app_share_info from a list
  local function fake_app(corps, fail_on_call)
    local app = { agentid = 1000002, requests = {} }
    function app:post(path, body, query, opts)
      self.requests[#self.requests + 1] = { path = path, body = body, query = query, opts = opts }
      if #self.requests == fail_on_call then
        return nil, errors.new("api", "system busy", { errcode = -1, path = path })
      end
      local start = body.cursor and tonumber(body.cursor) or 1
      local page = {}
      for i = start, math.min(start + body.limit - 1, #corps) do page[#page + 1] = corps[i] end
      local more = start + body.limit <= #corps
      return { errcode = 0, corp_list = page, ending = more and 0 or 1,
               next_cursor = more and tostring(start + body.limit) or "" }
    end
    return app
  end

  local corps = {}
  for i = 1, 7 do corps[i] = { corpid = "wwD" .. i, corp_name = "D" .. i, agentid = 2000 + i } end

  it("pages with the app's agentid, the business type and the limit", function()
    local app = fake_app(corps)
    local got = pager.collect(share.shared_corps(app, { business_type = 1, limit = 3 }))
    assert.same(corps, got)
    assert.equal(3, #app.requests)
    for _, r in ipairs(app.requests) do
      assert.equal("/cgi-bin/corpgroup/corp/list_app_share_info", r.path)
      assert.equal(1000002, r.body.agentid)
      assert.equal(1, r.body.business_type)
      assert.equal(3, r.body.limit)
      assert.is_true(r.opts.idempotent)   -- a read: safe to resend
    end
    assert.is_nil(app.requests[1].body.cursor)
    assert.equal("4", app.requests[2].body.cursor)
  end)

  it("raises the error of a failed later page", function()
    local app = fake_app(corps, 2)
    local ok, err = pcall(pager.collect, share.shared_corps(app, { limit = 3 }))
    assert.is_false(ok)
    assert.equal(-1, err.errcode)
  end)

  it("validates its options, naming the call as users write it", function()
    local app = fake_app(corps)
    assert.has_error(function() share.shared_corps(app, { business_type = 2 }) end,
      "wecom:shared_corps: opts.business_type must be 0 (企业互联) or 1 (上下游) (got number 2)")
    assert.has_error(function() share.shared_corps(app, { limit = 101 }) end,
      "wecom:shared_corps: opts.limit must be an integer from 1 to 100 (got number 101)")
    assert.has_error(function() share.shared_corps(app, { limit = 0 }) end)
    assert.has_error(function() share.shared_corps(app, { corpid = 5 }) end,
      "wecom:shared_corps: opts.corpid must be a non-empty string (got number 5)")
    assert.has_error(function() share.shared_corps(app, { bussiness_type = 1 }) end,
      "wecom:shared_corps: unknown option 'bussiness_type'")
    assert.has_error(function() share.shared_corps({ post = app.post }, {}) end,
      "wecom:shared_corps: the app needs an agentid (wecom.new{ agentid = ... })")
  end)

  it("takes an explicit agentid and a corpid filter", function()
    local app = fake_app(corps)
    share.shared_corps(app, { agentid = 7, corpid = "wwD1" })()
    assert.equal(7, app.requests[1].body.agentid)
    assert.equal("wwD1", app.requests[1].body.corpid)
    assert.equal(0, app.requests[1].body.business_type)
  end)
end)
