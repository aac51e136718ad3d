-- app.chain against the emulator (HTTPS, verified against its CA).  What to
-- expect is worked out from the emulator's fixture, not written down here.

local emu = require "helpers.emulator"
local wecom = require "wecom"
local wecom_collect = require("wecom.pager").collect

local info, fx

local function fixture_app(system)
  return emu.fixture_app(fx, system)
end

-- the first chain created by the upstream corp with corps in subgroups
local function main_chain()
  for _, c in ipairs(fx.chains) do
    if c.creator_corpid == nil or c.creator_corpid == fx.upstream.corpid then
      if #c.groups > 0 then return c end
    end
  end
end

local function key_of(corp)
  return corp.corpid or ("pending:" .. corp.pending_corpid)
end

-- fixture corps of a chain in the given groups (set), joined only unless need_pending
local function expected_keys(chain, groups, need_pending)
  local keys = {}
  for _, c in ipairs(chain.corps) do
    if groups[c.groupid] and (c.corpid or need_pending) then keys[#keys + 1] = key_of(c) end
  end
  table.sort(keys)
  return keys
end

local function keys_of(list)
  local keys = {}
  for _, c in ipairs(list) do keys[#keys + 1] = key_of(c) end
  table.sort(keys)
  return keys
end

-- group ids of the subtree under `root` in the fixture
local function subtree_set(chain, root)
  local set, changed = { [root] = true }, true
  while changed do
    changed = false
    for _, g in ipairs(chain.groups) do
      if set[g.parentid] and not set[g.groupid] then set[g.groupid] = true; changed = true end
    end
  end
  return set
end

local calls = emu.calls

local LIST_PATH = "/cgi-bin/corpgroup/corp/get_chain_corpinfo_list"


describe("app.chain (emulator)", function()
  local sys, ord, chain

  emu.hooks(function(f, _, _, i)
    fx, info = f, i
    sys, ord = emu.client(true), emu.client(false)
    chain = main_chain()
    assert(chain, "the fixture needs a chain with groups")
  end, { reset = false })

  describe("list()", function()
    it("shows the system app every chain", function()
      local chains = assert(sys.chain:list())
      local want = {}
      for _, c in ipairs(fx.chains) do want[#want + 1] = { chain_id = c.chain_id, chain_name = c.chain_name } end
      assert.same(want, chains)
    end)

    it("shows an ordinary app only the chains in its visible range", function()
      local chains = assert(ord.chain:list())
      local want = {}
      for _, entry in ipairs(fixture_app(false).visible_range.chains) do want[#want + 1] = entry.chain_id end
      local got = {}
      for _, c in ipairs(chains) do got[#got + 1] = c.chain_id end
      table.sort(want); table.sort(got)
      assert.same(want, got)
      assert.is_true(#got < #fx.chains)
    end)
  end)

  describe("groups()", function()
    it("lists every group of a chain", function()
      local groups = assert(sys.chain:groups(chain.chain_id))
      local want, got = {}, {}
      for _, g in ipairs(chain.groups) do want[g.groupid] = { g.group_name, g.parentid } end
      for _, g in ipairs(groups) do got[g.groupid] = { g.group_name, g.parentid } end
      assert.same(want, got)
    end)

    it("lists every group below one group (children and their children)", function()
      local parent = chain.groups[1].groupid
      local groups = assert(sys.chain:groups(chain.chain_id, parent))
      local below, changed = { [parent] = true }, true
      while changed do
        changed = false
        for _, g in ipairs(chain.groups) do
          if below[g.parentid] and not below[g.groupid] then below[g.groupid], changed = true, true end
        end
      end
      below[parent] = nil
      local want, got = {}, {}
      for id in pairs(below) do want[#want + 1] = id end
      for _, g in ipairs(groups) do got[#got + 1] = g.groupid end
      table.sort(want)
      table.sort(got)
      assert.is_true(#want >= 2, "the fixture's first group has a grandchild")
      assert.same(want, got)
    end)

    it("raises for a missing chain_id, naming it", function()
      assert.has_error(function() sys.chain:groups(nil) end,
        "wecom.chain:groups: chain_id must be a non-empty string (got nil)")
    end)
  end)

  describe("corps{}", function()
    it("lists the joined corps of the root group, is_joined a boolean", function()
      local list = wecom_collect(sys.chain:corps{ chain_id = chain.chain_id })
      assert.same(expected_keys(chain, { [1] = true }, false), keys_of(list))
      for _, c in ipairs(list) do assert.is_true(c.is_joined) end
    end)

    it("adds the pending corps with need_pending", function()
      local list = wecom_collect(sys.chain:corps{ chain_id = chain.chain_id, need_pending = true })
      assert.same(expected_keys(chain, { [1] = true }, true), keys_of(list))
      local pending = 0
      for _, c in ipairs(list) do
        assert.is_boolean(c.is_joined)
        assert.equal(c.corpid ~= nil, c.is_joined)
        if not c.is_joined then pending = pending + 1 end
      end
      assert.is_true(pending > 0, "the fixture's root group should hold pending corps")
    end)

    it("pages lazily with small pages and yields the same corps", function()
      local whole = wecom_collect(sys.chain:corps{ chain_id = chain.chain_id, need_pending = true })
      assert.is_true(#whole >= 25, "the root group should hold at least 25 corps")
      for _, limit in ipairs({ 2, 3, 5 }) do
        local before = calls(LIST_PATH)
        local it = sys.chain:corps{ chain_id = chain.chain_id, need_pending = true, limit = limit }
        assert.equal(before, calls(LIST_PATH))              -- nothing fetched yet
        local got = {}
        for _ = 1, limit do got[#got + 1] = it() end
        assert.equal(before + 1, calls(LIST_PATH))          -- one page so far
        for c in it do got[#got + 1] = c end
        assert.same(whole, got)
        assert.equal(before + math.ceil(#whole / limit), calls(LIST_PATH))
      end
    end)

    it("walks the group tree depth first with recursive, each corp once", function()
      local all = {}
      for _, g in ipairs(chain.groups) do all[g.groupid] = true end
      all[1] = true
      local list = wecom_collect(sys.chain:corps{ chain_id = chain.chain_id, need_pending = true,
                                                   recursive = true, limit = 4 })
      assert.same(expected_keys(chain, all, true), keys_of(list))
      local seen = {}
      for _, c in ipairs(list) do
        assert.is_nil(seen[key_of(c)]); seen[key_of(c)] = true
      end

      -- depth first: once the walk leaves a group's subtree it never returns
      local parent = { [1] = 0 }
      for _, g in ipairs(chain.groups) do parent[g.groupid] = g.parentid end
      local function inside(g, root)
        while g do
          if g == root then return true end
          g = parent[g]
        end
        return false
      end
      local left = {}
      local prev
      for _, c in ipairs(list) do
        if prev and c.groupid ~= prev then
          -- every subtree that contains prev but not the new group is finished
          for g in pairs(parent) do
            if inside(prev, g) and not inside(c.groupid, g) then left[g] = true end
          end
          assert.is_nil(left[c.groupid], "came back to group " .. c.groupid)
        end
        prev = c.groupid
      end
    end)

    it("walks only the subtree of a given group", function()
      local root = chain.groups[1].groupid
      local list = wecom_collect(sys.chain:corps{ chain_id = chain.chain_id, groupid = root,
                                                   recursive = true, need_pending = true })
      assert.same(expected_keys(chain, subtree_set(chain, root), true), keys_of(list))
    end)

    it("walks an ordinary app's visible groups even though the root is outside its range", function()
      local entry
      for _, e in ipairs(fixture_app(false).visible_range.chains) do
        if e.chain_id == chain.chain_id then entry = e end
      end
      assert(entry and entry.groupids, "the ordinary app should see part of the main chain")
      local visible = {}
      for _, gid in ipairs(entry.groupids) do
        for g in pairs(subtree_set(chain, gid)) do visible[g] = true end
      end
      local list = wecom_collect(ord.chain:corps{ chain_id = chain.chain_id, recursive = true, need_pending = true })
      assert.same(expected_keys(chain, visible, true), keys_of(list))
      assert.is_true(#list > 0)
      -- asked directly, the root is refused
      local ok, err = pcall(wecom_collect, ord.chain:corps{ chain_id = chain.chain_id })
      assert.is_false(ok)
      assert.equal(60011, err.errcode)
    end)

    it("raises the error object when a later page fails", function()
      local it = sys.chain:corps{ chain_id = chain.chain_id, need_pending = true, limit = 5 }
      for _ = 1, 5 do assert.is_table(it()) end
      emu.fault{ path = LIST_PATH, count = 1, errcode = 48002 }
      local ok, err = pcall(it)
      assert.is_false(ok)
      assert.is_true(wecom.is_error(err))
      assert.equal("api", err.kind)
      assert.equal(48002, err.errcode)
      assert.equal(LIST_PATH, err.path)
    end)

    it("raises a transport error when a later page gets a 502", function()
      local it = sys.chain:corps{ chain_id = chain.chain_id, need_pending = true, limit = 5 }
      it()
      emu.fault{ path = LIST_PATH, count = 1, http_status = 502 }
      local n = 1
      local ok, err = pcall(function() for _ in it do n = n + 1 end end)
      assert.is_false(ok)
      assert.equal("transport", err.kind)
      assert.equal(502, err.http_status)
      assert.equal(5, n)
    end)

    it("recovers a failed page when the client may retry reads", function()
      local patient = emu.client(true, { retries = 2, backoff = 0.01 })
      local whole = wecom_collect(patient.chain:corps{ chain_id = chain.chain_id, need_pending = true })
      local it = patient.chain:corps{ chain_id = chain.chain_id, need_pending = true, limit = 5 }
      local got = { it() }
      emu.fault{ path = LIST_PATH, count = 1, errcode = -1 }
      for c in it do got[#got + 1] = c end
      assert.same(whole, got)
    end)

    it("raises for a chain outside an ordinary app's range", function()
      local hidden
      for _, c in ipairs(fx.chains) do
        local visible = false
        for _, e in ipairs(fixture_app(false).visible_range.chains) do
          if e.chain_id == c.chain_id then visible = true end
        end
        if not visible then hidden = c.chain_id end
      end
      local ok, err = pcall(wecom_collect, ord.chain:corps{ chain_id = hidden })
      assert.is_false(ok)
      assert.equal(60011, err.errcode)
    end)

    it("validates its options", function()
      assert.has_error(function() sys.chain:corps() end,
        "wecom.chain:corps: opts must be a table (got nil)")
      assert.has_error(function() sys.chain:corps{ groupid = 2 } end,
        "wecom.chain:corps: opts.chain_id is required (a non-empty string)")
      assert.has_error(function() sys.chain:corps{ chain_id = "Ch", limit = 0 } end,
        "wecom.chain:corps: opts.limit must be an integer >= 1 (got number 0)")
      assert.has_error(function() sys.chain:corps{ chain_id = "Ch", recursive = "yes" } end,
        "wecom.chain:corps: opts.recursive must be a boolean (got string)")
    end)
  end)

  describe("corp_info{}", function()
    it("describes a joined corp", function()
      local c
      for _, x in ipairs(chain.corps) do if x.corpid and not c then c = x end end
      local got = assert(sys.chain:corp_info{ chain_id = chain.chain_id, corpid = c.corpid })
      assert.equal(c.corp_name, got.corp_name)
      assert.equal(c.groupid, got.groupid)
      assert.equal(c.custom_id or "", got.custom_id)
      assert.equal(c.qualification_status, got.qualification_status)
      assert.is_true(got.is_joined)
      assert.is_nil(got.errcode)
    end)

    it("describes a pending corp", function()
      local c
      for _, x in ipairs(chain.corps) do if x.pending_corpid and not c then c = x end end
      local got = assert(sys.chain:corp_info{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid })
      assert.equal(c.corp_name, got.corp_name)
      assert.is_false(got.is_joined)
    end)

    it("returns the API error for a corp outside the chain", function()
      local got, err = sys.chain:corp_info{ chain_id = chain.chain_id, corpid = "wwNOSUCHCORP" }
      assert.is_nil(got)
      assert.equal("api", err.kind)
      assert.is_number(err.errcode)
    end)

    it("needs corpid or pending_corpid", function()
      assert.has_error(function() sys.chain:corp_info{ chain_id = chain.chain_id } end,
        "wecom.chain:corp_info: opts.corpid or opts.pending_corpid is required")
    end)
  end)

  describe("user_custom_id{} and corp_shared_chains()", function()
    it("returns a member's custom id", function()
      local corp, userid, want
      for _, c in ipairs(chain.corps) do
        for u, id in pairs(c.user_custom_ids or {}) do corp, userid, want = c, u, id end
      end
      assert(corp, "the fixture should give some member a custom id")
      assert.equal(want, assert(sys.chain:user_custom_id{ chain_id = chain.chain_id, corpid = corp.corpid,
                                                           userid = userid }))
    end)

    it("lists the chains a corp belongs to", function()
      local corpid = chain.corps[1].corpid or chain.corps[2].corpid
      local want = {}
      for _, c in ipairs(fx.chains) do
        for _, x in ipairs(c.corps) do
          if x.corpid == corpid then want[#want + 1] = c.chain_id; break end
        end
      end
      local got = {}
      for _, c in ipairs(assert(sys.chain:corp_shared_chains(corpid))) do got[#got + 1] = c.chain_id end
      table.sort(want); table.sort(got)
      assert.same(want, got)
    end)
  end)

  describe("remove_corp{}", function()
    after_each(function() emu.reset() end)

    it("removes a corp for the system app only", function()
      local c
      for _, x in ipairs(chain.corps) do if x.pending_corpid then c = x end end
      local ok, err = ord.chain:remove_corp{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid }
      assert.is_nil(ok)
      assert.equal(48002, err.errcode)

      assert.is_true(assert(sys.chain:remove_corp{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid }))
      local gone, gerr = sys.chain:corp_info{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid }
      assert.is_nil(gone)
      assert.equal("api", gerr.kind)
    end)

    it("is a write: a 500 or a dropped connection is not resent", function()
      local patient = emu.client(true, { retries = 2, backoff = 0.01 })
      local c
      for _, x in ipairs(chain.corps) do if x.pending_corpid then c = x end end
      local path = "/cgi-bin/corpgroup/corp/remove_corp"
      for _, fault in ipairs({ { http_status = 500 }, { close = true } }) do
        local before = calls(path)
        fault.path, fault.count = path, 1
        emu.fault(fault)
        local ok, err = patient.chain:remove_corp{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid }
        assert.is_nil(ok)
        assert.equal("transport", err.kind)
        assert.equal(before + 1, calls(path))
      end
      -- and the corp is still there: the faults answered before the handler ran
      assert.is_table(sys.chain:corp_info{ chain_id = chain.chain_id, pending_corpid = c.pending_corpid })
    end)
  end)

  describe("import_contacts{} and jobs", function()
    after_each(function() emu.reset() end)

    local function contact(name, identity_type)
      return { corp_name = name, group_path = "华北区/测试新区", custom_id = "T" .. #name,
               contact_info_list = { { name = "测试", identity_type = identity_type or 2, mobile = "13812345678" } } }
    end

    it("imports, times out while the job runs, then waits for the result", function()
      emu.options{ job_seconds = 30 }
      local jobid = assert(sys.chain:import_contacts{ chain_id = chain.chain_id,
                                                      contact_list = { contact("测试导入公司") } })
      assert.is_string(jobid)

      local job = assert(sys.chain:job_result(jobid))
      assert.is_true(job.status == 1 or job.status == 2)

      local result, err = sys.chain:wait_job(jobid, { timeout = 0.2, interval = 0.05 })
      assert.is_nil(result)
      assert.equal("timeout", err.kind)

      -- only one import at a time
      local second, serr = sys.chain:import_contacts{ chain_id = chain.chain_id, contact_list = { contact("第二公司") } }
      assert.is_nil(second)
      assert.is_truthy(serr.errcode)

      emu.advance(31)
      result = assert(sys.chain:wait_job(jobid, { timeout = 5, interval = 0.05 }))
      assert.equal(chain.chain_id, result.chain_id)
      assert.equal(1, result.import_status)

      -- the new corp is pending in the group the path named
      local found
      for c in sys.chain:corps{ chain_id = chain.chain_id, recursive = true, need_pending = true } do
        if c.corp_name == "测试导入公司" then found = c end
      end
      assert.is_table(found)
      assert.is_false(found.is_joined)
      assert.is_string(found.pending_corpid)
      local groups = assert(sys.chain:groups(chain.chain_id))
      local name
      for _, g in ipairs(groups) do if g.groupid == found.groupid then name = g.group_name end end
      assert.equal("测试新区", name)
    end)

    it("reports failed contacts in the job result", function()
      emu.options{ job_seconds = 0 }
      local jobid = assert(sys.chain:import_contacts{ chain_id = chain.chain_id,
                                                      contact_list = { contact("身份错误公司", 3) } })
      local result = assert(sys.chain:wait_job(jobid, { timeout = 5, interval = 0.05 }))
      assert.equal(3, result.import_status)
      assert.equal("身份错误公司", result.fail_list[1].corp_name)
      assert.equal(670016, result.fail_list[1].contact_info_list[1].errcode)
    end)

    it("is refused to an ordinary app", function()
      local jobid, err = ord.chain:import_contacts{ chain_id = chain.chain_id, contact_list = { contact("某公司") } }
      assert.is_nil(jobid)
      assert.equal(48002, err.errcode)
    end)

    it("validates the contact list", function()
      assert.has_error(function() sys.chain:import_contacts{ chain_id = chain.chain_id, contact_list = {} } end,
        "wecom.chain:import_contacts: opts.contact_list must not be empty")
      assert.has_error(function()
        sys.chain:import_contacts{ chain_id = chain.chain_id, contact_list = { { corp_name = "x" } } }
      end, "wecom.chain:import_contacts: opts.contact_list[1].contact_info_list must be a table (got nil)")
    end)
  end)

  describe("rules", function()
    after_each(function() emu.reset() end)

    local info1 = {
      owner_corp_range = { userids = { "zhangwei" } },
      member_corp_range = { groupids = { 2 } },
    }

    it("lists, reads, adds, modifies and deletes rules", function()
      local want = {}
      for _, r in ipairs(fx.rules or {}) do
        if r.chain_id == chain.chain_id then want[#want + 1] = r end
      end
      local ids = assert(sys.chain:rules(chain.chain_id))
      assert.equal(#want, #ids)
      if want[1] then
        local r = assert(sys.chain:rule(chain.chain_id, want[1].rule_id))
        assert.same(want[1].rule_info.owner_corp_range.userids, r.owner_corp_range.userids)
      end

      local id = assert(sys.chain:add_rule(chain.chain_id, info1))
      assert.is_number(id)
      ids = assert(sys.chain:rules(chain.chain_id))
      assert.equal(#want + 1, #ids)
      assert.same({ "zhangwei" }, assert(sys.chain:rule(chain.chain_id, id)).owner_corp_range.userids)

      assert.is_true(assert(sys.chain:modify_rule(chain.chain_id, id, {
        owner_corp_range = { userids = { "liuyang" } }, member_corp_range = { groupids = { 2 } } })))
      assert.same({ "liuyang" }, assert(sys.chain:rule(chain.chain_id, id)).owner_corp_range.userids)

      assert.is_true(assert(sys.chain:delete_rule(chain.chain_id, id)))
      assert.equal(#want, #assert(sys.chain:rules(chain.chain_id)))
      local gone, err = sys.chain:rule(chain.chain_id, id)
      assert.is_nil(gone)
      assert.equal("api", err.kind)
    end)

    it("are only for the chain's creator, through the system app", function()
      local _, err = ord.chain:rules(chain.chain_id)
      assert.equal(48002, err.errcode)
      for _, c in ipairs(fx.chains) do
        if c.creator_corpid and c.creator_corpid ~= fx.upstream.corpid then
          local _, cerr = sys.chain:add_rule(c.chain_id, info1)
          assert.equal(48002, cerr.errcode)
        end
      end
    end)

    it("validate rule_info", function()
      assert.has_error(function() sys.chain:add_rule(chain.chain_id, { owner_corp_range = {} }) end,
        "wecom.chain:add_rule: rule_info.member_corp_range must be a table (got nil)")
      assert.has_error(function() sys.chain:delete_rule(chain.chain_id, "1") end,
        "wecom.chain:delete_rule: rule_id must be an integer (got string)")
    end)
  end)

  describe("examples", function()
    -- runs an example script with this runtime against this emulator
    local function run_example(script, args)
      local interpreter = require("helpers.child").interpreter
      local cmd = string.format("WECOM_BASE_URL='%s' WECOM_CA_FILE='%s' LUA_PATH='%s' LUA_CPATH='%s' %s %s %s 2>&1",
        info.base_url, info.ca_file, package.path, package.cpath, interpreter, script, args or "")
      local p = io.popen(cmd)
      local out = p:read("*a")
      local ok = p:close()
      return out, ok
    end

    local function count(s, pattern)
      local n = 0
      for _ in s:gmatch(pattern) do n = n + 1 end
      return n
    end

    it("chain_report.lua prints every chain, every corp and the shared corps' token status", function()
      local out, ok = run_example("examples/chain_report.lua")
      assert.is_truthy(ok, out)
      local joined, pending = 0, 0
      for _, c in ipairs(fx.chains) do
        assert.truthy(out:find(c.chain_name, 1, true), c.chain_name)
        for _, g in ipairs(c.groups) do assert.truthy(out:find(g.group_name, 1, true), g.group_name) end
        for _, x in ipairs(c.corps) do
          if x.corpid then joined = joined + 1 else pending = pending + 1 end
        end
      end
      assert.equal(joined, count(out, "\n *✓ "))
      assert.equal(pending, count(out, "\n *… "))
      local shares = 0
      for _, corp in ipairs(fx.downstream) do
        for _, a in ipairs(corp.agents or {}) do
          if a.shared_from == fixture_app(true).agentid and a.confirmed ~= false then shares = shares + 1 end
        end
      end
      assert.equal(shares, count(out, "token ok"))
    end)

    it("export_chain_corps_csv.lua writes a header and one row per chain corp", function()
      local out, ok = run_example("examples/export_chain_corps_csv.lua")
      assert.is_truthy(ok, out)
      local total = 0
      for _, c in ipairs(fx.chains) do total = total + #c.corps end
      assert.equal(total + 1, count(out, "\r\n"))
      assert.truthy(out:find("^chain_id,chain_name,group_path,"))
    end)

    it("message_linked_users.lua lists the ordinary app's linked members", function()
      local out, ok = run_example("examples/message_linked_users.lua", "--dry-run")
      assert.is_truthy(ok, out)
      assert.truthy(out:find("linked member", 1, true))
    end)

    it("jsapi_config.lua prints both configs for a downstream corp", function()
      local out, ok = run_example("examples/jsapi_config.lua", "https://app.example.com/x")
      assert.is_truthy(ok, out)
      local data = require("cjson").decode(out)
      assert.is_string(data.config.signature)
      assert.equal(data.config.appId, data.agentConfig.corpid)
    end)
  end)

  describe("unionid and pending ids", function()
    local function customer_with_ids()
      for _, c in ipairs(fx.customers) do
        if #c.external_userids > 0 then return c end
      end
    end

    it("maps a unionid to external_userids in the shared corps", function()
      local c = customer_with_ids()
      local got = assert(sys.chain:unionid_to_external_userid{ unionid = c.unionid, openid = c.openid })
      assert.is_true(#got > 0)
      local known = {}
      for _, e in ipairs(c.external_userids) do known[e.external_userid] = e.corpid end
      for _, e in ipairs(got) do assert.equal(known[e.external_userid], e.corpid) end

      local one = assert(sys.chain:unionid_to_external_userid{ unionid = c.unionid, openid = c.openid,
                                                                corpid = got[1].corpid })
      assert.same({ got[1] }, one)
    end)

    it("turns a unionid and then its external_userids into the same pending id", function()
      local c = customer_with_ids()
      local pending = assert(sys.chain:unionid_to_pending_id{ unionid = c.unionid, openid = c.openid })
      assert.is_string(pending)
      local ext = c.external_userids[1].external_userid
      local result = assert(sys.chain:external_userid_to_pending_id{ external_userid = { ext } })
      assert.same({ { external_userid = ext, pending_id = pending } }, result)
    end)

    it("returns the API error for a mismatched openid", function()
      local c = customer_with_ids()
      local got, err = sys.chain:unionid_to_pending_id{ unionid = c.unionid, openid = "oSomeoneElse" }
      assert.is_nil(got)
      assert.equal("api", err.kind)
    end)

    it("validates the id list", function()
      assert.has_error(function() sys.chain:external_userid_to_pending_id{ external_userid = {} } end,
        "wecom.chain:external_userid_to_pending_id: opts.external_userid must hold 1 to 100 ids (got 0)")
      assert.has_error(function() sys.chain:unionid_to_pending_id{ unionid = "u" } end,
        "wecom.chain:unionid_to_pending_id: opts.openid is required (a non-empty string)")
    end)
  end)
end)
