"""Property tests of ``scan_post`` over generated posts that mix every syntax of SYNTAX.md.

A post is assembled from *parts*: literal text, and URL parts whose exact
text is known and that are marked either as a reference of a given kind or as
lying inside a code region (then they must not be reported). The assembly
tracks the byte offset of every URL part, so the expected references are
known exactly: span, raw text and kind.

Two families of posts:

* well-formed posts: the filler between pieces comes from an alphabet that
  cannot open a code region, a comment, a tag or an image (no backticks,
  ``<``, ``{``, ``~``, ``[``, ``!``, ``(``, ``\\``, ``-``, ``:``), and no
  filler line starts with whitespace, so the scanner must report exactly the
  known references;
* hostile posts: the same pieces with filler full of stray syntax; there only
  the invariants that hold for any input are checked (never raises, spans,
  line and column).

The tests at the end pin the bugs these properties found, one input each.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from mirror.config import DEFAULT_FRONT_MATTER_KEYS
from mirror.models import ImageRef, PostScan
from mirror.scanner.post import scan_post

T = TypeVar("T")

KEYS = frozenset(k.lower() for k in DEFAULT_FRONT_MATTER_KEYS)
BOM = b"\xef\xbb\xbf"
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BOOL = st.booleans()


@functools.cache
def _sampler(options: tuple[object, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


def pick(draw: st.DrawFn, options: Iterable[T]) -> T:
    """``draw(st.sampled_from(options))``, without building a new strategy per draw."""
    return draw(_sampler(tuple(options)))  # type: ignore[no-any-return]


@functools.cache
def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def cached(factory: Callable[..., st.SearchStrategy[T]]) -> Callable[..., st.SearchStrategy[T]]:
    """One strategy object per set of arguments: hypothesis validates each new one, slowly."""
    return functools.cache(factory)


# --- parts and their assembly ------------------------------------------------------------


@dataclass(frozen=True)
class U:
    """A URL part: ``kind`` is the expected kind, None when it stands inside code."""

    text: str
    kind: str | None


class _Mark:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CODE_OPEN, CODE_CLOSE = _Mark("CODE_OPEN"), _Mark("CODE_CLOSE")


Part = str | U | _Mark


@dataclass(frozen=True)
class Piece:
    parts: tuple[Part, ...]
    block: bool = False  # must stand on lines of its own
    blank_before: bool = False  # must follow a blank line (reference definitions, indented code)


def in_code(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """The same parts, every URL now inside code, the whole marked as a code region."""
    inner = tuple(U(p.text, None) if isinstance(p, U) else p for p in parts)
    return (CODE_OPEN, *inner, CODE_CLOSE)


@dataclass
class Built:
    data: bytes
    expected: set[tuple[int, int, str, str]] = field(default_factory=set)
    hidden: list[tuple[int, int, str]] = field(default_factory=list)
    code: list[tuple[int, int]] = field(default_factory=list)


def assemble(parts: list[Part], *, nl: str = "\n", bom: bool = False) -> Built:
    out = bytearray(BOM if bom else b"")
    expected: set[tuple[int, int, str, str]] = set()
    hidden: list[tuple[int, int, str]] = []
    code: list[tuple[int, int]] = []
    opened: list[int] = []
    for part in parts:
        if part is CODE_OPEN:
            opened.append(len(out))
        elif part is CODE_CLOSE:
            code.append((opened.pop(), len(out)))
        elif isinstance(part, U):
            start = len(out)
            out += part.text.encode("utf-8")
            if part.kind is None:
                hidden.append((start, len(out), part.text))
            else:
                expected.add((start, len(out), part.text, part.kind))
        else:
            assert isinstance(part, str)
            text = part.replace("\n", nl)
            out += text.encode("utf-8")
    assert not opened
    return Built(bytes(out), expected, hidden, code)


# --- URLs ---------------------------------------------------------------------------------

HOSTS = (
    "img.example.com",
    "imgcdn.yaerxing.com",
    "cdn.jsdelivr.net",
    "wx1.sinaimg.cn",
    "bkt.oss-cn-hangzhou.aliyuncs.com",
    "例子.测试",
)
# "https://" as a CJK input method types it.
FULLWIDTH_SCHEME = "https://".translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
SCHEMES = ("https://", "http://", "httpss://", "htps://", "//", "https//", "http:/")
WORD = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
SEGMENT = st.one_of(
    WORD,
    st.sampled_from(["upimage", "2025", "图片", "%E5%9B%BE", "gh/user/repo@1.0", "a-b", "IMG"]),
)
SEGMENTS = st.lists(SEGMENT, max_size=3)
STEM = st.one_of(WORD, st.sampled_from(["1738462164_12009103_8994", "猫", "😀pic"]))
EXTENSIONS = (".jpg", ".jpeg", ".PNG", ".webp", ".gif", ".avif")
SUFFIXES = ("", "", "", "!thumb", "@!web-article-pic.avif")


@cached
@st.composite
def urls(
    draw: st.DrawFn,
    *,
    spaces: bool = False,
    parens: bool = False,
    commas: bool = True,
    equals: bool = True,
    amp: bool = False,
    image: bool = False,
    relative: bool = True,
    fragment: bool = True,
    fullwidth: bool = True,
) -> str:
    """One URL as people write them, restricted to what the context allows."""
    stem = draw(STEM)
    if parens and draw(BOOL):
        stem += "(" + draw(WORD) + ")"
    if spaces and draw(BOOL):
        stem += " " + draw(WORD)
    ext = pick(draw, EXTENSIONS) if image else pick(draw, (*EXTENSIONS, ""))
    name = stem + ext + (pick(draw, SUFFIXES) if ext else "")
    path = "/".join([*draw(SEGMENTS), name])
    queries = [""]
    if equals:
        queries += ["?wx_fmt=png", "?v=3", "?a=1&b=2"]
        if amp:  # HTML: the entity, or a raw "&" as people also write
            queries.append("?a=1&amp;b=2")
        if commas:
            queries.append("?x-oss-process=image/resize,w_800")
    query = pick(draw, queries)
    frag = pick(draw, ["", "", "#f"]) if fragment else ""
    forms = ["remote", "remote", "remote", "root"] + (["relative"] if relative else [])
    form = pick(draw, forms)
    if form == "root":
        return "/images/" + path + query + frag
    if form == "relative":
        return "img/" + path + query + frag
    scheme = pick(draw, (*SCHEMES, *([FULLWIDTH_SCHEME] if fullwidth else [])))
    return scheme + pick(draw, HOSTS) + "/" + path + query + frag


# --- text ---------------------------------------------------------------------------------

# Cannot open code, a comment, a tag, an image, a link, a list item or front matter.
SAFE = string.ascii_letters + string.digits + " \t.,?'\"=/%@$^#中文字段落、。😀🎉é"
FILLER = st.text(SAFE, max_size=12)
LEAD = st.sampled_from(["Text", "段落", "Hello", "x", "😀ok"])  # a line's first word
ALT = st.text(string.ascii_letters + " 图片😀", max_size=8)
TITLE = st.text(string.ascii_letters + " 标题", min_size=1, max_size=10)
HOSTILE_CHARS = SAFE + "`~<>{}[]!%*_-#\\:;()|+\r\n\t\ufeff"
HOSTILE_BITS = st.sampled_from(
    [
        "```",
        "~~~",
        "``",
        "{% raw %}",
        "{% endraw %}",
        "{% codeblock %}",
        "<!--",
        "-->",
        "{{</*",
        "*/>}}",
        "{% gallery %}",
        "{% endgallery %}",
        "---\n",
        "+++\n",
        "\n    ",
        "\n\t",
        "[x]: ",
        "![",
        "](",
        "{% img ",
        "{% image ",
        "%}",
        "{{< figure src=",
        ">}}",
        "<img src=",
        'srcset="',
        "url(",
        "\r\n",
        "\r",
        "\n\n",
        "&amp;",
    ]
)
HOSTILE_FILLER = st.lists(
    st.one_of(st.text(HOSTILE_CHARS, max_size=6), HOSTILE_BITS), max_size=5
).map("".join)


# --- inline pieces (may share a line) --------------------------------------------------------


@cached
@st.composite
def md_image(draw: st.DrawFn, kind: str = "markdown") -> Piece:
    alt = draw(ALT)
    form = pick(draw, ["plain", "title2", "title1", "titlep", "angle", "angle_title", "multiline"])
    if form == "multiline":  # a formatter wrapped it
        url = U(draw(urls(parens=True)), kind)
        return Piece((f"![{alt}](\n  ", url, f'\n  "{draw(TITLE)}")'))
    if form.startswith("angle"):
        url = U(draw(urls(spaces=True, parens=True)), kind)
        title = f' "{draw(TITLE)}"' if form == "angle_title" else ""
        return Piece((f"![{alt}](<", url, f">{title})"))
    url = U(draw(urls(parens=True)), kind)
    title = {
        "plain": "",
        "title2": f' "{draw(TITLE)}"',
        "title1": f" '{draw(TITLE)}'",
        "titlep": f" ({draw(TITLE)})",
    }[form]
    attrs = pick(draw, ["", "", "{: .align-center}", '{: width="50%"}'])  # kramdown
    return Piece((f"![{alt}](", url, f"{title}){attrs}"))


@st.composite
def linked_image(draw: st.DrawFn) -> Piece:
    thumb = U(draw(urls(parens=True)), "markdown")
    if draw(BOOL):
        full: Part = U(draw(urls(image=True)), "markdown")
    else:
        full = "https://example.com/post/page.html"  # a link to a page: not an image
    return Piece((f"[![{draw(ALT)}](", thumb, ")](", full, ")"))


def quoted(
    draw: st.DrawFn, make: st.SearchStrategy[str], kind: str, *, unquoted: bool = True
) -> tuple[Part, ...]:
    """``"url"``, ``'url'`` or an unquoted value (no "=", so no query), as parts."""
    quote = pick(draw, ['"', "'", ""] if unquoted else ['"', "'"])
    if quote:
        return (quote, U(draw(make), kind), quote)
    return (U(draw(urls(equals=False, amp=False)), kind),)


HTML_URLS = urls(amp=True, relative=True)


IMG_ATTRS = st.lists(
    st.sampled_from(["src", "data-src", "data-original", "srcset", "alt", "width"]),
    min_size=1,
    max_size=4,
    unique=True,
)
SRCSET_URLS = st.lists(urls(amp=True), min_size=1, max_size=3)


@cached
@st.composite
def html_img(draw: st.DrawFn, kind: str = "html") -> Piece:
    parts: list[Part] = ["<img "]
    for name in draw(IMG_ATTRS):
        if name in ("src", "data-src", "data-original"):
            parts += [f"{name}=", *quoted(draw, HTML_URLS, kind), " "]
        elif name == "srcset":
            quote = pick(draw, ['"', "'"])
            parts += ["srcset=", quote]
            for i, url in enumerate(draw(SRCSET_URLS)):
                sep = pick(draw, [", ", ",\n  ", " ,"]) if i else ""
                parts += [sep, U(url, kind), f" {i + 1}x"]
            parts += [quote, " "]
        elif name == "alt":
            parts.append(f'alt="{draw(ALT)}" ')
        else:
            parts.append("width=300 ")
    parts.append(pick(draw, [">", "/>"]))
    return Piece(tuple(parts))


@st.composite
def html_link(draw: st.DrawFn) -> Piece:
    full = quoted(draw, urls(amp=True, image=True), "html", unquoted=False)
    img = draw(html_img())
    return Piece(("<a href=", *full, ">", *img.parts, "</a>"))


@st.composite
def html_picture(draw: st.DrawFn) -> Piece:
    url = U(draw(urls(amp=True)), "html")
    img = draw(html_img())
    return Piece(('<picture><source srcset="', url, ' 2x" type="image/webp">', *img.parts))


@st.composite
def html_background(draw: st.DrawFn) -> Piece:
    form = pick(draw, ["dq-sq", "dq-bare", "sq-dq"])
    tag = pick(draw, ["div", "span", "section"])
    prop = pick(draw, ["background-image: url(", "background:url(", "background: #fff url("])
    if form == "dq-sq":
        url = U(draw(urls(amp=True)), "html")
        return Piece((f"<{tag} style=\"{prop}'", url, f"')\">x</{tag}>"))
    if form == "dq-bare":
        url = U(draw(urls(amp=True)), "html")
        return Piece((f'<{tag} style="{prop}', url, f')">x</{tag}>'))
    url = U(draw(urls(amp=True)), "html")
    return Piece((f"<{tag} style='{prop}\"", url, f"\")'>x</{tag}>"))


TAG_URLS = urls(relative=False, fullwidth=False)  # Hexo reads neither as a source


@st.composite
def hexo_img(draw: st.DrawFn) -> Piece:
    url = draw(TAG_URLS)
    cls = pick(draw, ["", "left ", "full-image "])
    size = pick(draw, ["", " 300", " 300 200"])
    title = pick(draw, ["", ' "a title" "alt text"', " 'title'"])
    tag = pick(draw, ["img", "image"]) if not cls else "img"
    if not size and not title and not url.endswith("-") and draw(BOOL):
        return Piece((f"{{% {tag} {cls}", U(url, "tag"), "%}"))  # no space before the close
    if draw(BOOL):  # wrapped across lines by a formatter
        return Piece((f"{{%\n {tag} {cls}\n   ", U(url, "tag"), f"{size}{title}\n   %}}"))
    return Piece((f"{{% {tag} {cls}", U(url, "tag"), f"{size}{title} %}}"))


@st.composite
def volantis_image(draw: st.DrawFn) -> Piece:
    tag = pick(draw, ["image", "inlineimage", "inlineImg"])
    url = U(draw(TAG_URLS), "tag")
    tail = {
        "image": pick(draw, [", alt=图片, width=400px", "", " fancybox:true"]),
        "inlineimage": ", height=22px",
        "inlineImg": " 150px",
    }[tag]
    if tag == "image" and draw(BOOL):
        return Piece(("{% image fancybox:true ", url, " %}"))  # a key before the URL
    return Piece((f"{{% {tag} ", url, f"{tail} %}}"))


@st.composite
def theme_tag(draw: st.DrawFn) -> Piece:
    """Butterfly galleryGroup, Stellar frame, asset_img: the image is not the first argument."""
    form = pick(draw, ["galleryGroup", "frame", "frame_bar", "asset_img"])
    url = U(draw(TAG_URLS), "tag")
    if form == "galleryGroup":
        return Piece(('{% galleryGroup 壁纸 "收藏的图片" /gallery/wallpaper ', url, " %}"))
    if form == "frame":
        return Piece(("{% frame iphone11 img:", url, " %}"))
    if form == "frame_bar":
        return Piece(("{% frame iphone8 | img=", url, " %}"))
    name = U(draw(STEM) + pick(draw, EXTENSIONS), "tag")
    return Piece(("{% asset_img ", name, pick(draw, ["", ' "a title"', " 标题"]), " %}"))


@st.composite
def hugo_figure(draw: st.DrawFn) -> Piece:
    delim = pick(draw, [("{{<", ">}}"), ("{{%", "%}}")])
    name = pick(draw, ["figure", "img"])
    if draw(BOOL):
        src: tuple[Part, ...] = ('src="', U(draw(urls()), "shortcode"), '"')
    else:
        src = ("src=", U(draw(urls(equals=False)), "shortcode"))
    link: tuple[Part, ...] = ()
    if draw(BOOL):
        if draw(BOOL):
            link = (' link="', U(draw(urls(image=True)), "shortcode"), '"')
        else:
            link = (' link="https://example.com/about/"',)
    title = pick(draw, ["", ' title="A caption"', ' alt="图"'])
    return Piece((f"{delim[0]} {name} ", *src, *link, f"{title} {delim[1]}"))


@st.composite
def not_a_reference(draw: st.DrawFn) -> Piece:
    """Looks like an image or a link, but there is nothing to fetch."""
    text = draw(
        st.sampled_from(
            [
                "![inline](data:image/png;base64,iVBORw0KGgo=)",
                '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">',
                '<a href="mailto:me@example.com">mail</a>',
                "[see below](#section-2)",
                '<img src="#top">',
                "[a page](https://example.com/post/page.html)",
                '<a href="https://example.com/post/">post</a>',
                "{% post_link hello-world %}",
                '{{< ref "other.md" >}}',
                "[^1]",
                '<img src=" ">',
                '<img src="<%- url_for(page.cover) %>">',
                '<img src="${cover}">',
                "![](/images/{year}/{month}/x.png)",
                "{% gallery url,https://example.com/images.json %}{% endgallery %}",
            ]
        )
    )
    return Piece((text,))


INLINE_REFS = st.one_of(
    md_image(),
    linked_image(),
    html_img(),
    html_link(),
    html_picture(),
    html_background(),
    hexo_img(),
    volantis_image(),
    hugo_figure(),
    theme_tag(),
    not_a_reference(),
)


@st.composite
def inline_code(draw: st.DrawFn) -> Piece:
    """A reference piece wrapped in inline code, an inline comment or an inline raw tag."""
    inner = draw(INLINE_REFS).parts
    # Spaces outside the region: two spans side by side would merge their backticks.
    return Piece((" ", *_wrap_in_code(draw, inner).parts, " "))


def _wrap_in_code(draw: st.DrawFn, inner: tuple[Part, ...]) -> Piece:
    form = pick(draw, ["tick1", "tick2", "tick3", "comment", "raw", "codeblock", "hugo_comment"])
    if form == "tick1":
        return Piece(in_code(("`", *inner, "`")))
    if form == "tick2":
        return Piece(in_code(("`` a ` b ", *inner, " ``")))
    if form == "tick3":
        return Piece(in_code(("```", *inner, "```")))
    if form == "comment":
        return Piece(in_code(("<!-- ", *inner, " -->")))
    if form == "raw":
        return Piece(in_code(("{% raw %}", *inner, "{% endraw %}")))
    if form == "codeblock":
        return Piece(in_code(("{% codeblock %}", *inner, "{% endcodeblock %}")))
    src = U(draw(urls()), None)
    return Piece((CODE_OPEN, '{{</* figure src="', src, '" */>}}', CODE_CLOSE))


@st.composite
def inline_line(draw: st.DrawFn, pieces: st.SearchStrategy[Piece]) -> tuple[Part, ...]:
    """One line: filler, then pieces separated by filler. Starts with a word."""
    parts: list[Part] = [draw(LEAD) + draw(FILLER).lstrip(" \t")]
    for piece in draw(st.lists(pieces, min_size=1, max_size=4)):  # built once per strategy
        parts.append(pick(draw, ["", " ", "\t", "\uff0c"]))
        parts.extend(piece.parts)
        parts.append(draw(FILLER))
    return tuple(parts)


INLINE_LINE = inline_line(st.one_of(INLINE_REFS, inline_code()))
REFS_LINE = inline_line(INLINE_REFS)  # no inline code: it could close an enclosing region


# --- block pieces ---------------------------------------------------------------------------


@st.composite
def gallery(draw: st.DrawFn) -> Piece:
    name, args = pick(
        draw,
        [
            ("gallery", " stretch::6::two"),
            ("gallery", " stretch, 4"),
            ("gallery", ""),
            ("gallery", " true,,10"),
            ("gallery", " stretch::::diagram"),
            ("grouppicture", " 3-1"),
            ("gp", " 2-2"),
            ("gi", " 5 3-2"),
            ("swiper", ""),
        ],
    )
    opening = pick(draw, ["{{% {0}{1} %}}\n", "{{%\n {0}{1} %}}\n", "{{%- {0}{1} -%}}\n"])
    parts: list[Part] = [opening.format(name, args)]
    for _ in range(draw(ints(1, 4))):
        line = pick(draw, ["md", "md", "html", "image_tag", "blank"])
        if line == "md":
            parts += ["![", draw(ALT), "](", U(draw(urls()), "gallery"), ")\n"]
        elif line == "html":
            parts += [*draw(html_img(kind="gallery")).parts, "\n"]
        elif line == "image_tag":
            parts += [
                "{% image ",
                U(draw(TAG_URLS), "gallery"),
                ", alt=x %}\n",
            ]  # kind of its gallery
        else:
            parts.append("\n")
    parts.append(f"{{% end{name} %}}")
    return Piece(tuple(parts), block=True)


GALLERY = gallery()
LINES_IN_FENCE = st.one_of(INLINE_LINE, GALLERY.map(lambda p: p.parts))
LINES_IN_REGION = st.one_of(REFS_LINE, GALLERY.map(lambda p: p.parts))
_REF_IDS = st.integers(0, 10**6).map(lambda n: f"ref{n}")


@st.composite
def reference(draw: st.DrawFn) -> Piece:
    """``![alt][id]`` used in a paragraph, then ``[id]: url`` after a blank line."""
    ident = draw(_REF_IDS)
    use = pick(draw, ["full", "collapsed", "shortcut"])
    label = pick(draw, [str.lower, str.upper, str.capitalize])(ident)
    usage = {
        "full": f"![{draw(ALT)}][{label}]",
        "collapsed": f"![{label}][]",
        "shortcut": f"![{label}]",
    }[use]
    form = pick(draw, ["plain", "angle", "title2", "title1", "titlep"])
    if form == "angle":
        url: tuple[Part, ...] = ("<", U(draw(urls(spaces=True, parens=True)), "reference"), ">")
    else:
        url = (U(draw(urls(parens=True)), "reference"),)
    title = {
        "plain": "",
        "angle": f' "{draw(TITLE)}"',
        "title2": f' "{draw(TITLE)}"',
        "title1": f" '{draw(TITLE)}'",
        "titlep": f" ({draw(TITLE)})",
    }[form]
    indent = pick(draw, ["", " ", "   "])
    return Piece((f"Text {usage} more\n\n{indent}[{ident}]: ", *url, title), True, True)


@st.composite
def fenced_code(draw: st.DrawFn) -> Piece:
    char = pick(draw, "`~")
    fence = char * draw(ints(3, 5))
    info = pick(draw, ["", "md", " markdown", "html"])
    quote = pick(draw, ["", "> "])
    inner: list[Part] = []
    for _ in range(draw(ints(1, 3))):
        block = draw(LINES_IN_FENCE)
        if quote:  # every line of a fence in a blockquote carries the "> "
            block = tuple(p.replace("\n", "\n> ") if isinstance(p, str) else p for p in block)
        inner += [quote, *block, "\n"]
        if draw(BOOL):
            inner += [quote.rstrip(), "\n"]  # a blank line inside the fence
    closing = fence + pick(draw, ["", char])  # a longer fence closes too
    return Piece(in_code((f"{quote}{fence}{info}\n", *inner, f"{quote}{closing}")), block=True)


@st.composite
def indented_code(draw: st.DrawFn) -> Piece:
    indent = pick(draw, ["    ", "\t", "      "])
    inner: list[Part] = []
    for i in range(draw(ints(1, 3))):
        if i:
            inner.append("\n")
        line = draw(INLINE_LINE)  # a srcset may wrap: its next lines are indented too
        inner += [
            indent,
            *(p.replace("\n", "\n" + indent) if isinstance(p, str) else p for p in line),
        ]
    return Piece(in_code(tuple(inner)), block=True, blank_before=True)


@st.composite
def block_code(draw: st.DrawFn) -> Piece:
    """Code set aside by a tag, a shortcode or a comment, spanning lines."""
    opener, closer = pick(
        draw,
        [
            ("{% raw %}", "{% endraw %}"),
            ("{% codeblock lang:md %}", "{% endcodeblock %}"),
            ("{% codeblock %}", "{% endcodeblock %}"),
            ("{%- raw -%}", "{%- endraw -%}"),
            ("<!--", "-->"),
            ("{{< highlight html >}}", "{{< /highlight >}}"),
        ],
    )
    inner: list[Part] = [opener, "\n"]
    for _ in range(draw(ints(1, 3))):
        inner += [*draw(LINES_IN_REGION), "\n"]
    inner.append(closer)
    return Piece(in_code(tuple(inner)), block=True)


# --- front matter ---------------------------------------------------------------------------


@cached
@st.composite
def yaml_value(draw: st.DrawFn, *, flow: bool = False) -> tuple[Part, ...]:
    style = pick(draw, ['"', "'", ""])
    url = U(draw(urls(commas=not flow, relative=False)), "front_matter")
    return (style, url, style)


FRONT_KEYS = st.lists(
    st.sampled_from(
        [
            "headimg",
            "Thumbnail",
            "cover",
            "cover.image",
            "photos",
            "photos_flow",
            "image.path",
            "header",
            "gallery",
        ]
    ),
    unique_by=lambda k: k.split(".")[0].split("_")[0],
    max_size=4,
)
YAML_LIST = st.lists(yaml_value(), min_size=1, max_size=3)
YAML_FLOW_LIST = st.lists(yaml_value(flow=True), min_size=1, max_size=3)
FM_URL = urls(relative=False)
FM_URLS = st.lists(FM_URL, min_size=1, max_size=3)


def fm(url: str) -> U:
    return U(url, "front_matter")


@st.composite
def yaml_front_matter(draw: st.DrawFn) -> tuple[Part, ...]:
    """YAML between ``---`` lines (Hexo, Hugo, Jekyll), or Hexo's form without the opening."""
    lines: list[tuple[Part, ...]] = [(f"title: {pick(draw, ['你好 world', 'A post', '😀 ok'])}\n",)]
    for key in draw(FRONT_KEYS):
        if key == "cover.image":  # PaperMod
            value = draw(yaml_value())
            lines.append(("cover:\n  image: ", *value, "\n  relative: false\n"))
        elif key == "image.path":  # Jekyll
            lines.append(("image:\n  path: ", *draw(yaml_value()), "\n  alt: 图\n"))
        elif key == "header":  # Minimal Mistakes
            items: list[Part] = ["header:\n"]
            for sub in draw(st.lists(st.sampled_from(HEADER_KEYS), min_size=1, unique=True)):
                items += [f"  {sub}: ", *draw(yaml_value()), "\n"]
            lines.append((*items, "  caption: a caption\n"))
        elif key == "gallery":  # Minimal Mistakes: a list of maps
            items = ["gallery:\n"]
            for value in draw(YAML_LIST):
                items += ["  - url: ", *value, "\n    image_path: ", *draw(yaml_value()), "\n"]
                items.append("    alt: placeholder\n")
            lines.append(tuple(items))
        elif key == "photos":
            items = ["photos:\n"]
            for value in draw(YAML_LIST):
                items += ["  - ", *value, "\n"]
            lines.append(tuple(items))
        elif key == "photos_flow":
            values = draw(YAML_FLOW_LIST)
            items = ["photos: ["]
            for i, value in enumerate(values):
                items += [", " if i else "", *value]
            lines.append((*items, "]\n"))
        else:
            value = draw(yaml_value())
            comment = pick(draw, ["", "  # the banner"])
            lines.append((f"{key}: ", *value, f"{comment}\n"))
    lines.insert(
        draw(ints(1, len(lines))),
        ("tags: [a, 图]\ndate: 2025-03-23\ncover_false: false\n",),
    )
    parts: list[Part] = [] if draw(BOOL) else ["---\n"]  # Hexo reads both
    for line in lines:
        parts.extend(line)
    parts.append("---\n")
    return tuple(parts)


