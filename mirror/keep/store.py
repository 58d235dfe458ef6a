"""Where a mirrored file lives under ``mirror.dir``, and how it gets there safely.

Paths
-----
Every function here returns a *relative* :class:`~pathlib.PurePosixPath`; the
caller joins it to ``mirror.dir`` with :func:`inside`, which checks once more
that the result cannot leave the root.

``hash_path(sha256, ext)`` is the ``hash`` layout: ``ab/cd/<sha256><ext>``.
Identical images are stored once.

``url_path(url, ext)`` is the ``url`` layout: ``<host>/<url path>``, made safe
for every common file system whatever the URL holds:

* The host is lower-cased; a port is kept as ``host_8080`` (``:`` is not
  portable); user info is dropped. The scheme is not part of the path: a
  browser loads ``http://h/a.jpg`` on an ``https`` page as ``https://h/a.jpg``
  (mixed-content upgrade), so both are one image and share one file (should
  the two ever serve other bytes, the second goes beside the first,
  ``a~<hash>.jpg``: the commit step never overwrites another URL's file). Default
  ports (80 for http, 443 for https) are dropped, as ``mirror.urls`` does.
* The path is percent-decoded as UTF-8 (bad bytes become U+FFFD) and split on
  ``/`` and ``\\``. Empty, ``.`` and ``..`` components are dropped, never
  resolved upwards. In each component control characters, surrogates and
  ``<>:"|?*`` become ``_``; trailing dots and spaces are stripped (Windows
  drops them silently); a leading ``.`` gets a ``_`` prefix (no hidden files,
  and no clash with our ``.name.xxxxxxxx.part`` temporary files); a Windows
  device name (``CON``, ``nul.jpg``, ``COM1``, ...) gets ``_`` after its stem;
  a component is cut to at most 150 UTF-8 bytes at a character boundary.
  A component left empty is dropped.
* At most 16 path components: directories past the 15th are dropped (the file
  name stays last) and the URL hash below keeps the result unique.
* The file name is the last component, or ``index`` when the path ends with
  ``/`` or is empty. If its own extension is one of the sniffed format's
  (case-insensitive; ``mirror.formats``: ``.jpeg``, ``.jpe``, ``.jfif``,
  ``.pjpeg`` and ``.pjp`` count as ``.jpg``, ``.tiff`` as ``.tif``, ``.heif``
  as ``.heic``, ...), the name is kept as written; otherwise the format's
  extension is appended.

Two different URLs never get the same path (unless an 8-hex-digit SHA-256
prefix collides). This is how:

* A *clean* URL is one whose path maps back exactly: nothing above changed its
  text (re-encoding the components the way ``mirror.urls`` encodes gives the
  URL's path again, so ``..``, ``%41`` for ``A``, lower-case ``%e5``, ``%2F``,
  a reserved or hidden name, a cut all make a URL unclean), its host has no
  ``_`` (which would make ``h_80`` ambiguous), it has no user info, its file
  name contains no ``~`` (reserved for our suffixes), and its extension was
  kept, not appended (``/a`` served as JPEG and ``/a.jpg`` would both become
  ``a.jpg``).
* A clean URL without a query keeps its name: ``a.jpg``. It contains no ``~``.
* A clean URL with a query gets ``~<8 hex of sha256(query)>`` before the
  extension: ``a~1b2c3d4e.jpg``. Different queries give different names.
* Any other URL gets ``~<8 hex of sha256(identity)>`` there instead, where the
  identity is the URL without scheme and fragment (``//host:port/path?query``,
  user info included): ``photo.png~5e6f7a8b.jpg``, ``640~90ab12cd.png``,
  ``CON_~3c4d5e6f.jpg``. That hash covers the query too, so there is only
  ever one hash in a name.

The suffix always sits just before the final extension (the text from the
last dot), so two names can only be equal if their hashes are.

Not handled here: case-insensitive (macOS, Windows) and normalization-
insensitive file systems may still fold ``A.jpg`` and ``a.jpg`` into one file.

Writing
-------
:class:`AtomicFile` writes to ``.<name>.<8 hex>.part`` in the target directory
and renames it onto the final path only when the block ends without an
exception, so a reader never sees a partial file. :func:`remove_partials`
deletes the temporary files a crash left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import string
import threading
from datetime import UTC, datetime
from io import BufferedWriter
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Literal, NamedTuple
from urllib.parse import unquote

from mirror import formats

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_BYTES",
    "AtomicFile",
    "DirSync",
    "Reserve",
    "hash_path",
    "inside",
    "is_partial",
    "remove_partials",
    "url_path",
]

MAX_COMPONENT_BYTES = 150
"""Longest path component we write, in UTF-8 bytes (file systems allow 255)."""

MAX_COMPONENTS = 16
"""Most path components below the host directory, file name included."""

_HASH_LEN = 8
_SUFFIX_BYTES = 1 + _HASH_LEN  # "~" + hex

_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#\\]*)(.*)\Z", re.DOTALL)
_SEPARATORS = re.compile(r"[/\\]")
# Controls (C0, DEL, C1), lone surrogates (not encodable in a file name) and
# the characters Windows refuses. "/" and "\" cannot occur: we split on them.
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*/\\\ud800-\udfff]')
_SUPERSCRIPTS = "\u00b9\u00b2\u00b3"
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in "123456789" + _SUPERSCRIPTS]
)
# What mirror.urls leaves unescaped in a path; every other character is
# written as upper-case %XX of its UTF-8 bytes. "/" is left out on purpose:
# inside a component it can only have come from "%2F".
_URL_SAFE = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@[]")

_PARTIAL = re.compile(r"\..+\.[0-9a-f]{8}\.part\Z", re.DOTALL)
_PARTIAL_NAME_BYTES = 100


class _Url(NamedTuple):
    userinfo: str | None
    host: str
    port: str  # "" when absent or the scheme's default
    path: str  # as written, "/" when empty
    query: str | None  # None when there is no "?"


def _digest(text: str) -> str:
    # surrogatepass: a URL read from a badly decoded file must still hash.
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:_HASH_LEN]


def _check_extension(extension: str) -> str:
    ext = extension.lower()
    if not _EXTENSION.match(ext):
        raise ValueError(f"not a file extension: {extension!r}")
    return formats.written(ext)


def _split_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):  # IPv6 literal: its ":"s are not a port
        close = hostport.find("]")
        if close >= 0 and hostport[close + 1 : close + 2] == ":":
            return hostport[: close + 1], hostport[close + 2 :]
        return hostport, None
    host, colon, port = hostport.partition(":")
    return host, (port if colon else None)


def _parse(url: str) -> _Url:
    m = _URL.match(url)
    if not m or m.group(1).lower() not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    scheme = m.group(1).lower()
    userinfo, at, hostport = m.group(2).rpartition("@")
    host, port = _split_port(hostport)
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = port or ""
    if port.isascii() and port.isdigit():
        port = port.lstrip("0") or "0"
        if (scheme, port) in (("http", "80"), ("https", "443")):
            port = ""
    rest = m.group(3).partition("#")[0]  # the fragment never reaches the server
    path, question, query = rest.partition("?")
    return _Url(
        userinfo if at else None, host.lower(), port, path or "/", query if question else None
    )


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _sanitize(text: str) -> str:
    """One path component made portable; "" means drop it (".", "..", "")."""
    text = _FORBIDDEN.sub("_", text)
    # Windows strips trailing dots and spaces, so "a." and "a" would be one
    # file there; ".." and "." end up empty here and are dropped.
    text = text.rstrip(". ")
    if not text:
        return ""
    if text.startswith("."):
        text = "_" + text
    stem, dot, tail = text.partition(".")
    # Windows opens the device for "NUL", "nul.jpg", "NUL .tar.gz" alike.
    if stem.rstrip(" ").upper() in _RESERVED:
        text = stem + "_" + dot + tail
    return text


def _sanitize_dir(text: str) -> str:
    text = _sanitize(text)
    if len(text.encode("utf-8")) > MAX_COMPONENT_BYTES:
        # Cutting can expose a trailing dot or space again.
        text = _fit(text, MAX_COMPONENT_BYTES).rstrip(". ") or "_"
    return text


def _canon(text: str) -> str:
    """``text`` percent-encoded exactly as ``mirror.urls`` writes a path."""
    out = []
    for ch in text:
        if ch in _URL_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _host_dir(url: _Url) -> tuple[str, bool]:
    """The host directory name, and whether making it changed anything."""
    # A port is digits: one that is not is garbage, cut to leave the host half
    # the name (not exact, so the file name gets the URL's hash).
    port = _fit(_sanitize(url.port) or "_", MAX_COMPONENT_BYTES // 2) if url.port else ""
    suffix = f"_{port}" if port else ""
    # Same rules as a path component: "con.example.com" is a device on Windows.
    text = _sanitize(url.host) or "_"
    text = _fit(text, MAX_COMPONENT_BYTES - len(suffix.encode("utf-8"))).rstrip(". ") or "_"
    # A "_" in the host would make "a_1" (host a, port 1) ambiguous with the
    # host "a_1"; a non-numeric port is garbage that we had to clean.
    exact = text == url.host and "_" not in text and (not url.port or url.port.isdigit())
    return text + suffix, not exact


def url_path(url: str, extension: str) -> PurePosixPath:
    """Relative path of a remote image in the ``url`` layout.

    ``url`` is a normalized http(s) URL (``mirror.urls.normalize``); others
    are handled safely but may get a hash they would not need. ``extension``
    is the sniffed format's extension with its dot (``".jpg"``). Raises
    ValueError for a URL that is not http(s) or has no host, and for an
    extension that is not ``.`` plus 1-10 letters or digits. See the module
    docstring for the rules.
    """
    ext = _check_extension(extension)
    parts = _parse(url)
    host, host_changed = _host_dir(parts)

    pieces = _SEPARATORS.split(unquote(parts.path, encoding="utf-8", errors="replace"))
    dirs = [d for d in map(_sanitize_dir, pieces[:-1]) if d]
    name = _sanitize(pieces[-1])
    if len(dirs) >= MAX_COMPONENTS:
        dirs = dirs[: MAX_COMPONENTS - 1]

    # Clean means the path can be read back from the components exactly, so
    # no other URL can produce them; see the module docstring.
    clean = (
        not host_changed
        and parts.userinfo is None
        and bool(name)
        and "~" not in name
        and "/" + "/".join(_canon(c) for c in [*dirs, name]) == parts.path
    )
    name = name or "index"

    dot = name.rfind(".")
    own = name[dot:] if dot > 0 else ""
    if own and formats.written(own) == ext:
        stem, tail = name[: -len(own)], own
    else:
        # Appending can collide with a URL whose name already ends in ext.
        stem, tail = name, ext
        clean = False

    limit = MAX_COMPONENT_BYTES - _SUFFIX_BYTES - len(tail.encode("utf-8"))
    if len(stem.encode("utf-8")) > limit:
        stem = _fit(stem, limit)
        clean = False

    if not clean:
        identity = "//" + (f"{parts.userinfo}@" if parts.userinfo is not None else "")
        identity += parts.host + (f":{parts.port}" if parts.port else "") + parts.path
        identity += f"?{parts.query}" if parts.query is not None else ""
        suffix = "~" + _digest(identity)
    elif parts.query is not None:
        suffix = "~" + _digest(parts.query)
    else:
        suffix = ""
    return PurePosixPath(host, *dirs, stem + suffix + tail)


def hash_path(sha256: str, extension: str) -> PurePosixPath:
    """Relative path in the ``hash`` layout: ``ab/cd/<sha256><ext>``.

    Two levels of 256 directories keep each directory small even for a
    million images. Raises ValueError unless ``sha256`` is 64 hex digits.
    """
    digest = sha256.lower()
    if not _SHA256.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return PurePosixPath(digest[:2], digest[2:4], digest + _check_extension(extension))


def inside(root: Path, relative: PurePosixPath) -> Path:
    """``root / relative`` as an absolute path, if it stays strictly inside root.

    Defence in depth: the layout functions never produce an escaping path,
    but this refuses absolute paths, ``..``, backslashes, NUL, and symbolic
    links inside root that point out of it, with ValueError.
    """
    rel = PurePosixPath(relative)
    if rel.is_absolute() or not rel.parts:
        raise ValueError(f"not a relative file path: {str(relative)!r}")
    for part in rel.parts:
        if part == ".." or "\\" in part or "\x00" in part:
            raise ValueError(f"unsafe path component {part!r} in {str(relative)!r}")
    base = Path(os.path.abspath(root))
    target = base.joinpath(*rel.parts)
    try:
        real_base = base.resolve()
        real_target = target.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ValueError(f"cannot resolve {target}: {exc}") from exc
    if real_target == real_base or not real_target.is_relative_to(real_base):
        raise ValueError(f"{str(relative)!r} leads outside {base}")
    return target


class CheckedRoot:
    """:func:`inside` for many files under one root, each directory resolved once.

    :func:`inside` resolves every path component (an ``lstat`` each, in
    Python) for every file. Here a directory it accepted, once it exists, is
    remembered: a later file in it costs one ``lstat`` of its own name, and a
    symbolic link there is still resolved in full. Safe to share between
    threads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._base = Path(os.path.abspath(root))
        self._dirs: set[PurePosixPath] = set()

    def __call__(self, relative: PurePosixPath) -> Path:
        rel = PurePosixPath(relative)
        if rel.parent in self._dirs and not rel.is_absolute():
            parts = rel.parts
            if parts and all(p != ".." and "\\" not in p and "\x00" not in p for p in parts):
                target = self._base.joinpath(*parts)
                try:
                    if not stat.S_ISLNK(os.lstat(target).st_mode):
                        return target
                except FileNotFoundError:
                    return target
                except OSError:
                    pass  # inside() says what is wrong
        target = inside(self.root, rel)
        if target.parent.is_dir():
            self._dirs.add(rel.parent)
        return target


