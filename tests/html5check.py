#!/usr/bin/env python3
"""Reads an HTML page (the file named, or stdin) with html5lib, a parser that follows the
WHATWG HTML5 parsing algorithm, in strict mode (any parse error fails), and prints what the
tests check as one JSON object:

  errors    the parse errors (none for a page that parses cleanly)
  external  every attribute or CSS that would make a browser fetch something: each src, href,
            srcset, action, formaction, poster, data, background, manifest, ping, cite,
            xlink:href attribute, a <meta http-equiv=refresh>, each url() and @import in a
            <style> element or a style attribute (CSS comments removed first), and a <script>
            with src or with a fetching API named in it
  title, viewport, csp    the <title>, the viewport <meta> and the Content-Security-Policy
  print_css               whether a <style> has an @media print block
  filter                  whether there is an <input type=search id=filter> and a script
  tables    each table's rows as lists of their cells' text (header rows included)
  headings  each h1, h2, h3 as [level, text]
  titles, copies          every title attribute (hover text), every data-copy (copy buttons)
  text      the text of the body

Used by tests/integration/catalog.rs; html5lib is installed by scripts/test."""

import json
import re
import sys

import html5lib

FETCHING_ATTRIBUTES = {
    "src", "href", "srcset", "action", "formaction", "poster", "data", "background",
    "manifest", "ping", "cite", "xlink:href", "imagesrcset", "longdesc", "codebase",
}
FETCHING_SCRIPT = re.compile(
    r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|importScripts|import|"
    r"Image|Worker|SharedWorker|open|location|src|href)\b"
)


def css_fetches(css):
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = []
    for match in re.finditer(r"url\s*\(|@import|image-set\s*\(|src\s*\(", css, flags=re.I):
        found.append(css[match.start():match.start() + 80])
    return found


def text_of(element):
    return "".join(element.itertext())


def main():
    source = open(sys.argv[1], "rb").read() if len(sys.argv) > 1 else sys.stdin.buffer.read()
    parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=False)
    document = parser.parse(source)
    errors = [
        "line %d col %d: %s %s" % (pos[0], pos[1], code, json.dumps(data))
        for pos, code, data in parser.errors
    ]
    result = {
        "errors": errors,
        "external": [],
        "title": None,
        "viewport": None,
        "csp": None,
        "print_css": False,
        "filter": False,
        "tables": [],
        "headings": [],
        "titles": [],
        "copies": [],
        "text": "",
    }
    scripts = 0
    for element in document.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        for name, value in element.attrib.items():
            name = name if isinstance(name, str) else ":".join(n for n in name if n)
            if name.lower() in FETCHING_ATTRIBUTES or name.lower().endswith(":href"):
                result["external"].append("<%s %s=%r>" % (tag, name, value))
            if name == "title":
                result["titles"].append(value)
            if name == "data-copy":
                result["copies"].append(value)
            if name.lower() == "style":
                result["external"].extend(css_fetches(value))
        if tag == "meta":
            equiv = element.get("http-equiv", "").lower()
            if equiv == "refresh":
                result["external"].append("<meta http-equiv=refresh>")
            if equiv == "content-security-policy":
                result["csp"] = element.get("content")
            if element.get("name") == "viewport":
                result["viewport"] = element.get("content")
        elif tag == "title":
            result["title"] = text_of(element)
        elif tag == "style":
            css = text_of(element)
            result["external"].extend(css_fetches(css))
            if re.search(r"@media\s+print", css):
                result["print_css"] = True
        elif tag == "script":
            scripts += 1
            for word in FETCHING_SCRIPT.findall(text_of(element)):
                result["external"].append("script names " + word)
        elif tag == "input":
            if element.get("type") == "search" and element.get("id") == "filter":
                result["filter"] = True
        elif tag in ("link", "iframe", "img", "object", "embed", "base", "frame", "audio", "video", "source"):
            result["external"].append("<%s>" % tag)
        elif tag in ("h1", "h2", "h3"):
            result["headings"].append([int(tag[1]), text_of(element)])
        elif tag == "table":
            rows = []
            for row in element.iter("tr"):
                rows.append([text_of(cell) for cell in row if cell.tag in ("td", "th")])
            result["tables"].append(rows)
    result["filter"] = result["filter"] and scripts > 0
    body = document.find("body")
    result["text"] = text_of(body) if body is not None else ""
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
