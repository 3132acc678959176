#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The config file's vocabulary has one source, src/config.c's config_keys[]
# (a row per key: name, parser, range, restart, equality; test-config checks
# each row parses and reloads as it says).  Here: ipmodd.conf(5) documents
# every row in its section ("section.key" under .SH SECTION, as a .TP item or
# as "section = { key = ...").  A key added without its paragraph fails.
set -u
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
command -v python3 >/dev/null || { echo "1..0 # SKIP needs python3"; exit 0; }

python3 - "$SRCDIR" <<'PY'
import re, sys
top = sys.argv[1]
c = open(top + "/src/config.c").read()
i = c.index("static const struct config_key config_keys[] = {")
rows = re.findall(r'(?:\.name = |_KEY\()"([^"]+)"', c[i:c.index("\n};", i)])
man = open(top + "/man/ipmodd.conf.5").read()
secs = {m.group(1): m.group(2) for m in
        re.finditer(r'^\.SH (\S+)\n(.*?)(?=^\.SH |\Z)', man, re.M | re.S)}
n = 0
def ok(cond, what):
    global n
    n += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))
ok(len(rows) > 15, "src/config.c's config_keys[]: %d rows" % len(rows))
for name in rows:
    if "." in name:
        sec, key = name.split(".", 1)
        body = secs.get(sec.upper(), "")
        k = re.escape(key).replace("\\-", r"\\?-")
        found = re.search(r'^\.TP\n\.BR? "?' + k + r'\b', body, re.M) or \
                re.search(r'^\.BR? "?' + re.escape(sec) + r' = \{ ' + k + r' =', body, re.M)
        ok(found, "ipmodd.conf(5) .SH %s documents %s" % (sec.upper(), name))
    else:
        ok(name.upper() in secs, "ipmodd.conf(5) has a section for %s" % name)
print("1..%d" % n)
PY
