#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The three shell completions of ipmodctl (bash, zsh, fish) list the same
# rule keys as src/rule.c's key table and ipmodd.conf(5)'s RULES, and the
# same commands (aliases included) as src/ctlcli.c's command table and
# "ipmodctl help"; the bash completion, run, completes a command, a key and
# a key's value; zsh -n and fish -n parse theirs where those shells exist.
set -u
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
command -v python3 >/dev/null || { echo "1..0 # SKIP needs python3"; exit 0; }

N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		printf '# got:  %s\n# want: %s\n' "$2" "$3"
	fi
}

sc=$SRCDIR/shell-completion
# lists WHAT: one sorted line of words.
lists() {
	python3 - "$1" "$SRCDIR" <<'PY'
import re, sys
what, top = sys.argv[1], sys.argv[2]
def read(p):
    return open(top + "/" + p).read()
def block(text, start, end):
    i = text.index(start) + len(start)
    return text[i:text.index(end, i)]
def words(s):
    return " ".join(sorted(set(s.replace("\\\n", " ").split())))
if what == "keys-rule.c":
    b = block(read("src/rule.c"), "key_names[K_MAX] = {", "};")
    print(words(" ".join(re.findall(r'\] = "([^"]+)"', b))))
elif what == "keys-man":
    b = block(read("man/ipmodd.conf.5"), ".SH RULES", "\n.SH ")
    keys = []
    for m in re.finditer(r'^\.TP\n\.BR? (.*)$', b, re.M):
        line = m.group(1)
        if line.startswith("rules "):
            continue
        head = line.split('" = ')[0]
        keys += [k.replace("\\-", "-") for k in re.split(r'\s*"?,\s*"?\s*', head) if k]
    print(words(" ".join(keys)))
elif what == "keys-bash":
    print(words(block(read("shell-completion/ipmodctl"), '_ipmodctl_keys="', '"')))
elif what == "keys-zsh":
    print(words(block(read("shell-completion/_ipmodctl"), "_ipmodctl_keys=(", ")")))
elif what == "keys-fish":
    print(words(block(read("shell-completion/ipmodctl.fish"), "set -l __ipmodctl_keys ", "\nset ")))
elif what == "commands-ctlcli.c":
    t = re.findall(r'\{ "([a-z]+)", (?:NULL|"([a-z]+)"), CTLCLI_', read("src/ctlcli.c"))
    print(words(" ".join(a + " " + b for a, b in t)))
elif what == "commands-bash":
    print(words(block(read("shell-completion/ipmodctl"), '_ipmodctl_commands="', '"')))
elif what == "commands-zsh":
    print(words(block(read("shell-completion/_ipmodctl"), "_ipmodctl_commands=(", ")")))
elif what == "commands-fish":
    print(words(block(read("shell-completion/ipmodctl.fish"), "set -l __ipmodctl_commands ", "\n\n")))
PY
}

keys=$(lists keys-rule.c)
[ -n "$keys" ] && ok "src/rule.c's key table: $(wc -w <<<"$keys") keys" || not_ok "src/rule.c's key table read"
check_eq "ipmodd.conf(5) RULES documents the keys of src/rule.c" "$(lists keys-man)" "$keys"
for sh in bash zsh fish; do
	check_eq "the $sh completion lists the keys of src/rule.c" "$(lists keys-$sh)" "$keys"
done

cmds=$(lists commands-ctlcli.c)
help=$("$IPMODCTL" help 2>&1 | sed -n '/^Commands:/,/^$/s/^  \([a-z]\+\) .*/\1/p' | sort | tr '\n' ' ')
aliases=$(python3 -c 'import sys; a=set(sys.argv[1].split()); b=set(sys.argv[2].split()); print(" ".join(sorted(a-b)))' "$cmds" "$help")
check_eq "ipmodctl help lists src/ctlcli.c's commands (besides the aliases: $aliases)" \
	"$(python3 -c 'import sys; print(set(sys.argv[1].split()) <= set(sys.argv[2].split()) and len(sys.argv[1].split()) > 0)' "$help" "$cmds")" True
for sh in bash zsh fish; do
	check_eq "the $sh completion lists the commands and aliases of src/ctlcli.c" "$(lists commands-$sh)" "$cmds"
done

# bash, run: COMP_LINE up to the cursor, the reply as one sorted line.
bash_complete() {
	bash -c '
		compopt() { :; }
		. "$1"
		COMP_LINE=$2
		COMP_POINT=${#COMP_LINE}
		read -ra COMP_WORDS <<<"$COMP_LINE"
		[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		# bash splits at "=", as COMP_WORDBREAKS has it.
		last=${COMP_WORDS[-1]}
		if [[ $last == *=* ]]; then
			COMP_WORDS[-1]=${last%%=*}
			COMP_WORDS+=("=" "${last#*=}")
		fi
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		# No ipmodctl to ask for rule names: PATH empty while completing.
		p=$PATH PATH=/nonexistent
		_ipmodctl
		PATH=$p
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
	' _ "$sc/ipmodctl" "$1"
}
check_eq "bash: 'ipmodctl rel' completes reload" "$(bash_complete 'ipmodctl rel')" "reload "
check_eq "bash: 'ipmodctl add pro' completes proto= and probability=" \
	"$(bash_complete 'ipmodctl add pro')" "probability= proto= "
check_eq "bash: 'ipmodctl add proto=ic' completes the value (after bash's '=' break)" \
	"$(bash_complete 'ipmodctl add proto=ic')" "icmp icmpv6 "
check_eq "bash: 'ipmodctl trace ru' completes rule=" "$(bash_complete 'ipmodctl trace ru')" "rule= "

if command -v zsh >/dev/null; then
	if zsh -n "$sc/_ipmodctl"; then ok "zsh -n parses _ipmodctl"; else not_ok "zsh -n parses _ipmodctl"; fi
else
	ok "zsh -n parses _ipmodctl # SKIP no zsh here"
fi
if command -v fish >/dev/null; then
	if fish -n "$sc/ipmodctl.fish"; then ok "fish -n parses ipmodctl.fish"; else not_ok "fish -n parses ipmodctl.fish"; fi
else
	ok "fish -n parses ipmodctl.fish # SKIP no fish here"
fi

echo "1..$N"
[ "$FAILED" -eq 0 ]
