-- 上下游 (upstream/downstream chain) endpoints: `app.chain`.
--
-- Every method uses the upstream app's token.  Read-only POSTs are marked
-- idempotent so the client may retry them after a timeout; writes (remove,
-- import, rule add/modify/delete) are not.  Results are the interesting part
-- of the response (a list, an id, a record); failures are `nil, err`.
-- `is_joined` is always a boolean, whatever the server sent (0/1 or bool).

local error = error
local type = type
local pairs = pairs
local rawget = rawget
local _G = _G
local tostring = tostring
local setmetatable = setmetatable
local sort = table.sort
local pager = require "wecom.pager"
local errors = require "wecom.errors"
local require = require
local core = require "wecom.core"
local argcheck = require "wecom.argcheck"
local response = require "wecom.response"

local _M = {}

local mt = { __index = _M }

local READ = { idempotent = true }

local P = "/cgi-bin/corpgroup/"
local PATH = {
    list = P .. "corp/get_chain_list",
    groups = P .. "corp/get_chain_group",
    corp_list = P .. "corp/get_chain_corpinfo_list",
    corp_info = P .. "corp/get_chain_corpinfo",
    remove_corp = P .. "corp/remove_corp",
    user_custom_id = P .. "corp/get_chain_user_custom_id",
    shared_chains = P .. "get_corp_shared_chain_list",
    import = P .. "import_chain_contact",
    job_result = P .. "getresult",
    rule_ids = P .. "rule/list_ids",
    rule_info = P .. "rule/get_rule_info",
    add_rule = P .. "rule/add_rule",
    modify_rule = P .. "rule/modify_rule",
    delete_rule = P .. "rule/delete_rule",
    unionid_to_external_userid = P .. "unionid_to_external_userid",
    unionid_to_pending_id = P .. "unionid_to_pending_id",
    external_userid_to_pending_id = P .. "batch/external_userid_to_pending_id",
}
_M.PATH = PATH

local ROOT_GROUP = 1

