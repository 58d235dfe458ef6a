"""Which generator builds the site, and how it serves its files.

Each generator serves one folder of the site at the site's base path: Hexo
``source/`` (``source_dir``) at ``root:``, Hugo ``static/`` (``staticDir``)
at the path of ``baseURL``, Jekyll the site itself at ``baseurl`` (less the
``_``- and ``.``-prefixed folders and ``exclude:``); a plain Markdown folder
is taken as served at ``/``. From that, :func:`settle` derives the defaults of
``mirror.dir`` and ``rewrite.local_prefix`` that the user did not set, says
where each came from, and refuses a ``mirror.dir`` the generator would not
serve; :meth:`Layout.site_file` gives verify the site's own view: which file
the built site answers a URL path with.

The generators' own config files are read as they read them (YAML, TOML,
JSON); one that cannot be read leaves the generator's defaults, with a note.
"""

from __future__ import annotations

import posixpath
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

from mirror.config import Config
from mirror.errors import ConfigError
from mirror.urls import JEKYLL_BASEURL

Generator = Literal["hexo", "hugo", "jekyll", "markdown"]

_MARKDOWN = (".md", ".markdown")
MIRROR_SUBDIR = "images/mirror"  # where the mirror goes inside the served folder
_HUGO_CONFIGS = tuple(
    f"{folder}{stem}.{ext}"
    for folder in ("", "config/_default/")
    for stem in ("hugo", "config")
    for ext in ("toml", "yaml", "yml", "json")
)
# Jekyll never copies these (its defaults), whatever _config.yml adds.
_JEKYLL_EXCLUDED = ("Gemfile", "Gemfile.lock", "node_modules", "vendor", "gemfiles")


@dataclass(frozen=True, slots=True)
class Layout:
    generator: Generator
    name: str  # as the user knows it: "Hexo", "plain Markdown"
    why: str  # what gave it away, for -v
    globs: tuple[str, ...]  # the posts, when site.posts is not set
    served: str  # the folder served at the base path, relative to the root ("" = the root)
    served_from: str  # where that came from
    base_path: str  # the URL path the site's links start with: "" or "/blog"
    base_from: str
    excluded: tuple[str, ...] = ()  # Jekyll: top-level names it does not copy
    included: tuple[str, ...] = ()  # Jekyll: "_"- or "."-names it copies all the same
    asset_folders: bool = False  # Hexo post_asset_folder: a post's folder of images
    notes: tuple[str, ...] = field(default=())  # a generator config that could not be read

    @property
    def mirror_dir(self) -> str:
        """The default ``mirror.dir``: inside the served folder."""
        return posixpath.join(self.served, MIRROR_SUBDIR) if self.served else MIRROR_SUBDIR

    def url_path(self, rel: str) -> str | None:
        """The URL path ("/blog/images/mirror") the folder or file ``rel`` (relative to
        the root) is served at, or None when the generator does not serve it."""
        parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
        served = [p for p in self.served.split("/") if p not in ("", ".")]
        if parts[: len(served)] != served:
            return None
        inner = parts[len(served) :]
        if not self._serves(inner):
            return None
        return self.base_path + "/" + "/".join(inner)

    def _serves(self, inner: list[str]) -> bool:
        if self.generator == "hexo":  # Hexo skips "_" files and folders (but _posts) and dotfiles
            return not any(p.startswith(("_", ".")) for p in inner)
        if self.generator == "jekyll":
            if inner and inner[0] in self.excluded:
                return False
            return not any(p.startswith(("_", ".")) and p not in self.included for p in inner)
        return True

    def site_file(self, url_path: str) -> str | None:
        """The file (relative to the root) the built site answers ``url_path`` with,
        or None when the path is outside the site's base path. Whether the generator
        copies that file at all is :meth:`url_path`'s question."""
        # A browser resolves ".." in a URL path, never above the host's root.
        path = unquote(url_path.partition("?")[0].partition("#")[0])
        path = posixpath.normpath("/" + path.lstrip("/"))  # "//x" would stay "//x"
        if self.base_path:
            if not (path == self.base_path or path.startswith(self.base_path + "/")):
                return None
            path = path[len(self.base_path) :]
        return posixpath.normpath(posixpath.join(self.served or ".", path.lstrip("/")))

    def bundle_of(self, post: str) -> str | None:
        """The folder (relative to the root) that holds ``post``'s own images, if it has
        one: a Hugo leaf bundle (``content/x/index.md``), a Hexo post asset folder
        (``source/_posts/x.md`` -> ``source/_posts/x/``, with ``post_asset_folder``)."""
        path = PurePosixPath(post)
        if self.generator == "hugo" and path.stem == "index" and path.suffix in _MARKDOWN:
            return path.parent.as_posix()
        if self.asset_folders and post.startswith(f"{self.served}/_posts/"):
            return path.with_suffix("").as_posix()
        return None

    def expand(self, prefix: str) -> str:
        """``prefix`` with Jekyll's ``{{ site.baseurl }}`` filled in, as the built page has it."""
        return JEKYLL_BASEURL.sub(lambda _: self.base_path, prefix, count=1)


