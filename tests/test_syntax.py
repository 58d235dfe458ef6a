"""Golden tests: one case for each line of the syntax notes (SYNTAX.md).

Each case is a post and the exact (kind, raw text) list the scanner must
report, in file order; "local:" marks a site-relative reference.
"""

from __future__ import annotations

import pytest

from scanhelp import found, scan_text

H = "https://img.example.com"

CODE_IS_NOT_A_REFERENCE = {
    "backtick fence": f"```\n![a]({H}/a.png)\n```\n",
    "tilde fence": f"~~~~ md\n![a]({H}/a.png)\n~~~~\n",
    "longer fence holds a shorter one": f"````\n```\n![a]({H}/a.png)\n```\n````\n",
    "unclosed fence runs to the end": f"```\n![a]({H}/a.png)\n",
    "fence in a list item": f"- step\n  ```\n  ![a]({H}/a.png)\n  ```\n",
    "fence in a blockquote": f"> ```\n> ![a]({H}/a.png)\n> ```\n",
    "indented code": f"Text.\n\n    ![a]({H}/a.png)\n    <img src='{H}/b.png'>\n",
    "tab-indented code": f"Text.\n\n\t![a]({H}/a.png)\n",
    "inline code": f"Write `![a]({H}/a.png)` for an image.",
    "double-backtick inline code": f"Write ``a ` ![a]({H}/a.png)`` here.",
    "html comment": f"<!-- ![a]({H}/a.png) -->",
    "multi-line html comment": f'<!--\n<img src="{H}/a.png">\n-->',
    "raw tag": f"{{% raw %}}\n{{% img {H}/a.png %}}\n{{% endraw %}}",
    "codeblock tag": f"{{% codeblock %}}\n![a]({H}/a.png)\n{{% endcodeblock %}}",
    "end tag inside a raw block inside a codeblock": (
        "{% codeblock %}\n{% raw %}\n{% endcodeblock %}\n"
        f"![a]({H}/a.png)\n{{% endraw %}}\n{{% endcodeblock %}}"
    ),
    "codeblock on one line": f"{{% codeblock %}}![a]({H}/a.png){{% endcodeblock %}}",
    "code alias of codeblock": f"{{% code lang:md %}}\n![a]({H}/a.png)\n{{% endcode %}}",
    "jekyll highlight tag": f'{{% highlight html %}}\n<img src="{H}/a.png">\n{{% endhighlight %}}',
    "hugo comment shortcode": f'{{{{</* figure src="{H}/a.png" */>}}}}',
    "hugo percent comment shortcode": f'{{{{%/* figure src="{H}/a.png" */%}}}}',
    "hugo highlight shortcode": (
        f'{{{{< highlight html >}}}}\n<img src="{H}/a.png">\n{{{{< /highlight >}}}}'
    ),
    "tag written inside a fence is literal": f"```\n{{% img {H}/a.png %}}\n```",
    "gallery inside a fence": f"```\n{{% gallery %}}\n![]({H}/a.png)\n{{% endgallery %}}\n```",
    "data uri": "![dot](data:image/png;base64,iVBORw0KGgo=)",
    "mailto": "[![a](mailto:me@example.com)](mailto:me@example.com)",
    "anchor": '<img src="#top">',
    "footnote is not a reference image": f"Text[^1] ![x][^1]\n\n[^1]: {H}/a.png",
    "empty src": '<img src=" ">',
    "template expression": '<img src="<%- theme.logo %>"> <img src="${src}">',
    "empty destination": "![]()",
}


@pytest.mark.parametrize("text", CODE_IS_NOT_A_REFERENCE.values(), ids=CODE_IS_NOT_A_REFERENCE)
def test_not_a_reference(text: str) -> None:
    assert found(text) == []


