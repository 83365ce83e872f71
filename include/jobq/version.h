/* jobq/version.h: the library version and the wire protocol version. */
#ifndef JOBQ_VERSION_H
#define JOBQ_VERSION_H

#define JOBQ_VERSION_MAJOR 0
#define JOBQ_VERSION_MINOR 1
#define JOBQ_VERSION_PATCH 0

/* Returns the library's version as "MAJOR.MINOR.PATCH" (static storage). */
const char *jobq_version(void);

#endif
