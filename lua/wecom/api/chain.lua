-- 上下游 (upstream/downstream chain) endpoints: `app.chain` (wecom.api.chain).
--
-- Every method uses the upstream app's token.  Read-only POSTs are marked
-- idempotent so the client may retry them after a timeout; writes (remove,
-- import, rule add/modify/delete) are not.  Results are the interesting part
-- of the response (a list, an id, a record); failures are `nil, err`.
-- `is_joined` is always a boolean, whatever the server sent (0/1 or bool).

local error = error
local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local sort = table.sort

local core = require "wecom.core"
local errors = require "wecom.errors"
local pager = require "wecom.pager"
local parallel = require "wecom.parallel"
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
-- method as users write it and the argument:
--   wecom.chain:groups: chain_id must be a non-empty string (got nil)
local need, opt, options, usage = errors.need, errors.opt, errors.options, errors.usage
local STRING, POSITIVE, INTEGER, BOOLEAN, TABLE = errors.string, errors.positive, errors.integer,
    errors.boolean, errors.table

local function W(method)
    return "wecom.chain:" .. method
end

local function is_int(v)
    return errors.is_integer(v, -2^53, 2^53)
end

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
local field_of, list_of, done = response.field_of, response.list_of, response.done

function _M.new(client)
    need("wecom.chain.new", "client", client, TABLE)
    return setmetatable({ client = client }, mt)
end

local function post(self, path, body, opts)
    return self.client:post(path, body, nil, opts)
end

-- list() -> { { chain_id =, chain_name = }, ... }
function _M:list()
    return list_of("chains", PATH.list, self.client:get(PATH.list))
end

-- groups(chain_id [, groupid]) -> { { groupid =, group_name =, parentid =, order = }, ... }
function _M:groups(chain_id, groupid)
    need(W "groups", "chain_id", chain_id, STRING)
    opt(W "groups", "groupid", groupid, POSITIVE)
    return list_of("groups", PATH.groups,
        post(self, PATH.groups, { chain_id = chain_id, groupid = groupid }, READ))
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

local CORPS_OPTIONS = {
    chain_id = STRING, groupid = POSITIVE, need_pending = BOOLEAN, recursive = BOOLEAN, limit = POSITIVE,
}
local CHAIN_ID = { "chain_id" }

-- corps{ chain_id, groupid, need_pending, recursive, limit } -> iterator
function _M:corps(opts)
    options(W "corps", opts, CORPS_OPTIONS, CHAIN_ID)
    local chain_id, groupid, limit = opts.chain_id, opts.groupid, opts.limit
    local need_pending, recursive = opts.need_pending, opts.recursive
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

local CORP_OPTIONS = { chain_id = STRING, corpid = STRING, pending_corpid = STRING }

-- { chain_id, corpid | pending_corpid } checked, for corp_info and remove_corp
local function corp_body(method, opts)
    options(W(method), opts, CORP_OPTIONS, CHAIN_ID, 3)
    if opts.corpid == nil and opts.pending_corpid == nil then
        usage(W(method), "opts.corpid or opts.pending_corpid is required", 3)
    end
    return { chain_id = opts.chain_id, corpid = opts.corpid, pending_corpid = opts.pending_corpid }
end

-- corp_info{ chain_id, corpid | pending_corpid } -> { corp_name, qualification_status,
-- custom_id, groupid, is_joined (boolean) }
function _M:corp_info(opts)
    local body = corp_body("corp_info", opts)
    local data, err = post(self, PATH.corp_info, body, READ)
    if not data then
        return nil, err
    end
    data.errcode, data.errmsg = nil, nil
    return normalise_corp(data)
end

-- remove_corp{ chain_id, corpid | pending_corpid } -> true
function _M:remove_corp(opts)
    local body = corp_body("remove_corp", opts)
    return done(post(self, PATH.remove_corp, body))
end

