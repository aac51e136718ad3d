-- wecom.transport.curl: HTTPS over the core's libcurl session.
--
-- One session per client keeps connections and TLS sessions alive.  Inside
-- wecom.parallel the request goes through the session's multi interface and
-- the calling task yields; anywhere else it blocks in libcurl.

local error = error
local setmetatable = setmetatable
local type = type

local core = require "wecom.core"
local parallel = require "wecom.parallel"

local _M = { name = "curl" }

local mt = { __index = _M }

-- new{ ca_file =, timeout =, connect_timeout =, proxy =, noproxy =, user_agent = }
function _M.new(opts)
    if type(opts) ~= "table" then
        error("wecom.transport.curl.new: opts must be a table", 2)
    end
    local session = core.http_session {
        ca_file = opts.ca_file,
        timeout = opts.timeout,
        connect_timeout = opts.connect_timeout,
        proxy = opts.proxy,
        noproxy = opts.noproxy,
        user_agent = opts.user_agent,
    }
    return setmetatable({ session = session }, mt)
end

-- The core fails with nil, message, kind, curl_code; a transport with nil, err.
local function result(res, message, kind, curl_code)
    if res then
        return res
    end
    return nil, { kind = kind, message = message, curl_code = curl_code }
end

-- request{ method =, url =, headers =, body =, timeout = }
--   -> { status =, headers =, body = } | nil, { kind =, message =, curl_code = }
function _M.request(self, req)
    local sched = parallel.current()
    if sched then
        return result(sched:http(self.session, req))
    end
    return result(self.session:request(req))
end

function _M.close(self)
    self.session:close()
end

function mt.__tostring()
    return "wecom.transport.curl"
end

return _M
