#!/usr/bin/env bash
# The README's and CI's test command: sets up the machine and runs defacer's test suite
# (tools/setup/test.sh does the work).
exec bash "$(dirname "$0")/setup/test.sh" "$@"
