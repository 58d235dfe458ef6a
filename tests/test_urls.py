"""Tests for mirror.urls: URL normalization and repair."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirror.urls import (
    Normalized,
    host_of,
    looks_like_image,
    normalize,
)

SEED = "imgcdn.yaerxing.com/upimage/stupnote/2025/02/02/1738462164_12009103_8994.jpg"
FW_SPACE = "\u3000"
PIC_RAW = "/图片/猫 1.png"
PIC_URL = "/%E5%9B%BE%E7%89%87/%E7%8C%AB%201.png"


def fullwidth(text: str) -> str:
    """The text as a CJK input method in full-width mode would type it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- scheme repairs --------------------------------------------------------

SCHEME_REPAIRS = [
    # (raw, expected url, expected notes)
    (f"httpss://{SEED}", f"https://{SEED}", ("scheme 'httpss://' -> 'https://'",)),
    ("htps://h.com/a.png", "https://h.com/a.png", ("scheme 'htps://' -> 'https://'",)),
    ("https//h.com/a.png", "https://h.com/a.png", ("scheme 'https//' -> 'https://'",)),
    ("http//h.com/a.png", "http://h.com/a.png", ("scheme 'http//' -> 'http://'",)),
    ("http:/h.com/p/a.png", "http://h.com/p/a.png", ("scheme 'http:/' -> 'http://'",)),
    ("https:/h.com/p/a.png", "https://h.com/p/a.png", ("scheme 'https:/' -> 'https://'",)),
    ("https:://h.com/a.png", "https://h.com/a.png", ("scheme 'https:://' -> 'https://'",)),
    ("http:///h.com/a.png", "http://h.com/a.png", ("scheme 'http:///' -> 'http://'",)),
    ("http:h.com/a.png", "http://h.com/a.png", ("scheme 'http:' -> 'http://'",)),
    ("HTTP:/h.com/a.png", "http://h.com/a.png", ("scheme 'HTTP:/' -> 'http://'",)),
    ("ttps://h.com/a.png", "https://h.com/a.png", ("scheme 'ttps://' -> 'https://'",)),
    ("ttp://h.com/a.png", "http://h.com/a.png", ("scheme 'ttp://' -> 'http://'",)),
    ("htttps://h.com/a.png", "https://h.com/a.png", ("scheme 'htttps://' -> 'https://'",)),
    ("HTTPSS://h.com/a.png", "https://h.com/a.png", ("scheme 'HTTPSS://' -> 'https://'",)),
    ("https:\\\\h.com/a.png", "https://h.com/a.png", ("scheme 'https:\\\\' -> 'https://'",)),
    ("//h.com/p/a.png", "https://h.com/p/a.png", ("protocol-relative '//' -> 'https://'",)),
]


@pytest.mark.parametrize(("raw", "url", "notes"), SCHEME_REPAIRS)
def test_scheme_repairs(raw: str, url: str, notes: tuple[str, ...]) -> None:
    assert normalize(raw) == Normalized("remote", url, notes)


def test_seed_post_url_gets_exactly_one_note_naming_httpss() -> None:
    n = normalize(f"httpss://{SEED}")
    assert n.kind == "remote"
    assert n.url == f"https://{SEED}"
    assert len(n.repairs) == 1
    assert "httpss" in n.repairs[0]


def test_seed_post_headimg_and_gallery_image_are_one_url() -> None:
    # The headimg (written correctly) is gallery image 1 (written "httpss://").
    assert normalize(f"https://{SEED}").url == normalize(f"httpss://{SEED}").url


@pytest.mark.parametrize(
    "raw",
    [
        "http/a.png",  # a relative directory that happens to be called "http"
        "https/a.png",
        "httpbin/a.png",
    ],
)
def test_http_lookalike_directories_stay_local(raw: str) -> None:
    assert normalize(raw) == Normalized("local", raw, ())


# --- canonical form of remote URLs -----------------------------------------

