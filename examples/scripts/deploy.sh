#!/bin/sh
# The `deploy` destination of examples/delivery.toml: hookgate runs it for every GitHub
# push, with the event on stdin, the ref and the event type as arguments, and the event's
# metadata in HOOKGATE_* variables. Exit 0 means delivered; anything else is retried.
# Replace the echo with your deployment.
set -eu
ref=${1:-}
event=${2:-}
echo "deploy: ${HOOKGATE_SOURCE:-?} ${event} ${ref} (webhook-id ${HOOKGATE_WEBHOOK_ID:-?}, attempt ${HOOKGATE_ATTEMPT:-?})"
cat > /dev/null