-- user_custom_id{ chain_id, corpid, userid } -> string
local USER_CUSTOM_ID_OPTIONS = { chain_id = STRING, corpid = STRING, userid = STRING }
local USER_CUSTOM_ID_REQUIRED = { "chain_id", "corpid", "userid" }

function _M:user_custom_id(opts)
    options(W "user_custom_id", opts, USER_CUSTOM_ID_OPTIONS, USER_CUSTOM_ID_REQUIRED)
    local body = { chain_id = opts.chain_id, corpid = opts.corpid, userid = opts.userid }
    return field_of("user_custom_id", "string", PATH.user_custom_id,
        post(self, PATH.user_custom_id, body, READ))
end

-- corp_shared_chains(corpid) -> { { chain_id =, chain_name = }, ... }
function _M:corp_shared_chains(corpid)
    need(W "corp_shared_chains", "corpid", corpid, STRING)
    return list_of("chains", PATH.shared_chains, post(self, PATH.shared_chains, { corpid = corpid }, READ))
end

-- import_contacts{ chain_id, contact_list } -> jobid
local IMPORT_OPTIONS = { chain_id = STRING, contact_list = TABLE }
local IMPORT_REQUIRED = { "chain_id", "contact_list" }

function _M:import_contacts(opts)
    local where = W "import_contacts"
    options(where, opts, IMPORT_OPTIONS, IMPORT_REQUIRED)
    local body = { chain_id = opts.chain_id, contact_list = opts.contact_list }
    if #body.contact_list == 0 then
        usage(where, "opts.contact_list must not be empty")
    end
    for i = 1, #body.contact_list do
        local c = body.contact_list[i]
        local name = "opts.contact_list[" .. i .. "]"
        need(where, name, c, TABLE)
        need(where, name .. ".corp_name", c.corp_name, STRING)
        need(where, name .. ".contact_info_list", c.contact_info_list, TABLE)
    end
    return field_of("jobid", "string", PATH.import, post(self, PATH.import, body))
end

-- job_result(jobid) -> { status = 1|2|3, result = {...} }
function _M:job_result(jobid)
    need(W "job_result", "jobid", jobid, STRING)
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

local function clock()
    return core.monotonic()
end

local WAIT_OPTIONS = {
    timeout = errors.kind("a number of seconds >= 0", function(v) return type(v) == "number" and v >= 0 end),
    interval = errors.kind("a number of seconds > 0", function(v) return type(v) == "number" and v > 0 end),
}

-- wait_job(jobid [, { timeout = 60, interval = 1 }]) -> result (status 3)
-- Waits with wecom.parallel's sleep: it yields inside wecom.parallel and
-- inside nginx (ngx.sleep), and blocks only where nothing else can run.
function _M:wait_job(jobid, opts)
    local where = W "wait_job"
    need(where, "jobid", jobid, STRING)
    if opts ~= nil then
        options(where, opts, WAIT_OPTIONS)
    end
    opts = opts or {}
    local timeout = opts.timeout or 60
    local interval = opts.interval or 1

    local sleep = parallel.sleep
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
    need(W "rules", "chain_id", chain_id, STRING)
    return list_of("rule_ids", PATH.rule_ids, post(self, PATH.rule_ids, { chain_id = chain_id }, READ))
end

-- rule(chain_id, rule_id) -> rule_info
function _M:rule(chain_id, rule_id)
    need(W "rule", "chain_id", chain_id, STRING)
    need(W "rule", "rule_id", rule_id, INTEGER)
    return field_of("rule_info", "table", PATH.rule_info,
        post(self, PATH.rule_info, { chain_id = chain_id, rule_id = rule_id }, READ))
end

-- the chain_id, rule_id and rule_info arguments of the rule writes
local function check_rule(method, chain_id, rule_id, info)
    local where = W(method)
    need(where, "chain_id", chain_id, STRING, 3)
    if rule_id ~= false then
        need(where, "rule_id", rule_id, INTEGER, 3)
    end
    if info ~= false then
        need(where, "rule_info", info, TABLE, 3)
        need(where, "rule_info.owner_corp_range", info.owner_corp_range, TABLE, 3)
        need(where, "rule_info.member_corp_range", info.member_corp_range, TABLE, 3)
    end
