#!/usr/bin/env bash
# Checks that the tests catch broken code: each mutant below breaks one rule the product
# promises (a merge rule, the circuit breaker, the masking of secrets, the mapping tests'
# failures, the nesting limit), in a copy of the repository, and runs the tests that cover it;
# a mutant the tests do not kill means those tests cannot fail for that rule. Prints one line
# per mutant and exits 1 when one survives or no longer applies (the code it names moved: update
# its pattern). Run from the repository: scripts/mutants.sh [NAME...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy without .git, so that nothing here can touch the repository's files.
tar -C "$repo" --exclude=.git --exclude=node_modules -cf - . | tar -C "$work" -xf -
# json-server's packages are linked, not copied: the e2e tests may need them.
[[ -d $repo/testdata/jsonserver/node_modules ]] && ln -s "$repo/testdata/jsonserver/node_modules" "$work/testdata/jsonserver/node_modules"

# mutant NAME FILE PERL-SUBSTITUTION PACKAGE TEST-PATTERN
mutants=()
mutant() { mutants+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"); }

# The mapping tests report a case whose records differ from the expected ones.
mutant mtest-diffs engine/mtest/mtest.go \
	's/(if diffs := compare\(got, c\.Expect\); len\(diffs\) > 0 \{\n\t+)res\.Failed = append\(res\.Failed, [^\n]*/$1_ = diffs/' \
	./internal/cli/ 'TestScripts/test_fails'
# Secrets never appear in what the http connector returns.
mutant redact-off engine/connector/http/redact.go \
	's/(func \(r \*redactor\) text\(s string\) string \{\n)/$1\treturn s\n/' \
	./engine/connector/http/ 'TestSecrets|TestRedact'
# The circuit breaker holds a side that lost more linked records than the share allows.
mutant breaker-off engine/sync/deletes.go \
	's/h\.held = h\.missing > h\.limit/h.held = false/' \
	./engine/sync/ 'TestDivergenceEmptiedSideIsAFault|TestE2E.*Breaker|TestE2EDelete|TestPlanDeleteBreaker'
# An expression nested past the limit is refused before the parser recurses.
mutant nesting-limit engine/mapping/nesting.go \
	's/const MaxExprNesting = 256/const MaxExprNesting = 100000/' \
	./engine/mapping/ 'TestNestingLimit'
# Three-way merge: a change made in the target alone reaches the source.
mutant merge-target-edit engine/sync/plan.go \
	's/(case tgtChanged && !srcChanged:\n\t+)return false, true, false/$1return false, false, false/' \
	./engine/sync/ 'TestPlanMergeRules|TestE2E'
# Both sides changed: the conflict policy decides (not always the source).
mutant merge-conflict-policy engine/sync/plan.go \
	's/wins := pl\.sourceWins\(src, tgt\)/wins := true/' \
	./engine/sync/ 'TestPlanMergeRules|TestE2E'

want=("$@")
failed=0
for m in "${mutants[@]}"; do
	IFS=$'\t' read -r name file subst pkg pattern <<<"$m"
	if ((${#want[@]})) && [[ ! " ${want[*]} " == *" $name "* ]]; then
		continue
	fi
	cp "$work/$file" "$work/$file.orig"
	perl -0pi -e "$subst" "$work/$file"
	if cmp -s "$work/$file" "$work/$file.orig"; then
		echo "$name: DOES NOT APPLY to $file (update its pattern)"
		failed=1
		continue
	fi
	if (cd "$work" && go test -count=1 -run "$pattern" "$pkg" >"$work/$name.log" 2>&1); then
		echo "$name: SURVIVED ($pkg -run '$pattern' passed with $file broken)"
		failed=1
	else
		echo "$name: killed"
	fi
	mv "$work/$file.orig" "$work/$file"
done
exit $failed
