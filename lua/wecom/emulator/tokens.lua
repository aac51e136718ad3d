-- Access tokens and tickets on the emulator clock.
--   tok:<token>          -> {kind, corpid, agentid, business_type, upstream_agentid, expires_at}
--   tokfor:<owner key>   -> the current token of that owner
-- Expired tokens stay known so that they can be told apart from unknown ones.

local store = require "wecom.emulator.store"

local floor = math.floor

local _M = {}

local TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

function _M.ttl()
    return store.option("token_ttl", 7200)
end

-- issue(owner_key, info) -> token, expires_in. The same token while it is
-- valid; a new one once it expired on the emulator clock.
function _M.issue(owner_key, info)
    return store.with_lock("tokfor:" .. owner_key, function()
        local now = store.now()
        local current = store.get("tokfor:" .. owner_key)
        if current then
            local known = store.get_json("tok:" .. current)
            if known and known.expires_at > now then
                return current, floor(known.expires_at - now)
            end
        end
        local ttl = _M.ttl()
        local token = store.random_string(96, TOKEN_CHARS)
        info.expires_at = now + ttl
        store.set_json("tok:" .. token, info)
        store.set("tokfor:" .. owner_key, token)
        return token, ttl
    end)
end

-- revoke(owner_key): the owner's current token becomes unknown (40014), as
-- a corp's token does when it uninstalls an app.
function _M.revoke(owner_key)
    store.with_lock("tokfor:" .. owner_key, function()
        local current = store.get("tokfor:" .. owner_key)
        if current then
            store.delete("tok:" .. current)
        end
        store.delete("tokfor:" .. owner_key)
    end)
end

-- lookup(token) -> info, expired | nil (unknown)
function _M.lookup(token)
    local info = store.get_json("tok:" .. token)
    if info == nil then
        return nil
    end
    return info, info.expires_at <= store.now()
end

-- Tickets (jsapi / agent_config): same rules as tokens.
function _M.ticket(owner_key)
    return store.with_lock("ticket:" .. owner_key, function()
        local now = store.now()
        local known = store.get_json("ticket:" .. owner_key)
        if known and known.expires_at > now then
            return known.ticket, floor(known.expires_at - now)
        end
        local ttl = store.option("ticket_ttl", 7200)
        local ticket = store.random_string(86, TOKEN_CHARS)
        store.set_json("ticket:" .. owner_key, { ticket = ticket, expires_at = now + ttl })
        store.incr("tickets_issued", 1, 0)
        return ticket, ttl
    end)
end

return _M