def is_partial(name: str) -> bool:
    """Whether a file name is one of :class:`AtomicFile`'s temporary names."""
    return _PARTIAL.match(name) is not None


def _partial_name(name: str) -> str:
    # The final name is only there for a human looking at the directory; it
    # is cut so that the temporary name stays under the 255-byte limit.
    shown = name.encode("utf-8", "surrogateescape")[:_PARTIAL_NAME_BYTES]
    # os.urandom is what secrets.token_hex reads, without importing secrets (and random).
    return f".{shown.decode('utf-8', 'ignore') or 'file'}.{os.urandom(4).hex()}.part"


def _make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and missing parents; return those we created."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir() and current.parent != current:
        missing.append(current)
        current = current.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():  # a file in the way: the caller must know
                raise
            continue  # another worker made it first
        created.append(path)
    return created


_FSYNC_UNSUPPORTED = {errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL), errno.EBADF}


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; Windows cannot)."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:
        return
    fd = os.open(directory, os.O_RDONLY | flag)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (and FUSE mounts) refuse fsync on a directory.
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


class DirSync:
    """Directories whose renames are made durable together, later.

    An fsync of the directory after every rename forces a journal commit per
    file, and on ext4 those commits also stall every file created meanwhile
    (~13% of a fetch's thread time). A fetch instead hands its directories
    here and calls :meth:`sync` before it records a batch in the state, so
    nothing the state says is mirrored can vanish in a power cut. What a
    crash loses is a rename nothing records yet: that URL is fetched again.
    Thread-safe: downloads commit in worker threads.
    """

    def __init__(self) -> None:
        self._pending: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, directories: list[Path]) -> None:
        with self._lock:
            self._pending.update(directories)

    def sync(self) -> None:
        """fsync every directory handed in since the last call.

        One that fails (EIO, or an interrupt) stays pending with the rest, so
        the caller's next sync tries them again, and a caller that writes its
        rows only after a sync that returned never records them unsynced.
        """
        with self._lock:
            pending, self._pending = sorted(self._pending), set()
        for done, directory in enumerate(pending):
            try:
                _fsync_dir(directory)
            except BaseException:
                self.add(pending[done:])
                raise


