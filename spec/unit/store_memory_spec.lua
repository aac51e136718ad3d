-- wecom.store.memory (the C core's process-wide cache) keeps the store
-- contract (spec/helpers/store_contract.lua).
local core = require "wecom.core"
local memory = require "wecom.store.memory"
local contract = require "helpers.store_contract"

describe("wecom.store.memory", function()
    contract.describe(function()
        return {
            name = "memory",
            new = memory.new,
            -- the cache holds (value, expires_at): only an empty value can be
            -- damage here (an expiry that is no finite number is refused in C)
            raw = function(key, expires_text, value)
                local expires_at = tonumber(expires_text)
                if not expires_at or expires_at ~= expires_at or math.abs(expires_at) == math.huge then
                    return false
                end
                return core.token_set(key, value, expires_at)
            end,
            sleep = core.sleep,
            fill = 100001,     -- past the cache's 100,000 entries
        }
    end)

    it("is what wecom.store.memory builds, and every instance views one cache", function()
        local store = require("wecom").store.memory()
        assert.equal("wecom.store.memory", tostring(store))
        local key = "spec:memory:" .. core.nonce(8)
        assert.is_true(store:set(key, "V", core.now() + 60))
        assert.equal("V", (memory.new():get(key)))
        assert.equal("V", (core.token_get(key)))
    end)
end)
