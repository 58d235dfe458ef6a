"""python bench/ceiling.py URLS OUT: the fastest fetch Python reaches here.

A reference row in the fetch jobs, not a peer: bare aiohttp, one forked
process per core, each URL streamed to a file and hashed with SHA-256 (the
state needs the hash), and nothing else: no httpx, no validation, no
fsync, no state, no retries. The gap between this row and wget2 is what no
Python fetch can close on the machine; the gap between gallery-mirror and
this row is what its own work costs.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import sys
from pathlib import Path

import aiohttp

_CHUNK = 256 * 1024
_CONCURRENCY = 32  # in all, as the other tools of the fetch jobs


async def _fetch(urls: list[tuple[int, str]], out: Path, concurrency: int) -> None:
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, read_bufsize=_CHUNK) as session:

        async def one(index: int, url: str) -> None:
            async with limit, session.get(url) as response:
                response.raise_for_status()
                digest = hashlib.sha256()
                with (out / f"{index}{Path(url).suffix}").open("wb") as file:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        file.write(chunk)
                        digest.update(chunk)

        await asyncio.gather(*(one(index, url) for index, url in urls))


def _worker(urls: list[tuple[int, str]], out: Path, concurrency: int) -> None:
    asyncio.run(_fetch(urls, out, concurrency))


def main(argv: list[str]) -> int:
    urls = list(enumerate(Path(argv[0]).read_text().split()))
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(os.cpu_count() or 1, len(urls)))
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_worker, args=(urls[n::workers], out, _CONCURRENCY // workers))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return max((process.exitcode or 0) != 0 for process in processes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
