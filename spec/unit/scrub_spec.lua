-- wecom.scrub: credentials out of text that goes into an error.
local scrub = require "wecom.scrub"

describe("wecom.scrub", function()
    it("value removes every copy of a credential", function()
        assert.equal("a *** b *** c", scrub.value("a tok.en b tok.en c", "tok.en"))
        assert.equal("nothing", scrub.value("nothing", "x"))
        assert.equal("same", scrub.value("same", nil))
        assert.equal("same", scrub.value("same", ""))
    end)

    it("a scrubber removes its secret and the given credentials, raw or URL-escaped", function()
        local s = scrub.new("se/cret+1")
        assert.equal("a *** b *** c ***", s("a se/cret+1 b se%2Fcret%2B1 c TOKEN", "TOKEN"))
        assert.equal("x *** y ***", s("x T1 y T2", "T1", nil, "T2"))
        assert.equal(42, s(42))
    end)

    it("removes anything that looks like a credential, whoever's it is", function()
        local s = scrub.new()
        for _, case in ipairs {
            { "see ?access_token=abc&x=1", "see ?access_token=***&x=1" },
            { "bad corpsecret=abc here", "bad corpsecret=*** here" },
            { "suite_secret=abc", "suite_secret=***" },
            { "url ticket=abc", "url ticket=***" },
            { "jsapi_ticket=abc'", "jsapi_ticket=***'" },
            { 'bad "access_token":"abc"', 'bad "access_token":"***"' },
            { 'bad "corpsecret" : "abc"', 'bad "corpsecret" : "***"' },
            { 'a "suite_access_token":"abc"', 'a "suite_access_token":"***"' },
            { 'a "permanent_code":"abc" permanent_code=def', 'a "permanent_code":"***" permanent_code=***' },
            { "errcode=40014 stays", "errcode=40014 stays" },
        } do
            assert.equal(case[2], s(case[1]))
        end
    end)
end)
