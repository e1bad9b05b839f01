#!/bin/bash
#PBS -N wrun-q
#PBS -V
#PBS -l walltime=1:30:00
#PBS -l select=1:ncpus=4
#PBS -j oe
#PBS -o /home/alice/.wrun/broker/alloc/q/
exec '/opt/wrun/bin/wrun' node --connect 'tcp://10.0.0.1:7878' --key '/home/alice/it'\''s/cluster.key' --slots 4 --lifetime 5400s --idle-timeout 300s --allocation "$PBS_JOBID" --name "wrun-q-$PBS_JOBID"
