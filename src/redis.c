/* redis.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_redis_open(lua_State *L)
{
    (void)L;
}