HEADER_KEYS = ["image", "overlay_image", "teaser", "og_image"]


@st.composite
def toml_front_matter(draw: st.DrawFn) -> tuple[Part, ...]:
    """Hugo's TOML between ``+++`` lines; basic and literal strings, a table, a list."""

    def string(url: str) -> tuple[Part, ...]:
        quote = pick(draw, ['"', "'"])
        return (quote, fm(url), quote)

    parts: list[Part] = ["+++\n", 'title = "你好"\n', "date = 2025-03-23\n"]
    if draw(BOOL):
        parts += ["featured_image = ", *string(draw(FM_URL)), "\n"]
    if draw(BOOL):
        parts.append("images = [")
        for i, url in enumerate(draw(FM_URLS)):
            parts += [", " if i else "", *string(url)]
        parts.append("]\n")
    form = pick(draw, ["", "table", "inline"])
    if form == "table":
        parts += ["[cover]\n", "image = ", *string(draw(FM_URL)), "\n", "relative = false\n"]
    elif form == "inline":
        parts += ["cover = { image = ", *string(draw(FM_URL)), ", relative = true }\n"]
    return (*parts, "+++\n")


@st.composite
def json_front_matter(draw: st.DrawFn) -> tuple[Part, ...]:
    """Hugo's bare JSON object, or Hexo's JSON between ``;;;`` lines without its braces."""
    members: list[tuple[Part, ...]] = [('"title": "你好"',)]
    if draw(BOOL):
        members.append(('"headimg": "', fm(draw(FM_URL)), '"'))
    if draw(BOOL):
        items: list[Part] = ['"photos": [']
        for i, url in enumerate(draw(FM_URLS)):
            items += [", " if i else "", '"', fm(url), '"']
        members.append((*items, "]"))
    if draw(BOOL):
        members.append(('"cover": {"image": "', fm(draw(FM_URL)), '", "hidden": false}'))
    form = pick(draw, ["hexo", "hexo-openless", "hugo"])
    parts: list[Part] = [{"hexo": ";;;\n", "hexo-openless": "", "hugo": "{\n"}[form]]
    for i, member in enumerate(members):
        parts += [",\n" if i else "", "" if form == "hexo-openless" else "  ", *member]
    return (*parts, "\n}\n" if form == "hugo" else "\n;;;\n")


