-- Response classification, the retry decision and error rendering: pure
-- functions of wecom.client, no network.
local client = require "wecom.client"
local errors = require "wecom.errors"

local function res(status, body)
    return { status = status, headers = {}, body = body }
end

local function classify(r, terr, is_read)
    return client.classify("POST", "/cgi-bin/x", r, terr, is_read)
end

describe("classify", function()
    it("returns the decoded data on errcode 0 or no errcode", function()
        local data = classify(res(200, '{"errcode":0,"errmsg":"ok","n":1}'))
        assert.equal(1, data.n)
        assert.same({ a = 1 }, classify(res(200, '{"a":1}')))
    end)

    it("maps errcodes to kinds", function()
        local cases = {
            { 40014, "token", false }, { 42001, "token", false }, { 40001, "token", false },
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

    it("calls bodies that are not JSON objects decode errors, with the status", function()
        for _, body in ipairs { "", "<html><body>502 Bad Gateway</body></html>", '{"errcode":0,"err',
                                                        "null", "[1,2]", '"text"' } do
            local data, err = classify(res(200, body))
            assert.is_nil(data)
            assert.equal("decode", err.kind, "body " .. body)
            assert.equal(200, err.http_status)
            assert.is_false(err.retryable)
        end
        local _, err = classify(res(200, "<!DOCTYPE html><html></html>"))
        assert.matches("HTML", err.errmsg, 1, true)
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
    end)
end)

describe("next_step", function()
    local function err(kind, errcode, retryable)
        return errors.new(kind, "m", { errcode = errcode, retryable = retryable })
    end

    it("refreshes the token once on 40001/40014/42001", function()
        for _, code in ipairs { 40001, 40014, 42001 } do
            local fresh = { refreshed = false, retries_used = 0, retries = 0 }
            assert.equal("refresh", client.next_step(err("token", code), fresh))
            assert.is_nil(client.next_step(err("token", code), { refreshed = true, retries_used = 0, retries = 2 }))
        end
        assert.is_nil(client.next_step(err("token", 41001), { refreshed = false, retries_used = 0, retries = 2 }))
    end)

    it("retries retryable errors up to the limit", function()
        local e = err("busy", -1, true)
        assert.equal("retry", client.next_step(e, { refreshed = false, retries_used = 0, retries = 2 }))
        assert.equal("retry", client.next_step(e, { refreshed = false, retries_used = 1, retries = 2 }))
        assert.is_nil(client.next_step(e, { refreshed = false, retries_used = 2, retries = 2 }))
        assert.is_nil(client.next_step(e, { refreshed = false, retries_used = 0, retries = 0 }))
    end)

    it("never retries rate limits or API errors", function()
        local state = { refreshed = false, retries_used = 0, retries = 5 }
        assert.is_nil(client.next_step(err("rate_limit", 45009, false), state))
        assert.is_nil(client.next_step(err("api", 60011, false), state))
    end)
end)

describe("backoff_delay", function()
    it("doubles, stays within [d/2, d] and is capped", function()
        assert.equal(0.25, client.backoff_delay(0.5, 1, 0))
        assert.equal(0.5, client.backoff_delay(0.5, 1, 1))
        assert.equal(1, client.backoff_delay(0.5, 3, 0))
        assert.equal(2, client.backoff_delay(0.5, 3, 1))
        assert.equal(8, client.backoff_delay(0.5, 30, 1))
    end)
end)

describe("error objects", function()
    it("render one line without the query string", function()
        local e = errors.new("api", "no privilege", {
            errcode = 60011, method = "GET", path = "/cgi-bin/user/get?access_token=TOKEN123&userid=u",
            http_status = 200 })
        local s = tostring(e)
        assert.equal("/cgi-bin/user/get", e.path)
        assert.not_matches("TOKEN123", s, 1, true)
        assert.not_matches("\n", s, 1, true)
        assert.matches("60011", s, 1, true)
    end)

    it("scrub removes every copy of a credential", function()
        assert.equal("a *** b *** c", client.scrub("a tok.en b tok.en c", "tok.en"))
        assert.equal("nothing", client.scrub("nothing", "x"))
        assert.equal("same", client.scrub("same", nil))
    end)
end)
