#!/usr/bin/env bash
# Checks that man/nncpp.1 and the tool's --help describe the same interface, so the two cannot drift:
#   - every option that `nncpp --help` or `nncpp CMD --help` lists has a .TP entry under .SH OPTIONS whose
#     tag line names it, and every option named there is listed by some --help;
#   - the commands of `nncpp --help` are the .TP entries under .SH COMMANDS;
#   - the exit statuses of `nncpp --help` ("Exit status: 0 ok, ...") are the .TP entries under .SH "EXIT STATUS";
#   - with groff installed, the page renders without a warning (groff -ww).
# Usage: tests/man/check_man.sh NNCPP_BINARY MAN_PAGE
set -euo pipefail
nncpp=$1
page=$2
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Option names of one --help text: the first word of each line that starts with '-', split at commas
# ("-o,--output TEXT" gives -o and --output).
help_options() {
  awk '/^[ \t]+-[-A-Za-z0-9]/ { n = split($1, names, ","); for (i = 1; i <= n; i++) print names[i] }'
}

# The tag lines (the line after .TP) of one .SH section of the page, with roff's \- as '-' and font escapes
# and quotes removed.
man_tags() {
  awk -v section="$1" '
    /^\.SH/ { line = $0; sub(/^\.SH[ \t]+/, "", line); gsub(/"/, "", line); in_section = (line == section); next }
    in_section && /^\.TP/ { tag = 1; next }
    in_section && tag { print; tag = 0 }
  ' "$page" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/"//g' -e 's/,/ /g'
}

man_options() { man_tags OPTIONS | tr -s ' \t' '\n' | grep -E '^--?[A-Za-z0-9]' | sort -u; }

# A list, one item a line, as one line.
words() { paste -s -d ' ' <<<"$1"; }

top_help=$("$nncpp" --help)
commands=$(printf '%s\n' "$top_help" |
  awk '/^Subcommands:/ { on = 1; next } on && /^[^ \t]/ { on = 0 } on && NF { print $1 }')
[ -n "$commands" ] || fail "no commands found in 'nncpp --help' (expected a 'Subcommands:' list)"

# Options: which --help lists each one (for the messages).
declare -A listed_by=()
while read -r name; do listed_by[$name]="nncpp --help"; done < <(printf '%s\n' "$top_help" | help_options)
for cmd in $commands; do
  while read -r name; do
    [ -n "${listed_by[$name]:-}" ] || listed_by[$name]="nncpp $cmd --help"
  done < <("$nncpp" "$cmd" --help | help_options)
done
documented=$(man_options)
for name in "${!listed_by[@]}"; do
  grep -qxF -- "$name" <<<"$documented" ||
    fail "option $name is listed by '${listed_by[$name]}' but has no entry in $page: add a .TP entry naming it under .SH OPTIONS"
done
for name in $documented; do
  [ -n "${listed_by[$name]:-}" ] ||
    fail "option $name has an entry under .SH OPTIONS in $page but no --help lists it: remove the entry or add the option"
done

# Commands.
man_commands=$(man_tags COMMANDS | awk '{ print $2 }' | sort -u)
for cmd in $commands; do
  grep -qxF -- "$cmd" <<<"$man_commands" ||
    fail "command '$cmd' is listed by 'nncpp --help' but has no .TP entry under .SH COMMANDS in $page"
done
for cmd in $man_commands; do
  grep -qxF -- "$cmd" <<<"$commands" ||
    fail "command '$cmd' has an entry under .SH COMMANDS in $page but 'nncpp --help' does not list it"
done

# Exit statuses: the numbers before each meaning in the help's "Exit status:" paragraph.
help_statuses=$(printf '%s\n' "$top_help" |
  awk '/^Exit status:/ { on = 1; sub(/^Exit status:/, "") } on && !NF { on = 0 } on { print }' |
  grep -oE '(^|[ ,])[0-9]+ [a-z]' | grep -oE '[0-9]+' | sort -u)
[ -n "$help_statuses" ] || fail "no exit statuses found in 'nncpp --help' (expected 'Exit status: 0 ok, ...')"
man_statuses=$(man_tags "EXIT STATUS" | awk '{ print $2 }' | sort -u)
[ "$help_statuses" = "$man_statuses" ] ||
  fail "exit statuses differ: 'nncpp --help' has $(words "$help_statuses"), .SH \"EXIT STATUS\" in $page has $(words "$man_statuses")"

if command -v groff >/dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff cannot render $page"
  [ -z "$warnings" ] || fail "groff warns about $page: $warnings"
else
  echo "groff not installed: rendering of $page not checked" >&2
fi

counted=$(printf '%s\n' "$documented" | grep -c .)
if ((failures)); then
  echo "$failures difference(s) between $page and --help" >&2
  exit 1
fi
echo "$page matches --help: $counted options, commands $(words "$commands"), exit statuses $(words "$help_statuses")"