FRONT_MATTER = st.one_of(yaml_front_matter(), toml_front_matter(), json_front_matter())


# --- posts ----------------------------------------------------------------------------------


@st.composite
def noise_block(draw: st.DrawFn) -> Piece:
    """Blocks that look like they hold images, but hold nothing to report."""
    url = draw(urls())
    text = pick(
        draw,
        [
            f"---\nheadimg: {url}\n---",  # a second front-matter block is body text
            f"Text[^note] more\n\n[^note]: {url}",  # a footnote, not a reference
            f"[unused]: {url}",  # a definition nobody uses as an image
            f"Text [a link][page] more\n\n[page]: {url}",  # used by a link, not an image
        ],
    )
    return Piece((text,), block=True, blank_before=True)


# Text lines (where most kinds of reference stand) three times as often as each kind
# of block; the code blocks share one slot. Chosen by name: one_of's own choice of
# branch leans hard towards some branches.
ITEM_KINDS = {
    "text": INLINE_LINE.map(Piece),
    "gallery": GALLERY,
    "reference": reference(),
    "code": st.one_of(fenced_code(), indented_code(), block_code()),
    "noise": noise_block(),
}
ITEM_NAMES = st.sampled_from(["text", "text", "text", "gallery", "reference", "code", "noise"])


