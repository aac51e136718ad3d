/*
 * token.c - the process-wide token cache, and the clock functions
 * core.now(), core.monotonic() and core.sleep().
 *
 * The cache is the only mutable global state of wecom.core, on purpose:
 * every lua_State in the process (threads, OpenResty's timers, several
 * clients) must see the same access tokens and the same refresh locks.  It
 * is two chained hash maps (below: "the cache") behind one mutex,
 * initialised with pthread_once.
 * No Lua API call happens while the mutex is held: arguments are checked
 * first and results are copied out before anything is pushed, so a Lua
 * error can never leave the mutex locked.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wecom.h"

#define TOKEN_MAX_KEY      1024
#define TOKEN_MAX_VALUE    8192      /* tokens are <= 512 bytes; tickets similar */
#define TOKEN_MAX_ENTRIES  100000

/* ===== clocks ===== */

/* core.now() -> wall-clock seconds since the epoch (float) */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, wecom_clock(CLOCK_REALTIME));
    return 1;
}

/* core.monotonic() -> seconds on a clock that never jumps (float) */
static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, wecom_clock(CLOCK_MONOTONIC));
    return 1;
}

/* core.sleep(seconds): blocks the calling thread (not for use inside nginx) */
static int l_sleep(lua_State *L)
{
    double s = wecom_check_seconds(L, 1, WECOM_FN("sleep"), "seconds", 0);
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

/* ===== the cache ===== */

/*
 * Two tables behind the one mutex:
 * - tokens: expiring values and refresh locks, a cache.  It holds at most
 *   TOKEN_MAX_ENTRIES entries; when full, what has expired is purged, and
 *   if that is not enough a new key is refused ("token cache full"): a
 *   value is never evicted before its expiry.
 * - durable: values written with token_set_durable (a suite's permanent
 *   codes, a mass-call ticket).  Never purged, evicted or counted against
 *   the cap; an entry goes when it is deleted, or when the expiry it was
 *   given (if any) has passed.
 * A key has a value in at most one of them: each write drops the other's.
 */
typedef struct entry {
    struct entry *next;
    uint32_t hash;
    size_t key_len;
    char *value;            /* NULL: no value, only a lock */
    size_t value_len;
    double expires_at;      /* wall clock; INFINITY: a durable value without expiry */
    double lock_until;      /* monotonic; <= now means unlocked (tokens only) */
    double lock_owner;      /* handed to the holder, checked by unlock */
    char key[];
} entry;

typedef struct {
    entry **buckets;        /* allocated lazily under the mutex */
    size_t nbuckets;
    size_t count;
    size_t max_count;       /* SIZE_MAX: no cap */
} table;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_mutex;
static table tokens = { NULL, 0, 0, TOKEN_MAX_ENTRIES };
static table durable = { NULL, 0, 0, SIZE_MAX };
static double cache_next_owner;   /* a double so it round-trips through Lua 5.1 numbers */

static void cache_init(void)
{
    pthread_mutex_init(&cache_mutex, NULL);
}

static uint32_t hash_key(const char *k, size_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

/* All table_* helpers below run with the mutex held. */

static int table_ready(table *t)
{
    if (t->buckets == NULL) {
        t->buckets = calloc(64, sizeof *t->buckets);
        if (t->buckets == NULL)
            return 0;
        t->nbuckets = 64;
    }
    return 1;
}

static void table_grow(table *t)
{
    size_t n = t->nbuckets * 2, i;
    entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;   /* longer chains, still correct */
    for (i = 0; i < t->nbuckets; i++) {
        entry *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

/* Returns the slot that points at the entry for key (or at NULL). */
static entry **table_slot(table *t, const char *key, size_t len, uint32_t h)
{
    entry **p = &t->buckets[h & (t->nbuckets - 1)];
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->key_len == len && memcmp((*p)->key, key, len) == 0)
            return p;
    return p;
}

static void drop_value(entry *e)
{
    free(e->value);
    e->value = NULL;
    e->value_len = 0;
}

/* Drops what has expired; unlinks and frees the entry when nothing is left.
 * Returns the entry, or NULL when it was freed. */
static entry *table_settle(table *t, entry **slot, double wall, double mono)
{
    entry *e = *slot;
    if (e->value != NULL && e->expires_at <= wall)
        drop_value(e);
    if (e->value == NULL && e->lock_until <= mono) {
        *slot = e->next;
        free(e);
        t->count--;
        return NULL;
    }
    return e;
}

static void table_purge(table *t, double wall, double mono)
{
    size_t i;
    for (i = 0; i < t->nbuckets; i++) {
        entry **p = &t->buckets[i];
        while (*p != NULL) {
            if (table_settle(t, p, wall, mono) != NULL)
                p = &(*p)->next;
        }
    }
}

/* Finds or creates the entry; NULL when out of memory or full. */
static entry *table_obtain(table *t, const char *key, size_t len, uint32_t h, double wall, double mono)
{
    entry **slot = table_slot(t, key, len, h);
    entry *e;
    if (*slot != NULL)
        return *slot;
    if (t->count >= t->max_count) {
        table_purge(t, wall, mono);
        if (t->count >= t->max_count)
            return NULL;
        slot = table_slot(t, key, len, h);
    }
    e = calloc(1, sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->key_len = len;
    memcpy(e->key, key, len);
    *slot = e;
    t->count++;
    if (t->count > t->nbuckets)
        table_grow(t);
    return e;
}

static const char *check_key(lua_State *L, int idx, const char *where, size_t *len)
{
    const char *k = wecom_check_string(L, idx, where, "key", len);
    if (*len == 0 || *len > TOKEN_MAX_KEY)
        wecom_bad_arg(L, idx, where, "key", "a string of 1..1024 bytes");
    return k;
}

/* What every cache call starts from: its key (argument 1, checked), the
 * key's hash and both clocks, read once so one call sees one instant. */
typedef struct {
    const char *key;
    size_t len;
    uint32_t hash;
    double wall, mono;
} lookup;

static void lookup_init(lua_State *L, lookup *q, const char *where)
{
    q->key = check_key(L, 1, where, &q->len);
    q->hash = hash_key(q->key, q->len);
    q->wall = wecom_clock(CLOCK_REALTIME);
    q->mono = wecom_clock(CLOCK_MONOTONIC);
}

/* With the mutex held: the slot of q's entry in t after dropping what has
 * expired, or NULL when there is no entry (left). */
static entry **table_find(table *t, const lookup *q)
{
    entry **slot = table_slot(t, q->key, q->len, q->hash);
    if (*slot == NULL || table_settle(t, slot, q->wall, q->mono) == NULL)
        return NULL;
    return slot;
}

/* With the mutex held: drops q's value from t, if it has one (a lock
 * stays). */
static void table_drop(table *t, const lookup *q)
{
    entry **slot = table_find(t, q);
    if (slot != NULL && (*slot)->value != NULL) {
        drop_value(*slot);
        table_settle(t, slot, q->wall, q->mono);
    }
}

/* Takes the mutex; returns 0 (mutex released) when the tables cannot be
 * allocated.  The caller raises (out of memory) after freeing what it holds. */
static int cache_lock(void)
{
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache_mutex);
    if (!table_ready(&tokens) || !table_ready(&durable)) {
        pthread_mutex_unlock(&cache_mutex);
        return 0;
    }
    return 1;
}

/* After table_obtain failed (mutex released): a full cache is a runtime
 * failure, nil, "token cache full"; out of memory raises, as in Lua. */
static int obtain_failed(lua_State *L, int full, const char *where)
{
    if (full)
        return wecom_fail(L, "token cache full", NULL);
    return luaL_error(L, "%s: out of memory", where);
}

/* core.token_get(key) -> value, expires_at | value (durable, no expiry) | nil */
static int l_token_get(lua_State *L)
{
    lookup q;
    size_t vlen = 0;
    double expires_at = 0;
    char value[TOKEN_MAX_VALUE];
    int found = 0;
    entry **slot, *e;

    lookup_init(L, &q, WECOM_FN("token_get"));
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_get") ": out of memory");
    slot = table_find(&tokens, &q);
    e = slot != NULL ? *slot : NULL;
    if (e == NULL || e->value == NULL) {
        slot = table_find(&durable, &q);
        e = slot != NULL ? *slot : NULL;
    }
    if (e != NULL && e->value != NULL) {
        vlen = e->value_len;
        memcpy(value, e->value, vlen);
        expires_at = e->expires_at;
        found = 1;
    }
    pthread_mutex_unlock(&cache_mutex);

    if (!found) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, value, vlen);
    if (isinf(expires_at))
        return 1;
    lua_pushnumber(L, expires_at);
    return 2;
}

/* The value at idx, at most TOKEN_MAX_VALUE bytes, copied (malloc) */
static char *copy_value(lua_State *L, int idx, const char *where, size_t *vlen)
{
    const char *value = wecom_check_string(L, idx, where, "value", vlen);
    char *copy;

    if (*vlen > TOKEN_MAX_VALUE)
        wecom_bad_arg(L, idx, where, "value", "a string of at most 8192 bytes");
    copy = malloc(*vlen ? *vlen : 1);
    if (copy == NULL)
        luaL_error(L, "%s: out of memory", where);
    memcpy(copy, value, *vlen);
    return copy;
}

/* Stores copy (vlen bytes, expires_at) into t's entry for q, dropping q's
 * value from other; returns 0 (copy untouched) when t has no room. */
static int store_value(table *t, table *other, const lookup *q, char *copy, size_t vlen, double expires_at)
{
    entry *e = table_obtain(t, q->key, q->len, q->hash, q->wall, q->mono);
    if (e == NULL)
        return 0;
    free(e->value);
    e->value = copy;
    e->value_len = vlen;
    e->expires_at = expires_at;
    table_drop(other, q);
    return 1;
}

/* Stores argument 2 (expires_at) under q in t, dropping q's value from
 * other -> true | nil, "token cache full" (t capped and full); raises when
 * out of memory. */
static int set_value(lua_State *L, const lookup *q, const char *where, table *t, table *other,
                     double expires_at)
{
    size_t vlen;
    int stored, full;
    char *copy = copy_value(L, 2, where, &vlen);

    if (!cache_lock()) {
        free(copy);
        return luaL_error(L, "%s: out of memory", where);
    }
    stored = store_value(t, other, q, copy, vlen, expires_at);
    full = !stored && t->count >= t->max_count;
    pthread_mutex_unlock(&cache_mutex);

    if (!stored) {
        free(copy);
        return obtain_failed(L, full, where);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.token_set(key, value, expires_at) -> true | nil, "token cache full" */
static int l_token_set(lua_State *L)
{
    lookup q;
    double expires_at;

    lookup_init(L, &q, WECOM_FN("token_set"));
    expires_at = lua_type(L, 3) == LUA_TNUMBER ? (double)lua_tonumber(L, 3) : NAN;
    if (!isfinite(expires_at))
        wecom_bad_arg(L, 3, WECOM_FN("token_set"), "expires_at", "a finite number (seconds since the epoch)");
    return set_value(L, &q, WECOM_FN("token_set"), &tokens, &durable, expires_at);
}

/* core.token_set_durable(key, value [, expires_at]) -> true
 * A value that no cap or purge removes: only a delete, or its own expiry
 * when one is given. */
static int l_token_set_durable(lua_State *L)
{
    lookup q;
    double expires_at = INFINITY;

    lookup_init(L, &q, WECOM_FN("token_set_durable"));
    if (!lua_isnoneornil(L, 3)) {
        expires_at = lua_type(L, 3) == LUA_TNUMBER ? (double)lua_tonumber(L, 3) : NAN;
        if (!isfinite(expires_at))
            wecom_bad_arg(L, 3, WECOM_FN("token_set_durable"), "expires_at",
                          "a finite number (seconds since the epoch) or nil");
    }
    return set_value(L, &q, WECOM_FN("token_set_durable"), &durable, &tokens, expires_at);
}

/* With the mutex held: removes q's value from t if it matches only_if
 * (NULL: any); returns whether it did. */
static int table_delete(table *t, const lookup *q, const char *only_if, size_t olen)
{
    entry **slot = table_find(t, q);
    entry *e = slot != NULL ? *slot : NULL;
    if (e == NULL || e->value == NULL
        || (only_if != NULL && (e->value_len != olen || memcmp(e->value, only_if, olen) != 0)))
        return 0;
    drop_value(e);
    table_settle(t, slot, q->wall, q->mono);
    return 1;
}

/* core.token_delete(key [, only_if_value]) -> boolean (whether a value was removed) */
static int l_token_delete(lua_State *L)
{
    lookup q;
    size_t olen = 0;
    const char *only_if;
    int deleted;

    lookup_init(L, &q, WECOM_FN("token_delete"));
    only_if = wecom_opt_string(L, 2, WECOM_FN("token_delete"), "only_if_value", &olen);
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_delete") ": out of memory");
    deleted = table_delete(&tokens, &q, only_if, olen);
    if (!deleted)
        deleted = table_delete(&durable, &q, only_if, olen);
    pthread_mutex_unlock(&cache_mutex);
    lua_pushboolean(L, deleted);
    return 1;
}

/* With the mutex held: the durable keys that start with prefix (plen
 * bytes); their count and total length, and when buf is not NULL (room for
 * max_keys keys of max_bytes in all) the keys, one after the other, and
 * their lengths.  Returns 0 when they do not fit. */
static int durable_keys(const lookup *q, const char *prefix, size_t plen, size_t *nkeys, size_t *nbytes,
                        size_t *lens, char *buf, size_t max_keys, size_t max_bytes)
{
    size_t i;

    *nkeys = *nbytes = 0;
    for (i = 0; i < durable.nbuckets; i++) {
        entry **p = &durable.buckets[i];
        while (*p != NULL) {
            entry *e = table_settle(&durable, p, q->wall, q->mono);
            if (e == NULL)
                continue;
            if (e->value != NULL && e->key_len >= plen && memcmp(e->key, prefix, plen) == 0) {
                if (buf != NULL) {
                    if (*nkeys >= max_keys || e->key_len > max_bytes - *nbytes)
                        return 0;
                    memcpy(buf + *nbytes, e->key, e->key_len);
                    lens[*nkeys] = e->key_len;
                }
                *nkeys += 1;
                *nbytes += e->key_len;
            }
            p = &e->next;
        }
    }
    return 1;
}

/* core.token_list_durable(prefix) -> { key, ... } (in no order): the keys
 * of the durable values that start with prefix ("" lists them all).
 * Counted first, then copied into a userdata sized for them (the mutex is
 * never held across a Lua call); a table that grew in between is counted
 * again. */
static int l_token_list_durable(lua_State *L)
{
    lookup q;
    size_t plen, nkeys, nbytes, i, at;
    const char *prefix = wecom_check_string(L, 1, WECOM_FN("token_list_durable"), "prefix", &plen);
    size_t *lens;
    char *buf;
    int fits;

    q.wall = wecom_clock(CLOCK_REALTIME);
    q.mono = wecom_clock(CLOCK_MONOTONIC);
    for (;;) {
        if (!cache_lock())
            return luaL_error(L, WECOM_FN("token_list_durable") ": out of memory");
        durable_keys(&q, prefix, plen, &nkeys, &nbytes, NULL, NULL, 0, 0);
        pthread_mutex_unlock(&cache_mutex);

        lens = (size_t *)lua_newuserdata(L, (nkeys + 1) * sizeof *lens + nbytes + 1);
        buf = (char *)(lens + nkeys + 1);
        if (!cache_lock())
            return luaL_error(L, WECOM_FN("token_list_durable") ": out of memory");
        fits = durable_keys(&q, prefix, plen, &nkeys, &nbytes, lens, buf, nkeys, nbytes);
        pthread_mutex_unlock(&cache_mutex);
        if (fits)
            break;
        lua_pop(L, 1);
    }
    lua_createtable(L, (int)nkeys, 0);
    for (i = 0, at = 0; i < nkeys; i++) {
        lua_pushlstring(L, buf + at, lens[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        at += lens[i];
    }
    return 1;
}

/* core.token_lock(key, lease_seconds) -> true, owner | false | nil, "token cache full"
 * A try-lock: the lease expires on its own so a holder that died (or a
 * lua_State that was closed) cannot wedge the key. */
static int l_token_lock(lua_State *L)
{
    lookup q;
    double lease;
    double owner = 0;
    int acquired = 0, failed = 0, full = 0;
    entry *e;

    lookup_init(L, &q, WECOM_FN("token_lock"));
    lease = wecom_check_seconds(L, 2, WECOM_FN("token_lock"), "lease_seconds", 1);
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_lock") ": out of memory");
    e = table_obtain(&tokens, q.key, q.len, q.hash, q.wall, q.mono);
    if (e == NULL) {
        failed = 1;
        full = tokens.count >= tokens.max_count;
    } else if (e->lock_until <= q.mono) {
        e->lock_until = q.mono + lease;
        e->lock_owner = owner = ++cache_next_owner;
        acquired = 1;
    }
    pthread_mutex_unlock(&cache_mutex);

    if (failed)
        return obtain_failed(L, full, WECOM_FN("token_lock"));
    lua_pushboolean(L, acquired);
    if (!acquired)
        return 1;
    lua_pushnumber(L, owner);
    return 2;
}

/* core.token_unlock(key [, owner]) -> boolean (whether a held lock was released)
 * With owner (from token_lock) only that holder's lock is released, so a
 * holder whose lease ran out cannot release its successor's lock. */
static int l_token_unlock(lua_State *L)
{
    lookup q;
    int has_owner;
    double owner;
    int released = 0;
    entry **slot, *e;

    lookup_init(L, &q, WECOM_FN("token_unlock"));
    has_owner = !lua_isnoneornil(L, 2);
    if (has_owner && lua_type(L, 2) != LUA_TNUMBER)
        wecom_bad_arg(L, 2, WECOM_FN("token_unlock"), "owner", "a number (from token_lock)");
    owner = has_owner ? (double)lua_tonumber(L, 2) : 0;
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_unlock") ": out of memory");
    slot = table_find(&tokens, &q);
    e = slot != NULL ? *slot : NULL;
    if (e != NULL && e->lock_until > q.mono && (!has_owner || e->lock_owner == owner)) {
        e->lock_until = 0;
        table_settle(&tokens, slot, q.wall, q.mono);
        released = 1;
    }
    pthread_mutex_unlock(&cache_mutex);
    lua_pushboolean(L, released);
    return 1;
}

static void table_free(table *t)
{
    size_t i;
    for (i = 0; i < t->nbuckets; i++) {
        entry *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e->value);
            free(e);
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

/* Runs when the last user unloads the module (dlclose) or at exit: no code of
 * this module can be running then, so the tables go without the mutex.
 * Without it every unload would leak the tables. */
#if defined(__GNUC__)
__attribute__((destructor))
#endif
static void cache_unload(void)
{
    table_free(&tokens);
    table_free(&durable);
}

static const luaL_Reg token_funcs[] = {
    { "now", l_now },
    { "monotonic", l_monotonic },
    { "sleep", l_sleep },
    { "token_get", l_token_get },
    { "token_set", l_token_set },
    { "token_set_durable", l_token_set_durable },
    { "token_list_durable", l_token_list_durable },
    { "token_delete", l_token_delete },
    { "token_lock", l_token_lock },
    { "token_unlock", l_token_unlock },
    { NULL, NULL }
};

void wecom_token_open(lua_State *L)
{
    luaL_setfuncs(L, token_funcs, 0);
}
