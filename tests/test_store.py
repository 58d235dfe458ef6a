"""Tests for mirror.keep.store: mirror paths and atomic writes."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mirror.formats import FORMATS
from mirror.keep import store
from mirror.keep.store import (
    MAX_COMPONENT_BYTES,
    MAX_COMPONENTS,
    AtomicFile,
    CheckedRoot,
    DirSync,
    hash_path,
    inside,
    is_partial,
    remove_partials,
    url_path,
)
from mirror.urls import normalize

SHA = "ab" * 32


def q_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:8]


def u_hash(url: str) -> str:
    """The URL hash: the URL without its scheme (http and https are one image)."""
    return hashlib.sha256(url[url.index("//") :].encode()).hexdigest()[:8]


def expect(url: str, template: str) -> str:
    query = url.partition("?")[2]
    return template.format(u=u_hash(url), q=q_hash(query))


# --- url_path: one case per rule --------------------------------------------------
# (normalized URL, sniffed extension, expected path; {u} = URL hash, {q} = query hash)
URL_CASES = [
    # plain, clean URLs keep their text
    ("https://h.com/a/b.jpg", ".jpg", "h.com/a/b.jpg"),
    ("https://h.com/~user/a.jpg", ".jpg", "h.com/~user/a.jpg"),
    ("https://h.com/%E5%9B%BE%E7%89%87/%E7%8C%AB%201.png", ".png", "h.com/图片/猫 1.png"),
    ("https://xn--fiqs8s.example/a.gif", ".gif", "xn--fiqs8s.example/a.gif"),
    ("https://h.com/CONsole.jpg", ".jpg", "h.com/CONsole.jpg"),
    ("https://h.com/COM0.jpg", ".jpg", "h.com/COM0.jpg"),
    ("https://h.com/a_b.png", ".png", "h.com/a_b.png"),
    # traversal never climbs: ".." and "." are dropped, the URL hash added
    ("https://h/../../etc/passwd", ".jpg", "h/etc/passwd~{u}.jpg"),
    ("https://h/%2E%2E/%2E%2E/x.jpg", ".jpg", "h/x~{u}.jpg"),
    ("https://h/a/./b/../x.jpg", ".jpg", "h/a/b/x~{u}.jpg"),
    ("https://h/a%5C..%5C..%5Cx.png", ".png", "h/a/x~{u}.png"),
    ("https://h/a%2F..%2F..%2Fx.png", ".png", "h/a/x~{u}.png"),
    ("https://h//etc/x.png", ".png", "h/etc/x~{u}.png"),
    ("https://h///x.png", ".png", "h/x~{u}.png"),
    ("https://h/%2F%2Fetc/x.png", ".png", "h/etc/x~{u}.png"),
    # forbidden characters become "_"
    ("https://h/a%00b.png", ".png", "h/a_b~{u}.png"),
    ("https://h/a%1Fb%7Fc%C2%85d.png", ".png", "h/a_b_c_d~{u}.png"),
    ("https://h/a:b.png", ".png", "h/a_b~{u}.png"),
    ("https://h/c:/x.png", ".png", "h/c_/x~{u}.png"),
    ("https://h/%3C%3E%22%7C%3F*.png", ".png", "h/______~{u}.png"),
    # trailing dots and spaces (Windows drops them)
    ("https://h/a.jpg.", ".jpg", "h/a~{u}.jpg"),
    ("https://h/a.jpg%20%20", ".jpg", "h/a~{u}.jpg"),
    ("https://h/dir.../x.jpg", ".jpg", "h/dir/x~{u}.jpg"),
    ("https://h/.../x.jpg", ".jpg", "h/x~{u}.jpg"),
    # Windows device names, any case, with or without extension
    ("https://h/CON.jpg", ".jpg", "h/CON_~{u}.jpg"),
    ("https://h/nul", ".png", "h/nul_~{u}.png"),
    ("https://h/Aux.tar.gz", ".png", "h/Aux_.tar.gz~{u}.png"),
    ("https://h/lpt9.JPG", ".jpg", "h/lpt9_~{u}.JPG"),
    ("https://h/com1/x.jpg", ".jpg", "h/com1_/x~{u}.jpg"),
    ("https://h/NUL%20.jpg", ".jpg", "h/NUL _~{u}.jpg"),
    ("https://h/CONOUT$.png", ".png", "h/CONOUT$_~{u}.png"),
    ("https://h/COM%C2%B9.png", ".png", "h/COM\u00b9_~{u}.png"),
    ("https://con.example.com/a.jpg", ".jpg", "con_.example.com/a~{u}.jpg"),
    # hidden names get a "_" prefix
    ("https://h/.htaccess", ".png", "h/_.htaccess~{u}.png"),
    ("https://h/.git/x.png", ".png", "h/_.git/x~{u}.png"),
    ("https://h/.x.jpg", ".jpg", "h/_.x~{u}.jpg"),
    # host: port kept as host_port, user info dropped, odd hosts cleaned
    ("https://h:8080/a.png", ".png", "h_8080/a.png"),
    ("http://h:443/a.png", ".png", "h_443/a.png"),
    ("https://u:p@h/a.jpg", ".jpg", "h/a~{u}.jpg"),
    ("https://my_bucket.example.com/a.jpg", ".jpg", "my_bucket.example.com/a~{u}.jpg"),
    ("http://[::1]:8080/a.jpg", ".jpg", "[__1]_8080/a~{u}.jpg"),
    # query: a stable hash of the query in the name
    ("https://h/a.jpg?x=1", ".jpg", "h/a~{q}.jpg"),
    ("https://h/a.jpg?", ".jpg", "h/a~{q}.jpg"),
    ("https://h/d/a.JPEG?w=100&h=50", ".jpg", "h/d/a~{q}.JPEG"),
    # extension: kept when it names the sniffed format, else appended
    ("https://h/a.JPG", ".jpg", "h/a.JPG"),
    ("https://h/a.jpeg", ".jpg", "h/a.jpeg"),
    ("https://h/a.jpe", ".jpg", "h/a.jpe"),
    ("https://h/a.jfif", ".jpg", "h/a.jfif"),
    ("https://h/a.TIFF", ".tif", "h/a.TIFF"),
    ("https://h/a.webp", ".webp", "h/a.webp"),
    ("https://h/a.svg", ".svg", "h/a.svg"),
    ("https://h/photo.png", ".jpg", "h/photo.png~{u}.jpg"),
    ("https://h/a.jpg", ".png", "h/a.jpg~{u}.png"),
    ("https://h/640?wx_fmt=png", ".png", "h/640~{u}.png"),
    ("https://h/a.jpg!thumb", ".jpg", "h/a.jpg!thumb~{u}.jpg"),
    ("https://h/a.png@!web.avif", ".avif", "h/a.png@!web.avif"),
    ("https://h/noext", ".heic", "h/noext~{u}.heic"),
    # directory URLs become "index"
    ("https://h/", ".jpg", "h/index~{u}.jpg"),
    ("https://h/dir/", ".jpg", "h/dir/index~{u}.jpg"),
    ("https://h/dir/..", ".jpg", "h/dir/index~{u}.jpg"),
    ("https://h/index.jpg", ".jpg", "h/index.jpg"),
    # whatever changes the text makes the URL hash appear
    ("https://h/%41.jpg", ".jpg", "h/A~{u}.jpg"),
    ("https://h/a%2Fb.jpg", ".jpg", "h/a/b~{u}.jpg"),
    ("https://h/%FF.jpg", ".jpg", "h/\ufffd~{u}.jpg"),
    ("https://h/a~1b2c3d4e.jpg", ".jpg", "h/a~1b2c3d4e~{u}.jpg"),
    ("https://h/a~b.jpg?x", ".jpg", "h/a~b~{u}.jpg"),
]


@pytest.mark.parametrize(("url", "ext", "template"), URL_CASES)
def test_url_path(url: str, ext: str, template: str) -> None:
    # The cases are written in normalized form, as the fetch stage passes them.
    assert normalize(url).url == url
    assert url_path(url, ext) == PurePosixPath(expect(url, template))


# Inputs that normalize() would have rewritten: still safe, hash where needed.
RAW_CASES = [
    ("https://h/%2e%2e/%2e%2e/x.jpg", ".jpg", "h/x~{u}.jpg"),
    ("https://h/%e5%9b%be.jpg", ".jpg", "h/图~{u}.jpg"),
    ("https://h/a\\..\\..\\x.png", ".png", "h/a/x~{u}.png"),
    ("https://h/a.jpg#frag", ".jpg", "h/a.jpg"),
    ("HTTPS://H.COM:443/a.jpg", ".jpg", "h.com/a.jpg"),
    ("https://h.com:08080/a.jpg", ".jpg", "h.com_8080/a.jpg"),
    ("https://h/\x00/../a.jpg", ".jpg", "h/_/a~{u}.jpg"),
    ("https://h/\ud800.jpg", ".jpg", "h/_~{u}.jpg"),
    ("https://h", ".jpg", "h/index~{u}.jpg"),
    ("https://h:x/a.jpg", ".jpg", "h_x/a~{u}.jpg"),
]


@pytest.mark.parametrize(("url", "ext", "template"), RAW_CASES)
def test_url_path_not_normalized(url: str, ext: str, template: str) -> None:
    got = url_path(url, ext)
    if "{u}" in template:
        # The hash is of the parsed URL; just check the shape around it.
        name = got.name
        stem, _, tail = template.rpartition("~{u}")
        assert str(got.parent / name[: name.rfind("~")]) == stem
        assert name.endswith(tail)
        assert len(name) - len(name[: name.rfind("~")]) - len(tail) == 9
    else:
        assert str(got) == template


def test_long_ascii_name_is_cut_with_room_for_the_hash() -> None:
    url = "https://h/" + "a" * 300 + ".jpg"
    got = url_path(url, ".jpg")
    assert got.name == "a" * 137 + f"~{u_hash(url)}.jpg"
    assert len(got.name.encode()) == MAX_COMPONENT_BYTES


def test_long_cjk_name_is_cut_at_a_character_boundary() -> None:
    url = normalize("https://h/" + "图" * 100 + ".jpg").url  # 300 bytes of name
    name = url_path(url, ".jpg").name
    assert name == "图" * 45 + f"~{u_hash(url)}.jpg"  # 135 bytes + suffix
    assert len(name.encode()) <= MAX_COMPONENT_BYTES


def test_long_name_with_appended_extension() -> None:
    url = "https://h/" + "b" * 300
    name = url_path(url, ".webp").name
    assert name == "b" * (150 - 9 - 5) + f"~{u_hash(url)}.webp"


def test_long_directory_is_cut() -> None:
    url = "https://h/" + "d" * 300 + "/a.jpg"
    assert url_path(url, ".jpg") == PurePosixPath("h", "d" * 150, f"a~{u_hash(url)}.jpg")


def test_directory_cut_never_leaves_a_trailing_dot() -> None:
    url = "https://h/" + "d" * 149 + ".xyz/a.jpg"
    assert url_path(url, ".jpg").parts[1] == "d" * 149


def test_long_host_is_cut() -> None:
    url = "https://" + "h" * 200 + ".com:8080/a.jpg"
    host = url_path(url, ".jpg").parts[0]
    assert host == "h" * 145 + "_8080"


def test_at_most_sixteen_components() -> None:
    dirs = [f"d{i}" for i in range(25)]
    url = "https://h/" + "/".join(dirs) + "/a.jpg"
    got = url_path(url, ".jpg")
    assert got == PurePosixPath("h", *dirs[:15], f"a~{u_hash(url)}.jpg")
    assert len(got.parts) == 1 + MAX_COMPONENTS
    sixteen = "https://h/" + "/".join(dirs[:15]) + "/a.jpg"
    assert url_path(sixteen, ".jpg") == PurePosixPath("h", *dirs[:15], "a.jpg")


def test_query_hash_is_stable_and_distinct() -> None:
    one = url_path("https://h/a.jpg?x-oss-process=image/resize,w_100", ".jpg")
    assert one == url_path("https://h/a.jpg?x-oss-process=image/resize,w_100", ".jpg")
    assert one.name == "a~" + q_hash("x-oss-process=image/resize,w_100") + ".jpg"
    names = {url_path(f"https://h/a.jpg?w={w}", ".jpg").name for w in range(200)}
    assert len(names) == 200


def test_scheme_and_fragment_do_not_matter() -> None:
    # A browser upgrades http images on an https page: one image, one file.
    for path in ("/a.jpg", "/../x.jpg", "/640?wx_fmt=png"):
        assert url_path("http://h" + path, ".png") == url_path("https://h" + path, ".png")
        assert url_path("https://h" + path + "#f", ".png") == url_path("https://h" + path, ".png")


def test_extension_argument_is_canonicalized_and_checked() -> None:
    assert url_path("https://h/a", ".JPEG") == url_path("https://h/a", ".jpg")
    for bad in ("jpg", "", ".", "./x", ".j/g", "..jpg", ".a" * 10):
        with pytest.raises(ValueError):
            url_path("https://h/a", bad)


@pytest.mark.parametrize(
    "url", ["ftp://h/a.jpg", "file:///etc/passwd", "/local/a.jpg", "https:///a.jpg", "h/a.jpg"]
)
def test_url_path_refuses_non_remote(url: str) -> None:
    with pytest.raises(ValueError):
        url_path(url, ".jpg")


# Pairs of different URLs that a careless mapping would store in one file.
DISTINCT_PAIRS = [
    ("https://h/a", "https://h/a.jpg"),  # appended vs kept extension
    ("https://h/photo.png", "https://h/photo.png.jpg"),
    ("https://h/640?q", "https://h/640.jpg?q"),
    ("https://h/A.jpg", "https://h/%41.jpg"),
    ("https://h/a.jpg", "https://h/a.jpg?"),
    ("https://h/a.jpg?x=1", "https://h/a.jpg?x=2"),
    ("https://h/a.jpg?x=1", f"https://h/a~{q_hash('x=1')}.jpg"),
    ("https://h/a.jpg", "https://h/a.jpg."),
    ("https://h/CON.jpg", "https://h/CON_.jpg"),
    ("https://h/.htaccess", "https://h/_.htaccess"),
    ("https://h/a:b.jpg", "https://h/a_b.jpg"),
    ("https://h/a/b.jpg", "https://h/a%2Fb.jpg"),
    ("https://h/a/b.jpg", "https://h//a/b.jpg"),
    ("https://h/x.jpg", "https://h/../x.jpg"),
    ("https://h:8080/a.jpg", "https://h_8080/a.jpg"),
    ("https://h/a.jpg", "https://u@h/a.jpg"),
    ("https://h/", "https://h/index"),
    ("https://h/d/", "https://h/d/.."),
    ("https://h/" + "a" * 200 + "1.jpg", "https://h/" + "a" * 200 + "2.jpg"),
    ("https://h/" + "d/" * 20 + "x.jpg", "https://h/" + "d/" * 21 + "x.jpg"),
]


@pytest.mark.parametrize(("one", "two"), DISTINCT_PAIRS)
def test_distinct_urls_get_distinct_paths(one: str, two: str) -> None:
    assert url_path(one, ".jpg") != url_path(two, ".jpg")


# --- url_path: properties -------------------------------------------------------

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"
}


def assert_safe(path: PurePosixPath) -> None:
    assert not path.is_absolute()
    assert 2 <= len(path.parts) <= 1 + MAX_COMPONENTS
    assert str(path) == "/".join(path.parts)  # PurePosixPath dropped nothing
    for part in path.parts:
        assert part not in ("", ".", "..")
        assert len(part.encode("utf-8")) <= MAX_COMPONENT_BYTES
        assert not part.startswith(".")
        assert not part.endswith((".", " "))
        assert part.partition(".")[0].rstrip(" ").upper() not in WINDOWS_RESERVED
        for ch in part:
            assert ch not in '<>:"|?*/\\', part
            assert not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F), part
            assert not 0xD800 <= ord(ch) <= 0xDFFF, part


PIECES = [
    *("..", ".", "", "...", "%2e%2e", "%2E%2E", "%2e", ".%2e", "%2E."),
    *("a", "A", "%41", "a.jpg", "a.JPG", "a.jpeg", "a.png", "a.jpg!thumb", "a.jpg.", "a "),
    *("CON", "con.jpg", "nul", "Com1.png", "lpt1", "NUL .jpg", "CONOUT$"),
    *(".htaccess", "_.htaccess", ".x.jpg", "x.", "x%20", "x%2E", "a:b", "a_b", "a_8080"),
    *("%00", "%0A", "%3A", "%3F", "%23", "\\", "%5C", "%5c", "%2F", "%2f", "~", "a~1b2c3d4e"),
    *("图", "%E5%9B%BE", "%e5%9b%be", "%FF", "%C0%AE", "%", "%%", "index", "index.jpg"),
    *("x" * 149, "y" * 200, "图" * 60, "%E5%9B%BE" * 60, "é", "e%CC%81", "*", "<>"),
]
HOSTS = [
    *("h", "H", "h.", ".h", "h:8080", "h:080", "h_8080", "h:80", "h:443", "u@h", "u:p@h", "@h"),
    *("[::1]", "[::1]:81", "xn--fiqs8s", "中国", "con.example.com", "my_host", "a..中.com"),
]
QUERIES = ["", "?", "?x=1", "?x=2", "?wx_fmt=png", "?a%20b", "?图", "?x=1#f", "#frag"]
EXTENSIONS = [f.extension for f in FORMATS.values()]

tricky_urls = st.builds(
    lambda scheme, host, pieces, slash, query: (
        f"{scheme}{host}/{'/'.join(pieces)}{'/' if slash else ''}{query}"
    ),
    st.sampled_from(["http://", "https://", "HTTPS://", "//", "httpss://", "http:\\\\"]),
    st.sampled_from(HOSTS),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=20),
    st.booleans(),
    st.sampled_from(QUERIES),
)


# Mostly clean URLs: near misses of these are where a lossy mapping would merge.
simple_urls = st.builds(
    lambda scheme, host, pieces, query: f"{scheme}{host}/{'/'.join(pieces)}{query}",
    st.sampled_from(["http://", "https://"]),
    st.sampled_from(["h.com", "h.com:8080", "xn--fiqs8s.cn"]),
    st.lists(
        st.sampled_from(["a", "b.jpg", "c.PNG", "d.jpeg", "图", "e f.gif", "640"]), max_size=3
    ),
    st.sampled_from(["", "", "?x=1", "?wx_fmt=png"]),
)


def remote(raw: str) -> str | None:
    n = normalize(raw)
    return n.url if n.kind == "remote" else None


@settings(max_examples=300, deadline=None)
@given(tricky_urls, st.sampled_from(EXTENSIONS))
def test_every_path_is_safe(raw: str, ext: str) -> None:
    url = remote(raw)
    if url is not None:
        assert_safe(url_path(url, ext))
    # Un-normalized text must be just as safe when it parses at all.
    try:
        path = url_path(raw, ext)
    except ValueError:
        return
    assert_safe(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(tricky_urls, st.sampled_from(EXTENSIONS)), min_size=2, max_size=40))
def test_distinct_urls_never_share_a_path(items: list[tuple[str, str]]) -> None:
    owner: dict[PurePosixPath, str] = {}
    seen: set[str] = set()
    for raw, ext in items:
        url = remote(raw)
        if url is None:
            continue
        key = url.partition("://")[2]  # the scheme is deliberately not part of it
        if key in seen:
            continue
        seen.add(key)
        path = url_path(url, ext)
        assert path not in owner, f"{url} and {owner[path]} -> {path}"
        owner[path] = key


def near_misses(url: str, ext: str) -> list[str]:
    """URLs one dangerous edit away from ``url``: the ones a lossy mapping merges."""
    head, _, rest = url.partition("://")
    host, slash, tail = rest.partition("/")
    path, question, query = (slash + tail).partition("?")
    dirs, _, name = path.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    q = question + query
    names = [
        name + ext,
        name + ".jpg",
        name + ".",
        name + "%20",
        name + "~" + q_hash(query) if question else name + "~",
        (stem or name) + "~" + q_hash(query) + ext,
        (stem if dot else name) + "~" + u_hash(url) + ext,
        stem if dot else name + ".x",
        "." + name,
        "_." + name,
        name + "_",
        name.upper(),
        "%" + name[:1].encode().hex().upper() + name[1:] if name else "%41",
        "index",
        "index" + ext,
        "",
        "CON" + ext,
        "CON_" + ext,
    ]
    paths = [f"{dirs}/{n}" for n in names]
    paths += [f"{dirs}//{name}", f"{dirs}/./{name}", f"{dirs}/x/../{name}", f"{dirs}/{name}/"]
    paths += [f"{dirs}%2F{name}", f"{dirs}/{name}/index", f"/x{path}", path.lower()]
    hosts = [host, host + ":8080", host + "_8080", "u@" + host, host.upper(), "_" + host]
    queries = ["", "?", "?x=1", q + "&", q]
    out = [f"{head}://{h}{path}{q}" for h in hosts]
    out += [f"{head}://{host}{p}{qq}" for p in paths for qq in queries]
    return out


@settings(max_examples=200, deadline=None)
@given(simple_urls | tricky_urls, st.sampled_from(EXTENSIONS))
@example("http://[::1]:81/" + "x" * 150, ".jpg")  # a port of garbage, and a long path
def test_near_miss_urls_never_share_a_path(raw: str, ext: str) -> None:
    base = remote(raw)
    if base is None:
        return
    owner: dict[PurePosixPath, str] = {}
    for candidate in [base, *near_misses(base, ext)]:
        url = remote(candidate)
        if url is None:
            continue
        key = url.partition("://")[2]
        path = url_path(url, ext)
        assert owner.setdefault(path, key) == key, f"{url} and {owner[path]} -> {path}"
        assert_safe(path)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.sampled_from(EXTENSIONS))
def test_arbitrary_paths_are_safe(text: str, ext: str) -> None:
    url = remote("https://h/" + text)
    if url is not None:
        assert_safe(url_path(url, ext))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=20))
def test_clean_paths_keep_their_text(pieces: list[str]) -> None:
    raw = "https://h/" + "/".join(pieces) + ".jpg"
    # "<%", "{{", "{%", "${" and "{word}" mark template placeholders, not URLs.
    assume(normalize(raw).reason != "template placeholder")
    url = remote(raw)
    assert url is not None
    name = url_path(url, ".jpg").name
    if "~" not in name:  # no hash: the path must be the URL's path, decoded
        assert str(url_path(url, ".jpg")) == "h" + unquote(url.partition("://h")[2])


# --- hash_path -------------------------------------------------------------------


def test_hash_path() -> None:
    assert hash_path(SHA, ".png") == PurePosixPath("ab", "ab", SHA + ".png")
    digest = hashlib.sha256(b"x").hexdigest()
    assert hash_path(digest.upper(), ".JPEG") == PurePosixPath(
        digest[:2], digest[2:4], digest + ".jpg"
    )


@pytest.mark.parametrize(
    ("digest", "ext"),
    [("ab" * 31, ".png"), ("zz" * 32, ".png"), ("../" * 22, ".png"), (SHA, "png"), (SHA, "./")],
)
def test_hash_path_refuses_bad_input(digest: str, ext: str) -> None:
    with pytest.raises(ValueError):
        hash_path(digest, ext)


# --- inside -----------------------------------------------------------------------


def test_inside_joins(tmp_path: Path) -> None:
    rel = url_path("https://h/a/b.jpg", ".jpg")
    got = inside(tmp_path, rel)
    assert got == tmp_path / "h" / "a" / "b.jpg"
    assert got.is_absolute()


def test_inside_makes_relative_roots_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert inside(Path("m"), PurePosixPath("a.jpg")) == tmp_path / "m" / "a.jpg"


@pytest.mark.parametrize(
    "rel", ["../x", "a/../../x", "/etc/passwd", "", ".", "a/..", "a\\..\\x", "a\x00b", "../root/x"]
)
def test_inside_refuses_escapes(tmp_path: Path, rel: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValueError):
        inside(root, PurePosixPath(rel))


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_inside_refuses_symlinks_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "h").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "h" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError):
        inside(root, PurePosixPath("h/link/x.jpg"))
    # A root that is itself a symlink is fine.
    (tmp_path / "alias").symlink_to(root)
    assert inside(tmp_path / "alias", PurePosixPath("h/x.jpg")) == tmp_path / "alias/h/x.jpg"


@pytest.mark.parametrize(
    "rel", ["../x", "a/../../x", "/etc/passwd", "", ".", "a/..", "a\\..\\x", "a\x00b", "../root/x"]
)
def test_checked_root_refuses_escapes_in_a_checked_dir(tmp_path: Path, rel: str) -> None:
    checked = CheckedRoot(tmp_path)
    (tmp_path / "a").mkdir()
    assert checked(PurePosixPath("a/ok.jpg")) == tmp_path / "a" / "ok.jpg"
    assert checked(PurePosixPath("top.jpg")) == tmp_path / "top.jpg"
    with pytest.raises(ValueError):
        checked(PurePosixPath(rel))


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_checked_root_resolves_a_symlinked_file_in_a_checked_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "h").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    checked = CheckedRoot(root)
    assert checked(PurePosixPath("h/a.jpg")) == root / "h" / "a.jpg"  # h is remembered
    (root / "h" / "out.jpg").symlink_to(tmp_path / "outside" / "x.jpg")
    with pytest.raises(ValueError):
        checked(PurePosixPath("h/out.jpg"))
    (root / "h" / "in.jpg").symlink_to(root / "h" / "a.jpg")
    assert checked(PurePosixPath("h/in.jpg")) == root / "h" / "in.jpg"


# --- AtomicFile ---------------------------------------------------------------------


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_atomic_write(tmp_path: Path) -> None:
    final = tmp_path / "h" / "d" / "a.jpg"
    af = AtomicFile(final)
    with af as f:
        assert af.temp.parent == final.parent  # same directory: the rename is atomic
        assert af.temp.name.startswith(".a.jpg.") and is_partial(af.temp.name)
        assert af.temp.exists() and not final.exists()
        f.write(b"hello ")
        f.write(b"world")
        assert not final.exists()
    assert final.read_bytes() == b"hello world"
    assert af.committed
    assert listing(tmp_path) == ["h", "h/d", "h/d/a.jpg"]


def test_atomic_replaces_existing_file_only_at_the_end(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    final.write_bytes(b"old")
    with AtomicFile(final) as f:
        f.write(b"new")
        assert final.read_bytes() == b"old"
    assert final.read_bytes() == b"new"


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyboardInterrupt(), SystemExit(3)])
def test_atomic_exception_leaves_nothing(tmp_path: Path, exc: BaseException) -> None:
    final = tmp_path / "a.jpg"
    af = AtomicFile(final)
    with pytest.raises(type(exc)), af as f:
        f.write(b"partial")
        raise exc
    assert not af.temp.exists() and not final.exists()
    assert listing(tmp_path) == []
    assert not af.committed


def test_atomic_exception_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    final.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), AtomicFile(final) as f:
        f.write(b"new")
        raise KeyboardInterrupt
    assert final.read_bytes() == b"old"
    assert listing(tmp_path) == ["a.jpg"]


def test_atomic_discard(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    af = AtomicFile(final)
    with af as f:
        f.write(b"not an image")
        af.discard()
        assert f.closed and not af.temp.exists()
        af.discard()  # twice is harmless
    assert listing(tmp_path) == []
    assert not af.committed


def test_atomic_discard_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    final.write_bytes(b"old")
    af = AtomicFile(final)
    with af:
        af.discard()
    assert final.read_bytes() == b"old"
    assert listing(tmp_path) == ["a.jpg"]


def test_atomic_discard_after_commit_and_reuse_are_errors(tmp_path: Path) -> None:
    af = AtomicFile(tmp_path / "a.jpg")
    with af as f:
        f.write(b"x")
    with pytest.raises(RuntimeError):
        af.discard()
    with pytest.raises(RuntimeError), af:
        pass
    early = AtomicFile(tmp_path / "b.jpg")
    early.discard()
    with pytest.raises(RuntimeError), early:
        pass
    assert listing(tmp_path) == ["a.jpg"]


def test_atomic_failed_rename_removes_the_temporary(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    (final / "child").mkdir(parents=True)  # a non-empty directory is in the way
    af = AtomicFile(final)
    with pytest.raises(OSError), af as f:
        f.write(b"x")
    assert not af.temp.exists()
    assert listing(tmp_path) == ["a.jpg", "a.jpg/child"]


def test_atomic_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "h").write_bytes(b"")
    with pytest.raises(OSError), AtomicFile(tmp_path / "h" / "a.jpg"):
        pass
    assert listing(tmp_path) == ["h"]


def test_atomic_never_reuses_an_existing_temporary(tmp_path: Path) -> None:
    final = tmp_path / "a.jpg"
    af = AtomicFile(final)
    taken = af.temp
    taken.write_bytes(b"someone else's")
    with af as f:
        f.write(b"mine")
    assert af.temp != taken
    assert taken.read_bytes() == b"someone else's"
    assert final.read_bytes() == b"mine"


def test_atomic_long_name(tmp_path: Path) -> None:
    final = tmp_path / ("图" * 83 + ".jpg")  # 253 bytes: the maximum plus a margin
    af = AtomicFile(final)
    with af as f:
        f.write(b"x")
        assert len(af.temp.name.encode()) <= 255
        assert is_partial(af.temp.name)
    assert final.read_bytes() == b"x"


def test_atomic_rejects_a_path_without_name() -> None:
    with pytest.raises(ValueError):
        AtomicFile(Path("/"))


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_atomic_fsync_on(tmp_path: Path, fsync_calls: list[str]) -> None:
    (tmp_path / "h").mkdir()
    with AtomicFile(tmp_path / "h" / "a.jpg") as f:
        f.write(b"x")
        assert fsync_calls == []
    expected = ["file", "dir"] if hasattr(os, "O_DIRECTORY") else ["file"]
    assert fsync_calls == expected


def test_atomic_fsync_covers_new_directories(tmp_path: Path, fsync_calls: list[str]) -> None:
    with AtomicFile(tmp_path / "x" / "y" / "a.jpg") as f:
        f.write(b"x")
    if hasattr(os, "O_DIRECTORY"):  # the file, its dir, and the entries of x and y
        assert fsync_calls == ["file", "dir", "dir", "dir"]


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="directories cannot be fsynced here")
def test_atomic_hands_its_directories_to_a_dirsync(tmp_path: Path, fsync_calls: list[str]) -> None:
    dirs = DirSync()
    with AtomicFile(tmp_path / "x" / "y" / "a.jpg", dirs=dirs) as f:
        f.write(b"x")
    with AtomicFile(tmp_path / "x" / "y" / "b.jpg", dirs=dirs) as f:
        f.write(b"x")
    assert fsync_calls == ["file", "file"]  # renamed, not yet durable
    dirs.sync()  # y, and the entries of x and y: once each for both files
    assert fsync_calls == ["file", "file", "dir", "dir", "dir"]
    dirs.sync()
    assert len(fsync_calls) == 5


def test_dirsync_keeps_what_it_could_not_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = DirSync()
    first, second = tmp_path / "a", tmp_path / "b"
    dirs.add([first, second])
    synced: list[Path] = []

    def failing(directory: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store, "_fsync_dir", failing)
    with pytest.raises(OSError):
        dirs.sync()
    monkeypatch.setattr(store, "_fsync_dir", synced.append)
    dirs.sync()  # both again: neither was made durable
    assert synced == [first, second]


def test_atomic_fsync_off(tmp_path: Path, fsync_calls: list[str]) -> None:
    final = tmp_path / "x" / "a.jpg"
    with AtomicFile(final, fsync=False) as f:
        f.write(b"x")
    assert fsync_calls == []
    assert final.read_bytes() == b"x"


def test_atomic_no_fsync_when_failing(tmp_path: Path, fsync_calls: list[str]) -> None:
    with pytest.raises(ValueError), AtomicFile(tmp_path / "a.jpg"):
        raise ValueError
    assert fsync_calls == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_mode_follows_umask(tmp_path: Path, umask: int, mode: int) -> None:
    final = tmp_path / "a.jpg"
    old = os.umask(umask)
    try:
        with AtomicFile(final) as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(final.stat().st_mode) == mode


# --- remove_partials ------------------------------------------------------------------


OURS = [".a.jpg.0123abcd.part", "h/d/.b.png.deadbeef.part", ".x.y.z.00000000.part"]
NOT_OURS = [
    ".keep",
    "a.part",
    ".x.part",
    "a.jpg",
    "h/_.htaccess",
    "x.a.jpg.0123abcd.part",  # no leading dot
    ".a.jpg.0123ABCD.part",  # upper-case hex is not what we write
    ".a.jpg.0123abc.part",  # 7 hex digits
    ".a.jpg.0123abcde.part",  # 9 hex digits
    "..0123abcd.part",  # no name
    ".a.jpg.0123abcd.part.jpg",
    ".a.jpg.0123abcd.partial",
]


def test_is_partial() -> None:
    for name in OURS:
        assert is_partial(Path(name).name), name
    for name in NOT_OURS:
        assert not is_partial(Path(name).name), name


def test_remove_partials_removes_only_ours(tmp_path: Path) -> None:
    for name in OURS + NOT_OURS:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    # A directory with our pattern is not a file we wrote.
    (tmp_path / ".d.0123abcd.part").mkdir()
    assert remove_partials(tmp_path) == len(OURS)
    left = listing(tmp_path)
    assert ".d.0123abcd.part" in left
    for name in NOT_OURS:
        assert name in left
    for name in OURS:
        assert name not in left
    assert remove_partials(tmp_path) == 0


def test_remove_partials_cleans_up_after_a_crash(tmp_path: Path) -> None:
    af = AtomicFile(tmp_path / "h" / "a.jpg")
    f = af.__enter__()  # the process "dies" here: no __exit__
    f.write(b"half")
    f.close()
    assert af.temp.exists()
    assert remove_partials(tmp_path) == 1
    assert listing(tmp_path) == ["h"]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_remove_partials_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".a.jpg.0123abcd.part").write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    assert remove_partials(root) == 0
    assert (outside / ".a.jpg.0123abcd.part").exists()


def test_remove_partials_missing_root(tmp_path: Path) -> None:
    assert remove_partials(tmp_path / "nope") == 0