FOUND = {
    # --- Markdown
    "inline": (f"![alt]({H}/a.png)", [("markdown", f"{H}/a.png")]),
    "double-quoted title": (f'![alt]({H}/a.png "T")', [("markdown", f"{H}/a.png")]),
    "single-quoted title": (f"![alt]({H}/a.png 'T')", [("markdown", f"{H}/a.png")]),
    "angle brackets with spaces": (
        f"![alt](<{H}/my photo.png>)",
        [("markdown", f"{H}/my photo.png")],
    ),
    "balanced parentheses": (f"![a]({H}/img/1(3).jpg)", [("markdown", f"{H}/img/1(3).jpg")]),
    "several on one line": (
        f"![a]({H}/1.png) and ![b]({H}/2.png)![c]({H}/3.png)",
        [("markdown", f"{H}/1.png"), ("markdown", f"{H}/2.png"), ("markdown", f"{H}/3.png")],
    ),
    "image inside a link to an image": (
        f"[![a]({H}/thumb.jpg)]({H}/full.jpg)",
        [("markdown", f"{H}/thumb.jpg"), ("markdown", f"{H}/full.jpg")],
    ),
    "image inside a link to a page": (
        f"[![a]({H}/thumb.jpg)](https://example.com/about)",
        [("markdown", f"{H}/thumb.jpg")],
    ),
    "spaces inside the parentheses": (f"![a](  {H}/a.png  )", [("markdown", f"{H}/a.png")]),
    "alt with brackets": (f"![a [b] c]({H}/a.png)", [("markdown", f"{H}/a.png")]),
    "kramdown attributes after": (
        f"![a]({H}/a.png){{: .align-center}}",
        [("markdown", f"{H}/a.png")],
    ),
    "markdown-it size": (f"![a]({H}/a.png =300x)", [("markdown", f"{H}/a.png")]),
    "reference definition": (
        f"![alt][logo]\n\n[logo]: {H}/logo.png",
        [("reference", f"{H}/logo.png")],
    ),
    "reference with angle brackets and title": (
        f'![alt][Logo]\n\n[logo]: <{H}/logo.png> "The logo"',
        [("reference", f"{H}/logo.png")],
    ),
    "collapsed and shortcut references": (
        f"![one][] and ![two]\n\n[one]: {H}/1.png\n[two]: {H}/2.png\n[unused]: {H}/3.png",
        [("reference", f"{H}/1.png"), ("reference", f"{H}/2.png")],
    ),
    "plain link to an image file": (
        f"See [the photo]({H}/full.jpg) or [the page](https://example.com/about).",
        [("markdown", f"{H}/full.jpg")],
    ),
    "markdown inside an html block is literal, html inside is not": (
        f'<div class="code">\n![icon]({H}/a.gif)\n<img src="{H}/b.gif">\n</div>\n\n![c]({H}/c.png)',
        [("html", f"{H}/b.gif"), ("markdown", f"{H}/c.png")],
    ),
    "html block started inside a fence does not swallow later text": (
        f"```html\n<div>\n```\n![a]({H}/a.png)\n",
        [("markdown", f"{H}/a.png")],
    ),
    "inline html does not open a block": (
        f"Text <span>x</span>\n![a]({H}/a.png)",
        [("markdown", f"{H}/a.png")],
    ),
    "site-relative image": ("![a](/images/a.png)", [("markdown", "local:/images/a.png")]),
    # --- HTML
    "img src double-quoted": (f'<img src="{H}/a.png">', [("html", f"{H}/a.png")]),
    "img src single-quoted": (f"<IMG SRC='{H}/a.png'>", [("html", f"{H}/a.png")]),
    "img src unquoted": (f"<img src={H}/a.png alt=x>", [("html", f"{H}/a.png")]),
    "lazy-loading attributes": (
        f'<img data-src="{H}/a.png" data-original="{H}/b.png" src="/loading.gif">',
        [("html", f"{H}/a.png"), ("html", f"{H}/b.png"), ("html", "local:/loading.gif")],
    ),
    "srcset": (
        f'<img srcset="{H}/a.png 1x, {H}/b.png 2x">',
        [("html", f"{H}/a.png"), ("html", f"{H}/b.png")],
    ),
    "multi-line srcset with commas in a URL": (
        f'<img srcset="\n  {H}/a.png?x-oss-process=image/resize,w_800 800w,\n  {H}/b.png 2x">',
        [("html", f"{H}/a.png?x-oss-process=image/resize,w_800"), ("html", f"{H}/b.png")],
    ),
    "picture source": (
        f'<picture><source srcset="{H}/a.webp" type="image/webp"><img src="{H}/a.jpg"></picture>',
        [("html", f"{H}/a.webp"), ("html", f"{H}/a.jpg")],
    ),
    "link around an image": (
        f'<a href="{H}/full.jpg"><img src="{H}/thumb.jpg"></a>',
        [("html", f"{H}/full.jpg"), ("html", f"{H}/thumb.jpg")],
    ),
    "link to a page is not an image": (
        f'<a href="https://example.com/"><img src="{H}/t.jpg"></a>',
        [("html", f"{H}/t.jpg")],
    ),
    "background image": (
        f"<div style=\"background-image: url('{H}/bg.jpg')\">x</div>",
        [("html", f"{H}/bg.jpg")],
    ),
    "entities kept raw": (
        f'<img src="{H}/a.png?w=1&amp;h=2">',
        [("html", f"{H}/a.png?w=1&amp;h=2")],
    ),
    "multi-line tag": (f'<img\n  alt="x"\n  src="{H}/a.png"\n>', [("html", f"{H}/a.png")]),
    # --- Hexo core
    "img tag with class and size": (
        f'{{% img right {H}/a.png 400 300 "Title" %}}',
        [("tag", f"{H}/a.png")],
    ),
    "img tag site path": ("{% img /images/a.png %}", [("tag", "local:/images/a.png")]),
    "img tag relative path is a class": ("{% img img/a.png %}", []),
    "img tag without space before close": (
        f"{{% img {H}/a.png?x=0%}}",
        [("tag", f"{H}/a.png?x=0")],
    ),
    "image alias": (f"{{% image {H}/a.png %}}", [("tag", f"{H}/a.png")]),
    "asset_img wrapped across lines": (
        "{% asset_img a.png\n   %}",
        [("tag", "local:a.png")],
    ),
    # --- Volantis
    "volantis gallery": (
        f"{{% gallery stretch::6::two %}}\n![]({H}/1.png)\n"
        f'<img src="{H}/2.png">\n{{% endgallery %}}',
        [("gallery", f"{H}/1.png"), ("gallery", f"{H}/2.png")],
    ),
    "volantis gallery comma form": (
        f"{{% gallery stretch, 4 %}}\n![]({H}/1.png)\n{{% endgallery %}}",
        [("gallery", f"{H}/1.png")],
    ),
    "gallery with empty fields": (
        f"{{% gallery stretch::::diagram %}}\n![]({H}/1.png)\n{{% endgallery %}}",
        [("gallery", f"{H}/1.png")],
    ),
    "gallery true,,10": (
        f"{{% gallery true,,10 %}}\n![]({H}/1.png)\n{{% endgallery %}}",
        [("gallery", f"{H}/1.png")],
    ),
    "volantis image with options": (
        f"{{% image {H}/a.png, alt=A cat, width=400px %}}",
        [("tag", f"{H}/a.png")],
    ),
    "volantis inlineimage": (
        f"Icon {{% inlineimage {H}/i.png, height=22px %}} here",
        [("tag", f"{H}/i.png")],
    ),
    "swiper": (
        f"{{% swiper %}}\n![]({H}/1.png)\n![]({H}/2.png)\n{{% endswiper %}}",
        [("gallery", f"{H}/1.png"), ("gallery", f"{H}/2.png")],
    ),
    "image tags inside a gallery are gallery images": (
        f"{{% gallery %}}\n{{% image {H}/1.png %}}\n{{% endgallery %}}",
        [("gallery", f"{H}/1.png")],
    ),
    # --- Butterfly
    "butterfly gallery": (
        f"{{% gallery true,220,10 %}}\n![one]({H}/1.png)\n{{% endgallery %}}",
        [("gallery", f"{H}/1.png")],
    ),
    "butterfly gallery from a json list": (
        f"{{% gallery url,{H}/list.json %}}\n{{% endgallery %}}",
        [],
    ),
    "butterfly galleryGroup": (
        f'{{% galleryGroup wallpaper "Wall papers" /gallery/wallpaper {H}/cover.jpg %}}',
        [("tag", f"{H}/cover.jpg")],
    ),
    "butterfly inlineImg": (
        f"{{% inlineImg {H}/i.png 150px %}}",
        [("tag", f"{H}/i.png")],
    ),
    # --- NexT, Fluid, Stellar
    "next grouppicture wrapped": (
        f"{{%\n grouppicture 2-2 %}}\n![]({H}/1.png)\n![]({H}/2.png)\n{{% endgrouppicture %}}",
        [("gallery", f"{H}/1.png"), ("gallery", f"{H}/2.png")],
    ),
    "next gp alias": (
        f"{{% gp 1-1 %}}\n![]({H}/1.png)\n{{% endgp %}}",
        [("gallery", f"{H}/1.png")],
    ),
    "fluid gi": (f"{{% gi 2 1-1 %}}\n![]({H}/1.png)\n{{% endgi %}}", [("gallery", f"{H}/1.png")]),
    "stellar image": (
        f"{{% image {H}/a.png A cat width:400px %}}",
        [("tag", f"{H}/a.png")],
    ),
    "stellar image with an option first": (
        f"{{% image fancybox:true {H}/a.png A cat %}}",
        [("tag", f"{H}/a.png")],
    ),
    "stellar frame": (
        f"{{% frame iphone8 img:{H}/shot.png %}}",
        [("tag", f"{H}/shot.png")],
    ),
    "stellar link icon": (
        f"{{% link https://github.com/x Stellar icon:{H}/icon.svg %}}",
        [("tag", f"{H}/icon.svg")],
    ),
    "butterfly flink avatars": (
        "{% flink %}\n- class_name: Friends\n  link_list:\n    - name: A\n"
        f"      link: https://a.example.com/\n      avatar: {H}/a.png\n"
        f"    - name: B\n      avatar: {H}/b.png  # round\n{{% endflink %}}",
        [("tag", f"{H}/a.png"), ("tag", f"{H}/b.png")],
    ),
    # --- Hugo
    "hugo figure src and link": (
        f'{{{{< figure src="{H}/t.jpg" link="{H}/full.jpg" caption="x" >}}}}',
        [("shortcode", f"{H}/t.jpg"), ("shortcode", f"{H}/full.jpg")],
    ),
    "hugo figure link to a page": (
        f'{{{{< figure src="{H}/t.jpg" link="/posts/x/" >}}}}',
        [("shortcode", f"{H}/t.jpg")],
    ),
    "hugo figure unquoted": (
        "{{< figure src=DeviceID.png >}}",
        [("shortcode", "local:DeviceID.png")],
    ),
    "hugo percent shortcode": (f"{{{{% img src={H}/a.png %}}}}", [("shortcode", f"{H}/a.png")]),
}