@st.composite
def item(draw: st.DrawFn) -> Piece:
    return draw(ITEM_KINDS[draw(ITEM_NAMES)])


ITEMS = st.lists(item(), min_size=1, max_size=7)


@st.composite
def posts(draw: st.DrawFn, *, hostile: bool = False) -> Built:
    parts: list[Part] = []
    has_front = draw(BOOL)
    if has_front:
        parts.extend(draw(FRONT_MATTER))
    items = draw(ITEMS)
    if not has_front and items and str(items[0].parts[0]).startswith("---"):
        items.insert(0, Piece(("First line.",)))  # first in the file, it is front matter
    for i, item in enumerate(items):
        if hostile:
            parts.append(draw(HOSTILE_FILLER))
        elif i or has_front:
            blank = item.blank_before or draw(BOOL)
            parts.append(pick(draw, ["\n\n", "\n \n"]) if blank else "\n")
        parts.extend(item.parts)
    if hostile:
        parts.append(draw(HOSTILE_FILLER))
    parts.append(pick(draw, ["", "\n"]))
    nl = pick(draw, ["\n", "\r\n"])
    return assemble(parts, nl=nl, bom=draw(BOOL))


# --- checks ---------------------------------------------------------------------------------


def position(data: bytes, start: int) -> tuple[int, int]:
    """1-based line and character column of byte ``start``; a leading BOM is not a character."""
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    if line_start == 0 and data.startswith(BOM):
        line_start = len(BOM)
    return line, len(data[line_start:start].decode("utf-8")) + 1


