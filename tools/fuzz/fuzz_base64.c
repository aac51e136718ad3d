/*
 * fuzz_base64.c - core.base64_decode / base64_encode against a plain
 * reference written here, and crypter:decrypt on arbitrary text.
 *
 * - base64_decode(s) succeeds exactly when s is strict padded base64
 *   (length a multiple of 4, '=' only as the last one or two characters,
 *   nothing outside the alphabet; unused low bits are not checked) and
 *   then returns the reference's bytes;
 * - base64_encode(s) equals the reference encoding, and decodes back to s;
 * - crypter:decrypt(s) returns msg, receive_id or nil, message, code with
 *   one of the documented codes, and never raises.
 */
#include "fuzz_lua.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value_of(unsigned char c)
{
    const char *p = c != 0 ? strchr(alphabet, c) : NULL;
    return p != NULL ? (int)(p - alphabet) : -1;
}

/* Reference decoder, one character at a time: the length, or -1. */
static long ref_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t i, pad = 0, o = 0;
    unsigned bits = 0, nbits = 0;

    if (n % 4 != 0)
        return -1;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    if (pad == 2 && s[n - 1] != '=')
        return -1;
    for (i = 0; i < n - pad; i++) {
        int v = value_of(s[i]);
        if (v < 0)
            return -1;
        bits = (bits << 6 | (unsigned)v) & 0xffffff;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out[o++] = (uint8_t)(bits >> nbits);
        }
    }
    return (long)o;
}

static size_t ref_encode(const uint8_t *s, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    uint8_t *dec = malloc(size + 1);
    char *enc = malloc(size / 3 * 4 + 8);
    long want;
    size_t enc_len;
    int n, top;

    if (dec == NULL || enc == NULL)
        abort();

    /* decode */
    want = ref_decode(data, size, dec);
    fuzz_core_fn(L, "base64_decode");
    lua_pushlstring(L, (const char *)data, size);
    top = lua_gettop(L) - 1;
    n = fuzz_call(L, 1, "base64_decode");
    if (want < 0) {
        FUZZ_CHECK(L, n == 2 && lua_isnil(L, top), "accepted what the reference refuses");
    } else {
        FUZZ_CHECK(L, n == 1 && lua_type(L, top) == LUA_TSTRING, "refused what the reference accepts");
        FUZZ_CHECK(L, lua_rawlen(L, top) == (size_t)want
                          && memcmp(lua_tostring(L, top), dec, (size_t)want) == 0,
                   "decoded bytes differ from the reference");
    }
    lua_settop(L, CORE);

    /* encode, and back */
    enc_len = ref_encode(data, size, enc);
    fuzz_core_fn(L, "base64_encode");
    lua_pushlstring(L, (const char *)data, size);
    top = lua_gettop(L) - 1;
    n = fuzz_call(L, 1, "base64_encode");
    FUZZ_CHECK(L, n == 1 && lua_rawlen(L, top) == enc_len
                      && memcmp(lua_tostring(L, top), enc, enc_len) == 0,
               "encoding differs from the reference");
    fuzz_core_fn(L, "base64_decode");
    lua_pushvalue(L, top);
    n = fuzz_call(L, 1, "base64_decode");
    FUZZ_CHECK(L, n == 1 && lua_rawlen(L, -1) == size && memcmp(lua_tostring(L, -1), data, size) == 0,
               "decode(encode(s)) ~= s");
    lua_settop(L, CORE);

    /* the crypter's decrypt on the same text */
    fuzz_core_fn(L, "crypter");
    lua_pushliteral(L, "QDG6eK");
    lua_pushliteral(L, "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C");
    fuzz_call(L, 2, "crypter");
    lua_getfield(L, -1, "decrypt");
    lua_insert(L, -2);
    lua_pushlstring(L, (const char *)data, size);
    top = lua_gettop(L) - 2;
    n = fuzz_call(L, 2, "decrypt");
    if (lua_isnil(L, top)) {
        lua_Integer code = lua_tointeger(L, top + 2);
        FUZZ_CHECK(L, n == 3 && (code == -40007 || code == -40008 || code == -40010)
                          && lua_type(L, top + 1) == LUA_TSTRING,
                   "decrypt failed with an undocumented code");
        FUZZ_CHECK(L, (code == -40010) == (want < 0), "-40010 exactly for invalid base64");
    } else {
        FUZZ_CHECK(L, n == 2 && lua_type(L, top) == LUA_TSTRING && lua_type(L, top + 1) == LUA_TSTRING,
                   "decrypt succeeded without msg, receive_id");
    }

    free(dec);
    free(enc);
    fuzz_done(L);
    return 0;
}
