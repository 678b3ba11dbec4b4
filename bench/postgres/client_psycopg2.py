#!/usr/bin/env python3
"""The Python side of the PostgreSQL benchmark (bench/postgres/run.py): TOTAL single-row queries
by primary key from TASKS threads, each with its own psycopg2 connection (opened before the
clock starts; autocommit, as db.postgres outside transaction()). psycopg2 merges the parameter
into the SQL text on the client (its only mode); db.postgres sends it apart ($1).
Prints "<checksum> <seconds of the timed part>".
    /usr/bin/python3 bench/postgres/client_psycopg2.py DSN TOTAL TASKS
"""
import sys
import threading
import time

import psycopg2

dsn, total, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = [psycopg2.connect(dsn) for _ in range(tasks)]
for c in conns:
    c.autocommit = True
sums = [0] * tasks


def worker(k, n):
    cur = conns[k].cursor()
    s = 0
    for i in range(n):
        cur.execute("SELECT id, v FROM bench_kv WHERE id = %s", ((k * n + i) % 1000 + 1,))
        s += cur.fetchone()[0]
    sums[k] = s


for k in range(tasks):  # warm-up: one query per connection, as the Weft client does
    worker(k, 1)
start = time.monotonic()
threads = [threading.Thread(target=worker, args=(k, total // tasks)) for k in range(tasks)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(sums), time.monotonic() - start)