_State = Literal["new", "open", "committed", "discarded", "failed"]


class AtomicFile:
    """Write a file so that it appears at ``final`` complete or not at all.

    ::

        af = AtomicFile(path)
        with af as f:
            f.write(data)
            if not valid(data):
                af.discard()  # nothing is written, no exception needed

    Entering creates the parent directories and a temporary file ``.temp``
    (``.<name>.<8 hex>.part``) in the same directory, so the final rename
    never crosses file systems. Leaving the block normally flushes, fsyncs
    the file (``fsync=True``), renames it over ``final`` and fsyncs the
    directory so the rename survives a power cut. Leaving it by any
    exception, KeyboardInterrupt included, removes the temporary file and
    lets the exception through. Do not close the yielded file yourself.

    The file is created with mode 0o666 less the umask, like ``open()``
    (``tempfile`` would make it 0o600, unreadable to a web server).
    With ``dirs``, the directories are handed to that :class:`DirSync`
    rather than fsynced at once. An instance is used once.
    """

    def __init__(self, final: Path, *, fsync: bool = True, dirs: DirSync | None = None) -> None:
        self.final = Path(final)
        if not self.final.name:
            raise ValueError(f"not a file path: {str(final)!r}")
        self.fsync = fsync
        self._dirs = dirs
        self.temp = self.final.with_name(_partial_name(self.final.name))
        self._file: BufferedWriter | None = None
        self._created: list[Path] = []
        self._state: _State = "new"

    @property
    def committed(self) -> bool:
        """Whether the file has been renamed into place."""
        return self._state == "committed"

    def __enter__(self) -> BufferedWriter:
        if self._state != "new":
            raise RuntimeError(f"AtomicFile for {self.final} is single-use ({self._state})")
        self._created = _make_dirs(self.final.parent)
        fd = self._create_temp()
        try:
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self._remove_temp()
            raise
        self._state = "open"
        return self._file

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "open":  # discarded inside the block
            return
        if exc_type is not None:
            self._abort()
            return
        try:
            self._commit()
        except BaseException:
            self._abort()
            raise

    def _create_temp(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _attempt in range(9):
            try:
                # O_EXCL: never write through a file or symlink someone else
                # put there; 0o666 lets the umask decide, as open() does.
                return os.open(self.temp, flags, 0o666)
            except FileExistsError:  # 32 random bits taken: draw again
                self.temp = self.final.with_name(_partial_name(self.final.name))
        return os.open(self.temp, flags, 0o666)

    def retarget(self, final: Path, *, dirs: DirSync | None = None) -> None:
        """Rename to ``final`` instead when committing (open files only); with
        ``dirs``, hand the directories to fsync there.

        For a name known only once the content is (a download, named by its
        URL and format or by its hash): the temporary file stays where it is;
        ``final`` must be on the same file system, which any path inside the
        mirror dir is.
        """
        if self._state != "open":
            raise RuntimeError(f"cannot retarget {self.final}: it is {self._state}")
        if final != self.final:
            self._created += _make_dirs(final.parent)
            self.final = Path(final)
        if dirs is not None:
            self._dirs = dirs

    def discard(self) -> None:
        """Abandon the file: remove the temporary, leave ``final`` untouched.

        May be called inside the block (the yielded file is closed) or before
        entering it. Raises RuntimeError once the file has been committed.
        """
        if self._state == "committed":
            raise RuntimeError(f"{self.final} is already committed")
        if self._state == "open":
            self._abort()
        self._state = "discarded"

    def _commit(self) -> None:
        assert self._file is not None
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp, self.final)
        self._state = "committed"
        if self.fsync:
            # A directory we created is itself only an entry in its parent.
            directories = [self.final.parent, *(d.parent for d in self._created)]
            if self._dirs is not None:
                self._dirs.add(directories)
                return
            for directory in directories:
                _fsync_dir(directory)

    def _abort(self) -> None:
        if self._state == "open":
            self._state = "failed"
        if self._file is not None:
            # Closing flushes; a full disk must not hide the original error.
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
        if self._state != "committed":
            self._remove_temp()

    def _remove_temp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


