#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check OpenMetrics 1.0 text exposition (what Prometheus' parser insists on).

Usage: openmetrics-check.py [FILE]   (standard input without FILE)

Checks: only TYPE/UNIT/HELP/EOF comments and samples, no blank line; the
text ends with "# EOF" and a newline; metadata once per family and before
its samples; the samples of a family together; names, label names and
values (only \\\\, \\" and \\n escapes) well formed, no label twice; sample
names the family's with the suffix its type allows (counter _total/_created,
info _info); a family with a UNIT ends in _UNIT; values numbers, counters
not negative, info 1, stateset 0 or 1 with the family's own label; no two
samples alike.  Exit 0 and "ok N families M samples", or 1 and every error.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "info", "stateset", "histogram", "gaugehistogram", "summary",
         "unknown"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
}


def parse_labels(text, pos, errors, lineno):
    """text[pos] == '{': returns (dict, position after '}')."""
    labels = {}
    pos += 1
    if text[pos:pos + 1] == "}":
        return labels, pos + 1
    while True:
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", text[pos:])
        if not m:
            errors.append("line %d: bad label name at %r" % (lineno, text[pos:pos + 20]))
            return None, pos
        name = m.group(0)
        pos += len(name)
        if text[pos:pos + 2] != '="':
            errors.append("line %d: label %s: expected =\"" % (lineno, name))
            return None, pos
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                errors.append("line %d: label %s: unterminated value" % (lineno, name))
                return None, pos
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    errors.append("line %d: label %s: bad escape \\%s" % (lineno, name, nxt))
                    return None, pos
                value.append("\n" if nxt == "n" else nxt)
                pos += 2
                continue
            if c == '"':
                pos += 1
                break
            if c == "\n":
                errors.append("line %d: label %s: raw newline" % (lineno, name))
                return None, pos
            value.append(c)
            pos += 1
        if name in labels:
            errors.append("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(value)
        if text[pos:pos + 1] == ",":
            pos += 1
            if text[pos:pos + 1] == "}":
                return labels, pos + 1
            continue
        if text[pos:pos + 1] == "}":
            return labels, pos + 1
        errors.append("line %d: expected , or } after label %s" % (lineno, name))
        return None, pos


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.match(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z", s):
        raise ValueError(s)
    return float(s)


def check(text):
    errors = []
    families = {}       # name -> {"type":, "unit":, "help":}
    order = []          # families in the order their samples/metadata appear
    seen_samples = set()
    closed = set()      # families whose block ended
    current = None
    n_samples = 0

    if not text.endswith("# EOF\n"):
        errors.append("the text does not end with '# EOF' and a newline")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    eof = False
    for lineno, line in enumerate(lines, 1):
        if eof:
            errors.append("line %d: text after # EOF" % lineno)
            break
        if line == "# EOF":
            eof = True
            continue
        if line == "":
            errors.append("line %d: blank line" % lineno)
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("TYPE", "UNIT", "HELP"):
                errors.append("line %d: not TYPE, UNIT, HELP or EOF: %r" % (lineno, line))
                continue
            kind, name = parts[1], parts[2]
            rest = parts[3] if len(parts) > 3 else ""
            if not NAME.match(name):
                errors.append("line %d: bad family name %r" % (lineno, name))
                continue
            if name != current:
                if name in closed or name in families:
                    errors.append("line %d: family %s appears twice" % (lineno, name))
                if current:
                    closed.add(current)
                current = name
                order.append(name)
            fam = families.setdefault(name, {"type": "unknown", "unit": None, "help": None,
                                             "typed": False, "samples": 0})
            if fam["samples"]:
                errors.append("line %d: %s metadata after its samples" % (lineno, name))
            if kind == "TYPE":
                if fam["typed"]:
                    errors.append("line %d: TYPE of %s twice" % (lineno, name))
                if rest not in TYPES:
                    errors.append("line %d: unknown type %r" % (lineno, rest))
                fam["type"] = rest
                fam["typed"] = True
            elif kind == "UNIT":
                if fam["unit"] is not None:
                    errors.append("line %d: UNIT of %s twice" % (lineno, name))
                fam["unit"] = rest
                if not name.endswith("_" + rest):
                    errors.append("line %d: %s has unit %s but does not end in _%s"
                                  % (lineno, name, rest, rest))
            else:
                if fam["help"] is not None:
                    errors.append("line %d: HELP of %s twice" % (lineno, name))
                fam["help"] = rest
                if re.search(r'\\[^\\"n]', rest.replace("\\\\", "")):
                    errors.append("line %d: bad escape in HELP" % lineno)
            continue
        # A sample: name[{labels}] value [timestamp]
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if not m:
            errors.append("line %d: bad sample %r" % (lineno, line))
            continue
        sname = m.group(0)
        pos = len(sname)
        labels = {}
        if line[pos:pos + 1] == "{":
            labels, pos = parse_labels(line, pos, errors, lineno)
            if labels is None:
                continue
        if line[pos:pos + 1] != " ":
            errors.append("line %d: expected a space before the value" % lineno)
            continue
        fields = line[pos + 1:].split(" ")
        if len(fields) not in (1, 2) or fields[0] == "":
            errors.append("line %d: expected value [timestamp]" % lineno)
            continue
        try:
            value = parse_value(fields[0])
        except ValueError:
            errors.append("line %d: bad value %r" % (lineno, fields[0]))
            continue
        if current is None:
            errors.append("line %d: sample %s outside a family" % (lineno, sname))
            continue
        fam = families[current]
        suffix = sname[len(current):] if sname.startswith(current) else None
        if suffix is None or suffix not in SUFFIXES.get(fam["type"], ("",)):
            errors.append("line %d: sample %s does not belong to family %s (%s)"
                          % (lineno, sname, current, fam["type"]))
            continue
        fam["samples"] += 1
        n_samples += 1
        if fam["type"] == "counter" and suffix == "_total" and not value >= 0:
            errors.append("line %d: counter %s is negative or NaN" % (lineno, sname))
        if fam["type"] == "info" and value != 1:
            errors.append("line %d: info %s is not 1" % (lineno, sname))
        if fam["type"] == "stateset":
            if value not in (0, 1):
                errors.append("line %d: stateset %s is not 0 or 1" % (lineno, sname))
            if current not in labels:
                errors.append("line %d: stateset %s lacks the label %s" % (lineno, sname, current))
        key = (sname, tuple(sorted(labels.items())))
        if key in seen_samples:
            errors.append("line %d: sample %s%s twice" % (lineno, sname, labels))
        seen_samples.add(key)
    if not eof:
        errors.append("no # EOF line")
    for name, fam in families.items():
        if not fam["typed"]:
            errors.append("family %s has no TYPE" % name)
        if fam["help"] is None:
            errors.append("family %s has no HELP" % name)
    return errors, len(families), n_samples


def main():
    text = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else sys.stdin.read()
    errors, nf, ns = check(text)
    for e in errors:
        print("openmetrics: " + e)
    if errors:
        return 1
    print("ok %d families %d samples" % (nf, ns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