@pytest.mark.parametrize(("text", "expected"), FOUND.values(), ids=FOUND)
def test_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def fm(body: str) -> str:
    return f"---\n{body}\n---\nText.\n"


FRONT_MATTER = {
    "headimg": (fm(f"headimg: {H}/h.jpg"), [f"{H}/h.jpg"]),
    "double-quoted": (fm(f'cover: "{H}/c.jpg"'), [f"{H}/c.jpg"]),
    "single-quoted": (fm(f"cover: '{H}/c.jpg'"), [f"{H}/c.jpg"]),
    "comment after the value": (fm(f"cover: {H}/c.jpg  # the cover"), [f"{H}/c.jpg"]),
    "list": (fm(f"photos:\n  - {H}/1.jpg\n  - {H}/2.jpg"), [f"{H}/1.jpg", f"{H}/2.jpg"]),
    "flow list": (fm(f"images: [{H}/1.jpg, '{H}/2.jpg']"), [f"{H}/1.jpg", f"{H}/2.jpg"]),
    "photo string": (fm(f"photo: {H}/p.jpg"), [f"{H}/p.jpg"]),
    "butterfly keys": (
        fm(f"top_img: {H}/t.jpg\npagination_cover: {H}/p.jpg"),
        [f"{H}/t.jpg", f"{H}/p.jpg"],
    ),
    "fluid keys": (
        fm(f"index_img: {H}/i.jpg\nbanner_img: {H}/b.jpg\nog_img: {H}/o.jpg"),
        [f"{H}/i.jpg", f"{H}/b.jpg", f"{H}/o.jpg"],
    ),
    "cover false": (fm("cover: false"), []),
    "bare file name": (fm("cover: cover.jpg"), ["local:cover.jpg"]),
    "capitalised key": (fm(f"Thumbnail: {H}/t.jpg"), [f"{H}/t.jpg"]),
    "nested cover.image": (fm(f"cover:\n  image: {H}/c.jpg\n  relative: false"), [f"{H}/c.jpg"]),
    "jekyll image map": (fm(f"image:\n  path: {H}/i.jpg\n  alt: x"), [f"{H}/i.jpg"]),
    "minimal mistakes header": (
        fm(f"header:\n  overlay_image: {H}/o.jpg\n  teaser: /assets/t.jpg\n  caption: x"),
        [f"{H}/o.jpg", "local:/assets/t.jpg"],
    ),
    "gallery list of maps": (
        fm(f"gallery:\n  - url: {H}/1.jpg\n    image_path: {H}/1-t.jpg\n    alt: one"),
        [f"{H}/1.jpg", f"{H}/1-t.jpg"],
    ),
    "unconfigured key": (fm(f"avatar: {H}/a.jpg"), []),
    "placeholder is no URL": (fm(f"cover: {H}/{{year}}/{{month}}/x.png"), []),
    "file name with spaces": (fm(f"cover: {H}/my cover.jpg"), [f"{H}/my cover.jpg"]),
    "no opening separator": (f"title: x\nheadimg: {H}/h.jpg\n---\nText.\n", [f"{H}/h.jpg"]),
    "second block is body text": (
        fm(f"headimg: {H}/1.jpg") + f"---\nheadimg: {H}/2.jpg\n---\n",
        [f"{H}/1.jpg"],
    ),
    "block scalar is not a one-line URL": (fm(f"cover: |\n  {H}/c.jpg"), []),
    "folded plain value is skipped": (fm(f"cover: {H}/\n  c.jpg"), []),
    "anchor found once, alias adds no span": (
        fm(f"cover: &c {H}/c.jpg\nheadimg: *c"),
        [f"{H}/c.jpg"],
    ),
    "complex key is ignored": (fm(f"? [a, b]\n: {H}/x.jpg\nheadimg: {H}/h.jpg"), [f"{H}/h.jpg"]),
    "bom before the front matter": ("\ufeff" + fm(f"headimg: {H}/h.jpg"), [f"{H}/h.jpg"]),
    "crlf front matter": (fm(f"headimg: {H}/h.jpg").replace("\n", "\r\n"), [f"{H}/h.jpg"]),
    "toml": (
        f'+++\ntitle = "x"\nimages = ["{H}/1.jpg", "{H}/2.jpg"]\n'
        f'featured_image = "{H}/f.jpg"\n[cover]\nimage = "{H}/c.jpg"\n+++\nText.\n',
        [f"{H}/1.jpg", f"{H}/2.jpg", f"{H}/f.jpg", f"{H}/c.jpg"],
    ),
    # Quoted keys are read as tomllib reads them, escapes undone.
    "toml quoted keys": (
        f'+++\n"cov\\u0065r" = "{H}/c.jpg"\n\'headimg\' = "{H}/h.jpg"\n'
        f'"header"."\\u0069mage" = "{H}/x.jpg"\n"head\\u0069mg2" = "{H}/n.jpg"\n+++\n',
        [f"{H}/c.jpg", f"{H}/h.jpg", f"{H}/x.jpg"],
    ),
    "hexo json": (f';;;\n"title": "x",\n"headimg": "{H}/h.jpg"\n;;;\nText.\n', [f"{H}/h.jpg"]),
    "hugo json": (f'{{\n  "title": "x",\n  "images": ["{H}/1.jpg"]\n}}\nText.\n', [f"{H}/1.jpg"]),
}


