#!/usr/bin/env bash
# Runs every go test -fuzz target in the module for the given time each.
# go's fuzzing coordinator can end a run with "context deadline exceeded"
# when its time runs out while a worker is busy (a loaded machine): such a
# run, which found no failing input, is tried once more.
set -euo pipefail
t="${1:-5s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    for try in 1 2; do
      if out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1); then
        echo "$out" | tail -3
        break
      fi
      echo "$out"
      if [ "$try" = 2 ] || ! echo "$out" | grep -q "context deadline exceeded" || echo "$out" | grep -q "Failing input"; then
        exit 1
      fi
      echo "fuzz: $f: the coordinator's deadline, no failing input: once more"
    done
  done
done
