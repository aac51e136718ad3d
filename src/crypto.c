/* crypto.c - placeholder until this part lands. */
#include "wecom.h"

void wecom_crypto_open(lua_State *L)
{
    (void)L;
}
