"""Race-freedom: many threads appending at once lose nothing and number messages 1..N."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from appkit.store import Store

THREADS = 20
PER_THREAD = 40  # 1,600 appends from 20 threads at once: contention enough to lose or misorder one
SHARED = 2


def test_concurrent_appends_lose_nothing_and_keep_order(store: Store) -> None:
    own = [store.create_conversation("support", title=f"thread {t}").id for t in range(THREADS)]
    shared = [store.create_conversation("support", title=f"shared {s}").id for s in range(SHARED)]
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        start.wait()  # all threads hit the database at the same moment
        for i in range(PER_THREAD):
            store.append_message(own[t], "user", f"t{t}-{i}")
            store.append_message(shared[i % SHARED], "user", f"t{t}-{i}")

    began = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(work, t) for t in range(THREADS)]:
            future.result()
    elapsed = time.perf_counter() - began

    for t, cid in enumerate(own):
        msgs = store.messages(cid)
        assert [m.seq for m in msgs] == list(range(1, PER_THREAD + 1))
        assert [m.content for m in msgs] == [f"t{t}-{i}" for i in range(PER_THREAD)]

    per_shared = THREADS * PER_THREAD // SHARED
    seen: dict[int, list[int]] = defaultdict(list)
    for s, cid in enumerate(shared):
        msgs = store.messages(cid)
        assert len(msgs) == per_shared
        assert [m.seq for m in msgs] == list(range(1, per_shared + 1))
        # seq order and global id order agree: a message numbered later was written later.
        assert [m.id for m in msgs] == sorted(m.id for m in msgs)
        for m in msgs:
            t, i = (int(x) for x in m.content[1:].split("-"))
            assert i % SHARED == s
            seen[t].append(i)
    for t in range(THREADS):
        # Each thread's messages appear in the order it wrote them.
        by_conversation = sorted(seen[t], key=lambda i: (i % SHARED, 0))
        assert sorted(seen[t]) == list(range(PER_THREAD))
        for s in range(SHARED):
            mine = [i for i in by_conversation if i % SHARED == s]
            assert mine == sorted(mine)

    total = sum(c.message_count for c in store.list_conversations(limit=THREADS + SHARED))
    assert total == 2 * THREADS * PER_THREAD
    print(f"{store.backend}: {2 * THREADS * PER_THREAD} appends from {THREADS} threads in {elapsed:.2f}s")


def test_concurrent_promotions_leave_one_active_model(store: Store) -> None:
    names = [f"support-v{i}" for i in range(10)]
    for name in names:
        store.register_model(name, "support", f"/models/{name}")
    start = threading.Barrier(len(names))

    def promote(name: str) -> None:
        start.wait()
        for _ in range(5):
            store.promote(name)

    with ThreadPoolExecutor(len(names)) as pool:
        for future in [pool.submit(promote, n) for n in names]:
            future.result()
    active = [m.name for m in store.list_models(app="support") if m.status == "active"]
    assert len(active) == 1
    assert store.active_model("support").name == active[0]  # type: ignore[union-attr]
