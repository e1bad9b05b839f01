#!/bin/bash
#SBATCH --job-name=wrun-q
#SBATCH --time=1:30:00
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --output=/home/alice/.wrun/broker/alloc/q/%x-%j.out
exec '/opt/wrun/bin/wrun' node --connect 'tcp://10.0.0.1:7878' --key '/home/alice/it'\''s/cluster.key' --slots 4 --lifetime 5400s --idle-timeout 300s --allocation "$SLURM_JOB_ID" --name "wrun-q-$SLURM_JOB_ID"
