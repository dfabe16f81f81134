#!/usr/bin/env bash
# spec-rows.sh: the runtime-spec's MUSTs and SHOULDs, and whether
# docs/conformance.md has exactly one row for each.
#
#   spec-rows.sh            check the table: every requirement has one row,
#                           no row names an unknown one; print the counts
#                           (requirements per file and level, row statuses)
#   spec-rows.sh list       every requirement: id, level, section, sentence
#   spec-rows.sh missing    a table row to fill in for each requirement
#                           without one
#   spec-rows.sh extract F  the requirement sentences of an upstream spec
#                           markdown file F, in the format of
#                           conformance/spec/*.req (to diff against them
#                           when the spec changes)
#
# A requirement is one occurrence of MUST (or MUST NOT) or SHOULD (or SHOULD
# NOT) in a sentence of the spec: a sentence with two of them is two
# requirements ("MUST have no effect ... and MUST generate an error").
# The sentences live in conformance/spec/<file>.req (see its README); their
# ids are the file's letter and the occurrence's number: C (config.md),
# L (config-linux.md), R (runtime.md), RL (runtime-linux.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import re
import sys

FILES = [("config.md", "C"), ("config-linux.md", "L"), ("runtime.md", "R"),
         ("runtime-linux.md", "RL")]
KEYWORD = re.compile(r'(?<!["\w])(MUST|SHOULD)(?!["\w])')
TABLE = "docs/conformance.md"


def requirements():
    """(id, level, file, section, sentence) for every keyword occurrence."""
    out = []
    for name, prefix in FILES:
        n, section = 0, ""
        path = "conformance/spec/" + name.replace(".md", ".req")
        for line in open(path, encoding="utf-8"):
            line = line.rstrip("\n")
            if line.startswith("# ") or not line.strip():
                continue
            if line.startswith("#"):
                section = line.lstrip("#").strip()
                continue
            for m in KEYWORD.finditer(line):
                n += 1
                out.append((f"{prefix}{n}", m.group(1), name, section, line))
    return out


def clean(text):
    text = re.sub(r"<a name=\"[^\"]*\"\s*/>", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)   # [text](url)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)  # [text][ref]
    text = text.replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def extract(path):
    """The .req lines of an upstream markdown file: headings that have
    requirements under them, then those sentences."""
    items, fence, cur = [], False, []

    def flush():
        if cur:
            items.append(("text", " ".join(cur)))
            cur.clear()

    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.lstrip().startswith("```"):
            flush()
            fence = not fence
            continue
        if fence or re.match(r"^\[[^\]]+\]:", line):
            continue
        s = line.strip()
        if not s:
            flush()
            continue
        if re.match(r"^#{1,6} ", s):
            flush()
            items.append(("head", s))
            continue
        if re.match(r"^\|?\s*:?-{3,}", s):      # table separator
            continue
        if "|" in s and (s.startswith("|") or s.startswith("`")):
            flush()
            items.append(("text", s.strip("|").replace("|", " | ")))
            continue
        if re.match(r"^([*-]|\d+\.)\s", s):
            flush()
            s = re.sub(r"^([*-]|\d+\.)\s+", "", s)
        s = re.sub(r"^>\s*", "", s)
        cur.append(s)
    flush()
    out, head, printed = [], None, None
    for kind, text in items:
        if kind == "head":
            head = text
            continue
        text = clean(text)
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z`*(\[])", text):
            sentence = sentence.strip().rstrip("|").strip()
            sentence = re.sub(r"\s*\|\s*", " | ", sentence)
            if KEYWORD.search(sentence):
                if head and printed != head:
                    hashes, title = head.split(" ", 1)
                    out.append(f"{hashes} {clean(title)}")
                    printed = head
                out.append(sentence)
    return out


def table_rows():
    rows = []
    for line in open(TABLE, encoding="utf-8"):
        m = re.match(r"^\|\s*((?:RL|C|L|R)\d+)\s*\|", line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((m.group(1), cells))
    return rows


def status_word(cell):
    w = cell.split()[0].strip("*_").lower() if cell.split() else ""
    return w.rstrip(":,")


def check():
    reqs = requirements()
    ids = {r[0] for r in reqs}
    rows = table_rows()
    seen = {}
    for rid, _ in rows:
        seen[rid] = seen.get(rid, 0) + 1
    missing = [r for r in reqs if r[0] not in seen]
    extra = sorted(rid for rid in seen if rid not in ids)
    dup = sorted(rid for rid, n in seen.items() if n > 1)
    for name, prefix in FILES:
        must = sum(1 for r in reqs if r[2] == name and r[1] == "MUST")
        should = sum(1 for r in reqs if r[2] == name and r[1] == "SHOULD")
        print(f"{name}: {must} MUST, {should} SHOULD")
    print(f"requirements: {len(reqs)}, table rows: {len(rows)}")
    for col, name in ((4, "hybrid"), (5, "v2")):
        counts = {}
        for _, cells in rows:
            w = status_word(cells[col]) if len(cells) > col else "?"
            counts[w] = counts.get(w, 0) + 1
        print(f"{name}: " + ", ".join(f"{n} {w}" for w, n in sorted(counts.items())))
    for r in missing:
        print(f"missing row: {r[0]} ({r[2]}, {r[3]}): {r[4]}")
    for rid in extra:
        print(f"row for an unknown requirement: {rid}")
    for rid in dup:
        print(f"more than one row: {rid}")
    ok = not (missing or extra or dup)
    print("the table has one row per requirement" if ok else "the table is incomplete")
    return 0 if ok else 1


def main(argv):
    cmd = argv[1] if len(argv) > 1 else "check"
    if cmd == "check":
        return check()
    if cmd == "list":
        for r in requirements():
            print("\t".join(r))
        return 0
    if cmd == "missing":
        have = {rid for rid, _ in table_rows()}
        for rid, level, name, section, sentence in requirements():
            if rid not in have:
                print(f"| {rid} | {section} | {level}: {sentence} | | | |")
        return 0
    if cmd == "extract" and len(argv) == 3:
        for line in extract(argv[2]):
            print(line)
        return 0
    print(__doc__ or "usage: spec-rows.sh [check|list|missing|extract FILE]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv))
PY
