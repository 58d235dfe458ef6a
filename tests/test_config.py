"""Tests for mirror.config: defaults, file discovery, root resolution, errors."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirror import __version__
from mirror.config import (
    CONFIG_FILE_NAME,
    DEFAULT_FRONT_MATTER_KEYS,
    DEFAULT_MAX_PIXELS,
    BackupConfig,
    Config,
    DownloadConfig,
    MirrorConfig,
    PublishConfig,
    RewriteConfig,
    SiteConfig,
    ThumbnailsConfig,
    _find_line,
    load_config,
    parse_config,
)
from mirror.errors import ConfigError

EXAMPLE = Path(__file__).parents[1] / "config.example.toml"

# The contract's defaults, written out by hand: the tests must not read the contract.
CONTRACT_FRONT_MATTER_KEYS = (
    "headimg", "thumbnail", "images", "top_img", "cover", "pagination_cover",
    "index_img", "banner_img", "og_img", "banner", "photos", "photo", "image", "image.path",
    "featured_image", "cover.image", "header.image", "header.overlay_image", "header.teaser",
    "header.og_image", "gallery.url", "gallery.image_path",
)  # fmt: skip
DEFAULT_MIRROR = MirrorConfig(dir="source/images/mirror", layout="url")
DEFAULT_DOWNLOAD = DownloadConfig(
    concurrency=16,
    per_host=4,
    timeout=30.0,
    retries=4,
    max_bytes=52428800,
    user_agent=f"gallery-mirror/{__version__}",
    allow_private=False,
    wayback=False,
    wayback_base="https://web.archive.org/web/2id_/",
    fsync=True,
    retry_after_max=60.0,
    max_pixels=178_956_970,
    headers=MappingProxyType({}),
    origins=MappingProxyType({}),
)
DEFAULT_THUMBNAILS = ThumbnailsConfig(
    enabled=True, dir="_thumbs", sizes=(480,), format="webp", quality=82,
    background=(255, 255, 255), animated=False,
)  # fmt: skip
DEFAULT_BACKUP = BackupConfig(refresh_after=7.0, prune_after=30.0)
DEFAULT_REWRITE = RewriteConfig(to="local", local_prefix="/images/mirror", cdn_base="", hosts=())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(text: str, tmp_path: Path) -> str:
    """The ConfigError message for `text` read as ./gallery-mirror.toml from tmp_path."""
    write(tmp_path / CONFIG_FILE_NAME, text)
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    return str(info.value)


def assert_defaults(config: Config) -> None:
    assert config.site.posts is None
    assert config.site.front_matter_keys == CONTRACT_FRONT_MATTER_KEYS
    assert config.mirror == DEFAULT_MIRROR
    assert config.download == DEFAULT_DOWNLOAD
    assert config.thumbnails == DEFAULT_THUMBNAILS
    assert config.rewrite == DEFAULT_REWRITE
    assert config.backup == DEFAULT_BACKUP


# --- defaults and discovery


def test_no_file_gives_contract_defaults_rooted_at_cwd(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path)
    assert config.source is None
    assert config.site.root == tmp_path.resolve()
    assert_defaults(config)
    assert DEFAULT_FRONT_MATTER_KEYS == CONTRACT_FRONT_MATTER_KEYS
    assert config.mirror_dir == tmp_path.resolve() / "source/images/mirror"
    assert config.state_dir == tmp_path.resolve() / ".gallery-mirror"
    assert isinstance(config.download.timeout, float)


def test_empty_text_gives_defaults(tmp_path: Path) -> None:
    assert_defaults(parse_config("", source=None, cwd=tmp_path))


def test_file_in_cwd_is_read(tmp_path: Path) -> None:
    source = write(tmp_path / CONFIG_FILE_NAME, '[mirror]\nlayout = "hash"\n')
    config = load_config(cwd=tmp_path)
    assert config.mirror.layout == "hash"
    assert config.source == source
    assert config.site.root == tmp_path.resolve()


def test_file_in_site_dir_is_read_and_site_is_root(tmp_path: Path) -> None:
    source = write(tmp_path / "blog" / CONFIG_FILE_NAME, "[download]\nretries = 0\n")
    write(tmp_path / CONFIG_FILE_NAME, "[download]\nretries = 9\n")  # cwd's file is not used
    config = load_config(site=Path("blog"), cwd=tmp_path)
    assert config.download.retries == 0
    assert config.source == source
    assert config.site.root == (tmp_path / "blog").resolve()


def test_explicit_path_with_relative_root_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "blog").mkdir()
    write(tmp_path / "conf" / "mirror.toml", '[site]\nroot = "../blog"\n')
    config = load_config(Path("conf/mirror.toml"), cwd=tmp_path)
    assert config.site.root == (tmp_path / "blog").resolve()
    assert config.source == tmp_path / "conf" / "mirror.toml"


def test_explicit_path_without_root_roots_at_the_files_directory(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "mirror.toml", "")
    assert load_config(path, cwd=tmp_path / "conf").site.root == (tmp_path / "conf").resolve()
    assert load_config(path, cwd=tmp_path).site.root == (tmp_path / "conf").resolve()


def test_site_overrides_root_and_is_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "blog").mkdir()
    (tmp_path / "other").mkdir()
    write(tmp_path / "conf" / "mirror.toml", '[site]\nroot = "../blog"\n')
    config = load_config(Path("conf/mirror.toml"), site=Path("other"), cwd=tmp_path)
    assert config.site.root == (tmp_path / "other").resolve()


def test_absolute_root_in_file(tmp_path: Path) -> None:
    (tmp_path / "blog").mkdir()
    text = f"[site]\nroot = '{tmp_path / 'blog'}'\n"
    config = parse_config(text, source=tmp_path / "x.toml", cwd=Path("/"))
    assert config.site.root == (tmp_path / "blog").resolve()


def test_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(b"\xef\xbb\xbf[download]\nretries = 1\n")
    assert load_config(cwd=tmp_path).download.retries == 1


# --- values that are converted


def test_values_are_normalised(tmp_path: Path) -> None:
    text = """
