#!/usr/bin/env bash
# Installs the Debian packages ovl needs to build and test, if any is missing:
#   libzydis-dev      x86 decoder (linked by the engine)
#   libncursesw5-dev  terminal UI (ovl explore)
#   qemu-user         qemu-x86_64, for `ovl record` and the tests that record traces
#   musl-tools        musl-gcc, to rebuild the samples and for tests that compile C
#   binutils          objdump/readelf, the tests' independent oracle
#   tmux              the explorer's end-to-end test runs it in a real terminal
#   xz-utils          the Linux tests unpack their committed vmlinux extract
#   linux-source-6.1 qemu-system-x86 make flex bison bc libelf-dev libssl-dev cpio python3
#                     the kernel boot test (KernelBootTests) builds a Linux kernel, rewrites
#                     it and boots it (Samples/linux/run.sh, overlay.sh)
set -euo pipefail
packages=(libzydis-dev libncursesw5-dev qemu-user musl-tools binutils tmux gcc xz-utils
          linux-source-6.1 qemu-system-x86 make flex bison bc libelf-dev libssl-dev cpio python3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
