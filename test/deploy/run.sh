#!/bin/sh
# run.sh - checks the deployment files (samples/, helm/) as far as this
# machine can without systemd running or a Kubernetes cluster; part of
# `make test`.
#
# 1. systemd units: `systemd-analyze verify` in a temporary root that holds
#    the units in /etc/systemd/system, the distribution's units, the account
#    from samples/kafscale.sysusers and the built binaries at
#    /usr/local/bin (so ExecStart= is checked too: a binary not built yet is
#    replaced by a stub, and said so). verify exits 0 on unknown keys and bad
#    values ("ignoring"), so any output at all fails the check. Then
#    `systemd-analyze security --offline` on each service, which must stay
#    below an exposure of 2.5 (OK).
# 2. test/deploy/check_chart.py: .Values references, the chart rendered with
#    several value sets, Kubernetes object checks, CRDs and CR samples, the
#    environment file and the units' contents.
# 3. yamllint --strict on every YAML file of the tree and on the rendered
#    chart (test/deploy/yamllint.yaml).
set -eu
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=""

echo "deploy: systemd units"
root="$tmp/root"
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/usr/lib/sysusers.d" "$root/usr/local/bin" \
    "$root/etc/kafscale"
ln -s usr/lib "$root/lib"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp samples/kafscale.sysusers "$root/usr/lib/sysusers.d/kafscale.conf"
if ! systemd-sysusers --root="$root" >"$tmp/sysusers.out" 2>&1 || ! grep -q '^kafscale:' "$root/etc/passwd"; then
    cat "$tmp/sysusers.out"
    echo "deploy: FAIL systemd-sysusers samples/kafscale.sysusers"
    failed="$failed sysusers"
fi
cp samples/kafscale-*.service samples/kafscale.target "$root/etc/systemd/system/"
cp samples/kafscale.env "$root/etc/kafscale/kafscale.env"
for b in kafscale-broker kafscale-flusher kafscale-cached; do
    if [ -x "bin/$b" ]; then
        cp "bin/$b" "$root/usr/local/bin/$b"
    else
        echo "deploy: bin/$b is not built: a stub stands in for it at /usr/local/bin/$b"
        printf '#!/bin/sh\nexit 1\n' >"$root/usr/local/bin/$b"
        chmod 755 "$root/usr/local/bin/$b"
    fi
done
units=""
for u in "$root"/etc/systemd/system/kafscale*; do units="$units $u"; done
# shellcheck disable=SC2086
if ! systemd-analyze verify --root="$root" --man=no $units >"$tmp/verify.out" 2>&1 || [ -s "$tmp/verify.out" ]; then
    sed "s|$root||g" "$tmp/verify.out"
    echo "deploy: FAIL systemd-analyze verify"
    failed="$failed verify"
else
    echo "deploy: ok   systemd-analyze verify:$(for u in $units; do printf ' %s' "${u##*/}"; done)"
fi
for s in broker flusher cached; do
    if ! systemd-analyze security --offline=yes --root="$root" --threshold=25 "kafscale-$s.service" >"$tmp/sec.out" 2>&1; then
        grep -E '✗|Overall|exposure' "$tmp/sec.out" || cat "$tmp/sec.out"
        echo "deploy: FAIL systemd-analyze security kafscale-$s.service"
        failed="$failed security-$s"
    else
        echo "deploy: ok   systemd-analyze security kafscale-$s.service: $(grep -o 'exposure level.*' "$tmp/sec.out" | sed 's/.*: //')"
    fi
done

echo "deploy: chart, manifests, CRDs, environment file"
if /usr/bin/python3 -B test/deploy/check_chart.py --out "$tmp/rendered"; then
    echo "deploy: ok   check_chart.py"
else
    echo "deploy: FAIL check_chart.py"
    failed="$failed check_chart"
fi

echo "deploy: yamllint"
if [ -d "$tmp/rendered" ] && yamllint --strict -c test/deploy/yamllint.yaml -f parsable . "$tmp/rendered" >"$tmp/lint.out" 2>&1; then
    n=$(find . "$tmp/rendered" -path ./test/node/node_modules -prune -o -path ./helm/kafscale/templates -prune \
        -o -path ./.git -prune -o \( -name '*.yaml' -o -name '*.yml' \) -print | wc -l)
    echo "deploy: ok   yamllint ($n files, rendered chart included)"
else
    sed "s|$tmp/rendered|<rendered>|g" "$tmp/lint.out"
    echo "deploy: FAIL yamllint"
    failed="$failed yamllint"
fi

if [ -n "$failed" ]; then
    echo "deploy: FAILED:$failed"
    exit 1
fi
echo "deploy: all checks passed"
