#!/usr/bin/env python3
"""bench/w1_python.py: W1 of PERFORMANCE.md with Python's multiprocessing.JoinableQueue.

One producer puts N jobs of 16 bytes; 2 worker processes get() and task_done()
each and exit on a None sentinel; wall time from the first put until join()
returns. Prints a table line and one JSON line, like bench/bench_queue.

    python3 bench/w1_python.py [N]        (default N = 1,000,000)
"""
import json
import multiprocessing as mp
import sys
import time

WORKERS = 2
PAYLOAD = b"x" * 16


def worker(q):
    while True:
        item = q.get()
        q.task_done()
        if item is None:
            break


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    q = mp.JoinableQueue()
    procs = [mp.Process(target=worker, args=(q,)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    t0 = time.perf_counter()
    for _ in range(n):
        q.put(PAYLOAD)
    q.join()
    seconds = time.perf_counter() - t0
    for _ in procs:
        q.put(None)
    for p in procs:
        p.join()
    rate = n / seconds
    print(f"{'W1':<12} {'python_mp':<10} {n:>10} {seconds:>10.3f} s {rate:>14.0f} jobs/s")
    print(json.dumps({"workload": "W1", "system": "python_mp", "n": n,
                      "seconds": round(seconds, 6), "rate": round(rate)}))


if __name__ == "__main__":
    main()
