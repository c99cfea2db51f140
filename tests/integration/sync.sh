#!/usr/bin/env bash
# porthole sync: a manifest applied, unchanged files only STATed, changed
# ones downloaded again with their hook run, modes fixed, hook failures and
# missing files reported, --dry-run, and bad manifests refused with the
# line number before any file is touched.
. "$(dirname "$0")/lib.sh"

L=$T/root			# the guest's file system, as far as sync goes
MAN=$T/sync.manifest
HOOKS=$T/hooks
mkdir -p "$L/etc" "$L/opt/my dir" "$HOOKS"

step "create the repository"
mkdir -p "$REPO/etc" "$REPO/tools"
printf 'a = 1\n' >"$REPO/etc/a.conf"
printf 'b = 1\n' >"$REPO/etc/b.conf"
mkrand "$REPO/tools/tool.bin" 3000000	# several DATA frames
chmod 0644 "$REPO/tools/tool.bin"

# Hooks append to a log per file, so a test can count how often each ran.
cat >"$MAN" <<EOF
# Files this guest keeps in sync with the host.

/etc/a.conf  $L/etc/a.conf  0640  echo "\$PORTHOLE_SYNC_LOCAL" >>$HOOKS/a.log
	etc//./b.conf	$L/etc/b.conf	600	echo ran >>$HOOKS/b.log; echo hook-to-stdout
   # an indented comment
/tools/tool.bin "$L/opt/my dir/tool.bin" 0755
EOF

count_ops() {	# op path: how many log lines so far
	log_ops "$1" | grep -cF -- "path=$2 " || true
}
hook_runs() {
	[[ -f $HOOKS/$1.log ]] && wc -l <"$HOOKS/$1.log" || echo 0
}

daemon_start

step "first run: every file is created with its content and mode"
ok ph sync "$MAN"
assert_same_file "$L/etc/a.conf" "$REPO/etc/a.conf"
assert_same_file "$L/etc/b.conf" "$REPO/etc/b.conf"
assert_same_file "$L/opt/my dir/tool.bin" "$REPO/tools/tool.bin"
assert_eq "$(stat -c %a "$L/etc/a.conf")" 640 "mode of a.conf"
assert_eq "$(stat -c %a "$L/etc/b.conf")" 600 "mode of b.conf"
assert_eq "$(stat -c %a "$L/opt/my dir/tool.bin")" 755 "mode of tool.bin"
assert_out_has "updated $L/etc/a.conf (hook ok)"
assert_out_has "updated $L/etc/b.conf (hook ok)"
assert_out_has "updated $L/opt/my dir/tool.bin"
assert_eq "$(wc -l <"$OUT")" 3 "summary lines on stdout"
assert_file_lacks "$OUT" "hook-to-stdout" "a hook's output must not mix with the summary"
assert_err_has "hook-to-stdout"
assert_eq "$(hook_runs a)" 1 "a.conf's hook runs"
assert_eq "$(hook_runs b)" 1 "b.conf's hook runs"
assert_eq "$(cat "$HOOKS/a.log")" "$L/etc/a.conf" "PORTHOLE_SYNC_LOCAL in the hook"
assert_no_file "$L/etc/a.conf.part"
assert_eq "$(count_ops GET /etc/a.conf)" 1 "GETs of a.conf"
assert_eq "$(count_ops GET /tools/tool.bin)" 1 "GETs of tool.bin"

step "second run: nothing downloaded, only STATed, no hook"
gets=$(log_ops GET | wc -l)
stats=$(log_ops STAT | wc -l)
ok ph sync "$MAN"
assert_out_has "unchanged $L/etc/a.conf"
assert_out_has "unchanged $L/etc/b.conf"
assert_out_has "unchanged $L/opt/my dir/tool.bin"
assert_file_lacks "$OUT" "updated"
assert_eq "$(log_ops GET | wc -l)" "$gets" "GET lines after an unchanged run"
assert_eq "$(log_ops STAT | wc -l)" $((stats + 3)) "STAT lines after an unchanged run"
assert_eq "$(hook_runs a)" 1 "a.conf's hook runs"
assert_eq "$(hook_runs b)" 1 "b.conf's hook runs"

step "-q prints nothing when nothing fails"
ok ph sync -q "$MAN"
[[ ! -s $OUT ]] || fail "-q printed a summary$(last_run)"

