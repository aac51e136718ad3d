-- Encrypted corpids (and open_userids, the new external_userids) are
-- case-sensitive (reference/wecom-provider-api.md §6.1, doc 39442): two
-- corpids that differ only in case are two corps.  Nothing may fold them:
-- not the keys the SDK builds, not a store, not the callback's receive id.

local core = require "wecom.core"
local token = require "wecom.token"
local idconvert = require "wecom.api.idconvert"
local callback = require "wecom.callback"
local sh = require "helpers.sh"

local A, B = "wpAbCdEfGh0123456789", "wpabcdefgh0123456789"

describe("case-sensitive corpids", function()
    it("get keys of their own", function()
        assert.not_equal(token.app_key(A, 1, "s"), token.app_key(B, 1, "s"))
        assert.not_equal(token.downstream_key("wwUP", 1, A, 2, 1), token.downstream_key("wwUP", 1, B, 2, 1))
        assert.not_equal(idconvert.mass_call_key { corpid = A }, idconvert.mass_call_key { corpid = B })
    end)

    it("do not share an entry in the memory store", function()
        local store = require("wecom.store.memory").new()
        local ka, kb = "wecom:case:" .. A, "wecom:case:" .. B
        assert(store:set(ka, "a", core.now() + 60))
        assert(store:set(kb, "b", core.now() + 60))
        assert.equal("a", (store:get(ka)))
        assert.equal("b", (store:get(kb)))
    end)

    it("get file names that differ even on a case-insensitive file system", function()
        local dir = os.tmpname()
        os.remove(dir)
        local store = require("wecom.store.file").new(dir)
        assert(store:set("wecom:token:" .. A .. ":1:x", "a", core.now() + 60))
        assert(store:set("wecom:token:" .. B .. ":1:x", "b", core.now() + 60))
        local names = {}
        local listing = sh.capture("ls -1 " .. sh.quote(dir))
        for name in listing:gmatch("[^\n]+") do
            local folded = name:lower()
            assert.is_nil(names[folded], name .. " and " .. tostring(names[folded]) .. " fold to one name")
            names[folded] = name
        end
        assert.equal("a", (store:get("wecom:token:" .. A .. ":1:x")))
        assert.equal("b", (store:get("wecom:token:" .. B .. ":1:x")))
        sh.run("rm -rf " .. sh.quote(dir))
    end)

    it("must match the receive id exactly", function()
        local key = "CaSeSpEcKeY0123456789abcdefghijklmnopqrstuv"
        local sender = callback.new { token = "t", aes_key = key, receive_id = A }
        local body, query = assert(sender:encrypt_event("<xml><Event>x</Event></xml>"))
        local exact = callback.new { token = "t", aes_key = key, receive_id = A }
        assert(exact:decrypt(query, body))
        local folded = callback.new { token = "t", aes_key = key, receive_id = B }
        local none, err = folded:decrypt(query, body)
        assert.is_nil(none)
        assert.equal(-40005, err.code)
    end)
end)