class Reserve:
    """Room held on a disk by a file of ``size`` bytes, for the last writes of a
    run that fills that disk: a full disk refuses SQLite its journal too, so
    without it the rows of the files that did fit could not be written.

    :meth:`hold` is best effort (a disk already too full holds nothing);
    :meth:`release` gives the room back, and the next run holds it again.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size

    def hold(self) -> None:
        try:
            if self.path.stat().st_size >= self.size:
                return
        except FileNotFoundError:
            pass
        try:
            # Written, not truncated to size: a sparse file would hold no room.
            with open(self.path, "wb") as out:
                out.write(bytes(self.size))
        except OSError:
            self.release()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def stamped(path: Path) -> Path:
    """``path`` with the UTC time appended to its name: where an older file is set aside."""
    return path.with_name(f"{path.name}.{datetime.now(UTC):%Y%m%dT%H%M%SZ}")


TRASH_DIR_NAME = "trash"  # under the state dir: where files no one asks for go, never deleted


def to_trash(source: Path, target: Path) -> bool:
    """Move ``source`` to ``target`` (a name already taken gets the time appended);
    False when there is no such file to move."""
    if not source.is_file():
        return False
    if target.exists():
        target = stamped(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return True


def remove_partials(root: Path) -> int:
    """Delete :class:`AtomicFile` temporaries left under ``root`` by a crash.

    Only names of the exact form ``.<name>.<8 hex>.part`` are touched;
    symbolic links to directories are not followed. Run it only while no
    writer is active (under the state lock). Returns how many were deleted.
    """
    removed = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if is_partial(filename):
                try:
                    os.unlink(os.path.join(dirpath, filename))
                except FileNotFoundError:
                    continue
                removed += 1
    return removed
