#!/usr/bin/env bash
# faxmesh demo: two relays peered on loopback, a gateway on each, a receiving
# fax device behind one and a fax (cover page, a PDF letter and a scan, a tag
# line on every page) sent from behind the other. The fax crosses
# gateway -> relay A -> relay B -> gateway and is stored as TIFF Class F.
# Gateway-relay and relay-relay links are TLS, with a private CA made by
# `relayd tls`; the devices talk to their gateways in plaintext (the LAN).
#
#   ./demo.sh            build (release) and run; everything stops at the end
#   KEEP=1 ./demo.sh     keep the working directory for a look afterwards
set -euo pipefail
cd "$(dirname "$0")"

echo "== building (cargo build --release)"
cargo build --release --quiet --bins
bin=$PWD/target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/faxmesh-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "== kept $work"; fi
}
trap cleanup EXIT

# Ports on loopback; override with BASE_PORT if these are taken.
base=${BASE_PORT:-47100}
relay_a=127.0.0.1:$((base + 10)) relay_b=127.0.0.1:$((base + 11))
gw_1=127.0.0.1:$((base + 1)) gw_2=127.0.0.1:$((base + 2))

# Waits until `relayd directory` of the relay in $1 shows number $2 online
# with a next hop, i.e. the relay can route calls to it.
wait_route() {
  for _ in $(seq 1 200); do
    if "$bin/relayd" directory --data-dir "$1" 2>/dev/null |
      awk -v n="$2" '$1 == n && $3 != "-" && $4 == "online" { found = 1 } END { exit !found }'; then
      return 0
    fi
    sleep 0.05
  done
  echo "demo: relay in $1 never learned a route to $2; logs are in $work" >&2
  exit 1
}

echo "== fleet key and device secrets in $work"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/fleet.key"
"$bin/relayd" credential --fleet-key-file "$work/fleet.key" 1001 > "$work/1001.secret"
"$bin/relayd" credential --fleet-key-file "$work/fleet.key" 1002 > "$work/1002.secret"

echo "== a private CA and the relays' certificates in $work/pki"
"$bin/relayd" tls ca --dir "$work/pki"
"$bin/relayd" tls cert --dir "$work/pki" --name relay-a --san 127.0.0.1 --san localhost
"$bin/relayd" tls cert --dir "$work/pki" --name relay-b --san 127.0.0.1 --san localhost
tls() { echo --tls-cert "$work/pki/$1.pem" --tls-key "$work/pki/$1.key" --ca-file "$work/pki/ca.pem"; }

echo "== relays A ($relay_a) and B ($relay_b) over TLS, B peers with A"
# shellcheck disable=SC2046 # tls prints flags, split on purpose
"$bin/relayd" --name relay-a --listen "$relay_a" --data-dir "$work/relay-a" \
  --fleet-key-file "$work/fleet.key" $(tls relay-a) 2> "$work/relay-a.log" & pids+=($!)
# shellcheck disable=SC2046
"$bin/relayd" --name relay-b --listen "$relay_b" --data-dir "$work/relay-b" \
  --fleet-key-file "$work/fleet.key" $(tls relay-b) --peer "$relay_a" 2> "$work/relay-b.log" & pids+=($!)

echo "== gateway 1 ($gw_1) on relay A, gateway 2 ($gw_2) on relay B, both trusting the CA"
"$bin/gatewayd" --name office-1 --listen "$gw_1" --relay "$relay_a" \
  --ca-file "$work/pki/ca.pem" 2> "$work/gw-1.log" & pids+=($!)
"$bin/gatewayd" --name office-2 --listen "$gw_2" --relay "$relay_b" \
  --ca-file "$work/pki/ca.pem" 2> "$work/gw-2.log" & pids+=($!)

echo "== fax device 1002 answers behind gateway 2"
"$bin/faxrecv" --gateway "$gw_2" --number 1002 --secret-file "$work/1002.secret" \
  --dir "$work/inbox" --once 2> "$work/faxrecv.log" > "$work/faxrecv.out" & recv=$!
pids+=($recv)
wait_route "$work/relay-a" 1002

echo "== relay A's directory:"
"$bin/relayd" directory --data-dir "$work/relay-a"

echo "== fax device 1001 sends samples/letter.pdf and samples/letter.png to 1002, with a cover page"
"$bin/faxsend" --gateway "$gw_1" --from 1001 --secret-file "$work/1001.secret" \
  --to 1002 --cover --from-name "Example Trading" --to-name "Northwind Accounts" \
  --subject "Invoice 42" --comment "Two pages of invoice and a scan follow." \
  samples/letter.pdf samples/letter.png
wait "$recv"
echo "== faxrecv printed:"
cat "$work/faxrecv.out"
fax=$(ls "$work"/inbox/*.tif)
echo "== received file: $fax"
if command -v tiffinfo >/dev/null; then tiffinfo "$fax" | sed -n '1,12p'; fi
