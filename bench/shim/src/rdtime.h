/* rdtime.h - see rd.h: rd_clock() and rd_ts_t live there. */
#include "rd.h"
