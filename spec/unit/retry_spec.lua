-- wecom.retry: what an answer means and what the client does next, through
-- the module's own interface (pure functions, no network).
local retry = require "wecom.retry"
local errors = require "wecom.errors"

local function res(status, body)
    return { status = status, headers = {}, body = body }
end

local function classify(r, terr, is_read, scrub)
    return retry.classify({ method = "POST", path = "/cgi-bin/x", read = is_read, scrub = scrub }, r, terr)
end

describe("retry.classify", function()
    it("returns the decoded data and the status on errcode 0 or no errcode", function()
        local data, err, status = classify(res(200, '{"errcode":0,"errmsg":"ok","n":1}'))
        assert.equal(1, data.n)
        assert.is_nil(err)
        assert.equal(200, status)
        assert.same({ a = 1 }, (classify(res(200, '{"a":1}'))))
        assert.same({}, (classify(res(200, '{}'))))
    end)

    it("maps errcodes to kinds", function()
        local cases = {
            { 40014, "token", false }, { 42001, "token", false }, { 40001, "token", false },
            { 41001, "token", false },
            { -1, "busy", true }, { 45009, "rate_limit", false }, { 45033, "rate_limit", false },
            { 60011, "api", false }, { 48002, "api", false },
        }
        for _, c in ipairs(cases) do
            local data, err = classify(res(200, '{"errcode":' .. c[1] .. ',"errmsg":"m"}'), nil, true)
            assert.is_nil(data)
            assert.equal(c[2], err.kind, "errcode " .. c[1])
            assert.equal(c[1], err.errcode)
            assert.equal(c[3], err.retryable, "retryable for " .. c[1])
            assert.equal("m", err.errmsg)
            assert.equal("POST", err.method)
            assert.equal("/cgi-bin/x", err.path)
            assert.equal(200, err.http_status)
        end
    end)

    it("calls anything but exactly one JSON object a decode error, with the status", function()
        for _, body in ipairs { "", "<html><body>502 Bad Gateway</body></html>", '{"errcode":0,"err',
                                "null", "[1,2]", '"text"', "[]", "[{}]", "42", '{"a":1} {"b":2}',
                                '{"errcode":0,"errmsg":"ok"}\0garbage', '{"errcode":0}\0' } do
            local data, err = classify(res(200, body))
            assert.is_nil(data, "body " .. body)
            assert.equal("decode", err.kind, "body " .. body)
            assert.equal(200, err.http_status)
            assert.is_false(err.retryable)
        end
        local _, err = classify(res(200, "<!DOCTYPE html><html></html>"))
        assert.matches("HTML", err.errmsg, 1, true)
        _, err = classify(res(200, '{"errcode":"x"}'))
        assert.equal("decode", err.kind)
    end)

    it("treats 5xx as a transport error, retryable for reads and for gateway answers", function()
        local _, err = classify(res(500, "<html>oops</html>"), nil, true)
        assert.equal("transport", err.kind)
        assert.equal(500, err.http_status)
        assert.is_true(err.retryable)
        _, err = classify(res(500, "oops"), nil, false)
        assert.is_false(err.retryable)   -- a write the server may have applied
        _, err = classify(res(502, ""), nil, false)
        assert.is_true(err.retryable)    -- the gateway never reached the server
    end)

    it("treats other non-2xx answers without errcode as transport errors", function()
        local _, err = classify(res(404, '{"a":1}'))
        assert.equal("transport", err.kind)
        assert.equal(404, err.http_status)
        _, err = classify(res(403, "<html>forbidden</html>"))
        assert.equal("decode", err.kind)
        assert.equal(403, err.http_status)
    end)

    it("retries timeouts only for reads", function()
        local terr = { kind = "timeout", message = "Operation timed out", curl_code = 28 }
        local _, err = classify(nil, terr, true)
        assert.equal("timeout", err.kind)
        assert.is_true(err.retryable)
        _, err = classify(nil, terr, false)
        assert.is_false(err.retryable)
    end)

    it("retries connect failures always, broken connections only for reads", function()
        local _, err = classify(nil, { kind = "transport", message = "refused", curl_code = 7 }, false)
        assert.is_true(err.retryable)
        _, err = classify(nil, { kind = "transport", message = "Empty reply", curl_code = 52 }, false)
        assert.is_false(err.retryable)
        _, err = classify(nil, { kind = "transport", message = "Empty reply", curl_code = 52 }, true)
        assert.is_true(err.retryable)
        _, err = classify(nil, { kind = "tls", message = "certificate verify failed", curl_code = 60 }, true)
        assert.equal("tls", err.kind)
        assert.is_false(err.retryable)
        _, err = classify(nil, nil, true)
        assert.equal("transport", err.kind)
        assert.equal("request failed", err.errmsg)
    end)

    it("never retries a response over the size limit, even for a read", function()
        for _, code in ipairs { 63, 23 } do
            local _, err = classify(nil, { kind = "transport", curl_code = code,
                message = "response exceeds the size limit (max_body 1024 bytes)" }, true)
            assert.equal("transport", err.kind)
            assert.equal(code, err.curl_code)
            assert.is_false(err.retryable, "curl code " .. code)
        end
    end)

    it("passes server and transport text through req.scrub before it goes into the error", function()
        local function scrub(s) return (s:gsub("SECRET", "***")) end
        local _, err = classify(res(200, '{"errcode":60011,"errmsg":"no SECRET here"}'), nil, true, scrub)
        assert.equal("no *** here", err.errmsg)
        _, err = classify(nil, { kind = "transport", message = "failed ?SECRET", curl_code = 7 }, true, scrub)
        assert.equal("failed ?***", err.errmsg)
    end)

    it("scrubs before the text is cut: a credential across the cut never leaks in part", function()
        local secret = string.rep("S", 40)
        local msg = string.rep("x", 500) .. secret
        local function scrub(s) return (s:gsub(secret, "***")) end
        local _, err = classify(res(200, '{"errcode":60011,"errmsg":"' .. msg .. '"}'), nil, true, scrub)
        assert.not_matches("SSSS", err.errmsg, 1, true)
    end)
end)

