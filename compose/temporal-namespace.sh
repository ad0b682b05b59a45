#!/bin/sh
# One-shot (temporalio/admin-tools): once the Temporal server answers, register the namespace the
# workers use and the custom search attributes the order saga upserts. Each step is retried (the
# server may still be starting, a fresh namespace takes a moment to accept attributes); a step that
# keeps failing exits 1, so the workers, which depend on this service, do not start against a server
# that would refuse their sagas. Safe to run again: existing entries are kept.
#
#   TEMPORAL_ADDRESS        host:port of the frontend (required)
#   CF_TEMPORAL_NAMESPACE   namespace to register (default: default)
#   CF_SEARCH_ATTRIBUTES    space-separated Name=Type pairs (required)
#   CF_SETUP_ATTEMPTS       tries per step (default 60), CF_SETUP_DELAY_S seconds between (default 2)
set -eu
: "${TEMPORAL_ADDRESS:?}" "${CF_SEARCH_ATTRIBUTES:?}"
namespace=${CF_TEMPORAL_NAMESPACE:-default}
attempts=${CF_SETUP_ATTEMPTS:-60}
delay=${CF_SETUP_DELAY_S:-2}

# retry WHAT COMMAND…: run COMMAND until it succeeds, at most $attempts times; then name WHAT and fail.
retry() {
  what=$1; shift
  n=1
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then
      echo "error: $what failed $n times against $TEMPORAL_ADDRESS; giving up" >&2
      exit 1
    fi
    n=$((n + 1)); sleep "$delay"
  done
}

quiet() { "$@" >/dev/null 2>&1; }

ensure_namespace() {
  quiet temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$namespace" ||
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$namespace" --retention 72h
}

# An attribute is done when the namespace lists it with its type; creating one that exists fails.
ensure_attribute() {
  name=${1%%=*}; type=${1#*=}
  temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$namespace" |
    grep -Eq "^[[:space:]]*$name[[:space:]]+$type([[:space:]]|\$)" ||
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$namespace" \
      --name "$name" --type "$type"
}

retry "the cluster health check" quiet temporal operator cluster health --address "$TEMPORAL_ADDRESS"
retry "registering namespace $namespace" ensure_namespace
for pair in $CF_SEARCH_ATTRIBUTES; do
  retry "registering search attribute $pair" ensure_attribute "$pair"
done
# A last look: every attribute is there (a create that raced another one-shot is fine).
for pair in $CF_SEARCH_ATTRIBUTES; do
  retry "finding search attribute $pair" ensure_attribute "$pair"
done
echo "namespace $namespace ready with search attributes: $CF_SEARCH_ATTRIBUTES"
