-- §4 企业互联 linked-corp APIs. Ids: users "CORPID/USERID", departments
-- "LINKEDID/DEPARTMENTID"; department/list answers bare string ids.
-- What an app may see comes from fixture.linkedcorp.perm["<agentid>"].

local json = require "wecom.json"
local server = require "wecom.emulator.server"

local type = type
local ipairs = ipairs
local tostring = tostring
local fail = server.fail

local _M = {}

local MSGTYPES = {
    text = true, image = true, voice = true, video = true, file = true, textcard = true,
    news = true, mpnews = true, markdown = true, miniprogram_notice = true,
}

-- Per-worker index of the fixture's linked corps, built on first use.
local index

local function get_index(F)
    if index and index.F == F then
        return index
    end
    index = { F = F, depts = {}, children = {}, users = {}, ordered_users = {} }
    for _, d in ipairs(F.linked.departments or {}) do
        local full = d.linked_id .. "/" .. d.department_id
        index.depts[full] = d
        local parent = d.linked_id .. "/" .. d.parentid
        index.children[parent] = index.children[parent] or {}
        local kids = index.children[parent]
        kids[#kids + 1] = full
    end
    for _, u in ipairs(F.linked.users or {}) do
        index.users[u.corpid .. "/" .. u.userid] = u
        index.ordered_users[#index.ordered_users + 1] = u
    end
    return index
end

-- The department and everything under it, depth first.
local function subtree(idx, full, out)
    out = out or {}
    out[#out + 1] = full
    for _, kid in ipairs(idx.children[full] or {}) do
        subtree(idx, kid, out)
    end
    return out
end

local function perm_of(req)
    local perm = req.F.linked.perm and req.F.linked.perm[tostring(req.token.agentid)] or {}
    return { userids = perm.userids or {}, department_ids = perm.department_ids or {} }
end

-- Sets of visible departments (with descendants) and users.
local function visible(req)
    local idx = get_index(req.F)
    local perm = perm_of(req)
    local depts, users = {}, {}
    for _, full in ipairs(perm.department_ids) do
        if idx.depts[full] then
            for _, d in ipairs(subtree(idx, full)) do
                depts[d] = true
            end
        end
    end
    for _, id in ipairs(perm.userids) do
        users[id] = true
    end
    for key, u in pairs(idx.users) do
        for _, d in ipairs(u.department or {}) do
            if depts[d] then
                users[key] = true
            end
        end
    end
    return idx, depts, users
end

local function user_record(u, depts, only_linked_id)
    local department = json.array()
    for _, d in ipairs(u.department or {}) do
        if depts[d] and (not only_linked_id or d:match("^[^/]+") == only_linked_id) then
            department[#department + 1] = d
        end
    end
    return department
end

local function full_user(u, depts)
    return {
        userid = u.userid, name = u.name, department = user_record(u, depts),
        mobile = u.mobile or "", telephone = u.telephone or "", email = u.email or "",
        position = u.position or "", corpid = u.corpid,
        extattr = { attrs = json.array(json.copy(u.extattr and u.extattr.attrs or {})) },
    }
end

local function get_perm_list(req)
    local perm = perm_of(req)
    return {
        userids = json.array(json.copy(perm.userids)),
        department_ids = json.array(json.copy(perm.department_ids)),
    }
end

local function user_get(req)
    local userid = req:str("userid", true, 41009)
    if not userid:find("/", 1, true) then
        fail(40003, "linked userid must be CORPID/USERID")
    end
    local idx, depts, users = visible(req)
    local u = idx.users[userid]
    if not u then
        fail(60111, userid)
    end
    if not users[userid] then
        fail(60011)
    end
    return { user_info = full_user(u, depts) }
end

local function department_arg(req)
    local id = req:str("department_id", true)
    local linked_id = id:match("^([^/]+)/[^/]+$")
    if not linked_id then
        fail(60123, "department_id must be LINKEDID/DEPARTMENTID")
    end
    local idx, depts, users = visible(req)
    if not idx.depts[id] then
        fail(60123, id)
    end
    if not depts[id] then
        fail(60011)
    end
    return id, linked_id, idx, depts, users
end

local function users_in(req, full_record)
    local id, linked_id, idx, depts = department_arg(req)
    local fetch_child = req:bool("fetch_child")
    local wanted = {}
    for _, d in ipairs(fetch_child and subtree(idx, id) or { id }) do
        wanted[d] = true
    end
    local list = json.array()
    for _, u in ipairs(idx.ordered_users) do
        local member = false
        for _, d in ipairs(u.department or {}) do
            if wanted[d] then
                member = true
            end
        end
        if member then
            if full_record then
                list[#list + 1] = full_user(u, depts)
            else
                list[#list + 1] = { userid = u.userid, name = u.name, corpid = u.corpid,
                    department = user_record(u, depts, linked_id) }
            end
        end
    end
    return { userlist = list }
end

local function department_list(req)
    local id, _, idx = department_arg(req)
    local list = json.array()
    for _, full in ipairs(subtree(idx, id)) do
        local d = idx.depts[full]
        list[#list + 1] = {
            department_id = tostring(d.department_id), department_name = d.department_name,
            parentid = tostring(d.parentid), order = d.order or 0,
        }
    end
    return { department_list = list }
end

local function string_array(req, field, limit)
    local list = req:array(field)
    if list == nil then
        return {}
    end
    if #list > limit then
        fail(40058, field .. " holds more than " .. limit .. " ids")
    end
    for _, v in ipairs(list) do
        if type(v) ~= "string" then
            fail(40058, field .. " must hold strings")
        end
    end
    return list
end

local function message_send(req)
    local msgtype = req:str("msgtype", true)
    if not MSGTYPES[msgtype] then
        fail(40008, "invalid message type " .. msgtype)
    end
    if msgtype ~= "miniprogram_notice" then
        local agentid = req:int("agentid", true, 41011)
        if agentid ~= req.token.agentid then
            fail(301002)
        end
    end
    req:object(msgtype, true)
    local touser = string_array(req, "touser", 1000)
    local toparty = string_array(req, "toparty", 100)
    local totag = string_array(req, "totag", 100)
    local toall = req:int("toall") or 0
    req:int("safe")
    if toall == 0 and #touser + #toparty + #totag == 0 then
        fail(40058, "no recipient: give touser, toparty, totag or toall")
    end
    local _, depts, users = visible(req)
    local up = req.F.upstream
    local own_depts = {}
    for _, d in ipairs(up.departments or {}) do
        own_depts[tostring(d.id)] = true
    end
    local invaliduser, invalidparty, invalidtag = json.array(), json.array(), json.array()
    local valid = toall == 1
    for _, u in ipairs(touser) do
        if users[u] or (not u:find("/", 1, true) and up.users_by_id[u]) then
            valid = true
        else
            invaliduser[#invaliduser + 1] = u
        end
    end
    for _, p in ipairs(toparty) do
        if depts[p] or own_depts[p] then
            valid = true
        else
            invalidparty[#invalidparty + 1] = p
        end
    end
    for _, t in ipairs(totag) do
        invalidtag[#invalidtag + 1] = t
    end
    if not valid then
        fail(81013)
    end
    return { invaliduser = invaliduser, invalidparty = invalidparty, invalidtag = invalidtag }
end

local P = "/cgi-bin/linkedcorp/"
local function post(fn, body_optional)
    return { method = "POST", token = "upstream", fn = fn, body_optional = body_optional }
end

_M.routes = {
    [P .. "agent/get_perm_list"] = post(get_perm_list, true),
    [P .. "user/get"] = post(user_get),
    [P .. "user/simplelist"] = post(function(req) return users_in(req, false) end),
    [P .. "user/list"] = post(function(req) return users_in(req, true) end),
    [P .. "department/list"] = post(department_list),
    [P .. "message/send"] = post(message_send),
}

return _M