step "a file changed on the host is downloaded again; a wrong mode is fixed"
printf 'b = 2\n' >"$REPO/etc/b.conf"
chmod 0666 "$L/etc/a.conf"
gets=$(log_ops GET | wc -l)
ok ph sync "$MAN"
assert_same_file "$L/etc/b.conf" "$REPO/etc/b.conf"
assert_eq "$(stat -c %a "$L/etc/b.conf")" 600 "mode of the updated b.conf"
assert_eq "$(stat -c %a "$L/etc/a.conf")" 640 "mode of a.conf, fixed"
assert_out_has "updated $L/etc/b.conf (hook ok)"
assert_out_has "unchanged $L/etc/a.conf (mode set to 0640)"
assert_out_has "unchanged $L/opt/my dir/tool.bin"
assert_eq "$(log_ops GET | wc -l)" $((gets + 1)) "GET lines after one change"
assert_eq "$(count_ops GET /etc/b.conf)" 2 "GETs of b.conf"
assert_eq "$(hook_runs a)" 1 "the unchanged file's hook runs"
assert_eq "$(hook_runs b)" 2 "the changed file's hook runs"

step "a local file edited in the guest is put back"
echo "local edit" >>"$L/etc/a.conf"
ok ph sync "$MAN"
assert_same_file "$L/etc/a.conf" "$REPO/etc/a.conf"
assert_out_has "updated $L/etc/a.conf (hook ok)"
assert_eq "$(hook_runs a)" 2 "a.conf's hook runs"

step "--dry-run changes nothing"
printf 'a = 3\n' >"$REPO/etc/a.conf"
rm -f "$L/opt/my dir/tool.bin"
chmod 0644 "$L/etc/b.conf"
cp "$L/etc/a.conf" "$T/a.before"
gets=$(log_ops GET | wc -l)
ok ph sync --dry-run "$MAN"
assert_out_has "would update $L/etc/a.conf (and run its hook)"
assert_out_has "unchanged $L/etc/b.conf (would set mode 0600)"
assert_out_has "would update $L/opt/my dir/tool.bin"
assert_same_file "$L/etc/a.conf" "$T/a.before"
assert_no_file "$L/opt/my dir/tool.bin"
assert_eq "$(stat -c %a "$L/etc/b.conf")" 644 "mode after --dry-run"
assert_eq "$(log_ops GET | wc -l)" "$gets" "GET lines after --dry-run"
assert_eq "$(hook_runs a)" 2 "hooks after --dry-run"
ok ph sync -q "$MAN"
assert_same_file "$L/etc/a.conf" "$REPO/etc/a.conf"
assert_same_file "$L/opt/my dir/tool.bin" "$REPO/tools/tool.bin"
assert_eq "$(stat -c %a "$L/etc/b.conf")" 600 "mode after the real run"
assert_eq "$(hook_runs a)" 3 "a.conf's hook after the real run"

step "a failing hook and a missing file: reported, the others still done"
printf 'c\n' >"$REPO/etc/c.conf"
printf 'd\n' >"$REPO/etc/d.conf"
cat >"$T/fail.manifest" <<EOF
/etc/gone.conf $L/etc/gone.conf 0644 echo gone >>$HOOKS/gone.log
/etc/c.conf $L/etc/c.conf 0644 echo failing; exit 3
/etc/d.conf $L/etc/d.conf 0644 echo ran >>$HOOKS/d.log
EOF
expect_rc 3 ph sync "$T/fail.manifest"
assert_out_has "failed $L/etc/gone.conf: "
assert_out_has "(NOT_FOUND)"
assert_out_has "updated $L/etc/c.conf (hook failed: exit status 3)"
assert_out_has "updated $L/etc/d.conf (hook ok)"
assert_err_has "$L/etc/c.conf: hook failed: exit status 3"
assert_no_file "$L/etc/gone.conf"
assert_no_file "$HOOKS/gone.log"
assert_same_file "$L/etc/c.conf" "$REPO/etc/c.conf"
assert_same_file "$L/etc/d.conf" "$REPO/etc/d.conf"
step "a failing hook alone gives exit 8"
printf 'c2\n' >"$REPO/etc/c.conf"
sed -i 1d "$T/fail.manifest"
expect_rc 8 ph sync "$T/fail.manifest"
assert_out_has "updated $L/etc/c.conf (hook failed: exit status 3)"
assert_out_has "unchanged $L/etc/d.conf"

step "a symlink at LOCAL is refused, not replaced"
ln -s "$L/etc/d.conf" "$L/etc/link.conf"
printf '/etc/c.conf %s 0644\n' "$L/etc/link.conf" >"$T/link.manifest"
expect_rc 8 ph sync "$T/link.manifest"
assert_out_has "failed $L/etc/link.conf: is a symbolic link"
[[ -L $L/etc/link.conf ]] || fail "the symlink was replaced"
assert_same_file "$L/etc/d.conf" "$REPO/etc/d.conf"

