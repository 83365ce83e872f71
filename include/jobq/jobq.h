/*
 * jobq/jobq.h: the umbrella header. Include this and link -ljobq
 * (pkg-config jobq, or CMake find_package(jobq) and jobq::jobq).
 */
#ifndef JOBQ_JOBQ_H
#define JOBQ_JOBQ_H

#include "jobq/errors.h"
#include "jobq/job.h"
#include "jobq/log.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq/queue.h"
#include "jobq/version.h"
#include "jobq/worker.h"

#endif
