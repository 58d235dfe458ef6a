"""Benchmarks of gallery-mirror beside the tools a user would script instead.

``python -m bench`` builds a seeded corpus (a Hexo blog and its images),
serves the images from 127.0.0.1 (nginx, and an asyncio server that adds a
fixed delay per response), runs each job with gallery-mirror and with the
peers found on the machine, interleaved, and prints a Markdown table of
medians. Not part of the test suite; one smoke test runs it on a tiny corpus.
"""
