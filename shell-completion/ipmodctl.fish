# SPDX-License-Identifier: GPL-2.0-or-later
# fish completion for ipmodctl(8).  The rule keys, the commands and the
# keys' named values come from ipmodctl itself ("ipmodctl help keys", "help
# commands", "help values KEY": the tables of src/rule.c and src/ctlcli.c),
# as in the bash and zsh completions; tests/misc/completion.sh runs the three.

# Keys and commands: asked once a shell session (they ship with ipmodctl).
function __ipmodctl_keys
	set -q __ipmodctl_keys_cache[1]; or set -g __ipmodctl_keys_cache (ipmodctl help keys 2>/dev/null)
	printf '%s\n' $__ipmodctl_keys_cache
end
function __ipmodctl_commands
	set -q __ipmodctl_commands_cache[1]
	or set -g __ipmodctl_commands_cache (ipmodctl help commands 2>/dev/null)
	printf '%s\n' $__ipmodctl_commands_cache
end

# The packet fields of explain.
set -l __ipmodctl_fields family proto src dst sport dport flags icmp-type icmp-code ttl len dscp \
	direction

# Values of the keys that take names, one a line; explain's flags are tcp-flags'.
function __ipmodctl_values
	switch $argv[1]
		case flags
			ipmodctl help values tcp-flags 2>/dev/null
		case expire
			printf '%s\n' 30s 5m 1h
		case rule
			__ipmodctl_rule_names
		case '*'
			ipmodctl help values $argv[1] 2>/dev/null
	end
end

# The socket named on the command line so far, if any.
function __ipmodctl_socket
	set -l words (commandline -opc)
	set -l i 2
	while test $i -le (count $words)
		switch $words[$i]
			case -s --socket
				set i (math $i + 1)
				test $i -le (count $words); and echo $words[$i]
			case '--socket=*'
				string replace -- --socket= '' $words[$i]
		end
		set i (math $i + 1)
	end
end

# The running rules' names; nothing when ipmodd cannot be asked.
function __ipmodctl_rule_names
	set -l sock (__ipmodctl_socket)
	set -l opt
	test -n "$sock"; and set opt -s $sock
	# Names are letters, digits, '_', '.' and '-': no JSON escapes to undo.
	ipmodctl $opt rules --json 2>/dev/null | string match -ar '"name":"[^"]*"' |
		string replace -r '^"name":"(.*)"$' '$1'
end

# The command word (the first that is not an option or an option's value).
function __ipmodctl_command
	set -l words (commandline -opc)
	set -l i 2
	while test $i -le (count $words)
		switch $words[$i]
			case -s --socket
				set i (math $i + 1)
			case '-*'
			case '*'
				echo $words[$i]
				return 0
		end
		set i (math $i + 1)
	end
	return 1
end

# Arguments after the command word.
function __ipmodctl_nargs
	set -l words (commandline -opc)
	set -l n 0
	set -l seen 0
	set -l i 2
	while test $i -le (count $words)
		switch $words[$i]
			case -s --socket
				set i (math $i + 1)
			case '-*'
			case '*'
				if test $seen = 1
					set n (math $n + 1)
				end
				set seen 1
		end
		set i (math $i + 1)
	end
	echo $n
end

# key=value words: "key=" for each key, or KEY=value for the key being typed.
function __ipmodctl_kv
	set -l tok (commandline -ct)
	if string match -q -- '*=*' $tok
		set -l key (string split -m1 = -- $tok)[1]
		contains -- $key $argv; or return 0
		for v in (__ipmodctl_values $key)
			test -n "$v"; and echo "$key=$v"
		end
	else
		for k in $argv
			echo "$k="
		end
	end
end

complete -c ipmodctl -f
complete -c ipmodctl -s s -l socket -r -F -d 'control socket'
complete -c ipmodctl -l json -d 'print replies as JSON'
complete -c ipmodctl -s V -l version -d 'print the version and exit'
complete -c ipmodctl -s h -l help -d 'print the help and exit'
complete -c ipmodctl -n 'not __ipmodctl_command' -a '(__ipmodctl_commands)'

complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = add; and test "$(__ipmodctl_nargs)" = 0' \
	-a 'at before after'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = add' -a '(__ipmodctl_kv (__ipmodctl_keys))'
complete -c ipmodctl -n 'contains -- "$(__ipmodctl_command)" del delete replace; and test "$(__ipmodctl_nargs)" = 0' \
	-a '(__ipmodctl_rule_names)'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = replace; and test "$(__ipmodctl_nargs)" -gt 0' \
	-a '(__ipmodctl_kv (__ipmodctl_keys))'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = trace' -a '(__ipmodctl_kv (__ipmodctl_keys) rule)'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = capture' -a '(__ipmodctl_kv rule)'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = explain' -a "(__ipmodctl_kv $__ipmodctl_fields)"
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = capture' -s c -l count -x -d 'stop after N packets'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = capture' -s w -l write -r -F -d 'pcapng file'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = capture' -l when -x -a 'before after both'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = capture' -l snaplen -x -d 'bytes per packet'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = help; and test "$(__ipmodctl_nargs)" = 0' \
	-a '(__ipmodctl_commands) keys commands values'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = help; and test "$(__ipmodctl_nargs)" = 1; and contains -- values (commandline -opc)' \
	-a '(__ipmodctl_keys)'
complete -c ipmodctl -n 'test "$(__ipmodctl_command)" = help; and test "$(__ipmodctl_nargs)" = 1; and contains -- keys (commandline -opc)' \
	-a 'long'