[site]
posts = ["content/**/*.md"]
front_matter_keys = []
[download]
timeout = 2
[download.headers]
"IMG.Example.com" = { Referer = "https://blog.example.com/" }
[download.origins]
"A.example.com" = "http://127.0.0.1:8000/a"
"b.example.com" = ["https://m1.example.com", "http://m2.example.com/x"]
[thumbnails]
sizes = [960, 240, 960, 480]
[rewrite]
to = "cdn"
cdn_base = "https://cdn.example.com/gallery"
hosts = ["B.com", "a.com", "b.com"]
"""
    config = parse_config(text, source=None, cwd=tmp_path)
    assert config.site.posts == ("content/**/*.md",)
    assert config.site.front_matter_keys == ()
    assert config.download.timeout == 2.0 and isinstance(config.download.timeout, float)
    assert dict(config.download.headers) == {
        "img.example.com": {"Referer": "https://blog.example.com/"}
    }
    assert dict(config.download.origins) == {
        "a.example.com": ("http://127.0.0.1:8000/a",),
        "b.example.com": ("https://m1.example.com", "http://m2.example.com/x"),
    }
    assert config.thumbnails.sizes == (240, 480, 960)
    assert config.rewrite.hosts == ("b.com", "a.com")
    assert config.rewrite.to == "cdn"


def test_config_is_read_only(tmp_path: Path) -> None:
    text = '[download.headers]\n"h" = { X-A = "1" }\n'
    config = parse_config(text, source=None, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.download.retries = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.download.headers["h"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        config.download.headers["h"]["X-A"] = "2"  # type: ignore[index]


# --- errors: unknown keys and sections, with line and suggestion


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    text = "# settings\n[site]\nroot = '.'\n\n[download]\nper_host = 2\nretrys = 3\n"
    assert error_of(text, tmp_path) == (
        f"{CONFIG_FILE_NAME}:7: unknown key 'download.retrys' (did you mean 'retries'?)"
    )


def test_unknown_key_in_site_dir_file_names_its_path(tmp_path: Path) -> None:
    write(tmp_path / "blog" / CONFIG_FILE_NAME, "[thumbnails]\nsize = [1]\n")
    with pytest.raises(ConfigError, match=r"^blog/gallery-mirror\.toml:2: unknown key"):
        load_config(site=Path("blog"), cwd=tmp_path)


def test_unknown_section_with_suggestion(tmp_path: Path) -> None:
    message = error_of("[site]\n\n[thumbnail]\nenabled = false\n", tmp_path)
    assert message == (
        f"{CONFIG_FILE_NAME}:3: unknown section 'thumbnail' (did you mean 'thumbnails'?)"
    )


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path: Path) -> None:
    message = error_of("[rewrite]\nzzzz = 1\n", tmp_path)
    assert message == f"{CONFIG_FILE_NAME}:2: unknown key 'rewrite.zzzz'"


def test_top_level_key_suggests_its_section(tmp_path: Path) -> None:
    message = error_of('root = "."\n', tmp_path)
    assert message == f"{CONFIG_FILE_NAME}:1: unknown key 'root' (did you mean 'site.root'?)"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[download]\nretrys = 1\n", 2),
        ('site.root = "."\ndownload.retrys = 1\n', 2),  # dotted key at top level
        ('\n\ndownload = { retries = 1, "retrys" = 2 }\n', 3),  # inline table
        ('[download]\n"retrys" = 1\n', 2),  # quoted key
        ("[ download ]  # the downloader\n  retrys   =   1\n", 2),  # spacing, comment
        (
            '[rewrite]\nlocal_prefix = """/\n[download]\nretrys = 1\n"""\n[download]\nretrys = 2\n',
            7,
        ),
        ("[download.extra]\nx = 1\n", 1),  # a table below the unknown key
    ],
)
def test_line_locator(tmp_path: Path, text: str, line: int) -> None:
    assert error_of(text, tmp_path).startswith(f"{CONFIG_FILE_NAME}:{line}: unknown key 'download.")


@given(
    text=st.text(alphabet=st.sampled_from(list("[]{}=.,'\"\\# \n\tabk")), max_size=80),
    path=st.lists(st.sampled_from(["a", "b", "k", "a.b", ""]), min_size=1, max_size=3),
)
def test_line_locator_never_fails_and_stays_in_range(text: str, path: list[str]) -> None:
    # It runs on every error path, even over text it cannot follow: it must not raise.
    line = _find_line(text, tuple(path))
    assert line is None or 1 <= line <= len(text.splitlines())


def test_every_problem_is_reported(tmp_path: Path) -> None:
    message = error_of(
        "[download]\nretrys = 1\nper_host = 0\n[thumbnails]\nquality = 0\n", tmp_path
    )
    assert [line.split(": ")[0] for line in message.splitlines()] == [
        f"{CONFIG_FILE_NAME}:2",
        f"{CONFIG_FILE_NAME}:3",
        f"{CONFIG_FILE_NAME}:5",
    ]


# --- errors: wrong types and values


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[download]\nconcurrency = true", "download.concurrency", "an integer >= 1, got true"),
        ("[download]\nper_host = 0", "download.per_host", "expected an integer >= 1, got 0"),
        ('[download]\nretries = "3"', "download.retries", 'an integer >= 0, got "3"'),
        ("[download]\nretries = 1.0", "download.retries", "an integer >= 0, got 1.0"),
        ("[download]\nmax_bytes = 0", "download.max_bytes", "an integer >= 1, got 0"),
        ("[download]\ntimeout = 0", "download.timeout", "seconds > 0, got 0"),
        ("[download]\ntimeout = inf", "download.timeout", "seconds > 0, got inf"),
        ("[download]\ntimeout = false", "download.timeout", "got false"),
        ('[download]\nfsync = "yes"', "download.fsync", 'expected true or false, got "yes"'),
        ("[download]\nuser_agent = 1", "download.user_agent", "a non-empty string"),
        ('[download]\nuser_agent = "a\\r\\nX: 1"', "download.user_agent", "without line breaks"),
        ('[download]\nwayback_base = "ftp://x/"', "download.wayback_base", "an http(s) URL"),
        ('[download]\nheaders = "x"', "download.headers", 'got "x"'),
        ('[download.headers]\n"h.com" = "x"', 'download.headers."h.com"', "a table of header"),
        ('[download.headers]\n"h.com" = { A = 1 }', 'download.headers."h.com".A', "a string"),
        ('[download.headers]\nh = { "A B" = "1" }', 'download.headers.h."A B"', "header name"),
        ('[download.origins]\n"H.com" = "/local"', 'download.origins."H.com"', "http(s) URL"),
        ("[download.origins]\nh = []", "download.origins.h", "got an empty array"),
        ("[download.origins]\nh = [1]", "download.origins.h", "got an array"),
        ('download.origins = { "h.com" = 1 }', 'download.origins."h.com"', "got 1"),
        ('[site]\nposts = "**/*.md"', "site.posts", 'non-empty array of non-empty strings, got "'),
        ("[site]\nposts = []", "site.posts", "got an empty array"),
        ('[site]\nfront_matter_keys = ["a", ""]', "site.front_matter_keys", 'holding ""'),
        ("[site]\nroot = 1", "site.root", "expected a string, got 1"),
        ('[mirror]\nlayout = "flat"', "mirror.layout", 'one of "url", "hash", got "flat"'),
        ("[thumbnails]\nsizes = 480", "thumbnails.sizes", "array of integers >= 1, got 480"),
        ("[thumbnails]\nsizes = []", "thumbnails.sizes", "got an empty array"),
        ("[thumbnails]\nsizes = [480, -1]", "thumbnails.sizes", "got an array holding -1"),
        ('[thumbnails]\nformat = "gif"', "thumbnails.format", 'got "gif"'),
        ("[thumbnails]\nquality = 101", "thumbnails.quality", "from 1 to 100, got 101"),
        ('[thumbnails]\ndir = "../up"', "thumbnails.dir", "without '..'"),
        ('[thumbnails]\ndir = "/abs"', "thumbnails.dir", "relative"),
        ('[rewrite]\nto = "s3"', "rewrite.to", 'one of "local", "cdn"'),
        ('[rewrite]\nto = "cdn"', "rewrite.to", '"cdn" needs rewrite.cdn_base'),
        ('[rewrite]\ncdn_base = "cdn.example.com"', "rewrite.cdn_base", 'http(s) URL or ""'),
        ('[thumbnails]\nbackground = "white"', "thumbnails.background", '"#rrggbb", got "white"'),
        ("[download]\nretry_after_max = 0", "download.retry_after_max", "seconds > 0, got 0"),
        ("[backup]\nprune_after = -1", "backup.prune_after", "days >= 0, got -1"),
        ("[rewrite]\nlocal_prefix = false", "rewrite.local_prefix", "a full http(s) URL, or"),
        ('[rewrite]\nhosts = "a.com"', "rewrite.hosts", 'got "a.com"'),
        ("site = 1", "site", "expected a table, got 1"),
        ("[[site]]", "site", "expected a table, got an array"),
    ],
)
def test_invalid_value_names_key_line_and_values(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    message = error_of(text, tmp_path)
    line = len(text.splitlines())  # each case puts its faulty key on the last line
    assert message.startswith(f"{CONFIG_FILE_NAME}:{line}: invalid value for '{key}': ")
    assert fragment in message
    assert "\n" not in message


def test_hosts_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    message = error_of('\n[download.headers]\n"H" = {}\n"h" = {}\n', tmp_path)
    assert message.startswith(f"{CONFIG_FILE_NAME}:2: invalid value for 'download.headers': ")
    assert "each host once" in message


@pytest.mark.parametrize(
    "value",
    ["../images", "a/../../b", "/srv/images", "C:/images", "..\\\\images", ".", "",
     ".gallery-mirror", "./.gallery-mirror/mirror"],
)  # fmt: skip
def test_mirror_dir_must_stay_inside_root_and_outside_state(tmp_path: Path, value: str) -> None:
    message = error_of(f'[mirror]\ndir = "{value}"\n', tmp_path)
    assert message.startswith(f"{CONFIG_FILE_NAME}:2: invalid value for 'mirror.dir': expected a")


@pytest.mark.parametrize("value", ["images", "./static/img", "a/b/c", "source/.images"])
def test_mirror_dir_accepts_sub_directories(tmp_path: Path, value: str) -> None:
    config = parse_config(f'[mirror]\ndir = "{value}"\n', source=None, cwd=tmp_path)
    assert config.mirror.dir == value
    assert config.mirror_dir == tmp_path.resolve() / value


# --- errors: files and roots


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    message = error_of("[site]\nroot = '.'\nposts = [\"a\"\n[mirror]\n", tmp_path)
    assert re.fullmatch(rf"{CONFIG_FILE_NAME}:4: invalid TOML: .+", message), message


def test_invalid_toml_at_end_of_document(tmp_path: Path) -> None:
    message = error_of("[site]\nroot =", tmp_path)
    assert message.startswith(f"{CONFIG_FILE_NAME}:2: invalid TOML: ")


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Path("nope.toml"), cwd=tmp_path)
    assert str(info.value) == "nope.toml: cannot read config file: No such file or directory"


def test_explicit_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    with pytest.raises(ConfigError, match=r"^conf: cannot read config file: "):
        load_config(Path("conf"), cwd=tmp_path)


def test_config_name_taken_by_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).mkdir()
    with pytest.raises(ConfigError, match=r"^gallery-mirror\.toml: cannot read config file: "):
        load_config(cwd=tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(b'[site]\nroot = "\xff"\n')
    with pytest.raises(ConfigError, match=r"^gallery-mirror\.toml: not UTF-8"):
        load_config(cwd=tmp_path)


def test_missing_site_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^site directory 'gone' \(.*gone\) does not exist$"):
        load_config(site=Path("gone"), cwd=tmp_path)


def test_site_directory_that_is_a_file(tmp_path: Path) -> None:
    write(tmp_path / "blog", "")
    with pytest.raises(ConfigError, match=r"is not a directory$"):
        load_config(site=Path("blog"), cwd=tmp_path)


def test_missing_root_in_file_names_file_line_and_root(tmp_path: Path) -> None:
    message = error_of('[site]\nroot = "gone"\n', tmp_path)
    expected = (
        f"{CONFIG_FILE_NAME}:2: site root 'gone' ({tmp_path.resolve() / 'gone'}) does not exist"
    )
    assert message == expected


def test_parse_config_without_source_labels_messages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^<config>:1: unknown section 'x'$"):
        parse_config("[x]\n", source=None, cwd=tmp_path)


def test_each_section_is_its_declared_defaults(tmp_path: Path) -> None:
    # One declaration per key: the dataclasses alone give what a run without a
    # config file gets.
    config = load_config(cwd=tmp_path)
    assert config.site == SiteConfig(root=tmp_path.resolve())
    assert config.mirror == MirrorConfig()
    assert config.download == DownloadConfig()
    assert config.thumbnails == ThumbnailsConfig()
    assert config.rewrite == RewriteConfig()
    assert config.backup == BackupConfig()
    assert DownloadConfig().max_pixels == DEFAULT_MAX_PIXELS == 178_956_970


# --- config.example.toml stays honest


def test_example_loads_to_exactly_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.site.root == EXAMPLE.parent.resolve()
    assert_defaults(config)


def test_example_documents_every_field() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    sections = {
        "site": SiteConfig,
        "mirror": MirrorConfig,
        "download": DownloadConfig,
        "thumbnails": ThumbnailsConfig,
        "rewrite": RewriteConfig,
        "backup": BackupConfig,
        "publish": PublishConfig,
    }
    assert [f.name for f in dataclasses.fields(Config)] == [*sections, "source", "given"]
    # auto-detected / derived from the generator / version-dependent defaults
    commented = {"site.posts", "mirror.dir", "rewrite.local_prefix", "download.user_agent"}
    for name, cls in sections.items():
        for field in dataclasses.fields(cls):
            if f"{name}.{field.name}" in commented:
                assert re.search(rf"^# {field.name} = ", text, re.MULTILINE), field.name
            else:
                assert field.name in data[name], f"{name}.{field.name}"
    for example in ('"img.example.com" = { Referer =', '"imgcdn.yaerxing.com" = ["http'):
        assert f"# {example}" in text
