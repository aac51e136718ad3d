-- Request plumbing shared by the emulated APIs: WeCom-shaped errors, JSON
-- responses, field validation and the per-request context.

local json = require "wecom.json"
local store = require "wecom.emulator.store"

local ngx = ngx
local type = type
local error = error
local setmetatable = setmetatable
local floor = math.floor
local format = string.format

local _M = {}

-- The text WeCom puts in front of ", hint: [...]" for each code.
local MESSAGES = {
    [-1] = "system busy",
    [40001] = "invalid credential",
    [40003] = "invalid userid",
    [40008] = "invalid message type",
    [40013] = "invalid corpid",
    [40014] = "invalid access_token",
    [40029] = "invalid code",
    [40050] = "chatid not found",
    [40056] = "invalid agentid",
    [40058] = "invalid Request Parameter",
    [40077] = "invalid pre_auth_code",
    [40078] = "invalid auth_code",
    [40080] = "invalid suite_secret",
    -- sic, the live server's text (reference/wecom-provider-api.md §9)
    [40082] = "invalid suite_acccess_token or provider_access_token",
    [40083] = "invalid suite_id",
    [40084] = "invalid permanent_code",
    [40085] = "invalid suite ticket",
    [40086] = "invalid third-app id",
    [40091] = "secret is invalid",
    [40096] = "invalid external userid",
    [41001] = "access_token missing",
    [41002] = "corpid missing",
    [41004] = "corpsecret missing",
    [41008] = "missing code",
    [41009] = "missing userid",
    [41011] = "missing agentid",
    [41021] = "suite_id missing",
    [41022] = "suite_access_token missing",
    [41023] = "suite_ticket missing",
    [41024] = "secret missing",
    [41025] = "permanent code missing",
    [42001] = "access_token expired",
    [42007] = "pre_auth_code expired",
    [42009] = "suite_access_token expired",
    [43001] = "require GET method",
    [43002] = "require POST method",
    [44002] = "empty post data",
    [45009] = "api freq out of limit",
    [45033] = "api concurrent out of limit",
    [47001] = "data format error",
    [48001] = "api unauthorized",
    [48002] = "api forbidden",
    [48003] = "suite_id not match",
    [48004] = "auth relation invalid",
    [50001] = "redirect_url domain not match",
    [60011] = "no privilege to access/modify contact/party/agent",
    [60020] = "not allow to access from your ip",
    [60111] = "userid not found",
    [60103] = "invalid mobile",
    [60112] = "invalid name",
    [60123] = "invalid party id",
    [81013] = "user & party & tag all invalid",
    [84014] = "user ticket expired",
    [84015] = "invalid user ticket",
    [84019] = "templateid missing",
    [84020] = "templateid not exist",
    [84025] = "invalid state",
    [84054] = "auth_corpid missing",
    [84090] = "user_ticket missing",
    [301002] = "not allow operate another agent with this accesstoken",
    [670016] = "invalid contact identity",
}
_M.MESSAGES = MESSAGES

local hint_seq = 0

-- errmsg(code [, detail]) in the live server's shape.
function _M.errmsg(code, detail)
    if code == 0 then
        return "ok"
    end
    hint_seq = hint_seq + 1
    local text = MESSAGES[code] or "unknown error"
    if detail and detail ~= "" then
        text = text .. ": " .. detail
    end
    local hint = format("%d_%d_%s", floor(ngx.now()), hint_seq, store.random_string(32, "0123456789abcdef"))
    return format("%s, hint: [%s], from ip: %s, more info at https://open.work.weixin.qq.com/devtool/query?e=%d",
        text, hint, ngx.var.remote_addr or "127.0.0.1", code)
end

-- Raises an API error; the dispatcher turns it into {"errcode", "errmsg"}.
local API_ERROR = {}

function _M.fail(code, detail, http_status)
    error(setmetatable({ errcode = code, detail = detail, http_status = http_status }, API_ERROR), 0)
