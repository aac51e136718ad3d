/*
 * token_threads.c - two lua_States in two threads share wecom.core's token
 * cache and its locks.  Built and run by spec/unit/core_token_spec.lua:
 *
 *   token_threads <cpath pattern> <key prefix>
 *
 * Prints "ok <phase>" lines and exits 0, or prints the failure and exits 1.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define ROUNDS 2000
#define STR(x) #x
#define XSTR(x) STR(x)

static const char *cpath;
static const char *prefix;
static pthread_barrier_t barrier;
static int failed;
static long shared_counter;   /* guarded only by core.token_lock */

/* read, yield, write: lost updates show up unless the Lua-level lock works */
static int bump(lua_State *L)
{
    long v = shared_counter;
    sched_yield();
    shared_counter = v + 1;
    (void)L;
    return 0;
}

static lua_State *open_state(void)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return NULL;
    luaL_openlibs(L);
    lua_register(L, "bump", bump);
    lua_getglobal(L, "package");
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_pushstring(L, prefix);
    lua_setglobal(L, "P");
    if (luaL_dostring(L, "core = require 'wecom.core'") != 0) {
        fprintf(stderr, "require: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

static void run(lua_State *L, const char *who, const char *chunk)
{
    if (luaL_dostring(L, chunk) != 0) {
        fprintf(stdout, "FAIL %s: %s\n", who, lua_tostring(L, -1));
        lua_pop(L, 1);
        failed = 1;
    }
}

static const char *const phases_a[] = {
    /* 1 */ "assert(core.token_set(P .. 'k', 'from-A', core.now() + 60))\n"
            "ok_a, owner_a = core.token_lock(P .. 'lk', 30)\n"
            "assert(ok_a == true, 'A takes the lock')",
    /* 2 */ "",
    /* 3 */ "assert(core.token_unlock(P .. 'lk', owner_a) == true, 'A releases')",
    /* 4 */ "",
    /* 5 */ "assert(core.token_get(P .. 'k') == nil, 'B deleted the value')\n"
            "assert(core.token_lock(P .. 'lk', 30) == false, 'B holds the lock')",
};

static const char *const phases_b[] = {
    /* 1 */ "",
    /* 2 */ "local v = core.token_get(P .. 'k')\n"
            "assert(v == 'from-A', 'B sees the value A set: ' .. tostring(v))\n"
            "assert(core.token_lock(P .. 'lk', 30) == false, 'A holds the lock')\n"
            "assert(core.token_delete(P .. 'k', 'stale') == false, 'CAS with a wrong value')",
    /* 3 */ "",
    /* 4 */ "assert(core.token_lock(P .. 'lk', 30) == true, 'B takes the released lock')\n"
            "assert(core.token_delete(P .. 'k', 'from-A') == true, 'CAS with the right value')",
    /* 5 */ "",
};

/* Both threads increment a plain C counter only while holding one key's
 * lock; the total is exact only if the lock excludes across lua_States. */
static const char *const contend =
    "local key = P .. 'mutex'\n"
    "for _ = 1, " XSTR(ROUNDS) " do\n"
    "  local ok, owner = core.token_lock(key, 10)\n"
    "  while not ok do ok, owner = core.token_lock(key, 10) end\n"
    "  bump()\n"
    "  assert(core.token_unlock(key, owner))\n"
    "end";

static void *thread_main(void *arg)
{
    const char *const *phases = arg;
    const char *who = phases == phases_a ? "A" : "B";
    lua_State *L = open_state();
    size_t i;
    if (L == NULL)
        failed = 1;
    for (i = 0; i < sizeof phases_a / sizeof phases_a[0]; i++) {
        if (L != NULL && phases[i][0] != '\0')
            run(L, who, phases[i]);
        pthread_barrier_wait(&barrier);
    }
    if (L != NULL)
        run(L, who, contend);
    pthread_barrier_wait(&barrier);
    if (L != NULL)
        lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t a, b;
    if (argc != 3) {
        fprintf(stderr, "usage: %s <cpath> <prefix>\n", argv[0]);
        return 2;
    }
    cpath = argv[1];
    prefix = argv[2];
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&a, NULL, thread_main, (void *)phases_a);
    pthread_create(&b, NULL, thread_main, (void *)phases_b);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&barrier);
    if (!failed)
        printf("ok phases\n");
    if (shared_counter == 2L * ROUNDS)
        printf("ok mutex %ld\n", shared_counter);
    else
        printf("FAIL mutex: counter %ld, expected %d\n", shared_counter, 2 * ROUNDS);
    return failed || shared_counter != 2L * ROUNDS;
}