end

-- add_rule(chain_id, rule_info) -> rule_id
function _M:add_rule(chain_id, rule_info)
    check_rule("add_rule", chain_id, false, rule_info)
    return field_of("rule_id", "number", PATH.add_rule,
        post(self, PATH.add_rule, { chain_id = chain_id, rule_info = rule_info }))
end

-- modify_rule(chain_id, rule_id, rule_info) -> true
function _M:modify_rule(chain_id, rule_id, rule_info)
    check_rule("modify_rule", chain_id, rule_id, rule_info)
    return done(post(self, PATH.modify_rule,
        { chain_id = chain_id, rule_id = rule_id, rule_info = rule_info }))
end

-- delete_rule(chain_id, rule_id) -> true
function _M:delete_rule(chain_id, rule_id)
    check_rule("delete_rule", chain_id, rule_id, false)
    return done(post(self, PATH.delete_rule, { chain_id = chain_id, rule_id = rule_id }))
end

-- unionid_to_external_userid{ unionid, openid, corpid?, mass_call_ticket? }
--   -> { { corpid =, external_userid = }, ... }
-- The stored mass-call ticket (app:mass_call_ticket) goes along unless one
-- is given (false: none).
local idconvert = require "wecom.api.idconvert"
local UNIONID_OPTIONS = { unionid = STRING, openid = STRING, corpid = STRING, mass_call_ticket = idconvert.TICKET }
local UNIONID_REQUIRED = { "unionid", "openid" }

function _M:unionid_to_external_userid(opts)
    options(W "unionid_to_external_userid", opts, UNIONID_OPTIONS, UNIONID_REQUIRED)
    local body = { unionid = opts.unionid, openid = opts.openid, corpid = opts.corpid,
        mass_call_ticket = idconvert.ticket_for(self.client, opts.mass_call_ticket) }
    return list_of("external_userid_info", PATH.unionid_to_external_userid,
        post(self, PATH.unionid_to_external_userid, body, READ))
end

-- unionid_to_pending_id{ unionid, openid } -> pending_id
local PENDING_OPTIONS = { unionid = STRING, openid = STRING }

function _M:unionid_to_pending_id(opts)
    options(W "unionid_to_pending_id", opts, PENDING_OPTIONS, UNIONID_REQUIRED)
    local body = { unionid = opts.unionid, openid = opts.openid }
    -- not a pure read (it mints the pending id), but asking twice yields the same id
    return field_of("pending_id", "string", PATH.unionid_to_pending_id,
        post(self, PATH.unionid_to_pending_id, body, READ))
end

-- external_userid_to_pending_id{ external_userid = { ... } (<= 100), chat_id? }
--   -> { { external_userid =, pending_id = }, ... }
local EXTERNAL_OPTIONS = { external_userid = TABLE, chat_id = STRING }
local EXTERNAL_REQUIRED = { "external_userid" }
local MAX_EXTERNAL_IDS = 100

function _M:external_userid_to_pending_id(opts)
    local where = W "external_userid_to_pending_id"
    options(where, opts, EXTERNAL_OPTIONS, EXTERNAL_REQUIRED)
    local ids = opts.external_userid
    if #ids == 0 or #ids > MAX_EXTERNAL_IDS then
        usage(where, "opts.external_userid must hold 1 to " .. MAX_EXTERNAL_IDS .. " ids (got " .. #ids .. ")")
    end
    for i = 1, #ids do
        need(where, "opts.external_userid[" .. i .. "]", ids[i], STRING)
    end
    local body = { external_userid = ids, chat_id = opts.chat_id }
    return list_of("result", PATH.external_userid_to_pending_id,
        post(self, PATH.external_userid_to_pending_id, body, READ))
end

return _M
