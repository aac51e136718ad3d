/*
 * fuzz_callback_open.c - core.callback_open (envelope scan, verify,
 * decrypt, event decode in one C call) against the general path it stands
 * for: xml_decode(body).Encrypt, crypter:open, xml_decode(msg).
 *
 * The crypter is fixed (reference §7.7 V1).  The first input byte picks
 * how the rest is used (fields separated by 0xff bytes):
 *   0  sig | ts | nonce | body           as they come
 *   1  ts | nonce | body                 signed correctly when the body
 *                                        has an Encrypt string, so the
 *                                        fuzzer gets past the signature
 *   2  raw ciphertext                    base64'd into a valid, signed
 *                                        envelope (padding and framing)
 *   3  msg | receive_id                  encrypted into a valid, signed
 *                                        envelope: must come back as is,
 *                                        msg decoded as xml_decode does
 * In every mode callback_open must answer what the general path answers
 * (failures: nil, message, code as crypter:open; an event only where
 * xml_decode(msg) gives one, else msg, receive_id alone), or false exactly
 * where the general path finds no Encrypt string.
 */
#include "fuzz_lua.h"

#define TOKEN       "QDG6eK"
#define AES_KEY     "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
#define RANDOM16    "0960688932c47ef1"
#define MAX_BODY    (1024 * 1024)

static int crypter_ref = LUA_NOREF;

static void push_crypter(lua_State *L)
{
    if (crypter_ref == LUA_NOREF) {
        fuzz_core_fn(L, "crypter");
        lua_pushliteral(L, TOKEN);
        lua_pushliteral(L, AES_KEY);
        if (fuzz_call(L, 2, "crypter") != 1)
            abort();
        crypter_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, crypter_ref);
}

/* Pushes crypter[method] and the crypter (ready for n more arguments). */
static void push_method(lua_State *L, const char *method)
{
    push_crypter(L);
    lua_getfield(L, -1, method);
    lua_insert(L, -2);
}

/* Pushes the signature of ts, nonce and the string at enc. */
static void push_signature(lua_State *L, int ts, int nonce, int enc)
{
    push_method(L, "signature");
    lua_pushvalue(L, ts);
    lua_pushvalue(L, nonce);
    lua_pushvalue(L, enc);
    fuzz_call(L, 4, "signature");
}

/* Pushes xml_decode(s)'s two results. */
static void xml_decode(lua_State *L, int s)
{
    fuzz_core_fn(L, "xml_decode");
    lua_pushvalue(L, s);
    fuzz_call(L, 1, "xml_decode");
}

/* Pushes body's Encrypt string as the general path finds it, or nil. */
static void push_encrypt(lua_State *L, int body)
{
    size_t len = 0;

    lua_tolstring(L, body, &len);
    if (len == 0 || len > MAX_BODY) {
        lua_pushnil(L);
        return;
    }
    xml_decode(L, body);
    lua_pop(L, 1);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "Encrypt");
        lua_remove(L, -2);
        if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
            return;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
}

/*
 * Runs callback_open on the four strings at sig.. and checks it against
 * the general path.  Returns the stack index of its first result.
 */