def detect(root: Path) -> Layout:
    """The generator of the site at ``root`` and how it serves files."""
    if (root / "source/_posts").is_dir():
        return _hexo(root)
    if (root / "content").is_dir():
        return _hugo(root)
    if (root / "_posts").is_dir():
        return _jekyll(root)
    return Layout(
        "markdown", "plain Markdown", "no source/_posts/, content/ or _posts/", ("**/*.md",),
        "", "no generator: the site root is taken as served at /", "",
        "no generator: the site root is taken as served at /",
    )  # fmt: skip


def _hexo(root: Path) -> Layout:
    conf, notes = _read_config(root, ("_config.yml",))
    source = _text(conf.get("source_dir")) or "source"
    base = _path_part(_text(conf.get("root")) or "/")
    return Layout(
        "hexo", "Hexo", "source/_posts/ exists",
        (
            "source/_posts/**/*.md",
            "source/_posts/**/*.markdown",
            "source/*.md",  # pages: source/404.md, source/about/index.md, ...
            "source/[!_]*/**/*.md",
        ),
        source,
        "source_dir in _config.yml" if conf.get("source_dir") else "Hexo serves source/ at root:",
        base, "root: in _config.yml" if conf.get("root") else "Hexo's default root: /",
        asset_folders=conf.get("post_asset_folder") is True, notes=notes,
    )  # fmt: skip


def _hugo(root: Path) -> Layout:
    conf, notes = _read_config(root, _HUGO_CONFIGS)
    name = conf.get("\0file", "the Hugo config")
    static = conf.get("staticdir")
    static = static[0] if isinstance(static, list) and static else static
    base_url = _text(conf.get("baseurl"))
    base, base_from = _path_part(base_url), f"baseURL in {name}"
    if not base_url:
        base_from = "no baseURL: served at /"
    elif conf.get("canonifyurls") is True and base:
        # Hugo puts baseURL in front of every "/..." link itself.
        base, base_from = "", f"canonifyURLs in {name} adds baseURL's path {base} itself"
    return Layout(
        "hugo", "Hugo", "content/ exists", ("content/**/*.md", "content/**/*.markdown"),
        _text(static) or "static",
        f"staticDir in {name}" if _text(static) else "Hugo serves static/ at baseURL",
        base, base_from, notes=notes,
    )  # fmt: skip


def _jekyll(root: Path) -> Layout:
    conf, notes = _read_config(root, ("_config.yml",))
    source = _text(conf.get("source"))
    base = _path_part(_text(conf.get("baseurl")))
    excluded = [_text(x).strip("/") for x in _list(conf.get("exclude"))]
    return Layout(
        "jekyll", "Jekyll", "_posts/ exists", ("_posts/**/*.md", "_posts/**/*.markdown"),
        "" if source in ("", ".", "./") else source.strip("/"),
        "source in _config.yml" if source else "Jekyll serves the site's own folders at baseurl",
        base, "baseurl in _config.yml" if base else "no baseurl: served at /",
        excluded=(*_JEKYLL_EXCLUDED, *excluded),
        included=tuple(_text(x).strip("/") for x in _list(conf.get("include"))), notes=notes,
    )  # fmt: skip


