/*
 * producer/broker_client.c: the producer API over a jobq broker (tcp://, ipc://).
 * Until the broker lands this transport answers JOBQ_EUNSUPPORTED.
 */
#include "jobq/errors.h"
#include "producer/producer_impl.h"

int
producer_broker_open(const jobq_url_t *url, const jobq_producer_opts_t *opts,
                     const producer_ops_t **ops, void **impl)
{
    (void)url;
    (void)opts;
    (void)ops;
    (void)impl;
    return JOBQ_EUNSUPPORTED;
}