CANONICAL = [
    # (raw, expected url): none of these is a repair, so no notes.
    ("HTTP://EXAMPLE.COM/A.PNG", "http://example.com/A.PNG"),
    ("HttpS://Img.Example.COM/Photos/A.jpg", "https://img.example.com/Photos/A.jpg"),
    ("http://h.com:80/a.png", "http://h.com/a.png"),
    ("https://h.com:443/a.png", "https://h.com/a.png"),
    ("https://h.com:0443/a.png", "https://h.com/a.png"),
    ("https://h.com:80/a.png", "https://h.com:80/a.png"),
    ("http://h.com:443/a.png", "http://h.com:443/a.png"),
    ("http://h.com:8080/a.png", "http://h.com:8080/a.png"),
    ("https://h.com:/a.png", "https://h.com/a.png"),
    ("https://[2001:DB8::1]:443/a.png", "https://[2001:db8::1]/a.png"),
    ("https://[::1]:8443/a.png", "https://[::1]:8443/a.png"),
    ("https://h.com", "https://h.com/"),
    ("https://h.com?x=1", "https://h.com/?x=1"),
    ("https://user:pa55@h.com/a.png", "https://user:pa55@h.com/a.png"),
    ("https://h.com/a/../b/./c.png", "https://h.com/a/../b/./c.png"),
    ("https://h.com/a.png?", "https://h.com/a.png?"),
    # non-ASCII, spaces and unsafe characters: percent-encoded as UTF-8
    (f"https://h.com{PIC_RAW}", f"https://h.com{PIC_URL}"),
    ("https://h.com/a b.png", "https://h.com/a%20b.png"),
    ('https://h.com/a"<>^`{|}.png', "https://h.com/a%22%3C%3E%5E%60%7B%7C%7D.png"),
    ("https://h.com/a\\b\\c.png", "https://h.com/a%5Cb%5Cc.png"),
    ("https://h.com/a\x7f.png", "https://h.com/a%7F.png"),
    # existing escapes are kept, never double-encoded; a stray "%" is escaped
    ("https://h.com/a%20b.png", "https://h.com/a%20b.png"),
    ("https://h.com/100%.png", "https://h.com/100%25.png"),
    ("https://h.com/a%zzb.png", "https://h.com/a%25zzb.png"),
    ("https://h.com/a%2.png", "https://h.com/a%252.png"),
    ("https://h.com/a%2Fb.png", "https://h.com/a%2Fb.png"),
    ("https://h.com/a%2fb.png", "https://h.com/a%2Fb.png"),
    # characters that select a file and must survive as written
    (
        "https://cdn.jsdelivr.net/gh/u/r@master/a.png",
        "https://cdn.jsdelivr.net/gh/u/r@master/a.png",
    ),
    ("https://h.com/img/1(3).jpg", "https://h.com/img/1(3).jpg"),
    ("https://h.com/a.jpg!thumb", "https://h.com/a.jpg!thumb"),
    ("https://h.com/a.png@!web-article-pic.avif", "https://h.com/a.png@!web-article-pic.avif"),
    ("https://h.com/x.jpg.large_2x.jpg", "https://h.com/x.jpg.large_2x.jpg"),
    ("https://h.com/a;v=1/b~c,d+e$f'g*h=i&j.png", "https://h.com/a;v=1/b~c,d+e$f'g*h=i&j.png"),
]


@pytest.mark.parametrize(("raw", "url"), CANONICAL)
def test_canonical_remote_form(raw: str, url: str) -> None:
    assert normalize(raw) == Normalized("remote", url, ())


QUERIES = [
    "?x-oss-process=image/resize,w_800",
    "?x-oss-process=image/resize,m_lfit,w_800/quality,q_90/format,webp",
    "?wx_fmt=png&wxfrom=5&wx_lazy=1&wx_co=1",
    "?imageView2/2/w/480/format/webp",
    "?Expires=1700000000&Signature=a%2Bb%2Fc%3D&Key-Pair-Id=K2JCJMDEHXQW5F",
    "?X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab12",
    "?a=b@c!d/e,f;g:h'i(j)k*l+m$n?o",
    "?token=abc%2bdef%3d",  # lower-case escapes stay lower-case in a query
    "?list[]=1&list[]=2",
]


