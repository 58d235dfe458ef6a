"""Normalize and repair image URLs as they are written in blog posts.

``normalize(raw)`` turns the URL text found in a post into a :class:`Normalized`
value: what kind of reference it is, the URL to fetch (and key the mirror on),
and notes of every repair made to get there. It is pure, never raises, and is
called once per reference, so it does only cheap string work.

The rules, in the order they apply:

1. With ``html=True`` HTML entities are decoded (``&amp;`` -> ``&``). Then
   surrounding whitespace is stripped, including the full-width space U+3000
   and zero-width spaces that copy and paste leaves behind.
2. Things that can never be fetched are ``ignored``, with a short reason:
   empty text, ``data:`` URIs, ``mailto:`` / ``tel:`` / ``javascript:``
   links, ``#anchors``, and template placeholders (``{{``, ``{%``, ``<%``,
   ``${`` or a ``{word}`` such as ``{year}``).
3. Broken schemes are repaired, each with a note: ``httpss://``, ``htps://``,
   ``ttps://``, ``https//``, ``https:://``, ``http:/host``, ``http:///host``,
   ``http:\\\\host`` all become ``http(s)://host``; a protocol-relative
   ``//host/p`` becomes ``https://host/p``. Full-width forms (U+FF01..U+FF5E,
   as a CJK input method types them) in the scheme and host are folded with
   NFKC first, and only there: the path is left as written.
4. ``http``/``https`` URLs are ``remote``. Any other scheme is ``ignored``
   (``unsupported scheme 'ftp'``); a one-letter "scheme" is a Windows drive
   (``C:\\``), so it is ``local`` like every scheme-less path. For ``local``,
   ``url`` is the text with its ``#fragment`` removed and nothing else changed.
5. A ``remote`` URL is put in one canonical form, so that spelling variants of
   one image share one mirror key: scheme and host lower-cased, non-ASCII
   hosts IDNA-encoded, default ports and the fragment dropped, an empty path
   made ``/``, and every character that is unsafe in a URL percent-encoded as
   UTF-8 - but never an existing ``%XX`` escape, so raw and percent-encoded
   Chinese file names come out the same. The path keeps its case and its
   ``..``; backslashes in it become ``%5C``. The query string is kept as
   written apart from unsafe characters, because it selects the image
   (``?x-oss-process=...``, ``?wx_fmt=png``, signed links). Tabs and line
   breaks inside a remote URL are removed, as browsers do. Two cases bend
   the rules above: an http(s) URL with no host (``https:///``, ``//``
   alone) is ``ignored`` as "missing host", since there is nothing to fetch;
   a host that IDNA rejects (``a..中.com``) is percent-encoded instead, with
   a note, so the URL stays ASCII and the fetch fails visibly later.
6. Percent-encoding is not a repair and gets no note: the post keeps its raw
   text; only the fetch URL is encoded.

Normalizing a ``remote`` result's ``url`` again gives the same ``url``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from mirror.formats import IMAGE_EXTENSIONS

__all__ = [
    "Normalized",
    "UrlKind",
    "host_of",
    "looks_like_image",
    "normalize",
]

UrlKind = Literal["remote", "local", "ignored"]


@dataclass(frozen=True, slots=True)
class Normalized:
    """One URL reference, classified and (for ``remote``) in canonical form."""

    kind: UrlKind
    url: str
    repairs: tuple[str, ...]
    reason: str = ""


# str.strip() already covers Unicode whitespace (U+3000, NBSP); zero-width
# spaces and BOMs are not whitespace to Python but are just as invisible.
_ZERO_WIDTH = "\u200b\ufeff"

_IGNORED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("data:", "data: URI"),
    ("mailto:", "mailto: link"),
    ("tel:", "tel: link"),
    ("javascript:", "javascript: link"),
)
_IGNORED_PREFIX_SET = tuple(p for p, _ in _IGNORED_PREFIXES)
_PREFIX_PROBE = max(len(p) for p in _IGNORED_PREFIX_SET)

# A Jekyll user's root-relative path: Liquid puts the site's baseurl in front
# when the page is built ("{{ site.baseurl }}/images/a.png"). A site path, not
# a placeholder: the rewrite may write it (rewrite.local_prefix) and find it again.
JEKYLL_BASEURL = re.compile(r"\{\{-?\s*site\.baseurl\s*-?\}\}(?=/|$)")
_TEMPLATE = re.compile(r"\{\{|\{%|\$\{|\{\s*\w[\w.\-]*\s*\}")

# Misspellings of http/https seen in posts: a doubled or lost letter, an extra
# "s", and any mangling of "://". A lone "http/" is not matched: that is a
# relative directory called "http".
_HTTPISH_SCHEME = r"(?:h{1,2}t{1,3}|tt)p{1,2}s{0,3}"
_HTTPISH_SEP = r":{1,2}[/\\]*|[/\\]{2,}"
_HTTPISH = re.compile(
    rf"(?P<scheme>{_HTTPISH_SCHEME})(?P<sep>{_HTTPISH_SEP})",
    re.IGNORECASE,
)
# Two or more characters, so that "C:\..." reads as a Windows drive, not a scheme.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+:")

# Scheme, separator and authority, plus the one character that ends the
# authority: after full-width folding that character is the path's "/".
_HEAD = re.compile(
    rf"(?:{_HTTPISH_SCHEME}(?:{_HTTPISH_SEP})|//)[^/?#\\]*[/?#\\]?",
    re.IGNORECASE,
)
# Full-width ASCII variants (U+FF01..U+FF5E) map one to one onto ASCII, so the
# translated text has the same indices as the original.
_FULLWIDTH_TO_ASCII = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}

_AUTHORITY_END = re.compile(r"[/?\\]")

# RFC 3986 unreserved + sub-delims + ":@", plus "/" in paths and "/?" in
# queries. "[" and "]" are kept because httpx and browsers send them as is.
# The *_BAD patterns are a fast "anything to do?" test; a single character
# class scans much faster than the alternation in the *_FIX patterns.
_PATH_BAD = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]%]|%(?![0-9A-F]{2})")
_PATH_FIX = re.compile(r"%(?:[0-9A-Fa-f]{2})?|[^A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]]")
_QUERY_BAD = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]%]|%(?![0-9A-Fa-f]{2})")
_QUERY_FIX = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]%]")

_TABS_AND_BREAKS = re.compile(r"[\t\r\n]")

_AUTHORITY = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//([^/?#\\]*)")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")
_IMAGE_SUFFIX = re.compile(
    r"(?:"
    + "|".join(re.escape(e) for e in sorted(IMAGE_EXTENSIONS, key=len, reverse=True))
    + r")(?=\Z|[!@])",
    re.IGNORECASE,
)


def _pct(ch: str) -> str:
    # surrogatepass: lone surrogates can arrive from badly decoded files, and
    # encoding them must not raise.
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _fix_path_match(m: re.Match[str]) -> str:
    text = m.group()
    if text == "%":
        return "%25"
    if len(text) == 3:
        # Upper-case hex makes "%e5" and "%E5" (and a raw "图") one mirror key.
        return text.upper()
    return _pct(text)


def _fix_query_match(m: re.Match[str]) -> str:
    text = m.group()
    return "%25" if text == "%" else _pct(text)


def _encode_path(path: str) -> str:
    if not _PATH_BAD.search(path):
        return path
    return _PATH_FIX.sub(_fix_path_match, path)


def _encode_query(query: str) -> str:
    # Escapes keep their case here: a signed query may be checked byte for byte.
    if not _QUERY_BAD.search(query):
        return query
    return _QUERY_FIX.sub(_fix_query_match, query)


def _encode_host(host: str, notes: list[str]) -> str:
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except ValueError:  # UnicodeError: empty or over-long labels, bad code points
            notes.append(f"host '{host}' is not valid IDNA; percent-encoded instead")
    return _encode_path(host.lower())


def _split_port(hostport: str) -> tuple[str, str | None]:
    """Split ``host[:port]``; the port is None when there is no ``:`` at all."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return hostport, None
        rest = hostport[close + 1 :]
        if not rest:
            return hostport, None
        if rest.startswith(":"):
            return hostport[: close + 1], rest[1:]
        return hostport, None
    host, colon, port = hostport.partition(":")
    return host, (port if colon else None)


