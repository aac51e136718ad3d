-- wecom.transport.curl: HTTPS over the core's libcurl session.
--
-- One session per client keeps connections and TLS sessions alive.  Inside
-- wecom.parallel the request goes through the session's multi interface and
-- the calling task yields; anywhere else it blocks in libcurl.

local require = require
local setmetatable = setmetatable

local core = require "wecom.core"
local parallel = require "wecom.parallel"

local _M = { name = "curl" }

local mt = { __index = _M }

-- new(opts) -> transport; opts as wecom.transport documents them.  libcurl
-- bounds the rest: CURLOPT_TIMEOUT is a deadline for the whole transfer,
-- the core caps the header block at 256 KiB and the body at max_body.
function _M.new(opts)
    local o = require("wecom.transport").options("wecom.transport.curl.new", opts)
    local session = core.http_session {
        ca_file = o.ca_file,
        timeout = o.timeout,
        connect_timeout = o.connect_timeout,
        max_body = o.max_body,
        proxy = o.proxy,
        noproxy = o.noproxy,
        user_agent = o.user_agent,
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