@pytest.mark.parametrize("query", QUERIES)
def test_query_string_is_kept_byte_for_byte(query: str) -> None:
    url = f"https://mmbiz.qpic.cn/sz_mmbiz_png/abc/640{query}"
    assert normalize(url) == Normalized("remote", url, ())


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("https://h.com/a.png?name=图", "https://h.com/a.png?name=%E5%9B%BE"),
        ("https://h.com/a.png?q=a b", "https://h.com/a.png?q=a%20b"),
        ("https://h.com/a.png?q=100%", "https://h.com/a.png?q=100%25"),
        ("https://h.com/a.png?q=\\", "https://h.com/a.png?q=%5C"),
        # httpx would send "|" as %7C anyway; the key should be what goes on the wire
        (
            "https://h.com/a.png?imageView2/2/w/480|imageslim",
            "https://h.com/a.png?imageView2/2/w/480%7Cimageslim",
        ),
    ],
)
def test_unsafe_query_characters_are_encoded(raw: str, url: str) -> None:
    assert normalize(raw) == Normalized("remote", url, ())


@pytest.mark.parametrize(
    "spelling",
    [
        f"https://h.com{PIC_RAW}",
        f"https://h.com{PIC_URL}",
        f"https://h.com{PIC_URL.lower()}",
        "https://h.com/%E5%9B%BE%E7%89%87/猫%201.png",  # half and half
        f"HTTPS://H.COM:443{PIC_RAW}#cat",
        f"httpss://h.com{PIC_RAW}",
        f"//h.com{PIC_URL}",
    ],
)
def test_spelling_variants_share_one_url(spelling: str) -> None:
    assert normalize(spelling).url == f"https://h.com{PIC_URL}"


@pytest.mark.parametrize(
    ("raw", "url", "fragment"),
    [
        ("https://h.com/a.png#top", "https://h.com/a.png", "#top"),
        ("https://h.com/a.png?x=1#y=2", "https://h.com/a.png?x=1", "#y=2"),
        ("https://h.com/a.png#", "https://h.com/a.png", "#"),
        ("https://h.com#a?b", "https://h.com/", "#a?b"),
    ],
)
def test_fragment_is_dropped_with_a_note(raw: str, url: str, fragment: str) -> None:
    assert normalize(raw) == Normalized("remote", url, (f"dropped fragment '{fragment}'",))


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("https://例え.jp/a.png", "https://xn--r8jz45g.jp/a.png"),
        ("https://Bücher.example/a.png", "https://xn--bcher-kva.example/a.png"),
        ("https://BÜCHER.example:443/a.png", "https://xn--bcher-kva.example/a.png"),
        ("https://中文。com/a.png", "https://xn--fiq228c.com/a.png"),
    ],
)
def test_non_ascii_host_is_idna_encoded(raw: str, url: str) -> None:
    assert normalize(raw) == Normalized("remote", url, ())


def test_host_that_is_not_valid_idna_does_not_raise() -> None:
    n = normalize("https://a..中.com/x.png")
    assert n.kind == "remote"
    assert n.url == "https://a..%E4%B8%AD.com/x.png"
    assert n.url.isascii()
    assert len(n.repairs) == 1


def test_tabs_and_line_breaks_inside_are_removed_like_a_browser_does() -> None:
    n = normalize("https://h.com/very/long\n/path\t.png")
    assert n == Normalized(
        "remote", "https://h.com/very/long/path.png", ("removed tabs/line breaks inside the URL",)
    )