describe("retry.next_step", function()
    local function err(kind, errcode, retryable)
        return errors.new(kind, "m", { errcode = errcode, retryable = retryable })
    end

    it("refreshes the token once on 40001/40014/42001/41001 when the request carried it", function()
        for _, code in ipairs { 40001, 40014, 42001, 41001 } do
            local state = retry.start(2, true)
            assert.equal("refresh", retry.next_step(err("token", code), state))
            assert.is_true(state.refreshed)
            assert.is_nil(retry.next_step(err("token", code), state))
        end
    end)

    it("refreshes a suite or provider token once on 40082/42009 (and 41022/41001 for a missing one)", function()
        local cases = {
            suite_access_token = { 40082, 42009, 41022 },
            provider_access_token = { 40082, 42009, 41001 },
        }
        for param, codes in pairs(cases) do
            for _, code in ipairs(codes) do
                local state = retry.start(2, param)
                assert.equal("refresh", retry.next_step(err("token", code), state), param .. " " .. code)
                assert.is_nil(retry.next_step(err("token", code), state))
            end
            -- an access_token's codes do not refresh these tokens, nor theirs an access_token
            assert.is_nil(retry.next_step(err("token", 40014), retry.start(2, param)))
        end
        for _, code in ipairs { 40082, 42009, 41022 } do
            assert.is_nil(retry.next_step(err("token", code), retry.start(2, true)))
        end
    end)

    it("classifies 40085 (no valid suite_ticket) and the suite token codes as token errors, never refreshed",
        function()
        for _, code in ipairs { 40085, 40082, 42009, 41022 } do
            local _, e = classify(res(200, '{"errcode":' .. code .. ',"errmsg":"x"}'), nil, true)
            assert.equal("token", e.kind, code)
            assert.is_false(e.retryable)
        end
        for _, param in ipairs { true, "suite_access_token", "provider_access_token" } do
            assert.is_nil(retry.next_step(err("token", 40085), retry.start(2, param)))
        end
    end)

    it("never refreshes for a request without our token (gettoken itself)", function()
        for _, code in ipairs { 40001, 40014, 42001, 41001 } do
            assert.is_nil(retry.next_step(err("token", code), retry.start(2, false)))
        end
    end)

    it("retries retryable errors up to the limit, counting them", function()
        local e = err("busy", -1, true)
        local state = retry.start(2, true)
        assert.equal("retry", retry.next_step(e, state))
        assert.equal(1, state.retries_used)
        assert.equal("retry", retry.next_step(e, state))
        assert.is_nil(retry.next_step(e, state))
        assert.equal(2, state.retries_used)
        assert.is_nil(retry.next_step(e, retry.start(0, true)))
    end)

    it("does not count the token refresh as a retry", function()
        local state = retry.start(1, true)
        assert.equal("refresh", retry.next_step(err("token", 40014), state))
        assert.equal("retry", retry.next_step(err("busy", -1, true), state))
    end)

    it("never retries rate limits or API errors", function()
        local state = retry.start(5, true)
        assert.is_nil(retry.next_step(err("rate_limit", 45009, false), state))
        assert.is_nil(retry.next_step(err("api", 60011, false), state))
    end)
end)

describe("retry.delay", function()
    it("doubles, stays within [d/2, d] and is capped", function()
        assert.equal(0.25, retry.delay(0.5, 1, 0))
        assert.equal(0.5, retry.delay(0.5, 1, 1))
        assert.equal(1, retry.delay(0.5, 3, 0))
        assert.equal(2, retry.delay(0.5, 3, 1))
        assert.equal(retry.MAX_BACKOFF, retry.delay(0.5, 30, 1))
        assert.equal(0, retry.delay(0, 3))
    end)

    it("draws its own jitter when none is given", function()
        for _ = 1, 20 do
            local d = retry.delay(1, 2)
            assert.is_true(d >= 1 and d <= 2, d)
        end
    end)
end)
