#!/usr/bin/env bash
# The README's demo command: sets up the machine, builds defacer and runs the drop-folder
# service on a demo folder with a real scan dropped in (tools/setup/demo.sh does the work).
exec bash "$(dirname "$0")/setup/demo.sh" "$@"