def _read_config(root: Path, names: tuple[str, ...]) -> tuple[dict[str, object], tuple[str, ...]]:
    """The first of ``names`` that exists, read; top-level keys lower-cased
    (Hugo's are case-insensitive; Hexo's and Jekyll's are lower-case anyway).
    The file's name is under the key "\\0file"."""
    for name in names:
        path = root / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
            if name.endswith(".toml"):
                data: object = tomllib.loads(text)
            elif name.endswith(".json"):
                import json  # only a JSON config needs it

                data = json.loads(text)
            else:
                data = _load_yaml(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return {}, (f"{name}: cannot read it ({reason}); the generator's defaults apply",)
        if not isinstance(data, dict):
            return {}, (f"{name}: not a mapping of keys; the generator's defaults apply",)
        conf = {str(k).lower(): v for k, v in data.items()}
        conf["\0file"] = name
        return conf, ()
    return {}, ()


def _load_yaml(text: str) -> object:
    """``text`` read as YAML; ValueError when it is not."""
    # Imported here: only a YAML config needs PyYAML (~15 ms to import); a TOML
    # or JSON one, a plain Markdown folder and `--help` do without it.
    import yaml

    # libyaml's loader, as the front matter's: the pure-Python one takes ~7x as long.
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _path_part(url: str) -> str:
    """The path of a base URL or path, without its trailing "/": "" for the root."""
    path = urlsplit(url).path if "://" in url else url
    path = "/" + path.strip("/") if path.strip("/") else ""
    return path


@dataclass(frozen=True, slots=True)
class Settled:
    config: Config  # with the derived defaults in place
    layout: Layout
    origins: tuple[str, ...]  # "mirror.dir = ... (why)", for -v

    @property
    def notice(self) -> str | None:
        """Said without -v: a guess the user should know of (no generator found,
        so the site root is taken as served at /)."""
        derived = {"mirror.dir", "rewrite.local_prefix"} - self.config.given
        if self.layout.generator != "markdown" or not derived:
            return None
        rewrite = self.config.rewrite
        return (
            f"note: no Hexo, Hugo or Jekyll layout: the mirror goes to {self.config.mirror.dir}"
            f" and posts point at {rewrite.local_prefix}/..., which works if the site root is"
            " served at /; set mirror.dir and rewrite.local_prefix otherwise"
        )

    @property
    def lines(self) -> tuple[str, ...]:
        """What -v says: the generator, each derived value and where it came from."""
        layout = self.layout
        return (
            f"layout: {layout.name} ({layout.why})",
            *(f"layout: {origin}" for origin in self.origins),
            *(f"note: {note}" for note in layout.notes),
            *((self.notice,) if self.notice else ()),
        )


def settle(config: Config) -> Settled:
    """``config`` with ``mirror.dir`` and ``rewrite.local_prefix`` derived from the
    site's layout where the user set neither; ConfigError for a ``mirror.dir``
    the generator would not serve when the prefix is left to be derived from it."""
    layout = detect(config.site.root)
    given = config.given
    rewrite, mirror = config.rewrite, config.mirror
    origins: list[str] = []
    if "mirror.dir" in given:
        mirror_dir, dir_from = mirror.dir, f"set in {config.source}"
    elif "rewrite.local_prefix" in given and (found := _dir_of(layout, rewrite.local_prefix)):
        mirror_dir, dir_from = found, f"where {layout.name} serves rewrite.local_prefix"
    else:
        mirror_dir, dir_from = layout.mirror_dir, layout.served_from
        if mirror_dir.startswith("/") or ".." in mirror_dir.split("/"):
            raise ConfigError(
                f"{layout.name} serves '{layout.served}' ({layout.served_from}), outside the"
                " site root: set mirror.dir and rewrite.local_prefix"
            )
    if "rewrite.local_prefix" in given:
        prefix, prefix_from = rewrite.local_prefix, f"set in {config.source}"
    else:
        served = layout.url_path(mirror_dir)
        if served is None:
            raise ConfigError(_not_served(config, layout, mirror_dir))
        prefix, prefix_from = served, f"{layout.base_from}; mirror.dir served there"
    origins.append(f"mirror.dir = {mirror_dir} ({dir_from})")
    origins.append(f"rewrite.local_prefix = {prefix or '/'} ({prefix_from})")
    settled = replace(
        config,
        mirror=replace(mirror, dir=mirror_dir),
        rewrite=replace(rewrite, local_prefix=prefix),
    )
    return Settled(settled, layout, tuple(origins))


def _dir_of(layout: Layout, prefix: str) -> str | None:
    """The folder a root-relative ``prefix`` is served from, when it is a sub-folder."""
    if not prefix.startswith("/") and not JEKYLL_BASEURL.match(prefix):
        return None  # a full URL: some other server; keep the generator's default
    rel = layout.site_file(layout.expand(prefix))
    if rel in (None, "", ".") or layout.url_path(rel) is None:
        return None
    return rel


_UNSERVED: dict[Generator, str] = {
    "hexo": "it copies {served}/ less the names starting with '_' or '.'",
    "hugo": "it copies {served}/ as it is, and makes pages of the rest",
    "jekyll": "it copies the site less the names starting with '_' or '.' and exclude:",
    "markdown": "",
}


def _not_served(config: Config, layout: Layout, mirror_dir: str) -> str:
    where = f"{config.source}: " if config.source else ""
    return (
        f"{where}invalid value for 'mirror.dir' ({mirror_dir!r}): {layout.name} does not serve"
        f" that folder ({_UNSERVED[layout.generator].format(served=layout.served or '.')}), so"
        f" no URL of the built site reaches it; use '{layout.mirror_dir}', or set"
        " rewrite.local_prefix to where your own server serves it"
    )