step "bad manifests: the line number, exit 2, and no file changed"
snapshot() {
	find "$L" "$HOOKS" -printf '%p %m %s %T@\n' | sort
}
snapshot >"$T/snap.before"
gets=$(log_ops GET | wc -l)
stats=$(log_ops STAT | wc -l)
printf 'e\n' >"$REPO/etc/e.conf"
# Each bad manifest starts with a good entry that would create a file.
good="/etc/e.conf $L/etc/e.conf 0644 echo ran >>$HOOKS/e.log"
long=$(printf 'x%.0s' {1..9000})
bad_manifest() {	# name line-number expected-text line...
	local name=$1 no=$2 text=$3
	shift 3
	printf '%s\n' "# bad: $name" "$good" "$@" >"$T/bad.manifest"
	expect_rc 2 ph sync "$T/bad.manifest"
	assert_err_has "$T/bad.manifest:$no: "
	assert_err_has "$text"
	assert_err_has "no file was changed"
	[[ ! -s $OUT ]] || fail "$name: a summary was printed$(last_run)"
}
bad_manifest "mode not octal" 4 "MODE '0999' is not an octal mode" \
    "/etc/a.conf $L/etc/x1 0644" "/etc/b.conf $L/etc/x2 0999"
bad_manifest "mode out of range" 3 "MODE '4755'" "/etc/a.conf $L/etc/x1 4755"
bad_manifest "mode as letters" 3 "MODE 'rw-r--r--'" "/etc/a.conf $L/etc/x1 rw-r--r--"
bad_manifest "relative local" 3 "LOCAL 'etc/x1' is not an absolute path" \
    "/etc/a.conf etc/x1 0644"
bad_manifest "dot-dot in local" 3 "LOCAL '$L/etc/../x1' has an empty" \
    "/etc/a.conf $L/etc/../x1 0644"
bad_manifest "remote escapes" 3 "REMOTE '/etc/../../secret' climbs out" \
    "/etc/../../secret $L/etc/x1 0644"
bad_manifest "remote is the root" 3 "names the repository root" \
    "/. $L/etc/x1 0644"
bad_manifest "line too long" 4 "line longer than 8192 bytes" \
    "# fine" "/etc/$long $L/etc/x1 0644"
bad_manifest "duplicate local" 5 "LOCAL '$L/etc/e.conf' is already written by line 2" \
    "/etc/a.conf $L/etc/x1 0644" "" "/etc/b.conf $L/etc/e.conf 0600"
bad_manifest "missing mode" 3 "expected REMOTE LOCAL MODE [HOOK]" \
    "/etc/a.conf $L/etc/x1"
bad_manifest "unterminated quote" 3 "unterminated quote in LOCAL" \
    "/etc/a.conf \"$L/etc/x1 0644"
bad_manifest "DOS line ending" 3 "carriage return" $'/etc/a.conf /x 0644\r'
step "a NUL byte"
{ printf '%s\n' "$good"; printf '/etc/a.conf /x\0 0644\n'; } >"$T/bad.manifest"
expect_rc 2 ph sync "$T/bad.manifest"
assert_err_has "$T/bad.manifest:2: NUL byte"
step "too many entries"
for ((i = 0; i < 1025; i++)); do
	echo "/etc/a.conf $L/etc/many$i 0644"
done >"$T/bad.manifest"
expect_rc 2 ph sync "$T/bad.manifest"
assert_err_has "$T/bad.manifest:1025: more than 1024 entries"
snapshot >"$T/snap.after"
cmp -s "$T/snap.before" "$T/snap.after" ||
	fail "a bad manifest changed files: $(diff "$T/snap.before" "$T/snap.after" | head)"
assert_eq "$(log_ops GET | wc -l)" "$gets" "GETs for bad manifests"
assert_eq "$(log_ops STAT | wc -l)" "$stats" "STATs for bad manifests"

step "no manifest, an empty one, usage"
expect_rc 8 ph sync "$T/nonexistent.manifest"
assert_err_has "$T/nonexistent.manifest: No such file or directory"
printf '# nothing yet\n\n' >"$T/empty.manifest"
ok ph sync "$T/empty.manifest"
[[ ! -s $OUT ]] || fail "an empty manifest printed something$(last_run)"
expect_rc 2 ph sync "$T/empty.manifest" "$T/empty.manifest"
expect_rc 2 ph sync --bogus "$MAN"

daemon_stop

step "no daemon: every entry fails with exit 6, nothing changes"
printf 'a = 4\n' >"$REPO/etc/a.conf"
expect_rc 6 ph --wait 0 sync "$MAN"
assert_out_has "failed $L/etc/a.conf: connection failed"
assert_out_has "failed $L/opt/my dir/tool.bin: connection failed"
assert_eq "$(cat "$L/etc/a.conf")" "a = 3" "a.conf without a daemon"

pass
