#!/usr/bin/env bash
# Mount the cluster's shared storage on this node (run by ray_cluster*.yaml on every node):
#   bash scripts/mount_shared.sh NFS_SOURCE [MOUNT_POINT]     e.g. fs-0123abcd.efs.us-west-2.amazonaws.com:/
# Datasets, caches, synthesized shards, trial folders, Ray results and MLflow's store live there, so
# every node must see the same files. Does nothing when MOUNT_POINT is already mounted, or when
# NFS_SOURCE is "none" (the directory is then expected to be shared already, e.g. on-premises).
set -euo pipefail

source_="${1:?usage: bash scripts/mount_shared.sh NFS_SOURCE [MOUNT_POINT]}"
target="${2:-/mnt/shared}"

if mountpoint -q "$target" 2>/dev/null; then
    echo "phaselab: $target already mounted"
elif [ "$source_" = "none" ]; then
    echo "phaselab: no NFS source given; using $target as it is"
    sudo mkdir -p "$target"
else
    if ! command -v mount.nfs4 >/dev/null 2>&1; then
        sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q nfs-common
    fi
    sudo mkdir -p "$target"
    # The options AWS recommends for EFS (NFS 4.1, large blocks, hard mounts that survive blips).
    sudo mount -t nfs4 -o nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport \
        "$source_" "$target"
    echo "phaselab: mounted $source_ at $target"
fi
if [ ! -w "$target" ]; then
    sudo chown "$(id -u):$(id -g)" "$target"
fi
