/*
 * broker/reactor_peers.c: the reactor's peer table.
 *
 * Peers are allocated one by one (pointers stay valid until the peer is
 * removed) and live in a slot array, so that a core handle finds its peer in
 * O(1): handle = (generation << 32) | (slot + 1). A hash table of chains,
 * keyed by (socket index, routing id) with a random seed (peers choose their
 * routing ids), finds the peer of an incoming message. Invariant: every
 * non-NULL slot is in exactly one chain, and count is their number.
 */
#include "broker/reactor_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static uint64_t
s_hash(uint64_t seed, uint32_t sock, const void *rid, size_t len)
{
    const unsigned char *p = rid;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (sock + 1));
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
}

static uint32_t
s_bucket(const rx_peers_t *t, uint32_t sock, const void *rid, size_t len)
{
    return (uint32_t)(s_hash(t->seed, sock, rid, len) & (t->nbuckets - 1));
}

void
rx_peers_init(rx_peers_t *t)
{
    memset(t, 0, sizeof *t);
    if (getrandom(&t->seed, sizeof t->seed, 0) != (ssize_t)sizeof t->seed)
        t->seed = 0x5bd1e9955bd1e995ull ^ (uint64_t)(uintptr_t)t;
    t->nbuckets = 64;
    t->buckets = jobq_malloc(t->nbuckets * sizeof *t->buckets);
    for (uint32_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = -1;
    t->gen = 1;
}

void
rx_peers_fini(rx_peers_t *t)
{
    for (uint32_t i = 0; i < t->cap; i++) {
        rx_peer_t *p = t->slots[i];
        if (!p)
            continue;
        jobq_free(p->queues);
        jobq_free(p->qbuf);
        jobq_free(p->push);
        jobq_free(p);
    }
    jobq_free(t->slots);
    jobq_free(t->buckets);
    memset(t, 0, sizeof *t);
}

rx_peer_t *
rx_peers_find(rx_peers_t *t, uint32_t sock, const void *rid, size_t len)
{
    for (int32_t i = t->buckets[s_bucket(t, sock, rid, len)]; i >= 0; i = t->slots[i]->next) {
        rx_peer_t *p = t->slots[i];
        if (p->sock == sock && p->rid_len == len && memcmp(p->rid, rid, len) == 0)
            return p;
    }
    return NULL;
}

/* Doubles the bucket array and rehashes every peer. */
static void
s_grow_buckets(rx_peers_t *t)
{
    jobq_free(t->buckets);
    t->nbuckets *= 2;
    t->buckets = jobq_malloc(t->nbuckets * sizeof *t->buckets);
    for (uint32_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = -1;
    for (uint32_t i = 0; i < t->cap; i++) {
        rx_peer_t *p = t->slots[i];
        if (!p)
            continue;
        uint32_t b = s_bucket(t, p->sock, p->rid, p->rid_len);
        p->next = t->buckets[b];
        t->buckets[b] = (int32_t)i;
    }
}

/* Returns a free slot index, growing the slot array when full. */
static uint32_t
s_free_slot(rx_peers_t *t)
{
    if (t->count == t->cap) {
        uint32_t ncap = t->cap ? t->cap * 2 : 16;
        t->slots = jobq_realloc(t->slots, ncap * sizeof *t->slots);
        memset(t->slots + t->cap, 0, (ncap - t->cap) * sizeof *t->slots);
        t->cap = ncap;
    }
    for (uint32_t i = 0; i < t->cap; i++)
        if (!t->slots[i])
            return i;
    JOBQ_ASSERT(0);
    return 0;
}

rx_peer_t *
rx_peers_add(rx_peers_t *t, uint32_t sock, const void *rid, size_t len)
{
    JOBQ_ASSERT(len <= 255);
    if (t->count + 1 > t->nbuckets)
        s_grow_buckets(t);
    uint32_t slot = s_free_slot(t);
    rx_peer_t *p = jobq_calloc(1, sizeof *p);
    p->pidx = -1; /* no principal (reactor_sec.c) */
    p->slot = slot;
    p->handle = ((uint64_t)t->gen++ << 32) | (slot + 1u);
    if (t->gen == 0)
        t->gen = 1;
    p->sock = sock;
    p->rid_len = (uint8_t)len;
    memcpy(p->rid, rid, len);
    uint32_t b = s_bucket(t, sock, rid, len);
    p->next = t->buckets[b];
    t->buckets[b] = (int32_t)slot;
    t->slots[slot] = p;
    t->count++;
    return p;
}

rx_peer_t *
rx_peers_by_handle(const rx_peers_t *t, uint64_t handle)
{
    uint32_t slot = (uint32_t)(handle & 0xffffffffu);
    if (slot == 0 || slot > t->cap)
        return NULL;
    rx_peer_t *p = t->slots[slot - 1];
    return p && p->handle == handle ? p : NULL;
}

void
rx_peers_remove(rx_peers_t *t, rx_peer_t *p)
{
    uint32_t b = s_bucket(t, p->sock, p->rid, p->rid_len);
    int32_t *link = &t->buckets[b];
    while (*link >= 0 && *link != (int32_t)p->slot)
        link = &t->slots[*link]->next;
    JOBQ_ASSERT(*link == (int32_t)p->slot);
    *link = p->next;
    t->slots[p->slot] = NULL;
    t->count--;
    if (p->role < 4 && t->by_role[p->role])
        t->by_role[p->role]--;
    jobq_free(p->queues);
    jobq_free(p->qbuf);
    jobq_free(p->push);
    jobq_free(p);
}

void
rx_peer_set_queues(rx_peer_t *p, const wire_str_t *queues, uint32_t n)
{
    jobq_free(p->queues);
    jobq_free(p->qbuf);
    p->queues = NULL;
    p->qbuf = NULL;
    p->nqueues = 0;
    if (n == 0)
        return;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += queues[i].len;
    p->qbuf = jobq_malloc(total ? total : 1);
    p->queues = jobq_malloc(n * sizeof *p->queues);
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(p->qbuf + off, queues[i].ptr, queues[i].len);
        p->queues[i].ptr = p->qbuf + off;
        p->queues[i].len = queues[i].len;
        off += queues[i].len;
    }
    p->nqueues = n;
}

void
rx_peer_rid_hex(const rx_peer_t *p, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < p->rid_len; i++) {
        out[2 * i] = hex[p->rid[i] >> 4];
        out[2 * i + 1] = hex[p->rid[i] & 15];
    }
    out[2 * p->rid_len] = '\0';
}
