/* flock.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_flock_open(lua_State *L)
{
    (void)L;
}
