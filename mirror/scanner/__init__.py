"""Find every image reference in a site's posts, exactly where it stands.

:func:`mirror.scanner.site.scan_site` walks the posts (``discover``), reads
each one's bytes and hands them to :func:`mirror.scanner.post.scan_post`; the
stages inside (front matter, code regions, template tags, Markdown, HTML) each
live in their own module. This package imports none of them itself: a run
whose posts are all unchanged since their last scan (``mirror.keep.scancache``)
only discovers them, and never pays for the parsers it does not use.
"""
