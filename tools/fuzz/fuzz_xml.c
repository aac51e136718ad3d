/*
 * fuzz_xml.c - core.xml_decode, differential: the hand-written fast path
 * against expat.
 *
 * For each input (an XML document, as is):
 * - parser = "fast" succeeds  =>  parser = "expat" succeeds with the same
 *   table and root name (the fast path may only accept what expat accepts,
 *   and must read it the same way);
 * - parser = "auto" (the default) returns exactly what "expat" returns,
 *   error messages included;
 * - the same with max_depth = 2, where the depth limit decides.
 * ASan/UBSan/LSan watch for memory errors on the way.
 */
#include "fuzz_lua.h"

/* Pushes the results of xml_decode(s, { parser = parser, max_depth = depth })
 * (depth 0: the default) and returns their first stack index; always two
 * values: tbl, root or nil, err. */
static int decode(lua_State *L, const uint8_t *s, size_t len, const char *parser, int depth)
{
    int base = lua_gettop(L) + 1, n;

    fuzz_core_fn(L, "xml_decode");
    lua_pushlstring(L, (const char *)s, len);
    lua_createtable(L, 0, 2);
    if (parser != NULL) {
        lua_pushstring(L, parser);
        lua_setfield(L, -2, "parser");
    }
    if (depth > 0) {
        lua_pushinteger(L, depth);
        lua_setfield(L, -2, "max_depth");
    }
    n = fuzz_call(L, 2, "xml_decode");
    FUZZ_CHECK(L, n == 2, "xml_decode returned %d values", n);
    FUZZ_CHECK(L, lua_type(L, base) == LUA_TTABLE || (lua_isnil(L, base) && lua_type(L, base + 1) == LUA_TSTRING),
               "xml_decode: neither tbl, root nor nil, err");
    if (lua_type(L, base) == LUA_TTABLE)
        FUZZ_CHECK(L, lua_type(L, base + 1) == LUA_TSTRING, "root name is not a string");
    return base;
}

static void differential(lua_State *L, const uint8_t *data, size_t size, int depth)
{
    int fast = decode(L, data, size, "fast", depth);
    int expat = decode(L, data, size, "expat", depth);
    int any = decode(L, data, size, NULL, depth);

    if (lua_istable(L, fast))
        FUZZ_CHECK(L, fuzz_equal_n(L, fast, expat, 2),
                   "fast path and expat disagree (max_depth %d)", depth);
    else    /* its own refusal, or a check made before either parser runs */
        FUZZ_CHECK(L, strcmp(lua_tostring(L, fast + 1), "xml: outside the fast subset") == 0
                          || fuzz_equal_n(L, fast, expat, 2),
                   "the fast path reported an error of its own");
    FUZZ_CHECK(L, fuzz_equal_n(L, any, expat, 2), "auto and expat disagree (max_depth %d)", depth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();

    differential(L, data, size, 0);
    differential(L, data, size, 2);
    fuzz_done(L);
    return 0;
}
