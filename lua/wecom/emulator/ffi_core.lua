-- The part of wecom.core the emulator's pushes need (crypter: encrypt and
-- signature), through LuaJIT's FFI and the OpenSSL nginx itself links.
--
-- Used when no wecom.core built for LuaJIT is at hand: a rock installed for
-- lua5.4 has only a core for lua5.4, which nginx's LuaJIT cannot load.  The
-- launcher then puts a wecom/core.lua into the emulator's --dir that returns
-- this module; it runs only inside nginx (ffi, ngx.sha1_bin, base64).

local ffi = require "ffi"

local ngx = ngx
local byte = string.byte
local char = string.char
local concat = table.concat
local floor = math.floor
local format = string.format
local pcall = pcall
local sort = table.sort
local type = type
local error = error
local ipairs = ipairs
local setmetatable = setmetatable

local _M = { _FFI = true }

-- Each declaration on its own: another module of the same nginx (resty.aes,
-- resty.random) may have declared some already.
for _, decl in ipairs {
    "typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;",
    "typedef struct evp_cipher_st EVP_CIPHER;",
    "typedef struct engine_st ENGINE;",
    "EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);",
    "void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *c);",
    "const EVP_CIPHER *EVP_aes_256_cbc(void);",
    "int EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, ENGINE *impl,"
        .. " const unsigned char *key, const unsigned char *iv);",
    "int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX *c, int pad);",
    "int EVP_EncryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,"
        .. " const unsigned char *in, int inl);",
    "int EVP_EncryptFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl);",
    "int RAND_bytes(unsigned char *buf, int num);",
} do
    pcall(ffi.cdef, decl)
end

-- nginx links libcrypto, so its symbols are in the process already;
-- otherwise load it by name.
local function libcrypto()
    if pcall(function() return ffi.C.EVP_aes_256_cbc end) then
        return ffi.C
    end
    for _, name in ipairs { "crypto", "libcrypto.so.3", "libcrypto.so.1.1" } do
        local ok, lib = pcall(ffi.load, name)
        if ok and pcall(function() return lib.EVP_aes_256_cbc end) then
            return lib
        end
    end
    return nil
end

local C = libcrypto()

local ENCRYPT_AES = -40006
local PAD_BLOCK = 32
local MAX_BODY = 1024 * 1024

local function big_endian32(n)
    return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

local function hex(s)
    return (s:gsub(".", function(c) return format("%02x", byte(c)) end))
end

local crypter = {}
crypter.__index = crypter

-- encrypt(msg, receive_id) -> base64 | nil, msg, code (WXBizMsgCrypt framing;
-- the shapes of wecom.core's crypter)
function crypter:encrypt(msg, receive_id)
    if #msg > MAX_BODY or #receive_id > MAX_BODY then
        return nil, "message over 1 MiB", ENCRYPT_AES
    end
    local random = ffi.new("unsigned char[16]")
    if C.RAND_bytes(random, 16) ~= 1 then
        return nil, "the OpenSSL CSPRNG failed", ENCRYPT_AES
    end
    local body = ffi.string(random, 16) .. big_endian32(#msg) .. msg .. receive_id
    local pad = PAD_BLOCK - #body % PAD_BLOCK
    local plain = body .. char(pad):rep(pad)

    local ctx = C.EVP_CIPHER_CTX_new()
    if ctx == nil then
        return nil, "out of memory in OpenSSL", ENCRYPT_AES
    end
    local out = ffi.new("unsigned char[?]", #plain + 32)
    local n, m = ffi.new("int[1]"), ffi.new("int[1]")
    local key = ffi.cast("const unsigned char *", self.key)   -- the IV is its first 16 bytes
    local ok = C.EVP_EncryptInit_ex(ctx, C.EVP_aes_256_cbc(), nil, key, key) == 1
        and C.EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
        and C.EVP_EncryptUpdate(ctx, out, n, ffi.cast("const unsigned char *", plain), #plain) == 1
        and C.EVP_EncryptFinal_ex(ctx, out + n[0], m) == 1
    C.EVP_CIPHER_CTX_free(ctx)
    if not ok then
        return nil, "AES encryption failed", ENCRYPT_AES
    end
    return ngx.encode_base64(ffi.string(out, n[0] + m[0]))
end

-- signature(timestamp, nonce, encrypted) -> sha1 hex of the four sorted pieces
function crypter:signature(timestamp, nonce, encrypted)
    local pieces = { self.token, timestamp, nonce, encrypted }
    sort(pieces)
    return hex(ngx.sha1_bin(concat(pieces)))
end

function crypter.close()
end

-- crypter(token, aes_key) -> crypter; raises for a bad key (as wecom.core's)
function _M.crypter(token, aes_key)
    if type(token) ~= "string" or type(aes_key) ~= "string" then
        error("wecom.core.crypter: token and aes_key must be strings", 2)
    end
    if not C then
        error("wecom.core.crypter: OpenSSL's libcrypto is not loadable through the FFI", 2)
    end
    if #aes_key ~= 43 then
        error("wecom.core.crypter: aes_key must be 43 characters of base64 (got " .. #aes_key .. " bytes)", 2)
    end
    local key = ngx.decode_base64(aes_key .. "=")
    if not key or #key ~= 32 then
        error("wecom.core.crypter: aes_key must be 43 characters of base64", 2)
    end
    return setmetatable({ token = token, key = key }, crypter)
end

return _M
