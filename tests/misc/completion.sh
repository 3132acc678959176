#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The rule vocabulary has one source, src/rule.c's table (RULE_KEYS), and the commands
# one, src/ctlcli.c's: "ipmodctl help keys", "help commands" and "help values
# KEY" print them, ipmodd.conf(5) RULES documents every key, and the three
# shell completions (bash, zsh, fish) ask ipmodctl for them at completion
# time (no copies of their own).  Each completion is run: bash directly, zsh
# through compadd/compset stand-ins and then under compinit on a zpty with
# TAB typed, fish with "complete -C"; an ipmodctl
# that adds a key of its own to "help keys" shows where the lists come from.
set -u
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
command -v python3 >/dev/null || { echo "1..0 # SKIP needs python3"; exit 0; }
case $IPMODCTL in /*) ;; *) IPMODCTL=$PWD/$IPMODCTL ;; esac

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
sorted() { tr -s ' \n\t' '\n' | sed '/^$/d' | sort -u | tr '\n' ' '; }

sc=$SRCDIR/shell-completion
# From the sources, WHAT: one line of words (sorted unless it says "order").
lists() {
	python3 - "$SRCDIR" "$@" <<'PY'
import re, sys
top, what = sys.argv[1], sys.argv[2]
def read(p):
    return open(top + "/" + p).read()
def block(text, start, end):
    i = text.index(start) + len(start)
    return text[i:text.index(end, i)]
def words(l):
    return " ".join(sorted(set(l)))
rule = read("src/rule.c")
def names(table):
    return re.findall(r'"([^"]+)"', block(rule, table, "};"))
if what == "keys-rule.c":
    # The rows of RULE_KEYS: X(ID, "name", ...
    print(" ".join(re.findall(r'^\s*X\([A-Z0-9_]+, "([^"]+)"', block(rule, "#define RULE_KEYS(X)", "\n\n"), re.M)))
elif what == "keys-man":
    man = read("man/ipmodd.conf.5")
    # RULES, and SURGERY for the packet surgery keys (issue 15)
    b = block(man, ".SH RULES", "\n.SH ") + block(man, ".SH SURGERY", "\n.SH ")
    keys = []
    for m in re.finditer(r'^\.TP\n\.BR? (.*)$', b, re.M):
        line = m.group(1)
        if line.startswith("rules "):
            continue
        # As rendered: no fonts, no quotes; then every "k1, k2 = " on the line.
        t = re.sub(r'\\f[A-Z]|\\\(dq|"', "", line).replace("\\-", "-")
        for g in re.findall(r'(?<![\w-])((?:[a-z][a-z0-9-]*\s*,\s*)*[a-z][a-z0-9-]*)\s*=', t):
            keys += [k.strip() for k in g.split(",")]
    print(words(keys))
elif what == "values":
    t = sys.argv[3]
    if t == "icmp":
        v4, v6 = names("icmp4_names[] = {"), names("icmp6_names[] = {")
        print(" ".join(v4 + [n for n in v6 if n not in v4]))
    else:
        print(" ".join(names(t)))
elif what == "commands-ctlcli.c":
    t = re.findall(r'\{ \.name = "([a-z]+)",(?: \.alias = "([a-z]+)",)? \.cmd = CTLCLI_',
                   read("src/ctlcli.c"))
    print(words(" ".join(a + " " + b for a, b in t).split()))
PY
}

# ---- ipmodctl help keys / commands / values against the sources -------------

keys_order=$(lists keys-rule.c)
keys=$(sorted <<<"$keys_order")
[ "$(wc -w <<<"$keys")" -gt 40 ] && ok "src/rule.c's key table: $(wc -w <<<"$keys") keys" ||
	not_ok "src/rule.c's key table read ($keys)"
check_eq "ipmodctl help keys: src/rule.c's keys, in its order" \
	"$("$IPMODCTL" help keys | tr '\n' ' ')" "$keys_order "
check_eq "ipmodd.conf(5) RULES documents the keys of src/rule.c" "$(lists keys-man)" "${keys% }"
# help keys long: the same rows, each with a kind, a fast-path word and a value text.
long=$("$IPMODCTL" help keys long)
check_eq "help keys long: a header, then the keys of help keys in order" \
	"$(awk 'NR > 1 { print $1 }' <<<"$long" | tr '\n' ' ')" "$keys_order "
check_eq "help keys long: every row has a known kind and fast-path word and a value text" \
	"$(awk 'NR > 1 && !($2 ~ /^(rule|match|action|impair)$/ && $3 ~ /^(yes|no|partial)$/ && NF > 3)' <<<"$long")" ""

cmds=$(lists commands-ctlcli.c)
check_eq "ipmodctl help commands: src/ctlcli.c's commands and aliases" \
	"$("$IPMODCTL" help commands | sorted)" "$cmds "
help=$("$IPMODCTL" help 2>&1 | sed -n '/^Commands:/,/^$/s/^  \([a-z]\+\) .*/\1/p' | sorted)
check_eq "ipmodctl help lists src/ctlcli.c's commands (without aliases)" \
	"$(python3 -c 'import sys; print(set(sys.argv[1].split()) <= set(sys.argv[2].split()) and len(sys.argv[1].split()) > 10)' "$help" "$cmds")" True