end

function _M.is_api_error(e)
    return type(e) == "table" and getmetatable(e) == API_ERROR
end

function _M.send(status, body, content_type)
    ngx.status = status
    ngx.header["Content-Type"] = content_type or "application/json; charset=UTF-8"
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(status)
end

function _M.send_json(status, value)
    return _M.send(status, assert(json.encode(value)))
end

function _M.send_error(code, detail, http_status)
    return _M.send_json(http_status or 200, { errcode = code, errmsg = _M.errmsg(code, detail) })
end

-- Request context -----------------------------------------------------------

local Request = {}
Request.__index = Request
_M.Request = Request

local function is_integer(v)
    return type(v) == "number" and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end
_M.is_integer = is_integer

-- The value of a field: from the JSON body for POST, the query for GET.
function Request:raw(field)
    if self.body then
        local v = self.body[field]
        if v == json.null then
            return nil
        end
        return v
    end
    return self.args[field]
end

-- The field's value, nil when it is absent (or equal to `empty`); a
-- missing required field fails with 40058 "missing <field>", or with `code`.
local function given(req, field, required, code, empty)
    local v = req:raw(field)
    if v == nil or v == empty then
        if required then
            _M.fail(code or 40058, not code and "missing " .. field or nil)
        end
        return nil
    end
    return v
end

-- A required/optional string field ("" counts as missing).
function Request:str(field, required, code)
    local v = given(self, field, required, code, "")
    if v ~= nil and type(v) ~= "string" then
        _M.fail(40058, field .. " must be a string")
    end
    return v
end

function Request:int(field, required, code)
    local v = given(self, field, required, code)
    if v == nil then
        return nil
    end
    if not self.body and type(v) == "string" and v:match("^%-?%d+$") then
        v = tonumber(v)
    end
    if not is_integer(v) then
        _M.fail(40058, field .. " must be an integer")
    end
    return v
end

-- Booleans: JSON true/false, or 0/1 as the docs' examples use both.
function Request:bool(field)
    local v = self:raw(field)
    if v == nil then
        return false
    end
    if v == true or v == 1 or v == "1" or v == "true" then
        return true
    elseif v == false or v == 0 or v == "0" or v == "false" then
        return false
    end
    _M.fail(40058, field .. " must be a boolean")
end

function Request:array(field, required)
    local v = given(self, field, required)
    if v ~= nil and (type(v) ~= "table" or (next(v) ~= nil and v[1] == nil)) then
        _M.fail(40058, field .. " must be an array")
    end
    return v
end

function Request:object(field, required)
    local v = given(self, field, required)
    if v ~= nil and (type(v) ~= "table" or v[1] ~= nil) then
        _M.fail(40058, field .. " must be an object")
    end
    return v
end

-- The token a query parameter carries (its first value) | nil: absent or empty
function _M.query_token(args, name)
    local token = args[name]
    if type(token) == "table" then
        token = token[1]
    end
    if type(token) ~= "string" or token == "" then
        return nil
    end
    return token
end

function _M.new_request(fields)
    return setmetatable(fields, Request)
end

-- Reads the whole request body (bodies stay in memory; see nginx.conf).
function _M.read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body == nil then
        local path = ngx.req.get_body_file()
        if path then
            local f = io.open(path, "rb")
            if f then
                body = f:read("*a")
                f:close()
            end
        end
    end
    return body
end

-- Parses a JSON object body; nil, code, detail when it is not one.
function _M.parse_json_body(raw)
    if raw == nil or raw == "" then
        return nil, 44002
    end
    local value = json.decode(raw)
    if value == nil then
        -- the live server's note on a malformed body (reference §0)
        return nil, 47001, "Warning: wrong json format."
    end
    if type(value) ~= "table" or value[1] ~= nil then
        return nil, 47001, "body is not a JSON object"
    end
    return value
end

return _M