def _clean_port(port: str, scheme: str) -> str:
    if not (port.isascii() and port.isdigit()):
        return _encode_path(port)
    port = port.lstrip("0") or "0"
    if (scheme, port) in (("http", "80"), ("https", "443")):
        return ""
    return port


def _remote(text: str, scheme: str, rest: str, notes: list[str]) -> Normalized:
    """Canonical form of ``scheme://rest``; ``text`` is the URL before repair."""
    rest, hash_, fragment = rest.partition("#")
    if hash_:
        notes.append(f"dropped fragment '#{fragment}'")
    if "\t" in rest or "\n" in rest or "\r" in rest:
        rest = _TABS_AND_BREAKS.sub("", rest)
        notes.append("removed tabs/line breaks inside the URL")

    m = _AUTHORITY_END.search(rest)
    authority, tail = (rest[: m.start()], rest[m.start() :]) if m else (rest, "")
    path, question, query = tail.partition("?")

    userinfo, at, hostport = authority.rpartition("@")
    host, port = _split_port(hostport)
    if not host:
        return Normalized("ignored", text, tuple(notes), "missing host")

    out = [scheme, "://"]
    if at:
        out += [_encode_query(userinfo), "@"]
    out.append(_encode_host(host, notes))
    if port is not None:
        port = _clean_port(port, scheme)
        if port:
            out += [":", port]
    if not path.startswith("/"):
        # Only a backslash can get here (it ends the authority); keep it as data.
        path = "/" + path
    out.append(_encode_path(path))
    if question:
        out += ["?", _encode_query(query)]
    return Normalized("remote", "".join(out), tuple(notes))


