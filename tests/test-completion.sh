#!/bin/bash
# keyadm's bash completion, asked the way bash asks it: COMP_LINE,
# COMP_POINT, COMP_WORDS and COMP_CWORD set for a partial command line, the
# function that `complete -p keyadm` names called, COMPREPLY read back.
#
# Every command that `keyadm --help` lists is reached word by word, and
# completes exactly the options its usage line (`keyadm CMD --help`) shows,
# plus the global ones: the completion, dispatch and --help share one
# table, and this fails when they part.
#
# By default it tests the build tree (data/bash-completion/keyadm and
# keyadm/keyadm). With VK_COMPLETION_INSTALLED=1 it tests an installed
# keyadm: bash-completion's loader finds the file on its own, as in a login
# shell (tests/test-packages.sh).
set -u
top_srcdir=${abs_top_srcdir:-$(cd "${srcdir:-.}/.." && pwd)}
top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
passed=0
failed=0

check() {
	if [ "$2" = "$3" ]; then
		passed=$((passed + 1))
		[ -n "${VERBOSE:-}" ] && echo "PASS: $1"
	else
		echo "FAIL: $1"
		echo "  expected: $3"
		echo "  got:      $2"
		failed=$((failed + 1))
	fi
}

if [ "${VK_COMPLETION_INSTALLED:-}" = 1 ]; then
	prog=$(PATH=$PATH:/usr/sbin:/sbin command -v keyadm) || { echo "FAIL: no keyadm installed"; exit 99; }
	# shellcheck disable=SC1091
	. /usr/share/bash-completion/bash_completion
	complete -p keyadm >/dev/null 2>&1 && { echo "FAIL: completion loaded before asked for"; exit 1; }
	_completion_loader keyadm
	where="installed $prog, $(ls /usr/share/bash-completion/completions/keyadm)"
else
	prog=$top_builddir/keyadm/keyadm
	[ -x "$prog" ] || { echo "FAIL: build first ($prog)"; exit 99; }
	# shellcheck source=../data/bash-completion/keyadm
	. "$top_srcdir/data/bash-completion/keyadm"
	complete -F _keyadm "$prog"
	where="build tree"
fi
func=$(complete -p keyadm 2>/dev/null | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$func" ] || { echo "FAIL: no completion function for keyadm"; exit 1; }

# candidates LINE: the sorted candidates, space-separated, with the cursor at the end of LINE.
candidates() {
	COMP_LINE="$prog $1"
	COMP_POINT=${#COMP_LINE}
	read -r -a COMP_WORDS <<<"$COMP_LINE"
	[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	"$func" keyadm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

sorted() {
	tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

globals="--config --db --help --json --version"

# The commands --help lists: "  NAME<padding to 28> help".
commands=$("$prog" --help | sed -n '/^Commands:/,/^$/p' | sed '1d;/^$/d' |
	awk '{ n = substr($0, 3, 28); r = substr($0, 31); sub(/ .*/, "", r);
	       if (substr($0, 31, 1) != " ") n = n r; sub(/ +$/, "", n); print n }')
[ -n "$commands" ] || { echo "FAIL: keyadm --help lists no command"; exit 1; }

nouns=$(echo "$commands" | awk '{ print $1 }' | sorted)
check "a fresh word: every noun of --help" "$(candidates '')" "$nouns"
check "after a global option, the nouns again" "$(candidates '--json ')" "$nouns"

while IFS= read -r cmd; do
	# shellcheck disable=SC2086 # the words of the command's name
	set -- $cmd
	typed=
	missed=
	for word in "$@"; do
		case " $(candidates "$typed") " in
		*" $word "*) ;;
		*) missed="$missed \"$typed\" did not offer $word;" ;;
		esac
		typed="$typed$word "
	done
	check "$cmd: reached word by word" "${missed:-none missed}" "none missed"
	# shellcheck disable=SC2086
	usage=$("$prog" $cmd --help | sed -n '1s/^Usage: keyadm //p')
	expected=$( (echo "${usage#"$cmd"}" | grep -o -- '--[a-z][a-z-]*'; echo "$globals") | sorted)
	check "$cmd: the options of its usage line, and the global ones" \
		"$(candidates "$cmd ")" "$expected"
done <<<"$commands"

check "a partial noun" "$(candidates 'ke')" "keys"
check "a partial verb" "$(candidates 'keys ro')" "rotate"
check "api-key once, among a noun's verbs" \
	"$(candidates 'machines ' | tr ' ' '\n' | grep -c '^api-key$')" "1"
check "after api-key, create" "$(candidates 'machines api-key ')" "create"
check "a partial option" "$(candidates 'keys rotate --key-id x --g')" "--grace"
check "an option given is not offered again" \
	"$(candidates 'keys list --search x --')" "--config --db --expiring --help --json --org-id --unused-since --version"
check "--user may be repeated" \
	"$(candidates 'machines api-key create --user a --us')" "--user"
check "roles for --role" "$(candidates 'machines api-key create --role ')" "operator owner viewer"
check "roles for --role=o" "$(candidates 'keys grant --role=o')" "operator owner"
check "files for --db" "$(candidates '--db /et')" "/etc"
check "users for --user" "$(candidates 'keys add-user --user roo')" "root"
check "nothing for an ID" "$(candidates 'keys show --key-id ')" ""
check "options before the command: only the global ones" "$(candidates '--')" "$globals"
check "no word after a whole command but options" "$(candidates 'keys list x')" ""

echo "completion ($where): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