# --- whitespace, entities and full-width forms -----------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "  https://h.com/a.png  ",
        "\thttps://h.com/a.png\n",
        "\r\nhttps://h.com/a.png\r\n",
        f"{FW_SPACE}https://h.com/a.png{FW_SPACE}",
        "\u00a0https://h.com/a.png\u200b",
        "\ufeffhttps://h.com/a.png",
    ],
)
def test_surrounding_spaces_are_stripped_with_a_note(raw: str) -> None:
    assert normalize(raw) == Normalized(
        "remote", "https://h.com/a.png", ("stripped surrounding spaces",)
    )


def test_no_notes_when_nothing_was_repaired() -> None:
    assert normalize("https://h.com/a.png") == Normalized("remote", "https://h.com/a.png", ())
    assert normalize("https://h.com/a.png", html=True).repairs == ()


@pytest.mark.parametrize(
    ("raw", "html", "url", "notes"),
    [
        ("https://h.com/a.png?a=1&amp;b=2", True, "https://h.com/a.png?a=1&b=2", True),
        ("https://h.com/a.png?a=1&amp;b=2", False, "https://h.com/a.png?a=1&amp;b=2", False),
        ("https://h.com/a&#32;b.png", True, "https://h.com/a%20b.png", True),
        ("https://h.com/a.png?a=1&b=2", True, "https://h.com/a.png?a=1&b=2", False),
        ("&#104;ttps://h.com/a.png", True, "https://h.com/a.png", True),
        # Legacy entity names without ";" stay as written (HTML5 attribute rule).
        ("https://h.com/a.png?a=1&copy=2&n=3", True, "https://h.com/a.png?a=1&copy=2&n=3", False),
    ],
)
def test_html_entities_are_decoded_only_in_html(
    raw: str, html: bool, url: str, notes: bool
) -> None:
    n = normalize(raw, html=html)
    assert n.kind == "remote"
    assert n.url == url
    assert n.repairs == (("decoded HTML entities",) if notes else ())


def test_entities_are_decoded_before_stripping() -> None:
    n = normalize("&#32;https://h.com/a.png", html=True)
    assert n == Normalized(
        "remote",
        "https://h.com/a.png",
        ("decoded HTML entities", "stripped surrounding spaces"),
    )


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        (fullwidth("https://") + f"h.com{PIC_RAW}", f"https://h.com{PIC_URL}"),
        (fullwidth("https://example.com/") + "a.png", "https://example.com/a.png"),
        ("https" + fullwidth(":") + "//h.com/a.png", "https://h.com/a.png"),
        ("https:" + fullwidth("//") + "h.com/a.png", "https://h.com/a.png"),
        ("https://" + fullwidth("ABC.com") + "/a.png", "https://abc.com/a.png"),
    ],
)
def test_full_width_scheme_and_host_are_folded(raw: str, url: str) -> None:
    n = normalize(raw)
    assert n.kind == "remote"
    assert n.url == url
    assert len(n.repairs) == 1
    assert "full-width" in n.repairs[0]


def test_full_width_path_is_not_folded() -> None:
    n = normalize("https://h.com/" + fullwidth("A") + ".png")
    assert n == Normalized("remote", "https://h.com/%EF%BC%A1.png", ())


def test_full_width_folding_then_scheme_repair_both_noted() -> None:
    n = normalize(f"{FW_SPACE}{fullwidth('httpss://')}h.com/a.png")
    assert n.url == "https://h.com/a.png"
    assert n.repairs[0] == "stripped surrounding spaces"
    assert "full-width" in n.repairs[1]
    assert n.repairs[2] == "scheme 'httpss://' -> 'https://'"


# --- ignored ---------------------------------------------------------------

