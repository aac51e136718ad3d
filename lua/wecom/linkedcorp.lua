-- 企业互联 linked-corp endpoints: `app.linkedcorp` (reference §4).
--
-- All are POSTs with the app's own token.  Linked users are `CORPID/USERID`,
-- linked departments `LINKEDID/DEPARTMENTID`.  Reads are marked idempotent so
-- the client may retry them after a timeout; `send` is not.

local error = error
local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local floor = math.floor
local argcheck = require "wecom.argcheck"
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

-- Argument checks raise (a wrong argument is the caller's bug).
local check = argcheck.new("wecom.linkedcorp:")
local fail, need_string = check.fail, check.need_string

local list_field = response.list

function _M.new(client)
    if type(client) ~= "table" then
        error("wecom.linkedcorp.new: client must be a client object (got " .. type(client) .. ")", 2)
    end
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
    need_string("user", "userid", userid)
    local data, err = self.client:post(PATH.user, { userid = userid }, nil, READ)
    if not data then
        return nil, err
    end
    return response.field(data, "user_info", "table", PATH.user)
end

-- `department_id` alone or { department_id =, fetch_child = bool }
-- (check depth 1: users/user_list tail-call user_list, which calls this)
local function list_request(method, opts)
    if type(opts) == "string" then
        opts = { department_id = opts }
    elseif type(opts) ~= "table" then
        fail(method, "options", "a table or a department id", opts, 1)
    end
    need_string(method, "department_id", opts.department_id, 1)
    local fetch_child = check.opt_bool(method, "fetch_child", opts.fetch_child, 1)
    -- the documented type is 0/1 (the examples' JSON true is accepted too)
    return { department_id = opts.department_id, fetch_child = fetch_child and 1 or 0 }
end

local function user_list(self, method, path, opts)
    local body = list_request(method, opts)
    local data, err = self.client:post(path, body, nil, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "userlist", path)
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
    need_string("departments", "department_id", department_id)
    local data, err = self.client:post(PATH.departments, { department_id = department_id }, nil, READ)
    if not data then
        return nil, err
    end
    return list_field(data, "department_list", PATH.departments)
end

-- "a|b|c", the ordinary message API's form of an id list -> { "a", "b", "c" }
local function split_ids(s)
    local list = {}
    for id in s:gmatch("[^|]+") do
        list[#list + 1] = id
    end
    return list
end

local function id_list(name, v)
    if v == nil then
        return nil
    end
    if type(v) == "string" then
        v = split_ids(v) -- accepted as a convenience
    end
    if type(v) ~= "table" then
        fail("send", "message." .. name, "a list of ids", v, 1)
    end
    local out = {}
    for i = 1, #v do
        local id = v[i]
        if type(id) == "number" and id == floor(id) then
            id = tostring(id)
        end
        if type(id) ~= "string" or id == "" then
            fail("send", "message." .. name .. "[" .. i .. "]", "a non-empty string", v[i], 1)
        end
        out[i] = id
    end
    return out
end

-- send{ msgtype =, [msgtype] = payload, touser = {...}, toparty =, totag =, toall =,
--       safe =, agentid = (default: the app's) }
--   -> { invaliduser = {...}, invalidparty = {...}, invalidtag = {...} }
function _M:send(message)
    check.need_table("send", "message", message)
    local msgtype = need_string("send", "message.msgtype", message.msgtype)
    if type(message[msgtype]) ~= "table" then
        fail("send", "message." .. msgtype, "a table (the " .. msgtype .. " payload)", message[msgtype])
    end
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
        error("wecom.linkedcorp:send: message needs touser, toparty, totag or toall", 2)
    end
    if body.agentid == nil and msgtype ~= "miniprogram_notice" then
        body.agentid = self.client.agentid
        if body.agentid == nil then
            error("wecom.linkedcorp:send: message.agentid is required (the app has no agentid)", 2)
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
