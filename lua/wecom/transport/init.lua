-- wecom.transport: the HTTP transport, picked once, at load.
--
-- Inside nginx (wecom.env.in_nginx) the cosocket transport
-- (wecom.transport.ngx) is used when it is installed, so no request blocks
-- the worker; everywhere else libcurl through wecom.core
-- (wecom.transport.curl).  Both take the same options, with the same
-- defaults, checked here once:
--
--   transport.new{
--     timeout         = 5,        -- seconds for the whole request: connect,
--                                 -- TLS, sending, and the response to its
--                                 -- last byte (a deadline, not an idle timer)
--     connect_timeout = timeout,  -- seconds for connect + TLS handshake,
--                                 -- within timeout
--     max_body        = 8 MiB,    -- bytes of response body; more is a
--                                 -- "transport" error (curl_code 63)
--     user_agent      = "wecom-lua/<version>",
--     ca_file         = nil,      -- PEM bundle that replaces the system CAs
--                                 -- (curl; ignored in nginx, with a warning:
--                                 -- lua_ssl_trusted_certificate decides)
--     proxy           = nil,      -- proxy URL (curl; refused in nginx)
--     noproxy         = nil,      -- hosts that skip the proxy (curl; ignored
--                                 -- in nginx)
--   } -> transport
--   transport:request{ method, url, headers, body [, timeout] }
--     -> { status, headers = { ["lower-case name"] = "v1, v2" }, body }
--      | nil, { kind = "transport" | "timeout" | "tls", message, curl_code }
--   transport:close()
--
-- Both transports also cap the response header block (status line, header
-- lines, trailers) at 256 KiB.  Errors carry libcurl's code for the failure
-- on both, so the client's retry policy treats them alike; messages name
-- host:port, never the path or the query (an access_token lives there).

local package = package
local require = require

local env = require "wecom.env"
local errors = require "wecom.errors"

local _M = {}

local MAX_BODY_LIMIT = 1024 * 1024 * 1024

_M.DEFAULTS = {
    timeout = 5,
    max_body = 8 * 1024 * 1024,
    user_agent = "wecom-lua/" .. require("wecom.version"),
}

_M.OPTIONS = {
    timeout = errors.seconds,
    connect_timeout = errors.seconds,
    max_body = errors.kind("a number of bytes from 1 to " .. MAX_BODY_LIMIT, function(v)
        return errors.is_integer(v, 1, MAX_BODY_LIMIT)
    end),
    user_agent = errors.string,
    ca_file = errors.string,
    proxy = errors.string,
    noproxy = errors.any_string,
}

-- options(where, opts [, level]) -> a new table: opts checked, defaults
-- filled in (connect_timeout: timeout, or less).  Raises naming `where`.
function _M.options(where, opts, level)
    level = (level or 2) + 1
    errors.options(where, opts, _M.OPTIONS, nil, level)
    local defaults = _M.DEFAULTS
    local timeout = opts.timeout or defaults.timeout
    local connect_timeout = opts.connect_timeout
    if connect_timeout == nil or connect_timeout > timeout then
        connect_timeout = timeout
    end
    return {
        timeout = timeout,
        connect_timeout = connect_timeout,
        max_body = opts.max_body or defaults.max_body,
        user_agent = opts.user_agent or defaults.user_agent,
        ca_file = opts.ca_file,
        proxy = opts.proxy,
        noproxy = opts.noproxy,
    }
end

local function picked()
    if env.in_nginx and package.searchpath
        and package.searchpath("wecom.transport.ngx", package.path) then
        return "wecom.transport.ngx"
    end
    return "wecom.transport.curl"
end

-- (its new() requires this module for the options)
local impl = require(picked())

_M.name = impl.name
_M.new = impl.new

return _M
