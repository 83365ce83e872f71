/* common/wire.c: placeholder until the codec lands (see common/wire.h). */
#include "common/wire.h"
