-- wecom.events: the callback events the SDK knows by name, as data, and the
-- typed fields it adds to the contact and customer events.
--
-- A contact or customer change reaches an app in one of two forms with the
-- same fields (reference/wecom-provider-api.md §3.7-§3.8):
--   * the InfoType form, at a third-party suite's 指令回调 URL:
--       SuiteId, AuthCorpId, InfoType, TimeStamp, ChangeType, ...
--   * the Event form, at a self-built or 代开发 app's URL (and, for a shared
--     self-built app, at the upstream corp's URL for its downstream corps'
--     changes, ToUserName then naming the downstream corp, doc 97213 §5):
--       ToUserName, FromUserName = "sys", CreateTime, MsgType = "event",
--       Event, ChangeType, ...
-- wecom.callback gives both `type` = the name (Event or InfoType) and keeps
-- ChangeType as sent; the router's dispatch then calls decorate(event),
-- which adds, for the types in TYPED:
--   form         "info" (InfoType form) or "event" (Event form)
--   change       ChangeType ("create_user", "add_external_contact", ...)
--   suite_id     SuiteId (the InfoType form's)
--   corpid       the corp the change happened in: AuthCorpId / ToUserName
--                (as wecom.callback sets it), PaidCorpId for change_editon
-- and turns the comma-joined and repeated fields into lists:
--   departments        Department "1,2"       -> { 1, 2 }
--   is_leader_in_dept  IsLeaderInDept "1,0"   -> { 1, 0 }
--   direct_leader      DirectLeader "a,b"     -> { "a", "b" }
--   ext_attr           ExtAttr.Item (one or many) -> { { Name=, Type=, Text= | Web= }, ... }
--   add_user_items, del_user_items             AddUserItems / DelUserItems -> { userid, ... }
--   add_party_items, del_party_items           AddPartyItems / DelPartyItems -> { id, ... }
--   mem_change_list    MemChangeList.Item     -> { userid, ... }
-- The raw fields stay as they are.  Every other event, known or not, is
-- passed through untouched under its own name (`type`): the InfoTypes of
-- INFO_TYPES (WeCom's own spelling, change_editon included) and whatever
-- WeCom adds later.

local ipairs = ipairs
local tonumber = tonumber
local type = type
local gmatch = string.gmatch

local _M = {}

-- ChangeType values per typed event (90639/96302, 92277/92130, 92130's
-- customer-group and tag pages)
_M.CHANGE_TYPES = {
    change_contact = { "create_user", "update_user", "delete_user", "create_party", "update_party",
                       "delete_party", "update_tag" },
    change_external_contact = { "add_external_contact", "edit_external_contact", "add_half_external_contact",
                                "del_external_contact", "del_follow_user", "transfer_fail" },
    change_external_chat = { "create", "update", "dismiss" },
    change_external_tag = { "create", "update", "delete", "shuffle" },
}

-- the events decorate() types
_M.TYPED = {
    change_contact = true, change_external_contact = true, change_external_chat = true,
    change_external_tag = true, change_editon = true,
}

-- InfoTypes of a suite's 指令回调 URL (reference §3.3-§3.9), passed through
-- by name; the spelling is WeCom's ("change_editon")
_M.INFO_TYPES = {
    "suite_ticket", "create_auth", "change_auth", "cancel_auth", "reset_permanent_code", "corp_arch_auth",
    "share_agent_change", "share_chain_change", "change_editon",
    "change_contact", "change_external_contact", "change_external_chat", "change_external_tag",
    "change_app_admin", "register_corp", "batch_job_result", "open_order", "change_order",
    "pay_for_app_success", "refund", "auto_activate", "agree_external_userid_migration",
    "change_school_contact", "device_data_auth_change", "approve_special_auth", "cancel_special_auth",
}

-- "1,2,3" -> { "1", "2", "3" } (numbers with as_numbers); "" and nil -> {}
local function split(s, as_numbers)
    local out = {}
    if type(s) ~= "string" then
        return out
    end
    for part in gmatch(s, "[^,]+") do
        part = part:match("^%s*(.-)%s*$")
        if part ~= "" then
            if as_numbers then
                out[#out + 1] = tonumber(part) or part
            else
                out[#out + 1] = part
            end
        end
    end
    return out
end
_M.split = split

-- items(node, name) -> node[name] as a list: the XML decoder gives one
-- element as a table and repeated ones as a list of them
local function items(node, name)
    if type(node) ~= "table" then
        return {}
    end
    local v = node[name]
    if type(v) ~= "table" then
        if v == nil or v == "" then
            return {}
        end
        return { v }
    end
    if v[1] ~= nil then
        return v
    end
    return { v }
end
_M.items = items

local function contact(event)
    event.departments = split(event.Department, true)
    event.is_leader_in_dept = split(event.IsLeaderInDept, true)
    event.direct_leader = split(event.DirectLeader)
    event.ext_attr = items(event.ExtAttr, "Item")
    event.add_user_items = split(event.AddUserItems)
    event.del_user_items = split(event.DelUserItems)
    event.add_party_items = split(event.AddPartyItems, true)
    event.del_party_items = split(event.DelPartyItems, true)
end

local function chat(event)
    local list = {}
    for _, item in ipairs(items(event.MemChangeList, "Item")) do
        if type(item) == "string" then
            list[#list + 1] = item
        end
    end
    event.mem_change_list = list
end

-- decorate(event) -> event, with the typed fields above when its type is
-- one of TYPED (once: a decorated event is left as it is)
function _M.decorate(event)
    local t = event.type
    if not _M.TYPED[t] or event.form ~= nil then
        return event
    end
    local info = type(event.InfoType) == "string" and event.InfoType ~= ""
    event.form = info and "info" or "event"
    event.change = event.ChangeType
    event.suite_id = event.SuiteId
    if t == "change_contact" then
        contact(event)
    elseif t == "change_external_chat" then
        chat(event)
    elseif t == "change_editon" and event.corpid == nil then
        event.corpid = event.PaidCorpId
    end
    return event
end

return _M