@pytest.mark.parametrize(("text", "expected"), FRONT_MATTER.values(), ids=FRONT_MATTER)
def test_front_matter(text: str, expected: list[str]) -> None:
    refs = found(text)
    assert {kind for kind, _ in refs} <= {"front_matter"}
    assert [raw for _, raw in refs] == expected


def test_skipped_text_is_listed_with_its_reason() -> None:
    result = scan_text('![a](data:image/png;base64,AAAA)\n<img src="{{ site.logo }}">\n')
    assert result.refs == ()
    assert [(s.line, s.reason) for s in result.skipped] == [
        (1, "data: URI"),
        (2, "template placeholder"),
    ]


def test_front_matter_span_excludes_quotes_and_comment() -> None:
    text = f'---\ncover: "{H}/c.jpg"   # note\n---\n'
    (ref,) = scan_text(text).refs
    assert text.encode()[ref.start - 1 : ref.end + 1] == f'"{H}/c.jpg"'.encode()
    assert (ref.line, ref.column) == (2, 9)


def test_list_item_continuation_is_not_code() -> None:
    text = f"1. First step\n\n    ![shot]({H}/step.png)\n\n2. Next\n"
    assert found(text) == [("markdown", f"{H}/step.png")]


def test_indented_text_after_a_paragraph_line_is_not_code() -> None:
    assert found(f"Some text\n    ![a]({H}/a.png)\n") == [("markdown", f"{H}/a.png")]