for kt in "proto proto_names[] = {" "verdict verdict_names[] = {" "reject-with reject_names[] = {" \
	"distribution dist_names[] = {" "aqm aqm_names[] = {" "set-ecn ecn_names[] = {" \
	"dscp dscp_names[] = {" "set-dscp dscp_names[] = {" \
	"tcp-flags tcp_flag_names[8] = {" "family family_names[2] = {" \
	"loss-ecn bool_names[2] = {" "direction direction_names[] = {" "icmp-type icmp"; do
	k=${kt%% *}
	want=$(lists values "${kt#* }")
	got=$("$IPMODCTL" help values "$k" | tr '\n' ' ')
	if [ -n "$want" ] && [ "$got" = "$want " ]; then
		ok "ipmodctl help values $k: rule.c's names ($(wc -w <<<"$want"))"
	else
		not_ok "ipmodctl help values $k: rule.c's names"
		printf '# got:  %s\n# want: %s\n' "$got" "$want"
	fi
done
out=$("$IPMODCTL" help values delay 2>&1)
check_eq "ipmodctl help values delay: nothing, status 0" "$?:$out" "0:"
"$IPMODCTL" help values no-such-key >/dev/null 2>&1
check_eq "ipmodctl help values no-such-key: a usage error" "$?" 2

# ---- no copies in the completions --------------------------------------------

# Words only a hand-written key, value or command list would hold (the
# explain fields, the option lists and the case labels stay; "version" is
# in the option lists as --version).
copies="probability codel-interval cell-overhead reorder-corr queue-bytes tcp-reset
	paretonormal droptail not-ect af41 nd-router-advert icmpv6 reload reset save monitor"
for f in ipmodctl _ipmodctl ipmodctl.fish; do
	found=$(for w in $copies; do grep -qw -- "$w" "$sc/$f" && echo "$w"; done | tr '\n' ' ')
	check_eq "$f holds no copy of the key, value or command lists" "$found" ""
	if grep -q "ipmodctl help keys" "$sc/$f" && grep -q "ipmodctl help commands" "$sc/$f" &&
		grep -q "ipmodctl help values" "$sc/$f"; then
		ok "$f asks ipmodctl help keys / commands / values"
	else
		not_ok "$f asks ipmodctl help keys / commands / values"
	fi
done

# ---- the completions, run -------------------------------------------------------

# The ipmodctl the completions find first in PATH: the built one for help,
# with one key more ("zz-probe") in help keys; anything else (the running
# rules' names) fails as without a daemon.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ipmodctl" <<EOF
#!/bin/sh
[ "\$1" = help ] || exit 1
"$IPMODCTL" "\$@" || exit
[ "\$*" = "help keys" ] && echo zz-probe
exit 0
EOF
chmod +x "$tmp/ipmodctl"
export PATH="$tmp:$PATH"

# bash: COMP_LINE up to the cursor, the reply as one sorted line.
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
		_ipmodctl
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$sc/ipmodctl" "$1" | sorted
}

# zsh: the completion file sourced as compinit's autoload runs it, with
# compadd, compset and _files standing in for zsh's completion system.
zsh_complete() {
	zsh -f -c '
		compadd() {
			local -a w; local arr=0 suf="" x
			while (( $# )); do
				case $1 in
				-a) arr=1 ;;
				-S) suf=$2; shift ;;
				-q) ;;
				*) if (( arr )); then w+=("${(@P)1}"); else w+=("$1"); fi ;;
				esac
				shift
			done
			for x in $w; do [[ $x == ${PREFIX}* ]] && print -r -- "$IPREFIX$x$suf"; done
			return 0
		}
		compset() {
			[[ $1 == -P && $PREFIX == *=* ]] || return 1
			IPREFIX=${PREFIX%%=*}=; PREFIX=${PREFIX#*=}
		}
		_files() { print -r -- "(files)"; }
		line=$2
		words=(${=line}); [[ $line == *" " ]] && words+=("")
		CURRENT=$#words PREFIX=$words[CURRENT] IPREFIX=""
		source $1
	' _ "$sc/_ipmodctl" "$1" | sorted
}

fish_complete() {
	fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$sc/ipmodctl.fish" "$1" |
		cut -f1 | sorted
}

