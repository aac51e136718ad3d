-- What the callback specs of spec/openresty share: an nginx whose callback
-- handlers (spec/openresty/callback_site.lua, callback_dedupe_site.lua) take
-- their keys from SPEC_CB_TOKEN / SPEC_CB_AES_KEY / SPEC_CB_RECEIVE_ID, and
-- the spec's own wecom.callback with the same keys, playing WeCom.
--
--   local callback_nginx = require "helpers.callback_nginx"
--   local CONF = callback_nginx.conf { dicts =, servers =, ... }   -- helpers.nginx.conf, the env names added
--   describe("...", function()
--       local t = callback_nginx.use(CONF, { token =, aes_key =, receive_id = })
--       -- from setup on: t.site (a helpers.nginx site), t.cb (wecom.callback)
--       t:delivery(xml [, opts]) -> "/cb?<query>", body   (encrypted and signed anew each call)
--       t:post(path, xml [, opts]) -> status, body, headers
--       t:json(path) -> the decoded body of GET path
--   end)
--   callback_nginx.event_xml(event_type [, { from =, time =, extra = }]) -> an app event's XML

local cjson = require "cjson"
local callback = require "wecom.callback"
local nginx = require "helpers.nginx"

local _M = {}

local ENV = { "SPEC_CB_TOKEN", "SPEC_CB_AES_KEY", "SPEC_CB_RECEIVE_ID" }

function _M.conf(parts)
    parts.env = ENV
    return nginx.conf(parts)
end

local Peer = {}
Peer.__index = Peer

-- delivery(xml [, opts]) -> the path with its query, the body: xml as WeCom
-- sends it to /cb (opts go to cb:encrypt_event)
function Peer:delivery(xml, opts, path)
    local body, query = self.cb:encrypt_event(xml, opts)
    return (path or "/cb") .. "?" .. callback.build_query(query), body
end

-- post(path, xml [, opts]) -> status, body, headers
function Peer:post(path, xml, opts)
    local target, body = self:delivery(xml, opts, path)
    return self.site:request("POST", target, { body = body })
end

-- json(path) -> the decoded body of GET path (what the site's router saw)
function Peer:json(path)
    local _, body = self.site:request("GET", path)
    return cjson.decode(body)
end

-- use(conf, keys): inside a describe, starts nginx with conf and the keys
-- in setup, stops it in teardown
function _M.use(conf, keys)
    local busted = require "busted"
    local peer = setmetatable({}, Peer)
    busted.setup(function()
        peer.cb = callback.new { token = keys.token, aes_key = keys.aes_key, receive_id = keys.receive_id }
        peer.site = nginx.start {
            conf = conf,
            env = { SPEC_CB_TOKEN = keys.token, SPEC_CB_AES_KEY = keys.aes_key, SPEC_CB_RECEIVE_ID = keys.receive_id },
        }
    end)
    busted.teardown(function()
        if peer.site then
            peer.site:stop()
        end
    end)
    return peer
end

-- An app event from a corp's member: from "sys" and time 1700000000 unless
-- given; extra: XML put before AgentID.
function _M.event_xml(event_type, o)
    o = o or {}
    return "<xml><ToUserName><![CDATA[wwDOWNSTREAM01]]></ToUserName><FromUserName><![CDATA["
        .. (o.from or "sys") .. "]]></FromUserName><CreateTime>" .. (o.time or 1700000000) .. "</CreateTime>"
        .. "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" .. event_type .. "]]></Event>"
        .. (o.extra or "") .. "<AgentID>1000002</AgentID></xml>"
end

return _M