def check_spans(data: bytes, scan: PostScan) -> None:
    """The invariants every reference must keep, whatever the input."""
    seen: set[tuple[int, int]] = set()
    for ref in scan.refs:
        assert isinstance(ref, ImageRef)
        assert ref.post == "p.md"
        assert 0 <= ref.start < ref.end <= len(data), ref
        assert data[ref.start : ref.end].decode("utf-8") == ref.raw, ref
        assert (ref.line, ref.column) == position(data, ref.start), ref
        assert (ref.start, ref.end) not in seen, f"reported twice: {ref}"
        seen.add((ref.start, ref.end))
        assert ref.raw.strip(), ref  # an empty or blank value is nothing to fetch


def scan(data: bytes) -> PostScan:
    note(f"data = {data!r}")
    return scan_post(data, "p.md", KEYS)


@SETTINGS
@given(posts())
def test_well_formed_posts_report_exactly_the_known_references(built: Built) -> None:
    result = scan(built.data)  # (a) never raises
    assert result.problems == ()
    check_spans(built.data, result)  # (b) slice == raw, (c) line and column
    found = {(r.start, r.end, r.raw, r.kind) for r in result.refs}
    # (e) nothing placed inside a code region is reported
    for ref in result.refs:
        for start, end in built.code:
            assert not start <= ref.start < end, f"{ref} lies in code {built.data[start:end]!r}"
    # (d) every reference placed outside code is found, with its exact span and kind
    missing = built.expected - found
    extra = found - built.expected
    assert not missing, f"not found: {sorted(missing)}"
    assert not extra, f"reported but not placed as references: {sorted(extra)}"