def test_reference_found_after_code() -> None:
    text = f"```\n![a]({H}/in-code.png)\n```\n\n![b]({H}/after.png)\n`x` ![c]({H}/c.png)"
    assert found(text) == [("markdown", f"{H}/after.png"), ("markdown", f"{H}/c.png")]


def test_backtick_inside_a_comment_opens_no_code_span() -> None:
    text = f"<!-- a ` tick -->\n![a]({H}/a.png) and ` ![b]({H}/b.png)"
    assert found(text) == [("markdown", f"{H}/a.png"), ("markdown", f"{H}/b.png")]


def test_repairs_and_normalized_urls() -> None:
    text = (
        "![a](httpss://h.example.com/1.png) ![b](htps://h.example.com/2.png)\n"
        "![c](https//h.example.com/3.png) ![d](http:/h.example.com/4.png)\n"
        "![e](//h.example.com/5.png)\n"
    )
    refs = scan_text(text).refs
    assert [r.url for r in refs] == [
        "https://h.example.com/1.png",
        "https://h.example.com/2.png",
        "https://h.example.com/3.png",
        "http://h.example.com/4.png",
        "https://h.example.com/5.png",
    ]
    assert all(len(r.repairs) == 1 for r in refs)


def test_entities_decoded_for_fetching_only() -> None:
    (ref,) = scan_text(f'<img src="{H}/a.png?w=1&amp;h=2">').refs
    assert ref.raw.endswith("&amp;h=2")
    assert ref.url == f"{H}/a.png?w=1&h=2"


def test_non_ascii_path_is_encoded_for_fetching_and_kept_raw() -> None:
    raw, encoded = scan_text(f"![a]({H}/图片.png) ![b]({H}/%E5%9B%BE%E7%89%87.png)").refs
    assert raw.raw == f"{H}/图片.png"
    assert raw.url == encoded.url == f"{H}/%E5%9B%BE%E7%89%87.png"
    assert raw.column == 6 and encoded.column == len(f"![a]({H}/图片.png) ![b](") + 1
