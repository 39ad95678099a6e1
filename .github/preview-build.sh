#!/usr/bin/env bash
# The untrusted build of a pull request's preview, as .github/workflows/preview.yml runs it (and the tests too).
# It always writes what preview-deploy.yml publishes and comments, whatever the build finds:
#   OUT/site/            the site built in preview mode (false sentences marked in red, new outputs marked)
#   OUT/drift-report.md  the comment: why the check fails (if it does), then the reports
#   OUT/pr-number        $PR_NUMBER
# and only then says whether the check passes: exit status 1 when a checked sentence is false with the pull
# request's outputs or the build reported an error, each named on stdout and in OUT/verdict.md; 0 otherwise.
#
# usage: .github/preview-build.sh OUT [BASE_REF]
#   BASE_REF (e.g. origin/main): the lockfile entries changed since the merge base with it are re-executed
#   first (advisory: the comment's table says which reproduced; it never fails the check)
# environment: LLM_EXEC_PREVIEW_EXECUTE=1 executes the blocks that have no lockfile entry, for this preview
#   only; PYTHON (default .venv/bin/python); PR_NUMBER.
set -u
out="${1:?usage: .github/preview-build.sh OUT [BASE_REF]}"
base_ref="${2:-}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p "$out" || exit 2
rm -rf "$out/site"
rm -f "$out"/{pr-number,verify-failed,verify-report.md,preview-report.md,build.log,verdict.md,drift-report.md}
printf '%s\n' "${PR_NUMBER:-}" > "$out/pr-number"

if [ -n "$base_ref" ]; then
  base="$(git merge-base "$base_ref" HEAD)" \
    && "$python" -m llmexec verify --since "$base" --report "$out/verify-report.md" \
    || echo "Some changed lockfile entries did not reproduce: see the table below." > "$out/verify-failed"
fi

LLM_EXEC_MODE=preview LLM_EXEC_REPORT="$out/preview-report.md" \
  "$python" -m mkdocs build --strict --site-dir "$out/site" 2>&1 | tee "$out/build.log"
built="${PIPESTATUS[0]}"

# The report lists each false sentence as "- `page:line`: sentence  " (present/report.py); named here as page:line: sentence.
false_sentences="$(awk '/^## Sentences these outputs make false/ { on = 1; next } /^## / { on = 0 }
  on && /^- `/ { sub(/^- `/, ""); sub(/`: /, ": "); sub(/ +$/, ""); print "- " $0 }' "$out/preview-report.md" 2>/dev/null)"
verdict="$(
  if [ -n "$false_sentences" ]; then
    echo "Checked sentences that are false with this pull request's outputs (marked in red on the preview's pages):"
    echo "$false_sentences"
  fi
  if [ "$built" != 0 ]; then
    echo "The preview build reported errors (mkdocs build --strict, exit status $built):"
    grep -E '^(ERROR|WARNING) ' "$out/build.log" | sed 's/^/- /' || echo "- see the build's log"
  fi
)"
if [ -n "$verdict" ]; then printf '%s\n\n' "$verdict" > "$out/verdict.md"; else : > "$out/verdict.md"; fi
cat "$out/verdict.md" "$out/verify-failed" "$out/verify-report.md" "$out/preview-report.md" > "$out/drift-report.md" 2>/dev/null

if [ -s "$out/verdict.md" ]; then
  echo
  echo "The preview check fails (the site and the report are written to $out all the same):"
  cat "$out/verdict.md"
  exit 1
fi
echo "The preview check passes: every checked sentence holds and the build reported no error."
