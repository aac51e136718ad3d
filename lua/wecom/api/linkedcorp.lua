-- 企业互联 linked-corp endpoints: `app.linkedcorp` (wecom.api.linkedcorp, reference §4).
--
-- All are POSTs with the app's own token.  Linked users are `CORPID/USERID`,
-- linked departments `LINKEDID/DEPARTMENTID`.  Reads are marked idempotent so
-- the client may retry them after a timeout; `send` is not.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local floor = math.floor

local errors = require "wecom.errors"
local response = require "wecom.response"

local _M = {}

local mt = { __index = _M }

local READ = { idempotent = true }

local P = "/cgi-bin/linkedcorp/"
local PATH = {
    perm_list = P .. "agent/get_perm_list",
    user = P .. "user/get",
    simplelist = P .. "user/simplelist",
    user_list = P .. "user/list",
    departments = P .. "department/list",
    send = P .. "message/send",
}
_M.PATH = PATH

-- Argument checks raise (a wrong argument is the caller's bug), naming the
-- method as users write it: wecom.linkedcorp:user: userid must be ...
local need, usage = errors.need, errors.usage
local STRING, TABLE = errors.string, errors.table

local function W(method)
    return "wecom.linkedcorp:" .. method
end

local list_field, list_of, field_of = response.list, response.list_of, response.field_of

function _M.new(client)
    need("wecom.linkedcorp.new", "client", client, TABLE)
    return setmetatable({ client = client }, mt)
end

-- perm_list() -> { userids = { "CORPID/USERID", ... }, department_ids = { "LINKEDID/DEPTID", ... } }
function _M:perm_list()
    local data, err = self.client:post(PATH.perm_list, {}, nil, READ)
    if not data then
        return nil, err
    end
    local userids, uerr = list_field(data, "userids", PATH.perm_list)
    if not userids then
        return nil, uerr
    end
    local department_ids, derr = list_field(data, "department_ids", PATH.perm_list)
    if not department_ids then
        return nil, derr
    end
    return { userids = userids, department_ids = department_ids }
end

-- user(userid) -> user_info (its `userid` is the bare id, `corpid` the owning corp)
function _M:user(userid)
    need(W "user", "userid", userid, STRING)
    return field_of("user_info", "table", PATH.user,
        self.client:post(PATH.user, { userid = userid }, nil, READ))
end

local LIST_OPTIONS = { department_id = STRING, fetch_child = errors.boolean }
local LIST_REQUIRED = { "department_id" }
local LIST_ARGUMENT = errors.kind("a table or a department id", function(v)
    return type(v) == "table" or type(v) == "string"
end)

-- `department_id` alone or { department_id =, fetch_child = bool }
-- (level 3: users and user_list tail-call user_list, which calls this)
local function list_request(method, opts)
    local where = W(method)
    need(where, "opts", opts, LIST_ARGUMENT, 3)
    if type(opts) == "string" then
        need(where, "department_id", opts, STRING, 3)
        opts = { department_id = opts }
    else
        errors.options(where, opts, LIST_OPTIONS, LIST_REQUIRED, 3)
    end
    -- the documented type is 0/1 (the examples' JSON true is accepted too)
    return { department_id = opts.department_id, fetch_child = opts.fetch_child and 1 or 0 }
end

local function user_list(self, method, path, opts)
    local body = list_request(method, opts)
    return list_of("userlist", path, self.client:post(path, body, nil, READ))
end

-- users{ department_id, fetch_child } -> { { userid, name, department, corpid }, ... }
function _M:users(opts)
    return user_list(self, "users", PATH.simplelist, opts)
end

-- user_list{ department_id, fetch_child } -> full user records
function _M:user_list(opts)
    return user_list(self, "user_list", PATH.user_list, opts)
end

-- departments(department_id) -> { { department_id, department_name, parentid, order }, ... }
-- (ids in the answer carry no LinkedId prefix)
function _M:departments(department_id)
    need(W "departments", "department_id", department_id, STRING)
    return list_of("department_list", PATH.departments,
        self.client:post(PATH.departments, { department_id = department_id }, nil, READ))
end

-- "a|b|c", the ordinary message API's form of an id list -> { "a", "b", "c" }
local function split_ids(s)
    local list = {}
    for id in s:gmatch("[^|]+") do
        list[#list + 1] = id
    end
    return list
end

local ID_LIST = errors.kind("a list of ids", function(v) return type(v) == "table" or type(v) == "string" end)

-- (level 3: send calls this)
local function id_list(name, v)
    if v == nil then
        return nil
    end
    need(W "send", "message." .. name, v, ID_LIST, 3)
    if type(v) == "string" then
        v = split_ids(v) -- accepted as a convenience
    end
    local out = {}
    for i = 1, #v do
        local id = v[i]
        if type(id) == "number" and id == floor(id) then
            id = tostring(id)
        end
        need(W "send", "message." .. name .. "[" .. i .. "]", id, STRING, 3)
        out[i] = id
    end
    return out
end

-- send{ msgtype =, [msgtype] = payload, touser = {...}, toparty =, totag =, toall =,
--       safe =, agentid = (default: the app's) }
--   -> { invaliduser = {...}, invalidparty = {...}, invalidtag = {...} }
function _M:send(message)
    local where = W "send"
    need(where, "message", message, TABLE)
    local msgtype = need(where, "message.msgtype", message.msgtype, STRING)
    need(where, "message." .. msgtype, message[msgtype], errors.kind("a table (the " .. msgtype .. " payload)",
        function(v) return type(v) == "table" end))
    local body = {}
    for k, v in pairs(message) do
        body[k] = v
    end
    body.touser = id_list("touser", message.touser)
    body.toparty = id_list("toparty", message.toparty)
    body.totag = id_list("totag", message.totag)
    if message.toall == true then
        body.toall = 1
    elseif message.toall == false then
        body.toall = nil
    end
    if not (body.touser or body.toparty or body.totag or body.toall == 1) then
        usage(where, "message needs touser, toparty, totag or toall")
    end
    if body.agentid == nil and msgtype ~= "miniprogram_notice" then
        body.agentid = self.client.agentid
        if body.agentid == nil then
            usage(where, "message.agentid is required (the app has no agentid)")
        end
    end

    local data, err = self.client:post(PATH.send, body)
    if not data then
        return nil, err
    end
    local result = {}
    for _, name in ipairs({ "invaliduser", "invalidparty", "invalidtag" }) do
        local v = data[name]
        if type(v) == "string" then
            v = split_ids(v) -- some answers join the ids with '|'
        end
        result[name] = type(v) == "table" and v or {}
    end
    return result
end

return _M