-- Argument checks raise (a wrong argument is the caller's bug), naming the
-- method and the argument.
local check = argcheck.new("wecom.chain:")
local fail, need_string, opt_string = check.fail, check.need_string, check.opt_string
local need_int, opt_int, opt_bool, need_table = check.need_int, check.opt_int, check.opt_bool, check.need_table
local is_int = argcheck.is_int

-- 0/1, "0"/"1" or a boolean -> boolean.
local function joined(v)
    return v == true or v == 1 or v == "1"
end
_M.is_joined = joined

local function normalise_corp(corp)
    if type(corp) == "table" then
        if corp.is_joined == nil then
            -- only joined corps carry a corpid
            corp.is_joined = corp.corpid ~= nil and corp.corpid ~= ""
        else
            corp.is_joined = joined(corp.is_joined)
        end
    end
    return corp
end

local field, list_field = response.field, response.list

function _M.new(client)
    if type(client) ~= "table" then
        error("wecom.chain.new: client must be a client object (got " .. type(client) .. ")", 2)
    end
    return setmetatable({ client = client }, mt)
end

local function post(self, path, body, opts)
    return self.client:post(path, body, nil, opts)
end

-- list() -> { { chain_id =, chain_name = }, ... }
function _M:list()
    local data, err = self.client:get(PATH.list)
    if not data then
        return nil, err
    end
    return list_field(data, "chains", PATH.list)
end

-- groups(chain_id [, groupid]) -> { { groupid =, group_name =, parentid =, order = }, ... }
function _M:groups(chain_id, groupid)
    need_string("groups", "chain_id", chain_id)
    opt_int("groups", "groupid", groupid, 1)
    local data, err = post(self, PATH.groups, { chain_id = chain_id, groupid = groupid }, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "groups", PATH.groups)
end

-- WeCom's "no privilege": an app whose range is a few groups cannot list the root.
local NOT_VISIBLE = 60011

-- One group's corps, page by page.  skip_invisible: a root group outside the
-- app's range yields nothing instead of failing the whole walk.
local function group_corps(self, chain_id, groupid, need_pending, limit, seen, skip_invisible)
    local function fetch(cursor)
        local data, err = post(self, PATH.corp_list, {
            chain_id = chain_id,
            groupid = groupid,
            need_pending = need_pending or nil,
            limit = limit,
            cursor = cursor,
        }, READ)
        if not data then
            if skip_invisible and cursor == nil and err.errcode == NOT_VISIBLE then
                return {}, nil
            end
            return nil, err
        end
        local corps, lerr = list_field(data, "group_corps", PATH.corp_list)
        if not corps then
            return nil, lerr
        end
        -- a corp can sit in several groups of the walk: yield it once
        local out, n = {}, 0
        for i = 1, #corps do
            local corp = normalise_corp(corps[i])
            local key = corp.corpid
            if key == nil or key == "" then
                key = "pending:" .. tostring(corp.pending_corpid)
            end
            if not seen[key] then
                seen[key] = true
                n = n + 1
                out[n] = corp
            end
        end
        if data.has_more == false or data.has_more == 0 then
            return out, nil
        end
        if data.has_more == nil and limit == nil then
            return out, nil
        end
        return out, data.next_cursor
    end
    return pager.iterate(fetch, "chain:corps")
end

-- Depth first order of the group tree under `start` (larger `order` first,
-- like the admin console), each group once even if the data has a cycle.
-- whole_chain: also walk the top-most groups whose parent the app cannot see.
local function subtree(groups, start, whole_chain)
    local function before(a, b)
        local oa, ob = a.order or 0, b.order or 0
        if oa ~= ob then
            return oa > ob
        end
        return a.groupid < b.groupid
    end

    local children, known = {}, { [ROOT_GROUP] = true }
    for i = 1, #groups do
        local g = groups[i]
        if type(g) == "table" and is_int(g.groupid) then
            known[g.groupid] = true
        end
    end
    local orphans = {}
    for i = 1, #groups do
        local g = groups[i]
        if type(g) == "table" and is_int(g.groupid) and g.groupid ~= g.parentid then
            if known[g.parentid] then
                local list = children[g.parentid]
                if not list then
                    list = {}
                    children[g.parentid] = list
                end
                list[#list + 1] = g
            else
                orphans[#orphans + 1] = g
            end
        end
    end
    for _, list in pairs(children) do
        sort(list, before)
    end
    sort(orphans, before)

    local order, visited = {}, {}
    local function walk(id)
        if visited[id] then
            return
        end
        visited[id] = true
        order[#order + 1] = id
        local list = children[id]
        if list then
            for i = 1, #list do
                walk(list[i].groupid)
            end
        end
    end
    walk(start)
    if whole_chain then
        for i = 1, #orphans do
            walk(orphans[i].groupid)
        end
    end
    return order
end

-- corps{ chain_id, groupid, need_pending, recursive, limit } -> iterator
function _M:corps(opts)
    need_table("corps", "options", opts)
    local chain_id = need_string("corps", "chain_id", opts.chain_id)
    local groupid = opt_int("corps", "groupid", opts.groupid, 1)
    local need_pending = opt_bool("corps", "need_pending", opts.need_pending)
    local recursive = opt_bool("corps", "recursive", opts.recursive)
    local limit = opt_int("corps", "limit", opts.limit, 1)
    local seen = {}

    if not recursive then
        return group_corps(self, chain_id, groupid, need_pending, limit, seen)
    end

    -- The group list is fetched on the first step, not when the loop is set up.
    local order, i = nil, 0
    return pager.concat(function()
        if order == nil then
            local groups, err = self:groups(chain_id)
            if not groups then
                error(err, 0)
            end
            order = subtree(groups, groupid or ROOT_GROUP, groupid == nil)
        end
        i = i + 1
        local id = order[i]
        if id == nil then
            return nil
        end
        -- the implicit root is asked for without a groupid, as WeCom documents
        -- it, and may lie outside an app's range while its subgroups do not
        if i == 1 and groupid == nil then
            return group_corps(self, chain_id, nil, need_pending, limit, seen, true)
        end
        return group_corps(self, chain_id, id, need_pending, limit, seen)
    end)
end

-- corp_info{ chain_id, corpid | pending_corpid } -> { corp_name, qualification_status,
-- custom_id, groupid, is_joined (boolean) }
function _M:corp_info(opts)
    need_table("corp_info", "options", opts)
    local body = {
        chain_id = need_string("corp_info", "chain_id", opts.chain_id),
        corpid = opt_string("corp_info", "corpid", opts.corpid),
        pending_corpid = opt_string("corp_info", "pending_corpid", opts.pending_corpid),
    }
    if body.corpid == nil and body.pending_corpid == nil then
        error("wecom.chain:corp_info: corpid or pending_corpid is required", 2)
    end
    local data, err = post(self, PATH.corp_info, body, READ)
    if not data then
        return nil, err
    end
    data.errcode, data.errmsg = nil, nil
    return normalise_corp(data)
end

-- remove_corp{ chain_id, corpid | pending_corpid } -> true
function _M:remove_corp(opts)
    need_table("remove_corp", "options", opts)
    local body = {
        chain_id = need_string("remove_corp", "chain_id", opts.chain_id),
        corpid = opt_string("remove_corp", "corpid", opts.corpid),
        pending_corpid = opt_string("remove_corp", "pending_corpid", opts.pending_corpid),
    }
    if body.corpid == nil and body.pending_corpid == nil then
        error("wecom.chain:remove_corp: corpid or pending_corpid is required", 2)
    end
    local data, err = post(self, PATH.remove_corp, body)
    if not data then
        return nil, err
    end
    return true
end

-- user_custom_id{ chain_id, corpid, userid } -> string
function _M:user_custom_id(opts)
    need_table("user_custom_id", "options", opts)
    local body = {
        chain_id = need_string("user_custom_id", "chain_id", opts.chain_id),
        corpid = need_string("user_custom_id", "corpid", opts.corpid),
        userid = need_string("user_custom_id", "userid", opts.userid),
    }
    local data, err = post(self, PATH.user_custom_id, body, READ)
    if not data then
        return nil, err
    end
    return field(data, "user_custom_id", "string", PATH.user_custom_id)
end

-- corp_shared_chains(corpid) -> { { chain_id =, chain_name = }, ... }
function _M:corp_shared_chains(corpid)
    need_string("corp_shared_chains", "corpid", corpid)
    local data, err = post(self, PATH.shared_chains, { corpid = corpid }, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "chains", PATH.shared_chains)
end

-- import_contacts{ chain_id, contact_list } -> jobid
function _M:import_contacts(opts)
    need_table("import_contacts", "options", opts)
    local body = {
        chain_id = need_string("import_contacts", "chain_id", opts.chain_id),
        contact_list = need_table("import_contacts", "contact_list", opts.contact_list),
    }
    if #body.contact_list == 0 then
        error("wecom.chain:import_contacts: contact_list must not be empty", 2)
    end
    for i = 1, #body.contact_list do
        local c = body.contact_list[i]
        if type(c) ~= "table" then
            fail("import_contacts", "contact_list[" .. i .. "]", "a table", c)
        end
        need_string("import_contacts", "contact_list[" .. i .. "].corp_name", c.corp_name)
        need_table("import_contacts", "contact_list[" .. i .. "].contact_info_list", c.contact_info_list)
    end
    local data, err = post(self, PATH.import, body)
    if not data then
        return nil, err
    end
    return field(data, "jobid", "string", PATH.import)
end

-- job_result(jobid) -> { status = 1|2|3, result = {...} }
function _M:job_result(jobid)
    need_string("job_result", "jobid", jobid)
    local data, err = self.client:get(PATH.job_result, { jobid = jobid })
    if not data then
        return nil, err
    end
    local status, serr = field(data, "status", "number", PATH.job_result)
    if not status then
        return nil, serr
    end
    return { status = status, result = data.result }
end

local function sleeper()
    -- inside nginx a blocking sleep would stall the worker
    local ngx = rawget(_G, "ngx")
    if ngx and ngx.sleep and ngx.get_phase and ngx.get_phase() ~= "init" then
        return ngx.sleep
    end
    -- yields to the scheduler inside wecom.parallel, blocks otherwise
    return require("wecom.parallel").sleep
end

local function clock()
    return core.monotonic()
end

-- wait_job(jobid [, { timeout = 60, interval = 1 }]) -> result (status 3)
function _M:wait_job(jobid, opts)
    need_string("wait_job", "jobid", jobid)
    if opts ~= nil then
        need_table("wait_job", "options", opts)
    end
    opts = opts or {}
    local timeout = opts.timeout or 60
    local interval = opts.interval or 1
    if type(timeout) ~= "number" or timeout < 0 then
        fail("wait_job", "timeout", "a number >= 0", timeout)
    end
    if type(interval) ~= "number" or interval <= 0 then
        fail("wait_job", "interval", "a number > 0", interval)
    end

    local sleep = sleeper()
    local deadline = clock() + timeout
    while true do
        local job, err = self:job_result(jobid)
        if not job then
            return nil, err
        end
        if job.status == 3 then
            return job.result or {}
        end
        local left = deadline - clock()
        if left <= 0 then
            return nil, errors.new("timeout", "import job not finished after " .. timeout .. "s (status "
                .. tostring(job.status) .. ")", { method = "GET", path = PATH.job_result })
        end
        sleep(interval < left and interval or left)
    end
end

-- rules(chain_id) -> { rule_id, ... }
function _M:rules(chain_id)
    need_string("rules", "chain_id", chain_id)
    local data, err = post(self, PATH.rule_ids, { chain_id = chain_id }, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "rule_ids", PATH.rule_ids)
end

-- rule(chain_id, rule_id) -> rule_info
function _M:rule(chain_id, rule_id)
    need_string("rule", "chain_id", chain_id)
    need_int("rule", "rule_id", rule_id)
    local data, err = post(self, PATH.rule_info, { chain_id = chain_id, rule_id = rule_id }, READ)
    if not data then
        return nil, err
    end
    return field(data, "rule_info", "table", PATH.rule_info)
end

local function check_rule_info(method, info)
    need_table(method, "rule_info", info, 1)
    need_table(method, "rule_info.owner_corp_range", info.owner_corp_range, 1)
    need_table(method, "rule_info.member_corp_range", info.member_corp_range, 1)
end

-- add_rule(chain_id, rule_info) -> rule_id
function _M:add_rule(chain_id, rule_info)
    need_string("add_rule", "chain_id", chain_id)
    check_rule_info("add_rule", rule_info)
    local data, err = post(self, PATH.add_rule, { chain_id = chain_id, rule_info = rule_info })
    if not data then
        return nil, err
    end
    return field(data, "rule_id", "number", PATH.add_rule)
end

-- modify_rule(chain_id, rule_id, rule_info) -> true
function _M:modify_rule(chain_id, rule_id, rule_info)
    need_string("modify_rule", "chain_id", chain_id)
    need_int("modify_rule", "rule_id", rule_id)
    check_rule_info("modify_rule", rule_info)
    local data, err = post(self, PATH.modify_rule,
        { chain_id = chain_id, rule_id = rule_id, rule_info = rule_info })
    if not data then
        return nil, err
    end
    return true
end

-- delete_rule(chain_id, rule_id) -> true
function _M:delete_rule(chain_id, rule_id)
    need_string("delete_rule", "chain_id", chain_id)
    need_int("delete_rule", "rule_id", rule_id)
    local data, err = post(self, PATH.delete_rule, { chain_id = chain_id, rule_id = rule_id })
    if not data then
        return nil, err
    end
    return true
end

-- unionid_to_external_userid{ unionid, openid, corpid?, mass_call_ticket? }
--   -> { { corpid =, external_userid = }, ... }
function _M:unionid_to_external_userid(opts)
    local m = "unionid_to_external_userid"
    need_table(m, "options", opts)
    local body = {
        unionid = need_string(m, "unionid", opts.unionid),
        openid = need_string(m, "openid", opts.openid),
        corpid = opt_string(m, "corpid", opts.corpid),
        mass_call_ticket = opt_string(m, "mass_call_ticket", opts.mass_call_ticket),
    }
    local data, err = post(self, PATH.unionid_to_external_userid, body, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "external_userid_info", PATH.unionid_to_external_userid)
end

-- unionid_to_pending_id{ unionid, openid } -> pending_id
function _M:unionid_to_pending_id(opts)
    local m = "unionid_to_pending_id"
    need_table(m, "options", opts)
    local body = {
        unionid = need_string(m, "unionid", opts.unionid),
        openid = need_string(m, "openid", opts.openid),
    }
    -- not a pure read (it mints the pending id), but asking twice yields the same id
    local data, err = post(self, PATH.unionid_to_pending_id, body, READ)
    if not data then
        return nil, err
    end
    return field(data, "pending_id", "string", PATH.unionid_to_pending_id)
end

-- external_userid_to_pending_id{ external_userid = { ... } (<= 100), chat_id? }
--   -> { { external_userid =, pending_id = }, ... }
function _M:external_userid_to_pending_id(opts)
    local m = "external_userid_to_pending_id"
    need_table(m, "options", opts)
    local ids = need_table(m, "external_userid", opts.external_userid)
    if #ids == 0 or #ids > 100 then
        error("wecom.chain:" .. m .. ": external_userid must hold 1 to 100 ids (got " .. #ids .. ")", 2)
    end
    for i = 1, #ids do
        need_string(m, "external_userid[" .. i .. "]", ids[i])
    end
    local body = { external_userid = ids, chat_id = opt_string(m, "chat_id", opts.chat_id) }
    local data, err = post(self, PATH.external_userid_to_pending_id, body, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "result", PATH.external_userid_to_pending_id)
end

return _M
