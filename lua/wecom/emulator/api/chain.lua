-- §3 上下游 chain APIs: chains, groups, corps (paging, visibility), removal,
-- custom ids, async contact import, rules, unionid / pending_id mappings.
--
-- Mutable per chain: collection "chain:<id>" = { groups = [...], corps = [...] }
-- and "rules:<id>" = { next_id, rules = [...] }; import jobs live in
-- job:<jobid> with the running one in job_active.

local json = require "wecom.json"
local store = require "wecom.emulator.store"
local server = require "wecom.emulator.server"
local share = require "wecom.emulator.api.share"
local push = require "wecom.emulator.push"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local assert = assert
local min = math.min
local fail = server.fail
local is_integer = server.is_integer

local _M = {}

-- the API handlers, each named as the last segment of its path (_M.routes)
local handlers = {}

local PENDING_TTL = 90 * 86400

-- State --------------------------------------------------------------------

local function seed_chain(F, chain_id)
    return function()
        local chain = F.chains[chain_id]
        return { groups = chain.groups, corps = chain.corps }
    end
end

local settle_jobs

local function chain_state(F, chain_id)
    settle_jobs(F)
    return store.read("chain:" .. chain_id, seed_chain(F, chain_id))
end

local function seed_rules(F, chain_id)
    return function()
        local rules, next_id = json.array(), 1
        for _, r in ipairs(F.data.rules or {}) do
            if r.chain_id == chain_id then
                rules[#rules + 1] = { rule_id = r.rule_id, rule_info = r.rule_info }
                if r.rule_id >= next_id then
                    next_id = r.rule_id + 1
                end
            end
        end
        return { next_id = next_id, rules = rules }
    end
end

-- Visibility ---------------------------------------------------------------

local function is_system(req)
    local app = req.F.apps[req.token.agentid]
    return app and app.system == true
end

local function require_system(req)
    if not is_system(req) then
        fail(48002, "only the chain system app may call this API")
    end
end

-- add_descendants(groups, set) -> set, with every group under one already in
-- it (its value not nil) added as true
local function add_descendants(groups, set)
    local changed = true
    while changed do
        changed = false
        for _, g in ipairs(groups) do
            if set[g.parentid] ~= nil and set[g.groupid] == nil then
                set[g.groupid] = true
                changed = true
            end
        end
    end
    return set
end

-- The app's range for a chain: false (not visible), true (everything), or a
-- set of visible groupids (the listed groups and their descendants).
local function range_of(req, chain_id, groups)
    if is_system(req) then
        return true
    end
    local app = req.F.apps[req.token.agentid]
    for _, entry in ipairs(app and app.visible_range and app.visible_range.chains or {}) do
        if entry.chain_id == chain_id then
            if not entry.groupids then
                return true
            end
            local set = {}
            for _, gid in ipairs(entry.groupids) do
                set[gid] = true
            end
            return add_descendants(groups, set)
        end
    end
    return false
end

local function group_visible(range, gid)
    return range == true or (type(range) == "table" and range[gid] == true)
end

-- The chain a request names, with its state and the caller's range.
local function get_chain(req, chain_id)
    local chain = req.F.chains[chain_id]
    if not chain then
        fail(40058, "invalid chain_id")
    end
    local state = chain_state(req.F, chain_id)
    local range = range_of(req, chain_id, state.groups)
    if not range then
        fail(60011, "chain is not in the app's visible range")
    end
    return chain, state, range
end

local function group_exists(state, gid)
    if gid == 1 then
        return true
    end
    for _, g in ipairs(state.groups) do
        if g.groupid == gid then
            return true
        end
    end
    return false
end

-- Chains, groups, corps ----------------------------------------------------

function handlers.get_chain_list(req)
    local chains = json.array()
    for _, chain in ipairs(req.F.chain_list) do
        local state = chain_state(req.F, chain.chain_id)
        if range_of(req, chain.chain_id, state.groups) then
            chains[#chains + 1] = { chain_id = chain.chain_id, chain_name = chain.chain_name }
        end
    end
    return { chains = chains }
end

-- The set of groupids under gid (children, grandchildren, ...).
local function descendants(groups, gid)
    return add_descendants(groups, { [gid] = false })
end

function handlers.get_chain_group(req)
    local _, state, range = get_chain(req, req:str("chain_id", true))
    local parent = req:int("groupid")
    if parent and not group_exists(state, parent) then
        fail(40058, "invalid groupid")
    end
    if parent and not group_visible(range, parent) and not (range ~= true and parent == 1) then
        fail(60011, "group is not in the app's visible range")
    end
    -- every group below the one asked for, as doc 96876's example answers
    -- (groupid 1 -> a child and a grandchild), not only its direct children
    local below = parent and parent ~= 1 and descendants(state.groups, parent)
    local groups = json.array()
    for _, g in ipairs(state.groups) do
        if group_visible(range, g.groupid) and (not below or below[g.groupid]) then
            groups[#groups + 1] = {
                groupid = g.groupid, group_name = g.group_name, parentid = g.parentid, order = g.order or 0,
            }
        end
    end
    return { groups = groups }
end

local function inviter_visible(req, userid)
    return is_system(req) and userid ~= nil and req.F.upstream.users_by_id[userid] ~= nil
end

function handlers.get_chain_corpinfo_list(req)
    local chain_id = req:str("chain_id", true)
    local _, state, range = get_chain(req, chain_id)
    local gid = req:int("groupid") or 1
    local need_pending = req:bool("need_pending")
    local limit = req:int("limit") or 0
    if limit < 0 then
        fail(40058, "limit must not be negative")
    end
    if not group_exists(state, gid) then
        fail(40058, "invalid groupid")
    end
    if not group_visible(range, gid) then
        fail(60011, "group is not in the app's visible range")
    end
    local scope = "corps:" .. chain_id .. ":" .. gid .. ":" .. (need_pending and 1 or 0)
    local offset = share.decode_cursor(scope, req:str("cursor"))
    local all = {}
    for _, c in ipairs(state.corps) do
        if c.groupid == gid and (c.corpid or need_pending) then
            all[#all + 1] = c
        end
    end
    local last = #all
    if limit > 0 then
        last = min(#all, offset + limit)
    end
    local list = json.array()
    for i = offset + 1, last do
        local c = all[i]
        local item = {
            groupid = c.groupid, corp_name = c.corp_name, custom_id = c.custom_id or "",
            is_joined = c.corpid and 1 or 0,
        }
        if c.corpid then
            item.corpid = c.corpid
        else
            item.pending_corpid = c.pending_corpid
        end
        if inviter_visible(req, c.invite_userid) then
            item.invite_userid = c.invite_userid
        end
        list[#list + 1] = item
    end
    local has_more = last < #all
    return {
        has_more = has_more,
        next_cursor = has_more and share.encode_cursor(scope, last) or "",
        group_corps = list,
    }
end

-- The corp a request names by corpid (wins) or pending_corpid.
local function find_corp(req, state)
    local corpid = req:str("corpid")
    local pending = req:str("pending_corpid")
    if not corpid and not pending then
        fail(40058, "missing corpid or pending_corpid")
    end
    for i, c in ipairs(state.corps) do
        if (corpid and c.corpid == corpid) or (not corpid and c.pending_corpid == pending) then
            return c, i
        end
    end
    fail(40013, "corp is not in this chain")
end

function handlers.get_chain_corpinfo(req)
    local _, state, range = get_chain(req, req:str("chain_id", true))
    local c = find_corp(req, state)
    if not group_visible(range, c.groupid) then
        fail(60011, "corp is not in the app's visible range")
    end
    local out = {
        corp_name = c.corp_name, custom_id = c.custom_id or "", groupid = c.groupid,
        is_joined = c.corpid ~= nil,
    }
    -- joined or not: the doc's example (a corp that has not joined) has it
    out.qualification_status = c.qualification_status or 1
    return out
end

local function require_verified(req)
    if (req.F.upstream.qualification_status or 3) < 2 then
        fail(48002, "the upstream corp is not verified")
    end
end

function handlers.remove_corp(req)
    require_system(req)
    require_verified(req)
    local chain_id = req:str("chain_id", true)
    local _, state = get_chain(req, chain_id)
    find_corp(req, state) -- validates before taking the lock
    local corpid, pending = req:str("corpid"), req:str("pending_corpid")
    store.update("chain:" .. chain_id, seed_chain(req.F, chain_id), function(doc)
        for i, c in ipairs(doc.corps) do
            if (corpid and c.corpid == corpid) or (not corpid and c.pending_corpid == pending) then
                table.remove(doc.corps, i)
                return
            end
        end
        fail(40013, "corp is not in this chain")
    end)
    return {}
end

function handlers.get_chain_user_custom_id(req)
    local _, state, range = get_chain(req, req:str("chain_id", true))
    local corpid = req:str("corpid", true)
    local userid = req:str("userid", true, 41009)
    local corp
    for _, c in ipairs(state.corps) do
        if c.corpid == corpid then
            corp = c
        end
    end
    if not corp then
        fail(40013, "corp is not in this chain")
    end
    if not group_visible(range, corp.groupid) then
        fail(60011, "corp is not in the app's visible range")
    end
    local ids = corp.user_custom_ids or {}
    local known = req.F.corps[corpid]
    if ids[userid] == nil and not (known and known.users_by_id[userid]) then
        fail(60111, userid)
    end
    return { user_custom_id = ids[userid] or "" }
end

function handlers.get_corp_shared_chain_list(req)
    local corpid = req:str("corpid", true)
    local chains = json.array()
    for _, chain in ipairs(req.F.chain_list) do
        local state = chain_state(req.F, chain.chain_id)
        local range = range_of(req, chain.chain_id, state.groups)
        for _, c in ipairs(range and state.corps or {}) do
            if c.corpid == corpid and group_visible(range, c.groupid) then
                chains[#chains + 1] = { chain_id = chain.chain_id, chain_name = chain.chain_name }
                break
            end
        end
    end
    return { chains = chains }
end

-- Import jobs --------------------------------------------------------------

-- Walks a UTF-8 string; false on malformed input.
local function codepoints(s)
    local cps, i = {}, 1
    while i <= #s do
        local b = s:byte(i)
        local n, cp
        if b < 0x80 then
            n, cp = 1, b
        elseif b >= 0xC2 and b < 0xE0 then
            n, cp = 2, b - 0xC0
        elseif b >= 0xE0 and b < 0xF0 then
            n, cp = 3, b - 0xE0
        elseif b >= 0xF0 and b < 0xF5 then
            n, cp = 4, b - 0xF0
        else
            return false
        end
        for k = 1, n - 1 do
            local c = s:byte(i + k)
            if not c or c < 0x80 or c > 0xBF then
                return false
            end
            cp = cp * 64 + (c - 0x80)
        end
        cps[#cps + 1] = cp
        i = i + n
    end
    return cps
end

local function valid_corp_name(name)
    local cps = codepoints(name)
    if not cps or #cps < 1 or #cps > 32 then
        return false
    end
    for _, cp in ipairs(cps) do
        local ok = (cp >= 0x30 and cp <= 0x39) or (cp >= 0x41 and cp <= 0x5A) or (cp >= 0x61 and cp <= 0x7A)
            or cp == 0x20 or cp == 0x2D or cp == 0x5F or cp == 0x28 or cp == 0x29
            or cp == 0xFF08 or cp == 0xFF09 or (cp >= 0x4E00 and cp <= 0x9FFF) or (cp >= 0x3400 and cp <= 0x4DBF)
        if not ok then
            return false
        end
    end
    return true
end

local function valid_mobile(m)
    return m:match("^1%d%d%d%d%d%d%d%d%d%d$") ~= nil or m:match("^%+%d%d?%d?%d%d%d%d%d%d+$") ~= nil
end

local function valid_user_custom_id(s)
    if not s:match("^[1-9]%d*$") or #s == 11 or #s == 13 or #s > 20 then
        return false
    end
    -- at most 2^64-2
    return #s < 20 or s <= "18446744073709551614"
end

-- Per-corp result of an import: nil when the corp is fine, else its failure.
local function check_import_corp(item)
    local failure = { corp_name = item.corp_name, custom_id = item.custom_id or "",
        contact_info_list = json.array() }
    if not valid_corp_name(item.corp_name) then
        failure.errcode, failure.errmsg = 40058, "invalid corp_name"
        return failure
    end
    if item.custom_id and item.custom_id ~= "" and not item.custom_id:match("^[%w]+$")
        or item.custom_id and #item.custom_id > 64 then
        failure.errcode, failure.errmsg = 40058, "invalid custom_id"
        return failure
    end
    for _, contact in ipairs(item.contact_info_list) do
        local code, msg
        local ncps = type(contact.name) == "string" and codepoints(contact.name)
        if not ncps or #ncps < 1 or #ncps > 32 then
            code, msg = 60112, "invalid name"
        elseif contact.identity_type ~= 1 and contact.identity_type ~= 2 then
            code, msg = 670016, "invalid contact identity"
        elseif type(contact.mobile) ~= "string" or not valid_mobile(contact.mobile) then
            code, msg = 60103, "invalid mobile"
        elseif contact.user_custom_id ~= nil and (type(contact.user_custom_id) ~= "string"
            or not valid_user_custom_id(contact.user_custom_id)) then
            code, msg = 40058, "invalid user_custom_id"
        end
        if code then
            failure.contact_info_list[#failure.contact_info_list + 1] = {
                mobile = type(contact.mobile) == "string" and contact.mobile or "",
                errcode = code, errmsg = msg,
            }
        end
    end
    if #failure.contact_info_list > 0 then
        local first = failure.contact_info_list[1]
        failure.errcode, failure.errmsg = first.errcode, first.errmsg
        return failure
    end
    return nil
end

local function job_seconds()
    return store.option("job_seconds", 1)
end

local function job_status(job, now)
    local elapsed = now - job.created
    local total = job_seconds()
    if elapsed >= total then
        return 3
    elseif elapsed >= total / 5 then
        return 2
    end
    return 1
end

-- Finds or creates the group for a path like "华北区/北京市".
local function group_for_path(doc, path)
    local gid = 1
    for name in (path or ""):gmatch("[^/]+") do
        local found
        for _, g in ipairs(doc.groups) do
            if g.parentid == gid and g.group_name == name then
                found = g.groupid
            end
        end
        if not found then
            local max = 1
            for _, g in ipairs(doc.groups) do
                if g.groupid > max then
                    max = g.groupid
                end
            end
            found = max + 1
            doc.groups[#doc.groups + 1] = { groupid = found, group_name = name, parentid = gid, order = 0 }
        end
        gid = found
    end
    return gid
end

-- Applies a finished job to its chain once (new corps join as pending).
local function apply_job(F, job)
    store.update("chain:" .. job.chain_id, seed_chain(F, job.chain_id), function(doc)
        for _, item in ipairs(job.ok_corps) do
            local exists = false
            for _, c in ipairs(doc.corps) do
                if c.corp_name == item.corp_name or (item.custom_id ~= "" and c.custom_id == item.custom_id) then
                    exists = true
                end
            end
            if not exists then
                doc.corps[#doc.corps + 1] = {
                    pending_corpid = "pd" .. ngx.md5(job.chain_id .. "/" .. item.corp_name):sub(1, 22),
                    corp_name = item.corp_name, groupid = group_for_path(doc, item.group_path),
                    custom_id = item.custom_id, invite_userid = "",
                }
            end
        end
    end)
end

settle_jobs = function(F)
    local active = store.get("job_active")
    if not active then
        return
    end
    local job = store.get_json("job:" .. active)
    if not job or job.applied or job_status(job, store.now()) ~= 3 then
        return
    end
    store.with_lock("jobs", function()
        job = store.get_json("job:" .. active)
        if job and not job.applied then
            job.applied = true
            apply_job(F, job)
            store.set_json("job:" .. active, job)
            store.delete("job_active")
            -- §3.8/§9.6: the app that submitted the job hears it finished
            push.send_event(job.agentid,
                push.batch_job_xml(F.upstream.corpid, active, "import_chain_contact", store.now()),
                "batch_job_result")
        end
    end)
end
_M.settle_jobs = function(F)
    return settle_jobs(F)
end

-- Finishes the job when it is due on the emulator clock even if nobody asks
-- (so that batch_job_result is pushed); clock moves settle it at once.
local function watch_job(premature, F, jobid)
    if premature or store.get("job_active") ~= jobid then
        return
    end
    local job = store.get_json("job:" .. jobid)
    if not job then
        return
    end
    local remaining = job.created + job_seconds() - store.now()
    if remaining > 0 then
        ngx.timer.at(remaining, watch_job, F, jobid)
        return
    end
    local ok, err = pcall(settle_jobs, F)
    if not ok then
        ngx.log(ngx.ERR, "wecom emulator: settling import job: ", tostring(err))
    end
end

function handlers.import_chain_contact(req)
    require_system(req)
    require_verified(req)
    local chain_id = req:str("chain_id", true)
    get_chain(req, chain_id)
    local list = req:array("contact_list", true)
    if #list == 0 then
        fail(40058, "contact_list is empty")
    end
    local ok_corps, failures = json.array(), json.array()
    for i, item in ipairs(list) do
        local where = "contact_list[" .. (i - 1) .. "]"
        if type(item) ~= "table" or item[1] ~= nil then
            fail(40058, where .. " must be an object")
        end
        if type(item.corp_name) ~= "string" then
            fail(40058, "missing " .. where .. ".corp_name")
        end
        for _, field in ipairs { "group_path", "custom_id" } do
            if item[field] ~= nil and type(item[field]) ~= "string" then
                fail(40058, where .. "." .. field .. " must be a string")
            end
        end
        local contacts = item.contact_info_list
        if type(contacts) ~= "table" or (next(contacts) ~= nil and contacts[1] == nil) or #contacts == 0 then
            fail(40058, "missing " .. where .. ".contact_info_list")
        end
        for k, contact in ipairs(contacts) do
            if type(contact) ~= "table" or contact[1] ~= nil then
                fail(40058, where .. ".contact_info_list[" .. (k - 1) .. "] must be an object")
            end
            if contact.identity_type ~= nil and not is_integer(contact.identity_type) then
                fail(40058, where .. ".contact_info_list[" .. (k - 1) .. "].identity_type must be an integer")
            end
        end
        local failure = check_import_corp(item)
        if failure then
            failures[#failures + 1] = failure
        else
            ok_corps[#ok_corps + 1] = { corp_name = item.corp_name, custom_id = item.custom_id or "",
                group_path = item.group_path or "" }
        end
    end
    settle_jobs(req.F)
    return store.with_lock("jobs", function()
        if store.get("job_active") then
            fail(45033, "another import job is still running")
        end
        local jobid = store.unique("jobid_", 24)
        local status = #failures == 0 and 1 or (#ok_corps == 0 and 3 or 2)
        store.set_json("job:" .. jobid, {
            chain_id = chain_id, created = store.now(), ok_corps = ok_corps, fail_list = failures,
            import_status = status, agentid = req.token.agentid,
        })
        store.set("job_active", jobid)
        ngx.timer.at(0, watch_job, req.F, jobid)
        return { jobid = jobid }
    end)
end

function handlers.getresult(req)
    require_system(req)
    local jobid = req:str("jobid", true)
    local job = store.get_json("job:" .. jobid)
    if not job then
        fail(40058, "invalid jobid")
    end
    local status = job_status(job, store.now())
    local out = { status = status }
    if status == 3 then
        settle_jobs(req.F)
        out.result = { chain_id = job.chain_id, import_status = job.import_status,
            fail_list = json.array(job.fail_list) }
    end
    return out
end

-- Rules --------------------------------------------------------------------

local function rule_chain(req)
    require_system(req)
    local chain_id = req:str("chain_id", true)
    local chain = get_chain(req, chain_id)
    if chain.creator_corpid ~= req.F.upstream.corpid then
        fail(48002, "rules can only be managed by the corp that created the chain")
    end
    return chain_id
end

local function check_ids(list, field)
    if list == nil then
        return 0
    end
    if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
        fail(40058, field .. " must be an array")
    end
    for _, v in ipairs(list) do
        if type(v) ~= "string" and not is_integer(v) then
            fail(40058, field .. " must hold ids")
        end
    end
    return #list
end

local function check_rule_info(info)
    local owner, member = info.owner_corp_range, info.member_corp_range
    if type(owner) ~= "table" then
        fail(40058, "missing rule_info.owner_corp_range")
    end
    if type(member) ~= "table" then
        fail(40058, "missing rule_info.member_corp_range")
    end
    if check_ids(owner.departmentids, "owner_corp_range.departmentids")
        + check_ids(owner.userids, "owner_corp_range.userids") == 0 then
        fail(40058, "owner_corp_range needs departmentids or userids")
    end
    if check_ids(member.groupids, "member_corp_range.groupids")
        + check_ids(member.corpids, "member_corp_range.corpids") == 0 then
        fail(40058, "member_corp_range needs groupids or corpids")
    end
    return {
        owner_corp_range = { departmentids = json.array(owner.departmentids or {}),
            userids = json.array(owner.userids or {}) },
        member_corp_range = { groupids = json.array(member.groupids or {}),
            corpids = json.array(member.corpids or {}) },
    }
end

local function find_rule(rules, rule_id)
    for i, r in ipairs(rules) do
        if r.rule_id == rule_id then
            return r, i
        end
    end
    fail(40058, "invalid rule_id")
end

function handlers.list_ids(req)
    local chain_id = rule_chain(req)
    local doc = store.read("rules:" .. chain_id, seed_rules(req.F, chain_id))
    local ids = json.array()
    for _, r in ipairs(doc.rules) do
        ids[#ids + 1] = r.rule_id
    end
    return { rule_ids = ids }
end

function handlers.get_rule_info(req)
    local chain_id = rule_chain(req)
    local rule_id = req:int("rule_id", true)
    local doc = store.read("rules:" .. chain_id, seed_rules(req.F, chain_id))
    return { rule_info = find_rule(doc.rules, rule_id).rule_info }
end

function handlers.add_rule(req)
    local chain_id = rule_chain(req)
    local info = check_rule_info(req:object("rule_info", true))
    local id = store.update("rules:" .. chain_id, seed_rules(req.F, chain_id), function(doc)
        local rule_id = doc.next_id
        doc.next_id = rule_id + 1
        doc.rules[#doc.rules + 1] = { rule_id = rule_id, rule_info = info }
        return rule_id
    end)
    return { rule_id = id }
end

function handlers.modify_rule(req)
    local chain_id = rule_chain(req)
    local rule_id = req:int("rule_id", true)
    local info = check_rule_info(req:object("rule_info", true))
    store.update("rules:" .. chain_id, seed_rules(req.F, chain_id), function(doc)
        find_rule(doc.rules, rule_id).rule_info = info
    end)
    return {}
end

function handlers.delete_rule(req)
    local chain_id = rule_chain(req)
    local rule_id = req:int("rule_id", true)
    store.update("rules:" .. chain_id, seed_rules(req.F, chain_id), function(doc)
        local _, i = find_rule(doc.rules, rule_id)
        table.remove(doc.rules, i)
    end)
    return {}
end

-- unionid / external_userid / pending_id ----------------------------------

local function customer_for(req)
    local unionid = req:str("unionid", true)
    local openid = req:str("openid", true)
    local customer = req.F.customers[unionid]
    if customer and customer.openid ~= openid then
        fail(40058, "openid does not belong to this unionid")
    end
    return customer, unionid
end

-- Corps the calling app is shared to through 上下游.
local function shared_corps(req)
    local set = {}
    local shares = req.F.shares[req.token.agentid]
    for _, s in ipairs(shares and shares[1] or {}) do
        set[s.corpid] = true
    end
    return set
end

function handlers.unionid_to_external_userid(req)
    local customer = customer_for(req)
    local corpid = req:str("corpid")
    -- the upstream corp's quota, lifted by its mass_call_ticket (api/idconvert.lua)
    local idconvert = require "wecom.emulator.api.idconvert"
    if not idconvert.mass_call_ticket(req) then
        idconvert.take_quota("corpgroup:" .. req.token.corpid)
    end
    local shared = shared_corps(req)
    local list = json.array()
    for _, ext in ipairs(customer and customer.external_userids or {}) do
        if shared[ext.corpid] and (corpid == nil or ext.corpid == corpid) then
            list[#list + 1] = { corpid = ext.corpid, external_userid = ext.external_userid }
        end
    end
    return { external_userid_info = list }
end

function handlers.unionid_to_pending_id(req)
    local _, unionid = customer_for(req)
    -- its own quota of the upstream corp, the same numbers (reference §3.12)
    require("wecom.emulator.api.idconvert").take_quota("corpgroup_pending:" .. req.token.corpid)
    local agentid = req.token.agentid
    local pending_id = "p" .. ngx.md5(agentid .. "/" .. unionid):sub(1, 24)
    -- valid 90 days on the emulator clock
    store.set_json("pendingof:" .. agentid .. ":" .. unionid,
        { pending_id = pending_id, expires_at = store.now() + PENDING_TTL })
    return { pending_id = pending_id }
end

function handlers.external_userid_to_pending_id(req)
    local ids = req:array("external_userid", true)
    req:str("chat_id")
    if #ids > 100 then
        fail(40058, "external_userid holds more than 100 ids")
    end
    local result = json.array()
    for _, ext in ipairs(ids) do
        if type(ext) ~= "string" then
            fail(40058, "external_userid must hold strings")
        end
        local customer = req.F.external[ext]
        local pending = customer and store.get_json("pendingof:" .. req.token.agentid .. ":" .. customer.unionid)
        if pending and pending.expires_at > store.now() then
            result[#result + 1] = { external_userid = ext, pending_id = pending.pending_id }
        end
    end
    return { result = result }
end

-- upstream app tokens; the handler of each path is handlers[<last segment>]
_M.routes = {}
for method, paths in pairs {
    GET = { "corp/get_chain_list", "getresult" },
    POST = {
        "corp/get_chain_group", "corp/get_chain_corpinfo_list", "corp/get_chain_corpinfo", "corp/remove_corp",
        "corp/get_chain_user_custom_id", "get_corp_shared_chain_list", "import_chain_contact",
        "rule/list_ids", "rule/get_rule_info", "rule/add_rule", "rule/modify_rule", "rule/delete_rule",
        "unionid_to_external_userid", "unionid_to_pending_id", "batch/external_userid_to_pending_id",
    },
} do
    for _, path in ipairs(paths) do
        local fn = assert(handlers[path:match("[^/]*$")], path)
        _M.routes["/cgi-bin/corpgroup/" .. path] = { method = method, token = "upstream", fn = fn }
    end
end

return _M