@SETTINGS
@given(posts(hostile=True))
def test_hostile_posts_never_raise_and_keep_spans(built: Built) -> None:
    check_spans(built.data, scan(built.data))


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = scan(data)
    check_spans(data, result)
    if b"\x00" in data:
        assert result.refs == () and any("binary" in p for p in result.problems), result
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert result.refs == ()
        assert any("UTF-8" in p for p in result.problems), result.problems


SYNTAX_TEXT = st.lists(
    st.one_of(st.text(HOSTILE_CHARS + "\x00", max_size=4), HOSTILE_BITS, urls().map(str)),
    max_size=30,
).map("".join)


@SETTINGS
@given(SYNTAX_TEXT, st.booleans())
def test_syntax_soup_never_raises(text: str, bom: bool) -> None:
    data = (BOM if bom else b"") + text.encode("utf-8")
    result = scan(data)
    check_spans(data, result)
    if b"\x00" in data:
        assert result.refs == () and result.problems, result


# --- the oracle itself, and bugs found ------------------------------------------------------


def test_assemble_tracks_offsets_through_bom_crlf_and_code() -> None:
    built = assemble(
        ["a\n", U("https://h/图.jpg", "markdown"), *in_code(("`", U("/x.png", "markdown"), "`"))],
        nl="\r\n",
        bom=True,
    )
    assert built.data == BOM + "a\r\nhttps://h/图.jpg`/x.png`".encode()
    start = len(BOM) + 3
    end = start + len("https://h/图.jpg".encode())
    assert built.expected == {(start, end, "https://h/图.jpg", "markdown")}
    assert built.hidden == [(end + 1, end + 7, "/x.png")]
    assert built.code == [(end, end + 8)]
    assert position(built.data, start) == (2, 1)
    assert position(built.data, end + 1) == (2, len("https://h/图.jpg") + 2)
    assert position(BOM + "é ".encode(), len(BOM) + 3) == (1, 3)