# Only entities closed by ";": HTML5 leaves "&copy=2" in an attribute value
# as written, and a query string is full of such "&name=" pairs.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _decode_entity(m: re.Match[str]) -> str:
    # Imported here: html.entities is a table of 2,000 names, needed only when
    # a URL holds an entity.
    import html

    return html.unescape(m.group())


def _fold_fullwidth(text: str, notes: list[str]) -> str:
    """NFKC the scheme and authority when they were typed in full-width form."""
    ascii_view = text.translate(_FULLWIDTH_TO_ASCII)
    m = _HEAD.match(ascii_view)
    if not m:
        return text
    head = text[: m.end()]
    folded = unicodedata.normalize("NFKC", head)
    if folded == head:
        return text
    notes.append(f"full-width scheme/host '{head}' -> '{folded}' (NFKC)")
    return folded + text[m.end() :]


def normalize(raw: str, *, html: bool = False) -> Normalized:
    """Classify ``raw`` (URL text as written in a post) and repair it.

    See the module docstring for the rules. Never raises.
    """
    notes: list[str] = []
    text = raw
    if html and "&" in text:
        decoded = _ENTITY.sub(_decode_entity, text)
        if decoded != text:
            notes.append("decoded HTML entities")
            text = decoded
    stripped = text.strip()
    while stripped and (stripped[0] in _ZERO_WIDTH or stripped[-1] in _ZERO_WIDTH):
        stripped = stripped.strip(_ZERO_WIDTH).strip()
    if stripped != text:
        notes.append("stripped surrounding spaces")
        text = stripped

    if not text:
        return Normalized("ignored", text, tuple(notes), "empty")
    probe = text[:_PREFIX_PROBE].lower()
    if probe.startswith(_IGNORED_PREFIX_SET):
        reason = next(r for p, r in _IGNORED_PREFIXES if probe.startswith(p))
        return Normalized("ignored", text, tuple(notes), reason)
    if text.startswith("#"):
        return Normalized("ignored", text, tuple(notes), "anchor")
    based = JEKYLL_BASEURL.match(text)
    tail = text[based.end() :] if based else text
    if "<%" in tail or ("{" in tail and _TEMPLATE.search(tail)):
        return Normalized("ignored", text, tuple(notes), "template placeholder")

    as_written = text
    if not text.isascii():
        text = _fold_fullwidth(text, notes)

    m = _HTTPISH.match(text)
    if m:
        written = m.group("scheme").lower()
        scheme = "https" if written.endswith("s") else "http"
        if written != scheme or m.group("sep") != "://":
            notes.append(f"scheme '{m.group()}' -> '{scheme}://'")
        return _remote(as_written, scheme, text[m.end() :], notes)
    if text.startswith("//"):
        notes.append("protocol-relative '//' -> 'https://'")
        return _remote(as_written, "https", text[2:], notes)

    m = _SCHEME.match(text)
    if m:
        scheme = m.group()[:-1].lower()
        return Normalized("ignored", text, tuple(notes), f"unsupported scheme '{scheme}'")

    local, hash_, fragment = text.partition("#")
    if hash_:
        notes.append(f"dropped fragment '#{fragment}'")
    return Normalized("local", local, tuple(notes))


def host_of(url: str) -> str:
    """Lower-case host of a remote URL, without port or brackets; "" if none."""
    m = _AUTHORITY.match(url)
    if not m:
        return ""
    host, _ = _split_port(m.group(1).rpartition("@")[2])
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.lower()


def looks_like_image(url: str) -> bool:
    """Whether the URL's file name ends in an image extension.

    Query and fragment are ignored, case does not matter, and CDN processing
    suffixes after the extension count (``a.jpg!thumb``, ``a.png@!web.avif``).
    """
    path = _QUERY_OR_FRAGMENT.split(url.strip(), maxsplit=1)[0]
    m = _AUTHORITY.match(path)
    if m:
        path = path[m.end() :]
    name = path.rpartition("/")[2]
    return _IMAGE_SUFFIX.search(name) is not None


def mirror_url(base: str, path: str) -> str:
    """``base`` + "/" + the mirror-relative ``path``, percent-encoded.

    Everything but unreserved characters and "/" is encoded (non-ASCII as
    UTF-8): the result then needs no quoting or escaping in Markdown, HTML,
    tag arguments or YAML, and a server decodes it back to the file name.
    """
    return base.rstrip("/") + "/" + quote(path, safe="/")
