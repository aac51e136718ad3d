/*
 * fuzz_redis_reader.c - core.redis_reader (hiredis's RESP reader behind
 * the cosocket store) and core.redis_format.
 *
 * The first input byte picks the mode:
 *   even  the rest is bytes from a server: fed to one reader at once and
 *         to another in pieces (sizes drawn from the first byte), draining
 *         get_reply after each feed; both must read the same replies and
 *         fail at the same point, with the documented shapes
 *   odd   the rest is command arguments (separated by 0xff): redis_format
 *         of them, read back by a reader, must be the list of arguments
 */
#include "fuzz_lua.h"

#define MAX_REPLIES 64

/* Pushes a new reader. */
static void new_reader(lua_State *L)
{
    fuzz_core_fn(L, "redis_reader");
    fuzz_call(L, 0, "redis_reader");
}

/* reader:method(arg...) with the reader at r and nargs arguments on top. */
static int reader_call(lua_State *L, int r, const char *method, int nargs)
{
    int n;

    lua_getfield(L, r, method);
    lua_pushvalue(L, r);
    lua_rotate(L, -2 - nargs, 2);
    n = fuzz_call(L, 1 + nargs, method);
    return n;
}

/* Drains the reader at r into the list at out (each reply, or a table
 * { error = msg, marker = m }); returns 0 once the reader failed. */
static int drain(lua_State *L, int r, int out)
{
    int n, top;

    for (;;) {
        top = lua_gettop(L);
        n = reader_call(L, r, "get_reply", 0);
        if (n == 1 && lua_type(L, top + 1) == LUA_TBOOLEAN && !lua_toboolean(L, top + 1)) {
            lua_settop(L, top);
            return 1;                                   /* needs more bytes */
        }
        FUZZ_CHECK(L, lua_rawlen(L, out) < 100000, "endless replies");
        if (n == 3 && lua_isnil(L, top + 1)) {
            const char *marker = lua_tostring(L, top + 3);
            FUZZ_CHECK(L, lua_type(L, top + 2) == LUA_TSTRING && marker != NULL
                              && (strcmp(marker, "redis") == 0 || strcmp(marker, "protocol") == 0),
                       "get_reply failed without nil, message, marker");
            lua_createtable(L, 0, 2);
            lua_pushvalue(L, top + 2);
            lua_setfield(L, -2, "error");
            lua_pushvalue(L, top + 3);
            lua_setfield(L, -2, "marker");
            lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
            lua_settop(L, top);
            if (strcmp(marker, "protocol") == 0)
                return 0;
            continue;
        }
        FUZZ_CHECK(L, n == 1, "get_reply returned %d values", n);
        if (lua_isnil(L, top + 1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "(nil reply)");     /* a list cannot hold nil */
        }
        lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
        lua_settop(L, top);
    }
}

/* Feeds the string at s to the reader at r; 0 on a protocol error (then
 * recorded into out like drain does). */
static int feed(lua_State *L, int r, int s, int out)
{
    int top = lua_gettop(L), n;

    lua_pushvalue(L, s);
    n = reader_call(L, r, "feed", 1);
    if (n == 1 && lua_toboolean(L, top + 1)) {
        lua_settop(L, top);
        return 1;
    }
    FUZZ_CHECK(L, n == 3 && lua_isnil(L, top + 1) && strcmp(lua_tostring(L, top + 3), "protocol") == 0,
               "feed failed without nil, message, 'protocol'");
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, top + 2);
    lua_setfield(L, -2, "error");
    lua_pushvalue(L, top + 3);
    lua_setfield(L, -2, "marker");
    lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
    lua_settop(L, top);
    return 0;
}

/*
 * hiredis (0.14) callocs an array's element pointers as soon as it reads
 * "*<count>", so "*2000000000" asks for 16 GB up front.  Left to the OS
 * that is address space, not memory (calloc of fresh pages; a count beyond
 * RAM fails and the reader says "Out of memory"), and the counts come from
 * the Redis server the store talks to; but libFuzzer's malloc limit would
 * stop on it every time.  Such inputs are skipped.
 */
static int declares_huge_array(const uint8_t *data, size_t size)
{
    size_t i;

    for (i = 0; i < size; i++) {
        unsigned long long count = 0;
        size_t j = i + 1;
        int negative;

        if (data[i] != '*')
            continue;
        negative = j < size && data[j] == '-';
        if (j < size && (data[j] == '-' || data[j] == '+'))
            j++;
        for (; j < size && data[j] >= '0' && data[j] <= '9' && count <= 1u << 20; j++)
            count = count * 10 + (data[j] - '0');
        /* a negative count other than -1 becomes a huge size_t too */
        if (count > 1u << 20 || (negative && count > 1))
            return 1;
    }
    return 0;
}

static void server_bytes(lua_State *L, uint8_t seed, const uint8_t *data, size_t size)
{
    int whole, pieces, r, s;
    size_t at = 0, step;
    uint32_t x = seed * 2654435761u + 1;

    lua_newtable(L);
    whole = lua_gettop(L);
    new_reader(L);
    r = lua_gettop(L);
    lua_pushlstring(L, (const char *)data, size);
    s = lua_gettop(L);
    if (feed(L, r, s, whole))
        drain(L, r, whole);
    reader_call(L, r, "close", 0);
    lua_settop(L, whole);

    lua_newtable(L);
    pieces = lua_gettop(L);
    new_reader(L);
    r = lua_gettop(L);
    while (at < size) {
        x = x * 1103515245u + 12345u;
        step = 1 + (x >> 16) % 16;
        if (step > size - at)
            step = size - at;
        lua_pushlstring(L, (const char *)data + at, step);
        s = lua_gettop(L);
        at += step;
        if (!feed(L, r, s, pieces) || !drain(L, r, pieces))
            break;
        lua_settop(L, r);
    }
    lua_settop(L, pieces);
    FUZZ_CHECK(L, fuzz_equal(L, whole, pieces, 0), "replies differ between one feed and pieces");
}

static void format_roundtrip(lua_State *L, const uint8_t *data, size_t size)
{
    const char *field[64];
    size_t len[64];
    int n, i, base, r, out;

    n = fuzz_split(data, size, field, len, 64);
    luaL_checkstack(L, 2 * n + 16, "format_roundtrip");
    lua_newtable(L);
    out = lua_gettop(L);
    new_reader(L);
    r = lua_gettop(L);
    fuzz_core_fn(L, "redis_format");
    base = lua_gettop(L) + 1;
    for (i = 0; i < n; i++)
        lua_pushlstring(L, field[i], len[i]);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        lua_pushvalue(L, base + i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_insert(L, base - 1);                    /* the list, below redis_format */
    fuzz_call(L, n, "redis_format");
    FUZZ_CHECK(L, lua_type(L, -1) == LUA_TSTRING, "redis_format returned no string");
    FUZZ_CHECK(L, feed(L, r, lua_gettop(L), out) && drain(L, r, out), "the reader refused a formatted command");
    lua_rawgeti(L, out, 1);
    FUZZ_CHECK(L, lua_rawlen(L, out) == 1 && fuzz_equal(L, -1, base - 1, 0),
               "formatted arguments did not read back as themselves");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();

    if (size == 0)
        return 0;
    if (data[0] & 1)
        format_roundtrip(L, data + 1, size - 1);
    else if (!declares_huge_array(data + 1, size - 1))
        server_bytes(L, data[0], data + 1, size - 1);
    fuzz_done(L);
    return 0;
}
