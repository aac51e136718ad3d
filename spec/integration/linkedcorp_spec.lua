-- app.linkedcorp against the emulator; expectations come from its fixture.

local emu = require "helpers.emulator"
local wecom = require "wecom"

local fx

local function fixture_app(system)
  return emu.fixture_app(fx, system)
end

local function perm_of(app_fixture)
  return fx.linkedcorp.perm[string.format("%d", app_fixture.agentid)]
end

-- "LINKEDID/DEPT" ids of the fixture subtree under one department
local function dept_subtree(full_id)
  local linked, root = full_id:match("^([^/]+)/(.+)$")
  local set, changed = { [root] = true }, true
  while changed do
    changed = false
    for _, d in ipairs(fx.linkedcorp.departments) do
      if d.linked_id == linked and set[tostring(d.parentid)] and not set[tostring(d.department_id)] then
        set[tostring(d.department_id)] = true
        changed = true
      end
    end
  end
  local full = {}
  for id in pairs(set) do full[linked .. "/" .. id] = true end
  return full
end

local function users_in(depts)
  local ids = {}
  for _, u in ipairs(fx.linkedcorp.users) do
    for _, d in ipairs(u.department) do
      if depts[d] then ids[#ids + 1] = u.corpid .. "/" .. u.userid; break end
    end
  end
  table.sort(ids)
  return ids
end

local function ids_of(list)
  local ids = {}
  for _, u in ipairs(list) do ids[#ids + 1] = u.corpid .. "/" .. u.userid end
  table.sort(ids)
  return ids
end


describe("app.linkedcorp (emulator)", function()
  local sys, ord

  emu.hooks(function(f)
    fx = f
    sys, ord = emu.client(true), emu.client(false)
  end, { reset = false })

  it("perm_list() gives each app its own linked members and departments", function()
    for _, pair in ipairs({ { sys, fixture_app(true) }, { ord, fixture_app(false) } }) do
      local perms = assert(pair[1].linkedcorp:perm_list())
      local want = perm_of(pair[2])
      assert.same(want.userids, perms.userids)
      assert.same(want.department_ids, perms.department_ids)
    end
  end)

  it("user() returns the full record of a visible member", function()
    local id = perm_of(fixture_app(true)).userids[1]
    local corpid, userid = wecom.split_userid(id)
    local u = assert(sys.linkedcorp:user(id))
    assert.equal(userid, u.userid)       -- the bare id
    assert.equal(corpid, u.corpid)
    for _, f in ipairs(fx.linkedcorp.users) do
      if f.corpid == corpid and f.userid == userid then
        assert.equal(f.name, u.name)
        assert.equal(f.mobile, u.mobile)
      end
    end
  end)

  it("user() returns the API error for a member outside the range", function()
    local outside
    local visible = {}
    for _, id in ipairs(perm_of(fixture_app(false)).userids) do visible[id] = true end
    for d in pairs(dept_subtree(perm_of(fixture_app(false)).department_ids[1])) do
      for _, id in ipairs(users_in({ [d] = true })) do visible[id] = true end
    end
    for _, u in ipairs(fx.linkedcorp.users) do
      if not visible[u.corpid .. "/" .. u.userid] then outside = u.corpid .. "/" .. u.userid end
    end
    local u, err = ord.linkedcorp:user(outside)
    assert.is_nil(u)
    assert.equal("api", err.kind)
    assert.equal(60011, err.errcode)
  end)

  it("users{} lists a department, and its subtree with fetch_child", function()
    local dept = perm_of(fixture_app(true)).department_ids[1]
    local only = assert(sys.linkedcorp:users{ department_id = dept })
    assert.same(users_in({ [dept] = true }), ids_of(only))
    local all = assert(sys.linkedcorp:users{ department_id = dept, fetch_child = true })
    assert.same(users_in(dept_subtree(dept)), ids_of(all))
    assert.is_true(#all > #only, "the fixture's department should have members below it")
    -- the shorthand takes the id alone
    assert.same(ids_of(only), ids_of(assert(sys.linkedcorp:users(dept))))
  end)

  it("user_list{} returns full records", function()
    local dept = perm_of(fixture_app(true)).department_ids[1]
    local list = assert(sys.linkedcorp:user_list{ department_id = dept, fetch_child = true })
    assert.same(users_in(dept_subtree(dept)), ids_of(list))
    for _, u in ipairs(list) do assert.is_string(u.mobile) end
  end)

  it("departments() lists the subtree with bare string ids", function()
    local dept = perm_of(fixture_app(true)).department_ids[1]
    local list = assert(sys.linkedcorp:departments(dept))
    local linked = dept:match("^[^/]+")
    local want, got = {}, {}
    for id in pairs(dept_subtree(dept)) do want[#want + 1] = id end
    for _, d in ipairs(list) do
      assert.is_string(d.department_id)
      assert.is_nil(d.department_id:find("/", 1, true))
      got[#got + 1] = linked .. "/" .. d.department_id
    end
    table.sort(want); table.sort(got)
    assert.same(want, got)
  end)

  it("a malformed department id gets the API error", function()
    local list, err = sys.linkedcorp:users{ department_id = "no-linked-id" }
    assert.is_nil(list)
    assert.equal("api", err.kind)
  end)

  describe("send()", function()
    it("sends to linked members with the app's agentid and reports the unknown ones", function()
      local good = perm_of(fixture_app(true)).userids[1]
      local res = assert(sys.linkedcorp:send{
        touser = { good, "wwNOSUCHCORP/nobody" }, msgtype = "text", text = { content = "你好" } })
      assert.same({ "wwNOSUCHCORP/nobody" }, res.invaliduser)
      assert.same({}, res.invalidparty)
    end)

    it("takes the ordinary API's 'a|b' form and parties", function()
      local perms = perm_of(fixture_app(true))
      local res = assert(sys.linkedcorp:send{ touser = perms.userids[1] .. "|wwX/y",
        toparty = { perms.department_ids[1] }, msgtype = "text", text = { content = "hi" } })
      assert.same({ "wwX/y" }, res.invaliduser)
    end)

    it("is not resent after a dropped connection", function()
      local patient = emu.client(true, { retries = 2, backoff = 0.01 })
      local path = "/cgi-bin/linkedcorp/message/send"
      local before = emu.stats()[path] or 0
      emu.fault{ path = path, count = 1, close = true }
      local res, err = patient.linkedcorp:send{ touser = perm_of(fixture_app(true)).userids,
                                                msgtype = "text", text = { content = "once" } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(before + 1, emu.stats()[path])
    end)

    it("returns the API error when nobody can be reached", function()
      local res, err = sys.linkedcorp:send{ touser = { "wwX/y" }, msgtype = "text", text = { content = "x" } }
      assert.is_nil(res)
      assert.equal("api", err.kind)
    end)

    it("validates the message", function()
      assert.has_error(function() sys.linkedcorp:send{ msgtype = "text", text = { content = "x" } } end,
        "wecom.linkedcorp:send: message needs touser, toparty, totag or toall")
      assert.has_error(function() sys.linkedcorp:send{ touser = { "a/b" }, msgtype = "text" } end,
        "wecom.linkedcorp:send: message.text must be a table (the text payload) (got nil)")
      assert.has_error(function() sys.linkedcorp:send{ touser = { 5.5 }, msgtype = "text", text = {} } end,
        "wecom.linkedcorp:send: message.touser[1] must be a non-empty string (got number 5.5)")
      assert.has_error(function() sys.linkedcorp:user(nil) end,
        "wecom.linkedcorp:user: userid must be a non-empty string (got nil)")
    end)
  end)
end)