static int check_open(lua_State *L, int sig)
{
    int got, n, enc, want, want_n, event;

    fuzz_core_fn(L, "callback_open");
    push_crypter(L);
    lua_pushvalue(L, sig);
    lua_pushvalue(L, sig + 1);
    lua_pushvalue(L, sig + 2);
    lua_pushvalue(L, sig + 3);
    got = lua_gettop(L) - 5;
    n = fuzz_call(L, 5, "callback_open");

    push_encrypt(L, sig + 3);
    enc = lua_gettop(L);
    if (lua_isnil(L, enc)) {
        FUZZ_CHECK(L, n == 1 && lua_type(L, got) == LUA_TBOOLEAN && !lua_toboolean(L, got),
                   "no Encrypt string in the body, yet callback_open did not answer false");
        return got;
    }
    FUZZ_CHECK(L, !(lua_type(L, got) == LUA_TBOOLEAN && !lua_toboolean(L, got)),
               "callback_open answered false for a body with an Encrypt string");

    push_method(L, "open");
    lua_pushvalue(L, sig);
    lua_pushvalue(L, sig + 1);
    lua_pushvalue(L, sig + 2);
    lua_pushvalue(L, enc);
    want = lua_gettop(L) - 5;
    want_n = fuzz_call(L, 5, "open");
    if (lua_isnil(L, want)) {
        FUZZ_CHECK(L, want_n == 3 && n == 3 && fuzz_equal_n(L, got, want, 3),
                   "callback_open and crypter:open fail differently");
        return got;
    }
    FUZZ_CHECK(L, want_n == 2 && n >= 2 && fuzz_equal_n(L, got, want, 2),
               "callback_open and crypter:open decrypt differently");
    if (lua_tostring(L, want)[0] != '<') {
        FUZZ_CHECK(L, n == 2, "callback_open decoded a message that is not XML");
        return got;
    }
    xml_decode(L, want);
    event = lua_gettop(L) - 1;
    if (lua_istable(L, event))
        FUZZ_CHECK(L, n == 3 && fuzz_equal(L, got + 2, event, 0),
                   "callback_open's event is not xml_decode(msg)");
    else    /* the caller's own xml_decode reports it */
        FUZZ_CHECK(L, n == 2, "callback_open decoded a message xml_decode refuses");
    return got;
}

/* Pushes a WeCom-shaped envelope around the base64 string at b64. */
static void push_envelope(lua_State *L, int b64)
{
    lua_pushliteral(L, "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<Encrypt><![CDATA[");
    lua_pushvalue(L, b64);
    lua_pushliteral(L, "]]></Encrypt>\n<AgentID><![CDATA[218]]></AgentID>\n</xml>");
    lua_concat(L, 3);
}

/* Builds sig, ts, nonce, body on the stack for a valid envelope around the
 * base64 string at b64, and checks callback_open on them. */
static int open_enveloped(lua_State *L, int b64)
{
    int sig = lua_gettop(L) + 1;

    lua_pushnil(L);                         /* sig, filled in below */
    lua_pushliteral(L, "1409659813");
    lua_pushliteral(L, "1372623149");
    push_envelope(L, b64);
    push_signature(L, sig + 1, sig + 2, b64);
    lua_replace(L, sig);
    return check_open(L, sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    const char *field[4];
    size_t len[4];
    int mode, n, i, base, got;

    if (size == 0)
        return 0;
    mode = data[0] & 3;
    n = fuzz_split(data + 1, size - 1, field, len, mode == 0 ? 4 : mode == 1 ? 3 : mode == 2 ? 1 : 2);
    base = lua_gettop(L) + 1;
    for (i = 0; i < n; i++)
        lua_pushlstring(L, field[i], len[i]);

    switch (mode) {
    case 0:
        for (; n < 4; n++)
            lua_pushliteral(L, "");
        check_open(L, base);
        break;
    case 1:
        for (; n < 3; n++)
            lua_pushliteral(L, "");
        push_encrypt(L, base + 2);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "0000000000000000000000000000000000000000");
        } else {
            push_signature(L, base, base + 1, lua_gettop(L));
            lua_remove(L, -2);
        }
        lua_insert(L, base);
        check_open(L, base);
        break;
    case 2:
        fuzz_core_fn(L, "base64_encode");
        lua_pushvalue(L, base);
        fuzz_call(L, 1, "base64_encode");
        open_enveloped(L, lua_gettop(L));
        break;
    default:
        if (n < 2)
            lua_pushliteral(L, "");
        push_method(L, "encrypt");
        lua_pushvalue(L, base);
        lua_pushvalue(L, base + 1);
        lua_pushliteral(L, RANDOM16);
        fuzz_call(L, 4, "encrypt");
        FUZZ_CHECK(L, lua_type(L, -1) == LUA_TSTRING, "encrypt failed");
        got = open_enveloped(L, lua_gettop(L));
        FUZZ_CHECK(L, lua_rawequal(L, got, base) && lua_rawequal(L, got + 1, base + 1),
                   "msg and receive_id did not survive encrypt + callback_open");
        break;
    }
    fuzz_done(L);
    return 0;
}