@pytest.mark.parametrize("bom", [b"", BOM], ids=["plain", "bom"])
def test_indented_code_on_first_line(bom: bytes) -> None:
    data = bom + b"    ![x](https://h/code.jpg)\n\ntext\n"
    assert scan_post(data, "p.md", KEYS).refs == ()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"```\n\n![x](https://h/code.jpg)\n\n```\n", []),
        (b"~~~\n![x](https://h/code.jpg)\n~~~\n", []),
        (b"[id]: https://h/r.jpg\n\n![x][id]\n", [("https://h/r.jpg", "reference", 1, 7)]),
    ],
    ids=["backtick-fence", "tilde-fence", "reference-definition"],
)
def test_bom_then_block_on_first_line(
    data: bytes, expected: list[tuple[str, str, int, int]]
) -> None:
    # Without the BOM each is right; Windows editors save with one.
    def found(post: bytes) -> list[tuple[str, str, int, int]]:
        return [(r.raw, r.kind, r.line, r.column) for r in scan_post(post, "p.md", KEYS).refs]

    assert found(data) == expected
    assert found(BOM + data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'![](\r\n  https://h/a.jpg\r\n  "A")\r\n',
        b'![](https://h/a.jpg\r\n  "A")\r\n',
        b"[id]:\r\n  https://h/a.jpg\r\n\r\n![x][id]\r\n",
    ],
    ids=["url-on-next-line", "title-on-next-line", "definition-url-on-next-line"],
)
def test_wrapped_markdown_with_crlf(data: bytes) -> None:
    # The same posts with LF endings are found; Windows editors write CRLF.
    lf = scan_post(data.replace(b"\r\n", b"\n"), "p.md", KEYS).refs
    assert [r.raw for r in lf] == ["https://h/a.jpg"]
    refs = scan_post(data, "p.md", KEYS).refs
    assert [r.raw for r in refs] == ["https://h/a.jpg"]


def test_hexo_json_front_matter_without_opening_separator() -> None:
    # hexo-front-matter: "Prefixing separators are optional"; Hexo's own docs show this form.
    data = b'"title": "Hello World",\n"headimg": "https://h/a.jpg"\n;;;\nbody\n'
    refs = scan_post(data, "p.md", KEYS).refs
    assert [(r.raw, r.kind, r.line) for r in refs] == [("https://h/a.jpg", "front_matter", 2)]
