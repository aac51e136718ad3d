-- A hostile HTTPS server for the transports' specs: a real nginx whose
-- answers (spec/helpers/hostile_peer.lua) send endless lines and drip
-- bytes, over TLS with a certificate of its own for localhost.
--
--   local hostile = require "helpers.hostile"
--   local h = hostile.start()
--   h.url("/endless_header?limit=1000000")  -- https://localhost:<port>/...
--   h.ca_file                               -- the certificate to trust
--   h:sent("endless_header")                -- bytes that answer got out
--   h:reset(); h:stop()
--   hostile.peak_rss()                      -- this process's peak RSS, bytes

local nginx = require "helpers.nginx"
local sh = require "helpers.sh"

local _M = {}

_M.peak_rss = require("helpers.hostile_peer").peak_rss

local CONF = nginx.conf {
    lua_path = "${root}/spec/helpers/?.lua;${lua_path}",
    dicts = { hostile = "1m" },
    http = "    lua_socket_log_errors off;\n",
    servers = {
        -- bookkeeping, plain HTTP
        { text = [[
        location /sent/ {
            content_by_lua_block { require("hostile_peer").sent() }
        }
        location = /reset {
            content_by_lua_block { require("hostile_peer").reset() }
        }
]] },
        -- the hostile answers, HTTPS for localhost
        { listen = "127.0.0.1:${port2}", ssl = { cert = "${prefix}/cert.pem", key = "${prefix}/key.pem" }, text = [[
        location / {
            content_by_lua_block { require("hostile_peer").serve() }
        }
]] },
    },
}

local Hostile = {}
Hostile.__index = Hostile

function Hostile:sent(name)
    local _, body = self.site:request("GET", "/sent/" .. name)
    return tonumber(body:match("%-?%d+"))
end

function Hostile:reset()
    self.site:request("GET", "/reset")
end

function Hostile:stop()
    self.site:stop()
    sh.run("rm -rf " .. sh.quote(self.dir))
end

function _M.start()
    -- a self-signed certificate for localhost, trusted as itself
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh.run("mkdir -p " .. sh.quote(dir)))
    local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    assert(sh.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        .. " -keyout " .. sh.quote(key) .. " -out " .. sh.quote(cert) .. " -days 2"
        .. " -subj '/CN=localhost' -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        .. " >/dev/null 2>&1"), "openssl failed")
    local site = nginx.start {
        conf = CONF,
        files = { ["cert.pem"] = sh.read_file(cert), ["key.pem"] = sh.read_file(key) },
    }
    local self = setmetatable({ site = site, dir = dir, ca_file = cert, port = site.port2 }, Hostile)
    self.url = function(path)
        return "https://localhost:" .. site.port2 .. path
    end
    return self
end

return _M
