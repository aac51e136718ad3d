-- wecom.api.idconvert: the account-ID upgrade's conversions on a corp client
-- (reference/wecom-provider-api.md §6.2, §7, §8; doc 35863 -> 96516):
--
--   client:userid_to_openuserid(userids)          --> { [userid] = open_userid }, invalid
--   client:openuserid_to_userid(ids, source_agentid) --> { [open_userid] = userid }, invalid
--   client:to_service_external_userid(id)         --> the third-party form (代开发 token)
--   client:from_service_external_userid(id, source_agentid) --> the corp's own form (self-built)
--   client:get_new_external_userid(ids [, { chat_id }]) --> { [old] = new }
--   client:unionid_to_external_userid{ unionid, openid, subject_type } --> { external_userid | pending_id }
--   client:external_userid_to_pending_id(ids [, { chat_id }]) --> { [external_userid] = pending_id }
--   client:mass_call_ticket()                     --> ticket, expires_at (kept in the store)
--   client:each_unionid(items [, opts])           --> iterator of i, result | nil, err (paced)
--   client:convert_unionids(items [, opts])       --> results | results, err
--
-- Which token each needs (WeCom checks it, these functions do not): a
-- third-party app's authorized-corp client or a 代开发 app's client for
-- userid_to_openuserid, to_service, get_new, idconvert/*; a self-built app's
-- for openuserid_to_userid and from_service; the mass-call ticket for all
-- three kinds (an upstream 上下游 self-built app included).
--
-- Lists of any length are sent in WeCom's batch sizes, one call after the
-- other; a failure part-way returns nil, err with err.done = how many of the
-- ids were converted before it (call again with the rest).  Encrypted ids
-- (open_userid, open corpid, the new external_userid) are case-sensitive:
-- they are compared and stored exactly as WeCom sent them.

local ipairs = ipairs
local math_ceil = math.ceil
local math_huge = math.huge
local pairs = pairs
local pcall = pcall
local error = error
local type = type
local tostring = tostring

local budget = require "wecom.budget"
local core = require "wecom.core"
local errors = require "wecom.errors"
local parallel = require "wecom.parallel"
local response = require "wecom.response"
local retry = require "wecom.retry"
local token = require "wecom.token"

local _M = {}

local PATH = {
    userid_to_openuserid = "/cgi-bin/batch/userid_to_openuserid",
    openuserid_to_userid = "/cgi-bin/batch/openuserid_to_userid",
    to_service_external_userid = "/cgi-bin/externalcontact/to_service_external_userid",
    from_service_external_userid = "/cgi-bin/externalcontact/from_service_external_userid",
    get_new_external_userid = "/cgi-bin/externalcontact/get_new_external_userid",
    get_new_chat_external_userid = "/cgi-bin/externalcontact/groupchat/get_new_external_userid",
    unionid_to_external_userid = "/cgi-bin/idconvert/unionid_to_external_userid",
    external_userid_to_pending_id = "/cgi-bin/idconvert/batch/external_userid_to_pending_id",
    apply_mass_call_ticket = "/cgi-bin/corp/apply_mass_call_ticket",
}
_M.PATH = PATH

-- WeCom's batch sizes
_M.MAX_USERIDS = 1000          -- userid_to_openuserid, openuserid_to_userid (97062, 95884)
_M.MAX_EXTERNAL_USERIDS = 1000 -- get_new_external_userid
_M.MAX_PENDING_IDS = 100       -- idconvert/batch/external_userid_to_pending_id

-- 96250: valid 7 days, obtainable once per corp in the 3 months after authorization
_M.MASS_CALL_LIFETIME = 7 * 86400

local READ = { idempotent = true }

local need = errors.need
local STRING = errors.string
local SUBJECT_TYPE = errors.kind("0 (the corp's own mini program or official account) or 1 (the provider's)",
    function(v) return v == 0 or v == 1 end)
local AGENTID = errors.id

local function W(method)
    return "wecom:" .. method
end

-- ids(where, name, list, level) -> list: a list of non-empty strings (raises)
local function check_ids(where, name, list, level)
    level = (level or 2) + 1
    need(where, name, list, errors.table, level)
    local n = #list
    for i = 1, n do
        need(where, name .. "[" .. i .. "]", list[i], STRING, level)
    end
    return list
end

-- unique(list) -> the list without repeats, first occurrence kept
local function unique(list)
    local seen, out = {}, {}
    for _, v in ipairs(list) do
        if not seen[v] then
            seen[v] = true
            out[#out + 1] = v
        end
    end
    return out
end

-- batches(client, ids, size, call) -> true | nil, err
-- call(batch) -> true | nil, err, for every slice of at most `size` ids in
-- order; err.done counts the ids of the batches that went through.
local function batches(ids, size, call)
    local n = #ids
    local first = 1
    while first <= n do
        local last = first + size - 1
        if last > n then
            last = n
        end
        local batch = {}
        for i = first, last do
            batch[#batch + 1] = ids[i]
        end
        local ok, err = call(batch)
        if not ok then
            err.done = first - 1
            return nil, err
        end
        first = last + 1
    end
    return true
end

-- pairs_of(data, list_name, from, to, path, into) -> true | nil, err
-- Copies { [rec[from]] = rec[to] } of the answer's list into `into`.
local function pairs_of(data, list_name, from, to, path, into)
    local list, err = response.list(data, list_name, path)
    if not list then
        return nil, err
    end
    for _, rec in ipairs(list) do
        if type(rec) == "table" and type(rec[from]) == "string" and type(rec[to]) == "string" then
            into[rec[from]] = rec[to]
        end
    end
    return true
end

local function invalid_into(data, name, path, into)
    local list, err = response.list(data, name, path)
    if not list then
        return nil, err
    end
    for _, id in ipairs(list) do
        if type(id) == "string" then
            into[#into + 1] = id
        end
    end
    return true
end

-- convert(client, ids, c) -> map, invalid | nil, err: the ids (repeats
-- dropped) in batches of c.size, each POSTed to c.path as c.body(batch);
-- every answer's list c.list of { [c.from] =, [c.to] = } records fills the
-- map, and with c.invalid the answer's list of that name fills `invalid`.
local function convert(client, ids, c)
    local path, map, invalid = c.path, {}, c.invalid and {} or nil
    local ok, err = batches(unique(ids), c.size, function(batch)
        local data, perr = client:post(path, c.body(batch), nil, READ)
        if not data then
            return nil, perr
        end
        local done, derr = pairs_of(data, c.list, c.from, c.to, path, map)
        if not done or not invalid then
            return done, derr
        end
        return invalid_into(data, c.invalid, path, invalid)
    end)
    if not ok then
        return nil, err
    end
    return map, invalid
end

local CHAT_OPTIONS = { chat_id = STRING }

-- chat_id_of(where, opts) -> opts.chat_id: the optional { chat_id = } (raises)
local function chat_id_of(where, opts)
    if opts == nil then
        return nil
    end
    errors.options(where, opts, CHAT_OPTIONS, nil, 3)
    return opts.chat_id
end

---------------------------------------------------------------------------
-- userid <-> open_userid
---------------------------------------------------------------------------

-- userid_to_openuserid(client, userids) -> { [userid] = open_userid }, invalid
function _M.userid_to_openuserid(client, userids)
    check_ids(W "userid_to_openuserid", "userids", userids)
    return convert(client, userids, {
        path = PATH.userid_to_openuserid, size = _M.MAX_USERIDS,
        body = function(batch) return { userid_list = batch } end,
        list = "open_userid_list", from = "userid", to = "open_userid", invalid = "invalid_userid_list",
    })
end

-- openuserid_to_userid(client, open_userids, source_agentid) -> { [open_userid] = userid }, invalid
-- source_agentid: the agentid, in this corp, of the third-party or 代开发 app
-- the open_userids came from.
function _M.openuserid_to_userid(client, open_userids, source_agentid)
    local where = W "openuserid_to_userid"
    check_ids(where, "open_userids", open_userids)
    need(where, "source_agentid", source_agentid, AGENTID)
    return convert(client, open_userids, {
        path = PATH.openuserid_to_userid, size = _M.MAX_USERIDS,
        body = function(batch) return { open_userid_list = batch, source_agentid = source_agentid } end,
        list = "userid_list", from = "open_userid", to = "userid", invalid = "invalid_open_userid_list",
    })
end

---------------------------------------------------------------------------
-- external_userid
---------------------------------------------------------------------------

local function one_external(client, path, body)
    return response.field_of("external_userid", "string", path, client:post(path, body, nil, READ))
end

-- to_service_external_userid(client, external_userid) -> the third-party
-- app's external_userid (called with a 代开发 app's client)
function _M.to_service_external_userid(client, external_userid)
    need(W "to_service_external_userid", "external_userid", external_userid, STRING)
    return one_external(client, PATH.to_service_external_userid, { external_userid = external_userid })
end

-- from_service_external_userid(client, external_userid, source_agentid) ->
-- the corp's own external_userid (called with a self-built app's client)
function _M.from_service_external_userid(client, external_userid, source_agentid)
    local where = W "from_service_external_userid"
    need(where, "external_userid", external_userid, STRING)
    need(where, "source_agentid", source_agentid, AGENTID)
    return one_external(client, PATH.from_service_external_userid,
        { external_userid = external_userid, source_agentid = source_agentid })
end

-- get_new_external_userid(client, ids [, { chat_id = }]) -> { [old] = new }
-- Ids WeCom cannot convert are absent from the map.  With chat_id: the
-- customers of that customer group (groupchat/get_new_external_userid).
function _M.get_new_external_userid(client, ids, opts)
    local where = W "get_new_external_userid"
    check_ids(where, "external_userids", ids)
    local chat_id = chat_id_of(where, opts)
    return (convert(client, ids, {
        path = chat_id and PATH.get_new_chat_external_userid or PATH.get_new_external_userid,
        size = _M.MAX_EXTERNAL_USERIDS,
        body = function(batch) return { chat_id = chat_id, external_userid_list = batch } end,
        list = "items", from = "external_userid", to = "new_external_userid",
    }))
end

-- external_userid_to_pending_id(client, ids [, { chat_id = }]) -> { [external_userid] = pending_id }
-- (idconvert/batch: the third-party form; app.chain has the 上下游 one)
function _M.external_userid_to_pending_id(client, ids, opts)
    local where = W "external_userid_to_pending_id"
    check_ids(where, "external_userids", ids)
    local chat_id = chat_id_of(where, opts)
    return (convert(client, ids, {
        path = PATH.external_userid_to_pending_id, size = _M.MAX_PENDING_IDS,
        body = function(batch) return { chat_id = chat_id, external_userid = batch } end,
        list = "result", from = "external_userid", to = "pending_id",
    }))
end

---------------------------------------------------------------------------
-- Mass-call ticket (96250)
---------------------------------------------------------------------------

-- The ticket is the corp's, obtainable once: its key names the corp and the
-- server only (not the app's secret, which may rotate, nor its token).  The
-- key is in wecom.token's scheme; the constant stands where an app key has
-- a secret's hash, so it can never be an app's token key.
local MASS_CALL_KEY_SALT = "wecom: mass_call_ticket"

-- the ticket's single flight, written with the store's durable write
local function durable_flight(client)
    local opts = token.flight_opts(client.timeout or 5, client.retries or 2, retry.MAX_BACKOFF)
    opts.durable = true
    return opts
end

function _M.mass_call_key(client)
    return token.ticket_key(token.app_key(client.corpid, nil, MASS_CALL_KEY_SALT, client.base_url), "mass_call")
end

-- cached_mass_call_ticket(client) -> ticket, expires_at | nil: the stored
-- ticket, never fetched (a store that fails counts as none)
function _M.cached_mass_call_ticket(client)
    local store = client.store
    if not store or type(client.corpid) ~= "string" then
        return nil
    end
    local ok, value, expires_at = pcall(store.get, store, _M.mass_call_key(client))
    if ok and type(value) == "string" and value ~= "" and type(expires_at) == "number"
        and expires_at > core.now() then
        return value, expires_at
    end
    return nil
end

-- mass_call_ticket(client) -> ticket, expires_at | nil, err
-- The stored ticket while it is valid; otherwise apply_mass_call_ticket once
-- (one caller at a time across everything sharing the store) and keep the
-- answer for its 7 days.  Nothing ever drops it early: a token error, a
-- retry or a restart (with a file, Redis or shdict store) keeps it, and it
-- is a durable entry (set_durable with its expiry), so no cache policy of
-- the store evicts it either.
function _M.mass_call_ticket(client)
    local ticket, expires_at = _M.cached_mass_call_ticket(client)
    if ticket then
        return ticket, expires_at
    end
    local path = PATH.apply_mass_call_ticket
    -- no refresh ahead of expiry: a second application always fails
    return token.get(client.store, _M.mass_call_key(client), function()
        local data, err = client:get(path)
        if not data then
            return nil, err
        end
        local value = data.mass_call_ticket
        if type(value) ~= "string" or value == "" then
            return nil, errors.new("decode", "response has no string field 'mass_call_ticket'",
                { method = "GET", path = path })
        end
        local lifetime = _M.MASS_CALL_LIFETIME
        local expires_in = data.expires_in
        if type(expires_in) == "number" and expires_in > 0 and expires_in < lifetime then
            lifetime = expires_in
        end
        return value, core.now() + lifetime
    end, durable_flight(client))
end

---------------------------------------------------------------------------
-- unionid -> external_userid (idconvert, 97108)
---------------------------------------------------------------------------

-- the ticket a conversion sends: the caller's (false: none), else the stored one
local function ticket_for(client, given)
    if given == false then
        return nil
    end
    if given ~= nil then
        return given
    end
    return (_M.cached_mass_call_ticket(client))
end
_M.ticket_for = ticket_for

local TICKET = errors.kind("a non-empty string or false", function(v)
    return v == false or (type(v) == "string" and v ~= "")
end)
_M.TICKET = TICKET

local UNIONID_OPTIONS = { unionid = STRING, openid = STRING, subject_type = SUBJECT_TYPE, mass_call_ticket = TICKET }
local UNIONID_REQUIRED = { "unionid", "openid" }

local function convert_one(client, unionid, openid, subject_type, ticket)
    local path = PATH.unionid_to_external_userid
    local data, err = client:post(path, {
        unionid = unionid, openid = openid, subject_type = subject_type or 0, mass_call_ticket = ticket,
    }, nil, READ)
    if not data then
        return nil, err
    end
    local ext, pending = data.external_userid, data.pending_id
    local result = {}
    if type(ext) == "string" and ext ~= "" then
        result.external_userid = ext
    end
    if type(pending) == "string" and pending ~= "" then
        result.pending_id = pending
    end
    if result.external_userid == nil and result.pending_id == nil then
        return nil, errors.new("decode", "response has neither external_userid nor pending_id", { path = path })
    end
    return result
end

-- unionid_to_external_userid(client, { unionid, openid [, subject_type = 0]
--   [, mass_call_ticket = t | false] }) -> { external_userid =, pending_id = }
-- external_userid when the WeChat user is a customer of the corp, else a
-- pending_id (valid 90 days).  The stored mass-call ticket goes along unless
-- one is given (false: none).
function _M.unionid_to_external_userid(client, opts)
    errors.options(W "unionid_to_external_userid", opts, UNIONID_OPTIONS, UNIONID_REQUIRED)
    return convert_one(client, opts.unionid, opts.openid, opts.subject_type,
        ticket_for(client, opts.mass_call_ticket))
end

---------------------------------------------------------------------------
-- Bulk conversion with a rate budget
---------------------------------------------------------------------------

local MAX_WAIT_DEFAULT = 3600
local MAX_API_ERRORS_DEFAULT = 50

local EACH_OPTIONS = {
    subject_type = SUBJECT_TYPE,
    mass_call_ticket = TICKET,
    budget = errors.kind("a wecom.budget", budget.is_budget),
    wait = errors.boolean,
    max_wait = errors.kind("a number of seconds >= 0", function(v) return type(v) == "number" and v >= 0 end),
    on_wait = errors.func,
    max_api_errors = errors.positive,
}

-- The budget of a corp's quota in this process (subject_type 0 is counted
-- per corp; 1 per provider, so pass one budget for all of a provider's corps).
local function default_budget(client, subject_type, ticket)
    local limits = ticket and budget.BASE or budget.IDCONVERT
    return budget.shared("idconvert:" .. tostring(client.base_url) .. ":" .. client.corpid .. ":"
        .. subject_type .. (ticket and ":ticket" or ""), limits)
end

local function check_items(where, items, level)
    need(where, "items", items, errors.table, level + 1)
    for i = 1, #items do
        local item = items[i]
        local name = "items[" .. i .. "]"
        need(where, name, item, errors.table, level + 1)
        need(where, name .. ".unionid", item.unionid, STRING, level + 1)
        need(where, name .. ".openid", item.openid, STRING, level + 1)
    end
end

-- each_unionid(client, items [, opts]) -> iterator of i, result | nil, err
--   items: { { unionid =, openid = }, ... }
--   opts: subject_type (0), mass_call_ticket (default: the stored one; false:
--   none), budget (default: this process' budget of the corp's quota, the
--   documented 100,000 an hour and 480,000 a day, or the base limits with a
--   ticket), wait (true: sleep until the budget has room), max_wait (3600 s:
--   longer waits stop the run), on_wait(seconds, i) (told before each wait),
--   max_api_errors (50 "api" errors in a row stop the run).
-- Each item gives i and its result ({ external_userid | pending_id }) or nil
-- and its "api" error.  What stops the run is raised as an error object
-- with err.index = the item to resume from: a rate limit (the server's 45009
-- or a wait longer than allowed, err.retry_after seconds), a token,
-- transport or decode failure, or too many api errors in a row.
function _M.each_unionid(client, items, opts)
    local where = W "each_unionid"
    check_items(where, items, 2)
    opts = opts or {}
    errors.options(where, opts, EACH_OPTIONS)
    local subject_type = opts.subject_type or 0
    local ticket = ticket_for(client, opts.mass_call_ticket)
    local b = opts.budget or default_budget(client, subject_type, ticket)
    local wait = opts.wait ~= false
    local max_wait = opts.max_wait or MAX_WAIT_DEFAULT
    local max_api_errors = opts.max_api_errors or MAX_API_ERRORS_DEFAULT
    local on_wait = opts.on_wait

    local i, n = 0, #items
    local api_errors = 0
    local failure

    local function stop(err, index)
        err.index = index
        failure = err
        error(err, 0)
    end

    return function()
        if failure then
            error(failure, 0)
        end
        if i >= n then
            return nil
        end
        local index = i + 1
        while true do
            local ok, wait_s = b:take()
            if ok then
                break
            end
            if not wait or wait_s > max_wait then
                stop(errors.new("rate_limit", "the call budget is spent; room again in "
                    .. (wait_s == math_huge and "never (a limit below 1 call)" or tostring(math_ceil(wait_s)) .. " s"),
                    { path = PATH.unionid_to_external_userid, retry_after = wait_s }), index)
            end
            if on_wait then
                on_wait(wait_s, index)
            end
            parallel.sleep(wait_s)
        end
        local item = items[index]
        local result, err = convert_one(client, item.unionid, item.openid, subject_type, ticket)
        i = index
        if result then
            api_errors = 0
            return index, result
        end
        if err.kind ~= "api" then
            stop(err, index)
        end
        api_errors = api_errors + 1
        if api_errors >= max_api_errors then
            stop(err, index)
        end
        return index, nil, err
    end
end

local CONVERT_OPTIONS = { on_item = errors.func }
for k, v in pairs(EACH_OPTIONS) do
    CONVERT_OPTIONS[k] = v
end

-- convert_unionids(client, items [, opts]) -> results | results, err
-- results[i] = each_unionid's result for items[i], or { error = err };
-- opts as each_unionid's plus on_item(i, result, err) for progress.  A run
-- that stops returns what it has and the error (err.index: resume there).
function _M.convert_unionids(client, items, opts)
    local where = W "convert_unionids"
    check_items(where, items, 2)
    local each_opts, on_item = {}, nil
    if opts ~= nil then
        errors.options(where, opts, CONVERT_OPTIONS)
        for k, v in pairs(opts) do
            if k == "on_item" then
                on_item = v
            else
                each_opts[k] = v
            end
        end
    end
    local results = {}
    local iter = _M.each_unionid(client, items, each_opts)
    while true do
        local ok, i, result, err = pcall(iter)
        if not ok then
            if errors.is_error(i) then
                return results, i
            end
            error(i, 0)
        end
        if i == nil then
            return results
        end
        results[i] = result or { error = err }
        if on_item then
            on_item(i, result, err)
        end
    end
end

return _M
