"""Write ``docstring_summaries.jsonl``: real English text and one-line summaries, from Python's standard library.

Every public function, class and method of a fixed list of stdlib modules whose docstring opens with a one-line
summary sentence followed by a body of 20 to 150 words gives one row: ``{"text": body, "summary": first line}``.
People wrote both, so it is a small real summarization set that needs no download (the rows depend on the Python
version; the committed file was written by CPython 3.11). Run from the repository root::

    python examples/data/make_docstring_summaries.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path

MODULES = ("argparse", "asyncio", "collections", "concurrent.futures", "configparser", "csv", "dataclasses",
           "datetime", "decimal", "difflib", "email.message", "fractions", "ftplib", "functools", "gzip", "heapq",
           "http.client", "imaplib", "inspect", "ipaddress", "itertools", "json", "logging", "mailbox", "os",
           "pathlib", "pickle", "pprint", "queue", "random", "shutil", "smtplib", "socket", "sqlite3", "statistics",
           "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "tkinter", "typing",
           "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "zipfile", "bisect", "calendar", "codecs",
           "contextlib", "copy", "enum", "filecmp", "fnmatch", "glob", "hashlib", "html.parser", "locale",
           "mimetypes", "numbers", "operator", "optparse", "platform", "poplib", "sched", "secrets", "selectors",
           "shelve", "shlex", "socketserver", "ssl", "struct", "timeit", "trace", "traceback", "turtle", "wave",
           "weakref", "webbrowser", "xml.dom.minidom", "xml.etree.ElementTree", "xmlrpc.client", "zoneinfo")
OUT = Path(__file__).with_name("docstring_summaries.jsonl")


def rows_of(obj: object, seen: set[int]) -> list[dict[str, str]]:
    """The row of ``obj``'s docstring (if it qualifies) and of its public members' (one level down)."""
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    out = []
    doc = inspect.getdoc(obj) or ""
    first, _, rest = doc.partition("\n\n")
    summary, body = " ".join(first.split()), " ".join(rest.split())
    if (summary.endswith(".") and 4 <= len(summary.split()) <= 25 and 20 <= len(body.split()) <= 150
            and not re.search(r">>>|::|\{|\}|\bParameters\b|Args:|Arguments:| -- |Returns:|Raises:", rest)):
        out.append({"text": body, "summary": summary})
    return out


def main() -> None:
    rows, seen, texts = [], set(), set()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in sorted(getattr(module, "__all__", None) or dir(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr, None)
            if str(getattr(obj, "__module__", None) or name).split(".")[0] != name.split(".")[0]:
                continue  # re-exported from elsewhere
            candidates = [obj] + ([getattr(obj, m, None) for m in sorted(vars(obj)) if not m.startswith("_")]
                                  if inspect.isclass(obj) else [])
            for item in candidates:
                if inspect.isroutine(item) or inspect.isclass(item):
                    for row in rows_of(item, seen):
                        if row["text"] not in texts:
                            texts.add(row["text"])
                            rows.append(row)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} rows -> {OUT}")


if __name__ == "__main__":
    main()
