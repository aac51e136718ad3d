-- §2.1 list_app_share_info and §2.2 corp/gettoken.

local tokens = require "wecom.emulator.tokens"
local server = require "wecom.emulator.server"
local json = require "wecom.json"

local ngx = ngx
local tonumber = tonumber
local fail = server.fail

local _M = {}

local MAX_LIMIT = 100

-- Cursors are opaque to clients; inside they name the list and an offset so
-- that a cursor from another listing is refused.
function _M.encode_cursor(scope, offset)
    return (ngx.encode_base64(scope .. "|" .. offset):gsub("=", ""))
end

function _M.decode_cursor(scope, cursor)
    if cursor == nil then
        return 0
    end
    local pad = (4 - #cursor % 4) % 4
    local raw = ngx.decode_base64(cursor .. ("="):rep(pad))
    local s, offset = (raw or ""):match("^(.*)|(%d+)$")
    if s ~= scope then
        fail(40058, "invalid cursor")
    end
    return tonumber(offset)
end

local function list_app_share_info(req)
    local agentid = req:int("agentid", true, 41011)
    local bt = req:int("business_type") or 0
    local corpid = req:str("corpid")
    local limit = req:int("limit") or 0
    if bt ~= 0 and bt ~= 1 then
        fail(40058, "business_type must be 0 or 1")
    end
    if limit < 0 or limit > MAX_LIMIT then
        fail(40058, "limit must be between 0 and 100")
    end
    if agentid ~= req.token.agentid then
        fail(301002)
    end
    local scope = "share:" .. agentid .. ":" .. bt .. ":" .. (corpid or "")
    local offset = _M.decode_cursor(scope, req:str("cursor"))

    -- unconfirmed shares (sensitive permissions not yet accepted) are hidden
    -- a third-party app's shares come from installs (POST /__emulator/share)
    local source = req.token.kind == "3rd" and require("wecom.emulator.provider").shares(req.F, req.token, bt)
        or req.F.shares[agentid] and req.F.shares[agentid][bt] or {}
    local all = {}
    for _, share in ipairs(source) do
        if share.confirmed and (corpid == nil or share.corpid == corpid) then
            all[#all + 1] = share
        end
    end
    local last = #all
    if limit > 0 then
        last = math.min(#all, offset + limit)
    end
    local corp_list = json.array()
    for i = offset + 1, last do
        local share = all[i]
        corp_list[#corp_list + 1] = {
            corpid = share.corpid, corp_name = share.corp_name, agentid = share.agentid,
        }
    end
    local ending = last >= #all
    return {
        ending = ending and 1 or 0,
        next_cursor = ending and "" or _M.encode_cursor(scope, last),
        corp_list = corp_list,
    }
end

local function corp_gettoken(req)
    local corpid = req:str("corpid", true)
    local agentid = req:int("agentid", true, 41011)
    local bt = req:int("business_type") or 0
    if bt ~= 0 and bt ~= 1 then
        fail(40058, "business_type must be 0 or 1")
    end
    if not req.F.corps[corpid] or corpid == req.F.upstream.corpid then
        fail(40013)
    end
    local share = req.F.share_of[corpid .. "/" .. agentid .. "/" .. bt]
    if not share or not share.confirmed or share.upstream_agentid ~= req.token.agentid then
        fail(60011, "app is not shared to this corp")
    end
    local token, expires_in = tokens.issue("down:" .. corpid .. ":" .. agentid .. ":" .. bt, {
        kind = "down", corpid = corpid, agentid = agentid, business_type = bt,
        upstream_agentid = share.upstream_agentid,
    })
    return { access_token = token, expires_in = expires_in }
end

_M.routes = {
    -- callable by self-built and third-party apps (reference §2.1)
    ["/cgi-bin/corpgroup/corp/list_app_share_info"] = { method = "POST", token = "upstream",
        third_party = true, fn = list_app_share_info },
    ["/cgi-bin/corpgroup/corp/gettoken"] = { method = "POST", token = "upstream", fn = corp_gettoken },
}

return _M