for sh in bash zsh fish; do
	if ! command -v $sh >/dev/null; then
		ok "$sh: the completion runs # SKIP no $sh here"
		continue
	fi
	case $sh in
	zsh) zsh -n "$sc/_ipmodctl" && ok "zsh -n parses _ipmodctl" || not_ok "zsh -n parses _ipmodctl" ;;
	fish) fish -n "$sc/ipmodctl.fish" && ok "fish -n parses ipmodctl.fish" ||
		not_ok "fish -n parses ipmodctl.fish" ;;
	esac
	# zsh and fish complete key=value words whole; bash only after the '='.
	v=""
	[ $sh = bash ] || v="proto="
	a=""
	[ $sh = bash ] || a="aqm="
	check_eq "$sh: 'ipmodctl rel' completes reload" "$(${sh}_complete 'ipmodctl rel')" "reload "
	check_eq "$sh: 'ipmodctl de' completes del and delete" "$(${sh}_complete 'ipmodctl de')" "del delete "
	check_eq "$sh: 'ipmodctl add pro' completes proto= and probability=" \
		"$(${sh}_complete 'ipmodctl add pro')" "probability= proto= "
	check_eq "$sh: 'ipmodctl add proto=ic' completes the value from help values" \
		"$(${sh}_complete 'ipmodctl add proto=ic')" "${v}icmp ${v}icmpv6 "
	check_eq "$sh: 'ipmodctl add aqm=' completes droptail and codel" \
		"$(${sh}_complete 'ipmodctl add aqm=')" "${a}codel ${a}droptail "
	check_eq "$sh: 'ipmodctl trace ru' completes rule=" "$(${sh}_complete 'ipmodctl trace ru')" "rule= "
	check_eq "$sh: 'ipmodctl add zz' completes the key only ipmodctl's help keys has" \
		"$(${sh}_complete 'ipmodctl add zz')" "zz-probe= "
	check_eq "$sh: 'ipmodctl help values loss' completes keys" \
		"$(${sh}_complete 'ipmodctl help values loss')" "loss loss-corr loss-ecn "
done

# zsh again, its own completion system this time: compinit in an interactive
# zsh on a pseudo-terminal (zpty), TAB typed; "BUFFER|listing" after it.
if command -v zsh >/dev/null && zsh -fc 'zmodload zsh/zpty' 2>/dev/null; then
	cat >"$tmp/zpty.zsh" <<'EOF'
setopt extendedglob
zmodload zsh/zpty || exit 1
dir=$1 buf=$2; shift 2
zpty -b z 'TERM=dumb PS1="%% " zsh -f -i'
zpty -w z "fpath=($dir \$fpath); autoload -U compinit; compinit -u -D -d $buf.zcompdump; unsetopt beep; show() { print -r -- \"\$BUFFER\" >$buf; }; zle -N show; bindkey '^X' show; PS1='> '; print RE''ADY"
zpty -r z junk '*READY*' || exit 1
for l; do
	rm -f $buf
	# TAB, then ^X writes the line as completed.
	zpty -w -n z "$l"$'\t\C-x'
	for i in {1..100}; do [[ -s $buf ]] && break; sleep 0.1; done
	sleep 0.2
	out=""
	while zpty -r -t z chunk; do out+=$chunk; done
	out=${out//$'\r'/}
	out=${out//$'\e'\[[0-9?;]#[a-zA-Z]/}
	list=()
	for ln in ${(f)out}; do
		[[ $ln == *ipmodctl* || $ln == [%\>\#]* ]] && continue
		list+=(${=ln})
	done
	print -r -- "$l|$(<$buf)|${(oj: :)list}"
	zpty -w -n z $'\C-u'
done
zpty -d z
EOF
	res=$(timeout 120 zsh -f "$tmp/zpty.zsh" "$sc" "$tmp/buffer" "ipmodctl rel" "ipmodctl add pro" \
		"ipmodctl add proto=ic" "ipmodctl add aqm=d" "ipmodctl trace ru" "ipmodctl add zz" \
		"ipmodctl help values loss-e" 2>&1)
	zpty_eq() {
		check_eq "zsh (compinit, TAB): '$1' gives '$2'" \
			"$(grep -F -- "$1|" <<<"$res" | head -1 | cut -d'|' -f2-)" "$2"
	}
	zpty_eq "ipmodctl rel" "ipmodctl reload |"
	zpty_eq "ipmodctl add pro" "ipmodctl add pro|probability proto"
	zpty_eq "ipmodctl add proto=ic" "ipmodctl add proto=icmp|"
	zpty_eq "ipmodctl add aqm=d" "ipmodctl add aqm=droptail |"
	zpty_eq "ipmodctl trace ru" "ipmodctl trace rule=|"
	zpty_eq "ipmodctl add zz" "ipmodctl add zz-probe=|"
	zpty_eq "ipmodctl help values loss-e" "ipmodctl help values loss-ecn |"
else
	ok "zsh (compinit, TAB) # SKIP no zsh or no zsh/zpty here"
fi

# compinit once replaced the machine's /dev/null with a file (-d /dev/null).
if [ -c /dev/null ]; then ok "/dev/null is still a character device"; else not_ok "/dev/null is still a character device"; fi

echo "1..$N"
[ "$FAILED" -eq 0 ]
