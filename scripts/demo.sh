#!/usr/bin/env bash
# The README's first command: set up, then provision and verify a throwaway local test host.
#   scripts/demo.sh          the stack these machines can really get: base, nvidia_driver and
#                            cuda from Debian's archive (driver 535, CUDA 11.8), docker (docker.io)
#   scripts/demo.sh base     the quick variant: base only
#   scripts/demo.sh down     remove the demo host and workspace
# Leaves the workspace in ./demo and the sandbox running. Prints its time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
variant="${1:-stack}"
case "$variant" in
  down)
    (cd demo && rigforge sandbox down rig1) || true
    rm -rf demo
    exit 0
    ;;
  base) components="[base]" ;;
  stack) components="[base, nvidia_driver, cuda, docker]" ;;
  *) echo "usage: scripts/demo.sh [stack|base|down]" >&2; exit 2 ;;
esac
[ -d demo ] || rigforge init demo
cd demo
rigforge sandbox list | grep -q '^rig1 ' || rigforge sandbox up rig1
# The demo's choice of components (./demo is the demo's own workspace).
mkdir -p inventory/host_vars
cat > inventory/host_vars/rig1.yml <<EOF
# Written by scripts/demo.sh ($variant).
rigforge_components: $components
# Docker's own repository cannot be reached from these machines: Debian's docker.io.
docker_source: distro
EOF
rigforge provision --yes
rigforge verify
if [ "$variant" = stack ]; then
  cat <<'EOF'
demo: skipped, because these machines cannot reach their downloads:
  cudnn                     NVIDIA's CUDA repository
  nvidia_container_toolkit  NVIDIA's container toolkit repository
  conda                     Miniforge's installer (GitHub releases)
  ollama                    Ollama's release archive (GitHub releases)
demo: the sandbox has no GPU, so verify skips the checks that need one, saying why.
EOF
fi
echo "demo ($variant): $((SECONDS - started)) s"