IGNORED = [
    ("", "empty"),
    ("   ", "empty"),
    (FW_SPACE, "empty"),
    ("\n\t", "empty"),
    (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
        "data: URI",
    ),
    ("DATA:image/gif;base64,R0lGODlhAQABAAAAACw=", "data: URI"),
    ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E", "data: URI"),
    ("mailto:me@example.com", "mailto: link"),
    ("tel:+861234567", "tel: link"),
    ("javascript:void(0)", "javascript: link"),
    ("JavaScript:alert(1)", "javascript: link"),
    ("#top", "anchor"),
    ("#", "anchor"),
    ("https://h.com/{year}/{month}/a.png", "template placeholder"),
    ("/images/{year}/a.png", "template placeholder"),
    ("{{ site.url }}/img/a.png", "template placeholder"),
    ("{{ site.baseurl }}/{{ page.slug }}.png", "template placeholder"),
    ("{{ site.baseurlx }}/a.png", "template placeholder"),
    ("{{< param cover >}}", "template placeholder"),
    ("{% asset_path a.png %}", "template placeholder"),
    ("<%- url_for(post.cover) %>", "template placeholder"),
    ("<%= img %>", "template placeholder"),
    ("${src}", "template placeholder"),
    ("https://h.com/${name}.png", "template placeholder"),
    ("ftp://h.com/a.png", "unsupported scheme 'ftp'"),
    ("FTP://h.com/a.png", "unsupported scheme 'ftp'"),
    ("file:///C:/Users/me/a.png", "unsupported scheme 'file'"),
    ("about:blank", "unsupported scheme 'about'"),
    ("git+ssh://h.com/r", "unsupported scheme 'git+ssh'"),
    ("///h.com/a.png", "missing host"),
    ("https://", "missing host"),
    ("https:", "missing host"),
    ("//", "missing host"),
    ("https://:443/a.png", "missing host"),
    ("https://user@/a.png", "missing host"),
]


@pytest.mark.parametrize(("raw", "reason"), IGNORED)
def test_ignored(raw: str, reason: str) -> None:
    n = normalize(raw)
    assert n.kind == "ignored"
    assert n.reason == reason


def test_ignored_url_is_the_stripped_text() -> None:
    assert normalize("  mailto:a@b.c ") == Normalized(
        "ignored", "mailto:a@b.c", ("stripped surrounding spaces",), "mailto: link"
    )


def test_not_ignored_has_no_reason() -> None:
    assert normalize("https://h.com/a.png").reason == ""
    assert normalize("a.png").reason == ""


# --- local -----------------------------------------------------------------

LOCAL = [
    # (raw, expected url, expected notes)
    ("/images/a.png", "/images/a.png", ()),
    ("img/a.png", "img/a.png", ()),
    ("a.png", "a.png", ()),
    ("../x.png", "../x.png", ()),
    ("./index/images/1.jpg", "./index/images/1.jpg", ()),
    ("/img/a.png?v=2", "/img/a.png?v=2", ()),
    (PIC_RAW, PIC_RAW, ()),
    (PIC_URL, PIC_URL, ()),
    ("my photo 100%.png", "my photo 100%.png", ()),
    ("C:\\Users\\me\\a.png", "C:\\Users\\me\\a.png", ()),
    ("C:/Users/me/a.png", "C:/Users/me/a.png", ()),
    ("\\\\server\\share\\a.png", "\\\\server\\share\\a.png", ()),
    ("a.png#center", "a.png", ("dropped fragment '#center'",)),
    # Jekyll's base path, filled in by Liquid: a site path (issue 19)
    ("{{ site.baseurl }}/img/a.png", "{{ site.baseurl }}/img/a.png", ()),
    ("{{site.baseurl}}/img/a.png", "{{site.baseurl}}/img/a.png", ()),
    (" img/a.png ", "img/a.png", ("stripped surrounding spaces",)),
    (fullwidth("/a.png"), fullwidth("/a.png"), ()),
]


@pytest.mark.parametrize(("raw", "url", "notes"), LOCAL)
def test_local(raw: str, url: str, notes: tuple[str, ...]) -> None:
    assert normalize(raw) == Normalized("local", url, notes)


def test_local_is_entity_decoded_in_html() -> None:
    assert normalize("/img/a&amp;b.png", html=True) == Normalized(
        "local", "/img/a&b.png", ("decoded HTML entities",)
    )
    assert normalize("/img/a&amp;b.png") == Normalized("local", "/img/a&amp;b.png", ())


# --- host_of ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://imgcdn.yaerxing.com/a.jpg", "imgcdn.yaerxing.com"),
        ("https://IMG.Example.com:8443/a.jpg", "img.example.com"),
        ("https://user:pw@h.com/a.jpg", "h.com"),
        ("https://[2001:db8::1]:8443/a.jpg", "2001:db8::1"),
        ("https://h.com?x=1", "h.com"),
        ("https://h.com", "h.com"),
        ("//h.com/a.png", "h.com"),
        ("/images/a.png", ""),
        ("a.png", ""),
        ("", ""),
        ("mailto:a@b.c", ""),
        ("https://", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


# --- looks_like_image ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://{SEED}", True),
        ("/images/a.png", True),
        ("a.JPEG", True),
        ("https://h.com/A.PNG?x=1", True),
        ("https://h.com/a.webp#frag", True),
        ("https://h.com/a.jpg!thumb", True),
        ("https://h.com/a.png@!web-article-pic.avif", True),
        ("https://h.com/a.jpg@!web", True),
        ("https://h.com/x.jpg.large_2x.jpg", True),
        ("https://h.com/a.png?x-oss-process=image/resize,w_800", True),
        ("https://h.com/pic.tiff", True),
        ("https://h.com/photo.HEIC", True),
        ("https://mmbiz.qpic.cn/abc/640?wx_fmt=png", False),
        ("https://h.com/a.png/", False),
        ("https://h.com/a.png.bak", False),
        ("https://h.com/jpg", False),
        ("https://h.com/post.html", False),
        ("https://a.png", False),  # a host, not a file
        ("https://a.png/?f=b.jpg", False),
        ("", False),
    ],
)
def test_looks_like_image(url: str, expected: bool) -> None:
    assert looks_like_image(url) is expected


# --- properties ------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=()))
URLISH = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(
        [
            "",
            "https://",
            "http://",
            "httpss://",
            "http:/",
            "//",
            "HTTPS://h.com",
            "https://h.com/",
            "https://u@[::1]:",
            fullwidth("https://"),
            FW_SPACE + "https://",
        ]
    ),
    st.text(
        st.one_of(
            st.sampled_from(list("%/?#@:[]\\&;.-_!() \t\n\u3000")),
            st.sampled_from(list("0123456789abcdefABCDEF")),
            st.characters(exclude_categories=()),
        )
    ),
)


def check_properties(n: Normalized, raw: str) -> None:
    assert n.kind in ("remote", "local", "ignored")
    assert (n.kind == "ignored") == (n.reason != "")
    if n.kind != "remote":
        return
    assert n.url.startswith(("http://", "https://"))
    assert n.url.isascii()
    assert not any(c.isspace() for c in n.url)
    assert "#" not in n.url
    again = normalize(n.url)
    assert again.kind == "remote", raw
    assert again.url == n.url, raw
    assert again.repairs == (), raw
    host_of(n.url)


@settings(max_examples=1000)
@given(raw=ANY_TEXT, html=st.booleans())
@example(raw="https://::/", html=False)
@example(raw="https://a:b:0080/", html=False)
@example(raw="https://\ud800.com/\udfff", html=False)
@example(raw="https://" + "a" * 100 + ".中/", html=False)
@example(raw="https://h.com:" + "9" * 5000 + "/", html=False)
@example(raw="&#99999999999;&#xD800;", html=True)
def test_normalize_never_raises_on_any_text(raw: str, html: bool) -> None:
    check_properties(normalize(raw, html=html), raw)
    looks_like_image(raw)
    host_of(raw)


@settings(max_examples=2000)
@given(raw=URLISH, html=st.booleans())
def test_remote_results_are_canonical(raw: str, html: bool) -> None:
    check_properties(normalize(raw, html=html), raw)
